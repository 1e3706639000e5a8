//! Request extractors shared by every handler: who is calling (Bearer token), which request
//! this is (`x-request-id`) and strictly parsed JSON bodies.
//!
//! A request whose token is missing, unknown, expired or belongs to a blocked or deleted
//! principal is a 401; each such failure is counted
//! (`voltgate_api_auth_failures_total{reason}`), audited (`api.authenticate`, not allowed) and
//! taken from the failure budgets of the client address and of the token presented there
//! ([`crate::throttle`]; the address is the one a trusted proxy names, [`crate::proxy`]). A
//! token that used up its own budget gets 429 with `Retry-After` before it is even looked up;
//! another failure from an address without budget gets 429 too, but a valid token is let in
//! whatever its neighbours did.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::HeaderName;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::MAX_BODY_BYTES;
use crate::audit;
use crate::state::{hash_token, SharedState};
use crate::throttle::Listener;
use crate::tls::PeerAddr;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The authenticated principal behind a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub id: String,
}

/// Why a request was not let in as a [`Caller`].
#[derive(Debug)]
pub(crate) enum AuthRejection {
    /// Bad credentials (401) or a failure looking them up.
    Refused(ApiError),
    /// The client address failed authentication too often lately (429).
    Throttled(Duration),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Refused(err) => err.into_response(),
            AuthRejection::Throttled(wait) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                let mut response = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_failed_logins",
                    format!("too many failed authentications from this address; retry in {secs} s"),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs));
                response
            }
        }
    }
}

impl From<ApiError> for AuthRejection {
    fn from(err: ApiError) -> Self {
        AuthRejection::Refused(err)
    }
}

/// A failed authentication: the metric label, the principal if the token named one, and
/// the answer.
struct AuthFailure {
    reason: &'static str,
    principal: Option<String>,
    error: ApiError,
}

impl AuthFailure {
    fn new(reason: &'static str, message: &str) -> AuthFailure {
        AuthFailure {
            reason,
            principal: None,
            error: ApiError::unauthorized(message),
        }
    }

    fn of(mut self, principal: &str) -> AuthFailure {
        self.principal = Some(principal.to_owned());
        self
    }
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let peer_ip: Option<IpAddr> = parts.extensions.get::<ConnectInfo<PeerAddr>>().map(|info| {
            let forwarded = parts.headers.get_all(X_FORWARDED_FOR);
            state.settings.trusted_proxies.client(
                info.0 .0.ip(),
                forwarded.iter().filter_map(|value| value.to_str().ok()),
            )
        });
        let identity = credential_identity(&parts.headers);
        if let Some(ip) = peer_ip {
            if let Err(wait) = state.auth_guard.api.check_identity(ip, &identity) {
                state.metrics.auth_throttled(Listener::Api);
                return Err(AuthRejection::Throttled(wait));
            }
        }
        match authenticate(parts, state).await {
            Ok(Ok(caller)) => Ok(caller),
            Ok(Err(failure)) => {
                state.metrics.api_auth_failure(failure.reason);
                if let Some(ip) = peer_ip {
                    if let Err(wait) = state.auth_guard.api.record_failure(ip, &identity) {
                        state.metrics.auth_throttled(Listener::Api);
                        return Err(AuthRejection::Throttled(wait));
                    }
                }
                let request_id = parts.extensions.get::<RequestId>().cloned();
                let from = peer_ip.map(|ip| format!(" from {ip}")).unwrap_or_default();
                audit::record(
                    state,
                    audit::entry(
                        failure.principal.as_deref().unwrap_or("anonymous"),
                        "api.authenticate",
                        parts.uri.path(),
                        false,
                        &format!("{}{from}: {}", failure.reason, failure.error.message),
                        None,
                        request_id.as_ref().map(RequestId::as_str),
                    ),
                )
                .await;
                Err(AuthRejection::Refused(failure.error))
            }
            Err(err) => Err(AuthRejection::Refused(err)),
        }
    }
}

/// Who a request claims to be, for the failure budgets: a short fingerprint of its bearer
/// token (never the token), or `-` without one.
fn credential_identity(headers: &HeaderMap) -> String {
    match bearer_token(headers) {
        Ok(token) => hash_token(token).chars().take(16).collect(),
        Err(_) => "-".to_owned(),
    }
}

/// The caller behind the request's token; the inner error is a failed authentication, the
/// outer one a failure to check (e.g. the store is down).
async fn authenticate(
    parts: &Parts,
    state: &SharedState,
) -> Result<Result<Caller, AuthFailure>, ApiError> {
    let token = match bearer_token(&parts.headers) {
        Ok(token) => token,
        Err((reason, err)) => {
            return Ok(Err(AuthFailure {
                reason,
                principal: None,
                error: err,
            }))
        }
    };
    let Some(record) = state
        .store
        .principal_for_token_hash(&hash_token(token))
        .await?
    else {
        return Ok(Err(AuthFailure::new(
            "invalid",
            "the bearer token is not valid",
        )));
    };
    if let Some(expires_at) = &record.expires_at {
        let expired = match crate::clock::parse_rfc3339(expires_at) {
            Some(at) => at <= crate::clock::now(),
            None => true,
        };
        if expired {
            return Ok(Err(AuthFailure::new(
                "expired",
                "the bearer token has expired",
            )
            .of(&record.principal)));
        }
    }
    let (known, blocked) = {
        let engine = state.estate.engine();
        (
            engine.principal_kind(&record.principal).is_some(),
            engine.is_blocked(&record.principal),
        )
    };
    if !known {
        return Ok(Err(AuthFailure::new(
            "unknown_principal",
            "the token's principal no longer exists",
        )
        .of(&record.principal)));
    }
    if blocked == Some(true) {
        return Ok(Err(AuthFailure::new(
            "blocked",
            "the token's principal is blocked",
        )
        .of(&record.principal)));
    }
    tracing::Span::current().record("principal", record.principal.as_str());
    Ok(Ok(Caller {
        id: record.principal,
    }))
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, (&'static str, ApiError)> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        (
            "missing",
            ApiError::unauthorized("missing `Authorization: Bearer TOKEN` header"),
        )
    })?;
    let malformed = |message: &str| ("malformed", ApiError::unauthorized(message));
    let text = value
        .to_str()
        .map_err(|_| malformed("the Authorization header is not valid text"))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| malformed("the Authorization header must be `Bearer TOKEN`"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed("the Authorization header must be `Bearer TOKEN`"));
    }
    Ok(token)
}

/// The request's id: the caller's `x-request-id` when it is sensible, else a generated one.
/// Set by the router's middleware and echoed on every response.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub String);

impl RequestId {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts 1–128 characters of `[A-Za-z0-9._:-]`; anything else is replaced.
    pub(crate) fn from_header(value: Option<&str>) -> RequestId {
        match value {
            Some(v)
                if !v.is_empty()
                    && v.len() <= 128
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)) =>
            {
                RequestId(v.to_owned())
            }
            _ => RequestId::generate(),
        }
    }

    pub(crate) fn generate() -> RequestId {
        use rand::RngCore;
        let mut bytes = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut bytes);
        RequestId(hex::encode(bytes))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::generate))
    }
}

/// A JSON body parsed strictly: the types it fills deny unknown fields, and every failure is
/// a 422 naming the problem (413 when the body exceeds the limit). The body must be JSON
/// whatever `Content-Type` says (tokens travel in headers, not cookies, so a form post from
/// a browser carries no credentials). An empty body counts as `{}`, so all-optional bodies
/// may be left out.
pub(crate) struct StrictJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = read_json_value(req, state).await?;
        serde_json::from_value(value)
            .map(StrictJson)
            .map_err(|err| ApiError::invalid_body(format!("invalid request body: {err}")))
    }
}

/// The body as a JSON value, with the same size and syntax rules as
/// [`StrictJson`]; for handlers that interpret the value themselves.
pub(crate) struct JsonValue(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonValue {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_json_value(req, state).await.map(JsonValue)
    }
}

async fn read_json_value<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<serde_json::Value, ApiError> {
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(MAX_BODY_BYTES)
        } else {
            ApiError::invalid_body(format!("could not read the request body: {rejection}"))
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(&bytes)
        .map_err(|err| ApiError::invalid_body(format!("request body is not valid JSON: {err}")))
}

/// Ids of scopes, chargers and principals travel in URL paths: the charger id rule applies.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if voltgate_policy::is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid_body(format!(
            "{what} id `{id}` must be 1 to 64 characters without `/`, control characters or surrounding spaces"
        )))
    }
}

/// Path parameters; a segment that does not decode (e.g. invalid UTF-8 after
/// percent-decoding) is a 400 `invalid_path` with the JSON error shape.
pub(crate) struct StrictPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for StrictPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| StrictPath(p.0))
            .map_err(|rejection| ApiError::bad_request("invalid_path", rejection.body_text()))
    }
}

/// Query-string parameters; a bad query is a 400 with the JSON error shape.
pub(crate) struct StrictQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| StrictQuery(q.0))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}
