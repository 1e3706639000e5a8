//! `POST /api/v1/authz/explain`: why a principal may or may not do something.
//!
//! Anyone may explain their own decisions; explaining someone else's needs `principal.view`
//! (or `driver.view` for drivers) on them. The resource must be visible to the caller too,
//! so the answer never reveals what the caller cannot see.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use voltgate_policy::{Action, PrincipalKind, Resource};

use super::authorize::{authorize, grant, visible, Target};
use super::error::ApiError;
use super::extract::{Caller, RequestId, StrictJson};
use crate::policy_cli::{parse_resource, resource_label};
use crate::state::SharedState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainBody {
    pub principal: String,
    pub action: String,
    /// A scope or charger id (optionally `scope:ID`) or `principal:ID`.
    pub resource: String,
}

pub(crate) async fn explain(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(body): StrictJson<ExplainBody>,
) -> Result<Json<Value>, ApiError> {
    let action: Action = body.action.parse().map_err(|_| {
        ApiError::invalid_body(format!("`{}` is not an engine action", body.action))
    })?;
    let resource = parse_resource(&body.resource);
    let label = resource_label(&resource);
    let grant = if body.principal == caller.id {
        grant(
            &caller,
            Action::PrincipalView.as_str(),
            &Target::Principal(body.principal.clone()).label(),
            "a principal may always have its own decisions explained",
            &request_id,
        )
    } else {
        let kind = state.estate.engine().principal_kind(&body.principal);
        let view = match kind {
            Some(PrincipalKind::Driver) => Action::DriverView,
            _ => Action::PrincipalView,
        };
        authorize(
            &state,
            &caller,
            view,
            &Target::Principal(body.principal.clone()),
            &request_id,
        )
        .await?
    };
    let target = match &resource {
        Resource::Scope(id) => Target::Scope(id.clone()),
        Resource::Principal(id) => Target::Principal(id.clone()),
    };
    let decision = visible(&state, &caller, &target).then(|| {
        state
            .estate
            .engine()
            .explain_for(&caller.id, &body.principal, action, &resource)
    });
    let Some(decision) = decision else {
        let err = ApiError::not_found(format!("resource `{label}` not found"));
        return grant.finish_with(&state, Err(err)).await;
    };
    let evidence = serde_json::to_value(&decision.evidence)
        .map_err(|err| ApiError::internal(format!("evidence could not be rendered: {err}")))?;
    let answer = serde_json::json!({
        "principal": body.principal,
        "action": action.as_str(),
        "resource": label,
        "allowed": decision.allowed,
        "reason": decision.reason,
        "evidence": evidence,
    });
    grant.finish_with(&state, Ok(Json(answer))).await
}
