//! Turning one API request into one role-engine decision, and that decision into an audit
//! record and, when refused, a 404 or 403.
//!
//! A target the caller cannot see (or that does not exist) is a 404 with the same message
//! either way, so the API never reveals what is invisible. A visible target the engine
//! refuses is a 403 with the engine's one-sentence reason. Both are audited at once; an
//! allowed decision is audited when the handler finishes, together with its outcome.

use voltgate_policy::{Action, Resource};

use super::error::ApiError;
use super::extract::{Caller, RequestId};
use crate::audit;
use crate::decision::{decide, Decided};
use crate::state::AppState;
use voltgate_policy::{ROOT_SCOPE_ID, STATION_KIND};

/// What a request acts on.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Scope(String),
    Charger(String),
    Principal(String),
}

impl Target {
    pub(crate) fn resource(&self) -> Resource {
        match self {
            Target::Scope(id) | Target::Charger(id) => Resource::Scope(id.clone()),
            Target::Principal(id) => Resource::Principal(id.clone()),
        }
    }

    /// How the target is written in audit records and in `resource` fields of the API.
    pub(crate) fn label(&self) -> String {
        match self {
            Target::Scope(id) | Target::Charger(id) => audit::scope_label(id),
            Target::Principal(id) => audit::principal_label(id),
        }
    }

    fn not_found(&self) -> ApiError {
        match self {
            Target::Scope(id) => ApiError::not_found(format!("scope `{id}` not found")),
            Target::Charger(id) => ApiError::not_found(format!("charger `{id}` not found")),
            Target::Principal(id) => ApiError::not_found(format!("principal `{id}` not found")),
        }
    }
}

/// An allowed decision whose audit record is written by [`Grant::finish`].
#[must_use = "an allowed decision must be finished so it reaches the audit log"]
pub(crate) struct Grant {
    principal: String,
    action: String,
    resource: String,
    reason: String,
    request_id: String,
}

impl Grant {
    pub(crate) async fn finish(self, state: &AppState, outcome: &str) {
        audit::record(
            state,
            audit::entry(
                &self.principal,
                &self.action,
                &self.resource,
                true,
                &self.reason,
                Some(outcome.to_owned()),
                Some(&self.request_id),
            ),
        )
        .await;
    }

    /// Finishes with the outcome of `result` (`ok` or the error's machine code) and passes
    /// the result through.
    pub(crate) async fn finish_with<T>(
        self,
        state: &AppState,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(err) => format!("failed: {}", err.code),
        };
        self.finish(state, &outcome).await;
        result
    }
}

/// Whether the target exists and the caller can see it (no audit, no metric).
pub(crate) fn visible(state: &AppState, caller: &Caller, target: &Target) -> bool {
    sees(&state.estate.engine(), caller, target)
}

/// The target exists and the engine lets the caller see it (drivers only with `driver.view`).
fn sees(engine: &voltgate_policy::Engine, caller: &Caller, target: &Target) -> bool {
    exists(engine, target) && engine.can_see(&caller.id, &target.resource())
}

fn exists(engine: &voltgate_policy::Engine, target: &Target) -> bool {
    match target {
        Target::Scope(id) => engine.scope_kind(id).is_some(),
        Target::Charger(id) => engine.scope_kind(id) == Some(STATION_KIND),
        Target::Principal(id) => engine.principal_kind(id).is_some(),
    }
}

/// Asks the engine whether `caller` may do `action` on `target`.
pub(crate) async fn authorize(
    state: &AppState,
    caller: &Caller,
    action: Action,
    target: &Target,
    request_id: &RequestId,
) -> Result<Grant, ApiError> {
    let resource = target.resource();
    let visible = sees(&state.estate.engine(), caller, target);
    let label = target.label();
    match decide(
        state,
        &caller.id,
        action,
        &resource,
        visible,
        &label,
        Some(request_id.as_str()),
    )
    .await
    {
        Decided::Allowed { reason } => Ok(Grant {
            principal: caller.id.clone(),
            action: action.as_str().to_owned(),
            resource: label,
            reason,
            request_id: request_id.0.clone(),
        }),
        Decided::Hidden => Err(target.not_found()),
        Decided::Refused { reason } => Err(ApiError::forbidden(reason)),
    }
}

/// For estate-wide objects (roles): the engine's decision on the root, where not seeing
/// the root is simply a denial (403), never a 404.
pub(crate) async fn authorize_global(
    state: &AppState,
    caller: &Caller,
    action: Action,
    request_id: &RequestId,
) -> Result<Grant, ApiError> {
    let root = Resource::Scope(ROOT_SCOPE_ID.to_owned());
    let decision = state.estate.engine().explain(&caller.id, action, &root);
    let action_name = action.as_str();
    state.metrics.authz_decision(action_name, decision.allowed);
    if !decision.allowed {
        refuse(
            state,
            caller,
            action_name,
            ROOT_SCOPE_ID,
            &decision.reason,
            "refused",
            request_id,
        )
        .await;
        return Err(ApiError::forbidden(decision.reason));
    }
    Ok(grant(
        caller,
        action_name,
        ROOT_SCOPE_ID,
        &decision.reason,
        request_id,
    ))
}

/// Records a refusal decided outside the engine's `check` (e.g. a grant rule).
pub(crate) async fn refuse(
    state: &AppState,
    caller: &Caller,
    action: &str,
    resource: &str,
    reason: &str,
    outcome: &str,
    request_id: &RequestId,
) {
    crate::decision::refuse(
        state,
        &caller.id,
        action,
        resource,
        reason,
        outcome,
        Some(request_id.as_str()),
    )
    .await;
}

/// A grant for a decision made outside `explain` (e.g. `can_assign`, self-service).
pub(crate) fn grant(
    caller: &Caller,
    action: &str,
    resource: &str,
    reason: &str,
    request_id: &RequestId,
) -> Grant {
    Grant {
        principal: caller.id.clone(),
        action: action.to_owned(),
        resource: resource.to_owned(),
        reason: reason.to_owned(),
        request_id: request_id.0.clone(),
    }
}
