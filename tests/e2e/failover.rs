//! Chargers of a lost gateway node come back on another: the simulator spreads its chargers
//! over two independent gateways (`--url A,B`), one gateway is killed (SIGKILL) or drained
//! (SIGTERM), and its chargers reconnect to the survivor within their backoff. What a
//! cluster adds on top (one estate, commands across nodes) is not needed for this: each
//! gateway here accepts any charger (`--auto-register`).

use std::time::{Duration, Instant};

use serde_json::Value;
use voltgate_tests::ports::RefusingPort;
use voltgate_tests::{binary_path, Gateway, GatewayOptions};

const CHARGERS: u32 = 6;

pub async fn auto_registering_gateway() -> Gateway {
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .arg("--auto-register")
            .arg("sim")
            .arg("--heartbeat-interval")
            .arg("2"),
    )
    .unwrap();
    gateway
        .api()
        .scope("sim", "site", "root")
        .await
        .unwrap()
        .expect(201);
    gateway
}

pub fn charger_ids(count: u32) -> Vec<String> {
    (1..=count).map(|n| format!("FO-{n:06}")).collect()
}

/// The ids among `ids` this gateway holds a live connection of.
pub async fn connected(gateway: &Gateway, ids: &[String]) -> Vec<String> {
    let mut live = Vec::new();
    for id in ids {
        let Ok(reply) = gateway.api().get(&format!("/api/v1/chargers/{id}")).await else {
            continue;
        };
        if reply.status == 200 && reply.body["connected"] == true {
            live.push(id.clone());
        }
    }
    live
}

/// Polls until `done` holds or `limit` passes; returns how long it took.
pub async fn within<F, Fut>(limit: Duration, mut done: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if done().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Starts the simulator on `urls` (comma-separated) for `seconds`; its JSON report is read
/// from the returned process when it ends.
pub fn simulator(urls: &str, chargers: u32, seconds: u32) -> tokio::process::Child {
    tokio::process::Command::new(binary_path("voltgate-sim").unwrap())
        .args(["--url", urls, "--chargers", &chargers.to_string()])
        .args(["--id-prefix", "FO-", "--ramp", "0", "--ocpp", "mixed"])
        .args(["--duration", &seconds.to_string(), "--meter-interval", "0"])
        .args(["--report", "json", "--quiet"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the simulator starts")
}

pub async fn report_of(sim: tokio::process::Child) -> Value {
    let output = sim.wait_with_output().await.expect("the simulator ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The simulator's only errors are the lost connections of the gateway that went away.
pub fn only_lost_connections(report: &Value) {
    let errors = report["summary"]["errors"].as_object().unwrap();
    for kind in errors.keys() {
        assert!(
            kind == "connection_reset"
                || kind == "closed_by_gateway"
                || kind.starts_with("ws_protocol:Connection reset"),
            "unexpected error {kind}: {report:#}"
        );
    }
}

async fn node_loss(signal: &str) {
    let (a, b) = (
        auto_registering_gateway().await,
        auto_registering_gateway().await,
    );
    let ids = charger_ids(CHARGERS);
    let sim = simulator(&format!("{},{}", a.ocpp_url, b.ocpp_url), CHARGERS, 14);
    // round robin: the chargers at even positions on A, the others on B
    let (on_a, on_b): (Vec<String>, Vec<String>) = {
        let (even, odd): (Vec<_>, Vec<_>) = ids
            .iter()
            .cloned()
            .enumerate()
            .partition(|(n, _)| n % 2 == 0);
        (
            even.into_iter().map(|(_, id)| id).collect(),
            odd.into_iter().map(|(_, id)| id).collect(),
        )
    };
    let spread = within(Duration::from_secs(20), || async {
        connected(&a, &ids).await == on_a && connected(&b, &ids).await == on_b
    })
    .await;
    assert!(spread.is_some(), "the chargers were not spread round robin");

    let killed_at = Instant::now();
    let b_ref = &b;
    let ids_ref = &ids;
    let back = match signal {
        "KILL" => {
            drop(a.kill());
            within(Duration::from_secs(10), || async move {
                connected(b_ref, ids_ref).await.len() == ids_ref.len()
            })
            .await
        }
        _ => {
            let drained = tokio::task::spawn_blocking(move || a.terminate(Duration::from_secs(15)));
            let back = within(Duration::from_secs(10), || async move {
                connected(b_ref, ids_ref).await.len() == ids_ref.len()
            })
            .await;
            let (code, _) = drained.await.unwrap().unwrap();
            assert_eq!(code, Some(0), "the drained gateway exits cleanly");
            back
        }
    };
    let Some(back) = back else {
        panic!(
            "after SIG{signal} only {:?} came back on the survivor",
            connected(&b, &ids).await
        );
    };
    // the simulator waits 1 s (plus up to half of it as jitter) before reconnecting
    assert!(
        back < Duration::from_secs(5),
        "back on the survivor {back:?} after SIG{signal} ({:?} since)",
        killed_at.elapsed()
    );

    let report = report_of(sim).await;
    let summary = &report["summary"];
    assert_eq!(report["schema_version"], 3, "{report:#}");
    assert_eq!(summary["failovers"], on_a.len(), "{report:#}");
    assert_eq!(summary["reconnects"], on_a.len(), "{report:#}");
    assert_eq!(
        summary["booted"],
        CHARGERS as usize + on_a.len(),
        "{report:#}"
    );
    let away = summary["reconnect_latency"]["max_ms"].as_f64().unwrap();
    assert!(away < 5000.0, "{report:#}");
    only_lost_connections(&report);
}

#[tokio::test]
async fn chargers_of_a_killed_gateway_come_back_on_the_other() {
    node_loss("KILL").await;
}

#[tokio::test]
async fn chargers_of_a_drained_gateway_come_back_on_the_other() {
    node_loss("TERM").await;
}

/// A loopback port nothing listens on (for now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `host:port` of a gateway listener URL such as `ws://127.0.0.1:4242/ocpp`.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap().to_string()
}

/// The shipped deploy/haproxy/haproxy.cfg, run for real on loopback in front of two gateway
/// processes (its third server slot points at a port where nothing listens, as a node that
/// is down): chargers connect through the one address, and when the node holding some of
/// them is killed they come back through the same address on the other node.
#[tokio::test]
async fn haproxy_from_deploy_fails_chargers_over_to_the_surviving_node() {
    let (a, b) = (
        auto_registering_gateway().await,
        auto_registering_gateway().await,
    );
    let (lb_ocpp, lb_api) = (free_port(), free_port());
    let nothing = RefusingPort::new().unwrap();
    let dead = nothing.authority();
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy/haproxy.cfg");
    let haproxy = tokio::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .env("LB_OCPP_BIND", format!("127.0.0.1:{lb_ocpp}"))
        .env("LB_API_BIND", format!("127.0.0.1:{lb_api}"))
        .env("NODE1_OCPP", authority(&a.ocpp_url))
        .env("NODE2_OCPP", authority(&b.ocpp_url))
        .env("NODE3_OCPP", &dead)
        .env("NODE1_API", authority(&a.api_url))
        .env("NODE2_API", authority(&b.api_url))
        .env("NODE3_API", &dead)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy starts (Debian package haproxy; tests/run.sh installs it)");
    let listening = within(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", lb_ocpp))
            .await
            .is_ok()
    })
    .await;
    assert!(listening.is_some(), "haproxy did not listen");

    let ids = charger_ids(4);
    let sim = simulator(&format!("ws://127.0.0.1:{lb_ocpp}/ocpp"), 4, 16);
    let all_up = within(Duration::from_secs(15), || async {
        connected(&a, &ids).await.len() + connected(&b, &ids).await.len() == ids.len()
    })
    .await;
    assert!(
        all_up.is_some(),
        "the chargers did not come up through haproxy"
    );
    // the API frontend reaches the nodes (each knows only the chargers it took: the two
    // gateways here share no database)
    let through_lb =
        voltgate_tests::Api::new(&format!("http://127.0.0.1:{lb_api}"), &a.admin_token);
    for _ in 0..2 {
        let reply = through_lb.get("/api/v1/chargers").await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    let on_a = connected(&a, &ids).await;
    let (victim, survivor, moved) = if on_a.is_empty() {
        let on_b = connected(&b, &ids).await;
        (b, a, on_b)
    } else {
        (a, b, on_a)
    };
    drop(victim.kill());
    let back = within(Duration::from_secs(10), || async {
        connected(&survivor, &ids).await.len() == ids.len()
    })
    .await;
    let Some(back) = back else {
        panic!(
            "after SIGKILL only {:?} are on the surviving node",
            connected(&survivor, &ids).await
        );
    };
    assert!(back < Duration::from_secs(8), "{back:?}");

    let report = report_of(sim).await;
    let summary = &report["summary"];
    // one address: the chargers reconnect, none of them changes URL
    assert_eq!(summary["reconnects"], moved.len(), "{report:#}");
    assert_eq!(summary["failovers"], 0, "{report:#}");
    assert_eq!(summary["booted"], ids.len() + moved.len(), "{report:#}");
    only_lost_connections(&report);
    drop(haproxy);
}
