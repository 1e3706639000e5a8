//! One task per connected charger: reads its frames, answers its CALLs, sends it the operator
//! calls queued in the registry, and closes the connection the way OCPP-J and RFC 6455 expect.
//!
//! Frame handling:
//! - Text frames are parsed as OCPP-J. A frame that cannot be read is answered with a CALLERROR
//!   carrying the code for this version (message id `-1` when the id could not be read); a
//!   malformed CALLRESULT/CALLERROR is never answered. The connection stays up.
//! - A CALL for an action we do not handle gets NotImplemented/NotSupported; a payload that
//!   fails its schema gets the code the validator names, unless the charger's schema
//!   tolerance accepts its deviations (see [`super::quirks`]): then the handler gets the
//!   normalised payload and the deviations are counted. Only then does a handler run.
//! - A CALLRESULT/CALLERROR completes the one outstanding gateway CALL with the same id; a
//!   CALLRESULT is checked against the response schema first. Unknown ids are logged, counted
//!   and ignored.
//! - Binary frames close the connection with 1003 (unsupported data): OCPP-J messages are
//!   text frames only, and RFC 6455 §7.4.1 names 1003 for an endpoint that accepts only text.
//! - A frame or message over `max_frame_bytes` closes with 1009 (message too big), invalid
//!   UTF-8 in a text frame with 1007.
//!
//! At most one gateway CALL is outstanding; queued calls wait in the registry's bounded queue
//! and are dropped unsent once their caller has given up.
//!
//! A charger that stops reading must not pin its session: every frame we send (and our close
//! frame) has to be taken within the command timeout, else the connection is dropped without
//! a close handshake. A charger that cannot take a frame in that time could not answer a
//! command in time either, and its session would otherwise wait forever on a full socket,
//! deaf to replacement, shutdown and call deadlines.
//!
//! A charger that sends nothing at all is pinged and, when it stays silent, dropped (see
//! [`super::keepalive`]); that ends the session like any other disconnect.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;
use voltgate_ocpp::{
    is_charger_initiated, unhandled_action_code, ErrorCode, Frame, FrameError, OcppVersion,
};
use voltgate_store::TransactionFilter;

use super::handlers::{self, CallContext, Reject};
use super::keepalive::{Due, Liveness};
use super::registry::{CallFailure, ChargerSlot, CloseReason, QueuedCall};
use crate::clock::now_millis;
use crate::state::SharedState;

/// How long to wait for the charger's close frame after sending ours.
const CLOSE_HANDSHAKE_WAIT: Duration = Duration::from_secs(2);

/// The close code for a charger that answered no ping: 1001 (going away). RFC 6455 §7.4.1
/// has no code for a silent peer. Nothing the charger sent broke the protocol (1002) or a
/// policy (1008), and nothing failed inside the gateway (1011); the gateway is leaving a
/// connection it considers dead, which is what 1001 says, and a charger that is alive after
/// all treats it like any other going-away: it reconnects. The frame is rarely read anyway.
const PING_TIMEOUT_CLOSE_CODE: CloseCode = CloseCode::Away;

/// The message id OCPP-J uses to answer a frame whose own id could not be read.
const UNREADABLE_MESSAGE_ID: &str = "-1";

/// Active transactions loaded from the store when a charger connects.
const ACTIVE_TRANSACTIONS_LIMIT: u32 = 64;

/// The gateway CALL waiting for the charger's answer.
struct PendingCall {
    message_id: String,
    action: String,
    deadline: Instant,
    reply: oneshot::Sender<Result<Value, CallFailure>>,
}

/// What to do after a frame was handled.
enum Flow {
    Continue,
    Close(CloseCode, &'static str),
    /// The charger showed no sign of life: send a close frame, do not wait for its reply.
    Abandon(CloseCode, &'static str),
    /// The connection is gone (or closing was already started by the peer).
    Stop,
}

/// How a session's frame loop ended.
enum Ending {
    /// The connection is already gone.
    Gone,
    /// Close with the RFC 6455 handshake.
    Close(CloseCode, &'static str),
    /// Send a close frame without waiting for the reply (a peer that answered no ping would
    /// only keep the session, and its offline status, waiting).
    Abandon(CloseCode, &'static str),
}

struct Session {
    state: SharedState,
    charger_id: String,
    version: OcppVersion,
    slot: Arc<ChargerSlot>,
    pending: Option<PendingCall>,
    next_message_id: u64,
    /// `None` when keep-alive pings are off.
    liveness: Option<Liveness>,
}

/// Runs a charger's connection until it closes. Registers the charger as connected (replacing
/// an older connection of the same id) and unregisters it at the end.
pub(crate) async fn run<S>(
    mut ws: WebSocketStream<S>,
    state: SharedState,
    charger_id: String,
    version: OcppVersion,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let registration = state.chargers.register(&charger_id, version, now_millis());
    if let Some(cluster) = &state.cluster {
        cluster
            .claim(&charger_id, registration.connection, version)
            .await;
    }
    let gauge = state.metrics.chargers_connected(&version.to_string());
    gauge.inc();
    tracing::info!("charger connected");
    load_active_transactions(&state, &charger_id, version, &registration.slot).await;

    let mut session = Session {
        state: state.clone(),
        charger_id,
        version,
        slot: registration.slot,
        pending: None,
        next_message_id: 0,
        liveness: state
            .settings
            .keep_alive
            .map(|keep_alive| Liveness::new(keep_alive, Instant::now())),
    };
    let ending = session
        .drive(&mut ws, registration.calls, registration.close)
        .await;
    // The caller of an outstanding CALL learns at once, not after the close handshake.
    if let Some(pending) = session.pending.take() {
        let _ = pending.reply.send(Err(CallFailure::Disconnected));
    }
    match ending {
        Ending::Gone => {}
        Ending::Close(code, reason) => close(&mut ws, code, reason).await,
        Ending::Abandon(code, reason) => abandon(&mut ws, code, reason).await,
    }
    state
        .chargers
        .unregister(&session.charger_id, registration.connection);
    if let Some(cluster) = &state.cluster {
        cluster
            .release(&session.charger_id, registration.connection)
            .await;
    }
    gauge.dec();
    tracing::info!("charger disconnected");
}

/// Fills the live list of active transactions from the store (after a gateway restart the
/// charger's open sessions are otherwise unknown until they end).
async fn load_active_transactions(
    state: &SharedState,
    charger_id: &str,
    version: OcppVersion,
    slot: &ChargerSlot,
) {
    let filter = TransactionFilter {
        charger: Some(charger_id.to_owned()),
        principal: None,
        active_only: true,
        limit: ACTIVE_TRANSACTIONS_LIMIT,
    };
    match state.store.transactions(&filter).await {
        Ok(transactions) => slot.live.set_active_transactions(
            transactions
                .into_iter()
                .map(|t| match version {
                    OcppVersion::V16 => t.id.to_string(),
                    OcppVersion::V201 => t.key,
                })
                .collect(),
        ),
        Err(err) => {
            state.metrics.store_error("transactions");
            tracing::warn!(error = %err, "active transactions could not be loaded");
        }
    }
}

/// Sends a close frame and waits briefly for the charger's reply.
pub(crate) async fn close<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let handshake = async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(_)) = ws.next().await {}
    };
    // A charger that does not read cannot take the close frame either: give up and drop it.
    if tokio::time::timeout(CLOSE_HANDSHAKE_WAIT, handshake)
        .await
        .is_err()
    {
        tracing::debug!("close handshake not completed in time");
    }
}

/// Sends a close frame (bounded in time) and lets the connection go without waiting for the
/// charger's reply.
async fn abandon<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if tokio::time::timeout(CLOSE_HANDSHAKE_WAIT, ws.close(Some(frame)))
        .await
        .is_err()
    {
        tracing::debug!("close frame not taken in time");
    }
}

impl Session {
    /// The frame loop. Returns how the connection is to be closed.
    async fn drive<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        mut calls: tokio::sync::mpsc::Receiver<Box<QueuedCall>>,
        mut close_request: oneshot::Receiver<CloseReason>,
    ) -> Ending
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut calls_open = true;
        // One timer for the whole session, re-armed only when it fires; received frames just
        // record the time (see `keepalive`). Never polled when keep-alive is off.
        let keep_alive_timer = tokio::time::sleep_until(
            self.liveness
                .as_ref()
                .map_or_else(Instant::now, Liveness::deadline),
        );
        tokio::pin!(keep_alive_timer);
        loop {
            let deadline = self
                .pending
                .as_ref()
                .map_or_else(Instant::now, |pending| pending.deadline);
            let flow = tokio::select! {
                biased;
                reason = &mut close_request => return match reason {
                    Ok(CloseReason::Replaced) => {
                        tracing::info!("connection replaced by a newer one");
                        Ending::Close(CloseCode::Normal, "replaced by a newer connection")
                    }
                    Ok(CloseReason::Shutdown) | Err(_) => Ending::Close(CloseCode::Away, "gateway shutting down"),
                },
                incoming = ws.next() => match incoming {
                    None => Flow::Stop,
                    Some(Ok(message)) => {
                        if let Some(liveness) = &mut self.liveness {
                            liveness.heard(Instant::now());
                        }
                        self.on_message(ws, message).await
                    }
                    Some(Err(err)) => self.on_read_error(err),
                },
                queued = calls.recv(), if calls_open && self.pending.is_none() => match queued {
                    Some(call) => self.send_call(ws, call).await,
                    None => {
                        calls_open = false;
                        Flow::Continue
                    }
                },
                () = tokio::time::sleep_until(deadline), if self.pending.is_some() => {
                    if let Some(pending) = self.pending.take() {
                        tracing::warn!(action = %pending.action, message_id = %pending.message_id, "charger did not answer in time");
                        let _ = pending.reply.send(Err(CallFailure::Timeout));
                    }
                    Flow::Continue
                }
                () = &mut keep_alive_timer, if self.liveness.is_some() => {
                    self.on_keep_alive_timer(ws, keep_alive_timer.as_mut()).await
                }
            };
            match flow {
                Flow::Continue => {}
                Flow::Close(code, reason) => return Ending::Close(code, reason),
                Flow::Abandon(code, reason) => return Ending::Abandon(code, reason),
                Flow::Stop => return Ending::Gone,
            }
        }
    }

    /// The keep-alive timer fired: re-arm it, ping the charger, or give it up as dead.
    async fn on_keep_alive_timer<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        timer: Pin<&mut Sleep>,
    ) -> Flow
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(liveness) = self.liveness.as_mut() else {
            return Flow::Continue;
        };
        let now = Instant::now();
        match liveness.on_timer(now) {
            Due::Wait(at) => {
                timer.reset(at);
                Flow::Continue
            }
            Due::Ping(answer_by) => {
                timer.reset(answer_by);
                tracing::debug!("charger silent; ping sent");
                self.send_message(ws, Message::Ping(Bytes::new())).await
            }
            Due::GiveUp => {
                let silent_ms = liveness.silent_for(now).as_millis() as u64;
                self.state.metrics.frame_rejected("ping_timeout");
                tracing::warn!(
                    silent_ms,
                    "charger answered no ping in time; connection closed"
                );
                Flow::Abandon(PING_TIMEOUT_CLOSE_CODE, "no answer to ping")
            }
        }
    }

    async fn on_message<S>(&mut self, ws: &mut WebSocketStream<S>, message: Message) -> Flow
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match message {
            Message::Text(text) => {
                self.slot.live.touch(now_millis());
                self.on_text(ws, text.as_str()).await
            }
            Message::Binary(_) => {
                self.state.metrics.frame_rejected("binary");
                tracing::warn!("binary frame received; OCPP-J allows text frames only");
                Flow::Close(CloseCode::Unsupported, "OCPP-J uses text frames only")
            }
            // Pings are answered by the WebSocket layer; a close frame is answered there too
            // and the stream then ends.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                self.slot.live.touch(now_millis());
                Flow::Continue
            }
        }
    }

    fn on_read_error(&self, err: WsError) -> Flow {
        match err {
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                self.state.metrics.frame_rejected("oversize");
                tracing::warn!(size, max_size, "frame over the size limit");
                Flow::Close(CloseCode::Size, "frame too large")
            }
            WsError::Utf8(_) => {
                self.state.metrics.frame_rejected("invalid_utf8");
                tracing::warn!("text frame is not valid UTF-8");
                Flow::Close(CloseCode::Invalid, "text frame is not valid UTF-8")
            }
            WsError::Protocol(err) => {
                self.state.metrics.frame_rejected("websocket_protocol");
                tracing::warn!(error = %err, "WebSocket protocol violation");
                Flow::Close(CloseCode::Protocol, "WebSocket protocol violation")
            }
            WsError::ConnectionClosed | WsError::AlreadyClosed => Flow::Stop,
            WsError::Io(err) if super::server::is_unread_abort(&err) => {
                self.state.metrics.frame_rejected("send_timeout");
                tracing::warn!(
                    limit_ms = self.state.settings.command_timeout.as_millis() as u64,
                    "charger does not take what was sent; connection dropped"
                );
                Flow::Stop
            }
            other => {
                tracing::info!(error = %other, "connection lost");
                Flow::Stop
            }
        }
    }

    async fn on_text<S>(&mut self, ws: &mut WebSocketStream<S>, text: &str) -> Flow
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(err) => return self.on_unreadable_frame(ws, &err).await,
        };
        match frame {
            Frame::Call {
                id,
                action,
                payload,
            } => {
                self.state.metrics.ocpp_message(&action, "in", "call");
                let answer = self.answer_call(&id, &action, payload).await;
                let (reply, kind) = match answer {
                    Ok(payload) => (Frame::CallResult { id, payload }, "result"),
                    Err(reject) => (
                        Frame::call_error(&id, self.version, reject.code, &reject.description),
                        "error",
                    ),
                };
                self.state.metrics.ocpp_message(&action, "out", kind);
                self.send(ws, &reply).await
            }
            Frame::CallResult { id, payload } => {
                self.on_call_result(id, payload);
                Flow::Continue
            }
            Frame::CallError {
                id,
                code,
                description,
                details,
            } => {
                self.on_call_error(id, code, description, details);
                Flow::Continue
            }
        }
    }

    async fn on_unreadable_frame<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        err: &FrameError,
    ) -> Flow
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let reason = match err.kind {
            voltgate_ocpp::FrameErrorKind::NotJson(_) => "not_json",
            _ => "malformed_frame",
        };
        self.state.metrics.frame_rejected(reason);
        tracing::warn!(error = %err, "unreadable OCPP-J frame");
        let is_answer = matches!(
            err.message_type_id,
            Some(voltgate_ocpp::CALL_RESULT | voltgate_ocpp::CALL_ERROR)
        );
        if is_answer {
            // A broken answer to our own CALL fails that call now instead of at its timeout.
            let ours = self
                .pending
                .as_ref()
                .is_some_and(|p| Some(p.message_id.as_str()) == err.message_id.as_deref());
            if ours {
                if let Some(pending) = self.pending.take() {
                    let _ = pending.reply.send(Err(CallFailure::CallError {
                        code: ErrorCode::FormationViolation
                            .as_str(self.version)
                            .to_owned(),
                        description: format!("the charger's answer is not valid OCPP-J: {err}"),
                        details: Value::Object(Map::new()),
                    }));
                }
            }
            return Flow::Continue;
        }
        let reply = err.reply(self.version).unwrap_or_else(|| {
            Frame::call_error(
                UNREADABLE_MESSAGE_ID,
                self.version,
                err.code(self.version),
                &err.kind.to_string(),
            )
        });
        self.send(ws, &reply).await
    }

    /// Checks a charger's CALL (handled action, valid payload, or one with only benign
    /// deviations under the charger's tolerance) and runs its handler on the normalised payload.
    async fn answer_call(
        &self,
        message_id: &str,
        action: &str,
        payload: Value,
    ) -> Result<Value, Reject> {
        if !is_charger_initiated(self.version, action) {
            self.state.metrics.frame_rejected("unhandled_action");
            tracing::info!(action, "CALL for an action this gateway does not handle");
            return Err(Reject {
                code: unhandled_action_code(self.version, action),
                description: format!("{action} is not handled by this gateway"),
            });
        }
        let tolerance = self.state.quirks.tolerance(&self.charger_id);
        let payload = match self.state.validator.check_request(
            self.version,
            action,
            payload,
            tolerance,
        ) {
            Ok(accepted) => {
                self.note_deviations(action, &accepted.deviations);
                accepted.payload
            }
            Err(err) => {
                self.state.metrics.frame_rejected("schema");
                tracing::warn!(action, error = %err.description, "CALL payload fails its schema");
                return Err(Reject {
                    code: err.code,
                    description: err.description,
                });
            }
        };
        let ctx = CallContext {
            state: &self.state,
            charger_id: &self.charger_id,
            version: self.version,
            live: &self.slot.live,
        };
        handlers::handle(&ctx, message_id, action, &payload).await
    }

    /// Counts, records and (rate-limited) logs the deviations accepted from this charger.
    fn note_deviations(&self, action: &str, deviations: &[voltgate_ocpp::Deviation]) {
        if deviations.is_empty() {
            return;
        }
        for deviation in deviations {
            self.state
                .metrics
                .schema_deviation(action, deviation.kind.as_str());
        }
        let lines = self.state.quirks.record(
            &self.charger_id,
            action,
            deviations,
            &crate::clock::rfc3339_millis(now_millis()),
            Instant::now().into_std(),
        );
        for line in lines {
            tracing::warn!(
                action,
                kind = line.kind.as_str(),
                path = %line.path,
                example = %line.example,
                unlogged_since_last = line.unlogged,
                "charger payload deviates from its schema; accepted"
            );
        }
    }

    /// Takes the outstanding call if `id` answers it; logs and counts a stray answer.
    fn take_pending(&mut self, id: &str, kind: &str) -> Option<PendingCall> {
        if self.pending.as_ref().is_some_and(|p| p.message_id == id) {
            return self.pending.take();
        }
        self.state.metrics.frame_rejected("unknown_message_id");
        tracing::warn!(
            message_id = id,
            kind,
            "answer to no outstanding CALL ignored"
        );
        None
    }

    fn on_call_result(&mut self, id: String, payload: Value) {
        let Some(pending) = self.take_pending(&id, "CALLRESULT") else {
            return;
        };
        self.state
            .metrics
            .ocpp_message(&pending.action, "in", "result");
        let tolerance = self.state.quirks.tolerance(&self.charger_id);
        let outcome = match self.state.validator.check_response(
            self.version,
            &pending.action,
            payload.clone(),
            tolerance,
        ) {
            Ok(accepted) => {
                self.note_deviations(&pending.action, &accepted.deviations);
                Ok(accepted.payload)
            }
            Err(err) => {
                self.state.metrics.frame_rejected("response_schema");
                tracing::warn!(action = %pending.action, error = %err.description, "charger's CALLRESULT fails its schema");
                Err(CallFailure::CallError {
                    code: ErrorCode::FormationViolation
                        .as_str(self.version)
                        .to_owned(),
                    description: format!(
                        "the charger's {} response is invalid: {}",
                        pending.action, err.description
                    ),
                    details: payload,
                })
            }
        };
        let _ = pending.reply.send(outcome);
    }

    fn on_call_error(&mut self, id: String, code: String, description: String, details: Value) {
        let Some(pending) = self.take_pending(&id, "CALLERROR") else {
            return;
        };
        self.state
            .metrics
            .ocpp_message(&pending.action, "in", "error");
        tracing::info!(action = %pending.action, %code, "charger answered with CALLERROR");
        let _ = pending.reply.send(Err(CallFailure::CallError {
            code,
            description,
            details,
        }));
    }

    /// Sends a queued operator call, unless its caller has already given up.
    async fn send_call<S>(&mut self, ws: &mut WebSocketStream<S>, call: Box<QueuedCall>) -> Flow
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let QueuedCall {
            action,
            payload,
            deadline,
            reply,
        } = *call;
        if reply.is_closed() || Instant::now() >= deadline {
            tracing::debug!(%action, "queued call dropped: its caller gave up");
            let _ = reply.send(Err(CallFailure::Timeout));
            return Flow::Continue;
        }
        self.next_message_id += 1;
        let message_id = self.next_message_id.to_string();
        let frame = Frame::Call {
            id: message_id.clone(),
            action,
            payload,
        };
        let flow = self.send(ws, &frame).await;
        let Frame::Call { action, .. } = frame else {
            return flow;
        };
        if matches!(flow, Flow::Continue) {
            self.state.metrics.ocpp_message(&action, "out", "call");
            self.pending = Some(PendingCall {
                message_id,
                action,
                deadline,
                reply,
            });
        } else {
            let _ = reply.send(Err(CallFailure::Disconnected));
        }
        flow
    }

    async fn send<S>(&self, ws: &mut WebSocketStream<S>, frame: &Frame) -> Flow
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.send_message(ws, Message::text(frame.to_text())).await
    }

    /// Sends one message; a charger that does not take it within the command timeout is
    /// dropped.
    async fn send_message<S>(&self, ws: &mut WebSocketStream<S>, message: Message) -> Flow
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limit = self.state.settings.command_timeout;
        match tokio::time::timeout(limit, ws.send(message)).await {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(err)) => {
                tracing::info!(error = %err, "sending to the charger failed");
                Flow::Stop
            }
            Err(_) => {
                self.state.metrics.frame_rejected("send_timeout");
                tracing::warn!(
                    limit_ms = limit.as_millis() as u64,
                    "charger does not read; connection dropped"
                );
                Flow::Stop
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use serde_json::json;
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::Message;
    use voltgate_ocpp::{Frame, OcppVersion};
    use voltgate_policy::PrincipalKind;
    use voltgate_store::{AuditFilter, TransactionFilter};

    use super::super::registry::CallFailure;
    use super::super::test_support::*;

    const BOOT_16: &str =
        r#"{"chargePointVendor":"Acme","chargePointModel":"W1","firmwareVersion":"1.2.3"}"#;

    fn error_code(frame: &Frame) -> &str {
        match frame {
            Frame::CallError { code, .. } => code,
            other => panic!("expected a CALLERROR, got {other:?}"),
        }
    }

    /// Per-connection memory budget: the session's own state machine, the WebSocket and its
    /// buffers must stay small enough for many thousands of idle chargers.
    #[tokio::test]
    async fn an_idle_session_is_small() {
        let (state, _shutdown) = memory_state().await;
        let (_charger_io, gateway_io) = tokio::io::duplex(1024);
        let config = super::super::server::websocket_config(state.settings.max_frame_bytes);
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            gateway_io,
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            Some(config),
        )
        .await;
        let session = super::run(ws, state.clone(), "CP-1".to_owned(), OcppVersion::V16);
        let size = std::mem::size_of_val(&session);
        eprintln!("session future: {size} bytes");
        assert!(
            size <= SESSION_FUTURE_BUDGET,
            "session future is {size} bytes"
        );
    }

    const SESSION_FUTURE_BUDGET: usize = 4096;

    #[tokio::test]
    async fn boot_and_heartbeat_are_answered_and_validate() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let boot = charger
            .call_ok("BootNotification", serde_json::from_str(BOOT_16).unwrap())
            .await;
        assert_eq!(boot["status"], "Accepted");
        assert_eq!(boot["interval"], 300);
        state
            .validator
            .validate_response(OcppVersion::V16, "BootNotification", &boot)
            .expect("boot response is schema-valid");
        let heartbeat = charger.call_ok("Heartbeat", json!({})).await;
        state
            .validator
            .validate_response(OcppVersion::V16, "Heartbeat", &heartbeat)
            .expect("heartbeat response is schema-valid");

        let live = state.chargers.live("CP-1").expect("live state");
        assert!(live.connected);
        assert_eq!(live.vendor.as_deref(), Some("Acme"));
        assert_eq!(live.firmware.as_deref(), Some("1.2.3"));
        assert!(live.last_message_at.is_some());
    }

    #[tokio::test]
    async fn unreadable_frames_get_callerrors_and_the_connection_stays_up() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;

        charger.send_text("this is not json").await;
        match charger.next_frame().await {
            Frame::CallError { id, code, .. } => {
                assert_eq!(id, "-1");
                assert_eq!(code, "FormationViolation");
            }
            other => panic!("{other:?}"),
        }
        charger.send_text(r#"[9,"m1","Heartbeat",{}]"#).await;
        let answer = charger.next_frame().await;
        assert_eq!(answer.id(), "m1");
        assert_eq!(error_code(&answer), "ProtocolError");

        charger.call_ok("Heartbeat", json!({})).await;
        assert!(state.metrics.render().contains(r#"reason="not_json""#));
    }

    #[tokio::test]
    async fn version_201_uses_its_own_error_spelling() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, _task) = connect(&state, "CP-2", OcppVersion::V201).await;
        charger.send_text("{").await;
        let answer = charger.next_frame().await;
        assert_eq!(answer.id(), "-1");
        assert_eq!(error_code(&answer), "FormatViolation");
        charger.send_text(r#"[2,"m1","Heartbeat",{}]"#).await;
        assert!(matches!(
            charger.next_frame().await,
            Frame::CallResult { .. }
        ));
    }

    #[tokio::test]
    async fn schema_violations_and_unhandled_actions_are_refused_before_any_handler() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let missing_model = charger
            .call("BootNotification", json!({"chargePointVendor": "Acme"}))
            .await;
        assert_eq!(error_code(&missing_model), "OccurenceConstraintViolation");
        let wrong_type = charger
            .call(
                "StatusNotification",
                json!({"connectorId": "one", "errorCode": "NoError", "status": "Available"}),
            )
            .await;
        assert_eq!(error_code(&wrong_type), "TypeConstraintViolation");
        let unknown = charger.call("MakeCoffee", json!({})).await;
        assert_eq!(error_code(&unknown), "NotImplemented");
        let wrong_direction = charger.call("Reset", json!({"type": "Soft"})).await;
        assert_eq!(error_code(&wrong_direction), "NotSupported");

        let live = state.chargers.live("CP-1").unwrap();
        assert_eq!(live.vendor, None, "the invalid boot was not handled");
        assert!(live.connectors.is_empty());
    }

    #[tokio::test]
    async fn benign_deviations_are_accepted_normalised_counted_and_recorded_unless_strict() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let boot = json!({"chargePointVendor": "United Chargers",
                          "chargePointModel": "Grizzl-E Smart 40A 1ph"});
        let answer = charger.call_ok("BootNotification", boot.clone()).await;
        assert_eq!(answer["status"], "Accepted");
        let live = state.chargers.live("CP-1").unwrap();
        assert_eq!(live.model.as_deref(), Some("Grizzl-E Smart 40A 1ph"));
        assert!(state.metrics.render().contains(
            r#"voltgate_schema_deviations_total{action="BootNotification",kind="string_too_long"} 1"#
        ));
        let summary = state.quirks.summary("CP-1");
        assert_eq!(summary.deviations.len(), 1);
        assert_eq!(summary.deviations[0].last.path, "/chargePointModel");

        charger
            .call_ok(
                "StatusNotification",
                json!({"connectorId": "2", "errorCode": "NoError", "status": "Available"}),
            )
            .await;
        let live = state.chargers.live("CP-1").unwrap();
        assert!(live.connectors.contains_key(&2), "{:?}", live.connectors);

        state
            .quirks
            .set_override("CP-1", Some(voltgate_ocpp::Tolerance::Strict));
        let refused = charger.call("BootNotification", boot).await;
        assert_eq!(error_code(&refused), "PropertyConstraintViolation");
        assert_eq!(state.quirks.summary("CP-1").deviations[0].count, 1);
    }

    #[tokio::test]
    async fn binary_frames_close_with_1003() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, task) = connect(&state, "CP-1", OcppVersion::V16).await;
        charger
            .ws
            .send(Message::binary(vec![1u8, 2, 3]))
            .await
            .unwrap();
        assert_eq!(charger.close_code().await, Some(1003));
        drop(charger);
        task.await.unwrap();
        assert!(!state.chargers.is_connected("CP-1"));
        assert!(state.metrics.render().contains(r#"reason="binary""#));
    }

    #[tokio::test]
    async fn oversize_frames_close_with_1009() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let big = format!(
            r#"[2,"m1","DataTransfer",{{"vendorId":"x","data":"{}"}}]"#,
            "a".repeat(state.settings.max_frame_bytes)
        );
        charger.send_text(&big).await;
        assert_eq!(charger.close_code().await, Some(1009));
        drop(charger);
        task.await.unwrap();
        assert!(state.metrics.render().contains(r#"reason="oversize""#));
    }

    #[tokio::test]
    async fn status_notifications_update_live_connectors() {
        let (state, _shutdown) = memory_state().await;
        let (mut v16, _a) = connect(&state, "CP-1", OcppVersion::V16).await;
        v16.call_ok(
            "StatusNotification",
            json!({"connectorId": 2, "errorCode": "GroundFailure", "status": "Faulted"}),
        )
        .await;
        let connector = &state.chargers.live("CP-1").unwrap().connectors[&2];
        assert_eq!(connector.status, "Faulted");
        assert_eq!(connector.error_code.as_deref(), Some("GroundFailure"));

        let (mut v201, _b) = connect(&state, "CP-2", OcppVersion::V201).await;
        v201.call_ok(
            "StatusNotification",
            json!({"timestamp": "2024-05-01T12:00:00Z", "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}),
        )
        .await;
        let live = state.chargers.live("CP-2").unwrap();
        assert_eq!(live.connectors[&1].status, "Occupied");
        assert_eq!(live.ocpp_version.as_deref(), Some("2.0.1"));
    }

    #[tokio::test]
    async fn the_hot_path_never_touches_the_store() {
        let store = Arc::new(RefusingStore::default());
        let (state, _shutdown) = state_on(store.clone(), settings());
        let (mut v16, _a) = connect(&state, "CP-1", OcppVersion::V16).await;
        let (mut v201, _b) = connect(&state, "CP-2", OcppVersion::V201).await;
        let at_connect = store.calls();
        v16.call_ok("Heartbeat", json!({})).await;
        v16.call_ok(
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
        )
        .await;
        v16.call_ok(
            "MeterValues",
            json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-05-01T12:00:00Z", "sampledValue": [{"value": "10"}]}]}),
        )
        .await;
        v201.call_ok("Heartbeat", json!({})).await;
        v201.call_ok(
            "MeterValues",
            json!({"evseId": 1, "meterValue": [{"timestamp": "2024-05-01T12:00:00Z", "sampledValue": [{"value": 10}]}]}),
        )
        .await;
        assert_eq!(store.calls(), at_connect);

        let refused = v16
            .call(
                "StartTransaction",
                json!({"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2024-05-01T12:00:00Z"}),
            )
            .await;
        assert_eq!(error_code(&refused), "InternalError");
        assert!(store.calls() > at_connect);
    }

    #[tokio::test]
    async fn operator_calls_round_trip_and_charger_errors_come_back() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let registry_state = state.clone();
        let command = tokio::spawn(async move {
            registry_state
                .chargers
                .call(
                    crate::gate::AuditedCommand::for_tests(),
                    "CP-1",
                    "Reset",
                    json!({"type": "Soft"}),
                    Duration::from_secs(5),
                )
                .await
        });
        let Frame::Call {
            id,
            action,
            payload,
        } = charger.next_frame().await
        else {
            panic!("expected the CALL");
        };
        assert_eq!(action, "Reset");
        assert_eq!(payload, json!({"type": "Soft"}));
        charger
            .send_text(
                &Frame::CallResult {
                    id,
                    payload: json!({"status": "Accepted"}),
                }
                .to_text(),
            )
            .await;
        assert_eq!(
            command.await.unwrap().unwrap(),
            json!({"status": "Accepted"})
        );

        let registry_state = state.clone();
        let command = tokio::spawn(async move {
            registry_state
                .chargers
                .call(
                    crate::gate::AuditedCommand::for_tests(),
                    "CP-1",
                    "ClearCache",
                    json!({}),
                    Duration::from_secs(5),
                )
                .await
        });
        let call = charger.next_frame().await;
        charger
            .send_text(
                &Frame::CallError {
                    id: call.id().to_owned(),
                    code: "NotSupported".into(),
                    description: "no cache".into(),
                    details: json!({}),
                }
                .to_text(),
            )
            .await;
        match command.await.unwrap() {
            Err(CallFailure::CallError {
                code, description, ..
            }) => {
                assert_eq!(code, "NotSupported");
                assert_eq!(description, "no cache");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_invalid_callresult_fails_the_command_with_formation_violation() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let registry_state = state.clone();
        let command = tokio::spawn(async move {
            registry_state
                .chargers
                .call(
                    crate::gate::AuditedCommand::for_tests(),
                    "CP-1",
                    "Reset",
                    json!({"type": "Hard"}),
                    Duration::from_secs(5),
                )
                .await
        });
        let call = charger.next_frame().await;
        charger
            .send_text(
                &Frame::CallResult {
                    id: call.id().to_owned(),
                    payload: json!({"status": "Maybe"}),
                }
                .to_text(),
            )
            .await;
        match command.await.unwrap() {
            Err(CallFailure::CallError { code, .. }) => assert_eq!(code, "FormationViolation"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_outstanding_call_at_a_time_and_timeouts_free_the_slot() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        // One round trip first: the session reads the store when it starts, and while it waits
        // on the store's thread the paused clock may jump to the first call's deadline.
        charger.call_ok("Heartbeat", json!({})).await;
        let spawn_call = |action: &'static str, timeout: Duration| {
            let state = state.clone();
            tokio::spawn(async move {
                state
                    .chargers
                    .call(
                        crate::gate::AuditedCommand::for_tests(),
                        "CP-1",
                        action,
                        json!({}),
                        timeout,
                    )
                    .await
            })
        };
        let first = spawn_call("ClearCache", Duration::from_secs(10));
        let first_call = charger.next_frame().await;
        let second = spawn_call("Heartbeat", Duration::from_secs(60));
        tokio::task::yield_now().await;

        // The second CALL is held back while the first is outstanding: it appears only after
        // the first timed out, 10 s later.
        let started = tokio::time::Instant::now();
        let second_call = charger.next_frame().await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(matches!(first.await.unwrap(), Err(CallFailure::Timeout)));
        assert!(matches!(second_call, Frame::Call { ref action, .. } if action == "Heartbeat"));
        assert_ne!(first_call.id(), second_call.id());

        // A late answer to the first call is ignored; the second completes normally.
        charger
            .send_text(
                &Frame::CallResult {
                    id: first_call.id().to_owned(),
                    payload: json!({"status": "Accepted"}),
                }
                .to_text(),
            )
            .await;
        charger
            .send_text(
                &Frame::CallResult {
                    id: second_call.id().to_owned(),
                    payload: json!({"currentTime": "2024-05-01T12:00:00Z"}),
                }
                .to_text(),
            )
            .await;
        assert!(second.await.unwrap().is_ok());
        assert!(state
            .metrics
            .render()
            .contains(r#"reason="unknown_message_id""#));
    }

    #[tokio::test]
    async fn a_reconnect_replaces_the_old_connection() {
        let (state, _shutdown) = memory_state().await;
        let (mut old, old_task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let registry_state = state.clone();
        let pending = tokio::spawn(async move {
            registry_state
                .chargers
                .call(
                    crate::gate::AuditedCommand::for_tests(),
                    "CP-1",
                    "ClearCache",
                    json!({}),
                    Duration::from_secs(30),
                )
                .await
        });
        let _unanswered = old.next_frame().await;

        let (mut new, _new_task) = connect(&state, "CP-1", OcppVersion::V201).await;
        assert_eq!(old.close_code().await, Some(1000));
        drop(old);
        old_task.await.unwrap();
        assert!(matches!(
            pending.await.unwrap(),
            Err(CallFailure::Disconnected)
        ));
        assert!(state.chargers.is_connected("CP-1"));
        assert_eq!(state.chargers.version("CP-1"), Some(OcppVersion::V201));
        assert_eq!(state.chargers.connected_count(), 1);
        new.call_ok("Heartbeat", json!({})).await;
    }

    #[tokio::test]
    async fn close_all_sends_going_away() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let closing = {
            let state = state.clone();
            tokio::spawn(async move { state.chargers.close_all().await })
        };
        assert_eq!(charger.close_code().await, Some(1001));
        drop(charger);
        task.await.unwrap();
        closing.await.unwrap();
        assert_eq!(state.chargers.connected_count(), 0);
    }

    #[tokio::test]
    async fn id_tokens_are_decided_by_the_engine_audited_and_answered() {
        let (state, _shutdown) = memory_state().await;
        add_token_holder(
            &state,
            "ops",
            PrincipalKind::System,
            id_token("TAG-OPS", "ops"),
        )
        .await;
        // The preset's `user` role may be held on a single station only where `pro` is on.
        state
            .estate
            .engine_mut()
            .set_module(INSTALLATION, "pro", true)
            .unwrap();
        for (driver, station) in [("dave", "CP-1"), ("erin", "CP-2"), ("bob", "CP-1")] {
            let tag = format!("TAG-{}", driver.to_uppercase());
            add_token_holder(
                &state,
                driver,
                PrincipalKind::Driver,
                id_token(&tag, driver),
            )
            .await;
            state
                .estate
                .engine_mut()
                .assign(driver, "user", station)
                .unwrap();
        }
        state.estate.engine_mut().set_blocked("bob", true).unwrap();
        let mut lost = id_token("TAG-LOST", "dave");
        lost.blocked = true;
        state.store.put_id_token(&lost).await.unwrap();
        let mut old = id_token("TAG-OLD", "ops");
        old.expires_at = Some("2020-01-01T00:00:00Z".into());
        state.store.put_id_token(&old).await.unwrap();

        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let expected = [
            ("TAG-OPS", "Accepted"),
            ("TAG-DAVE", "Accepted"),
            ("TAG-ERIN", "Invalid"),
            ("TAG-BOB", "Blocked"),
            ("TAG-LOST", "Blocked"),
            ("TAG-OLD", "Expired"),
            ("NOPE", "Invalid"),
        ];
        for (tag, status) in expected {
            let answer = charger.call_ok("Authorize", json!({"idTag": tag})).await;
            assert_eq!(answer["idTagInfo"]["status"], status, "{tag}");
        }
        let audit = state
            .store
            .audit(&AuditFilter {
                limit: 10,
                after_id: None,
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), expected.len());
        assert!(audit
            .iter()
            .all(|r| r.record.action == "charge" && r.record.resource == "CP-1"));
        let unknown = &audit[0].record;
        assert_eq!(unknown.principal, "id-token:NOPE");
        assert!(!unknown.allowed);
        let erin = &audit[4].record;
        assert_eq!(
            erin.principal, "id-token:TAG-ERIN",
            "a driver who may not charge here is not named in this station's records"
        );
        assert_eq!(erin.outcome.as_deref(), Some("Invalid"));
        let dave = &audit[5].record;
        assert_eq!(dave.principal, "dave");
        assert!(dave.allowed);
        let metrics = state.metrics.render();
        assert!(metrics
            .contains(r#"voltgate_authz_decisions_total{action="charge",result="allowed"} 2"#));
        assert!(metrics
            .contains(r#"voltgate_authz_decisions_total{action="charge",result="denied"} 5"#));
    }

    #[tokio::test]
    async fn v16_transactions_are_stored_before_the_answer_and_idempotent() {
        let (state, _shutdown) = memory_state().await;
        add_token_holder(
            &state,
            "ops",
            PrincipalKind::System,
            id_token("TAG-OPS", "ops"),
        )
        .await;
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let start = r#"[2,"s1","StartTransaction",{"connectorId":1,"idTag":"TAG-OPS","meterStart":100,"timestamp":"2024-05-01T12:00:00Z"}]"#;
        charger.send_text(start).await;
        let Frame::CallResult { payload: first, .. } = charger.next_frame().await else {
            panic!("expected a CALLRESULT");
        };
        assert_eq!(first["idTagInfo"]["status"], "Accepted");
        let transaction_id = first["transactionId"].as_i64().expect("numeric id");
        let stored = state
            .store
            .transactions(&TransactionFilter {
                charger: Some("CP-1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].id, transaction_id);
        assert_eq!(stored[0].principal.as_deref(), Some("ops"));
        assert_eq!(stored[0].meter_start, Some(100.0));

        charger.send_text(start).await;
        let Frame::CallResult { payload: retry, .. } = charger.next_frame().await else {
            panic!("expected a CALLRESULT");
        };
        assert_eq!(
            retry["transactionId"].as_i64(),
            Some(transaction_id),
            "a retry gets the same id"
        );
        assert_eq!(
            state.chargers.live("CP-1").unwrap().active_transactions,
            vec![transaction_id.to_string()]
        );

        charger
            .call_ok(
                "MeterValues",
                json!({"connectorId": 1, "transactionId": transaction_id, "meterValue": [{"timestamp": "2024-05-01T12:10:00Z", "sampledValue": [{"value": "2000"}]}]}),
            )
            .await;
        charger
            .call_ok(
                "StopTransaction",
                json!({"transactionId": transaction_id, "meterStop": 5000, "timestamp": "2024-05-01T13:00:00Z", "reason": "Local"}),
            )
            .await;
        let stopped = state
            .store
            .transactions(&TransactionFilter {
                charger: Some("CP-1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(stopped[0].meter_stop, Some(5000.0));
        assert_eq!(stopped[0].stop_reason.as_deref(), Some("Local"));
        assert!(state
            .chargers
            .live("CP-1")
            .unwrap()
            .active_transactions
            .is_empty());
    }

    #[tokio::test]
    async fn v201_transaction_events_follow_the_transaction() {
        let (state, _shutdown) = memory_state().await;
        add_token_holder(
            &state,
            "ops",
            PrincipalKind::System,
            id_token("TAG-OPS", "ops"),
        )
        .await;
        let (mut charger, _task) = connect(&state, "CP-2", OcppVersion::V201).await;
        let event = |kind: &str, seq: i64, energy: f64| {
            json!({
                "eventType": kind,
                "timestamp": "2024-05-01T12:00:00Z",
                "triggerReason": "Authorized",
                "seqNo": seq,
                "transactionInfo": {"transactionId": "tx-1", "stoppedReason": "EVDisconnected"},
                "evse": {"id": 1, "connectorId": 1},
                "meterValue": [{"timestamp": "2024-05-01T12:00:00Z", "sampledValue": [{"value": energy}]}],
            })
        };
        let mut started = event("Started", 0, 1000.0);
        started["idToken"] = json!({"idToken": "TAG-OPS", "type": "ISO14443"});
        let answer = charger.call_ok("TransactionEvent", started).await;
        assert_eq!(answer["idTokenInfo"]["status"], "Accepted");
        state
            .validator
            .validate_response(OcppVersion::V201, "TransactionEvent", &answer)
            .expect("schema-valid answer");
        assert_eq!(
            state.chargers.live("CP-2").unwrap().active_transactions,
            vec!["tx-1".to_owned()]
        );

        let updated = charger
            .call_ok("TransactionEvent", event("Updated", 1, 2000.0))
            .await;
        assert_eq!(updated, json!({}));
        charger
            .call_ok("TransactionEvent", event("Ended", 2, 3500.0))
            .await;

        let stored = state
            .store
            .transaction_by_key("CP-2", "tx-1")
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(stored.connector, 1);
        assert_eq!(stored.principal.as_deref(), Some("ops"));
        assert_eq!(stored.meter_start, Some(1000.0));
        assert_eq!(stored.meter_stop, Some(3500.0));
        assert_eq!(stored.stop_reason.as_deref(), Some("EVDisconnected"));
        assert!(state
            .chargers
            .live("CP-2")
            .unwrap()
            .active_transactions
            .is_empty());
    }

    #[tokio::test]
    async fn v201_notifications_are_acknowledged() {
        let (state, _shutdown) = memory_state().await;
        let (mut charger, _task) = connect(&state, "CP-2", OcppVersion::V201).await;
        let data = charger
            .call_ok("DataTransfer", json!({"vendorId": "acme"}))
            .await;
        assert_eq!(data["status"], "UnknownVendorId");
        charger
            .call_ok("FirmwareStatusNotification", json!({"status": "Installed"}))
            .await;
        charger
            .call_ok("LogStatusNotification", json!({"status": "Uploading"}))
            .await;
        charger
            .call_ok(
                "SecurityEventNotification",
                json!({"type": "FirmwareUpdated", "timestamp": "2024-05-01T12:00:00Z"}),
            )
            .await;
        charger
            .call_ok(
                "NotifyEvent",
                json!({"generatedAt": "2024-05-01T12:00:00Z", "seqNo": 0, "eventData": [{
                    "eventId": 1, "timestamp": "2024-05-01T12:00:00Z", "trigger": "Alerting",
                    "actualValue": "1", "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "EVSE"}, "variable": {"name": "Problem"}}]}),
            )
            .await;
        let live = state.chargers.live("CP-2").unwrap();
        assert_eq!(live.firmware_status.as_deref(), Some("Installed"));
        assert_eq!(live.log_status.as_deref(), Some("Uploading"));
    }

    /// A seeded in-memory state whose sessions ping after `interval` of silence and give up
    /// `timeout` later.
    async fn keep_alive_state(
        interval: Duration,
        timeout: Duration,
    ) -> (crate::state::SharedState, tokio::sync::watch::Sender<bool>) {
        let store = voltgate_store::open("sqlite::memory:")
            .await
            .expect("in-memory store");
        let settings = crate::state::Settings {
            command_timeout: Duration::from_secs(60),
            keep_alive: Some(super::super::KeepAlive {
                ping_interval: interval,
                pong_timeout: timeout,
            }),
            ..settings()
        };
        let (state, shutdown) = state_on(store, settings);
        seed_estate(&state).await;
        (state, shutdown)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_charger_is_pinged_then_dropped_and_its_call_fails_as_disconnected() {
        let (state, _shutdown) =
            keep_alive_state(Duration::from_secs(10), Duration::from_secs(5)).await;
        let (mut charger, task) = connect(&state, "CP-1", OcppVersion::V16).await;
        charger.call_ok("Heartbeat", json!({})).await;
        let last_heard = tokio::time::Instant::now();
        let registry_state = state.clone();
        let command = tokio::spawn(async move {
            registry_state
                .chargers
                .call(
                    crate::gate::AuditedCommand::for_tests(),
                    "CP-1",
                    "ClearCache",
                    json!({}),
                    Duration::from_secs(60),
                )
                .await
        });
        // The charger stops reading: the CALL, the ping and the close frame pile up unread.
        task.await.expect("the session ends by itself");
        let dropped_after = last_heard.elapsed();
        assert!(
            dropped_after >= Duration::from_secs(15)
                && dropped_after < Duration::from_secs(15) + Duration::from_millis(50),
            "dropped after {dropped_after:?}"
        );
        assert!(matches!(
            command.await.unwrap(),
            Err(CallFailure::Disconnected)
        ));
        assert!(!state.chargers.is_connected("CP-1"));
        assert!(!state.chargers.live("CP-1").unwrap().connected);
        assert_eq!(state.chargers.connected_count(), 0);
        assert!(state
            .metrics
            .render()
            .contains(r#"voltgate_ocpp_frames_rejected_total{reason="ping_timeout"} 1"#));

        // What the charger never read, as raw bytes (reading it as WebSocket frames would
        // try to answer the ping on a connection that is gone): the CALL, an empty ping, then
        // a close frame with code 1001.
        let mut unread = Vec::new();
        charger
            .ws
            .into_inner()
            .read_to_end(&mut unread)
            .await
            .unwrap();
        let ping_at = unread
            .windows(2)
            .position(|w| w == [0x89, 0x00])
            .expect("an empty ping frame");
        let close = [0x88, 2 + b"no answer to ping".len() as u8, 0x03, 0xE9];
        let close_at = unread
            .windows(close.len())
            .position(|w| w == close)
            .expect("a close frame with 1001");
        assert!(ping_at < close_at);
        assert!(unread.ends_with(b"no answer to ping"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_charger_that_reads_answers_every_ping_and_stays_connected() {
        let (state, _shutdown) =
            keep_alive_state(Duration::from_secs(10), Duration::from_secs(5)).await;
        let (mut charger, task) = connect(&state, "CP-1", OcppVersion::V16).await;
        charger.call_ok("Heartbeat", json!({})).await;
        // Sends nothing of its own; reading is enough for the WebSocket layer to pong. CALLs
        // are answered so a command can go through at the end.
        let mut ws = charger.ws;
        let reader = tokio::spawn(async move {
            let mut pings = 0u32;
            while let Some(Ok(message)) = ws.next().await {
                match message {
                    Message::Ping(_) => pings += 1,
                    Message::Text(text) => {
                        let call = Frame::parse(text.as_str()).unwrap();
                        let answer = Frame::CallResult {
                            id: call.id().to_owned(),
                            payload: json!({"status": "Accepted"}),
                        };
                        ws.send(Message::text(answer.to_text())).await.unwrap();
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            pings
        });
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(state.chargers.is_connected("CP-1"));
        let answer = state
            .chargers
            .call(
                crate::gate::AuditedCommand::for_tests(),
                "CP-1",
                "ClearCache",
                json!({}),
                Duration::from_secs(5),
            )
            .await
            .expect("the idle charger still answers");
        assert_eq!(answer["status"], "Accepted");
        assert!(!state.metrics.render().contains("ping_timeout"));

        let closing = {
            let state = state.clone();
            tokio::spawn(async move { state.chargers.close_all().await })
        };
        let pings = reader.await.unwrap();
        task.await.unwrap();
        closing.await.unwrap();
        // One ping per 10 s of silence, answered at once.
        assert!((9..=10).contains(&pings), "{pings} pings in 100 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_charger_is_never_pinged() {
        let (state, _shutdown) =
            keep_alive_state(Duration::from_secs(10), Duration::from_secs(5)).await;
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        for n in 0..30 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            charger
                .send_text(&format!(r#"[2,"h{n}","Heartbeat",{{}}]"#))
                .await;
            match charger.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    assert_eq!(Frame::parse(text.as_str()).unwrap().id(), format!("h{n}"));
                }
                other => panic!("after {n} heartbeats: {other:?}"),
            }
        }
        assert!(state.chargers.is_connected("CP-1"));
    }

    #[tokio::test(start_paused = true)]
    async fn without_keep_alive_a_silent_charger_is_neither_pinged_nor_dropped() {
        let (state, _shutdown) = memory_state().await;
        assert_eq!(state.settings.keep_alive, None);
        let (mut charger, _task) = connect(&state, "CP-1", OcppVersion::V16).await;
        charger.call_ok("Heartbeat", json!({})).await;
        let nothing = tokio::time::timeout(Duration::from_secs(24 * 3600), charger.ws.next()).await;
        assert!(nothing.is_err(), "the gateway sent {nothing:?}");
        assert!(state.chargers.is_connected("CP-1"));
    }

    #[tokio::test]
    async fn a_charger_that_never_reads_is_dropped_after_the_command_timeout() {
        let store = voltgate_store::open("sqlite::memory:")
            .await
            .expect("in-memory store");
        let settings = crate::state::Settings {
            command_timeout: Duration::from_millis(300),
            ..settings()
        };
        let (state, _shutdown) = state_on(store, settings);
        seed_estate(&state).await;
        let (charger, task) = connect(&state, "CP-1", OcppVersion::V16).await;
        let mut sink = charger.ws;
        // Sends CALLs and never reads: the gateway's answers fill the pipe until its writes
        // block, then its reads stop too and this writer blocks as well.
        let writer = tokio::spawn(async move {
            for n in 0.. {
                let frame = format!(r#"[2,"h{n}","Heartbeat",{{}}]"#);
                if sink.send(Message::text(frame)).await.is_err() {
                    return n;
                }
            }
            unreachable!("the loop ends only by a send error");
        });
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the session ends by itself")
            .expect("the session does not panic");
        let waited = started.elapsed();
        assert!(
            waited >= state.settings.command_timeout,
            "dropped after {waited:?}"
        );
        assert!(waited <= Duration::from_secs(10), "{waited:?}");
        assert!(!state.chargers.is_connected("CP-1"));
        assert!(state.metrics.render().contains(r#"reason="send_timeout""#));
        let sent = writer.await.unwrap();
        assert!(sent > 100, "only {sent} frames before the pipe filled");
    }
}
