//! 10,000 chargers (the simulator) connect and boot; the simulator is killed so every connection
//! drops at once; all 10,000 reconnect immediately and boot, none refused.

use std::time::{Duration, Instant};

use serde_json::Value;
use voltgate_tests::{binary_path, Gateway, GatewayOptions};

use crate::{family_total, metrics, sample};

#[tokio::test]
async fn ten_thousand_chargers_drop_at_once_and_all_reconnect() {
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .db("sqlite::memory:")
            .arg("--auto-register")
            .arg("storm")
            // A closed bench: every simulated charger registers and is trusted at once.
            .arg("--auto-register-trusted")
            .arg("--auto-register-address-burst")
            .arg("1000000")
            .arg("--auto-register-total-burst")
            .arg("1000000"),
    )
    .unwrap();
    gateway
        .api()
        .scope("storm", "site", "root")
        .await
        .unwrap()
        .expect(201);
    let chargers = 10_000;
    let simulator = binary_path("voltgate-sim").unwrap();
    let args = |duration: &str| -> Vec<String> {
        [
            "--url",
            &gateway.ocpp_url,
            "--chargers",
            &chargers.to_string(),
            "--ramp",
            "0",
            "--duration",
            duration,
            "--heartbeat",
            "3600",
            "--meter-interval",
            "0",
            "--source-addrs",
            "127.0.0.1-127.0.0.16",
            "--report",
            "json",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let connected = |text: &str| family_total(text, "voltgate_chargers_connected");

    // First wave: everyone connects, then the process dies without closing anything.
    let started = Instant::now();
    let mut first = std::process::Command::new(&simulator)
        .args(args("120"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics(&gateway.api_url).await;
        if connected(&text) as usize == chargers {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "first wave: only {} connected",
            connected(&text)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first_wave = started.elapsed();
    first.kill().unwrap();
    first.wait().unwrap();

    // Second wave at once: all reconnect, boot and stay; nothing refused.
    let storm = Instant::now();
    let api_url = gateway.api_url.clone();
    let second = tokio::task::spawn_blocking({
        let args = args("12");
        move || {
            std::process::Command::new(simulator)
                .args(args)
                .output()
                .expect("the simulator runs")
        }
    });
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut all_back = None;
    while all_back.is_none() && Instant::now() < deadline {
        let text = metrics(&api_url).await;
        // The first wave's boots were answered, so the series exists.
        let booted = sample(
            &text,
            r#"voltgate_ocpp_messages_total{action="BootNotification",direction="out",kind="result"}"#,
        )
        .expect("booted chargers counted");
        if connected(&text) as usize == chargers && booted as usize >= 2 * chargers {
            all_back = Some(storm.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let output = second.await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    eprintln!(
        "storm: first wave connected in {first_wave:?}, all {chargers} back and booted after {all_back:?}"
    );
    assert!(all_back.is_some(), "not all chargers came back: {report}");
    assert_eq!(report["summary"]["connections_made"], chargers, "{report}");
    assert_eq!(report["summary"]["booted"], chargers, "{report}");
    assert!(
        output.status.success(),
        "the simulator saw losses: {report}"
    );
    let text = metrics(&gateway.api_url).await;
    assert_eq!(
        family_total(&text, "voltgate_ocpp_handshakes_refused_total"),
        0.0,
        "handshakes were refused"
    );
    let health = reqwest::get(format!("{}/healthz", gateway.api_url))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
