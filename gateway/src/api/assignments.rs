//! `/api/v1/assignments`: giving and taking roles, checked with the engine's grant rules
//! (who may assign which role where, and no handing out permissions one does not hold).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use voltgate_policy::{Action, PrincipalKind, Resource};
use voltgate_store::AssignmentRecord;

use super::authorize::{grant, refuse, visible, Grant, Target};
use super::error::ApiError;
use super::extract::{Caller, RequestId, StrictJson, StrictQuery};
use crate::state::SharedState;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignmentBody {
    pub principal: String,
    pub role: String,
    pub scope: String,
}

impl AssignmentBody {
    fn record(&self) -> AssignmentRecord {
        AssignmentRecord {
            principal: self.principal.clone(),
            role: self.role.clone(),
            scope: self.scope.clone(),
        }
    }

    /// How the assignment is named in audit records.
    fn label(&self) -> String {
        crate::audit::assignment_label(&self.principal, &self.role, &self.scope)
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Removed {
    pub removed: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct AssignmentList {
    pub assignments: Vec<AssignmentRecord>,
}

enum Change {
    Assign,
    Unassign,
}

/// 404 unless the caller sees both the principal and the scope; 422 for an unknown role.
async fn check_targets(
    state: &SharedState,
    caller: &Caller,
    body: &AssignmentBody,
    request_id: &RequestId,
) -> Result<(), ApiError> {
    let problem = if !visible(state, caller, &Target::Principal(body.principal.clone())) {
        Some(ApiError::not_found(format!(
            "principal `{}` not found",
            body.principal
        )))
    } else if !visible(state, caller, &Target::Scope(body.scope.clone())) {
        Some(ApiError::not_found(format!(
            "scope `{}` not found",
            body.scope
        )))
    } else {
        None
    };
    if let Some(err) = problem {
        let reason = format!("{} is not visible to {}", body.label(), caller.id);
        refuse(
            state,
            caller,
            Action::RoleAssign.as_str(),
            &body.label(),
            &reason,
            "not_found",
            request_id,
        )
        .await;
        return Err(err);
    }
    let role_known = state.estate.engine().role(&body.role).is_some();
    if !role_known {
        return Err(ApiError::invalid_body(format!(
            "unknown role `{}`",
            body.role
        )));
    }
    Ok(())
}

async fn check_grant_rule(
    state: &SharedState,
    caller: &Caller,
    body: &AssignmentBody,
    change: &Change,
    request_id: &RequestId,
) -> Result<Grant, ApiError> {
    let verdict = {
        let engine = state.estate.engine();
        let held = engine.holds(&body.principal, &body.role, &body.scope);
        match change {
            Change::Unassign if held => {
                engine.can_unassign(&caller.id, &body.principal, &body.role, &body.scope)
            }
            // Removing what is not held changes nothing, but only someone who could hold
            // that authority learns so: the assignment rule decides.
            Change::Assign | Change::Unassign => {
                engine.can_assign(&caller.id, &body.principal, &body.role, &body.scope)
            }
        }
    };
    let action = Action::RoleAssign.as_str();
    match verdict {
        Ok(()) => {
            state.metrics.authz_decision(action, true);
            let verb = match change {
                Change::Assign => "assign",
                Change::Unassign => "remove",
            };
            let reason = format!(
                "{} may {verb} role {} for {} on {} under the preset's grant rules",
                caller.id, body.role, body.principal, body.scope
            );
            Ok(grant(caller, action, &body.label(), &reason, request_id))
        }
        Err(denial) => {
            state.metrics.authz_decision(action, false);
            let reason = denial.reason;
            refuse(
                state,
                caller,
                action,
                &body.label(),
                &reason,
                "refused",
                request_id,
            )
            .await;
            Err(ApiError::forbidden(reason))
        }
    }
}

/// `POST /api/v1/assignments`.
pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(body): StrictJson<AssignmentBody>,
) -> Result<(StatusCode, Json<AssignmentRecord>), ApiError> {
    check_targets(&state, &caller, &body, &request_id).await?;
    let grant = check_grant_rule(&state, &caller, &body, &Change::Assign, &request_id).await?;
    let result = assign(&state, &body).await;
    grant.finish_with(&state, result).await
}

async fn assign(
    state: &SharedState,
    body: &AssignmentBody,
) -> Result<(StatusCode, Json<AssignmentRecord>), ApiError> {
    let record = body.record();
    state.estate.assign(&record).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// `DELETE /api/v1/assignments` with the same body; `{"removed": false}` when the principal
/// did not hold the role there.
pub(crate) async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(body): StrictJson<AssignmentBody>,
) -> Result<Json<Removed>, ApiError> {
    check_targets(&state, &caller, &body, &request_id).await?;
    let grant = check_grant_rule(&state, &caller, &body, &Change::Unassign, &request_id).await?;
    let result = unassign(&state, &body).await;
    let outcome = match &result {
        Ok(Json(Removed { removed: true })) => "ok".to_owned(),
        Ok(Json(Removed { removed: false })) => "not_held".to_owned(),
        Err(err) => format!("failed: {}", err.code),
    };
    grant.finish(&state, &outcome).await;
    result
}

async fn unassign(state: &SharedState, body: &AssignmentBody) -> Result<Json<Removed>, ApiError> {
    let removed = state.estate.unassign(&body.record()).await?;
    Ok(Json(Removed { removed }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignmentQuery {
    #[serde(default)]
    pub principal: Option<String>,
}

/// Assignments of principals the caller may view, on scopes it can see.
pub(crate) async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    StrictQuery(query): StrictQuery<AssignmentQuery>,
) -> Result<Json<AssignmentList>, ApiError> {
    let records = state.store.assignments().await?;
    let engine = state.estate.engine();
    let assignments = records
        .into_iter()
        .filter(|a| query.principal.as_ref().is_none_or(|p| *p == a.principal))
        .filter(|a| {
            let principal_visible = a.principal == caller.id
                || match engine.principal_kind(&a.principal) {
                    Some(PrincipalKind::Driver) => engine.check(
                        &caller.id,
                        Action::DriverView,
                        &Resource::Principal(a.principal.clone()),
                    ),
                    Some(_) => engine.check(
                        &caller.id,
                        Action::PrincipalView,
                        &Resource::Principal(a.principal.clone()),
                    ),
                    None => false,
                };
            principal_visible && engine.can_see(&caller.id, &Resource::Scope(a.scope.clone()))
        })
        .collect();
    Ok(Json(AssignmentList { assignments }))
}
