//! Interoperability with an independent OCPP implementation: the Python `ocpp` package plays the
//! charger in each version. It validates everything the gateway sends it against the official
//! schemas, so this also checks our outgoing payloads with someone else's validator.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::Estate;

fn python() -> String {
    std::env::var("VOLTGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

async fn next_event(events: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .ok()
        .flatten()
        .expect("the python charger reports progress")
}

async fn interoperates(version: &str) {
    let estate = Estate::new(&[]).await;
    estate.site_a_card("py-driver", "PY-TAG").await;
    let id = format!("PY-{}", version.replace('.', "-"));
    estate
        .admin
        .charger(&id, "site-a")
        .await
        .unwrap()
        .expect(201);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/third_party_charger.py");
    let mut child = Command::new(python())
        .args([script, &estate.gateway.ocpp_url, &id, version])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs (the suite needs the `ocpp` and `websockets` packages; see .ci/run)");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(event);
            }
        }
    });
    let connected = next_event(&mut rx).await;
    assert_eq!(connected["event"], "connected", "{connected}");
    let boot = next_event(&mut rx).await;
    assert_eq!(boot["event"], "boot");
    assert_eq!(boot["status"], "Accepted", "{boot}");
    assert!(boot["interval"].as_u64().is_some_and(|i| i > 0));
    assert_eq!(next_event(&mut rx).await["event"], "heartbeat");
    assert_eq!(next_event(&mut rx).await["event"], "status_sent");

    let live = estate
        .ops
        .get(&format!("/api/v1/chargers/{id}"))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(live.body["connected"], true, "{}", live.text);
    assert_eq!(live.body["vendor"], "PyVendor", "{}", live.text);

    let reply = estate
        .ops
        .command(
            &id,
            "remote-start",
            json!({"connector": 1, "id_token": "PY-TAG"}),
        )
        .await
        .unwrap()
        .expect(200);
    assert_eq!(reply.body["status"], "Accepted", "{}", reply.text);
    let started = next_event(&mut rx).await;
    assert_eq!(started["event"], "remote_start", "{started}");
    assert_eq!(started["id_token"], "PY-TAG");
    assert_eq!(next_event(&mut rx).await["event"], "finished");
    let status = child.wait().expect("python exits");
    assert!(status.success(), "the python charger failed: {status}");
}

#[tokio::test]
async fn python_ocpp_charger_v16() {
    interoperates("1.6").await;
}

#[tokio::test]
async fn python_ocpp_charger_v201() {
    interoperates("2.0.1").await;
}
