//! Log output: `tracing` events on stderr, as text for people or JSON lines for collectors.
//!
//! The filter comes from the first of: `--log`, `VOLTGATE_LOG`, `log` in the configuration file,
//! `RUST_LOG`, and finally `info`. Text has colours only when stderr is a terminal.
//!
//! Which fields a line carries comes from the spans it is logged in: a charger's session runs in
//! a `charger` span with `charger_id`; an API request runs in an `api` span with `request_id`
//! (the `x-request-id` response header) and, once the bearer token is resolved, `principal`.
//! JSON lines carry the event's fields at the top level, the innermost span as `span` and the
//! whole chain as `spans`.

use anyhow::Context;

use crate::config::{LogFormat, DEFAULT_LOG_FILTER};

/// The filter in force: `configured` (flag, `VOLTGATE_LOG` or the file) wins, then `rust_log`
/// (the `RUST_LOG` variable), then `info`.
pub fn effective_filter(configured: Option<&str>, rust_log: Option<&str>) -> String {
    configured
        .or(rust_log)
        .map(str::trim)
        .filter(|filter| !filter.is_empty())
        .unwrap_or(DEFAULT_LOG_FILTER)
        .to_owned()
}

/// Installs the process-wide subscriber writing to stderr.
pub fn init(format: LogFormat, configured: Option<&str>) -> anyhow::Result<()> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = effective_filter(configured, rust_log.as_deref());
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("invalid log filter `{filter}`"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    result.map_err(|err| anyhow::anyhow!("cannot set up logging: {err}"))
}

/// The one line logged per API request, inside its span. Probes and scrapes are logged at
/// debug (load balancers and Prometheus poll them every few seconds), the rest at info.
pub fn request_line(
    span: &tracing::Span,
    method: &axum::http::Method,
    path: &str,
    status: axum::http::StatusCode,
    took: std::time::Duration,
) {
    let status = status.as_u16();
    let duration_ms = took.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            tracing::debug!(%method, path, status, duration_ms, "request");
        } else {
            tracing::info!(%method, path, status, duration_ms, "request");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_filter_wins_then_rust_log_then_info() {
        assert_eq!(
            effective_filter(Some("debug"), Some("warn")),
            "debug".to_owned()
        );
        assert_eq!(effective_filter(None, Some("warn")), "warn".to_owned());
        assert_eq!(effective_filter(None, Some("  ")), "info".to_owned());
        assert_eq!(effective_filter(None, None), "info".to_owned());
    }
}
