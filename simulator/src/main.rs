//! The `voltgate-sim` binary: reads the command line, sets up the runtime, registers chargers
//! when asked, runs the load (in one process, or split over several when the open-file limit
//! asks for it) and prints the report. Exit code 0: every check passed (nothing lost or
//! refused, or the thresholds given); 1: a check failed; 2: the run could not start, or no
//! charger could connect.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser as _;
use voltgate_ocpp::Validator;
use voltgate_sim::cli::{Cli, ReportFormat};
use voltgate_sim::driver::{lean_ws_config, DriverConfig, Endpoint, Target};
use voltgate_sim::operator::{register_all, ApiConfig, CommandLoad};
use voltgate_sim::run::{run, Plan};
use voltgate_sim::split::{files_per_process, processes_needed, run_split, WorkerSpec};
use voltgate_sim::stats::Stats;
use voltgate_sim::{procfs, report, split, tls, verdict};

fn main() -> ExitCode {
    let (args, deprecated) = voltgate_sim::cli::upgrade_args(std::env::args_os().collect());
    let cli = Cli::parse_from(args);
    if deprecated && !cli.worker {
        eprintln!(
            "voltgate-sim: note: `--version VERSION` is deprecated, use `--ocpp VERSION` \
             (`--version` alone prints the simulator's version)"
        );
    }
    let outcome = if cli.worker {
        WorkerSpec::read_from_stdin()
            .map_err(anyhow::Error::from)
            .and_then(|spec| {
                let threads = spec.cli.threads;
                runtime(threads)?.block_on(work(spec))
            })
    } else {
        runtime(cli.threads).and_then(|rt| rt.block_on(simulate(cli)))
    };
    match outcome {
        Ok(Outcome::Passed) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::NoConnection) => ExitCode::from(2),
        Err(e) => {
            eprintln!("voltgate-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
        })
        .max(1);
    Ok(if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    })
}

/// How a run ended, for the exit code.
enum Outcome {
    Passed,
    Failed,
    /// No charger could connect; the reason was printed.
    NoConnection,
}

/// Everything a run needs, read from the command line.
struct Setup {
    plan: Plan,
    driver: DriverConfig,
    api: ApiConfig,
    load: Option<CommandLoad>,
}

async fn setup(cli: &Cli) -> anyhow::Result<Setup> {
    let plan = cli.plan()?;
    let faults = cli.faults()?;
    let load = cli.command_load()?;
    let source_addrs = cli.source_addrs()?;
    let mut targets = Vec::with_capacity(cli.url.len());
    for url in cli.url.iter().map(|u| u.trim()) {
        let endpoint = Endpoint::parse(url).with_context(|| format!("--url {url}"))?;
        let address = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
            .await
            .with_context(|| format!("cannot resolve {}", endpoint.host))?
            .next()
            .with_context(|| format!("{} has no address", endpoint.host))?;
        targets.push(Target { endpoint, address });
    }
    if targets.is_empty() {
        bail!("--url needs at least one ws:// or wss:// URL");
    }
    let tls = if targets.iter().any(|t| t.endpoint.tls) {
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
        targets,
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
        bases: cli
            .api
            .iter()
            .map(|base| base.trim().trim_end_matches('/').to_owned())
            .collect(),
        token: cli.api_token.clone(),
    };
    Ok(Setup {
        plan,
        driver,
        api,
        load,
    })
}

/// How many processes this run takes: --processes, or what the open-file limit needs.
fn processes(cli: &Cli, plan: &Plan) -> anyhow::Result<u32> {
    let api_connections = if cli.commands > 0.0 {
        cli.max_in_flight as u64
    } else {
        0
    };
    let limit = procfs::open_file_limit();
    match cli.processes {
        Some(k) if k == 0 || k > plan.chargers => {
            Err(voltgate_sim::cli::CliError::Processes(plan.chargers).into())
        }
        Some(k) => {
            let needed = files_per_process(plan.chargers, api_connections, k);
            if let Some(limit) = limit.filter(|limit| needed > *limit) {
                eprintln!(
                    "voltgate-sim: warning: {k} process(es) need {needed} open files each, over the limit of {limit}"
                );
            }
            Ok(k)
        }
        None => Ok(processes_needed(plan.chargers, api_connections, limit)?),
    }
}

async fn simulate(cli: Cli) -> anyhow::Result<Outcome> {
    let Setup {
        plan,
        driver,
        api,
        load,
    } = setup(&cli).await?;
    let processes = processes(&cli, &plan)?;
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
    let report = if processes > 1 {
        if !cli.quiet {
            eprintln!("{} chargers over {processes} processes", plan.chargers);
        }
        // the workers build their own connections; this process only watches them
        drop(driver);
        let program = std::env::current_exe().context("finding this program to start workers")?;
        run_split(&program, &cli, &plan, processes, stats).await?
    } else {
        run(plan, driver, load.map(|l| (api, l)), stats).await
    };
    let verdict = verdict::judge(&report, verdict::Thresholds::of(&cli));
    match cli.report {
        ReportFormat::Table => {
            print!("{}", report::table(&report));
            for check in &verdict.checks {
                let mark = if check.passed { "ok" } else { "FAILED" };
                println!("check {:<14} {mark:<6} {}", check.name, check.detail);
            }
        }
        ReportFormat::Json => {
            let document = verdict::document(&report, &cli, &verdict);
            println!(
                "{}",
                serde_json::to_string_pretty(&document).unwrap_or_default()
            );
        }
    }
    if let Some(path) = &cli.junit {
        std::fs::write(path, verdict::junit(&verdict, report.throughput.elapsed_s))
            .with_context(|| format!("writing --junit {}", path.display()))?;
    }
    if let Some(reason) = &report.aborted {
        eprintln!("voltgate-sim: {reason}");
        return Ok(Outcome::NoConnection);
    }
    for check in verdict.checks.iter().filter(|check| !check.passed) {
        eprintln!(
            "voltgate-sim: check {} failed: {}",
            check.name, check.detail
        );
    }
    Ok(if verdict.passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

/// One process of a split run: its share, set up like any run, started on the parent's word.
async fn work(spec: WorkerSpec) -> anyhow::Result<Outcome> {
    let Setup {
        plan,
        mut driver,
        api,
        load,
    } = setup(&spec.cli).await?;
    spec.rotate_sources(&mut driver.source_addrs);
    spec.rotate_targets(&mut driver.targets);
    split::serve_worker(plan, driver, load.map(|l| (api, l))).await?;
    Ok(Outcome::Passed)
}
