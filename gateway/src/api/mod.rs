//! The operator HTTP API (axum): JSON over `/api/v1`, plus `/metrics` and `/healthz`.
//!
//! Every request gets an `x-request-id` (the caller's, when sensible, else a new one) that is
//! echoed on the response, carried in the request's log span and written into audit records.
//! Every `/api/v1` route except the OpenAPI document needs `Authorization: Bearer TOKEN`.
//! Handlers ask the role engine through [`authorize`], and commands to chargers go through
//! [`crate::gate::send_command`] only.

pub mod assignments;
pub mod authorize;
pub mod authz;
pub mod chargers;
pub mod commands;
pub mod error;
pub mod extract;
pub mod principals;
pub mod records;
pub mod roles;
pub mod scopes;

#[cfg(test)]
mod tests;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use tracing::Instrument;

use self::error::ApiError;
use self::extract::RequestId;
use crate::state::SharedState;

/// Request bodies above this size are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The OpenAPI 3.1 description of this API, checked in next to the crate's manifest.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Every route the router serves, as (method, path template); the OpenAPI document must
/// describe exactly these (checked by a test).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/scopes"),
    ("POST", "/api/v1/scopes"),
    ("PUT", "/api/v1/scopes/{id}/modules/{module}"),
    ("GET", "/api/v1/chargers"),
    ("POST", "/api/v1/chargers"),
    ("GET", "/api/v1/chargers/{id}"),
    ("PATCH", "/api/v1/chargers/{id}"),
    ("POST", "/api/v1/chargers/{id}/password"),
    ("POST", "/api/v1/chargers/{id}/approve"),
    ("POST", "/api/v1/chargers/{id}/commands/{command}"),
    ("GET", "/api/v1/principals"),
    ("POST", "/api/v1/principals"),
    ("POST", "/api/v1/principals/{id}/tokens"),
    ("GET", "/api/v1/principals/{id}/tokens"),
    ("DELETE", "/api/v1/principals/{id}/tokens/{token_id}"),
    ("GET", "/api/v1/principals/{id}/id-tokens"),
    ("PATCH", "/api/v1/id-tokens/{token}"),
    ("DELETE", "/api/v1/id-tokens/{token}"),
    ("POST", "/api/v1/id-tokens/{token}/block"),
    ("POST", "/api/v1/id-tokens/{token}/unblock"),
    ("POST", "/api/v1/principals/{id}/id-tokens"),
    ("POST", "/api/v1/principals/{id}/block"),
    ("POST", "/api/v1/principals/{id}/unblock"),
    ("DELETE", "/api/v1/principals/{id}"),
    ("GET", "/api/v1/roles"),
    ("POST", "/api/v1/roles"),
    ("GET", "/api/v1/assignments"),
    ("POST", "/api/v1/assignments"),
    ("DELETE", "/api/v1/assignments"),
    ("POST", "/api/v1/authz/explain"),
    ("GET", "/api/v1/transactions"),
    ("GET", "/api/v1/audit"),
];

/// The whole API as one router.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(crate::lifecycle::readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/scopes", get(scopes::list).post(scopes::create))
        .route(
            "/api/v1/scopes/{id}/modules/{module}",
            put(scopes::set_module),
        )
        .route(
            "/api/v1/chargers",
            get(chargers::list).post(chargers::create),
        )
        .route(
            "/api/v1/chargers/{id}",
            get(chargers::get).patch(chargers::update),
        )
        .route("/api/v1/chargers/{id}/approve", post(chargers::approve))
        .route(
            "/api/v1/chargers/{id}/password",
            post(chargers::rotate_password),
        )
        .route(
            "/api/v1/chargers/{id}/commands/{command}",
            post(commands::send),
        )
        .route(
            "/api/v1/principals",
            get(principals::list).post(principals::create),
        )
        .route(
            "/api/v1/principals/{id}/tokens",
            post(principals::issue_token).get(principals::list_tokens),
        )
        .route(
            "/api/v1/principals/{id}/tokens/{token_id}",
            axum::routing::delete(principals::revoke_token),
        )
        .route(
            "/api/v1/principals/{id}/id-tokens",
            post(principals::add_id_token).get(principals::list_id_tokens),
        )
        .route(
            "/api/v1/id-tokens/{token}",
            axum::routing::patch(principals::change_id_token).delete(principals::delete_id_token),
        )
        .route(
            "/api/v1/id-tokens/{token}/block",
            post(principals::block_id_token),
        )
        .route(
            "/api/v1/id-tokens/{token}/unblock",
            post(principals::unblock_id_token),
        )
        .route("/api/v1/principals/{id}/block", post(principals::block))
        .route("/api/v1/principals/{id}/unblock", post(principals::unblock))
        .route(
            "/api/v1/principals/{id}",
            axum::routing::delete(principals::delete),
        )
        .route("/api/v1/roles", get(roles::list).post(roles::create))
        .route(
            "/api/v1/assignments",
            get(assignments::list)
                .post(assignments::create)
                .delete(assignments::delete),
        )
        .route("/api/v1/authz/explain", post(authz::explain))
        .route("/api/v1/transactions", get(records::transactions))
        .route("/api/v1/audit", get(records::audit))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(crate::lifecycle::run_to_completion))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(crate::lifecycle::drain_guard))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// Request id, log span and the per-route request counter.
async fn request_context(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = RequestId::from_header(
        request
            .headers()
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "api",
        request_id = %request_id.as_str(),
        method = %request.method(),
        route = %route,
        principal = tracing::field::Empty,
    );
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    request.extensions_mut().insert(request_id.clone());
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    crate::logging::request_line(&span, &method, &path, status, started.elapsed());
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER.clone(), value);
    }
    state.metrics.api_request(&route, status.as_u16());
    response
}

async fn healthz(State(state): State<SharedState>) -> Response {
    if *state.shutdown.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "shutting_down" })),
        )
            .into_response();
    }
    Json(serde_json::json!({
        "status": "ok",
        "chargers_connected": state.chargers.connected_count(),
    }))
    .into_response()
}

async fn metrics(State(state): State<SharedState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
