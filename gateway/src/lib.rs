//! The Voltgate gateway: chargers connect over OCPP-J, operators drive them through an HTTP
//! API, and every operator request passes the role engine.
//!
//! The public surface is what the binary (`main.rs`) and the fuzz targets need: the command
//! line ([`config`]), log setup ([`logging`]), the open-file limit ([`open_files`]), the offline
//! preset tools ([`policy_cli`]), [`run`], [`reset_admin_token`] and [`in_memory_api`].
//! Everything else is the crate's own.
//!
//! Module map: `charger` speaks OCPP to chargers, `api` serves operators, `gate` is the single
//! door from the API to a charger, `state` holds what both share, `audit` records every
//! decision, `metrics` counts everything, [`config`] reads the command line and the
//! configuration file, [`logging`] sets up log output, `lifecycle` covers readiness and the
//! API's part of a graceful shutdown, `tls` serves both listeners over TLS (security profiles
//! 2 and 3, HTTPS), `cluster` joins the other nodes of a cluster over NATS, `throttle` slows
//! down failed authentication (per client address, which `proxy` finds behind trusted
//! proxies), `local_list` keeps chargers' local authorisation lists in sync with the engine,
//! and [`policy_cli`] inspects presets offline.

#![warn(unreachable_pub)]

pub(crate) mod api;
pub(crate) mod audit;
pub(crate) mod behaviour;
pub(crate) mod charger;
mod clock;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod decision;
pub(crate) mod gate;
pub(crate) mod lifecycle;
pub(crate) mod local_list;
pub mod logging;
pub(crate) mod metrics;
pub mod open_files;
pub mod policy_cli;
pub(crate) mod proxy;
pub(crate) mod state;
pub(crate) mod throttle;
pub(crate) mod tls;

pub use state::{reset_admin_token, AdminResetError};

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use voltgate_store::Store;

use crate::config::ServeConfig;
use crate::lifecycle::Drain;
use crate::state::{AppState, SharedState};

/// A gateway whose listeners are bound and serving.
pub(crate) struct Running {
    pub ocpp_addr: SocketAddr,
    pub api_addr: SocketAddr,
    /// The charger TLS listener (`--ocpp-tls-listen`), when configured.
    pub ocpp_tls_addr: Option<SocketAddr>,
    /// Whether the API is served over HTTPS.
    pub api_https: bool,
    /// The generated token of the bootstrap `admin`, on the first start without
    /// `--admin-token`; shown once, never stored in clear.
    pub admin_token: Option<String>,
    pub state: SharedState,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Closes the API listener; sent after the open requests are done.
    api_stop: tokio::sync::watch::Sender<bool>,
    drain: Drain,
    store: Arc<dyn Store>,
    shutdown_timeout: Duration,
    ocpp_task: JoinHandle<std::io::Result<()>>,
    api_task: JoinHandle<std::io::Result<()>>,
}

/// Opens the store, loads the preset, replays the stored estate into the engine, makes sure
/// the bootstrap admin exists and binds both listeners.
pub(crate) async fn start(config: &ServeConfig) -> anyhow::Result<Running> {
    let cluster = match &config.cluster {
        Some(urls) => Some(
            cluster::Cluster::join(urls, &config.node_id)
                .await
                .context("cannot join the cluster (--cluster)")?,
        ),
        None => None,
    };
    let preset = config.preset.clone();
    let store = voltgate_store::open(&config.db)
        .await
        .with_context(|| "cannot open the store (--db)")?;
    let mut engine = voltgate_estate::load_engine(store.as_ref(), preset).await?;
    charger::handlers::warn_unnormalised_id_tokens(store.as_ref()).await?;
    engine.set_scope_limits(config.scope_limits);
    if let Some(scope) = &config.settings.auto_register {
        check_auto_register_scope(&engine, scope)?;
    }
    let admin_token =
        state::bootstrap_admin(store.as_ref(), &mut engine, config.admin_token.as_deref()).await?;
    let validator = voltgate_ocpp::Validator::new().context("cannot compile the OCPP schemas")?;
    let quirks = charger::Quirks::new(config.schema_tolerance);
    quirks.load(store.charger_schema_tolerances().await?);
    let behaviours = behaviour::Behaviours::new();
    behaviours.load(store.charger_behaviours().await?)?;
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let state: SharedState = Arc::new(AppState {
        estate: voltgate_estate::Estate::new(store.clone(), engine)
            .with_pending_chargers(voltgate_estate::pending_chargers(store.as_ref()).await?),
        store: store.clone(),
        validator: Arc::new(validator),
        chargers: charger::ChargerRegistry::new(),
        metrics: metrics::Metrics::new(),
        settings: config.settings.clone(),
        shutdown: shutdown_rx,
        auth_guard: throttle::AuthGuard::with_failure_limits(config.auth_failures)
            .with_registration_limits(config.registrations),
        local_lists: local_list::LocalLists::new(config.local_auth_lists)
            .with_reach(config.local_list_max_reach),
        quirks,
        behaviours,
        cluster: cluster.clone(),
    });
    if let Some(cluster) = &cluster {
        cluster
            .run(state.clone())
            .await
            .context("cannot join the cluster (--cluster)")?;
    }

    let ocpp_listener = tokio::net::TcpListener::bind(config.ocpp_listen)
        .await
        .with_context(|| format!("cannot listen for chargers on {}", config.ocpp_listen))?;
    let api_listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen for the API on {}", config.api_listen))?;
    let ocpp_addr = ocpp_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;

    let ocpp_task = tokio::spawn(charger::server::serve(ocpp_listener, state.clone()));
    tokio::spawn(local_list::run(state.clone()));
    let ocpp_tls_addr = tls::start_charger_listener(config.ocpp_tls.as_ref(), &state).await?;
    let api_tls = tls::api_tls(config.api_tls.as_ref(), &state)?;
    let api_https = api_tls.is_some();
    let drain = Drain::new();
    let (api_stop, mut api_stop_rx) = tokio::sync::watch::channel(false);
    let app = api::router(state.clone()).layer(axum::Extension(drain.clone()));
    let api_task = tokio::spawn(async move {
        tls::serve_api(api_listener, app, api_tls, async move {
            // An error means the sender is gone, which also means shutdown.
            let _ = api_stop_rx.wait_for(|stop| *stop).await;
        })
        .await
    });
    let ocpp_tls_url = ocpp_tls_addr
        .map(|address| format!("wss://{address}{}", config.settings.ocpp_path_prefix))
        .unwrap_or_default();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        node = %config.node_id,
        database = %database_label(&config.db),
        preset = %config.preset.id(),
        ocpp = %format!("ws://{ocpp_addr}{}", config.settings.ocpp_path_prefix),
        ocpp_tls = %ocpp_tls_url,
        api = %format!("{}://{api_addr}", if api_https { "https" } else { "http" }),
        "gateway started"
    );
    Ok(Running {
        ocpp_addr,
        api_addr,
        ocpp_tls_addr,
        api_https,
        admin_token,
        state,
        shutdown,
        api_stop,
        drain,
        store,
        shutdown_timeout: config.shutdown_timeout,
        ocpp_task,
        api_task,
    })
}

/// The store URL for the log: without a user or password it may carry.
fn database_label(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((_, host)) => format!(
            "{scheme}://***@{host}{}",
            rest.get(authority.len()..).unwrap_or_default()
        ),
        None => url.to_owned(),
    }
}

/// Refuses an `--auto-register` scope whose kind cannot hold chargers, naming the kinds that
/// can (the engine's parent-kind rule for stations); warns when the scope does not exist yet.
fn check_auto_register_scope(engine: &voltgate_policy::Engine, scope: &str) -> anyhow::Result<()> {
    use voltgate_policy::{PolicyError, STATION_KIND};
    let kinds = engine.parent_kinds_of(STATION_KIND)?.join(", ");
    match engine.check_kind_under(STATION_KIND, scope) {
        Ok(()) => Ok(()),
        Err(PolicyError::UnknownScope(_)) => {
            tracing::warn!(
                %scope,
                kinds_that_hold_chargers = %kinds,
                "--auto-register scope does not exist yet; unknown chargers are refused until a \
                 scope of one of these kinds is created with this id"
            );
            Ok(())
        }
        Err(PolicyError::ParentKindNotAllowed { parent_kind, .. }) => anyhow::bail!(
            "--auto-register {scope}: scope `{scope}` is of kind `{parent_kind}`, which cannot \
             hold chargers in preset `{}`; name a scope of kind: {kinds}",
            engine.preset().id()
        ),
        Err(err) => anyhow::bail!("--auto-register {scope}: {err}"),
    }
}

impl Running {
    /// Shuts down within the configured timeout: readiness goes false and no new charger or
    /// operator request is taken; open API requests get half the timeout to finish (then they
    /// answer 503); every charger is closed with 1001 (going away); the API listener closes and
    /// the store commits and closes. Fails, naming what was still open, when the timeout passes.
    pub(crate) async fn shutdown(self) -> anyhow::Result<()> {
        let Running {
            state,
            shutdown,
            api_stop,
            drain,
            store,
            shutdown_timeout,
            ocpp_task,
            api_task,
            ..
        } = self;
        let started = Instant::now();
        let deadline = started + shutdown_timeout;
        shutdown.send_replace(true);
        drain.begin_draining();
        tracing::info!(
            timeout_ms = millis(shutdown_timeout),
            api_requests = drain.in_flight(),
            chargers = state.chargers.connected_count(),
            "shutting down"
        );

        let drain_until = started + shutdown_timeout / 2;
        if tokio::time::timeout_at(drain_until, drain.idle())
            .await
            .is_err()
        {
            tracing::info!(
                api_requests = drain.in_flight(),
                "open API requests did not finish in time; answering them with 503"
            );
            drain.cut();
        }

        let _ = tokio::time::timeout_at(deadline, state.chargers.close_all()).await;
        // `close_all` returns once the sessions have let go of their call queues; each one
        // leaves the registry a moment later, after its close handshake.
        let _ = tokio::time::timeout_at(deadline, async {
            while state.chargers.connected_count() > 0 {
                tokio::time::sleep(SESSION_EXIT_POLL).await;
            }
        })
        .await;
        // Changes that were cut still run to their end (a command to a charger has just failed
        // as disconnected); the store closes only after them.
        let _ = tokio::time::timeout_at(deadline, drain.idle()).await;
        if let Some(cluster) = &state.cluster {
            let _ = tokio::time::timeout_at(deadline, cluster.leave()).await;
        }
        api_stop.send_replace(true);
        let mut unfinished = Vec::new();
        for (name, task) in [("charger listener", ocpp_task), ("API listener", api_task)] {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => {
                    tracing::warn!(listener = name, error = %err, "listener ended with an error")
                }
                Ok(Err(err)) => {
                    tracing::warn!(listener = name, error = %err, "listener task failed")
                }
                Err(_) => unfinished.push(name.to_owned()),
            }
        }
        if tokio::time::timeout_at(deadline, store.close())
            .await
            .is_err()
        {
            unfinished.push("the store".to_owned());
        }
        let chargers = state.chargers.connected_count();
        if chargers > 0 {
            unfinished.push(format!("{chargers} charger connection(s)"));
        }
        let requests = drain.in_flight();
        if requests > 0 {
            unfinished.push(format!("{requests} API request(s)"));
        }
        if unfinished.is_empty() {
            tracing::info!(took_ms = millis(started.elapsed()), "gateway stopped");
            Ok(())
        } else {
            let open = unfinished.join(", ");
            tracing::error!(
                timeout_ms = millis(shutdown_timeout),
                still_open = %open,
                "shutdown timed out"
            );
            anyhow::bail!(
                "shutdown did not finish within {} ms; still open: {open}",
                millis(shutdown_timeout)
            )
        }
    }
}

/// How often shutdown looks whether the last charger sessions have ended.
const SESSION_EXIT_POLL: Duration = Duration::from_millis(10);

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Runs the gateway until SIGINT or SIGTERM, then shuts down gracefully; a second signal
/// during shutdown ends it at once with an error. Prints the bound addresses (and a generated
/// admin token) to stdout.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    let mut running = start(&config).await?;
    {
        let mut banner = Vec::new();
        if let Some(token) = &running.admin_token {
            banner.push(("admin token", "admin_token", token.clone()));
        }
        banner.push((
            "ocpp listening on",
            "url",
            format!(
                "ws://{}{}",
                running.ocpp_addr, config.settings.ocpp_path_prefix
            ),
        ));
        if let Some(address) = running.ocpp_tls_addr {
            banner.push((
                "ocpp-tls listening on",
                "url",
                format!("wss://{address}{}", config.settings.ocpp_path_prefix),
            ));
        }
        banner.push((
            "api listening on",
            "url",
            format!(
                "{}://{}",
                if running.api_https { "https" } else { "http" },
                running.api_addr
            ),
        ));
        let mut out = std::io::stdout().lock();
        for (message, field, value) in banner {
            match config.log_format {
                config::LogFormat::Text => {
                    let separator = if field == "url" { " " } else { ": " };
                    writeln!(out, "voltgate: {message}{separator}{value}")?
                }
                // One JSON object per line, like the log, for collectors that read stdout and
                // stderr as one stream.
                config::LogFormat::Json => writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "timestamp": crate::clock::now_rfc3339(),
                        "level": "INFO",
                        "target": "voltgate",
                        "message": format!("voltgate: {message}"),
                        field: value,
                    })
                )?,
            }
        }
        out.flush()?;
    }
    tokio::select! {
        signal = signals.next() => {
            tracing::info!(signal, "shutdown requested");
        }
        ended = &mut running.ocpp_task => {
            let detail = match ended {
                Ok(Ok(())) => "stopped".to_owned(),
                Ok(Err(err)) => err.to_string(),
                Err(err) => err.to_string(),
            };
            anyhow::bail!("the charger listener ended unexpectedly: {detail}");
        }
        ended = &mut running.api_task => {
            let detail = match ended {
                Ok(Ok(())) => "stopped".to_owned(),
                Ok(Err(err)) => err.to_string(),
                Err(err) => err.to_string(),
            };
            anyhow::bail!("the API listener ended unexpectedly: {detail}");
        }
    }
    tokio::select! {
        outcome = running.shutdown() => outcome,
        signal = signals.next() => {
            tracing::error!(signal, "second signal during shutdown; exiting at once");
            anyhow::bail!("{signal} received during shutdown; exited without finishing it")
        }
    }
}

/// SIGTERM and SIGINT, installed once so a second signal is seen too.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The name of the next signal received.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// The operator API over an in-memory store with the built-in `preset` loaded and the admin
/// holding `admin_token`, without listeners or chargers (a command waits at most 10 ms for
/// one): for driving the real router in-process, as the fuzz targets do.
pub async fn in_memory_api(preset: &str, admin_token: &str) -> anyhow::Result<axum::Router> {
    let store = voltgate_store::open("sqlite::memory:").await?;
    let preset = voltgate_policy::Preset::builtin(preset)?;
    let mut engine = voltgate_estate::load_engine(store.as_ref(), preset).await?;
    state::bootstrap_admin(store.as_ref(), &mut engine, Some(admin_token)).await?;
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    // The router lives as long as the process: it never shuts down.
    std::mem::forget(shutdown_tx);
    let settings = state::Settings {
        command_timeout: Duration::from_millis(10),
        keep_alive: None,
        ..config::ServeArgs::ephemeral().settings()
    };
    let state: SharedState = Arc::new(AppState::bare(store, engine, settings, shutdown));
    Ok(api::router(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn http_get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: voltgate\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn starts_serves_and_shuts_down_and_a_restart_keeps_the_admin() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServeConfig::ephemeral();
        config.db = format!("sqlite://{}", dir.path().join("gateway.db").display());

        let running = start(&config).await.unwrap();
        let token = running
            .admin_token
            .clone()
            .expect("first start generates a token");
        let api_addr = running.api_addr;
        let health = http_get(api_addr, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(
            health.to_ascii_lowercase().contains("x-request-id:"),
            "{health}"
        );
        running.shutdown().await.unwrap();
        assert!(
            tokio::net::TcpStream::connect(api_addr).await.is_err(),
            "the API listener is closed after shutdown"
        );

        let again = start(&config).await.unwrap();
        assert_eq!(again.admin_token, None, "the admin exists; no second token");
        let hash = state::hash_token(&token);
        let stored = again
            .state
            .store
            .principal_for_token_hash(&hash)
            .await
            .unwrap();
        assert_eq!(stored.map(|t| t.principal).as_deref(), Some("admin"));
        again.shutdown().await.unwrap();
    }

    #[test]
    fn a_bad_preset_is_refused_before_anything_starts() {
        let mut args = config::ServeArgs::ephemeral();
        args.preset = "no-such-preset".into();
        let err = args.resolve().expect_err("the preset is refused");
        assert!(err.to_string().contains("no-such-preset"), "{err}");
    }

    #[test]
    fn tls_settings_that_cannot_serve_a_profile_are_refused_before_anything_starts() {
        let refused = |change: fn(&mut config::ServeArgs)| {
            let mut args = config::ServeArgs::ephemeral();
            change(&mut args);
            args.resolve().expect_err("refused").to_string()
        };
        assert!(
            refused(|args| args.default_security_profile = 2).contains("needs --ocpp-tls-listen")
        );
        assert!(refused(|args| {
            args.default_security_profile = 3;
            args.ocpp_tls_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        })
        .contains("needs --tls-client-ca"));
        assert!(
            refused(|args| args.ocpp_tls_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0))))
                .contains("needs --tls-cert and --tls-key")
        );
    }
}
