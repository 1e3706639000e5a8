//! Load tests: thousands of simulated chargers against the real `voltgate` binary.
//!
//! A test binary of their own (see `tests/Cargo.toml`) that `cargo test` does not run by default:
//! each test fills both cores and thousands of file descriptors, so beside the end-to-end suite
//! they would starve its timing-sensitive cases. `tests/run.sh` runs them after the main suite,
//! one at a time (`--test-threads=1`). They fail on anything lost or refused, never on timing.

mod reconnect_storm;
mod smoke_load;

/// The gateway's `/metrics` exposition text.
pub async fn metrics(api_url: &str) -> String {
    reqwest::get(format!("{api_url}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// The value of one sample line of `/metrics`, named with its labels exactly as exposed, or
/// `None` when the series is not there (yet).
pub fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|value| {
            value
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{name_and_labels}: not a number ({e})"))
        })
}

/// The sum of every sample of a metric family (all label sets); 0 when the family has no
/// samples, which for a counter of refusals means none happened.
pub fn family_total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .map(|line| {
            line.rsplit_once(' ')
                .and_then(|(_, value)| value.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("unparsable sample: {line}"))
        })
        .sum()
}
