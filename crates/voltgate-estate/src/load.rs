//! Rebuilding the role engine from the store at start.

use std::collections::HashSet;

use voltgate_policy::{Engine, Preset, PrincipalKind, ROOT_SCOPE_ID, STATION_KIND};
use voltgate_store::{Store, StoreError};

/// Builds the role engine from the preset and replays every stored scope, module,
/// principal, custom role and assignment into it, in that order. Records the preset can no
/// longer express (e.g. after switching presets) are skipped with a warning, not fatal.
pub async fn load_engine(store: &dyn Store, preset: Preset) -> Result<Engine, StoreError> {
    let mut engine = Engine::new(preset);
    replay_scopes(store, &mut engine).await?;
    replay_rules(store, &mut engine).await?;
    Ok(engine)
}

/// Replays every stored module setting, principal, custom role and assignment, in that order,
/// into an engine that holds the scopes already (a new one, or [`Engine::scopes_only`]).
/// Answers how many records it had to skip.
pub(crate) async fn replay_rules(
    store: &dyn Store,
    engine: &mut Engine,
) -> Result<usize, StoreError> {
    let mut skipped = 0;
    for (scope, module, on) in store.modules().await? {
        if let Err(err) = engine.set_module(&scope, &module, on) {
            tracing::warn!(%scope, %module, error = %err, "stored module setting skipped");
            skipped += 1;
        }
    }
    for principal in store.principals().await? {
        let Ok(kind) = principal.kind.parse::<PrincipalKind>() else {
            tracing::warn!(principal = %principal.id, kind = %principal.kind, "stored principal of unknown kind skipped");
            skipped += 1;
            continue;
        };
        if let Err(err) = engine.add_principal(&principal.id, kind, &principal.home_scope) {
            tracing::warn!(principal = %principal.id, error = %err, "stored principal skipped");
            skipped += 1;
            continue;
        }
        if principal.blocked {
            if let Err(err) = engine.set_blocked(&principal.id, true) {
                tracing::warn!(principal = %principal.id, error = %err, "could not block stored principal");
                skipped += 1;
            }
        }
    }
    for role in store.roles().await? {
        if let Err(err) = engine.define_role(&role.id, &role.label, &role.permissions) {
            tracing::warn!(role = %role.id, error = %err, "stored custom role skipped");
            skipped += 1;
        }
    }
    for assignment in store.assignments().await? {
        if let Err(err) = engine.assign(&assignment.principal, &assignment.role, &assignment.scope)
        {
            tracing::warn!(
                principal = %assignment.principal,
                role = %assignment.role,
                scope = %assignment.scope,
                error = %err,
                "stored assignment skipped"
            );
            skipped += 1;
        }
    }
    Ok(skipped)
}

/// The chargers the store marks pending approval, for [`crate::Estate::with_pending_chargers`].
pub async fn pending_chargers(store: &dyn Store) -> Result<HashSet<String>, StoreError> {
    Ok(store
        .chargers()
        .await?
        .into_iter()
        .filter(|charger| charger.pending)
        .map(|charger| charger.id)
        .collect())
}

/// Scopes come back parents-first, but a charger record may exist without its scope row
/// (registered by an older build or interrupted half-way). Those become stations too; the
/// loop repeats until no pending scope can be placed.
async fn replay_scopes(store: &dyn Store, engine: &mut Engine) -> Result<(), StoreError> {
    let mut pending: Vec<(String, String, String)> = store
        .scopes()
        .await?
        .into_iter()
        .map(|s| {
            let parent = s.parent.unwrap_or_else(|| ROOT_SCOPE_ID.to_owned());
            (s.id, s.kind, parent)
        })
        .collect();
    let known: HashSet<String> = pending.iter().map(|(id, _, _)| id.clone()).collect();
    for charger in store.chargers().await? {
        if !known.contains(&charger.id) {
            pending.push((charger.id, STATION_KIND.to_owned(), charger.scope));
        }
    }
    loop {
        let before = pending.len();
        let mut still_pending = Vec::new();
        for (id, kind, parent) in pending {
            if id == ROOT_SCOPE_ID {
                continue;
            }
            if engine.scope_kind(&parent).is_none() {
                still_pending.push((id, kind, parent));
                continue;
            }
            if let Err(err) = engine.add_scope(&id, &kind, &parent) {
                tracing::warn!(scope = %id, %kind, %parent, error = %err, "stored scope skipped");
            }
        }
        pending = still_pending;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    for (id, _, parent) in pending {
        tracing::warn!(scope = %id, %parent, "stored scope skipped: its parent does not exist");
    }
    Ok(())
}
