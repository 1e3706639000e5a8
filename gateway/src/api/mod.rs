//! The operator HTTP API (axum): JSON over `/api/v1`, plus `/metrics` and `/healthz`.
//!
//! Every request gets an `x-request-id` (the caller's, when sensible, else a new one) that is
//! echoed on the response, carried in the request's log span and written into audit records.
//! Every `/api/v1` route except the OpenAPI document needs `Authorization: Bearer TOKEN`.
//! Handlers ask the role engine through [`authorize`], and commands to chargers go through
//! [`crate::gate::send_command`] only.

pub(crate) mod assignments;
pub(crate) mod authorize;
pub(crate) mod authz;
pub(crate) mod chargers;
pub(crate) mod commands;
pub(crate) mod error;
mod explorer;
pub(crate) mod extract;
pub(crate) mod principals;
pub(crate) mod records;
pub(crate) mod roles;
pub(crate) mod scopes;

#[cfg(test)]
mod tests;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use tracing::Instrument;

use self::error::ApiError;
use self::extract::RequestId;
use crate::state::SharedState;

/// Request bodies above this size are refused with 413.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The OpenAPI 3.1 description of this API, checked in next to the crate's manifest.
pub(crate) const OPENAPI_JSON: &str = include_str!("../../openapi.json");

pub(crate) static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// One route the router serves: its method, its path template and the handler. [`routes`] is
/// the one table of them: the router is built from it and the OpenAPI document must describe
/// exactly these (checked by a test).
pub(crate) struct ApiRoute {
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "read by the OpenAPI comparison test")
    )]
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<SharedState>,
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> ApiRoute
where
    H: Handler<T, SharedState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone())
        .unwrap_or_else(|err| panic!("{method} cannot be routed: {err}"));
    ApiRoute {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// Every route of the API.
pub(crate) fn routes() -> Vec<ApiRoute> {
    use Method as M;
    vec![
        route(M::GET, "/healthz", healthz),
        route(M::GET, "/readyz", crate::lifecycle::readyz),
        route(M::GET, "/metrics", metrics),
        route(M::GET, "/api/v1/openapi.json", openapi),
        route(M::GET, "/api/v1/docs", explorer::page),
        route(M::GET, "/api/v1/docs/explorer.js", explorer::script),
        route(M::GET, "/api/v1/docs/explorer.css", explorer::style),
        route(M::GET, "/api/v1/scopes", scopes::list),
        route(M::POST, "/api/v1/scopes", scopes::create),
        route(M::GET, "/api/v1/scopes/{id}", scopes::get),
        route(
            M::PUT,
            "/api/v1/scopes/{id}/modules/{module}",
            scopes::set_module,
        ),
        route(M::GET, "/api/v1/chargers", chargers::list),
        route(M::POST, "/api/v1/chargers", chargers::create),
        route(M::GET, "/api/v1/chargers/{id}", chargers::get),
        route(M::PATCH, "/api/v1/chargers/{id}", chargers::update),
        route(
            M::POST,
            "/api/v1/chargers/{id}/password",
            chargers::rotate_password,
        ),
        route(M::POST, "/api/v1/chargers/{id}/approve", chargers::approve),
        route(
            M::POST,
            "/api/v1/chargers/{id}/commands/{command}",
            commands::send,
        ),
        route(M::GET, "/api/v1/principals", principals::list),
        route(M::POST, "/api/v1/principals", principals::create),
        route(
            M::POST,
            "/api/v1/principals/{id}/tokens",
            principals::issue_token,
        ),
        route(
            M::GET,
            "/api/v1/principals/{id}/tokens",
            principals::list_tokens,
        ),
        route(
            M::DELETE,
            "/api/v1/principals/{id}/tokens/{token_id}",
            principals::revoke_token,
        ),
        route(
            M::GET,
            "/api/v1/principals/{id}/id-tokens",
            principals::list_id_tokens,
        ),
        route(
            M::POST,
            "/api/v1/principals/{id}/id-tokens",
            principals::add_id_token,
        ),
        route(
            M::PATCH,
            "/api/v1/id-tokens/{token}",
            principals::change_id_token,
        ),
        route(
            M::DELETE,
            "/api/v1/id-tokens/{token}",
            principals::delete_id_token,
        ),
        route(
            M::POST,
            "/api/v1/id-tokens/{token}/block",
            principals::block_id_token,
        ),
        route(
            M::POST,
            "/api/v1/id-tokens/{token}/unblock",
            principals::unblock_id_token,
        ),
        route(M::POST, "/api/v1/principals/{id}/block", principals::block),
        route(
            M::POST,
            "/api/v1/principals/{id}/unblock",
            principals::unblock,
        ),
        route(M::DELETE, "/api/v1/principals/{id}", principals::delete),
        route(M::GET, "/api/v1/roles", roles::list),
        route(M::POST, "/api/v1/roles", roles::create),
        route(M::GET, "/api/v1/assignments", assignments::list),
        route(M::POST, "/api/v1/assignments", assignments::create),
        route(M::DELETE, "/api/v1/assignments", assignments::delete),
        route(M::POST, "/api/v1/authz/explain", authz::explain),
        route(M::GET, "/api/v1/transactions", records::transactions),
        route(M::GET, "/api/v1/audit", records::audit),
    ]
}

/// The whole API as one router.
pub(crate) fn router(state: SharedState) -> Router {
    let mut router = routes()
        .into_iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, route.handler)
        })
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed);
    if state.cluster.is_some() {
        router = router.layer(middleware::from_fn_with_state(
            state.clone(),
            crate::cluster::settle_changes,
        ));
    }
    router
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
