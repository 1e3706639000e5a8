//! Which schema tolerance each charger gets, and what it has sent that needed it.
//!
//! The gateway-wide `--schema-tolerance` applies unless an operator set a charger's own
//! (`PATCH /chargers/{id}`, stored, loaded at start). Every deviation the codec accepted is
//! recorded per charger — kinds, counts, the last example — for `GET /chargers/{id}`, so an
//! operator can show the vendor what to fix, and logged at most once per charger and kind per
//! [`LOG_INTERVAL`] (the next line says how many went unlogged). The record lives in memory
//! since the gateway started; it is bounded by the number of kinds per charger.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use voltgate_ocpp::{Deviation, DeviationKind, Tolerance};

/// Least time between two log lines for the same charger and deviation kind.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Per-charger tolerance and deviation record.
pub(crate) struct Quirks {
    default: Tolerance,
    overrides: RwLock<HashMap<String, Tolerance>>,
    seen: Mutex<HashMap<String, BTreeMap<DeviationKind, KindRecord>>>,
}

struct KindRecord {
    count: u64,
    last: LastExample,
    logged_at: Option<Instant>,
    unlogged: u64,
}

/// The latest deviation of one kind from one charger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LastExample {
    pub action: String,
    pub path: String,
    pub example: String,
    /// RFC 3339, when it was accepted.
    pub at: String,
}

/// One kind in a charger's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct KindSummary {
    pub kind: &'static str,
    pub count: u64,
    pub last: LastExample,
}

/// What `GET /chargers/{id}` shows under `schema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ChargerQuirks {
    /// The tolerance in force for this charger.
    pub tolerance: &'static str,
    /// The charger's own setting, `None` when it follows the gateway's.
    pub tolerance_override: Option<&'static str>,
    pub deviations: Vec<KindSummary>,
}

/// A log line the caller should write now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    pub kind: DeviationKind,
    pub path: String,
    pub example: String,
    /// Deviations of this kind accepted since the previous line and not logged.
    pub unlogged: u64,
}

impl Quirks {
    pub(crate) fn new(default: Tolerance) -> Quirks {
        Quirks {
            default,
            overrides: RwLock::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The tolerance in force for `charger`.
    pub(crate) fn tolerance(&self, charger: &str) -> Tolerance {
        self.overrides
            .read()
            .get(charger)
            .copied()
            .unwrap_or(self.default)
    }

    /// Sets or clears (`None`) a charger's own tolerance; the caller has stored it.
    pub(crate) fn set_override(&self, charger: &str, tolerance: Option<Tolerance>) {
        let mut overrides = self.overrides.write();
        match tolerance {
            Some(tolerance) => overrides.insert(charger.to_owned(), tolerance),
            None => overrides.remove(charger),
        };
    }

    /// Takes the chargers' stored settings (at start); a value that is no tolerance is
    /// logged and ignored, so that charger follows the gateway's setting.
    pub(crate) fn load(&self, stored: Vec<(String, String)>) {
        let mut overrides = self.overrides.write();
        for (charger, text) in stored {
            match text.parse::<Tolerance>() {
                Ok(tolerance) => {
                    overrides.insert(charger, tolerance);
                }
                Err(err) => {
                    tracing::warn!(charger_id = %charger, error = %err, "stored schema tolerance ignored");
                }
            }
        }
    }

    /// Replaces every charger's own tolerance with the stored ones (another node changed one).
    pub(crate) fn reload(&self, stored: Vec<(String, String)>) {
        let fresh = Quirks::new(self.default);
        fresh.load(stored);
        let fresh = std::mem::take(&mut *fresh.overrides.write());
        *self.overrides.write() = fresh;
    }

    /// Records what the codec accepted from `charger`; returns the lines to log now.
    pub(crate) fn record(
        &self,
        charger: &str,
        action: &str,
        deviations: &[Deviation],
        at: &str,
        now: Instant,
    ) -> Vec<LogLine> {
        let mut lines = Vec::new();
        if deviations.is_empty() {
            return lines;
        }
        let mut seen = self.seen.lock();
        let kinds = seen.entry(charger.to_owned()).or_default();
        for deviation in deviations {
            let last = LastExample {
                action: action.to_owned(),
                path: deviation.path.clone(),
                example: deviation.example.clone(),
                at: at.to_owned(),
            };
            let record = kinds.entry(deviation.kind).or_insert_with(|| KindRecord {
                count: 0,
                last: last.clone(),
                logged_at: None,
                unlogged: 0,
            });
            record.count += 1;
            record.last = last;
            let due = record
                .logged_at
                .is_none_or(|logged| now.saturating_duration_since(logged) >= LOG_INTERVAL);
            if due {
                lines.push(LogLine {
                    kind: deviation.kind,
                    path: deviation.path.clone(),
                    example: deviation.example.clone(),
                    unlogged: record.unlogged,
                });
                record.logged_at = Some(now);
                record.unlogged = 0;
            } else {
                record.unlogged += 1;
            }
        }
        lines
    }

    /// The charger's tolerance and what it has sent that needed it.
    pub(crate) fn summary(&self, charger: &str) -> ChargerQuirks {
        let tolerance_override = self.overrides.read().get(charger).map(|t| t.as_str());
        let deviations = self
            .seen
            .lock()
            .get(charger)
            .map(|kinds| {
                kinds
                    .iter()
                    .map(|(kind, record)| KindSummary {
                        kind: kind.as_str(),
                        count: record.count,
                        last: record.last.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ChargerQuirks {
            tolerance: self.tolerance(charger).as_str(),
            tolerance_override,
            deviations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deviation(kind: DeviationKind, path: &str) -> Deviation {
        Deviation {
            kind,
            path: path.to_owned(),
            example: format!("example at {path}"),
        }
    }

    #[test]
    fn overrides_win_over_the_default_and_can_be_cleared() {
        let quirks = Quirks::new(Tolerance::Lenient);
        assert_eq!(quirks.tolerance("CP1"), Tolerance::Lenient);
        quirks.set_override("CP1", Some(Tolerance::Strict));
        assert_eq!(quirks.tolerance("CP1"), Tolerance::Strict);
        assert_eq!(quirks.tolerance("CP2"), Tolerance::Lenient);
        assert_eq!(quirks.summary("CP1").tolerance_override, Some("strict"));
        quirks.set_override("CP1", None);
        assert_eq!(quirks.tolerance("CP1"), Tolerance::Lenient);
        assert_eq!(quirks.summary("CP1").tolerance_override, None);
    }

    #[test]
    fn the_summary_counts_each_kind_and_keeps_the_last_example() {
        let quirks = Quirks::new(Tolerance::Lenient);
        let now = Instant::now();
        let long = deviation(DeviationKind::StringTooLong, "/chargePointModel");
        let unit = deviation(
            DeviationKind::UnitOrMeasurand,
            "/meterValue/0/sampledValue/0/unit",
        );
        quirks.record("CP1", "BootNotification", &[long], "t1", now);
        quirks.record("CP1", "MeterValues", &[unit], "t2", now);
        let later = deviation(DeviationKind::StringTooLong, "/chargeBoxSerialNumber");
        quirks.record("CP1", "BootNotification", &[later], "t3", now);
        let summary = quirks.summary("CP1");
        assert_eq!(summary.tolerance, "lenient");
        assert_eq!(summary.deviations.len(), 2);
        assert_eq!(summary.deviations[0].kind, "string_too_long");
        assert_eq!(summary.deviations[0].count, 2);
        assert_eq!(summary.deviations[0].last.path, "/chargeBoxSerialNumber");
        assert_eq!(summary.deviations[0].last.at, "t3");
        assert_eq!(summary.deviations[1].kind, "unit_or_measurand");
        assert_eq!(summary.deviations[1].last.action, "MeterValues");
        assert!(quirks.summary("CP2").deviations.is_empty());
    }

    #[test]
    fn log_lines_are_limited_per_charger_and_kind_and_count_what_went_unlogged() {
        let quirks = Quirks::new(Tolerance::Lenient);
        let start = Instant::now();
        let long = [deviation(DeviationKind::StringTooLong, "/chargePointModel")];
        assert_eq!(
            quirks
                .record("CP1", "BootNotification", &long, "t", start)
                .len(),
            1
        );
        for second in 1..60 {
            let now = start + Duration::from_secs(second);
            assert!(quirks
                .record("CP1", "BootNotification", &long, "t", now)
                .is_empty());
        }
        // Another charger, or another kind, has its own allowance.
        assert_eq!(
            quirks
                .record("CP2", "BootNotification", &long, "t", start)
                .len(),
            1
        );
        let field = [deviation(DeviationKind::UnknownField, "/")];
        assert_eq!(
            quirks.record("CP1", "Heartbeat", &field, "t", start).len(),
            1
        );
        let lines = quirks.record("CP1", "BootNotification", &long, "t", start + LOG_INTERVAL);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].unlogged, 59);
    }
}
