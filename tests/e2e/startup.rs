//! What the gateway says and refuses at start: a wrong setup stops it with the reason before
//! anything is created, a doubtful one is a warning, and the start-up lines name what runs in
//! either log format; `voltgate admin reset-token` is the way back in without the admin token;
//! database and NATS passwords given in the environment are shown by neither `--help` nor
//! `config check`.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use voltgate_tests::gateway::banner_value;
use voltgate_tests::{binary_path, Gateway, GatewayOptions};

/// Runs `voltgate` with `args` on loopback ports; it must exit with a failure within a few
/// seconds (a gateway that starts instead is killed and fails the test).
fn refused_start(args: &[&str]) -> (Output, String) {
    let mut child = Command::new(binary_path("voltgate").unwrap())
        .args([
            "--ocpp-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.code().is_some_and(|code| code != 0),
        "not refused ({:?}): {stderr}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    (output, stderr)
}

#[test]
fn an_auto_register_scope_whose_kind_cannot_hold_chargers_is_refused_with_the_kinds_that_can() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("v.db").display());
    let (output, stderr) =
        refused_start(&["--db", &db, "--preset", "virta", "--auto-register", "root"]);
    assert!(
        stderr.contains("kind `root`") && stderr.contains("cannot hold chargers"),
        "{stderr}"
    );
    assert!(
        stderr.contains("name a scope of kind: organisation"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("admin token"),
        "no admin token was issued"
    );
}

#[test]
fn a_database_in_a_missing_directory_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let db = format!("sqlite://{}", missing.join("voltgate.db").display());
    let (_, stderr) = refused_start(&["--db", &db]);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(!missing.exists());
}

#[test]
fn a_cluster_on_a_sqlite_database_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("voltgate.db");
    let db = format!("sqlite://{}", path.display());
    let (_, stderr) = refused_start(&["--db", &db, "--cluster", "nats://127.0.0.1:4222"]);
    assert!(
        stderr.contains("--cluster needs a database every node shares"),
        "{stderr}"
    );
    assert!(!path.exists(), "the SQLite file was created");
}

#[test]
fn security_profiles_without_their_tls_settings_are_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("voltgate.db");
    let db = format!("sqlite://{}", path.display());
    for (args, says) in [
        (
            &["--default-security-profile", "2"][..],
            "--default-security-profile 2 needs --ocpp-tls-listen",
        ),
        (
            // Files that do not exist: the combination is refused before any is read.
            &[
                "--default-security-profile",
                "3",
                "--ocpp-tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                "/nonexistent/cert.pem",
                "--tls-key",
                "/nonexistent/key.pem",
            ][..],
            "--default-security-profile 3 needs --tls-client-ca",
        ),
        (&["--ocpp-tls-listen", "127.0.0.1:0"][..], "--tls-cert"),
        (&["--preset", "no-such-preset"][..], "no-such-preset"),
    ] {
        let mut all = vec!["--db", db.as_str()];
        all.extend_from_slice(args);
        let (_, stderr) = refused_start(&all);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!path.exists(), "{args:?}: the SQLite file was created");
    }
}

#[test]
fn malformed_cluster_addresses_and_node_names_are_refused_naming_the_value() {
    for (flag, value) in [
        ("--cluster", "http://127.0.0.1:4222"),
        ("--cluster", "nats://127.0.0.1"),
        ("--cluster", "nats://127.0.0.1:4222,nats://:4223"),
        ("--node-id", "node.one"),
        ("--node-id", "node/one"),
    ] {
        let (_, stderr) = refused_start(&[flag, value]);
        assert!(
            stderr.contains(flag) && stderr.contains(value),
            "{flag} {value}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_scope_that_does_not_exist_yet_is_a_warning_naming_the_kinds() {
    let gateway = Gateway::start(
        GatewayOptions::preset("virta")
            .arg("--auto-register")
            .arg("not-yet"),
    )
    .unwrap();
    let warning = gateway
        .stderr_lines()
        .into_iter()
        .find(|line| line.contains("does not exist yet"));
    let warning = warning.unwrap_or_else(|| panic!("no warning: {}", gateway.output()));
    assert!(
        warning.contains("WARN") && warning.contains("organisation"),
        "{warning}"
    );
}

#[tokio::test]
async fn under_json_every_start_up_line_is_json_and_names_database_preset_listeners_and_node() {
    let gateway = Gateway::start(
        GatewayOptions::preset("tenant")
            .arg("--log-format")
            .arg("json")
            .arg("--expected-chargers")
            .arg("100000000"),
    )
    .unwrap();
    // The start line follows the listeners' lines; wait for it rather than race it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gateway.output().contains("gateway started") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let output = gateway.output();
    let lines: Vec<Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let started = lines
        .iter()
        .find(|line| line["message"] == "gateway started")
        .unwrap_or_else(|| panic!("no start line: {output}"));
    assert_eq!(started["preset"], "tenant", "{started}");
    assert!(
        started["database"]
            .as_str()
            .is_some_and(|db| db.starts_with("sqlite://") && db.ends_with("voltgate.db")),
        "{started}"
    );
    assert_eq!(started["ocpp"].as_str(), Some(gateway.ocpp_url.as_str()));
    assert_eq!(started["api"].as_str(), Some(gateway.api_url.as_str()));
    assert!(
        started["node"]
            .as_str()
            .is_some_and(|node| !node.is_empty()),
        "{started}"
    );
    let limit = lines
        .iter()
        .find(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot hold the expected chargers"))
        })
        .unwrap_or_else(|| panic!("no open-file warning: {output}"));
    assert_eq!(limit["level"], "WARN");
    assert_eq!(limit["expected_chargers"], 100_000_000);
}

#[tokio::test]
async fn the_open_file_warning_is_quiet_when_the_expected_chargers_fit() {
    let gateway = Gateway::start(
        GatewayOptions::preset("tenant")
            .arg("--expected-chargers")
            .arg("10"),
    )
    .unwrap();
    gateway.api().get("/healthz").await.unwrap().expect(200);
    let output = gateway.output();
    assert!(output.contains("open-file limit"), "{output}");
    assert!(
        !output.contains("cannot hold the expected chargers"),
        "{output}"
    );
}

#[tokio::test]
async fn admin_reset_token_issues_a_new_token_and_revokes_the_old_ones() {
    let gateway = Gateway::start(GatewayOptions::preset("connect")).unwrap();
    let old = gateway.api();
    old.get("/api/v1/principals").await.unwrap().expect(200);
    let db = format!(
        "sqlite://{}",
        gateway.workdir.path().join("voltgate.db").display()
    );
    let reset = Command::new(binary_path("voltgate").unwrap())
        .args(["admin", "reset-token", "--db", &db])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&reset.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&reset.stderr).into_owned();
    assert!(reset.status.success(), "{stderr}");
    assert!(stderr.contains("revoked 1 earlier admin token"), "{stderr}");
    let token = stdout
        .lines()
        .find_map(|line| banner_value(line, "voltgate: admin token"))
        .unwrap_or_else(|| panic!("no token printed: {stdout}"));
    // The running gateway reads tokens from the store: the old one is refused at once.
    old.get("/api/v1/principals").await.unwrap().expect(401);
    gateway
        .api_as(&token)
        .get("/api/v1/principals")
        .await
        .unwrap()
        .expect(200);

    let empty = tempfile::tempdir().unwrap();
    let fresh = format!("sqlite://{}", empty.path().join("fresh.db").display());
    let refused = Command::new(binary_path("voltgate").unwrap())
        .args(["admin", "reset-token", "--db", &fresh])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no principal `admin`"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn accepts_refused_at_the_open_file_limit_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("v.db").display());
    // `ulimit -n` lowers the hard limit too, so the gateway cannot raise itself past it.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 128 && exec \"$0\" \"$@\"")
        .arg(binary_path("voltgate").unwrap())
        .args([
            "--ocpp-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--db",
            &db,
            "--admin-token",
            "vg_open_file_limit_test_token",
            "--expected-chargers",
            "1000",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ocpp, api) = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        let (mut ocpp, mut api) = (None, None);
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            ocpp = ocpp.or_else(|| banner_value(&line, "voltgate: ocpp listening on"));
            api = api.or_else(|| banner_value(&line, "voltgate: api listening on"));
            if ocpp.is_some() && api.is_some() {
                break;
            }
        }
        (ocpp.unwrap(), api.unwrap())
    })
    .await
    .unwrap();
    let address = ocpp
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Ok(stream) = tokio::net::TcpStream::connect(&address).await {
            held.push(stream);
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(held);
    let mut refused = 0.0;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let Ok(response) = reqwest::get(format!("{api}/metrics")).await else {
            continue;
        };
        let text = response.text().await.unwrap_or_default();
        refused = crate::metric_if_present(
            &text,
            r#"voltgate_accept_errors_total{listener="ocpp",reason="too_many_open_files"}"#,
        )
        .unwrap_or(0.0);
        if refused > 0.0 {
            break;
        }
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(refused > 0.0, "no failed accept counted; stderr:\n{stderr}");
    assert!(
        stderr.contains("cannot hold the expected chargers"),
        "{stderr}"
    );
}

#[test]
fn database_and_nats_passwords_from_the_environment_are_never_shown() {
    let with_secrets = |args: &[&str]| {
        Command::new(binary_path("voltgate").unwrap())
            .args(args)
            .env(
                "VOLTGATE_DB",
                "postgres://voltgate:pg-s3cret@db.internal:5432/voltgate",
            )
            .env(
                "VOLTGATE_CLUSTER",
                "nats://gw:nats-s3cret@nats-a:4222,nats://nats-token-s3cret@nats-b:4222",
            )
            .output()
            .unwrap()
    };
    let help = with_secrets(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("VOLTGATE_DB"), "{text}");
    assert!(!text.contains("s3cret"), "a password in --help: {text}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("voltgate.toml");
    std::fs::write(&file, "").unwrap();
    let checked = with_secrets(&["config", "check", &file.to_string_lossy()]);
    assert!(checked.status.success(), "{checked:?}");
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(
        !text.contains("s3cret"),
        "a password in config check: {text}"
    );
    assert!(
        text.contains("db = \"postgres://voltgate:***@db.internal:5432/voltgate\"  # environment"),
        "{text}"
    );
    assert!(
        text.contains("cluster = \"nats://***@nats-a:4222,nats://***@nats-b:4222\"  # environment"),
        "{text}"
    );
}
