//! The operator side of a run, through the gateway's HTTP API: registering the simulated
//! chargers before they connect, and driving remote commands at a set rate against the
//! chargers that are online, measuring end-to-end latency (API → role engine → charger →
//! API) per command.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use voltgate_ocpp::OcppVersion;

use crate::driver::{percent_encode, Directory};
use crate::model::rng::SplitMix64;
use crate::stats::Stats;

/// Where the API is and who we are to it.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// e.g. `http://127.0.0.1:8080`, without a trailing slash; one per node of a cluster.
    pub bases: Vec<String>,
    pub token: Option<String>,
}

impl ApiConfig {
    /// The base URLs to try for a request, starting at the `first`th and going round once.
    fn bases_from(&self, first: usize) -> impl Iterator<Item = &str> {
        let n = self.bases.len();
        (0..n).map(move |k| self.bases[(first + k) % n].as_str())
    }
}

/// Sends the request `build` makes for a base URL to the first base from `first` on whose
/// node takes the connection: a refused connection sent nothing, so the next node may take
/// the request. Returns the last error when none does, and how many nodes refused.
async fn send_to_a_live_node(
    api: &ApiConfig,
    first: usize,
    build: impl Fn(&str) -> reqwest::RequestBuilder,
) -> (Result<reqwest::Response, reqwest::Error>, usize) {
    let mut refused = 0;
    let mut last = None;
    for base in api.bases_from(first) {
        match with_auth(build(base), api).send().await {
            Err(err) if err.is_connect() => {
                refused += 1;
                last = Some(err);
            }
            answered => return (answered, refused),
        }
    }
    match last {
        Some(err) => (Err(err), refused),
        // no base at all: the request is made once, so reqwest names what is wrong
        None => (build("").send().await, refused),
    }
}

/// Why registration could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("HTTP client could not be built: {0}")]
    Client(String),
    #[error("registering {id} failed: {message}")]
    Register { id: String, message: String },
}

/// The commands the operator load may send: the codec's table of API command names, so a
/// command the gateway gains is one the simulator can send.
pub const LOAD_COMMANDS: &[&str] = &voltgate_ocpp::COMMAND_NAMES;

/// The default mix: everything that leaves the chargers connected and usable.
pub const DEFAULT_MIX: &[&str] = &[
    "get-configuration",
    "change-configuration",
    "trigger-message",
    "set-max-current",
    "data-transfer",
    "clear-cache",
    "change-availability",
    "remote-start",
    "remote-stop",
    "unlock",
];

pub fn http_client() -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| ApiError::Client(e.to_string()))
}

fn with_auth(request: reqwest::RequestBuilder, api: &ApiConfig) -> reqwest::RequestBuilder {
    match &api.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// Registers every charger (`POST /api/v1/chargers {id, scope, password?}`), a few at a time.
/// A charger that already exists (409) counts as registered.
pub async fn register_all(
    api: &ApiConfig,
    scope: &str,
    chargers: Vec<(String, Option<String>)>,
    stats: &Stats,
) -> Result<usize, ApiError> {
    let client = http_client()?;
    let permits = Arc::new(Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for (id, password) in chargers {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let client = client.clone();
        let api = api.clone();
        let scope = scope.to_owned();
        tasks.spawn(async move {
            let _permit = permit;
            let mut body = json!({ "id": id, "scope": scope });
            if let Some(password) = password {
                body["password"] = json!(password);
            }
            let (sent, _) = send_to_a_live_node(&api, 0, |base| {
                client.post(format!("{base}/api/v1/chargers")).json(&body)
            })
            .await;
            match sent {
                Ok(r) if r.status().is_success() => Ok(true),
                Ok(r) if r.status().as_u16() == 409 => Ok(false),
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    Err(ApiError::Register {
                        id,
                        message: format!("HTTP {status}: {text}"),
                    })
                }
                Err(e) => Err(ApiError::Register {
                    id,
                    message: e.to_string(),
                }),
            }
        });
    }
    let mut created = 0;
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(true)) => created += 1,
            Ok(Ok(false)) => stats.note("register:already_exists"),
            Ok(Err(e)) => {
                stats.error("register_failed");
                first_error.get_or_insert(e);
            }
            Err(e) => {
                stats.error("register_failed");
                first_error.get_or_insert(ApiError::Register {
                    id: String::new(),
                    message: e.to_string(),
                });
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(created),
    }
}

/// What the operator load sends.
#[derive(Debug, Clone)]
pub struct CommandLoad {
    pub per_second: f64,
    pub mix: Vec<String>,
    pub id_tag: String,
    pub meter_interval_s: u32,
    /// Most requests in flight at once; beyond it a tick is skipped and counted.
    pub max_in_flight: usize,
}

/// The JSON body of a command for a charger of `version`, or `None` when the command needs
/// something the charger does not have (remote-stop without a transaction).
pub fn command_body(
    name: &str,
    version: OcppVersion,
    load: &CommandLoad,
    transaction: Option<&str>,
    rng: &mut SplitMix64,
) -> Option<Value> {
    let v16 = version == OcppVersion::V16;
    Some(match name {
        "remote-start" => json!({ "connector": 1, "id_token": load.id_tag }),
        "remote-stop" => json!({ "transaction_id": transaction? }),
        "unlock" => json!({ "connector": 2 }),
        "reset" => json!({ "type": "soft" }),
        "update-firmware" => json!({ "location": "https://firmware.example.com/sim-1.0.1.bin" }),
        "get-configuration" => {
            json!({ "keys": [if v16 { "HeartbeatInterval" } else { "OCPPCommCtrlr.HeartbeatInterval" }] })
        }
        "change-configuration" => json!({
            "key": if v16 { "MeterValueSampleInterval" } else { "SampledDataCtrlr.TxUpdatedInterval" },
            "value": load.meter_interval_s.to_string(),
        }),
        "set-max-current" => json!({ "connector": 1, "amps": 10 + rng.below(23) }),
        "change-availability" => json!({ "connector": 2, "available": true }),
        "trigger-message" => json!({ "message": "Heartbeat" }),
        "get-log" => json!({ "location": "https://logs.example.com/upload" }),
        "clear-cache" => json!({}),
        "data-transfer" => {
            json!({ "vendor_id": "VoltgateSim", "message_id": "echo", "data": "ping" })
        }
        _ => return None,
    })
}

/// Picks an online charger (and, when `needs_transaction`, one with a running transaction),
/// each probe independently at random, so the load spreads evenly over the chargers that are
/// online. (Scanning forward from a random start would hand every command that lands on a run
/// of offline chargers to the first online one after it: while a fleet is still connecting,
/// that one charger took hundreds of commands a second and its queue overflowed.) `None`
/// when the probes find nothing; the caller counts that tick as "no charger ready".
fn pick(
    directory: &Directory,
    rng: &mut SplitMix64,
    needs_transaction: bool,
) -> Option<(usize, Option<String>)> {
    let n = directory.slots.len();
    if n == 0 {
        return None;
    }
    let tries = if needs_transaction { 512 } else { 64 };
    for _ in 0..tries {
        let index = rng.below(n as u64) as usize;
        let slot = &directory.slots[index];
        if !slot.online.load(Ordering::Relaxed) {
            continue;
        }
        if !needs_transaction {
            return Some((index, None));
        }
        if let Some(tx) = slot.transactions().into_iter().next() {
            return Some((index, Some(tx)));
        }
    }
    None
}

/// Sends commands at `load.per_second` until `stop`, rotating through the mix.
pub async fn command_load(
    api: ApiConfig,
    load: CommandLoad,
    directory: Arc<Directory>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ApiError> {
    let client = http_client()?;
    let permits = Arc::new(Semaphore::new(load.max_in_flight.max(1)));
    let mut rng = SplitMix64::new(0x0BE7_A70E);
    let period = Duration::from_secs_f64(1.0 / load.per_second.max(0.001));
    let started = tokio::time::Instant::now();
    let mut sent: u64 = 0;
    let mut turn = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let due = started + period.mul_f64(sent as f64);
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        sent += 1;
        while tasks.try_join_next().is_some() {}
        let mut chosen = None;
        for _ in 0..load.mix.len() {
            let name = load.mix[turn % load.mix.len()].clone();
            turn += 1;
            let Some((index, tx)) = pick(&directory, &mut rng, name == "remote-stop") else {
                continue;
            };
            let slot = &directory.slots[index];
            if let Some(stopping) = &tx {
                // one remote-stop per transaction: claim it so no other command targets it
                let mut left = slot.transactions();
                left.retain(|t| t != stopping);
                slot.set_transactions(left);
            }
            if let Some(body) = command_body(&name, slot.version, &load, tx.as_deref(), &mut rng) {
                chosen = Some((name, slot.id.clone(), body));
                break;
            }
        }
        let Some((name, id, body)) = chosen else {
            stats.note("command:no_charger_ready");
            continue;
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            stats.error("command:skipped_max_in_flight");
            continue;
        };
        let path = format!("/api/v1/chargers/{}/commands/{}", percent_encode(&id), name);
        let first = rng.below(api.bases.len().max(1) as u64) as usize;
        let (api, client) = (api.clone(), client.clone());
        let stats = Arc::clone(&stats);
        Stats::add(&stats.commands_sent);
        tasks.spawn(async move {
            let _permit = permit;
            let began = Instant::now();
            let (sent, refused) = send_to_a_live_node(&api, first, |base| {
                client.post(format!("{base}{path}")).json(&body)
            })
            .await;
            if refused > 0 && sent.is_ok() {
                stats.note("command:api_node_refused_tried_next");
            }
            match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.bytes().await.unwrap_or_default();
                    let ok = status == 200;
                    stats.command(&name, began.elapsed(), ok);
                    if !ok {
                        // the API's machine-readable error code says which refusal it was
                        let code = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                            .unwrap_or_default();
                        stats.error(format!("command:{name}:http_{status}:{code}"));
                    }
                }
                Err(e) => {
                    stats.command(&name, began.elapsed(), false);
                    stats.error(if e.is_timeout() {
                        format!("command:{name}:timeout")
                    } else {
                        format!("command:{name}:transport")
                    });
                }
            }
        });
    }
    // let requests in flight finish
    let drain = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    });
    if drain.await.is_err() {
        stats.error("command:unanswered_at_end");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use voltgate_ocpp::Command;

    use super::*;

    #[test]
    fn every_load_command_body_is_accepted_by_the_codec() {
        let load = CommandLoad {
            per_second: 1.0,
            mix: DEFAULT_MIX.iter().map(|s| (*s).to_owned()).collect(),
            id_tag: "SIM-TAG".into(),
            meter_interval_s: 60,
            max_in_flight: 8,
        };
        let mut rng = SplitMix64::new(1);
        for version in OcppVersion::ALL {
            for name in LOAD_COMMANDS {
                let body = command_body(name, version, &load, Some("42"), &mut rng).unwrap();
                let command =
                    Command::from_api(name, &body).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                command
                    .to_call_at(version, 1, "2024-05-01T12:00:00Z")
                    .unwrap_or_else(|e| panic!("{version} {name}: {e:?}"));
            }
        }
        assert!(command_body("remote-stop", OcppVersion::V16, &load, None, &mut rng).is_none());
        assert!(command_body("make-coffee", OcppVersion::V16, &load, None, &mut rng).is_none());
    }

    #[test]
    fn pick_spreads_evenly_over_the_online_chargers_while_others_are_offline() {
        let directory = Directory::new((0..1000).map(|i| (format!("C{i}"), OcppVersion::V16)));
        // Ten online chargers in two clusters: one right after a long run of offline ones.
        let online: Vec<usize> = (0..5).chain(500..505).collect();
        for &index in &online {
            directory.slots[index].online.store(true, Ordering::Relaxed);
        }
        let mut rng = SplitMix64::new(11);
        let mut hits = std::collections::HashMap::new();
        let mut found = 0;
        for _ in 0..10_000 {
            if let Some((index, _)) = pick(&directory, &mut rng, false) {
                assert!(online.contains(&index), "{index} is offline");
                *hits.entry(index).or_insert(0u32) += 1;
                found += 1;
            }
        }
        assert_eq!(hits.len(), online.len(), "{hits:?}");
        let fair = found / online.len() as u32;
        for (&index, &count) in &hits {
            assert!(
                count > fair * 3 / 4 && count < fair * 5 / 4,
                "charger {index} got {count} of {found} picks: {hits:?}"
            );
        }
    }

    #[test]
    fn pick_prefers_online_chargers_with_transactions_when_asked() {
        let directory = Directory::new((0..10).map(|i| (format!("C{i}"), OcppVersion::V16)));
        let mut rng = SplitMix64::new(3);
        assert!(pick(&directory, &mut rng, false).is_none());
        directory.slots[4].online.store(true, Ordering::Relaxed);
        assert_eq!(pick(&directory, &mut rng, false), Some((4, None)));
        assert!(pick(&directory, &mut rng, true).is_none());
        directory.slots[4].set_transactions(vec!["7".into()]);
        assert_eq!(
            pick(&directory, &mut rng, true),
            Some((4, Some("7".into())))
        );
    }
}
