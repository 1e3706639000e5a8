//! End-to-end tests of the simulator against a tiny in-process central system: real
//! sockets, real WebSocket handshakes, the real run loop and report.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{tls_pair, MockGateway, MockOptions};
use voltgate_ocpp::{Frame, OcppVersion, Validator};
use voltgate_sim::driver::{lean_ws_config, DriverConfig, Endpoint, Faults, Target};
use voltgate_sim::operator::{register_all, ApiConfig, CommandLoad, DEFAULT_MIX};
use voltgate_sim::run::{run, Plan, RunReport, VersionMix};
use voltgate_sim::stats::Stats;

fn plan(chargers: u32, seconds: f64) -> Plan {
    Plan {
        chargers,
        first_index: 1,
        ramp_per_second: 0.0,
        duration: Duration::from_secs_f64(seconds),
        versions: VersionMix::Mixed,
        id_prefix: "T-".into(),
        connectors: 2,
        heartbeat_s: Some(1),
        meter_interval_s: 1,
        password: None,
        sessions: None,
        closed_loop: false,
        boot_on_reconnect: true,
        storm_at: None,
        watch_pid: None,
        progress: false,
        seed: 1,
    }
}

async fn driver(url: &str) -> DriverConfig {
    let endpoint = Endpoint::parse(url).unwrap();
    let address = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
        .await
        .unwrap()
        .next()
        .unwrap();
    DriverConfig {
        targets: vec![Target { endpoint, address }],
        tls: None,
        source_addrs: Vec::new(),
        call_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        validator: Some(Arc::new(Validator::new().unwrap())),
        faults: Faults::default(),
        ws: lean_ws_config(),
        reconnect_delay: Duration::from_millis(100),
    }
}

fn assert_clean(report: &RunReport) {
    assert!(!report.failed, "run failed: {:#?}", report.summary.errors);
    assert!(report.summary.errors.is_empty());
}

#[tokio::test]
async fn chargers_boot_heartbeat_and_the_run_is_clean() {
    let mock = MockGateway::start(MockOptions::default()).await;
    let stats = Stats::new();
    let report = run(plan(20, 2.5), driver(&mock.ocpp_url).await, None, stats).await;
    assert_clean(&report);
    assert_eq!(report.summary.counters.connections_made, 20);
    assert_eq!(report.summary.counters.booted, 20);
    assert_eq!(mock.state.calls("BootNotification"), 20);
    assert!(
        report.summary.per_action["Heartbeat"].count >= 20,
        "{:?}",
        report.summary.per_action
    );
    assert!(report
        .summary
        .boot_latency
        .as_ref()
        .is_some_and(|p| p.count == 20));
    assert!(report.throughput.all_online_after_s.is_some());
    assert_eq!(
        mock.state
            .invalid
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "every payload schema-valid"
    );
    // 1.6 chargers report connector 0 too: 10 * 3 + 10 * 2
    assert_eq!(mock.state.calls("StatusNotification"), 50);
}

#[tokio::test]
async fn closed_loop_drives_messages_back_to_back() {
    let mock = MockGateway::start(MockOptions::default()).await;
    let mut p = plan(8, 2.0);
    p.closed_loop = true;
    let report = run(p, driver(&mock.ocpp_url).await, None, Stats::new()).await;
    assert_clean(&report);
    assert!(
        report.throughput.messages_per_s > 200.0,
        "{:?}",
        report.throughput
    );
    for action in ["Heartbeat", "StatusNotification", "MeterValues"] {
        assert!(report.summary.per_action[action].count > 50, "{action}");
    }
    assert_eq!(
        mock.state
            .invalid
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert!(report.throughput.sim_cpu_us_per_message.is_some());
}

/// An operator load of 60 commands a second, rotating through `mix`.
fn sixty_commands_a_second(mix: &[&str]) -> CommandLoad {
    CommandLoad {
        per_second: 60.0,
        mix: mix.iter().map(|s| (*s).to_owned()).collect(),
        id_tag: "SIM-TAG".into(),
        meter_interval_s: 1,
        max_in_flight: 64,
    }
}

#[tokio::test]
async fn operator_commands_reach_the_chargers_and_are_timed() {
    let mock = MockGateway::start(MockOptions {
        api_token: Some("T0K".into()),
        ..MockOptions::default()
    })
    .await;
    let api = ApiConfig {
        bases: vec![mock.api_url.clone()],
        token: Some("T0K".into()),
    };
    let load = sixty_commands_a_second(DEFAULT_MIX);
    let report = run(
        plan(6, 3.0),
        driver(&mock.ocpp_url).await,
        Some((api, load)),
        Stats::new(),
    )
    .await;
    assert_clean(&report);
    let s = &report.summary;
    assert!(
        s.counters.commands_sent >= 100,
        "{}",
        s.counters.commands_sent
    );
    assert_eq!(s.counters.commands_ok, s.counters.commands_sent);
    for name in [
        "get-configuration",
        "set-max-current",
        "remote-start",
        "remote-stop",
        "data-transfer",
    ] {
        assert!(
            s.per_command.contains_key(name),
            "{name} never sent: {:?}",
            s.per_command.keys()
        );
    }
    // Every answered command is timed (counted, not bounded: a busy machine is slow, not wrong).
    let latency = s
        .command_latency
        .as_ref()
        .expect("command latency recorded");
    assert_eq!(latency.count, s.counters.commands_ok, "{latency:?}");
    assert!(
        latency.p50_ms > 0.0 && latency.p50_ms <= latency.max_ms,
        "{latency:?}"
    );
    assert!(
        s.counters.calls_received >= s.counters.commands_sent,
        "each command reached a charger"
    );
}

/// Commands spread over several API nodes: one that refuses connections (a node that is down)
/// costs nothing but a retry on the next, so every command is still sent and answered.
#[tokio::test]
async fn commands_to_a_node_that_refuses_go_to_the_next() {
    let mock = MockGateway::start(MockOptions::default()).await;
    // bound, never listening: every connection to it is refused
    let down = tokio::net::TcpSocket::new_v4().unwrap();
    down.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let api = ApiConfig {
        bases: vec![
            format!("http://{}", down.local_addr().unwrap()),
            mock.api_url.clone(),
        ],
        token: None,
    };
    let load = sixty_commands_a_second(&["clear-cache"]);
    let report = run(
        plan(4, 2.0),
        driver(&mock.ocpp_url).await,
        Some((api, load)),
        Stats::new(),
    )
    .await;
    assert_clean(&report);
    let s = &report.summary;
    assert!(
        s.counters.commands_sent >= 40,
        "{}",
        s.counters.commands_sent
    );
    assert_eq!(s.counters.commands_ok, s.counters.commands_sent);
    // about half the commands picked the node that is down first
    let retried = s
        .notes
        .get("command:api_node_refused_tried_next")
        .copied()
        .unwrap_or(0);
    assert!(
        retried > 0 && retried < s.counters.commands_sent,
        "{retried} of {} retried",
        s.counters.commands_sent
    );
}

#[tokio::test]
async fn registration_and_basic_auth() {
    let options = MockOptions {
        require_known: true,
        password: Some("pw-1".into()),
        ..MockOptions::default()
    };
    let mock = MockGateway::start(options).await;
    let api = ApiConfig {
        bases: vec![mock.api_url.clone()],
        token: None,
    };
    let mut p = plan(5, 1.5);
    p.password = Some("pw-1".into());
    let stats = Stats::new();
    let ids = p
        .chargers()
        .into_iter()
        .map(|(id, _)| (id, p.password.clone()))
        .collect::<Vec<_>>();
    assert_eq!(
        register_all(&api, "site-1", ids.clone(), &stats)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        register_all(&api, "site-1", ids, &stats).await.unwrap(),
        0,
        "409 counts as registered"
    );
    assert_eq!(mock.state.registered(), 5);
    let report = run(p.clone(), driver(&mock.ocpp_url).await, None, stats).await;
    assert_clean(&report);

    // a wrong password is refused at the handshake and fails the run
    p.password = Some("wrong".into());
    p.duration = Duration::from_millis(800);
    let report = run(p, driver(&mock.ocpp_url).await, None, Stats::new()).await;
    assert!(report.failed);
    assert!(
        report
            .summary
            .errors
            .get("handshake:http_401")
            .is_some_and(|n| *n >= 5),
        "{:?}",
        report.summary.errors
    );
}

#[tokio::test]
async fn unknown_chargers_are_refused_and_that_fails_the_run() {
    let mock = MockGateway::start(MockOptions {
        require_known: true,
        ..MockOptions::default()
    })
    .await;
    let report = run(
        plan(3, 0.8),
        driver(&mock.ocpp_url).await,
        None,
        Stats::new(),
    )
    .await;
    assert!(report.failed);
    assert!(report.summary.errors.contains_key("handshake:http_404"));
    assert!(report
        .summary
        .errors
        .contains_key("not_all_chargers_online"));
}

#[tokio::test]
async fn wss_with_a_trusted_ca_file() {
    let (server, ca_pem) = tls_pair();
    let mock = MockGateway::start(MockOptions {
        tls: Some(server),
        ..MockOptions::default()
    })
    .await;
    let dir = std::env::temp_dir().join(format!("voltgate-sim-wss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut cfg = driver(&mock.ocpp_url).await;
    cfg.tls = Some(voltgate_sim::tls::client_config(Some(&ca_file)).unwrap());
    let report = run(plan(4, 1.5), cfg, None, Stats::new()).await;
    assert_clean(&report);
    assert_eq!(report.summary.counters.booted, 4);

    // without the CA the handshake fails
    let mut cfg = driver(&mock.ocpp_url).await;
    cfg.tls = Some(voltgate_sim::tls::client_config(None).unwrap());
    let report = run(plan(2, 0.8), cfg, None, Stats::new()).await;
    assert!(
        report.summary.errors.contains_key("connect:tls"),
        "{:?}",
        report.summary.errors
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn reset_closes_reconnects_and_boots_again() {
    let mock = MockGateway::start(MockOptions::default()).await;
    let mut p = plan(1, 4.0);
    p.versions = VersionMix::Only(OcppVersion::V16);
    let state = Arc::clone(&mock.state);
    let id = p.charger_id(1);
    let poke = tokio::spawn(async move {
        while !state.is_connected(&id) || state.boots_of(&id) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = state
            .call(
                &id,
                "Reset",
                json!({"type": "Hard"}),
                Duration::from_secs(2),
            )
            .await;
        assert!(
            matches!(answer, Some(Frame::CallResult { ref payload, .. }) if payload["status"] == "Accepted"),
            "{answer:?}"
        );
        for _ in 0..200 {
            if state.boots_of(&id) >= 2 && state.is_connected(&id) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    });
    let report = run(p, driver(&mock.ocpp_url).await, None, Stats::new()).await;
    assert!(
        poke.await.unwrap(),
        "the charger booted again after the reset"
    );
    assert_clean(&report);
    assert!(report.summary.counters.connections_made >= 2);
}

#[tokio::test]
async fn malformed_frames_are_refused_and_noted_not_failed() {
    let mock = MockGateway::start(MockOptions::default()).await;
    let mut p = plan(4, 2.0);
    p.closed_loop = true;
    let mut cfg = driver(&mock.ocpp_url).await;
    cfg.faults.malformed = 0.2;
    let report = run(p, cfg, None, Stats::new()).await;
    assert_clean(&report);
    assert!(
        report.summary.counters.malformed_refused > 10,
        "{}",
        report.summary.counters.malformed_refused
    );
    assert_eq!(
        report.summary.counters.malformed_refused,
        mock.state
            .invalid
            .load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::test]
async fn disconnect_faults_and_storms_reconnect_cleanly() {
    let mock = MockGateway::start(MockOptions::default()).await;
    let mut p = plan(6, 3.0);
    p.storm_at = Some(Duration::from_millis(1500));
    let mut cfg = driver(&mock.ocpp_url).await;
    cfg.faults.disconnects_per_minute = 30.0;
    let report = run(p, cfg, None, Stats::new()).await;
    assert_clean(&report);
    assert!(
        report.summary.counters.connections_made >= 12,
        "storm reconnected everyone: {}",
        report.summary.counters.connections_made
    );
    assert!(report.summary.notes.contains_key("fault:storm_disconnect"));
}

#[tokio::test]
async fn chargers_spread_over_several_urls_and_fail_over_when_one_goes_down() {
    let (a, b) = (
        MockGateway::start(MockOptions::default()).await,
        MockGateway::start(MockOptions::default()).await,
    );
    let p = plan(4, 4.0);
    let ids: Vec<String> = (1..=4).map(|i| p.charger_id(i)).collect();
    let mut cfg = driver(&a.ocpp_url).await;
    cfg.targets.extend(driver(&b.ocpp_url).await.targets);
    let (state_a, state_b) = (Arc::clone(&a.state), Arc::clone(&b.state));
    let watcher = tokio::spawn(async move {
        // round robin: the first and third charger on A, the others on B
        let spread = |ids: &[String]| {
            ids.iter()
                .enumerate()
                .all(|(n, id)| [&state_a, &state_b][n % 2].is_connected(id))
        };
        for _ in 0..200 {
            if spread(&ids) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(spread(&ids), "chargers were not spread round robin");
        a.go_down();
        let down_at = tokio::time::Instant::now();
        while !ids.iter().all(|id| state_b.is_connected(id)) {
            assert!(
                down_at.elapsed() < Duration::from_secs(2),
                "chargers of the lost gateway did not come back on the other"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!ids.iter().any(|id| state_a.is_connected(id)));
        down_at.elapsed()
    });
    let report = run(p, cfg, None, Stats::new()).await;
    let back_after = watcher.await.unwrap();
    let c = report.summary.counters;
    assert_eq!(c.failovers, 2, "{:#?}", report.summary);
    assert_eq!(c.reconnects, 2, "{:#?}", report.summary);
    assert_eq!(c.connections_made, 6);
    let away = report.summary.reconnect_latency.as_ref().unwrap();
    assert_eq!(away.count, 2);
    // the reconnect delay is 100 ms plus up to half of it as jitter
    assert!(
        away.max_ms < 1000.0 && back_after < Duration::from_secs(1),
        "{away:?}"
    );
    assert_eq!(b.state.boots_of(&report_id(1)), 1);
    assert_eq!(b.state.boots_of(&report_id(3)), 1);
    let lost: u64 = report
        .summary
        .errors
        .iter()
        .filter(|(kind, _)| {
            [
                "connection_reset",
                "closed_by_gateway",
                "ws_protocol:Connection reset without closing handshake",
            ]
            .contains(&kind.as_str())
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        lost,
        report.summary.errors.values().sum::<u64>(),
        "{:#?}",
        report.summary.errors
    );
}

fn report_id(index: u32) -> String {
    plan(1, 1.0).charger_id(index)
}

#[tokio::test]
async fn unanswered_calls_time_out_and_fail_the_run() {
    let mock = MockGateway::start(MockOptions {
        silent_actions: vec!["Heartbeat"],
        ..MockOptions::default()
    })
    .await;
    let mut cfg = driver(&mock.ocpp_url).await;
    cfg.call_timeout = Duration::from_millis(300);
    let report = run(plan(2, 2.0), cfg, None, Stats::new()).await;
    assert!(report.failed);
    assert!(
        report.summary.errors.contains_key("timeout:Heartbeat"),
        "{:?}",
        report.summary.errors
    );
}

#[tokio::test]
async fn slow_and_missing_answers_to_the_gateway() {
    let mock = MockGateway::start(MockOptions::default()).await;
    let mut p = plan(1, 3.0);
    p.versions = VersionMix::Only(OcppVersion::V201);
    let mut cfg = driver(&mock.ocpp_url).await;
    cfg.faults.slow_answer = Duration::from_millis(300);
    let state = Arc::clone(&mock.state);
    let id = p.charger_id(1);
    let probe = tokio::spawn(async move {
        while !state.is_connected(&id) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let began = std::time::Instant::now();
        let answer = state
            .call(&id, "ClearCache", json!({}), Duration::from_secs(2))
            .await;
        (answer.is_some(), began.elapsed())
    });
    let report = run(p, cfg, None, Stats::new()).await;
    let (answered, took) = probe.await.unwrap();
    assert!(answered && took >= Duration::from_millis(300), "{took:?}");
    assert_clean(&report);

    // a charger that never answers leaves the gateway's CALL pending
    let mut p = plan(1, 2.0);
    p.versions = VersionMix::Only(OcppVersion::V16);
    p.id_prefix = "N-".into();
    let mut cfg = driver(&mock.ocpp_url).await;
    cfg.faults.no_answer = 1.0;
    let state = Arc::clone(&mock.state);
    let id = p.charger_id(1);
    let probe = tokio::spawn(async move {
        while !state.is_connected(&id) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        state
            .call(&id, "ClearCache", json!({}), Duration::from_millis(500))
            .await
    });
    let report = run(p, cfg, None, Stats::new()).await;
    assert!(probe.await.unwrap().is_none(), "no answer expected");
    assert_eq!(report.summary.counters.faults_injected, 1);
    assert_clean(&report);
}

/// Runs the `voltgate-sim` binary against the mock with `args` (after lowering the open-file
/// limit to `file_limit`, when given) and returns its exit code and JSON report.
async fn run_binary(
    mock: &MockGateway,
    args: &[&str],
    file_limit: Option<u32>,
) -> (Option<i32>, serde_json::Value) {
    let program = env!("CARGO_BIN_EXE_voltgate-sim");
    let mut command = match file_limit {
        Some(limit) => {
            let mut sh = tokio::process::Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                .arg(program);
            sh
        }
        None => tokio::process::Command::new(program),
    };
    let output = command
        .args(["--url", &mock.ocpp_url, "--api", &mock.api_url])
        .args(["--report", "json", "--quiet"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

#[tokio::test]
async fn a_run_split_over_two_processes_reports_every_charger_exactly_once() {
    let mock = MockGateway::start(MockOptions::default()).await;
    let (code, report) = run_binary(
        &mock,
        &[
            "--processes",
            "2",
            "--chargers",
            "30",
            "--ramp",
            "60",
            "--duration",
            "3",
            "--heartbeat",
            "1",
            "--ocpp",
            "mixed",
            "--id-prefix",
            "SPLIT-",
        ],
        None,
    )
    .await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["processes"], 2);
    assert_eq!(report["chargers"], 30);
    assert_eq!(report["failed"], false, "{report:#}");
    let s = &report["summary"];
    assert_eq!(s["connections_made"], 30, "{report:#}");
    assert_eq!(s["booted"], 30);
    assert_eq!(s["boot_latency"]["count"], 30);
    assert_eq!(s["connect_latency"]["count"], 30);
    assert_eq!(s["calls_sent"], s["calls_answered"]);
    assert!(report["throughput"]["all_online_after_s"].is_number());
    // each charger booted once, from one process or the other
    for i in 1..=30 {
        assert_eq!(mock.state.boots_of(&format!("SPLIT-{i:06}")), 1, "{i}");
    }
    assert_eq!(mock.state.calls("BootNotification"), 30);
    // the merged histograms hold exactly the answers the gateway gave
    for action in ["BootNotification", "Heartbeat", "StatusNotification"] {
        assert_eq!(
            s["per_action"][action]["count"].as_u64(),
            Some(mock.state.calls(action)),
            "{action}: {report:#}"
        );
    }
    let per_action_total: u64 = s["per_action"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["count"].as_u64().unwrap())
        .sum();
    assert_eq!(Some(per_action_total), s["calls_answered"].as_u64());
    assert_eq!(
        mock.state
            .invalid
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn a_low_open_file_limit_splits_the_run_by_itself() {
    let mock = MockGateway::start(MockOptions::default()).await;
    // 160 files, 100 of them reserved: 60 chargers a process, so 150 chargers need three
    let (code, report) = run_binary(
        &mock,
        &[
            "--chargers",
            "150",
            "--ramp",
            "0",
            "--duration",
            "2.5",
            "--heartbeat",
            "5",
            "--ocpp",
            "1.6",
        ],
        Some(160),
    )
    .await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["processes"], 3);
    assert_eq!(report["summary"]["connections_made"], 150, "{report:#}");
    assert_eq!(report["summary"]["booted"], 150);
    assert_eq!(mock.state.calls("BootNotification"), 150);
}

#[tokio::test]
async fn refusals_in_any_process_fail_the_split_run() {
    let mock = MockGateway::start(MockOptions {
        require_known: true,
        ..MockOptions::default()
    })
    .await;
    let (code, report) = run_binary(
        &mock,
        &[
            "--processes",
            "2",
            "--chargers",
            "4",
            "--ramp",
            "0",
            "--duration",
            "1",
        ],
        None,
    )
    .await;
    // No charger of either process could connect: the run gives up with the reason.
    assert_eq!(code, Some(2), "{report:#}");
    assert_eq!(report["failed"], true);
    assert!(
        report["aborted"]
            .as_str()
            .is_some_and(|reason| reason.contains("handshake:http_404")),
        "{report:#}"
    );
    let errors = &report["summary"]["errors"];
    assert!(
        errors["handshake:http_404"]
            .as_u64()
            .is_some_and(|n| n >= 4),
        "{report:#}"
    );
    // the verdict on the whole run is given once, not once per process
    assert_eq!(errors["not_all_chargers_online"], 1, "{report:#}");
}

/// Runs the binary with exactly `args`, stdout and stderr piped (so stderr is no terminal).
async fn run_raw(args: &[&str]) -> (Option<i32>, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_voltgate-sim"))
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_json_report_carries_the_version_every_parameter_and_the_checks() {
    let mock = MockGateway::start(MockOptions::default()).await;
    let dir = tempfile_dir();
    let junit = dir.join("clean.xml");
    let (code, report) = run_binary(
        &mock,
        &[
            "--chargers",
            "4",
            "--ramp",
            "0",
            "--duration",
            "2",
            "--heartbeat",
            "1",
            "--ocpp",
            "1.6",
            "--max-p99-ms",
            "10000",
            "--min-msg-rate",
            "0.5",
            "--junit",
            junit.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["schema_version"], 3);
    assert_eq!(report["simulator"]["name"], "voltgate-sim");
    assert_eq!(report["simulator"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(report["parameters"]["chargers"], 4);
    assert_eq!(report["parameters"]["ocpp_version"], "V16");
    assert_eq!(report["parameters"]["max_p99_ms"], 10000.0);
    assert_eq!(report["passed"], true);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["connect", "errors", "max-p99-ms", "min-msg-rate"]);
    assert!(report["summary"]["call_latency"]["p99_ms"]
        .as_f64()
        .is_some());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"4\" failures=\"0\""), "{xml}");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "voltgate-sim-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn thresholds_fail_the_run_in_the_exit_code_report_and_junit() {
    let mock = MockGateway::start(MockOptions::default()).await;
    let dir = tempfile_dir();
    let junit = dir.join("thresholds.xml");
    let (code, report) = run_binary(
        &mock,
        &[
            "--chargers",
            "3",
            "--ramp",
            "0",
            "--duration",
            "2",
            "--heartbeat",
            "1",
            "--max-p99-ms",
            "0",
            "--min-msg-rate",
            "1000000",
            "--junit",
            junit.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["passed"], false);
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["passed"] == false)
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["max-p99-ms", "min-msg-rate"], "{report:#}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");

    // Errors: a silent action loses CALLs; --max-errors tolerates up to that many.
    let silent = MockGateway::start(MockOptions {
        silent_actions: vec!["Heartbeat"],
        ..MockOptions::default()
    })
    .await;
    let args = [
        "--chargers",
        "2",
        "--ramp",
        "0",
        "--duration",
        "2",
        "--heartbeat",
        "1",
        "--call-timeout",
        "0.5",
    ];
    let (code, report) = run_binary(&silent, &args, None).await;
    assert_eq!(code, Some(1), "{report:#}");
    let errors: u64 = report["summary"]["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(errors > 0);
    let (code, report) = run_binary(
        &silent,
        &[&args[..], &["--max-errors", "1000000"]].concat(),
        None,
    )
    .await;
    assert_eq!(code, Some(0), "{report:#}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_run_where_no_charger_can_connect_stops_at_once_with_the_reason() {
    let mock = MockGateway::start(MockOptions {
        require_known: true,
        ..MockOptions::default()
    })
    .await;
    let started = std::time::Instant::now();
    let (code, report) = run_binary(
        &mock,
        &["--chargers", "5", "--ramp", "0", "--duration", "60"],
        None,
    )
    .await;
    assert_eq!(code, Some(2), "{report:#}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "gave up after {:?}",
        started.elapsed()
    );
    let reason = report["aborted"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no charger could connect (handshake:http_404)")
            && reason.contains("--url"),
        "{report:#}"
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ocpp", closed.local_addr().unwrap());
    drop(closed);
    let (code, _, stderr) = run_raw(&[
        "--url",
        &url,
        "--chargers",
        "2",
        "--ramp",
        "0",
        "--duration",
        "60",
        "--quiet",
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("nothing listens at --url"), "{stderr}");
}

#[tokio::test]
async fn commands_without_an_api_token_are_refused_at_start() {
    let (code, stdout, stderr) = run_raw(&["--commands", "5", "--duration", "1"]).await;
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("--commands needs --api-token"), "{stderr}");
}

#[tokio::test]
async fn version_is_the_tools_and_the_old_protocol_spelling_still_works_with_a_note() {
    for flag in ["--version", "-V", "--sim-version"] {
        let (code, stdout, _) = run_raw(&[flag]).await;
        assert_eq!(code, Some(0));
        assert_eq!(
            stdout.trim(),
            format!("voltgate-sim {}", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
    let mock = MockGateway::start(MockOptions::default()).await;
    let (code, stdout, stderr) = run_raw(&[
        "--url",
        &mock.ocpp_url,
        "--chargers",
        "1",
        "--ramp",
        "0",
        "--duration",
        "1.5",
        "--heartbeat",
        "1",
        "--version",
        "2.0.1",
        "--report",
        "json",
    ])
    .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("`--version VERSION` is deprecated, use `--ocpp VERSION`"));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["versions"], "2.0.1");
    // Without --quiet and without a terminal: whole progress lines, no carriage returns.
    assert!(!stderr.contains('\r'), "{stderr:?}");
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with('[') && line.contains("online 1/1")),
        "{stderr}"
    );
}
