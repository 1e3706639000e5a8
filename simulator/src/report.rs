//! The end-of-run report: a table for people, JSON for scripts.

use std::fmt::Write as _;

use crate::run::RunReport;
use crate::stats::Percentiles;

fn row(out: &mut String, name: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "  {name:<30} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        p.count, p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms
    );
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// The report as a human-readable table.
pub fn table(report: &RunReport) -> String {
    let s = &report.summary;
    let t = &report.throughput;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "voltgate-sim: {} chargers ({}){}{}, {:.1} s",
        report.chargers,
        report.versions,
        if report.closed_loop {
            ", closed loop"
        } else {
            ""
        },
        if report.processes > 1 {
            format!(", {} processes", report.processes)
        } else {
            String::new()
        },
        t.elapsed_s
    );
    let _ = writeln!(out, "\nconnections");
    let _ = writeln!(
        out,
        "  attempts {}  made {}  failed {}  lost {}  boots {}  all online after {} s",
        s.counters.connect_attempts,
        s.counters.connections_made,
        s.counters.connections_failed,
        s.counters.disconnects,
        s.counters.booted,
        opt(t.all_online_after_s, 1)
    );
    if s.counters.reconnects > 0 {
        let _ = writeln!(
            out,
            "  reconnects {}  to another URL (failovers) {}  away p50 {} ms  p99 {} ms  max {} ms",
            s.counters.reconnects,
            s.counters.failovers,
            opt(s.reconnect_latency.as_ref().map(|p| p.p50_ms), 0),
            opt(s.reconnect_latency.as_ref().map(|p| p.p99_ms), 0),
            opt(s.reconnect_latency.as_ref().map(|p| p.max_ms), 0),
        );
    }
    let _ = writeln!(out, "\nthroughput");
    let _ = writeln!(
        out,
        "  messages/s {:.0} (steady window {:.1} s), {:.0} over the run; CALLs sent {} answered {}; gateway CALLs {} answered {}",
        t.messages_per_s, t.window_s, t.messages_per_s_overall, s.counters.calls_sent, s.counters.calls_answered, s.counters.calls_received, s.counters.answers_sent
    );
    let _ = writeln!(
        out,
        "  simulator CPU {} µs/message ({} cores)",
        opt(t.sim_cpu_us_per_message, 2),
        opt(t.sim_cpu_cores, 2)
    );
    if let Some(g) = &report.gateway {
        let _ = writeln!(
            out,
            "  gateway (pid {}) CPU {} µs/message ({} cores), RSS {} → {} KiB (peak {}), {} KiB/connection",
            g.pid,
            opt(g.cpu_us_per_message, 2),
            opt(g.cpu_cores, 2),
            g.rss_kib_before.map_or("-".into(), |v| v.to_string()),
            g.rss_kib_steady.map_or("-".into(), |v| v.to_string()),
            g.rss_kib_peak.map_or("-".into(), |v| v.to_string()),
            opt(g.kib_per_connection, 2)
        );
    }
    let _ = writeln!(
        out,
        "\nlatency (ms)                       count       p50       p95       p99       max"
    );
    if let Some(p) = &s.connect_latency {
        row(&mut out, "connect (TCP+WS handshake)", p);
    }
    if let Some(p) = &s.boot_latency {
        row(&mut out, "boot (connect → accepted)", p);
    }
    for (action, p) in &s.per_action {
        row(&mut out, action, p);
    }
    if s.counters.commands_sent > 0 {
        let _ = writeln!(
            out,
            "\noperator commands: sent {} ok {} ({:.0}/s)",
            s.counters.commands_sent, s.counters.commands_ok, t.commands_per_s
        );
        if let Some(p) = &s.command_latency {
            row(&mut out, "all commands", p);
        }
        for (name, p) in &s.per_command {
            row(&mut out, name, p);
        }
    }
    if s.counters.faults_injected > 0 || !s.notes.is_empty() {
        let _ = writeln!(
            out,
            "\nnoted (not failures): faults injected {}, malformed refused {}",
            s.counters.faults_injected, s.counters.malformed_refused
        );
        for (kind, n) in &s.notes {
            let _ = writeln!(out, "  {kind:<50} {n:>9}");
        }
    }
    if s.errors.is_empty() {
        let _ = writeln!(out, "\nerrors: none");
    } else {
        let _ = writeln!(out, "\nerrors");
        for (kind, n) in &s.errors {
            let _ = writeln!(out, "  {kind:<50} {n:>9}");
        }
    }
    let _ = writeln!(
        out,
        "\nresult: {}",
        if report.failed {
            "FAILED (something was lost or refused)"
        } else {
            "ok"
        }
    );
    out
}

/// The report as pretty JSON.
pub fn json(report: &RunReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
