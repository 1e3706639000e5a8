//! The one decide-and-audit step that every operator request takes, whichever door it comes
//! through (the API's handlers, the gate to a charger): ask the engine, count the decision,
//! and write a refusal to the audit log at once. An allowed decision is audited by its door,
//! together with what came of it (a handler's outcome, a command's allow record).
//!
//! A card a charger presents is decided by the engine too (the charger side's decision table
//! picks the card and asks `explain` for its principal's `charge` right); [`card_decided`]
//! counts and audits that decision the same way, allowed or not, since no later record
//! follows it.

use voltgate_policy::{Action, Resource};

use crate::audit;
use crate::state::AppState;

/// What the engine said, with its one-sentence reason.
#[derive(Debug)]
pub(crate) enum Decided {
    Allowed {
        reason: String,
    },
    /// The resource does not exist or the principal cannot see it: answered like a missing
    /// resource, so nothing invisible is revealed.
    Hidden,
    Refused {
        reason: String,
    },
}

/// Decides `action` on `resource` for `principal`. `visible` says whether the resource exists
/// and the principal can see it (each door knows what its resource must be); `label` is how the
/// resource is written in the audit log.
pub(crate) async fn decide(
    state: &AppState,
    principal: &str,
    action: Action,
    resource: &Resource,
    visible: bool,
    label: &str,
    request_id: Option<&str>,
) -> Decided {
    let action_name = action.as_str();
    let decision = visible.then(|| state.estate.engine().explain(principal, action, resource));
    let Some(decision) = decision else {
        state.metrics.authz_decision(action_name, false);
        let reason = format!("{label} does not exist or is not visible to {principal}");
        refuse(
            state,
            principal,
            action_name,
            label,
            &reason,
            "not_found",
            request_id,
        )
        .await;
        return Decided::Hidden;
    };
    state.metrics.authz_decision(action_name, decision.allowed);
    if decision.allowed {
        return Decided::Allowed {
            reason: decision.reason,
        };
    }
    refuse(
        state,
        principal,
        action_name,
        label,
        &decision.reason,
        "refused",
        request_id,
    )
    .await;
    Decided::Refused {
        reason: decision.reason,
    }
}

/// Writes a refusal decided here or by a rule outside `explain` (e.g. a grant rule).
pub(crate) async fn refuse(
    state: &AppState,
    principal: &str,
    action: &str,
    label: &str,
    reason: &str,
    outcome: &str,
    request_id: Option<&str>,
) {
    audit::record(
        state,
        audit::entry(
            principal,
            action,
            label,
            false,
            reason,
            Some(outcome.to_owned()),
            request_id,
        ),
    )
    .await;
}

/// Counts and audits the decision on a card presented at `charger`: under the card's
/// principal, or `id-token:<text>` when it names none (an unknown card, a free-vend token),
/// with the status the charger is told as the outcome.
pub(crate) async fn card_decided(
    state: &AppState,
    charger: &str,
    text: &str,
    principal: Option<&str>,
    allowed: bool,
    reason: &str,
    status: &str,
) -> String {
    state
        .metrics
        .authz_decision(Action::Charge.as_str(), allowed);
    let principal = principal.map_or_else(|| format!("id-token:{text}"), str::to_owned);
    audit::record(
        state,
        audit::entry(
            &principal,
            Action::Charge.as_str(),
            &audit::scope_label(charger),
            allowed,
            reason,
            Some(status.to_owned()),
            None,
        ),
    )
    .await;
    principal
}
