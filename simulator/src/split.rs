//! One run spread over several processes, for when one process may not open enough files
//! for all its chargers (the open-file limit, RLIMIT_NOFILE, is per process).
//!
//! The parent re-runs its own binary with `--worker` once per share. Each worker reads its
//! share (the whole command line, with its slice of charger ids, ramp and operator load) as
//! one JSON line on standard input, sets up, says it is ready, waits for the parent's `go` so
//! that all shares start together, and runs. While it runs it writes a progress line four
//! times a second; at the end it writes everything it measured as a [`Tally`] (raw counters
//! and histogram buckets). The parent adds those up exactly, takes the steady window and the
//! CPU and memory readings over the whole set of processes, and prints one report as a
//! single process would. Closing a worker's standard input stops it early, so workers never
//! outlive their parent.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::cli::Cli;
use crate::driver::{DriverConfig, Target};
use crate::operator::{ApiConfig, CommandLoad};
use crate::procfs;
use crate::run::{
    end_progress, progress_line, run_record, Mark, Plan, RunRecord, RunReport, SteadyWatch, Tick,
    WatchedMemory,
};
use crate::stats::{Stats, Tally};

/// Files a simulator process holds besides its charger and API connections: standard
/// streams, the runtime's event and wake-up descriptors, the CA file, name lookups and the
/// pipes to the parent, with room to spare.
pub const FILE_RESERVE: u64 = 100;

/// How long the parent waits for its workers to finish after the run's duration (they
/// finish their outstanding CALLs and commands first) before it stops them.
const STOP_GRACE: Duration = Duration::from_secs(90);

/// How long workers may take to set up (resolve the gateway, load the schemas).
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a split run could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("the open-file limit of {limit} leaves no room for chargers next to {reserve} reserved files and {api} API connections")]
    LimitTooLow { limit: u64, reserve: u64, api: u64 },
    #[error("cannot start a worker process: {0}")]
    Spawn(std::io::Error),
    #[error("cannot talk to worker process {0}: {1}")]
    Pipe(usize, std::io::Error),
    #[error("worker process {0} stopped before it was ready (exit code {1:?})")]
    NotReady(usize, Option<i32>),
    #[error("the parent process went away before the run started")]
    ParentGone,
    #[error("cannot read the worker's share: {0}")]
    Spec(String),
}

/// Open files one process needs for its share of a run split `processes` ways.
pub fn files_per_process(chargers: u32, api_connections: u64, processes: u32) -> u64 {
    let k = u64::from(processes.max(1));
    u64::from(chargers).div_ceil(k) + api_connections.div_ceil(k) + FILE_RESERVE
}

/// The fewest processes among which `chargers` charger connections and `api_connections`
/// operator connections fit under a per-process limit of `limit` open files (no limit: one).
pub fn processes_needed(
    chargers: u32,
    api_connections: u64,
    limit: Option<u64>,
) -> Result<u32, SplitError> {
    let Some(limit) = limit else {
        return Ok(1);
    };
    let too_low = SplitError::LimitTooLow {
        limit,
        reserve: FILE_RESERVE,
        api: api_connections,
    };
    let room = limit
        .checked_sub(FILE_RESERVE)
        .filter(|r| *r >= 2)
        .ok_or(too_low)?;
    // each process needs at least ceil(total / k) + reserve; start from that bound
    let total = u64::from(chargers) + api_connections;
    let first = u32::try_from(total.div_ceil(room))
        .unwrap_or(u32::MAX)
        .max(1);
    (first..=chargers.max(1))
        .find(|k| files_per_process(chargers, api_connections, *k) <= limit)
        .ok_or(SplitError::LimitTooLow {
            limit,
            reserve: FILE_RESERVE,
            api: api_connections,
        })
}

/// One process's part of a split run.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// Number of its first charger.
    pub first_index: u32,
    pub chargers: u32,
    /// Position of its first charger in the whole run: source addresses go round from
    /// there, so each charger connects from the address it would in a single process.
    pub offset: u32,
    pub ramp: f64,
    pub commands: f64,
    pub max_in_flight: usize,
}

/// Splits `chargers` chargers into `processes` contiguous shares; ramp and command rate
/// follow the number of chargers, so every share ramps up over the same time and the rates
/// add up to what was asked.
pub fn shares(
    first_index: u32,
    chargers: u32,
    processes: u32,
    ramp: f64,
    commands: f64,
    max_in_flight: usize,
) -> Vec<Share> {
    let k = processes.clamp(1, chargers.max(1));
    let (base, extra) = (chargers / k, chargers % k);
    let mut offset = 0;
    (0..k)
        .map(|i| {
            let n = base + u32::from(i < extra);
            let part = f64::from(n) / f64::from(chargers.max(1));
            let share = Share {
                first_index: first_index + offset,
                chargers: n,
                offset,
                ramp: ramp * part,
                commands: commands * part,
                max_in_flight: max_in_flight.div_ceil(k as usize).max(1),
            };
            offset += n;
            share
        })
        .collect()
}

/// What a worker reads on standard input: its command line, already cut down to its share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub cli: Cli,
    pub offset: u32,
}

impl WorkerSpec {
    pub fn for_share(whole: &Cli, share: &Share) -> WorkerSpec {
        let mut cli = whole.clone();
        cli.chargers = share.chargers;
        cli.first_index = share.first_index;
        cli.ramp = share.ramp;
        cli.commands = share.commands;
        cli.max_in_flight = share.max_in_flight;
        cli.processes = Some(1);
        cli.worker = true;
        cli.quiet = true;
        // the parent registers every charger and watches the gateway
        cli.register = None;
        cli.watch_pid = None;
        WorkerSpec {
            cli,
            offset: share.offset,
        }
    }

    /// Reads the spec from the first line of standard input.
    pub fn read_from_stdin() -> Result<WorkerSpec, SplitError> {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| SplitError::Spec(e.to_string()))?;
        serde_json::from_str(&line).map_err(|e| SplitError::Spec(e.to_string()))
    }

    /// The source addresses of the whole run turned so that this share's first charger
    /// takes the address the charger at its position would take in one process.
    pub fn rotate_sources(&self, sources: &mut [IpAddr]) {
        rotate(sources, self.offset);
    }

    /// The gateway URLs of the whole run turned the same way, so that each charger starts
    /// at the URL it would start at in one process.
    pub fn rotate_targets(&self, targets: &mut [Target]) {
        rotate(targets, self.offset);
    }
}

fn rotate<T>(list: &mut [T], offset: u32) {
    if !list.is_empty() {
        let by = offset as usize % list.len();
        list.rotate_left(by);
    }
}

/// What a worker writes on standard output, one JSON object a line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerLine {
    /// Set up and waiting for `go`.
    Ready,
    Progress {
        tick: Tick,
    },
    /// The run is over: everything measured, and the counters at the end of the duration
    /// (before the chargers were stopped).
    Done {
        tally: Box<Tally>,
        answered_at_end: u64,
        commands_at_end: u64,
        online_at_end: u64,
    },
}

fn emit(line: &WorkerLine) {
    if let Ok(text) = serde_json::to_string(line) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// What the parent has said on a worker's standard input since the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Wait,
    Go,
    Stop,
}

/// Follows standard input on its own thread (a blocking read must not hold up the runtime
/// or its shutdown): the first line after the spec is `go`, anything after it, or the end of
/// input, is `stop`.
fn follow_orders() -> watch::Receiver<Order> {
    let (tx, rx) = watch::channel(Order::Wait);
    std::thread::spawn(move || {
        let mut line = String::new();
        let stdin = std::io::stdin();
        loop {
            line.clear();
            let order = match stdin.read_line(&mut line) {
                Ok(n) if n > 0 && line.trim() == "go" && *tx.borrow() == Order::Wait => Order::Go,
                _ => Order::Stop,
            };
            if tx.send(order).is_err() || order == Order::Stop {
                return;
            }
        }
    });
    rx
}

/// The worker's side: ready, wait for `go`, run the share, hand in the tally.
pub async fn serve_worker(
    plan: Plan,
    driver: DriverConfig,
    operator: Option<(ApiConfig, CommandLoad)>,
) -> Result<(), SplitError> {
    let mut orders = follow_orders();
    emit(&WorkerLine::Ready);
    let order = orders
        .wait_for(|o| *o != Order::Wait)
        .await
        .map(|o| *o)
        .unwrap_or(Order::Stop);
    if order != Order::Go {
        return Err(SplitError::ParentGone);
    }
    let stopped = async move {
        let _ = orders.wait_for(|o| *o == Order::Stop).await;
    };
    let interrupted = async {
        tokio::select! {
            _ = stopped => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let record = run_record(plan, driver, operator, Stats::new(), interrupted, |tick| {
        emit(&WorkerLine::Progress { tick: *tick })
    })
    .await;
    emit(&WorkerLine::Done {
        tally: Box::new(record.tally),
        answered_at_end: record.end.answered,
        commands_at_end: record.end.commands,
        online_at_end: record.online_at_end,
    });
    Ok(())
}

enum Event {
    Line(WorkerLine),
    Garbled(String),
    Exited(Option<i32>),
}

/// One worker as the parent sees it.
#[derive(Default)]
struct Worker {
    pid: Option<u32>,
    stdin: Option<ChildStdin>,
    ready: bool,
    tick: Tick,
    done: Option<(u64, u64, u64)>,
    exited: bool,
}

/// CPU ticks of the parent and all its live workers.
fn all_ticks(workers: &[Worker]) -> Option<u64> {
    let own = procfs::cpu_ticks(std::process::id())?;
    Some(
        own + workers
            .iter()
            .filter_map(|w| w.pid.and_then(procfs::cpu_ticks))
            .sum::<u64>(),
    )
}

fn total(workers: &[Worker]) -> Tick {
    workers.iter().fold(Tick::default(), |mut sum, w| {
        sum.online += w.tick.online;
        sum.booted += w.tick.booted;
        sum.answered += w.tick.answered;
        sum.commands += w.tick.commands;
        sum.errors += w.tick.errors;
        sum
    })
}

fn mark(workers: &[Worker], watch_pid: Option<u32>) -> Mark {
    let sum = total(workers);
    Mark {
        at: Instant::now(),
        answered: sum.answered,
        commands: sum.commands,
        own_ticks: all_ticks(workers),
        watched_ticks: watch_pid.and_then(procfs::cpu_ticks),
    }
}

async fn send(worker: &mut Worker, index: usize, text: &str) -> Result<(), SplitError> {
    if let Some(stdin) = worker.stdin.as_mut() {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| SplitError::Pipe(index, e))?;
        stdin
            .flush()
            .await
            .map_err(|e| SplitError::Pipe(index, e))?;
    }
    Ok(())
}

/// Takes in one event of worker `index`: its state, its tally, its end.
fn apply(workers: &mut [Worker], index: usize, event: Event, stats: &Stats, merged: &mut Tally) {
    let Some(worker) = workers.get_mut(index) else {
        return;
    };
    match event {
        Event::Line(WorkerLine::Ready) => worker.ready = true,
        Event::Line(WorkerLine::Progress { tick }) => worker.tick = tick,
        Event::Line(WorkerLine::Done {
            tally,
            answered_at_end,
            commands_at_end,
            online_at_end,
        }) => {
            worker.done = Some((answered_at_end, commands_at_end, online_at_end));
            if let Err(e) = merged.merge(*tally) {
                stats.error(format!("worker_merge:{e}"));
            }
        }
        Event::Garbled(line) => {
            eprintln!("voltgate-sim: worker {index} wrote an unexpected line: {line}");
            stats.error("worker_garbled_output");
        }
        Event::Exited(code) => {
            worker.exited = true;
            worker.stdin = None;
            if worker.done.is_none() {
                stats.error("worker_died");
            } else if code != Some(0) {
                stats.error(format!("worker_exit:{code:?}"));
            }
        }
    }
}

/// Starts one worker per share of `whole`, runs them together and reports them as one run.
/// `program` is this simulator's binary; `plan` the plan of the whole run; `stats` what the
/// parent itself measured (registration), added to the workers' tallies.
pub async fn run_split(
    program: &Path,
    whole: &Cli,
    plan: &Plan,
    processes: u32,
    stats: Arc<Stats>,
) -> Result<RunReport, SplitError> {
    let shares = shares(
        plan.first_index,
        plan.chargers,
        processes,
        plan.ramp_per_second,
        whole.commands,
        whole.max_in_flight,
    );
    let (events_tx, mut events) = mpsc::unbounded_channel::<(usize, Event)>();
    let mut readers = tokio::task::JoinSet::new();
    let mut workers: Vec<Worker> = Vec::with_capacity(shares.len());
    for (index, share) in shares.iter().enumerate() {
        let mut child = Command::new(program)
            .arg("--worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(SplitError::Spawn)?;
        let mut worker = Worker {
            pid: child.id(),
            stdin: child.stdin.take(),
            ..Worker::default()
        };
        let spec = serde_json::to_string(&WorkerSpec::for_share(whole, share))
            .map_err(|e| SplitError::Spec(e.to_string()))?;
        send(&mut worker, index, &format!("{spec}\n")).await?;
        let stdout = child.stdout.take();
        let tx = events_tx.clone();
        readers.spawn(async move {
            if let Some(stdout) = stdout {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let event = match serde_json::from_str::<WorkerLine>(&line) {
                        Ok(parsed) => Event::Line(parsed),
                        Err(_) => Event::Garbled(line),
                    };
                    let _ = tx.send((index, event));
                }
            }
            let code = child.wait().await.ok().and_then(|s| s.code());
            let _ = tx.send((index, Event::Exited(code)));
        });
        workers.push(worker);
    }
    drop(events_tx);

    let mut merged = Tally::default();

    // every worker set up before anyone connects
    let setup_deadline = Instant::now() + SETUP_TIMEOUT;
    while let Some(waiting) = workers.iter().position(|w| !w.ready) {
        match tokio::time::timeout_at(setup_deadline, events.recv()).await {
            Ok(Some((index, Event::Exited(code)))) => {
                return Err(SplitError::NotReady(index, code))
            }
            Ok(Some((index, event))) => apply(&mut workers, index, event, &stats, &mut merged),
            Ok(None) | Err(_) => return Err(SplitError::NotReady(waiting, None)),
        }
    }
    let rss_before = plan.watch_pid.and_then(procfs::rss_kib);
    let start = mark(&workers, plan.watch_pid);
    for (index, worker) in workers.iter_mut().enumerate() {
        send(worker, index, "go\n").await?;
    }
    let deadline = start.at + plan.duration;

    let mut steady_watch = SteadyWatch::default();
    let mut steady: Option<Mark> = None;
    let mut rss_steady = None;
    let mut end: Option<Mark> = None;
    let mut rss_peak = None;
    let mut last = start;
    let mut beat = 0u64;
    let mut next_tick = start.at + Duration::from_millis(250);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut interrupted_once = false;
    loop {
        if workers.iter().all(|w| w.exited) {
            break;
        }
        let give_up = deadline + STOP_GRACE;
        // during the run: the next tick or the end of the duration; after it, only events
        let wake = if end.is_some() {
            give_up
        } else {
            next_tick.min(deadline)
        };
        tokio::select! {
            event = events.recv() => match event {
                Some((index, event)) => apply(&mut workers, index, event, &stats, &mut merged),
                None => break,
            },
            _ = tokio::time::sleep_until(wake) => {}
            _ = &mut interrupted, if !interrupted_once => {
                // end early, with a report: workers stop (and note it) when their input
                // closes
                interrupted_once = true;
                for worker in &mut workers {
                    worker.stdin = None;
                }
            }
        }
        let now = Instant::now();
        if now >= give_up {
            stats.error("worker_did_not_stop");
            readers.abort_all();
            break;
        }
        if (now >= deadline || interrupted_once) && end.is_none() {
            end = Some(mark(&workers, plan.watch_pid));
            rss_peak = plan.watch_pid.and_then(procfs::peak_rss_kib);
            end_progress(plan.progress);
        }
        if now < next_tick || end.is_some() {
            continue;
        }
        next_tick = now + Duration::from_millis(250);
        let sum = total(&workers);
        if steady_watch.observe(now, sum.online, sum.booted, plan.chargers) {
            steady = Some(mark(&workers, plan.watch_pid));
            rss_steady = plan.watch_pid.and_then(procfs::rss_kib);
        }
        beat += 1;
        if plan.progress && beat % 4 == 0 {
            let current = mark(&workers, None);
            let secs = current.at.duration_since(last.at).as_secs_f64().max(0.001);
            let msg_rate = current.answered.saturating_sub(last.answered) as f64 / secs;
            let cmd_rate = current.commands.saturating_sub(last.commands) as f64 / secs;
            last = current;
            let sum = Tick {
                errors: sum.errors + stats.error_count(),
                ..sum
            };
            progress_line(
                now.duration_since(start.at),
                plan.chargers,
                &sum,
                msg_rate,
                cmd_rate,
            );
        }
    }
    while let Ok((index, event)) = events.try_recv() {
        apply(&mut workers, index, event, &stats, &mut merged);
    }
    for worker in workers.iter().filter(|w| !w.exited) {
        if worker.done.is_none() {
            stats.error("worker_died");
        }
    }

    // the end of the duration: counters as each worker read them then (exact), CPU times
    // as the parent read them then
    let mut end = end.unwrap_or_else(|| mark(&workers, plan.watch_pid));
    end.answered = workers
        .iter()
        .map(|w| w.done.map_or(w.tick.answered, |d| d.0))
        .sum();
    end.commands = workers
        .iter()
        .map(|w| w.done.map_or(w.tick.commands, |d| d.1))
        .sum();
    let online_at_end = workers
        .iter()
        .map(|w| w.done.map_or(w.tick.online, |d| d.2))
        .sum();
    let record = RunRecord {
        chargers: plan.chargers,
        processes: u32::try_from(workers.len()).unwrap_or(u32::MAX),
        versions: plan.versions,
        closed_loop: plan.closed_loop,
        start,
        steady,
        end,
        all_online_at: steady_watch.all_online_at,
        online_at_end,
        watched: plan.watch_pid.map(|pid| WatchedMemory {
            pid,
            rss_kib_before: rss_before,
            rss_kib_steady: rss_steady,
            rss_kib_peak: rss_peak,
        }),
        tally: {
            let mut tally = stats.tally();
            if let Err(e) = tally.merge(merged) {
                stats.error(format!("worker_merge:{e}"));
                tally = stats.tally();
            }
            tally
        },
    };
    Ok(record.report())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn one_process_until_the_file_limit_is_reached() {
        let limit = Some(20_000);
        assert_eq!(processes_needed(19_000, 0, limit).unwrap(), 1);
        assert_eq!(processes_needed(19_900, 0, limit).unwrap(), 1);
        assert_eq!(processes_needed(19_901, 0, limit).unwrap(), 2);
        // the operator load's connections count too
        assert_eq!(processes_needed(19_000, 1024, limit).unwrap(), 2);
        assert_eq!(processes_needed(100_000, 0, limit).unwrap(), 6);
        assert_eq!(processes_needed(1_000_000, 0, None).unwrap(), 1);
        for (n, api, limit) in [(19_901, 0, 20_000), (50_000, 4096, 1024), (7, 3, 103)] {
            let k = processes_needed(n, api, Some(limit)).unwrap();
            assert!(files_per_process(n, api, k) <= limit, "{n} {api} {limit}");
            assert!(
                k == 1 || files_per_process(n, api, k - 1) > limit,
                "{n} {api} {limit}"
            );
        }
        assert!(matches!(
            processes_needed(10, 0, Some(FILE_RESERVE + 1)),
            Err(SplitError::LimitTooLow { .. })
        ));
        // more API connections per process than the limit leaves, however many processes
        assert!(processes_needed(2, 10_000, Some(200)).is_err());
    }

    #[test]
    fn shares_cover_every_charger_once_and_add_up_to_the_rates() {
        let parts = shares(1, 19_001, 3, 2_500.0, 300.0, 1024);
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts.iter().map(|s| s.chargers).collect::<Vec<_>>(),
            [6_334, 6_334, 6_333]
        );
        let mut next = 1;
        for (share, offset) in parts.iter().zip([0, 6_334, 12_668]) {
            assert_eq!(share.first_index, next);
            assert_eq!(share.offset, offset);
            next += share.chargers;
            assert_eq!(share.max_in_flight, 342);
        }
        assert_eq!(next, 19_002);
        let ramp: f64 = parts.iter().map(|s| s.ramp).sum();
        let commands: f64 = parts.iter().map(|s| s.commands).sum();
        assert!((ramp - 2_500.0).abs() < 1e-6 && (commands - 300.0).abs() < 1e-9);
        // every share ramps up over the same time
        for share in &parts {
            assert!((f64::from(share.chargers) / share.ramp - 19_001.0 / 2_500.0).abs() < 1e-6);
        }
        // never more processes than chargers
        assert_eq!(shares(5, 2, 4, 0.0, 0.0, 8).len(), 2);
    }

    #[test]
    fn a_worker_spec_carries_its_share_and_sources_go_round_as_in_one_process() {
        let whole = Cli::try_parse_from([
            "voltgate-sim",
            "--chargers",
            "10",
            "--register",
            "site",
            "--watch-pid",
            "1",
            "--api-token",
            "secret",
            "--source-addrs",
            "127.0.0.1-127.0.0.4",
        ])
        .unwrap();
        let parts = shares(1, 10, 2, 10.0, 0.0, 16);
        let spec = WorkerSpec::for_share(&whole, &parts[1]);
        let spec: WorkerSpec =
            serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!((spec.cli.chargers, spec.cli.first_index), (5, 6));
        assert!(spec.cli.register.is_none() && spec.cli.watch_pid.is_none());
        assert_eq!(spec.cli.api_token.as_deref(), Some("secret"));
        assert_eq!(spec.cli.processes, Some(1));
        let all = whole.source_addrs().unwrap();
        let mut mine = spec.cli.source_addrs().unwrap();
        spec.rotate_sources(&mut mine);
        // charger n of this share is charger 5 + n of the whole run
        for n in 0..5 {
            assert_eq!(mine[n % mine.len()], all[(5 + n) % all.len()]);
        }
    }

    #[test]
    fn a_worker_that_stops_without_its_tally_fails_the_run() {
        let stats = Stats::new();
        let mut merged = Tally::default();
        let mut workers: Vec<Worker> = (0..3).map(|_| Worker::default()).collect();
        let worker_stats = Stats::new();
        worker_stats.booted(Duration::from_millis(2));
        let done = || {
            Event::Line(WorkerLine::Done {
                tally: Box::new(worker_stats.tally()),
                answered_at_end: 5,
                commands_at_end: 0,
                online_at_end: 1,
            })
        };
        apply(&mut workers, 0, done(), &stats, &mut merged);
        apply(&mut workers, 0, Event::Exited(Some(0)), &stats, &mut merged);
        assert_eq!(stats.error_count(), 0);
        apply(&mut workers, 1, Event::Exited(None), &stats, &mut merged);
        apply(&mut workers, 2, done(), &stats, &mut merged);
        apply(&mut workers, 2, Event::Exited(Some(1)), &stats, &mut merged);
        apply(
            &mut workers,
            2,
            Event::Garbled("?".into()),
            &stats,
            &mut merged,
        );
        let errors = stats.summary().errors;
        assert_eq!(errors.get("worker_died"), Some(&1), "{errors:?}");
        assert_eq!(errors.get("worker_exit:Some(1)"), Some(&1), "{errors:?}");
        assert_eq!(errors.get("worker_garbled_output"), Some(&1), "{errors:?}");
        assert_eq!(merged.counters.booted, 2);
        assert!(workers.iter().all(|w| w.exited));
    }
}
