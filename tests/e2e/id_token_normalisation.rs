//! Id tokens are case-insensitive (issue #20, finding 9): `SAME01`, `same01` and ` SAME01 ` are
//! one card, stored and sent to chargers in one form, and texts that only look like a card
//! (whitespace inside, full-width or accented letters) are refused instead of becoming a second
//! card of another account.

use std::time::Duration;

use serde_json::json;
use voltgate_tests::{Api, Charger, Gateway, GatewayOptions};

/// A `zaptec` estate with one installation, its chargers `ZAP-1` and `ZAP-2`, and drivers `dana` (card
/// `SAME01`, may charge there) and `erik` (who also charges there, with no card).
async fn estate(options: GatewayOptions) -> (Gateway, Api) {
    let gateway = Gateway::start(options).unwrap();
    let admin = gateway.api();
    admin
        .scope("inst-1", "installation", "root")
        .await
        .unwrap()
        .expect(201);
    for charger in ["ZAP-1", "ZAP-2"] {
        admin.charger(charger, "inst-1").await.unwrap().expect(201);
    }
    for driver in ["dana", "erik"] {
        admin
            .principal(driver, "driver", "inst-1")
            .await
            .unwrap()
            .expect(201);
        admin
            .assign(driver, "user", "inst-1")
            .await
            .unwrap()
            .expect(201);
    }
    admin.id_token("dana", "SAME01").await.unwrap().expect(201);
    (gateway, admin)
}

async fn connect(gateway: &Gateway, id: &str, subprotocol: &str) -> Charger {
    let mut charger = Charger::connect(&gateway.ocpp_url, id, &[subprotocol])
        .await
        .unwrap();
    charger.boot().await.unwrap();
    charger
}

async fn authorize(charger: &mut Charger, token: &str) -> String {
    let (payload, info) = if charger.is_v16() {
        (json!({"idTag": token}), "idTagInfo")
    } else {
        (
            json!({"idToken": {"idToken": token, "type": "ISO14443"}}),
            "idTokenInfo",
        )
    };
    let answer = charger.call_ok("Authorize", payload).await.unwrap();
    answer[info]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_card_is_found_whatever_the_case_a_charger_presents_it_in() {
    let (gateway, _admin) = estate(GatewayOptions::preset("zaptec")).await;
    for (id, subprotocol) in [("ZAP-1", "ocpp1.6"), ("ZAP-2", "ocpp2.0.1")] {
        let mut charger = connect(&gateway, id, subprotocol).await;
        for presented in ["SAME01", "same01", "Same01"] {
            assert_eq!(
                authorize(&mut charger, presented).await,
                "Accepted",
                "{subprotocol}: {presented}"
            );
        }
        assert_eq!(authorize(&mut charger, "SAME02").await, "Invalid");
    }
}

#[tokio::test]
async fn one_card_cannot_be_registered_twice_in_another_case_or_in_look_alike_text() {
    let (_gateway, admin) = estate(GatewayOptions::preset("zaptec")).await;
    for same in ["same01", " SAME01 ", "Same01"] {
        let reply = admin.id_token("erik", same).await.unwrap().expect(409);
        assert!(reply.text.contains("SAME01"), "{same:?}: {}", reply.text);
    }
    for (look_alike, rule) in [
        ("SAME 01", "whitespace inside"),
        ("ＳＡＭＥ０１", "printable ASCII"),
        ("SAMÉ01", "printable ASCII"),
    ] {
        let reply = admin
            .id_token("erik", look_alike)
            .await
            .unwrap()
            .expect(422);
        assert!(reply.text.contains(rule), "{look_alike:?}: {}", reply.text);
    }
    let erik = admin
        .get("/api/v1/principals/erik/id-tokens")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(erik.body["id_tokens"], json!([]), "{}", erik.text);

    let added = admin
        .id_token("erik", " erik-01 ")
        .await
        .unwrap()
        .expect(201);
    assert_eq!(added.body["id_token"], "ERIK-01", "{}", added.text);
    let blocked = admin
        .post("/api/v1/id-tokens/erik-01/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(blocked.body["id_token"], "ERIK-01", "{}", blocked.text);
    assert_eq!(blocked.body["blocked"], true, "{}", blocked.text);
    admin
        .patch("/api/v1/id-tokens/Same01", json!({"blocked": true}))
        .await
        .unwrap()
        .expect(200);
    admin
        .delete("/api/v1/id-tokens/SAME%2001", json!({}))
        .await
        .unwrap()
        .expect(422);
    admin
        .delete("/api/v1/id-tokens/same01", json!({}))
        .await
        .unwrap()
        .expect(204);
    let dana = admin
        .get("/api/v1/principals/dana/id-tokens")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(dana.body["id_tokens"], json!([]), "{}", dana.text);
}

#[tokio::test]
async fn a_local_list_carries_the_stored_form_of_a_card() {
    let (gateway, admin) = estate(GatewayOptions::preset("zaptec").arg("--local-auth-lists")).await;
    admin.id_token("erik", "erik-01").await.unwrap().expect(201);
    let mut charger = connect(&gateway, "ZAP-1", "ocpp1.6").await;
    let mut full = None;
    while let Some((id, action, payload)) = charger.next_call(Duration::from_secs(10)).await {
        match action.as_str() {
            "GetLocalListVersion" => charger.reply(&id, json!({"listVersion": 0})).unwrap(),
            "GetConfiguration" => charger
                .reply(
                    &id,
                    json!({"configurationKey": [], "unknownKey": payload["key"]}),
                )
                .unwrap(),
            "SendLocalList" => {
                charger.reply(&id, json!({"status": "Accepted"})).unwrap();
                full = Some(payload);
                break;
            }
            other => panic!("unexpected {other}: {payload}"),
        }
    }
    let full = full.expect("a full local list is sent");
    let mut tags: Vec<&str> = full["localAuthorizationList"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["idTag"].as_str())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["ERIK-01", "SAME01"], "{full}");
}
