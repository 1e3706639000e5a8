//! The gateway's one clock.
//!
//! Every timestamp the gateway writes (audit records, store rows, OCPP `currentTime`, log
//! lines, cluster leases) comes from here, so they all share one format: UTC RFC 3339 with
//! exactly three fractional digits (`2024-05-01T12:00:00.123Z`). That form is what OCPP
//! chargers parse most reliably, and its fixed width keeps stored times in order when
//! compared as text.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// The current UTC time.
pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Wall-clock Unix milliseconds (cheap: no formatting).
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The current UTC time as RFC 3339 with millisecond precision.
pub(crate) fn now_rfc3339() -> String {
    rfc3339_millis(now_millis())
}

/// Unix milliseconds as UTC RFC 3339 with millisecond precision.
pub(crate) fn rfc3339_millis(ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

/// Parses an RFC 3339 time; `None` when it is not one.
pub(crate) fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339_with_three_fractional_digits() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_714_564_800_123),
            "2024-05-01T12:00:00.123Z"
        );
        assert_eq!(
            rfc3339_millis(1_714_564_800_000),
            "2024-05-01T12:00:00.000Z"
        );
        let text = now_rfc3339();
        let parsed = parse_rfc3339(&text).expect("round-trips");
        assert_eq!(parsed.offset(), time::UtcOffset::UTC);
        assert_eq!(text.len(), "2024-05-01T12:00:00.123Z".len(), "{text}");
    }

    #[test]
    fn now_and_now_millis_agree() {
        let millis = now_millis();
        let at = now();
        let diff = i128::from(millis) - at.unix_timestamp_nanos() / 1_000_000;
        assert!(diff.abs() < 1_000, "{diff} ms apart");
    }

    #[test]
    fn text_that_is_not_rfc3339_is_refused() {
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2024-05-01 12:00:00"), None);
    }
}
