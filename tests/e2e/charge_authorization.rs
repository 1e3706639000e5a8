//! Charger-side authorisation: id tokens in Authorize, StartTransaction and TransactionEvent are
//! decided by the role engine's `charge` action for that station, and transactions are stored.

use serde_json::{json, Value};
use voltgate_tests::{Api, Charger, Gateway, GatewayOptions, Received};

/// A `zaptec` estate: two installations, driver `dana` with the `user` role on the first only.
struct Site {
    gateway: Gateway,
    admin: Api,
}

async fn site() -> Site {
    let gateway = Gateway::start(GatewayOptions::preset("zaptec")).unwrap();
    let admin = gateway.api();
    admin
        .scope("inst-1", "installation", "root")
        .await
        .unwrap()
        .expect(201);
    admin
        .scope("inst-2", "installation", "root")
        .await
        .unwrap()
        .expect(201);
    for (charger, installation) in [
        ("ZAP-1", "inst-1"),
        ("ZAP-2", "inst-2"),
        ("ZAP-3", "inst-1"),
    ] {
        admin
            .charger(charger, installation)
            .await
            .unwrap()
            .expect(201);
    }
    for driver in ["dana", "erik"] {
        admin
            .principal(driver, "driver", "inst-1")
            .await
            .unwrap()
            .expect(201);
        admin
            .id_token(driver, &format!("RFID-{}", driver.to_uppercase()))
            .await
            .unwrap()
            .expect(201);
    }
    admin
        .assign("dana", "user", "inst-1")
        .await
        .unwrap()
        .expect(201);
    admin
        .assign("erik", "user", "inst-1")
        .await
        .unwrap()
        .expect(201);
    Site { gateway, admin }
}

async fn authorize(charger: &mut Charger, token: &str) -> String {
    let payload = if charger.is_v16() {
        json!({"idTag": token})
    } else {
        json!({"idToken": {"idToken": token, "type": "ISO14443"}})
    };
    let answer = charger.call_ok("Authorize", payload).await.unwrap();
    let info = if charger.is_v16() {
        &answer["idTagInfo"]
    } else {
        &answer["idTokenInfo"]
    };
    info["status"].as_str().unwrap_or_default().to_string()
}

async fn connect(site: &Site, id: &str, subprotocol: &str) -> Charger {
    let mut charger = Charger::connect(&site.gateway.ocpp_url, id, &[subprotocol])
        .await
        .unwrap();
    charger.boot().await.unwrap();
    charger
}

#[tokio::test]
async fn id_tokens_are_decided_by_the_role_engine() {
    let site = site().await;
    let mut here = connect(&site, "ZAP-1", "ocpp1.6").await;
    let mut elsewhere = connect(&site, "ZAP-2", "ocpp1.6").await;
    let mut modern = connect(&site, "ZAP-3", "ocpp2.0.1").await;

    assert_eq!(authorize(&mut here, "RFID-DANA").await, "Accepted");
    assert_eq!(authorize(&mut modern, "RFID-DANA").await, "Accepted");
    assert_eq!(authorize(&mut elsewhere, "RFID-DANA").await, "Invalid");
    assert_eq!(authorize(&mut here, "RFID-NOBODY").await, "Invalid");

    site.admin
        .post("/api/v1/principals/dana/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(authorize(&mut here, "RFID-DANA").await, "Blocked");
    assert_eq!(authorize(&mut modern, "RFID-DANA").await, "Blocked");
    assert_eq!(authorize(&mut here, "RFID-ERIK").await, "Accepted");

    let audit = site
        .admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let entries = audit.body["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let charge = |resource: &str, allowed: bool| {
        entries.iter().any(|e| {
            e["action"] == "charge" && e["resource"] == resource && e["allowed"] == allowed
        })
    };
    assert!(charge("ZAP-1", true), "no audited allow: {}", audit.text);
    assert!(charge("ZAP-2", false), "no audited deny: {}", audit.text);
}

async fn authorize_as(charger: &mut Charger, token: &str, token_type: &str) -> String {
    let payload = json!({"idToken": {"idToken": token, "type": token_type}});
    let answer = charger.call_ok("Authorize", payload).await.unwrap();
    answer["idTokenInfo"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_typed_id_token_is_known_only_under_its_type_on_2_0_1() {
    let site = site().await;
    let mut legacy = connect(&site, "ZAP-1", "ocpp1.6").await;
    let mut modern = connect(&site, "ZAP-3", "ocpp2.0.1").await;
    site.admin
        .post(
            "/api/v1/principals/dana/id-tokens",
            json!({"id_token": "PIN-4711", "type": "KeyCode"}),
        )
        .await
        .unwrap()
        .expect(201);

    assert_eq!(
        authorize_as(&mut modern, "PIN-4711", "KeyCode").await,
        "Accepted"
    );
    assert_eq!(
        authorize_as(&mut modern, "PIN-4711", "ISO14443").await,
        "Invalid"
    );
    assert_eq!(
        authorize(&mut legacy, "PIN-4711").await,
        "Accepted",
        "1.6 has no types"
    );
    // A token stored without a type matches whatever type the charger presents.
    assert_eq!(
        authorize_as(&mut modern, "RFID-DANA", "ISO15693").await,
        "Accepted"
    );

    let cleared = site
        .admin
        .patch("/api/v1/id-tokens/PIN-4711", json!({"type": null}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(cleared.body["type"], Value::Null);
    assert_eq!(
        authorize_as(&mut modern, "PIN-4711", "ISO14443").await,
        "Accepted"
    );
    let retyped = site
        .admin
        .patch("/api/v1/id-tokens/RFID-DANA", json!({"type": "eMAID"}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(retyped.body["type"], "eMAID");
    assert_eq!(
        authorize_as(&mut modern, "RFID-DANA", "ISO14443").await,
        "Invalid"
    );
    site.admin
        .patch("/api/v1/id-tokens/RFID-DANA", json!({"type": "Emaid"}))
        .await
        .unwrap()
        .expect(422);
}

fn frame(id: &str, action: &str, payload: Value) -> String {
    json!([2, id, action, payload]).to_string()
}

async fn answer(charger: &mut Charger, id: &str) -> Value {
    match charger
        .answer_to(id, std::time::Duration::from_secs(5))
        .await
        .unwrap()
    {
        Received::Result { payload, .. } => payload,
        other => panic!("{id}: {other:?}"),
    }
}

#[tokio::test]
async fn v16_transactions_are_stored_once_and_visible_to_their_driver() {
    let site = site().await;
    let mut charger = connect(&site, "ZAP-1", "ocpp1.6").await;
    let start = json!({"connectorId": 1, "idTag": "RFID-DANA", "meterStart": 1000,
                       "timestamp": "2026-11-25T10:00:00Z"});
    charger
        .send_text(&frame("start-1", "StartTransaction", start.clone()))
        .unwrap();
    let first = answer(&mut charger, "start-1").await;
    assert_eq!(first["idTagInfo"]["status"], "Accepted", "{first}");
    let transaction_id = first["transactionId"]
        .as_i64()
        .expect("numeric transactionId");
    // The charger retries the same message (its answer was lost): same transaction, no duplicate.
    charger
        .send_text(&frame("start-1", "StartTransaction", start))
        .unwrap();
    let retry = answer(&mut charger, "start-1").await;
    assert_eq!(retry["transactionId"].as_i64(), Some(transaction_id));

    charger
        .call_ok(
            "MeterValues",
            json!({"connectorId": 1, "transactionId": transaction_id, "meterValue": [
                {"timestamp": "2026-11-25T10:05:00Z", "sampledValue": [{"value": "1500"}]}]}),
        )
        .await
        .unwrap();
    let stop = charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": transaction_id, "meterStop": 4200,
                   "timestamp": "2026-11-25T11:00:00Z", "idTag": "RFID-DANA"}),
        )
        .await
        .unwrap();
    assert!(stop.is_object());

    let all = site
        .admin
        .get("/api/v1/transactions")
        .await
        .unwrap()
        .expect(200);
    let transactions = all.body["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mine: Vec<&Value> = transactions
        .iter()
        .filter(|t| t["charger"] == "ZAP-1")
        .collect();
    assert_eq!(mine.len(), 1, "{}", all.text);
    assert_eq!(mine[0]["id"].as_i64(), Some(transaction_id));
    assert_eq!(mine[0]["meter_stop"].as_f64(), Some(4200.0));
    assert_eq!(mine[0]["principal"], "dana");

    let dana = site
        .gateway
        .api_as(&site.admin.token_for("dana").await.unwrap());
    let erik = site
        .gateway
        .api_as(&site.admin.token_for("erik").await.unwrap());
    let own = dana.get("/api/v1/transactions").await.unwrap().expect(200);
    assert_eq!(
        own.body["transactions"].as_array().map(Vec::len),
        Some(1),
        "{}",
        own.text
    );
    let others = erik.get("/api/v1/transactions").await.unwrap().expect(200);
    assert_eq!(
        others.body["transactions"].as_array().map(Vec::len),
        Some(0),
        "{}",
        others.text
    );
}

#[tokio::test]
async fn v201_transaction_events_are_authorised_and_stored() {
    let site = site().await;
    let mut charger = connect(&site, "ZAP-3", "ocpp2.0.1").await;
    let started = charger
        .call_ok(
            "TransactionEvent",
            json!({"eventType": "Started", "timestamp": "2026-11-25T10:00:00Z",
                   "triggerReason": "Authorized", "seqNo": 0,
                   "transactionInfo": {"transactionId": "tx-201"},
                   "idToken": {"idToken": "RFID-DANA", "type": "ISO14443"},
                   "evse": {"id": 1, "connectorId": 1}}),
        )
        .await
        .unwrap();
    assert_eq!(started["idTokenInfo"]["status"], "Accepted", "{started}");
    charger
        .call_ok(
            "TransactionEvent",
            json!({"eventType": "Ended", "timestamp": "2026-11-25T11:00:00Z",
                   "triggerReason": "StopAuthorized", "seqNo": 1,
                   "transactionInfo": {"transactionId": "tx-201", "stoppedReason": "Local"},
                   "meterValue": [{"timestamp": "2026-11-25T11:00:00Z",
                                   "sampledValue": [{"value": 3200.0}]}]}),
        )
        .await
        .unwrap();
    let all = site
        .admin
        .get("/api/v1/transactions")
        .await
        .unwrap()
        .expect(200);
    let transactions = all.body["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ours: Vec<&Value> = transactions
        .iter()
        .filter(|t| t["charger"] == "ZAP-3")
        .collect();
    assert_eq!(ours.len(), 1, "{}", all.text);
    assert_eq!(ours[0]["key"], "tx-201");
    assert!(ours[0]["stopped_at"].is_string(), "{}", all.text);
    assert_eq!(ours[0]["meter_stop"].as_f64(), Some(3200.0), "{}", all.text);
}

/// Starts a transaction with `token` the way the charger's version does and returns the
/// status the gateway answered for the token.
async fn start_with(charger: &mut Charger, key: &str, token: &str) -> String {
    let answer = if charger.is_v16() {
        charger
            .call_ok(
                "StartTransaction",
                json!({"connectorId": 1, "idTag": token, "meterStart": 0,
                       "timestamp": "2026-11-25T10:00:00Z"}),
            )
            .await
            .unwrap()
    } else {
        charger
            .call_ok(
                "TransactionEvent",
                json!({"eventType": "Started", "timestamp": "2026-11-25T10:00:00Z",
                       "triggerReason": "Authorized", "seqNo": 0,
                       "transactionInfo": {"transactionId": key},
                       "idToken": {"idToken": token, "type": "ISO14443"},
                       "evse": {"id": 1, "connectorId": 1}}),
            )
            .await
            .unwrap()
    };
    let info = if charger.is_v16() {
        &answer["idTagInfo"]
    } else {
        &answer["idTokenInfo"]
    };
    info["status"]
        .as_str()
        .unwrap_or_else(|| panic!("no status in {answer}"))
        .to_string()
}

/// The transaction-starting messages of both versions answer what the engine decides, not
/// `Accepted` whatever the token: unknown, other-site and blocked tokens are refused, while a
/// valid token on the same charger is accepted.
#[tokio::test]
async fn transaction_starts_refuse_unknown_other_site_and_blocked_tokens() {
    let site = site().await;
    for (version, here, elsewhere) in [
        ("ocpp1.6", "ZAP-1", "ZAP-2"),
        ("ocpp2.0.1", "ZAP-3", "ZAP-2"),
    ] {
        let mut here = connect(&site, here, version).await;
        let mut elsewhere = connect(&site, elsewhere, version).await;
        let cases = [
            (false, "unknown", "RFID-NOBODY", "Invalid"),
            (true, "other-site", "RFID-DANA", "Invalid"),
            (false, "valid", "RFID-DANA", "Accepted"),
        ];
        for (other_site, case, token, expected) in cases {
            let charger = if other_site {
                &mut elsewhere
            } else {
                &mut here
            };
            let key = format!("{version}-{case}");
            assert_eq!(
                start_with(charger, &key, token).await,
                expected,
                "{version}: {case} token {token}"
            );
        }
        drop(elsewhere);
        site.admin
            .post("/api/v1/principals/dana/block", json!({}))
            .await
            .unwrap()
            .expect(200);
        let key = format!("{version}-blocked");
        assert_eq!(
            start_with(&mut here, &key, "RFID-DANA").await,
            "Blocked",
            "{version}: blocked token"
        );
        assert_eq!(
            start_with(&mut here, &format!("{version}-erik"), "RFID-ERIK").await,
            "Accepted",
            "{version}: another driver's valid token while dana is blocked"
        );
        site.admin
            .post("/api/v1/principals/dana/unblock", json!({}))
            .await
            .unwrap()
            .expect(200);
    }
}

#[tokio::test]
async fn remote_stop_takes_the_transaction_id_as_the_listing_shows_it() {
    let site = site().await;
    let mut charger = connect(&site, "ZAP-1", "ocpp1.6").await;
    let started = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "RFID-DANA", "meterStart": 0,
                   "timestamp": "2026-11-25T10:00:00Z"}),
        )
        .await
        .unwrap();
    let listed = site
        .admin
        .get("/api/v1/transactions")
        .await
        .unwrap()
        .expect(200);
    let id = listed.body["transactions"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["charger"] == "ZAP-1"))
        .map(|t| t["id"].clone())
        .unwrap_or_else(|| panic!("not listed: {}", listed.text));
    assert!(id.is_i64(), "1.6 ids are listed as integers: {id}");
    assert_eq!(Some(&id), started.get("transactionId"));

    let admin = site.admin.clone();
    let body = json!({ "transaction_id": id });
    let request = tokio::spawn(async move { admin.command("ZAP-1", "remote-stop", body).await });
    let (message_id, action, payload) = charger
        .next_call(std::time::Duration::from_secs(10))
        .await
        .expect("the stop reached the charger");
    assert_eq!(action, "RemoteStopTransaction");
    assert_eq!(payload["transactionId"], id, "{payload}");
    charger
        .reply(&message_id, json!({"status": "Accepted"}))
        .unwrap();
    request.await.unwrap().unwrap().expect(200);

    let refused = site
        .admin
        .command("ZAP-1", "remote-stop", json!({"transaction_id": 1.5}))
        .await
        .unwrap()
        .expect(422);
    assert!(
        refused.text.contains("integer (1.6) or a string (2.0.1)"),
        "{}",
        refused.text
    );
}
