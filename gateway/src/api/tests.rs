//! Handler tests: the real router on an in-memory store, driven with `oneshot`. Commands that
//! must reach a charger use the charger side's in-memory session, so the whole path from HTTP
//! to OCPP frame runs without sockets.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use voltgate_ocpp::{Frame, OcppVersion};
use voltgate_policy::Preset;
use voltgate_store::{ApiTokenRecord, AuditFilter, NewTransaction, StoredAuditRecord};

use super::{router, routes};
use crate::state::testing::state_from_parts;
use crate::state::{bootstrap_admin, hash_token, SharedState};
use voltgate_estate::load_engine;

const ADMIN: &str = "vg_test_admin_token";

struct Api {
    state: SharedState,
    router: Router,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Api {
    async fn new(preset: &str) -> Api {
        let store = voltgate_store::open("sqlite::memory:").await.unwrap();
        let mut engine = load_engine(store.as_ref(), Preset::builtin(preset).unwrap())
            .await
            .unwrap();
        bootstrap_admin(store.as_ref(), &mut engine, Some(ADMIN))
            .await
            .unwrap();
        let state = state_from_parts(store, engine);
        let router = router(state.clone());
        Api { state, router }
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        self.send(request).await
    }

    async fn get(&self, uri: &str, token: &str) -> Reply {
        self.call(Method::GET, uri, Some(token), None).await
    }

    async fn post(&self, uri: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, uri, Some(token), Some(body)).await
    }

    async fn created(&self, uri: &str, body: Value) -> Value {
        let reply = self.post(uri, ADMIN, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "POST {uri} {body}: {}",
            reply.body
        );
        reply.body
    }

    async fn token_for(&self, principal: &str) -> String {
        let body = self
            .created(&format!("/api/v1/principals/{principal}/tokens"), json!({}))
            .await;
        body["token"].as_str().unwrap().to_owned()
    }

    async fn audit(&self) -> Vec<StoredAuditRecord> {
        self.state
            .store
            .audit(&AuditFilter {
                limit: 0,
                after_id: None,
            })
            .await
            .unwrap()
    }
}

/// A connect-preset estate: sites north (with a charger CP-N) and south (CP-S);
/// alice is site admin of north, bob holds a custom view-only role on north, carol is a
/// driver at north.
async fn estate() -> (Api, String, String) {
    let api = Api::new("connect").await;
    for (id, parent) in [("north", "root"), ("south", "root")] {
        api.created(
            "/api/v1/scopes",
            json!({"id": id, "kind": "site", "parent": parent}),
        )
        .await;
    }
    for (id, scope) in [("CP-N", "north"), ("CP-S", "south")] {
        api.created("/api/v1/chargers", json!({"id": id, "scope": scope}))
            .await;
    }
    for (id, kind) in [
        ("alice", "operator"),
        ("bob", "operator"),
        ("carol", "driver"),
    ] {
        api.created(
            "/api/v1/principals",
            json!({"id": id, "kind": kind, "home_scope": "north"}),
        )
        .await;
    }
    api.created(
        "/api/v1/roles",
        json!({"id": "viewer", "permissions": ["view-chargers"], "label": "Viewer"}),
    )
    .await;
    for (principal, role) in [("alice", "site-admin"), ("bob", "viewer")] {
        api.created(
            "/api/v1/assignments",
            json!({"principal": principal, "role": role, "scope": "north"}),
        )
        .await;
    }
    let alice = api.token_for("alice").await;
    let bob = api.token_for("bob").await;
    (api, alice, bob)
}

async fn gina_token(api: &Api) -> String {
    api.token_for("gina").await
}

fn error_code(reply: &Reply) -> &str {
    reply.body["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn missing_unknown_and_expired_tokens_are_401() {
    let api = Api::new("connect").await;
    let missing = api.call(Method::GET, "/api/v1/chargers", None, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&missing), "unauthorized");
    assert_eq!(missing.headers[header::WWW_AUTHENTICATE], "Bearer");
    assert!(missing.headers.contains_key("x-request-id"));

    let wrong = api.get("/api/v1/chargers", "vg_not_a_token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let basic = api
        .send(
            Request::get("/api/v1/chargers")
                .header(header::AUTHORIZATION, "Basic YWRtaW46eA==")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);

    api.state
        .store
        .add_api_token(&ApiTokenRecord {
            id: "tok_old".into(),
            principal: "admin".into(),
            hash: hash_token("vg_expired"),
            created_at: "2020-01-01T00:00:00Z".into(),
            expires_at: Some("2020-01-02T00:00:00Z".into()),
        })
        .await
        .unwrap();
    let expired = api.get("/api/v1/chargers", "vg_expired").await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.body["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    let ok = api.get("/api/v1/chargers", ADMIN).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

#[tokio::test]
async fn request_ids_are_echoed_and_audited() {
    let (api, _alice, bob) = estate().await;
    let reply = api
        .send(
            Request::post("/api/v1/chargers/CP-N/commands/reset")
                .header(header::AUTHORIZATION, format!("Bearer {bob}"))
                .header("x-request-id", "trace-42")
                .body(Body::from(r#"{"type":"soft"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.headers["x-request-id"], "trace-42");
    let audit = api.audit().await;
    assert_eq!(audit[0].record.request_id.as_deref(), Some("trace-42"));

    let generated = api.get("/healthz", ADMIN).await;
    let id = generated.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 16, "a generated id: {id}");
    let unsafe_id = api
        .send(
            Request::get("/healthz")
                .header("x-request-id", "bad id with spaces")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_ne!(unsafe_id.headers["x-request-id"], "bad id with spaces");
}

#[tokio::test]
async fn refused_command_is_403_audited_and_never_sent() {
    let (api, _alice, bob) = estate().await;
    let (mut charger, _session) =
        crate::charger::test_support::connect(&api.state, "CP-N", OcppVersion::V16).await;

    let reply = api
        .post(
            "/api/v1/chargers/CP-N/commands/reset",
            &bob,
            json!({"type": "hard"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(error_code(&reply), "forbidden");
    assert!(!reply.body["message"].as_str().unwrap().is_empty());

    let refusal = api
        .audit()
        .await
        .into_iter()
        .find(|r| r.record.principal == "bob" && r.record.action == "command.reset")
        .expect("the refusal is audited");
    assert!(!refusal.record.allowed);
    assert_eq!(refusal.record.resource, "CP-N");
    assert_eq!(refusal.record.outcome.as_deref(), Some("refused"));

    let nothing =
        tokio::time::timeout(std::time::Duration::from_millis(50), charger.next_message()).await;
    assert!(
        nothing.is_err(),
        "no frame may reach the charger: {nothing:?}"
    );
}

#[tokio::test]
async fn allowed_command_reaches_the_charger_and_its_answer_comes_back() {
    let (api, alice, _bob) = estate().await;
    let (mut charger, _session) =
        crate::charger::test_support::connect(&api.state, "CP-N", OcppVersion::V16).await;
    let router = api.router.clone();
    let request = Request::post("/api/v1/chargers/CP-N/commands/reset")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .body(Body::from(r#"{"type":"soft"}"#))
        .unwrap();
    let pending = tokio::spawn(async move { router.oneshot(request).await.unwrap() });

    let Frame::Call {
        id,
        action,
        payload,
    } = charger.next_frame().await
    else {
        panic!("expected a CALL");
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

    let response = pending.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        body,
        json!({"status": "Accepted", "response": {"status": "Accepted"}})
    );

    let record = api
        .audit()
        .await
        .into_iter()
        .find(|r| r.record.principal == "alice" && r.record.action == "command.reset")
        .unwrap();
    assert!(record.record.allowed);
    assert_eq!(record.record.outcome.as_deref(), Some("ok: Accepted"));
}

#[tokio::test]
async fn charger_errors_map_to_502_504_and_400() {
    let (api, alice, _bob) = estate().await;
    let (mut charger, _session) =
        crate::charger::test_support::connect(&api.state, "CP-N", OcppVersion::V16).await;

    let router = api.router.clone();
    let token = alice.clone();
    let pending = tokio::spawn(async move {
        router
            .oneshot(
                Request::post("/api/v1/chargers/CP-N/commands/unlock")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::from(r#"{"connector":1}"#))
                    .unwrap(),
            )
            .await
            .unwrap()
    });
    let Frame::Call { id, action, .. } = charger.next_frame().await else {
        panic!("expected a CALL");
    };
    assert_eq!(action, "UnlockConnector");
    charger
        .send_text(
            &Frame::CallError {
                id,
                code: "InternalError".into(),
                description: "stuck".into(),
                details: json!({}),
            }
            .to_text(),
        )
        .await;
    let response = pending.await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);

    // The test state's command timeout is short; the charger stays silent.
    let silent = api
        .post(
            "/api/v1/chargers/CP-N/commands/clear-cache",
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(
        silent.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        silent.body
    );
    assert_eq!(error_code(&silent), "charger_timeout");
    let outcomes: Vec<Option<String>> = api
        .audit()
        .await
        .into_iter()
        .filter(|r| r.record.principal == "alice" && r.record.action.starts_with("command."))
        .map(|r| r.record.outcome)
        .collect();
    assert!(outcomes.contains(&Some("timeout".into())), "{outcomes:?}");
    assert!(
        outcomes.contains(&Some("call_error: InternalError".into())),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn command_missing_from_the_chargers_version_is_400() {
    let (api, _alice, _bob) = estate().await;
    let (mut charger, _session) =
        crate::charger::test_support::connect(&api.state, "CP-N", OcppVersion::V201).await;
    let reply = api
        .post(
            "/api/v1/chargers/CP-N/commands/trigger-message",
            ADMIN,
            json!({"message": "DiagnosticsStatusNotification"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(error_code(&reply), "unsupported_in_version");

    // 2.0.1 keys are Component.Variable; a bare 1.6 key cannot be translated.
    let plain_key = api
        .post(
            "/api/v1/chargers/CP-N/commands/change-configuration",
            ADMIN,
            json!({"key": "HeartbeatInterval", "value": "60"}),
        )
        .await;
    assert_eq!(
        plain_key.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        plain_key.body
    );
    let nothing =
        tokio::time::timeout(std::time::Duration::from_millis(50), charger.next_message()).await;
    assert!(
        nothing.is_err(),
        "nothing may reach the charger: {nothing:?}"
    );
}

#[tokio::test]
async fn invisible_charger_is_404_like_a_missing_one_and_offline_is_409() {
    let (api, alice, _bob) = estate().await;
    let invisible = api
        .post(
            "/api/v1/chargers/CP-S/commands/reset",
            &alice,
            json!({"type": "soft"}),
        )
        .await;
    let missing = api
        .post(
            "/api/v1/chargers/CP-X/commands/reset",
            &alice,
            json!({"type": "soft"}),
        )
        .await;
    assert_eq!(invisible.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        invisible.body["message"]
            .as_str()
            .unwrap()
            .replace("CP-S", "ID"),
        missing.body["message"]
            .as_str()
            .unwrap()
            .replace("CP-X", "ID"),
        "an invisible charger reads exactly like a missing one"
    );
    let audited = api.audit().await;
    assert!(audited.iter().any(|r| r.record.resource == "CP-S"
        && !r.record.allowed
        && r.record.outcome.as_deref() == Some("not_found")));

    let get_invisible = api.get("/api/v1/chargers/CP-S", &alice).await;
    assert_eq!(get_invisible.status, StatusCode::NOT_FOUND);

    let offline = api
        .post(
            "/api/v1/chargers/CP-N/commands/reset",
            &alice,
            json!({"type": "soft"}),
        )
        .await;
    assert_eq!(offline.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&offline), "not_connected");
}

#[tokio::test]
async fn command_bodies_are_checked_before_anything_else() {
    let (api, alice, _bob) = estate().await;
    let unknown = api
        .post(
            "/api/v1/chargers/CP-N/commands/self-destruct",
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&unknown), "unknown_command");

    let extra_field = api
        .post(
            "/api/v1/chargers/CP-N/commands/unlock",
            &alice,
            json!({"connector": 1, "force": true}),
        )
        .await;
    assert_eq!(extra_field.status, StatusCode::UNPROCESSABLE_ENTITY);

    let bad_reset = api
        .post(
            "/api/v1/chargers/CP-N/commands/reset",
            &alice,
            json!({"type": "sideways"}),
        )
        .await;
    assert_eq!(bad_reset.status, StatusCode::UNPROCESSABLE_ENTITY);

    let not_json = api
        .send(
            Request::post("/api/v1/chargers/CP-N/commands/unlock")
                .header(header::AUTHORIZATION, format!("Bearer {alice}"))
                .body(Body::from("{connector: 1"))
                .unwrap(),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&not_json), "invalid_body");
}

#[tokio::test]
async fn scopes_create_conflict_and_validation() {
    let (api, alice, bob) = estate().await;
    let nested = api
        .post(
            "/api/v1/scopes",
            &alice,
            json!({"id": "north-garage", "kind": "site", "parent": "north"}),
        )
        .await;
    assert_eq!(nested.status, StatusCode::CREATED, "{}", nested.body);
    assert_eq!(nested.body["parent"], "north");

    let duplicate = api
        .post(
            "/api/v1/scopes",
            ADMIN,
            json!({"id": "north", "kind": "site", "parent": "root"}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&duplicate), "conflict");

    let unknown_kind = api
        .post(
            "/api/v1/scopes",
            ADMIN,
            json!({"id": "x", "kind": "galaxy", "parent": "root"}),
        )
        .await;
    assert_eq!(unknown_kind.status, StatusCode::UNPROCESSABLE_ENTITY);

    let unknown_field = api
        .post(
            "/api/v1/scopes",
            ADMIN,
            json!({"id": "x", "kind": "site", "parent": "root", "colour": "red"}),
        )
        .await;
    assert_eq!(unknown_field.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown_field.body["message"]
        .as_str()
        .unwrap()
        .contains("colour"));

    let forbidden = api
        .post(
            "/api/v1/scopes",
            &bob,
            json!({"id": "b", "kind": "site", "parent": "north"}),
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let invisible_parent = api
        .post(
            "/api/v1/scopes",
            &alice,
            json!({"id": "s2", "kind": "site", "parent": "south"}),
        )
        .await;
    assert_eq!(invisible_parent.status, StatusCode::NOT_FOUND);

    let listed = api.get("/api/v1/scopes", &alice).await;
    let ids: Vec<&str> = listed.body["scopes"]
        .as_array()
        .unwrap_or_else(|| panic!("{} {}", listed.status, listed.body))
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"north") && ids.contains(&"north-garage") && ids.contains(&"CP-N"));
    assert!(!ids.contains(&"south") && !ids.contains(&"CP-S"), "{ids:?}");
}

/// One scope is answered by the list's rule: what the list shows, with the same fields;
/// an invisible scope and an unknown one are the same 404.
#[tokio::test]
async fn a_scope_is_shown_alone_exactly_as_listed() {
    let (api, alice, bob) = estate().await;
    let carol = api.token_for("carol").await;
    for token in [ADMIN, alice.as_str(), bob.as_str(), carol.as_str()] {
        let listed = api.get("/api/v1/scopes", token).await;
        let listed = listed.body["scopes"].as_array().unwrap().clone();
        for scope in ["root", "north", "south", "CP-N", "CP-S", "nowhere"] {
            let shown = api.get(&format!("/api/v1/scopes/{scope}"), token).await;
            match listed.iter().find(|s| s["id"] == scope) {
                Some(entry) => {
                    assert_eq!(shown.status, StatusCode::OK, "{scope}: {}", shown.body);
                    assert_eq!(&shown.body, entry, "{scope}");
                }
                None => {
                    assert_eq!(
                        shown.status,
                        StatusCode::NOT_FOUND,
                        "{scope}: {}",
                        shown.body
                    );
                    assert_eq!(error_code(&shown), "not_found");
                    assert_eq!(shown.body["message"], format!("scope `{scope}` not found"));
                }
            }
        }
    }
    let alices = api.get("/api/v1/scopes/north", &alice).await;
    assert_eq!(alices.body["kind"], "site");
    assert_eq!(alices.body["parent"], "root");
    assert_eq!(
        api.get("/api/v1/scopes/south", &alice).await.status,
        StatusCode::NOT_FOUND,
        "another site's scope is not shown"
    );
}

#[tokio::test]
async fn oversize_and_non_json_bodies() {
    let api = Api::new("connect").await;
    let huge = json!({"id": "x", "kind": "site", "parent": "root", "name": "n".repeat(super::MAX_BODY_BYTES)});
    let too_large = api.post("/api/v1/scopes", ADMIN, huge).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&too_large), "payload_too_large");

    let untyped = api
        .send(
            Request::post("/api/v1/scopes")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(r#"{"id":"x","kind":"site","parent":"root"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(
        untyped.status,
        StatusCode::CREATED,
        "JSON is read whatever the content type says"
    );
    let form = api
        .send(
            Request::post("/api/v1/scopes")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .body(Body::from("id=y&kind=site"))
                .unwrap(),
        )
        .await;
    assert_eq!(form.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn chargers_register_list_and_show_live_state() {
    let (api, alice, bob) = estate().await;
    let created = api
        .post(
            "/api/v1/chargers",
            &alice,
            json!({"id": "CP-N2", "scope": "north", "password": "s3cret-s3cret-s3cret"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["password_set"], true);
    assert_eq!(created.body["security_profile"], 1);
    assert!(
        !created.body.to_string().contains("s3cret"),
        "the password is never echoed"
    );
    let stored = api.state.store.charger("CP-N2").await.unwrap().unwrap();
    let hash = stored.password_hash.unwrap();
    assert!(crate::state::verify_password(&hash, "s3cret-s3cret-s3cret"));

    let duplicate = api
        .post(
            "/api/v1/chargers",
            ADMIN,
            json!({"id": "CP-N", "scope": "north"}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let under_root = api
        .post(
            "/api/v1/chargers",
            ADMIN,
            json!({"id": "CP-R", "scope": "root"}),
        )
        .await;
    assert_eq!(
        under_root.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        under_root.body
    );
    let by_viewer = api
        .post(
            "/api/v1/chargers",
            &bob,
            json!({"id": "CP-B", "scope": "north"}),
        )
        .await;
    assert_eq!(by_viewer.status, StatusCode::FORBIDDEN);

    let listed = api.get("/api/v1/chargers", &bob).await;
    let ids: Vec<&str> = listed.body["chargers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["CP-N", "CP-N2"]);

    let offline = api.get("/api/v1/chargers/CP-N", &bob).await;
    assert_eq!(offline.status, StatusCode::OK);
    assert_eq!(offline.body["connected"], false);
    assert_eq!(offline.body["scope"], "north");
    assert_eq!(offline.body["connectors"], json!({}));

    let (_charger, _session) =
        crate::charger::test_support::connect(&api.state, "CP-N", OcppVersion::V201).await;
    let online = api.get("/api/v1/chargers/CP-N", &bob).await;
    assert_eq!(online.body["connected"], true, "{}", online.body);
    assert_eq!(online.body["ocpp_version"], "2.0.1");
    assert_eq!(online.body["scope"], "north");
}

#[tokio::test]
async fn principals_tokens_id_tokens_and_blocking() {
    let (api, alice, bob) = estate().await;
    let listed_by_bob = api.get("/api/v1/principals", &bob).await;
    let ids: Vec<&str> = listed_by_bob.body["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"bob"));
    assert!(
        !ids.contains(&"carol"),
        "drivers only where driver.view allows: {ids:?}"
    );
    assert!(!ids.contains(&"admin"));
    let listed_by_alice = api.get("/api/v1/principals", &alice).await;
    assert!(listed_by_alice.body.to_string().contains("carol"));

    let system_kind = api
        .post(
            "/api/v1/principals",
            ADMIN,
            json!({"id": "robot", "kind": "system", "home_scope": "root"}),
        )
        .await;
    assert_eq!(system_kind.status, StatusCode::UNPROCESSABLE_ENTITY);
    let duplicate = api
        .post(
            "/api/v1/principals",
            &alice,
            json!({"id": "bob", "kind": "operator", "home_scope": "north"}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);

    let own = api
        .post("/api/v1/principals/bob/tokens", &bob, json!({}))
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    let token = own.body["token"].as_str().unwrap();
    assert!(token.starts_with("vg_"));
    let for_alice = api
        .post("/api/v1/principals/alice/tokens", &bob, json!({}))
        .await;
    assert_eq!(for_alice.status, StatusCode::FORBIDDEN);
    let past = api
        .post(
            "/api/v1/principals/bob/tokens",
            &bob,
            json!({"expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY);

    api.created(
        "/api/v1/principals",
        json!({"id": "gina", "kind": "operator", "home_scope": "north"}),
    )
    .await;
    api.created(
        "/api/v1/assignments",
        json!({"principal": "gina", "role": "global-admin", "scope": "root"}),
    )
    .await;
    let for_gina = api
        .post("/api/v1/principals/gina/tokens", &alice, json!({}))
        .await;
    assert_eq!(
        for_gina.status,
        StatusCode::FORBIDDEN,
        "a site admin cannot act as a global admin: {}",
        for_gina.body
    );
    let block_gina = api
        .post("/api/v1/principals/gina/block", &alice, json!({}))
        .await;
    assert_eq!(block_gina.status, StatusCode::FORBIDDEN);
    let for_admin = api
        .post(
            "/api/v1/principals/admin/tokens",
            &gina_token(&api).await,
            json!({}),
        )
        .await;
    assert_eq!(
        for_admin.status,
        StatusCode::FORBIDDEN,
        "only system manages system: {}",
        for_admin.body
    );
    let for_bob_by_alice = api
        .post("/api/v1/principals/bob/tokens", &alice, json!({}))
        .await;
    assert_eq!(
        for_bob_by_alice.status,
        StatusCode::CREATED,
        "{}",
        for_bob_by_alice.body
    );

    let card = api
        .post(
            "/api/v1/principals/carol/id-tokens",
            &alice,
            json!({"id_token": "RFID-0001"}),
        )
        .await;
    assert_eq!(card.status, StatusCode::CREATED, "{}", card.body);
    let stored = api
        .state
        .store
        .id_tokens_named("RFID-0001", "RFID-0001")
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(stored.principal, "carol");
    let again = api
        .post(
            "/api/v1/principals/alice/id-tokens",
            &alice,
            json!({"id_token": "RFID-0001"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let by_bob = api
        .post(
            "/api/v1/principals/carol/id-tokens",
            &bob,
            json!({"id_token": "RFID-0002"}),
        )
        .await;
    assert_eq!(
        by_bob.status,
        StatusCode::NOT_FOUND,
        "bob cannot see drivers: {}",
        by_bob.body
    );
    let explain_carol = api
        .post(
            "/api/v1/authz/explain",
            &bob,
            json!({"principal": "bob", "action": "driver.view", "resource": "principal:carol"}),
        )
        .await;
    assert_eq!(
        explain_carol.status,
        StatusCode::NOT_FOUND,
        "{}",
        explain_carol.body
    );

    let blocked = api
        .post("/api/v1/principals/bob/block", &alice, json!({}))
        .await;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.body);
    assert_eq!(blocked.body["blocked"], true);
    assert_eq!(
        api.get("/api/v1/chargers", &bob).await.status,
        StatusCode::UNAUTHORIZED
    );
    let unblocked = api
        .post("/api/v1/principals/bob/unblock", &alice, json!({}))
        .await;
    assert_eq!(unblocked.body["blocked"], false);
    assert_eq!(
        api.get("/api/v1/chargers", &bob).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn assignments_follow_grant_rules() {
    let (api, alice, bob) = estate().await;
    let body = json!({"principal": "carol", "role": "customer-service", "scope": "north"});
    let by_bob = api
        .post(
            "/api/v1/assignments",
            &bob,
            json!({"principal": "alice", "role": "customer-service", "scope": "north"}),
        )
        .await;
    assert_eq!(by_bob.status, StatusCode::FORBIDDEN, "{}", by_bob.body);
    let refusal = api
        .audit()
        .await
        .into_iter()
        .find(|r| r.record.principal == "bob" && r.record.action == "role.assign")
        .expect("the refused grant is audited");
    assert!(!refusal.record.allowed);

    let by_alice = api.post("/api/v1/assignments", &alice, body.clone()).await;
    assert_eq!(by_alice.status, StatusCode::CREATED, "{}", by_alice.body);
    let twice = api.post("/api/v1/assignments", &alice, body.clone()).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    let global = api
        .post(
            "/api/v1/assignments",
            &alice,
            json!({"principal": "bob", "role": "global-admin", "scope": "root"}),
        )
        .await;
    assert_eq!(
        global.status,
        StatusCode::NOT_FOUND,
        "alice cannot see root: {}",
        global.body
    );
    let unknown_role = api
        .post(
            "/api/v1/assignments",
            &alice,
            json!({"principal": "bob", "role": "wizard", "scope": "north"}),
        )
        .await;
    assert_eq!(unknown_role.status, StatusCode::UNPROCESSABLE_ENTITY);

    let listed = api.get("/api/v1/assignments?principal=carol", &alice).await;
    assert_eq!(listed.body["assignments"].as_array().unwrap().len(), 1);

    let delete = |token: String, body: Value| {
        let api = &api;
        async move {
            api.call(
                Method::DELETE,
                "/api/v1/assignments",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    assert_eq!(
        delete(bob.clone(), body.clone()).await.status,
        StatusCode::NOT_FOUND,
        "carol is invisible to bob"
    );
    let alices_role = json!({"principal": "alice", "role": "site-admin", "scope": "north"});
    assert_eq!(
        delete(bob.clone(), alices_role).await.status,
        StatusCode::FORBIDDEN
    );
    let removed = delete(alice.clone(), body.clone()).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body, json!({"removed": true}));
    assert_eq!(
        delete(alice.clone(), body.clone()).await.body,
        json!({"removed": false})
    );
    assert!(api
        .state
        .store
        .assignments()
        .await
        .unwrap()
        .iter()
        .all(|a| a.principal != "carol"));
}

#[tokio::test]
async fn custom_roles_are_checked_and_disabled_where_the_preset_says() {
    let (api, alice, _bob) = estate().await;
    let admin_permission = api
        .post(
            "/api/v1/roles",
            ADMIN,
            json!({"id": "sneaky", "permissions": ["manage-operators"]}),
        )
        .await;
    assert_eq!(admin_permission.status, StatusCode::UNPROCESSABLE_ENTITY);
    let admin_role = api
        .post(
            "/api/v1/roles",
            ADMIN,
            json!({"id": "sneaky", "permissions": ["global-admin"]}),
        )
        .await;
    assert_eq!(admin_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(admin_role.body["message"]
        .as_str()
        .unwrap()
        .contains("admin role"));
    let duplicate = api
        .post(
            "/api/v1/roles",
            ADMIN,
            json!({"id": "viewer", "permissions": ["view-sites"]}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let by_site_admin = api
        .post(
            "/api/v1/roles",
            &alice,
            json!({"id": "ops", "permissions": ["view-sites"]}),
        )
        .await;
    assert_eq!(
        by_site_admin.status,
        StatusCode::FORBIDDEN,
        "roles are estate-wide: {}",
        by_site_admin.body
    );
    assert!(api
        .state
        .store
        .roles()
        .await
        .unwrap()
        .iter()
        .all(|r| r.id != "sneaky" && r.id != "ops"));

    let roles = api.get("/api/v1/roles", &alice).await;
    let viewer = roles.body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "viewer")
        .unwrap()
        .clone();
    assert_eq!(viewer["custom"], true);
    assert_eq!(viewer["permissions"], json!(["view-chargers"]));

    let zaptec = Api::new("zaptec").await;
    let disabled = zaptec
        .post(
            "/api/v1/roles",
            ADMIN,
            json!({"id": "x", "permissions": []}),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&disabled), "custom_roles_disabled");
}

#[tokio::test]
async fn explain_answers_for_visible_principals_and_resources_only() {
    let (api, alice, bob) = estate().await;
    let about_bob = api
        .post(
            "/api/v1/authz/explain",
            &alice,
            json!({"principal": "bob", "action": "command.reset", "resource": "CP-N"}),
        )
        .await;
    assert_eq!(about_bob.status, StatusCode::OK, "{}", about_bob.body);
    assert_eq!(about_bob.body["allowed"], false);
    assert!(!about_bob.body["reason"].as_str().unwrap().is_empty());
    assert!(about_bob.body["evidence"].is_object());

    let own = api
        .post(
            "/api/v1/authz/explain",
            &bob,
            json!({"principal": "bob", "action": "charger.view", "resource": "CP-N"}),
        )
        .await;
    assert_eq!(own.body["allowed"], true, "{}", own.body);

    let invisible_resource = api
        .post(
            "/api/v1/authz/explain",
            &bob,
            json!({"principal": "bob", "action": "charger.view", "resource": "CP-S"}),
        )
        .await;
    assert_eq!(invisible_resource.status, StatusCode::NOT_FOUND);
    let bad_action = api
        .post(
            "/api/v1/authz/explain",
            ADMIN,
            json!({"principal": "bob", "action": "fly", "resource": "CP-N"}),
        )
        .await;
    assert_eq!(bad_action.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn transactions_and_audit_are_filtered_by_permission() {
    let (api, alice, bob) = estate().await;
    for (charger, key) in [("CP-N", "k1"), ("CP-S", "k2")] {
        api.state
            .store
            .start_transaction(&NewTransaction {
                charger: charger.into(),
                key: key.into(),
                connector: 1,
                id_token: None,
                principal: Some("carol".into()),
                meter_start: Some(0.0),
                started_at: "2025-01-01T00:00:00Z".into(),
            })
            .await
            .unwrap();
    }
    let for_alice = api.get("/api/v1/transactions", &alice).await;
    let chargers: Vec<&str> = for_alice.body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["charger"].as_str().unwrap())
        .collect();
    assert_eq!(chargers, ["CP-N"]);
    let for_bob = api.get("/api/v1/transactions", &bob).await;
    assert_eq!(for_bob.body["transactions"], json!([]));
    let for_admin = api.get("/api/v1/transactions?limit=1", ADMIN).await;
    assert_eq!(for_admin.body["transactions"].as_array().unwrap().len(), 1);
    let bad_limit = api.get("/api/v1/transactions?limit=0", ADMIN).await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
    let invisible = api.get("/api/v1/transactions?charger=CP-S", &alice).await;
    assert_eq!(invisible.status, StatusCode::NOT_FOUND);

    let denied = api.get("/api/v1/audit", &bob).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let everything = api.get("/api/v1/audit?limit=1000", ADMIN).await;
    let entries = everything.body["entries"].as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["principal"] == "bob" && e["action"] == "audit.view" && e["allowed"] == false));
    let first = &entries[0];
    for field in [
        "id",
        "at",
        "principal",
        "action",
        "resource",
        "allowed",
        "reason",
        "outcome",
        "request_id",
    ] {
        assert!(first.get(field).is_some(), "{field} missing from {first}");
    }
    let by_alice = api.get("/api/v1/audit?limit=1000", &alice).await;
    assert_eq!(by_alice.status, StatusCode::OK, "{}", by_alice.body);
    let resources: Vec<&str> = by_alice.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].as_str().unwrap())
        .collect();
    assert!(resources.contains(&"north"), "{resources:?}");
    assert!(
        !resources.contains(&"CP-S") && !resources.contains(&"south"),
        "{resources:?}"
    );
}

#[tokio::test]
async fn modules_switch_where_module_edit_allows() {
    let api = Api::new("virta").await;
    let preset = api.state.estate.engine().preset().clone();
    let module = preset
        .modules()
        .next()
        .expect("virta declares modules")
        .id
        .clone();
    api.created(
        "/api/v1/scopes",
        json!({"id": "org", "kind": "organisation", "parent": "root"}),
    )
    .await;
    let reply = api
        .call(
            Method::PUT,
            &format!("/api/v1/scopes/org/modules/{module}"),
            Some(ADMIN),
            Some(json!({"on": true})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        api.state.estate.engine().module_on("org", &module),
        Ok(true)
    );
    assert!(api.state.store.modules().await.unwrap().contains(&(
        "org".to_owned(),
        module.clone(),
        true
    )));
    let unknown = api
        .call(
            Method::PUT,
            "/api/v1/scopes/org/modules/teleport",
            Some(ADMIN),
            Some(json!({"on": true})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_store_failure_changes_nothing_in_the_engine() {
    let store = Arc::new(crate::charger::test_support::RefusingStore::default());
    let engine = voltgate_policy::Engine::new(Preset::builtin("connect").unwrap());
    let state = state_from_parts(store.clone(), engine);
    state
        .estate
        .engine_mut()
        .add_scope("north", "site", "root")
        .unwrap();
    let result =
        crate::state::register_charger_with_profile(&state, "CP-1", "north", None, 0).await;
    assert!(result.is_err());
    assert!(store.calls() > 0, "the store was asked");
    assert_eq!(state.estate.engine().scope_kind("CP-1"), None);
}

#[tokio::test]
async fn system_endpoints_need_no_token() {
    let api = Api::new("connect").await;
    let health = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    let metrics = api.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.body.as_str().unwrap();
    assert!(text.contains("voltgate_api_requests_total"), "{text}");
    let doc = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let nowhere = api.call(Method::GET, "/api/v2/nothing", None, None).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&nowhere), "not_found");
    let wrong_method = api
        .call(Method::PATCH, "/api/v1/scopes", Some(ADMIN), None)
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn openapi_document_describes_exactly_the_served_routes() {
    let doc: Value = serde_json::from_str(super::OPENAPI_JSON).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let mut served: Vec<(String, String)> = routes()
        .iter()
        .map(|route| (route.method.to_string(), route.path.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);

    let mut unresolved = Vec::new();
    collect_refs(&doc, &mut unresolved);
    unresolved.retain(|reference| pointer_target(&doc, reference).is_none());
    assert!(unresolved.is_empty(), "dangling $ref: {unresolved:?}");
}

#[tokio::test]
async fn every_documented_route_is_routed() {
    let api = Api::new("connect").await;
    for route in routes() {
        let (method, path) = (route.method, route.path);
        let uri = path
            .replace("{id}", "x")
            .replace("{module}", "m")
            .replace("{command}", "reset");
        let reply = api.call(method.clone(), &uri, None, None).await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        if reply.status == StatusCode::NOT_FOUND {
            assert_ne!(
                reply.body["message"]
                    .as_str()
                    .unwrap_or("")
                    .split(' ')
                    .take(3)
                    .collect::<Vec<_>>(),
                ["no", "route", "for"],
                "{method} {uri}"
            );
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "$ref" {
                    if let Some(text) = inner.as_str() {
                        out.push(text.to_owned());
                    }
                } else {
                    collect_refs(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

fn pointer_target<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

#[tokio::test]
async fn id_token_types_are_set_changed_cleared_and_checked() {
    let (api, alice, _bob) = estate().await;
    let untyped = api
        .post(
            "/api/v1/principals/carol/id-tokens",
            &alice,
            json!({"id_token": "CARD-PLAIN"}),
        )
        .await;
    assert_eq!(untyped.status, StatusCode::CREATED, "{}", untyped.body);
    assert_eq!(untyped.body["type"], Value::Null);
    assert!(untyped.body.as_object().unwrap().contains_key("type"));

    let typed = api
        .post(
            "/api/v1/principals/carol/id-tokens",
            &alice,
            json!({"id_token": "CARD-EMAID", "type": "eMAID"}),
        )
        .await;
    assert_eq!(typed.status, StatusCode::CREATED, "{}", typed.body);
    assert_eq!(typed.body["type"], "eMAID");
    let stored = api
        .state
        .store
        .id_tokens_named("CARD-EMAID", "CARD-EMAID")
        .await
        .unwrap()
        .pop();
    assert_eq!(stored.unwrap().token_type.as_deref(), Some("eMAID"));

    for bad in [json!("emaid"), json!("RFID"), json!(""), json!(7)] {
        let refused = api
            .post(
                "/api/v1/principals/carol/id-tokens",
                &alice,
                json!({"id_token": "CARD-BAD", "type": bad}),
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(error_code(&refused), "invalid_body", "{}", refused.body);
    }
    let wrong_spelling = api
        .post(
            "/api/v1/principals/carol/id-tokens",
            &alice,
            json!({"id_token": "CARD-BAD", "type": "iso14443"}),
        )
        .await;
    let message = wrong_spelling.body["message"].as_str().unwrap();
    for allowed in voltgate_ocpp::ID_TOKEN_TYPES {
        assert!(message.contains(allowed), "{message}");
    }
    assert_eq!(
        api.state
            .store
            .id_tokens_named("CARD-BAD", "CARD-BAD")
            .await
            .unwrap()
            .pop(),
        None
    );

    let patch = |token: &'static str, body: Value| {
        let api = &api;
        let alice = alice.clone();
        async move {
            api.call(
                Method::PATCH,
                &format!("/api/v1/id-tokens/{token}"),
                Some(&alice),
                Some(body),
            )
            .await
        }
    };
    let set = patch("CARD-PLAIN", json!({"type": "KeyCode"})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["type"], "KeyCode");
    let kept = patch("CARD-PLAIN", json!({"blocked": false})).await;
    assert_eq!(kept.body["type"], "KeyCode", "an absent type is kept");
    let refused = patch("CARD-PLAIN", json!({"type": "Keycode"})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&refused), "invalid_body");
    let cleared = patch("CARD-PLAIN", json!({"type": null})).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(cleared.body["type"], Value::Null);
    let stored = api
        .state
        .store
        .id_tokens_named("CARD-PLAIN", "CARD-PLAIN")
        .await
        .unwrap()
        .pop();
    assert_eq!(stored.unwrap().token_type, None);

    let listed = api.get("/api/v1/principals/carol/id-tokens", &alice).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let types: Vec<(String, Value)> = listed.body["id_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id_token"].as_str().unwrap().to_owned(),
                t["type"].clone(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("CARD-EMAID".to_owned(), json!("eMAID")),
            ("CARD-PLAIN".to_owned(), Value::Null),
        ]
    );
}
