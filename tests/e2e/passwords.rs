//! Charger passwords as the OCPP security specifications have them, end to end: each version's
//! password rule on every path that sets one (with the audited exception for chargers deployed
//! with a weaker password), rotation with a given and a generated password on both versions
//! (1.6 `AuthorizationKey` in hex, 2.0.1 `BasicAuthPassword` as is), and chargers that take the
//! new password (a scripted one, the Python `ocpp` package, the simulator) or refuse it. Security
//! settings need `charger.security`, also when they come as `change-configuration` keys.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::api::Reply;
use voltgate_tests::{binary_path, Api, Charger, Gateway, GatewayOptions};

use crate::{Estate, QUIET};

/// Valid for both versions (16 bytes of `passwordString` characters), so usable before a
/// charger's version is known.
const FIRST: &str = "first-password-1";

fn protocol(version: &str) -> &'static str {
    if version == "1.6" {
        "ocpp1.6"
    } else {
        "ocpp2.0.1"
    }
}

/// The password a 1.6 `AuthorizationKey` carries, decoded as a charger does.
fn unhex(key: &str) -> String {
    assert!(key.len() % 2 == 0, "{key}");
    let bytes: Vec<u8> = (0..key.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&key[i..i + 2], 16).expect("hex digits"))
        .collect();
    String::from_utf8(bytes).expect("a text password")
}

async fn register(api: &Api, id: &str, password: &str) {
    api.post(
        "/api/v1/chargers",
        json!({"id": id, "scope": "site-a", "password": password}),
    )
    .await
    .unwrap()
    .expect(201);
}

async fn booted(estate: &Estate, id: &str, version: &str, password: &str) -> Charger {
    let mut charger = Charger::connect_with(
        &estate.gateway.ocpp_url,
        id,
        &[protocol(version)],
        Some((id, password)),
    )
    .await
    .expect("the password works");
    charger.boot().await.unwrap();
    charger
}

/// Starts a rotation of `id`'s password (`body` as given) as `ops`, answers the charger's
/// request with `answer`, and returns the API's reply and the password the charger was given.
async fn rotate(
    estate: &Estate,
    charger: &mut Charger,
    id: &str,
    version: &str,
    body: Value,
    answer: &str,
) -> (Reply, String) {
    let rotation = {
        let ops = estate.ops.clone();
        let path = format!("/api/v1/chargers/{id}/password");
        tokio::spawn(async move { ops.post(&path, body).await })
    };
    let (call_id, action, payload) = charger
        .next_call(Duration::from_secs(10))
        .await
        .expect("the charger is asked");
    let password = if version == "1.6" {
        assert_eq!(action, "ChangeConfiguration");
        assert_eq!(payload["key"], "AuthorizationKey");
        let key = payload["value"].as_str().unwrap();
        assert!(
            key.chars().all(|c| c.is_ascii_hexdigit()),
            "1.6 gets the password in hex: {key}"
        );
        charger.reply(&call_id, json!({"status": answer})).unwrap();
        unhex(key)
    } else {
        assert_eq!(action, "SetVariables");
        let datum = &payload["setVariableData"][0];
        assert_eq!(datum["component"]["name"], "SecurityCtrlr");
        assert_eq!(datum["variable"]["name"], "BasicAuthPassword");
        charger
            .reply(
                &call_id,
                json!({"setVariableResult": [{"attributeStatus": answer,
                    "component": datum["component"], "variable": datum["variable"]}]}),
            )
            .unwrap();
        datum["attributeValue"].as_str().unwrap().to_owned()
    };
    (rotation.await.unwrap().unwrap(), password)
}

async fn refused_status(estate: &Estate, id: &str, version: &str, password: &str) -> u16 {
    Charger::try_connect(
        &estate.gateway.ocpp_url,
        id,
        &[protocol(version)],
        Some((id, password)),
    )
    .await
    .unwrap()
    .err()
    .unwrap_or_else(|| panic!("{password:?} should be refused"))
    .status
}

async fn given_and_generated_rotations(version: &str, given: &str, generated_len: usize) {
    let estate = Estate::new(&[]).await;
    let id = format!("CP-ROT-{}", version.replace('.', ""));
    register(&estate.admin, &id, FIRST).await;
    let mut charger = booted(&estate, &id, version, FIRST).await;

    let (reply, sent) = rotate(
        &estate,
        &mut charger,
        &id,
        version,
        json!({"password": given}),
        "Accepted",
    )
    .await;
    let reply = reply.expect(200);
    assert_eq!(sent, given, "the charger decodes the password itself");
    assert_eq!(reply.body["password_changed"], true, "{}", reply.text);
    assert_eq!(reply.body["password_generated"], false, "{}", reply.text);
    drop(charger);
    assert_eq!(refused_status(&estate, &id, version, FIRST).await, 401);
    let mut charger = booted(&estate, &id, version, given).await;

    let (reply, generated) =
        rotate(&estate, &mut charger, &id, version, json!({}), "Accepted").await;
    let reply = reply.expect(200);
    assert_eq!(reply.body["password_generated"], true, "{}", reply.text);
    assert_eq!(reply.body["password_changed"], true, "{}", reply.text);
    assert!(
        !reply.text.contains(&generated),
        "a generated password is never shown"
    );
    assert_eq!(
        generated.len(),
        generated_len,
        "the longest the rule allows"
    );
    assert!(generated.chars().all(|c| c.is_ascii_alphanumeric()));
    drop(charger);
    assert_eq!(refused_status(&estate, &id, version, given).await, 401);
    let mut charger = booted(&estate, &id, version, &generated).await;

    // A charger that refuses the new password keeps the one it has, and so does the gateway.
    let (reply, refused) = rotate(&estate, &mut charger, &id, version, json!({}), "Rejected").await;
    let reply = reply.expect(200);
    assert_eq!(reply.body["status"], "Rejected", "{}", reply.text);
    assert_eq!(reply.body["password_changed"], false, "{}", reply.text);
    drop(charger);
    assert_eq!(refused_status(&estate, &id, version, &refused).await, 401);
    booted(&estate, &id, version, &generated).await;
}

#[tokio::test]
async fn rotation_on_1_6_sends_the_password_in_hex_given_or_generated() {
    given_and_generated_rotations("1.6", "given-password-20-by", 20).await;
}

#[tokio::test]
async fn rotation_on_2_0_1_sends_the_password_as_is_given_or_generated() {
    given_and_generated_rotations("2.0.1", "Given:Password@2.0.1|up-to-40*chars", 40).await;
}

fn assert_rule(reply: &Reply, words: &[&str]) {
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.body["error"], "password_rule", "{}", reply.text);
    for word in words {
        assert!(reply.text.contains(word), "{word:?} not in {}", reply.text);
    }
}

#[tokio::test]
async fn password_rules_are_refused_with_their_reason_on_every_path() {
    let estate = Estate::new(&[]).await;
    let ops = &estate.ops;
    // Registration, before the version is known: either version's rule.
    let short = ops
        .post(
            "/api/v1/chargers",
            json!({"id": "CP-SHORT", "scope": "site-a", "password": "short-secret"}),
        )
        .await
        .unwrap();
    assert_rule(
        &short,
        &[
            "OCPP 1.6",
            "16 to 20 bytes",
            "OCPP 2.0.1",
            "legacy_password",
        ],
    );
    assert!(!short.text.contains("short-secret"));
    ops.get("/api/v1/chargers/CP-SHORT")
        .await
        .unwrap()
        .expect(404);

    for (id, version) in [("CP-R16", "1.6"), ("CP-R201", "2.0.1")] {
        register(ops, id, FIRST).await;
        let mut charger = booted(&estate, id, version, FIRST).await;
        // Now the charger's own version decides, on PATCH and on rotation alike.
        let (breaks, words): (&[&str], &[&str]) = if version == "1.6" {
            (
                &["twenty-one-bytes-long", "fifteen-bytes-x"],
                &["OCPP 1.6", "16 to 20 bytes"],
            )
        } else {
            (
                &[&"x".repeat(41), "fifteen-chars-x"],
                &["OCPP 2.0.1", "16 to 40 characters"],
            )
        };
        for password in breaks {
            let patched = ops
                .patch(
                    &format!("/api/v1/chargers/{id}"),
                    json!({"password": password}),
                )
                .await
                .unwrap();
            assert_rule(&patched, words);
            let rotated = ops
                .post(
                    &format!("/api/v1/chargers/{id}/password"),
                    json!({"password": password}),
                )
                .await
                .unwrap();
            assert_rule(&rotated, words);
        }
        if version == "2.0.1" {
            let spaced = ops
                .post(
                    &format!("/api/v1/chargers/{id}/password"),
                    json!({"password": "spaces are not allowed"}),
                )
                .await
                .unwrap();
            assert_rule(&spaced, &["passwordString"]);
        }
        assert!(charger.next_call(QUIET).await.is_none(), "nothing was sent");
        drop(charger);
        booted(&estate, id, version, FIRST).await;
    }
}

#[tokio::test]
async fn a_weak_deployed_password_needs_an_audited_exception() {
    let estate = Estate::new(&[]).await;
    let ops = &estate.ops;
    const WEAK: &str = "1234";
    const REASON: &str = "installed 2019; firmware cannot change its password";
    register(ops, "CP-OLD", FIRST).await;
    let refused = ops
        .patch("/api/v1/chargers/CP-OLD", json!({"password": WEAK}))
        .await
        .unwrap();
    assert_rule(&refused, &["legacy_password"]);
    ops.patch(
        "/api/v1/chargers/CP-OLD",
        json!({"password": WEAK, "legacy_password": "  "}),
    )
    .await
    .unwrap()
    .expect(422);
    ops.patch(
        "/api/v1/chargers/CP-OLD",
        json!({"password": WEAK, "legacy_password": REASON}),
    )
    .await
    .unwrap()
    .expect(200);
    // The same exception at registration.
    ops.post(
        "/api/v1/chargers",
        json!({"id": "CP-OLD-2", "scope": "site-a", "password": WEAK, "legacy_password": REASON}),
    )
    .await
    .unwrap()
    .expect(201);
    booted(&estate, "CP-OLD", "1.6", WEAK).await;
    booted(&estate, "CP-OLD-2", "2.0.1", WEAK).await;

    let audit = estate
        .admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let exceptions: Vec<&Value> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "legacy_password")
        .collect();
    assert_eq!(exceptions.len(), 2, "{exceptions:?}");
    for entry in exceptions {
        assert_eq!(entry["principal"], "ops");
        assert_eq!(entry["action"], "charger.security");
        assert!(
            entry["reason"].as_str().unwrap().contains(REASON),
            "{entry}"
        );
    }
    assert!(
        !audit.text.contains(WEAK),
        "the password reached the audit log"
    );
}

#[tokio::test]
async fn a_generated_password_is_shown_once_at_registration() {
    let estate = Estate::new(&[]).await;
    let created = estate
        .ops
        .post(
            "/api/v1/chargers",
            json!({"id": "CP-GEN", "scope": "site-a", "generate_password": true}),
        )
        .await
        .unwrap()
        .expect(201);
    let password = created.body["password"].as_str().expect("shown once");
    assert_eq!(password.len(), 20, "valid for both versions");
    assert_eq!(created.body["security_profile"], 1);
    let view = estate
        .ops
        .get("/api/v1/chargers/CP-GEN")
        .await
        .unwrap()
        .expect(200);
    assert!(!view.text.contains(password));
    let list = estate
        .ops
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(200);
    assert!(!list.text.contains(password));
    booted(&estate, "CP-GEN", "2.0.1", password).await;
    estate
        .ops
        .post(
            "/api/v1/chargers",
            json!({"id": "CP-GEN-2", "scope": "site-a", "generate_password": true,
                   "password": FIRST}),
        )
        .await
        .unwrap()
        .expect(422);
}

fn python() -> String {
    std::env::var("VOLTGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

async fn next_event(events: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .ok()
        .flatten()
        .expect("the python charger reports progress")
}

/// The Python `ocpp` package as the charger: it takes a given and a generated password
/// (decoding the 1.6 hex itself) and reconnects with each, then refuses a third and reconnects
/// with the one it kept.
async fn python_charger_rotations(version: &str, given: &str) {
    let estate = Estate::new(&[]).await;
    let id = format!("PY-PW-{}", version.replace('.', ""));
    register(&estate.admin, &id, FIRST).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/e2e/third_party_password_charger.py"
    );
    let mut child = Command::new(python())
        .args([
            script,
            &estate.gateway.ocpp_url,
            &id,
            version,
            FIRST,
            "Accepted,Accepted,Rejected",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs (the suite needs the `ocpp` and `websockets` packages)");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(event);
            }
        }
    });
    let first = next_event(&mut events).await;
    assert_eq!(first["event"], "booted", "{first}");
    let path = format!("/api/v1/chargers/{id}/password");
    for (body, changed) in [
        (json!({"password": given}), true),
        (json!({}), true),
        (json!({}), false),
    ] {
        let reply = estate.ops.post(&path, body).await.unwrap().expect(200);
        assert_eq!(reply.body["password_changed"], changed, "{}", reply.text);
        let set = next_event(&mut events).await;
        assert_eq!(set["event"], "password_set", "{set}");
        assert_eq!(set["valid"], true, "{set}");
        let again = next_event(&mut events).await;
        assert_eq!(
            (again["event"].as_str(), again["status"].as_str()),
            (Some("booted"), Some("Accepted")),
            "the charger reconnects with the password it holds: {again}"
        );
    }
    assert_eq!(next_event(&mut events).await["event"], "finished");
    let status = child.wait().expect("python exits");
    assert!(status.success(), "the python charger failed: {status}");
}

#[tokio::test]
async fn python_ocpp_charger_takes_rotated_passwords_v16() {
    python_charger_rotations("1.6", "python-given-pw-1-6").await;
}

#[tokio::test]
async fn python_ocpp_charger_takes_rotated_passwords_v201() {
    python_charger_rotations("2.0.1", "python-given-password-for-2.0.1").await;
}

/// The simulator as the charger: after each rotation it is reset and must reconnect with the
/// password it was sent (the old one is refused by then).
async fn simulator_rotations(version: &str) {
    let estate = Estate::new(&[]).await;
    let id = format!("SIM{}000001", version.replace('.', ""));
    let prefix = id.trim_end_matches("000001").to_owned();
    register(&estate.admin, &id, FIRST).await;
    let simulator = binary_path("voltgate-sim").unwrap();
    let mut run = tokio::process::Command::new(simulator)
        .args(["--url", &estate.gateway.ocpp_url, "--chargers", "1"])
        .args(["--id-prefix", &prefix, "--ocpp", version])
        .args(["--password", FIRST, "--duration", "60", "--ramp", "0"])
        .args(["--heartbeat", "3600", "--meter-interval", "0", "--quiet"])
        .kill_on_drop(true)
        .stdout(Stdio::null())
        .spawn()
        .expect("the simulator runs");
    let since = connected_since(&estate.ops, &id, None).await;
    let path = format!("/api/v1/chargers/{id}/password");
    let mut since = since;
    for body in [json!({"password": "sim-given-password16"}), json!({})] {
        let reply = estate.ops.post(&path, body).await.unwrap().expect(200);
        assert_eq!(reply.body["password_changed"], true, "{}", reply.text);
        estate
            .ops
            .command(&id, "reset", json!({"type": "hard"}))
            .await
            .unwrap()
            .expect(200);
        since = connected_since(&estate.ops, &id, Some(&since)).await;
    }
    let refusals = estate
        .admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let failed_logins = refusals.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"] == id.as_str() && e["allowed"] == false)
        .count();
    assert_eq!(
        failed_logins, 0,
        "the simulator always had the right password"
    );
    run.kill().await.ok();
}

/// Waits until `id` is connected with a `connected_since` other than `previous`.
async fn connected_since(api: &Api, id: &str, previous: Option<&str>) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let view = api
            .get(&format!("/api/v1/chargers/{id}"))
            .await
            .unwrap()
            .expect(200);
        if let Some(since) = view.body["connected_since"].as_str() {
            if view.body["connected"] == true && Some(since) != previous {
                return since.to_owned();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} did not (re)connect: {}",
            view.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn simulated_1_6_charger_reconnects_with_rotated_passwords() {
    simulator_rotations("1.6").await;
}

#[tokio::test]
async fn simulated_2_0_1_charger_reconnects_with_rotated_passwords() {
    simulator_rotations("2.0.1").await;
}

/// A `zaptec` gateway whose preset file lets installation owners change configuration keys
/// too, so the test can tell `command.change-configuration` from `charger.security`.
fn zaptec_with_owner_configuration() -> (Gateway, tempfile::TempDir) {
    let preset = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/voltgate-policy/presets/zaptec.toml"
    ))
    .unwrap();
    let original = "\"command.change-configuration\" = [\"modify-technical-settings\"]";
    assert!(preset.contains(original));
    let preset = preset.replace(
        original,
        "\"command.change-configuration\" = [\"modify-technical-settings\", \"control-access-and-local-settings\"]",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zaptec.toml");
    std::fs::write(&path, preset).unwrap();
    let gateway = Gateway::start(GatewayOptions::preset(path.to_str().unwrap())).unwrap();
    (gateway, dir)
}

#[tokio::test]
async fn security_settings_need_their_own_action() {
    let (gateway, _preset_dir) = zaptec_with_owner_configuration();
    let admin = gateway.api();
    admin
        .scope("inst-1", "installation", "root")
        .await
        .unwrap()
        .expect(201);
    register_at(&admin, "ZAP-1", "inst-1").await;
    for (who, role) in [("olivia", "installation-owner"), ("sam", "service")] {
        admin
            .principal(who, "operator", "inst-1")
            .await
            .unwrap()
            .expect(201);
        admin.assign(who, role, "inst-1").await.unwrap().expect(201);
    }
    let owner = gateway.api_as(&admin.token_for("olivia").await.unwrap());
    let service = gateway.api_as(&admin.token_for("sam").await.unwrap());
    let mut charger = Charger::connect_with(
        &gateway.ocpp_url,
        "ZAP-1",
        &["ocpp1.6"],
        Some(("ZAP-1", FIRST)),
    )
    .await
    .unwrap();
    charger.boot().await.unwrap();

    // The owner edits the charger, but not how it authenticates.
    for change in [
        json!({"security_profile": 0}),
        json!({"password": "owner-chosen-pw-16"}),
    ] {
        owner
            .patch("/api/v1/chargers/ZAP-1", change)
            .await
            .unwrap()
            .expect(403);
    }
    owner
        .post("/api/v1/chargers/ZAP-1/password", json!({}))
        .await
        .unwrap()
        .expect(403);
    // Configuration keys: ordinary ones pass, security ones need `charger.security`.
    for key in [
        "AuthorizationKey",
        "SecurityProfile",
        "SecurityCtrlr.BasicAuthPassword",
        "NetworkConfiguration.OcppCsmsUrl",
    ] {
        owner
            .command(
                "ZAP-1",
                "change-configuration",
                json!({"key": key, "value": "3132333435363738393031323334353637"}),
            )
            .await
            .unwrap()
            .expect(403);
    }
    assert!(charger.next_call(QUIET).await.is_none(), "nothing was sent");
    let ordinary = {
        let owner = owner.clone();
        tokio::spawn(async move {
            owner
                .command(
                    "ZAP-1",
                    "change-configuration",
                    json!({"key": "HeartbeatInterval", "value": "60"}),
                )
                .await
        })
    };
    let (call_id, action, payload) = charger
        .next_call(Duration::from_secs(10))
        .await
        .expect("an ordinary key reaches the charger");
    assert_eq!(action, "ChangeConfiguration");
    assert_eq!(payload["key"], "HeartbeatInterval");
    charger
        .reply(&call_id, json!({"status": "Accepted"}))
        .unwrap();
    ordinary.await.unwrap().unwrap().expect(200);

    // Service may.
    service
        .patch("/api/v1/chargers/ZAP-1", json!({"security_profile": 1}))
        .await
        .unwrap()
        .expect(200);
    let audit = admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let refused = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["principal"] == "olivia" && e["action"] == "charger.security" && e["allowed"] == false
        })
        .count();
    assert_eq!(refused, 7, "every refusal is audited as charger.security");
}

async fn register_at(admin: &Api, id: &str, scope: &str) {
    admin
        .post(
            "/api/v1/chargers",
            json!({"id": id, "scope": scope, "password": FIRST}),
        )
        .await
        .unwrap()
        .expect(201);
}

#[tokio::test]
async fn the_api_description_says_which_answers_replace_a_rotated_password() {
    let estate = Estate::new(&[]).await;
    let document = estate
        .admin
        .get("/api/v1/openapi.json")
        .await
        .unwrap()
        .expect(200);
    let rotation = &document.body["paths"]["/api/v1/chargers/{id}/password"]["post"];
    let text = rotation.to_string();
    for word in ["Accepted", "RebootRequired", "charger.security"] {
        assert!(text.contains(word), "{word} missing from {text}");
    }
}
