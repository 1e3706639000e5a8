//! The gateway's life cycle as an operator's process manager sees it: graceful shutdown on
//! SIGTERM (chargers told to go elsewhere, operators answered, nothing acknowledged lost), the
//! readiness probe during shutdown, a second signal, and the configuration file.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinHandle;
use voltgate_tests::api::Reply;
use voltgate_tests::{binary_path, Api, Charger, Gateway, GatewayOptions};

/// How long a test waits for something the gateway does at once.
const PROMPTLY: Duration = Duration::from_secs(5);

async fn charger_on_site(gateway: &Gateway, id: &str, subprotocol: &str) -> Charger {
    let admin = gateway.api();
    admin.charger(id, "site-a").await.unwrap().expect(201);
    let mut charger = Charger::connect(&gateway.ocpp_url, id, &[subprotocol])
        .await
        .unwrap();
    assert_eq!(charger.subprotocol, subprotocol);
    let boot = charger.boot().await.unwrap();
    assert_eq!(boot["status"], "Accepted", "{boot}");
    charger
}

fn gateway_with(args: &[&str]) -> Gateway {
    let mut options = GatewayOptions::preset("connect");
    for arg in args {
        options = options.arg(arg);
    }
    Gateway::start(options).unwrap()
}

async fn site(gateway: &Gateway) {
    gateway
        .api()
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
}

/// Sends a reset to `charger` in the background and returns once the charger holds the CALL
/// (unanswered), with the CALL's message id.
async fn command_in_flight(admin: &Api, charger: &mut Charger) -> (JoinHandle<Reply>, String) {
    let api = admin.clone();
    let charger_id = charger.id.clone();
    let pending = tokio::spawn(async move {
        api.command(&charger_id, "reset", json!({"type": "soft"}))
            .await
            .unwrap()
    });
    let (message_id, action, _) = charger
        .next_call(PROMPTLY)
        .await
        .expect("the command reaches the charger");
    assert_eq!(action, "Reset");
    (pending, message_id)
}

async fn poll_until_not_ready(gateway: &Gateway) -> Reply {
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let reply = gateway.api().get("/readyz").await.unwrap();
        if reply.status == 503 {
            return reply;
        }
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(Instant::now() < deadline, "readyz never turned 503");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sigterm_closes_chargers_with_1001_answers_the_open_command_and_loses_nothing() {
    // Half of it for open requests, then up to two seconds for the chargers' close handshakes
    // (the scripted chargers never send their half).
    let shutdown_timeout = Duration::from_secs(6);
    let mut gateway = gateway_with(&["--shutdown-timeout", "6s", "--command-timeout", "60s"]);
    site(&gateway).await;
    let admin = gateway.api();
    let mut old = charger_on_site(&gateway, "CP-OLD", "ocpp1.6").await;
    let mut new = charger_on_site(&gateway, "CP-NEW", "ocpp2.0.1").await;
    let started = old
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "ANY", "meterStart": 5,
                   "timestamp": "2026-11-25T10:00:00Z"}),
        )
        .await
        .unwrap();
    let transaction_id = started["transactionId"].as_i64().unwrap();
    let (pending, _unanswered) = command_in_flight(&admin, &mut new).await;

    let signalled = Instant::now();
    gateway.signal("TERM").unwrap();

    let answer = tokio::time::timeout(shutdown_timeout, pending)
        .await
        .expect("the open command is answered before the shutdown timeout")
        .unwrap();
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.body["error"], "shutting_down", "{}", answer.text);
    assert_eq!(
        answer.body["message"], "the gateway is shutting down",
        "{}",
        answer.text
    );
    assert_eq!(old.closed(PROMPTLY).await, Some(Some(1001)));
    assert_eq!(new.closed(PROMPTLY).await, Some(Some(1001)));
    // The bound under test is the gateway's own: it measures its shutdown and logs it. From
    // outside, process exit and this test's polling add scheduling delay on a loaded machine,
    // so the wall-clock check only allows the shutdown timeout plus the usual slack.
    let status = gateway.wait_exit(shutdown_timeout + PROMPTLY).unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}\n{}", gateway.output());
    let output = gateway.output();
    let took_ms: u64 = output
        .lines()
        .filter(|line| line.contains("gateway stopped"))
        .find_map(|line| {
            line.split("took_ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no clean stop with its duration logged:\n{output}"));
    assert!(
        Duration::from_millis(took_ms) <= shutdown_timeout,
        "the gateway took {took_ms} ms to stop (observed from outside: {took:?})"
    );

    let gateway = Gateway::start_in(GatewayOptions::preset("connect"), gateway.kill()).unwrap();
    assert!(
        gateway
            .api()
            .lists_transaction(transaction_id)
            .await
            .unwrap(),
        "transaction {transaction_id} is gone after the restart"
    );
}

#[tokio::test]
async fn readyz_is_503_while_shutdown_waits_for_an_open_command_that_then_completes() {
    let mut gateway = gateway_with(&["--shutdown-timeout", "20s", "--command-timeout", "60s"]);
    site(&gateway).await;
    let admin = gateway.api();
    let ready = admin.get("/readyz").await.unwrap().expect(200);
    assert_eq!(ready.body, json!({"status": "ready"}));
    let mut charger = charger_on_site(&gateway, "CP-WAIT", "ocpp1.6").await;
    let (pending, message_id) = command_in_flight(&admin, &mut charger).await;

    gateway.signal("TERM").unwrap();
    let not_ready = poll_until_not_ready(&gateway).await;
    assert_eq!(not_ready.body, json!({"status": "shutting down"}));
    let refused = admin.get("/api/v1/chargers").await.unwrap().expect(503);
    assert_eq!(refused.body["error"], "shutting_down", "{}", refused.text);
    assert!(
        gateway.wait_exit(Duration::from_millis(200)).is_err(),
        "the gateway must wait for the open command"
    );

    charger
        .reply(&message_id, json!({"status": "Accepted"}))
        .unwrap();
    let answer = tokio::time::timeout(PROMPTLY, pending)
        .await
        .expect("the command completes")
        .unwrap()
        .expect(200);
    assert_eq!(answer.body["status"], "Accepted", "{}", answer.text);
    assert_eq!(charger.closed(PROMPTLY).await, Some(Some(1001)));
    let status = gateway.wait_exit(PROMPTLY).unwrap();
    assert!(status.success(), "{status:?}\n{}", gateway.output());
    let log = gateway.stderr_lines();
    assert!(
        log.iter().any(|line| line.contains("shutting down")),
        "{log:#?}"
    );
    assert!(
        log.iter().all(|line| !line.contains('\u{1b}')),
        "text logs to a pipe must carry no colour codes: {log:#?}"
    );
}

#[tokio::test]
async fn a_second_signal_during_shutdown_exits_at_once() {
    let mut gateway = gateway_with(&["--shutdown-timeout", "60s", "--command-timeout", "60s"]);
    site(&gateway).await;
    let admin = gateway.api();
    let mut charger = charger_on_site(&gateway, "CP-HOLD", "ocpp2.0.1").await;
    let (_pending, _unanswered) = command_in_flight(&admin, &mut charger).await;

    gateway.signal("TERM").unwrap();
    poll_until_not_ready(&gateway).await;
    let second = Instant::now();
    gateway.signal("INT").unwrap();
    let status = gateway.wait_exit(Duration::from_secs(2)).unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(second.elapsed() < Duration::from_secs(2));
    let deadline = Instant::now() + PROMPTLY;
    while !gateway.output().contains("second signal") {
        assert!(Instant::now() < deadline, "{}", gateway.output());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_shutdown_that_overruns_its_timeout_exits_non_zero_naming_what_was_open() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let mut gateway = gateway_with(&["--shutdown-timeout", "1s"]);
    site(&gateway).await;
    let admin = gateway.api();
    admin
        .charger("CP-MUTE", "site-a")
        .await
        .unwrap()
        .expect(201);
    // A charger that connects and then never reads: it cannot take part in the close
    // handshake, so its connection outlives the timeout.
    let mut request = gateway
        .charger_url("CP-MUTE")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse().unwrap());
    let (mute, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let deadline = Instant::now() + PROMPTLY;
    while admin.get("/api/v1/chargers/CP-MUTE").await.unwrap().body["connected"] != true {
        assert!(
            Instant::now() < deadline,
            "CP-MUTE never showed as connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    gateway.signal("TERM").unwrap();
    let status = gateway.wait_exit(PROMPTLY).unwrap();
    assert!(!status.success(), "{status:?}");
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let log = gateway.stderr_lines();
        if log.iter().any(|line| {
            line.contains("shutdown timed out") && line.contains("1 charger connection")
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "no timeout line: {log:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(mute);
}

/// Runs the binary with only the given environment.
fn voltgate(args: &[&str], envs: &[(&str, &str)], dir: &std::path::Path) -> Output {
    let mut command = Command::new(binary_path("voltgate").unwrap());
    command.current_dir(dir).env_clear().args(args);
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_bad_configuration_file_stops_start_up_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        "api-listen = \"127.0.0.1:0\"\nocpp-listn = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let bad_value = dir.path().join("bad-value.toml");
    std::fs::write(
        &bad_value,
        "db = \"sqlite::memory:\"\ncommand-timeout = \"soon\"\n",
    )
    .unwrap();
    let listen = [
        "--api-listen",
        "127.0.0.1:0",
        "--ocpp-listen",
        "127.0.0.1:0",
    ];

    let out = voltgate(
        &[&["--config", unknown.to_str().unwrap()][..], &listen[..]].concat(),
        &[],
        dir.path(),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2:1: unknown key `ocpp-listn`",
            unknown.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("known keys:") && stderr.contains("ocpp-listen"),
        "{stderr}"
    );
    assert!(
        !text(&out.stdout).contains("listening"),
        "it must not start"
    );

    let out = voltgate(
        &["serve"],
        &[("VOLTGATE_CONFIG", bad_value.to_str().unwrap())],
        dir.path(),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2:19: invalid value for `command-timeout`",
            bad_value.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("is not a duration"), "{stderr}");

    let out = voltgate(
        &["config", "check", bad_value.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(":2:19: invalid value for `command-timeout`"));
}

/// `key -> (value, source)` from `config check` output (each line is TOML, the source a comment).
fn settings(listing: &str) -> std::collections::HashMap<String, (toml::Value, String)> {
    let table: toml::Table = toml::from_str(listing).expect("config check prints TOML");
    listing
        .lines()
        .filter_map(|line| {
            let (key, _) = line.split_once(" = ")?;
            let (_, source) = line.rsplit_once("  # ")?;
            let value = table.get(key)?.clone();
            Some((key.to_owned(), (value, source.to_owned())))
        })
        .collect()
}

#[test]
fn flags_override_environment_override_file_in_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        "ocpp-listen = \"127.0.0.1:7101\"\napi-listen = \"127.0.0.1:7102\"\n\
         db = \"sqlite://file.db\"\nheartbeat-interval = 120\n\
         admin-token = \"vg_from_the_file_0123456789\"\n",
    )
    .unwrap();
    let out = voltgate(
        &[
            "config",
            "check",
            file.to_str().unwrap(),
            "--db",
            "sqlite://flag.db",
        ],
        &[
            ("VOLTGATE_API_LISTEN", "127.0.0.1:7202"),
            ("VOLTGATE_DB", "sqlite://env.db"),
        ],
        dir.path(),
    );
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{listing}{}", text(&out.stderr));
    let found = settings(&listing);
    let get = |key: &str| {
        found
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} missing: {listing}"))
    };
    let string = |text: &str| toml::Value::String(text.to_owned());
    assert_eq!(get("db"), (string("sqlite://flag.db"), "flag".to_owned()));
    assert_eq!(
        get("api-listen"),
        (string("127.0.0.1:7202"), "environment".to_owned())
    );
    assert_eq!(
        get("ocpp-listen"),
        (string("127.0.0.1:7101"), "file".to_owned())
    );
    assert_eq!(
        get("heartbeat-interval"),
        (toml::Value::Integer(120), "file".to_owned())
    );
    assert_eq!(get("preset"), (string("connect"), "default".to_owned()));
    assert_eq!(
        get("shutdown-timeout"),
        (string("10s"), "default".to_owned())
    );
    assert_eq!(get("admin-token").0, string("<redacted>"));
    assert!(!listing.contains("vg_from_the_file"), "{listing}");
}
