//! What a run measured: counters, latency histograms (HDR, microsecond resolution) and
//! errors by kind, shared by every charger task and the operator-load task, plus the
//! summary the report prints.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

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

    pub fn error_count(&self) -> u64 {
        lock(&self.errors).values().sum()
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Everything measured, for the report.
    pub fn summary(&self) -> Summary {
        let h = lock(&self.histograms);
        Summary {
            connect_attempts: Stats::get(&self.connect_attempts),
            connections_made: Stats::get(&self.connections_made),
            connections_failed: Stats::get(&self.connections_failed),
            disconnects: Stats::get(&self.disconnects),
            booted: Stats::get(&self.booted),
            calls_sent: Stats::get(&self.calls_sent),
            calls_answered: Stats::get(&self.calls_answered),
            calls_received: Stats::get(&self.calls_received),
            answers_sent: Stats::get(&self.answers_sent),
            commands_sent: Stats::get(&self.commands_sent),
            commands_ok: Stats::get(&self.commands_ok),
            faults_injected: Stats::get(&self.faults_injected),
            malformed_refused: Stats::get(&self.malformed_refused),
            connect_latency: h.connect.as_ref().map(Percentiles::of),
            boot_latency: h.boot.as_ref().map(Percentiles::of),
            per_action: h
                .per_action
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| ((*k).to_owned(), Percentiles::of(v))))
                .collect(),
            per_command: h
                .per_command
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), Percentiles::of(v))))
                .collect(),
            command_latency: h.commands_all.as_ref().map(Percentiles::of),
            errors: lock(&self.errors).clone(),
            notes: lock(&self.notes).clone(),
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
    pub connect_attempts: u64,
    pub connections_made: u64,
    pub connections_failed: u64,
    pub disconnects: u64,
    pub booted: u64,
    pub calls_sent: u64,
    pub calls_answered: u64,
    pub calls_received: u64,
    pub answers_sent: u64,
    pub commands_sent: u64,
    pub commands_ok: u64,
    pub faults_injected: u64,
    pub malformed_refused: u64,
    pub connect_latency: Option<Percentiles>,
    pub boot_latency: Option<Percentiles>,
    pub per_action: BTreeMap<String, Percentiles>,
    pub per_command: BTreeMap<String, Percentiles>,
    pub command_latency: Option<Percentiles>,
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
        stats.command("reset", Duration::from_millis(2), true);
        stats.command("reset", Duration::from_millis(4), false);
        stats.error("timeout:Heartbeat");
        stats.error("timeout:Heartbeat");
        stats.note("fault:disconnect");
        let s = stats.summary();
        assert_eq!(s.calls_answered, 100);
        let hb = &s.per_action["Heartbeat"];
        assert_eq!(hb.count, 100);
        assert!((hb.p50_ms - 50.0).abs() < 0.1, "{hb:?}");
        assert!((hb.p99_ms - 99.0).abs() < 0.1, "{hb:?}");
        assert!((hb.max_ms - 100.0).abs() < 0.1, "{hb:?}");
        assert_eq!(s.commands_ok, 1);
        assert_eq!(s.per_command["reset"].count, 2);
        assert_eq!(s.errors["timeout:Heartbeat"], 2);
        assert_eq!(stats.error_count(), 2);
        assert_eq!(s.notes["fault:disconnect"], 1);
        assert_eq!(s.connect_latency.map(|p| p.count), Some(1));
    }
}
