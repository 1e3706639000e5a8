//! Whether a run passed, as CI needs it: the checks behind the exit code (nothing lost or
//! refused, or at most `--max-errors`; `--max-p99-ms`; `--min-msg-rate`), the JSON report that
//! carries them with the simulator's version and every parameter, and the same checks as a
//! JUnit XML file.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::Cli;
use crate::run::RunReport;

/// Version of the JSON report's layout; raised when a field changes meaning or goes away.
/// 2: `schema_version`, `simulator`, `parameters`, `checks`, `passed`, `aborted` and
/// `summary.call_latency` were added around the fields of version 1. 3: `parameters.url` is a
/// list (several gateway URLs), `summary.reconnects`, `summary.failovers` and
/// `summary.reconnect_latency` were added.
pub const REPORT_SCHEMA_VERSION: u32 = 3;

/// A steady window shorter than this holds too few heartbeat periods to judge a rate by;
/// `--min-msg-rate` then judges the whole run.
const MIN_STEADY_WINDOW_S: f64 = 5.0;

/// The limits a run is judged by, from the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    pub max_p99_ms: Option<f64>,
    pub min_msg_rate: Option<f64>,
    pub max_errors: Option<u64>,
}

impl Thresholds {
    pub fn of(cli: &Cli) -> Thresholds {
        Thresholds {
            max_p99_ms: cli.max_p99_ms,
            min_msg_rate: cli.min_msg_rate,
            max_errors: cli.max_errors,
        }
    }
}

/// One check of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// What was measured against what was allowed.
    pub detail: String,
}

/// The checks of a run; it passed when all of them did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    pub checks: Vec<Check>,
}

/// Judges a report: connections (a run given up because no charger could connect fails),
/// errors, and each threshold given.
pub fn judge(report: &RunReport, limits: Thresholds) -> Verdict {
    let mut checks = vec![Check {
        name: "connect",
        passed: report.aborted.is_none(),
        detail: report.aborted.clone().unwrap_or_else(|| {
            format!(
                "{} connections made, {} failed",
                report.summary.counters.connections_made,
                report.summary.counters.connections_failed
            )
        }),
    }];
    let errors: u64 = report.summary.errors.values().sum();
    let allowed = limits.max_errors.unwrap_or(0);
    let kinds: Vec<String> = report
        .summary
        .errors
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect();
    checks.push(Check {
        name: "errors",
        passed: errors <= allowed,
        detail: format!(
            "{errors} errors, at most {allowed} allowed{}",
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            }
        ),
    });
    if let Some(max) = limits.max_p99_ms {
        checks.push(match &report.summary.call_latency {
            Some(latency) => Check {
                name: "max-p99-ms",
                passed: latency.p99_ms <= max,
                detail: format!(
                    "p99 of {} answered CALLs {:.2} ms, at most {max} ms allowed",
                    latency.count, latency.p99_ms
                ),
            },
            None => Check {
                name: "max-p99-ms",
                passed: false,
                detail: "no CALL was answered".to_owned(),
            },
        });
    }
    if let Some(min) = limits.min_msg_rate {
        let throughput = &report.throughput;
        let (rate, over) = if throughput.window_s >= MIN_STEADY_WINDOW_S {
            (throughput.messages_per_s, "the steady window")
        } else {
            (throughput.messages_per_s_overall, "the whole run")
        };
        checks.push(Check {
            name: "min-msg-rate",
            passed: rate >= min,
            detail: format!("{rate:.1} messages/s over {over}, at least {min} required"),
        });
    }
    Verdict {
        passed: checks.iter().all(|check| check.passed),
        checks,
    }
}

/// The command line as the report shows it: every parameter, secrets replaced.
pub fn parameters(cli: &Cli) -> Value {
    let mut value = serde_json::to_value(cli).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("sim_version");
        map.remove("worker");
        for secret in ["password", "api_token"] {
            if map.get(secret).is_some_and(|v| !v.is_null()) {
                map.insert(secret.to_owned(), json!("<redacted>"));
            }
        }
    }
    value
}

/// The JSON report: the run's fields as before, with the schema version, the simulator's
/// name and version, every parameter and the verdict.
pub fn document(report: &RunReport, cli: &Cli, verdict: &Verdict) -> Value {
    let mut value = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut value {
        map.insert("schema_version".into(), json!(REPORT_SCHEMA_VERSION));
        map.insert(
            "simulator".into(),
            json!({"name": "voltgate-sim", "version": env!("CARGO_PKG_VERSION")}),
        );
        map.insert("parameters".into(), parameters(cli));
        map.insert("passed".into(), json!(verdict.passed));
        map.insert("checks".into(), json!(verdict.checks));
    }
    value
}

fn xml_escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            c if c.is_control() && c != '\n' && c != '\t' => String::new(),
            c => c.to_string(),
        })
        .collect()
}

/// The verdict as JUnit XML: one test suite, one test case per check, a failure per failed
/// check with its detail.
pub fn junit(verdict: &Verdict, elapsed_s: f64) -> String {
    let failures = verdict.checks.iter().filter(|check| !check.passed).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"voltgate-sim\" tests=\"{}\" failures=\"{failures}\" time=\"{elapsed_s:.3}\">",
        verdict.checks.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"voltgate-sim\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{elapsed_s:.3}\">",
        verdict.checks.len()
    );
    for check in &verdict.checks {
        let _ = write!(
            out,
            "    <testcase classname=\"voltgate-sim\" name=\"{}\"",
            check.name
        );
        if check.passed {
            let _ = writeln!(
                out,
                "><system-out>{}</system-out></testcase>",
                xml_escape(&check.detail)
            );
        } else {
            let detail = xml_escape(&check.detail);
            let _ = writeln!(
                out,
                "><failure message=\"{detail}\">{detail}</failure></testcase>"
            );
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(passed: &[bool]) -> Verdict {
        let names = ["connect", "errors", "max-p99-ms"];
        let checks: Vec<Check> = passed
            .iter()
            .zip(names)
            .map(|(passed, name)| Check {
                name,
                passed: *passed,
                detail: format!("<{name}> & \"detail\""),
            })
            .collect();
        Verdict {
            passed: passed.iter().all(|p| *p),
            checks,
        }
    }

    #[test]
    fn junit_has_a_case_per_check_and_a_failure_per_failed_one_escaped() {
        let xml = junit(&verdict(&[true, false, true]), 1.5);
        assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
        assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
        assert!(
            xml.contains("&lt;errors&gt; &amp; &quot;detail&quot;"),
            "{xml}"
        );
        assert!(!xml.contains("<errors>"), "{xml}");
    }

    #[test]
    fn parameters_hide_secrets_and_internal_switches() {
        use clap::Parser as _;
        let cli = Cli::try_parse_from([
            "voltgate-sim",
            "--password",
            "pw-secret",
            "--api-token",
            "tok-secret",
            "--chargers",
            "7",
        ])
        .unwrap();
        let shown = parameters(&cli);
        let text = shown.to_string();
        assert!(
            !text.contains("pw-secret") && !text.contains("tok-secret"),
            "{text}"
        );
        assert_eq!(shown["password"], "<redacted>");
        assert_eq!(shown["chargers"], 7);
        assert!(shown.get("worker").is_none());
    }
}
