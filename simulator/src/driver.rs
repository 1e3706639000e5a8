//! The networked side of one simulated charger: connects over WebSocket (ws:// or wss://,
//! from a chosen source address, with the OCPP subprotocol and optional HTTP Basic auth),
//! feeds the charger model what arrives, sends what the model wants sent (one outstanding
//! CALL per direction), records latencies, injects faults on demand, and reconnects after
//! reboots and losses until the run ends. Given several gateway URLs, charger n starts at URL
//! n modulo their number and moves on to another URL whenever a connection is lost or an
//! attempt fails (failover), as chargers behind a load balancer in front of a cluster would:
//! the chargers of a node that went away spread evenly over the others ([`Rotation`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use voltgate_ocpp::{Frame, OcppVersion, Validator};

use crate::model::rng::SplitMix64;
use crate::model::{Answer, Charger, Event, Millis, Payload, Registration};
use crate::stats::Stats;

/// The wall clock as the model wants it.
pub fn wall_clock() -> Millis {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis(since.as_millis() as u64)
}

/// Where the chargers connect: `ws[s]://host[:port]/path`, with the charger id appended as
/// the last path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    /// `host[:port]` as written (sent in the Host header).
    pub authority: String,
    pub host: String,
    pub port: u16,
    /// The path without a trailing slash, e.g. `/ocpp`.
    pub path: String,
}

/// Why a URL was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the URL must start with ws:// or wss://")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("the port {0:?} is not a number from 1 to 65535")]
    Port(String),
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else {
            return Err(EndpointError::Scheme);
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(EndpointError::NoHost);
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(EndpointError::NoHost)?;
            match after.strip_prefix(':') {
                Some(p) => (host.to_owned(), parse_port(p)?),
                None => (host.to_owned(), default_port),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), parse_port(p)?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(EndpointError::NoHost);
        }
        Ok(Endpoint {
            tls,
            authority: authority.to_owned(),
            host,
            port,
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The URL a charger with this id connects to.
    pub fn charger_url(&self, id: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!(
            "{scheme}://{}{}/{}",
            self.authority,
            self.path,
            percent_encode(id)
        )
    }
}

fn parse_port(text: &str) -> Result<u16, EndpointError> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| EndpointError::Port(text.to_owned()))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Faults a charger injects on purpose.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Abrupt disconnects per charger per minute (exponential gaps).
    pub disconnects_per_minute: f64,
    /// Share of the gateway's CALLs left unanswered (0..1).
    pub no_answer: f64,
    /// Delay before answering the gateway's CALLs.
    pub slow_answer: Duration,
    /// Share of the charger's CALLs sent malformed (0..1).
    pub malformed: f64,
    /// Schema deviations a share of the chargers send in their CALLs.
    pub quirks: crate::quirks::Quirks,
}

/// One gateway URL chargers connect to, with its resolved address.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoint: Endpoint,
    pub address: SocketAddr,
}

/// What every charger task shares.
pub struct DriverConfig {
    /// The gateway URLs, in the order chargers go round them; never empty.
    pub targets: Vec<Target>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Local addresses to connect from, spread round-robin over chargers.
    pub source_addrs: Vec<IpAddr>,
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
    /// Validate the gateway's CALLs and CALLRESULTs against the schemas.
    pub validator: Option<Arc<Validator>>,
    pub faults: Faults,
    pub ws: WebSocketConfig,
    /// First wait after a lost connection; doubles up to 30 s.
    pub reconnect_delay: Duration,
}

/// A WebSocket configuration with small buffers: each idle connection costs a few KiB
/// instead of tungstenite's default 128 KiB read buffer.
pub fn lean_ws_config() -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 2 * 1024;
    config.write_buffer_size = 0;
    config.max_write_buffer_size = 1 << 20;
    config.max_message_size = Some(1 << 20);
    config.max_frame_size = Some(1 << 20);
    config
}

/// Which chargers are online and what transactions they run, for the operator load.
pub struct Directory {
    pub slots: Vec<Slot>,
}

pub struct Slot {
    pub id: String,
    pub version: OcppVersion,
    pub online: AtomicBool,
    pub transactions: Mutex<Vec<String>>,
}

impl Directory {
    pub fn new(chargers: impl IntoIterator<Item = (String, OcppVersion)>) -> Directory {
        Directory {
            slots: chargers
                .into_iter()
                .map(|(id, version)| Slot {
                    id,
                    version,
                    online: AtomicBool::new(false),
                    transactions: Mutex::new(Vec::new()),
                })
                .collect(),
        }
    }
}

impl Slot {
    pub fn set_transactions(&self, ids: Vec<String>) {
        *self
            .transactions
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = ids;
    }

    pub fn transactions(&self) -> Vec<String> {
        self.transactions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// TCP or TLS-over-TCP, so one WebSocket type serves both.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type Socket = WebSocketStream<Transport>;

/// Why a connection attempt failed; the report groups errors by [`ConnectError::kind`].
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("TCP connect failed: {0}")]
    Tcp(io::Error),
    #[error("timed out")]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("the gateway refused the handshake with HTTP {0}")]
    Refused(u16),
    #[error("the gateway picked subprotocol {0:?}")]
    Subprotocol(Option<String>),
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
}

impl ConnectError {
    pub fn kind(&self) -> String {
        match self {
            ConnectError::Tcp(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                "connect:refused".into()
            }
            ConnectError::Tcp(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                "connect:no_local_port".into()
            }
            ConnectError::Tcp(_) => "connect:tcp".into(),
            ConnectError::Timeout => "connect:timeout".into(),
            ConnectError::Tls(_) => "connect:tls".into(),
            ConnectError::Refused(status) => format!("handshake:http_{status}"),
            ConnectError::Subprotocol(_) => "handshake:subprotocol".into(),
            ConnectError::Handshake(_) => "handshake:protocol".into(),
        }
    }
}

/// Opens the charger's WebSocket: TCP from `source` (when given), TLS for wss://, the HTTP
/// upgrade with the version's subprotocol and, with a password, Basic auth.
pub async fn connect(
    cfg: &DriverConfig,
    target: &Target,
    id: &str,
    version: OcppVersion,
    password: Option<&str>,
    source: Option<IpAddr>,
) -> Result<Socket, ConnectError> {
    let socket = if target.address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(ConnectError::Tcp)?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(ConnectError::Tcp)?;
    }
    let tcp = socket
        .connect(target.address)
        .await
        .map_err(ConnectError::Tcp)?;
    tcp.set_nodelay(true).map_err(ConnectError::Tcp)?;
    let transport = match (target.endpoint.tls, &cfg.tls) {
        (false, _) => Transport::Plain(tcp),
        (true, None) => {
            return Err(ConnectError::Tls(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no TLS client configuration for a wss:// URL",
            )))
        }
        (true, Some(tls)) => {
            let name = rustls::pki_types::ServerName::try_from(target.endpoint.host.clone())
                .map_err(|e| ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(ConnectError::Tls)?;
            Transport::Tls(Box::new(stream))
        }
    };
    let mut request = target
        .endpoint
        .charger_url(id)
        .into_client_request()
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(version.subprotocol()),
    );
    if let Some(password) = password {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{password}"));
        let value = HeaderValue::from_str(&format!("Basic {credentials}"))
            .map_err(|e| ConnectError::Handshake(e.to_string()))?;
        headers.insert("Authorization", value);
    }
    let (ws, response) =
        tokio_tungstenite::client_async_with_config(request, transport, Some(cfg.ws))
            .await
            .map_err(|e| match e {
                tungstenite::Error::Http(response) => {
                    ConnectError::Refused(response.status().as_u16())
                }
                other => ConnectError::Handshake(other.to_string()),
            })?;
    let chosen = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if chosen.as_deref() != Some(version.subprotocol()) {
        return Err(ConnectError::Subprotocol(chosen));
    }
    Ok(ws)
}

/// Everything a charger task needs besides its model.
pub struct TaskContext {
    pub cfg: Arc<DriverConfig>,
    pub stats: Arc<Stats>,
    pub directory: Arc<Directory>,
    /// Becomes `true` when the run ends.
    pub stop: watch::Receiver<bool>,
    /// Changes when every charger must drop its connection at once (reconnect storm).
    pub storm: watch::Receiver<u64>,
}

enum Control {
    Stop,
    Storm,
}

enum SessionEnd {
    Stop,
    Reboot(Duration),
    Lost,
    Dropped,
}

struct Pending {
    id: String,
    action: &'static str,
    sent: Instant,
    deadline: Instant,
    /// The CALL was deliberately malformed: the gateway must refuse it.
    malformed: bool,
}

/// Which gateway URL a charger tries: it starts at its own position among the URLs (its
/// home) and moves on after every lost connection or failed attempt, through every other
/// URL before its home again. Chargers sharing a home take the others in different orders,
/// so the chargers of a node that went away spread evenly over the remaining ones, as a load
/// balancer in front of a cluster spreads them, instead of all landing on one neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    home: usize,
    /// Where the other URLs' cycle starts for this charger.
    offset: usize,
    /// Moves made so far, modulo `count`: 0 is home.
    step: usize,
    count: usize,
}

impl Rotation {
    /// Charger number `index` (its position in the run) among `count` URLs.
    pub fn new(index: usize, count: usize) -> Rotation {
        let count = count.max(1);
        Rotation {
            home: index % count,
            offset: (index / count) % (count - 1).max(1),
            step: 0,
            count,
        }
    }

    pub fn current(self) -> usize {
        if self.step == 0 {
            return self.home;
        }
        let others = self.count - 1;
        (self.home + 1 + (self.offset + self.step - 1) % others) % self.count
    }

    /// On to the URL to try next (the same one when there is only one).
    pub fn advance(&mut self) {
        self.step = (self.step + 1) % self.count;
    }
}

/// Runs one charger until the run stops: connect, boot, serve, reconnect (to another URL
/// after a loss or a failed attempt).
pub async fn run_charger(mut model: Charger, index: usize, mut ctx: TaskContext) {
    let slot_count = ctx.directory.slots.len().max(1);
    let slot = index % slot_count;
    let source = (!ctx.cfg.source_addrs.is_empty())
        .then(|| ctx.cfg.source_addrs[index % ctx.cfg.source_addrs.len()]);
    let mut rng = SplitMix64::new(0xC0FFEE ^ index as u64);
    let quirks = &ctx.cfg.faults.quirks;
    let quirky = !quirks.is_off() && rng.unit() < quirks.share;
    let mut next_id: u64 = 1;
    let mut backoff = ctx.cfg.reconnect_delay;
    let mut rotation = Rotation::new(index, ctx.cfg.targets.len());
    // The URL of the previous connection and when it ended, once there was one.
    let mut previous: Option<(usize, Instant)> = None;
    loop {
        if *ctx.stop.borrow() {
            break;
        }
        let Some(target) = ctx.cfg.targets.get(rotation.current()) else {
            ctx.stats.error("no_gateway_url");
            break;
        };
        Stats::add(&ctx.stats.connect_attempts);
        let started = Instant::now();
        let password = model.password().map(str::to_owned);
        let attempt = tokio::time::timeout(
            ctx.cfg.connect_timeout,
            connect(
                &ctx.cfg,
                target,
                model.id(),
                model.version(),
                password.as_deref(),
                source,
            ),
        )
        .await;
        let failure = match attempt {
            Ok(Ok(ws)) => Ok(ws),
            Ok(Err(e)) => Err(e.kind()),
            Err(_) => Err(ConnectError::Timeout.kind()),
        };
        let ws = match failure {
            Ok(ws) => ws,
            Err(kind) => {
                Stats::add(&ctx.stats.connections_failed);
                ctx.stats.error(kind);
                rotation.advance();
                if wait_or_stop(&mut ctx.stop, jitter(&mut rng, backoff)).await {
                    break;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = ctx.cfg.reconnect_delay;
        ctx.stats.connected(started.elapsed());
        if let Some((url, ended)) = previous {
            ctx.stats
                .reconnected(ended.elapsed(), url != rotation.current());
        }
        model.connected(wall_clock());
        let end = serve(
            &mut model,
            ws,
            &mut ctx,
            slot,
            started,
            &mut next_id,
            &mut rng,
            quirky,
        )
        .await;
        previous = Some((rotation.current(), Instant::now()));
        if let Some(s) = ctx.directory.slots.get(slot) {
            s.online.store(false, Ordering::Relaxed);
            s.set_transactions(Vec::new());
        }
        model.disconnected(wall_clock());
        let wait = match end {
            SessionEnd::Stop => break,
            // a reboot the charger was asked for: back to the same gateway
            SessionEnd::Reboot(after) => after,
            SessionEnd::Dropped => {
                rotation.advance();
                Duration::from_millis(rng.below(200))
            }
            SessionEnd::Lost => {
                Stats::add(&ctx.stats.disconnects);
                rotation.advance();
                jitter(&mut rng, backoff)
            }
        };
        if wait_or_stop(&mut ctx.stop, wait).await {
            break;
        }
    }
}

/// Up to 50 % extra, so reconnecting chargers spread out.
fn jitter(rng: &mut SplitMix64, base: Duration) -> Duration {
    let base_ms = base.as_millis() as u64;
    Duration::from_millis(base_ms + rng.below(base_ms / 2 + 1))
}

/// Sleeps; `true` when the run stopped meanwhile.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

fn deadline_of(wake: Millis, now: Millis, base: Instant) -> Instant {
    base + Duration::from_millis(wake.since(now))
}

/// The OCPP-J text of a CALL. Message ids here are decimal numbers and actions plain
/// words, so neither needs JSON escaping.
fn call_text(id: &str, action: &str, payload: &Payload) -> String {
    let mut text = String::with_capacity(64 + id.len() + action.len());
    text.push_str("[2,\"");
    text.push_str(id);
    text.push_str("\",\"");
    text.push_str(action);
    text.push_str("\",");
    payload.write_to(&mut text);
    text.push(']');
    text
}

/// A malformed CALL for fault injection, cycling through defects the gateway must refuse
/// with a CALLERROR under any schema tolerance: a missing required field, a wrong type, an
/// unknown action. (An unknown field is a benign deviation a lenient gateway accepts.)
fn malformed_call(id: &str, version: OcppVersion, pick: u64) -> String {
    match pick % 3 {
        0 => Frame::Call { id: id.to_owned(), action: "Authorize".into(), payload: json!({}) },
        1 => {
            let payload = match version {
                OcppVersion::V16 => json!({ "connectorId": "one", "errorCode": "NoError", "status": "Available" }),
                OcppVersion::V201 => {
                    json!({ "timestamp": "now", "connectorStatus": "Available", "evseId": "one", "connectorId": 1 })
                }
            };
            Frame::Call { id: id.to_owned(), action: "StatusNotification".into(), payload }
        }
        _ => Frame::Call { id: id.to_owned(), action: "FlyToTheMoon".into(), payload: json!({}) },
    }
    .to_text()
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    model: &mut Charger,
    mut ws: Socket,
    ctx: &mut TaskContext,
    slot: usize,
    connect_started: Instant,
    next_id: &mut u64,
    rng: &mut SplitMix64,
    quirky: bool,
) -> SessionEnd {
    let cfg = Arc::clone(&ctx.cfg);
    let stats = Arc::clone(&ctx.stats);
    let version = model.version();
    let mut pending: Option<Pending> = None;
    let mut delayed: std::collections::VecDeque<(Instant, String)> =
        std::collections::VecDeque::new();
    let mut was_registered = false;
    let mut stopping: Option<Instant> = None;
    let fault_gap = |rng: &mut SplitMix64| {
        (cfg.faults.disconnects_per_minute > 0.0).then(|| {
            Instant::now()
                + Duration::from_millis(
                    rng.exponential_ms((60_000.0 / cfg.faults.disconnects_per_minute) as u64),
                )
        })
    };
    let next_fault = fault_gap(rng);
    // One long-lived future watches for the end of the run and reconnect storms, so the
    // per-message loop does not re-register with both channels every time round.
    let storm_seen = *ctx.storm.borrow();
    let mut stop_rx = ctx.stop.clone();
    let mut storm_rx = ctx.storm.clone();
    let control = async move {
        let mut storm_alive = true;
        loop {
            tokio::select! {
                changed = stop_rx.changed() => {
                    if changed.is_err() || *stop_rx.borrow() {
                        return Control::Stop;
                    }
                }
                changed = storm_rx.changed(), if storm_alive => {
                    if changed.is_err() {
                        storm_alive = false;
                    } else if *storm_rx.borrow() != storm_seen {
                        return Control::Storm;
                    }
                }
            }
        }
    };
    tokio::pin!(control);
    let mut control_done = false;
    let sleep = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;

    loop {
        // Hand out what the model wants to send, one CALL at a time (or, as an injected
        // fault, a malformed CALL the gateway must refuse, without the model's knowledge).
        if pending.is_none()
            && stopping.is_none()
            && model.registration() == Registration::Accepted
            && cfg.faults.malformed > 0.0
            && rng.unit() < cfg.faults.malformed
        {
            let id = next_id.to_string();
            *next_id += 1;
            let text = malformed_call(&id, version, rng.next_u64());
            Stats::add(&stats.faults_injected);
            let sent = Instant::now();
            if ws.send(Message::Text(text.into())).await.is_err() {
                stats.error("send_failed");
                return SessionEnd::Lost;
            }
            pending = Some(Pending {
                id,
                action: "malformed",
                sent,
                deadline: sent + cfg.call_timeout,
                malformed: true,
            });
        }
        if pending.is_none() && stopping.is_none() {
            if let Some(call) = model.next_call(wall_clock()) {
                let id = next_id.to_string();
                *next_id += 1;
                let text = if quirky {
                    let mut payload = call.payload.to_value();
                    crate::quirks::bend(
                        version,
                        call.action,
                        &mut payload,
                        &cfg.faults.quirks.kinds,
                    );
                    call_text(&id, call.action, &Payload::Json(payload))
                } else {
                    call_text(&id, call.action, &call.payload)
                };
                let sent = Instant::now();
                if ws.send(Message::Text(text.into())).await.is_err() {
                    stats.error("send_failed");
                    return SessionEnd::Lost;
                }
                Stats::add(&stats.calls_sent);
                pending = Some(Pending {
                    id,
                    action: call.action,
                    sent,
                    deadline: sent + cfg.call_timeout,
                    malformed: false,
                });
            }
        }
        while let Some(event) = model.poll_event() {
            match event {
                Event::Reboot { reconnect_after_ms } => {
                    let _ = ws.close(None).await;
                    return SessionEnd::Reboot(Duration::from_millis(reconnect_after_ms));
                }
                Event::TransactionsChanged => {
                    if let Some(s) = ctx.directory.slots.get(slot) {
                        s.set_transactions(model.transaction_ids());
                    }
                }
            }
        }
        if !was_registered && model.registration() == Registration::Accepted {
            was_registered = true;
            stats.booted(connect_started.elapsed());
            // operator commands target chargers the gateway has accepted
            if let Some(s) = ctx.directory.slots.get(slot) {
                s.online.store(true, Ordering::Relaxed);
            }
        }
        if let Some(limit) = stopping {
            if pending.is_none() || Instant::now() >= limit {
                if pending.is_some() {
                    stats.error("unanswered_at_end");
                }
                let _ = ws.close(None).await;
                return SessionEnd::Stop;
            }
        }

        // When to wake up if nothing arrives.
        let now_wall = wall_clock();
        let base = Instant::now();
        let mut deadline = base + Duration::from_secs(3600);
        if let Some(wake) = model.next_wakeup() {
            deadline = deadline.min(deadline_of(wake, now_wall, base));
        }
        if let Some(p) = &pending {
            deadline = deadline.min(p.deadline);
        }
        if let Some((at, _)) = delayed.front() {
            deadline = deadline.min(*at);
        }
        if let Some(at) = next_fault {
            deadline = deadline.min(at);
        }
        if let Some(at) = stopping {
            deadline = deadline.min(at);
        }
        // Re-arm only to wake earlier: a timer that fires too early just loops once more,
        // and the common case (a new CALL pushes its timeout later) costs no timer update.
        if armed.is_none_or(|at| deadline < at) {
            sleep.as_mut().reset(deadline);
            armed = Some(deadline);
        }

        tokio::select! {
            biased;
            incoming = ws.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        stats.error("gateway_sent_binary");
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None => {
                        if stopping.is_none() {
                            stats.error("closed_by_gateway");
                        }
                        return SessionEnd::Lost;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        if stopping.is_none() {
                            stats.error(match e {
                                tungstenite::Error::Io(_) | tungstenite::Error::ConnectionClosed => "connection_reset".to_owned(),
                                tungstenite::Error::Protocol(p) => format!("ws_protocol:{p}"),
                                other => format!("ws:{other}"),
                            });
                        }
                        return SessionEnd::Lost;
                    }
                };
                let frame = match Frame::parse(text.as_str()) {
                    Ok(frame) => frame,
                    Err(_) => {
                        stats.error("unreadable_frame_from_gateway");
                        continue;
                    }
                };
                match frame {
                    Frame::Call { id, action, payload } => {
                        Stats::add(&stats.calls_received);
                        if cfg.faults.no_answer > 0.0 && rng.unit() < cfg.faults.no_answer {
                            Stats::add(&stats.faults_injected);
                            continue;
                        }
                        let answer = answer_call(model, cfg.validator.as_deref(), version, &action, &payload);
                        let text = match answer {
                            Answer::Result(value) => Frame::CallResult { id, payload: value }.to_text(),
                            Answer::Error { code, description } => {
                                stats.note(format!("refused_gateway_call:{action}:{}", code.as_str(version)));
                                Frame::call_error(&id, version, code, &description).to_text()
                            }
                        };
                        if cfg.faults.slow_answer.is_zero() {
                            if ws.send(Message::Text(text.into())).await.is_err() {
                                stats.error("send_failed");
                                return SessionEnd::Lost;
                            }
                            Stats::add(&stats.answers_sent);
                        } else {
                            Stats::add(&stats.faults_injected);
                            delayed.push_back((Instant::now() + cfg.faults.slow_answer, text));
                        }
                    }
                    Frame::CallResult { id, payload } => {
                        let Some(p) = pending.take_if(|p| p.id == id) else {
                            stats.error("result_for_unknown_call");
                            continue;
                        };
                        if p.malformed {
                            stats.error(format!("malformed_accepted:{}", p.action));
                            continue;
                        }
                        stats.answered(p.action, p.sent.elapsed());
                        if let Some(validator) = &cfg.validator {
                            if let Err(e) = validator.validate_response(version, p.action, &payload) {
                                stats.error(format!("invalid_response:{}:{}", p.action, e.code.as_str(version)));
                            }
                        }
                        model.handle_result(wall_clock(), &payload);
                    }
                    Frame::CallError { id, code, description, .. } => {
                        let Some(p) = pending.take_if(|p| p.id == id) else {
                            stats.error("error_for_unknown_call");
                            continue;
                        };
                        if p.malformed {
                            Stats::add(&stats.malformed_refused);
                            continue;
                        }
                        stats.error(format!("callerror:{}:{code}", p.action));
                        model.handle_error(wall_clock(), &code, &description);
                    }
                }
            }
            signal = &mut control, if !control_done => {
                control_done = true;
                match signal {
                    Control::Stop => stopping = Some(Instant::now() + Duration::from_secs(2)),
                    Control::Storm => {
                        Stats::add(&stats.faults_injected);
                        stats.note("fault:storm_disconnect");
                        return SessionEnd::Dropped;
                    }
                }
            }
            _ = &mut sleep => {
                armed = None;
                let now = Instant::now();
                if pending.as_ref().is_some_and(|p| p.deadline <= now) {
                    if let Some(p) = pending.take() {
                        stats.error(format!("timeout:{}", p.action));
                        if !p.malformed {
                            model.handle_timeout(wall_clock());
                        }
                    }
                }
                while delayed.front().is_some_and(|(at, _)| *at <= now) {
                    if let Some((_, text)) = delayed.pop_front() {
                        if ws.send(Message::Text(text.into())).await.is_err() {
                            stats.error("send_failed");
                            return SessionEnd::Lost;
                        }
                        Stats::add(&stats.answers_sent);
                    }
                }
                if next_fault.is_some_and(|at| at <= now) {
                    Stats::add(&stats.faults_injected);
                    stats.note("fault:disconnect");
                    return SessionEnd::Dropped;
                }
                model.tick(wall_clock());
            }
        }
    }
}

/// The charger's answer to a gateway CALL: schema check first (as a real charger's OCPP
/// stack would), then the model.
fn answer_call(
    model: &mut Charger,
    validator: Option<&Validator>,
    version: OcppVersion,
    action: &str,
    payload: &Value,
) -> Answer {
    if let Some(validator) = validator {
        if voltgate_ocpp::is_known_action(version, action) {
            if let Err(e) = validator.validate_request(version, action, payload) {
                return Answer::Error {
                    code: e.code,
                    description: e.description,
                };
            }
        }
    }
    model.handle_call(wall_clock(), action, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_build_charger_urls() {
        let e = Endpoint::parse("ws://127.0.0.1:9000/ocpp").unwrap();
        assert_eq!(
            (e.tls, e.host.as_str(), e.port, e.path.as_str()),
            (false, "127.0.0.1", 9000, "/ocpp")
        );
        assert_eq!(e.charger_url("SIM-1"), "ws://127.0.0.1:9000/ocpp/SIM-1");
        assert_eq!(e.charger_url("a b/c"), "ws://127.0.0.1:9000/ocpp/a%20b%2Fc");
        let e = Endpoint::parse("wss://gw.example.com/ocpp/").unwrap();
        assert_eq!((e.tls, e.port, e.path.as_str()), (true, 443, "/ocpp"));
        let e = Endpoint::parse("ws://[::1]:9000").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("::1", 9000, "")
        );
        assert_eq!(Endpoint::parse("http://x"), Err(EndpointError::Scheme));
        assert_eq!(Endpoint::parse("ws:///ocpp"), Err(EndpointError::NoHost));
        assert!(matches!(
            Endpoint::parse("ws://h:99999/"),
            Err(EndpointError::Port(_))
        ));
    }

    #[test]
    fn malformed_calls_are_refusable_frames() {
        let validator = Validator::new().unwrap();
        for version in OcppVersion::ALL {
            for pick in 0..3 {
                let text = malformed_call("9", version, pick);
                let Frame::Call {
                    id,
                    action,
                    payload,
                } = Frame::parse(&text).unwrap()
                else {
                    panic!("{text}")
                };
                assert_eq!(id, "9");
                assert!(
                    validator
                        .check_request(version, &action, payload, voltgate_ocpp::Tolerance::Lenient)
                        .is_err(),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn chargers_spread_round_robin_and_fail_over_evenly_through_every_url() {
        let starts: Vec<usize> = (0..7).map(|n| Rotation::new(n, 3).current()).collect();
        assert_eq!(starts, [0, 1, 2, 0, 1, 2, 0]);
        for count in 1..=5 {
            for index in 0..40 {
                let mut r = Rotation::new(index, count);
                let mut seen = vec![r.current()];
                for _ in 1..count {
                    r.advance();
                    seen.push(r.current());
                }
                seen.sort_unstable();
                assert_eq!(seen, (0..count).collect::<Vec<_>>(), "every URL once");
                r.advance();
                assert_eq!(r.current(), index % count, "then home again");
            }
        }
        // The chargers at home on URL 2 of 4 fail over to 0, 1 and 3 alike.
        let mut landed = [0usize; 4];
        for index in (2..1200).step_by(4) {
            let mut r = Rotation::new(index, 4);
            r.advance();
            landed[r.current()] += 1;
        }
        assert_eq!(landed, [100, 100, 0, 100]);
        let mut one = Rotation::new(5, 1);
        one.advance();
        assert_eq!(one.current(), 0);
        assert_eq!(Rotation::new(3, 0).current(), 0);
    }

    #[test]
    fn lean_config_keeps_buffers_small() {
        let c = lean_ws_config();
        assert!(c.read_buffer_size <= 4096);
        assert_eq!(c.write_buffer_size, 0);
    }
}
