//! What the API does while the gateway shuts down, and the readiness probe that tells load
//! balancers to stop sending traffic.
//!
//! Shutdown (driven by [`crate::Running::shutdown`]) goes through phases that [`Drain`] tracks:
//! while *draining*, requests that were already running go on, new operator requests get a 503
//! `shutting_down` answer and the probes (`/healthz`, `/readyz`, `/metrics`) still answer, so a
//! load balancer sees the gateway leave rather than a refused connection. When the drain time
//! is up, requests still running are *cut*: they answer the same 503 at once, before the
//! charger connections close, so an operator never sees a dropped connection.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::sync::watch;

use crate::api::error::ApiError;
use crate::state::SharedState;

/// Where the API is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Serving,
    /// Running requests go on; new operator requests are refused.
    Draining,
    /// Running requests answer 503 at once.
    Cutting,
}

/// Shared between the shutdown sequence and every API request (as a request extension).
#[derive(Debug, Clone)]
pub(crate) struct Drain {
    phase: Arc<watch::Sender<Phase>>,
    in_flight: Arc<watch::Sender<usize>>,
}

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drain {
    pub(crate) fn new() -> Drain {
        Drain {
            phase: Arc::new(watch::Sender::new(Phase::Serving)),
            in_flight: Arc::new(watch::Sender::new(0)),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Operator requests running now (probes included).
    pub(crate) fn in_flight(&self) -> usize {
        *self.in_flight.borrow()
    }

    pub(crate) fn begin_draining(&self) {
        self.phase.send_if_modified(|phase| {
            let change = *phase == Phase::Serving;
            if change {
                *phase = Phase::Draining;
            }
            change
        });
    }

    pub(crate) fn cut(&self) {
        self.phase.send_replace(Phase::Cutting);
    }

    /// Resolves once no request is running.
    pub(crate) async fn idle(&self) {
        let mut count = self.in_flight.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we wait.
        let _ = count.wait_for(|running| *running == 0).await;
    }

    fn enter(&self) -> InFlight {
        self.in_flight.send_modify(|running| *running += 1);
        InFlight {
            in_flight: self.in_flight.clone(),
        }
    }

    async fn cut_off(&self) {
        let mut phase = self.phase.subscribe();
        if phase
            .wait_for(|phase| *phase == Phase::Cutting)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}

/// Counts one running request until dropped.
struct InFlight {
    in_flight: Arc<watch::Sender<usize>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.in_flight
            .send_modify(|running| *running = running.saturating_sub(1));
    }
}

/// Paths that keep answering while the gateway drains: they tell the outside how it is doing.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The 503 every refused or cut request gets.
pub(crate) fn shutting_down() -> Response {
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "the gateway is shutting down",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// API middleware: counts running requests, refuses new operator requests while draining and
/// answers running ones with 503 when they are cut. Without a [`Drain`] extension (routers
/// built for unit tests) requests pass untouched.
pub(crate) async fn drain_guard(request: Request, next: Next) -> Response {
    let Some(drain) = request.extensions().get::<Drain>().cloned() else {
        return next.run(request).await;
    };
    // Counted before the phase is read, so shutdown never sees zero while this one slips in.
    let _running = drain.enter();
    let probe = is_probe(request.uri().path());
    if drain.phase() != Phase::Serving && !probe {
        return shutting_down();
    }
    tokio::select! {
        response = next.run(request) => response,
        () = drain.cut_off() => {
            tracing::info!("request cut short by shutdown");
            shutting_down()
        }
    }
}

/// API middleware, innermost: a request that may change state (any method but GET, HEAD and
/// OPTIONS) runs in a task of its own, so a client that drops its connection, or a shutdown
/// that cuts the request, never stops a change half-way between the store, the role engine and
/// the audit log. While such a task runs it counts as in flight, so shutdown closes the store
/// only after it.
pub(crate) async fn run_to_completion(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if safe {
        return next.run(request).await;
    }
    let running = request.extensions().get::<Drain>().map(Drain::enter);
    let task = tokio::spawn(async move {
        let response = next.run(request).await;
        drop(running);
        response
    });
    match task.await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "API request task failed");
            ApiError::internal("the request failed inside the gateway").into_response()
        }
    }
}

/// How long `/readyz` waits for the store to answer before calling it unreachable.
const STORE_PING_LIMIT: Duration = Duration::from_secs(1);

/// `GET /readyz`: 200 while the gateway takes traffic, 503 from the moment shutdown begins,
/// while the store does not answer a trivial query within [`STORE_PING_LIMIT`] and, on a
/// cluster node, while NATS cannot be reached.
pub(crate) async fn readyz(State(state): State<SharedState>) -> Response {
    if *state.shutdown.borrow() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "shutting down" })),
        )
            .into_response()
    } else if state.cluster.as_ref().is_some_and(|c| !c.is_up()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "cluster unreachable" })),
        )
            .into_response()
    } else if !matches!(
        tokio::time::timeout(STORE_PING_LIMIT, state.store.ping()).await,
        Ok(Ok(()))
    ) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "store unreachable" })),
        )
            .into_response()
    } else {
        Json(serde_json::json!({ "status": "ready" })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn app(drain: &Drain, release: Arc<tokio::sync::Notify>) -> Router {
        Router::new()
            .route(
                "/slow",
                get(move || {
                    let release = release.clone();
                    async move {
                        release.notified().await;
                        "done"
                    }
                }),
            )
            .route("/fast", get(|| async { "fast" }))
            .route("/healthz", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(drain_guard))
            .layer(axum::Extension(drain.clone()))
    }

    fn get_request(path: &str) -> Request {
        Request::builder().uri(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn draining_refuses_new_requests_but_finishes_running_ones() {
        let drain = Drain::new();
        let release = Arc::new(tokio::sync::Notify::new());
        let app = app(&drain, release.clone());
        let running = tokio::spawn(app.clone().oneshot(get_request("/slow")));
        while drain.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        drain.begin_draining();
        let refused = app.clone().oneshot(get_request("/fast")).await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        let probe = app.clone().oneshot(get_request("/healthz")).await.unwrap();
        assert_eq!(probe.status(), StatusCode::OK);
        release.notify_one();
        let finished = running.await.unwrap().unwrap();
        assert_eq!(finished.status(), StatusCode::OK);
        drain.idle().await;
        assert_eq!(drain.in_flight(), 0);
    }

    #[tokio::test]
    async fn cutting_answers_running_requests_with_503() {
        let drain = Drain::new();
        let app = app(&drain, Arc::new(tokio::sync::Notify::new()));
        let running = tokio::spawn(app.oneshot(get_request("/slow")));
        while drain.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        drain.begin_draining();
        drain.cut();
        let cut = running.await.unwrap().unwrap();
        assert_eq!(cut.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(cut.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["message"], "the gateway is shutting down", "{body}");
        drain.idle().await;
    }

    #[tokio::test]
    async fn a_change_runs_to_its_end_when_the_client_goes_away() {
        let drain = Drain::new();
        let entered = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Notify::new());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let app = Router::new()
            .route("/change", {
                let (entered, release, done) = (entered.clone(), release.clone(), done.clone());
                axum::routing::post(move || async move {
                    entered.notify_one();
                    release.notified().await;
                    done.store(true, std::sync::atomic::Ordering::SeqCst);
                    "changed"
                })
            })
            .layer(axum::middleware::from_fn(run_to_completion))
            .layer(axum::Extension(drain.clone()));
        let request = Request::builder()
            .method("POST")
            .uri("/change")
            .body(Body::empty())
            .unwrap();
        let client = tokio::spawn(app.oneshot(request));
        entered.notified().await;
        client.abort();
        assert!(client.await.unwrap_err().is_cancelled());
        assert_eq!(drain.in_flight(), 1, "the change still counts as running");
        release.notify_one();
        drain.idle().await;
        assert!(
            done.load(std::sync::atomic::Ordering::SeqCst),
            "the handler finished although its client is gone"
        );
    }
}
