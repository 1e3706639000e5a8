//! The audit trail: every authorisation decision, from the operator API and from chargers,
//! is written here and nowhere else.
//!
//! Recording never fails the caller: when the store refuses the record, the failure is
//! logged and counted (`voltgate_store_errors_total{op="append_audit"}`) and the request goes
//! on; only the gate acts on a lost record, by not sending the command. Decisions are also logged at debug level under the `audit` target.

use voltgate_store::AuditRecord;

use crate::state::AppState;

/// Writes one decision; returns its id, or `None` when the store failed.
pub(crate) async fn record(state: &AppState, entry: AuditRecord) -> Option<i64> {
    tracing::debug!(
        target: "audit",
        principal = %entry.principal,
        action = %entry.action,
        resource = %entry.resource,
        allowed = entry.allowed,
        reason = %entry.reason,
        outcome = entry.outcome.as_deref().unwrap_or(""),
        "decision"
    );
    match state.store.append_audit(&entry).await {
        Ok(id) => Some(id),
        Err(err) => {
            state.metrics.store_error("append_audit");
            tracing::error!(error = %err, action = %entry.action, principal = %entry.principal, "audit record lost");
            None
        }
    }
}

/// Fills in what came of an allowed decision (e.g. the charger's answer to a command).
pub(crate) async fn set_outcome(state: &AppState, id: Option<i64>, outcome: &str) {
    let Some(id) = id else { return };
    if let Err(err) = state.store.set_audit_outcome(id, outcome).await {
        state.metrics.store_error("set_audit_outcome");
        tracing::error!(error = %err, audit_id = id, "audit outcome lost");
    }
}

/// How a scope or charger is written in an audit record's `resource`.
///
/// Labels name their resource unambiguously: `principal:ID`, `assignment:P:R@SCOPE`, or a
/// scope id. Inside a label every id has `%`, `:` and `@` escaped (`%25`, `%3A`, `%40`), so an
/// id that contains a separator can neither land a record in another tenant's view nor drop it
/// from its owner's.
pub(crate) fn scope_label(id: &str) -> String {
    escape_id(id)
}

/// How a principal is written in an audit record's `resource`.
pub(crate) fn principal_label(id: &str) -> String {
    format!("principal:{}", escape_id(id))
}

/// How a role assignment is written in an audit record's `resource`.
pub(crate) fn assignment_label(principal: &str, role: &str, scope: &str) -> String {
    format!(
        "assignment:{}:{}@{}",
        escape_id(principal),
        escape_id(role),
        escape_id(scope)
    )
}

/// The engine resource an audit label is about (an assignment is judged at its scope);
/// `None` for labels of other things (API paths, id tokens).
pub(crate) fn labelled_resource(label: &str) -> Option<voltgate_policy::Resource> {
    use voltgate_policy::Resource;
    if let Some(id) = label.strip_prefix("principal:") {
        Some(Resource::Principal(unescape_id(id)))
    } else if let Some(rest) = label.strip_prefix("assignment:") {
        rest.rsplit_once('@')
            .map(|(_, scope)| Resource::Scope(unescape_id(scope)))
    } else if label.contains(':') || label.starts_with('/') {
        None
    } else {
        Some(Resource::Scope(unescape_id(label)))
    }
}

fn escape_id(id: &str) -> String {
    id.replace('%', "%25")
        .replace(':', "%3A")
        .replace('@', "%40")
}

fn unescape_id(text: &str) -> String {
    text.replace("%3A", ":")
        .replace("%40", "@")
        .replace("%25", "%")
}

/// A record stamped with the current time.
pub(crate) fn entry(
    principal: &str,
    action: &str,
    resource: &str,
    allowed: bool,
    reason: &str,
    outcome: Option<String>,
    request_id: Option<&str>,
) -> AuditRecord {
    AuditRecord {
        at: crate::clock::now_rfc3339(),
        principal: principal.to_owned(),
        action: action.to_owned(),
        resource: resource.to_owned(),
        allowed,
        reason: reason.to_owned(),
        outcome,
        request_id: request_id.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::test_state;
    use voltgate_store::AuditFilter;

    #[test]
    fn labels_parse_back_to_the_resource_they_name() {
        use voltgate_policy::Resource;
        for id in [
            "CP-1",
            "CP:1",
            "a@b",
            "100%",
            "%3A",
            "x:y@z",
            "principal:bob",
        ] {
            assert_eq!(
                labelled_resource(&scope_label(id)),
                Some(Resource::Scope(id.to_owned())),
                "{id}"
            );
            assert_eq!(
                labelled_resource(&principal_label(id)),
                Some(Resource::Principal(id.to_owned())),
                "{id}"
            );
            assert_eq!(
                labelled_resource(&assignment_label(id, "role", id)),
                Some(Resource::Scope(id.to_owned())),
                "{id}"
            );
        }
        // A scope whose id looks like another's label stays its own.
        assert_eq!(
            labelled_resource(&assignment_label("p", "r", "evil@site-b")),
            Some(Resource::Scope("evil@site-b".to_owned()))
        );
        assert_eq!(labelled_resource("id-token:ABC"), None);
        assert_eq!(labelled_resource("/api/v1/scopes"), None);
    }

    #[tokio::test]
    async fn record_and_outcome_land_in_the_store() {
        let state = test_state("connect").await;
        let id = record(
            &state,
            entry(
                "alice",
                "charger.view",
                "CP-1",
                false,
                "no role",
                None,
                Some("req-1"),
            ),
        )
        .await
        .expect("stored");
        set_outcome(&state, Some(id), "refused").await;
        let rows = state
            .store
            .audit(&AuditFilter {
                limit: 10,
                after_id: None,
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, id);
        assert_eq!(rows[0].record.principal, "alice");
        assert_eq!(rows[0].record.outcome.as_deref(), Some("refused"));
        assert_eq!(rows[0].record.request_id.as_deref(), Some("req-1"));
    }
}
