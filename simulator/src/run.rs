//! One load run: starts the chargers at the ramp rate, keeps the operator load going, shows
//! a live progress line, finds the steady window (every charger online) to measure
//! throughput and costs over, stops everything cleanly at the end and returns the report.
//! The record a run keeps before it becomes a report is public, so that a run split over
//! several processes can be reported from the records of all of them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use voltgate_ocpp::OcppVersion;

use crate::driver::{run_charger, wall_clock, Directory, DriverConfig, TaskContext};
use crate::model::{Charger, ChargerSpec, SessionPlan};
use crate::operator::{command_load, ApiConfig, CommandLoad};
use crate::procfs;
use crate::stats::{Stats, Summary, Tally};

/// Which OCPP version each charger speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VersionMix {
    Only(OcppVersion),
    /// Even-numbered chargers 1.6, odd-numbered 2.0.1.
    Mixed,
}

impl VersionMix {
    pub fn version_of(self, index: u32) -> OcppVersion {
        match self {
            VersionMix::Only(v) => v,
            VersionMix::Mixed if index % 2 == 0 => OcppVersion::V16,
            VersionMix::Mixed => OcppVersion::V201,
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub chargers: u32,
    /// Number of the first charger (several processes share one id space).
    pub first_index: u32,
    /// New connections per second; 0 starts them all at once.
    pub ramp_per_second: f64,
    pub duration: Duration,
    pub versions: VersionMix,
    pub id_prefix: String,
    pub connectors: u32,
    pub heartbeat_s: Option<u32>,
    pub meter_interval_s: u32,
    pub password: Option<String>,
    pub sessions: Option<SessionPlan>,
    pub closed_loop: bool,
    pub boot_on_reconnect: bool,
    /// Every charger drops its connection at this point of the run.
    pub storm_at: Option<Duration>,
    /// A process (the gateway) whose CPU time and memory the report includes.
    pub watch_pid: Option<u32>,
    pub progress: bool,
    pub seed: u64,
}

impl Plan {
    /// The id and version of every charger of this run.
    pub fn chargers(&self) -> Vec<(String, OcppVersion)> {
        (self.first_index..self.first_index + self.chargers)
            .map(|i| (self.charger_id(i), self.versions.version_of(i)))
            .collect()
    }

    pub fn charger_id(&self, index: u32) -> String {
        format!("{}{:06}", self.id_prefix, index)
    }

    /// The model of charger number `index`.
    pub fn spec(&self, index: u32) -> ChargerSpec {
        let mut spec = ChargerSpec::new(self.charger_id(index), self.versions.version_of(index));
        spec.connectors = self.connectors;
        spec.serial = format!("SN{index:08}");
        if let Some(heartbeat) = self.heartbeat_s {
            spec.heartbeat_interval_s = heartbeat;
            spec.fixed_heartbeat = true;
        }
        spec.meter_interval_s = self.meter_interval_s;
        spec.password = self.password.clone();
        spec.sessions = self.sessions.clone();
        spec.closed_loop = self.closed_loop;
        spec.boot_on_reconnect = self.boot_on_reconnect;
        spec.seed = self.seed ^ u64::from(index).wrapping_mul(0x9E37_79B9);
        spec
    }
}

/// Costs of the watched process (the gateway) over the steady window.
#[derive(Debug, Clone, Serialize)]
pub struct WatchedProcess {
    pub pid: u32,
    pub rss_kib_before: Option<u64>,
    pub rss_kib_steady: Option<u64>,
    pub rss_kib_peak: Option<u64>,
    /// (steady − before) / chargers online.
    pub kib_per_connection: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub cpu_us_per_message: Option<f64>,
    /// Share of one core used over the window.
    pub cpu_cores: Option<f64>,
}

/// Throughput over the run and over the steady window.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub elapsed_s: f64,
    /// Seconds from the start until every charger was online and booted (None: never).
    pub all_online_after_s: Option<f64>,
    pub window_s: f64,
    /// Charger CALLs answered per second over the steady window.
    pub messages_per_s: f64,
    /// The same over the whole run.
    pub messages_per_s_overall: f64,
    /// Operator commands sent per second over the steady window.
    pub commands_per_s: f64,
    pub commands_per_s_overall: f64,
    /// Simulator CPU time per answered message, in µs.
    pub sim_cpu_us_per_message: Option<f64>,
    pub sim_cpu_cores: Option<f64>,
}

/// Everything a run found.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub chargers: u32,
    /// Simulator processes the chargers were spread over.
    pub processes: u32,
    pub versions: String,
    pub closed_loop: bool,
    pub throughput: Throughput,
    pub gateway: Option<WatchedProcess>,
    pub summary: Summary,
    /// Lost or refused anything: the run fails.
    pub failed: bool,
    /// Why the run stopped early: no charger could connect, and why (see [`give_up_reason`]).
    pub aborted: Option<String>,
}

/// The error kind that records a run given up because no charger could connect; the kind of
/// the connection failure follows it.
pub const GAVE_UP: &str = "gave_up:no_charger_connected:";

/// Failed connections (or every charger, when fewer) before a run where none connected, all
/// for a reason that waiting does not fix, is given up.
const GIVE_UP_AFTER: u64 = 3;

/// `Some(kind)` when no charger has connected, at least [`GIVE_UP_AFTER`] attempts (or one per
/// charger) failed, and every failure was one that retrying does not fix: nothing listening,
/// a 4xx answer to the handshake, no common subprotocol, a failed TLS handshake.
pub fn give_up_reason(
    chargers: u32,
    made: u64,
    failed: u64,
    errors: &BTreeMap<String, u64>,
) -> Option<String> {
    if made > 0 || failed < GIVE_UP_AFTER.min(u64::from(chargers)) {
        return None;
    }
    let connect_errors: Vec<&String> = errors
        .keys()
        .filter(|kind| kind.starts_with("connect:") || kind.starts_with("handshake:"))
        .collect();
    let lasting = |kind: &str| {
        kind == "connect:refused"
            || kind == "connect:tls"
            || kind == "handshake:subprotocol"
            || kind.starts_with("handshake:http_4")
    };
    let first = connect_errors.first()?;
    connect_errors
        .iter()
        .all(|kind| lasting(kind))
        .then(|| (*first).clone())
}

/// What a connection failure kind means for someone setting up a run.
pub fn explain_connect_failure(kind: &str) -> String {
    let hint = match kind {
        "connect:refused" => "nothing listens at --url",
        "connect:tls" => "the TLS handshake failed: check the wss:// URL and --ca-file",
        "handshake:subprotocol" => "the gateway speaks none of the --ocpp versions asked for",
        "handshake:http_401" => {
            "the gateway does not know the charger or refused its credentials: check --password, \
             --register SCOPE, or the gateway's --auto-register"
        }
        "handshake:http_403" => {
            "the gateway refused the charger (pending approval, blocked, or a scope that cannot \
             hold chargers)"
        }
        "handshake:http_404" => "no such path: check the path of --url (e.g. /ocpp)",
        "handshake:http_429" => "the gateway throttles this address after failed attempts",
        _ => "the gateway refused the connection",
    };
    format!("no charger could connect ({kind}): {hint}")
}

/// Counters and CPU times read at one moment of a run.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub at: Instant,
    /// Charger CALLs answered so far.
    pub answered: u64,
    /// Operator commands sent so far.
    pub commands: u64,
    /// CPU time of the simulator (all its processes), in clock ticks.
    pub own_ticks: Option<u64>,
    /// CPU time of the watched process, in clock ticks.
    pub watched_ticks: Option<u64>,
}

impl Mark {
    fn of(stats: &Stats, watch_pid: Option<u32>) -> Mark {
        Mark {
            at: Instant::now(),
            answered: Stats::get(&stats.calls_answered),
            commands: Stats::get(&stats.commands_sent),
            own_ticks: procfs::cpu_ticks(std::process::id()),
            watched_ticks: watch_pid.and_then(procfs::cpu_ticks),
        }
    }
}

/// Resident memory of the watched process at the points of the run that matter.
#[derive(Debug, Clone, Copy)]
pub struct WatchedMemory {
    pub pid: u32,
    pub rss_kib_before: Option<u64>,
    pub rss_kib_steady: Option<u64>,
    pub rss_kib_peak: Option<u64>,
}

/// The state of a run at one tick of its watch loop (four a second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub online: u64,
    pub booted: u64,
    pub answered: u64,
    pub commands: u64,
    pub errors: u64,
}

/// What a run recorded, before it becomes a [`RunReport`]. A run split over several
/// processes builds one of these from all of them.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub chargers: u32,
    pub processes: u32,
    pub versions: VersionMix,
    pub closed_loop: bool,
    pub start: Mark,
    /// One second after every charger was online and booted (the steady window's start).
    pub steady: Option<Mark>,
    /// The end of the run's duration, before the chargers are stopped.
    pub end: Mark,
    pub all_online_at: Option<Instant>,
    pub online_at_end: u64,
    pub watched: Option<WatchedMemory>,
    pub tally: Tally,
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / procfs::TICKS_PER_SECOND as f64
}

impl RunRecord {
    /// Throughput and costs over the steady window, and the verdict.
    pub fn report(self) -> RunReport {
        let (start, end) = (self.start, self.end);
        let elapsed = end.at.duration_since(start.at).as_secs_f64().max(0.001);
        let window_start = self.steady.unwrap_or(start);
        let window = end
            .at
            .duration_since(window_start.at)
            .as_secs_f64()
            .max(0.001);
        let window_messages = end.answered.saturating_sub(window_start.answered);
        let per_message = |ticks: Option<(u64, u64)>| {
            ticks.and_then(|(a, b)| {
                (window_messages > 0)
                    .then(|| ticks_to_seconds(b.saturating_sub(a)) * 1e6 / window_messages as f64)
            })
        };
        let own = window_start.own_ticks.zip(end.own_ticks);
        let watched = window_start.watched_ticks.zip(end.watched_ticks);
        let throughput = Throughput {
            elapsed_s: elapsed,
            all_online_after_s: self
                .all_online_at
                .map(|s| s.duration_since(start.at).as_secs_f64()),
            window_s: window,
            messages_per_s: window_messages as f64 / window,
            messages_per_s_overall: end.answered.saturating_sub(start.answered) as f64 / elapsed,
            commands_per_s: end.commands.saturating_sub(window_start.commands) as f64 / window,
            commands_per_s_overall: end.commands.saturating_sub(start.commands) as f64 / elapsed,
            sim_cpu_us_per_message: per_message(own),
            sim_cpu_cores: own.map(|(a, b)| ticks_to_seconds(b.saturating_sub(a)) / window),
        };
        let chargers = self.chargers;
        let online_at_end = self.online_at_end;
        let gateway = self.watched.map(|m| WatchedProcess {
            pid: m.pid,
            rss_kib_before: m.rss_kib_before,
            rss_kib_steady: m.rss_kib_steady,
            rss_kib_peak: m.rss_kib_peak,
            kib_per_connection: m.rss_kib_before.zip(m.rss_kib_steady).and_then(
                |(before, steady)| {
                    (online_at_end > 0)
                        .then(|| steady.saturating_sub(before) as f64 / f64::from(chargers))
                },
            ),
            cpu_seconds: watched.map(|(a, b)| ticks_to_seconds(b.saturating_sub(a))),
            cpu_us_per_message: per_message(watched),
            cpu_cores: watched.map(|(a, b)| ticks_to_seconds(b.saturating_sub(a)) / window),
        });
        let mut summary = self.tally.summary();
        if self.all_online_at.is_none() && chargers > 0 {
            *summary
                .errors
                .entry("not_all_chargers_online".to_owned())
                .or_insert(0) += 1;
        }
        let failed = !summary.errors.is_empty();
        let aborted = summary
            .errors
            .keys()
            .find_map(|kind| kind.strip_prefix(GAVE_UP))
            .map(explain_connect_failure);
        RunReport {
            chargers,
            processes: self.processes,
            versions: match self.versions {
                VersionMix::Only(v) => v.to_string(),
                VersionMix::Mixed => "mixed".into(),
            },
            closed_loop: self.closed_loop,
            throughput,
            gateway,
            summary,
            failed,
            aborted,
        }
    }
}

/// Tracks when every charger is online and booted, and when the steady window (one second
/// later, once the boot burst has settled) starts.
#[derive(Debug, Default)]
pub struct SteadyWatch {
    pub all_online_at: Option<Instant>,
    steady_taken: bool,
}

impl SteadyWatch {
    /// True exactly once: at the first tick a second or more after everyone came online.
    pub fn observe(&mut self, now: Instant, online: u64, booted: u64, chargers: u32) -> bool {
        if online == u64::from(chargers) && booted >= u64::from(chargers) {
            let since = *self.all_online_at.get_or_insert(now);
            if !self.steady_taken && now.duration_since(since) >= Duration::from_secs(1) {
                self.steady_taken = true;
                return true;
            }
        }
        false
    }
}

/// The progress line on stderr: redrawn in place (carriage return) on a terminal, a line of
/// its own otherwise, so CI logs get one readable line per second.
pub fn progress_line(elapsed: Duration, chargers: u32, tick: &Tick, msg_rate: f64, cmd_rate: f64) {
    let line = format!(
        "[{:>5.0}s] online {}/{chargers} booted {} | {msg_rate:>8.0} msg/s | {cmd_rate:>6.0} cmd/s | errors {}",
        elapsed.as_secs_f64(),
        tick.online,
        tick.booted,
        tick.errors,
    );
    let mut err = std::io::stderr().lock();
    let _ = if progress_redraws() {
        write!(err, "\r{line}   ")
    } else {
        writeln!(err, "{line}")
    };
    let _ = err.flush();
}

/// Whether progress is redrawn in place (stderr is a terminal).
pub fn progress_redraws() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// Ends the redrawn progress line, if there is one.
pub fn end_progress(progress: bool) {
    if progress && progress_redraws() {
        eprintln!();
    }
}

/// Runs the plan against the gateway and returns the report. Ctrl-C ends the run early,
/// with a report.
pub async fn run(
    plan: Plan,
    driver: DriverConfig,
    operator: Option<(ApiConfig, CommandLoad)>,
    stats: Arc<Stats>,
) -> RunReport {
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    run_record(plan, driver, operator, stats, interrupted, |_| {})
        .await
        .report()
}

/// Runs the plan against the gateway and returns what it recorded. `interrupted` ends the
/// run early; `on_tick` sees the state of the run four times a second.
pub async fn run_record(
    plan: Plan,
    driver: DriverConfig,
    operator: Option<(ApiConfig, CommandLoad)>,
    stats: Arc<Stats>,
    interrupted: impl std::future::Future<Output = ()>,
    mut on_tick: impl FnMut(&Tick),
) -> RunRecord {
    let directory = Arc::new(Directory::new(plan.chargers()));
    let driver = Arc::new(driver);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (operator_stop_tx, operator_stop_rx) = watch::channel(false);
    let (storm_tx, storm_rx) = watch::channel(0u64);
    let rss_before = plan.watch_pid.and_then(procfs::rss_kib);
    let start = Mark::of(&stats, plan.watch_pid);
    let deadline = start.at + plan.duration;

    let mut chargers = tokio::task::JoinSet::new();
    let spawn_period =
        (plan.ramp_per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / plan.ramp_per_second));
    let mut spawned: u32 = 0;
    let spawn_charger = |chargers: &mut tokio::task::JoinSet<()>, n: u32| {
        let index = plan.first_index + n;
        let model = Charger::new(plan.spec(index), wall_clock());
        let ctx = TaskContext {
            cfg: Arc::clone(&driver),
            stats: Arc::clone(&stats),
            directory: Arc::clone(&directory),
            stop: stop_rx.clone(),
            storm: storm_rx.clone(),
        };
        chargers.spawn(run_charger(model, n as usize, ctx));
    };

    let operator_task = operator.map(|(api, load)| {
        let directory = Arc::clone(&directory);
        let stats = Arc::clone(&stats);
        let stop = operator_stop_rx.clone();
        tokio::spawn(async move {
            if let Err(e) = command_load(api, load, directory, stats.clone(), stop).await {
                stats.error(format!("command_load:{e}"));
            }
        })
    });

    // Watch the run: progress line, steady window, storm.
    let mut steady: Option<Mark> = None;
    let mut steady_watch = SteadyWatch::default();
    let mut rss_steady = None;
    let mut last = start;
    let mut storm_done = false;
    let mut next_tick = Instant::now();
    tokio::pin!(interrupted);
    let mut beat = 0u64;
    let online_now = || {
        directory
            .slots
            .iter()
            .filter(|s| s.online.load(Ordering::Relaxed))
            .count() as u64
    };
    loop {
        // start every charger that is due by now, then sleep until the next one or tick
        let now = Instant::now();
        while spawned < plan.chargers {
            let due = spawn_period.map_or(start.at, |p| start.at + p.mul_f64(f64::from(spawned)));
            if due > now {
                break;
            }
            spawn_charger(&mut chargers, spawned);
            spawned += 1;
        }
        if now >= deadline {
            break;
        }
        let next_spawn = (spawned < plan.chargers)
            .then(|| spawn_period.map_or(now, |p| start.at + p.mul_f64(f64::from(spawned))));
        if now < next_tick {
            let wake = next_spawn
                .map_or(next_tick, |s| s.min(next_tick))
                .min(deadline);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = &mut interrupted => {
                    stats.note("interrupted");
                    break;
                }
            }
            continue;
        }
        next_tick = now + Duration::from_millis(250);
        let tick = Tick {
            online: online_now(),
            booted: Stats::get(&stats.booted),
            answered: Stats::get(&stats.calls_answered),
            commands: Stats::get(&stats.commands_sent),
            errors: stats.error_count(),
        };
        on_tick(&tick);
        if let Some(kind) = give_up_reason(
            plan.chargers,
            Stats::get(&stats.connections_made),
            Stats::get(&stats.connections_failed),
            &stats.errors(),
        ) {
            stats.error(format!("{GAVE_UP}{kind}"));
            break;
        }
        if steady_watch.observe(now, tick.online, tick.booted, plan.chargers) {
            steady = Some(Mark::of(&stats, plan.watch_pid));
            rss_steady = plan.watch_pid.and_then(procfs::rss_kib);
        }
        if let Some(at) = plan.storm_at {
            if !storm_done && now >= start.at + at {
                storm_done = true;
                storm_tx.send_modify(|n| *n += 1);
            }
        }
        beat += 1;
        if plan.progress && beat % 4 == 0 {
            let current = Mark::of(&stats, None);
            let secs = current.at.duration_since(last.at).as_secs_f64().max(0.001);
            let msg_rate = (current.answered - last.answered) as f64 / secs;
            let cmd_rate = (current.commands - last.commands) as f64 / secs;
            last = current;
            progress_line(
                now.duration_since(start.at),
                plan.chargers,
                &tick,
                msg_rate,
                cmd_rate,
            );
        }
    }
    let end = Mark::of(&stats, plan.watch_pid);
    let rss_peak = plan.watch_pid.and_then(procfs::peak_rss_kib);
    let online_at_end = online_now();
    end_progress(plan.progress);

    // Stop: first the operator load (its commands in flight still find their chargers),
    // then the chargers, which finish their outstanding CALL and close.
    let _ = operator_stop_tx.send(true);
    if let Some(task) = operator_task {
        let _ = task.await;
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(15), async {
        while chargers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        stats.error("chargers_did_not_stop");
        chargers.abort_all();
    }

    RunRecord {
        chargers: plan.chargers,
        processes: 1,
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
        tally: stats.tally(),
    }
}
