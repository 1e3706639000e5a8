//! The command line and the configuration file: every option, its `VOLTGATE_*` environment
//! twin, its key in the TOML file given with `--config`, and its default.
//!
//! This is the only module that knows how configuration is read; the rest of the gateway
//! receives a [`ServeConfig`] (the flags resolved and checked) or [`crate::state::Settings`].
//!
//! Precedence, highest first: command-line flags, `VOLTGATE_*` variables, the configuration
//! file, built-in defaults. The file is read before the command line is parsed for good: each
//! of its keys names a serve flag by its long name, its value is checked with that flag's own
//! parser, and it then becomes the flag's default. So a flag added to [`ServeArgs`] is a file
//! key too, with no code here. Secret flags are the ones declared with `hide_env_values = true`
//! (or named like a token, password or secret, see [`is_secret`]); `config check` never prints
//! their values and file errors never quote them.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, Parser, Subcommand, ValueEnum};
use voltgate_policy::Preset;

use crate::policy_cli::PolicyCommand;

pub(crate) const DEFAULT_OCPP_LISTEN: &str = "0.0.0.0:9000";
pub(crate) const DEFAULT_API_LISTEN: &str = "127.0.0.1:8080";
pub(crate) const DEFAULT_DB: &str = "sqlite://voltgate.db";
/// `connect` is the default preset: it is the most general operator model of the five (a
/// nesting site tree, two admin roles and custom roles built from plain permissions), so a
/// fresh gateway can express most estates without choosing a platform-specific model first.
pub(crate) const DEFAULT_PRESET: &str = "connect";
pub(crate) const DEFAULT_HEARTBEAT_INTERVAL_SECS: u32 = 300;
pub(crate) const DEFAULT_COMMAND_TIMEOUT: &str = "30s";
pub(crate) const DEFAULT_MAX_FRAME_BYTES: usize = 65536;
/// Deeper than any of the five platforms nests (at most four levels), shallow enough that a
/// walk up the tree stays short.
pub(crate) const DEFAULT_MAX_SCOPE_DEPTH: u32 = 64;
pub(crate) const DEFAULT_MAX_SUBTREE_SCOPES: u32 = 100_000;
pub(crate) const DEFAULT_OCPP_PATH_PREFIX: &str = "/ocpp";
pub(crate) const DEFAULT_LOG_FILTER: &str = "info";
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: &str = "10s";
/// Default of `--auto-register-refill`; the same as
/// [`crate::throttle::DEFAULT_REGISTRATION_REFILL`].
const DEFAULT_AUTO_REGISTER_REFILL: &str = "60s";
/// Default of `--auth-failure-refill`; the same as [`crate::throttle::DEFAULT_FAILURE_REFILL`].
pub(crate) const DEFAULT_AUTH_FAILURE_REFILL: &str = "10s";
/// A minute of silence before a ping: well inside the idle timeouts of common NAT gateways
/// and load balancers, and one small frame a minute per idle charger.
pub(crate) const DEFAULT_WS_PING_INTERVAL_SECS: u64 = 60;
pub(crate) const DEFAULT_WS_PONG_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, Parser)]
#[command(
    name = "voltgate",
    about = "OCPP 1.6J / 2.0.1 charge-point gateway with a built-in role engine",
    long_about = "Voltgate accepts chargers over OCPP-J (WebSocket) and lets operators drive them \
                  through an HTTP API in which every request passes the role engine.\n\n\
                  Without a subcommand it runs the gateway (same as `voltgate serve`).",
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Option<CliCommand>,
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CliCommand {
    /// Run the gateway (the default).
    Serve(ServeCommand),
    /// Inspect role-model presets without running the gateway.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Check a configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Recover the bootstrap administrator's access, working on the database directly.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Issue a new API token for `admin`, print it once, and revoke every earlier admin token
    /// (a lost, leaked or generated bootstrap token). Needs no running gateway.
    ResetToken(AdminArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AdminArgs {
    /// The gateway's store URL, as given to `voltgate serve`.
    #[arg(long, env = "VOLTGATE_DB", hide_env_values = true, default_value = DEFAULT_DB)]
    pub db: String,
}

/// `voltgate serve`: the serve flags and the configuration file.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeCommand {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub args: ServeArgs,
}

/// The configuration file of `voltgate` and `voltgate serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConfigFileArg {
    /// TOML file of serve settings: each key is a flag's long name (`api-listen =
    /// "127.0.0.1:8080"`, `command-timeout = "30s"`). Flags and VOLTGATE_* variables win over it.
    #[arg(long = "config", env = "VOLTGATE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate a configuration file and print the effective serve settings (file, then
    /// VOLTGATE_* variables and any flags given here), secrets redacted. Exit code 1 when the
    /// file is not valid.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct CheckArgs {
    /// The TOML file to check.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The serve flags. Each is also a key of the configuration file (its long name). A flag whose
/// value is a secret must be declared with `hide_env_values = true`: `--help` then hides its
/// environment value, and `config check` and file errors never show it.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address for chargers (OCPP-J over WebSocket).
    #[arg(long, env = "VOLTGATE_OCPP_LISTEN", default_value = DEFAULT_OCPP_LISTEN)]
    pub ocpp_listen: SocketAddr,

    /// Address for the operator HTTP API, /metrics and /healthz.
    #[arg(long, env = "VOLTGATE_API_LISTEN", default_value = DEFAULT_API_LISTEN)]
    pub api_listen: SocketAddr,

    /// Store URL: `sqlite://PATH` (created if missing), `sqlite::memory:` (keeps nothing) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (an existing PostgreSQL database, migrated at
    /// start). `config check` shows it without the password.
    #[arg(long, env = "VOLTGATE_DB", hide_env_values = true, default_value = DEFAULT_DB)]
    pub db: String,

    /// Join the gateway nodes that share this NATS and this database:
    /// `nats://HOST:PORT[,nats://HOST:PORT…]`. Needs a PostgreSQL `--db`. Without it the node
    /// runs alone.
    #[arg(long, env = "VOLTGATE_CLUSTER", hide_env_values = true, value_name = "NATS_URLS",
          value_parser = parse_cluster_urls)]
    pub cluster: Option<ClusterUrls>,

    /// This node's name in a cluster: unique among the live nodes (a second live node with the
    /// same name is refused). Default: the host name.
    #[arg(long, env = "VOLTGATE_NODE_ID", value_name = "NAME", value_parser = parse_node_id)]
    pub node_id: Option<String>,

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

    /// How many chargers this gateway is expected to hold at once: at start it warns when the
    /// open-file limit (one file per charger, plus a reserve for the database, listeners and
    /// operators) cannot hold them. A hint only; nothing is refused because of it.
    #[arg(long, env = "VOLTGATE_EXPECTED_CHARGERS", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub expected_chargers: Option<u64>,

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

    /// Most scopes on the way from the root down to any scope (the scope itself included);
    /// creating a deeper scope or charger is refused (409). Stored deeper scopes stay.
    #[arg(long, env = "VOLTGATE_MAX_SCOPE_DEPTH", value_name = "N",
          default_value_t = DEFAULT_MAX_SCOPE_DEPTH,
          value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub max_scope_depth: u32,

    /// Most scopes (chargers included) in the subtree of one scope directly under the root;
    /// creating one more is refused (409).
    #[arg(long, env = "VOLTGATE_MAX_SUBTREE_SCOPES", value_name = "N",
          default_value_t = DEFAULT_MAX_SUBTREE_SCOPES,
          value_parser = clap::value_parser!(u32).range(1..=4_000_000))]
    pub max_subtree_scopes: u32,

    /// Seconds without any frame from a charger after which the gateway sends it a WebSocket
    /// Ping; 0 turns pings and the idle timeout off.
    #[arg(long, env = "VOLTGATE_WS_PING_INTERVAL", value_name = "SECS",
          default_value_t = DEFAULT_WS_PING_INTERVAL_SECS,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub ws_ping_interval: u64,

    /// Seconds a pinged charger has to send anything (a Pong or any other frame) before the
    /// connection is closed (1001) and the charger counts as offline.
    #[arg(long, env = "VOLTGATE_WS_PONG_TIMEOUT", value_name = "SECS",
          default_value_t = DEFAULT_WS_PONG_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ws_pong_timeout: u64,

    /// URL path under which chargers connect: `{prefix}/{chargePointId}`.
    #[arg(long, env = "VOLTGATE_OCPP_PATH_PREFIX", value_name = "PATH",
          default_value = DEFAULT_OCPP_PATH_PREFIX, value_parser = parse_path_prefix)]
    pub ocpp_path_prefix: String,

    /// Log line format on stderr.
    #[arg(long, env = "VOLTGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `voltgate=debug,info`. When neither this
    /// flag, VOLTGATE_LOG nor the file sets it, RUST_LOG is used, else `info`.
    #[arg(long, env = "VOLTGATE_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// How long a graceful shutdown (SIGTERM/SIGINT) may take before the process gives up and
    /// exits with an error; half of it is granted to open API requests.
    #[arg(long, env = "VOLTGATE_SHUTDOWN_TIMEOUT", value_name = "DURATION",
          default_value = DEFAULT_SHUTDOWN_TIMEOUT, value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Failed authentications (charger credentials or certificates, operator tokens) one
    /// client address may make in a burst before it is answered 429 Too Many Requests.
    #[arg(long, env = "VOLTGATE_AUTH_FAILURE_BURST", value_name = "N",
          default_value_t = crate::throttle::DEFAULT_FAILURE_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failure_burst: u32,

    /// Failed charger authentications one client address may make in a burst over all charger
    /// ids (--auth-failure-burst is per address and charger id there); at least that burst.
    #[arg(long, env = "VOLTGATE_AUTH_FAILURE_ADDRESS_BURST", value_name = "N",
          default_value_t = crate::throttle::DEFAULT_ADDRESS_FAILURE_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failure_address_burst: u32,

    /// Reverse proxies and load balancers (addresses or CIDR networks, comma-separated) whose
    /// X-Forwarded-For header (both listeners) or PROXY protocol v1 line (charger listener)
    /// names the client address that failures are counted for. Nobody by default: a header
    /// from any other peer is ignored.
    #[arg(long, env = "VOLTGATE_TRUSTED_PROXIES", value_name = "CIDR,...",
          value_delimiter = ',', num_args = 1..)]
    pub trusted_proxies: Vec<crate::proxy::Network>,

    /// After the burst, one more failed authentication per address is allowed per this much
    /// time (e.g. `10s`).
    #[arg(long, env = "VOLTGATE_AUTH_FAILURE_REFILL", value_name = "DURATION",
          default_value = DEFAULT_AUTH_FAILURE_REFILL, value_parser = parse_duration)]
    pub auth_failure_refill: Duration,

    /// Unknown chargers one client address may auto-register in a burst (with --auto-register).
    #[arg(long, env = "VOLTGATE_AUTO_REGISTER_ADDRESS_BURST", value_name = "N",
          default_value_t = crate::throttle::DEFAULT_REGISTRATION_ADDRESS_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auto_register_address_burst: u32,

    /// Unknown chargers the gateway may auto-register in a burst over all addresses.
    #[arg(long, env = "VOLTGATE_AUTO_REGISTER_TOTAL_BURST", value_name = "N",
          default_value_t = crate::throttle::DEFAULT_REGISTRATION_TOTAL_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auto_register_total_burst: u32,

    /// After a burst, one more auto-registration (per address, and in total) per this much time.
    #[arg(long, env = "VOLTGATE_AUTO_REGISTER_REFILL", value_name = "DURATION",
          default_value = DEFAULT_AUTO_REGISTER_REFILL, value_parser = parse_duration)]
    pub auto_register_refill: Duration,

    /// Trust auto-registered chargers at once instead of holding them pending until an
    /// operator approves them. Only for closed networks and load benches: any client that can
    /// reach the charger listener then gets a trusted charger.
    #[arg(
        long,
        env = "VOLTGATE_AUTO_REGISTER_TRUSTED",
        value_name = "BOOL",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub auto_register_trusted: bool,

    /// Address for chargers over TLS (wss://, OCPP security profiles 2 and 3); needs
    /// --tls-cert and --tls-key.
    #[arg(long, env = "VOLTGATE_OCPP_TLS_LISTEN", value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub ocpp_tls_listen: Option<SocketAddr>,

    /// PEM certificate chain the charger TLS listener presents (reloaded on SIGHUP or change).
    #[arg(long, env = "VOLTGATE_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "VOLTGATE_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates that charger client certificates must chain to (security profile 3).
    #[arg(long, env = "VOLTGATE_TLS_CLIENT_CA", value_name = "PATH")]
    pub tls_client_ca: Option<PathBuf>,

    /// OCPP security profile (0-3) given to auto-registered chargers; 0 = no authentication.
    #[arg(long, env = "VOLTGATE_DEFAULT_SECURITY_PROFILE", value_name = "PROFILE",
          default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub default_security_profile: u8,

    /// PEM certificate chain for serving the operator API over HTTPS (with --api-tls-key).
    #[arg(
        long,
        env = "VOLTGATE_API_TLS_CERT",
        value_name = "PATH",
        requires = "api_tls_key"
    )]
    pub api_tls_cert: Option<PathBuf>,

    /// PEM private key of --api-tls-cert.
    #[arg(
        long,
        env = "VOLTGATE_API_TLS_KEY",
        value_name = "PATH",
        requires = "api_tls_cert"
    )]
    pub api_tls_key: Option<PathBuf>,

    /// Keep each connected charger's local authorisation list (OCPP SendLocalList) in sync
    /// with the id tokens the role engine lets charge there, and clear its authorisation cache
    /// when a rule change could make a remembered Accepted wrong. On by default;
    /// `--local-auth-lists false` turns it off.
    #[arg(
        long,
        env = "VOLTGATE_LOCAL_AUTH_LISTS",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub local_auth_lists: bool,

    /// Which cards a charger's local list may carry: only those of principals whose every
    /// role lies within the subtree of the charger's ancestor this many levels up (1: its
    /// site), or `any` for every card allowed there. A list is readable by whoever controls
    /// the charger; cards left out are decided online.
    #[arg(long, env = "VOLTGATE_LOCAL_LIST_MAX_REACH", value_name = "LEVELS|any",
          default_value = "1", value_parser = clap::value_parser!(crate::local_list::ListReach))]
    pub local_list_max_reach: crate::local_list::ListReach,

    /// How strictly chargers' payloads are held to the OCPP schemas: `lenient` accepts the
    /// benign, known deviations of real firmware (counted and shown per charger), `strict`
    /// refuses every schema failure. A charger's own setting (`PATCH /chargers/{id}`) wins.
    #[arg(long, env = "VOLTGATE_SCHEMA_TOLERANCE", value_name = "strict|lenient",
          default_value = "lenient", value_parser = clap::value_parser!(voltgate_ocpp::Tolerance))]
    pub schema_tolerance: voltgate_ocpp::Tolerance,
}

/// What `voltgate serve` runs with: every flag interpreted and every combination checked
/// ([`ServeArgs::resolve`]), so starting the gateway reads settings, never options.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub node_id: String,
    /// The NATS servers of the cluster this node joins; `None`: a node of its own.
    pub cluster: Option<Vec<String>>,
    pub db: String,
    pub preset: Preset,
    pub admin_token: Option<String>,
    pub ocpp_listen: SocketAddr,
    pub api_listen: SocketAddr,
    pub scope_limits: voltgate_policy::ScopeLimits,
    pub settings: crate::state::Settings,
    pub auth_failures: crate::throttle::Limits,
    pub registrations: crate::throttle::Limits,
    pub local_auth_lists: bool,
    pub local_list_max_reach: crate::local_list::ListReach,
    pub schema_tolerance: voltgate_ocpp::Tolerance,
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    /// The charger TLS listener (security profiles 2 and 3).
    pub ocpp_tls: Option<OcppTls>,
    pub api_tls: Option<crate::tls::TlsFiles>,
}

/// Where chargers connect over TLS, with the files of its configuration.
#[derive(Debug, Clone)]
pub struct OcppTls {
    pub listen: SocketAddr,
    pub files: crate::tls::TlsFiles,
}

impl ServeConfig {
    /// In-process defaults (tests, benchmarks): loopback ports chosen by the OS, an in-memory
    /// store.
    pub fn ephemeral() -> ServeConfig {
        ServeArgs::ephemeral()
            .resolve()
            .expect("the ephemeral settings are consistent")
    }
}

impl ServeArgs {
    /// Interprets the flags: loads the preset, names the node, and refuses every combination
    /// that cannot work, before anything is opened or bound.
    pub fn resolve(&self) -> anyhow::Result<ServeConfig> {
        self.check_combination().map_err(anyhow::Error::msg)?;
        let preset = load_preset(&self.preset)?;
        Ok(ServeConfig {
            node_id: self.node_id(),
            cluster: self.cluster.as_ref().map(|urls| urls.0.clone()),
            db: self.db.clone(),
            preset,
            admin_token: self.admin_token.clone(),
            ocpp_listen: self.ocpp_listen,
            api_listen: self.api_listen,
            scope_limits: self.scope_limits(),
            settings: self.settings(),
            auth_failures: crate::throttle::Limits {
                burst: self.auth_failure_burst,
                address_burst: self.auth_failure_address_burst,
                refill: self.auth_failure_refill,
            },
            registrations: crate::throttle::Limits {
                burst: self.auto_register_total_burst,
                address_burst: self.auto_register_address_burst,
                refill: self.auto_register_refill,
            },
            local_auth_lists: self.local_auth_lists,
            local_list_max_reach: self.local_list_max_reach,
            schema_tolerance: self.schema_tolerance,
            shutdown_timeout: self.shutdown_timeout,
            log_format: self.log_format,
            ocpp_tls: self.ocpp_tls()?,
            api_tls: match (&self.api_tls_cert, &self.api_tls_key) {
                (Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: None,
                }),
                _ => None,
            },
        })
    }

    /// The charger TLS listener, and whether the default security profile can be served.
    fn ocpp_tls(&self) -> anyhow::Result<Option<OcppTls>> {
        let profile = self.default_security_profile;
        if profile >= 2 && self.ocpp_tls_listen.is_none() {
            anyhow::bail!("--default-security-profile {profile} needs --ocpp-tls-listen");
        }
        if profile == 3 && self.tls_client_ca.is_none() {
            anyhow::bail!("--default-security-profile 3 needs --tls-client-ca");
        }
        let Some(listen) = self.ocpp_tls_listen else {
            if self.tls_client_ca.is_some() {
                tracing::warn!("--tls-client-ca is ignored without --ocpp-tls-listen");
            }
            return Ok(None);
        };
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            anyhow::bail!("--ocpp-tls-listen needs --tls-cert and --tls-key");
        };
        Ok(Some(OcppTls {
            listen,
            files: crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            },
        }))
    }

    /// This node's name: `--node-id`, else the host name with every character a node name
    /// may not hold replaced by `-`.
    pub fn node_id(&self) -> String {
        if let Some(name) = &self.node_id {
            return name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        let name: String = host
            .trim()
            .chars()
            .take(MAX_NODE_ID_CHARS)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if name.is_empty() {
            "voltgate".to_owned()
        } else {
            name
        }
    }

    /// Settings that cannot work together, refused before anything starts.
    fn check_combination(&self) -> Result<(), String> {
        if self.cluster.is_some() && !voltgate_store::is_postgres_url(&self.db) {
            return Err(format!(
                "--cluster needs a database every node shares: set --db postgres://USER@HOST:PORT/DB \
                 (`{}` is a SQLite store, which only this process can reach)",
                self.db
            ));
        }
        Ok(())
    }

    /// How large the role engine lets the scope tree grow.
    pub fn scope_limits(&self) -> voltgate_policy::ScopeLimits {
        voltgate_policy::ScopeLimits {
            max_depth: self.max_scope_depth,
            max_subtree_scopes: self.max_subtree_scopes,
        }
    }

    /// The run-time settings the gateway's modules read.
    pub fn settings(&self) -> crate::state::Settings {
        crate::state::Settings {
            heartbeat_interval_secs: self.heartbeat_interval,
            command_timeout: self.command_timeout,
            max_frame_bytes: self.max_frame_bytes,
            auto_register: self.auto_register.clone(),
            auto_register_trusted: self.auto_register_trusted,
            ocpp_path_prefix: self.ocpp_path_prefix.clone(),
            default_security_profile: self.default_security_profile,
            ocpp_tls: self.ocpp_tls_listen.is_some(),
            ocpp_client_ca: self.ocpp_tls_listen.is_some() && self.tls_client_ca.is_some(),
            keep_alive: (self.ws_ping_interval > 0).then(|| crate::charger::KeepAlive {
                ping_interval: Duration::from_secs(self.ws_ping_interval),
                pong_timeout: Duration::from_secs(self.ws_pong_timeout),
            }),
            trusted_proxies: crate::proxy::TrustedProxies::new(self.trusted_proxies.clone()),
        }
    }

    /// Defaults for running the gateway in-process (tests, benchmarks): loopback ports
    /// chosen by the OS, an in-memory store.
    pub fn ephemeral() -> ServeArgs {
        ServeArgs {
            ocpp_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: "sqlite::memory:".to_owned(),
            cluster: None,
            node_id: None,
            preset: DEFAULT_PRESET.to_owned(),
            admin_token: None,
            auto_register: None,
            expected_chargers: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL_SECS,
            command_timeout: Duration::from_secs(30),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_scope_depth: DEFAULT_MAX_SCOPE_DEPTH,
            max_subtree_scopes: DEFAULT_MAX_SUBTREE_SCOPES,
            ws_ping_interval: DEFAULT_WS_PING_INTERVAL_SECS,
            ws_pong_timeout: DEFAULT_WS_PONG_TIMEOUT_SECS,
            ocpp_path_prefix: DEFAULT_OCPP_PATH_PREFIX.to_owned(),
            log_format: LogFormat::Text,
            log: None,
            shutdown_timeout: Duration::from_secs(10),
            auth_failure_burst: crate::throttle::DEFAULT_FAILURE_BURST,
            auth_failure_address_burst: crate::throttle::DEFAULT_ADDRESS_FAILURE_BURST,
            auth_failure_refill: crate::throttle::DEFAULT_FAILURE_REFILL,
            trusted_proxies: Vec::new(),
            auto_register_address_burst: crate::throttle::DEFAULT_REGISTRATION_ADDRESS_BURST,
            auto_register_total_burst: crate::throttle::DEFAULT_REGISTRATION_TOTAL_BURST,
            auto_register_refill: crate::throttle::DEFAULT_REGISTRATION_REFILL,
            auto_register_trusted: false,
            ocpp_tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            default_security_profile: 0,
            api_tls_cert: None,
            api_tls_key: None,
            // In-process test chargers see only the calls their test expects.
            local_auth_lists: false,
            local_list_max_reach: crate::local_list::DEFAULT_LIST_REACH,
            schema_tolerance: voltgate_ocpp::Tolerance::Lenient,
        }
    }
}

/// The NATS servers a cluster node connects to, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrls(pub Vec<String>);

impl std::fmt::Display for ClusterUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// `nats://HOST:PORT`, comma-separated; each must name a host and a port.
fn parse_cluster_urls(text: &str) -> Result<ClusterUrls, String> {
    let urls: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Err("expected nats://HOST:PORT[,nats://HOST:PORT…]".to_owned());
    }
    for url in &urls {
        let Some(authority) = url.strip_prefix("nats://") else {
            return Err(format!("`{url}` is not a nats://HOST:PORT address"));
        };
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        let valid = host_port.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid || authority.contains('/') {
            return Err(format!("`{url}` is not a nats://HOST:PORT address"));
        }
    }
    Ok(ClusterUrls(urls))
}

/// The longest node name: it travels in NATS subjects and in every charger's listing.
const MAX_NODE_ID_CHARS: usize = 64;

/// A node name goes into NATS subjects: letters, digits, `-` and `_` only.
fn parse_node_id(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= MAX_NODE_ID_CHARS
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(format!(
            "`{text}` is not a node name: 1 to {MAX_NODE_ID_CHARS} ASCII letters, digits, `-` or `_`"
        ));
    }
    Ok(text.to_owned())
}

/// `30s`, `500ms`, `2m`, `1h` or a bare number of seconds; must be above zero.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
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
pub(crate) fn load_preset(name_or_path: &str) -> anyhow::Result<Preset> {
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
pub(crate) fn version_text() -> String {
    format!(
        "{}\nOCPP: 1.6J (subprotocol ocpp1.6), 2.0.1 (subprotocol ocpp2.0.1)\npresets: {}",
        env!("CARGO_PKG_VERSION"),
        Preset::BUILTIN.join(", ")
    )
}

/// What the command line asks for, once flags, variables and the configuration file are read.
#[derive(Debug)]
pub enum Invocation {
    Serve(Box<ServeArgs>),
    Policy(PolicyCommand),
    /// `config check`: the file is valid; these are the effective settings, one TOML line each.
    ConfigChecked(String),
    /// `admin reset-token`: a new admin token for the store at this URL.
    AdminResetToken {
        db: String,
    },
}

/// Why the command line could not be turned into an [`Invocation`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A usage error (or `--help`/`--version`), to be shown the way clap shows it.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    #[error(transparent)]
    File(#[from] ConfigFileError),
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Every problem found, one `file:line:column: reason` line each.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<FileProblem>),
}

/// One problem in a configuration file, located by 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.reason
        )
    }
}

fn render_problems(problems: &[FileProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole command line, as clap knows it, with the version text.
fn cli_command() -> Command {
    use clap::CommandFactory;
    let version = version_text();
    Cli::command()
        .version(version.clone())
        .long_version(version)
}

/// Parses the process arguments, `VOLTGATE_*` variables and the configuration file.
pub fn parse_cli() -> Result<Invocation, CliError> {
    parse_args(std::env::args_os().collect())
}

/// Where the serve flags sit in the command tree for one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServePlace {
    Root,
    Serve,
    Check,
}

/// [`parse_cli`] for explicit arguments. The command line is parsed once to find the
/// configuration file, then again with the file's values as the serve flags' defaults.
pub(crate) fn parse_args(args: Vec<OsString>) -> Result<Invocation, CliError> {
    use clap::FromArgMatches;
    let first = cli_command().try_get_matches_from(&args)?;
    let (place, file_path) = match first.subcommand() {
        None => (
            ServePlace::Root,
            first.get_one::<PathBuf>("config").cloned(),
        ),
        Some(("serve", serve)) => (
            ServePlace::Serve,
            serve.get_one::<PathBuf>("config").cloned(),
        ),
        Some(("config", config)) => match config.subcommand() {
            Some(("check", check)) => {
                (ServePlace::Check, check.get_one::<PathBuf>("path").cloned())
            }
            _ => (ServePlace::Root, None),
        },
        Some(_) => (ServePlace::Root, None),
    };
    let file = file_path.as_deref().map(ConfigFile::load).transpose()?;
    let command = match &file {
        Some(file) => with_file_defaults(cli_command(), place, file),
        None => cli_command(),
    };
    let matches = command.clone().try_get_matches_from(&args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    Ok(match cli.command {
        None => Invocation::Serve(Box::new(cli.serve)),
        Some(CliCommand::Serve(serve)) => Invocation::Serve(Box::new(serve.args)),
        Some(CliCommand::Policy(policy)) => Invocation::Policy(policy),
        Some(CliCommand::Admin(AdminCommand::ResetToken(args))) => {
            Invocation::AdminResetToken { db: args.db }
        }
        Some(CliCommand::Config(ConfigCommand::Check(_))) => {
            let check_command = command
                .find_subcommand("config")
                .and_then(|config| config.find_subcommand("check"));
            let check_matches = matches
                .subcommand_matches("config")
                .and_then(|config| config.subcommand_matches("check"));
            match (check_command, check_matches) {
                (Some(check_command), Some(check_matches)) => Invocation::ConfigChecked(
                    effective_settings(check_command, check_matches, file.as_ref()),
                ),
                _ => {
                    return Err(CliError::Usage(clap::Error::raw(
                        clap::error::ErrorKind::MissingSubcommand,
                        "`config check` needs a file",
                    )))
                }
            }
        }
    })
}

/// The serve flags as clap arguments, in declaration order.
fn serve_arguments() -> Vec<Arg> {
    ServeArgs::augment_args(Command::new("serve"))
        .get_arguments()
        .filter(|arg| arg.get_long().is_some())
        .cloned()
        .collect()
}

/// Whether a serve flag holds a secret: declared with `hide_env_values = true`, or named like
/// a token, password or secret. Such values are redacted by `config check` and never quoted
/// in file errors.
pub(crate) fn is_secret(arg: &Arg) -> bool {
    let name = arg.get_long().unwrap_or_default();
    arg.is_hide_env_values_set()
        || ["token", "password", "secret"]
            .iter()
            .any(|word| name.contains(word))
}

fn takes_no_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

fn takes_many_values(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
        || arg
            .get_num_args()
            .is_some_and(|range| range.max_values() > 1)
}

/// A configuration file, read and checked against the serve flags.
#[derive(Debug, Clone)]
pub(crate) struct ConfigFile {
    /// (flag id, values) in file order.
    values: Vec<(String, Vec<String>)>,
}

impl ConfigFile {
    /// Reads and checks a file: every key must be a serve flag's long name and every value
    /// must pass that flag's own parser. All problems are reported together.
    pub(crate) fn load(path: &Path) -> Result<ConfigFile, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        ConfigFile::parse(&path.display().to_string(), &text)
    }

    /// [`ConfigFile::load`] for text already read; `name` is how errors refer to the file.
    pub(crate) fn parse(name: &str, text: &str) -> Result<ConfigFile, ConfigFileError> {
        use std::collections::BTreeMap;
        use toml::Spanned;
        let problem = |offset: usize, reason: String| {
            let (line, column) = line_and_column(text, offset);
            FileProblem {
                file: name.to_owned(),
                line,
                column,
                reason,
            }
        };
        let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
            toml::from_str(text).map_err(|err| {
                let offset = err.span().map(|span| span.start).unwrap_or(0);
                ConfigFileError::Invalid(vec![problem(
                    offset,
                    format!("not valid TOML: {}", err.message().trim()),
                )])
            })?;
        let arguments = serve_arguments();
        let mut problems = Vec::new();
        let mut values = Vec::new();
        for (key, value) in &table {
            let Some(arg) = arguments
                .iter()
                .find(|arg| arg.get_long() == Some(key.get_ref().as_str()))
            else {
                let known: Vec<&str> = arguments.iter().filter_map(Arg::get_long).collect();
                problems.push(problem(
                    key.span().start,
                    format!(
                        "unknown key `{}`; known keys: {}",
                        key.get_ref(),
                        known.join(", ")
                    ),
                ));
                continue;
            };
            match file_value_strings(arg, value.get_ref()).and_then(|strings| {
                check_value(arg, &strings)?;
                Ok(strings)
            }) {
                Ok(strings) => values.push((arg.get_id().to_string(), strings)),
                Err(reason) => problems.push(problem(
                    value.span().start,
                    format!("invalid value for `{}`: {reason}", key.get_ref()),
                )),
            }
        }
        if problems.is_empty() {
            Ok(ConfigFile { values })
        } else {
            problems.sort_by_key(|p| (p.line, p.column));
            Err(ConfigFileError::Invalid(problems))
        }
    }

    fn has(&self, id: &str) -> bool {
        self.values.iter().any(|(known, _)| known == id)
    }
}

/// The strings a TOML value stands for on the command line: strings as they are, integers
/// in decimal, booleans only for on/off flags, arrays only for flags that take several values.
fn file_value_strings(arg: &Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    let scalar = |value: &toml::Value| match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Boolean(flag) if takes_no_value(arg) => Ok(flag.to_string()),
        toml::Value::Boolean(_) => Err("expected a string or a number, found a boolean".to_owned()),
        other => Err(format!(
            "expected a string or a number, found {}",
            describe(other)
        )),
    };
    match value {
        toml::Value::Array(items) if takes_many_values(arg) => items.iter().map(scalar).collect(),
        toml::Value::Array(_) => Err("expected a single value, found an array".to_owned()),
        other => scalar(other).map(|text| vec![text]),
    }
}

fn describe(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Runs the flag's own parser (and possible values) on a file value: the serve flags, without
/// their environment twins, are parsed from an empty command line with the value as this
/// flag's default. (Defaults take no part in `requires`/`conflicts_with`, so only the value is
/// judged.)
fn check_value(arg: &Arg, values: &[String]) -> Result<(), String> {
    let command = ServeArgs::augment_args(Command::new("voltgate"))
        .no_binary_name(true)
        .mut_args(|arg| arg.env(None))
        .mut_arg(arg.get_id().clone(), |arg| {
            arg.default_values(values.iter().cloned())
        });
    match command.try_get_matches_from(Vec::<OsString>::new()) {
        Ok(_) => Ok(()),
        Err(err) => {
            let detail = std::error::Error::source(&err).map(ToString::to_string);
            Err(match detail {
                Some(detail) => detail,
                None if is_secret(arg) => {
                    "not accepted (the value is secret and not shown)".to_owned()
                }
                None => {
                    let rendered = err.render().to_string();
                    let first = rendered.lines().next().unwrap_or_default();
                    first.trim_start_matches("error: ").trim().to_owned()
                }
            })
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = before
        .get(line_start..)
        .map_or(0, |rest| rest.chars().count())
        + 1;
    (line, column)
}

/// The command tree with the file's values as the serve flags' defaults, where this
/// invocation's serve flags sit.
fn with_file_defaults(command: Command, place: ServePlace, file: &ConfigFile) -> Command {
    let apply = |command: Command| {
        file.values.iter().fold(command, |command, (id, values)| {
            command.mut_arg(id.as_str(), |arg| {
                arg.default_values(values.iter().cloned())
            })
        })
    };
    match place {
        ServePlace::Root => apply(command),
        ServePlace::Serve => command.mut_subcommand("serve", apply),
        ServePlace::Check => {
            command.mut_subcommand("config", |config| config.mut_subcommand("check", apply))
        }
    }
}

/// The effective serve settings as TOML lines (`key = value  # where it came from`), secrets
/// redacted, unset options as comments.
fn effective_settings(
    command: &Command,
    matches: &ArgMatches,
    file: Option<&ConfigFile>,
) -> String {
    let mut lines = Vec::new();
    // In declaration order: giving an argument a default moves it to the end of the command.
    for arg in serve_arguments().iter().filter_map(|declared| {
        command
            .get_arguments()
            .find(|arg| arg.get_id() == declared.get_id())
    }) {
        let id = arg.get_id().as_str();
        let key = arg.get_long().unwrap_or(id);
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|values| {
                values
                    .map(|value| value.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) if file.is_some_and(|file| file.has(id)) => "file",
            _ => "default",
        };
        if raw.is_empty() {
            lines.push(format!("# {key} is not set"));
            continue;
        }
        // The URLs may carry a password: shown without it, rather than not at all.
        let value = if id == "db" {
            toml_string(&voltgate_store::redact_url(
                raw.first().map_or("", String::as_str),
            ))
        } else if id == "cluster" {
            let urls: Vec<String> = raw
                .first()
                .map_or("", String::as_str)
                .split(',')
                .map(|url| crate::cluster::redact(url.trim()))
                .collect();
            toml_string(&urls.join(","))
        } else if is_secret(arg) {
            toml_string("<redacted>")
        } else if takes_many_values(arg) {
            let items: Vec<String> = raw.iter().map(|item| toml_scalar(arg, item)).collect();
            format!("[{}]", items.join(", "))
        } else {
            raw.first()
                .map(|item| toml_scalar(arg, item))
                .unwrap_or_default()
        };
        lines.push(format!("{key} = {value}  # {source}"));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn toml_scalar(arg: &Arg, value: &str) -> String {
    if takes_no_value(arg) && matches!(value, "true" | "false") {
        return value.to_owned();
    }
    if !value.is_empty() && value.len() < 19 && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.to_owned();
    }
    toml_string(value)
}

fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
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
        let Some(CliCommand::Serve(ServeCommand { args, .. })) = cli.command else {
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

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn write_file(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write as _;
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn problems(err: ConfigFileError) -> Vec<FileProblem> {
        match err {
            ConfigFileError::Invalid(problems) => problems,
            other => panic!("expected problems, got {other}"),
        }
    }

    #[test]
    fn file_keys_are_flag_names_and_values_pass_the_flags_parsers() {
        let file = ConfigFile::parse(
            "gw.toml",
            "ocpp-listen = \"0.0.0.0:9100\"\ncommand-timeout = \"2m\"\nheartbeat-interval = 60\nmax-frame-bytes = \"4096\"\nlog-format = \"json\"\n",
        )
        .unwrap();
        assert!(file.has("ocpp_listen") && file.has("command_timeout"));
        assert!(file.has("heartbeat_interval") && file.has("max_frame_bytes"));
    }

    #[test]
    fn unknown_keys_wrong_types_and_bad_values_name_line_column_and_reason() {
        let text = "api-listen = \"127.0.0.1:1\"\nocpp-listn = \"0.0.0.0:9000\"\ncommand-timeout = \"5 fortnights\"\nheartbeat-interval = 1.5\nlog-format = \"xml\"\n";
        let found = problems(ConfigFile::parse("gw.toml", text).unwrap_err());
        let rendered: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 4, "{rendered:#?}");
        assert!(
            rendered[0].starts_with("gw.toml:2:1: unknown key `ocpp-listn`"),
            "{}",
            rendered[0]
        );
        assert!(rendered[0].contains("known keys:") && rendered[0].contains("ocpp-listen"));
        assert!(
            rendered[1].starts_with("gw.toml:3:19: invalid value for `command-timeout`"),
            "{}",
            rendered[1]
        );
        assert!(
            rendered[1].contains("unknown duration unit"),
            "{}",
            rendered[1]
        );
        assert!(
            rendered[2].starts_with("gw.toml:4:22: invalid value for `heartbeat-interval`"),
            "{}",
            rendered[2]
        );
        assert!(rendered[2].contains("found a float"), "{}", rendered[2]);
        assert!(
            rendered[3].starts_with("gw.toml:5:14: invalid value for `log-format`"),
            "{}",
            rendered[3]
        );
    }

    #[test]
    fn syntax_errors_and_secret_values_are_reported_without_quoting_secrets() {
        let found =
            problems(ConfigFile::parse("gw.toml", "db = \"x\"\nthis is not toml\n").unwrap_err());
        assert_eq!(
            (found[0].line, found[0].file.as_str()),
            (2, "gw.toml"),
            "{found:?}"
        );
        let found =
            problems(ConfigFile::parse("gw.toml", "admin-token = \"tooshort\"\n").unwrap_err());
        assert!(
            found[0].reason.contains("at least 16 characters"),
            "{found:?}"
        );
        assert!(!found[0].reason.contains("tooshort"), "{found:?}");
    }

    #[test]
    fn flags_beat_environment_beats_file_beats_defaults() {
        let file = write_file(
            "api-listen = \"127.0.0.1:7001\"\nocpp-listen = \"127.0.0.1:7002\"\npreset = \"virta\"\n",
        );
        let path = file.path().to_str().unwrap();
        let Invocation::Serve(from_file) =
            parse_args(args(&["voltgate", "--config", path])).unwrap()
        else {
            panic!("expected serve");
        };
        assert_eq!(from_file.api_listen.to_string(), "127.0.0.1:7001");
        assert_eq!(from_file.preset, "virta");
        assert_eq!(from_file.db, DEFAULT_DB);
        let Invocation::Serve(flagged) = parse_args(args(&[
            "voltgate",
            "serve",
            "--config",
            path,
            "--api-listen",
            "127.0.0.1:7009",
        ]))
        .unwrap() else {
            panic!("expected serve");
        };
        assert_eq!(flagged.api_listen.to_string(), "127.0.0.1:7009");
        assert_eq!(flagged.ocpp_listen.to_string(), "127.0.0.1:7002");
    }

    #[test]
    fn config_check_lists_every_serve_setting_with_its_source_and_redacts_secrets() {
        let file = write_file(
            "preset = \"virta\"\nadmin-token = \"vg_file_token_0123456789\"\ncommand-timeout = \"45s\"\n",
        );
        let path = file.path().to_str().unwrap();
        let Invocation::ConfigChecked(listing) = parse_args(args(&[
            "voltgate",
            "config",
            "check",
            path,
            "--command-timeout",
            "5s",
        ]))
        .unwrap() else {
            panic!("expected a listing");
        };
        assert!(listing.contains("preset = \"virta\"  # file"), "{listing}");
        assert!(
            listing.contains("command-timeout = \"5s\"  # flag"),
            "{listing}"
        );
        assert!(
            listing.contains("heartbeat-interval = 300  # default"),
            "{listing}"
        );
        assert!(
            listing.contains("admin-token = \"<redacted>\"  # file"),
            "{listing}"
        );
        assert!(!listing.contains("vg_file_token"), "{listing}");
        for arg in serve_arguments() {
            let key = arg.get_long().unwrap();
            assert!(
                listing
                    .lines()
                    .any(|line| line.starts_with(&format!("{key} "))
                        || line.starts_with(&format!("# {key} "))),
                "{key} missing from {listing}"
            );
        }
        let keys: Vec<&str> = listing
            .lines()
            .filter_map(|line| line.split_once(" = ").map(|(key, _)| key))
            .collect();
        let preset_at = keys.iter().position(|key| *key == "preset");
        let timeout_at = keys.iter().position(|key| *key == "command-timeout");
        assert!(preset_at < timeout_at, "declaration order: {listing}");
        let parsed: toml::Table = toml::from_str(&listing).unwrap();
        assert_eq!(parsed["preset"].as_str(), Some("virta"));

        let bad = write_file("prest = \"virta\"\n");
        let err = parse_args(args(&[
            "voltgate",
            "config",
            "check",
            bad.path().to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(matches!(err, CliError::File(_)), "{err}");
        assert!(
            err.to_string().contains(":1:1: unknown key `prest`"),
            "{err}"
        );
    }

    #[test]
    fn secret_flags_are_the_hidden_or_secret_named_ones() {
        let secrets: Vec<String> = serve_arguments()
            .iter()
            .filter(|arg| is_secret(arg))
            .filter_map(|arg| arg.get_long().map(str::to_owned))
            .collect();
        // The store and NATS URLs may carry a password: hidden in `--help`, never quoted in
        // file errors, and shown by `config check` without their credentials.
        for secret in ["admin-token", "db", "cluster"] {
            assert!(
                secrets.contains(&secret.to_owned()),
                "{secret}: {secrets:?}"
            );
        }
        assert!(!secrets.contains(&"preset".to_owned()), "{secrets:?}");
    }

    #[test]
    fn keep_alive_defaults_to_a_minute_and_half_a_minute_and_zero_turns_it_off() {
        let cli = Cli::try_parse_from(["voltgate"]).unwrap();
        assert_eq!(
            cli.serve.settings().keep_alive,
            Some(crate::charger::KeepAlive {
                ping_interval: Duration::from_secs(60),
                pong_timeout: Duration::from_secs(30),
            })
        );
        let cli = Cli::try_parse_from([
            "voltgate",
            "--ws-ping-interval",
            "5",
            "--ws-pong-timeout",
            "2",
        ])
        .unwrap();
        assert_eq!(
            cli.serve.settings().keep_alive,
            Some(crate::charger::KeepAlive {
                ping_interval: Duration::from_secs(5),
                pong_timeout: Duration::from_secs(2),
            })
        );
        let cli = Cli::try_parse_from(["voltgate", "--ws-ping-interval", "0"]).unwrap();
        assert_eq!(cli.serve.settings().keep_alive, None);
        assert!(Cli::try_parse_from(["voltgate", "--ws-pong-timeout", "0"]).is_err());
        assert!(Cli::try_parse_from(["voltgate", "--ws-ping-interval", "-1"]).is_err());

        let file = write_file("ws-ping-interval = 0\nws-pong-timeout = 7\n");
        let path = file.path().to_str().unwrap();
        let Invocation::Serve(from_file) =
            parse_args(args(&["voltgate", "--config", path])).unwrap()
        else {
            panic!("expected serve");
        };
        assert_eq!(from_file.ws_ping_interval, 0);
        assert_eq!(from_file.ws_pong_timeout, 7);
        let Invocation::ConfigChecked(listing) =
            parse_args(args(&["voltgate", "config", "check", path])).unwrap()
        else {
            panic!("expected a listing");
        };
        assert!(
            listing.contains("ws-ping-interval = 0  # file"),
            "{listing}"
        );
        assert!(listing.contains("ws-pong-timeout = 7  # file"), "{listing}");
    }

    #[test]
    fn shutdown_timeout_defaults_to_ten_seconds() {
        let cli = Cli::try_parse_from(["voltgate"]).unwrap();
        assert_eq!(cli.serve.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(cli.serve.log, None);
        let cli = Cli::try_parse_from(["voltgate", "--shutdown-timeout", "2s"]).unwrap();
        assert_eq!(cli.serve.shutdown_timeout, Duration::from_secs(2));
    }

    #[test]
    fn auth_failure_limits_default_to_the_throttle_defaults_and_reject_zero() {
        let cli = Cli::try_parse_from(["voltgate"]).unwrap();
        assert_eq!(
            cli.serve.auth_failure_burst,
            crate::throttle::DEFAULT_FAILURE_BURST
        );
        assert_eq!(
            cli.serve.auth_failure_refill,
            crate::throttle::DEFAULT_FAILURE_REFILL
        );
        assert_eq!(
            cli.serve.auth_failure_address_burst,
            crate::throttle::DEFAULT_ADDRESS_FAILURE_BURST
        );
        let cli = Cli::try_parse_from([
            "voltgate",
            "--auth-failure-address-burst",
            "40",
            "--auth-failure-burst",
            "3",
            "--auth-failure-refill",
            "500ms",
        ])
        .unwrap();
        assert_eq!(cli.serve.auth_failure_burst, 3);
        assert_eq!(cli.serve.auth_failure_address_burst, 40);
        assert_eq!(cli.serve.auth_failure_refill, Duration::from_millis(500));
        assert!(Cli::try_parse_from(["voltgate", "--auth-failure-burst", "0"]).is_err());
    }

    #[test]
    fn auto_registration_limits_default_to_the_throttle_defaults() {
        let cli = Cli::try_parse_from(["voltgate"]).unwrap();
        assert_eq!(
            cli.serve.auto_register_refill,
            crate::throttle::DEFAULT_REGISTRATION_REFILL
        );
        assert_eq!(
            cli.serve.auto_register_address_burst,
            crate::throttle::DEFAULT_REGISTRATION_ADDRESS_BURST
        );
        assert_eq!(
            cli.serve.auto_register_total_burst,
            crate::throttle::DEFAULT_REGISTRATION_TOTAL_BURST
        );
        assert!(Cli::try_parse_from(["voltgate", "--auto-register-total-burst", "0"]).is_err());
    }
}
