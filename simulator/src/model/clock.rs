//! Wall-clock instants as plain numbers, so the charger model stays free of clocks: the caller
//! says what time it is, and tests say any time they like.

use std::fmt::Write as _;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

const MS_PER_DAY: u64 = 86_400_000;

impl Millis {
    /// The instant `ms` milliseconds later.
    pub fn plus_ms(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// The instant `secs` seconds later.
    pub fn plus_secs(self, secs: u64) -> Millis {
        self.plus_ms(secs.saturating_mul(1000))
    }

    /// Milliseconds from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The instant as an RFC 3339 UTC timestamp with milliseconds, e.g.
    /// `2024-05-01T12:00:00.000Z`.
    pub fn rfc3339(self) -> String {
        let days = (self.0 / MS_PER_DAY) as i64;
        let in_day = self.0 % MS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            let mut out = String::with_capacity(32);
            let _ = write!(
                out,
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                in_day / 3_600_000,
                in_day / 60_000 % 60,
                in_day / 1000 % 60,
                in_day % 1000
            );
            return out;
        }
        // Digits by hand: timestamps go into every closed-loop message.
        let mut buf = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u64| {
            for i in (0..width).rev() {
                buf[at + i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year as u64);
        put(5, 2, u64::from(month));
        put(8, 2, u64::from(day));
        put(11, 2, in_day / 3_600_000);
        put(14, 2, in_day / 60_000 % 60);
        put(17, 2, in_day / 1000 % 60);
        put(20, 3, in_day % 1000);
        buf.iter().map(|&b| char::from(b)).collect()
    }

    /// Reads an RFC 3339 timestamp with any offset; `None` when it is not one or lies before
    /// the epoch.
    pub fn parse_rfc3339(text: &str) -> Option<Millis> {
        let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let ms = at.unix_timestamp_nanos() / 1_000_000;
        u64::try_from(ms).ok().map(Millis)
    }
}

/// Year, month and day of the proleptic Gregorian calendar for a count of days since
/// 1970-01-01 (the well-known "civil from days" algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_leap_day() {
        assert_eq!(Millis(0).rfc3339(), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T23:59:59.999Z
        assert_eq!(
            Millis(1_709_251_199_999).rfc3339(),
            "2024-02-29T23:59:59.999Z"
        );
    }

    #[test]
    fn parse_round_trips_and_honours_offsets() {
        let at = Millis(1_714_564_800_123);
        assert_eq!(Millis::parse_rfc3339(&at.rfc3339()), Some(at));
        assert_eq!(
            Millis::parse_rfc3339("2024-05-01T14:00:00.123+02:00"),
            Some(Millis(1_714_564_800_123))
        );
        assert_eq!(Millis::parse_rfc3339("yesterday"), None);
        assert_eq!(Millis::parse_rfc3339("1969-12-31T23:59:59Z"), None);
    }

    #[test]
    fn formatting_agrees_with_the_time_crate_over_many_days() {
        for day in (0..40_000u64).step_by(37) {
            let at = Millis(day * MS_PER_DAY + 45_296_789);
            let reference =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000).unwrap();
            let ours = at.rfc3339();
            assert_eq!(Millis::parse_rfc3339(&ours), Some(at), "{ours}");
            assert!(
                ours.starts_with(&format!("{:04}-", reference.year())),
                "{ours}"
            );
        }
    }
}
