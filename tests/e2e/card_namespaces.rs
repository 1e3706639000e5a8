//! Card namespaces and existence oracles (issue #14 finding 7, issue #20 finding 9): a card text
//! is claimed per tenant, so one tenant can neither squat a text another needs nor learn that
//! another has it; a charger finds the card of its own tenant; ids that stay global (principals,
//! scopes, chargers) clash with an invisible owner exactly as with a visible one; and a pending
//! charger's flag, kept in memory, still follows approval at once and survives a restart.
//!
//! The estate is the `connect` preset with two tenants, site-a and site-b, a site admin of each
//! (`admin-a`, `admin-b`), drivers `ann` and `amy` (site-a), `bob` (site-b) and `rex` (root),
//! each allowed to charge at their home site (rex everywhere).

use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::{Api, Charger, Gateway, GatewayOptions};

struct Tenants {
    gateway: Gateway,
    root: Api,
    admin_a: Api,
    admin_b: Api,
}

async fn tenants() -> Tenants {
    let gateway = Gateway::start(GatewayOptions::preset("connect")).expect("gateway starts");
    let root = gateway.api();
    for id in ["site-a", "site-b"] {
        root.scope(id, "site", "root").await.unwrap().expect(201);
    }
    root.post(
        "/api/v1/roles",
        json!({"id": "driver", "permissions": ["charge-at-sites"]}),
    )
    .await
    .unwrap()
    .expect(201);
    for (id, home) in [("admin-a", "site-a"), ("admin-b", "site-b")] {
        root.principal(id, "operator", home)
            .await
            .unwrap()
            .expect(201);
        root.assign(id, "site-admin", home)
            .await
            .unwrap()
            .expect(201);
    }
    for (id, home) in [
        ("ann", "site-a"),
        ("amy", "site-a"),
        ("bob", "site-b"),
        ("rex", "root"),
    ] {
        root.principal(id, "driver", home)
            .await
            .unwrap()
            .expect(201);
        root.assign(id, "driver", home).await.unwrap().expect(201);
    }
    for (charger, site) in [("CP-A", "site-a"), ("CP-B", "site-b")] {
        root.charger(charger, site).await.unwrap().expect(201);
    }
    let admin_a = gateway.api_as(&root.token_for("admin-a").await.unwrap());
    let admin_b = gateway.api_as(&root.token_for("admin-b").await.unwrap());
    Tenants {
        gateway,
        root,
        admin_a,
        admin_b,
    }
}

async fn connect(gateway: &Gateway, id: &str) -> Charger {
    let mut charger = Charger::connect(&gateway.ocpp_url, id, &["ocpp1.6"])
        .await
        .expect("charger connects");
    charger.boot().await.expect("boot answered");
    charger
}

async fn authorize(charger: &mut Charger, token: &str) -> Value {
    let answer = charger
        .call_ok("Authorize", json!({"idTag": token}))
        .await
        .unwrap();
    answer["idTagInfo"].clone()
}

/// The principal the gateway audited the last `charge` decision at `charger` under (the log
/// lists the newest first).
async fn last_charge_principal(root: &Api, charger: &str) -> String {
    let audit = root
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "charge" && e["resource"] == charger)
        .and_then(|e| e["principal"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn two_tenants_hold_one_card_text_and_each_charger_finds_its_own() {
    let tenants = tenants().await;
    let (root, admin_a, admin_b) = (&tenants.root, &tenants.admin_a, &tenants.admin_b);

    admin_a
        .id_token("ann", "SHARED-1")
        .await
        .unwrap()
        .expect(201);
    // Another tenant's card is no clash: site-b can register the text site-a holds.
    let bobs = admin_b
        .id_token("bob", "shared-1")
        .await
        .unwrap()
        .expect(201);
    assert_eq!(bobs.body["id_token"], "SHARED-1", "{}", bobs.text);
    // Within one tenant the text is taken, and the refusal names no holder.
    let taken = admin_a
        .id_token("amy", "SHARED-1")
        .await
        .unwrap()
        .expect(409);
    assert!(!taken.text.contains("ann"), "{}", taken.text);
    // Root-level principals are a namespace of their own.
    root.id_token("rex", "SHARED-1").await.unwrap().expect(201);
    root.id_token("rex", "REX-ONLY").await.unwrap().expect(201);

    let mut cp_a = connect(&tenants.gateway, "CP-A").await;
    let mut cp_b = connect(&tenants.gateway, "CP-B").await;
    assert_eq!(authorize(&mut cp_a, "shared-1").await["status"], "Accepted");
    assert_eq!(last_charge_principal(root, "CP-A").await, "ann");
    assert_eq!(authorize(&mut cp_b, "SHARED-1").await["status"], "Accepted");
    assert_eq!(last_charge_principal(root, "CP-B").await, "bob");
    // A root-level card no tenant card shadows is found in every tenant.
    assert_eq!(authorize(&mut cp_b, "REX-ONLY").await["status"], "Accepted");

    // Each site admin addresses its own tenant's card by the text alone.
    let blocked = admin_a
        .post("/api/v1/id-tokens/shared-1/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(blocked.body["principal"], "ann", "{}", blocked.text);
    assert_eq!(authorize(&mut cp_a, "SHARED-1").await["status"], "Blocked");
    assert_eq!(authorize(&mut cp_b, "SHARED-1").await["status"], "Accepted");
    // Who sees several holders names one.
    let ambiguous = root
        .patch("/api/v1/id-tokens/SHARED-1", json!({"blocked": true}))
        .await
        .unwrap()
        .expect(409);
    assert_eq!(
        ambiguous.body["error"], "ambiguous_id_token",
        "{}",
        ambiguous.text
    );
    let patched = root
        .patch(
            "/api/v1/id-tokens/SHARED-1?principal=rex",
            json!({"group": "fleet"}),
        )
        .await
        .unwrap()
        .expect(200);
    assert_eq!(patched.body["principal"], "rex", "{}", patched.text);

    // A remote start in site-b takes site-b's card, not site-a's blocked one.
    let start = {
        let api = admin_b.clone();
        tokio::spawn(async move {
            api.command(
                "CP-B",
                "remote-start",
                json!({"connector": 1, "id_token": "SHARED-1"}),
            )
            .await
            .unwrap()
        })
    };
    let (message_id, action, payload) = cp_b
        .next_call(Duration::from_secs(10))
        .await
        .expect("the remote start reaches the charger");
    assert_eq!(action, "RemoteStartTransaction");
    assert_eq!(payload["idTag"], "SHARED-1");
    cp_b.reply(&message_id, json!({"status": "Accepted"}))
        .unwrap();
    start.await.unwrap().expect(200);
    let started = cp_b
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "SHARED-1", "meterStart": 0,
                   "timestamp": "2026-12-06T10:00:00Z"}),
        )
        .await
        .unwrap();
    assert_eq!(started["idTagInfo"]["status"], "Accepted");
    let sessions = admin_b
        .get("/api/v1/transactions")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(
        sessions.body["transactions"][0]["principal"], "bob",
        "{}",
        sessions.text
    );

    // Deleting one tenant's card leaves the other's.
    root.delete("/api/v1/id-tokens/SHARED-1?principal=bob", json!(null))
        .await
        .unwrap()
        .expect(204);
    assert_eq!(authorize(&mut cp_b, "SHARED-1").await["status"], "Accepted");
    assert_eq!(last_charge_principal(root, "CP-B").await, "rex");
    let anns = admin_a
        .get("/api/v1/principals/ann/id-tokens")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(anns.body["id_tokens"][0]["id_token"], "SHARED-1");
}

/// What a caller gets back for `/id-tokens/{card}`, with the card's text masked, and how many
/// audit records the request left.
async fn card_probe(root: &Api, caller: &Api, card: &str) -> (u16, String, usize) {
    let count = || async {
        root.get("/api/v1/audit?limit=1000")
            .await
            .unwrap()
            .expect(200)
            .body["entries"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = count().await;
    let reply = caller
        .patch(
            &format!("/api/v1/id-tokens/{card}"),
            json!({"blocked": true}),
        )
        .await
        .unwrap();
    let body = json!({"error": reply.body["error"], "message": reply.body["message"]})
        .to_string()
        .replace(card, "<card>");
    (reply.status, body, count().await - before)
}

#[tokio::test]
async fn an_invisible_card_is_answered_and_audited_like_an_unknown_one() {
    let tenants = tenants().await;
    let root = &tenants.root;
    root.id_token("bob", "BOB-ONLY").await.unwrap().expect(201);
    let invisible = card_probe(root, &tenants.admin_a, "BOB-ONLY").await;
    let unknown = card_probe(root, &tenants.admin_a, "NOBODY-CARD").await;
    assert_eq!(invisible, unknown);
    assert_eq!(invisible.0, 404, "{invisible:?}");

    let mut cp_a = connect(&tenants.gateway, "CP-A").await;
    assert_eq!(
        authorize(&mut cp_a, "BOB-ONLY").await,
        authorize(&mut cp_a, "NOBODY-CARD").await
    );
}

/// A create request's answer, with `id` masked.
async fn create_answer(caller: &Api, path: &str, id: &str, body: Value) -> (u16, String) {
    let reply = caller.post(path, body).await.unwrap();
    (reply.status, reply.text.replace(id, "<id>"))
}

#[tokio::test]
async fn a_clash_with_an_invisible_id_is_answered_like_one_with_a_visible_id() {
    let tenants = tenants().await;
    let (root, admin_a) = (&tenants.root, &tenants.admin_a);
    // Visible to admin-a: ann, site-a's scopes, CP-A. Invisible: bob, site-b's, CP-B, and
    // `gone`, a principal of site-b deleted since.
    root.scope("b-north", "site", "site-b")
        .await
        .unwrap()
        .expect(201);
    root.scope("a-north", "site", "site-a")
        .await
        .unwrap()
        .expect(201);
    root.principal("gone", "operator", "site-b")
        .await
        .unwrap()
        .expect(201);
    root.delete("/api/v1/principals/gone", json!(null))
        .await
        .unwrap()
        .expect(204);

    let principal = |id: &'static str| {
        create_answer(
            admin_a,
            "/api/v1/principals",
            id,
            json!({"id": id, "kind": "operator", "home_scope": "site-a"}),
        )
    };
    let visible = principal("ann").await;
    assert_eq!(visible.0, 409, "{visible:?}");
    for id in ["bob", "gone"] {
        assert_eq!(principal(id).await, visible, "{id}");
    }
    let scope = |id: &'static str| {
        create_answer(
            admin_a,
            "/api/v1/scopes",
            id,
            json!({"id": id, "kind": "site", "parent": "site-a"}),
        )
    };
    let visible = scope("a-north").await;
    assert_eq!(visible.0, 409, "{visible:?}");
    assert_eq!(scope("b-north").await, visible);
    let charger = |id: &'static str| {
        create_answer(
            admin_a,
            "/api/v1/chargers",
            id,
            json!({"id": id, "scope": "site-a"}),
        )
    };
    let visible = charger("CP-A").await;
    assert_eq!(visible.0, 409, "{visible:?}");
    assert_eq!(charger("CP-B").await, visible);
    for (status, text) in [visible, principal("gone").await, scope("b-north").await] {
        assert!(
            !text.contains("site-b") && !text.contains("deleted"),
            "{status}: {text}"
        );
    }
}

/// The pending mark is read from memory now: approval still takes effect at the next card, and
/// a restart keeps a charger pending until it is approved.
#[tokio::test]
async fn a_pending_charger_stays_pending_across_a_restart_and_approval_takes_effect_at_once() {
    let options = || {
        GatewayOptions::preset("connect")
            .arg("--auto-register")
            .arg("site-a")
    };
    let gateway = Gateway::start(options()).unwrap();
    let root = gateway.api();
    root.scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    root.charging_driver("driver", "ann", "site-a")
        .await
        .unwrap();
    root.id_token("ann", "ANN-1").await.unwrap().expect(201);
    let mut charger = connect(&gateway, "NEW-1").await;
    assert_eq!(authorize(&mut charger, "ANN-1").await["status"], "Invalid");
    drop(charger);

    let workdir = gateway.kill();
    let gateway = Gateway::start_in(options(), workdir).unwrap();
    let root = gateway.api();
    let mut charger = connect(&gateway, "NEW-1").await;
    assert_eq!(
        authorize(&mut charger, "ANN-1").await["status"],
        "Invalid",
        "still pending after the restart"
    );
    root.post("/api/v1/chargers/NEW-1/approve", json!({}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(authorize(&mut charger, "ANN-1").await["status"], "Accepted");
}
