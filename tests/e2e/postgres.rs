//! The gateway on a PostgreSQL store (`--db postgres://...`): it migrates an empty database,
//! creates the bootstrap admin and works; after a restart on the same database the estate,
//! the transactions and the audit log are all there. An unreachable database is refused at
//! start, quickly and without showing the password, and `config check` shows the URL without
//! it. One throwaway PostgreSQL server serves this whole test binary.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use voltgate_tests::{binary_path, Api, Charger, Gateway, GatewayOptions, PostgresServer};

const CHARGER: &str = "CP-PG";

fn entries(reply: &Value) -> Vec<Value> {
    reply["entries"].as_array().cloned().unwrap_or_default()
}

/// The unlock command of `ops`, answered by the charger, and its allow record.
async fn unlock(ops: &Api, charger: &mut Charger) {
    let api = ops.clone();
    let request = tokio::spawn(async move {
        api.command(CHARGER, "unlock", json!({"connector": 1}))
            .await
    });
    let (call, _) = charger
        .expect_call("UnlockConnector", Duration::from_secs(10))
        .await
        .unwrap();
    charger.reply(&call, json!({"status": "Unlocked"})).unwrap();
    request.await.unwrap().unwrap().expect(200);
}

#[tokio::test]
async fn the_gateway_runs_on_postgres_and_keeps_everything_across_a_restart() {
    let server = PostgresServer::shared();
    let url = server.create_database().unwrap();
    let database = url.rsplit('/').next().unwrap().to_owned();
    let options = GatewayOptions::preset("connect").db(&url);
    let gateway = Gateway::start(options.clone()).expect("gateway starts on PostgreSQL");

    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    admin.charger(CHARGER, "site-a").await.unwrap().expect(201);
    admin
        .principal("ops", "operator", "site-a")
        .await
        .unwrap()
        .expect(201);
    admin
        .assign("ops", "site-admin", "site-a")
        .await
        .unwrap()
        .expect(201);
    let ops_token = admin.token_for("ops").await.unwrap();
    admin
        .charging_driver("site-driver", "dina", "site-a")
        .await
        .unwrap();
    admin.id_token("dina", "DINA-1").await.unwrap().expect(201);

    let mut charger = Charger::connect(&gateway.ocpp_url, CHARGER, &["ocpp1.6"])
        .await
        .unwrap();
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
    let authorized = charger
        .call_ok("Authorize", json!({"idTag": "DINA-1"}))
        .await
        .unwrap();
    assert_eq!(
        authorized["idTagInfo"]["status"], "Accepted",
        "{authorized}"
    );
    let started = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "DINA-1", "meterStart": 100,
                   "timestamp": "2026-11-25T10:00:00Z"}),
        )
        .await
        .unwrap();
    assert_eq!(started["idTagInfo"]["status"], "Accepted", "{started}");
    let transaction_id = started["transactionId"].as_i64().unwrap();
    for (at, value) in [
        ("2026-11-25T10:05:00Z", "1500"),
        ("2026-11-25T10:10:00Z", "2900"),
    ] {
        charger
            .call_ok(
                "MeterValues",
                json!({"connectorId": 1, "transactionId": transaction_id, "meterValue": [
                    {"timestamp": at, "sampledValue": [{"value": value}]}]}),
            )
            .await
            .unwrap();
    }
    charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": transaction_id, "meterStop": 4200,
                   "timestamp": "2026-11-25T11:00:00Z", "idTag": "DINA-1"}),
        )
        .await
        .unwrap();
    let ops = gateway.api_as(&ops_token);
    unlock(&ops, &mut charger).await;

    // The writes went to PostgreSQL, not to some file beside the gateway.
    let stored = server
        .sql(
            &database,
            &format!("SELECT count(*) FROM meter_values WHERE transaction_id = {transaction_id}"),
        )
        .unwrap();
    assert_eq!(stored, "2", "meter values in PostgreSQL");
    let sqlite_files: Vec<_> = std::fs::read_dir(gateway.workdir.path())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().contains(".db"))
        .collect();
    assert!(sqlite_files.is_empty(), "{sqlite_files:?}");

    drop(charger);
    let (code, workdir) = gateway.terminate(Duration::from_secs(20)).unwrap();
    assert_eq!(code, Some(0), "SIGTERM ends the gateway cleanly");
    drop(workdir);

    // Started again on the same database, from another working directory.
    let gateway = Gateway::start(options).expect("gateway restarts on PostgreSQL");
    let ops = gateway.api_as(&ops_token);
    let listed = ops.get("/api/v1/chargers").await.unwrap().expect(200);
    assert!(listed.text.contains(CHARGER), "{}", listed.text);
    let transactions = gateway
        .api()
        .get(&format!("/api/v1/transactions?charger={CHARGER}"))
        .await
        .unwrap()
        .expect(200);
    let kept = transactions.body["transactions"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["id"] == transaction_id))
        .cloned()
        .unwrap_or_else(|| panic!("transaction lost: {}", transactions.text));
    assert_eq!(kept["meter_stop"], 4200.0, "{kept}");
    let audit = gateway
        .api()
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    assert!(
        entries(&audit.body).iter().any(|e| e["principal"] == "ops"
            && e["action"] == "command.unlock"
            && e["allowed"] == true
            && e["outcome"].is_string()),
        "the command's audit record was lost: {}",
        audit.text
    );

    // The replayed estate still decides: the card charges, the operator commands.
    let mut charger = Charger::connect(&gateway.ocpp_url, CHARGER, &["ocpp1.6"])
        .await
        .unwrap();
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
    let authorized = charger
        .call_ok("Authorize", json!({"idTag": "dina-1"}))
        .await
        .unwrap();
    assert_eq!(
        authorized["idTagInfo"]["status"], "Accepted",
        "{authorized}"
    );
    unlock(&ops, &mut charger).await;
    let started = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "DINA-1", "meterStart": 4200,
                   "timestamp": "2026-11-25T12:00:00Z"}),
        )
        .await
        .unwrap();
    assert!(
        started["transactionId"].as_i64().unwrap() > transaction_id,
        "transaction ids are never reused: {started}"
    );
}

/// A database that cannot be reached stops the start with a message naming where it was
/// looked for, within the connect timeout, and never shows the password.
#[test]
fn an_unreachable_database_is_refused_at_start() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // Accepts connections and never answers: only the connect timeout ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let voltgate = binary_path("voltgate").unwrap();
    for (db, expected) in [
        (
            format!("postgres://vg:s3cret@127.0.0.1:{port}/estate"),
            "refused",
        ),
        (
            format!("postgres://vg:s3cret@127.0.0.1:{silent_port}/estate?connect_timeout=2"),
            "no answer within 2 s",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let out = Command::new(&voltgate)
            .current_dir(dir.path())
            .args([
                "--ocpp-listen",
                "127.0.0.1:0",
                "--api-listen",
                "127.0.0.1:0",
            ])
            .env("VOLTGATE_DB", &db)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(15), "{db}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{db}: {stderr}");
        assert!(stderr.contains("cannot open the store"), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            stderr.contains("database `estate` on 127.0.0.1:"),
            "{stderr}"
        );
        assert!(!stderr.contains("s3cret"), "{stderr}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing is written beside the gateway"
        );
    }
}

#[test]
fn config_check_shows_the_database_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        "db = \"postgres://voltgate:s3cret@db.internal:5432/estate\"\n",
    )
    .unwrap();
    let out = Command::new(binary_path("voltgate").unwrap())
        .args(["config", "check"])
        .arg(&file)
        .env_remove("VOLTGATE_DB")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}");
    assert!(
        listing.contains("db = \"postgres://voltgate:***@db.internal:5432/estate\"  # file"),
        "{listing}"
    );
    assert!(!listing.contains("s3cret"), "{listing}");
}
