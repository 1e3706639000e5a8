//! The command line of `voltgate-sim`: every option with its help text, and the checks that
//! turn it into a run plan, driver settings and operator load.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use voltgate_ocpp::OcppVersion;

use crate::model::SessionPlan;
use crate::operator::{CommandLoad, DEFAULT_MIX, LOAD_COMMANDS};
use crate::run::{Plan, VersionMix};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum VersionArg {
    #[value(name = "1.6")]
    V16,
    #[value(name = "2.0.1")]
    V201,
    /// Half the chargers 1.6, half 2.0.1.
    Mixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum ReportFormat {
    /// A human-readable table.
    Table,
    /// One JSON document, for scripts.
    Json,
}

/// Simulated OCPP 1.6J / 2.0.1 chargers and a load generator for the Voltgate gateway.
///
/// Starts N chargers at a ramp rate, runs them for a duration and prints a report:
/// connections made and failed, boot latency, messages per second, CALL→CALLRESULT latency
/// per action, operator command latency and errors by kind. The exit code is 0 when
/// nothing was lost or refused, 1 when something was, 2 when the run could not start.
///
/// When N chargers (plus the API connections of the operator load and a small reserve) need
/// more open files than one process may have, the run splits itself over several processes
/// and still prints one report (see --processes).
#[derive(Debug, Clone, Parser, Serialize, Deserialize)]
#[command(name = "voltgate-sim", version, disable_version_flag = true)]
pub struct Cli {
    /// Print the simulator's version.
    #[arg(short = 'V', long = "version", visible_alias = "sim-version", action = clap::ArgAction::Version)]
    pub sim_version: Option<bool>,

    /// Gateway OCPP endpoint; each charger connects to URL/<charger id>. Several gateway
    /// nodes: repeat the option or separate URLs with commas. Charger n (counting from 0 in
    /// the run) starts at URL n modulo their number and, when its connection is lost or an
    /// attempt fails, reconnects with backoff to another URL (failover), every other URL
    /// before its first again; the chargers of a URL that went away spread evenly over the
    /// others. The report counts reconnects and failovers.
    #[arg(
        long,
        default_value = "ws://127.0.0.1:9000/ocpp",
        value_name = "URL[,URL..]",
        value_delimiter = ',',
        action = clap::ArgAction::Append
    )]
    pub url: Vec<String>,

    /// Number of chargers to simulate (spread over several processes when one process may
    /// not open that many connections; see --processes).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub chargers: u32,

    /// Number of the first charger; lets separately started simulators share one id space.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub first_index: u32,

    /// Simulator processes to spread the chargers over, each with a contiguous share of the
    /// charger ids and its share of --ramp, --commands and --max-in-flight; one report
    /// covers them all. Default: as few as the open-file limit (RLIMIT_NOFILE) allows for
    /// N chargers plus the operator load's API connections and a reserve of 100 files per
    /// process.
    #[arg(long, value_name = "K")]
    pub processes: Option<u32>,

    /// Internal: run as one process of a split run, taking its share from the parent
    /// process on standard input.
    #[arg(long, hide = true)]
    pub worker: bool,

    /// New connections per second, over all processes (0: all at once).
    #[arg(long, default_value_t = 100.0, value_name = "PER_SECOND")]
    pub ramp: f64,

    /// Length of the run in seconds, ramp included.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub duration: f64,

    /// OCPP version of the chargers (formerly `--version VERSION`, still read with a
    /// deprecation note).
    #[arg(
        long = "ocpp",
        value_enum,
        default_value = "mixed",
        value_name = "1.6|2.0.1|mixed"
    )]
    pub ocpp_version: VersionArg,

    /// Charger ids are this prefix followed by a six-digit number.
    #[arg(long, default_value = "SIM-", value_name = "PREFIX")]
    pub id_prefix: String,

    /// Connectors (1.6) or EVSEs (2.0.1) per charger.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub connectors: u32,

    /// Heartbeat every SECS, overriding the interval the gateway's BootNotification answer
    /// gives (without this option the gateway's interval is obeyed).
    #[arg(long, value_name = "SECS")]
    pub heartbeat: Option<u32>,

    /// Meter values every SECS during transactions (0: none).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub meter_interval: u32,

    /// Simulated drivers arrive on each connector every SECS on average, authorise with
    /// --id-tag, charge for --session-length and leave (0: no sessions of their own).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub sessions: f64,

    /// Length of a simulated charging session.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    pub session_length: f64,

    /// Id tag used by simulated drivers and by remote-start commands.
    #[arg(long, default_value = "SIM-TAG", value_name = "TAG")]
    pub id_tag: String,

    /// Each charger sends Heartbeat, StatusNotification and MeterValues back to back (one
    /// outstanding CALL each) to measure throughput.
    #[arg(long)]
    pub closed_loop: bool,

    /// After a dropped connection, reconnect without sending BootNotification again (by
    /// default every new connection boots).
    #[arg(long)]
    pub no_boot_on_reconnect: bool,

    /// HTTP Basic password of every charger (user name = charger id); also registered with
    /// the charger when --register is given.
    #[arg(
        long,
        env = "VOLTGATE_SIM_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// PEM file of CA certificates to trust for wss:// (in addition to the public roots).
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Local addresses to connect from, spread over chargers so ports do not run out:
    /// a comma-separated list of addresses or ranges like 127.0.0.1-127.0.0.8 (charger n
    /// connects from address n modulo the list's length, in a split run too).
    #[arg(long, value_name = "LIST")]
    pub source_addrs: Option<String>,

    /// Base URL of the gateway's HTTP API (for --register and --commands). Several (comma-
    /// separated or by repeating the option), as the nodes of a cluster: each command goes to
    /// one of them at random, and to the next when its node refuses the connection.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        value_name = "URL[,URL..]",
        value_delimiter = ',',
        action = clap::ArgAction::Append
    )]
    pub api: Vec<String>,

    /// Bearer token for the API.
    #[arg(
        long,
        env = "VOLTGATE_SIM_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,

    /// Register every charger under SCOPE through POST /api/v1/chargers before connecting
    /// (otherwise rely on the gateway's --auto-register).
    #[arg(long, value_name = "SCOPE")]
    pub register: Option<String>,

    /// Operator load: remote commands per second (over all processes) through
    /// POST /api/v1/chargers/{id}/commands/{command}, to chargers that are online.
    #[arg(long, default_value_t = 0.0, value_name = "PER_SECOND")]
    pub commands: f64,

    /// Commands the operator load rotates through (comma-separated API names).
    #[arg(long, value_name = "LIST", default_value_t = DEFAULT_MIX.join(","))]
    pub command_mix: String,

    /// Most operator commands in flight at once (over all processes); each may hold an API
    /// connection open.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_in_flight: usize,

    /// Seconds to wait for the answer to a CALL before counting it lost.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub call_timeout: f64,

    /// Do not check the gateway's CALLs and CALLRESULTs against the OCPP schemas.
    #[arg(long)]
    pub no_validate: bool,

    /// Worker threads (default: the CPUs this process may run on; 1 uses a
    /// single-threaded runtime).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Fault: abrupt disconnects per charger per minute.
    #[arg(long, default_value_t = 0.0, value_name = "PER_MINUTE")]
    pub fault_disconnect_rate: f64,

    /// Fault: share (0-1) of the gateway's CALLs left unanswered.
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub fault_no_answer: f64,

    /// Fault: answer the gateway's CALLs only after this many milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub fault_slow_ms: u64,

    /// Fault: share (0-1) of charger CALLs sent malformed (missing required field, wrong type,
    /// unknown action); the gateway must refuse each with a CALLERROR.
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub fault_malformed_rate: f64,

    /// Schema deviations of real firmware that quirky chargers send (the gateway's default
    /// lenient tolerance accepts them): string_too_long, enum_value, unit_or_measurand,
    /// numeric_string, timestamp_without_zone, unknown_field.
    #[arg(long, value_name = "KIND[,KIND..]")]
    pub quirks: Option<String>,

    /// Share (0-1) of the chargers that are quirky (default 1 with --quirks).
    #[arg(long, value_name = "SHARE")]
    pub quirks_share: Option<f64>,

    /// Fault: a reconnect storm; every charger drops its connection at once SECS into the
    /// run and reconnects.
    #[arg(long, value_name = "SECS")]
    pub fault_storm_at: Option<f64>,

    /// Report CPU time and memory of this process (the gateway) over the steady window.
    #[arg(long, value_name = "PID")]
    pub watch_pid: Option<u32>,

    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub report: ReportFormat,

    /// No progress lines on stderr (a line every second: redrawn in place on a terminal, one
    /// line each otherwise) and no other chatter; errors and the report remain.
    #[arg(long)]
    pub quiet: bool,

    /// Fail the run (exit code 1) when the p99 latency of the chargers' CALLs (all actions
    /// together) is above MS milliseconds.
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,

    /// Fail the run when fewer than this many charger messages per second were answered
    /// (over the steady window, or the whole run when that window is under 5 s).
    #[arg(long, value_name = "PER_SECOND")]
    pub min_msg_rate: Option<f64>,

    /// Fail the run when more than N errors were counted. Without it any lost or refused
    /// message fails the run; with it up to N are tolerated.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,

    /// Also write the verdict as a JUnit XML file (one test case per check) for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Seed of the simulated randomness (session arrivals, faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// A command line that parses but makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    #[error("{0} must be a number from 0 to 1")]
    Share(&'static str),
    #[error("{0} must not be negative")]
    Negative(&'static str),
    #[error("{0:?} is not an address or a range of addresses")]
    SourceAddr(String),
    #[error("{0:?} is not a command the load can send (one of: {1})")]
    UnknownCommand(String, String),
    #[error("--chargers must be at least 1")]
    NoChargers,
    #[error("--processes must be from 1 to the number of chargers ({0})")]
    Processes(u32),
    #[error(transparent)]
    Quirks(#[from] crate::quirks::QuirksError),
    #[error("--commands needs --api-token (or VOLTGATE_SIM_API_TOKEN): the operator load goes through the API")]
    CommandsNeedToken,
}

/// The OCPP versions the deprecated `--version VERSION` spelling took.
const OCPP_VERSION_VALUES: [&str; 3] = ["1.6", "2.0.1", "mixed"];

/// Rewrites the deprecated `--version 1.6` (or `--version=1.6`) into `--ocpp 1.6`; a bare
/// `--version` stays the request for the simulator's own version. Returns the arguments and
/// whether the old spelling was used.
pub fn upgrade_args(args: Vec<std::ffi::OsString>) -> (Vec<std::ffi::OsString>, bool) {
    let mut out = Vec::with_capacity(args.len());
    let mut deprecated = false;
    let mut iter = args.into_iter().peekable();
    while let Some(arg) = iter.next() {
        if arg == "--version" {
            let takes_value = iter
                .peek()
                .and_then(|next| next.to_str())
                .is_some_and(|next| OCPP_VERSION_VALUES.contains(&next));
            if takes_value {
                deprecated = true;
                out.push("--ocpp".into());
                continue;
            }
        } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--version=")) {
            deprecated = true;
            out.push("--ocpp".into());
            out.push(value.into());
            continue;
        }
        out.push(arg);
    }
    (out, deprecated)
}

/// Reads `127.0.0.1,127.0.0.5-127.0.0.8,127.0.1.1-4` into a list of addresses.
pub fn parse_source_addrs(text: &str) -> Result<Vec<IpAddr>, CliError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || CliError::SourceAddr(item.to_owned());
        match item.split_once('-') {
            None => out.push(item.parse::<IpAddr>().map_err(|_| bad())?),
            Some((first, last)) => {
                let first: Ipv4Addr = first.parse().map_err(|_| bad())?;
                let last: Ipv4Addr = match last.parse::<u8>() {
                    Ok(octet) => {
                        let [a, b, c, _] = first.octets();
                        Ipv4Addr::new(a, b, c, octet)
                    }
                    Err(_) => last.parse().map_err(|_| bad())?,
                };
                let (lo, hi) = (u32::from(first), u32::from(last));
                if hi < lo || hi - lo > 65_535 {
                    return Err(bad());
                }
                out.extend((lo..=hi).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
            }
        }
    }
    if out.is_empty() {
        return Err(CliError::SourceAddr(text.to_owned()));
    }
    Ok(out)
}

fn share(value: f64, name: &'static str) -> Result<f64, CliError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(CliError::Share(name))
    }
}

fn non_negative(value: f64, name: &'static str) -> Result<f64, CliError> {
    if value >= 0.0 && value.is_finite() {
        Ok(value)
    } else {
        Err(CliError::Negative(name))
    }
}

impl Cli {
    /// The run plan this command line asks for.
    pub fn plan(&self) -> Result<Plan, CliError> {
        if self.chargers == 0 {
            return Err(CliError::NoChargers);
        }
        let sessions = non_negative(self.sessions, "--sessions")?;
        Ok(Plan {
            chargers: self.chargers,
            first_index: self.first_index,
            ramp_per_second: non_negative(self.ramp, "--ramp")?,
            duration: Duration::from_secs_f64(non_negative(self.duration, "--duration")?),
            versions: match self.ocpp_version {
                VersionArg::V16 => VersionMix::Only(OcppVersion::V16),
                VersionArg::V201 => VersionMix::Only(OcppVersion::V201),
                VersionArg::Mixed => VersionMix::Mixed,
            },
            id_prefix: self.id_prefix.clone(),
            connectors: self.connectors.max(1),
            heartbeat_s: self.heartbeat,
            meter_interval_s: self.meter_interval,
            password: self.password.clone(),
            sessions: (sessions > 0.0).then(|| SessionPlan {
                id_tag: self.id_tag.clone(),
                mean_gap_ms: (sessions * 1000.0) as u64,
                length_ms: (self.session_length.max(1.0) * 1000.0) as u64,
            }),
            closed_loop: self.closed_loop,
            boot_on_reconnect: !self.no_boot_on_reconnect,
            storm_at: self
                .fault_storm_at
                .map(|s| non_negative(s, "--fault-storm-at").map(Duration::from_secs_f64))
                .transpose()?,
            watch_pid: self.watch_pid,
            progress: !self.quiet,
            seed: self.seed,
        })
    }

    /// The operator load, when --commands asks for one.
    pub fn command_load(&self) -> Result<Option<CommandLoad>, CliError> {
        let rate = non_negative(self.commands, "--commands")?;
        if rate == 0.0 {
            return Ok(None);
        }
        if self.api_token.is_none() {
            return Err(CliError::CommandsNeedToken);
        }
        let mix: Vec<String> = self
            .command_mix
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        for name in &mix {
            if !LOAD_COMMANDS.contains(&name.as_str()) {
                return Err(CliError::UnknownCommand(
                    name.clone(),
                    LOAD_COMMANDS.join(", "),
                ));
            }
        }
        if mix.is_empty() {
            return Err(CliError::UnknownCommand(
                String::new(),
                LOAD_COMMANDS.join(", "),
            ));
        }
        Ok(Some(CommandLoad {
            per_second: rate,
            mix,
            id_tag: self.id_tag.clone(),
            meter_interval_s: self.meter_interval,
            max_in_flight: self.max_in_flight,
        }))
    }

    pub fn faults(&self) -> Result<crate::driver::Faults, CliError> {
        Ok(crate::driver::Faults {
            disconnects_per_minute: non_negative(
                self.fault_disconnect_rate,
                "--fault-disconnect-rate",
            )?,
            no_answer: share(self.fault_no_answer, "--fault-no-answer")?,
            slow_answer: Duration::from_millis(self.fault_slow_ms),
            malformed: share(self.fault_malformed_rate, "--fault-malformed-rate")?,
            quirks: crate::quirks::Quirks::parse(
                self.quirks.as_deref(),
                match self.quirks_share {
                    Some(value) => share(value, "--quirks-share")?,
                    None if self.quirks.is_some() => 1.0,
                    None => 0.0,
                },
            )?,
        })
    }

    pub fn source_addrs(&self) -> Result<Vec<IpAddr>, CliError> {
        self.source_addrs
            .as_deref()
            .map(parse_source_addrs)
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn help_is_consistent_and_documents_every_option() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "--url",
            "--chargers",
            "--ramp",
            "--duration",
            "--id-prefix",
            "--heartbeat",
            "--meter-interval",
            "--api",
            "--api-token",
            "--register",
            "--commands",
            "--report",
            "--closed-loop",
            "--source-addrs",
            "--fault-disconnect-rate",
            "--fault-no-answer",
            "--fault-slow-ms",
            "--fault-malformed-rate",
            "--quirks",
            "--quirks-share",
            "--ca-file",
            "--password",
            "--processes",
            "--ocpp",
            "--quiet",
            "--max-p99-ms",
            "--min-msg-rate",
            "--max-errors",
            "--junit",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
        assert!(!help.contains("--worker"), "the worker switch is internal");
        for arg in Cli::command().get_arguments() {
            assert!(
                arg.get_help().is_some() || arg.get_id() == "help" || arg.get_id() == "version",
                "{} has no help",
                arg.get_id()
            );
        }
    }

    #[test]
    fn the_issue_command_line_parses() {
        let cli = Cli::try_parse_from([
            "voltgate-sim",
            "--url",
            "ws://127.0.0.1:9000/ocpp",
            "--chargers",
            "2000",
            "--ramp",
            "500",
            "--duration",
            "20",
            "--ocpp",
            "mixed",
            "--id-prefix",
            "SIM-",
            "--heartbeat",
            "30",
            "--meter-interval",
            "10",
            "--api",
            "http://127.0.0.1:8080",
            "--api-token",
            "T",
            "--register",
            "site-1",
            "--commands",
            "50",
            "--report",
            "json",
        ])
        .unwrap();
        let plan = cli.plan().unwrap();
        assert_eq!(plan.chargers, 2000);
        assert_eq!(plan.versions, VersionMix::Mixed);
        assert_eq!(plan.heartbeat_s, Some(30));
        assert_eq!(cli.report, ReportFormat::Json);
        let load = cli.command_load().unwrap().unwrap();
        assert_eq!(load.per_second, 50.0);
        assert_eq!(load.mix.len(), DEFAULT_MIX.len());
        let v16 = Cli::try_parse_from(["voltgate-sim", "--ocpp", "1.6"]).unwrap();
        assert_eq!(
            v16.plan().unwrap().versions,
            VersionMix::Only(OcppVersion::V16)
        );
        assert!(Cli::try_parse_from(["voltgate-sim", "--ocpp", "2.1"]).is_err());
        assert_eq!(cli.url, ["ws://127.0.0.1:9000/ocpp"]);
    }

    #[test]
    fn several_urls_by_repeating_the_option_or_with_commas() {
        let cli = Cli::try_parse_from([
            "voltgate-sim",
            "--url",
            "ws://a:9000/ocpp,ws://b:9000/ocpp",
            "--url",
            "wss://c/ocpp",
        ])
        .unwrap();
        assert_eq!(
            cli.url,
            ["ws://a:9000/ocpp", "ws://b:9000/ocpp", "wss://c/ocpp"]
        );
        let default = Cli::try_parse_from(["voltgate-sim"]).unwrap();
        assert_eq!(default.url, ["ws://127.0.0.1:9000/ocpp"]);
    }

    #[test]
    fn several_api_urls_by_repeating_the_option_or_with_commas() {
        let cli = Cli::try_parse_from([
            "voltgate-sim",
            "--api",
            "http://a:8080,http://b:8080",
            "--api",
            "https://c",
        ])
        .unwrap();
        assert_eq!(cli.api, ["http://a:8080", "http://b:8080", "https://c"]);
        let default = Cli::try_parse_from(["voltgate-sim"]).unwrap();
        assert_eq!(default.api, ["http://127.0.0.1:8080"]);
    }

    #[test]
    fn the_old_version_spelling_becomes_ocpp_and_a_bare_version_is_the_tools() {
        let os = |list: &[&str]| -> Vec<std::ffi::OsString> {
            list.iter().map(std::ffi::OsString::from).collect()
        };
        let (args, deprecated) =
            upgrade_args(os(&["voltgate-sim", "--version", "2.0.1", "--quiet"]));
        assert!(deprecated);
        assert_eq!(args, os(&["voltgate-sim", "--ocpp", "2.0.1", "--quiet"]));
        let cli = Cli::try_parse_from(args).unwrap();
        assert_eq!(cli.ocpp_version, VersionArg::V201);
        let (args, deprecated) = upgrade_args(os(&["voltgate-sim", "--version=mixed"]));
        assert!(deprecated);
        assert_eq!(args, os(&["voltgate-sim", "--ocpp", "mixed"]));
        let (args, deprecated) = upgrade_args(os(&["voltgate-sim", "--version"]));
        assert!(!deprecated);
        let err = Cli::try_parse_from(args).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(err.to_string().contains(env!("CARGO_PKG_VERSION")), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("voltgate-sim").chain(args.iter().copied()))
                .unwrap()
        };
        assert_eq!(
            parse(&["--fault-no-answer", "1.5"]).faults().unwrap_err(),
            CliError::Share("--fault-no-answer")
        );
        assert_eq!(
            parse(&["--chargers", "0"]).plan().unwrap_err(),
            CliError::NoChargers
        );
        assert!(matches!(
            parse(&[
                "--commands",
                "5",
                "--api-token",
                "T",
                "--command-mix",
                "reset,make-coffee"
            ])
            .command_load(),
            Err(CliError::UnknownCommand(..))
        ));
        assert!(parse(&[]).command_load().unwrap().is_none());
        assert_eq!(
            parse(&["--commands", "5"]).command_load().unwrap_err(),
            CliError::CommandsNeedToken
        );
    }

    #[test]
    fn source_address_lists_and_ranges() {
        let addrs = parse_source_addrs("127.0.0.1, 127.0.0.5-127.0.0.7,127.0.1.1-2").unwrap();
        let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "127.0.0.1",
                "127.0.0.5",
                "127.0.0.6",
                "127.0.0.7",
                "127.0.1.1",
                "127.0.1.2"
            ]
        );
        assert!(parse_source_addrs("127.0.0.9-127.0.0.2").is_err());
        assert!(parse_source_addrs("localhost").is_err());
        assert!(parse_source_addrs("").is_err());
    }
}
