//! Keep-alive as a charger sees it: a charger that goes silent and stops reading (a dead link)
//! is pinged, dropped within the ping interval plus the pong timeout and shown offline, and a
//! command to it then fails at once as offline; a charger that keeps reading but sends nothing
//! answers the pings (its WebSocket layer does) and stays; `--ws-ping-interval 0` pings nobody;
//! the simulator keeps answering pings even when it ignores every OCPP CALL.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use voltgate_tests::{binary_path, Gateway, GatewayOptions};

use crate::{metrics, Estate};

/// Ping after 1 s of silence, give up 1 s later.
const FAST_KEEP_ALIVE: [&str; 4] = ["--ws-ping-interval", "1", "--ws-pong-timeout", "1"];

type RawCharger = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Registers `id` on site-a, connects it as a bare OCPP 1.6 WebSocket client and boots it.
async fn booted_raw_charger(estate: &Estate, id: &str) -> RawCharger {
    estate
        .admin
        .charger(id, "site-a")
        .await
        .unwrap()
        .expect(201);
    let mut request = estate
        .gateway
        .charger_url(id)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("ocpp1.6"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the charger connects");
    let boot = json!([2, "boot", "BootNotification",
        {"chargePointVendor": "TestVendor", "chargePointModel": "TestModel"}]);
    ws.send(Message::text(boot.to_string())).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let answer: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(answer[2]["status"], "Accepted", "{answer}");
                return ws;
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no boot answer: {other:?}"),
        }
    }
}

/// Reads everything the gateway sends for `span` (which lets the WebSocket layer answer
/// pings) and returns how many pings arrived and whether the connection is still open.
async fn read_for(ws: &mut RawCharger, span: Duration) -> (u32, bool) {
    let until = tokio::time::Instant::now() + span;
    let mut pings = 0;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return (pings, true),
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => return (pings, false),
            Ok(Some(Ok(_))) => {}
        }
    }
}

const PING_TIMEOUTS: &str = r#"voltgate_ocpp_frames_rejected_total{reason="ping_timeout"}"#;

/// Connections dropped for an unanswered ping; the counter is absent until the first one.
fn ping_timeouts(metrics: &str) -> f64 {
    crate::metric_if_present(metrics, PING_TIMEOUTS).unwrap_or(0.0)
}

#[tokio::test]
async fn a_charger_that_stops_reading_is_dropped_and_commands_to_it_fail_as_offline() {
    let mut args = FAST_KEEP_ALIVE.to_vec();
    args.extend(["--command-timeout", "20s"]);
    let estate = Estate::new(&args).await;
    // Boots, then never touches its socket again: no pong can go out.
    let dead = booted_raw_charger(&estate, "CP-DEAD").await;
    let last_sent = Instant::now();
    estate
        .ops
        .wait_disconnected("CP-DEAD", Duration::from_secs(15))
        .await
        .expect("the dead charger is dropped");
    let dropped_after = last_sent.elapsed();
    eprintln!("dead charger dropped {dropped_after:?} after its last frame");
    // The drop deadline is the behaviour under test: never before the ping interval plus the
    // pong timeout (2 s, less the gateway's head start on reading the boot). The upper bound
    // only tells "dropped by keep-alive" from "kept": on a loaded 2-core machine timers and
    // this test's polling run late, so it allows generous slack (the command timeout is 20 s).
    assert!(
        dropped_after >= Duration::from_millis(1500) && dropped_after <= Duration::from_secs(12),
        "dropped after {dropped_after:?}"
    );

    let asked = Instant::now();
    let reply = estate
        .ops
        .command("CP-DEAD", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect(409);
    assert_eq!(reply.body["error"], "not_connected", "{}", reply.text);
    // "At once" against a 20 s command timeout: the refusal must not wait for the charger.
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );

    assert_eq!(
        crate::metric(&metrics(&estate.gateway.api_url).await, PING_TIMEOUTS),
        1.0,
        "exactly the one dead charger timed out"
    );
    assert!(
        estate
            .gateway
            .output()
            .contains("charger answered no ping in time; connection closed"),
        "the drop is not logged"
    );
    drop(dead);
}

#[tokio::test]
async fn a_charger_that_reads_but_sends_nothing_stays_connected_and_takes_commands() {
    let estate = Estate::new(&FAST_KEEP_ALIVE).await;
    // The test harness's charger reads all the time, as a real charger's WebSocket stack does.
    let mut quiet = estate.charger("CP-QUIET", "ocpp1.6").await;
    // A bare client beside it counts the pings it answers.
    let mut counted = booted_raw_charger(&estate, "CP-COUNTED").await;
    let (pings, open) = read_for(&mut counted, Duration::from_secs(5)).await;
    assert!(open, "the reading charger was dropped");
    assert!(pings >= 2, "{pings} pings in 5 s at a 1 s interval");

    for id in ["CP-QUIET", "CP-COUNTED"] {
        let live = estate
            .ops
            .get(&format!("/api/v1/chargers/{id}"))
            .await
            .unwrap()
            .expect(200);
        assert_eq!(live.body["connected"], true, "{id}: {}", live.text);
    }
    let api = estate.ops.clone();
    let command =
        tokio::spawn(async move { api.command("CP-QUIET", "clear-cache", json!({})).await });
    let (id, action, _) = quiet
        .next_call(Duration::from_secs(5))
        .await
        .expect("the command reaches the quiet charger");
    assert_eq!(action, "ClearCache");
    quiet.reply(&id, json!({"status": "Accepted"})).unwrap();
    command.await.unwrap().unwrap().expect(200);
    assert_eq!(ping_timeouts(&metrics(&estate.gateway.api_url).await), 0.0);
}

#[tokio::test]
async fn with_a_ping_interval_of_zero_nobody_is_pinged_or_dropped() {
    let estate = Estate::new(&["--ws-ping-interval", "0", "--ws-pong-timeout", "1"]).await;
    let deaf = booted_raw_charger(&estate, "CP-DEAF-OK").await;
    let mut listening = booted_raw_charger(&estate, "CP-LISTENING").await;
    let (pings, open) = read_for(&mut listening, Duration::from_millis(2500)).await;
    assert_eq!((pings, open), (0, true));
    let live = estate
        .ops
        .get("/api/v1/chargers/CP-DEAF-OK")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(live.body["connected"], true, "{}", live.text);
    drop(deaf);
}

#[tokio::test]
async fn the_simulator_answers_pings_while_it_ignores_every_call() {
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .db("sqlite::memory:")
            .arg("--auto-register")
            .arg("sim")
            .arg("--ws-ping-interval")
            .arg("1")
            .arg("--ws-pong-timeout")
            .arg("1")
            .arg("--log")
            .arg("voltgate=debug,info"),
    )
    .unwrap();
    gateway
        .api()
        .scope("sim", "site", "root")
        .await
        .unwrap()
        .expect(201);
    let simulator = binary_path("voltgate-sim").unwrap();
    let output = tokio::process::Command::new(simulator)
        .args(["--url", &gateway.ocpp_url, "--chargers", "4", "--ramp", "0"])
        .args([
            "--duration",
            "4",
            "--heartbeat",
            "3600",
            "--meter-interval",
            "0",
        ])
        .args(["--fault-no-answer", "1", "--report", "json", "--quiet"])
        .output()
        .await
        .expect("the simulator runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(report["summary"]["booted"], 4, "{report}");
    assert!(
        report["summary"]["errors"]
            .get("closed_by_gateway")
            .is_none(),
        "{report}"
    );
    let pinged = gateway
        .stderr_lines()
        .iter()
        .filter(|line| line.contains("ping sent"))
        .count();
    assert!(pinged >= 4, "only {pinged} pings sent to idle chargers");
    assert_eq!(ping_timeouts(&metrics(&gateway.api_url).await), 0.0);
}
