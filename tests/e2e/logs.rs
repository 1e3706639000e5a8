//! The gateway's log as a log collector sees it: with `--log-format json` every stderr line is a
//! JSON object, charger lines name the charger and API lines the request id (the same one the
//! response carried) and the principal, all at the top level of the object; at start
//! it logs the open-file limit it raised.

use std::time::{Duration, Instant};

use serde_json::Value;
use voltgate_tests::{Charger, Gateway, GatewayOptions};

#[tokio::test]
async fn json_log_lines_parse_and_carry_charger_id_request_id_and_principal() {
    let mut gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .arg("--log-format")
            .arg("json")
            .arg("--shutdown-timeout")
            .arg("5s"),
    )
    .unwrap();
    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    admin.charger("CP-LOG", "site-a").await.unwrap().expect(201);
    let mut charger = Charger::connect(&gateway.ocpp_url, "CP-LOG", &["ocpp1.6"])
        .await
        .unwrap();
    charger.boot().await.unwrap();

    let response = reqwest::Client::new()
        .get(admin.url("/api/v1/chargers/CP-LOG"))
        .bearer_auth(&gateway.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .expect("x-request-id header")
        .to_owned();

    gateway.signal("TERM").unwrap();
    assert!(gateway
        .wait_exit(Duration::from_secs(10))
        .unwrap()
        .success());
    // The reader threads may still be draining the pipe after the exit.
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let lines = gateway.stderr_lines();
        if lines.iter().any(|line| line.contains("gateway stopped")) {
            break lines;
        }
        assert!(Instant::now() < deadline, "no final line: {lines:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"))
        })
        .collect();
    for line in &parsed {
        assert!(line.is_object() && line.get("level").is_some(), "{line}");
    }
    assert!(
        parsed.iter().any(|line| {
            line.get("message").and_then(Value::as_str) == Some("charger booted")
                && line.get("charger_id").and_then(Value::as_str) == Some("CP-LOG")
        }),
        "no charger line with its charger_id: {lines:#?}"
    );
    let request_line = parsed
        .iter()
        .find(|line| {
            line.get("message").and_then(Value::as_str) == Some("request")
                && line.get("request_id").and_then(Value::as_str) == Some(request_id.as_str())
        })
        .unwrap_or_else(|| panic!("no request line with request_id {request_id}: {lines:#?}"));
    assert_eq!(
        request_line.get("path").and_then(Value::as_str),
        Some("/api/v1/chargers/CP-LOG")
    );
    assert_eq!(
        request_line.get("status").and_then(Value::as_u64),
        Some(200)
    );
    assert_eq!(
        request_line.get("method").and_then(Value::as_str),
        Some("GET")
    );
    assert!(request_line
        .get("duration_ms")
        .is_some_and(Value::is_number));
    assert_eq!(
        request_line.get("principal").and_then(Value::as_str),
        Some("admin"),
        "{request_line}"
    );
    let limit_line = parsed
        .iter()
        .find(|line| line.get("message").and_then(Value::as_str) == Some("open-file limit"))
        .unwrap_or_else(|| panic!("the open-file limit is not logged at start: {lines:#?}"));
    let field = |name: &str| limit_line.get(name).and_then(Value::as_u64);
    let (soft, hard) = (field("soft"), field("hard"));
    assert!(
        soft.is_some() && soft == hard && field("soft_before") <= soft,
        "the soft limit is raised to the hard one: {limit_line}"
    );
}
