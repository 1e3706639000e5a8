//! The charger model: one simulated charge point as a pure state machine, with no sockets and
//! no clock, so every behaviour can be driven and checked step by step in tests.
//!
//! The caller (the networked driver, or a test) feeds it what happens — the connection came
//! up or went down, a CALL arrived from the central system, the answer to the charger's own
//! CALL arrived, time passed — always passing the current time. The model answers CALLs at
//! once, queues the messages a real charger would send next (one outstanding CALL at a time,
//! handed out by [`Charger::next_call`]), tells when it next wants to be woken
//! ([`Charger::next_wakeup`]) and raises [`Event`]s the driver must act on (a reboot closes
//! and reopens the connection).
//!
//! Behaviour common to both versions (connectors, transactions, metering, availability,
//! charging profiles, local authorisation, firmware and log jobs, resets) lives here; the
//! payload shapes of each version live in `v16` and `v201`.

pub mod auth;
pub mod clock;
mod closed_loop;
pub mod config;
pub mod fields;
pub mod profiles;
pub mod rng;
mod v16;
mod v201;

use std::collections::{HashMap, VecDeque};

use serde_json::Value;
use voltgate_ocpp::{ErrorCode, OcppVersion};

use self::auth::{AuthCache, LocalList, TokenInfo};
pub use self::clock::Millis;
pub use self::config::LocalListLimits;
use self::config::{ConfigDefaults, ConfigStore, Setting};
use self::fields::Fault;
use self::profiles::{ProfileSet, TxContext, DEFAULT_PHASES, NOMINAL_VOLTAGE};
use self::rng::SplitMix64;

/// Below this offered current an EV cannot charge (IEC 61851 minimum): the connector
/// reports SuspendedEVSE.
pub const MIN_CHARGING_AMPS: f64 = 6.0;
/// How many messages the charger keeps queued while the gateway is unreachable.
const MAX_QUEUED: usize = 2_000;

/// How long the simulated world takes for things that are not protocol messages.
#[derive(Debug, Clone)]
pub struct Timings {
    /// Wait before retrying a BootNotification that failed, or was answered with interval 0.
    pub boot_retry_ms: u64,
    /// Time between the stages of a firmware update or a log upload.
    pub step_ms: u64,
    /// How long a reboot keeps the charger off the network.
    pub reboot_ms: u64,
    /// After a remote start, how long until the driver has plugged in.
    pub ev_plug_ms: u64,
    /// After plugging in, how long until the driver shows their card.
    pub token_ms: u64,
    /// After a transaction ends, how long until the driver unplugs and leaves.
    pub unplug_ms: u64,
    /// How long a soft reset waits for its stop messages to be delivered.
    pub flush_timeout_ms: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            boot_retry_ms: 10_000,
            step_ms: 1_000,
            reboot_ms: 2_000,
            ev_plug_ms: 500,
            token_ms: 1_000,
            unplug_ms: 2_000,
            flush_timeout_ms: 10_000,
        }
    }
}

/// Drivers arriving on their own: each connector sees an EV plug in at random (exponential
/// gaps), the driver presents `id_tag`, charges for `length_ms` and leaves.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    pub id_tag: String,
    pub mean_gap_ms: u64,
    pub length_ms: u64,
}

/// Everything that makes one simulated charger what it is.
#[derive(Debug, Clone)]
pub struct ChargerSpec {
    pub id: String,
    pub version: OcppVersion,
    /// 1.6 connectors, or 2.0.1 EVSEs with one connector each.
    pub connectors: u32,
    pub vendor: String,
    pub model: String,
    pub serial: String,
    pub firmware: String,
    /// Heartbeat interval until the gateway's BootNotification answer sets one.
    pub heartbeat_interval_s: u32,
    /// Keep `heartbeat_interval_s` whatever interval the gateway's answer carries.
    pub fixed_heartbeat: bool,
    /// Meter value sample interval during transactions (0: none).
    pub meter_interval_s: u32,
    /// HTTP Basic password, when the gateway requires one.
    pub password: Option<String>,
    /// Hardware current limit per connector.
    pub max_current_a: f64,
    /// What the simulated EV would draw given the chance.
    pub ev_current_a: f64,
    pub timings: Timings,
    pub sessions: Option<SessionPlan>,
    /// Send Heartbeat, StatusNotification and MeterValues back to back once booted (one
    /// outstanding CALL), for throughput measurement.
    pub closed_loop: bool,
    /// Boot again on every new connection, not only after a reboot.
    pub boot_on_reconnect: bool,
    /// What SendLocalList may carry and the list may hold.
    pub local_list: LocalListLimits,
    pub seed: u64,
}

impl ChargerSpec {
    /// A charger with two connectors and everyday defaults.
    pub fn new(id: impl Into<String>, version: OcppVersion) -> ChargerSpec {
        ChargerSpec {
            id: id.into(),
            version,
            connectors: 2,
            vendor: "VoltgateSim".into(),
            model: "SimCharger-22".into(),
            serial: "SIM-000001".into(),
            firmware: "1.0.0".into(),
            heartbeat_interval_s: 300,
            fixed_heartbeat: false,
            meter_interval_s: 60,
            password: None,
            max_current_a: 32.0,
            ev_current_a: 32.0,
            timings: Timings::default(),
            sessions: None,
            closed_loop: false,
            boot_on_reconnect: true,
            local_list: LocalListLimits::default(),
            seed: 1,
        }
    }
}

/// A CALL the charger wants to send now.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundCall {
    pub action: &'static str,
    pub payload: Payload,
}

/// A CALL payload: a JSON value, or JSON text written directly (the closed-loop hot path).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Json(Value),
    Text(String),
}

impl Payload {
    /// The payload as a JSON value (parsing text; `Null` if it were not JSON).
    pub fn to_value(&self) -> Value {
        match self {
            Payload::Json(v) => v.clone(),
            Payload::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        }
    }

    /// Appends the payload's JSON text.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Payload::Json(v) => out.push_str(&v.to_string()),
            Payload::Text(t) => out.push_str(t),
        }
    }
}

/// The charger's answer to a CALL from the central system.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Result(Value),
    Error {
        code: ErrorCode,
        description: String,
    },
}

impl From<Fault> for Answer {
    fn from(fault: Fault) -> Self {
        Answer::Error {
            code: fault.code,
            description: fault.description,
        }
    }
}

/// Something the driver must do for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Close the connection, stay away for this long, then connect again.
    Reboot { reconnect_after_ms: u64 },
    /// The set of running transactions changed.
    TransactionsChanged,
}

/// Where the charger stands with the central system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    NotBooted,
    Pending,
    Accepted,
    Rejected,
}

/// Why the charger (re)booted, as 2.0.1 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootReason {
    PowerUp,
    RemoteReset,
    FirmwareUpdate,
    Triggered,
}

impl BootReason {
    fn as_str(self) -> &'static str {
        match self {
            BootReason::PowerUp => "PowerUp",
            BootReason::RemoteReset => "RemoteReset",
            BootReason::FirmwareUpdate => "FirmwareUpdate",
            BootReason::Triggered => "Triggered",
        }
    }
}

/// Why a transaction ended (version-neutral).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Local,
    Remote,
    EvDisconnected,
    HardReset,
    SoftReset,
    UnlockCommand,
    DeAuthorized,
}

/// One meter reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterSample {
    pub at: Millis,
    pub energy_wh: f64,
    pub power_w: f64,
    pub current_a: f64,
    pub offered_a: f64,
    /// OCPP reading context: `Sample.Periodic`, `Sample.Clock`, `Transaction.Begin`, ...
    pub context: &'static str,
}

#[derive(Debug, Clone)]
struct Grant {
    token: String,
    remote_start_id: Option<i64>,
    profile: Option<profiles::Profile>,
}

/// What a remote start request asks for, version-neutral.
#[derive(Debug, Clone)]
pub(crate) struct RemoteStart {
    pub connector: Option<u32>,
    pub token: String,
    pub token_type: Option<String>,
    pub remote_start_id: Option<i64>,
    pub profile: Option<profiles::Profile>,
}

/// The outcome of a ChangeAvailability request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AvailabilityOutcome {
    Accepted,
    Scheduled,
    Rejected,
}

#[derive(Debug, Clone)]
struct Transaction {
    local_id: u64,
    /// 2.0.1 transaction id (generated here); for 1.6 the gateway's id arrives later.
    uid: String,
    token: String,
    started: Millis,
    seq_no: u64,
    remote_start_id: Option<i64>,
    deauthorized: bool,
    next_sample: Option<Millis>,
    last_charging_state: &'static str,
}

#[derive(Debug, Clone)]
struct Connector {
    id: u32,
    operative: bool,
    scheduled_operative: Option<bool>,
    plugged: bool,
    locked: bool,
    faulted: bool,
    finishing: bool,
    grant: Option<Grant>,
    grant_deadline: Option<Millis>,
    awaiting_auth: Option<String>,
    tx: Option<Transaction>,
    energy_wh: f64,
    energy_at: Millis,
    reported_status: Option<&'static str>,
    ev_plug_at: Option<Millis>,
    token_at: Option<Millis>,
    ev_stop_at: Option<Millis>,
    ev_leave_at: Option<Millis>,
}

/// A message the charger will send, kept as data and rendered into a payload only when it
/// goes out (a 1.6 StopTransaction queued offline learns its transaction id late).
#[derive(Debug, Clone)]
enum Outgoing {
    Boot,
    Heartbeat,
    Status {
        connector: u32,
        status: &'static str,
        at: Millis,
    },
    Authorize {
        connector: u32,
        token: String,
        remote: Option<Box<Grant>>,
    },
    StartTx {
        connector: u32,
        local_id: u64,
        token: String,
        meter_start: i64,
        at: Millis,
    },
    StopTx {
        local_id: u64,
        token: Option<String>,
        meter_stop: i64,
        at: Millis,
        reason: StopReason,
    },
    Meter {
        connector: u32,
        local_id: Option<u64>,
        sample: MeterSample,
    },
    TxEvent(Box<TxEvent>),
    Firmware {
        status: &'static str,
        request_id: Option<i64>,
    },
    Diagnostics {
        status: &'static str,
    },
    Log {
        status: &'static str,
        request_id: Option<i64>,
    },
    Report {
        request_id: i64,
        seq_no: i64,
        tbc: bool,
        at: Millis,
        items: Vec<Value>,
    },
    ClosedLoop(u8),
}

impl Outgoing {
    fn is_transactional(&self) -> bool {
        matches!(
            self,
            Outgoing::StartTx { .. }
                | Outgoing::StopTx { .. }
                | Outgoing::TxEvent(_)
                | Outgoing::Meter {
                    local_id: Some(_),
                    ..
                }
        )
    }
}

#[derive(Debug, Clone)]
struct TxEvent {
    event_type: &'static str,
    uid: String,
    seq_no: u64,
    at: Millis,
    trigger: &'static str,
    evse: u32,
    charging_state: Option<&'static str>,
    stopped_reason: Option<StopReason>,
    token: Option<String>,
    remote_start_id: Option<i64>,
    sample: Option<MeterSample>,
    offline: bool,
}

#[derive(Debug, Clone)]
struct Queued {
    msg: Outgoing,
    attempts: u32,
    not_before: Millis,
}

#[derive(Debug, Clone, PartialEq)]
enum JobStep {
    Notify(&'static str),
    NotBefore(Millis),
    WhenIdle,
    SetFirmware(String),
    Reboot,
    AfterBoot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    Firmware,
    Upload,
}

#[derive(Debug, Clone)]
struct Job {
    request_id: Option<i64>,
    steps: VecDeque<JobStep>,
    next_at: Millis,
    status: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct PendingReboot {
    reason: BootReason,
    deadline: Millis,
}

/// One simulated charger.
#[derive(Debug, Clone)]
pub struct Charger {
    spec: ChargerSpec,
    config: ConfigStore,
    connectors: Vec<Connector>,
    station_operative: bool,
    reported_station_status: Option<&'static str>,
    profiles: ProfileSet,
    local_list: LocalList,
    cache: AuthCache,
    registration: Registration,
    connected: bool,
    needs_boot: bool,
    boot_reason: BootReason,
    boot_at: Option<Millis>,
    queue: VecDeque<Queued>,
    outstanding: Option<Queued>,
    next_heartbeat: Option<Millis>,
    next_aligned: Option<Millis>,
    clock_offset_ms: i64,
    firmware_version: String,
    firmware_job: Option<Job>,
    upload_job: Option<Job>,
    pending_reboot: Option<PendingReboot>,
    reset_when_idle: bool,
    events: VecDeque<Event>,
    gateway_tx_ids: HashMap<u64, i64>,
    token_types: HashMap<String, String>,
    next_local_id: u64,
    closed_loop_step: u8,
    rng: SplitMix64,
}

impl Charger {
    /// A charger that has just been powered up at `now`, not yet connected.
    pub fn new(spec: ChargerSpec, now: Millis) -> Charger {
        let defaults = ConfigDefaults {
            connectors: spec.connectors,
            heartbeat_interval_s: spec.heartbeat_interval_s,
            meter_interval_s: spec.meter_interval_s,
            password: spec.password.clone(),
            local_list: spec.local_list,
        };
        let mut rng = SplitMix64::new(spec.seed ^ 0x5EED_CAFE);
        let connectors = (1..=spec.connectors)
            .map(|id| Connector {
                id,
                operative: true,
                scheduled_operative: None,
                plugged: false,
                locked: false,
                faulted: false,
                finishing: false,
                grant: None,
                grant_deadline: None,
                awaiting_auth: None,
                tx: None,
                energy_wh: (rng.below(5_000_000) + 10_000) as f64,
                energy_at: now,
                reported_status: None,
                ev_plug_at: spec
                    .sessions
                    .as_ref()
                    .map(|p| now.plus_ms(rng.exponential_ms(p.mean_gap_ms))),
                token_at: None,
                ev_stop_at: None,
                ev_leave_at: None,
            })
            .collect();
        Charger {
            config: ConfigStore::new(spec.version, &defaults),
            firmware_version: spec.firmware.clone(),
            connectors,
            station_operative: true,
            reported_station_status: None,
            profiles: ProfileSet::default(),
            local_list: LocalList::default(),
            cache: AuthCache::default(),
            registration: Registration::NotBooted,
            connected: false,
            needs_boot: true,
            boot_reason: BootReason::PowerUp,
            boot_at: None,
            queue: VecDeque::new(),
            outstanding: None,
            next_heartbeat: None,
            next_aligned: None,
            clock_offset_ms: 0,
            firmware_job: None,
            upload_job: None,
            pending_reboot: None,
            reset_when_idle: false,
            events: VecDeque::new(),
            gateway_tx_ids: HashMap::new(),
            token_types: HashMap::new(),
            next_local_id: 1,
            closed_loop_step: 0,
            rng,
            spec,
        }
    }

    // ----- views -------------------------------------------------------------------------

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn version(&self) -> OcppVersion {
        self.spec.version
    }

    pub fn spec(&self) -> &ChargerSpec {
        &self.spec
    }

    pub fn registration(&self) -> Registration {
        self.registration
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn config(&self) -> &ConfigStore {
        &self.config
    }

    pub fn profiles(&self) -> &ProfileSet {
        &self.profiles
    }

    pub fn local_list(&self) -> &LocalList {
        &self.local_list
    }

    pub fn auth_cache(&self) -> &AuthCache {
        &self.cache
    }

    pub fn firmware_version(&self) -> &str {
        &self.firmware_version
    }

    /// The last firmware status the charger notified, `Idle` when no update is running.
    pub fn firmware_status(&self) -> &'static str {
        self.firmware_job.as_ref().map_or("Idle", |j| j.status)
    }

    /// The password for HTTP Basic auth, as last written by the gateway.
    pub fn password(&self) -> Option<&str> {
        self.config.text(Setting::BasicAuthPassword)
    }

    /// The heartbeat interval in force, in seconds.
    pub fn heartbeat_interval_s(&self) -> u64 {
        self.config.uint(Setting::HeartbeatInterval)
    }

    /// The status this connector (1.6) or EVSE (2.0.1) would report now.
    pub fn status(&self, connector: u32) -> Option<&'static str> {
        self.connector(connector).map(|c| self.derived_status(c))
    }

    /// The current the connector offers an EV now, in amps: the hardware limit lowered by
    /// charging profiles.
    pub fn offered_amps(&self, connector: u32, now: Millis) -> Option<f64> {
        self.connector(connector).map(|c| self.offered(c, now))
    }

    /// The transaction id running on a connector: 1.6 the gateway's number once known (as
    /// text), 2.0.1 the charger's own id.
    pub fn transaction_id(&self, connector: u32) -> Option<String> {
        let tx = self.connector(connector)?.tx.as_ref()?;
        self.tx_key(tx)
    }

    /// Every running transaction id (see [`Charger::transaction_id`]).
    pub fn transaction_ids(&self) -> Vec<String> {
        self.connectors
            .iter()
            .filter_map(|c| c.tx.as_ref().and_then(|t| self.tx_key(t)))
            .collect()
    }

    pub fn is_plugged(&self, connector: u32) -> bool {
        self.connector(connector).is_some_and(|c| c.plugged)
    }

    pub fn is_locked(&self, connector: u32) -> bool {
        self.connector(connector).is_some_and(|c| c.locked)
    }

    /// Whether the connector (and the station) is operative.
    pub fn is_operative(&self, connector: u32) -> bool {
        self.connector(connector).is_some_and(|c| self.operative(c))
    }

    /// The energy register of a connector, in Wh.
    pub fn energy_wh(&self, connector: u32) -> Option<f64> {
        self.connector(connector).map(|c| c.energy_wh)
    }

    /// Actions of the messages waiting to be sent, in order (for tests and diagnostics).
    pub fn queued_actions(&self) -> Vec<&'static str> {
        self.queue.iter().map(|q| self.action_of(&q.msg)).collect()
    }

    /// Whether a CALL of the charger awaits its answer.
    pub fn has_outstanding_call(&self) -> bool {
        self.outstanding.is_some()
    }

    // ----- connection --------------------------------------------------------------------

    /// The WebSocket connection is up.
    pub fn connected(&mut self, now: Millis) {
        self.advance_energy(now);
        self.connected = true;
        if self.needs_boot || self.spec.boot_on_reconnect {
            self.registration = Registration::NotBooted;
            self.boot_at = Some(now);
        } else if self.registration == Registration::Accepted {
            self.queue_all_statuses(now);
            self.schedule_heartbeat(now);
        } else {
            self.boot_at = Some(now);
        }
    }

    /// The connection went down (or was closed for a reboot).
    pub fn disconnected(&mut self, now: Millis) {
        self.advance_energy(now);
        self.connected = false;
        if let Some(out) = self.outstanding.take() {
            if out.msg.is_transactional() {
                self.queue.push_front(out);
            }
        }
        self.queue.retain(|q| q.msg.is_transactional());
        self.boot_at = None;
        self.next_heartbeat = None;
    }

    // ----- outgoing CALLs ----------------------------------------------------------------

    /// The next CALL to send, if the charger has one and none is awaiting its answer. The
    /// caller must report the answer with [`Charger::handle_result`] /
    /// [`Charger::handle_error`] / [`Charger::handle_timeout`].
    pub fn next_call(&mut self, now: Millis) -> Option<OutboundCall> {
        if self.outstanding.is_some() || !self.connected {
            return None;
        }
        if self.registration != Registration::Accepted {
            if self.boot_at.is_some_and(|at| at <= now) {
                self.boot_at = None;
                return self.send(
                    now,
                    Queued {
                        msg: Outgoing::Boot,
                        attempts: 0,
                        not_before: now,
                    },
                );
            }
            return None;
        }
        while let Some(front) = self.queue.front() {
            if front.not_before > now {
                return None;
            }
            let Some(queued) = self.queue.pop_front() else {
                break;
            };
            if let Some(call) = self.send(now, queued) {
                return Some(call);
            }
        }
        if self.spec.closed_loop {
            let step = self.closed_loop_step;
            self.closed_loop_step = (step + 1) % 3;
            return self.send(
                now,
                Queued {
                    msg: Outgoing::ClosedLoop(step),
                    attempts: 0,
                    not_before: now,
                },
            );
        }
        if self.next_heartbeat.is_some_and(|at| at <= now) {
            return self.send(
                now,
                Queued {
                    msg: Outgoing::Heartbeat,
                    attempts: 0,
                    not_before: now,
                },
            );
        }
        None
    }

    fn send(&mut self, now: Millis, queued: Queued) -> Option<OutboundCall> {
        let call = match (&queued.msg, self.spec.version) {
            (Outgoing::ClosedLoop(step), _) => {
                let (action, text) = self.closed_loop_text(*step, now)?;
                OutboundCall {
                    action,
                    payload: Payload::Text(text),
                }
            }
            (msg, OcppVersion::V16) => {
                let (action, payload) = self.render_v16(msg)?;
                OutboundCall {
                    action,
                    payload: Payload::Json(payload),
                }
            }
            (msg, OcppVersion::V201) => {
                let (action, payload) = self.render_v201(msg)?;
                OutboundCall {
                    action,
                    payload: Payload::Json(payload),
                }
            }
        };
        self.outstanding = Some(queued);
        if self.registration == Registration::Accepted {
            self.schedule_heartbeat(now);
        }
        Some(call)
    }

    fn schedule_heartbeat(&mut self, now: Millis) {
        let interval = self.heartbeat_interval_s();
        self.next_heartbeat = (interval > 0).then(|| now.plus_secs(interval));
    }

    /// The answer (CALLRESULT payload) to the outstanding CALL arrived.
    pub fn handle_result(&mut self, now: Millis, payload: &Value) {
        self.advance_energy(now);
        let Some(out) = self.outstanding.take() else {
            return;
        };
        match self.spec.version {
            OcppVersion::V16 => self.on_result_v16(now, out.msg, payload),
            OcppVersion::V201 => self.on_result_v201(now, out.msg, payload),
        }
        self.settle(now);
    }

    /// The outstanding CALL was answered with a CALLERROR.
    pub fn handle_error(&mut self, now: Millis, _code: &str, _description: &str) {
        self.call_failed(now);
    }

    /// The outstanding CALL got no answer in time.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.call_failed(now);
    }

    fn call_failed(&mut self, now: Millis) {
        self.advance_energy(now);
        let Some(mut out) = self.outstanding.take() else {
            return;
        };
        match out.msg {
            Outgoing::Boot if self.registration != Registration::Accepted => {
                self.boot_at = Some(now.plus_ms(self.spec.timings.boot_retry_ms));
            }
            ref msg if msg.is_transactional() => {
                out.attempts += 1;
                let max_attempts = self.config.uint(Setting::MessageAttempts).max(1);
                if u64::from(out.attempts) < max_attempts {
                    let interval = self.config.uint(Setting::MessageRetryInterval);
                    out.not_before = now.plus_secs(interval * u64::from(out.attempts));
                    self.queue.push_front(out);
                }
            }
            Outgoing::Authorize { connector, .. } => {
                if let Some(c) = self.connector_mut(connector) {
                    c.awaiting_auth = None;
                }
                self.auth_refused(now, connector);
            }
            _ => {}
        }
        self.settle(now);
    }

    // ----- incoming CALLs ----------------------------------------------------------------

    /// Answers a CALL from the central system, applying its effect and queueing the messages
    /// that follow it.
    pub fn handle_call(&mut self, now: Millis, action: &str, payload: &Value) -> Answer {
        self.advance_energy(now);
        let answer = match self.spec.version {
            OcppVersion::V16 => self.handle_call_v16(now, action, payload),
            OcppVersion::V201 => self.handle_call_v201(now, action, payload),
        };
        self.settle(now);
        match answer {
            Ok(value) => Answer::Result(value),
            Err(fault) => fault.into(),
        }
    }

    // ----- time ----------------------------------------------------------------------------

    /// Runs everything that is due at `now`.
    pub fn tick(&mut self, now: Millis) {
        self.advance_energy(now);
        for index in 0..self.connectors.len() {
            self.tick_connector(now, index);
        }
        if let Some(at) = self.next_aligned {
            if at <= now && self.registration == Registration::Accepted {
                self.queue_aligned_readings(now);
            }
        }
        self.schedule_aligned(now);
        self.run_jobs(now);
        self.settle(now);
    }

    fn tick_connector(&mut self, now: Millis, index: usize) {
        let id = self.connectors[index].id;
        let due = |at: Option<Millis>| at.is_some_and(|t| t <= now);
        if due(self.connectors[index].grant_deadline) {
            let c = &mut self.connectors[index];
            c.grant_deadline = None;
            if c.tx.is_none() && !c.plugged {
                c.grant = None;
            }
        }
        if due(self.connectors[index].ev_plug_at) {
            self.connectors[index].ev_plug_at = None;
            let c = &self.connectors[index];
            let free = !c.plugged && c.tx.is_none() && !c.faulted && self.operative(c);
            if free {
                self.plug_in(now, id);
                if c_has_no_grant(&self.connectors[index]) {
                    self.connectors[index].token_at = Some(now.plus_ms(self.spec.timings.token_ms));
                }
            } else if let Some(plan) = &self.spec.sessions {
                let gap = self.rng.exponential_ms(plan.mean_gap_ms);
                self.connectors[index].ev_plug_at = Some(now.plus_ms(gap));
            }
        }
        if due(self.connectors[index].token_at) {
            self.connectors[index].token_at = None;
            if let Some(tag) = self.spec.sessions.as_ref().map(|p| p.id_tag.clone()) {
                self.present_token(now, id, &tag);
            }
        }
        if due(self.connectors[index].ev_stop_at) {
            self.connectors[index].ev_stop_at = None;
            if self.connectors[index].tx.is_some() {
                self.stop_transaction(now, id, StopReason::Local);
            }
        }
        if due(self.connectors[index].ev_leave_at) {
            self.connectors[index].ev_leave_at = None;
            self.unplug(now, id);
        }
        let sample_due = self.connectors[index]
            .tx
            .as_ref()
            .is_some_and(|t| due(t.next_sample));
        if sample_due {
            let interval = self.config.uint(Setting::MeterSampleInterval);
            if let Some(tx) = self.connectors[index].tx.as_mut() {
                tx.next_sample = (interval > 0).then(|| now.plus_secs(interval));
            }
            self.queue_periodic_reading(now, index);
        }
    }

    /// When the model next needs [`Charger::tick`] or has a CALL to hand out.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let mut next: Option<Millis> = None;
        let mut consider = |at: Option<Millis>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        consider(self.next_aligned);
        if self.connected && self.outstanding.is_none() {
            if self.registration == Registration::Accepted {
                consider(self.queue.front().map(|q| q.not_before));
                consider(self.next_heartbeat);
            } else {
                consider(self.boot_at);
            }
        }
        for c in &self.connectors {
            for at in [
                c.grant_deadline,
                c.ev_plug_at,
                c.token_at,
                c.ev_stop_at,
                c.ev_leave_at,
            ] {
                consider(at);
            }
            consider(c.tx.as_ref().and_then(|t| t.next_sample));
        }
        for job in [&self.firmware_job, &self.upload_job].into_iter().flatten() {
            consider(Some(job.next_at));
        }
        consider(self.pending_reboot.map(|r| r.deadline));
        if !self.profiles.is_empty() {
            consider(self.profile_change_after(self.last_time()));
        }
        next
    }

    fn last_time(&self) -> Millis {
        self.connectors
            .iter()
            .map(|c| c.energy_at)
            .max()
            .unwrap_or_default()
    }

    fn profile_change_after(&self, now: Millis) -> Option<Millis> {
        self.profiles.next_change(now, |connector| {
            self.connector(connector)
                .and_then(|c| c.tx.as_ref())
                .map(|t| (self.tx_key(t).unwrap_or_default(), t.started))
        })
    }

    /// The next thing the driver must do, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- the simulated driver's hands ----------------------------------------------------

    /// An EV is plugged into the connector.
    pub fn plug_in(&mut self, now: Millis, connector: u32) {
        self.advance_energy(now);
        let Some(c) = self.connector_mut(connector) else {
            return;
        };
        if c.plugged {
            return;
        }
        c.plugged = true;
        c.locked = true;
        c.finishing = false;
        self.try_start(now, connector);
        self.settle(now);
    }

    /// The EV is unplugged (ends a running transaction when the charger is set to).
    pub fn unplug(&mut self, now: Millis, connector: u32) {
        self.advance_energy(now);
        let stop_on_disconnect = self.config.flag(Setting::StopTxOnEvDisconnect, true);
        let Some(c) = self.connector(connector) else {
            return;
        };
        if !c.plugged {
            return;
        }
        if c.tx.is_some() && stop_on_disconnect {
            self.stop_transaction(now, connector, StopReason::EvDisconnected);
        }
        if let Some(c) = self.connector_mut(connector) {
            c.plugged = false;
            c.locked = false;
            c.finishing = false;
            c.ev_leave_at = None;
            if c.tx.is_none() {
                c.grant = None;
                c.grant_deadline = None;
            }
        }
        if let Some(plan) = &self.spec.sessions {
            let gap = self.rng.exponential_ms(plan.mean_gap_ms);
            if let Some(c) = self.connector_mut(connector) {
                c.ev_plug_at = Some(now.plus_ms(gap));
            }
        }
        self.settle(now);
    }

    /// A driver presents an id token at the connector: stops their own running transaction,
    /// or asks for authorisation (locally when offline or pre-authorised) to start one.
    pub fn present_token(&mut self, now: Millis, connector: u32, token: &str) {
        self.advance_energy(now);
        let Some(c) = self.connector(connector) else {
            return;
        };
        if let Some(tx) = &c.tx {
            if tx.token == token {
                self.stop_transaction(now, connector, StopReason::Local);
                self.settle(now);
            }
            return;
        }
        if c.grant.is_some() || c.awaiting_auth.is_some() || !self.operative(c) || c.faulted {
            return;
        }
        let online = self.connected && self.registration == Registration::Accepted;
        let local = self.local_authorisation(token, now);
        if online {
            if self.config.flag(Setting::LocalPreAuthorize, false)
                && local.as_ref().is_some_and(|i| i.allows(now))
            {
                self.grant(
                    now,
                    connector,
                    Grant {
                        token: token.to_owned(),
                        remote_start_id: None,
                        profile: None,
                    },
                );
            } else {
                if let Some(c) = self.connector_mut(connector) {
                    c.awaiting_auth = Some(token.to_owned());
                }
                self.enqueue(
                    now,
                    Outgoing::Authorize {
                        connector,
                        token: token.to_owned(),
                        remote: None,
                    },
                );
            }
        } else {
            let allowed = match local {
                Some(info) => {
                    self.config.flag(Setting::LocalAuthorizeOffline, true) && info.allows(now)
                }
                None => self.config.flag(Setting::OfflineTxForUnknownId, false),
            };
            if allowed {
                self.grant(
                    now,
                    connector,
                    Grant {
                        token: token.to_owned(),
                        remote_start_id: None,
                        profile: None,
                    },
                );
            } else {
                self.auth_refused(now, connector);
            }
        }
        self.settle(now);
    }

    /// The local answer for a token: the local list (when enabled) first, then the cache.
    fn local_authorisation(&self, token: &str, _now: Millis) -> Option<TokenInfo> {
        if self.config.flag(Setting::LocalListEnabled, true) {
            if let Some(info) = self.local_list.lookup(token) {
                return Some(info.clone());
            }
        }
        if self.config.flag(Setting::AuthCacheEnabled, true) {
            return self.cache.lookup(token).cloned();
        }
        None
    }

    // ----- shared behaviour -------------------------------------------------------------

    fn connector(&self, id: u32) -> Option<&Connector> {
        id.checked_sub(1)
            .and_then(|i| self.connectors.get(i as usize))
    }

    fn connector_mut(&mut self, id: u32) -> Option<&mut Connector> {
        id.checked_sub(1)
            .and_then(|i| self.connectors.get_mut(i as usize))
    }

    fn operative(&self, c: &Connector) -> bool {
        self.station_operative && c.operative
    }

    fn tx_key(&self, tx: &Transaction) -> Option<String> {
        match self.spec.version {
            OcppVersion::V16 => self
                .gateway_tx_ids
                .get(&tx.local_id)
                .map(|id| id.to_string()),
            OcppVersion::V201 => Some(tx.uid.clone()),
        }
    }

    fn offered(&self, c: &Connector, now: Millis) -> f64 {
        let key =
            c.tx.as_ref()
                .map(|t| (self.tx_key(t).unwrap_or_default(), t.started));
        let ctx = key.as_ref().map(|(id, started)| TxContext {
            id,
            started: *started,
        });
        let limit = self
            .profiles
            .limit_amps(now, c.id, ctx)
            .unwrap_or(self.spec.max_current_a);
        limit.clamp(0.0, self.spec.max_current_a)
    }

    /// The current the EV draws on a connector now.
    fn drawn(&self, c: &Connector, now: Millis) -> f64 {
        match &c.tx {
            Some(tx) if c.plugged && !tx.deauthorized => {
                let offered = self.offered(c, now);
                if offered < MIN_CHARGING_AMPS {
                    0.0
                } else {
                    offered.min(self.spec.ev_current_a)
                }
            }
            _ => 0.0,
        }
    }

    fn advance_energy(&mut self, now: Millis) {
        for index in 0..self.connectors.len() {
            let c = &self.connectors[index];
            if now <= c.energy_at {
                continue;
            }
            let amps = self.drawn(c, c.energy_at);
            let hours = now.since(c.energy_at) as f64 / 3_600_000.0;
            let c = &mut self.connectors[index];
            c.energy_wh += amps * NOMINAL_VOLTAGE * f64::from(DEFAULT_PHASES) * hours;
            c.energy_at = now;
        }
    }

    fn sample(&self, c: &Connector, now: Millis, context: &'static str) -> MeterSample {
        let current = self.drawn(c, now);
        MeterSample {
            at: self.wall(now),
            energy_wh: c.energy_wh,
            power_w: current * NOMINAL_VOLTAGE * f64::from(DEFAULT_PHASES),
            current_a: current,
            offered_a: self.offered(c, now),
            context,
        }
    }

    /// The central system's idea of the time: the local clock corrected by the offset learnt
    /// from BootNotification and Heartbeat answers.
    fn wall(&self, now: Millis) -> Millis {
        Millis(now.0.saturating_add_signed(self.clock_offset_ms))
    }

    fn learn_time(&mut self, now: Millis, current_time: Option<&str>) {
        if let Some(at) = current_time.and_then(Millis::parse_rfc3339) {
            self.clock_offset_ms = at.0 as i64 - now.0 as i64;
        }
    }

    /// The status word the connector reports in this version.
    fn derived_status(&self, c: &Connector) -> &'static str {
        let now = c.energy_at;
        match self.spec.version {
            OcppVersion::V16 => {
                if c.faulted {
                    "Faulted"
                } else if let Some(tx) = &c.tx {
                    if !c.plugged {
                        "SuspendedEV"
                    } else if tx.deauthorized || self.offered(c, now) < MIN_CHARGING_AMPS {
                        "SuspendedEVSE"
                    } else {
                        "Charging"
                    }
                } else if !self.operative(c) {
                    "Unavailable"
                } else if c.finishing {
                    "Finishing"
                } else if c.plugged || c.grant.is_some() {
                    "Preparing"
                } else {
                    "Available"
                }
            }
            OcppVersion::V201 => {
                if c.faulted {
                    "Faulted"
                } else if c.tx.is_some() {
                    "Occupied"
                } else if !self.operative(c) {
                    "Unavailable"
                } else if c.plugged {
                    "Occupied"
                } else {
                    "Available"
                }
            }
        }
    }

    /// The 2.0.1 charging state of a connector's transaction.
    fn charging_state(&self, c: &Connector, now: Millis) -> &'static str {
        match &c.tx {
            None if c.plugged => "EVConnected",
            None => "Idle",
            Some(_) if !c.plugged => "Idle",
            Some(tx) if tx.deauthorized => "EVConnected",
            Some(_) if self.offered(c, now) < MIN_CHARGING_AMPS => "SuspendedEVSE",
            Some(_) => "Charging",
        }
    }

    fn station_status(&self) -> &'static str {
        if self.station_operative {
            "Available"
        } else {
            "Unavailable"
        }
    }

    /// Queues a message. Non-transactional messages are only worth queueing when they can go
    /// out; transactional ones wait for the connection (within [`MAX_QUEUED`]).
    fn enqueue(&mut self, now: Millis, msg: Outgoing) {
        let online = self.connected && self.registration == Registration::Accepted;
        if !msg.is_transactional() && !online {
            return;
        }
        if self.queue.len() >= MAX_QUEUED && matches!(msg, Outgoing::Meter { .. }) {
            return;
        }
        self.queue.push_back(Queued {
            msg,
            attempts: 0,
            not_before: now,
        });
    }

    fn enqueue_front(&mut self, now: Millis, msg: Outgoing) {
        self.queue.push_front(Queued {
            msg,
            attempts: 0,
            not_before: now,
        });
    }

    /// Brings notifications in line with the state after any change: a StatusNotification
    /// for every connector whose status changed, 2.0.1 charging-state updates, scheduled
    /// availability and resets that waited for idleness.
    fn settle(&mut self, now: Millis) {
        for index in 0..self.connectors.len() {
            let status = self.derived_status(&self.connectors[index]);
            if self.connectors[index].reported_status != Some(status) {
                self.connectors[index].reported_status = Some(status);
                let id = self.connectors[index].id;
                self.enqueue(
                    now,
                    Outgoing::Status {
                        connector: id,
                        status,
                        at: self.wall(now),
                    },
                );
            }
            if self.spec.version == OcppVersion::V201 {
                self.check_charging_state(now, index);
            }
        }
        if self.spec.version == OcppVersion::V16 {
            let station = self.station_status();
            if self.reported_station_status != Some(station) {
                self.reported_station_status = Some(station);
                self.enqueue(
                    now,
                    Outgoing::Status {
                        connector: 0,
                        status: station,
                        at: self.wall(now),
                    },
                );
            }
        }
        if self.reset_when_idle && self.connectors.iter().all(|c| c.tx.is_none()) {
            self.reset_when_idle = false;
            self.begin_reboot(now, BootReason::RemoteReset, false);
        }
        if let Some(reboot) = self.pending_reboot {
            let flushed =
                self.outstanding.is_none() && !self.queue.iter().any(|q| q.msg.is_transactional());
            if flushed || !self.connected || now >= reboot.deadline {
                self.pending_reboot = None;
                self.reboot_now(reboot.reason);
            }
        }
    }

    fn check_charging_state(&mut self, now: Millis, index: usize) {
        let state = self.charging_state(&self.connectors[index], now);
        let Some(tx) = &self.connectors[index].tx else {
            return;
        };
        if tx.last_charging_state == state {
            return;
        }
        if let Some(tx) = self.connectors[index].tx.as_mut() {
            tx.last_charging_state = state;
        }
        self.queue_tx_event(now, index, "Updated", "ChargingStateChanged", None, None);
    }

    fn queue_all_statuses(&mut self, now: Millis) {
        if self.spec.version == OcppVersion::V16 {
            let station = self.station_status();
            self.reported_station_status = Some(station);
            self.enqueue(
                now,
                Outgoing::Status {
                    connector: 0,
                    status: station,
                    at: self.wall(now),
                },
            );
        }
        for index in 0..self.connectors.len() {
            let status = self.derived_status(&self.connectors[index]);
            self.connectors[index].reported_status = Some(status);
            let id = self.connectors[index].id;
            self.enqueue(
                now,
                Outgoing::Status {
                    connector: id,
                    status,
                    at: self.wall(now),
                },
            );
        }
    }

    /// Authorisation succeeded (or was not needed): the connector may start a transaction
    /// as soon as an EV is plugged in.
    fn grant(&mut self, now: Millis, connector: u32, grant: Grant) {
        let timeout = self.config.uint(Setting::ConnectionTimeout);
        let Some(c) = self.connector_mut(connector) else {
            return;
        };
        c.grant = Some(grant);
        c.awaiting_auth = None;
        if !c.plugged && timeout > 0 {
            c.grant_deadline = Some(now.plus_secs(timeout));
        }
        self.try_start(now, connector);
    }

    /// Authorisation was refused: an EV that plugged in for it leaves.
    fn auth_refused(&mut self, now: Millis, connector: u32) {
        let unplug_ms = self.spec.timings.unplug_ms;
        if let Some(c) = self.connector_mut(connector) {
            c.awaiting_auth = None;
            if c.plugged && c.tx.is_none() {
                c.ev_leave_at = Some(now.plus_ms(unplug_ms));
            }
        }
    }

    fn try_start(&mut self, now: Millis, connector: u32) {
        let Some(c) = self.connector(connector) else {
            return;
        };
        if !c.plugged || c.tx.is_some() || c.grant.is_none() || !self.operative(c) {
            return;
        }
        let Some(index) = connector.checked_sub(1).map(|i| i as usize) else {
            return;
        };
        let Some(grant) = self.connectors[index].grant.take() else {
            return;
        };
        let local_id = self.next_local_id;
        self.next_local_id += 1;
        let uid = format!("{:016x}{:04x}", self.rng.next_u64(), local_id & 0xffff);
        let interval = self.config.uint(Setting::MeterSampleInterval);
        let length = self.spec.sessions.as_ref().map(|p| p.length_ms);
        let wall = self.wall(now);
        let c = &mut self.connectors[index];
        c.grant_deadline = None;
        c.finishing = false;
        c.ev_stop_at = length.map(|l| now.plus_ms(l));
        c.tx = Some(Transaction {
            local_id,
            uid,
            token: grant.token.clone(),
            started: now,
            seq_no: 0,
            remote_start_id: grant.remote_start_id,
            deauthorized: false,
            next_sample: (interval > 0).then(|| now.plus_secs(interval)),
            last_charging_state: "Charging",
        });
        if let Some(mut profile) = grant.profile {
            profile.connector = connector;
            profile.installed_at = now;
            if self.spec.version == OcppVersion::V201 {
                profile.transaction = self.connectors[index].tx.as_ref().map(|t| t.uid.clone());
            }
            self.profiles.install(profile);
        }
        match self.spec.version {
            OcppVersion::V16 => {
                let meter_start = self.connectors[index].energy_wh.round() as i64;
                self.enqueue(
                    now,
                    Outgoing::StartTx {
                        connector,
                        local_id,
                        token: grant.token,
                        meter_start,
                        at: wall,
                    },
                );
            }
            OcppVersion::V201 => {
                let trigger = if grant.remote_start_id.is_some() {
                    "RemoteStart"
                } else {
                    "Authorized"
                };
                let state = self.charging_state(&self.connectors[index], now);
                if let Some(tx) = self.connectors[index].tx.as_mut() {
                    tx.last_charging_state = state;
                }
                let sample = self.sample(&self.connectors[index], now, "Transaction.Begin");
                self.queue_tx_event(now, index, "Started", trigger, Some(sample), None);
            }
        }
        self.events.push_back(Event::TransactionsChanged);
    }

    /// Queues a 2.0.1 TransactionEvent for the transaction on connector `index`.
    fn queue_tx_event(
        &mut self,
        now: Millis,
        index: usize,
        event_type: &'static str,
        trigger: &'static str,
        sample: Option<MeterSample>,
        stopped: Option<StopReason>,
    ) {
        let state = self.charging_state(&self.connectors[index], now);
        let offline = !self.connected || self.registration != Registration::Accepted;
        let wall = self.wall(now);
        let evse = self.connectors[index].id;
        let Some(tx) = self.connectors[index].tx.as_mut() else {
            return;
        };
        let seq_no = tx.seq_no;
        tx.seq_no += 1;
        let event = TxEvent {
            event_type,
            uid: tx.uid.clone(),
            seq_no,
            at: wall,
            trigger,
            evse,
            charging_state: Some(if stopped.is_some() {
                "EVConnected"
            } else {
                state
            }),
            stopped_reason: stopped,
            token: (event_type == "Started").then(|| tx.token.clone()),
            remote_start_id: if event_type == "Started" {
                tx.remote_start_id
            } else {
                None
            },
            sample,
            offline,
        };
        let event = if stopped.is_some() && !self.connectors[index].plugged {
            TxEvent {
                charging_state: Some("Idle"),
                ..event
            }
        } else {
            event
        };
        self.enqueue(now, Outgoing::TxEvent(Box::new(event)));
    }

    fn queue_periodic_reading(&mut self, now: Millis, index: usize) {
        let sample = self.sample(&self.connectors[index], now, "Sample.Periodic");
        match self.spec.version {
            OcppVersion::V16 => {
                let local_id = self.connectors[index].tx.as_ref().map(|t| t.local_id);
                let connector = self.connectors[index].id;
                self.enqueue(
                    now,
                    Outgoing::Meter {
                        connector,
                        local_id,
                        sample,
                    },
                );
            }
            OcppVersion::V201 => {
                self.queue_tx_event(
                    now,
                    index,
                    "Updated",
                    "MeterValuePeriodic",
                    Some(sample),
                    None,
                );
            }
        }
    }

    fn schedule_aligned(&mut self, now: Millis) {
        let interval_ms = self.config.uint(Setting::ClockAlignedInterval) * 1000;
        if interval_ms == 0 {
            self.next_aligned = None;
            return;
        }
        let wall = self.wall(now).0;
        let next_wall = (wall / interval_ms + 1) * interval_ms;
        let due_local = now.plus_ms(next_wall - wall);
        if self.next_aligned.is_none_or(|at| at <= now) {
            self.next_aligned = Some(due_local);
        }
    }

    fn queue_aligned_readings(&mut self, now: Millis) {
        self.next_aligned = None;
        for index in 0..self.connectors.len() {
            let sample = self.sample(&self.connectors[index], now, "Sample.Clock");
            let connector = self.connectors[index].id;
            match (self.spec.version, self.connectors[index].tx.is_some()) {
                (OcppVersion::V201, true) => {
                    self.queue_tx_event(
                        now,
                        index,
                        "Updated",
                        "MeterValueClock",
                        Some(sample),
                        None,
                    );
                }
                _ => {
                    let local_id = self.connectors[index].tx.as_ref().map(|t| t.local_id);
                    self.enqueue(
                        now,
                        Outgoing::Meter {
                            connector,
                            local_id,
                            sample,
                        },
                    );
                }
            }
        }
    }

    /// Ends the transaction on a connector, queueing StopTransaction / TransactionEvent
    /// Ended; returns whether there was one.
    fn stop_transaction(&mut self, now: Millis, connector: u32, reason: StopReason) -> bool {
        let Some(index) = connector.checked_sub(1).map(|i| i as usize) else {
            return false;
        };
        if self
            .connectors
            .get(index)
            .and_then(|c| c.tx.as_ref())
            .is_none()
        {
            return false;
        }
        let sample = self.sample(&self.connectors[index], now, "Transaction.End");
        match self.spec.version {
            OcppVersion::V16 => {
                let Some(tx) = self.connectors[index].tx.as_ref() else {
                    return false;
                };
                let token = Some(tx.token.clone());
                let local_id = tx.local_id;
                let meter_stop = self.connectors[index].energy_wh.round() as i64;
                let at = self.wall(now);
                self.enqueue(
                    now,
                    Outgoing::StopTx {
                        local_id,
                        token,
                        meter_stop,
                        at,
                        reason,
                    },
                );
            }
            OcppVersion::V201 => {
                let trigger = match reason {
                    StopReason::Local => "StopAuthorized",
                    StopReason::Remote => "RemoteStop",
                    StopReason::EvDisconnected => "EVCommunicationLost",
                    StopReason::HardReset | StopReason::SoftReset => "ResetCommand",
                    StopReason::UnlockCommand => "UnlockCommand",
                    StopReason::DeAuthorized => "Deauthorized",
                };
                self.queue_tx_event(now, index, "Ended", trigger, Some(sample), Some(reason));
            }
        }
        let unplug_ms = self.spec.timings.unplug_ms;
        let c = &mut self.connectors[index];
        c.tx = None;
        c.ev_stop_at = None;
        c.finishing = c.plugged;
        if c.plugged {
            c.ev_leave_at = Some(now.plus_ms(unplug_ms));
        }
        if let Some(operative) = c.scheduled_operative.take() {
            c.operative = operative;
        }
        self.profiles.end_transaction(connector);
        self.events.push_back(Event::TransactionsChanged);
        true
    }

    /// Reacts to the central system's verdict on the token of a running transaction.
    fn tx_token_verdict(&mut self, now: Millis, connector: u32, token: &str, info: TokenInfo) {
        if self.config.flag(Setting::AuthCacheEnabled, true) {
            self.cache.remember(token, info.clone());
        }
        if info.allows(now) {
            return;
        }
        let stop = self.config.flag(Setting::StopTxOnInvalidId, true);
        let Some(c) = self.connector_mut(connector) else {
            return;
        };
        let Some(tx) = c.tx.as_mut() else { return };
        if tx.token != token {
            return;
        }
        tx.deauthorized = true;
        if stop {
            self.stop_transaction(now, connector, StopReason::DeAuthorized);
        }
    }

    /// Whether every connector is without a transaction.
    fn idle(&self) -> bool {
        self.connectors.iter().all(|c| c.tx.is_none())
    }

    /// Stops every transaction and reboots: at once for a hard reset, after the stop
    /// messages went out for a soft one.
    fn begin_reboot(&mut self, now: Millis, reason: BootReason, hard: bool) {
        let stop_reason = if hard {
            StopReason::HardReset
        } else {
            StopReason::SoftReset
        };
        for id in 1..=self.spec.connectors {
            self.stop_transaction(now, id, stop_reason);
        }
        if hard {
            self.reboot_now(reason);
        } else {
            self.pending_reboot = Some(PendingReboot {
                reason,
                deadline: now.plus_ms(self.spec.timings.flush_timeout_ms),
            });
        }
    }

    fn reboot_now(&mut self, reason: BootReason) {
        self.needs_boot = true;
        self.boot_reason = reason;
        self.registration = Registration::NotBooted;
        for c in &mut self.connectors {
            c.grant = None;
            c.grant_deadline = None;
            c.awaiting_auth = None;
            c.finishing = false;
            c.reported_status = None;
        }
        self.reported_station_status = None;
        self.queue.retain(|q| q.msg.is_transactional());
        self.events.push_back(Event::Reboot {
            reconnect_after_ms: self.spec.timings.reboot_ms,
        });
    }

    /// The BootNotification was accepted: report every status, then whatever waited.
    fn boot_accepted(&mut self, now: Millis, interval_s: i64) {
        self.registration = Registration::Accepted;
        self.needs_boot = false;
        self.boot_at = None;
        if interval_s > 0 && !self.spec.fixed_heartbeat {
            self.config
                .set_internal(Setting::HeartbeatInterval, interval_s.to_string());
        }
        self.schedule_heartbeat(now);
        let backlog: Vec<Queued> = self.queue.drain(..).collect();
        self.queue_all_statuses(now);
        self.queue.extend(backlog);
        self.schedule_aligned(now);
        self.run_jobs(now);
    }

    fn boot_refused(&mut self, now: Millis, registration: Registration, interval_s: i64) {
        self.registration = registration;
        let wait_ms = if interval_s > 0 {
            interval_s as u64 * 1000
        } else {
            self.spec.timings.boot_retry_ms
        };
        self.boot_at = Some(now.plus_ms(wait_ms));
    }

    // ----- firmware and upload jobs --------------------------------------------------------

    fn start_job(
        &mut self,
        now: Millis,
        kind: JobKind,
        request_id: Option<i64>,
        steps: Vec<JobStep>,
    ) {
        let job = Job {
            request_id,
            steps: steps.into(),
            next_at: now,
            status: "Idle",
        };
        match kind {
            JobKind::Firmware => self.firmware_job = Some(job),
            JobKind::Upload => self.upload_job = Some(job),
        }
        self.run_jobs(now);
    }

    fn run_jobs(&mut self, now: Millis) {
        for kind in [JobKind::Firmware, JobKind::Upload] {
            self.run_job(now, kind);
        }
    }

    fn run_job(&mut self, now: Millis, kind: JobKind) {
        let step_ms = self.spec.timings.step_ms;
        loop {
            let slot = match kind {
                JobKind::Firmware => &mut self.firmware_job,
                JobKind::Upload => &mut self.upload_job,
            };
            let Some(job) = slot.as_mut() else { return };
            if job.next_at > now {
                return;
            }
            let Some(step) = job.steps.front().cloned() else {
                *slot = None;
                return;
            };
            match step {
                JobStep::Notify(status) => {
                    job.steps.pop_front();
                    job.status = status;
                    job.next_at = now.plus_ms(step_ms);
                    let request_id = job.request_id;
                    let msg = match (kind, self.spec.version) {
                        (JobKind::Firmware, _) => Outgoing::Firmware { status, request_id },
                        (JobKind::Upload, OcppVersion::V16) => Outgoing::Diagnostics { status },
                        (JobKind::Upload, OcppVersion::V201) => {
                            Outgoing::Log { status, request_id }
                        }
                    };
                    self.enqueue(now, msg);
                }
                JobStep::NotBefore(at) => {
                    if at > now {
                        job.next_at = at;
                        return;
                    }
                    job.steps.pop_front();
                }
                JobStep::WhenIdle => {
                    if !self.connectors.iter().all(|c| c.tx.is_none()) {
                        job.next_at = now.plus_ms(step_ms);
                        return;
                    }
                    job.steps.pop_front();
                }
                JobStep::SetFirmware(version) => {
                    job.steps.pop_front();
                    self.firmware_version = version;
                }
                JobStep::Reboot => {
                    job.steps.pop_front();
                    self.begin_reboot(now, BootReason::FirmwareUpdate, true);
                    return;
                }
                JobStep::AfterBoot => {
                    if !(self.connected && self.registration == Registration::Accepted) {
                        job.next_at = now.plus_ms(step_ms);
                        return;
                    }
                    job.steps.pop_front();
                }
            }
        }
    }

    /// The firmware version a download from `location` installs: its file name without
    /// extension, or the current version with a `+1` suffix.
    fn firmware_from(&self, location: &str) -> String {
        let name = location.rsplit('/').next().unwrap_or_default();
        let stem = name.split('.').next().unwrap_or_default();
        let mut version = if stem.is_empty() || name.len() > 50 {
            format!("{}+1", self.firmware_version)
        } else {
            name.trim_end_matches(".bin")
                .trim_end_matches(".img")
                .to_owned()
        };
        version.truncate(50);
        version
    }

    // ----- requests shared by both versions ---------------------------------------------

    /// The answer to an Authorize: start (or wait for the EV) when accepted, give up when not.
    fn authorize_verdict(
        &mut self,
        now: Millis,
        connector: u32,
        token: &str,
        remote: Option<Box<Grant>>,
        info: TokenInfo,
    ) {
        if self.config.flag(Setting::AuthCacheEnabled, true) {
            self.cache.remember(token, info.clone());
        }
        let still_waiting = self
            .connector(connector)
            .is_some_and(|c| c.awaiting_auth.as_deref() == Some(token));
        if !still_waiting {
            return;
        }
        if info.allows(now) {
            let grant = remote.map_or_else(
                || Grant {
                    token: token.to_owned(),
                    remote_start_id: None,
                    profile: None,
                },
                |g| *g,
            );
            self.grant(now, connector, grant);
        } else {
            self.auth_refused(now, connector);
        }
    }

    /// Whether a connector can take a new transaction now.
    fn can_start_on(&self, c: &Connector) -> bool {
        c.tx.is_none()
            && c.grant.is_none()
            && c.awaiting_auth.is_none()
            && !c.finishing
            && !c.faulted
            && self.operative(c)
    }

    /// RemoteStartTransaction / RequestStartTransaction: picks the connector, authorises
    /// (asking the gateway first when the charger is set to), and has the EV plug in.
    /// Returns the connector chosen, or `None` to reject.
    pub(crate) fn remote_start(&mut self, now: Millis, request: RemoteStart) -> Option<u32> {
        let connector = match request.connector {
            Some(id) => {
                let c = self.connector(id)?;
                self.can_start_on(c).then_some(id)?
            }
            None => self
                .connectors
                .iter()
                .find(|c| self.can_start_on(c))
                .map(|c| c.id)?,
        };
        if let Some(kind) = request.token_type {
            self.token_types.insert(request.token.clone(), kind);
        }
        let grant = Grant {
            token: request.token.clone(),
            remote_start_id: request.remote_start_id,
            profile: request.profile,
        };
        let plug_ms = self.spec.timings.ev_plug_ms;
        if let Some(c) = self.connector_mut(connector) {
            c.ev_plug_at = if c.plugged {
                c.ev_plug_at
            } else {
                Some(now.plus_ms(plug_ms))
            };
            c.token_at = None;
        }
        if self.config.flag(Setting::AuthorizeRemoteStart, false) {
            if let Some(c) = self.connector_mut(connector) {
                c.awaiting_auth = Some(request.token.clone());
            }
            self.enqueue(
                now,
                Outgoing::Authorize {
                    connector,
                    token: request.token,
                    remote: Some(Box::new(grant)),
                },
            );
        } else {
            self.grant(now, connector, grant);
        }
        Some(connector)
    }

    /// Stops the transaction with this id (1.6 gateway number as text, 2.0.1 id); whether one
    /// was found.
    pub(crate) fn remote_stop(&mut self, now: Millis, transaction: &str) -> bool {
        let found = self
            .connectors
            .iter()
            .find(|c| c.tx.as_ref().and_then(|t| self.tx_key(t)).as_deref() == Some(transaction))
            .map(|c| c.id);
        match found {
            Some(connector) => self.stop_transaction(now, connector, StopReason::Remote),
            None => false,
        }
    }

    /// ChangeAvailability for one connector/EVSE, or the whole charger when `connector` is
    /// `None`. A connector with a running transaction changes when it ends.
    pub(crate) fn change_availability(
        &mut self,
        connector: Option<u32>,
        operative: bool,
    ) -> AvailabilityOutcome {
        match connector {
            None => {
                self.station_operative = operative;
                let mut scheduled = false;
                for c in &mut self.connectors {
                    if c.tx.is_some() && !operative {
                        c.scheduled_operative = Some(false);
                        scheduled = true;
                    } else {
                        c.operative = operative;
                        c.scheduled_operative = None;
                    }
                }
                if scheduled {
                    AvailabilityOutcome::Scheduled
                } else {
                    AvailabilityOutcome::Accepted
                }
            }
            Some(id) => {
                let Some(c) = self.connector_mut(id) else {
                    return AvailabilityOutcome::Rejected;
                };
                if c.tx.is_some() && c.operative != operative {
                    c.scheduled_operative = Some(operative);
                    AvailabilityOutcome::Scheduled
                } else {
                    c.operative = operative;
                    c.scheduled_operative = None;
                    AvailabilityOutcome::Accepted
                }
            }
        }
    }

    /// Unlocks a connector: the driver then pulls the cable out.
    pub(crate) fn unlock(&mut self, now: Millis, connector: u32) {
        if let Some(c) = self.connector_mut(connector) {
            c.locked = false;
        }
        self.unplug(now, connector);
    }

    /// Validates and installs a charging profile for `connector` (0 = station); `false`
    /// when the charger must reject it.
    pub(crate) fn install_profile(&mut self, now: Millis, mut profile: profiles::Profile) -> bool {
        use self::profiles::Purpose;
        let connector = profile.connector;
        if connector > self.spec.connectors {
            return false;
        }
        match profile.purpose {
            Purpose::StationMax | Purpose::External if connector != 0 => return false,
            Purpose::Tx => {
                let Some(tx) = self.connector(connector).and_then(|c| c.tx.as_ref()) else {
                    return false;
                };
                let key = self.tx_key(tx);
                match &profile.transaction {
                    Some(wanted) if key.as_deref() != Some(wanted.as_str()) => return false,
                    Some(_) => {}
                    None => profile.transaction = key,
                }
            }
            _ => {}
        }
        let max_level = self.config.int(Setting::MaxStackLevel);
        let max_periods = self.config.uint(Setting::MaxPeriods) as usize;
        let max_profiles = self.config.uint(Setting::MaxProfiles) as usize;
        if profile.stack_level < 0 || profile.stack_level > max_level {
            return false;
        }
        if profile.periods.is_empty() || profile.periods.len() > max_periods {
            return false;
        }
        if profile
            .periods
            .iter()
            .any(|p| p.limit < 0.0 || p.start_s < 0)
        {
            return false;
        }
        let replaces = self.profiles.would_replace(
            profile.id,
            profile.stack_level,
            profile.purpose,
            profile.connector,
        );
        if !replaces && self.profiles.len() >= max_profiles {
            return false;
        }
        profile.installed_at = now;
        self.profiles.install(profile);
        true
    }

    /// Acts on a configuration value the gateway just wrote.
    pub(crate) fn config_changed(&mut self, now: Millis, setting: Option<Setting>) {
        match setting {
            Some(Setting::HeartbeatInterval) if self.registration == Registration::Accepted => {
                self.schedule_heartbeat(now);
            }
            Some(Setting::MeterSampleInterval) => {
                let interval = self.config.uint(Setting::MeterSampleInterval);
                for c in &mut self.connectors {
                    if let Some(tx) = c.tx.as_mut() {
                        tx.next_sample = (interval > 0).then(|| now.plus_secs(interval));
                    }
                }
            }
            Some(Setting::ClockAlignedInterval) => {
                self.next_aligned = None;
                self.schedule_aligned(now);
            }
            _ => {}
        }
    }

    /// The id-token type to report for a token (2.0.1): what the gateway called it when it
    /// sent it, else an RFID card.
    fn token_type(&self, token: &str) -> &str {
        self.token_types
            .get(token)
            .map_or("ISO14443", String::as_str)
    }

    /// Queues the meter readings a TriggerMessage(MeterValues) asks for.
    fn queue_triggered_readings(&mut self, now: Millis, connector: Option<u32>) {
        let mut msgs = Vec::new();
        for c in &self.connectors {
            if connector.is_some_and(|id| id != c.id) {
                continue;
            }
            let local_id = match self.spec.version {
                OcppVersion::V16 => c.tx.as_ref().map(|t| t.local_id),
                OcppVersion::V201 => None,
            };
            msgs.push(Outgoing::Meter {
                connector: c.id,
                local_id,
                sample: self.sample(c, now, "Trigger"),
            });
        }
        for msg in msgs.into_iter().rev() {
            self.enqueue_front(now, msg);
        }
    }

    /// Queues the StatusNotifications a TriggerMessage asks for (1.6 connector 0 is the
    /// charger itself).
    fn queue_triggered_statuses(&mut self, now: Millis, connector: Option<u32>) {
        let mut msgs = Vec::new();
        let at = self.wall(now);
        if self.spec.version == OcppVersion::V16 && connector.is_none_or(|id| id == 0) {
            msgs.push(Outgoing::Status {
                connector: 0,
                status: self.station_status(),
                at,
            });
        }
        for c in &self.connectors {
            if connector.is_none_or(|id| id == c.id) {
                msgs.push(Outgoing::Status {
                    connector: c.id,
                    status: self.derived_status(c),
                    at,
                });
            }
        }
        for msg in msgs.into_iter().rev() {
            self.enqueue_front(now, msg);
        }
    }

    fn action_of(&self, msg: &Outgoing) -> &'static str {
        let v16 = self.spec.version == OcppVersion::V16;
        match msg {
            Outgoing::Boot => "BootNotification",
            Outgoing::Heartbeat | Outgoing::ClosedLoop(0) => "Heartbeat",
            Outgoing::Status { .. } | Outgoing::ClosedLoop(1) => "StatusNotification",
            Outgoing::ClosedLoop(_) => "MeterValues",
            Outgoing::Authorize { .. } => "Authorize",
            Outgoing::StartTx { .. } => "StartTransaction",
            Outgoing::StopTx { .. } => "StopTransaction",
            Outgoing::Meter {
                local_id: Some(_), ..
            } if !v16 => "TransactionEvent",
            Outgoing::Meter { .. } => "MeterValues",
            Outgoing::TxEvent(_) => "TransactionEvent",
            Outgoing::Firmware { .. } => "FirmwareStatusNotification",
            Outgoing::Diagnostics { .. } => "DiagnosticsStatusNotification",
            Outgoing::Log { .. } => "LogStatusNotification",
            Outgoing::Report { .. } => "NotifyReport",
        }
    }
}

fn c_has_no_grant(c: &Connector) -> bool {
    c.grant.is_none() && c.tx.is_none()
}

#[cfg(test)]
mod tests;
