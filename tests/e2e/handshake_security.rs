//! Regression tests for the charger handshake as an attacker meets it: parallel password
//! guesses, one address's failures against its other chargers, which charger ids exist, and
//! which certificate names a profile 3 charger.

use std::time::Duration;

use voltgate_tests::tls::{TlsAttempt, Validity};
use voltgate_tests::{Charger, Gateway, GatewayOptions};

use crate::security_profiles::{register, TlsGateway};

const PROTOCOLS: &[&str] = &["ocpp2.0.1"];
const PASSWORD: &str = "correct-horse-batt";

/// The status of a refused handshake over plain ws; `101` when it was accepted.
async fn status(gateway: &Gateway, id: &str, basic_auth: Option<(&str, &str)>) -> u16 {
    match Charger::try_connect(&gateway.ocpp_url, id, PROTOCOLS, basic_auth)
        .await
        .expect("an HTTP answer")
    {
        Ok(_) => 101,
        Err(refusal) => refusal.status,
    }
}

/// 100 guesses at once: the budget is taken before each password is checked, so only the
/// burst is ever checked (before, all 100 passed a check made before any was charged).
#[tokio::test]
async fn parallel_password_guesses_are_charged_before_they_are_checked() {
    // The default burst of 10; a refill no test run reaches, so the count is exact.
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .arg("--auth-failure-refill")
            .arg("1h"),
    )
    .unwrap();
    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    register(&admin, "CP-G", Some(PASSWORD), 1).await;
    let url = gateway.ocpp_url.clone();
    let guesses: Vec<_> = (0..100)
        .map(|n| {
            let url = url.clone();
            tokio::spawn(async move {
                let guess = format!("guess-{n}");
                match Charger::try_connect(&url, "CP-G", PROTOCOLS, Some(("CP-G", &guess)))
                    .await
                    .expect("an HTTP answer")
                {
                    Ok(_) => 101,
                    Err(refusal) => refusal.status,
                }
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for guess in guesses {
        *statuses.entry(guess.await.unwrap()).or_insert(0u32) += 1;
    }
    eprintln!("100 parallel guesses: {statuses:?}");
    assert_eq!(
        statuses,
        [(401, 10), (429, 90)].into_iter().collect(),
        "only the burst may be checked"
    );
}

/// Failures are counted per address and charger id: a neighbour behind the same address that
/// keeps failing does not lock out chargers with valid credentials or without any; guessing
/// over many ids is still bounded by the address's own budget.
#[tokio::test]
async fn one_chargers_failures_do_not_lock_out_its_neighbours() {
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .arg("--auth-failure-refill")
            .arg("1h")
            .arg("--auth-failure-address-burst")
            .arg("15"),
    )
    .unwrap();
    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    register(&admin, "CP-BAD", Some(PASSWORD), 1).await;
    register(&admin, "CP-GOOD", Some("another-good-one-2"), 1).await;
    admin
        .charger("CP-OPEN", "site-a")
        .await
        .unwrap()
        .expect(201);

    let mut bad = Vec::new();
    for _ in 0..11 {
        bad.push(status(&gateway, "CP-BAD", Some(("CP-BAD", "wrong"))).await);
    }
    assert_eq!(&bad[..10], &[401; 10], "{bad:?}");
    assert_eq!(bad[10], 429, "{bad:?}");
    assert_eq!(
        status(&gateway, "CP-GOOD", Some(("CP-GOOD", "another-good-one-2"))).await,
        101,
        "valid credentials from the same address"
    );
    assert_eq!(
        status(&gateway, "CP-OPEN", None).await,
        101,
        "a charger without credentials"
    );

    // Guessing over other ids uses up the address's budget of 15: 10 failures above, 5 here.
    let mut spread = Vec::new();
    for n in 0..6 {
        let id = format!("CP-U{n}");
        spread.push(status(&gateway, &id, Some((&id, "wrong"))).await);
    }
    assert_eq!(spread, [401, 401, 401, 401, 401, 429], "{spread:?}");
    assert_eq!(
        status(&gateway, "CP-GOOD", Some(("CP-GOOD", "another-good-one-2"))).await,
        101,
        "a password verified before still gets through"
    );
    assert_eq!(status(&gateway, "CP-OPEN", None).await, 101);
}

/// The answer to an unauthenticated handshake does not tell whether the charger id exists or
/// how it authenticates, over TLS and over plain ws.
#[tokio::test]
async fn unknown_and_unauthenticated_charger_ids_get_the_same_answer() {
    let estate = TlsGateway::start_with(&[]).await;
    let admin = &estate.admin;
    register(admin, "CP-1", Some(PASSWORD), 1).await;
    register(admin, "CP-2", Some(PASSWORD), 2).await;
    register(admin, "CP-3", None, 3).await;
    let stranger = estate.pki.client("CP-9", &[], Validity::Current).unwrap();

    let mut over_tls = Vec::new();
    for (id, password, certificate) in [
        ("CP-NOBODY", None, None),
        ("CP-NOBODY", Some("wrong"), None),
        ("CP-1", None, None),
        ("CP-1", Some("wrong"), None),
        ("CP-2", None, None),
        ("CP-2", Some("wrong"), None),
        ("CP-3", None, None),
        ("CP-3", None, Some(&stranger)),
    ] {
        let attempt = estate
            .over_tls(id, password.map(|p| (id, p)), certificate)
            .await;
        let TlsAttempt::Refused(refusal) = attempt else {
            panic!("{id}: {}", attempt.describe());
        };
        over_tls.push((id, password, refusal.status, refusal.body));
    }
    let mut plain = Vec::new();
    for (id, password) in [
        ("CP-NOBODY", None),
        ("CP-NOBODY", Some("wrong")),
        ("CP-1", None),
        ("CP-1", Some("wrong")),
        ("CP-2", Some(PASSWORD)),
        ("CP-3", None),
    ] {
        let refusal = Charger::try_connect(
            &estate.gateway.ocpp_url,
            id,
            PROTOCOLS,
            password.map(|p| (id, p)),
        )
        .await
        .unwrap()
        .err()
        .unwrap_or_else(|| panic!("{id} connected over plain ws"));
        plain.push((id, password, refusal.status, refusal.body));
    }
    let (_, _, status, body) = &over_tls[0];
    assert_eq!(*status, 401);
    for (id, password, other_status, other_body) in over_tls.iter().chain(&plain) {
        assert_eq!(
            (other_status, other_body),
            (status, body),
            "{id} with password {password:?} is told apart"
        );
    }
}

/// Profile 3 binds the charger id to the certificate's one subject CN: a certificate that also
/// lists other names (SANs) connects only as its CN, and one with two CNs not at all.
#[tokio::test]
async fn profile_3_chargers_are_named_by_the_subject_common_name_only() {
    let estate = TlsGateway::start_with(&[]).await;
    let admin = &estate.admin;
    for id in ["CP-A", "CP-B", "CP-C"] {
        register(admin, id, None, 3).await;
    }
    let many_names = estate
        .pki
        .client("CP-A", &["CP-B", "CP-C"], Validity::Current)
        .unwrap();
    match estate.over_tls("CP-A", None, Some(&many_names)).await {
        TlsAttempt::Connected(charger) => drop(charger),
        other => panic!("CP-A by its CN: {}", other.describe()),
    }
    for id in ["CP-B", "CP-C"] {
        let attempt = estate.over_tls(id, None, Some(&many_names)).await;
        assert!(
            matches!(&attempt, TlsAttempt::Refused(refusal) if refusal.status == 401),
            "{id} by an alternative name: {}",
            attempt.describe()
        );
    }
    let two_common_names = estate
        .pki
        .client_with_common_names(&["CP-A", "CP-B"])
        .unwrap();
    for id in ["CP-A", "CP-B"] {
        let attempt = estate.over_tls(id, None, Some(&two_common_names)).await;
        assert!(
            matches!(&attempt, TlsAttempt::Refused(refusal) if refusal.status == 401),
            "{id} by one of two CNs: {}",
            attempt.describe()
        );
    }
}

/// `--auto-register` no longer creates chargers without end, and a charger it creates without
/// proving who it is learns nothing about cards until an operator approves it.
#[tokio::test]
async fn auto_registration_is_limited_and_new_chargers_wait_for_approval() {
    let gateway = Gateway::start(
        GatewayOptions::preset("zaptec")
            .arg("--local-auth-lists")
            .arg("--auto-register")
            .arg("inst-1")
            .arg("--auto-register-address-burst")
            .arg("3")
            .arg("--auto-register-refill")
            .arg("1h"),
    )
    .unwrap();
    let admin = gateway.api();
    admin
        .scope("inst-1", "installation", "root")
        .await
        .unwrap()
        .expect(201);
    admin
        .principal("dana", "driver", "inst-1")
        .await
        .unwrap()
        .expect(201);
    admin
        .id_token("dana", "RFID-DANA")
        .await
        .unwrap()
        .expect(201);
    admin
        .assign("dana", "user", "inst-1")
        .await
        .unwrap()
        .expect(201);

    let mut first = Charger::connect(&gateway.ocpp_url, "NEW-1", &["ocpp1.6"])
        .await
        .expect("the first new charger is registered");
    for id in ["NEW-2", "NEW-3"] {
        assert_eq!(status_v16(&gateway, id).await, 101, "{id}");
    }
    assert_eq!(
        status_v16(&gateway, "NEW-4").await,
        429,
        "the address used up its registrations"
    );
    // Registration completes just after the handshake: wait for all three.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let registered = loop {
        let listed = admin.get("/api/v1/chargers").await.unwrap().expect(200);
        let count = listed.body["chargers"].as_array().map_or(0, Vec::len);
        if count >= 3 || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ids: Vec<&str> = registered.body["chargers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["NEW-1", "NEW-2", "NEW-3"], "{}", registered.text);

    first.boot().await.expect("boot answered");
    assert_eq!(
        authorize_v16(&mut first, "RFID-DANA").await,
        "Invalid",
        "pending"
    );
    assert!(
        first.next_call(Duration::from_secs(2)).await.is_none(),
        "a pending charger gets no local list"
    );
    let approved = admin
        .post("/api/v1/chargers/NEW-1/approve", serde_json::json!({}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(approved.body["was_pending"], true, "{}", approved.text);
    let (_, action, _) = first
        .next_call(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no local list after approval: {}", gateway.output()));
    assert_eq!(action, "GetLocalListVersion");
    assert_eq!(authorize_v16(&mut first, "RFID-DANA").await, "Accepted");
    let audit = admin
        .get("/api/v1/audit?limit=100")
        .await
        .unwrap()
        .expect(200);
    assert!(
        audit.body["entries"].as_array().unwrap().iter().any(|e| {
            e["action"] == "charger.edit" && e["resource"] == "NEW-1" && e["allowed"] == true
        }),
        "{}",
        audit.text
    );
    admin
        .post("/api/v1/chargers/NEW-9/approve", serde_json::json!({}))
        .await
        .unwrap()
        .expect(404);
}

async fn status_v16(gateway: &Gateway, id: &str) -> u16 {
    match Charger::try_connect(&gateway.ocpp_url, id, &["ocpp1.6"], None)
        .await
        .expect("an HTTP answer")
    {
        Ok(_) => 101,
        Err(refusal) => refusal.status,
    }
}

async fn authorize_v16(charger: &mut Charger, token: &str) -> String {
    let answer = charger
        .call_ok("Authorize", serde_json::json!({ "idTag": token }))
        .await
        .unwrap();
    answer["idTagInfo"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
