//! Driver authorisation at the edge: id-token expiry, blocking and groups on Authorize, and
//! local authorisation lists kept in sync with the role engine (`--local-auth-lists`), so a
//! charger that loses its connection still lets exactly the right people charge.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use voltgate_tests::{Api, Charger, Gateway, GatewayOptions, NatsServer, PostgresServer};

use crate::QUIET;

/// How long a list update may take to reach a charger ("within seconds").
const SYNC_LIMIT: Duration = Duration::from_secs(5);

/// A `zaptec` estate: installations inst-1 (charger ZAP-1) and inst-2 (ZAP-2); drivers dana
/// (user on inst-1, token RFID-DANA) and erik (no role yet, token RFID-ERIK).
async fn estate(options: GatewayOptions) -> (Gateway, Api) {
    let gateway = Gateway::start(options).unwrap();
    let admin = gateway.api();
    seed(&admin).await;
    (gateway, admin)
}

/// The estate of [`estate`], written through `admin`.
async fn seed(admin: &Api) {
    for installation in ["inst-1", "inst-2"] {
        admin
            .scope(installation, "installation", "root")
            .await
            .unwrap()
            .expect(201);
    }
    admin.charger("ZAP-1", "inst-1").await.unwrap().expect(201);
    admin.charger("ZAP-2", "inst-2").await.unwrap().expect(201);
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
}

fn syncing() -> GatewayOptions {
    GatewayOptions::preset("zaptec").arg("--local-auth-lists")
}

/// Waits for the gateway's next CALL, which must be `action`; returns its id and payload.
async fn expect_call(charger: &mut Charger, action: &str) -> (String, Value) {
    let (id, got, payload) = charger
        .next_call(SYNC_LIMIT)
        .await
        .unwrap_or_else(|| panic!("no {action} within {SYNC_LIMIT:?}"));
    assert_eq!(got, action, "expected {action}, got {got} {payload}");
    (id, payload)
}

/// Takes the gateway's next SendLocalList, which must be a differential update carrying
/// exactly `entries` (`why` says what it shows), applies it to `list` as a 1.6 charger does
/// and accepts it; returns the payload.
async fn accept_differential(
    charger: &mut Charger,
    list: &mut ChargerList,
    entries: Value,
    why: &str,
) -> Value {
    let (id, update) = expect_call(charger, "SendLocalList").await;
    assert_eq!(update["updateType"], "Differential", "{why}: {update}");
    assert_eq!(update["localAuthorizationList"], entries, "{why}");
    list.apply(&update, true);
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    update
}

/// A charger's local list as the charger itself keeps it: applies SendLocalList the way
/// OCPP says (full replaces, differential adds/changes/removes) and decides offline from it.
#[derive(Debug, Default)]
struct ChargerList {
    version: i64,
    /// token → (status, expiry)
    entries: BTreeMap<String, (String, Option<String>)>,
}

impl ChargerList {
    fn apply(&mut self, payload: &Value, v16: bool) {
        let (version_field, token_of, info_field): (&str, fn(&Value) -> &Value, &str) = if v16 {
            ("listVersion", |e| &e["idTag"], "idTagInfo")
        } else {
            ("versionNumber", |e| &e["idToken"]["idToken"], "idTokenInfo")
        };
        let version = payload[version_field].as_i64().expect("a list version");
        assert!(version > self.version, "versions only grow: {payload}");
        if payload["updateType"] == "Full" {
            self.entries.clear();
        } else {
            assert_eq!(payload["updateType"], "Differential");
        }
        for entry in payload["localAuthorizationList"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let token = token_of(&entry).as_str().expect("a token").to_owned();
            let info = &entry[info_field];
            if info.is_null() {
                self.entries.remove(&token);
            } else {
                let expiry = if v16 {
                    &info["expiryDate"]
                } else {
                    &info["cacheExpiryDateTime"]
                };
                self.entries.insert(
                    token,
                    (
                        info["status"].as_str().unwrap_or_default().to_owned(),
                        expiry.as_str().map(str::to_owned),
                    ),
                );
            }
        }
        self.version = version;
    }

    /// What an offline charger decides from its list alone: only listed Accepted tokens charge.
    fn lets_charge(&self, token: &str) -> bool {
        self.entries
            .get(token)
            .is_some_and(|(status, _)| status == "Accepted")
    }

    fn tokens(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }
}

/// Gives erik the `user` role on inst-1 through `admin` and takes the differential update
/// that adds his card (`why` says what it shows); returns the update.
async fn grant_erik_and_take_his_card(
    admin: &Api,
    charger: &mut Charger,
    list: &mut ChargerList,
    why: &str,
) -> Value {
    admin
        .assign("erik", "user", "inst-1")
        .await
        .unwrap()
        .expect(201);
    accept_differential(
        charger,
        list,
        json!([{"idTag": "RFID-ERIK", "idTagInfo": {"status": "Accepted"}}]),
        why,
    )
    .await
}

/// Answers the version check and the first full list; returns the list the charger holds.
async fn first_sync(charger: &mut Charger, reported_version: i64) -> ChargerList {
    let v16 = charger.is_v16();
    let (id, _) = expect_call(charger, "GetLocalListVersion").await;
    let field = if v16 { "listVersion" } else { "versionNumber" };
    charger
        .reply(&id, json!({ field: reported_version }))
        .unwrap();
    answer_limits(charger, None, None).await;
    let (id, payload) = expect_call(charger, "SendLocalList").await;
    assert_eq!(payload["updateType"], "Full", "{payload}");
    let mut list = ChargerList {
        version: reported_version,
        ..ChargerList::default()
    };
    list.apply(&payload, v16);
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    list
}

/// Answers the gateway's one read of the list limits (1.6 GetConfiguration, 2.0.1
/// GetVariables): `per_message` entries per SendLocalList and, in 1.6, a `capacity`; `None`
/// answers that key as unknown.
async fn answer_limits(charger: &mut Charger, per_message: Option<u32>, capacity: Option<u32>) {
    if charger.is_v16() {
        let (id, payload) = expect_call(charger, "GetConfiguration").await;
        assert_eq!(
            payload["key"],
            json!(["SendLocalListMaxLength", "LocalAuthListMaxLength"])
        );
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for (key, value) in [
            ("SendLocalListMaxLength", per_message),
            ("LocalAuthListMaxLength", capacity),
        ] {
            match value {
                Some(n) => {
                    known.push(json!({"key": key, "readonly": true, "value": n.to_string()}))
                }
                None => unknown.push(json!(key)),
            }
        }
        charger
            .reply(
                &id,
                json!({"configurationKey": known, "unknownKey": unknown}),
            )
            .unwrap();
    } else {
        assert_eq!(
            capacity, None,
            "2.0.1 reports its capacity only in a device-model report"
        );
        let (id, payload) = expect_call(charger, "GetVariables").await;
        let results: Vec<Value> = payload["getVariableData"]
            .as_array()
            .expect("variables asked for")
            .iter()
            .map(|asked| {
                let component = asked["component"].clone();
                let variable = asked["variable"].clone();
                assert_eq!(component["name"], "LocalAuthListCtrlr");
                match (variable["name"].as_str(), per_message) {
                    (Some("ItemsPerMessage"), Some(n)) => json!({
                        "attributeStatus": "Accepted", "attributeValue": n.to_string(),
                        "component": component, "variable": variable,
                    }),
                    _ => json!({
                        "attributeStatus": "UnknownVariable",
                        "component": component, "variable": variable,
                    }),
                }
            })
            .collect();
        charger
            .reply(&id, json!({"getVariableResult": results}))
            .unwrap();
    }
}

async fn connect(gateway: &Gateway, id: &str, subprotocol: &str) -> Charger {
    let mut charger = Charger::connect(&gateway.ocpp_url, id, &[subprotocol])
        .await
        .unwrap();
    charger.boot().await.unwrap();
    charger
}

/// Cut off from the gateway, a charger decides each token from its list alone; that must be
/// what the gateway answers online, token by token.
async fn assert_offline_agrees_with_online(
    charger: &mut Charger,
    list: &ChargerList,
    tokens: &[&str],
) {
    let subprotocol = charger.subprotocol.clone();
    for token in tokens {
        let online = authorize(charger, token).await["status"] == "Accepted";
        assert_eq!(
            list.lets_charge(token),
            online,
            "{subprotocol}: offline and online disagree on {token}"
        );
    }
}

async fn authorize(charger: &mut Charger, token: &str) -> Value {
    if charger.is_v16() {
        let answer = charger
            .call_ok("Authorize", json!({"idTag": token}))
            .await
            .unwrap();
        answer["idTagInfo"].clone()
    } else {
        let answer = charger
            .call_ok(
                "Authorize",
                json!({"idToken": {"idToken": token, "type": "ISO14443"}}),
            )
            .await
            .unwrap();
        answer["idTokenInfo"].clone()
    }
}

#[tokio::test]
async fn a_role_change_reaches_the_list_and_a_blocked_token_is_listed_blocked() {
    let (gateway, admin) = estate(syncing()).await;
    let mut charger = connect(&gateway, "ZAP-1", "ocpp1.6").await;
    let mut list = first_sync(&mut charger, 0).await;
    assert_eq!(list.version, 1);
    assert_eq!(list.tokens(), ["RFID-DANA"]);

    let added = grant_erik_and_take_his_card(
        &admin,
        &mut charger,
        &mut list,
        "a role granted adds its holder's card",
    )
    .await;
    assert_eq!(added["listVersion"], 2);
    charger
        .quiet(QUIET)
        .await
        .unwrap_or_else(|e| panic!("adding a token needs no cache clearing: {e}"));

    admin
        .post("/api/v1/id-tokens/RFID-DANA/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    let blocked = accept_differential(
        &mut charger,
        &mut list,
        json!([{"idTag": "RFID-DANA", "idTagInfo": {"status": "Blocked"}}]),
        "a blocked card stays listed, as Blocked",
    )
    .await;
    assert_eq!(blocked["listVersion"], 3);
    let (id, _) = expect_call(&mut charger, "ClearCache").await;
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    assert_eq!(list.tokens(), ["RFID-DANA", "RFID-ERIK"]);
    assert!(!list.lets_charge("RFID-DANA"));
    assert_eq!(
        authorize(&mut charger, "RFID-DANA").await["status"],
        "Blocked"
    );

    // Taking erik's role away removes his token too.
    admin
        .delete(
            "/api/v1/assignments",
            json!({"principal": "erik", "role": "user", "scope": "inst-1"}),
        )
        .await
        .unwrap()
        .expect(200);
    let (id, revoked) = expect_call(&mut charger, "SendLocalList").await;
    assert_eq!(revoked["listVersion"], 4);
    list.apply(&revoked, true);
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    let (id, _) = expect_call(&mut charger, "ClearCache").await;
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    assert_eq!(list.tokens(), ["RFID-DANA"]);

    let audit = admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let sent_by_system = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["principal"] == "system" && e["action"] == "command.send-local-list")
        .count();
    assert_eq!(sent_by_system, 4, "every list update is audited");
    let metrics = crate::metrics(&gateway.api_url).await;
    assert!(
        metrics.contains(
            r#"voltgate_local_list_syncs_total{kind="differential",outcome="accepted"} 3"#
        ),
        "{metrics}"
    );
}

/// Only a change that can touch a list recomputes every list: a scope or charger added (a
/// new leaf; a registration ramp would otherwise recompute the whole estate per charger) and
/// a role given to someone who holds no card change no list, so no round runs for them; a
/// role given to a card holder does.
#[tokio::test]
async fn only_changes_that_can_touch_a_list_recompute_every_list() {
    let (gateway, admin) = estate(syncing()).await;
    let mut charger = connect(&gateway, "ZAP-1", "ocpp1.6").await;
    let mut list = first_sync(&mut charger, 0).await;
    charger
        .quiet(QUIET)
        .await
        .unwrap_or_else(|e| panic!("the first sync is complete: {e}"));
    let rounds = || async {
        crate::metric(
            &crate::metrics(&gateway.api_url).await,
            "voltgate_local_list_round_seconds_count",
        )
    };
    let before = rounds().await;

    admin
        .scope("inst-3", "installation", "root")
        .await
        .unwrap()
        .expect(201);
    admin.charger("ZAP-3", "inst-3").await.unwrap().expect(201);
    admin.charger("ZAP-4", "inst-1").await.unwrap().expect(201);
    admin
        .principal("pia", "driver", "inst-1")
        .await
        .unwrap()
        .expect(201);
    admin
        .assign("pia", "user", "inst-1")
        .await
        .unwrap()
        .expect(201);
    // Past the debounce and the sync task's own recheck.
    charger
        .quiet(Duration::from_millis(1500))
        .await
        .unwrap_or_else(|e| panic!("nothing to send: {e}"));
    assert_eq!(rounds().await, before, "no list was recomputed");

    grant_erik_and_take_his_card(
        &admin,
        &mut charger,
        &mut list,
        "a role granted adds its holder's card",
    )
    .await;
    assert!(rounds().await > before, "the rule change was a round");
}

/// A charger that did not install an update is not vouched for: the next change, even one
/// that touches no card holder, brings it the update again.
#[tokio::test]
async fn an_update_the_charger_refused_is_sent_again_at_the_next_change() {
    let (gateway, admin) = estate(syncing()).await;
    let mut charger = connect(&gateway, "ZAP-1", "ocpp1.6").await;
    let mut list = first_sync(&mut charger, 0).await;
    admin
        .assign("erik", "user", "inst-1")
        .await
        .unwrap()
        .expect(201);
    let (id, refused) = expect_call(&mut charger, "SendLocalList").await;
    assert_eq!(refused["updateType"], "Differential", "{refused}");
    charger.reply(&id, json!({"status": "Failed"})).unwrap();
    charger
        .quiet(Duration::from_millis(1500))
        .await
        .unwrap_or_else(|e| panic!("nothing more until the next change: {e}"));

    admin
        .principal("pia", "driver", "inst-1")
        .await
        .unwrap()
        .expect(201);
    accept_differential(
        &mut charger,
        &mut list,
        json!([{"idTag": "RFID-ERIK", "idTagInfo": {"status": "Accepted"}}]),
        "the refused update, again",
    )
    .await;
    assert_eq!(list.tokens(), ["RFID-DANA", "RFID-ERIK"]);
}

#[tokio::test]
async fn an_offline_charger_decides_from_its_list_as_the_gateway_would() {
    let (gateway, admin) = estate(syncing()).await;
    // More people with different standing at ZAP-1: an expiring card, an expired one, a
    // blocked one, a card of someone who may charge only at inst-2, and a group member.
    for (driver, home, role_scope) in [
        ("fay", "inst-1", Some("inst-1")),
        ("gus", "inst-1", Some("inst-1")),
        ("hal", "inst-1", Some("inst-1")),
        ("ida", "inst-2", Some("inst-2")),
        ("jon", "inst-1", None),
    ] {
        admin
            .principal(driver, "driver", home)
            .await
            .unwrap()
            .expect(201);
        if let Some(scope) = role_scope {
            admin
                .assign(driver, "user", scope)
                .await
                .unwrap()
                .expect(201);
        }
    }
    for (driver, body) in [
        (
            "fay",
            json!({"id_token": "FAY-SOON", "expires_at": "2099-01-01T00:00:00Z", "group": "FLEET-1"}),
        ),
        (
            "gus",
            json!({"id_token": "GUS-OLD", "expires_at": "2001-01-01T00:00:00Z"}),
        ),
        ("hal", json!({"id_token": "HAL-BLOCKED"})),
        ("ida", json!({"id_token": "IDA-ELSEWHERE"})),
        ("jon", json!({"id_token": "JON-MEMBER", "group": "FLEET-1"})),
    ] {
        admin
            .post(&format!("/api/v1/principals/{driver}/id-tokens"), body)
            .await
            .unwrap()
            .expect(201);
    }
    admin
        .post("/api/v1/id-tokens/HAL-BLOCKED/block", json!({}))
        .await
        .unwrap()
        .expect(200);

    for subprotocol in ["ocpp1.6", "ocpp2.0.1"] {
        let mut charger = connect(&gateway, "ZAP-1", subprotocol).await;
        let list = first_sync(&mut charger, 0).await;
        assert_eq!(
            list.tokens(),
            ["FAY-SOON", "GUS-OLD", "HAL-BLOCKED", "RFID-DANA"],
            "{subprotocol}"
        );
        assert_eq!(list.entries["GUS-OLD"].0, "Expired");
        assert_eq!(list.entries["HAL-BLOCKED"].0, "Blocked");
        assert_eq!(
            list.entries["FAY-SOON"].1.as_deref(),
            Some("2099-01-01T00:00:00Z"),
            "the expiry travels with the entry"
        );
        // The charger is now cut off; what it decides alone must match what the gateway
        // answers online, token by token.
        assert_offline_agrees_with_online(
            &mut charger,
            &list,
            &[
                "RFID-DANA",
                "RFID-ERIK",
                "FAY-SOON",
                "GUS-OLD",
                "HAL-BLOCKED",
                "IDA-ELSEWHERE",
                "JON-MEMBER",
                "NOBODY",
            ],
        )
        .await;
        drop(charger);
    }
}

#[tokio::test]
async fn a_restarted_gateway_continues_with_differential_updates() {
    let (gateway, admin) = estate(syncing()).await;
    let mut charger = connect(&gateway, "ZAP-1", "ocpp2.0.1").await;
    let mut list = first_sync(&mut charger, 0).await;
    assert_eq!(list.tokens(), ["RFID-DANA"]);
    assert_eq!(list.version, 1);
    drop(charger);
    // The gateway stores what the charger holds once it has its answer: wait for that before
    // the kill (a kill before it means a full list next time, which is safe but not this test).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gateway.output().contains("local list installed") {
        assert!(Instant::now() < deadline, "{}", gateway.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The charger is away while erik gets his role; then the gateway restarts.
    admin
        .assign("erik", "user", "inst-1")
        .await
        .unwrap()
        .expect(201);
    let workdir = gateway.kill();
    let gateway = Gateway::start_in(syncing(), workdir).unwrap();

    let mut charger = connect(&gateway, "ZAP-1", "ocpp2.0.1").await;
    let (id, _) = expect_call(&mut charger, "GetLocalListVersion").await;
    charger
        .reply(&id, json!({"versionNumber": list.version}))
        .unwrap();
    answer_limits(&mut charger, None, None).await;
    let (id, update) = expect_call(&mut charger, "SendLocalList").await;
    assert_eq!(update["updateType"], "Differential", "{update}");
    assert_eq!(update["versionNumber"], 2);
    assert_eq!(
        update["localAuthorizationList"],
        json!([{"idToken": {"idToken": "RFID-ERIK", "type": "ISO14443"},
                "idTokenInfo": {"status": "Accepted"}}])
    );
    list.apply(&update, false);
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    assert_eq!(list.tokens(), ["RFID-DANA", "RFID-ERIK"]);
}

#[tokio::test]
async fn a_token_type_change_replaces_the_2_0_1_entry_in_a_differential() {
    let (gateway, admin) = estate(syncing()).await;
    let mut charger = connect(&gateway, "ZAP-1", "ocpp2.0.1").await;
    let list = first_sync(&mut charger, 0).await;
    assert_eq!(list.tokens(), ["RFID-DANA"]);

    admin
        .patch("/api/v1/id-tokens/RFID-DANA", json!({"type": "ISO15693"}))
        .await
        .unwrap()
        .expect(200);
    let (id, update) = expect_call(&mut charger, "SendLocalList").await;
    assert_eq!(update["updateType"], "Differential", "{update}");
    assert_eq!(update["versionNumber"], 2);
    assert_eq!(
        update["localAuthorizationList"],
        json!([{"idToken": {"idToken": "RFID-DANA", "type": "ISO14443"}},
               {"idToken": {"idToken": "RFID-DANA", "type": "ISO15693"},
                "idTokenInfo": {"status": "Accepted"}}]),
        "the old pair leaves and the typed one arrives"
    );
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    let (id, _) = expect_call(&mut charger, "ClearCache").await;
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();

    admin
        .patch("/api/v1/id-tokens/RFID-DANA", json!({"blocked": false}))
        .await
        .unwrap()
        .expect(200);
    charger
        .quiet(QUIET)
        .await
        .unwrap_or_else(|e| panic!("an unchanged type sends nothing: {e}"));
    // The sync task works through changes in order: the next change's update must be the
    // next CALL, so anything the unchanged type did send late shows up first.
    admin
        .id_token("dana", "DANA-LAST")
        .await
        .unwrap()
        .expect(201);
    let (_, next) = expect_call(&mut charger, "SendLocalList").await;
    assert_eq!(
        next["localAuthorizationList"][0]["idToken"]["idToken"], "DANA-LAST",
        "{next}"
    );
}

#[tokio::test]
async fn a_charger_without_local_lists_is_left_alone_but_its_cache_is_cleared() {
    let (gateway, admin) = estate(syncing()).await;
    let mut charger = connect(&gateway, "ZAP-1", "ocpp1.6").await;
    let (id, _) = expect_call(&mut charger, "GetLocalListVersion").await;
    charger
        .reply_error(&id, "NotSupported", "no local list here")
        .unwrap();
    charger.quiet(QUIET).await.unwrap_or_else(|e| {
        panic!("no list is sent to a charger that does not support lists: {e}")
    });
    admin
        .assign("erik", "user", "inst-1")
        .await
        .unwrap()
        .expect(201);
    charger
        .quiet(QUIET * 2)
        .await
        .unwrap_or_else(|e| panic!("an addition needs nothing: {e}"));
    admin
        .post("/api/v1/principals/dana/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    let (id, _) = expect_call(&mut charger, "ClearCache").await;
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    charger.quiet(QUIET).await.unwrap();
    // The next tightening's ClearCache must be the next CALL: nothing came late.
    admin
        .post("/api/v1/principals/erik/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    let (id, _) = expect_call(&mut charger, "ClearCache").await;
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
}

#[tokio::test]
async fn expired_blocked_and_group_tokens_are_answered_in_both_versions() {
    let (gateway, admin) = estate(GatewayOptions::preset("zaptec")).await;
    admin
        .post(
            "/api/v1/principals/dana/id-tokens",
            json!({"id_token": "DANA-FLEET", "expires_at": "2099-06-01T00:00:00Z", "group": "FLEET-9"}),
        )
        .await
        .unwrap()
        .expect(201);
    admin
        .post(
            "/api/v1/principals/dana/id-tokens",
            json!({"id_token": "DANA-OLD", "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await
        .unwrap()
        .expect(201);
    admin.charger("ZAP-3", "inst-1").await.unwrap().expect(201);
    let mut v16 = connect(&gateway, "ZAP-1", "ocpp1.6").await;
    let mut v201 = connect(&gateway, "ZAP-3", "ocpp2.0.1").await;

    let fleet = authorize(&mut v16, "DANA-FLEET").await;
    assert_eq!(
        fleet,
        json!({"status": "Accepted", "expiryDate": "2099-06-01T00:00:00Z", "parentIdTag": "FLEET-9"})
    );
    let fleet = authorize(&mut v201, "DANA-FLEET").await;
    assert_eq!(
        fleet,
        json!({"status": "Accepted", "cacheExpiryDateTime": "2099-06-01T00:00:00Z",
               "groupIdToken": {"idToken": "FLEET-9", "type": "Central"}})
    );
    for charger in [&mut v16, &mut v201] {
        assert_eq!(authorize(charger, "DANA-OLD").await["status"], "Expired");
        assert_eq!(authorize(charger, "RFID-DANA").await["status"], "Accepted");
    }

    admin
        .patch(
            "/api/v1/id-tokens/RFID-DANA",
            json!({"expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await
        .unwrap()
        .expect(200);
    assert_eq!(authorize(&mut v16, "RFID-DANA").await["status"], "Expired");
    admin
        .patch("/api/v1/id-tokens/RFID-DANA", json!({"expires_at": null}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(
        authorize(&mut v201, "RFID-DANA").await["status"],
        "Accepted"
    );

    admin
        .post("/api/v1/id-tokens/RFID-DANA/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    for charger in [&mut v16, &mut v201] {
        assert_eq!(authorize(charger, "RFID-DANA").await["status"], "Blocked");
    }
    // A blocked token also refuses a start; the session is still recorded (the charger
    // already started it) and the answer tells the charger to stop.
    let start = v16
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "RFID-DANA", "meterStart": 0,
                   "timestamp": "2026-01-01T00:00:00Z"}),
        )
        .await
        .unwrap();
    assert_eq!(start["idTagInfo"]["status"], "Blocked");
    admin
        .post("/api/v1/id-tokens/RFID-DANA/unblock", json!({}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(authorize(&mut v16, "RFID-DANA").await["status"], "Accepted");

    // Without the flag nothing but answers reaches the chargers.
    v16.quiet(QUIET).await.unwrap();
    crate::backstop(&admin, &mut v16).await;
}

/// dana holds five tokens: RFID-DANA and DANA-2 to DANA-5.
async fn five_tokens_for_dana(admin: &Api) {
    for tag in ["DANA-2", "DANA-3", "DANA-4", "DANA-5"] {
        admin.id_token("dana", tag).await.unwrap().expect(201);
    }
}

/// Offline, the charger must never let a token charge that the gateway refuses online.
async fn assert_offline_never_grants_more(
    charger: &mut Charger,
    list: &ChargerList,
    tokens: &[&str],
) -> Vec<String> {
    let mut offline_refused_online_accepted = Vec::new();
    for token in tokens {
        let online = authorize(charger, token).await["status"] == "Accepted";
        let offline = list.lets_charge(token);
        assert!(
            online || !offline,
            "{token} is refused online but the charger would accept it offline"
        );
        if online && !offline {
            offline_refused_online_accepted.push((*token).to_owned());
        }
    }
    offline_refused_online_accepted
}

#[tokio::test]
async fn a_list_larger_than_one_message_goes_as_full_then_differentials() {
    let (gateway, admin) = estate(syncing()).await;
    five_tokens_for_dana(&admin).await;
    for subprotocol in ["ocpp1.6", "ocpp2.0.1"] {
        let mut charger = connect(&gateway, "ZAP-1", subprotocol).await;
        let v16 = charger.is_v16();
        let (id, _) = expect_call(&mut charger, "GetLocalListVersion").await;
        let field = if v16 { "listVersion" } else { "versionNumber" };
        charger.reply(&id, json!({ field: 0 })).unwrap();
        answer_limits(&mut charger, Some(2), None).await;

        let mut list = ChargerList::default();
        let mut received = Vec::new();
        let mut versions = Vec::new();
        for _ in 0..3 {
            let (id, payload) = expect_call(&mut charger, "SendLocalList").await;
            let tokens: Vec<String> = payload["localAuthorizationList"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    let token = if v16 {
                        &e["idTag"]
                    } else {
                        &e["idToken"]["idToken"]
                    };
                    token.as_str().unwrap().to_owned()
                })
                .collect();
            received.push((payload["updateType"].as_str().unwrap().to_owned(), tokens));
            versions.push(payload[field].as_i64().unwrap());
            list.apply(&payload, v16);
            charger.reply(&id, json!({"status": "Accepted"})).unwrap();
        }
        let expected: Vec<(String, Vec<String>)> = [
            ("Full", vec!["DANA-2", "DANA-3"]),
            ("Differential", vec!["DANA-4", "DANA-5"]),
            ("Differential", vec!["RFID-DANA"]),
        ]
        .into_iter()
        .map(|(kind, tokens)| {
            (
                kind.to_owned(),
                tokens.into_iter().map(str::to_owned).collect(),
            )
        })
        .collect();
        assert_eq!(received, expected, "{subprotocol}");
        assert_eq!(
            versions,
            [versions[0], versions[0] + 1, versions[0] + 2],
            "{subprotocol}: every piece raises the version"
        );
        charger.quiet(QUIET).await.unwrap_or_else(|e| {
            panic!("{subprotocol}: nothing more once the list is complete: {e}")
        });
        crate::backstop(&admin, &mut charger).await;
        assert_eq!(
            list.tokens(),
            ["DANA-2", "DANA-3", "DANA-4", "DANA-5", "RFID-DANA"]
        );
        // Cut off now, the charger decides every token as the gateway does online.
        assert_offline_agrees_with_online(
            &mut charger,
            &list,
            &[
                "RFID-DANA",
                "DANA-2",
                "DANA-3",
                "DANA-4",
                "DANA-5",
                "RFID-ERIK",
                "NOBODY",
            ],
        )
        .await;
        drop(charger);
    }
}

#[tokio::test]
async fn a_list_larger_than_the_charger_holds_is_cut_without_granting_anything() {
    let (gateway, admin) = estate(syncing()).await;
    five_tokens_for_dana(&admin).await;
    admin.id_token("erik", "ERIK-2").await.unwrap().expect(201);
    admin
        .post("/api/v1/id-tokens/DANA-3/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    let mut charger = connect(&gateway, "ZAP-1", "ocpp1.6").await;
    let (id, _) = expect_call(&mut charger, "GetLocalListVersion").await;
    charger.reply(&id, json!({"listVersion": 0})).unwrap();
    answer_limits(&mut charger, None, Some(3)).await;
    let (id, full) = expect_call(&mut charger, "SendLocalList").await;
    assert_eq!(full["updateType"], "Full");
    let mut list = ChargerList::default();
    list.apply(&full, true);
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    // Four tokens may charge and DANA-3 is blocked: the refusal first, then the first two
    // acceptances in token order.
    assert_eq!(list.tokens(), ["DANA-2", "DANA-3", "DANA-4"]);
    assert_eq!(list.entries["DANA-3"].0, "Blocked");
    let everyone = [
        "RFID-DANA",
        "DANA-2",
        "DANA-3",
        "DANA-4",
        "DANA-5",
        "RFID-ERIK",
        "ERIK-2",
        "NOBODY",
    ];
    let online_only = assert_offline_never_grants_more(&mut charger, &list, &everyone).await;
    assert_eq!(
        online_only,
        ["RFID-DANA", "DANA-5"],
        "what did not fit is authorised online"
    );

    // A new token that sorts first takes the place of the last kept one; nothing was taken
    // away by the rules, so the cache stays.
    admin.id_token("dana", "DANA-1").await.unwrap().expect(201);
    accept_differential(
        &mut charger,
        &mut list,
        json!([{"idTag": "DANA-4"}, {"idTag": "DANA-1", "idTagInfo": {"status": "Accepted"}}]),
        "the removal comes first",
    )
    .await;
    charger
        .quiet(QUIET)
        .await
        .unwrap_or_else(|e| panic!("a cut for capacity clears no cache: {e}"));
    assert_eq!(list.tokens(), ["DANA-1", "DANA-2", "DANA-3"]);

    // Taking dana's role away empties the list and clears the cache.
    admin
        .delete(
            "/api/v1/assignments",
            json!({"principal": "dana", "role": "user", "scope": "inst-1"}),
        )
        .await
        .unwrap()
        .expect(200);
    let (id, revoked) = expect_call(&mut charger, "SendLocalList").await;
    list.apply(&revoked, true);
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    let (id, _) = expect_call(&mut charger, "ClearCache").await;
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    assert!(list.tokens().is_empty());
    let mut all = everyone.to_vec();
    all.push("DANA-1");
    let online_only = assert_offline_never_grants_more(&mut charger, &list, &all).await;
    assert!(online_only.is_empty(), "{online_only:?}");

    let metrics = crate::metrics(&gateway.api_url).await;
    assert!(
        metrics.contains(r#"voltgate_local_list_entries_left_out_total{reason="capacity"} 5"#),
        "two left out by the full list, three by the swap: {metrics}"
    );
}

/// In a cluster the node holding a charger keeps its list: cards and roles changed through
/// another node reach it as one differential each, sent by the holder alone.
#[tokio::test]
async fn changes_made_through_another_node_reach_the_list_the_holder_keeps() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let node = |id: &str| {
        Gateway::start(
            syncing()
                .db(&db)
                .arg("--cluster")
                .arg(&nats.url())
                .arg("--node-id")
                .arg(id),
        )
        .unwrap_or_else(|err| panic!("node {id} starts: {err:#}"))
    };
    let one = node("one");
    let two = node("two");
    let admin = one.api();
    seed(&admin).await;
    let mut charger = connect(&two, "ZAP-1", "ocpp1.6").await;
    let mut list = first_sync(&mut charger, 0).await;
    assert_eq!(list.tokens(), ["RFID-DANA"]);

    // A card (no engine change on the holder, only what derives from cards).
    admin
        .id_token("dana", "RFID-DANA-2")
        .await
        .unwrap()
        .expect(201);
    accept_differential(
        &mut charger,
        &mut list,
        json!([{"idTag": "RFID-DANA-2", "idTagInfo": {"status": "Accepted"}}]),
        "a card added through node one",
    )
    .await;

    // A role (a rule change the holder replays).
    grant_erik_and_take_his_card(
        &admin,
        &mut charger,
        &mut list,
        "a role granted through node one",
    )
    .await;
    assert_eq!(list.tokens(), ["RFID-DANA", "RFID-DANA-2", "RFID-ERIK"]);
    charger
        .quiet(QUIET)
        .await
        .unwrap_or_else(|e| panic!("one update per change, from the holder only: {e}"));
}
