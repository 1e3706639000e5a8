//! Sends arbitrary bytes as the JSON body of every body-taking API route, through the real
//! router in-process (in-memory store, the `connect` preset, the admin's token). Nothing may
//! panic, no answer may be a 5xx, and every refusal must be the JSON error shape
//! `{"error": CODE, "message": TEXT}`.

#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ADMIN_TOKEN: &str = "vg_fuzz_admin_0123456789abcdef0123456789abcdef";

/// (method, path) of every route that reads a JSON body, with ids that exist.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/scopes"),
    ("PUT", "/api/v1/scopes/site-a/modules/reporting"),
    ("POST", "/api/v1/chargers"),
    ("POST", "/api/v1/chargers/CP-1/commands/reset"),
    ("POST", "/api/v1/chargers/CP-1/commands/remote-start"),
    ("POST", "/api/v1/chargers/CP-1/commands/set-max-current"),
    ("POST", "/api/v1/chargers/CP-1/commands/trigger-message"),
    ("POST", "/api/v1/principals"),
    ("POST", "/api/v1/principals/ops/tokens"),
    ("POST", "/api/v1/principals/ops/id-tokens"),
    ("POST", "/api/v1/roles"),
    ("POST", "/api/v1/assignments"),
    ("DELETE", "/api/v1/assignments"),
    ("POST", "/api/v1/authz/explain"),
];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let router = runtime
            .block_on(voltgate::in_memory_api("connect", ADMIN_TOKEN))
            .expect("router");
        let setup: &[(&str, &str, &str)] = &[
            (
                "POST",
                "/api/v1/scopes",
                r#"{"id":"site-a","kind":"site","parent":"root"}"#,
            ),
            (
                "POST",
                "/api/v1/chargers",
                r#"{"id":"CP-1","scope":"site-a"}"#,
            ),
            (
                "POST",
                "/api/v1/principals",
                r#"{"id":"ops","kind":"operator","home_scope":"site-a"}"#,
            ),
        ];
        for (method, path, body) in setup {
            let status = runtime
                .block_on(send(&router, method, path, body.as_bytes().to_vec()))
                .0;
            assert!(status < 300, "setup {path}: {status}");
        }
        Fixture { runtime, router }
    })
}

async fn send(router: &axum::Router, method: &str, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    (status, bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (method, path) = ROUTES[usize::from(selector) % ROUTES.len()];
    let fixture = fixture();
    let (status, answer) =
        fixture
            .runtime
            .block_on(send(&fixture.router, method, path, body.to_vec()));
    // The charger is not connected, so nothing here may wait on one: a 5xx is a bug.
    assert!(
        status < 500,
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&answer)
    );
    if status >= 400 {
        let value: serde_json::Value =
            serde_json::from_slice(&answer).expect("an error answer is JSON");
        let object = value.as_object().expect("an error answer is an object");
        assert!(
            object.len() == 2 && object["error"].is_string() && object["message"].is_string(),
            "{method} {path}: {status} {value}"
        );
    }
});
