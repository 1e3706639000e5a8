//! The estate service: the one write path for everything the role engine decides on.
//!
//! Scopes, chargers, principals, custom roles, assignments, modules, id tokens and a charger's
//! approval change only through the methods of [`Estate`], and every method has the same shape: take the write
//! lock, ask the engine whether the change is valid (its validate-only twin, so no rule is
//! copied here), write the store, apply the change to the engine, and count one finished
//! change for whoever follows the estate (the local-list sync). A store failure therefore
//! changes nothing, and the engine never runs ahead of or behind the database.
//!
//! Who may make a change is not this module's question: callers ask the engine first and
//! audit the decision; the gateway's API runs each change to its end even when the client
//! goes away.
//!
//! Which chargers await approval is kept here in memory too, written by the same methods that
//! write it to the store (registration, approval), so the charger-side id-token decision, a
//! hot path, never reads it from the store.
//!
//! The lock, the change counter and its wake-up are fields, not process-wide statics, so two
//! gateways in one process never share them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::engine_lock::{EngineLock, EngineRead};
use voltgate_policy::{CardClaim, Engine, PolicyError, PrincipalKind, RoleDef, STATION_KIND};
use voltgate_store::{
    AssignmentRecord, ChargerBehaviour, ChargerRecord, IdTokenRecord, PrincipalRecord, RoleRecord,
    ScopeRecord, Store, StoreError,
};

/// Why a change was not made. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The engine refuses the change as invalid (unknown parent, wrong kind, bad id, …).
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    /// The thing to create exists already.
    #[error("{0}")]
    Conflict(String),
    /// The thing to change does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The role engine together with the store it mirrors.
pub struct Estate {
    engine: EngineLock,
    store: Arc<dyn Store>,
    writes: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    changed: tokio::sync::Notify,
    pending_chargers: parking_lot::RwLock<HashSet<String>>,
    /// Changes made through this estate (not reloads), for peers that must hear of them.
    commits: AtomicU64,
    on_commit: std::sync::OnceLock<CommitHook>,
}

/// Called with the commit count and what was committed after each change made through this
/// estate, once the store has it (a gateway cluster tells the other nodes).
pub type CommitHook = Box<dyn Fn(u64, &Committed) + Send + Sync>;

/// What a finished change was, as far as another process following this estate must know:
/// enough to follow it without rereading the whole estate (thousands of stations) unless it
/// must. Each kind says how a follower catches up; a change that was refused may still name
/// its kind, since following it again from the store is harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// A charger was added: a follower adds it as told, or from the store's record
    /// ([`Estate::adopt_chargers`]).
    ChargerRegistered(Registration),
    /// A scope was added. Scopes are never changed or removed, so a follower adds it as
    /// described ([`Estate::adopt_scopes`]).
    ScopeAdded(ScopeRecord),
    /// Principals, custom roles, assignments or module settings changed: a follower replays
    /// the stored rules onto the scopes it holds ([`Estate::reload_rules`]).
    Rules,
    /// A pending charger was approved (or an approval refused): a follower rereads whether it
    /// is pending ([`Estate::follow_approval`]).
    ChargerApproved(String),
    /// Id tokens changed: nothing the engine holds, but what is computed from cards (local
    /// lists) must be computed again ([`Estate::follow_cards`]).
    Cards,
    /// A charger's stored settings outside the engine changed (password, security profile,
    /// schema tolerance, behaviour): a follower rereads its copies of them.
    ChargerSettings,
    /// Refused before anything was written: nothing to follow.
    Nothing,
    /// Anything else: a follower reloads ([`Estate::reload`]).
    Other,
}

impl Committed {
    /// Whether an answer about something that existed before this change may differ after
    /// it. A scope or charger added is a new leaf of the tree: no existing scope gains an
    /// ancestor, no rule or card changes, so only questions about the new scope itself get
    /// answers they did not have. What computes answers for everything it holds (local
    /// lists) recomputes when [`Estate::generation`] moves, which these changes leave alone.
    pub fn may_change_standing_answers(&self) -> bool {
        match self {
            Committed::ChargerRegistered(_) | Committed::ScopeAdded(_) | Committed::Nothing => {
                false
            }
            Committed::Rules
            | Committed::ChargerApproved(_)
            | Committed::Cards
            | Committed::ChargerSettings
            | Committed::Other => true,
        }
    }
}

/// A charger registration as a follower hears of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub id: String,
    /// The scope a charger registered trusted sits in: a follower adds it from this alone,
    /// since a trusted charger's record never changes what the engine holds of it. `None`
    /// for a charger registered pending (an approval may have trusted it since) or a
    /// registration heard without it: the follower reads the stored record.
    pub trusted_under: Option<String>,
}

impl Registration {
    /// A registration to follow from the stored record.
    pub fn stored(id: impl Into<String>) -> Registration {
        Registration {
            id: id.into(),
            trusted_under: None,
        }
    }
}

/// Held while one change is made; dropping it counts the change, tells the commit hook and,
/// where answers may have changed, moves the generation.
struct ChangeGuard<'a> {
    estate: &'a Estate,
    committed: Committed,
    _lock: tokio::sync::MutexGuard<'a, ()>,
}

impl Drop for ChangeGuard<'_> {
    fn drop(&mut self) {
        let commits = self.estate.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(hook) = self.estate.on_commit.get() {
            hook(commits, &self.committed);
        }
        if self.committed.may_change_standing_answers() {
            self.estate.moved();
        }
    }
}

impl Estate {
    /// An estate over `store`, whose contents `engine` already holds.
    pub fn new(store: Arc<dyn Store>, engine: Engine) -> Estate {
        Estate {
            engine: EngineLock::new(engine),
            store,
            writes: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
            pending_chargers: parking_lot::RwLock::new(HashSet::new()),
            commits: AtomicU64::new(0),
            on_commit: std::sync::OnceLock::new(),
        }
    }

    /// The estate with the chargers the store marks pending (see [`crate::pending_chargers`]).
    #[must_use]
    pub fn with_pending_chargers(self, pending: impl IntoIterator<Item = String>) -> Estate {
        self.pending_chargers.write().extend(pending);
        self
    }

    /// Whether charger `id` awaits approval (auto-registered, not yet trusted): read from
    /// memory, kept equal to the store by [`Estate::register_charger`] and
    /// [`Estate::approve_charger`].
    pub fn charger_pending(&self, id: &str) -> bool {
        self.pending_chargers.read().contains(id)
    }

    /// A digest of which chargers await approval, the same whatever order they came in:
    /// what is derived for approved chargers only changes with it.
    pub fn pending_digest(&self) -> u64 {
        self.pending_chargers
            .read()
            .iter()
            .map(|id| {
                let mut hasher = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(id, &mut hasher);
                std::hash::Hasher::finish(&hasher)
            })
            .fold(0u64, u64::wrapping_add)
    }

    /// How many changes (made or refused) were finished through this estate; reloads do not
    /// count.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Installs the one hook called after every change; a second hook is refused.
    pub fn set_commit_hook(&self, hook: CommitHook) -> Result<(), CommitHook> {
        self.on_commit.set(hook)
    }

    /// Rebuilds the engine from the store, for changes another process committed: under the
    /// write lock, so no local change interleaves; the preset and scope limits are kept. The
    /// followers are woken as for a change, but it is not counted as one of this estate's
    /// commits. On a store failure the engine stays as it was.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _lock = self.writes.lock().await;
        let (preset, limits) = {
            let engine = self.engine();
            (engine.preset().clone(), engine.scope_limits())
        };
        let mut engine = crate::load_engine(self.store.as_ref(), preset).await?;
        engine.set_scope_limits(limits);
        let pending = crate::pending_chargers(self.store.as_ref()).await?;
        *self.engine.write() = engine;
        *self.pending_chargers.write() = pending;
        self.moved();
        Ok(())
    }

    /// The engine, for decisions. Hold the guard briefly and never across an await; reading
    /// it again on the same thread meanwhile is safe, changing it is not (see [`EngineRead`]).
    pub fn engine(&self) -> EngineRead<'_> {
        self.engine.read()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Counts the changes, made here or followed, after which an answer about something that
    /// existed before may differ ([`Committed::may_change_standing_answers`]): what computes
    /// answers for everything it holds recomputes when it moves. Adding scopes and chargers
    /// leaves it alone, so a registration ramp does not recompute the whole estate per
    /// charger.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Resolves when [`Estate::generation`] moves after this future is first polled.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Takes the write lock for a change that followers follow as `committed` unless the
    /// method says otherwise before it ends.
    async fn begin(&self, committed: Committed) -> ChangeGuard<'_> {
        ChangeGuard {
            _lock: self.writes.lock().await,
            committed,
            estate: self,
        }
    }

    /// The engine for a change whose validity was checked under the write lock; a refusal
    /// here means the engine and its validate-only twin disagree.
    fn apply(&self, change: impl FnOnce(&mut Engine) -> Result<(), PolicyError>) {
        if let Err(err) = change(&mut self.engine.write()) {
            tracing::error!(error = %err, "the role engine refused a change it had validated; restart to reload the store");
        }
    }

    pub async fn add_scope(&self, record: &ScopeRecord) -> Result<(), ChangeError> {
        let mut change = self.begin(Committed::Nothing).await;
        let parent = record
            .parent
            .as_deref()
            .unwrap_or(voltgate_policy::ROOT_SCOPE_ID);
        self.engine()
            .check_add_scope(&record.id, &record.kind, parent)?;
        // A failed write may have written nothing or (unknown to us) everything: reload.
        change.committed = Committed::Other;
        self.store.put_scope(record).await?;
        self.apply(|engine| engine.add_scope(&record.id, &record.kind, parent));
        change.committed = Committed::ScopeAdded(record.clone());
        Ok(())
    }

    /// A charger is a store record and a station scope under its parent.
    pub async fn register_charger(&self, charger: &ChargerRecord) -> Result<(), ChangeError> {
        let mut change = self.begin(Committed::Nothing).await;
        self.engine()
            .check_add_scope(&charger.id, STATION_KIND, &charger.scope)?;
        let station = ScopeRecord {
            id: charger.id.clone(),
            kind: STATION_KIND.to_owned(),
            parent: Some(charger.scope.clone()),
            name: None,
        };
        // A failed write may have written nothing or (unknown to us) everything: reload.
        change.committed = Committed::Other;
        if !self.store.add_charger(charger, &station).await? {
            change.committed = Committed::Nothing;
            return Err(PolicyError::DuplicateScope(charger.id.clone()).into());
        }
        self.apply(|engine| engine.add_scope(&charger.id, STATION_KIND, &charger.scope));
        if charger.pending {
            self.pending_chargers.write().insert(charger.id.clone());
        }
        change.committed = Committed::ChargerRegistered(Registration {
            id: charger.id.clone(),
            trusted_under: (!charger.pending).then(|| charger.scope.clone()),
        });
        Ok(())
    }

    /// Follows charger registrations another process committed: adds each charger to the
    /// engine as a reload would, without rereading the rest of the estate, under one turn of
    /// the write lock; a trusted one as told, the others with one store read (a few for
    /// thousands) however many there are. `false` as soon as one cannot be taken over that
    /// way (gone again, its scope unknown here, the id held by a scope of another kind): the
    /// caller then reloads.
    pub async fn adopt_chargers(&self, registrations: &[Registration]) -> Result<bool, StoreError> {
        let _lock = self.writes.lock().await;
        let unsaid: Vec<String> = registrations
            .iter()
            .filter(|registration| registration.trusted_under.is_none())
            .map(|registration| registration.id.clone())
            .collect();
        let records: HashMap<String, ChargerRecord> = if unsaid.is_empty() {
            HashMap::new()
        } else {
            self.store
                .chargers_named(&unsaid)
                .await?
                .into_iter()
                .map(|record| (record.id.clone(), record))
                .collect()
        };
        let mut adopted_all = true;
        {
            let mut engine = self.engine.write();
            let mut pending = self.pending_chargers.write();
            for registration in registrations {
                let id = &registration.id;
                let (scope, is_pending) = match &registration.trusted_under {
                    Some(scope) => (scope, false),
                    None => match records.get(id) {
                        Some(record) => (&record.scope, record.pending),
                        None => {
                            adopted_all = false;
                            break;
                        }
                    },
                };
                let adopted = match engine.scope_kind(id) {
                    Some(kind) => kind == STATION_KIND,
                    None => engine.add_scope(id, STATION_KIND, scope).is_ok(),
                };
                if !adopted {
                    adopted_all = false;
                    break;
                }
                if is_pending {
                    pending.insert(id.clone());
                }
            }
        }
        Ok(adopted_all)
    }

    /// Follows scopes another process added, under one turn of the write lock; `false` as
    /// soon as one cannot be placed (its parent unknown here, its id held by a scope of
    /// another kind): the caller then reloads.
    pub async fn adopt_scopes(&self, scopes: &[ScopeRecord]) -> bool {
        let _lock = self.writes.lock().await;
        let adopted = {
            let mut engine = self.engine.write();
            scopes
                .iter()
                .all(|scope| match engine.scope_kind(&scope.id) {
                    Some(known) => known == scope.kind,
                    None => {
                        let parent = scope
                            .parent
                            .as_deref()
                            .unwrap_or(voltgate_policy::ROOT_SCOPE_ID);
                        engine.add_scope(&scope.id, &scope.kind, parent).is_ok()
                    }
                })
        };
        adopted
    }

    /// Follows rule changes another process committed (principals, custom roles,
    /// assignments, module settings): the stored rules are replayed onto the scopes this
    /// engine holds, under the write lock. Costs what the rules cost, not what the stations
    /// do. `false` when a stored rule could not be placed (a scope it names that this engine
    /// has not followed yet): the caller then reloads, which reads the scopes too. A store
    /// holding rules the preset cannot express (after a preset switch) answers `false`
    /// every time, so such an estate reloads on each rule change. On a store failure the
    /// engine stays as it was.
    pub async fn reload_rules(&self) -> Result<bool, StoreError> {
        let _lock = self.writes.lock().await;
        let mut engine = self.engine().scopes_only();
        let skipped = crate::load::replay_rules(self.store.as_ref(), &mut engine).await?;
        *self.engine.write() = engine;
        self.moved();
        Ok(skipped == 0)
    }

    /// Follows an approval another process made: rereads whether charger `id` is pending.
    pub async fn follow_approval(&self, id: &str) -> Result<(), StoreError> {
        let _lock = self.writes.lock().await;
        if self.store.charger_pending(id).await? {
            self.pending_chargers.write().insert(id.to_owned());
        } else {
            self.pending_chargers.write().remove(id);
        }
        self.moved();
        Ok(())
    }

    /// Follows card changes another process made: nothing here holds cards, but whatever
    /// follows this estate recomputes what it derives from them.
    pub fn follow_cards(&self) {
        self.moved();
    }

    /// Moves [`Estate::generation`] and wakes whoever waits for it.
    fn moved(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Trusts a charger that auto-registration left pending; answers whether it was pending.
    pub async fn approve_charger(&self, id: &str) -> Result<bool, ChangeError> {
        let _change = self.begin(Committed::ChargerApproved(id.to_owned())).await;
        let was_pending = self.store.charger_pending(id).await?;
        if !self.store.set_charger_pending(id, false).await? {
            return Err(ChangeError::NotFound(format!("charger `{id}` not found")));
        }
        self.pending_chargers.write().remove(id);
        Ok(was_pending)
    }

    /// Changes a charger's stored settings (password hash, security profile); `change` sees
    /// the current record and may refuse.
    pub async fn update_charger<E>(
        &self,
        id: &str,
        change: impl FnOnce(&mut ChargerRecord) -> Result<(), E>,
    ) -> Result<Result<ChargerRecord, E>, ChangeError> {
        let _change = self.begin(Committed::ChargerSettings).await;
        let Some(mut record) = self.store.charger(id).await? else {
            return Err(ChangeError::NotFound(format!("charger `{id}` not found")));
        };
        if let Err(err) = change(&mut record) {
            return Ok(Err(err));
        }
        self.store.put_charger(&record).await?;
        Ok(Ok(record))
    }

    /// Sets (`strict`, `lenient`) or clears a charger's own schema tolerance, a charger
    /// setting outside the engine; `applied` runs under the write lock once the store took it,
    /// so the caller's copy follows the store in the order the changes were made.
    pub async fn set_charger_schema_tolerance(
        &self,
        id: &str,
        tolerance: Option<&str>,
        applied: impl FnOnce(),
    ) -> Result<(), ChangeError> {
        let _change = self.begin(Committed::ChargerSettings).await;
        if !self
            .store
            .set_charger_schema_tolerance(id, tolerance)
            .await?
        {
            return Err(ChangeError::NotFound(format!("charger `{id}` not found")));
        }
        applied();
        Ok(())
    }

    /// Sets a charger's behaviour settings (post-boot sync, free vend), charger settings
    /// outside the engine. `next` computes the new settings under the write lock (so a change
    /// of one setting never undoes a concurrent change of the other); `applied` runs under it
    /// once the store took them, so the caller's copy follows the store in the order the
    /// changes were made.
    pub async fn set_charger_behaviour(
        &self,
        next: impl FnOnce() -> ChargerBehaviour,
        applied: impl FnOnce(),
    ) -> Result<(), ChangeError> {
        let _change = self.begin(Committed::ChargerSettings).await;
        let behaviour = next();
        if !self.store.set_charger_behaviour(&behaviour).await? {
            return Err(ChangeError::NotFound(format!(
                "charger `{}` not found",
                behaviour.id
            )));
        }
        applied();
        Ok(())
    }

    pub async fn set_module(&self, scope: &str, module: &str, on: bool) -> Result<(), ChangeError> {
        let _change = self.begin(Committed::Rules).await;
        self.engine().check_set_module(scope, module)?;
        self.store.set_module(scope, module, on).await?;
        self.apply(|engine| engine.set_module(scope, module, on));
        Ok(())
    }

    pub async fn add_principal(
        &self,
        record: &PrincipalRecord,
        kind: PrincipalKind,
    ) -> Result<(), ChangeError> {
        let _change = self.begin(Committed::Rules).await;
        self.engine()
            .check_add_principal(&record.id, kind, &record.home_scope)?;
        // A deleted principal's audit history keeps its id; the clash is answered as one with
        // a live principal, wherever either is, so it tells nothing of whose the id was.
        if self.store.principal_id_retired(&record.id).await? {
            return Err(PolicyError::DuplicatePrincipal(record.id.clone()).into());
        }
        self.store.put_principal(record).await?;
        self.apply(|engine| engine.add_principal(&record.id, kind, &record.home_scope));
        Ok(())
    }

    /// Deletes a principal with its tokens, id tokens and assignments.
    pub async fn remove_principal(&self, id: &str) -> Result<(), ChangeError> {
        let _change = self.begin(Committed::Rules).await;
        self.engine().check_principal(id)?;
        if !self.store.delete_principal(id).await? {
            return Err(ChangeError::NotFound(format!("principal `{id}` not found")));
        }
        self.apply(|engine| engine.remove_principal(id));
        Ok(())
    }

    pub async fn set_blocked(
        &self,
        id: &str,
        blocked: bool,
    ) -> Result<PrincipalRecord, ChangeError> {
        let _change = self.begin(Committed::Rules).await;
        self.engine().check_principal(id)?;
        if !self.store.set_principal_blocked(id, blocked).await? {
            return Err(ChangeError::NotFound(format!("principal `{id}` not found")));
        }
        self.apply(|engine| engine.set_blocked(id, blocked));
        self.store
            .principals()
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| ChangeError::NotFound(format!("principal `{id}` not found")))
    }

    pub async fn define_role(&self, record: &RoleRecord) -> Result<RoleDef, ChangeError> {
        let _change = self.begin(Committed::Rules).await;
        self.engine()
            .check_define_role(&record.id, &record.label, &record.permissions)?;
        self.store.put_role(record).await?;
        self.apply(|engine| engine.define_role(&record.id, &record.label, &record.permissions));
        self.engine()
            .role(&record.id)
            .cloned()
            .ok_or_else(|| ChangeError::NotFound(format!("role `{}` not found", record.id)))
    }

    pub async fn assign(&self, record: &AssignmentRecord) -> Result<(), ChangeError> {
        let _change = self.begin(Committed::Rules).await;
        {
            let engine = self.engine();
            engine.check_assign(&record.principal, &record.role, &record.scope)?;
            if engine.holds(&record.principal, &record.role, &record.scope) {
                return Err(already_holds(record));
            }
        }
        if !self.store.add_assignment(record).await? {
            return Err(already_holds(record));
        }
        self.apply(|engine| engine.assign(&record.principal, &record.role, &record.scope));
        Ok(())
    }

    /// Removes an assignment; `false` when it was not held.
    pub async fn unassign(&self, record: &AssignmentRecord) -> Result<bool, ChangeError> {
        let _change = self.begin(Committed::Rules).await;
        let removed = self.store.remove_assignment(record).await?;
        if removed {
            self.apply(|engine| {
                engine
                    .unassign(&record.principal, &record.role, &record.scope)
                    .map(|_| ())
            });
        }
        Ok(removed)
    }

    /// Registers a card for its principal: the engine decides whether the principal's tenant
    /// may claim the text (and type), given every stored card of that text.
    pub async fn add_id_token(&self, record: &IdTokenRecord) -> Result<(), ChangeError> {
        let _change = self.begin(Committed::Cards).await;
        self.engine().check_principal(&record.principal)?;
        let existing = self.cards_named(&record.id_token).await?;
        self.engine().check_claim_card(
            &record.principal,
            &record.id_token,
            record.token_type.as_deref(),
            &claims(&existing),
        )?;
        self.store.put_id_token(record).await?;
        Ok(())
    }

    /// Reads, changes and writes `principal`'s card `token` as one step; a change of type is
    /// a new claim in the tenant, decided as [`Estate::add_id_token`] decides one.
    pub async fn update_id_token(
        &self,
        principal: &str,
        token: &str,
        change: impl FnOnce(&mut IdTokenRecord),
    ) -> Result<IdTokenRecord, ChangeError> {
        let _change = self.begin(Committed::Cards).await;
        let mut named = self.cards_named(token).await?;
        let Some(at) = named
            .iter()
            .position(|card| card.principal == principal && card.id_token == token)
        else {
            return Err(ChangeError::NotFound(format!(
                "id token `{token}` not found"
            )));
        };
        let mut record = named.swap_remove(at);
        let token_type = record.token_type.clone();
        change(&mut record);
        if record.token_type != token_type {
            self.engine().check_claim_card(
                principal,
                token,
                record.token_type.as_deref(),
                &claims(&named),
            )?;
        }
        self.store.put_id_token(&record).await?;
        Ok(record)
    }

    /// Forgets `principal`'s card `token`; `false` when there was none.
    pub async fn delete_id_token(&self, principal: &str, token: &str) -> Result<bool, ChangeError> {
        let _change = self.begin(Committed::Cards).await;
        Ok(self.store.delete_id_token(principal, token).await?)
    }

    async fn cards_named(&self, token: &str) -> Result<Vec<IdTokenRecord>, StoreError> {
        self.store.id_tokens_named(token, token).await
    }

    /// Direct engine access, bypassing the store, for unit tests that set up an estate.
    #[cfg(feature = "testing")]
    pub fn engine_mut(&self) -> crate::EngineWrite<'_> {
        self.engine.write()
    }
}

fn claims(cards: &[IdTokenRecord]) -> Vec<CardClaim<'_>> {
    cards
        .iter()
        .map(|card| CardClaim {
            principal: &card.principal,
            token_type: card.token_type.as_deref(),
            exact: true,
        })
        .collect()
}

fn already_holds(record: &AssignmentRecord) -> ChangeError {
    ChangeError::Conflict(format!(
        "{} already holds role {} on {}",
        record.principal, record.role, record.scope
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Two estates over one in-memory store: two gateway nodes on one database.
    async fn two_estates_over_one_store() -> (Estate, Estate) {
        two_estates_with("connect").await
    }

    async fn two_estates_with(preset: &str) -> (Estate, Estate) {
        let store = voltgate_store::open("sqlite::memory:").await.unwrap();
        let preset = voltgate_policy::Preset::builtin(preset).unwrap();
        let load = || crate::load_engine(store.as_ref(), preset.clone());
        let one = Estate::new(store.clone(), load().await.unwrap());
        let two = Estate::new(store.clone(), load().await.unwrap());
        (one, two)
    }

    /// Every change committed through `estate` from now on, as its commit hook hears them.
    fn hear_commits(estate: &Estate) -> Arc<parking_lot::Mutex<Vec<Committed>>> {
        let heard = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let hook_heard = heard.clone();
        assert!(estate
            .set_commit_hook(Box::new(move |_, committed| {
                hook_heard.lock().push(committed.clone())
            }))
            .is_ok());
        heard
    }

    /// Two estates over one store stand for two gateway nodes: a change through one reaches
    /// the other only by `reload`, which is not counted as that estate's own commit, while the
    /// commit hook hears every change made through its estate.
    #[tokio::test]
    async fn a_reload_brings_in_what_another_estate_committed_and_is_not_a_commit() {
        let (one, two) = two_estates_over_one_store().await;
        let heard = Arc::new(AtomicU64::new(0));
        let hook_heard = heard.clone();
        assert!(one
            .set_commit_hook(Box::new(
                move |count, _| hook_heard.store(count, Ordering::SeqCst)
            ))
            .is_ok());
        assert!(
            one.set_commit_hook(Box::new(|_, _| {})).is_err(),
            "one hook only"
        );

        one.add_scope(&ScopeRecord {
            id: "site-a".into(),
            kind: "site".into(),
            parent: None,
            name: None,
        })
        .await
        .unwrap();
        assert_eq!(heard.load(Ordering::SeqCst), 1);
        assert_eq!(one.commits(), 1);
        assert_eq!(two.engine().scope_kind("site-a"), None);

        let generation = two.generation();
        two.reload().await.unwrap();
        assert_eq!(two.engine().scope_kind("site-a"), Some("site"));
        assert_eq!(two.commits(), 0, "a reload is no commit of its own");
        assert!(two.generation() > generation, "followers are woken");
    }

    /// A registration is announced as one, and a follower takes it over from the store's
    /// record alone; what it cannot take over that way it says so, to be reloaded instead.
    #[tokio::test]
    async fn a_follower_adopts_a_registered_charger_without_a_reload() {
        let (one, two) = two_estates_over_one_store().await;
        let heard = hear_commits(&one);
        let site = ScopeRecord {
            id: "site-a".into(),
            kind: "site".into(),
            parent: None,
            name: None,
        };
        one.add_scope(&site).await.unwrap();
        two.reload().await.unwrap();
        let charger = |id: &str, pending| ChargerRecord {
            id: id.into(),
            scope: "site-a".into(),
            password_hash: None,
            security_profile: 0,
            pending,
        };
        one.register_charger(&charger("CP-1", true)).await.unwrap();
        assert!(one.register_charger(&charger("CP-1", true)).await.is_err());
        assert_eq!(
            *heard.lock(),
            [
                Committed::ScopeAdded(site.clone()),
                Committed::ChargerRegistered(Registration::stored("CP-1")),
                Committed::Nothing
            ],
            "a refused registration is no registration"
        );

        let generation = two.generation();
        assert!(two
            .adopt_chargers(&[Registration::stored("CP-1")])
            .await
            .unwrap());
        assert_eq!(two.engine().scope_kind("CP-1"), Some(STATION_KIND));
        assert!(two.charger_pending("CP-1"));
        assert_eq!(
            two.generation(),
            generation,
            "a new charger changes no answer about anything else"
        );
        assert!(
            two.adopt_chargers(&[Registration::stored("CP-1")])
                .await
                .unwrap(),
            "twice is harmless"
        );
        assert!(!two
            .adopt_chargers(&[Registration::stored("CP-GONE")])
            .await
            .unwrap());

        // A charger under a scope this follower has not heard of yet: reload instead.
        one.add_scope(&ScopeRecord {
            id: "site-b".into(),
            ..site.clone()
        })
        .await
        .unwrap();
        one.register_charger(&ChargerRecord {
            scope: "site-b".into(),
            ..charger("CP-2", false)
        })
        .await
        .unwrap();
        assert!(!two
            .adopt_chargers(&[Registration::stored("CP-2")])
            .await
            .unwrap());
        assert_eq!(two.engine().scope_kind("CP-2"), None);

        // A charger registered trusted is announced with its scope and followed from that
        // alone: the store is not asked (for CP-3 it would answer that there is no such
        // charger), while a pending registration is read from the store.
        let trusted = |id: &str| Registration {
            id: id.into(),
            trusted_under: Some("site-b".into()),
        };
        assert_eq!(
            heard.lock().last(),
            Some(&Committed::ChargerRegistered(trusted("CP-2")))
        );
        assert!(
            two.adopt_scopes(&[ScopeRecord {
                id: "site-b".into(),
                ..site
            }])
            .await
        );
        assert!(two
            .adopt_chargers(&[trusted("CP-2"), trusted("CP-3")])
            .await
            .unwrap());
        assert_eq!(two.engine().scope_kind("CP-2"), Some(STATION_KIND));
        assert_eq!(two.engine().scope_kind("CP-3"), Some(STATION_KIND));
        assert!(!two.charger_pending("CP-2"));
    }

    /// What an engine answers about `principals` at `scopes`, line by line: every action's
    /// check and visibility, each principal's kind, block and roles held, each scope's kind
    /// and modules. Two engines that answer alike here hold the same estate.
    fn answers(engine: &Engine, principals: &[&str], scopes: &[&str]) -> Vec<String> {
        let mut lines = Vec::new();
        let roles: Vec<String> = engine.roles().map(|r| format!("{r:?}")).collect();
        lines.push(format!("roles {roles:?}"));
        let modules: Vec<String> = engine.preset().modules().map(|m| m.id.clone()).collect();
        for scope in scopes {
            let on: Vec<_> = modules
                .iter()
                .map(|m| engine.module_on(scope, m).ok())
                .collect();
            lines.push(format!("{scope}: {:?} {on:?}", engine.scope_kind(scope)));
        }
        for principal in principals {
            lines.push(format!(
                "{principal}: {:?} blocked {:?}",
                engine.principal_kind(principal),
                engine.is_blocked(principal)
            ));
            for scope in scopes {
                let resource = voltgate_policy::Resource::Scope((*scope).to_owned());
                let held: Vec<&str> = engine
                    .roles()
                    .filter(|r| engine.holds(principal, &r.id, scope))
                    .map(|r| r.id.as_str())
                    .collect();
                let checks: Vec<bool> = voltgate_policy::Action::ALL
                    .iter()
                    .map(|action| engine.check(principal, *action, &resource))
                    .collect();
                lines.push(format!(
                    "{principal} at {scope}: holds {held:?} sees {} checks {checks:?}",
                    engine.can_see(principal, &resource)
                ));
            }
        }
        lines
    }

    /// Follows one committed change the way a gateway node does, without a full reload.
    async fn follow(follower: &Estate, committed: &Committed) {
        match committed {
            Committed::ScopeAdded(scope) => {
                assert!(follower.adopt_scopes(std::slice::from_ref(scope)).await);
            }
            Committed::ChargerRegistered(registration) => {
                assert!(follower
                    .adopt_chargers(std::slice::from_ref(registration))
                    .await
                    .unwrap());
            }
            Committed::Rules => assert!(follower.reload_rules().await.unwrap()),
            Committed::ChargerApproved(id) => follower.follow_approval(id).await.unwrap(),
            Committed::Cards => follower.follow_cards(),
            Committed::ChargerSettings | Committed::Nothing => {}
            Committed::Other => panic!("a change that needs a full reload"),
        }
    }

    /// Every kind of change a follower follows alone leaves it with the engine a full load
    /// of the store builds, and never needs a reload.
    #[tokio::test]
    async fn a_follower_holds_every_kind_of_change_without_a_full_reload() {
        let (one, two) = two_estates_over_one_store().await;
        let heard = hear_commits(&one);
        let scope = |id: &str, kind: &str, parent: Option<&str>| ScopeRecord {
            id: id.into(),
            kind: kind.into(),
            parent: parent.map(str::to_owned),
            name: None,
        };
        one.add_scope(&scope("site-a", "site", None)).await.unwrap();
        one.add_scope(&scope("site-b", "site", None)).await.unwrap();
        assert!(one.add_scope(&scope("site-a", "site", None)).await.is_err());
        let charger = |id: &str, site: &str, pending| ChargerRecord {
            id: id.into(),
            scope: site.into(),
            password_hash: None,
            security_profile: 0,
            pending,
        };
        one.register_charger(&charger("CP-1", "site-a", true))
            .await
            .unwrap();
        one.register_charger(&charger("CP-2", "site-b", false))
            .await
            .unwrap();
        let principal = |id: &str, kind: &str, home: &str| PrincipalRecord {
            id: id.into(),
            kind: kind.into(),
            home_scope: home.into(),
            name: id.into(),
            blocked: false,
        };
        one.add_principal(
            &principal("dina", "driver", "site-a"),
            PrincipalKind::Driver,
        )
        .await
        .unwrap();
        one.add_principal(
            &principal("olga", "operator", "site-b"),
            PrincipalKind::Operator,
        )
        .await
        .unwrap();
        one.add_principal(
            &principal("gone", "driver", "site-b"),
            PrincipalKind::Driver,
        )
        .await
        .unwrap();
        one.define_role(&RoleRecord {
            id: "plugger".into(),
            label: "Plugger".into(),
            permissions: vec!["charge-at-sites".into()],
        })
        .await
        .unwrap();
        let assignment = |principal: &str, role: &str, scope: &str| AssignmentRecord {
            principal: principal.into(),
            role: role.into(),
            scope: scope.into(),
        };
        one.assign(&assignment("dina", "plugger", "site-a"))
            .await
            .unwrap();
        one.assign(&assignment("dina", "plugger", "site-b"))
            .await
            .unwrap();
        one.assign(&assignment("gone", "plugger", "CP-2"))
            .await
            .unwrap();
        assert!(one
            .unassign(&assignment("dina", "plugger", "site-b"))
            .await
            .unwrap());
        one.set_blocked("olga", true).await.unwrap();
        one.remove_principal("gone").await.unwrap();
        one.add_id_token(&IdTokenRecord {
            id_token: "CARD-1".into(),
            principal: "dina".into(),
            blocked: false,
            expires_at: None,
            group: None,
            token_type: None,
        })
        .await
        .unwrap();
        assert!(one.approve_charger("CP-1").await.unwrap());

        let committed = heard.lock().clone();
        assert!(
            !committed.contains(&Committed::Other),
            "no change here needs a full reload: {committed:?}"
        );
        for change in &committed {
            let generation = two.generation();
            follow(&two, change).await;
            assert_eq!(
                two.generation() > generation,
                change.may_change_standing_answers(),
                "{change:?} moves the generation exactly when it may change an answer"
            );
        }
        let loaded = crate::load_engine(
            one.store().as_ref(),
            voltgate_policy::Preset::builtin("connect").unwrap(),
        )
        .await
        .unwrap();
        let principals = ["dina", "olga", "gone", "admin"];
        let scopes = ["root", "site-a", "site-b", "CP-1", "CP-2"];
        assert_eq!(
            answers(&two.engine(), &principals, &scopes),
            answers(&loaded, &principals, &scopes)
        );
        assert!(!two.charger_pending("CP-1"), "the approval was followed");
        let dina_here = voltgate_policy::Resource::Scope("CP-1".into());
        assert!(two
            .engine()
            .check("dina", voltgate_policy::Action::Charge, &dina_here));
        assert_eq!(two.engine().is_blocked("olga"), Some(true));
        assert_eq!(two.engine().principal_kind("gone"), None);
    }

    /// Module settings are rules too: a follower that replays them holds what a full load
    /// holds, including a setting switched back off.
    #[tokio::test]
    async fn a_follower_replays_module_settings() {
        let (one, two) = two_estates_with("virta").await;
        one.add_scope(&ScopeRecord {
            id: "org".into(),
            kind: "organisation".into(),
            parent: None,
            name: None,
        })
        .await
        .unwrap();
        two.reload().await.unwrap();
        let modules: Vec<String> = one
            .engine()
            .preset()
            .modules()
            .map(|m| m.id.clone())
            .collect();
        let mut switched = Vec::new();
        for module in &modules {
            if one.set_module("org", module, true).await.is_ok() {
                switched.push(module.clone());
            }
        }
        assert!(switched.len() >= 2, "modules switch at an organisation");
        one.set_module("org", &switched[0], false).await.unwrap();
        assert!(two.reload_rules().await.unwrap());
        let loaded = crate::load_engine(
            one.store().as_ref(),
            voltgate_policy::Preset::builtin("virta").unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(
            answers(&two.engine(), &[], &["root", "org"]),
            answers(&loaded, &[], &["root", "org"])
        );
        assert!(!two.engine().module_on("org", &switched[0]).unwrap());
        assert!(two.engine().module_on("org", &switched[1]).unwrap());
        one.set_module("org", &switched[1], false).await.unwrap();
        assert!(two.reload_rules().await.unwrap());
        assert!(
            !two.engine().module_on("org", &switched[1]).unwrap(),
            "switched back off"
        );
    }

    /// A rule naming a scope the follower has not followed yet (its notice still on the way
    /// from another node) cannot be replayed: the follower is told, to reload instead, and
    /// the reload places it.
    #[tokio::test]
    async fn rules_on_a_scope_not_followed_yet_ask_for_a_reload() {
        let (one, two) = two_estates_over_one_store().await;
        one.add_scope(&ScopeRecord {
            id: "site-late".into(),
            kind: "site".into(),
            parent: None,
            name: None,
        })
        .await
        .unwrap();
        one.add_principal(
            &PrincipalRecord {
                id: "lena".into(),
                kind: "driver".into(),
                home_scope: "site-late".into(),
                name: "lena".into(),
                blocked: false,
            },
            PrincipalKind::Driver,
        )
        .await
        .unwrap();
        assert!(!two.reload_rules().await.unwrap(), "lena's home is unknown");
        assert_eq!(two.engine().principal_kind("lena"), None);
        two.reload().await.unwrap();
        assert_eq!(
            two.engine().principal_kind("lena"),
            Some(PrincipalKind::Driver)
        );
    }
}
