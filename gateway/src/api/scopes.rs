//! `/api/v1/scopes`: the scope tree (tenants, sites, organisations, …) and module switches.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use voltgate_policy::{Action, DenialCode};
use voltgate_store::ScopeRecord;

use super::authorize::{authorize, grant, refuse, visible, Grant, Target};
use super::error::ApiError;
use super::extract::{check_id, Caller, RequestId, StrictJson, StrictPath, StrictQuery};
use crate::state::SharedState;
use voltgate_policy::{ROOT_SCOPE_ID, STATION_KIND};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewScope {
    pub id: String,
    pub kind: String,
    pub parent: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ScopeView {
    pub id: String,
    pub kind: String,
    pub parent: Option<String>,
    pub name: Option<String>,
}

impl From<ScopeRecord> for ScopeView {
    fn from(s: ScopeRecord) -> Self {
        ScopeView {
            id: s.id,
            kind: s.kind,
            parent: s.parent,
            name: s.name,
        }
    }
}

pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(body): StrictJson<NewScope>,
) -> Result<(StatusCode, Json<ScopeView>), ApiError> {
    check_id("scope", &body.id)?;
    if body.kind == STATION_KIND {
        return Err(ApiError::invalid_body(
            "stations are chargers: create them with POST /api/v1/chargers",
        ));
    }
    if body.kind == ROOT_SCOPE_ID {
        return Err(ApiError::invalid_body("there is exactly one root scope"));
    }
    {
        let engine = state.estate.engine();
        if !engine.preset().kinds().any(|k| k.id == body.kind) {
            let kinds: Vec<&str> = engine.preset().kinds().map(|k| k.id.as_str()).collect();
            return Err(ApiError::invalid_body(format!(
                "unknown scope kind `{}`; this preset has: {}",
                body.kind,
                kinds.join(", ")
            )));
        }
    }
    let grant = authorize(
        &state,
        &caller,
        Action::ScopeEdit,
        &Target::Scope(body.parent.clone()),
        &request_id,
    )
    .await?;
    let result = insert_scope(&state, body).await;
    grant.finish_with(&state, result).await
}

async fn insert_scope(
    state: &SharedState,
    body: NewScope,
) -> Result<(StatusCode, Json<ScopeView>), ApiError> {
    let record = ScopeRecord {
        id: body.id,
        kind: body.kind,
        parent: Some(body.parent),
        name: body.name,
    };
    state.estate.add_scope(&record).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeQuery {
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ScopeList {
    pub scopes: Vec<ScopeView>,
}

/// Every stored scope the caller can see, optionally of one kind.
pub(crate) async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    StrictQuery(query): StrictQuery<ScopeQuery>,
) -> Result<Json<ScopeList>, ApiError> {
    let records = state.store.scopes().await?;
    let visible: std::collections::HashSet<String> = state
        .estate
        .engine()
        .visible_scopes(&caller.id, query.kind.as_deref())
        .into_iter()
        .map(str::to_owned)
        .collect();
    let scopes = records
        .into_iter()
        .filter(|s| visible.contains(&s.id))
        .map(ScopeView::from)
        .collect();
    Ok(Json(ScopeList { scopes }))
}

/// `GET /api/v1/scopes/{id}`: one scope the caller sees (the list's rule), without reading
/// the rest of the estate; an unknown or invisible scope is the same 404.
pub(crate) async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    StrictPath(id): StrictPath<String>,
) -> Result<Json<ScopeView>, ApiError> {
    let unknown = || ApiError::not_found(format!("scope `{id}` not found"));
    if !visible(&state, &caller, &Target::Scope(id.clone())) {
        return Err(unknown());
    }
    let record = state.store.scope(&id).await?.ok_or_else(unknown)?;
    Ok(Json(record.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModuleSwitch {
    pub on: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct ModuleView {
    pub scope: String,
    pub module: String,
    pub on: bool,
}

/// `PUT /api/v1/scopes/{id}/modules/{module}`: switch a feature module on or off for a scope
/// and everything below it (unless switched again lower down).
pub(crate) async fn set_module(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath((scope, module)): StrictPath<(String, String)>,
    StrictJson(body): StrictJson<ModuleSwitch>,
) -> Result<Json<ModuleView>, ApiError> {
    let grant = module_grant(&state, &caller, &scope, &module, body.on, &request_id).await?;
    let result = apply_module(&state, scope, module, body.on).await;
    grant.finish_with(&state, result).await
}

/// The engine's module rule ([`voltgate_policy::Engine::can_set_module`]), audited: 404 for an
/// invisible scope, 422 where the module cannot be switched, 403 otherwise.
async fn module_grant(
    state: &SharedState,
    caller: &Caller,
    scope: &str,
    module: &str,
    on: bool,
    request_id: &RequestId,
) -> Result<Grant, ApiError> {
    let action = Action::ModuleEdit.as_str();
    let target = Target::Scope(scope.to_owned());
    let verdict = if visible(state, caller, &target) {
        Some(
            state
                .estate
                .engine()
                .can_set_module(&caller.id, scope, module, on),
        )
    } else {
        None
    };
    state
        .metrics
        .authz_decision(action, matches!(verdict, Some(Ok(()))));
    let (reason, outcome, err) = match verdict {
        Some(Ok(())) => {
            let reason = format!("{} may switch module {module} at {scope}", caller.id);
            let label = crate::audit::scope_label(scope);
            return Ok(grant(caller, action, &label, &reason, request_id));
        }
        None => (
            format!("{scope} does not exist or is not visible to {}", caller.id),
            "not_found",
            ApiError::not_found(format!("scope `{scope}` not found")),
        ),
        Some(Err(denial)) => {
            let err = match denial.code {
                DenialCode::UnknownScope | DenialCode::UnknownModule => {
                    ApiError::not_found(denial.reason.clone())
                }
                DenialCode::NotSwitchableHere | DenialCode::ParentLacksModule => {
                    ApiError::invalid_body(denial.reason.clone())
                }
                _ => ApiError::forbidden(denial.reason.clone()),
            };
            (denial.reason, "refused", err)
        }
    };
    let label = crate::audit::scope_label(scope);
    refuse(state, caller, action, &label, &reason, outcome, request_id).await;
    Err(err)
}

async fn apply_module(
    state: &SharedState,
    scope: String,
    module: String,
    on: bool,
) -> Result<Json<ModuleView>, ApiError> {
    let known = state
        .estate
        .engine()
        .preset()
        .modules()
        .any(|m| m.id == module);
    if !known {
        return Err(ApiError::not_found(format!(
            "this preset has no module `{module}`"
        )));
    }
    state.estate.set_module(&scope, &module, on).await?;
    Ok(Json(ModuleView { scope, module, on }))
}
