//! Log output: `tracing` events on stderr, as text for people or JSON lines for collectors.
//!
//! The filter comes from the first of: `--log`, `VOLTGATE_LOG`, `log` in the configuration file,
//! `RUST_LOG`, and finally `info`. Text has colours only when stderr is a terminal.
//!
//! Which fields a line carries comes from the spans it is logged in: a charger's session runs in
//! a `charger` span with `charger_id`; an API request runs in an `api` span with `request_id`
//! (the `x-request-id` response header) and, once the bearer token is resolved, `principal`.
//! A JSON line is one flat object, so a collector can filter on `charger_id` or `request_id`
//! without knowing which span set it: `timestamp`, `level`, `target`, the fields of every span
//! the event is in (outermost first, so an inner span's value wins), then the event's own fields
//! (`message` among them), and `span`, the name of the innermost span.

use std::fmt;

use anyhow::Context;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogFormat, DEFAULT_LOG_FILTER};

/// The filter in force: `configured` (flag, `VOLTGATE_LOG` or the file) wins, then `rust_log`
/// (the `RUST_LOG` variable), then `info`.
pub(crate) fn effective_filter(configured: Option<&str>, rust_log: Option<&str>) -> String {
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
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .try_init(),
    };
    result.map_err(|err| anyhow::anyhow!("cannot set up logging: {err}"))
}

/// Formats each event as one flat JSON object (see the module documentation). Span fields are
/// kept by [`JsonFields`] as JSON text in the span's extensions and merged in here.
pub(crate) struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), crate::clock::now_rfc3339().into());
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                innermost = Some(span.name());
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut FieldsInto(&mut line));
        if let Some(name) = innermost {
            line.insert("span".into(), name.into());
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Records an event's fields into a JSON object, keeping numbers and booleans typed.
struct FieldsInto<'a>(&'a mut Map<String, Value>);

impl Visit for FieldsInto<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// The one line logged per API request, inside its span. Probes and scrapes are logged at
/// debug (load balancers and Prometheus poll them every few seconds), the rest at info.
pub(crate) fn request_line(
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
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects everything written, for reading back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn json_lines(log: impl FnOnce()) -> Vec<Value> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).expect("every line is JSON"))
            .collect()
    }

    #[test]
    fn json_lines_are_flat_with_span_fields_at_the_top_level() {
        let lines = json_lines(|| {
            let request =
                tracing::info_span!("api", request_id = "r-1", principal = tracing::field::Empty);
            let _request = request.enter();
            request.record("principal", "ops");
            let charger = tracing::info_span!("charger", charger_id = "CP-1", request_id = "r-2");
            let _charger = charger.enter();
            tracing::warn!(status = 200u64, took_ms = 1.5, ok = true, "sent \"x\"");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], module_path!());
        assert_eq!(line["message"], "sent \"x\"");
        assert_eq!(line["charger_id"], "CP-1");
        assert_eq!(
            line["principal"], "ops",
            "a field recorded after the span began"
        );
        assert_eq!(line["request_id"], "r-2", "the inner span wins");
        assert_eq!(line["status"], 200);
        assert_eq!(line["took_ms"], 1.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["span"], "charger");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
    }

    #[test]
    fn an_event_outside_any_span_has_no_span_key() {
        let lines = json_lines(|| tracing::info!(port = 9000u64, "listening"));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["port"], 9000);
        assert!(lines[0].get("span").is_none(), "{}", lines[0]);
    }

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
