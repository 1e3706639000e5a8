//! Real chargers, real quirks: the corpus under `tests/data/quirks/` replayed against the real
//! binary. Under the default (lenient) tolerance every case is answered, counted in
//! `voltgate_schema_deviations_total{action,kind}`, shown in the charger's summary and stored
//! as normalised; under `--schema-tolerance strict` every case is refused. A charger's own
//! tolerance, set through the API, is gated, audited and kept across a restart.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use voltgate_tests::{Charger, Gateway, GatewayOptions, Received};

use crate::crash::sqlite;
use crate::{metric_if_present, metrics, Estate};

#[derive(Deserialize)]
struct QuirkCase {
    version: String,
    kind: String,
    frame: (u8, String, String, Value),
    #[serde(default)]
    stored: Option<Stored>,
}

/// What the gateway must keep after normalisation.
#[derive(Deserialize)]
struct Stored {
    boot_model: Option<String>,
    boot_serial: Option<String>,
    /// Fields one stored sampled value must have.
    meter_sample: Option<serde_json::Map<String, Value>>,
    connector_status: Option<ConnectorStatus>,
}

#[derive(Deserialize)]
struct ConnectorStatus {
    connector: String,
    status: String,
}

fn corpus() -> Vec<(String, QuirkCase)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/quirks");
    let mut cases: Vec<(String, QuirkCase)> = std::fs::read_dir(&dir)
        .expect("the quirks corpus exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("readable case");
            let case = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, case)
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(cases.len() >= 14, "the corpus has {} cases", cases.len());
    cases
}

fn subprotocol(version: &str) -> &'static str {
    match version {
        "1.6" => "ocpp1.6",
        "2.0.1" => "ocpp2.0.1",
        other => panic!("unknown version {other}"),
    }
}

/// The charger each case is replayed from (ids are at most 64 characters).
fn charger_id(name: &str) -> String {
    format!("Q-{name}")
}

fn series(action: &str, kind: &str) -> String {
    format!(r#"voltgate_schema_deviations_total{{action="{action}",kind="{kind}"}}"#)
}

/// Whether `value` holds, anywhere, an object with all of `fields`.
fn holds(value: &Value, fields: &serde_json::Map<String, Value>) -> bool {
    match value {
        Value::Object(map) => {
            fields.iter().all(|(k, v)| map.get(k) == Some(v))
                || map.values().any(|v| holds(v, fields))
        }
        Value::Array(items) => items.iter().any(|v| holds(v, fields)),
        _ => false,
    }
}

/// Sends a case's frame from a fresh charger (a 1.6 MeterValues after starting the
/// transaction it names) and returns the answer.
async fn replay(estate: &Estate, name: &str, case: &QuirkCase) -> (Charger, Received) {
    let id = charger_id(name);
    estate
        .admin
        .charger(&id, "site-a")
        .await
        .unwrap()
        .expect(201);
    let mut charger =
        Charger::connect(&estate.gateway.ocpp_url, &id, &[subprotocol(&case.version)])
            .await
            .expect("charger connects");
    let (_, message_id, action, payload) = &case.frame;
    let mut text = json!([2, message_id, action, payload]).to_string();
    if text.contains("\"$TX\"") {
        let started = charger
            .call_ok(
                "StartTransaction",
                json!({"connectorId": 1, "idTag": "RFID-DANA", "meterStart": 0,
                       "timestamp": "2025-03-12T12:00:00Z"}),
            )
            .await
            .expect("transaction started");
        let transaction = started["transactionId"].as_i64().expect("a transaction id");
        text = text.replace("\"$TX\"", &transaction.to_string());
    }
    charger.send_text(&text).unwrap();
    let answer = charger
        .answer_to(message_id, Duration::from_secs(10))
        .await
        .expect("answered");
    (charger, answer)
}

#[tokio::test]
async fn the_corpus_is_accepted_counted_summarised_and_stored_under_lenient() {
    let estate = Estate::new(&[]).await;
    estate.site_a_card("dana", "RFID-DANA").await;
    for (name, case) in corpus() {
        let action = case.frame.2.clone();
        let before = metric_if_present(
            &metrics(&estate.gateway.api_url).await,
            &series(&action, &case.kind),
        )
        .unwrap_or(0.0);
        let (_charger, answer) = replay(&estate, &name, &case).await;
        assert!(
            matches!(answer, Received::Result { .. }),
            "{name}: {answer:?}"
        );
        let after = metric_if_present(
            &metrics(&estate.gateway.api_url).await,
            &series(&action, &case.kind),
        )
        .unwrap_or(0.0);
        assert!(after > before, "{name}: the deviation was not counted");

        let id = charger_id(&name);
        let view = estate
            .admin
            .get(&format!("/api/v1/chargers/{id}"))
            .await
            .unwrap()
            .expect(200)
            .body;
        assert_eq!(view["schema"]["tolerance"], "lenient", "{name}: {view}");
        assert_eq!(view["schema"]["tolerance_override"], Value::Null);
        let kinds = view["schema"]["deviations"].as_array().expect("deviations");
        assert_eq!(kinds.len(), 1, "{name}: {kinds:?}");
        assert_eq!(kinds[0]["kind"], case.kind.as_str(), "{name}");
        assert!(kinds[0]["count"].as_u64() >= Some(1), "{name}");
        assert_eq!(kinds[0]["last"]["action"], action.as_str(), "{name}");
        assert!(
            !kinds[0]["last"]["example"]
                .as_str()
                .unwrap_or("")
                .is_empty(),
            "{name}"
        );

        let Some(stored) = &case.stored else { continue };
        if let Some(model) = &stored.boot_model {
            let rows = sqlite(
                &estate.gateway,
                &format!("SELECT model FROM charger_boots WHERE charger = '{id}';"),
            );
            assert_eq!(rows.trim(), model, "{name}: stored model");
        }
        if let Some(serial) = &stored.boot_serial {
            let rows = sqlite(
                &estate.gateway,
                &format!("SELECT serial FROM charger_boots WHERE charger = '{id}';"),
            );
            assert_eq!(rows.trim(), serial, "{name}: stored serial");
        }
        if let Some(fields) = &stored.meter_sample {
            let rows = sqlite(
                &estate.gateway,
                &format!(
                    "SELECT m.sample FROM meter_values m JOIN transactions t \
                     ON t.id = m.transaction_id WHERE t.charger = '{id}';"
                ),
            );
            let found = rows
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .any(|sample| holds(&sample, fields));
            assert!(
                found,
                "{name}: no stored sample with {fields:?} in:\n{rows}"
            );
        }
        if let Some(status) = &stored.connector_status {
            assert_eq!(
                view["connectors"][&status.connector]["status"],
                status.status.as_str(),
                "{name}: {view}"
            );
        }
    }
}

#[tokio::test]
async fn under_strict_every_corpus_case_is_refused_and_nothing_is_counted() {
    let estate = Estate::new(&["--schema-tolerance", "strict"]).await;
    estate.site_a_card("dana", "RFID-DANA").await;
    for (name, case) in corpus() {
        let (_charger, answer) = replay(&estate, &name, &case).await;
        assert!(
            matches!(answer, Received::Error { .. }),
            "{name}: {answer:?}"
        );
    }
    let text = metrics(&estate.gateway.api_url).await;
    assert!(
        !text.contains("voltgate_schema_deviations_total{"),
        "nothing may be counted under strict"
    );
}

#[tokio::test]
async fn a_chargers_own_tolerance_is_gated_audited_and_kept_across_a_restart() {
    let estate = Estate::new(&[]).await;
    let id = "CP-QUIRKY";
    estate
        .admin
        .charger(id, "site-a")
        .await
        .unwrap()
        .expect(201);
    let long_boot = json!({"chargePointVendor": "United Chargers",
                           "chargePointModel": "Grizzl-E Smart 40A 1ph"});
    let path = format!("/api/v1/chargers/{id}");

    estate
        .watcher
        .patch(&path, json!({"schema_tolerance": "strict"}))
        .await
        .unwrap()
        .expect(403);
    let bad = estate
        .ops
        .patch(&path, json!({"schema_tolerance": "loose"}))
        .await
        .unwrap()
        .expect(422);
    assert_eq!(bad.body["error"], "invalid_body", "{}", bad.body);
    let changed = estate
        .ops
        .patch(&path, json!({"schema_tolerance": "strict"}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(changed.body["schema_tolerance"], "strict");

    let mut charger = Charger::connect(&estate.gateway.ocpp_url, id, &["ocpp1.6"])
        .await
        .unwrap();
    let refused = charger
        .call("BootNotification", long_boot.clone())
        .await
        .unwrap();
    assert!(matches!(refused, Received::Error { .. }), "{refused:?}");

    let audit = estate
        .admin
        .get("/api/v1/audit?limit=50")
        .await
        .unwrap()
        .expect(200);
    let recorded = audit.body["entries"].as_array().unwrap().iter().any(|e| {
        e["action"] == "charger.edit"
            && e["resource"] == id
            && e["principal"] == "ops"
            && e["allowed"] == true
    });
    assert!(recorded, "the change is audited: {}", audit.body);
    drop(charger);

    let workdir = estate.gateway.kill();
    let gateway = Gateway::start_in(GatewayOptions::preset("connect"), workdir).unwrap();
    let admin = gateway.api();
    let view = admin.get(&path).await.unwrap().expect(200).body;
    assert_eq!(view["schema"]["tolerance_override"], "strict", "{view}");
    let mut charger = Charger::connect(&gateway.ocpp_url, id, &["ocpp1.6"])
        .await
        .unwrap();
    let refused = charger
        .call("BootNotification", long_boot.clone())
        .await
        .unwrap();
    assert!(matches!(refused, Received::Error { .. }), "{refused:?}");

    admin
        .patch(&path, json!({"schema_tolerance": "default"}))
        .await
        .unwrap()
        .expect(200);
    let accepted = charger
        .call_ok("BootNotification", long_boot)
        .await
        .unwrap();
    assert_eq!(accepted["status"], "Accepted");
    let view = admin.get(&path).await.unwrap().expect(200).body;
    assert_eq!(view["schema"]["tolerance_override"], Value::Null, "{view}");
    assert_eq!(view["schema"]["deviations"][0]["kind"], "string_too_long");
}

#[tokio::test]
async fn a_charger_answer_with_an_unknown_field_completes_the_command() {
    let estate = Estate::new(&[]).await;
    let mut charger = estate.charger("CP-1", "ocpp1.6").await;
    let command = {
        let ops = estate.ops.clone();
        tokio::spawn(async move { ops.command("CP-1", "reset", json!({"type": "soft"})).await })
    };
    let (message_id, _) = charger
        .expect_call("Reset", Duration::from_secs(10))
        .await
        .unwrap();
    charger
        .reply(
            &message_id,
            json!({"status": "Accepted", "firmwareNote": "ok"}),
        )
        .unwrap();
    let reply = command.await.unwrap().unwrap().expect(200);
    assert_eq!(
        reply.body["response"]["status"], "Accepted",
        "{}",
        reply.body
    );
    let text = metrics(&estate.gateway.api_url).await;
    assert_eq!(
        metric_if_present(&text, &series("Reset", "unknown_field")),
        Some(1.0)
    );
}

#[tokio::test]
async fn simulated_quirky_chargers_are_served_and_counted() {
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .arg("--auto-register")
            .arg("sim")
            .arg("--auto-register-trusted")
            .arg("--heartbeat-interval")
            .arg("1"),
    )
    .unwrap();
    let admin = gateway.api();
    admin
        .scope("sim", "site", "root")
        .await
        .unwrap()
        .expect(201);
    let simulator = voltgate_tests::binary_path("voltgate-sim").unwrap();
    let output = tokio::process::Command::new(simulator)
        .args(["--url", &gateway.ocpp_url, "--chargers", "8", "--ramp", "0"])
        .args(["--id-prefix", "SIM-", "--version", "1.6", "--duration", "4"])
        .args(["--heartbeat", "1", "--meter-interval", "0"])
        .args([
            "--quirks",
            "string_too_long,numeric_string,timestamp_without_zone,unknown_field",
            "--quirks-share",
            "0.5",
        ])
        .args(["--report", "json", "--quiet"])
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
    assert_eq!(report["summary"]["booted"], 8, "{report}");
    let errors = report["summary"]["errors"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        errors.keys().all(|k| !k.starts_with("callerror")),
        "a quirky CALL was refused: {report}"
    );

    let mut quirky = 0;
    for n in 1..=8 {
        let view = admin
            .get(&format!("/api/v1/chargers/SIM-{n:06}"))
            .await
            .unwrap()
            .expect(200)
            .body;
        let kinds: Vec<&str> = view["schema"]["deviations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["kind"].as_str())
            .collect();
        if !kinds.is_empty() {
            quirky += 1;
            for kind in ["string_too_long", "numeric_string", "unknown_field"] {
                assert!(kinds.contains(&kind), "SIM-{n:06}: {kinds:?}");
            }
        }
    }
    assert!(
        (1..8).contains(&quirky),
        "{quirky} of 8 chargers were quirky"
    );
    let text = metrics(&gateway.api_url).await;
    assert_eq!(
        metric_if_present(&text, &series("BootNotification", "string_too_long")),
        Some(f64::from(quirky)),
        "one over-long boot per quirky charger"
    );
}
