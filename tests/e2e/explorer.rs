//! The API explorer at `/api/v1/docs`: served from the binary with a strict content security
//! policy, and, opened in a real headless browser, it renders every operation of the OpenAPI
//! document from this origin alone.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use voltgate_tests::{Gateway, GatewayOptions};

const OPENAPI: &str = include_str!("../../gateway/openapi.json");

/// Whether the tests run under CI, where a missing browser is a failure, not a skip.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false")
}

fn operation_ids() -> BTreeSet<String> {
    let doc: Value = serde_json::from_str(OPENAPI).unwrap();
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|operation| operation["operationId"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_explorer_is_served_from_the_binary_with_a_strict_policy() {
    let gateway = Gateway::start(GatewayOptions::preset("connect")).expect("gateway starts");
    let anonymous = gateway.api().with_token("");
    let page = anonymous.get("/api/v1/docs").await.unwrap().expect(200);
    assert!(
        page.text.contains("/api/v1/docs/explorer.js"),
        "{}",
        page.text
    );
    anonymous
        .get("/api/v1/docs/explorer.js")
        .await
        .unwrap()
        .expect(200);
    anonymous
        .get("/api/v1/docs/explorer.css")
        .await
        .unwrap()
        .expect(200);
    let response = reqwest::get(format!("{}/api/v1/docs", gateway.api_url))
        .await
        .unwrap();
    let policy = response
        .headers()
        .get("content-security-policy")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
}

#[tokio::test]
async fn the_explorer_renders_every_operation_in_a_browser() {
    let Some(browser) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok())
    else {
        assert!(
            !under_ci(),
            "chromium is missing under CI=true (tests/run.sh installs it)"
        );
        eprintln!("skipped: no chromium on this machine (tests/run.sh installs it)");
        return;
    };
    let gateway = Gateway::start(GatewayOptions::preset("connect")).expect("gateway starts");
    let url = format!("{}/api/v1/docs", gateway.api_url);
    let profile = tempfile::tempdir().unwrap();
    let run = {
        let browser = browser.to_string();
        let profile = profile.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            Command::new(browser)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-dev-shm-usage",
                    "--virtual-time-budget=20000",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("--dump-dom")
                .arg(url)
                .output()
        })
    };
    let output = run.await.unwrap().expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = operation_ids();
    assert!(expected.len() > 30, "{expected:?}");
    assert!(
        dom.contains(&format!(r#"data-operations="{}""#, expected.len())),
        "the page did not render {} operations:\n{dom}",
        expected.len()
    );
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !dom.contains(&format!(r#"id="{id}""#)))
        .collect();
    assert!(missing.is_empty(), "operations not rendered: {missing:?}");
    assert!(
        !dom.contains("could not be loaded"),
        "the page reports an error:\n{dom}"
    );
}
