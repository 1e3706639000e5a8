//! Charging profiles and the current limit they impose: the smart-charging part of a charger
//! that SetChargingProfile writes, ClearChargingProfile removes and GetCompositeSchedule and
//! the meter values (`Current.Offered`) report.
//!
//! The composite limit of a connector at an instant is the smallest of the station-wide
//! maximum (highest stack level wins), external constraints, and the transaction limit: a
//! `TxProfile` of the running transaction if any, else a `TxDefaultProfile` of the connector,
//! else one of the whole station (connector 0).

use super::clock::Millis;

/// The nominal phase voltage used to turn a power limit into a current limit.
pub const NOMINAL_VOLTAGE: f64 = 230.0;
/// The phases assumed when a schedule period does not say.
pub const DEFAULT_PHASES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// 1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile.
    StationMax,
    TxDefault,
    Tx,
    /// 2.0.1 ChargingStationExternalConstraints.
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Absolute,
    RecurringDaily,
    RecurringWeekly,
    Relative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Amps,
    Watts,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// Seconds from the start of the schedule.
    pub start_s: i64,
    pub limit: f64,
    pub phases: Option<u32>,
}

/// An installed charging profile (its first schedule).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: i64,
    pub stack_level: i64,
    pub purpose: Purpose,
    pub kind: Kind,
    /// 1.6 connector id or 2.0.1 EVSE id; 0 for the whole station.
    pub connector: u32,
    /// The transaction a TxProfile belongs to (1.6 id as text, or the 2.0.1 id).
    pub transaction: Option<String>,
    pub valid_from: Option<Millis>,
    pub valid_to: Option<Millis>,
    pub start_schedule: Option<Millis>,
    pub duration_s: Option<i64>,
    pub unit: RateUnit,
    pub periods: Vec<Period>,
    /// When it was installed; the start of an Absolute schedule that gives none.
    pub installed_at: Millis,
}

/// The running transaction on a connector, as far as profiles care.
#[derive(Debug, Clone, Copy)]
pub struct TxContext<'a> {
    pub id: &'a str,
    pub started: Millis,
}

/// Which profiles a ClearChargingProfile request selects; `None` fields match anything.
#[derive(Debug, Clone, Default)]
pub struct ClearFilter {
    pub id: Option<i64>,
    pub connector: Option<u32>,
    pub purpose: Option<Purpose>,
    pub stack_level: Option<i64>,
}

impl Profile {
    /// Current in amps for a period.
    fn amps(&self, period: &Period) -> f64 {
        match self.unit {
            RateUnit::Amps => period.limit,
            RateUnit::Watts => {
                let phases = period.phases.unwrap_or(DEFAULT_PHASES).max(1);
                period.limit / (NOMINAL_VOLTAGE * f64::from(phases))
            }
        }
    }

    fn valid_at(&self, at: Millis) -> bool {
        self.valid_from.is_none_or(|from| at >= from) && self.valid_to.is_none_or(|to| at < to)
    }

    /// When the schedule that is in force at `at` started.
    fn schedule_start(&self, at: Millis, tx: Option<TxContext<'_>>) -> Option<Millis> {
        let anchor = self.start_schedule.unwrap_or(self.installed_at);
        match self.kind {
            Kind::Absolute => Some(anchor),
            Kind::Relative => Some(tx.map_or(at, |t| t.started)),
            Kind::RecurringDaily | Kind::RecurringWeekly => {
                let cycle = if self.kind == Kind::RecurringDaily {
                    86_400_000
                } else {
                    7 * 86_400_000
                };
                if at < anchor {
                    return Some(anchor);
                }
                let cycles = at.since(anchor) / cycle;
                Some(Millis(anchor.0 + cycles * cycle))
            }
        }
    }

    /// The limit this profile imposes at `at` in amps, if it is in force then.
    pub fn limit_at(&self, at: Millis, tx: Option<TxContext<'_>>) -> Option<f64> {
        if !self.valid_at(at) {
            return None;
        }
        let start = self.schedule_start(at, tx)?;
        if at < start {
            return None;
        }
        let elapsed_s = (at.since(start) / 1000) as i64;
        if self.duration_s.is_some_and(|d| elapsed_s >= d) {
            return None;
        }
        self.periods
            .iter()
            .filter(|p| p.start_s <= elapsed_s)
            .max_by_key(|p| p.start_s)
            .map(|p| self.amps(p))
    }

    /// The next instant after `at` at which this profile's limit may change.
    fn next_boundary(&self, at: Millis, tx: Option<TxContext<'_>>) -> Option<Millis> {
        let mut candidates: Vec<Millis> = Vec::new();
        candidates.extend(self.valid_from);
        candidates.extend(self.valid_to);
        if let Some(start) = self.schedule_start(at, tx) {
            for p in &self.periods {
                if p.start_s >= 0 {
                    candidates.push(start.plus_secs(p.start_s as u64));
                }
            }
            if let Some(d) = self.duration_s.filter(|d| *d > 0) {
                candidates.push(start.plus_secs(d as u64));
            }
            let cycle = match self.kind {
                Kind::RecurringDaily => Some(86_400_000),
                Kind::RecurringWeekly => Some(7 * 86_400_000),
                _ => None,
            };
            if let Some(cycle) = cycle {
                candidates.push(start.plus_ms(cycle));
            }
        }
        candidates.into_iter().filter(|c| *c > at).min()
    }
}

/// The profiles installed on one charger.
#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    profiles: Vec<Profile>,
}

impl ProfileSet {
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// Installs `profile`, replacing one with the same id, or with the same stack level,
    /// purpose and connector, as both versions require.
    pub fn install(&mut self, profile: Profile) {
        self.profiles.retain(|p| {
            p.id != profile.id
                && !(p.stack_level == profile.stack_level
                    && p.purpose == profile.purpose
                    && p.connector == profile.connector)
        });
        self.profiles.push(profile);
    }

    /// Whether installing a profile with this id would replace one (so a full store can
    /// still take it).
    pub fn would_replace(
        &self,
        id: i64,
        stack_level: i64,
        purpose: Purpose,
        connector: u32,
    ) -> bool {
        self.profiles.iter().any(|p| {
            p.id == id
                || (p.stack_level == stack_level
                    && p.purpose == purpose
                    && p.connector == connector)
        })
    }

    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// Removes the profiles the filter selects; how many went.
    pub fn clear(&mut self, filter: &ClearFilter) -> usize {
        let before = self.profiles.len();
        self.profiles.retain(|p| {
            let selected = filter.id.is_none_or(|id| p.id == id)
                && filter.connector.is_none_or(|c| p.connector == c)
                && filter.purpose.is_none_or(|purpose| p.purpose == purpose)
                && filter.stack_level.is_none_or(|s| p.stack_level == s);
            !selected
        });
        before - self.profiles.len()
    }

    /// Drops the TxProfiles of a transaction that ended.
    pub fn end_transaction(&mut self, connector: u32) {
        self.profiles
            .retain(|p| !(p.purpose == Purpose::Tx && p.connector == connector));
    }

    fn best(
        &self,
        at: Millis,
        tx: Option<TxContext<'_>>,
        pick: impl Fn(&Profile) -> bool,
    ) -> Option<f64> {
        self.profiles
            .iter()
            .filter(|p| pick(p))
            .filter_map(|p| p.limit_at(at, tx).map(|limit| (p.stack_level, limit)))
            .max_by_key(|(level, _)| *level)
            .map(|(_, limit)| limit)
    }

    /// The composite current limit on `connector` at `at`, in amps; `None` when no profile
    /// applies (the hardware limit then holds).
    pub fn limit_amps(&self, at: Millis, connector: u32, tx: Option<TxContext<'_>>) -> Option<f64> {
        let station = self.best(at, tx, |p| p.purpose == Purpose::StationMax);
        let external = self.best(at, tx, |p| p.purpose == Purpose::External);
        let tx_level = tx
            .and_then(|t| {
                self.best(at, tx, |p| {
                    p.purpose == Purpose::Tx
                        && p.connector == connector
                        && p.transaction.as_deref().is_none_or(|id| id == t.id)
                })
            })
            .or_else(|| {
                self.best(at, tx, |p| {
                    p.purpose == Purpose::TxDefault && p.connector == connector
                })
            })
            .or_else(|| {
                self.best(at, tx, |p| {
                    p.purpose == Purpose::TxDefault && p.connector == 0
                })
            });
        [station, external, tx_level]
            .into_iter()
            .flatten()
            .reduce(f64::min)
    }

    /// The next instant after `at` at which some profile's limit may change.
    pub fn next_change(
        &self,
        at: Millis,
        tx_of: impl Fn(u32) -> Option<(String, Millis)>,
    ) -> Option<Millis> {
        self.profiles
            .iter()
            .filter_map(|p| {
                let tx = tx_of(p.connector);
                let ctx = tx.as_ref().map(|(id, started)| TxContext {
                    id,
                    started: *started,
                });
                p.next_boundary(at, ctx)
            })
            .min()
    }

    /// The composite schedule of `connector` from `at` for `duration_s`: (offset in seconds,
    /// limit in amps) at each change, with `hardware_amps` where no profile applies.
    pub fn composite(
        &self,
        at: Millis,
        duration_s: u64,
        connector: u32,
        tx: Option<TxContext<'_>>,
        hardware_amps: f64,
    ) -> Vec<(i64, f64)> {
        let end = at.plus_secs(duration_s);
        let mut periods: Vec<(i64, f64)> = Vec::new();
        let mut t = at;
        let mut steps = 0;
        while t < end && steps < 1024 {
            let limit = self
                .limit_amps(t, connector, tx)
                .unwrap_or(hardware_amps)
                .min(hardware_amps);
            if periods
                .last()
                .is_none_or(|(_, last)| (last - limit).abs() > f64::EPSILON)
            {
                periods.push(((t.since(at) / 1000) as i64, limit));
            }
            let next = self
                .profiles
                .iter()
                .filter_map(|p| p.next_boundary(t, tx))
                .min();
            match next {
                Some(n) if n > t => t = n,
                _ => break,
            }
            steps += 1;
        }
        periods
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = Millis(1_700_000_000_000);

    fn profile(id: i64, purpose: Purpose, connector: u32, stack: i64, limit: f64) -> Profile {
        Profile {
            id,
            stack_level: stack,
            purpose,
            kind: Kind::Absolute,
            connector,
            transaction: None,
            valid_from: None,
            valid_to: None,
            start_schedule: Some(T0),
            duration_s: None,
            unit: RateUnit::Amps,
            periods: vec![Period {
                start_s: 0,
                limit,
                phases: None,
            }],
            installed_at: T0,
        }
    }

    #[test]
    fn station_max_caps_tx_default_and_higher_stack_wins() {
        let mut set = ProfileSet::default();
        assert_eq!(set.limit_amps(T0, 1, None), None);
        set.install(profile(1, Purpose::TxDefault, 0, 0, 20.0));
        assert_eq!(set.limit_amps(T0, 1, None), Some(20.0));
        set.install(profile(2, Purpose::TxDefault, 0, 1, 24.0));
        assert_eq!(set.limit_amps(T0, 1, None), Some(24.0));
        set.install(profile(3, Purpose::StationMax, 0, 0, 16.0));
        assert_eq!(set.limit_amps(T0, 1, None), Some(16.0));
        // connector-specific TxDefault overrides the station-wide one
        set.install(profile(4, Purpose::TxDefault, 1, 0, 10.0));
        assert_eq!(set.limit_amps(T0, 1, None), Some(10.0));
        assert_eq!(set.limit_amps(T0, 2, None), Some(16.0));
    }

    #[test]
    fn tx_profile_applies_only_to_its_transaction() {
        let mut set = ProfileSet::default();
        set.install(profile(1, Purpose::TxDefault, 0, 0, 32.0));
        let mut tx = profile(2, Purpose::Tx, 1, 0, 8.0);
        tx.transaction = Some("42".into());
        set.install(tx);
        let running = TxContext {
            id: "42",
            started: T0,
        };
        let other = TxContext {
            id: "43",
            started: T0,
        };
        assert_eq!(set.limit_amps(T0, 1, Some(running)), Some(8.0));
        assert_eq!(set.limit_amps(T0, 1, Some(other)), Some(32.0));
        set.end_transaction(1);
        assert_eq!(set.limit_amps(T0, 1, Some(running)), Some(32.0));
    }

    #[test]
    fn replacement_by_id_and_by_stack_purpose_connector() {
        let mut set = ProfileSet::default();
        set.install(profile(1, Purpose::TxDefault, 1, 0, 20.0));
        set.install(profile(1, Purpose::TxDefault, 1, 3, 12.0));
        assert_eq!(set.len(), 1);
        set.install(profile(9, Purpose::TxDefault, 1, 3, 6.0));
        assert_eq!(set.len(), 1);
        assert_eq!(set.limit_amps(T0, 1, None), Some(6.0));
        assert!(set.would_replace(9, 0, Purpose::Tx, 2));
    }

    #[test]
    fn periods_durations_and_watts() {
        let mut p = profile(1, Purpose::TxDefault, 0, 0, 0.0);
        p.periods = vec![
            Period {
                start_s: 0,
                limit: 11_040.0,
                phases: Some(3),
            },
            Period {
                start_s: 600,
                limit: 3_680.0,
                phases: Some(1),
            },
        ];
        p.unit = RateUnit::Watts;
        p.duration_s = Some(1200);
        let mut set = ProfileSet::default();
        set.install(p);
        let at = |s: u64| T0.plus_secs(s);
        assert_eq!(set.limit_amps(at(10), 1, None), Some(16.0));
        assert_eq!(set.limit_amps(at(700), 1, None), Some(16.0));
        assert_eq!(set.limit_amps(at(1300), 1, None), None);
        assert_eq!(set.next_change(at(10), |_| None), Some(at(600)));
        assert_eq!(set.next_change(at(600), |_| None), Some(at(1200)));
        let composite = set.composite(T0, 1800, 1, None, 32.0);
        assert_eq!(composite, vec![(0, 16.0), (1200, 32.0)]);
    }

    #[test]
    fn relative_profile_follows_transaction_start_and_recurring_repeats() {
        let mut p = profile(1, Purpose::TxDefault, 0, 0, 0.0);
        p.kind = Kind::Relative;
        p.start_schedule = None;
        p.periods = vec![
            Period {
                start_s: 0,
                limit: 10.0,
                phases: None,
            },
            Period {
                start_s: 60,
                limit: 20.0,
                phases: None,
            },
        ];
        let mut set = ProfileSet::default();
        set.install(p);
        let started = T0.plus_secs(1000);
        let tx = TxContext { id: "1", started };
        assert_eq!(
            set.limit_amps(started.plus_secs(30), 1, Some(tx)),
            Some(10.0)
        );
        assert_eq!(
            set.limit_amps(started.plus_secs(90), 1, Some(tx)),
            Some(20.0)
        );

        let mut daily = profile(2, Purpose::StationMax, 0, 0, 0.0);
        daily.kind = Kind::RecurringDaily;
        daily.periods = vec![
            Period {
                start_s: 0,
                limit: 6.0,
                phases: None,
            },
            Period {
                start_s: 3600,
                limit: 30.0,
                phases: None,
            },
        ];
        let mut set = ProfileSet::default();
        set.install(daily);
        let next_day = T0.plus_secs(86_400 + 60);
        assert_eq!(set.limit_amps(next_day, 1, None), Some(6.0));
        assert_eq!(
            set.limit_amps(next_day.plus_secs(3600), 1, None),
            Some(30.0)
        );
    }

    #[test]
    fn validity_window_and_clear_filter() {
        let mut p = profile(1, Purpose::StationMax, 0, 0, 10.0);
        p.valid_from = Some(T0.plus_secs(100));
        p.valid_to = Some(T0.plus_secs(200));
        let mut set = ProfileSet::default();
        set.install(p);
        set.install(profile(2, Purpose::TxDefault, 1, 0, 20.0));
        assert_eq!(set.limit_amps(T0, 1, None), Some(20.0));
        assert_eq!(set.limit_amps(T0.plus_secs(150), 1, None), Some(10.0));
        assert_eq!(
            set.clear(&ClearFilter {
                purpose: Some(Purpose::Tx),
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            set.clear(&ClearFilter {
                connector: Some(1),
                ..Default::default()
            }),
            1
        );
        assert_eq!(set.clear(&ClearFilter::default()), 1);
        assert!(set.is_empty());
    }
}
