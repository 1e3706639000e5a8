//! What the gateway acknowledged survives a hard kill: transactions, role assignments, tokens and
//! the audit log are all there after a restart on the same database.

use serde_json::json;
use voltgate_tests::{Charger, Gateway, GatewayOptions};

#[tokio::test]
async fn acknowledged_state_survives_sigkill() {
    let gateway = Gateway::start(GatewayOptions::preset("connect")).unwrap();
    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    admin.charger("CP-DUR", "site-a").await.unwrap().expect(201);
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
    // A driver of site-a whose card may charge at CP-DUR: a refused card's session would be
    // stored closed at once and say nothing about the stop below.
    admin
        .charging_driver("site-driver", "dina", "site-a")
        .await
        .unwrap();
    admin.id_token("dina", "DINA-1").await.unwrap().expect(201);

    let mut charger = Charger::connect(&gateway.ocpp_url, "CP-DUR", &["ocpp1.6"])
        .await
        .unwrap();
    charger.boot().await.unwrap();
    let started = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "DINA-1", "meterStart": 7,
                   "timestamp": "2026-11-25T10:00:00Z"}),
        )
        .await
        .unwrap();
    let transaction_id = started["transactionId"].as_i64().unwrap();

    let workdir = gateway.kill();
    let gateway = Gateway::start_in(GatewayOptions::preset("connect"), workdir).unwrap();
    let ops = gateway.api_as(&ops_token);
    let listed = ops.get("/api/v1/chargers").await.unwrap().expect(200);
    assert!(listed.text.contains("CP-DUR"), "{}", listed.text);
    assert!(
        gateway
            .api()
            .lists_transaction(transaction_id)
            .await
            .unwrap(),
        "transaction {transaction_id} is gone after the restart"
    );
    let audit = gateway
        .api()
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let entries = audit.body["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        entries.iter().any(|e| e["action"] == "role.assign"
            && e["principal"] == "admin"
            && e["allowed"] == true
            && e["resource"].as_str().is_some_and(|r| r.contains("ops"))),
        "the assignment's audit record was lost: {}",
        audit.text
    );

    // The charger reconnects to the restarted gateway and its transaction id still resolves.
    let mut charger = Charger::connect(&gateway.ocpp_url, "CP-DUR", &["ocpp1.6"])
        .await
        .unwrap();
    charger.boot().await.unwrap();
    let stopped = charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": transaction_id, "meterStop": 99,
                   "timestamp": "2026-11-25T11:00:00Z"}),
        )
        .await
        .unwrap();
    assert!(stopped.is_object(), "{stopped}");
    // The gateway answers every StopTransaction, known or not: only the stored record shows
    // that the id resolved to the transaction started before the kill.
    let listed = gateway
        .api()
        .get("/api/v1/transactions?charger=CP-DUR")
        .await
        .unwrap()
        .expect(200);
    let stored = listed.body["transactions"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|t| t["id"].as_i64() == Some(transaction_id))
        })
        .unwrap_or_else(|| panic!("transaction {transaction_id} not listed: {}", listed.text));
    assert_eq!(stored["meter_start"].as_f64(), Some(7.0), "{stored}");
    assert_eq!(stored["meter_stop"].as_f64(), Some(99.0), "{stored}");
    assert!(
        stored["stopped_at"]
            .as_str()
            .is_some_and(|at| at.starts_with("2026-11-25T11:00:00")),
        "the stop after the restart was not stored: {stored}"
    );
}
