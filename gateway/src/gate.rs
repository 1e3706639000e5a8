//! The one door through which an operator command reaches a charger.
//!
//! **Architecture invariant:** [`send_command`] is the only caller of
//! `ChargerRegistry::call` in the whole codebase. It asks the role engine first, writes the
//! decision to the audit log before anything is sent, and records what the charger answered.
//! A refused or invisible command never produces an OCPP frame.
//!
//! Order of checks (each maps to one HTTP status in the API): the charger must exist and be
//! visible to the principal (404, so an invisible charger is never revealed), the engine must
//! allow the command's action on it (403), it must be connected (409) and its OCPP version
//! must have the command (400); then the charger answers (200), answers with a CALLERROR
//! (502) or does not answer in time (504).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use voltgate_ocpp::{Command, CommandError, OcppVersion};
use voltgate_policy::{Action, Resource};

use crate::audit;
use crate::charger::CallFailure;
use crate::state::{AppState, STATION_KIND};

/// The charger's answer to an allowed command.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommandReply {
    /// The answer's `status` field (or a short summary when it has none).
    pub status: String,
    /// The full CALLRESULT payload.
    pub response: serde_json::Value,
}

/// Why a command did not produce a charger answer.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("charger `{0}` not found")]
    NotFound(String),
    #[error("{reason}")]
    Forbidden { reason: String },
    #[error("charger `{0}` is not connected")]
    NotConnected(String),
    #[error("command `{command}` is not available in OCPP {version}")]
    NotInVersion { command: String, version: String },
    #[error("charger `{0}` has too many commands waiting; try again later")]
    Busy(String),
    #[error("the charger answered with {code}: {description}")]
    CallError {
        code: String,
        description: String,
        details: serde_json::Value,
    },
    #[error("the charger did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("the command could not be translated: {0}")]
    Translation(String),
}

/// Unique numbers for OCPP 2.0.1 remoteStartId / requestId / charging profile ids. Seeded from
/// the clock so ids from before a restart are not reused soon after; kept well inside i32.
static NEXT_SEQ: LazyLock<AtomicI64> = LazyLock::new(|| {
    let secs = time::OffsetDateTime::now_utc().unix_timestamp();
    AtomicI64::new(secs.rem_euclid(1_000_000_000) + 1)
});

fn next_seq() -> i64 {
    NEXT_SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Checks and sends one operator command, returning the charger's answer.
pub async fn send_command(
    state: &AppState,
    principal: &str,
    charger_id: &str,
    command: Command,
    request_id: Option<&str>,
) -> Result<CommandReply, GateError> {
    let action_name = command.engine_action();
    let resource = Resource::Scope(charger_id.to_owned());
    let decision = {
        let engine = state.policy.read();
        let is_charger = engine.scope_kind(charger_id) == Some(STATION_KIND);
        if is_charger && engine.can_see(principal, &resource) {
            let action = action_name.parse::<Action>().ok();
            Some(action.map(|action| engine.explain(principal, action, &resource)))
        } else {
            None
        }
    };
    let Some(decision) = decision else {
        state.metrics.authz_decision(action_name, false);
        let reason =
            format!("charger `{charger_id}` does not exist or is not visible to `{principal}`");
        audit::record(
            state,
            audit::entry(
                principal,
                action_name,
                charger_id,
                false,
                &reason,
                Some("not_found".into()),
                request_id,
            ),
        )
        .await;
        return Err(GateError::NotFound(charger_id.to_owned()));
    };
    let Some(decision) = decision else {
        return Err(GateError::Translation(format!(
            "`{action_name}` is not a role-engine action"
        )));
    };
    state.metrics.authz_decision(action_name, decision.allowed);
    if !decision.allowed {
        audit::record(
            state,
            audit::entry(
                principal,
                action_name,
                charger_id,
                false,
                &decision.reason,
                Some("refused".into()),
                request_id,
            ),
        )
        .await;
        return Err(GateError::Forbidden {
            reason: decision.reason,
        });
    }
    let audit_id = audit::record(
        state,
        audit::entry(
            principal,
            action_name,
            charger_id,
            true,
            &decision.reason,
            None,
            request_id,
        ),
    )
    .await;

    let started = Instant::now();
    let result = deliver(state, charger_id, &command).await;
    let (metric_outcome, audit_outcome) = outcome_labels(&result);
    state.metrics.command_latency(
        command.name(),
        metric_outcome,
        started.elapsed().as_secs_f64(),
    );
    audit::set_outcome(state, audit_id, &audit_outcome).await;
    match &result {
        Ok(reply) => {
            tracing::info!(charger_id, command = command.name(), status = %reply.status, "command answered")
        }
        Err(err) => {
            tracing::info!(charger_id, command = command.name(), error = %err, "command failed")
        }
    }
    result
}

async fn deliver(
    state: &AppState,
    charger_id: &str,
    command: &Command,
) -> Result<CommandReply, GateError> {
    if !state.chargers.is_connected(charger_id) {
        return Err(GateError::NotConnected(charger_id.to_owned()));
    }
    let Some(version) = state.chargers.version(charger_id) else {
        return Err(GateError::NotConnected(charger_id.to_owned()));
    };
    let call = command
        .to_call_at(version, next_seq(), &audit::now_rfc3339())
        .map_err(|err| translation_error(command, version, err))?;
    let timeout = state.settings.command_timeout;
    let payload = state
        .chargers
        .call(charger_id, call.action, call.payload, timeout)
        .await
        .map_err(|failure| match failure {
            CallFailure::NotConnected | CallFailure::Disconnected => {
                GateError::NotConnected(charger_id.to_owned())
            }
            CallFailure::Busy => GateError::Busy(charger_id.to_owned()),
            CallFailure::Timeout => GateError::Timeout(timeout),
            CallFailure::CallError {
                code,
                description,
                details,
            } => GateError::CallError {
                code,
                description,
                details,
            },
        })?;
    let status = voltgate_ocpp::response_status(version, call.action, &payload);
    Ok(CommandReply {
        status,
        response: payload,
    })
}

fn translation_error(command: &Command, version: OcppVersion, err: CommandError) -> GateError {
    match err {
        CommandError::NotInVersion { .. } => GateError::NotInVersion {
            command: command.name().to_owned(),
            version: version.to_string(),
        },
        other => GateError::Translation(other.to_string()),
    }
}

/// The metric label and the audit outcome for a finished attempt.
fn outcome_labels(result: &Result<CommandReply, GateError>) -> (&'static str, String) {
    match result {
        Ok(reply) => ("ok", format!("ok: {}", reply.status)),
        Err(GateError::NotConnected(_)) => ("not_connected", "not_connected".into()),
        Err(GateError::NotInVersion { .. }) => ("unsupported", "unsupported_in_version".into()),
        Err(GateError::Busy(_)) => ("busy", "charger_busy".into()),
        Err(GateError::CallError { code, .. }) => ("call_error", format!("call_error: {code}")),
        Err(GateError::Timeout(_)) => ("timeout", "timeout".into()),
        Err(GateError::Translation(_)) => ("invalid", "translation_failed".into()),
        Err(GateError::NotFound(_)) | Err(GateError::Forbidden { .. }) => {
            ("refused", "refused".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The module doc's invariant, enforced: outside this file (and the registry that
    /// defines it), no non-test code calls `chargers.call(`. Test modules (from the first
    /// `#[cfg(test)]` of a file on) may drive the registry directly.
    #[test]
    fn only_the_gate_calls_the_registry() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut pending = vec![src.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                if path.extension().is_none_or(|ext| ext != "rs") {
                    continue;
                }
                let relative = path
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if relative == "gate.rs" || relative == "charger/registry.rs" {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let production = text.split("#[cfg(test)]").next().unwrap_or("");
                let compact: String = production.chars().filter(|c| !c.is_whitespace()).collect();
                if compact.contains("chargers.call(") {
                    offenders.push(relative);
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "registry.call used outside gate.rs: {offenders:?}"
        );
        let gate: String = include_str!("gate.rs")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        assert!(
            gate.contains(&["chargers", ".call("].concat()),
            "the gate itself still calls it"
        );
    }
}
