//! The Voltgate gateway: chargers connect over OCPP-J, operators drive them through an HTTP
//! API, and every operator request passes the role engine.
//!
//! The binary (`main.rs`) only parses the command line; [`start`] and [`run`] are here so
//! tests and benchmarks can run a complete gateway in-process.
//!
//! Module map: [`charger`] speaks OCPP to chargers, [`api`] serves operators, [`gate`] is the
//! single door from the API to a charger, [`state`] holds what both share, [`audit`] records
//! every decision, [`metrics`] counts everything, [`config`] reads the command line and
//! [`policy_cli`] inspects presets offline.

pub mod api;
pub mod audit;
pub mod charger;
pub mod config;
pub mod gate;
pub mod metrics;
pub mod policy_cli;
pub mod state;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;

use crate::config::{load_preset, LogFormat, ServeConfig};
use crate::state::{AppState, SharedState};

/// How long shutdown waits for open API requests and charger connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A gateway whose listeners are bound and serving.
pub struct Running {
    pub ocpp_addr: SocketAddr,
    pub api_addr: SocketAddr,
    /// The generated token of the bootstrap `admin`, on the first start without
    /// `--admin-token`; shown once, never stored in clear.
    pub admin_token: Option<String>,
    pub state: SharedState,
    shutdown: tokio::sync::watch::Sender<bool>,
    ocpp_task: JoinHandle<std::io::Result<()>>,
    api_task: JoinHandle<std::io::Result<()>>,
}

/// Opens the store, loads the preset, replays the stored estate into the engine, makes sure
/// the bootstrap admin exists and binds both listeners.
pub async fn start(config: &ServeConfig) -> anyhow::Result<Running> {
    let preset = load_preset(&config.preset)?;
    let store = voltgate_store::open(&config.db)
        .await
        .with_context(|| "cannot open the store (--db)")?;
    let mut engine = state::load_engine(store.as_ref(), preset).await?;
    let admin_token =
        state::bootstrap_admin(store.as_ref(), &mut engine, config.admin_token.as_deref()).await?;
    if let Some(scope) = &config.auto_register {
        if engine.scope_kind(scope).is_none() {
            tracing::warn!(%scope, "--auto-register scope does not exist yet; unknown chargers are refused until it is created");
        }
    }
    let validator = voltgate_ocpp::Validator::new().context("cannot compile the OCPP schemas")?;
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let state: SharedState = Arc::new(AppState {
        policy: parking_lot::RwLock::new(engine),
        store,
        validator: Arc::new(validator),
        chargers: charger::ChargerRegistry::new(),
        metrics: metrics::Metrics::new(),
        settings: config.settings(),
        shutdown: shutdown_rx,
    });

    let ocpp_listener = tokio::net::TcpListener::bind(config.ocpp_listen)
        .await
        .with_context(|| format!("cannot listen for chargers on {}", config.ocpp_listen))?;
    let api_listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen for the API on {}", config.api_listen))?;
    let ocpp_addr = ocpp_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;

    let ocpp_task = tokio::spawn(charger::server::serve(ocpp_listener, state.clone()));
    let mut api_shutdown = state.shutdown.clone();
    let app = api::router(state.clone());
    let api_task = tokio::spawn(async move {
        axum::serve(api_listener, app)
            .with_graceful_shutdown(async move {
                // An error means the sender is gone, which also means shutdown.
                let _ = api_shutdown.wait_for(|stopping| *stopping).await;
            })
            .await
    });
    tracing::info!(%ocpp_addr, %api_addr, preset = %config.preset, "gateway started");
    Ok(Running {
        ocpp_addr,
        api_addr,
        admin_token,
        state,
        shutdown,
        ocpp_task,
        api_task,
    })
}

impl Running {
    /// Stops accepting, closes every charger connection with a close frame, lets open API
    /// requests finish (up to a grace period) and returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let Running {
            state,
            shutdown,
            ocpp_task,
            api_task,
            ..
        } = self;
        shutdown.send_replace(true);
        state.chargers.close_all().await;
        for (name, task) in [("ocpp", ocpp_task), ("api", api_task)] {
            match tokio::time::timeout(SHUTDOWN_GRACE, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => {
                    tracing::warn!(listener = name, error = %err, "listener ended with an error")
                }
                Ok(Err(err)) => {
                    tracing::warn!(listener = name, error = %err, "listener task failed")
                }
                Err(_) => tracing::warn!(
                    listener = name,
                    "listener did not stop within the grace period"
                ),
            }
        }
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// Runs the gateway until SIGINT or SIGTERM, then shuts down gracefully. Prints the bound
/// addresses (and a generated admin token) to stdout.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let mut running = start(&config).await?;
    {
        let mut out = std::io::stdout().lock();
        if let Some(token) = &running.admin_token {
            writeln!(out, "voltgate: admin token: {token}")?;
        }
        writeln!(
            out,
            "voltgate: ocpp listening on ws://{}{}",
            running.ocpp_addr, config.ocpp_path_prefix
        )?;
        writeln!(
            out,
            "voltgate: api listening on http://{}",
            running.api_addr
        )?;
        out.flush()?;
    }
    tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            tracing::info!("shutdown requested");
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
    running.shutdown().await
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Log lines go to stderr, as text or JSON, filtered by `filter` (tracing syntax).
pub fn init_tracing(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter `{filter}`"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|err| anyhow::anyhow!("cannot set up logging: {err}"))
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

    #[tokio::test]
    async fn a_bad_preset_stops_start_up() {
        let mut config = ServeConfig::ephemeral();
        config.preset = "no-such-preset".into();
        let err = start(&config).await.err().expect("start fails");
        assert!(err.to_string().contains("no-such-preset"), "{err}");
    }
}
