//! The directory of chargers this gateway has seen since it started: each one's live state and,
//! while it is connected, the handle of its session task.
//!
//! The operator side reaches a charger only through [`ChargerRegistry::call`] (and only
//! `gate.rs` calls that, after the role engine said yes). A call travels to the session task
//! over a small bounded queue; the session keeps at most one CALL outstanding per charger, as
//! OCPP-J requires, and answers the caller through a oneshot channel.
//!
//! Lookups go through a sharded `DashMap`; each charger's entry has its own small locks, so
//! chargers never contend with each other.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use serde_json::Value;

use crate::gate::AuditedCommand;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use voltgate_ocpp::OcppVersion;

use super::live::{LiveCell, LiveState};

/// Operator calls that may wait per charger behind the one in flight; one more is refused at
/// once (503 Busy) rather than queued without bound. OCPP allows one outstanding CALL per
/// direction, so a charger answering in a millisecond drains a full queue in tens of
/// milliseconds; 32 costs no memory up front (the channel's first block holds 32 slots anyway).
pub(crate) const CALL_QUEUE_CAPACITY: usize = 32;

/// How long [`ChargerRegistry::close_all`] waits for sessions to finish their close handshake.
const CLOSE_ALL_WAIT: Duration = Duration::from_secs(5);

/// Why a call to a charger produced no answer payload.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallFailure {
    #[error("the charger is not connected")]
    NotConnected,
    #[error("the charger already has {CALL_QUEUE_CAPACITY} commands waiting")]
    Busy,
    #[error("the charger did not answer in time")]
    Timeout,
    #[error("the charger answered with CALLERROR {code}: {description}")]
    CallError {
        code: String,
        description: String,
        details: Value,
    },
    #[error("the charger disconnected before answering")]
    Disconnected,
}

/// One operator call waiting for its turn on a charger's connection.
pub(crate) struct QueuedCall {
    pub action: String,
    pub payload: Value,
    /// The caller gives up at this instant; the session drops the call then too.
    pub deadline: Instant,
    pub reply: oneshot::Sender<Result<Value, CallFailure>>,
}

/// Why the registry asks a session to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// A new connection with the same charger id took over.
    Replaced,
    /// The gateway is shutting down.
    Shutdown,
}

/// Everything the registry knows about one charger id.
#[derive(Default)]
pub(crate) struct ChargerSlot {
    pub live: LiveCell,
    link: Mutex<Option<SessionLink>>,
}

/// The registry's end of a connected session.
struct SessionLink {
    connection: u64,
    version: OcppVersion,
    /// Boxed so the channel's eagerly allocated slot block stays small.
    calls: mpsc::Sender<Box<QueuedCall>>,
    close: Option<oneshot::Sender<CloseReason>>,
}

/// The session's end, handed out by [`ChargerRegistry::register`].
pub(crate) struct Registration {
    pub connection: u64,
    pub slot: Arc<ChargerSlot>,
    pub calls: mpsc::Receiver<Box<QueuedCall>>,
    pub close: oneshot::Receiver<CloseReason>,
}

/// All chargers seen since start, connected or not.
pub(crate) struct ChargerRegistry {
    chargers: DashMap<String, Arc<ChargerSlot>>,
    connected: AtomicUsize,
    next_connection: AtomicU64,
}

impl Default for ChargerRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ChargerRegistry {
    pub(crate) fn new() -> Self {
        ChargerRegistry {
            chargers: DashMap::new(),
            connected: AtomicUsize::new(0),
            next_connection: AtomicU64::new(1),
        }
    }

    /// `None` when the charger has not connected since the gateway started.
    pub(crate) fn live(&self, charger_id: &str) -> Option<LiveState> {
        let slot = self.chargers.get(charger_id)?.clone();
        Some(slot.live.snapshot(charger_id))
    }

    pub(crate) fn is_connected(&self, charger_id: &str) -> bool {
        self.chargers
            .get(charger_id)
            .is_some_and(|slot| slot.link.lock().is_some())
    }

    /// The OCPP version of the charger's current connection.
    pub(crate) fn version(&self, charger_id: &str) -> Option<OcppVersion> {
        let slot = self.chargers.get(charger_id)?;
        let link = slot.link.lock();
        link.as_ref().map(|link| link.version)
    }

    pub(crate) fn connected_count(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// Sends one CALL to a connected charger and waits for its answer, at most `timeout` in
    /// total (queueing included). Only the gate can make the [`AuditedCommand`] it takes, and
    /// only once the command's allow record is written: no record, no command.
    pub(crate) async fn call(
        &self,
        _permit: AuditedCommand,
        charger_id: &str,
        action: &str,
        payload: Value,
        timeout: Duration,
    ) -> Result<Value, CallFailure> {
        let deadline = Instant::now() + timeout;
        let calls = {
            let slot = self
                .chargers
                .get(charger_id)
                .ok_or(CallFailure::NotConnected)?;
            let link = slot.link.lock();
            link.as_ref()
                .map(|link| link.calls.clone())
                .ok_or(CallFailure::NotConnected)?
        };
        let (reply, answer) = oneshot::channel();
        let queued = Box::new(QueuedCall {
            action: action.to_owned(),
            payload,
            deadline,
            reply,
        });
        calls.try_send(queued).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => CallFailure::Busy,
            mpsc::error::TrySendError::Closed(_) => CallFailure::Disconnected,
        })?;
        drop(calls);
        match tokio::time::timeout_at(deadline, answer).await {
            Err(_) => Err(CallFailure::Timeout),
            // The session lets go of a call it gave up on at the deadline; that is a timeout,
            // not a lost connection.
            Ok(Err(_)) if Instant::now() >= deadline => Err(CallFailure::Timeout),
            Ok(Err(_)) => Err(CallFailure::Disconnected),
            Ok(Ok(outcome)) => outcome,
        }
    }

    /// Asks every connected charger's session to close with 1001 (going away) and waits, for a
    /// few seconds at most, until they have finished.
    pub(crate) async fn close_all(&self) {
        let mut closing = Vec::new();
        for slot in self.chargers.iter() {
            let mut link = slot.link.lock();
            if let Some(link) = link.as_mut() {
                if let Some(close) = link.close.take() {
                    let _ = close.send(CloseReason::Shutdown);
                }
                closing.push(link.calls.clone());
            }
        }
        let count = closing.len();
        let finished = async {
            for calls in &closing {
                calls.closed().await;
            }
        };
        if tokio::time::timeout(CLOSE_ALL_WAIT, finished)
            .await
            .is_err()
        {
            tracing::warn!(
                sessions = count,
                "some charger sessions did not finish closing in time"
            );
        }
    }

    /// The id of the charger's current connection (unique within this process).
    #[cfg(test)]
    pub(crate) fn connection_id(&self, charger_id: &str) -> Option<u64> {
        let slot = self.chargers.get(charger_id)?;
        let link = slot.link.lock();
        link.as_ref().map(|link| link.connection)
    }

    /// Makes a new session the charger's current one. An older session of the same charger is
    /// told to close; its queued and outstanding calls then fail with `Disconnected`.
    pub(crate) fn register(
        &self,
        charger_id: &str,
        version: OcppVersion,
        now_ms: i64,
    ) -> Registration {
        let slot = self
            .chargers
            .entry(charger_id.to_owned())
            .or_default()
            .clone();
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (calls_tx, calls_rx) = mpsc::channel(CALL_QUEUE_CAPACITY);
        let (close_tx, close_rx) = oneshot::channel();
        let previous = slot.link.lock().replace(SessionLink {
            connection,
            version,
            calls: calls_tx,
            close: Some(close_tx),
        });
        match previous {
            Some(mut old) => {
                if let Some(close) = old.close.take() {
                    let _ = close.send(CloseReason::Replaced);
                }
            }
            None => {
                self.connected.fetch_add(1, Ordering::Relaxed);
            }
        }
        slot.live.connected(version, now_ms);
        Registration {
            connection,
            slot,
            calls: calls_rx,
            close: close_rx,
        }
    }

    /// Asks session `connection` of the charger to close because the charger connected to
    /// another node of the cluster; a newer session here is left alone.
    pub(crate) fn close_taken_over(&self, charger_id: &str, connection: u64) {
        let Some(slot) = self.chargers.get(charger_id).map(|slot| slot.clone()) else {
            return;
        };
        let mut link = slot.link.lock();
        if let Some(link) = link.as_mut().filter(|l| l.connection == connection) {
            if let Some(close) = link.close.take() {
                let _ = close.send(CloseReason::Replaced);
            }
        }
    }

    /// Forgets a finished session, unless a newer one has already replaced it.
    pub(crate) fn unregister(&self, charger_id: &str, connection: u64) -> bool {
        let Some(slot) = self.chargers.get(charger_id).map(|slot| slot.clone()) else {
            return false;
        };
        let mut link = slot.link.lock();
        if link.as_ref().is_some_and(|l| l.connection == connection) {
            *link = None;
            drop(link);
            self.connected.fetch_sub(1, Ordering::Relaxed);
            slot.live.disconnected();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TIMEOUT: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn unknown_charger_is_not_connected() {
        let registry = ChargerRegistry::new();
        assert!(registry.live("CP-1").is_none());
        assert!(!registry.is_connected("CP-1"));
        let outcome = registry
            .call(
                AuditedCommand::for_tests(),
                "CP-1",
                "Reset",
                json!({}),
                TIMEOUT,
            )
            .await;
        assert!(matches!(outcome, Err(CallFailure::NotConnected)));
    }

    #[tokio::test]
    async fn call_reaches_the_session_and_returns_its_answer() {
        let registry = Arc::new(ChargerRegistry::new());
        let mut session = registry.register("CP-1", OcppVersion::V16, 1);
        assert!(registry.is_connected("CP-1"));
        assert_eq!(registry.version("CP-1"), Some(OcppVersion::V16));
        assert_eq!(registry.connected_count(), 1);

        let caller = {
            let registry = registry.clone();
            tokio::spawn(async move {
                registry
                    .call(
                        AuditedCommand::for_tests(),
                        "CP-1",
                        "Reset",
                        json!({"type": "Soft"}),
                        TIMEOUT,
                    )
                    .await
            })
        };
        let queued = session.calls.recv().await.expect("the call is queued");
        assert_eq!(queued.action, "Reset");
        assert_eq!(queued.payload, json!({"type": "Soft"}));
        queued
            .reply
            .send(Ok(json!({"status": "Accepted"})))
            .expect("caller waits");
        let answer = caller.await.unwrap().expect("answered");
        assert_eq!(answer, json!({"status": "Accepted"}));
    }

    #[tokio::test(start_paused = true)]
    async fn call_times_out_when_nobody_answers() {
        let registry = ChargerRegistry::new();
        let mut session = registry.register("CP-1", OcppVersion::V201, 1);
        let started = Instant::now();
        let outcome = registry
            .call(
                AuditedCommand::for_tests(),
                "CP-1",
                "Reset",
                json!({}),
                Duration::from_secs(7),
            )
            .await;
        assert!(matches!(outcome, Err(CallFailure::Timeout)));
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        let queued = session.calls.recv().await.expect("it was queued");
        assert!(queued.reply.is_closed(), "the caller has given up");
        assert_eq!(queued.deadline, started + Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_answers_busy_at_once() {
        let registry = Arc::new(ChargerRegistry::new());
        let _session = registry.register("CP-1", OcppVersion::V16, 1);
        let mut waiting = Vec::new();
        for _ in 0..CALL_QUEUE_CAPACITY {
            let registry = registry.clone();
            waiting.push(tokio::spawn(async move {
                registry
                    .call(
                        AuditedCommand::for_tests(),
                        "CP-1",
                        "Reset",
                        json!({}),
                        TIMEOUT,
                    )
                    .await
            }));
        }
        tokio::task::yield_now().await;
        let outcome = registry
            .call(
                AuditedCommand::for_tests(),
                "CP-1",
                "Reset",
                json!({}),
                TIMEOUT,
            )
            .await;
        assert!(matches!(outcome, Err(CallFailure::Busy)), "{outcome:?}");
        assert!(waiting.iter().all(|task| !task.is_finished()));
        for task in waiting {
            task.abort();
        }
    }

    #[tokio::test]
    async fn pending_calls_fail_disconnected_when_the_session_ends() {
        let registry = Arc::new(ChargerRegistry::new());
        let session = registry.register("CP-1", OcppVersion::V16, 1);
        let caller = {
            let registry = registry.clone();
            tokio::spawn(async move {
                registry
                    .call(
                        AuditedCommand::for_tests(),
                        "CP-1",
                        "Reset",
                        json!({}),
                        TIMEOUT,
                    )
                    .await
            })
        };
        tokio::task::yield_now().await;
        drop(session);
        let outcome = caller.await.unwrap();
        assert!(
            matches!(outcome, Err(CallFailure::Disconnected)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_new_connection_replaces_the_old_one() {
        let registry = ChargerRegistry::new();
        let old = registry.register("CP-1", OcppVersion::V16, 1);
        let new = registry.register("CP-1", OcppVersion::V201, 2);
        assert_eq!(old.close.await, Ok(CloseReason::Replaced));
        assert_eq!(registry.connected_count(), 1);
        assert_eq!(registry.version("CP-1"), Some(OcppVersion::V201));

        assert!(
            !registry.unregister("CP-1", old.connection),
            "the old session must not unregister the new one"
        );
        assert!(registry.is_connected("CP-1"));
        assert!(registry.unregister("CP-1", new.connection));
        assert!(!registry.is_connected("CP-1"));
        assert_eq!(registry.connected_count(), 0);
        let live = registry.live("CP-1").expect("seen before");
        assert!(!live.connected);
    }

    #[tokio::test(start_paused = true)]
    async fn close_all_signals_every_session_and_waits_for_them() {
        let registry = Arc::new(ChargerRegistry::new());
        let mut sessions = Vec::new();
        for id in ["CP-1", "CP-2"] {
            let registration = registry.register(id, OcppVersion::V16, 1);
            let registry = registry.clone();
            sessions.push(tokio::spawn(async move {
                let reason = registration.close.await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                registry.unregister(id, registration.connection);
                drop(registration.calls);
                reason
            }));
        }
        let started = Instant::now();
        registry.close_all().await;
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        assert_eq!(registry.connected_count(), 0);
        for session in sessions {
            assert_eq!(session.await.unwrap(), Ok(CloseReason::Shutdown));
        }
    }
}
