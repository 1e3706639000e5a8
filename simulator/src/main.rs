//! The `voltgate-sim` binary: reads the command line, sets up the runtime, registers chargers
//! when asked, runs the load and prints the report. Exit code 0: nothing lost or refused;
//! 1: something was; 2: the run could not start.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser as _;
use voltgate_ocpp::Validator;
use voltgate_sim::cli::{Cli, ReportFormat};
use voltgate_sim::driver::{lean_ws_config, DriverConfig, Endpoint};
use voltgate_sim::operator::{register_all, ApiConfig};
use voltgate_sim::run::run;
use voltgate_sim::stats::Stats;
use voltgate_sim::{report, tls};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match start(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("voltgate-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<bool> {
    let threads = cli
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
        })
        .max(1);
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(simulate(cli))
}

async fn simulate(cli: Cli) -> anyhow::Result<bool> {
    let plan = cli.plan()?;
    let faults = cli.faults()?;
    let load = cli.command_load()?;
    let source_addrs = cli.source_addrs()?;
    let endpoint = Endpoint::parse(&cli.url).with_context(|| format!("--url {}", cli.url))?;
    let address = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
        .await
        .with_context(|| format!("cannot resolve {}", endpoint.host))?
        .next()
        .with_context(|| format!("{} has no address", endpoint.host))?;
    let tls = if endpoint.tls {
        Some(tls::client_config(cli.ca_file.as_deref())?)
    } else {
        if cli.ca_file.is_some() {
            bail!("--ca-file needs a wss:// URL");
        }
        None
    };
    let validator = if cli.no_validate {
        None
    } else {
        Some(Arc::new(Validator::new()?))
    };
    let driver = DriverConfig {
        endpoint,
        address,
        tls,
        source_addrs,
        call_timeout: Duration::from_secs_f64(cli.call_timeout.max(0.1)),
        connect_timeout: Duration::from_secs(15),
        validator,
        faults,
        ws: lean_ws_config(),
        reconnect_delay: Duration::from_secs(1),
    };
    let api = ApiConfig {
        base: cli.api.trim_end_matches('/').to_owned(),
        token: cli.api_token.clone(),
    };
    let stats = Stats::new();
    if let Some(scope) = &cli.register {
        let chargers = plan
            .chargers()
            .into_iter()
            .map(|(id, _)| (id, plan.password.clone()))
            .collect();
        let created = register_all(&api, scope, chargers, &stats)
            .await
            .context("registering chargers")?;
        if !cli.quiet {
            eprintln!("registered {created} chargers under {scope}");
        }
    }
    let report = run(plan, driver, load.map(|l| (api, l)), stats).await;
    match cli.report {
        ReportFormat::Table => print!("{}", report::table(&report)),
        ReportFormat::Json => println!("{}", report::json(&report)),
    }
    Ok(!report.failed)
}
