//! OCPP security profiles end to end: chargers on profile 1 (HTTP Basic), 2 (TLS and Basic) and 3
//! (TLS client certificate) connect with the right credentials and are refused, with nothing else
//! changed, with wrong or missing ones; failed attempts are audited, counted and throttled per
//! address; certificates reload without dropping connections; the API can be served over HTTPS.
//!
//! Every certificate is made by the test (a fresh CA per gateway), none is checked in.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustls::AlertDescription;
use serde_json::{json, Value};
use voltgate_tests::api::Reply;
use voltgate_tests::tls::{self, Pki, TlsAttempt, TlsFailure, Validity};
use voltgate_tests::{Api, Charger, Gateway, GatewayOptions};

use crate::Estate;

const PASSWORD: &str = "correct-horse-battery";
const PROTOCOLS: &[&str] = &["ocpp2.0.1"];

/// A gateway with the charger TLS listener (server certificate and client CA from `pki`).
pub(crate) struct TlsGateway {
    pub(crate) pki: Pki,
    pub(crate) gateway: Gateway,
    pub(crate) admin: Api,
    tls_url: String,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsGateway {
    async fn start() -> TlsGateway {
        Self::start_with(&[]).await
    }

    pub(crate) async fn start_with(extra_args: &[&str]) -> TlsGateway {
        let pki = Pki::new("Voltgate test CA").unwrap();
        let (cert, key) = pki.server_files("server", "gateway one").unwrap();
        let ca = pki.ca_file().unwrap();
        let options = GatewayOptions::preset("connect")
            .arg("--ocpp-tls-listen")
            .arg("127.0.0.1:0")
            .arg("--tls-cert")
            .arg(cert.to_str().unwrap())
            .arg("--tls-key")
            .arg(key.to_str().unwrap())
            .arg("--tls-client-ca")
            .arg(ca.to_str().unwrap());
        let options = extra_args
            .iter()
            .fold(options, |options, arg| options.arg(arg));
        let gateway = Gateway::start(options).expect("gateway starts");
        let tls_url = gateway
            .ocpp_tls_url()
            .unwrap_or_else(|| panic!("no TLS listener reported: {}", gateway.output()));
        let admin = gateway.api();
        admin
            .scope("site-a", "site", "root")
            .await
            .unwrap()
            .expect(201);
        TlsGateway {
            pki,
            gateway,
            admin,
            tls_url,
            cert,
            key,
        }
    }

    pub(crate) async fn over_tls(
        &self,
        id: &str,
        basic_auth: Option<(&str, &str)>,
        identity: Option<&tls::Identity>,
    ) -> TlsAttempt {
        let config = tls::client_config(&self.pki.ca_pem(), identity).unwrap();
        tls::charger_over_tls(&self.tls_url, id, PROTOCOLS, basic_auth, config)
            .await
            .unwrap()
    }
}

pub(crate) async fn register(admin: &Api, id: &str, password: Option<&str>, profile: u8) {
    let mut body = json!({"id": id, "scope": "site-a", "security_profile": profile});
    if let Some(password) = password {
        body["password"] = json!(password);
    }
    let reply = admin
        .post("/api/v1/chargers", body)
        .await
        .unwrap()
        .expect(201);
    assert_eq!(reply.body["security_profile"], profile, "{}", reply.text);
    assert!(!reply.text.contains(PASSWORD));
}

async fn boots(mut charger: Charger) -> Charger {
    let boot = charger.boot().await.expect("boot answered");
    assert_eq!(boot["status"], "Accepted", "boot: {boot}");
    charger
}

/// The charger is not connected and never booted: a refusal changed nothing.
async fn assert_untouched(admin: &Api, id: &str) {
    let view = admin
        .get(&format!("/api/v1/chargers/{id}"))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(view.body["connected"], false, "{}", view.text);
    assert_eq!(view.body["vendor"], Value::Null, "{}", view.text);
    assert_eq!(view.body["connected_since"], Value::Null, "{}", view.text);
}

/// Audit entries of refused connection attempts of `id`, once there are `expected` of them (the
/// record is written just after the refusal is sent).
async fn refused_connects(admin: &Api, id: &str, expected: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let audit = admin
            .get("/api/v1/audit?limit=1000")
            .await
            .unwrap()
            .expect(200);
        assert!(
            !audit.text.contains(PASSWORD),
            "a password reached the audit log"
        );
        let entries: Vec<Value> = audit.body["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["action"] == "charger.connect" && e["resource"] == id)
            .inspect(|e| assert_eq!(e["allowed"], false, "{e}"))
            .collect();
        if entries.len() >= expected || Instant::now() > deadline {
            assert_eq!(entries.len(), expected, "{entries:?}");
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One series of the gateway's `/metrics`; a missing series fails the test.
async fn metric(admin: &Api, series: &str) -> f64 {
    let text = admin.get("/metrics").await.unwrap().expect(200).text;
    crate::metric(&text, series)
}

fn refusal_status(attempt: &TlsAttempt) -> Option<u16> {
    match attempt {
        TlsAttempt::Refused(refusal) => Some(refusal.status),
        _ => None,
    }
}

#[tokio::test]
async fn profile_1_needs_the_password_over_ws_or_wss() {
    let estate = TlsGateway::start().await;
    let admin = &estate.admin;
    register(admin, "CP-1", Some(PASSWORD), 1).await;
    let url = &estate.gateway.ocpp_url;

    let wrong = Charger::try_connect(url, "CP-1", PROTOCOLS, Some(("CP-1", "wrong horse")))
        .await
        .unwrap()
        .err()
        .expect("wrong password refused");
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let missing = Charger::try_connect(url, "CP-1", PROTOCOLS, None)
        .await
        .unwrap()
        .err()
        .expect("missing password refused");
    assert_eq!(missing.status, 401, "{}", missing.body);
    let other_user = Charger::try_connect(url, "CP-1", PROTOCOLS, Some(("CP-2", PASSWORD)))
        .await
        .unwrap()
        .err()
        .expect("credentials of another id refused");
    assert_eq!(other_user.status, 401);
    let over_tls = estate
        .over_tls("CP-1", Some(("CP-1", "wrong horse")), None)
        .await;
    assert_eq!(
        refusal_status(&over_tls),
        Some(401),
        "{}",
        over_tls.describe()
    );
    assert_untouched(admin, "CP-1").await;

    let audited = refused_connects(admin, "CP-1", 4).await;
    assert!(audited.iter().all(|e| e["principal"] == "charger:CP-1"));
    assert!(audited
        .iter()
        .all(|e| e["reason"].as_str().unwrap().starts_with("unauthorized")));
    assert_eq!(
        metric(
            admin,
            r#"voltgate_ocpp_handshakes_refused_total{reason="unauthorized"}"#
        )
        .await,
        4.0
    );
    assert!(!estate.gateway.output().contains(PASSWORD));

    let charger = Charger::connect_with(url, "CP-1", PROTOCOLS, Some(("CP-1", PASSWORD)))
        .await
        .expect("right password over ws");
    drop(boots(charger).await);
    match estate
        .over_tls("CP-1", Some(("CP-1", PASSWORD)), None)
        .await
    {
        TlsAttempt::Connected(charger) => drop(boots(charger).await),
        other => panic!("profile 1 over wss: {}", other.describe()),
    }
}

#[tokio::test]
async fn profile_2_needs_tls_and_the_password() {
    let estate = TlsGateway::start().await;
    let admin = &estate.admin;
    register(admin, "CP-2", Some(PASSWORD), 2).await;

    let plain = Charger::try_connect(
        &estate.gateway.ocpp_url,
        "CP-2",
        PROTOCOLS,
        Some(("CP-2", PASSWORD)),
    )
    .await
    .unwrap()
    .err()
    .expect("plain ws refused");
    assert_eq!(plain.status, 401, "{}", plain.body);
    assert!(plain.body.contains("wss://"), "{}", plain.body);
    let wrong = estate
        .over_tls("CP-2", Some(("CP-2", "wrong horse")), None)
        .await;
    assert_eq!(refusal_status(&wrong), Some(401), "{}", wrong.describe());
    let missing = estate.over_tls("CP-2", None, None).await;
    assert_eq!(
        refusal_status(&missing),
        Some(401),
        "{}",
        missing.describe()
    );
    assert_untouched(admin, "CP-2").await;
    let mut reasons: Vec<String> = refused_connects(admin, "CP-2", 3)
        .await
        .iter()
        .map(|e| {
            e["reason"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    // One audit record per refusal above: plain ws, wrong password, no password.
    reasons.sort();
    assert_eq!(
        reasons,
        ["tls_required", "unauthorized", "unauthorized"],
        "{reasons:?}"
    );

    match estate
        .over_tls("CP-2", Some(("CP-2", PASSWORD)), None)
        .await
    {
        TlsAttempt::Connected(charger) => {
            let charger = boots(charger).await;
            let view = admin
                .get("/api/v1/chargers/CP-2")
                .await
                .unwrap()
                .expect(200);
            assert_eq!(view.body["connected"], true);
            drop(charger);
        }
        other => panic!("profile 2 over wss: {}", other.describe()),
    }
}

#[tokio::test]
async fn profile_3_needs_a_current_certificate_from_the_ca_naming_the_charger() {
    let estate = TlsGateway::start().await;
    let admin = &estate.admin;
    register(admin, "CP-3", None, 3).await;
    let pki = &estate.pki;

    let plain = Charger::try_connect(&estate.gateway.ocpp_url, "CP-3", PROTOCOLS, None)
        .await
        .unwrap()
        .err()
        .expect("plain ws refused");
    assert_eq!(plain.status, 401, "{}", plain.body);

    let no_certificate = estate
        .over_tls("CP-3", Some(("CP-3", PASSWORD)), None)
        .await;
    assert_eq!(
        refusal_status(&no_certificate),
        Some(401),
        "{}",
        no_certificate.describe()
    );

    let someone_else = pki
        .client("CP-9", &["cp-9.example"], Validity::Current)
        .unwrap();
    let mismatch = estate.over_tls("CP-3", None, Some(&someone_else)).await;
    assert_eq!(
        refusal_status(&mismatch),
        Some(401),
        "{}",
        mismatch.describe()
    );

    let other_ca = Pki::new("someone else's CA").unwrap();
    let foreign = other_ca.client("CP-3", &[], Validity::Current).unwrap();
    let attempt = estate.over_tls("CP-3", None, Some(&foreign)).await;
    assert!(
        matches!(
            &attempt,
            TlsAttempt::TlsFailed(TlsFailure::AlertFromGateway(AlertDescription::UnknownCA))
        ),
        "a certificate from another CA is refused in the TLS handshake as an unknown CA: {}",
        attempt.describe()
    );

    let expired = pki.client("CP-3", &[], Validity::Expired).unwrap();
    let attempt = estate.over_tls("CP-3", None, Some(&expired)).await;
    assert!(
        matches!(
            &attempt,
            TlsAttempt::TlsFailed(TlsFailure::AlertFromGateway(
                AlertDescription::CertificateExpired
            ))
        ),
        "an expired certificate is refused in the TLS handshake as expired: {}",
        attempt.describe()
    );
    assert_untouched(admin, "CP-3").await;
    refused_connects(admin, "CP-3", 3).await;
    assert!(
        metric(
            admin,
            r#"voltgate_ocpp_handshakes_refused_total{reason="tls_handshake"}"#
        )
        .await
            == 2.0
    );

    let by_common_name = pki.client("CP-3", &[], Validity::Current).unwrap();
    match estate.over_tls("CP-3", None, Some(&by_common_name)).await {
        TlsAttempt::Connected(charger) => drop(boots(charger).await),
        other => panic!("certificate with CN CP-3: {}", other.describe()),
    }
    // Only the subject CN names the charger (see `handshake_security`).
    let by_alt_name = pki
        .client("serial 0001", &["CP-3"], Validity::Current)
        .unwrap();
    let attempt = estate.over_tls("CP-3", None, Some(&by_alt_name)).await;
    assert_eq!(
        refusal_status(&attempt),
        Some(401),
        "certificate with SAN CP-3: {}",
        attempt.describe()
    );
}

#[tokio::test]
async fn registration_and_changes_check_the_profile_and_are_gated() {
    let estate = Estate::new(&[]).await;
    let admin = &estate.admin;
    for (body, needle) in [
        (
            json!({"id": "CP-T", "scope": "site-a", "security_profile": 2, "password": PASSWORD}),
            "TLS listener",
        ),
        (
            json!({"id": "CP-T", "scope": "site-a", "security_profile": 1}),
            "needs a password",
        ),
        (
            json!({"id": "CP-T", "scope": "site-a", "security_profile": 4}),
            "0, 1, 2 or 3",
        ),
    ] {
        let reply = admin
            .post("/api/v1/chargers", body)
            .await
            .unwrap()
            .expect(422);
        assert!(reply.text.contains(needle), "{}", reply.text);
    }
    estate
        .admin
        .get("/api/v1/chargers/CP-T")
        .await
        .unwrap()
        .expect(404);

    admin.charger("CP-P", "site-a").await.unwrap().expect(201);
    let change = json!({"security_profile": 1, "password": PASSWORD});
    estate
        .watcher
        .patch("/api/v1/chargers/CP-P", change.clone())
        .await
        .unwrap()
        .expect(403);
    let open = Charger::connect(&estate.gateway.ocpp_url, "CP-P", PROTOCOLS).await;
    drop(open.expect("still profile 0 after the refused change"));
    let changed = estate
        .ops
        .patch("/api/v1/chargers/CP-P", change)
        .await
        .unwrap()
        .expect(200);
    assert_eq!(changed.body["security_profile"], 1);
    assert_eq!(changed.body["password_set"], true);
    let refused = Charger::try_connect(&estate.gateway.ocpp_url, "CP-P", PROTOCOLS, None)
        .await
        .unwrap()
        .err()
        .expect("profile 1 now");
    assert_eq!(refused.status, 401);
    Charger::connect_with(
        &estate.gateway.ocpp_url,
        "CP-P",
        PROTOCOLS,
        Some(("CP-P", PASSWORD)),
    )
    .await
    .expect("the new password works");
    let to_tls = estate
        .ops
        .patch("/api/v1/chargers/CP-P", json!({"security_profile": 3}))
        .await
        .unwrap()
        .expect(422);
    assert!(to_tls.text.contains("TLS listener"), "{}", to_tls.text);

    let audit = admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    assert!(!audit.text.contains(PASSWORD));
    let edits: Vec<&Value> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "charger.security" && e["resource"] == "CP-P")
        .collect();
    assert!(
        edits
            .iter()
            .any(|e| e["allowed"] == false && e["principal"] == "watcher"),
        "{edits:?}"
    );
    assert!(
        edits
            .iter()
            .any(|e| e["allowed"] == true && e["principal"] == "ops"),
        "{edits:?}"
    );
}

#[tokio::test]
async fn failed_handshakes_and_api_logins_are_throttled_per_address() {
    // The default burst of 10; a refill slower than any test machine, so counting stays exact
    // however long the slow password hashes take.
    let estate = TlsGateway::start_with(&["--auth-failure-refill", "1h"]).await;
    let admin = &estate.admin;
    register(admin, "CP-T", Some(PASSWORD), 1).await;
    let url = &estate.gateway.ocpp_url;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let refusal = Charger::try_connect(url, "CP-T", PROTOCOLS, Some(("CP-T", "guess")))
            .await
            .unwrap()
            .err()
            .expect("a guess is refused");
        statuses.push(refusal.status);
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429; 2], "{statuses:?}");
    let held_back = Charger::try_connect(url, "CP-T", PROTOCOLS, Some(("CP-T", PASSWORD)))
        .await
        .unwrap()
        .err()
        .expect("the address is held back even with the right password");
    assert_eq!(held_back.status, 429);
    assert!(held_back.body.contains("retry in"), "{}", held_back.body);
    refused_connects(admin, "CP-T", 10).await;
    // Two throttled attempts above and the held-back one with the right password.
    assert_eq!(
        metric(admin, r#"voltgate_auth_throttled_total{listener="ocpp"}"#).await,
        3.0
    );

    let forged = estate.gateway.api_as("vg_forged_token_0123456789");
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(forged.get("/api/v1/scopes").await.unwrap().status);
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
    assert_eq!(
        metric(
            admin,
            r#"voltgate_api_auth_failures_total{reason="invalid"}"#
        )
        .await,
        10.0
    );
    // The forged token's failures hold back that token, not the valid ones from the same
    // address (tests/e2e/throttling.rs covers the address's own budget).
    let valid = admin.get("/api/v1/scopes").await.unwrap();
    assert_eq!(valid.status, 200, "{}", valid.text);
    let audit_of_logins = admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let refused_logins = audit_of_logins.body["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|entry| entry["action"] == "api.authenticate")
                .count()
        })
        .unwrap_or_default();
    assert_eq!(refused_logins, 10, "{}", audit_of_logins.text);
}

#[tokio::test]
async fn certificates_reload_on_sighup_and_on_change_without_dropping_connections() {
    let estate = TlsGateway::start().await;
    let admin = &estate.admin;
    register(admin, "CP-R", Some(PASSWORD), 2).await;
    let authority = tls::authority(&estate.tls_url).unwrap();
    let ca = estate.pki.ca_pem();
    let first = tls::served_certificate(&authority, &ca).await.unwrap();
    let mut charger = match estate
        .over_tls("CP-R", Some(("CP-R", PASSWORD)), None)
        .await
    {
        TlsAttempt::Connected(charger) => boots(charger).await,
        other => panic!("{}", other.describe()),
    };

    let wait_for_change = |from: Vec<u8>| {
        let authority = authority.clone();
        let ca = ca.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                // Between two file writes the pair may not match; the old one is served then.
                if let Ok(now) = tls::served_certificate(&authority, &ca).await {
                    if now != from {
                        return now;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "the certificate was not reloaded"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    // SIGHUP: the new files are in place, then the signal.
    let (new_cert, new_key) = estate.pki.server_files("second", "gateway two").unwrap();
    std::fs::copy(&new_cert, &estate.cert).unwrap();
    std::fs::copy(&new_key, &estate.key).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &estate.gateway.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let second = wait_for_change(first.clone()).await;
    assert_ne!(second, first);
    let heartbeat = charger.call_ok("Heartbeat", json!({})).await.unwrap();
    assert!(heartbeat.get("currentTime").is_some(), "{heartbeat}");

    // A file change alone (polled).
    let (third_cert, third_key) = estate.pki.server_files("third", "gateway three").unwrap();
    std::fs::copy(&third_key, &estate.key).unwrap();
    std::fs::copy(&third_cert, &estate.cert).unwrap();
    let third = wait_for_change(second.clone()).await;
    assert_ne!(third, second);

    // A broken file keeps the served certificate.
    let failures_before = estate
        .gateway
        .output()
        .matches("could not be reloaded")
        .count();
    std::fs::write(&estate.cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &estate.gateway.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while estate
        .gateway
        .output()
        .matches("could not be reloaded")
        .count()
        == failures_before
    {
        assert!(Instant::now() < deadline, "{}", estate.gateway.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        tls::served_certificate(&authority, &ca).await.unwrap(),
        third
    );
    let heartbeat = charger.call_ok("Heartbeat", json!({})).await.unwrap();
    assert!(heartbeat.get("currentTime").is_some(), "{heartbeat}");
    // Every reload the gateway logged is counted, by result: the file watcher may reload more
    // than once between two writes, so the log is the reference, read until it stands still.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged = |needle: &str| estate.gateway.output().matches(needle).count() as f64;
        let (ok_before, error_before) = (
            logged("TLS certificate reloaded"),
            logged("could not be reloaded"),
        );
        let ok = metric(
            admin,
            r#"voltgate_tls_reloads_total{listener="ocpp",result="ok"}"#,
        )
        .await;
        let error = metric(
            admin,
            r#"voltgate_tls_reloads_total{listener="ocpp",result="error"}"#,
        )
        .await;
        let settled = ok_before == logged("TLS certificate reloaded")
            && error_before == logged("could not be reloaded");
        if settled && ok == ok_before && error == error_before {
            assert!(ok >= 2.0, "the SIGHUP and the polled reload: {ok}");
            assert!(error > failures_before as f64, "{error}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metric ok={ok} error={error}, log ok={ok_before} error={error_before}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_api_can_be_served_over_https() {
    let pki = Pki::new("API CA").unwrap();
    let (cert, key) = pki.server_files("api", "voltgate api").unwrap();
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .arg("--api-tls-cert")
            .arg(cert.to_str().unwrap())
            .arg("--api-tls-key")
            .arg(key.to_str().unwrap()),
    )
    .expect("gateway starts");
    assert!(
        gateway.api_url.starts_with("https://"),
        "{}",
        gateway.api_url
    );
    let authority = tls::authority(&gateway.api_url).unwrap();
    let (status, text) = tls::https_get(&authority, &pki.ca_pem(), "/healthz", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let (status, _) = tls::https_get(
        &authority,
        &pki.ca_pem(),
        "/api/v1/scopes",
        Some(&gateway.admin_token),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let (status, text) =
        tls::https_get(&authority, &pki.ca_pem(), "/api/v1/scopes", Some("vg_nope"))
            .await
            .unwrap();
    assert_eq!(status, 401, "{text}");
    let plain = gateway.api().get("/healthz").await;
    assert!(
        plain.map(|reply| reply.status != 200).unwrap_or(true),
        "plain HTTP must not be answered on the HTTPS port"
    );
}

/// A 1.6 charger registered on site-a with [`PASSWORD`] (profile 1), connected and booted.
async fn booted_with_password(estate: &Estate, id: &str) -> Charger {
    estate
        .admin
        .post(
            "/api/v1/chargers",
            json!({"id": id, "scope": "site-a", "password": PASSWORD}),
        )
        .await
        .unwrap()
        .expect(201);
    let mut charger = Charger::connect_with(
        &estate.gateway.ocpp_url,
        id,
        &["ocpp1.6"],
        Some((id, PASSWORD)),
    )
    .await
    .expect("the password works");
    charger.boot().await.unwrap();
    charger
}

/// Rotates `id`'s password to `password` as `ops`; the charger is asked for exactly that
/// AuthorizationKey (the password in hex) and answers `answer`. Returns the API's reply.
async fn rotate_answered(
    estate: &Estate,
    charger: &mut Charger,
    id: &str,
    password: &'static str,
    answer: &str,
) -> Reply {
    let rotation = {
        let ops = estate.ops.clone();
        let path = format!("/api/v1/chargers/{id}/password");
        tokio::spawn(async move { ops.post(&path, json!({"password": password})).await })
    };
    let (call_id, action, payload) = charger
        .next_call(Duration::from_secs(10))
        .await
        .expect("the charger is asked");
    assert_eq!(action, "ChangeConfiguration");
    assert_eq!(
        payload,
        json!({"key": "AuthorizationKey", "value": hex(password)})
    );
    charger.reply(&call_id, json!({"status": answer})).unwrap();
    rotation.await.unwrap().unwrap().expect(200)
}

/// A password as a 1.6 AuthorizationKey carries it: its bytes in hexadecimal.
fn hex(password: &str) -> String {
    password.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn rotating_a_password_goes_through_the_charger_and_is_never_recorded() {
    const NEW: &str = "new battery staple 4";
    let estate = Estate::new(&[]).await;
    let url = estate.gateway.ocpp_url.clone();
    let mut charger = booted_with_password(&estate, "CP-K").await;

    let refused = estate
        .watcher
        .post("/api/v1/chargers/CP-K/password", json!({"password": NEW}))
        .await
        .unwrap()
        .expect(403);
    assert!(!refused.text.contains(NEW));
    charger
        .quiet(crate::QUIET)
        .await
        .unwrap_or_else(|e| panic!("nothing sent: {e}"));

    let reply = rotate_answered(&estate, &mut charger, "CP-K", NEW, "Accepted").await;
    assert_eq!(reply.body["password_changed"], true, "{}", reply.text);
    drop(charger);

    let old = Charger::try_connect(&url, "CP-K", &["ocpp1.6"], Some(("CP-K", PASSWORD)))
        .await
        .unwrap()
        .err()
        .expect("the old password is refused after rotation");
    assert_eq!(old.status, 401);
    Charger::connect_with(&url, "CP-K", &["ocpp1.6"], Some(("CP-K", NEW)))
        .await
        .expect("the new password works");

    let audit = estate
        .admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    assert!(
        !audit.text.contains(NEW),
        "the new password reached the audit log"
    );
    assert!(
        !estate.gateway.output().contains(NEW),
        "the new password was logged"
    );
    let commands: Vec<&Value> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "charger.security" && e["resource"] == "CP-K")
        .filter(|e| e["outcome"] == "ok: Accepted")
        .collect();
    assert_eq!(
        commands.len(),
        1,
        "the command, with the charger's answer: {commands:?}"
    );
    assert_eq!(commands[0]["principal"], "ops");
}

#[tokio::test]
async fn auto_registered_chargers_get_the_default_profile() {
    let estate = TlsGateway::start_with(&[
        "--auto-register",
        "site-a",
        "--default-security-profile",
        "3",
    ])
    .await;
    let admin = &estate.admin;
    let plain = Charger::try_connect(&estate.gateway.ocpp_url, "NEW-1", PROTOCOLS, None)
        .await
        .unwrap()
        .err()
        .expect("plain ws refused for a profile 3 default");
    assert_eq!(plain.status, 401, "{}", plain.body);
    admin
        .get("/api/v1/chargers/NEW-1")
        .await
        .unwrap()
        .expect(404);

    let identity = estate.pki.client("NEW-1", &[], Validity::Current).unwrap();
    match estate.over_tls("NEW-1", None, Some(&identity)).await {
        TlsAttempt::Connected(charger) => drop(boots(charger).await),
        other => panic!("{}", other.describe()),
    }
    let view = admin
        .get("/api/v1/chargers/NEW-1")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(view.body["security_profile"], 3, "{}", view.text);
}

#[tokio::test]
async fn a_rotation_counts_only_when_the_charger_takes_the_password() {
    const REJECTED: &str = "refused horse stap 7";
    const AFTER_REBOOT: &str = "after reboot stap 99";
    let estate = Estate::new(&[]).await;
    let url = estate.gateway.ocpp_url.clone();
    let mut charger = booted_with_password(&estate, "CP-R").await;
    for (password, answer, changed) in [
        (REJECTED, "Rejected", false),
        (AFTER_REBOOT, "RebootRequired", true),
    ] {
        let reply = rotate_answered(&estate, &mut charger, "CP-R", password, answer).await;
        assert_eq!(reply.body["status"], answer, "{}", reply.text);
        assert_eq!(reply.body["password_changed"], changed, "{}", reply.text);
    }
    drop(charger);

    for refused in [PASSWORD, REJECTED] {
        let status = Charger::try_connect(&url, "CP-R", &["ocpp1.6"], Some(("CP-R", refused)))
            .await
            .unwrap()
            .err()
            .expect("only the password the charger took is accepted")
            .status;
        assert_eq!(status, 401, "{refused}");
    }
    Charger::connect_with(&url, "CP-R", &["ocpp1.6"], Some(("CP-R", AFTER_REBOOT)))
        .await
        .expect("the password taken with RebootRequired works");
}

#[tokio::test]
async fn profile_3_needs_a_client_ca_even_with_the_tls_listener() {
    let pki = Pki::new("No client CA").unwrap();
    let (cert, key) = pki.server_files("server", "gateway two").unwrap();
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .arg("--ocpp-tls-listen")
            .arg("127.0.0.1:0")
            .arg("--tls-cert")
            .arg(cert.to_str().unwrap())
            .arg("--tls-key")
            .arg(key.to_str().unwrap()),
    )
    .expect("gateway starts");
    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    let refused = admin
        .post(
            "/api/v1/chargers",
            json!({"id": "CP-M", "scope": "site-a", "security_profile": 3}),
        )
        .await
        .unwrap()
        .expect(422);
    assert!(refused.text.contains("--tls-client-ca"), "{}", refused.text);
    admin
        .post(
            "/api/v1/chargers",
            json!({"id": "CP-M", "scope": "site-a", "security_profile": 2, "password": PASSWORD}),
        )
        .await
        .unwrap()
        .expect(201);
    let to_3 = admin
        .patch("/api/v1/chargers/CP-M", json!({"security_profile": 3}))
        .await
        .unwrap()
        .expect(422);
    assert!(to_3.text.contains("--tls-client-ca"), "{}", to_3.text);
}
