//! What a run measured: counters, latency histograms (HDR, microsecond resolution) and
//! errors by kind, shared by every charger task and the operator-load task, plus the
//! summary the report prints. A [`Tally`] is the same data as plain values that can be sent
//! from one process to another and added up exactly, so a run split over several processes
//! reports as if it had been one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::de::Error as _;
use serde::ser::SerializeSeq as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Latencies up to one hour, three significant digits.
const MAX_MICROS: u64 = 3_600_000_000;

fn new_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).ok()
}

fn record_micros(slot: &mut Option<Histogram<u64>>, micros: u64) {
    if slot.is_none() {
        *slot = new_histogram();
    }
    if let Some(h) = slot {
        let _ = h.record(micros.clamp(1, MAX_MICROS));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counters and histograms of one run. Cheap to update from many tasks.
#[derive(Default)]
pub struct Stats {
    pub connect_attempts: AtomicU64,
    pub connections_made: AtomicU64,
    pub connections_failed: AtomicU64,
    pub disconnects: AtomicU64,
    /// Connections made by a charger that had been connected before.
    pub reconnects: AtomicU64,
    /// Reconnections to another URL than the one of the charger's previous connection.
    pub failovers: AtomicU64,
    pub booted: AtomicU64,
    pub calls_sent: AtomicU64,
    pub calls_answered: AtomicU64,
    pub calls_received: AtomicU64,
    pub answers_sent: AtomicU64,
    pub commands_sent: AtomicU64,
    pub commands_ok: AtomicU64,
    pub faults_injected: AtomicU64,
    /// Answers to CALLs the simulator deliberately malformed that correctly refused them.
    pub malformed_refused: AtomicU64,
    histograms: Mutex<Histograms>,
    errors: Mutex<BTreeMap<String, u64>>,
    notes: Mutex<BTreeMap<String, u64>>,
}

#[derive(Default)]
struct Histograms {
    connect: Option<Histogram<u64>>,
    reconnect: Option<Histogram<u64>>,
    boot: Option<Histogram<u64>>,
    per_action: BTreeMap<&'static str, Option<Histogram<u64>>>,
    per_command: BTreeMap<String, Option<Histogram<u64>>>,
    commands_all: Option<Histogram<u64>>,
}

fn record(h: &mut Option<Histogram<u64>>, d: Duration) {
    record_micros(h, d.as_micros() as u64);
}

impl Stats {
    pub fn new() -> Arc<Stats> {
        Arc::new(Stats::default())
    }

    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A TCP + (TLS) + WebSocket handshake that succeeded, and how long it took.
    pub fn connected(&self, took: Duration) {
        Stats::add(&self.connections_made);
        record(&mut lock(&self.histograms).connect, took);
    }

    /// A charger connected again, `away` after its previous connection ended; `failover`
    /// when it is now connected to another URL than before.
    pub fn reconnected(&self, away: Duration, failover: bool) {
        Stats::add(&self.reconnects);
        if failover {
            Stats::add(&self.failovers);
        }
        record(&mut lock(&self.histograms).reconnect, away);
    }

    /// From the start of connecting to the accepted BootNotification.
    pub fn booted(&self, took: Duration) {
        Stats::add(&self.booted);
        record(&mut lock(&self.histograms).boot, took);
    }

    /// A CALL of the charger answered with a CALLRESULT after `took`.
    pub fn answered(&self, action: &'static str, took: Duration) {
        Stats::add(&self.calls_answered);
        let mut h = lock(&self.histograms);
        record_micros(
            h.per_action.entry(action).or_insert(None),
            took.as_micros() as u64,
        );
    }

    /// An operator command answered (any HTTP status) after `took`.
    pub fn command(&self, name: &str, took: Duration, ok: bool) {
        if ok {
            Stats::add(&self.commands_ok);
        }
        let micros = took.as_micros() as u64;
        let mut h = lock(&self.histograms);
        record_micros(h.per_command.entry(name.to_owned()).or_insert(None), micros);
        record_micros(&mut h.commands_all, micros);
    }

    /// Something went wrong; `kind` groups it in the report. Any error fails the run.
    pub fn error(&self, kind: impl Into<String>) {
        *lock(&self.errors).entry(kind.into()).or_insert(0) += 1;
    }

    /// Something worth counting that is not a failure (injected faults, refused tokens).
    pub fn note(&self, kind: impl Into<String>) {
        *lock(&self.notes).entry(kind.into()).or_insert(0) += 1;
    }

    /// The errors counted so far, by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        lock(&self.errors).clone()
    }

    pub fn error_count(&self) -> u64 {
        lock(&self.errors).values().sum()
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The counters as plain numbers.
    pub fn counters(&self) -> Counters {
        Counters {
            connect_attempts: Stats::get(&self.connect_attempts),
            connections_made: Stats::get(&self.connections_made),
            connections_failed: Stats::get(&self.connections_failed),
            disconnects: Stats::get(&self.disconnects),
            reconnects: Stats::get(&self.reconnects),
            failovers: Stats::get(&self.failovers),
            booted: Stats::get(&self.booted),
            calls_sent: Stats::get(&self.calls_sent),
            calls_answered: Stats::get(&self.calls_answered),
            calls_received: Stats::get(&self.calls_received),
            answers_sent: Stats::get(&self.answers_sent),
            commands_sent: Stats::get(&self.commands_sent),
            commands_ok: Stats::get(&self.commands_ok),
            faults_injected: Stats::get(&self.faults_injected),
            malformed_refused: Stats::get(&self.malformed_refused),
        }
    }

    /// Everything measured so far, as values that can be sent elsewhere and added up.
    pub fn tally(&self) -> Tally {
        let h = lock(&self.histograms);
        let latencies = |slot: &Option<Histogram<u64>>| slot.clone().map(Latencies);
        Tally {
            counters: self.counters(),
            connect: latencies(&h.connect),
            reconnect: latencies(&h.reconnect),
            boot: latencies(&h.boot),
            per_action: h
                .per_action
                .iter()
                .filter_map(|(k, v)| latencies(v).map(|v| ((*k).to_owned(), v)))
                .collect(),
            per_command: h
                .per_command
                .iter()
                .filter_map(|(k, v)| latencies(v).map(|v| (k.clone(), v)))
                .collect(),
            commands_all: latencies(&h.commands_all),
            errors: lock(&self.errors).clone(),
            notes: lock(&self.notes).clone(),
        }
    }

    /// Everything measured, for the report.
    pub fn summary(&self) -> Summary {
        self.tally().summary()
    }
}

/// The plain counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub connect_attempts: u64,
    pub connections_made: u64,
    pub connections_failed: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    pub failovers: u64,
    pub booted: u64,
    pub calls_sent: u64,
    pub calls_answered: u64,
    pub calls_received: u64,
    pub answers_sent: u64,
    pub commands_sent: u64,
    pub commands_ok: u64,
    pub faults_injected: u64,
    pub malformed_refused: u64,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.connect_attempts += other.connect_attempts;
        self.connections_made += other.connections_made;
        self.connections_failed += other.connections_failed;
        self.disconnects += other.disconnects;
        self.reconnects += other.reconnects;
        self.failovers += other.failovers;
        self.booted += other.booted;
        self.calls_sent += other.calls_sent;
        self.calls_answered += other.calls_answered;
        self.calls_received += other.calls_received;
        self.answers_sent += other.answers_sent;
        self.commands_sent += other.commands_sent;
        self.commands_ok += other.commands_ok;
        self.faults_injected += other.faults_injected;
        self.malformed_refused += other.malformed_refused;
    }
}

/// One latency histogram. It travels as the list of its non-empty buckets, each as
/// `[highest value of the bucket, count]`: recording those counts again fills exactly the
/// same buckets, so percentiles, maximum and mean come out identical on the other side.
#[derive(Debug, Clone, PartialEq)]
pub struct Latencies(pub Histogram<u64>);

impl Latencies {
    pub fn new() -> Option<Latencies> {
        new_histogram().map(Latencies)
    }

    pub fn record(&mut self, micros: u64) {
        let _ = self.0.record(micros.clamp(1, MAX_MICROS));
    }
}

impl Serialize for Latencies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let buckets = self.0.iter_recorded();
        let mut seq = serializer.serialize_seq(None)?;
        for bucket in buckets {
            seq.serialize_element(&(bucket.value_iterated_to(), bucket.count_at_value()))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Latencies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let buckets = Vec::<(u64, u64)>::deserialize(deserializer)?;
        let mut h = new_histogram().ok_or_else(|| D::Error::custom("histogram bounds"))?;
        for (value, count) in buckets {
            h.record_n(value, count)
                .map_err(|e| D::Error::custom(format!("bucket {value}: {e:?}")))?;
        }
        Ok(Latencies(h))
    }
}

/// Two tallies could not be added up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("histogram {0} does not fit: {1}")]
    Histogram(String, String),
}

/// Everything a run (or one process of a split run) measured, as plain values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    pub counters: Counters,
    pub connect: Option<Latencies>,
    /// From the end of a charger's connection to its next one.
    #[serde(default)]
    pub reconnect: Option<Latencies>,
    pub boot: Option<Latencies>,
    pub per_action: BTreeMap<String, Latencies>,
    pub per_command: BTreeMap<String, Latencies>,
    pub commands_all: Option<Latencies>,
    pub errors: BTreeMap<String, u64>,
    pub notes: BTreeMap<String, u64>,
}

fn merge_into(
    name: &str,
    into: &mut Option<Latencies>,
    from: Option<Latencies>,
) -> Result<(), MergeError> {
    match (into.as_mut(), from) {
        (_, None) => Ok(()),
        (None, Some(from)) => {
            *into = Some(from);
            Ok(())
        }
        (Some(into), Some(from)) => into
            .0
            .add(&from.0)
            .map_err(|e| MergeError::Histogram(name.to_owned(), format!("{e:?}"))),
    }
}

fn merge_maps(
    into: &mut BTreeMap<String, Latencies>,
    from: BTreeMap<String, Latencies>,
) -> Result<(), MergeError> {
    for (name, latencies) in from {
        let mut slot = into.remove(&name);
        merge_into(&name, &mut slot, Some(latencies))?;
        if let Some(merged) = slot {
            into.insert(name, merged);
        }
    }
    Ok(())
}

impl Tally {
    /// Adds another tally to this one: counters, errors and notes are summed, histograms
    /// merged bucket by bucket.
    pub fn merge(&mut self, other: Tally) -> Result<(), MergeError> {
        self.counters.add(&other.counters);
        merge_into("connect", &mut self.connect, other.connect)?;
        merge_into("reconnect", &mut self.reconnect, other.reconnect)?;
        merge_into("boot", &mut self.boot, other.boot)?;
        merge_maps(&mut self.per_action, other.per_action)?;
        merge_maps(&mut self.per_command, other.per_command)?;
        merge_into("commands", &mut self.commands_all, other.commands_all)?;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_insert(0) += n;
        }
        for (kind, n) in other.notes {
            *self.notes.entry(kind).or_insert(0) += n;
        }
        Ok(())
    }

    /// The latencies of every action in one histogram; `None` when nothing was answered.
    fn all_calls(&self) -> Option<Latencies> {
        let mut all: Option<Latencies> = None;
        for latencies in self.per_action.values() {
            // Histograms of one run share their bounds, so adding cannot fail; should it, the
            // action is left out rather than the whole figure.
            let _ = merge_into("calls", &mut all, Some(latencies.clone()));
        }
        all
    }

    /// Percentiles and totals, for the report.
    pub fn summary(&self) -> Summary {
        let c = &self.counters;
        let of = |l: &Latencies| Percentiles::of(&l.0);
        Summary {
            counters: *c,
            connect_latency: self.connect.as_ref().map(of),
            reconnect_latency: self.reconnect.as_ref().map(of),
            boot_latency: self.boot.as_ref().map(of),
            per_action: self
                .per_action
                .iter()
                .map(|(k, v)| (k.clone(), of(v)))
                .collect(),
            per_command: self
                .per_command
                .iter()
                .map(|(k, v)| (k.clone(), of(v)))
                .collect(),
            command_latency: self.commands_all.as_ref().map(of),
            call_latency: self.all_calls().as_ref().map(of),
            errors: self.errors.clone(),
            notes: self.notes.clone(),
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Written at the top level of the JSON report, as the totals always were.
    #[serde(flatten)]
    pub counters: Counters,
    pub connect_latency: Option<Percentiles>,
    /// From the end of a charger's connection to its next one (the time it was away).
    pub reconnect_latency: Option<Percentiles>,
    pub boot_latency: Option<Percentiles>,
    pub per_action: BTreeMap<String, Percentiles>,
    pub per_command: BTreeMap<String, Percentiles>,
    pub command_latency: Option<Percentiles>,
    /// Every answered charger CALL, all actions together (what `--max-p99-ms` judges).
    pub call_latency: Option<Percentiles>,
    pub errors: BTreeMap<String, u64>,
    pub notes: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_counters() {
        let stats = Stats::new();
        for ms in 1..=100u64 {
            stats.answered("Heartbeat", Duration::from_millis(ms));
        }
        stats.connected(Duration::from_millis(3));
        stats.reconnected(Duration::from_millis(1200), true);
        stats.reconnected(Duration::from_millis(800), false);
        stats.command("reset", Duration::from_millis(2), true);
        stats.command("reset", Duration::from_millis(4), false);
        stats.error("timeout:Heartbeat");
        stats.error("timeout:Heartbeat");
        stats.note("fault:disconnect");
        let s = stats.summary();
        assert_eq!(s.counters.calls_answered, 100);
        let hb = &s.per_action["Heartbeat"];
        assert_eq!(hb.count, 100);
        assert!((hb.p50_ms - 50.0).abs() < 0.1, "{hb:?}");
        assert!((hb.p99_ms - 99.0).abs() < 0.1, "{hb:?}");
        assert!((hb.max_ms - 100.0).abs() < 0.1, "{hb:?}");
        assert_eq!(s.counters.commands_ok, 1);
        assert_eq!(s.per_command["reset"].count, 2);
        assert_eq!(s.errors["timeout:Heartbeat"], 2);
        assert_eq!(stats.error_count(), 2);
        assert_eq!(s.notes["fault:disconnect"], 1);
        assert_eq!(s.connect_latency.map(|p| p.count), Some(1));
        assert_eq!((s.counters.reconnects, s.counters.failovers), (2, 1));
        let away = s.reconnect_latency.unwrap();
        assert_eq!(away.count, 2);
        assert!((away.max_ms - 1200.0).abs() < 1.0, "{away:?}");
    }

    /// A tally as it travels between processes: JSON and back.
    fn over_the_wire(tally: Tally) -> Tally {
        serde_json::from_str(&serde_json::to_string(&tally).unwrap()).unwrap()
    }

    /// A spread of latencies from 1 µs to past the one-hour cap, heavy at the low end.
    fn latencies(seed: u64, n: usize) -> Vec<Duration> {
        let mut rng = crate::model::rng::SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                let magnitude = rng.below(13) as u32;
                Duration::from_micros(rng.below(10u64.pow(magnitude) * 4) + 1)
            })
            .collect()
    }

    #[test]
    fn merged_tallies_equal_one_run_that_recorded_everything() {
        let (one, two, all) = (Stats::new(), Stats::new(), Stats::new());
        let actions = ["Heartbeat", "StatusNotification", "MeterValues"];
        for (i, took) in latencies(7, 3000).into_iter().enumerate() {
            let part = if i % 3 == 0 { &one } else { &two };
            let action = actions[i % actions.len()];
            for stats in [part, &all] {
                stats.answered(action, took);
                if i % 5 == 0 {
                    stats.booted(took);
                    stats.connected(took / 2);
                    stats.reconnected(took * 2, i % 10 == 0);
                }
                if i % 7 == 0 {
                    stats.command(
                        if i % 2 == 0 { "reset" } else { "unlock" },
                        took,
                        i % 4 != 0,
                    );
                    Stats::add(&stats.commands_sent);
                }
                if i % 11 == 0 {
                    stats.error(format!("timeout:{action}"));
                    stats.note("fault:disconnect");
                }
            }
        }
        // only one side saw this action: the merge keeps it as it is
        one.answered("Authorize", Duration::from_millis(3));
        all.answered("Authorize", Duration::from_millis(3));

        let mut merged = over_the_wire(one.tally());
        merged.merge(over_the_wire(two.tally())).unwrap();
        let expected = all.tally();
        assert_eq!(merged.counters, expected.counters);
        assert_eq!(merged.connect, expected.connect);
        assert_eq!(merged.reconnect, expected.reconnect);
        assert!(merged.counters.failovers > 0);
        assert!(merged.counters.reconnects > merged.counters.failovers);
        assert_eq!(merged.boot, expected.boot);
        assert_eq!(merged.per_action, expected.per_action);
        assert_eq!(merged.per_command, expected.per_command);
        assert_eq!(merged.commands_all, expected.commands_all);
        assert_eq!(merged.errors, expected.errors);
        assert_eq!(merged.notes, expected.notes);
        assert_eq!(
            serde_json::to_value(merged.summary()).unwrap(),
            serde_json::to_value(all.summary()).unwrap()
        );
        assert_eq!(merged.counters.calls_answered, 3001);
        assert_eq!(merged.per_action["Authorize"].0.len(), 1);
    }

    #[test]
    fn a_histogram_survives_the_wire_exactly() {
        let mut latencies = Latencies::new().unwrap();
        for micros in [1, 2, 999, 1_000, 1_001, 123_456_789, MAX_MICROS, u64::MAX] {
            latencies.record(micros);
        }
        let text = serde_json::to_string(&latencies).unwrap();
        let back: Latencies = serde_json::from_str(&text).unwrap();
        assert_eq!(back, latencies);
        assert_eq!(back.0.max(), latencies.0.max());
        assert_eq!(
            back.0.value_at_quantile(0.5),
            latencies.0.value_at_quantile(0.5)
        );
        // two separate histograms added up: same as one that saw both halves
        let mut left = Latencies::new().unwrap();
        let mut right = Latencies::new().unwrap();
        let mut both = Latencies::new().unwrap();
        for (i, took) in latencies_list().into_iter().enumerate() {
            if i % 2 == 0 {
                left.record(took)
            } else {
                right.record(took)
            }
            both.record(took);
        }
        left.0.add(&right.0).unwrap();
        assert_eq!(left, both);
        // a bucket beyond the histogram's range is refused, not silently dropped
        assert!(serde_json::from_str::<Latencies>("[[1, 2], [99999999999999999, 1]]").is_err());
        assert!(serde_json::from_str::<Latencies>("{\"p50\": 1}").is_err());
    }

    fn latencies_list() -> Vec<u64> {
        latencies(11, 500)
            .iter()
            .map(|d| d.as_micros() as u64)
            .collect()
    }
}
