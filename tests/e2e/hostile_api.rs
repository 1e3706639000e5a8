//! Hostile operator requests: bad and huge bodies, unknown fields, wrong types, path tricks in
//! ids and missing, forged or malformed credentials. Each case names the exact status and the
//! exact `error` code of the JSON body (`{"error": CODE, "message": TEXT}`, nothing else); no
//! case may change anything or reach a charger, and the gateway serves normally afterwards.
//!
//! Unknown fields are refused with 422 everywhere, command bodies included: a misspelt
//! optional field silently ignored would run a command the operator did not ask for.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use voltgate_tests::api::Reply;

use crate::{Estate, QUIET};

/// One request as bytes on the wire (so paths reach the server exactly as written).
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    /// `None`: no Authorization header at all.
    authorization: Option<String>,
    body: Option<Vec<u8>>,
    status: u16,
    error: &'static str,
}

/// Sends a raw HTTP/1.1 request and reads the whole answer (the connection is closed after it).
async fn raw_request(
    api_url: &str,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&[u8]>,
) -> Reply {
    let addr = api_url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(value) = authorization {
        head.push_str(&format!("Authorization: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    if let Some(body) = body {
        request.extend_from_slice(body);
    }
    // The server may answer (413) and close before reading a huge body: a failed write is fine.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body_text = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked answers: take the JSON object between the first `{` and the last `}`.
    let json_text = match (body_text.find('{'), body_text.rfind('}')) {
        (Some(start), Some(end)) if start < end => body_text[start..=end].to_string(),
        _ => body_text.clone(),
    };
    Reply {
        status,
        body: serde_json::from_str(&json_text).unwrap_or(Value::Null),
        text: body_text,
    }
}

fn assert_error_body(case: &str, reply: &Reply, status: u16, error: &str) {
    if let Some(problem) = error_body_problem(reply, status, error) {
        panic!("{case}: {problem}");
    }
}

/// What is wrong with an error answer, if anything.
fn error_body_problem(reply: &Reply, status: u16, error: &str) -> Option<String> {
    let seen = format!("{} {}", reply.status, reply.text);
    if reply.status != status {
        return Some(format!("expected {status}, got {seen}"));
    }
    let Some(object) = reply.body.as_object() else {
        return Some(format!("body is not a JSON object: {seen}"));
    };
    let message_ok = object
        .get("message")
        .and_then(Value::as_str)
        .is_some_and(|m| !m.is_empty());
    if object.len() != 2 || reply.body["error"] != error || !message_ok {
        return Some(format!("expected error `{error}` and a message: {seen}"));
    }
    None
}

fn cases(admin: &str) -> Vec<Case> {
    let bearer = format!("Bearer {admin}");
    let post = |name, path: &str, body: &[u8], status, error| Case {
        name,
        method: "POST",
        path: path.to_string(),
        authorization: Some(bearer.clone()),
        body: Some(body.to_vec()),
        status,
        error,
    };
    let get = |name, path: String, status, error| Case {
        name,
        method: "GET",
        path,
        authorization: Some(bearer.clone()),
        body: None,
        status,
        error,
    };
    let auth = |name, authorization: Option<String>| Case {
        name,
        method: "GET",
        path: "/api/v1/chargers".into(),
        authorization,
        body: None,
        status: 401,
        error: "unauthorized",
    };
    let scope = br#"{"id":"site-x","kind":"site","parent":"root"}"#;
    vec![
        post(
            "not JSON",
            "/api/v1/scopes",
            b"{\"id\": ",
            422,
            "invalid_body",
        ),
        post(
            "JSON array",
            "/api/v1/scopes",
            b"[1,2,3]",
            422,
            "invalid_body",
        ),
        post(
            "invalid UTF-8",
            "/api/v1/scopes",
            b"{\"id\":\"\xff\xfe\"}",
            422,
            "invalid_body",
        ),
        post(
            "deeply nested",
            "/api/v1/scopes",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes(),
            422,
            "invalid_body",
        ),
        post(
            "unknown field",
            "/api/v1/scopes",
            br#"{"id":"site-x","kind":"site","parent":"root","owner":"me"}"#,
            422,
            "invalid_body",
        ),
        post(
            "wrong type",
            "/api/v1/scopes",
            br#"{"id":5,"kind":"site","parent":"root"}"#,
            422,
            "invalid_body",
        ),
        post(
            "null for a required field",
            "/api/v1/chargers",
            br#"{"id":null,"scope":"site-a"}"#,
            422,
            "invalid_body",
        ),
        post(
            "body just over the limit",
            "/api/v1/scopes",
            &vec![b' '; 64 * 1024 + 1],
            413,
            "payload_too_large",
        ),
        post(
            "10 MB body",
            "/api/v1/scopes",
            format!(r#"{{"id":"{}"}}"#, "a".repeat(10 * 1024 * 1024)).as_bytes(),
            413,
            "payload_too_large",
        ),
        post(
            "unknown field in a command body",
            "/api/v1/chargers/CP-API/commands/reset",
            br#"{"type":"soft","force":true}"#,
            422,
            "invalid_body",
        ),
        post(
            "wrong type in a command body",
            "/api/v1/chargers/CP-API/commands/unlock",
            br#"{"connector":[1]}"#,
            422,
            "invalid_body",
        ),
        post(
            "unknown command",
            "/api/v1/chargers/CP-API/commands/self-destruct",
            b"{}",
            404,
            "unknown_command",
        ),
        post(
            "id with a slash in a new charger",
            "/api/v1/chargers",
            br#"{"id":"a/b","scope":"site-a"}"#,
            422,
            "invalid_body",
        ),
        post(
            "id with NUL in a new scope",
            "/api/v1/scopes",
            br#"{"id":"a\u0000b","kind":"site","parent":"root"}"#,
            422,
            "invalid_body",
        ),
        post(
            "65-character id",
            "/api/v1/scopes",
            format!(
                r#"{{"id":"{}","kind":"site","parent":"root"}}"#,
                "s".repeat(65)
            )
            .as_bytes(),
            422,
            "invalid_body",
        ),
        post("a scope that is fine", "/api/v1/scopes", scope, 201, ""),
        get(
            "encoded slash in an id",
            "/api/v1/chargers/..%2F..%2Fsite-a".into(),
            404,
            "not_found",
        ),
        get(
            "encoded NUL in an id",
            "/api/v1/chargers/CP%00API".into(),
            404,
            "not_found",
        ),
        get(
            "invalid percent-encoded UTF-8 in an id",
            "/api/v1/chargers/CP%FF".into(),
            400,
            "invalid_path",
        ),
        post(
            "invalid percent-encoded UTF-8 in a command's charger id",
            "/api/v1/chargers/CP%FF/commands/reset",
            br#"{"type":"soft"}"#,
            400,
            "invalid_path",
        ),
        post(
            "invalid percent-encoded UTF-8 in a principal id",
            "/api/v1/principals/op%C3%28/block",
            b"{}",
            400,
            "invalid_path",
        ),
        post(
            "a scope called `..`",
            "/api/v1/scopes",
            br#"{"id":"..","kind":"site","parent":"root"}"#,
            422,
            "invalid_body",
        ),
        get(
            "8,000-character id",
            format!("/api/v1/chargers/{}", "C".repeat(8000)),
            404,
            "not_found",
        ),
        get(
            "a command path used with GET",
            "/api/v1/chargers/CP-API/commands/reset".into(),
            405,
            "method_not_allowed",
        ),
        auth("no Authorization header", None),
        auth("empty bearer", Some("Bearer ".into())),
        auth("bearer without a space", Some(format!("Bearer{admin}"))),
        auth(
            "basic instead of bearer",
            Some("Basic YWRtaW46YWRtaW4=".into()),
        ),
        auth(
            "forged token",
            Some("Bearer vg_0000000000000000000000000000000000000000".into()),
        ),
        auth(
            "the admin token with one character changed",
            Some(format!("Bearer {}X", &admin[..admin.len() - 1])),
        ),
        auth(
            "an 8 KB token",
            Some(format!("Bearer vg_{}", "a".repeat(8192))),
        ),
        // Control characters in a header never get past the HTTP layer: a bare 400.
        Case {
            status: 400,
            error: "",
            ..auth(
                "token with control characters",
                Some("Bearer vg_\u{1}\u{2}".into()),
            )
        },
    ]
}

#[tokio::test]
async fn hostile_requests_get_exact_errors_and_change_nothing() {
    let estate = Estate::new(&[]).await;
    let mut charger = estate.charger("CP-API", "ocpp1.6").await;
    let before_chargers = estate
        .admin
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(200);
    let admin = estate.gateway.admin_token.clone();
    let mut problems = Vec::new();
    for case in cases(&admin) {
        let reply = raw_request(
            &estate.gateway.api_url,
            case.method,
            &case.path,
            case.authorization.as_deref(),
            case.body.as_deref(),
        )
        .await;
        let problem = if case.error.is_empty() {
            (reply.status != case.status).then(|| {
                format!(
                    "expected {}, got {} {}",
                    case.status, reply.status, reply.text
                )
            })
        } else {
            error_body_problem(&reply, case.status, case.error)
        };
        if let Some(problem) = problem {
            problems.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Nothing reached the charger and no charger was created.
    charger.quiet(QUIET).await.unwrap();
    crate::backstop(&estate.admin, &mut charger).await;
    let after_chargers = estate
        .admin
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(200);
    let count = |reply: &Reply| {
        reply.body["chargers"]
            .as_array()
            .or_else(|| reply.body.as_array())
            .map(Vec::len)
            .unwrap_or(0)
    };
    assert_eq!(count(&after_chargers), count(&before_chargers));
    crate::faults::assert_healthy(&estate, "CP-API-PROBE").await;
}

#[tokio::test]
async fn a_blocked_principal_token_is_refused_at_once() {
    let estate = Estate::new(&[]).await;
    let reply = estate
        .ops
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(200);
    assert!(reply.body.is_object() || reply.body.is_array());
    estate
        .admin
        .post("/api/v1/principals/ops/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    let refused = estate.ops.get("/api/v1/chargers").await.unwrap();
    assert_error_body("blocked principal", &refused, 401, "unauthorized");
    assert_eq!(
        refused.body["message"], "the token's principal is blocked",
        "{}",
        refused.text
    );
    // A command with that token changes nothing either.
    let command = estate
        .ops
        .command("CP-ANY", "reset", json!({"type": "soft"}))
        .await
        .unwrap();
    assert_error_body("blocked principal command", &command, 401, "unauthorized");
    estate
        .admin
        .post("/api/v1/principals/ops/unblock", json!({}))
        .await
        .unwrap()
        .expect(200);
    estate
        .ops
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(200);
}

#[tokio::test]
async fn failed_logins_are_throttled_by_the_configured_burst_and_refill() {
    // A refill of 3 s: the burst and the two requests after the refill each have seconds of
    // room on a loaded machine before another token would come back and change the count.
    let estate = Estate::new(&["--auth-failure-burst", "3", "--auth-failure-refill", "3s"]).await;
    let forged = estate.gateway.api_as("vg_forged_token_0123456789");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(forged.get("/api/v1/scopes").await.unwrap().status);
    }
    assert_eq!(statuses, [401, 401, 401, 429], "burst of 3");
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    let mut after_refill = Vec::new();
    for _ in 0..2 {
        after_refill.push(forged.get("/api/v1/scopes").await.unwrap().status);
    }
    assert_eq!(
        after_refill,
        [401, 429],
        "one more failure per refill period"
    );
}
