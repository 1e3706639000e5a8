//! Per-charger behaviour through the real binary: what the gateway sends on its own after a
//! charger boots (`post_boot_sync` on / off / a delay), the operator commands `send-local-list`
//! and `get-local-list-version` (gated, audited), and free vend for 2.0.1 `NoAuthorization`
//! id tokens.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use voltgate_tests::{Api, Charger};

use crate::{Estate, QUIET};

const V16: &str = "ocpp1.6";
const V201: &str = "ocpp2.0.1";
/// A card of driver `dana`, who may charge on site-a.
const CARD: &str = "SYNC-CARD-1";
/// How long a CALL the gateway sends on its own or for an operator may take to arrive.
const CALL_LIMIT: Duration = Duration::from_secs(10);

/// An estate with local-list sync on and one card that may charge on site-a.
async fn estate() -> Estate {
    let estate = Estate::new(&["--local-auth-lists"]).await;
    estate.site_a_card("dana", CARD).await;
    estate
}

/// Registers `id` on site-a with `behaviour` set by `ops` before it first connects, then
/// connects and boots it.
async fn charger_with(estate: &Estate, id: &str, subprotocol: &str, behaviour: Value) -> Charger {
    estate
        .admin
        .charger(id, "site-a")
        .await
        .unwrap()
        .expect(201);
    let changed = estate
        .ops
        .patch(&format!("/api/v1/chargers/{id}"), behaviour.clone())
        .await
        .unwrap()
        .expect(200);
    for (field, value) in behaviour.as_object().unwrap() {
        assert_eq!(&changed.body[field], value, "{}", changed.text);
    }
    let mut charger = Charger::connect(&estate.gateway.ocpp_url, id, &[subprotocol])
        .await
        .expect("charger connects");
    let boot = charger.boot().await.expect("boot answered");
    assert_eq!(boot["status"], "Accepted", "boot: {boot}");
    charger
}

/// `operator` sends `command` with an empty body; the charger must be asked `action` next and
/// answers `answer`. Returns the payload it was sent and the API's answer.
async fn operate(
    operator: &Api,
    charger: &mut Charger,
    command: &str,
    action: &str,
    answer: Value,
) -> (Value, voltgate_tests::api::Reply) {
    let request = {
        let operator = operator.clone();
        let id = charger.id.clone();
        let command = command.to_owned();
        tokio::spawn(async move { operator.command(&id, &command, json!({})).await })
    };
    let (call, payload) = charger
        .expect_call(action, CALL_LIMIT)
        .await
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    charger.reply(&call, answer).unwrap();
    (payload, request.await.unwrap().unwrap())
}

/// The status a 2.0.1 charger is told for `token` on Authorize.
async fn authorize(charger: &mut Charger, token: Value) -> String {
    let answer = charger
        .call_ok("Authorize", json!({ "idToken": token }))
        .await
        .unwrap();
    answer["idTokenInfo"]["status"].as_str().unwrap().to_owned()
}

async fn audit_entries(admin: &Api) -> Vec<Value> {
    let audit = admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    audit.body["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn with_post_boot_sync_on_the_list_version_is_asked_right_after_boot() {
    let estate = estate().await;
    let mut charger = charger_with(&estate, "CP-ON", V16, json!({"post_boot_sync": "on"})).await;
    let (call, payload) = charger
        .expect_call("GetLocalListVersion", CALL_LIMIT)
        .await
        .unwrap();
    assert_eq!(payload, json!({}));
    charger.reply(&call, json!({"listVersion": -1})).unwrap();
}

#[tokio::test]
async fn with_post_boot_sync_off_nothing_is_sent_until_the_operator_syncs() {
    let estate = estate().await;
    let mut charger = charger_with(&estate, "CP-OFF", V16, json!({"post_boot_sync": "off"})).await;
    charger.status_available(1).await.unwrap();
    charger.quiet(QUIET * 3).await.unwrap();
    crate::backstop(&estate.admin, &mut charger).await;
    let view = estate
        .ops
        .get("/api/v1/chargers/CP-OFF")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(view.body["post_boot_sync"], "off", "{}", view.text);
    assert_eq!(view.body["free_vend"], false, "{}", view.text);

    // The operator's full sync: the card, a version above the one the charger holds.
    let (payload, reply) = operate(
        &estate.ops,
        &mut charger,
        "send-local-list",
        "SendLocalList",
        json!({"status": "Accepted"}),
    )
    .await;
    let reply = reply.expect(200);
    assert_eq!(reply.body["status"], "Accepted", "{}", reply.text);
    assert_eq!(payload["updateType"], "Full", "{payload}");
    assert_eq!(payload["listVersion"], 1, "{payload}");
    assert_eq!(
        payload["localAuthorizationList"],
        json!([{"idTag": CARD, "idTagInfo": {"status": "Accepted"}}])
    );
    let (payload, reply) = operate(
        &estate.ops,
        &mut charger,
        "send-local-list",
        "SendLocalList",
        json!({"status": "Accepted"}),
    )
    .await;
    reply.expect(200);
    assert_eq!(
        payload["listVersion"], 2,
        "the version is bumped: {payload}"
    );
    let (payload, reply) = operate(
        &estate.ops,
        &mut charger,
        "get-local-list-version",
        "GetLocalListVersion",
        json!({"listVersion": 2}),
    )
    .await;
    assert_eq!(payload, json!({}));
    let reply = reply.expect(200);
    assert_eq!(reply.body["response"], json!({"listVersion": 2}));

    // A reboot with `off` again sends nothing on its own.
    charger.boot().await.unwrap();
    charger.quiet(QUIET * 3).await.unwrap();
    crate::backstop(&estate.admin, &mut charger).await;
}

#[tokio::test]
async fn with_a_post_boot_delay_the_sync_waits_that_long_after_the_boot() {
    let estate = estate().await;
    let booted = Instant::now();
    let mut charger = charger_with(
        &estate,
        "CP-LATER",
        V201,
        json!({"post_boot_sync": {"delay_s": 2}}),
    )
    .await;
    charger.quiet(Duration::from_millis(1500)).await.unwrap();
    let (call, _) = charger
        .expect_call("GetLocalListVersion", CALL_LIMIT)
        .await
        .unwrap();
    assert!(
        booted.elapsed() >= Duration::from_secs(2),
        "the sync came {:?} after the boot",
        booted.elapsed()
    );
    charger.reply(&call, json!({"versionNumber": 0})).unwrap();
    let (call, _) = charger
        .expect_call("GetVariables", CALL_LIMIT)
        .await
        .unwrap();
    charger
        .reply(&call, json!({"getVariableResult": []}))
        .unwrap();
    let (call, payload) = charger
        .expect_call("SendLocalList", CALL_LIMIT)
        .await
        .unwrap();
    assert_eq!(payload["updateType"], "Full", "{payload}");
    charger.reply(&call, json!({"status": "Accepted"})).unwrap();
}

#[tokio::test]
async fn the_local_list_commands_are_gated_and_audited_in_both_versions() {
    let estate = estate().await;
    for (id, subprotocol, version_answer) in [
        ("CP-G16", V16, json!({"listVersion": 0})),
        ("CP-G201", V201, json!({"versionNumber": 0})),
    ] {
        let mut charger =
            charger_with(&estate, id, subprotocol, json!({"post_boot_sync": "off"})).await;
        // `watcher` may read a charger's configuration but not change it.
        estate
            .watcher
            .command(id, "send-local-list", json!({}))
            .await
            .unwrap()
            .expect(403);

        estate
            .outsider
            .command(id, "get-local-list-version", json!({}))
            .await
            .unwrap()
            .expect(404);
        let (_, reply) = operate(
            &estate.watcher,
            &mut charger,
            "get-local-list-version",
            "GetLocalListVersion",
            version_answer.clone(),
        )
        .await;
        assert_eq!(reply.expect(200).body["response"], version_answer);
        let (payload, reply) = operate(
            &estate.ops,
            &mut charger,
            "send-local-list",
            "SendLocalList",
            json!({"status": "Failed"}),
        )
        .await;
        assert_eq!(reply.expect(200).body["status"], "Failed");
        if subprotocol == V201 {
            assert_eq!(
                payload["localAuthorizationList"][0]["idToken"],
                json!({"idToken": CARD, "type": "ISO14443"})
            );
        }
        let bad = estate
            .ops
            .command(id, "send-local-list", json!({"entries": []}))
            .await
            .unwrap();
        assert_eq!(bad.body["error"], "invalid_body", "{}", bad.text);
        charger.quiet(QUIET).await.unwrap();
        crate::backstop(&estate.admin, &mut charger).await;

        let entries = audit_entries(&estate.admin).await;
        let label = id.to_owned();
        let of = |principal: &str, action: &str, allowed: bool| {
            entries
                .iter()
                .filter(|e| {
                    e["principal"] == principal
                        && e["action"] == action
                        && e["allowed"] == allowed
                        && e["resource"] == label.as_str()
                })
                .count()
        };
        assert_eq!(
            of("watcher", "command.change-configuration", false),
            1,
            "{id}"
        );
        assert_eq!(
            of("watcher", "command.get-local-list-version", true),
            1,
            "{id}"
        );
        assert_eq!(of("ops", "command.send-local-list", true), 1, "{id}");
        assert_eq!(of("system", "command.send-local-list", true), 0, "{id}");
        assert_eq!(
            of("system", "command.get-local-list-version", true),
            0,
            "{id}"
        );
    }
}

#[tokio::test]
async fn free_vend_is_a_gated_per_charger_setting_for_no_authorization_tokens_only() {
    let estate = Estate::new(&[]).await;
    let mut charger = estate.charger("CP-FREE", V201).await;
    let free = json!({"idToken": "", "type": "NoAuthorization"});
    assert_eq!(authorize(&mut charger, free.clone()).await, "Invalid");
    estate
        .watcher
        .patch("/api/v1/chargers/CP-FREE", json!({"free_vend": true}))
        .await
        .unwrap()
        .expect(403);
    assert_eq!(authorize(&mut charger, free.clone()).await, "Invalid");
    let changed = estate
        .ops
        .patch("/api/v1/chargers/CP-FREE", json!({"free_vend": true}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(changed.body["free_vend"], true, "{}", changed.text);
    assert_eq!(changed.body["post_boot_sync"], "on", "{}", changed.text);
    assert_eq!(authorize(&mut charger, free.clone()).await, "Accepted");
    for other in ["ISO14443", "Central", "KeyCode", "Local"] {
        assert_eq!(
            authorize(&mut charger, json!({"idToken": "", "type": other})).await,
            "Invalid",
            "{other}"
        );
    }
    let started = charger
        .call_ok(
            "TransactionEvent",
            json!({"eventType": "Started", "timestamp": "2026-11-25T10:00:00Z",
                   "triggerReason": "Authorized", "seqNo": 0,
                   "transactionInfo": {"transactionId": "FREE-1"},
                   "evse": {"id": 1, "connectorId": 1}, "idToken": free}),
        )
        .await
        .unwrap();
    assert_eq!(started["idTokenInfo"]["status"], "Accepted", "{started}");
    let sessions = estate
        .admin
        .get("/api/v1/transactions?active=true")
        .await
        .unwrap()
        .expect(200);
    let session = sessions.body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["charger"] == "CP-FREE")
        .cloned()
        .unwrap_or_else(|| panic!("the free-vend session is stored open: {}", sessions.text));
    assert!(session["principal"].is_null(), "{session}");
    let entries = audit_entries(&estate.admin).await;
    let free_vend_starts = entries
        .iter()
        .filter(|e| {
            e["principal"] == "id-token:"
                && e["action"] == "charge"
                && e["allowed"] == true
                && e["outcome"] == "Accepted"
                && e["reason"]
                    .as_str()
                    .is_some_and(|reason| reason.starts_with("free vend is allowed"))
        })
        .count();
    assert_eq!(
        free_vend_starts, 2,
        "the Authorize and the start are audited as free vend"
    );
    let changed = estate
        .ops
        .patch("/api/v1/chargers/CP-FREE", json!({"free_vend": false}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(changed.body["free_vend"], false);
    assert_eq!(authorize(&mut charger, free.clone()).await, "Invalid");

    // 1.6 has no token types: the setting changes nothing there.
    let mut v16 = estate.charger("CP-FREE16", V16).await;
    estate
        .ops
        .patch("/api/v1/chargers/CP-FREE16", json!({"free_vend": true}))
        .await
        .unwrap()
        .expect(200);
    let answer = v16
        .call_ok("Authorize", json!({"idTag": ""}))
        .await
        .unwrap();
    assert_eq!(answer["idTagInfo"]["status"], "Invalid", "{answer}");
}

#[tokio::test]
async fn charger_behaviour_is_refused_when_malformed_and_survives_a_restart() {
    let estate = Estate::new(&[]).await;
    estate
        .admin
        .charger("CP-KEEP", "site-a")
        .await
        .unwrap()
        .expect(201);
    for bad in [
        json!({"post_boot_sync": "later"}),
        json!({"post_boot_sync": {"delay_s": 0}}),
        json!({"post_boot_sync": {"delay_s": 3601}}),
        json!({"free_vend": "yes"}),
    ] {
        let refused = estate
            .ops
            .patch("/api/v1/chargers/CP-KEEP", bad.clone())
            .await
            .unwrap();
        assert!(
            refused.status == 400 || refused.status == 422,
            "{bad}: {}",
            refused.text
        );
    }
    estate
        .ops
        .patch(
            "/api/v1/chargers/CP-KEEP",
            json!({"post_boot_sync": {"delay_s": 45}, "free_vend": true}),
        )
        .await
        .unwrap()
        .expect(200);
    let Estate { gateway, admin, .. } = estate;
    let workdir = gateway.kill();
    let gateway = voltgate_tests::Gateway::start_in(
        voltgate_tests::GatewayOptions::preset("connect"),
        workdir,
    )
    .unwrap();
    let view = gateway
        .api()
        .get("/api/v1/chargers/CP-KEEP")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(
        view.body["post_boot_sync"],
        json!({"delay_s": 45}),
        "{}",
        view.text
    );
    assert_eq!(view.body["free_vend"], true, "{}", view.text);
    drop(admin);
}
