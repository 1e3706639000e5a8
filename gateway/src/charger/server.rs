//! Where chargers come in: the TCP accept loop and the WebSocket handshake that decides who
//! may connect, before one session task per connection takes over.
//!
//! The handshake refuses, with an HTTP status and a plain-text reason:
//! - a path that is not `{prefix}/{id}` (404) or an id that is not a valid charger id (400);
//! - no OCPP subprotocol offered, or none we speak (400; `ocpp2.0.1` is preferred over
//!   `ocpp1.6` when both are offered);
//! - an unknown charger id (404), unless the gateway runs with `--auto-register SCOPE`, in
//!   which case the charger is created under that scope (audited) once the handshake is done;
//! - a charger whose record holds a password, when HTTP Basic credentials (user = charger id)
//!   are missing or wrong (401). Passwords are verified against the stored salted hash and
//!   never logged.
//!
//! The charger lookup needs the store, which is async, while the handshake callback of
//! tokio-tungstenite is synchronous. So the request head is read first (bounded, with a
//! timeout), the charger looked up, and the head replayed into the handshake through
//! [`Rewind`]; the callback then makes the whole decision from the request it is shown.
//!
//! WebSocket buffers are sized for many idle connections: a small read buffer, writes
//! flushed per message, and frames/messages capped at `max_frame_bytes`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, SEC_WEBSOCKET_PROTOCOL,
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
use crate::state::{AppState, RegisterError, SharedState};

/// The whole handshake (request head, lookup, response) must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest HTTP request head accepted (request line and headers).
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// WebSocket read buffer per connection; larger frames grow it only while they are read.
const READ_BUFFER_BYTES: usize = 2 * 1024;
/// Pause after an accept error (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts charger connections until shutdown begins.
pub async fn serve(listener: TcpListener, state: SharedState) -> io::Result<()> {
    let mut shutdown = state.shutdown.clone();
    if *shutdown.borrow() {
        return Ok(());
    }
    let mut watching_shutdown = true;
    loop {
        tokio::select! {
            changed = shutdown.changed(), if watching_shutdown => match changed {
                Ok(()) if *shutdown.borrow() => break,
                Ok(()) => {}
                // Nobody can signal shutdown any more: serve until the task is dropped.
                Err(_) => watching_shutdown = false,
            },
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let state = state.clone();
                    tokio::spawn(connection(stream, peer, state));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a charger connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    tracing::info!("no longer accepting charger connections");
    Ok(())
}

/// One connection from TCP accept to close.
async fn connection(stream: TcpStream, peer: SocketAddr, state: SharedState) {
    let _ = stream.set_nodelay(true);
    let span = tracing::info_span!("ocpp_handshake", %peer);
    // Boxed so the handshake's buffers are freed before the long-lived session starts.
    let handshake = Box::pin(tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        accept(stream, &state),
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
            if !auto_register(&state, &admission.charger_id, scope).await {
                session::close(&mut ws, CloseCode::Error, "charger could not be registered").await;
                return;
            }
        }
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
}

/// A handshake answered with an HTTP error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    /// Metric label (`voltgate_ocpp_handshakes_refused_total{reason}`).
    pub reason: &'static str,
    /// Plain-text body for the charger's installer.
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason,
            message: message.into(),
        }
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
    /// The looked-up id and its result; `None` when the path named no valid id.
    pub lookup: Option<(&'a str, &'a Lookup)>,
}

/// Reads the request head, looks the charger up and runs the WebSocket handshake. `None`
/// when the connection was refused or broke (already logged and counted).
async fn accept<S>(
    mut stream: S,
    state: &AppState,
) -> Option<(WebSocketStream<Rewind<S>>, Admission)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head = match read_request_head(&mut stream).await {
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
    let input = HandshakeInput {
        path_prefix: &settings.ocpp_path_prefix,
        auto_register: settings.auto_register.as_deref(),
        lookup: charger_id.as_deref().zip(lookup.as_ref()),
    };
    let mut verdict = None;
    // The callback's signature (and its large error response) is tokio-tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        let decision = evaluate(request, &input);
        let reply = match &decision {
            Ok(admission) => Ok(accept_response(response, admission.version)),
            Err(refusal) => Err(refusal.clone().into_response()),
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
                Some(scope) => Ok(Admission {
                    charger_id,
                    version,
                    register_under: Some(scope.to_owned()),
                }),
                None => Err(Refusal::new(
                    StatusCode::NOT_FOUND,
                    "unknown_charger",
                    format!("charger {charger_id} is not registered with this gateway"),
                )),
            }
        }
    };
    if let Some(password_hash) = &record.password_hash {
        check_basic_auth(request.headers(), &charger_id, password_hash)?;
    }
    Ok(Admission {
        charger_id,
        version,
        register_under: None,
    })
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
    if !crate::state::is_valid_charger_id(&id) {
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

/// Requires HTTP Basic credentials for `charger_id` matching the stored password hash.
fn check_basic_auth(
    headers: &HeaderMap,
    charger_id: &str,
    password_hash: &str,
) -> Result<(), Refusal> {
    let unauthorized = || {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this charger must authenticate with HTTP Basic (user = charge point id)",
        )
    };
    let (user, password) = basic_credentials(headers).ok_or_else(unauthorized)?;
    let password_ok = crate::state::verify_password(password_hash, &password);
    if user == charger_id && password_ok {
        Ok(())
    } else {
        Err(unauthorized())
    }
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
async fn auto_register(state: &AppState, charger_id: &str, scope: &str) -> bool {
    let result = crate::state::register_charger(state, charger_id, scope, None).await;
    let (allowed, reason, outcome) = match &result {
        Ok(()) => (
            true,
            format!("auto-registered under scope {scope} at its first connection"),
            "registered",
        ),
        Err(RegisterError::AlreadyExists(_)) => {
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
            charger_id,
            allowed,
            &reason,
            Some(outcome.to_owned()),
            None,
        ),
    )
    .await;
    if allowed {
        tracing::info!(%scope, "charger auto-registered");
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
            password_hash: password.map(crate::state::hash_password),
            security_profile: 1,
        }
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
                lookup: Some(("CP.1", lookup)),
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
                accept(server_io, &state)
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
        assert_eq!(outcome, Err(StatusCode::NOT_FOUND));
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
        assert_eq!(state.policy.read().scope_kind("NEW-1"), Some("station"));
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
