//! The one door through which an operator command reaches a charger.
//!
//! **Architecture invariant, held by a type:** `ChargerRegistry::call` takes an
//! [`AuditedCommand`], which only this module can make, and only right after the command's
//! allow record is written. So no code path can reach a charger without the role engine's
//! decision and its audit record (no record, no command). A refused or invisible command never
//! produces an OCPP frame.
//!
//! Order of checks (each maps to one HTTP status in the API): the charger must exist and be
//! visible to the principal (404, so an invisible charger is never revealed), the engine must
//! allow the command's action on it (403), it must be connected (409) and its OCPP version
//! must have the command (400); then the charger answers (200), answers with a CALLERROR
//! (502) or does not answer in time (504). When the allow record cannot be written the
//! command is not sent (503): nothing reaches a charger without its audit record.

use std::time::{Duration, Instant};

use voltgate_ocpp::{Command, CommandError, OcppVersion};
use voltgate_policy::{Action, Resource};

use crate::audit;
use crate::charger::CallFailure;
use crate::cluster::{Cluster, ForwardFailure, ForwardedCommand};
use crate::decision::{decide, Decided};
use crate::state::AppState;
use voltgate_policy::STATION_KIND;

/// The charger's answer to an allowed command.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CommandReply {
    /// The answer's `status` field (or a short summary when it has none).
    pub status: String,
    /// The full CALLRESULT payload.
    pub response: serde_json::Value,
}

/// Why a command did not produce a charger answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GateError {
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
    #[error("the decision could not be written to the audit log, so nothing was sent")]
    AuditUnavailable,
    #[error(
        "the charger may be connected to another node, which cannot be reached now (NATS is down)"
    )]
    ClusterUnavailable,
}

/// Proof that a command's allow record is on disk: the only key to `ChargerRegistry::call`.
/// Its field is private to this module, so nothing else can make one.
///
/// The record's id is also the number the command uses where OCPP 2.0.1 needs one
/// (remoteStartId, requestId, charging profile id): audit ids come from the store's sequence,
/// shared by every node of a cluster and never reused, so two nodes never give one charger the
/// same request id, a restart does not reuse one, and a charger's later notification naming
/// the id leads to the record of the command that caused it.
#[derive(Debug)]
pub(crate) struct AuditedCommand {
    audit_id: i64,
}

impl AuditedCommand {
    /// For the registry's and the session's own unit tests, which drive a charger directly.
    #[cfg(test)]
    pub(crate) fn for_tests() -> AuditedCommand {
        AuditedCommand { audit_id: 0 }
    }
}

/// Checks and sends one operator command, returning the charger's answer.
pub(crate) async fn send_command(
    state: &AppState,
    principal: &str,
    charger_id: &str,
    command: Command,
    request_id: Option<&str>,
) -> Result<CommandReply, GateError> {
    let grant = decide_command(state, principal, charger_id, &command, request_id).await?;
    send_granted(state, &grant, command).await
}

/// An operator's allowed decision to send commands decided by one action to one charger; a
/// refusal was already audited. Made only by [`decide_command`], spent by [`send_granted`],
/// which writes each command's own allow record: an operation of several messages (a local
/// list split to the charger's limits) is decided once and audited message by message.
#[must_use]
#[derive(Debug)]
pub(crate) struct CommandGrant {
    principal: String,
    charger_id: String,
    action: &'static str,
    reason: String,
    request_id: Option<String>,
}

/// The first half of [`send_command`]: the charger must exist and be visible (404) and the
/// engine must allow the command's [`Command::decided_by`] action on it (403).
pub(crate) async fn decide_command(
    state: &AppState,
    principal: &str,
    charger_id: &str,
    command: &Command,
    request_id: Option<&str>,
) -> Result<CommandGrant, GateError> {
    let action_name = command.decided_by();
    let Ok(action) = action_name.parse::<Action>() else {
        return Err(GateError::Translation(format!(
            "`{action_name}` is not a role-engine action"
        )));
    };
    let resource = Resource::Scope(charger_id.to_owned());
    crate::cluster::follow_charger(state, charger_id).await;
    let visible = {
        let engine = state.estate.engine();
        engine.scope_kind(charger_id) == Some(STATION_KIND) && engine.can_see(principal, &resource)
    };
    let label = audit::scope_label(charger_id);
    match decide(
        state, principal, action, &resource, visible, &label, request_id,
    )
    .await
    {
        Decided::Allowed { reason } => Ok(CommandGrant {
            principal: principal.to_owned(),
            charger_id: charger_id.to_owned(),
            action: action_name,
            reason,
            request_id: request_id.map(str::to_owned),
        }),
        Decided::Hidden => Err(GateError::NotFound(charger_id.to_owned())),
        Decided::Refused { reason } => Err(GateError::Forbidden { reason }),
    }
}

/// The second half of [`send_command`]: writes the command's allow record (labelled with its
/// [`Command::engine_action`]) and delivers it. A command the grant was not decided for is
/// not sent.
pub(crate) async fn send_granted(
    state: &AppState,
    grant: &CommandGrant,
    command: Command,
) -> Result<CommandReply, GateError> {
    if command.decided_by() != grant.action {
        return Err(GateError::Translation(format!(
            "`{}` is not decided by `{}`",
            command.name(),
            grant.action
        )));
    }
    record_and_deliver(
        state,
        audit::entry(
            &grant.principal,
            command.engine_action(),
            &audit::scope_label(&grant.charger_id),
            true,
            &grant.reason,
            None,
            grant.request_id.as_deref(),
        ),
        &grant.charger_id,
        &command,
    )
    .await
}

/// The principal that commands the gateway decides on itself are audited under.
pub(crate) const SYSTEM_PRINCIPAL: &str = "system";

/// Sends a command the gateway decided on itself (keeping a charger's local authorisation
/// list in sync, clearing its authorisation cache). It acts as the system principal, which the
/// engine allows everything, so no decision is asked for; the command is audited, counted and
/// delivered exactly like an operator's.
pub(crate) async fn send_system_command(
    state: &AppState,
    charger_id: &str,
    command: Command,
) -> Result<CommandReply, GateError> {
    record_and_deliver(
        state,
        audit::entry(
            SYSTEM_PRINCIPAL,
            command.engine_action(),
            &audit::scope_label(charger_id),
            true,
            "sent by the gateway itself as the system principal",
            None,
            None,
        ),
        charger_id,
        &command,
    )
    .await
}

/// Writes the allow record, and only if it is on disk sends the command and records how the
/// charger answered: the shared tail of both doors.
async fn record_and_deliver(
    state: &AppState,
    allow_record: voltgate_store::AuditRecord,
    charger_id: &str,
    command: &Command,
) -> Result<CommandReply, GateError> {
    // Fail closed: a command without its allow record on disk is never sent.
    let Some(audit_id) = audit::record(state, allow_record).await else {
        tracing::error!(
            charger_id,
            command = command.name(),
            "allow decision not recorded; command not sent"
        );
        return Err(GateError::AuditUnavailable);
    };
    let permit = AuditedCommand { audit_id };
    let started = Instant::now();
    let result = deliver(state, permit, charger_id, command).await;
    let (metric_outcome, audit_outcome) = outcome_labels(&result);
    state.metrics.command_latency(
        command.name(),
        metric_outcome,
        started.elapsed().as_secs_f64(),
    );
    audit::set_outcome(state, Some(audit_id), &audit_outcome).await;
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
    permit: AuditedCommand,
    charger_id: &str,
    command: &Command,
) -> Result<CommandReply, GateError> {
    if !state.chargers.is_connected(charger_id) {
        if let Some(cluster) = &state.cluster {
            return deliver_elsewhere(state, cluster, permit, charger_id, command).await;
        }
        return Err(GateError::NotConnected(charger_id.to_owned()));
    }
    let Some(version) = state.chargers.version(charger_id) else {
        return Err(GateError::NotConnected(charger_id.to_owned()));
    };
    let call = command
        .to_call_at(version, permit.audit_id, &crate::clock::now_rfc3339())
        .map_err(|err| translation_error(command, version, err))?;
    let timeout = state.settings.command_timeout;
    let payload = state
        .chargers
        .call(permit, charger_id, call.action, call.payload, timeout)
        .await
        .map_err(|failure| call_failure(charger_id, timeout, failure))?;
    let status = voltgate_ocpp::response_status(version, call.action, &payload);
    Ok(CommandReply {
        status,
        response: payload,
    })
}

/// A charger not connected here, in a cluster: the command, already decided and audited
/// here, travels with its allow record id to the node holding the charger. Connected nowhere
/// is a 409 at once; NATS unreachable is a 503.
async fn deliver_elsewhere(
    state: &AppState,
    cluster: &Cluster,
    permit: AuditedCommand,
    charger_id: &str,
    command: &Command,
) -> Result<CommandReply, GateError> {
    let holder = match cluster.holder(charger_id) {
        Some(holder) if holder.node != cluster.node_id() => holder,
        _ if !cluster.is_up() => return Err(GateError::ClusterUnavailable),
        _ => return Err(GateError::NotConnected(charger_id.to_owned())),
    };
    let version = holder.version;
    let call = command
        .to_call_at(version, permit.audit_id, &crate::clock::now_rfc3339())
        .map_err(|err| translation_error(command, version, err))?;
    let timeout = state.settings.command_timeout;
    let payload = cluster
        .forward(
            &holder,
            permit.audit_id,
            charger_id,
            call.action,
            call.payload,
            timeout,
        )
        .await
        .map_err(|failure| match failure {
            ForwardFailure::Call(failure) => call_failure(charger_id, timeout, failure),
            ForwardFailure::Unavailable => GateError::ClusterUnavailable,
        })?;
    let status = voltgate_ocpp::response_status(version, call.action, &payload);
    Ok(CommandReply {
        status,
        response: payload,
    })
}

/// The holder's half of a command decided on another node: the allow record it arrived with
/// is the permit, so the charger still receives nothing without its record.
pub(crate) async fn deliver_forwarded(
    state: &AppState,
    forwarded: ForwardedCommand,
) -> Result<serde_json::Value, CallFailure> {
    let permit = AuditedCommand {
        audit_id: forwarded.audit_id(),
    };
    let charger_id = forwarded.charger_id().to_owned();
    let action = forwarded.action().to_owned();
    let timeout = forwarded.timeout();
    state
        .chargers
        .call(
            permit,
            &charger_id,
            &action,
            forwarded.into_payload(),
            timeout,
        )
        .await
}

fn call_failure(charger_id: &str, timeout: Duration, failure: CallFailure) -> GateError {
    match failure {
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
    }
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
        Err(GateError::AuditUnavailable) => ("audit_unavailable", "audit_unavailable".into()),
        Err(GateError::ClusterUnavailable) => ("cluster_unavailable", "cluster_unavailable".into()),
        Err(GateError::NotFound(_)) | Err(GateError::Forbidden { .. }) => {
            ("refused", "refused".into())
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_command_whose_allow_record_cannot_be_written_is_not_sent() {
        use crate::charger::test_support::{
            connect, settings, state_on, RefusingStore, INSTALLATION,
        };
        use crate::gate::{send_command, GateError};
        use voltgate_ocpp::{Command, OcppVersion};
        use voltgate_policy::PrincipalKind;

        let store = std::sync::Arc::new(RefusingStore::default());
        let (state, _shutdown) = state_on(store.clone(), settings());
        {
            let mut engine = state.estate.engine_mut();
            engine
                .add_scope(INSTALLATION, "installation", "root")
                .unwrap();
            engine.add_scope("CP-1", "station", INSTALLATION).unwrap();
            engine
                .add_principal("ops", PrincipalKind::System, "root")
                .unwrap();
        }
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let before = store.calls();
        let outcome = send_command(&state, "ops", "CP-1", Command::ClearCache, None).await;
        assert!(
            matches!(outcome, Err(GateError::AuditUnavailable)),
            "{outcome:?}"
        );
        assert!(store.calls() > before, "the gate tried to write the record");
        let stray =
            tokio::time::timeout(std::time::Duration::from_millis(50), charger.next_message())
                .await;
        assert!(stray.is_err(), "the command reached the charger: {stray:?}");
    }

    /// The security invariant, over random estates: on any builtin preset, with a random
    /// scope tree, random modules, assignments and blocks changing between requests, a command
    /// reaches a charger exactly when the engine's `check` allows it at that moment (for a
    /// charger the caller can see); every refused command leaves the charger's connection
    /// untouched, and every change counts from the very next request.
    mod invariant {
        use std::sync::Arc;

        use futures_util::SinkExt;
        use proptest::prelude::*;
        use serde_json::json;
        use tokio_tungstenite::tungstenite::Message;
        use voltgate_ocpp::{Command, Frame, OcppVersion};
        use voltgate_policy::{Action, Preset, PrincipalKind, Resource};

        use crate::charger::test_support::{connect, FakeCharger};
        use crate::gate::{send_command, send_system_command, GateError};
        use crate::state::testing::test_state;
        use crate::state::SharedState;
        use voltgate_policy::{ROOT_SCOPE_ID, STATION_KIND};

        /// An operator, a driver and a system principal.
        const PRINCIPALS: [&str; 3] = ["p0", "p1", "p2"];
        const KINDS: [PrincipalKind; 3] = [
            PrincipalKind::Operator,
            PrincipalKind::Driver,
            PrincipalKind::System,
        ];

        /// What one case did: requests allowed and refused, engine changes that took effect
        /// and ones the engine refused.
        #[derive(Debug, Clone, Copy, Default)]
        struct Counts {
            allowed: u32,
            refused: u32,
            changed: u32,
            change_refused: u32,
        }

        impl Counts {
            fn add(self, other: Counts) -> Counts {
                Counts {
                    allowed: self.allowed + other.allowed,
                    refused: self.refused + other.refused,
                    changed: self.changed + other.changed,
                    change_refused: self.change_refused + other.change_refused,
                }
            }

            fn change(&mut self, took_effect: bool) {
                if took_effect {
                    self.changed += 1;
                } else {
                    self.change_refused += 1;
                }
            }
        }

        #[derive(Debug, Clone)]
        enum Op {
            Assign {
                who: usize,
                role: usize,
                scope: usize,
            },
            Unassign {
                who: usize,
                role: usize,
                scope: usize,
            },
            Block {
                who: usize,
                blocked: bool,
            },
            Module {
                scope: usize,
                module: usize,
                on: bool,
            },
            Request {
                who: usize,
                station: usize,
                command: usize,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            let index = || 0usize..64;
            prop_oneof![
                3 => (0usize..3, index(), index()).prop_map(|(who, role, scope)| Op::Assign { who, role, scope }),
                1 => (0usize..3, index(), index()).prop_map(|(who, role, scope)| Op::Unassign { who, role, scope }),
                1 => (0usize..3, any::<bool>()).prop_map(|(who, blocked)| Op::Block { who, blocked }),
                1 => (index(), index(), any::<bool>()).prop_map(|(scope, module, on)| Op::Module { scope, module, on }),
                6 => (0usize..3, index(), index()).prop_map(|(who, station, command)| Op::Request { who, station, command }),
            ]
        }

        fn commands() -> Vec<Command> {
            vec![
                Command::Reset { hard: false },
                Command::ClearCache,
                Command::Unlock { connector: 1 },
                Command::ChangeAvailability {
                    connector: None,
                    available: true,
                },
                Command::RemoteStart {
                    connector: Some(1),
                    id_token: "TAG-1".into(),
                    token_type: None,
                },
                Command::GetConfiguration { keys: None },
            ]
        }

        /// Builds a scope tree from (kind, parent) picks; every kind's parent rule is obeyed.
        fn build_tree(state: &SharedState, picks: &[(usize, usize)]) -> Vec<String> {
            let mut engine = state.estate.engine_mut();
            let kinds: Vec<String> = engine.preset().kinds().map(|k| k.id.clone()).collect();
            let mut scopes = vec![ROOT_SCOPE_ID.to_owned()];
            for (n, (kind, parent)) in picks.iter().enumerate() {
                let kind = &kinds[kind % kinds.len()];
                let id = format!("s{n}-{kind}");
                let parent = scopes
                    .iter()
                    .cycle()
                    .skip(parent % scopes.len())
                    .take(scopes.len())
                    .find(|s| engine.check_add_scope(&id, kind, s).is_ok())
                    .cloned();
                if let Some(parent) = parent {
                    engine
                        .add_scope(&id, kind, &parent)
                        .expect("parent rule obeyed");
                    scopes.push(id);
                }
            }
            // Then one scope of every kind still missing, so each tree holds stations.
            for round in 0..kinds.len() {
                for kind in &kinds {
                    if scopes
                        .iter()
                        .any(|s| engine.scope_kind(s) == Some(kind.as_str()))
                    {
                        continue;
                    }
                    let id = format!("f{round}-{kind}");
                    let parent = scopes
                        .iter()
                        .find(|s| engine.check_add_scope(&id, kind, s).is_ok());
                    if let Some(parent) = parent.cloned() {
                        engine
                            .add_scope(&id, kind, &parent)
                            .expect("parent rule obeyed");
                        scopes.push(id);
                    }
                }
            }
            scopes
        }

        async fn run_case(
            preset: &str,
            picks: Vec<(usize, usize)>,
            homes: Vec<usize>,
            ops: Vec<Op>,
        ) -> Counts {
            let mut counts = Counts::default();
            let state = test_state(preset).await;
            let scopes = build_tree(&state, &picks);
            let stations: Vec<String> = scopes
                .iter()
                .filter(|s| state.estate.engine().scope_kind(s) == Some(STATION_KIND))
                .cloned()
                .collect();
            assert!(!stations.is_empty(), "every preset can hold a station");
            let (roles, modules) = {
                let engine = state.estate.engine();
                let roles: Vec<String> = engine.roles().map(|r| r.id.clone()).collect();
                let modules: Vec<String> =
                    engine.preset().modules().map(|m| m.id.clone()).collect();
                (roles, modules)
            };
            for ((who, kind), home) in PRINCIPALS.iter().zip(KINDS).zip(&homes) {
                let home = &scopes[home % scopes.len()];
                state
                    .estate
                    .engine_mut()
                    .add_principal(who, kind, home)
                    .expect("principal added");
            }
            let mut chargers = Vec::new();
            for station in &stations {
                let (charger, _task) = connect(&state, station, OcppVersion::V16).await;
                chargers.push(charger);
            }
            let commands = commands();
            for op in ops {
                if let Op::Request {
                    who,
                    station,
                    command,
                } = op
                {
                    let index = station % stations.len();
                    let station = &stations[index];
                    let command = commands[command % commands.len()].clone();
                    let action: Action = command.engine_action().parse().expect("engine action");
                    let resource = Resource::Scope(station.clone());
                    // What the engine says right now, after every change made so far.
                    let (allowed, visible) = {
                        let engine = state.estate.engine();
                        (
                            engine.check(PRINCIPALS[who], action, &resource),
                            engine.can_see(PRINCIPALS[who], &resource),
                        )
                    };
                    let reached = request(
                        &state,
                        PRINCIPALS[who],
                        station,
                        command,
                        &mut chargers[index],
                    )
                    .await;
                    assert!(
                        !reached || allowed,
                        "{} reached {station} without an allow",
                        PRINCIPALS[who]
                    );
                    if visible {
                        assert_eq!(
                            reached, allowed,
                            "{} on {station}: check said {allowed}",
                            PRINCIPALS[who]
                        );
                    }
                    if reached {
                        counts.allowed += 1;
                    } else {
                        counts.refused += 1;
                    }
                    continue;
                }
                let mut engine = state.estate.engine_mut();
                match op {
                    Op::Assign { who, role, scope } => {
                        let done = engine.assign(
                            PRINCIPALS[who],
                            &roles[role % roles.len()],
                            &scopes[scope % scopes.len()],
                        );
                        counts.change(done.is_ok());
                    }
                    Op::Unassign { who, role, scope } => {
                        let done = engine.unassign(
                            PRINCIPALS[who],
                            &roles[role % roles.len()],
                            &scopes[scope % scopes.len()],
                        );
                        counts.change(done == Ok(true));
                    }
                    Op::Block { who, blocked } => {
                        engine
                            .set_blocked(PRINCIPALS[who], blocked)
                            .expect("known principal");
                    }
                    Op::Module { scope, module, on } => {
                        if !modules.is_empty() {
                            let done = engine.set_module(
                                &scopes[scope % scopes.len()],
                                &modules[module % modules.len()],
                                on,
                            );
                            counts.change(done.is_ok());
                        }
                    }
                    Op::Request { .. } => {}
                }
            }
            counts
        }

        /// Sends one command through the gate while playing the charger; `true` when a CALL
        /// reached the charger. A refused command must end without any frame: a system
        /// command sent after the refusal must be the very next frame the charger sees.
        async fn request(
            state: &SharedState,
            who: &str,
            station: &str,
            command: Command,
            charger: &mut FakeCharger,
        ) -> bool {
            let gate = {
                let state = Arc::clone(state);
                let (who, station) = (who.to_owned(), station.to_owned());
                tokio::spawn(
                    async move { send_command(&state, &who, &station, command, None).await },
                )
            };
            let mut gate = std::pin::pin!(gate);
            tokio::select! {
                finished = &mut gate => {
                    let outcome = finished.expect("gate task");
                    assert!(
                        matches!(outcome, Err(GateError::Forbidden { .. } | GateError::NotFound(_))),
                        "a command that sent nothing must be refused: {outcome:?}"
                    );
                    let backstop = {
                        let state = Arc::clone(state);
                        let station = station.to_owned();
                        tokio::spawn(async move {
                            send_system_command(&state, &station, Command::ClearCache).await
                        })
                    };
                    let next = answer(charger).await;
                    assert_eq!(next, "ClearCache", "a refused command reached the charger");
                    backstop.await.expect("backstop task").expect("backstop delivered");
                    false
                }
                action = answer(charger) => {
                    let outcome = gate.await.expect("gate task");
                    assert!(
                        !matches!(outcome, Err(GateError::Forbidden { .. } | GateError::NotFound(_))),
                        "{action} delivered, yet refused: {outcome:?}"
                    );
                    true
                }
            }
        }

        /// Reads the next frame, which must be a CALL, answers it `Accepted` and returns its
        /// action.
        async fn answer(charger: &mut FakeCharger) -> String {
            let message = charger.next_message().await;
            let Some(Message::Text(text)) = message else {
                panic!("expected a CALL, got {message:?}");
            };
            let Ok(Frame::Call { id, action, .. }) = Frame::parse(text.as_str()) else {
                panic!("expected a CALL, got {text}");
            };
            let answer = Frame::CallResult {
                id,
                payload: json!({"status": "Accepted"}),
            };
            charger
                .ws
                .send(Message::text(answer.to_text()))
                .await
                .expect("gateway reads");
            action
        }

        #[test]
        fn a_command_reaches_a_charger_only_when_the_engine_allows_it() {
            let config = ProptestConfig {
                cases: 160,
                failure_persistence: None,
                ..ProptestConfig::default()
            };
            let mut runner = proptest::test_runner::TestRunner::new(config);
            let strategy = (
                0usize..Preset::BUILTIN.len(),
                proptest::collection::vec((0usize..16, 0usize..16), 3..12),
                proptest::collection::vec(0usize..16, 3),
                proptest::collection::vec(op(), 4..40),
            );
            let total = std::cell::Cell::new(Counts::default());
            let outcome = runner.run(&strategy, |(preset, picks, homes, ops)| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let counts = runtime.block_on(run_case(Preset::BUILTIN[preset], picks, homes, ops));
                total.set(total.get().add(counts));
                Ok(())
            });
            if let Err(failure) = outcome {
                panic!("{failure}");
            }
            let total = total.get();
            eprintln!("{total:?}");
            // The property could hold as false == false: both outcomes, and changes that took
            // effect, must be seen many times.
            assert!(
                total.allowed >= 100 && total.refused >= 100 && total.changed >= 100,
                "too few of each outcome: {total:?}"
            );
        }
    }
}
