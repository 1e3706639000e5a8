//! Several `voltgate` nodes on one PostgreSQL database and one NATS (`--cluster`): a node id
//! is taken by one live node only; a charger held by one node is commanded through another,
//! with the allow record written by the node that decided; a charger connected nowhere is a
//! 409 at once; a charger that connects to another node is taken over; a change made on one
//! node holds on the others for the next request; 2.0.1 request ids never repeat across nodes;
//! a killed node's chargers come back through the survivors, and transactions in flight when it
//! died are neither lost nor duplicated; without NATS a node keeps its own chargers and answers
//! 503 for the rest, and decides on what the store holds rather than on what it last heard;
//! without PostgreSQL, under a simulator's load, no node answers for what it did not store, and
//! every node recovers by itself.
//!
//! Each test runs its own NATS server (a few milliseconds to start): the nodes of a test see
//! only each other, so one test's killed node never holds up another test's change
//! confirmations, and the propagation figures are this test's alone. All share the test
//! binary's PostgreSQL server, one database per test, except the one that stops its own.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use voltgate_tests::ports::RefusingPort;
use voltgate_tests::{Api, Charger, Gateway, GatewayOptions, NatsServer, PostgresServer, Received};

/// A node of the test's cluster.
fn node(db: &str, nats: &NatsServer, id: &str) -> Gateway {
    try_node(db, &nats.url(), id).unwrap_or_else(|err| panic!("node {id} starts: {err:#}"))
}

fn try_node(db: &str, nats_url: &str, id: &str) -> anyhow::Result<Gateway> {
    Gateway::start(
        GatewayOptions::preset("connect")
            .db(db)
            .arg("--cluster")
            .arg(nats_url)
            .arg("--node-id")
            .arg(id)
            .arg("--command-timeout")
            .arg("3"),
    )
}

/// The driver `dina`, who may charge at `site-a`, with the card `DINA-1` (through `admin`).
async fn dina_with_card(admin: &Api) {
    admin
        .charging_driver("site-driver", "dina", "site-a")
        .await
        .unwrap();
    admin.id_token("dina", "DINA-1").await.unwrap().expect(201);
}

/// A site with the given chargers registered (through `admin`).
async fn estate(admin: &Api, chargers: &[&str]) {
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    for id in chargers {
        admin.charger(id, "site-a").await.unwrap().expect(201);
    }
}

async fn connect(gateway: &Gateway, id: &str, protocol: &str) -> Charger {
    let mut charger = Charger::connect(&gateway.ocpp_url, id, &[protocol])
        .await
        .unwrap();
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
    charger
}

/// `clear-cache` through `api`, answered by `charger`; returns the HTTP reply.
async fn clear_cache(api: &Api, id: &str, charger: &mut Charger) -> voltgate_tests::api::Reply {
    let request = {
        let api = api.clone();
        let id = id.to_owned();
        tokio::spawn(async move { api.command(&id, "clear-cache", json!({})).await })
    };
    let (call, _) = charger
        .expect_call("ClearCache", Duration::from_secs(5))
        .await
        .unwrap();
    charger.reply(&call, json!({"status": "Accepted"})).unwrap();
    request.await.unwrap().unwrap()
}

/// The charger as `api` lists it.
async fn listed(api: &Api, id: &str) -> Value {
    let list = api.get("/api/v1/chargers").await.unwrap().expect(200);
    list.body["chargers"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("`{id}` not listed: {}", list.text))
}

/// Polls until `api` lists the charger as held by `node`.
async fn wait_held_by(api: &Api, id: &str, node: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let charger = listed(api, id).await;
        if charger["connected"] == true && charger["node"] == node {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{id}` not held by {node} after {within:?}: {charger}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_node_id_is_taken_by_one_live_node_and_an_unreachable_nats_is_refused() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let _first = node(&db, &nats, "clash");
    let started = Instant::now();
    let err = match try_node(&db, &nats.url(), "clash") {
        Ok(_) => panic!("a second live node with the same id started"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains("node id `clash` is held by another live node"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");

    // A NATS that is not there: refused at start, quickly, without the password.
    let nothing = RefusingPort::new().unwrap();
    let started = Instant::now();
    let err = match try_node(
        &db,
        &format!("nats://user:s3cret@{}", nothing.authority()),
        "alone",
    ) {
        Ok(_) => panic!("a node started without NATS"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("cannot reach NATS"), "{err}");
    assert!(
        !err.contains("s3cret"),
        "the NATS password was shown: {err}"
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "refused after {took:?}: {err}"
    );
}

#[tokio::test]
async fn a_charger_on_one_node_is_commanded_through_another_in_both_versions() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    estate(&one.api(), &["CP-V16", "CP-V201"]).await;

    for (id, protocol) in [("CP-V16", "ocpp1.6"), ("CP-V201", "ocpp2.0.1")] {
        let mut charger = connect(&one, id, protocol).await;
        wait_held_by(&two.api(), id, "one", Duration::from_secs(2)).await;
        let detail = two
            .api()
            .get(&format!("/api/v1/chargers/{id}"))
            .await
            .unwrap()
            .expect(200);
        assert_eq!(detail.body["node"], "one", "{}", detail.text);
        assert_eq!(detail.body["vendor"], "TestVendor", "{}", detail.text);

        let reply = clear_cache(&two.api(), id, &mut charger).await.expect(200);
        assert_eq!(reply.body["status"], "Accepted", "{}", reply.text);

        // The allow record is the deciding node's, on the shared store.
        let audit = two
            .api()
            .get("/api/v1/audit?limit=1000")
            .await
            .unwrap()
            .expect(200);
        let recorded = audit.body["entries"].as_array().is_some_and(|all| {
            all.iter().any(|e| {
                e["allowed"] == true
                    && e["action"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("command."))
                    && e["resource"].as_str().is_some_and(|r| r.contains(id))
                    && e["outcome"].as_str().is_some_and(|o| o.starts_with("ok"))
            })
        });
        assert!(recorded, "no allow record for {id}: {}", audit.text);

        // A CALLERROR from the charger comes back as 502.
        let request = {
            let api = two.api();
            let id = id.to_owned();
            tokio::spawn(async move { api.command(&id, "clear-cache", json!({})).await })
        };
        let (call, _) = charger
            .expect_call("ClearCache", Duration::from_secs(5))
            .await
            .unwrap();
        charger
            .reply_error(&call, "InternalError", "broken")
            .unwrap();
        request.await.unwrap().unwrap().expect(502);
    }
}

/// `remote-start` through `api` for a 2.0.1 charger, answered Accepted; returns the
/// `remoteStartId` the charger was sent.
async fn remote_start_id(api: &Api, id: &str, charger: &mut Charger) -> i64 {
    let request = {
        let api = api.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            api.command(
                &id,
                "remote-start",
                json!({"connector": 1, "id_token": "TAG-1"}),
            )
            .await
        })
    };
    let (call, payload) = charger
        .expect_call("RequestStartTransaction", Duration::from_secs(5))
        .await
        .unwrap();
    charger.reply(&call, json!({"status": "Accepted"})).unwrap();
    request.await.unwrap().unwrap().expect(200);
    payload["remoteStartId"]
        .as_i64()
        .unwrap_or_else(|| panic!("no remoteStartId: {payload}"))
}

#[tokio::test]
async fn request_ids_sent_through_different_nodes_never_collide_and_name_the_allow_record() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    // Started together, as in a rolling deploy: a per-node counter seeded from the clock
    // gave both the same numbers.
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    estate(&one.api(), &["CP-IDS"]).await;
    let admin = one.api();
    admin
        .charging_driver("site-driver", "tia", "site-a")
        .await
        .unwrap();
    admin.id_token("tia", "TAG-1").await.unwrap().expect(201);
    let mut charger = connect(&one, "CP-IDS", "ocpp2.0.1").await;
    wait_held_by(&two.api(), "CP-IDS", "one", Duration::from_secs(2)).await;

    let mut sent = Vec::new();
    for round in 0..4 {
        let through = if round % 2 == 0 { &one } else { &two };
        sent.push(remote_start_id(&through.api(), "CP-IDS", &mut charger).await);
    }
    let mut distinct = sent.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), sent.len(), "request ids repeated: {sent:?}");

    // Each id is the id of the command's allow record in the shared audit log.
    let audit = one
        .api()
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let mut allow_records: Vec<i64> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["allowed"] == true && e["action"] == "command.remote-start")
        .filter_map(|e| e["id"].as_i64())
        .collect();
    allow_records.sort_unstable();
    assert_eq!(allow_records, distinct, "{}", audit.text);
}

#[tokio::test]
async fn a_charger_connected_nowhere_is_a_409_within_a_second() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    estate(&one.api(), &["CP-NOWHERE", "CP-GONE"]).await;

    let started = Instant::now();
    two.api()
        .command("CP-NOWHERE", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect(409);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // Connected to node one, then gone: no longer anywhere.
    let charger = connect(&one, "CP-GONE", "ocpp1.6").await;
    wait_held_by(&two.api(), "CP-GONE", "one", Duration::from_secs(2)).await;
    drop(charger);
    one.api()
        .wait_disconnected("CP-GONE", Duration::from_secs(5))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while listed(&two.api(), "CP-GONE").await["connected"] == true {
        assert!(
            Instant::now() < deadline,
            "node two still sees CP-GONE connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    two.api()
        .command("CP-GONE", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect(409);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_charger_that_connects_to_another_node_closes_its_old_session_within_a_second() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    estate(&one.api(), &["CP-MOVE"]).await;

    let mut old = connect(&one, "CP-MOVE", "ocpp1.6").await;
    wait_held_by(&two.api(), "CP-MOVE", "one", Duration::from_secs(2)).await;
    let mut new = connect(&two, "CP-MOVE", "ocpp1.6").await;
    let started = Instant::now();
    let closed = old.closed(Duration::from_secs(1)).await;
    assert!(
        closed.is_some(),
        "the old session was still open after {:?}",
        started.elapsed()
    );
    wait_held_by(&one.api(), "CP-MOVE", "two", Duration::from_secs(2)).await;
    // The command through the old node reaches the new session.
    clear_cache(&one.api(), "CP-MOVE", &mut new)
        .await
        .expect(200);
}

/// A node that registers unknown chargers under `site-a` on their first connection.
fn auto_registering_node(db: &str, nats: &NatsServer, id: &str) -> Gateway {
    start_auto_registering(db, nats, id, true)
}

/// A node registering unknown chargers under `site-a`, trusted at once or pending approval.
fn start_auto_registering(db: &str, nats: &NatsServer, id: &str, trusted: bool) -> Gateway {
    let options = GatewayOptions::preset("connect")
        .db(db)
        .arg("--cluster")
        .arg(&nats.url())
        .arg("--node-id")
        .arg(id)
        .arg("--auto-register")
        .arg("site-a")
        .arg("--auto-register-address-burst")
        .arg("100");
    let options = if trusted {
        options.arg("--auto-register-trusted")
    } else {
        options
    };
    Gateway::start(options).unwrap_or_else(|err| panic!("node {id} starts: {err:#}"))
}

/// A 2.0.1 Authorize's status as `charger` is told it.
async fn authorize_v201(charger: &mut Charger, token: Value) -> String {
    let answer = charger
        .call_ok("Authorize", json!({ "idToken": token }))
        .await
        .unwrap();
    answer["idTokenInfo"]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("no status: {answer}"))
        .to_owned()
}

/// Changes that nodes follow without reloading the estate reach the charger another node
/// holds: an approval (reread from the store) and a charger setting (the behaviours reread).
#[tokio::test]
async fn an_approval_and_a_charger_setting_made_on_one_node_hold_at_a_charger_on_another() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = start_auto_registering(&db, &nats, "two", false);
    one.api()
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    dina_with_card(&one.api()).await;
    let mut charger = connect(&two, "CP-PENDING", "ocpp2.0.1").await;
    let card = json!({"idToken": "DINA-1", "type": "ISO14443"});
    assert_eq!(
        authorize_v201(&mut charger, card.clone()).await,
        "Invalid",
        "a pending charger is told every card is unknown"
    );
    one.api()
        .post("/api/v1/chargers/CP-PENDING/approve", json!({}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(authorize_v201(&mut charger, card).await, "Accepted");

    let free = json!({"idToken": "", "type": "NoAuthorization"});
    assert_eq!(authorize_v201(&mut charger, free.clone()).await, "Invalid");
    one.api()
        .patch("/api/v1/chargers/CP-PENDING", json!({"free_vend": true}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(authorize_v201(&mut charger, free).await, "Accepted");
}

/// A charger registered by its own first connection is a change like any other: by the time
/// its BootNotification is answered every node knows it, so an operator request through
/// another node right away finds it instead of answering 404.
#[tokio::test]
async fn an_auto_registered_charger_is_known_to_every_node_once_it_is_served() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = auto_registering_node(&db, &nats, "one");
    let two = auto_registering_node(&db, &nats, "two");
    one.api()
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    for n in 1..=15 {
        let id = format!("CP-AUTO-{n}");
        let _charger = connect(&one, &id, "ocpp1.6").await;
        let seen = two
            .api()
            .get(&format!("/api/v1/chargers/{id}"))
            .await
            .unwrap();
        assert_eq!(
            seen.status, 200,
            "{id}, booted on node one, through node two: {}",
            seen.text
        );
    }
}

#[tokio::test]
async fn a_change_on_one_node_holds_on_the_next_request_to_another() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    estate(&one.api(), &["CP-CHANGE"]).await;
    let mut charger = connect(&two, "CP-CHANGE", "ocpp1.6").await;

    // A role assigned on node one lets the operator command through node two at once.
    one.api()
        .principal("ops", "operator", "site-a")
        .await
        .unwrap()
        .expect(201);
    let ops = one.api().token_for("ops").await.unwrap();
    two.api_as(&ops)
        .command("CP-CHANGE", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect(404);
    one.api()
        .assign("ops", "site-admin", "site-a")
        .await
        .unwrap()
        .expect(201);
    clear_cache(&two.api_as(&ops), "CP-CHANGE", &mut charger)
        .await
        .expect(200);

    // A card blocked on node one is refused by node two's charger at once.
    dina_with_card(&one.api()).await;
    let authorized = charger
        .call_ok("Authorize", json!({"idTag": "DINA-1"}))
        .await
        .unwrap();
    assert_eq!(
        authorized["idTagInfo"]["status"], "Accepted",
        "{authorized}"
    );
    one.api()
        .post("/api/v1/principals/dina/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    let authorized = charger
        .call_ok("Authorize", json!({"idTag": "DINA-1"}))
        .await
        .unwrap();
    assert_ne!(
        authorized["idTagInfo"]["status"], "Accepted",
        "{authorized}"
    );

    // Propagation: a new scope on node one, then at once listed by node two; the change
    // request answers once the other node confirmed it. The time is both requests'.
    let mut took = Vec::new();
    for n in 0..40 {
        let id = format!("sub-{n}");
        let started = Instant::now();
        one.api()
            .scope(&id, "site", "site-a")
            .await
            .unwrap()
            .expect(201);
        let scopes = two.api().get("/api/v1/scopes").await.unwrap().expect(200);
        took.push(started.elapsed());
        assert!(
            scopes.text.contains(&format!("\"{id}\"")),
            "node two does not have {id} yet: {}",
            scopes.text
        );
        let alone = two
            .api()
            .get(&format!("/api/v1/scopes/{id}"))
            .await
            .unwrap()
            .expect(200);
        assert_eq!(alone.body["parent"], "site-a", "{}", alone.text);
    }
    two.api()
        .get("/api/v1/scopes/sub-40")
        .await
        .unwrap()
        .expect_error(404, "not_found");
    took.sort();
    let p50 = took[took.len() / 2];
    let p99 = took[took.len() * 99 / 100];
    eprintln!("change on node one to read on node two: p50 {p50:?}, p99 {p99:?}");
    assert!(p99 < Duration::from_millis(500), "p99 {p99:?}");
}

#[tokio::test]
async fn a_killed_nodes_chargers_come_back_through_the_survivors() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    let three = node(&db, &nats, "three");
    estate(&two.api(), &["CP-KILL"]).await;
    let charger = connect(&one, "CP-KILL", "ocpp2.0.1").await;
    wait_held_by(&three.api(), "CP-KILL", "one", Duration::from_secs(2)).await;

    let _ = one.kill();
    drop(charger);
    // Connected nowhere while the charger is away: 409, not a wait for the timeout.
    let started = Instant::now();
    three
        .api()
        .command("CP-KILL", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect(409);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    let mut again = connect(&two, "CP-KILL", "ocpp2.0.1").await;
    wait_held_by(&three.api(), "CP-KILL", "two", Duration::from_secs(2)).await;
    clear_cache(&three.api(), "CP-KILL", &mut again)
        .await
        .expect(200);
    // The killed node's id lapses: a node may take it again.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        match try_node(&db, &nats.url(), "one") {
            Ok(_) => break,
            Err(err) => {
                assert!(Instant::now() < deadline, "node id not released: {err:#}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[tokio::test]
async fn without_nats_a_node_keeps_its_chargers_answers_503_for_the_rest_and_recovers() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    estate(&one.api(), &["CP-HERE", "CP-THERE"]).await;
    let mut here = connect(&one, "CP-HERE", "ocpp1.6").await;
    let mut there = connect(&two, "CP-THERE", "ocpp1.6").await;
    wait_held_by(&one.api(), "CP-THERE", "two", Duration::from_secs(2)).await;

    nats.stop();
    one.api()
        .wait_ready(503, Duration::from_secs(5))
        .await
        .unwrap();
    clear_cache(&one.api(), "CP-HERE", &mut here)
        .await
        .expect(200);
    one.api()
        .command("CP-THERE", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect_error(503, "cluster_unavailable");
    let authorized = there.call_ok("Heartbeat", json!({})).await.unwrap();
    assert!(authorized["currentTime"].is_string(), "{authorized}");

    nats.restart().unwrap();
    one.api()
        .wait_ready(200, Duration::from_secs(10))
        .await
        .unwrap();
    clear_cache(&one.api(), "CP-THERE", &mut there)
        .await
        .expect(200);
}

/// Sends a CALL with the message id `id` (a charger retries a message under its own id) and
/// returns the CALLRESULT payload.
async fn call_as(charger: &mut Charger, id: &str, action: &str, payload: Value) -> Value {
    charger
        .send_text(&json!([2, id, action, payload]).to_string())
        .unwrap();
    match charger
        .answer_to(id, Duration::from_secs(10))
        .await
        .unwrap()
    {
        Received::Result { payload, .. } => payload,
        other => panic!("{action} {id} was not accepted: {other:?}"),
    }
}

/// The transactions `api` lists for `charger`.
async fn transactions_of(api: &Api, charger: &str) -> Vec<Value> {
    let list = api.get("/api/v1/transactions").await.unwrap().expect(200);
    list.body["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["charger"] == charger)
        .collect()
}

#[tokio::test]
async fn a_node_killed_during_transactions_loses_none_and_the_resent_ones_are_not_duplicated() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    let admin = two.api();
    estate(&admin, &["CP-TX16", "CP-TX201"]).await;
    dina_with_card(&admin).await;

    let start16 = |connector: u32| {
        json!({"connectorId": connector, "idTag": "DINA-1", "meterStart": 100,
               "timestamp": format!("2026-12-06T10:00:0{connector}Z")})
    };
    let event201 = |kind: &str, tx: &str, seq: u32| {
        json!({"eventType": kind, "timestamp": format!("2026-12-06T10:00:0{seq}Z"),
               "triggerReason": if kind == "Started" { "Authorized" } else { "StopAuthorized" },
               "seqNo": seq, "transactionInfo": {"transactionId": tx},
               "evse": {"id": 1, "connectorId": 1},
               "idToken": {"idToken": "DINA-1", "type": "ISO14443"}})
    };

    let mut v16 = connect(&one, "CP-TX16", "ocpp1.6").await;
    let mut v201 = connect(&one, "CP-TX201", "ocpp2.0.1").await;
    // Answered before the kill: these must survive it.
    let answered = call_as(&mut v16, "start-1", "StartTransaction", start16(1)).await;
    let answered_id = answered["transactionId"].as_i64().unwrap();
    call_as(
        &mut v201,
        "start-a",
        "TransactionEvent",
        event201("Started", "TX-A", 1),
    )
    .await;
    // In flight when the node dies: the node may or may not have stored them.
    v16.send_text(&json!([2, "inflight-16", "StartTransaction", start16(2)]).to_string())
        .unwrap();
    v201.send_text(
        &json!([
            2,
            "inflight-201",
            "TransactionEvent",
            event201("Started", "TX-B", 2)
        ])
        .to_string(),
    )
    .unwrap();
    let _ = one.kill();
    drop((v16, v201));

    // Each charger reconnects to the survivor and resends what it got no answer for, as a
    // charger's offline queue does.
    let mut v16 = connect(&two, "CP-TX16", "ocpp1.6").await;
    let mut v201 = connect(&two, "CP-TX201", "ocpp2.0.1").await;
    let resent = call_as(&mut v16, "inflight-16", "StartTransaction", start16(2)).await;
    let resent_id = resent["transactionId"].as_i64().unwrap();
    assert_ne!(resent_id, answered_id);
    call_as(
        &mut v201,
        "inflight-201",
        "TransactionEvent",
        event201("Started", "TX-B", 2),
    )
    .await;
    // A charger that resends even what was answered (its queue outlived the answer) makes
    // no second transaction either.
    let again = call_as(&mut v16, "start-1", "StartTransaction", start16(1)).await;
    assert_eq!(
        again["transactionId"].as_i64(),
        Some(answered_id),
        "{again}"
    );
    call_as(
        &mut v201,
        "start-a",
        "TransactionEvent",
        event201("Started", "TX-A", 1),
    )
    .await;
    // The transaction answered on the dead node is stopped through the survivor.
    v16.call_ok(
        "StopTransaction",
        json!({"transactionId": answered_id, "meterStop": 900,
               "timestamp": "2026-12-06T11:00:00Z"}),
    )
    .await
    .unwrap();
    v201.call_ok("TransactionEvent", event201("Ended", "TX-A", 3))
        .await
        .unwrap();

    let listed16 = transactions_of(&admin, "CP-TX16").await;
    assert_eq!(listed16.len(), 2, "{listed16:?}");
    let stopped = listed16
        .iter()
        .find(|t| t["id"].as_i64() == Some(answered_id))
        .unwrap_or_else(|| panic!("the answered transaction is gone: {listed16:?}"));
    assert_eq!(stopped["meter_stop"].as_f64(), Some(900.0), "{stopped}");
    let listed201 = transactions_of(&admin, "CP-TX201").await;
    let mut keys: Vec<&str> = listed201.iter().filter_map(|t| t["key"].as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["TX-A", "TX-B"], "{listed201:?}");
    let ended = listed201.iter().find(|t| t["key"] == "TX-A").unwrap();
    assert!(ended["stopped_at"].is_string(), "{ended}");
}

#[tokio::test]
async fn a_draining_node_hands_its_chargers_to_the_others_and_ends_its_commands_cleanly() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    estate(&two.api(), &["CP-DRAIN"]).await;
    let mut charger = connect(&one, "CP-DRAIN", "ocpp2.0.1").await;
    wait_held_by(&two.api(), "CP-DRAIN", "one", Duration::from_secs(2)).await;

    // A command through node two is at the charger when node one begins to drain.
    let request = {
        let api = two.api();
        tokio::spawn(async move { api.command("CP-DRAIN", "clear-cache", json!({})).await })
    };
    charger
        .expect_call("ClearCache", Duration::from_secs(5))
        .await
        .unwrap();
    let draining = tokio::task::spawn_blocking(move || one.terminate(Duration::from_secs(20)));
    let close = charger.closed(Duration::from_secs(10)).await;
    assert_eq!(
        close,
        Some(Some(1001)),
        "the charger was not closed as going away"
    );
    let closed_at = Instant::now();

    // The command ends with an answer that says what happened, within the command timeout.
    let reply = request.await.unwrap().unwrap();
    assert!(
        [409, 502, 503, 504].contains(&reply.status),
        "{} {}",
        reply.status,
        reply.text
    );

    // The charger reconnects to the other node at once and is commanded there.
    let mut again = connect(&two, "CP-DRAIN", "ocpp2.0.1").await;
    wait_held_by(&two.api(), "CP-DRAIN", "two", Duration::from_secs(2)).await;
    assert!(
        closed_at.elapsed() < Duration::from_secs(3),
        "offline for {:?}",
        closed_at.elapsed()
    );
    clear_cache(&two.api(), "CP-DRAIN", &mut again)
        .await
        .expect(200);
    let (code, _) = draining.await.unwrap().unwrap();
    assert_eq!(code, Some(0), "the draining node did not exit cleanly");
}

#[tokio::test]
async fn a_node_that_lost_nats_decides_on_what_the_store_holds_not_on_what_it_last_heard() {
    let nats = NatsServer::start().unwrap();
    let db = PostgresServer::shared().create_database().unwrap();
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    estate(&one.api(), &["CP-STALE"]).await;
    dina_with_card(&one.api()).await;
    let mut charger = connect(&two, "CP-STALE", "ocpp1.6").await;
    let status = |answer: &Value| answer["idTagInfo"]["status"].clone();
    let authorize = json!({"idTag": "DINA-1"});
    let answer = charger
        .call_ok("Authorize", authorize.clone())
        .await
        .unwrap();
    assert_eq!(status(&answer), "Accepted", "{answer}");

    nats.stop();
    one.api()
        .wait_ready(503, Duration::from_secs(5))
        .await
        .unwrap();
    two.api()
        .wait_ready(503, Duration::from_secs(5))
        .await
        .unwrap();
    // Changes node two cannot hear about.
    one.api()
        .post("/api/v1/principals/dina/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    one.api()
        .scope("site-late", "site", "root")
        .await
        .unwrap()
        .expect(201);

    // Node two decides on what the store holds, not on what it last heard.
    let answer = charger
        .call_ok("Authorize", authorize.clone())
        .await
        .unwrap();
    assert_ne!(status(&answer), "Accepted", "{answer}");
    let scopes = two.api().get("/api/v1/scopes").await.unwrap().expect(200);
    assert!(scopes.text.contains("\"site-late\""), "{}", scopes.text);

    // NATS back: fresh again, and changes arrive by notice as before.
    nats.restart().unwrap();
    two.api()
        .wait_ready(200, Duration::from_secs(10))
        .await
        .unwrap();
    one.api()
        .wait_ready(200, Duration::from_secs(10))
        .await
        .unwrap();
    one.api()
        .post("/api/v1/principals/dina/unblock", json!({}))
        .await
        .unwrap()
        .expect(200);
    let answer = charger.call_ok("Authorize", authorize).await.unwrap();
    assert_eq!(status(&answer), "Accepted", "{answer}");
}

/// How many of `ids` `api` reports connected, on whichever node holds them.
async fn connected_anywhere(api: &Api, ids: &[String]) -> usize {
    let mut live = 0;
    for id in ids {
        if let Ok(reply) = api.get(&format!("/api/v1/chargers/{id}")).await {
            if reply.status == 200 && reply.body["connected"] == true {
                live += 1;
            }
        }
    }
    live
}

/// A charger another node registered and this node has not followed yet (a notice still on
/// its way under load; here written to the store behind the nodes' backs): when it connects,
/// its cards are decided on the stored charger, and a command naming it is not answered 404.
#[tokio::test]
async fn a_stored_charger_this_node_has_not_followed_yet_is_not_a_404() {
    let nats = NatsServer::start().unwrap();
    let server = PostgresServer::shared();
    let db = server.create_database().unwrap();
    let one = node(&db, &nats, "one");
    estate(&one.api(), &[]).await;
    dina_with_card(&one.api()).await;
    let database = db.rsplit('/').next().unwrap();
    for id in ["CP-BEHIND", "CP-BEHIND-DOOR"] {
        server
            .sql(
                database,
                &format!(
                    "INSERT INTO chargers (id, scope, security_profile) VALUES ('{id}', 'site-a', 0); \
                     INSERT INTO scopes (id, kind, parent) VALUES ('{id}', 'station', 'site-a')"
                ),
            )
            .unwrap();
    }
    // At the charger door: its cards are decided on the stored charger's site.
    let mut charger = connect(&one, "CP-BEHIND-DOOR", "ocpp1.6").await;
    let answer = charger
        .call_ok("Authorize", json!({"idTag": "DINA-1"}))
        .await
        .unwrap();
    assert_eq!(answer["idTagInfo"]["status"], "Accepted", "{answer}");
    one.api()
        .command("CP-BEHIND", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect_error(409, "not_connected");
    let reply = one
        .api()
        .command("CP-NOWHERE", "clear-cache", json!({}))
        .await
        .unwrap();
    assert_eq!(reply.status, 404, "{}", reply.text);
}

/// PostgreSQL stopped under a cluster carrying a simulator's charging sessions on both nodes,
/// then NATS too: no charger is told Accepted for what was not stored, a stale node that cannot
/// read the store refuses at both doors instead of deciding on what it last heard, and every
/// node recovers by itself, in the order the dependencies come back.
#[tokio::test]
async fn a_cluster_that_lost_its_database_stores_all_it_answered_and_recovers_on_every_node() {
    const SIM_CHARGERS: u32 = 10;
    let nats = NatsServer::start().unwrap();
    let server = PostgresServer::own().unwrap();
    // Store calls give up after 2 s instead of the default 10 s while the server is away.
    let db = format!("{}?connect_timeout=2", server.create_database().unwrap());
    let one = node(&db, &nats, "one");
    let two = node(&db, &nats, "two");
    estate(&one.api(), &["CP-PG16", "CP-PG201"]).await;
    dina_with_card(&one.api()).await;

    // The load: 1.6 chargers on both nodes, each connector starting a session every few
    // seconds, registered through node one.
    let sim = tokio::process::Command::new(voltgate_tests::binary_path("voltgate-sim").unwrap())
        .args(["--url", &format!("{},{}", one.ocpp_url, two.ocpp_url)])
        .args([
            "--chargers",
            &SIM_CHARGERS.to_string(),
            "--id-prefix",
            "PG-",
        ])
        .args(["--ocpp", "1.6", "--ramp", "0", "--duration", "45"])
        .args([
            "--sessions",
            "3",
            "--session-length",
            "2",
            "--meter-interval",
            "0",
        ])
        .args(["--id-tag", "DINA-1", "--register", "site-a"])
        .args(["--api", &one.api_url, "--api-token", &one.admin_token])
        .args(["--report", "json", "--quiet"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the simulator starts");
    let sim_ids: Vec<String> = (1..=SIM_CHARGERS).map(|n| format!("PG-{n:06}")).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while connected_anywhere(&one.api(), &sim_ids).await < sim_ids.len() {
        assert!(
            Instant::now() < deadline,
            "the simulated chargers did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut v16 = connect(&one, "CP-PG16", "ocpp1.6").await;
    let mut v201 = connect(&two, "CP-PG201", "ocpp2.0.1").await;
    let start16 = json!({"connectorId": 1, "idTag": "DINA-1", "meterStart": 100,
                         "timestamp": "2026-12-06T10:00:00Z"});
    let started201 = json!({"eventType": "Started", "timestamp": "2026-12-06T10:00:00Z",
                            "triggerReason": "Authorized", "seqNo": 0,
                            "transactionInfo": {"transactionId": "TX-PG"},
                            "evse": {"id": 1, "connectorId": 1},
                            "idToken": {"idToken": "DINA-1", "type": "ISO14443"}});
    let authorize201 = json!({"idToken": {"idToken": "DINA-1", "type": "ISO14443"}});

    server.stop().unwrap();
    for gateway in [&one, &two] {
        gateway
            .api()
            .wait_ready(503, Duration::from_secs(5))
            .await
            .unwrap();
    }
    let refused = v16.call("StartTransaction", start16.clone()).await.unwrap();
    assert_eq!(refused.error_code(), Some("InternalError"), "{refused:?}");
    let refused = v201
        .call("TransactionEvent", started201.clone())
        .await
        .unwrap();
    assert_eq!(refused.error_code(), Some("InternalError"), "{refused:?}");
    // Through node two for the charger on node one: no allow record, no command.
    two.api()
        .command("CP-PG16", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect_error(503, "store_unavailable");
    assert!(
        v16.next_call(Duration::from_millis(300)).await.is_none(),
        "a command reached the charger without its allow record"
    );

    // NATS too: node two may now miss changes and cannot read the store to catch up.
    nats.stop();
    // Node two learns of the loss when its client sees the connection close; until then it
    // rightly decides on what it holds.
    two.api()
        .wait_unready_for("cluster unreachable", Duration::from_secs(5))
        .await
        .unwrap();
    let refused = v201.call("Authorize", authorize201.clone()).await.unwrap();
    assert_eq!(refused.error_code(), Some("InternalError"), "{refused:?}");
    two.api()
        .get("/api/v1/scopes")
        .await
        .unwrap()
        .expect_error(503, "store_unavailable");

    // The database back first: node two catches up from it and decides again, while
    // commands that must cross nodes wait for NATS.
    server.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = v201.call("Authorize", authorize201.clone()).await.unwrap();
        match answer {
            Received::Result { payload, .. } => {
                assert_eq!(payload["idTokenInfo"]["status"], "Accepted", "{payload}");
                break;
            }
            other => assert!(
                Instant::now() < deadline,
                "node two did not catch up from the store: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    two.api().get("/api/v1/scopes").await.unwrap().expect(200);
    two.api()
        .command("CP-PG16", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect_error(503, "cluster_unavailable");

    nats.restart().unwrap();
    for gateway in [&one, &two] {
        gateway
            .api()
            .wait_ready(200, Duration::from_secs(15))
            .await
            .unwrap();
    }
    // The chargers retry what was refused, and commands cross nodes again.
    let retried = v16.call_ok("StartTransaction", start16).await.unwrap();
    assert!(retried["transactionId"].as_i64().is_some(), "{retried}");
    v201.call_ok("TransactionEvent", started201).await.unwrap();
    let reply = clear_cache(&two.api(), "CP-PG16", &mut v16)
        .await
        .expect(200);
    assert_eq!(reply.body["status"], "Accepted", "{}", reply.text);
    assert_eq!(transactions_of(&one.api(), "CP-PG16").await.len(), 1);
    assert_eq!(transactions_of(&two.api(), "CP-PG201").await.len(), 1);

    // The load went through all of it: no charger was dropped, and every StartTransaction a
    // simulated charger got a CALLRESULT for is stored, once.
    let report = crate::failover::report_of(sim).await;
    let summary = &report["summary"];
    assert_eq!(summary["reconnects"], 0, "{report:#}");
    for kind in summary["errors"].as_object().unwrap().keys() {
        assert!(
            kind.starts_with("callerror:") && kind.ends_with(":InternalError"),
            "unexpected error {kind}: {report:#}"
        );
    }
    let answered = summary["per_action"]["StartTransaction"]["count"]
        .as_u64()
        .unwrap_or(0);
    assert!(answered > 0, "{report:#}");
    let list = two
        .api()
        .get("/api/v1/transactions?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let stored = list.body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["charger"].as_str().is_some_and(|c| c.starts_with("PG-")))
        .count() as u64;
    // At most one CALL per charger can have been stored without its answer being read
    // before the simulator stopped.
    assert!(
        answered <= stored && stored <= answered + u64::from(SIM_CHARGERS),
        "{answered} StartTransaction answered, {stored} stored: {report:#}"
    );
}
