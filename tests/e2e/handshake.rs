//! The WebSocket handshake: subprotocol negotiation, unknown chargers, auto-registration,
//! percent-decoded ids, Basic auth, and a reconnect replacing the old connection.

use std::time::Duration;

use serde_json::json;
use voltgate_tests::{Charger, Gateway, GatewayOptions};

use crate::Estate;

#[tokio::test]
async fn picks_the_best_offered_version_and_refuses_others() {
    let estate = Estate::new(&[]).await;
    let url = estate.gateway.ocpp_url.clone();
    estate
        .admin
        .charger("CP-NEG", "site-a")
        .await
        .unwrap()
        .expect(201);

    let both = Charger::connect(&url, "CP-NEG", &["ocpp1.6", "ocpp2.0.1"])
        .await
        .unwrap();
    assert_eq!(both.subprotocol, "ocpp2.0.1");
    drop(both);
    let old = Charger::connect(&url, "CP-NEG", &["ocpp1.5", "ocpp1.6"])
        .await
        .unwrap();
    assert_eq!(old.subprotocol, "ocpp1.6");
    drop(old);

    for offered in [&["ocpp1.5"][..], &[][..]] {
        let refusal = Charger::try_connect(&url, "CP-NEG", offered, None)
            .await
            .unwrap()
            .err()
            .unwrap_or_else(|| panic!("handshake offering {offered:?} was accepted"));
        assert!(
            (400..500).contains(&refusal.status),
            "status {} for {offered:?}",
            refusal.status
        );
        assert!(
            refusal.body.contains("ocpp1.6") && refusal.body.contains("ocpp2.0.1"),
            "the refusal does not say what the gateway speaks: {}",
            refusal.body
        );
    }
}

#[tokio::test]
async fn unknown_chargers_are_refused_unless_auto_registered() {
    let estate = Estate::new(&[]).await;
    let refusal = Charger::try_connect(&estate.gateway.ocpp_url, "CP-STRANGER", &["ocpp1.6"], None)
        .await
        .unwrap()
        .err()
        .expect("unknown charger refused");
    assert_eq!(refusal.status, 401);
    let listed = estate
        .admin
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(200);
    assert!(!listed.text.contains("CP-STRANGER"));

    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .arg("--auto-register")
            .arg("site-new"),
    )
    .unwrap();
    gateway
        .api()
        .scope("site-new", "site", "root")
        .await
        .unwrap()
        .expect(201);
    let mut charger = Charger::connect(&gateway.ocpp_url, "CP-NEW", &["ocpp2.0.1"])
        .await
        .unwrap();
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
    let live = gateway
        .api()
        .get("/api/v1/chargers/CP-NEW")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(live.body["connected"], true, "{}", live.text);
    assert_eq!(live.body["scope"], "site-new", "{}", live.text);
    assert_eq!(live.body["ocpp_version"], "2.0.1", "{}", live.text);
}

#[tokio::test]
async fn charger_ids_are_percent_decoded() {
    let estate = Estate::new(&[]).await;
    estate
        .admin
        .charger("CP:7", "site-a")
        .await
        .unwrap()
        .expect(201);
    let mut charger = Charger::connect(&estate.gateway.ocpp_url, "CP%3A7", &["ocpp1.6"])
        .await
        .unwrap();
    charger.boot().await.unwrap();
    let live = estate
        .admin
        .get("/api/v1/chargers/CP%3A7")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(live.body["connected"], true, "{}", live.text);
}

#[tokio::test]
async fn basic_auth_is_enforced_when_a_password_is_set() {
    let estate = Estate::new(&[]).await;
    estate
        .admin
        .post(
            "/api/v1/chargers",
            json!({"id": "CP-PW", "scope": "site-a", "password": "correct-horse-battery"}),
        )
        .await
        .unwrap()
        .expect(201);
    let url = estate.gateway.ocpp_url.clone();
    for credentials in [
        None,
        Some(("CP-PW", "wrong")),
        Some(("CP-OTHER", "correct-horse-battery")),
    ] {
        let refusal = Charger::try_connect(&url, "CP-PW", &["ocpp1.6"], credentials)
            .await
            .unwrap()
            .err()
            .unwrap_or_else(|| panic!("{credentials:?} was let in"));
        assert_eq!(refusal.status, 401, "{credentials:?}");
    }
    let mut charger = Charger::connect_with(
        &url,
        "CP-PW",
        &["ocpp1.6"],
        Some(("CP-PW", "correct-horse-battery")),
    )
    .await
    .unwrap();
    charger.boot().await.unwrap();
    assert!(
        !estate.gateway.output().contains("correct-horse-battery"),
        "the password was logged"
    );
}

#[tokio::test]
async fn live_state_follows_the_charger() {
    let estate = Estate::new(&[]).await;
    let mut charger = estate.charger("CP-LIVE", "ocpp1.6").await;
    charger
        .call_ok(
            "StatusNotification",
            json!({"connectorId": 2, "errorCode": "NoError", "status": "Charging"}),
        )
        .await
        .unwrap();
    let live = estate
        .ops
        .get("/api/v1/chargers/CP-LIVE")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(live.body["connected"], true);
    assert_eq!(live.body["ocpp_version"], "1.6");
    assert_eq!(live.body["vendor"], "TestVendor");
    assert_eq!(live.body["model"], "TestModel");
    assert_eq!(live.body["serial"], "SN-CP-LIVE");
    assert_eq!(live.body["firmware"], "1.0.0");
    assert_eq!(
        live.body["connectors"]["2"]["status"], "Charging",
        "{}",
        live.text
    );
    assert!(live.body["last_message_at"].is_string());

    drop(charger);
    estate
        .ops
        .wait_disconnected("CP-LIVE", Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_reconnect_replaces_the_old_connection() {
    let estate = Estate::new(&[]).await;
    let mut first = estate.charger("CP-TWICE", "ocpp1.6").await;
    let mut second = Charger::connect(&estate.gateway.ocpp_url, "CP-TWICE", &["ocpp2.0.1"])
        .await
        .unwrap();
    assert!(
        first.closed(Duration::from_secs(5)).await.is_some(),
        "the old connection was not closed"
    );
    second.boot().await.unwrap();
    let live = estate
        .ops
        .get("/api/v1/chargers/CP-TWICE")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(live.body["connected"], true);
    assert_eq!(live.body["ocpp_version"], "2.0.1");

    let api = estate.ops.clone();
    let request =
        tokio::spawn(async move { api.command("CP-TWICE", "clear-cache", json!({})).await });
    let (id, action, _) = second
        .next_call(Duration::from_secs(5))
        .await
        .expect("call");
    assert_eq!(action, "ClearCache");
    second.reply(&id, json!({"status": "Accepted"})).unwrap();
    request.await.unwrap().unwrap().expect(200);
}
