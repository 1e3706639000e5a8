//! Prometheus metrics for the whole gateway, kept in one registry so `GET /metrics` can render
//! everything at once.
//!
//! Every metric name of the gateway's own starts with `voltgate_`; the process families
//! (CPU, memory, open files: [`PROCESS_FAMILIES`]) keep the standard `process_` names every
//! Prometheus dashboard knows. Label values come from a small closed set (OCPP action names,
//! command names, fixed reasons); charger ids and principals never become labels, so the number
//! of series stays bounded however many chargers connect.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Upper bounds (seconds) of the command latency buckets: from a fast LAN answer to the
/// longest timeout an operator is likely to configure.
const COMMAND_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The standard process families exported beside the gateway's own (Linux only).
#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "the families the exported text is checked against"
    )
)]
pub(crate) const PROCESS_FAMILIES: &[&str] = &[
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// The gateway's metric families, registered in [`Metrics::registry`].
pub(crate) struct Metrics {
    pub registry: Registry,
    chargers_connected: IntGaugeVec,
    ocpp_messages: IntCounterVec,
    frames_rejected: IntCounterVec,
    schema_deviations: IntCounterVec,
    handshakes_refused: IntCounterVec,
    command_duration: HistogramVec,
    authz_decisions: IntCounterVec,
    store_errors: IntCounterVec,
    api_requests: IntCounterVec,
    api_auth_failures: IntCounterVec,
    auth_throttled: IntCounterVec,
    accept_errors: IntCounterVec,
    tls_reloads: IntCounterVec,
    local_list_syncs: IntCounterVec,
    local_list_rounds: Histogram,
    local_list_left_out: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process collector registers once in a fresh registry");
        let build_info: IntGaugeVec = register(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "voltgate_build_info",
                    "Always 1; the labels name the running build (version of the voltgate package).",
                ),
                &["version"],
            ),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Metrics {
            chargers_connected: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "voltgate_chargers_connected",
                        "Chargers with an open OCPP connection, by OCPP version.",
                    ),
                    &["version"],
                ),
            ),
            ocpp_messages: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_ocpp_messages_total",
                        "OCPP-J messages by action, direction (in = from chargers) and kind.",
                    ),
                    &["action", "direction", "kind"],
                ),
            ),
            frames_rejected: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_ocpp_frames_rejected_total",
                        "Frames from chargers that were answered with an error or closed the connection, by reason.",
                    ),
                    &["reason"],
                ),
            ),
            schema_deviations: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_schema_deviations_total",
                        "Benign schema deviations accepted from chargers under lenient tolerance, by action and kind.",
                    ),
                    &["action", "kind"],
                ),
            ),
            handshakes_refused: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_ocpp_handshakes_refused_total",
                        "WebSocket handshakes refused, by reason.",
                    ),
                    &["reason"],
                ),
            ),
            command_duration: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "voltgate_command_duration_seconds",
                        "Time from an operator command to the charger's answer, by command and outcome.",
                    )
                    .buckets(COMMAND_LATENCY_BUCKETS.to_vec()),
                    &["command", "outcome"],
                ),
            ),
            authz_decisions: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_authz_decisions_total",
                        "Role engine decisions, by action and result (allowed|denied).",
                    ),
                    &["action", "result"],
                ),
            ),
            store_errors: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_store_errors_total",
                        "Store operations that failed, by operation.",
                    ),
                    &["op"],
                ),
            ),
            api_requests: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_api_requests_total",
                        "Operator API requests, by route and status code.",
                    ),
                    &["route", "status"],
                ),
            ),
            api_auth_failures: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_api_auth_failures_total",
                        "Operator API requests refused for their credentials, by reason.",
                    ),
                    &["reason"],
                ),
            ),
            accept_errors: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_accept_errors_total",
                        "Connections a listener failed to accept, by listener and reason \
                         (too_many_open_files: the open-file limit is reached).",
                    ),
                    &["listener", "reason"],
                ),
            ),
            auth_throttled: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_auth_throttled_total",
                        "Connections or requests turned away because their address failed authentication too often, by listener (ocpp|api).",
                    ),
                    &["listener"],
                ),
            ),
            tls_reloads: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_tls_reloads_total",
                        "Reloads of TLS certificate files, by listener (ocpp|api) and result (ok|error).",
                    ),
                    &["listener", "result"],
                ),
            ),
            local_list_syncs: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_local_list_syncs_total",
                        "Local authorisation list messages sent to chargers, by kind (version|limits|full|differential|clear_cache) and outcome.",
                    ),
                    &["kind", "outcome"],
                ),
            ),
            local_list_rounds: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "voltgate_local_list_round_seconds",
                        "Time to compute every dirty charger's local authorisation list in one sync round.",
                    )
                    .buckets(COMMAND_LATENCY_BUCKETS.to_vec()),
                ),
            ),
            local_list_left_out: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "voltgate_local_list_entries_left_out_total",
                        "Id tokens left out of a local list update because the charger cannot take them, by reason (capacity|message_size); counted per update sent. They are still authorised online.",
                    ),
                    &["reason"],
                ),
            ),
            registry,
        }
    }

    /// The text exposition format for `GET /metrics`.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        if let Err(err) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::error!(error = %err, "metrics could not be rendered");
        }
        text
    }

    /// The connected-chargers gauge for one OCPP version (`1.6` or `2.0.1`).
    pub(crate) fn chargers_connected(&self, version: &str) -> IntGauge {
        self.chargers_connected.with_label_values(&[version])
    }

    pub(crate) fn ocpp_message(&self, action: &str, direction: &str, kind: &str) {
        self.ocpp_messages
            .with_label_values(&[action, direction, kind])
            .inc();
    }

    pub(crate) fn frame_rejected(&self, reason: &str) {
        self.frames_rejected.with_label_values(&[reason]).inc();
    }

    pub(crate) fn schema_deviation(&self, action: &str, kind: &str) {
        self.schema_deviations
            .with_label_values(&[action, kind])
            .inc();
    }

    pub(crate) fn handshake_refused(&self, reason: &str) {
        self.handshakes_refused.with_label_values(&[reason]).inc();
    }

    pub(crate) fn command_latency(&self, command: &str, outcome: &str, seconds: f64) {
        let histogram: Histogram = self.command_duration.with_label_values(&[command, outcome]);
        histogram.observe(seconds);
    }

    pub(crate) fn authz_decision(&self, action: &str, allowed: bool) {
        let result = if allowed { "allowed" } else { "denied" };
        self.authz_decisions
            .with_label_values(&[action, result])
            .inc();
    }

    pub(crate) fn store_error(&self, op: &str) {
        self.store_errors.with_label_values(&[op]).inc();
    }

    /// An operator request refused for its credentials (`missing`, `invalid`, `expired`, …).
    pub(crate) fn api_auth_failure(&self, reason: &str) {
        self.api_auth_failures.with_label_values(&[reason]).inc();
    }

    /// Counts a failed `accept()` on `listener` (`ocpp`, `ocpp_tls`, `api_tls`).
    pub(crate) fn accept_error(&self, listener: &str, err: &std::io::Error) {
        // EMFILE and ENFILE: the process's or the system's open-file table is full.
        let reason = match err.raw_os_error() {
            Some(24 | 23) => "too_many_open_files",
            _ => "other",
        };
        self.accept_errors
            .with_label_values(&[listener, reason])
            .inc();
    }

    pub(crate) fn auth_throttled(&self, listener: crate::throttle::Listener) {
        self.auth_throttled
            .with_label_values(&[listener.label()])
            .inc();
    }

    pub(crate) fn tls_reload(&self, listener: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.tls_reloads
            .with_label_values(&[listener, result])
            .inc();
    }

    /// One local-list message: `kind` is version|limits|full|differential|clear_cache.
    pub(crate) fn local_list_sync(&self, kind: &str, outcome: &str) {
        self.local_list_syncs
            .with_label_values(&[kind, outcome])
            .inc();
    }

    /// `count` id tokens a list update left out: `reason` is capacity|message_size.
    pub(crate) fn local_list_left_out(&self, reason: &str, count: usize) {
        self.local_list_left_out
            .with_label_values(&[reason])
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    pub(crate) fn local_list_round(&self, seconds: f64) {
        self.local_list_rounds.observe(seconds);
    }

    pub(crate) fn api_request(&self, route: &str, status: u16) {
        let status = status.to_string();
        self.api_requests
            .with_label_values(&[route, status.as_str()])
            .inc();
    }
}

/// Registers a metric built from constant names and help texts. Those are fixed at compile
/// time, so a failure is a programming error caught by the tests below.
fn register<M>(registry: &Registry, metric: prometheus::Result<M>) -> M
where
    M: prometheus::core::Collector + Clone + 'static,
{
    let metric = match metric {
        Ok(metric) => metric,
        Err(err) => panic!("metric definition is invalid: {err}"),
    };
    if let Err(err) = registry.register(Box::new(metric.clone())) {
        panic!("metric could not be registered: {err}");
    }
    metric
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .and_then(|line| line[series.len()..].trim().parse().ok())
    }

    #[test]
    fn every_family_renders_with_the_voltgate_prefix() {
        let metrics = Metrics::new();
        metrics.chargers_connected("1.6").inc();
        metrics.ocpp_message("Heartbeat", "in", "call");
        metrics.frame_rejected("not_json");
        metrics.handshake_refused("unknown_charger");
        metrics.command_latency("reset", "accepted", 0.2);
        metrics.authz_decision("charge", true);
        metrics.store_error("start_transaction");
        metrics.api_request("/api/v1/scopes", 201);
        metrics.api_auth_failure("invalid");
        metrics.auth_throttled(crate::throttle::Listener::Ocpp);
        metrics.accept_error("ocpp", &std::io::Error::from_raw_os_error(24));
        metrics.tls_reload("ocpp", true);
        metrics.local_list_left_out("capacity", 3);
        let text = metrics.render();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|line| line.split(' ').next())
            .collect();
        for expected in [
            "voltgate_chargers_connected",
            "voltgate_ocpp_messages_total",
            "voltgate_ocpp_frames_rejected_total",
            "voltgate_ocpp_handshakes_refused_total",
            "voltgate_command_duration_seconds",
            "voltgate_authz_decisions_total",
            "voltgate_store_errors_total",
            "voltgate_api_requests_total",
            "voltgate_api_auth_failures_total",
            "voltgate_auth_throttled_total",
            "voltgate_accept_errors_total",
            "voltgate_tls_reloads_total",
            "voltgate_local_list_entries_left_out_total",
            "voltgate_build_info",
        ] {
            assert!(families.contains(&expected), "{expected} missing: {text}");
        }
        assert!(families
            .iter()
            .all(|name| name.starts_with("voltgate_") || PROCESS_FAMILIES.contains(name)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_families_and_build_info_are_exported() {
        let text = Metrics::new().render();
        for family in PROCESS_FAMILIES {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing: {text}"
            );
        }
        let open = sample(&text, "process_open_fds").expect("open fds");
        let max = sample(&text, "process_max_fds").expect("max fds");
        assert!(open >= 1.0 && open < max, "open {open}, max {max}");
        assert_eq!(
            sample(
                &text,
                &format!(
                    r#"voltgate_build_info{{version="{}"}}"#,
                    env!("CARGO_PKG_VERSION")
                )
            ),
            Some(1.0)
        );
    }

    #[test]
    fn counters_and_gauges_move_by_label() {
        let metrics = Metrics::new();
        let gauge = metrics.chargers_connected("2.0.1");
        gauge.inc();
        gauge.inc();
        gauge.dec();
        metrics.ocpp_message("BootNotification", "in", "call");
        metrics.ocpp_message("BootNotification", "in", "call");
        metrics.authz_decision("charge", false);
        metrics.api_request("/healthz", 200);
        let text = metrics.render();
        assert_eq!(
            sample(&text, r#"voltgate_chargers_connected{version="2.0.1"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"voltgate_ocpp_messages_total{action="BootNotification",direction="in",kind="call"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"voltgate_authz_decisions_total{action="charge",result="denied"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"voltgate_api_requests_total{route="/healthz",status="200"}"#
            ),
            Some(1.0)
        );
    }

    #[test]
    fn command_latency_lands_in_the_right_bucket() {
        let metrics = Metrics::new();
        metrics.command_latency("reset", "timeout", 0.3);
        let text = metrics.render();
        let bucket = |le: &str| {
            sample(
                &text,
                &format!(
                    r#"voltgate_command_duration_seconds_bucket{{command="reset",outcome="timeout",le="{le}"}}"#
                ),
            )
        };
        assert_eq!(bucket("0.25"), Some(0.0));
        assert_eq!(bucket("0.5"), Some(1.0));
    }
}
