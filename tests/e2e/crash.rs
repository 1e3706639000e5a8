//! SIGKILL at random points while chargers run transactions and operators send commands, then a
//! restart on the same database. The chargers behave as OCPP asks: a message that got no
//! answer is sent again, unchanged, after reconnecting, and after each restart the last
//! answered message is sent once more too (its answer could have been lost on the way).
//!
//! Checked at the end: every transaction a charger got a CALLRESULT for is listed, no retry
//! created a second transaction or a second copy of a meter sample, every meter sample a charger
//! got a CALLRESULT for is stored against its transaction, and every command a
//! charger received has its allow record in the audit log. The seed is printed; set
//! `VOLTGATE_CRASH_SEED` to replay a run.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::{Api, Charger, Gateway, GatewayOptions, Received};

const ROUNDS: u32 = 5;
const CHARGERS: [(&str, &str); 2] = [("CP-CRASH-16", "ocpp1.6"), ("CP-CRASH-201", "ocpp2.0.1")];

/// SplitMix64: small, seedable, good enough to pick kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One message of a charger's transaction script.
#[derive(Debug, Clone)]
struct Message {
    id: String,
    action: &'static str,
    payload: Value,
}

/// What a charger remembers across connections (what a real charger keeps in flash).
#[derive(Debug, Default)]
struct Memory {
    v16: bool,
    counter: u64,
    /// 1.6: the open transaction's id; 2.0.1: its key.
    open: Option<String>,
    meters_in_open: u32,
    /// Sent, not answered: goes out again, unchanged, first thing after reconnecting.
    unanswered: Option<Message>,
    /// The last answered message, resent once after a restart.
    last_answered: Option<Message>,
    /// Transactions the gateway acknowledged: 1.6 transaction ids, 2.0.1 keys.
    acknowledged: BTreeSet<String>,
    /// Distinct transactions started (each start message counts once, however often sent).
    starts: BTreeSet<String>,
    /// Meter samples the gateway acknowledged: (1.6 transaction id or 2.0.1 key, timestamp).
    samples: BTreeSet<(String, String)>,
    seq_no: i64,
    /// Gateway CALLs this charger received, by action.
    received: BTreeMap<String, u32>,
}

impl Memory {
    fn timestamp(&self) -> String {
        format!(
            "2026-11-25T{:02}:{:02}:{:02}Z",
            10 + self.counter / 3600,
            (self.counter / 60) % 60,
            self.counter % 60
        )
    }

    /// The next message of the script: start, two meter readings, stop, and again.
    fn next_message(&mut self) -> Message {
        self.counter += 1;
        let n = self.counter;
        let at = self.timestamp();
        if self.v16 {
            match &self.open {
                None => Message {
                    id: format!("start-{n}"),
                    action: "StartTransaction",
                    payload: json!({"connectorId": 1, "idTag": "CRASH-TAG", "meterStart": n,
                                    "timestamp": at}),
                },
                Some(id) if self.meters_in_open < 2 => Message {
                    id: format!("meter-{n}"),
                    action: "MeterValues",
                    payload: json!({"connectorId": 1, "transactionId": id.parse::<i64>().unwrap_or(0),
                                    "meterValue": [{"timestamp": at,
                                                    "sampledValue": [{"value": format!("{n}")}]}]}),
                },
                Some(id) => Message {
                    id: format!("stop-{n}"),
                    action: "StopTransaction",
                    payload: json!({"transactionId": id.parse::<i64>().unwrap_or(0),
                                    "meterStop": n, "timestamp": at}),
                },
            }
        } else {
            self.seq_no += 1;
            let (event, key) = match &self.open {
                None => ("Started", format!("tx-{n}")),
                Some(key) if self.meters_in_open < 2 => ("Updated", key.clone()),
                Some(key) => ("Ended", key.clone()),
            };
            let mut payload = json!({
                "eventType": event, "timestamp": at, "triggerReason": "Authorized",
                "seqNo": self.seq_no,
                "transactionInfo": {"transactionId": key, "stoppedReason": "Local"},
                "evse": {"id": 1, "connectorId": 1},
            });
            if event == "Started" {
                payload["idToken"] = json!({"idToken": "CRASH-TAG", "type": "ISO14443"});
            }
            if event == "Updated" {
                payload["meterValue"] =
                    json!([{"timestamp": at, "sampledValue": [{"value": n as f64}]}]);
            }
            Message {
                id: format!("event-{n}"),
                action: "TransactionEvent",
                payload,
            }
        }
    }

    /// Applies the gateway's answer to the charger's own state.
    fn answered(&mut self, message: &Message, answer: &Value) {
        match message.action {
            "StartTransaction" => {
                let id = answer["transactionId"].as_i64().unwrap_or(-1).to_string();
                self.starts.insert(message.id.clone());
                self.acknowledged.insert(id.clone());
                if self.open.is_none() {
                    self.open = Some(id);
                    self.meters_in_open = 0;
                }
            }
            "TransactionEvent" => {
                let key = message.payload["transactionInfo"]["transactionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                match message.payload["eventType"].as_str() {
                    Some("Started") => {
                        self.starts.insert(key.clone());
                        self.acknowledged.insert(key.clone());
                        if self.open.is_none() {
                            self.open = Some(key);
                            self.meters_in_open = 0;
                        }
                    }
                    Some("Updated") => {
                        self.meters_in_open += 1;
                        self.samples
                            .insert((key, sample_time(&message.payload["meterValue"])));
                    }
                    _ => self.open = None,
                }
            }
            "MeterValues" => {
                self.meters_in_open += 1;
                let id = message.payload["transactionId"].to_string();
                self.samples
                    .insert((id, sample_time(&message.payload["meterValue"])));
            }
            _ => self.open = None,
        }
    }
}

/// The timestamp of a message's one meter sample (unique per charger: the script's clock only
/// moves forward).
fn sample_time(meter_value: &Value) -> String {
    meter_value[0]["timestamp"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Answers every gateway CALL that has arrived (Accepted) and counts it.
async fn answer_commands(charger: &mut Charger, memory: &mut Memory, wait: Duration) {
    while let Some((id, action, _)) = charger.next_call(wait).await {
        *memory.received.entry(action).or_default() += 1;
        let _ = charger.reply(&id, json!({"status": "Accepted"}));
    }
}

/// Sends one message and applies its answer; `false` when the connection is gone.
async fn exchange(charger: &mut Charger, memory: &mut Memory, message: Message) -> bool {
    memory.unanswered = Some(message.clone());
    let frame = json!([2, message.id, message.action, message.payload]).to_string();
    if charger.send_text(&frame).is_err() {
        return false;
    }
    match charger.answer_to(&message.id, Duration::from_secs(5)).await {
        Ok(Received::Result { payload, .. }) => {
            memory.unanswered = None;
            memory.answered(&message, &payload);
            memory.last_answered = Some(message);
            true
        }
        Ok(other) => panic!("{} {} refused: {other:?}", message.action, message.id),
        Err(_) => false,
    }
}

/// Runs the charger's script until the connection breaks or `stop` is set and the charger
/// has nothing open or unanswered.
async fn run_charger(
    mut charger: Charger,
    mut memory: Memory,
    resend_last: bool,
    stop: Arc<AtomicBool>,
) -> Memory {
    if resend_last {
        if let Some(last) = memory.last_answered.clone() {
            // The message still waiting for an answer stays the one to retry.
            let pending = memory.unanswered.take();
            let delivered = exchange(&mut charger, &mut memory, last).await;
            memory.unanswered = pending;
            if !delivered {
                answer_commands(&mut charger, &mut memory, Duration::ZERO).await;
                return memory;
            }
        }
    }
    loop {
        answer_commands(&mut charger, &mut memory, Duration::ZERO).await;
        let finished = memory.unanswered.is_none() && memory.open.is_none();
        if stop.load(Ordering::Relaxed) && finished {
            break;
        }
        let message = match memory.unanswered.clone() {
            Some(retry) => retry,
            None => memory.next_message(),
        };
        if !exchange(&mut charger, &mut memory, message).await {
            break;
        }
    }
    // Whatever reached the charger before the connection broke counts as received.
    answer_commands(&mut charger, &mut memory, Duration::from_millis(50)).await;
    memory
}

/// Operators send commands to both chargers until told to stop.
async fn operators(api: Api, stop: Arc<AtomicBool>) -> u32 {
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        for (id, _) in CHARGERS {
            let _ = api.command(id, "clear-cache", json!({})).await;
            sent += 1;
        }
    }
    sent
}

async fn connect(gateway: &Gateway, id: &str, subprotocol: &str) -> Charger {
    let mut charger = Charger::connect(&gateway.ocpp_url, id, &[subprotocol])
        .await
        .expect("the charger reconnects");
    charger.boot().await.expect("boot answered");
    charger
}

fn options() -> GatewayOptions {
    GatewayOptions::preset("connect")
        .arg("--command-timeout")
        .arg("2s")
}

#[tokio::test]
async fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let seed = std::env::var("VOLTGATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("crash test seed: {seed} (VOLTGATE_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);

    let mut gateway = Gateway::start(options()).unwrap();
    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    for (id, _) in CHARGERS {
        admin.charger(id, "site-a").await.unwrap().expect(201);
    }
    let mut memories: Vec<Memory> = CHARGERS
        .iter()
        .map(|(_, protocol)| Memory {
            v16: *protocol == "ocpp1.6",
            ..Memory::default()
        })
        .collect();

    for round in 0..=ROUNDS {
        let last = round == ROUNDS;
        let stop = Arc::new(AtomicBool::new(false));
        let mut runs = Vec::new();
        for ((id, protocol), memory) in CHARGERS.iter().zip(memories.drain(..)) {
            let charger = connect(&gateway, id, protocol).await;
            runs.push(tokio::spawn(run_charger(
                charger,
                memory,
                round > 0,
                stop.clone(),
            )));
        }
        let commands = tokio::spawn(operators(gateway.api(), stop.clone()));
        if last {
            // The final round runs undisturbed until every charger has closed its books.
            tokio::time::sleep(Duration::from_millis(300)).await;
            stop.store(true, Ordering::Relaxed);
        } else {
            let kill_after = Duration::from_millis(100 + rng.below(1200));
            tokio::time::sleep(kill_after).await;
            let workdir = gateway.kill();
            eprintln!("round {round}: SIGKILL after {kill_after:?}");
            stop.store(true, Ordering::Relaxed);
            for run in runs.drain(..) {
                memories.push(run.await.unwrap());
            }
            let _ = commands.await;
            gateway = Gateway::start_in(options(), workdir).unwrap();
            continue;
        }
        for run in runs {
            memories.push(run.await.unwrap());
        }
        let sent = commands.await.unwrap();
        eprintln!("final round: {sent} more commands");
    }

    let admin = gateway.api();
    let listed = admin
        .get("/api/v1/transactions?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let transactions = listed.body["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let audit = all_audit(&admin).await;
    for ((id, _), memory) in CHARGERS.iter().zip(&memories) {
        let mine: Vec<&Value> = transactions
            .iter()
            .filter(|t| t["charger"] == *id)
            .collect();
        let stored: BTreeSet<String> = mine
            .iter()
            .map(|t| {
                if memory.v16 {
                    t["id"].to_string()
                } else {
                    t["key"].as_str().unwrap_or_default().to_string()
                }
            })
            .collect();
        for acknowledged in &memory.acknowledged {
            assert!(
                stored.contains(acknowledged),
                "{id}: acknowledged transaction {acknowledged} is missing (seed {seed})"
            );
        }
        let keys: Vec<String> = mine
            .iter()
            .map(|t| format!("{}={}", t["id"], t["key"].as_str().unwrap_or_default()))
            .collect();
        assert_eq!(
            mine.len(),
            memory.starts.len(),
            "{id}: {} transactions stored for {} distinct starts (seed {seed}); stored {keys:?}, starts {:?}",
            mine.len(),
            memory.starts.len(),
            memory.starts
        );
        assert!(
            mine.iter().all(|t| !t["stopped_at"].is_null()),
            "{id}: a transaction was left open (seed {seed})"
        );
        let received = memory.received.get("ClearCache").copied().unwrap_or(0);
        let allowed = audit
            .iter()
            .filter(|e| {
                e["action"] == "command.clear-cache" && e["resource"] == *id && e["allowed"] == true
            })
            .count() as u32;
        eprintln!(
            "{id}: {} transactions, {received} commands received, {allowed} allow records",
            mine.len()
        );
        assert!(
            allowed >= received,
            "{id}: {received} commands received but only {allowed} allow records (seed {seed})"
        );
        assert!(received > 0, "{id}: no command reached the charger");
    }
    // Samples of 2.0.1 carry `seqNo`; 1.6 samples carry none, so an identical sample at the
    // same timestamp of the same transaction is the same reading. Either way a resent batch
    // must be a no-op.
    let duplicates = sqlite(
        &gateway,
        "SELECT t.charger, m.transaction_id, m.seq, m.sample, COUNT(*) FROM meter_values m \
         JOIN transactions t ON t.id = m.transaction_id \
         GROUP BY m.transaction_id, m.sample HAVING COUNT(*) > 1;",
    );
    assert!(
        duplicates.trim().is_empty(),
        "duplicate meter samples (seed {seed}):\n{duplicates}"
    );
    // And none is lost: every sample a charger got an answer for is stored against its
    // transaction (1.6 by transaction id, 2.0.1 by key).
    let stored = sqlite(
        &gateway,
        "SELECT t.charger, t.id, t.key, m.at FROM meter_values m \
         JOIN transactions t ON t.id = m.transaction_id;",
    );
    let stored: BTreeSet<(String, String, String)> = stored
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('|');
            let charger = fields.next()?.to_string();
            let id = fields.next()?.to_string();
            let key = fields.next()?.to_string();
            let at = fields.next()?.to_string();
            let v16 = CHARGERS
                .iter()
                .any(|(c, p)| *c == charger && *p == "ocpp1.6");
            Some((charger, if v16 { id } else { key }, at))
        })
        .collect();
    for ((id, _), memory) in CHARGERS.iter().zip(&memories) {
        assert!(
            !memory.samples.is_empty(),
            "{id}: no meter sample was acknowledged (seed {seed})"
        );
        for (transaction, at) in &memory.samples {
            assert!(
                stored.contains(&(id.to_string(), transaction.clone(), at.clone())),
                "{id}: acknowledged meter sample of {transaction} at {at} is missing (seed {seed})"
            );
        }
    }
}

/// Every audit record, newest first.
async fn all_audit(api: &Api) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(id) => format!("/api/v1/audit?limit=1000&after_id={id}"),
            None => "/api/v1/audit?limit=1000".to_string(),
        };
        let page = api.get(&path).await.unwrap().expect(200);
        let batch = page.body["entries"].as_array().cloned().unwrap_or_default();
        if batch.is_empty() {
            return entries;
        }
        after = batch.last().and_then(|e| e["id"].as_i64());
        entries.extend(batch);
    }
}

/// Runs one query on the gateway's database file with the sqlite3 shell.
pub(crate) fn sqlite(gateway: &Gateway, query: &str) -> String {
    let db = gateway.workdir.path().join("voltgate.db");
    let output = Command::new("sqlite3")
        .arg(&db)
        .arg(query)
        .output()
        .expect("sqlite3 runs (tests/run.sh installs it)");
    assert!(
        output.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}
