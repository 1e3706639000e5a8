//! Answers the OCPP compliance test cases check: a 2.0.1 remote start names the id token's
//! stored type (TC_F_01_CSMS, TC_F_02_CSMS), and a 1.6 StopTransaction that carries an idTag
//! gets that tag's current status back; a charger's DataTransfer with `data` gets the gateway's
//! one defined answer, `UnknownVendorId` (no vendor extension is known), with nothing echoed,
//! also for 1.6 `data` sent as JSON rather than a string (a known firmware deviation the default
//! lenient tolerance accepts; `tests/e2e/quirks.rs` shows strict refusing it).

use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::Charger;

use crate::Estate;

/// `dana` may charge on site-a and holds the given cards (`(id token, type)`).
async fn driver_with_cards(estate: &Estate, cards: &[(&str, Option<&str>)]) {
    let admin = &estate.admin;
    admin
        .charging_driver("driver", "dana", "site-a")
        .await
        .unwrap();
    for (token, kind) in cards {
        let mut body = json!({ "id_token": token });
        if let Some(kind) = kind {
            body["type"] = json!(kind);
        }
        admin
            .post("/api/v1/principals/dana/id-tokens", body)
            .await
            .unwrap()
            .expect(201);
    }
}

/// Remote-starts `token` as `ops`; the charger answers Accepted and returns the id token it was
/// asked to start with.
async fn remote_start(estate: &Estate, charger: &mut Charger, token: &str) -> Value {
    let start = {
        let ops = estate.ops.clone();
        let token = token.to_owned();
        tokio::spawn(async move {
            ops.command(
                "CP-201",
                "remote-start",
                json!({"connector": 1, "id_token": token}),
            )
            .await
        })
    };
    let (call_id, action, payload) = charger
        .next_call(Duration::from_secs(10))
        .await
        .expect("the charger is asked");
    assert_eq!(action, "RequestStartTransaction");
    charger
        .reply(&call_id, json!({"status": "Accepted"}))
        .unwrap();
    start.await.unwrap().unwrap().expect(200);
    payload["idToken"].clone()
}

#[tokio::test]
async fn a_2_0_1_remote_start_names_the_stored_token_type() {
    let estate = Estate::new(&[]).await;
    driver_with_cards(
        &estate,
        &[
            ("04A2B3C4D5E6F7", Some("ISO14443")),
            ("NL-ABC-123", Some("eMAID")),
            ("UNTYPED-1", None),
        ],
    )
    .await;
    estate
        .admin
        .charger("CP-201", "site-a")
        .await
        .unwrap()
        .expect(201);
    let mut charger = Charger::connect(&estate.gateway.ocpp_url, "CP-201", &["ocpp2.0.1"])
        .await
        .unwrap();
    charger.boot().await.unwrap();

    for (seq, (token, expected_type)) in [
        ("04A2B3C4D5E6F7", "ISO14443"),
        ("NL-ABC-123", "eMAID"),
        // Stored without a type: the documented default, the one local lists use too.
        ("UNTYPED-1", "ISO14443"),
    ]
    .into_iter()
    .enumerate()
    {
        let id_token = remote_start(&estate, &mut charger, token).await;
        assert_eq!(
            id_token,
            json!({"idToken": token, "type": expected_type}),
            "{token}"
        );
        // The station starts the transaction with the id token it was given, as it was given.
        let started = charger
            .call_ok(
                "TransactionEvent",
                json!({"eventType": "Started", "timestamp": "2026-11-25T10:00:00Z",
                       "triggerReason": "RemoteStart", "seqNo": 0,
                       "transactionInfo": {"transactionId": format!("tx-{seq}"),
                                           "remoteStartId": 1},
                       "idToken": id_token, "evse": {"id": 1, "connectorId": 1}}),
            )
            .await
            .unwrap();
        assert_eq!(
            started["idTokenInfo"]["status"], "Accepted",
            "{token}: {started}"
        );
    }
}

#[tokio::test]
async fn a_1_6_stop_with_an_id_tag_reports_its_current_status() {
    let estate = Estate::new(&[]).await;
    driver_with_cards(&estate, &[("RFID-STOP", None)]).await;
    estate
        .admin
        .charger("CP-16", "site-a")
        .await
        .unwrap()
        .expect(201);
    let mut charger = Charger::connect(&estate.gateway.ocpp_url, "CP-16", &["ocpp1.6"])
        .await
        .unwrap();
    charger.boot().await.unwrap();
    let mut transactions = Vec::new();
    for (connector, at) in [(1, "2026-11-25T10:00:00Z"), (2, "2026-11-25T10:05:00Z")] {
        let started = charger
            .call_ok(
                "StartTransaction",
                json!({"connectorId": connector, "idTag": "RFID-STOP", "meterStart": 0,
                       "timestamp": at}),
            )
            .await
            .unwrap();
        assert_eq!(started["idTagInfo"]["status"], "Accepted", "{started}");
        transactions.push(started["transactionId"].as_i64().unwrap());
    }

    let stopped = charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": transactions[0], "idTag": "RFID-STOP",
                   "meterStop": 1000, "timestamp": "2026-11-25T11:00:00Z"}),
        )
        .await
        .unwrap();
    assert_eq!(stopped["idTagInfo"]["status"], "Accepted", "{stopped}");

    // The card is blocked during the second transaction: the stop tells the charger.
    estate
        .admin
        .post("/api/v1/id-tokens/RFID-STOP/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    let stopped = charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": transactions[1], "idTag": "RFID-STOP",
                   "meterStop": 1000, "timestamp": "2026-11-25T11:05:00Z"}),
        )
        .await
        .unwrap();
    assert_eq!(stopped["idTagInfo"]["status"], "Blocked", "{stopped}");

    // Without an idTag there is nothing to report.
    let started = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "RFID-OTHER", "meterStart": 0,
                   "timestamp": "2026-11-25T12:00:00Z"}),
        )
        .await
        .unwrap();
    let stopped = charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": started["transactionId"], "meterStop": 10,
                   "timestamp": "2026-11-25T12:30:00Z"}),
        )
        .await
        .unwrap();
    assert_eq!(stopped, json!({}));
}

#[tokio::test]
async fn a_charger_data_transfer_with_data_gets_unknown_vendor_and_nothing_more() {
    let estate = Estate::new(&[]).await;
    let text = json!("opaque vendor text");
    let structured = json!({"nested": {"meter": [1, 2, 3]}, "flag": true});
    // 1.6 types `data` as a string; 2.0.1 takes any JSON value.
    for (id, subprotocol, accepted) in [
        ("CP-DT-16", "ocpp1.6", vec![text.clone()]),
        (
            "CP-DT-201",
            "ocpp2.0.1",
            vec![text.clone(), structured.clone()],
        ),
    ] {
        let mut charger = estate.charger(id, subprotocol).await;
        for data in accepted {
            let answer = charger
                .call_ok(
                    "DataTransfer",
                    json!({"vendorId": "com.example", "messageId": "probe", "data": data}),
                )
                .await
                .unwrap();
            assert_eq!(
                answer,
                json!({"status": "UnknownVendorId"}),
                "{subprotocol}: the data is neither echoed nor acted on"
            );
        }
        if subprotocol == "ocpp1.6" {
            let answer = charger
                .call_ok(
                    "DataTransfer",
                    json!({"vendorId": "com.example", "data": structured.clone()}),
                )
                .await
                .unwrap();
            assert_eq!(answer, json!({"status": "UnknownVendorId"}));
        }
        let beat = charger.call_ok("Heartbeat", json!({})).await.unwrap();
        assert!(beat["currentTime"].is_string(), "{beat}");
    }
}
