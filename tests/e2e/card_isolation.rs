//! Id tokens (RFID cards) across tenants: what a charger, a remote start and the records of one
//! site learn about a card of another (issues #14, #19 and #20 of the security review).
//!
//! The estate is the `connect` preset with two tenants: site-a (with sub-site a1) and site-b,
//! a site admin of each, a global admin homed on site-a, and drivers with cards in each site
//! and on the root.

use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::{Api, Charger, Gateway, GatewayOptions};

use crate::QUIET;

struct Tenants {
    gateway: Gateway,
    /// The bootstrap admin (root).
    root: Api,
    admin_a: Api,
}

/// Drivers, their home, the scope of their `driver` role and their card.
const DRIVERS: &[(&str, &str, &str, &str)] = &[
    ("ann", "site-a", "site-a", "ANN-CARD"),
    ("al", "a1", "a1", "AL-CARD"),
    ("bob", "site-b", "site-b", "BOB-CARD"),
    ("rita", "root", "root", "RITA-CARD"),
];

async fn tenants(extra_args: &[&str]) -> Tenants {
    let mut options = GatewayOptions::preset("connect");
    for arg in extra_args {
        options = options.arg(arg);
    }
    let gateway = Gateway::start(options).expect("gateway starts");
    let root = gateway.api();
    for (id, parent) in [
        ("site-a", "root"),
        ("a1", "site-a"),
        ("site-b", "root"),
        ("b1", "site-b"),
    ] {
        root.scope(id, "site", parent).await.unwrap().expect(201);
    }
    root.post(
        "/api/v1/roles",
        json!({"id": "driver", "permissions": ["charge-at-sites"]}),
    )
    .await
    .unwrap()
    .expect(201);
    for (id, home, role, at) in [
        ("admin-a", "site-a", "site-admin", "site-a"),
        ("admin-b", "site-b", "site-admin", "site-b"),
        ("gus", "site-a", "global-admin", "root"),
    ] {
        root.principal(id, "operator", home)
            .await
            .unwrap()
            .expect(201);
        root.assign(id, role, at).await.unwrap().expect(201);
    }
    root.id_token("gus", "GUS-CARD").await.unwrap().expect(201);
    for (id, home, at, card) in DRIVERS {
        root.principal(id, "driver", home)
            .await
            .unwrap()
            .expect(201);
        root.assign(id, "driver", at).await.unwrap().expect(201);
        root.id_token(id, card).await.unwrap().expect(201);
    }
    let admin_a = gateway.api_as(&root.token_for("admin-a").await.unwrap());
    Tenants {
        gateway,
        root,
        admin_a,
    }
}

impl Tenants {
    async fn charger(&self, id: &str, scope: &str, subprotocol: &str) -> Charger {
        self.root.charger(id, scope).await.unwrap().expect(201);
        let mut charger = Charger::connect(&self.gateway.ocpp_url, id, &[subprotocol])
            .await
            .expect("charger connects");
        charger.boot().await.expect("boot answered");
        charger
    }
}

/// The whole `idTagInfo` / `idTokenInfo` a charger gets for `token`.
async fn authorize(charger: &mut Charger, token: &str) -> Value {
    if charger.is_v16() {
        let answer = charger
            .call_ok("Authorize", json!({"idTag": token}))
            .await
            .unwrap();
        answer["idTagInfo"].clone()
    } else {
        let payload = json!({"idToken": {"idToken": token, "type": "ISO14443"}});
        let answer = charger.call_ok("Authorize", payload).await.unwrap();
        answer["idTokenInfo"].clone()
    }
}

#[tokio::test]
async fn another_tenants_card_is_an_unknown_card_and_leaves_no_trace_of_its_driver() {
    let tenants = tenants(&[]).await;
    let root = &tenants.root;
    root.patch(
        "/api/v1/id-tokens/BOB-CARD",
        json!({"group": "FLEET-B", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await
    .unwrap()
    .expect(200);
    for (token, change) in [
        ("BOB-BLOCKED", json!({"blocked": true})),
        ("BOB-EXPIRED", json!({"expires_at": "2000-01-01T00:00:00Z"})),
    ] {
        root.id_token("bob", token).await.unwrap().expect(201);
        root.patch(&format!("/api/v1/id-tokens/{token}"), change)
            .await
            .unwrap()
            .expect(200);
    }
    let mut legacy = tenants.charger("CP-A", "site-a", "ocpp1.6").await;
    let mut modern = tenants.charger("CP-A2", "site-a", "ocpp2.0.1").await;

    for charger in [&mut legacy, &mut modern] {
        let unknown = authorize(charger, "NOBODY-CARD").await;
        assert_eq!(unknown, json!({"status": "Invalid"}));
        for card in ["BOB-CARD", "BOB-BLOCKED", "BOB-EXPIRED"] {
            assert_eq!(
                authorize(charger, card).await,
                unknown,
                "{card} at a site-a charger must look unknown"
            );
        }
        assert_eq!(authorize(charger, "ANN-CARD").await["status"], "Accepted");
    }
    // A refusal a charger may learn: site-a's own driver, blocked.
    root.post("/api/v1/principals/ann/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(
        authorize(&mut legacy, "ANN-CARD").await["status"],
        "Blocked"
    );

    // Bob's card starts a session at site-a (1.6 and 2.0.1): refused, stored closed and
    // without bob.
    let start = legacy
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "BOB-CARD", "meterStart": 0,
                   "timestamp": "2026-01-01T10:00:00Z"}),
        )
        .await
        .unwrap();
    assert_eq!(start["idTagInfo"], json!({"status": "Invalid"}), "{start}");
    let event = modern
        .call_ok(
            "TransactionEvent",
            json!({"eventType": "Started", "timestamp": "2026-01-01T10:00:00Z",
                   "triggerReason": "Authorized", "seqNo": 0,
                   "transactionInfo": {"transactionId": "tx-1"},
                   "idToken": {"idToken": "BOB-CARD", "type": "ISO14443"},
                   "evse": {"id": 1, "connectorId": 1}}),
        )
        .await
        .unwrap();
    assert_eq!(
        event["idTokenInfo"],
        json!({"status": "Invalid"}),
        "{event}"
    );

    let all = root.get("/api/v1/transactions").await.unwrap().expect(200);
    let sessions = all.body["transactions"].as_array().cloned().unwrap();
    assert_eq!(sessions.len(), 2, "{}", all.text);
    for session in &sessions {
        assert_eq!(session["principal"], Value::Null, "stored with: {session}");
        assert_eq!(session["stop_reason"], "DeAuthorized", "{session}");
        assert!(session["stopped_at"].is_string(), "left open: {session}");
    }
    let active = root
        .get("/api/v1/transactions?active=true")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(active.body["transactions"], json!([]), "{}", active.text);

    for path in ["/api/v1/transactions", "/api/v1/audit?limit=1000"] {
        let seen = tenants.admin_a.get(path).await.unwrap().expect(200);
        assert!(
            seen.text.contains("CP-A"),
            "control: {path} shows site-a's records: {}",
            seen.text
        );
        assert!(
            !seen.text.contains("bob"),
            "{path} names site-b's driver to site-a: {}",
            seen.text
        );
    }
}

#[tokio::test]
async fn a_remote_start_needs_a_card_the_caller_sees_that_may_charge_there() {
    let tenants = tenants(&[]).await;
    let mut charger = tenants.charger("CP-A", "site-a", "ocpp1.6").await;
    let start = |card: &str| {
        let api = tenants.admin_a.clone();
        let body = json!({"connector": 1, "id_token": card});
        async move { api.command("CP-A", "remote-start", body).await.unwrap() }
    };

    for card in ["BOB-CARD", "NOBODY-CARD"] {
        let refused = start(card).await.expect(422);
        assert_eq!(
            refused.body["error"], "unknown_id_token",
            "{}",
            refused.text
        );
        assert!(!refused.text.contains("bob"), "{}", refused.text);
    }
    // al is site-a's driver, but his role is on sub-site a1 only.
    let refused = start("AL-CARD").await.expect(403);
    assert!(refused.text.contains("al"), "{}", refused.text);
    assert!(
        charger.next_call(QUIET).await.is_none(),
        "a refused remote start reached the charger"
    );

    let request = tokio::spawn(start("ANN-CARD"));
    let (message_id, action, payload) = charger
        .next_call(Duration::from_secs(10))
        .await
        .expect("the allowed remote start reaches the charger");
    assert_eq!(action, "RemoteStartTransaction");
    assert_eq!(payload["idTag"], "ANN-CARD");
    charger
        .reply(&message_id, json!({"status": "Accepted"}))
        .unwrap();
    request.await.unwrap().expect(200);

    let audit = tenants
        .root
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let refusals = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["principal"] == "admin-a"
                && e["action"] == "command.remote-start"
                && e["allowed"] == false
        })
        .count();
    assert_eq!(refusals, 3, "every refusal audited: {}", audit.text);
}

/// Virta (seed 003): EV-driver data is for Administrator, Driver manager and Financial
/// support only.
#[tokio::test]
async fn virta_transactions_show_driver_data_only_to_roles_that_may_view_drivers() {
    let gateway = Gateway::start(GatewayOptions::preset("virta")).unwrap();
    let root = gateway.api();
    root.scope("org-1", "organisation", "root")
        .await
        .unwrap()
        .expect(201);
    root.charger("ST-1", "org-1").await.unwrap().expect(201);
    root.principal("dora", "driver", "org-1")
        .await
        .unwrap()
        .expect(201);
    root.id_token("dora", "DORA-CARD")
        .await
        .unwrap()
        .expect(201);
    let mut station = Charger::connect(&gateway.ocpp_url, "ST-1", &["ocpp1.6"])
        .await
        .unwrap();
    station.boot().await.unwrap();
    station
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "DORA-CARD", "meterStart": 0,
                   "timestamp": "2026-01-01T10:00:00Z"}),
        )
        .await
        .unwrap();

    for (role, sees_driver_data) in [
        ("administrator", true),
        ("driver-manager", true),
        ("financial-support", true),
        ("charging-manager", false),
        ("technician", false),
        ("viewer", false),
    ] {
        let who = format!("op-{role}");
        root.principal(&who, "operator", "org-1")
            .await
            .unwrap()
            .expect(201);
        root.assign(&who, role, "org-1").await.unwrap().expect(201);
        let api = gateway.api_as(&root.token_for(&who).await.unwrap());
        let listed = api.get("/api/v1/transactions").await.unwrap().expect(200);
        let sessions = listed.body["transactions"].as_array().cloned().unwrap();
        assert_eq!(
            sessions.len(),
            1,
            "{role} sees the session: {}",
            listed.text
        );
        assert_eq!(
            listed.text.contains("DORA-CARD"),
            sees_driver_data,
            "{role}: {}",
            listed.text
        );
        assert!(!listed.text.contains("dora"), "{role}: {}", listed.text);
    }
}

/// The full local list the gateway installs on a freshly booted 1.6 charger: token → status.
async fn first_list(charger: &mut Charger) -> Vec<(String, String)> {
    let limit = Duration::from_secs(10);
    let (id, action, _) = charger.next_call(limit).await.expect("a version check");
    assert_eq!(action, "GetLocalListVersion");
    charger.reply(&id, json!({"listVersion": 0})).unwrap();
    let (id, action, _) = charger.next_call(limit).await.expect("a limits read");
    assert_eq!(action, "GetConfiguration");
    charger
        .reply(&id, json!({"configurationKey": [], "unknownKey": []}))
        .unwrap();
    let (id, action, payload) = charger.next_call(limit).await.expect("a list");
    assert_eq!(action, "SendLocalList", "{payload}");
    assert_eq!(payload["updateType"], "Full", "{payload}");
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    payload["localAuthorizationList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["idTag"].as_str().unwrap().to_owned(),
                entry["idTagInfo"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_local_list_carries_only_cards_confined_to_the_site_and_keeps_their_refusals() {
    let strict = tenants(&["--local-auth-lists"]).await;
    for (card, change) in [
        ("ANN-BLOCKED", json!({"blocked": true})),
        ("ANN-EXPIRED", json!({"expires_at": "2000-01-01T00:00:00Z"})),
        ("BOB-BLOCKED", json!({"blocked": true})),
    ] {
        let owner = if card.starts_with("ANN") {
            "ann"
        } else {
            "bob"
        };
        strict.root.id_token(owner, card).await.unwrap().expect(201);
        strict
            .root
            .patch(&format!("/api/v1/id-tokens/{card}"), change)
            .await
            .unwrap()
            .expect(200);
    }
    let mut charger = strict.charger("CP-A", "site-a", "ocpp1.6").await;
    let mut list = first_list(&mut charger).await;
    list.sort();
    let expected: Vec<(String, String)> = [
        ("ANN-BLOCKED", "Blocked"),
        ("ANN-CARD", "Accepted"),
        ("ANN-EXPIRED", "Expired"),
    ]
    .iter()
    .map(|(card, status)| ((*card).to_owned(), (*status).to_owned()))
    .collect();
    assert_eq!(
        list, expected,
        "no root driver's, global admin's, sub-site's or other tenant's card"
    );
    // The opt-in lists every card allowed at the charger, the root driver's too.
    let open = tenants(&["--local-auth-lists", "--local-list-max-reach", "any"]).await;
    let mut charger = open.charger("CP-A", "site-a", "ocpp1.6").await;
    let listed: Vec<String> = first_list(&mut charger)
        .await
        .into_iter()
        .map(|(card, _)| card)
        .collect();
    assert!(listed.contains(&"RITA-CARD".to_owned()), "{listed:?}");
    assert!(!listed.contains(&"BOB-CARD".to_owned()), "{listed:?}");
}
