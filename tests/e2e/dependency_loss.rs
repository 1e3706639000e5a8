//! The gateway while its PostgreSQL database is unreachable: no charger is told Accepted for
//! something that was not stored (it gets CALLERROR InternalError and retries), the operator
//! API answers 503 for what needs the store, `/readyz` answers 503, and all of it comes back
//! by itself when the database returns. The test stops a PostgreSQL server of its own, so no
//! other test sees its database go away.

use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::{Charger, Gateway, GatewayOptions, PostgresServer};

const CHARGER: &str = "CP-DBLOSS";

fn start(connector: u32, meter: i64) -> Value {
    json!({"connectorId": connector, "idTag": "DINA-1", "meterStart": meter,
           "timestamp": "2026-12-06T10:00:00Z"})
}

fn stop(transaction_id: i64) -> Value {
    json!({"transactionId": transaction_id, "meterStop": 4200,
           "timestamp": "2026-12-06T11:00:00Z", "idTag": "DINA-1"})
}

#[tokio::test]
async fn a_lost_database_answers_retry_and_503_and_recovers_by_itself() {
    let server = PostgresServer::own().unwrap();
    // Store calls give up after 2 s instead of the default 10 s while the server is away.
    let url = format!("{}?connect_timeout=2", server.create_database().unwrap());
    let gateway = Gateway::start(GatewayOptions::preset("connect").db(&url)).unwrap();
    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    admin.charger(CHARGER, "site-a").await.unwrap().expect(201);
    admin
        .charging_driver("site-driver", "dina", "site-a")
        .await
        .unwrap();
    admin.id_token("dina", "DINA-1").await.unwrap().expect(201);
    let mut charger = Charger::connect(&gateway.ocpp_url, CHARGER, &["ocpp1.6"])
        .await
        .unwrap();
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
    let started = charger
        .call_ok("StartTransaction", start(1, 100))
        .await
        .unwrap();
    let open = started["transactionId"].as_i64().unwrap();
    admin.wait_ready(200, Duration::from_secs(5)).await.unwrap();

    server.stop().unwrap();

    admin.wait_ready(503, Duration::from_secs(5)).await.unwrap();
    let boot = charger
        .call(
            "BootNotification",
            json!({"chargePointVendor": "Acme", "chargePointModel": "One"}),
        )
        .await
        .unwrap();
    assert_eq!(boot.error_code(), Some("InternalError"), "{boot:?}");
    let refused_start = charger
        .call("StartTransaction", start(2, 50))
        .await
        .unwrap();
    assert_eq!(
        refused_start.error_code(),
        Some("InternalError"),
        "{refused_start:?}"
    );
    let refused_stop = charger.call("StopTransaction", stop(open)).await.unwrap();
    assert_eq!(
        refused_stop.error_code(),
        Some("InternalError"),
        "{refused_stop:?}"
    );
    for reply in [
        admin.get("/api/v1/transactions").await.unwrap(),
        admin.scope("site-b", "site", "root").await.unwrap(),
        admin
            .command(CHARGER, "unlock", json!({"connector": 1}))
            .await
            .unwrap(),
    ] {
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert_eq!(reply.body["error"], "store_unavailable", "{}", reply.text);
    }
    assert!(
        charger
            .next_call(Duration::from_millis(200))
            .await
            .is_none(),
        "a command reached the charger without its allow record"
    );

    server.restart().unwrap();

    admin
        .wait_ready(200, Duration::from_secs(15))
        .await
        .unwrap();
    // The charger retries what was refused, with the same data.
    assert_eq!(
        charger
            .call_ok(
                "BootNotification",
                json!({"chargePointVendor": "Acme", "chargePointModel": "One"}),
            )
            .await
            .unwrap()["status"],
        "Accepted"
    );
    let retried = charger
        .call_ok("StartTransaction", start(2, 50))
        .await
        .unwrap();
    let second = retried["transactionId"].as_i64().unwrap();
    charger
        .call_ok("StopTransaction", stop(open))
        .await
        .unwrap();
    let listed = admin
        .get("/api/v1/transactions")
        .await
        .unwrap()
        .expect(200)
        .body;
    let transactions = listed["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<i64> = transactions
        .iter()
        .filter_map(|t| t["id"].as_i64())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&open) && ids.contains(&second), "{listed}");
    let stopped = transactions.iter().find(|t| t["id"] == open).unwrap();
    assert_eq!(stopped["meter_stop"].as_f64(), Some(4200.0), "{stopped}");
    admin
        .scope("site-b", "site", "root")
        .await
        .unwrap()
        .expect(201);
}
