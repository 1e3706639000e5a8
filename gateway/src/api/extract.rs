//! Request extractors shared by every handler: who is calling (Bearer token), which request
//! this is (`x-request-id`) and strictly parsed JSON bodies.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use voltgate_policy::PrincipalKind;

use super::error::ApiError;
use super::MAX_BODY_BYTES;
use crate::audit;
use crate::state::{hash_token, SharedState};

/// The authenticated principal behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: String,
    pub kind: PrincipalKind,
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let record = state
            .store
            .principal_for_token_hash(&hash_token(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("the bearer token is not valid"))?;
        if let Some(expires_at) = &record.expires_at {
            let expired = match audit::parse_rfc3339(expires_at) {
                Some(at) => at <= time::OffsetDateTime::now_utc(),
                None => true,
            };
            if expired {
                return Err(ApiError::unauthorized("the bearer token has expired"));
            }
        }
        let (kind, blocked) = {
            let engine = state.policy.read();
            (
                engine.principal_kind(&record.principal),
                engine.is_blocked(&record.principal),
            )
        };
        let kind =
            kind.ok_or_else(|| ApiError::unauthorized("the token's principal no longer exists"))?;
        if blocked == Some(true) {
            return Err(ApiError::unauthorized("the token's principal is blocked"));
        }
        Ok(Caller {
            id: record.principal,
            kind,
        })
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer TOKEN` header"))?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer TOKEN`",
        ));
    }
    Ok(token)
}

/// The request's id: the caller's `x-request-id` when it is sensible, else a generated one.
/// Set by the router's middleware and echoed on every response.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts 1–128 characters of `[A-Za-z0-9._:-]`; anything else is replaced.
    pub fn from_header(value: Option<&str>) -> RequestId {
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

    pub fn generate() -> RequestId {
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
pub struct StrictJson<T>(pub T);

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
pub struct JsonValue(pub serde_json::Value);

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
pub fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if crate::state::is_valid_charger_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid_body(format!(
            "{what} id `{id}` must be 1 to 64 characters without `/`, control characters or surrounding spaces"
        )))
    }
}

/// Query-string parameters; a bad query is a 400 with the JSON error shape.
pub struct StrictQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| StrictQuery(q.0))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}
