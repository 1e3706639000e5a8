//! A CI-sized load run: 2,000 simulated chargers of both OCPP versions booting, heartbeating,
//! charging and taking operator commands through the API for 20 seconds, the simulator split over
//! two processes whose reports it merges. It fails on anything lost or refused (the simulator's
//! exit code and report say so), never on timing.

use std::process::Command;

use serde_json::Value;
use voltgate_tests::{binary_path, Gateway, GatewayOptions};

#[tokio::test]
async fn two_thousand_chargers_lose_nothing() {
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .db("sqlite::memory:")
            .arg("--auto-register")
            .arg("smoke")
            // A closed bench: every simulated charger registers and is trusted at once.
            .arg("--auto-register-trusted")
            .arg("--auto-register-address-burst")
            .arg("1000000")
            .arg("--auto-register-total-burst")
            .arg("1000000")
            .arg("--local-auth-lists"),
    )
    .unwrap();
    gateway
        .api()
        .scope("smoke", "site", "root")
        .await
        .unwrap()
        .expect(201);
    // The simulator's drivers and remote starts use the card SIM-TAG, held by a driver who
    // may charge in the scope (a remote start must name a card that may charge there).
    let admin = gateway.api();
    admin
        .post(
            "/api/v1/roles",
            serde_json::json!({"id": "sim-driver", "permissions": ["charge-at-sites"]}),
        )
        .await
        .unwrap()
        .expect(201);
    admin
        .principal("sim-driver", "driver", "smoke")
        .await
        .unwrap()
        .expect(201);
    admin
        .assign("sim-driver", "sim-driver", "smoke")
        .await
        .unwrap()
        .expect(201);
    admin
        .id_token("sim-driver", "SIM-TAG")
        .await
        .unwrap()
        .expect(201);
    let simulator = binary_path("voltgate-sim").unwrap();
    let api_url = gateway.api_url.clone();
    let ocpp_url = gateway.ocpp_url.clone();
    let token = gateway.admin_token.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(simulator)
            .args(["--url", &ocpp_url, "--api", &api_url, "--api-token", &token])
            .args(["--chargers", "2000", "--ramp", "1000", "--duration", "20"])
            .args([
                "--ocpp",
                "mixed",
                "--heartbeat",
                "10",
                "--meter-interval",
                "10",
            ])
            .args([
                "--sessions",
                "30",
                "--session-length",
                "15",
                "--commands",
                "100",
            ])
            .args(["--processes", "2"])
            .args(["--report", "json", "--quiet"])
            .output()
    })
    .await
    .unwrap()
    .expect("voltgate-sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the simulator reports losses or refusals (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    let summary = &report["summary"];
    assert_eq!(report["failed"], false, "{report}");
    assert_eq!(
        report["processes"], 2,
        "the run was split and merged: {report}"
    );
    assert_eq!(summary["connections_made"], 2000, "{report}");
    assert_eq!(summary["booted"], 2000, "{report}");
    assert_eq!(summary["calls_sent"], summary["calls_answered"], "{report}");
    assert_eq!(summary["commands_sent"], summary["commands_ok"], "{report}");
    assert!(
        summary["commands_ok"].as_u64().is_some_and(|n| n > 0),
        "no operator command went through: {report}"
    );
    let metrics = crate::metrics(&gateway.api_url).await;
    assert_eq!(
        crate::family_total(&metrics, "voltgate_ocpp_handshakes_refused_total"),
        0.0,
        "handshakes were refused:\n{metrics}"
    );
}
