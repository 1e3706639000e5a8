//! The open-file limit: every connected charger holds one file descriptor, so a gateway left at
//! the common soft default of 1,024 refuses chargers long before it runs out of anything else.
//! At start the gateway raises its soft limit to the hard limit (the most an unprivileged process
//! may take), logs both, and warns when what it got is still low for a charger gateway, or
//! cannot hold the chargers `--expected-chargers` announces. Accepts that fail all the same
//! are counted in `voltgate_accept_errors_total` (see [`crate::metrics`]).

/// Below this many descriptors the gateway warns at start: room for a few thousand chargers plus
/// the database, listeners and operator connections.
pub(crate) const LOW_LIMIT: u64 = 4_096;

/// The limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Files kept aside from chargers: the database and its journal, the listeners, operator and
/// Prometheus connections, TLS material reloads.
pub(crate) const RESERVED_FILES: u64 = 256;

impl Limits {
    /// Whether the soft limit in force is too low to plan on more than a few thousand chargers.
    pub(crate) fn is_low(&self) -> bool {
        self.soft < LOW_LIMIT
    }

    /// How many chargers the soft limit in force leaves room for.
    pub(crate) fn charger_room(&self) -> u64 {
        self.soft.saturating_sub(RESERVED_FILES)
    }

    /// Whether `expected` chargers fit under the soft limit in force.
    pub(crate) fn holds(&self, expected: u64) -> bool {
        expected <= self.charger_room()
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
pub(crate) fn raise() -> std::io::Result<Limits> {
    let (soft_before, hard) = rlimit::Resource::NOFILE.get()?;
    if soft_before < hard {
        rlimit::Resource::NOFILE.set(hard, hard)?;
    }
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    Ok(Limits {
        soft_before,
        soft,
        hard,
    })
}

/// [`raise`], with the outcome logged: both limits at info, a warning when the limit stays low,
/// cannot hold `expected_chargers`, or cannot be read or raised (the gateway still starts;
/// chargers past the limit are refused).
pub fn raise_and_log(expected_chargers: Option<u64>) {
    match raise() {
        Ok(limits) => {
            tracing::info!(
                soft_before = limits.soft_before,
                soft = limits.soft,
                hard = limits.hard,
                "open-file limit"
            );
            if let Some(expected) = expected_chargers.filter(|expected| !limits.holds(*expected)) {
                tracing::warn!(
                    expected_chargers = expected,
                    room_for = limits.charger_room(),
                    soft = limits.soft,
                    hard = limits.hard,
                    reserved = RESERVED_FILES,
                    "open-file limit cannot hold the expected chargers: each charger holds one \
                     open file; raise the hard limit (LimitNOFILE= in systemd, ulimits in compose)"
                );
            } else if expected_chargers.is_none() && limits.is_low() {
                tracing::warn!(
                    soft = limits.soft,
                    hard = limits.hard,
                    recommended = LOW_LIMIT,
                    "open-file limit is low: each charger holds one open file, raise the hard \
                     limit (LimitNOFILE= in systemd, ulimits in compose)"
                );
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot read or raise the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limits = raise().unwrap();
        assert_eq!(limits.soft, limits.hard, "{limits:?}");
        assert!(limits.soft >= limits.soft_before, "{limits:?}");
        assert_eq!(
            rlimit::Resource::NOFILE.get().unwrap(),
            (limits.hard, limits.hard)
        );
    }

    #[test]
    fn a_limit_below_a_few_thousand_is_low() {
        let at = |soft| Limits {
            soft_before: soft,
            soft,
            hard: soft,
        };
        assert!(at(1_024).is_low());
        assert!(!at(LOW_LIMIT).is_low());
        assert!(!at(1_048_576).is_low());
    }

    #[test]
    fn expected_chargers_fit_beside_the_reserve() {
        let limits = Limits {
            soft_before: 1_024,
            soft: 10_000,
            hard: 10_000,
        };
        assert_eq!(limits.charger_room(), 10_000 - RESERVED_FILES);
        assert!(limits.holds(10_000 - RESERVED_FILES));
        assert!(!limits.holds(10_000 - RESERVED_FILES + 1));
        assert!(!limits.holds(10_000));
    }
}
