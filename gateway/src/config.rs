//! The command line: every option, its `VOLTGATE_*` environment twin and its default.
//!
//! This is the only module that knows how configuration is read; the rest of the gateway
//! receives a [`ServeConfig`] or [`crate::state::Settings`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use voltgate_policy::Preset;

use crate::policy_cli::PolicyCommand;

pub const DEFAULT_OCPP_LISTEN: &str = "0.0.0.0:9000";
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DB: &str = "sqlite://voltgate.db";
/// `connect` is the default preset: it is the most general operator model of the five (a
/// nesting site tree, two admin roles and custom roles built from plain permissions), so a
/// fresh gateway can express most estates without choosing a platform-specific model first.
pub const DEFAULT_PRESET: &str = "connect";
pub const DEFAULT_HEARTBEAT_INTERVAL_SECS: u32 = 300;
pub const DEFAULT_COMMAND_TIMEOUT: &str = "30s";
pub const DEFAULT_MAX_FRAME_BYTES: usize = 65536;
pub const DEFAULT_OCPP_PATH_PREFIX: &str = "/ocpp";
pub const DEFAULT_LOG_FILTER: &str = "info";

#[derive(Debug, Parser)]
#[command(
    name = "voltgate",
    about = "OCPP 1.6J / 2.0.1 charge-point gateway with a built-in role engine",
    long_about = "Voltgate accepts chargers over OCPP-J (WebSocket) and lets operators drive them \
                  through an HTTP API in which every request passes the role engine.\n\n\
                  Without a subcommand it runs the gateway (same as `voltgate serve`).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<CliCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the gateway (the default).
    Serve(ServeArgs),
    /// Inspect role-model presets without running the gateway.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address for chargers (OCPP-J over WebSocket).
    #[arg(long, env = "VOLTGATE_OCPP_LISTEN", default_value = DEFAULT_OCPP_LISTEN)]
    pub ocpp_listen: SocketAddr,

    /// Address for the operator HTTP API, /metrics and /healthz.
    #[arg(long, env = "VOLTGATE_API_LISTEN", default_value = DEFAULT_API_LISTEN)]
    pub api_listen: SocketAddr,

    /// Store URL: `sqlite://PATH` (created if missing) or `sqlite::memory:` (keeps nothing).
    #[arg(long, env = "VOLTGATE_DB", default_value = DEFAULT_DB)]
    pub db: String,

    /// Role model: a builtin preset name (zaptec, connect, tenant, virta, multi-account) or
    /// the path of a preset TOML file. Default `connect`: the most general model (site tree,
    /// admin roles, custom roles).
    #[arg(long, env = "VOLTGATE_PRESET", default_value = DEFAULT_PRESET)]
    pub preset: String,

    /// API token for the bootstrap principal `admin` (may do everything). When absent and no
    /// admin exists yet, one is generated and printed once. Never logged.
    #[arg(long, env = "VOLTGATE_ADMIN_TOKEN", hide_env_values = true,
          value_parser = parse_admin_token)]
    pub admin_token: Option<String>,

    /// Accept unknown chargers at the handshake and create them as stations under SCOPE.
    #[arg(long, env = "VOLTGATE_AUTO_REGISTER", value_name = "SCOPE")]
    pub auto_register: Option<String>,

    /// Heartbeat interval (seconds) sent to chargers in BootNotification responses.
    #[arg(long, env = "VOLTGATE_HEARTBEAT_INTERVAL", value_name = "SECS",
          default_value_t = DEFAULT_HEARTBEAT_INTERVAL_SECS,
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub heartbeat_interval: u32,

    /// How long an operator command waits for the charger's answer (e.g. `30s`, `500ms`, `2m`;
    /// a bare number is seconds).
    #[arg(long, env = "VOLTGATE_COMMAND_TIMEOUT", value_name = "DURATION",
          default_value = DEFAULT_COMMAND_TIMEOUT, value_parser = parse_duration)]
    pub command_timeout: Duration,

    /// Largest accepted WebSocket message from a charger, in bytes; larger ones close the
    /// connection with code 1009.
    #[arg(long, env = "VOLTGATE_MAX_FRAME_BYTES", value_name = "BYTES",
          default_value_t = DEFAULT_MAX_FRAME_BYTES, value_parser = parse_frame_limit)]
    pub max_frame_bytes: usize,

    /// URL path under which chargers connect: `{prefix}/{chargePointId}`.
    #[arg(long, env = "VOLTGATE_OCPP_PATH_PREFIX", value_name = "PATH",
          default_value = DEFAULT_OCPP_PATH_PREFIX, value_parser = parse_path_prefix)]
    pub ocpp_path_prefix: String,

    /// Log line format on stderr.
    #[arg(long, env = "VOLTGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `voltgate=debug,info`.
    #[arg(long, env = "VOLTGATE_LOG", value_name = "FILTER", default_value = DEFAULT_LOG_FILTER)]
    pub log: String,
}

/// What `voltgate serve` needs, after parsing.
pub type ServeConfig = ServeArgs;

impl ServeArgs {
    /// The run-time settings the gateway's modules read.
    pub fn settings(&self) -> crate::state::Settings {
        crate::state::Settings {
            heartbeat_interval_secs: self.heartbeat_interval,
            command_timeout: self.command_timeout,
            max_frame_bytes: self.max_frame_bytes,
            auto_register: self.auto_register.clone(),
            ocpp_path_prefix: self.ocpp_path_prefix.clone(),
        }
    }

    /// Defaults for running the gateway in-process (tests, benchmarks): loopback ports
    /// chosen by the OS, an in-memory store.
    pub fn ephemeral() -> ServeArgs {
        ServeArgs {
            ocpp_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: "sqlite::memory:".to_owned(),
            preset: DEFAULT_PRESET.to_owned(),
            admin_token: None,
            auto_register: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL_SECS,
            command_timeout: Duration::from_secs(30),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            ocpp_path_prefix: DEFAULT_OCPP_PATH_PREFIX.to_owned(),
            log_format: LogFormat::Text,
            log: DEFAULT_LOG_FILTER.to_owned(),
        }
    }
}

/// `30s`, `500ms`, `2m`, `1h` or a bare number of seconds; must be above zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 500ms or 2m"))?;
    let duration = match unit.trim() {
        "" | "s" => Duration::from_secs(value),
        "ms" => Duration::from_millis(value),
        "m" | "min" => Duration::from_secs(value.saturating_mul(60)),
        "h" => Duration::from_secs(value.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m or h)"
            ))
        }
    };
    if duration.is_zero() {
        return Err("the duration must be above zero".to_owned());
    }
    Ok(duration)
}

fn parse_frame_limit(text: &str) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of bytes"))?;
    if !(1024..=16 * 1024 * 1024).contains(&value) {
        return Err("the frame limit must be between 1024 and 16777216 bytes".to_owned());
    }
    Ok(value)
}

/// The shortest admin token accepted: a guessable bootstrap token would hand out everything.
const MIN_ADMIN_TOKEN_CHARS: usize = 16;

fn parse_admin_token(text: &str) -> Result<String, String> {
    if text.chars().count() < MIN_ADMIN_TOKEN_CHARS || text.chars().any(char::is_whitespace) {
        return Err(format!(
            "the admin token must be at least {MIN_ADMIN_TOKEN_CHARS} characters without white space \
             (leave it unset to have one generated)"
        ));
    }
    Ok(text.to_owned())
}

fn parse_path_prefix(text: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('/');
    if !trimmed.starts_with('/') || trimmed.contains("//") || trimmed.contains(char::is_whitespace)
    {
        return Err(format!(
            "`{text}` is not a path prefix like /ocpp (must start with `/`)"
        ));
    }
    Ok(trimmed.to_owned())
}

/// A builtin preset by name, or a preset TOML file by path.
pub fn load_preset(name_or_path: &str) -> anyhow::Result<Preset> {
    if Preset::BUILTIN.contains(&name_or_path) {
        return Ok(Preset::builtin(name_or_path)?);
    }
    let path = Path::new(name_or_path);
    let text = std::fs::read_to_string(path).map_err(|err| {
        anyhow::anyhow!(
            "`{name_or_path}` is neither a builtin preset ({}) nor a readable file: {err}",
            Preset::BUILTIN.join(", ")
        )
    })?;
    Ok(Preset::parse(&path.display().to_string(), &text)?)
}

/// The text `voltgate --version` prints.
pub fn version_text() -> String {
    format!(
        "{}\nOCPP: 1.6J (subprotocol ocpp1.6), 2.0.1 (subprotocol ocpp2.0.1)\npresets: {}",
        env!("CARGO_PKG_VERSION"),
        Preset::BUILTIN.join(", ")
    )
}

/// Parses the process arguments (and `VOLTGATE_*` variables).
pub fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let version = version_text();
    let matches = Cli::command()
        .version(version.clone())
        .long_version(version)
        .get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 fortnights").is_err());
    }

    #[test]
    fn short_or_empty_admin_tokens_are_refused() {
        for bad in ["", "short", "has white space inside"] {
            assert!(
                Cli::try_parse_from(["voltgate", "--admin-token", bad]).is_err(),
                "{bad:?} was accepted"
            );
        }
        let cli =
            Cli::try_parse_from(["voltgate", "--admin-token", "vg_0123456789abcdef"]).unwrap();
        assert_eq!(
            cli.serve.admin_token.as_deref(),
            Some("vg_0123456789abcdef")
        );
    }

    #[test]
    fn defaults_without_arguments() {
        let cli = Cli::try_parse_from(["voltgate"]).unwrap();
        assert!(cli.command.is_none());
        let args = cli.serve;
        assert_eq!(args.ocpp_listen.to_string(), DEFAULT_OCPP_LISTEN);
        assert_eq!(args.api_listen.to_string(), DEFAULT_API_LISTEN);
        assert_eq!(args.preset, "connect");
        assert_eq!(args.command_timeout, Duration::from_secs(30));
        assert_eq!(args.max_frame_bytes, 65536);
        assert_eq!(args.ocpp_path_prefix, "/ocpp");
        assert_eq!(args.settings().heartbeat_interval_secs, 300);
    }

    #[test]
    fn serve_flags_and_subcommands() {
        let cli = Cli::try_parse_from([
            "voltgate",
            "serve",
            "--db",
            "sqlite::memory:",
            "--auto-register",
            "north",
            "--ocpp-path-prefix",
            "/cs/",
            "--log-format",
            "json",
        ])
        .unwrap();
        let Some(CliCommand::Serve(args)) = cli.command else {
            panic!("expected serve");
        };
        assert_eq!(args.db, "sqlite::memory:");
        assert_eq!(args.auto_register.as_deref(), Some("north"));
        assert_eq!(args.ocpp_path_prefix, "/cs");
        assert_eq!(args.log_format, LogFormat::Json);

        let cli = Cli::try_parse_from(["voltgate", "policy", "matrix", "virta"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(CliCommand::Policy(PolicyCommand::Matrix { .. }))
        ));
        assert!(Cli::try_parse_from(["voltgate", "--max-frame-bytes", "10"]).is_err());
        assert!(Cli::try_parse_from(["voltgate", "--ocpp-path-prefix", "ocpp"]).is_err());
    }

    #[test]
    fn presets_load_by_name_or_path() {
        assert_eq!(load_preset("virta").unwrap().id(), "virta");
        let err = load_preset("no-such-preset").unwrap_err().to_string();
        assert!(err.contains("neither a builtin preset"), "{err}");
    }

    #[test]
    fn version_lists_ocpp_versions_and_presets() {
        let text = version_text();
        assert!(text.contains("1.6J") && text.contains("2.0.1"));
        for name in Preset::BUILTIN {
            assert!(text.contains(name), "{name} missing from {text}");
        }
    }
}
