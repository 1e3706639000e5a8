//! Where chargers come in: the TCP accept loop and the WebSocket handshake that decides who
//! may connect, before one session task per connection takes over.
//!
//! The handshake refuses, with an HTTP status and a plain-text reason:
//! - a path that is not `{prefix}/{id}` (404) or an id that is not a valid charger id (400);
//! - no OCPP subprotocol offered, or none we speak (400; `ocpp2.0.1` is preferred over
//!   `ocpp1.6` when both are offered);
//! - an unknown charger id, unless the gateway runs with `--auto-register SCOPE`, in which case
//!   the charger is created under that scope (audited) once the handshake is done, within the
//!   registration budget per address and in total (429 beyond it, see
//!   [`crate::throttle::RegistrationLimit`]). A charger registered without proving who it is
//!   (profile 0) is *pending*: no local list, every card answered as unknown, until an operator
//!   approves it (`POST /api/v1/chargers/{id}/approve`). Ids follow the one rule the API uses
//!   ([`voltgate_policy::is_valid_id`]);
//! - a charger refused by its OCPP security profile (OCPP 1.6 security whitepaper, OCPP 2.0.1
//!   part 2 A00): profile 1 needs HTTP Basic credentials (user = charger id), profile 2 the same
//!   over TLS, profile 3 a TLS client certificate that chained to the configured CA and whose
//!   one subject CN is the charger id (alternative names identify nothing, several CNs are
//!   refused). Profile 0 needs nothing.
//! - an address that failed authentication for this charger id (or for many ids) too often
//!   lately (429 with `Retry-After`, see [`crate::throttle`]).
//!
//! An unknown id and every refusal for credentials, certificate or transport are answered with
//! the same 401 (`WWW-Authenticate: Basic`) and body, and an unknown id with a password is
//! checked against a dummy hash, so an unauthenticated client cannot tell which charger ids
//! exist or how they authenticate. The precise reason is logged, counted in
//! `voltgate_ocpp_handshakes_refused_total{reason}`, audited for registered ids
//! (`charger.connect`, principal `charger:{id}`) and taken from the failure budget. Passwords
//! are verified against the stored Argon2id hash on a blocking thread (a few at a time, a
//! failure reserved beforehand) and never logged; the last good password per charger is
//! remembered as a keyed digest so reconnect storms stay cheap.
//!
//! The charger lookup needs the store, which is async, while the handshake callback of
//! tokio-tungstenite is synchronous. So the request head is read first (bounded, with a
//! timeout), the charger looked up, and the head replayed into the handshake through
//! [`Rewind`]; the callback then makes the whole decision from the request it is shown.
//!
//! WebSocket buffers are sized for many idle connections: a small read buffer, writes
//! flushed per message, and frames/messages capped at `max_frame_bytes`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, SEC_WEBSOCKET_PROTOCOL,
    WWW_AUTHENTICATE,
};
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;
use voltgate_ocpp::OcppVersion;
use voltgate_store::ChargerRecord;

use super::session;
use crate::audit;
use crate::state::{AppState, SharedState};
use crate::tls::CertificateIdentityError;
use voltgate_estate::ChangeError;

/// The whole handshake (request head, lookup, response) must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest HTTP request head accepted (request line and headers).
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// WebSocket read buffer per connection; larger frames grow it only while they are read.
const READ_BUFFER_BYTES: usize = 2 * 1024;
/// Pause after an accept error (e.g. out of file descriptors) so the loop does not spin.
pub(crate) const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// How a connection reached the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    Plain,
    /// TLS. `client_identity` is the charge point id the client certificate names (its one
    /// subject CN), when one was presented (it chained to the configured CA, or the TLS
    /// handshake would have failed).
    Tls {
        client_identity: Option<Result<String, CertificateIdentityError>>,
    },
}

/// Accepts charger connections until shutdown begins.
pub(crate) async fn serve(listener: TcpListener, state: SharedState) -> io::Result<()> {
    accept_until_shutdown(listener, state, "ocpp", |stream, peer, state| {
        connection(stream, peer, state, Transport::Plain)
    })
    .await
}

/// The one accept loop of both charger listeners, plain and TLS: hands each accepted
/// connection to `on_connection` in a task of its own until shutdown begins. A failed accept
/// (out of file descriptors, say) is counted under `listener` and retried after a pause.
pub(crate) async fn accept_until_shutdown<F, Fut>(
    listener: TcpListener,
    state: SharedState,
    listener_label: &'static str,
    on_connection: F,
) -> io::Result<()>
where
    F: Fn(tokio::net::TcpStream, SocketAddr, SharedState) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut shutdown = state.shutdown.clone();
    let mut watching_shutdown = true;
    while !*shutdown.borrow() {
        tokio::select! {
            changed = shutdown.changed(), if watching_shutdown => {
                // An error means nobody can signal shutdown any more: serve until the task
                // is dropped.
                watching_shutdown = changed.is_ok();
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    bound_unacknowledged_sends(&stream, state.settings.command_timeout);
                    tokio::spawn(on_connection(stream, peer, state.clone()));
                }
                Err(err) => {
                    state.metrics.accept_error(listener_label, &err);
                    tracing::warn!(listener = listener_label, error = %err, "accepting a charger connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    tracing::info!(
        listener = listener_label,
        "no longer accepting charger connections"
    );
    Ok(())
}

/// Bounds how long data sent to a charger may stay unacknowledged, or the charger's receive
/// window stay shut, before the kernel gives the connection up (`TCP_USER_TIMEOUT`). The
/// session's own write deadline only fires while a write blocks, and none does while the
/// socket's send buffer (grown by the kernel to megabytes) still takes our answers and calls:
/// a charger that stops reading, and whose own sends stall with it, would otherwise stay
/// "connected" with every command timing out until the keep-alive gives it up. The session
/// sees the abort as a timed-out read ([`is_unread_abort`]).
fn bound_unacknowledged_sends(stream: &tokio::net::TcpStream, limit: Duration) {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    if let Err(err) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(limit)) {
        tracing::debug!(error = %err, "TCP_USER_TIMEOUT not set");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
    let _ = (stream, limit);
}

/// Whether a read error is the kernel giving the connection up under
/// [`bound_unacknowledged_sends`]: what we sent was not taken in time.
pub(crate) fn is_unread_abort(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::TimedOut
}

/// One connection from accept (and TLS handshake) to close.
pub(crate) async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    state: SharedState,
    transport: Transport,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let span = tracing::info_span!("ocpp_handshake", %peer);
    // Boxed so the handshake's buffers are freed before the long-lived session starts.
    let handshake = Box::pin(tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        accept(stream, &state, Some(peer.ip()), &transport),
    ));
    let (mut ws, admission) = match handshake.instrument(span.clone()).await {
        Ok(Some(accepted)) => accepted,
        Ok(None) => return,
        Err(_) => {
            state.metrics.handshake_refused("timeout");
            span.in_scope(|| tracing::info!("handshake timed out"));
            return;
        }
    };
    let span = tracing::info_span!(
        "charger",
        charger_id = %admission.charger_id,
        ocpp = %admission.version,
    );
    async move {
        if let Some(scope) = &admission.register_under {
            if !auto_register(
                &state,
                &admission.charger_id,
                scope,
                admission.security_profile,
            )
            .await
            {
                session::close(&mut ws, CloseCode::Error, "charger could not be registered").await;
                return;
            }
        }
        // Known to the store but perhaps not yet to this node's engine, which decides its
        // cards and transactions.
        crate::cluster::follow_charger(&state, &admission.charger_id).await;
        if *state.shutdown.borrow() {
            session::close(&mut ws, CloseCode::Away, "gateway shutting down").await;
            return;
        }
        session::run(ws, state, admission.charger_id, admission.version).await;
    }
    .instrument(span)
    .await;
}

/// The WebSocket limits for charger connections.
pub(crate) fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(max_frame_bytes.saturating_mul(2).max(64 * 1024))
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

/// A charger the handshake let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admission {
    pub charger_id: String,
    pub version: OcppVersion,
    /// Unknown charger, auto-registration on: create it under this scope.
    pub register_under: Option<String>,
    /// The charger's security profile (for an auto-registered charger, the default one).
    pub security_profile: u8,
}

/// A handshake answered with an HTTP error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    /// Metric label (`voltgate_ocpp_handshakes_refused_total{reason}`).
    pub reason: &'static str,
    /// Plain-text body for the charger's installer.
    pub message: String,
    /// Seconds after which a throttled address may try again.
    pub retry_after_secs: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    fn throttled(wait: Duration) -> Refusal {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        Refusal {
            retry_after_secs: Some(secs),
            ..Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("too many failed authentications from this address; retry in {secs} s"),
            )
        }
    }

    /// Whether this refusal is about who the charger is (an unknown id, its credentials,
    /// certificate or the transport its profile needs): audited, counted against the failure
    /// budget, and answered with [`Refusal::to_charger`]'s one uniform response.
    fn is_authentication_failure(&self) -> bool {
        matches!(
            self.reason,
            "unauthorized"
                | "tls_required"
                | "client_certificate_required"
                | "certificate_mismatch"
                | "certificate_unusable"
                | "unknown_charger"
                | "no_password_set"
                | "unsupported_profile"
        )
    }

    /// What the charger is told. Every authentication failure gets the same 401, whatever the
    /// reason and whether the id exists, so the handshake does not tell an unauthenticated
    /// client which charger ids are registered or how they authenticate; the reason stays in
    /// the log, the metric and (for registered ids) the audit record.
    fn to_charger(&self) -> Refusal {
        if !self.is_authentication_failure() {
            return self.clone();
        }
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            self.reason,
            "this charge point could not be authenticated: check its id, its credentials (HTTP Basic, user = charge point id) or client certificate, and the URL (ws:// or wss://) its security profile needs",
        )
    }

    fn into_response(self) -> ErrorResponse {
        let body = format!("{}\n", self.message);
        let mut response = ErrorResponse::new(None);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"voltgate\", charset=\"UTF-8\""),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        *response.body_mut() = Some(body);
        response
    }
}

/// What the store said about the charger id in the request path.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    Known(ChargerRecord),
    Unknown,
    Failed,
}

/// Everything the handshake decision needs besides the request itself.
pub(crate) struct HandshakeInput<'a> {
    pub path_prefix: &'a str,
    pub auto_register: Option<&'a str>,
    /// The profile auto-registered chargers get.
    pub default_security_profile: u8,
    /// The looked-up id and its result; `None` when the path named no valid id.
    pub lookup: Option<(&'a str, &'a Lookup)>,
    pub transport: &'a Transport,
    /// Whether the request's Basic credentials name the looked-up charger and their password
    /// matched its stored hash (checked before the handshake, as it is slow).
    pub password_verified: bool,
    /// `Some(wait)` when the client's address has no failed authentications left.
    pub throttled: Option<Duration>,
}

/// Reads the request head, looks the charger up and runs the WebSocket handshake. `None`
/// when the connection was refused or broke (already logged and counted).
async fn accept<S>(
    mut stream: S,
    state: &AppState,
    peer_ip: Option<IpAddr>,
    transport: &Transport,
) -> Option<(WebSocketStream<Rewind<S>>, Admission)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = match read_request_head(&mut stream).await {
        Ok(head) => head,
        Err(HeadError::TooLarge) => {
            state.metrics.handshake_refused("request_too_large");
            let _ = stream
                .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            return None;
        }
        Err(HeadError::Incomplete) => {
            state.metrics.handshake_refused("incomplete_request");
            tracing::debug!("connection closed before a complete request");
            return None;
        }
    };
    let settings = &state.settings;
    let peer_ip = match peer_ip {
        Some(peer) if settings.trusted_proxies.trusts(peer) => {
            match client_behind_proxy(&settings.trusted_proxies, peer, &mut head) {
                Ok(client) => Some(client),
                Err(reason) => {
                    state.metrics.handshake_refused("bad_proxy_header");
                    tracing::info!(reason, "unreadable PROXY line from a trusted proxy");
                    return None;
                }
            }
        }
        other => other,
    };
    let charger_id = request_target(&head)
        .and_then(|target| charger_id_from_path(target.path(), &settings.ocpp_path_prefix).ok());
    let lookup = match &charger_id {
        Some(id) => Some(match state.store.charger(id).await {
            Ok(Some(record)) => Lookup::Known(record),
            Ok(None) => Lookup::Unknown,
            Err(err) => {
                state.metrics.store_error("charger");
                tracing::error!(error = %err, charger_id = %id, "charger lookup failed");
                Lookup::Failed
            }
        }),
        None => None,
    };
    let checked = match (&charger_id, &lookup) {
        (Some(id), Some(lookup)) => check_password(state, peer_ip, id, lookup, &head).await,
        _ => PasswordCheck::default(),
    };
    let input = HandshakeInput {
        path_prefix: &settings.ocpp_path_prefix,
        auto_register: settings.auto_register.as_deref(),
        default_security_profile: settings.default_security_profile,
        lookup: charger_id.as_deref().zip(lookup.as_ref()),
        transport,
        password_verified: checked.verified,
        throttled: checked.throttled,
    };
    let mut verdict = None;
    // The callback's signature (and its large error response) is tokio-tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        let mut decision = evaluate(request, &input);
        if let (Err(refusal), Some(ip), Some(id)) = (&decision, peer_ip, &charger_id) {
            // A failed password check was counted when it was reserved; the others now.
            if refusal.is_authentication_failure() && !checked.counted {
                if let Err(wait) = state.auth_guard.chargers.record_failure(ip, id) {
                    decision = Err(Refusal::throttled(wait));
                }
            }
        }
        if let Ok(Admission {
            register_under: Some(_),
            ..
        }) = &decision
        {
            if let Err(wait) = state.auth_guard.registrations.take(peer_ip) {
                decision = Err(Refusal {
                    reason: "registration_throttled",
                    message: "too many new chargers registered lately; retry later".to_owned(),
                    ..Refusal::throttled(wait)
                });
            }
        }
        let reply = match &decision {
            Ok(admission) => Ok(accept_response(response, admission.version)),
            Err(refusal) => Err(refusal.to_charger().into_response()),
        };
        verdict = Some(decision);
        reply
    };
    let outcome = tokio_tungstenite::accept_hdr_async_with_config(
        Rewind::new(head, stream),
        callback,
        Some(websocket_config(settings.max_frame_bytes)),
    )
    .await;
    match (outcome, verdict) {
        (Ok(ws), Some(Ok(admission))) => Some((ws, admission)),
        (_, Some(Err(refusal))) => {
            state.metrics.handshake_refused(refusal.reason);
            tracing::info!(
                status = refusal.status.as_u16(),
                reason = refusal.reason,
                charger_id = charger_id.as_deref().unwrap_or(""),
                "handshake refused"
            );
            if refusal.reason == "throttled" {
                state
                    .metrics
                    .auth_throttled(crate::throttle::Listener::Ocpp);
            }
            if refusal.is_authentication_failure() {
                if let (Some(id), Some(Lookup::Known(_))) = (&charger_id, &lookup) {
                    audit_refusal(state, id, &refusal, peer_ip).await;
                }
            }
            None
        }
        (Err(err), _) => {
            state.metrics.handshake_refused("not_websocket");
            tracing::info!(error = %err, "not a WebSocket handshake");
            None
        }
        (Ok(_), None) => None,
    }
}

fn accept_response(mut response: Response, version: OcppVersion) -> Response {
    response.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(version.subprotocol()),
    );
    response
}

/// The handshake decision for one request.
pub(crate) fn evaluate(
    request: &Request,
    input: &HandshakeInput<'_>,
) -> Result<Admission, Refusal> {
    if let Some(wait) = input.throttled {
        return Err(Refusal::throttled(wait));
    }
    let charger_id = charger_id_from_path(request.uri().path(), input.path_prefix)?;
    let version = negotiate(request.headers())?;
    let lookup = match input.lookup {
        Some((looked_up, lookup)) if looked_up == charger_id => lookup,
        _ => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request could not be read",
            ))
        }
    };
    let record = match lookup {
        Lookup::Known(record) => record,
        Lookup::Failed => {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the gateway cannot check chargers right now; retry later",
            ))
        }
        Lookup::Unknown => {
            return match input.auto_register {
                Some(scope) => {
                    let profile = input.default_security_profile;
                    if matches!(profile, 1 | 2) {
                        return Err(Refusal::new(
                            StatusCode::UNAUTHORIZED,
                            "unauthorized",
                            format!("charger {charger_id} is not registered and security profile {profile} needs a password set by an operator"),
                        ));
                    }
                    check_transport(&charger_id, profile, input.transport)?;
                    Ok(Admission {
                        charger_id,
                        version,
                        register_under: Some(scope.to_owned()),
                        security_profile: profile,
                    })
                }
                None => Err(Refusal::new(
                    StatusCode::NOT_FOUND,
                    "unknown_charger",
                    format!("charger {charger_id} is not registered with this gateway"),
                )),
            }
        }
    };
    let profile = record.security_profile;
    check_transport(&charger_id, profile, input.transport)?;
    if matches!(profile, 1 | 2) {
        check_basic_auth(
            request.headers(),
            &charger_id,
            record.password_hash.is_some(),
            input.password_verified,
        )?;
    }
    Ok(Admission {
        charger_id,
        version,
        register_under: None,
        security_profile: profile,
    })
}

/// What a security profile asks of the connection itself: TLS for 2 and 3, and for 3 a client
/// certificate naming the charger.
fn check_transport(charger_id: &str, profile: u8, transport: &Transport) -> Result<(), Refusal> {
    match (profile, transport) {
        (0 | 1, _) | (2, Transport::Tls { .. }) => Ok(()),
        (2 | 3, Transport::Plain) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "tls_required",
            format!("charger {charger_id} uses security profile {profile}: connect with wss:// (TLS)"),
        )),
        (3, Transport::Tls { client_identity: None }) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "client_certificate_required",
            format!("charger {charger_id} uses security profile 3: present a client certificate"),
        )),
        (3, Transport::Tls { client_identity: Some(Err(err)) }) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "certificate_unusable",
            format!("charger {charger_id} uses security profile 3 and {err}"),
        )),
        (3, Transport::Tls { client_identity: Some(Ok(name)) }) => {
            if name == charger_id {
                Ok(())
            } else {
                Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "certificate_mismatch",
                    format!("the client certificate's common name is not charger {charger_id}"),
                ))
            }
        }
        _ => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "unsupported_profile",
            format!("charger {charger_id} has security profile {profile}, which this gateway does not support"),
        )),
    }
}

/// The charger id from `{prefix}/{id}` (the id percent-decoded).
pub(crate) fn charger_id_from_path(path: &str, prefix: &str) -> Result<String, Refusal> {
    let prefix = prefix.trim_end_matches('/');
    let not_found = || {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "bad_path",
            format!("chargers connect to {prefix}/{{charge point id}}"),
        )
    };
    let encoded = path
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(not_found)?;
    if encoded.is_empty() || encoded.contains('/') {
        return Err(not_found());
    }
    let invalid = || {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_charger_id",
            "the charge point id must be 1 to 64 characters, without `/`, white space or control characters",
        )
    };
    let id = percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| invalid())?;
    if !voltgate_policy::is_valid_id(&id) {
        return Err(invalid());
    }
    Ok(id.into_owned())
}

/// Picks the OCPP version from the offered subprotocols (2.0.1 preferred).
pub(crate) fn negotiate(headers: &HeaderMap) -> Result<OcppVersion, Refusal> {
    let offered: Vec<&str> = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
        .collect();
    let supported = "this gateway speaks ocpp2.0.1 and ocpp1.6";
    if offered.is_empty() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "no_subprotocol",
            format!("no OCPP version offered in Sec-WebSocket-Protocol; {supported}"),
        ));
    }
    OcppVersion::negotiate(offered.iter().copied()).ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "unsupported_subprotocol",
            format!(
                "none of the offered subprotocols ({}) is supported; {supported}",
                offered.join(", ")
            ),
        )
    })
}

/// Requires HTTP Basic credentials naming `charger_id` whose password was verified.
fn check_basic_auth(
    headers: &HeaderMap,
    charger_id: &str,
    password_set: bool,
    password_verified: bool,
) -> Result<(), Refusal> {
    if !password_set {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "no_password_set",
            format!(
                "charger {charger_id} needs a password but none is set; an operator must set one"
            ),
        ));
    }
    let unauthorized = |detail: &str| {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!(
                "this charger must authenticate with HTTP Basic (user = charge point id): {detail}"
            ),
        )
    };
    let (user, _) =
        basic_credentials(headers).ok_or_else(|| unauthorized("credentials missing"))?;
    if user == charger_id && password_verified {
        Ok(())
    } else {
        Err(unauthorized("wrong user or password"))
    }
}

/// The outcome of checking the request's Basic password before the handshake decision.
#[derive(Debug, Default, Clone, Copy)]
struct PasswordCheck {
    /// The credentials name the looked-up charger and the password matched its stored hash.
    verified: bool,
    /// The failure budget had nothing left to reserve, so the password was not checked.
    throttled: Option<Duration>,
    /// A failed check was already counted against the budget (when it was reserved).
    counted: bool,
}

/// Checks the Basic password in the request head when the credentials name the charger in the
/// path and the answer depends on it (a profile 1 or 2 charger, or an unknown id, which must
/// look the same). The last good password per charger is recognised from
/// [`crate::throttle::VerifiedPasswords`] without a budget; otherwise one failure is reserved
/// first (see [`crate::throttle`]) and the slow hash runs on a blocking thread, a few at a time.
/// A correct password stored in an older format is re-hashed in the background.
async fn check_password(
    state: &AppState,
    peer_ip: Option<IpAddr>,
    charger_id: &str,
    lookup: &Lookup,
    head: &[u8],
) -> PasswordCheck {
    let unchecked = PasswordCheck::default();
    let Some((user, password)) = head_headers(head).as_ref().and_then(basic_credentials) else {
        return unchecked;
    };
    if user != charger_id {
        return unchecked;
    }
    let record = match lookup {
        Lookup::Known(record) if matches!(record.security_profile, 1 | 2) => Some(record),
        Lookup::Unknown if state.settings.auto_register.is_none() => None,
        _ => return unchecked,
    };
    let stored = record.and_then(|record| record.password_hash.clone());
    if let Some(stored) = &stored {
        if state
            .auth_guard
            .passwords
            .is_known(charger_id, stored, &password)
        {
            return PasswordCheck {
                verified: true,
                ..unchecked
            };
        }
    }
    let registered = matches!(lookup, Lookup::Known(_));
    let reservation = match peer_ip.map(|ip| {
        state
            .auth_guard
            .chargers
            .reserve(ip, charger_id, registered)
    }) {
        Some(Err(wait)) => {
            return PasswordCheck {
                throttled: Some(wait),
                ..unchecked
            }
        }
        Some(Ok(reservation)) => Some(reservation),
        None => None,
    };
    let _slots = match peer_ip {
        Some(ip) => Some(state.auth_guard.chargers.verifying(ip, charger_id).await),
        None => None,
    };
    let Ok(_permit) = state.auth_guard.password_checks.acquire().await else {
        return unchecked;
    };
    // An unknown id is checked against a hash of nothing, so it takes as long as a known one.
    let verified = {
        let (stored, password) = (stored.clone(), password.clone());
        tokio::task::spawn_blocking(move || {
            let against = stored.as_deref().unwrap_or(&UNKNOWN_CHARGER_HASH);
            crate::state::verify_password(against, &password)
        })
        .await
        .unwrap_or(false)
    } && stored.is_some();
    match reservation {
        Some(reservation) if verified => reservation.give_back(),
        Some(reservation) => reservation.keep(),
        None => {}
    }
    if let (true, Some(record), Some(stored)) = (verified, record, &stored) {
        state
            .auth_guard
            .passwords
            .remember(charger_id, stored, &password);
        if crate::state::password_needs_rehash(stored) {
            tokio::spawn(upgrade_password_hash(
                state.store.clone(),
                record.clone(),
                password,
            ));
        }
    }
    PasswordCheck {
        verified,
        throttled: None,
        counted: !verified && peer_ip.is_some(),
    }
}

/// A password hash no password is known for: what unknown charger ids are checked against.
static UNKNOWN_CHARGER_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut random = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
    crate::state::hash_password(&hex::encode(random))
});

/// Replaces an older-format password hash by a current one, unless the record changed since.
async fn upgrade_password_hash(
    store: std::sync::Arc<dyn voltgate_store::Store>,
    record: ChargerRecord,
    password: String,
) {
    let Ok(hash) =
        tokio::task::spawn_blocking(move || crate::state::hash_password(&password)).await
    else {
        return;
    };
    match store.charger(&record.id).await {
        Ok(Some(current)) if current == record => {
            let upgraded = ChargerRecord {
                password_hash: Some(hash),
                ..current
            };
            match store.put_charger(&upgraded).await {
                Ok(()) => {
                    tracing::info!(charger_id = %record.id, "password hash upgraded to Argon2id")
                }
                Err(err) => {
                    tracing::warn!(charger_id = %record.id, error = %err, "password hash upgrade failed")
                }
            }
        }
        _ => {}
    }
}

/// Audits a handshake refused for its credentials or certificate.
async fn audit_refusal(
    state: &AppState,
    charger_id: &str,
    refusal: &Refusal,
    peer_ip: Option<IpAddr>,
) {
    let from = peer_ip.map(|ip| format!(" from {ip}")).unwrap_or_default();
    audit::record(
        state,
        audit::entry(
            &format!("charger:{charger_id}"),
            "charger.connect",
            &audit::scope_label(charger_id),
            false,
            &format!("{}{from}: {}", refusal.reason, refusal.message),
            Some(format!("http {}", refusal.status.as_u16())),
            None,
        ),
    )
    .await;
}

/// The client a trusted proxy connects for: the source of a PROXY protocol v1 line before the
/// request (the line is taken off `head`), else what `X-Forwarded-For` says, else the proxy.
fn client_behind_proxy(
    proxies: &crate::proxy::TrustedProxies,
    peer: IpAddr,
    head: &mut Vec<u8>,
) -> Result<IpAddr, &'static str> {
    if head.starts_with(b"PROXY ") {
        let end = head
            .windows(2)
            .position(|pair| pair == b"\r\n")
            .ok_or("no line end")?;
        let source = crate::proxy::proxy_v1_source(&head[..end])?;
        head.drain(..end + 2);
        if let Some(source) = source {
            return Ok(source);
        }
    }
    let headers = head_headers(head).unwrap_or_default();
    let forwarded = headers.get_all("x-forwarded-for");
    Ok(proxies.client(
        peer,
        forwarded.iter().filter_map(|value| value.to_str().ok()),
    ))
}

/// The header fields of a request head (bytes up to the blank line), for the checks that run
/// before the WebSocket handshake parses the request itself.
fn head_headers(head: &[u8]) -> Option<HeaderMap> {
    let text = std::str::from_utf8(head).ok()?;
    let mut headers = HeaderMap::new();
    for line in text.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.trim().as_bytes())
                .ok()?;
        let value = HeaderValue::from_str(value.trim()).ok()?;
        headers.append(name, value);
    }
    Some(headers)
}

/// `(user, password)` from an `Authorization: Basic …` header.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Creates an unknown charger under the auto-registration scope; `false` if that failed.
async fn auto_register(
    state: &AppState,
    charger_id: &str,
    scope: &str,
    security_profile: u8,
) -> bool {
    // Only a charger that proved who it is (a profile 3 certificate) is trusted at once; the
    // others wait for an operator's approval before the engine decides their cards. The mark
    // is part of the record, so the charger is never stored trusted, not even for a moment.
    let pending = security_profile == 0 && !state.settings.auto_register_trusted;
    let (result, committed) =
        crate::cluster::committed_by(state.estate.register_charger(&ChargerRecord {
            id: charger_id.to_owned(),
            scope: scope.to_owned(),
            password_hash: None,
            security_profile,
            pending,
        }))
        .await;
    let (allowed, reason, outcome) = match &result {
        Ok(()) => (
            true,
            format!(
                "auto-registered under scope {scope} with security profile {security_profile} at its first connection{}",
                if pending { ", pending approval" } else { "" }
            ),
            if pending { "pending" } else { "registered" },
        ),
        Err(ChangeError::Invalid(voltgate_policy::PolicyError::DuplicateScope(_))) => {
            // Another connection with this id registered it a moment ago, or a scope of that
            // name exists: fine only if the charger record is there now.
            return matches!(state.store.charger(charger_id).await, Ok(Some(_)));
        }
        Err(err) => (
            false,
            format!("auto-registration under scope {scope} failed: {err}"),
            "failed",
        ),
    };
    audit::record(
        state,
        audit::entry(
            "system",
            "charger.register",
            &audit::scope_label(charger_id),
            allowed,
            &reason,
            Some(outcome.to_owned()),
            None,
        ),
    )
    .await;
    if allowed {
        tracing::info!(%scope, "charger auto-registered");
        if let (Some(cluster), Some(count)) = (&state.cluster, committed) {
            // Its session starts once every node knows it: from its first message on, an
            // operator request through any node finds it.
            cluster.settled(count).await;
        }
    } else {
        state.metrics.handshake_refused("registration_failed");
        tracing::error!(%scope, %reason, "charger auto-registration failed");
    }
    allowed
}

#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    TooLarge,
    Incomplete,
}

/// Reads up to and including the blank line that ends an HTTP request head.
async fn read_request_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| HeadError::Incomplete)?;
        if n == 0 {
            return Err(HeadError::Incomplete);
        }
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if head[searched_from..].windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() >= MAX_REQUEST_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// The request target of the request line, as a URI.
fn request_target(head: &[u8]) -> Option<Uri> {
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let _method = parts.next()?;
    parts.next()?.parse().ok()
}

/// A stream that first yields bytes already read from it, then reads on.
pub(crate) struct Rewind<S> {
    replay: Option<(Box<[u8]>, usize)>,
    inner: S,
}

impl<S> Rewind<S> {
    pub(crate) fn new(already_read: Vec<u8>, inner: S) -> Rewind<S> {
        Rewind {
            replay: (!already_read.is_empty()).then(|| (already_read.into_boxed_slice(), 0)),
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some((bytes, position)) = &mut self.replay {
            let remaining = &bytes[*position..];
            let n = remaining.len().min(buf.remaining());
            buf.put_slice(&remaining[..n]);
            *position += n;
            if *position == bytes.len() {
                self.replay = None;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charger::test_support::{
        memory_state, seed_estate, settings, state_on, INSTALLATION,
    };
    use sha2::{Digest, Sha256};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error as WsError;
    use voltgate_ocpp::Frame;
    use voltgate_store::AuditFilter;

    fn request(path: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    fn record(password: Option<&str>) -> ChargerRecord {
        ChargerRecord {
            id: "CP.1".into(),
            scope: "site-1".into(),
            security_profile: u8::from(password.is_some()),
            password_hash: password.map(crate::state::hash_password),
            pending: false,
        }
    }

    /// What [`verify_presented_password`] finds for these headers, without the cache.
    fn password_verified(headers: &[(&str, &str)], lookup: &Lookup) -> bool {
        let Lookup::Known(record) = lookup else {
            return false;
        };
        let request = request("/", headers);
        match (basic_credentials(request.headers()), &record.password_hash) {
            (Some((user, password)), Some(hash)) => {
                user == record.id && crate::state::verify_password(hash, &password)
            }
            _ => false,
        }
    }

    fn decide_on(
        headers: &[(&str, &str)],
        lookup: &Lookup,
        transport: &Transport,
        auto: Option<(&str, u8)>,
    ) -> Result<Admission, Refusal> {
        let input = HandshakeInput {
            path_prefix: "/ocpp",
            auto_register: auto.map(|(scope, _)| scope),
            default_security_profile: auto.map_or(0, |(_, profile)| profile),
            lookup: Some(("CP.1", lookup)),
            transport,
            password_verified: password_verified(headers, lookup),
            throttled: None,
        };
        evaluate(&request("/ocpp/CP%2E1", headers), &input)
    }

    fn tls(common_name: Option<&str>) -> Transport {
        Transport::Tls {
            client_identity: common_name.map(|name| Ok(name.to_owned())),
        }
    }

    #[test]
    fn security_profiles_decide_transport_and_credentials() {
        let protocol = ("Sec-WebSocket-Protocol", "ocpp2.0.1");
        let right = basic("CP.1", "open sesame");
        let wrong = basic("CP.1", "open sesam");
        let with_right: &[(&str, &str)] = &[protocol, ("Authorization", &right)];
        let with_wrong: &[(&str, &str)] = &[protocol, ("Authorization", &wrong)];
        let bare: &[(&str, &str)] = &[protocol];
        let profile = |n: u8, password: Option<&str>| {
            let mut record = record(password);
            record.security_profile = n;
            Lookup::Known(record)
        };
        let reason = |result: Result<Admission, Refusal>| match result {
            Ok(admission) => format!("admitted {}", admission.security_profile),
            Err(refusal) => format!("{} {}", refusal.status.as_u16(), refusal.reason),
        };
        let plain = Transport::Plain;
        type Case<'a> = (
            &'a str,
            Lookup,
            &'a [(&'a str, &'a str)],
            Transport,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "0 plain",
                profile(0, None),
                bare,
                plain.clone(),
                "admitted 0",
            ),
            (
                "0 ignores a password",
                profile(0, Some("x")),
                bare,
                plain.clone(),
                "admitted 0",
            ),
            (
                "1 right",
                profile(1, Some("open sesame")),
                with_right,
                plain.clone(),
                "admitted 1",
            ),
            (
                "1 right over tls",
                profile(1, Some("open sesame")),
                with_right,
                tls(None),
                "admitted 1",
            ),
            (
                "1 wrong",
                profile(1, Some("open sesame")),
                with_wrong,
                plain.clone(),
                "401 unauthorized",
            ),
            (
                "1 missing",
                profile(1, Some("open sesame")),
                bare,
                plain.clone(),
                "401 unauthorized",
            ),
            (
                "1 without a stored password",
                profile(1, None),
                with_right,
                plain.clone(),
                "403 no_password_set",
            ),
            (
                "2 right over tls",
                profile(2, Some("open sesame")),
                with_right,
                tls(None),
                "admitted 2",
            ),
            (
                "2 right on plain ws",
                profile(2, Some("open sesame")),
                with_right,
                plain.clone(),
                "403 tls_required",
            ),
            (
                "2 wrong over tls",
                profile(2, Some("open sesame")),
                with_wrong,
                tls(None),
                "401 unauthorized",
            ),
            (
                "3 certificate naming it",
                profile(3, None),
                bare,
                tls(Some("CP.1")),
                "admitted 3",
            ),
            (
                "3 on plain ws",
                profile(3, None),
                with_right,
                plain.clone(),
                "403 tls_required",
            ),
            (
                "3 without certificate",
                profile(3, None),
                bare,
                tls(None),
                "403 client_certificate_required",
            ),
            (
                "3 certificate of another",
                profile(3, None),
                bare,
                tls(Some("CP.2")),
                "403 certificate_mismatch",
            ),
            (
                "3 certificate with several common names",
                profile(3, None),
                bare,
                Transport::Tls {
                    client_identity: Some(Err(CertificateIdentityError::SeveralCommonNames)),
                },
                "403 certificate_unusable",
            ),
            (
                "unknown profile",
                profile(7, None),
                bare,
                tls(None),
                "403 unsupported_profile",
            ),
        ];
        for (name, lookup, headers, transport, expected) in cases {
            assert_eq!(
                reason(decide_on(headers, &lookup, &transport, None)),
                expected,
                "{name}"
            );
        }
        // Whatever the reason, and whether the id is known, the charger is told the same.
        let told = |refusal: Refusal| {
            let response = refusal.to_charger().into_response();
            (
                response.status(),
                response.headers().get(WWW_AUTHENTICATE).cloned(),
                response.body().clone(),
            )
        };
        let wrong_password = told(
            decide_on(with_wrong, &profile(1, Some("open sesame")), &plain, None).unwrap_err(),
        );
        assert_eq!(wrong_password.0, StatusCode::UNAUTHORIZED);
        for (lookup, transport) in [
            (Lookup::Unknown, &plain),
            (Lookup::Unknown, &tls(None)),
            (profile(2, Some("open sesame")), &plain),
            (profile(3, None), &tls(None)),
            (profile(3, None), &tls(Some("CP.2"))),
            (profile(1, None), &plain),
        ] {
            let refusal = decide_on(bare, &lookup, transport, None).unwrap_err();
            assert_eq!(told(refusal), wrong_password, "{lookup:?} {transport:?}");
        }
        let unauthorized = decide_on(with_wrong, &profile(1, Some("open sesame")), &plain, None)
            .unwrap_err()
            .to_charger()
            .into_response();
        assert!(unauthorized.headers().contains_key(WWW_AUTHENTICATE));
        let body = unauthorized.body().clone().unwrap_or_default();
        assert!(!body.contains("sesam"), "{body}");

        let auto = |profile: u8, transport: &Transport| {
            reason(decide_on(
                bare,
                &Lookup::Unknown,
                transport,
                Some(("site-1", profile)),
            ))
        };
        assert_eq!(auto(0, &plain), "admitted 0");
        assert_eq!(auto(1, &plain), "401 unauthorized");
        assert_eq!(auto(3, &plain), "403 tls_required");
        assert_eq!(auto(3, &tls(Some("CP.1"))), "admitted 3");
        assert_eq!(auto(3, &tls(Some("CP.9"))), "403 certificate_mismatch");
    }

    #[test]
    fn throttled_addresses_get_429_with_retry_after() {
        let lookup = Lookup::Known(record(None));
        let input = HandshakeInput {
            path_prefix: "/ocpp",
            auto_register: None,
            default_security_profile: 0,
            lookup: Some(("CP.1", &lookup)),
            transport: &Transport::Plain,
            password_verified: false,
            throttled: Some(Duration::from_millis(2500)),
        };
        let refusal = evaluate(
            &request("/ocpp/CP.1", &[("Sec-WebSocket-Protocol", "ocpp1.6")]),
            &input,
        )
        .unwrap_err();
        assert_eq!(
            (refusal.status, refusal.reason),
            (StatusCode::TOO_MANY_REQUESTS, "throttled")
        );
        let response = refusal.into_response();
        assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), "3");
    }

    #[test]
    fn request_heads_yield_their_headers() {
        let head = b"GET /ocpp/A HTTP/1.1\r\nHost: x\r\nAuthorization: Basic QTpi\r\nX-Two: 1\r\nx-two: 2\r\n\r\n";
        let headers = head_headers(head).unwrap();
        assert_eq!(
            basic_credentials(&headers),
            Some(("A".to_owned(), "b".to_owned()))
        );
        assert_eq!(headers.get_all("x-two").iter().count(), 2);
        assert!(head_headers(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n").is_none());
    }

    #[test]
    fn paths_give_percent_decoded_ids() {
        assert_eq!(charger_id_from_path("/ocpp/CP-1", "/ocpp").unwrap(), "CP-1");
        assert_eq!(
            charger_id_from_path("/ocpp/CP%2D1", "/ocpp/").unwrap(),
            "CP-1"
        );
        assert_eq!(charger_id_from_path("/CP-1", "").unwrap(), "CP-1");
        assert_eq!(
            charger_id_from_path("/csms/ocpp/A%C3%84", "/csms/ocpp").unwrap(),
            "AÄ"
        );
        for (path, reason) in [
            ("/ocpp/", "bad_path"),
            ("/ocpp", "bad_path"),
            ("/ocppx/CP-1", "bad_path"),
            ("/other/CP-1", "bad_path"),
            ("/ocpp/a/b", "bad_path"),
            ("/ocpp/%20CP1", "invalid_charger_id"),
            ("/ocpp/%FF", "invalid_charger_id"),
        ] {
            let refusal = charger_id_from_path(path, "/ocpp").unwrap_err();
            assert_eq!(refusal.reason, reason, "{path}");
        }
        assert_eq!(charger_id_from_path("/ocpp/x", "/ocpp").unwrap(), "x");
        assert_eq!(
            charger_id_from_path(&format!("/ocpp/{}", "x".repeat(65)), "/ocpp")
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn subprotocol_negotiation_prefers_201() {
        let offered = |values: &[&str]| {
            let headers: Vec<(&str, &str)> = values
                .iter()
                .map(|v| ("Sec-WebSocket-Protocol", *v))
                .collect();
            negotiate(request("/ocpp/x", &headers).headers())
        };
        assert_eq!(offered(&["ocpp1.6, ocpp2.0.1"]), Ok(OcppVersion::V201));
        assert_eq!(offered(&["ocpp1.6", "ocpp2.0.1"]), Ok(OcppVersion::V201));
        assert_eq!(offered(&["ocpp1.5,ocpp1.6"]), Ok(OcppVersion::V16));
        let none = offered(&[]).unwrap_err();
        assert_eq!(
            (none.status, none.reason),
            (StatusCode::BAD_REQUEST, "no_subprotocol")
        );
        let unsupported = offered(&["ocpp1.5, mqtt"]).unwrap_err();
        assert_eq!(unsupported.reason, "unsupported_subprotocol");
        assert!(unsupported.message.contains("ocpp1.5, mqtt"));
    }

    #[test]
    fn basic_credentials_are_parsed() {
        let request = request("/ocpp/x", &[("Authorization", &basic("CP.1", "s3cr:et"))]);
        assert_eq!(
            basic_credentials(request.headers()),
            Some(("CP.1".to_owned(), "s3cr:et".to_owned()))
        );
        for header in ["Bearer abc", "Basic !!!", "Basic Zm9v"] {
            let request = self::request("/ocpp/x", &[("Authorization", header)]);
            assert_eq!(basic_credentials(request.headers()), None, "{header}");
        }
    }

    #[test]
    fn handshake_decisions() {
        let protocol = ("Sec-WebSocket-Protocol", "ocpp1.6");
        let path = "/ocpp/CP%2E1";
        let known = Lookup::Known(record(None));
        let guarded = Lookup::Known(record(Some("open sesame")));
        let decide = |headers: &[(&str, &str)], lookup: &Lookup, auto: Option<&str>| {
            let input = HandshakeInput {
                path_prefix: "/ocpp",
                auto_register: auto,
                default_security_profile: 0,
                lookup: Some(("CP.1", lookup)),
                transport: &Transport::Plain,
                password_verified: password_verified(headers, lookup),
                throttled: None,
            };
            evaluate(&request(path, headers), &input)
        };
        let admitted = decide(&[protocol], &known, None).unwrap();
        assert_eq!(admitted.charger_id, "CP.1");
        assert_eq!(admitted.version, OcppVersion::V16);
        assert_eq!(admitted.register_under, None);

        let unknown = decide(&[protocol], &Lookup::Unknown, None).unwrap_err();
        assert_eq!(
            (unknown.status, unknown.reason),
            (StatusCode::NOT_FOUND, "unknown_charger")
        );
        let registered = decide(&[protocol], &Lookup::Unknown, Some("site-1")).unwrap();
        assert_eq!(registered.register_under.as_deref(), Some("site-1"));
        let failed = decide(&[protocol], &Lookup::Failed, None).unwrap_err();
        assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);

        let no_auth = decide(&[protocol], &guarded, None).unwrap_err();
        assert_eq!(
            (no_auth.status, no_auth.reason),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
        let right = basic("CP.1", "open sesame");
        assert!(decide(&[protocol, ("Authorization", &right)], &guarded, None).is_ok());
        let wrong_password = basic("CP.1", "open sesam");
        assert_eq!(
            decide(
                &[protocol, ("Authorization", &wrong_password)],
                &guarded,
                None
            )
            .unwrap_err()
            .status,
            StatusCode::UNAUTHORIZED
        );
        let wrong_user = basic("CP 2", "open sesame");
        assert_eq!(
            decide(&[protocol, ("Authorization", &wrong_user)], &guarded, None)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        let refusal = decide(&[], &known, None).unwrap_err();
        assert_eq!(refusal.reason, "no_subprotocol");
        let response = refusal.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response
            .body()
            .as_deref()
            .unwrap_or("")
            .contains("ocpp2.0.1"));
    }

    #[tokio::test]
    async fn rewind_replays_then_reads_on() {
        let (mut client, server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET /ocpp/A HTTP/1.1\r\nHost: x\r\n\r\nrest")
            .await
            .unwrap();
        let mut server = server;
        let head = read_request_head(&mut server).await.unwrap();
        assert!(head.starts_with(b"GET /ocpp/A HTTP/1.1\r\n"));
        assert_eq!(request_target(&head).unwrap().path(), "/ocpp/A");
        let mut rewound = Rewind::new(head.clone(), server);
        drop(client);
        let mut all = Vec::new();
        rewound.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, head);
    }

    #[tokio::test]
    async fn oversized_request_heads_are_refused() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let long = format!(
            "GET /ocpp/A HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
            "p".repeat(MAX_REQUEST_HEAD)
        );
        client.write_all(long.as_bytes()).await.unwrap();
        assert_eq!(
            read_request_head(&mut server).await,
            Err(HeadError::TooLarge)
        );
    }

    /// Runs the real handshake over an in-memory pipe; returns the status of a refusal or
    /// the negotiated subprotocol.
    async fn handshake(
        state: &SharedState,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (Result<Option<String>, StatusCode>, Option<Admission>) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let mut request = format!("ws://gateway{path}").into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let server = tokio::spawn({
            let state = state.clone();
            async move {
                accept(server_io, &state, None, &Transport::Plain)
                    .await
                    .map(|(_, admission)| admission)
            }
        });
        let client = tokio_tungstenite::client_async(request, client_io).await;
        let admission = server.await.unwrap();
        let outcome = match client {
            Ok((_, response)) => Ok(response
                .headers()
                .get(SEC_WEBSOCKET_PROTOCOL)
                .map(|v| v.to_str().unwrap().to_owned())),
            Err(WsError::Http(response)) => Err(response.status()),
            Err(other) => panic!("unexpected client error {other}"),
        };
        (outcome, admission)
    }

    #[tokio::test]
    async fn refusals_are_audited_and_throttled_and_old_hashes_upgraded() {
        let (state, _shutdown) = memory_state().await;
        let mut legacy = record(None);
        legacy.security_profile = 1;
        // The salted SHA-256 form earlier releases stored, for the password "open sesame".
        let salt = [7u8; 16];
        let digest = Sha256::digest([&salt[..], b"open sesame"].concat());
        legacy.password_hash = Some(format!(
            "sha256${}${}",
            hex::encode(salt),
            hex::encode(digest)
        ));
        state.store.put_charger(&legacy).await.unwrap();
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let attempt = |password: &'static str| {
            let state = state.clone();
            async move {
                let (client_io, server_io) = tokio::io::duplex(64 * 1024);
                let mut request = "ws://gateway/ocpp/CP.1".into_client_request().unwrap();
                request
                    .headers_mut()
                    .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("ocpp1.6"));
                request.headers_mut().insert(
                    AUTHORIZATION,
                    HeaderValue::from_str(&basic("CP.1", password)).unwrap(),
                );
                let server = tokio::spawn(async move {
                    accept(server_io, &state, Some(peer), &Transport::Plain)
                        .await
                        .is_some()
                });
                let client = tokio_tungstenite::client_async(request, client_io).await;
                let admitted = server.await.unwrap();
                match client {
                    Ok(_) => {
                        assert!(admitted);
                        200
                    }
                    Err(WsError::Http(response)) => response.status().as_u16(),
                    Err(other) => panic!("{other}"),
                }
            }
        };
        assert_eq!(attempt("guess-x7").await, 401);
        let audit = state
            .store
            .audit(&AuditFilter {
                limit: 5,
                after_id: None,
            })
            .await
            .unwrap();
        assert_eq!(audit[0].record.action, "charger.connect");
        assert_eq!(audit[0].record.principal, "charger:CP.1");
        assert!(!audit[0].record.allowed);
        assert!(
            audit[0].record.reason.contains("192.0.2.7"),
            "{}",
            audit[0].record.reason
        );
        assert!(!audit[0].record.reason.contains("guess-x7"));

        assert_eq!(attempt("open sesame").await, 200);
        let mut upgraded = None;
        for _ in 0..200 {
            let stored = state.store.charger("CP.1").await.unwrap().unwrap();
            if stored
                .password_hash
                .as_deref()
                .is_some_and(|h| h.starts_with("$argon2id$"))
            {
                upgraded = stored.password_hash;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let upgraded = upgraded.expect("the legacy hash was upgraded");
        assert!(crate::state::verify_password(&upgraded, "open sesame"));
        assert_eq!(
            attempt("open sesame").await,
            200,
            "and works against the new hash"
        );

        for _ in 0..9 {
            assert_eq!(attempt("guess-x7").await, 401);
        }
        assert_eq!(
            attempt("guess-x7").await,
            429,
            "the address used up its failures for this charger"
        );
        assert_eq!(
            attempt("open sesame").await,
            200,
            "the password verified before still gets through"
        );
        let metrics = state.metrics.render();
        assert!(
            metrics.contains(r#"voltgate_auth_throttled_total{listener="ocpp"} 1"#),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn real_handshakes_accept_refuse_and_authenticate() {
        let (state, _shutdown) = memory_state().await;
        state.store.put_charger(&record(None)).await.unwrap();
        let mut guarded = record(Some("open sesame"));
        guarded.id = "CP-2".into();
        state.store.put_charger(&guarded).await.unwrap();
        let both = ("Sec-WebSocket-Protocol", "ocpp1.6, ocpp2.0.1");

        let (outcome, admission) = handshake(&state, "/ocpp/CP%2E1", &[both]).await;
        assert_eq!(outcome, Ok(Some("ocpp2.0.1".to_owned())));
        assert_eq!(admission.unwrap().charger_id, "CP.1");

        let (outcome, _) = handshake(&state, "/ocpp/CP-9", &[both]).await;
        assert_eq!(
            outcome,
            Err(StatusCode::UNAUTHORIZED),
            "unknown ids are not told apart"
        );
        let (outcome, _) = handshake(&state, "/ocpp/CP%2E1", &[]).await;
        assert_eq!(outcome, Err(StatusCode::BAD_REQUEST));
        let (outcome, _) = handshake(&state, "/ocpp/CP-2", &[both]).await;
        assert_eq!(outcome, Err(StatusCode::UNAUTHORIZED));
        let auth = basic("CP-2", "open sesame");
        let (outcome, _) = handshake(
            &state,
            "/ocpp/CP-2",
            &[
                ("Sec-WebSocket-Protocol", "ocpp1.6"),
                ("Authorization", &auth),
            ],
        )
        .await;
        assert_eq!(outcome, Ok(Some("ocpp1.6".to_owned())));

        let metrics = state.metrics.render();
        for reason in ["unknown_charger", "no_subprotocol", "unauthorized"] {
            assert!(
                metrics.contains(&format!(
                    r#"voltgate_ocpp_handshakes_refused_total{{reason="{reason}"}} 1"#
                )),
                "{reason}: {metrics}"
            );
        }
    }

    #[tokio::test]
    async fn serve_auto_registers_unknown_chargers_and_runs_their_session() {
        let store = voltgate_store::open("sqlite::memory:").await.unwrap();
        let mut settings = settings();
        settings.auto_register = Some(INSTALLATION.into());
        let (state, shutdown) = state_on(store, settings);
        seed_estate(&state).await;

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, state.clone()));
        let mut request = format!("ws://{address}/ocpp/NEW-1")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("ocpp1.6"));
        let (mut charger, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        use futures_util::{SinkExt, StreamExt};
        charger
            .send(tokio_tungstenite::tungstenite::Message::text(
                r#"[2,"h1","Heartbeat",{}]"#,
            ))
            .await
            .unwrap();
        let answer = charger.next().await.unwrap().unwrap();
        let frame = Frame::parse(answer.to_text().unwrap()).unwrap();
        assert!(matches!(frame, Frame::CallResult { ref id, .. } if id == "h1"));

        assert_eq!(
            state.store.charger("NEW-1").await.unwrap().unwrap().scope,
            INSTALLATION
        );
        assert_eq!(state.estate.engine().scope_kind("NEW-1"), Some("station"));
        let audit = state
            .store
            .audit(&AuditFilter {
                limit: 5,
                after_id: None,
            })
            .await
            .unwrap();
        assert_eq!(audit[0].record.action, "charger.register");
        assert!(audit[0].record.allowed);

        shutdown.send(true).unwrap();
        server.await.unwrap().unwrap();
        let closing = {
            let state = state.clone();
            tokio::spawn(async move { state.chargers.close_all().await })
        };
        let close = charger.next().await.unwrap().unwrap();
        assert!(
            matches!(close, tokio_tungstenite::tungstenite::Message::Close(Some(ref f)) if u16::from(f.code) == 1001)
        );
        assert!(
            charger.next().await.is_none(),
            "the close handshake completes"
        );
        closing.await.unwrap();
        assert_eq!(state.chargers.connected_count(), 0);
    }
}
