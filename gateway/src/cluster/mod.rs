//! Several gateway nodes, one estate: what moves between nodes, over NATS.
//!
//! Only a node started with `--cluster` has a [`Cluster`]; without it nothing here runs and
//! the gateway is the single process it always was. The nodes share one PostgreSQL store
//! (durable state) and one NATS (everything that moves between them); this module owns the
//! NATS side, and the charger server, the gate and the API only ask it questions:
//!
//! - **Membership.** A node takes its id in the JetStream key-value bucket `voltgate_nodes`
//!   with `create` (refused while another live node holds it) and renews it every second; the
//!   bucket's maximum age lets the id of a node that died lapse within [`NODE_LEASE`].
//! - **Presence.** `voltgate_chargers` maps each charger to the node holding its socket. A
//!   node writes the entry when a charger connects; every node watches the bucket in order, so
//!   a node whose session is older than the newest entry closes it (takeover), and any node
//!   can say who holds a charger. An entry counts only while its node's lease is fresh.
//! - **Routing.** A command for a charger held elsewhere is decided and audited on the node
//!   that took the request (`gate.rs`); only the raw CALL and its allow record id travel to
//!   the holder by request/reply, where [`ForwardedCommand`] — made only here, from such a
//!   message — is the holder's key to the gate's door.
//! - **Change propagation.** Every change committed through the estate is announced on
//!   `voltgate.changes` with what it was ([`Changes`]); the other nodes follow each kind on its
//!   own (scopes and chargers added, rules replayed onto the stations they hold, approvals and
//!   charger settings reread), reload everything only for what cannot be followed so, and
//!   confirm; the API request that made the change answers once the live nodes
//!   confirmed (or [`PROPAGATION_WAIT`] passed); so does the handshake of a charger that was
//!   auto-registered. A request waits for its own changes only ([`committed_by`]), not for
//!   the ones other requests made meanwhile.
//! - **Missed changes.** From the moment a node loses NATS it may miss notices, so it is
//!   *stale*: every operator request and every charger message that decides on the estate
//!   first waits for a reload from the store that began after it arrived ([`Cluster::catch_up`],
//!   one reload shared by everything waiting), and is refused (503, CALLERROR InternalError)
//!   when the store cannot be read. The first reload that begins while NATS is back and ends
//!   with no disconnect in between makes the node fresh again. So a node never decides on
//!   state older than what it may have missed.

pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use dashmap::DashMap;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use voltgate_ocpp::OcppVersion;

use crate::charger::CallFailure;
use crate::state::{AppState, SharedState};
use wire::{Ack, Changes, CommandAnswer, CommandRequest, HolderValue, Notice};

tokio::task_local! {
    /// The estate's commit count after the last change the work run by [`committed_by`] made.
    static COMMITTED_HERE: std::cell::Cell<Option<u64>>;
}

/// Runs `work` and returns its output with the commit count after the last change it made
/// through the estate (`None` if it made none), so the caller waits for its own changes only.
/// Changes are seen when the estate's commit hook runs while `work` is being polled, as it
/// does for every change made by awaiting the estate.
pub(crate) async fn committed_by<F: std::future::Future>(work: F) -> (F::Output, Option<u64>) {
    COMMITTED_HERE
        .scope(std::cell::Cell::new(None), async {
            let output = work.await;
            (output, COMMITTED_HERE.with(std::cell::Cell::get))
        })
        .await
}

/// Called by the estate's commit hook: notes the commit for the [`committed_by`] around it.
fn note_commit(count: u64) {
    let _ = COMMITTED_HERE.try_with(|here| here.set(Some(count)));
}

/// Change notices heard since the node last followed them: whom to confirm, and what changed.
#[derive(Default)]
struct PendingNotices {
    /// Reply subjects and notice numbers to confirm once followed.
    acks: Vec<(async_nats::Subject, u64)>,
    changes: Changes,
}

/// A charger this node is about to serve or command that another node registered and whose
/// notice has not been followed here yet (a confirmation that outlasted its wait): adopted
/// from the store now, one store read, and only for a charger the engine does not know. A
/// single node's engine holds every charger, so there it does nothing.
pub(crate) async fn follow_charger(state: &AppState, charger_id: &str) {
    if state.cluster.is_none() || state.estate.engine().scope_kind(charger_id).is_some() {
        return;
    }
    if let Err(err) = state
        .estate
        .adopt_chargers(&[voltgate_estate::Registration::stored(charger_id)])
        .await
    {
        tracing::warn!(error = %err, %charger_id, "cannot read a charger registered elsewhere");
    }
}

/// The most chargers and scopes one change notice names: ids are at most 64 characters (256
/// bytes; a scope's kind and parent at most as much again), so a notice stays within NATS's
/// default 1 MiB message; a batch beyond it is announced as a reload.
const MAX_NAMED_PER_NOTICE: usize = 1_000;

/// How long a node's id stays taken after its last renewal.
pub(crate) const NODE_LEASE: Duration = Duration::from_secs(3);
/// How often a node renews its id.
const NODE_RENEW: Duration = Duration::from_secs(1);
/// The longest the first connection to NATS may take before start fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the request that made a change waits for the other nodes to confirm it.
pub(crate) const PROPAGATION_WAIT: Duration = Duration::from_secs(1);
/// Extra time a forwarded command may take over the charger's own timeout (two NATS hops).
const FORWARD_SLACK: Duration = Duration::from_millis(500);
/// How long a node waits for another node's view of a charger.
const LIVE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the client pings NATS to notice a server that went silent.
const NATS_PING_INTERVAL: Duration = Duration::from_secs(1);
/// Pause before a watch that ended is opened again.
const REWATCH_DELAY: Duration = Duration::from_millis(250);

const NODES_BUCKET: &str = "voltgate_nodes";
const CHARGERS_BUCKET: &str = "voltgate_chargers";
const CHANGES_SUBJECT: &str = "voltgate.changes";

fn command_subject(node: &str) -> String {
    format!("voltgate.node.{node}.command")
}

fn live_subject(node: &str) -> String {
    format!("voltgate.node.{node}.live")
}

fn acks_subject(node: &str) -> String {
    format!("voltgate.node.{node}.acks")
}

/// Why a node could not join its cluster. Never shows a credential from the NATS URLs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JoinError {
    #[error("cannot reach NATS at {servers} ({reason}); is --cluster right and NATS running?")]
    Unreachable { servers: String, reason: String },
    #[error("NATS at {servers} has no JetStream (start nats-server with -js): {reason}")]
    NoJetStream { servers: String, reason: String },
    #[error("node id `{0}` is held by another live node; give this node its own --node-id")]
    NodeIdTaken(String),
}

/// Why a forwarded command produced no answer.
#[derive(Debug)]
pub(crate) enum ForwardFailure {
    /// The holder answered: the charger failed the call (or is no longer there).
    Call(CallFailure),
    /// NATS cannot be reached, so neither can the holder.
    Unavailable,
}

/// The node holding a charger's socket, as the presence bucket says.
#[derive(Debug, Clone)]
pub(crate) struct Holder {
    pub node: String,
    pub version: OcppVersion,
    revision: u64,
}

/// This node's own presence entry for a connected charger.
#[derive(Debug, Clone, Copy)]
struct Claim {
    connection: u64,
    /// The entry's revision; `u64::MAX` until the bucket has answered.
    revision: u64,
}

/// A command that arrived from another node with the id of its allow record, already written
/// there. Made only by this module's receiving path, so it is the one way for a holder to send
/// a command it did not decide itself.
#[derive(Debug)]
pub(crate) struct ForwardedCommand {
    audit_id: i64,
    charger_id: String,
    action: String,
    payload: Value,
    timeout: Duration,
}

impl ForwardedCommand {
    pub(crate) fn audit_id(&self) -> i64 {
        self.audit_id
    }
    pub(crate) fn charger_id(&self) -> &str {
        &self.charger_id
    }
    pub(crate) fn action(&self) -> &str {
        &self.action
    }
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
    pub(crate) fn into_payload(self) -> Value {
        self.payload
    }
}

/// This node's membership of the cluster.
pub(crate) struct Cluster {
    node_id: String,
    client: async_nats::Client,
    nodes: kv::Store,
    chargers: kv::Store,
    /// Every charger's holder, as last seen in the presence bucket.
    holders: DashMap<String, Holder>,
    /// When each node last renewed its id (the NATS server's clock).
    peers: DashMap<String, OffsetDateTime>,
    claims: DashMap<String, Claim>,
    up: AtomicBool,
    events: Mutex<Option<mpsc::UnboundedReceiver<async_nats::Event>>>,
    /// Change notices heard and not yet followed.
    pending: Mutex<PendingNotices>,
    reload: Notify,
    commits: mpsc::UnboundedSender<(u64, voltgate_estate::Committed)>,
    commit_rx: Mutex<Option<mpsc::UnboundedReceiver<(u64, voltgate_estate::Committed)>>>,
    /// The highest commit count every live node confirmed.
    confirmed: watch::Sender<u64>,
    /// The last notice number seen from each node, to notice a gap.
    last_notice: Mutex<HashMap<String, u64>>,
    /// Whether this node may have missed change notices (NATS was lost since its last
    /// reload that began while connected).
    stale: AtomicBool,
    /// How often the connection to NATS was lost.
    disconnects: AtomicU64,
    /// Serialises catch-up reloads.
    catch_up_turn: tokio::sync::Mutex<()>,
    /// How many catch-up reloads have finished.
    catch_ups: AtomicU64,
}

impl Cluster {
    /// Connects to NATS (bounded), opens the buckets and takes `node_id`; refused when NATS
    /// cannot be reached or another live node holds the id.
    pub(crate) async fn join(urls: &[String], node_id: &str) -> Result<Arc<Cluster>, JoinError> {
        let servers = urls
            .iter()
            .map(|url| redact(url))
            .collect::<Vec<_>>()
            .join(",");
        let addresses = urls
            .iter()
            .map(|url| url.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| JoinError::Unreachable {
                servers: servers.clone(),
                reason: format!("address not understood: {}", err.kind()),
            })?;
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let options = async_nats::ConnectOptions::new()
            .name(format!("voltgate {node_id}"))
            .connection_timeout(CONNECT_TIMEOUT)
            // A server gone silent (a partition, not a closed socket) is noticed after two
            // unanswered pings: the node turns stale within seconds, not after the default minute.
            .ping_interval(NATS_PING_INTERVAL)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(1_000))
            })
            .event_callback(move |event| {
                let event_tx = event_tx.clone();
                async move {
                    let _ = event_tx.send(event);
                }
            });
        let client = tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(addresses))
            .await
            .map_err(|_| JoinError::Unreachable {
                servers: servers.clone(),
                reason: "timed out".to_owned(),
            })?
            .map_err(|err| JoinError::Unreachable {
                servers: servers.clone(),
                reason: err.kind().to_string(),
            })?;
        let jetstream = async_nats::jetstream::new(client.clone());
        let no_jetstream = |err: String| JoinError::NoJetStream {
            servers: servers.clone(),
            reason: err,
        };
        let nodes = open_bucket(&jetstream, NODES_BUCKET, NODE_LEASE)
            .await
            .map_err(no_jetstream)?;
        let chargers = open_bucket(&jetstream, CHARGERS_BUCKET, Duration::ZERO)
            .await
            .map_err(no_jetstream)?;
        match nodes.create(node_id, node_value()).await {
            Ok(_) => {}
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                return Err(JoinError::NodeIdTaken(node_id.to_owned()))
            }
            Err(err) => return Err(no_jetstream(err.to_string())),
        }
        let (commits, commit_rx) = mpsc::unbounded_channel();
        Ok(Arc::new(Cluster {
            node_id: node_id.to_owned(),
            client,
            nodes,
            chargers,
            holders: DashMap::new(),
            peers: DashMap::new(),
            claims: DashMap::new(),
            up: AtomicBool::new(true),
            events: Mutex::new(Some(event_rx)),
            pending: Mutex::new(PendingNotices::default()),
            reload: Notify::new(),
            commits,
            commit_rx: Mutex::new(Some(commit_rx)),
            confirmed: watch::channel(0).0,
            last_notice: Mutex::new(HashMap::new()),
            stale: AtomicBool::new(false),
            disconnects: AtomicU64::new(0),
            catch_up_turn: tokio::sync::Mutex::new(()),
            catch_ups: AtomicU64::new(0),
        }))
    }

    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether NATS is reachable now.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether this node may have missed changes made on other nodes.
    pub(crate) fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    /// Returns at once on a fresh node; on a stale one, once a reload from the store that
    /// began after this call has finished. Concurrent callers share reloads: everyone
    /// waiting when one begins is served by it or by the next.
    pub(crate) async fn catch_up(&self, state: &AppState) -> Result<(), String> {
        if !self.is_stale() {
            return Ok(());
        }
        let arrived = self.catch_ups.load(Ordering::Acquire);
        let _turn = self.catch_up_turn.lock().await;
        // Two reloads finished since this call arrived: the second began after it. A node
        // made fresh meanwhile gets every later change by notice again.
        if self.catch_ups.load(Ordering::Acquire) >= arrived + 2 || !self.is_stale() {
            return Ok(());
        }
        self.reload_estate(state).await?;
        self.catch_ups.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Reloads everything another node may have changed; a reload that began while NATS was
    /// up and saw no disconnect until it ended makes the node fresh.
    async fn reload_estate(&self, state: &AppState) -> Result<(), String> {
        let disconnects = self.disconnects.load(Ordering::Acquire);
        let connected = self.is_up();
        reload(state).await?;
        if connected && self.disconnects.load(Ordering::Acquire) == disconnects {
            self.stale.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// Starts the node's background work: renewing its id, watching nodes and presence,
    /// serving forwarded commands and live views, and following and announcing changes.
    pub(crate) async fn run(self: &Arc<Self>, state: SharedState) -> Result<(), JoinError> {
        let commits = self.commits.clone();
        if state
            .estate
            .set_commit_hook(Box::new(move |count, committed| {
                note_commit(count);
                let _ = commits.send((count, committed.clone()));
            }))
            .is_err()
        {
            tracing::error!("the estate already has a commit hook; changes are not announced");
        }
        let subscribe = |subject: String| {
            let client = self.client.clone();
            async move { client.subscribe(subject).await }
        };
        let unreachable = |err: async_nats::SubscribeError| JoinError::Unreachable {
            servers: "NATS".to_owned(),
            reason: err.to_string(),
        };
        let commands = subscribe(command_subject(&self.node_id))
            .await
            .map_err(unreachable)?;
        let lives = subscribe(live_subject(&self.node_id))
            .await
            .map_err(unreachable)?;
        let notices = subscribe(CHANGES_SUBJECT.to_owned())
            .await
            .map_err(unreachable)?;
        let acks = subscribe(acks_subject(&self.node_id))
            .await
            .map_err(unreachable)?;
        tokio::spawn(self.clone().renew());
        tokio::spawn(self.clone().watch_nodes());
        tokio::spawn(self.clone().watch_presence(state.clone()));
        tokio::spawn(self.clone().serve_commands(commands, state.clone()));
        tokio::spawn(self.clone().serve_lives(lives, state.clone()));
        tokio::spawn(self.clone().follow_changes(notices));
        tokio::spawn(self.clone().reload_on_notice(state.clone()));
        tokio::spawn(self.clone().announce_changes(acks));
        tokio::spawn(self.clone().follow_connection());
        Ok(())
    }

    /// The node holding `charger_id`'s socket, if that node is alive.
    pub(crate) fn holder(&self, charger_id: &str) -> Option<Holder> {
        let holder = self.holders.get(charger_id)?.clone();
        self.is_alive(&holder.node).then_some(holder)
    }

    fn is_alive(&self, node: &str) -> bool {
        if node == self.node_id {
            return true;
        }
        self.peers.get(node).is_some_and(|renewed| {
            crate::clock::now() - *renewed
                < time::Duration::try_from(NODE_LEASE).unwrap_or_default()
        })
    }

    /// The other nodes whose ids are taken now, read from the bucket itself: the watch of the
    /// bucket can lag after NATS restarts, and a change must then still wait
    /// for every live node. When the bucket cannot be read in time, every node the watch ever
    /// saw counts: waiting for one that is gone costs at most [`PROPAGATION_WAIT`].
    async fn live_peers_now(&self) -> usize {
        let read = async {
            let keys = self.nodes.keys().await.ok()?;
            // A node that renews its id while the keys are listed is listed again.
            let ids: std::collections::HashSet<String> = keys
                .filter_map(|key| async move { key.ok() })
                .collect()
                .await;
            Some(ids.iter().filter(|id| **id != self.node_id).count())
        };
        match tokio::time::timeout(LIVE_TIMEOUT, read).await {
            Ok(Some(count)) => count,
            _ => self
                .peers
                .iter()
                .filter(|peer| peer.key() != &self.node_id)
                .count(),
        }
    }

    /// Records that `charger_id` connected here (session `connection`): every other node
    /// closes an older session of it.
    pub(crate) async fn claim(&self, charger_id: &str, connection: u64, version: OcppVersion) {
        self.claims.insert(
            charger_id.to_owned(),
            Claim {
                connection,
                revision: u64::MAX,
            },
        );
        let value = HolderValue {
            node: self.node_id.clone(),
            version: version.subprotocol().to_owned(),
        };
        match self.put_presence(charger_id, &value).await {
            Ok(revision) => {
                if let Some(mut claim) = self.claims.get_mut(charger_id) {
                    if claim.connection == connection {
                        claim.revision = revision;
                    }
                }
            }
            Err(err) => {
                tracing::warn!(charger_id, error = %err, "presence not recorded in the cluster")
            }
        }
    }

    async fn put_presence(&self, charger_id: &str, value: &HolderValue) -> Result<u64, String> {
        let bytes = serde_json::to_vec(value).map_err(|err| err.to_string())?;
        self.chargers
            .put(wire::charger_key(charger_id), bytes.into())
            .await
            .map_err(|err| err.to_string())
    }

    /// Records that session `connection` of `charger_id` ended here; the presence entry goes
    /// unless another node has taken the charger since.
    pub(crate) async fn release(&self, charger_id: &str, connection: u64) {
        let Some((_, claim)) = self
            .claims
            .remove_if(charger_id, |_, claim| claim.connection == connection)
        else {
            return;
        };
        if claim.revision != u64::MAX {
            // Refused when the entry moved on: another node holds the charger now.
            let _ = self
                .chargers
                .delete_expect_revision(wire::charger_key(charger_id), Some(claim.revision))
                .await;
        }
    }

    /// Sends a CALL to the node holding the charger and waits for the charger's answer.
    pub(crate) async fn forward(
        &self,
        holder: &Holder,
        audit_id: i64,
        charger_id: &str,
        action: &str,
        payload: Value,
        timeout: Duration,
    ) -> Result<Value, ForwardFailure> {
        if !self.is_up() {
            return Err(ForwardFailure::Unavailable);
        }
        let request = CommandRequest {
            audit_id,
            charger_id: charger_id.to_owned(),
            action: action.to_owned(),
            payload,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let bytes = serde_json::to_vec(&request)
            .map_err(|_| ForwardFailure::Call(CallFailure::NotConnected))?;
        let answer = self
            .client
            .send_request(
                command_subject(&holder.node),
                async_nats::Request::new()
                    .payload(bytes.into())
                    .timeout(Some(timeout + FORWARD_SLACK)),
            )
            .await;
        let message = match answer {
            Ok(message) => message,
            Err(err) => {
                return Err(match err.kind() {
                    async_nats::client::RequestErrorKind::NoResponders => {
                        ForwardFailure::Call(CallFailure::NotConnected)
                    }
                    async_nats::client::RequestErrorKind::TimedOut if self.is_up() => {
                        ForwardFailure::Call(CallFailure::Timeout)
                    }
                    _ => ForwardFailure::Unavailable,
                })
            }
        };
        match serde_json::from_slice::<CommandAnswer>(&message.payload) {
            Ok(answer) => answer.into_result().map_err(ForwardFailure::Call),
            Err(_) => Err(ForwardFailure::Unavailable),
        }
    }

    /// The holder's view of a charger connected elsewhere (`None` when it cannot be had).
    pub(crate) async fn live_view(&self, holder: &Holder, charger_id: &str) -> Option<Value> {
        if !self.is_up() {
            return None;
        }
        let request = async_nats::Request::new()
            .payload(charger_id.as_bytes().to_vec().into())
            .timeout(Some(LIVE_TIMEOUT));
        let message = self
            .client
            .send_request(live_subject(&holder.node), request)
            .await
            .ok()?;
        serde_json::from_slice::<Option<Value>>(&message.payload).ok()?
    }

    /// Waits until every live node confirmed the changes counted up to `commits`, at most
    /// [`PROPAGATION_WAIT`].
    pub(crate) async fn settled(&self, commits: u64) {
        let mut confirmed = self.confirmed.subscribe();
        let _ = tokio::time::timeout(
            PROPAGATION_WAIT,
            confirmed.wait_for(|done| *done >= commits),
        )
        .await;
    }

    /// Gives up this node's id and its presence entries (a clean shutdown).
    pub(crate) async fn leave(&self) {
        let claims: Vec<(String, Claim)> = self
            .claims
            .iter()
            .map(|claim| (claim.key().clone(), *claim.value()))
            .collect();
        for (charger_id, claim) in claims {
            self.release(&charger_id, claim.connection).await;
        }
        let _ = self.nodes.purge(&self.node_id).await;
        let _ = self.client.flush().await;
    }

    async fn renew(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(NODE_RENEW);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = self.nodes.put(&self.node_id, node_value()).await {
                tracing::debug!(error = %err, "node id not renewed");
            }
        }
    }

    async fn watch_nodes(self: Arc<Self>) {
        loop {
            match self.nodes.watch_with_history(">").await {
                Ok(mut entries) => {
                    while let Some(Ok(entry)) = entries.next().await {
                        match entry.operation {
                            kv::Operation::Put => {
                                self.peers.insert(entry.key, entry.created);
                            }
                            kv::Operation::Delete | kv::Operation::Purge => {
                                self.peers.remove(&entry.key);
                            }
                        }
                    }
                }
                Err(err) => tracing::debug!(error = %err, "cannot watch the cluster's nodes"),
            }
            tokio::time::sleep(REWATCH_DELAY).await;
        }
    }

    async fn watch_presence(self: Arc<Self>, state: SharedState) {
        loop {
            match self.chargers.watch_with_history(">").await {
                Ok(mut entries) => {
                    while let Some(Ok(entry)) = entries.next().await {
                        self.on_presence(&state, entry).await;
                    }
                }
                Err(err) => tracing::debug!(error = %err, "cannot watch charger presence"),
            }
            tokio::time::sleep(REWATCH_DELAY).await;
        }
    }

    async fn on_presence(&self, state: &SharedState, entry: kv::Entry) {
        let Some(charger_id) = wire::charger_from_key(&entry.key) else {
            return;
        };
        let value = match entry.operation {
            kv::Operation::Put => serde_json::from_slice::<HolderValue>(&entry.value).ok(),
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        let Some(value) = value else {
            self.holders
                .remove_if(&charger_id, |_, held| held.revision <= entry.revision);
            return;
        };
        let Some(version) = OcppVersion::from_subprotocol(&value.version) else {
            return;
        };
        if value.node != self.node_id {
            let older_here = self
                .claims
                .get(&charger_id)
                .filter(|claim| claim.revision < entry.revision)
                .map(|claim| claim.connection);
            if let Some(connection) = older_here {
                tracing::info!(
                    charger_id = %charger_id,
                    node = %value.node,
                    "charger connected to another node; closing this session"
                );
                state.chargers.close_taken_over(&charger_id, connection);
            }
        } else if !entry.seen_current && !self.claims.contains_key(&charger_id) {
            // Left by an earlier run of this node, which held the charger then.
            let _ = self
                .chargers
                .delete_expect_revision(&entry.key, Some(entry.revision))
                .await;
            return;
        }
        self.holders.insert(
            charger_id,
            Holder {
                node: value.node,
                version,
                revision: entry.revision,
            },
        );
    }

    async fn serve_commands(
        self: Arc<Self>,
        mut requests: async_nats::Subscriber,
        state: SharedState,
    ) {
        while let Some(message) = requests.next().await {
            let Some(reply) = message.reply.clone() else {
                continue;
            };
            let state = state.clone();
            let client = self.client.clone();
            tokio::spawn(async move {
                let answer = match serde_json::from_slice::<CommandRequest>(&message.payload) {
                    Ok(request) => {
                        let forwarded = ForwardedCommand {
                            audit_id: request.audit_id,
                            charger_id: request.charger_id,
                            action: request.action,
                            payload: request.payload,
                            timeout: Duration::from_millis(request.timeout_ms),
                        };
                        CommandAnswer::from_result(
                            crate::gate::deliver_forwarded(&state, forwarded).await,
                        )
                    }
                    Err(_) => CommandAnswer::from_result(Err(CallFailure::NotConnected)),
                };
                if let Ok(bytes) = serde_json::to_vec(&answer) {
                    let _ = client.publish(reply, bytes.into()).await;
                }
            });
        }
    }

    async fn serve_lives(
        self: Arc<Self>,
        mut requests: async_nats::Subscriber,
        state: SharedState,
    ) {
        while let Some(message) = requests.next().await {
            let Some(reply) = message.reply else {
                continue;
            };
            let charger_id = String::from_utf8_lossy(&message.payload);
            let view = state
                .chargers
                .live(&charger_id)
                .filter(|live| live.connected)
                .and_then(|live| serde_json::to_value(live).ok());
            if let Ok(bytes) = serde_json::to_vec(&view) {
                let _ = self.client.publish(reply, bytes.into()).await;
            }
        }
    }

    async fn follow_changes(self: Arc<Self>, mut notices: async_nats::Subscriber) {
        while let Some(message) = notices.next().await {
            let Ok(notice) = serde_json::from_slice::<Notice>(&message.payload) else {
                continue;
            };
            if notice.node == self.node_id {
                continue;
            }
            let missed = {
                let mut last = self.last_notice.lock();
                let previous = last.insert(notice.node.clone(), notice.seq);
                previous.is_some_and(|seen| notice.seq > seen + 1)
            };
            if missed {
                tracing::info!(node = %notice.node, "missed change notices; reloading");
            }
            {
                let mut pending = self.pending.lock();
                pending.changes.merge(notice.changes);
                pending.changes.reload |= missed;
                if let Some(reply) = message.reply {
                    pending.acks.push((reply, notice.seq));
                }
            }
            self.reload.notify_one();
        }
    }

    /// Follows the changes whenever notices arrived (several at once cost one pass), then
    /// confirms them: each kind of change is followed on its own ([`follow`]), and anything
    /// that cannot be followed that way reloads the estate and the charger settings.
    async fn reload_on_notice(self: Arc<Self>, state: SharedState) {
        loop {
            self.reload.notified().await;
            let PendingNotices {
                acks: replies,
                changes,
            } = std::mem::take(&mut *self.pending.lock());
            let started = Instant::now();
            if let Err(err) = self.follow(&state, &changes).await {
                tracing::warn!(error = %err, "cannot follow a change made elsewhere; retrying");
                {
                    let mut pending = self.pending.lock();
                    pending.acks.extend(replies);
                    let later = std::mem::take(&mut pending.changes);
                    pending.changes = changes;
                    pending.changes.merge(later);
                }
                tokio::time::sleep(REWATCH_DELAY).await;
                self.reload.notify_one();
                continue;
            }
            tracing::debug!(
                took_ms = started.elapsed().as_millis() as u64,
                reload = changes.reload,
                registered = changes.registered.len(),
                scopes = changes.scopes.len(),
                rules = changes.rules,
                approved = changes.approved.len(),
                cards = changes.cards,
                charger_settings = changes.charger_settings,
                notices = replies.len(),
                "followed changes made on other nodes"
            );
            for (reply, seq) in replies {
                let ack = Ack {
                    node: self.node_id.clone(),
                    seq,
                };
                if let Ok(bytes) = serde_json::to_vec(&ack) {
                    let _ = self.client.publish(reply, bytes.into()).await;
                }
            }
        }
    }

    /// Brings this node's copies up to what `changes` committed elsewhere: scopes and chargers
    /// are added, rules replayed, approvals and charger settings reread, each alone; what
    /// cannot be added that way (a parent not known here yet) reloads everything.
    async fn follow(&self, state: &AppState, changes: &Changes) -> Result<(), String> {
        if changes.reload {
            return self.reload_estate(state).await;
        }
        if !changes.scopes.is_empty() && !state.estate.adopt_scopes(&changes.scopes).await {
            return self.reload_estate(state).await;
        }
        let registered: Vec<voltgate_estate::Registration> =
            changes.registered.iter().cloned().map(Into::into).collect();
        if !registered.is_empty()
            && !state
                .estate
                .adopt_chargers(&registered)
                .await
                .map_err(|err| err.to_string())?
        {
            return self.reload_estate(state).await;
        }
        for id in &changes.approved {
            state
                .estate
                .follow_approval(id)
                .await
                .map_err(|err| err.to_string())?;
        }
        if changes.rules
            && !state
                .estate
                .reload_rules()
                .await
                .map_err(|err| err.to_string())?
        {
            return self.reload_estate(state).await;
        }
        if changes.cards {
            state.estate.follow_cards();
        }
        if changes.charger_settings {
            reload_charger_settings(state).await?;
        }
        Ok(())
    }

    /// Announces this node's commits in order and records when the live nodes confirmed.
    async fn announce_changes(self: Arc<Self>, mut acks: async_nats::Subscriber) {
        let Some(mut commits) = self.commit_rx.lock().take() else {
            return;
        };
        let mut seq = 0u64;
        while let Some((mut count, committed)) = commits.recv().await {
            let mut changes = Changes::default();
            changes.note(committed);
            while let Ok((later, committed)) = commits.try_recv() {
                count = count.max(later);
                changes.note(committed);
            }
            seq += 1;
            let notice = Notice {
                node: self.node_id.clone(),
                seq,
                // A notice must fit a NATS message; past that many names a reload is cheaper.
                changes: changes.reload_beyond(MAX_NAMED_PER_NOTICE),
            };
            let Ok(bytes) = serde_json::to_vec(&notice) else {
                continue;
            };
            let started = Instant::now();
            // Counting the live nodes reads the nodes bucket, a round trip to NATS: it runs
            // while the notice travels, not before it. A node that joins in between may be
            // counted without hearing this notice (it loaded the estate as it started), which
            // costs one wait of PROPAGATION_WAIT.
            let (expected, published) = tokio::join!(
                self.live_peers_now(),
                self.client.publish_with_reply(
                    CHANGES_SUBJECT,
                    acks_subject(&self.node_id),
                    bytes.into()
                )
            );
            if let Err(err) = published {
                tracing::warn!(error = %err, "change notice not published");
            }
            let counted_ms = started.elapsed().as_millis() as u64;
            let deadline = Instant::now() + PROPAGATION_WAIT;
            // Only a node that reloaded after this notice confirms it: a late answer to an
            // earlier notice, whose wait timed out, must not count.
            let mut confirmed_by = std::collections::HashSet::new();
            while confirmed_by.len() < expected {
                match tokio::time::timeout_at(deadline, acks.next()).await {
                    Ok(Some(message)) => {
                        if let Ok(ack) = serde_json::from_slice::<Ack>(&message.payload) {
                            if ack.seq >= seq {
                                confirmed_by.insert(ack.node);
                            }
                        }
                    }
                    Ok(None) => return,
                    Err(_) => {
                        tracing::warn!(
                            confirmed = confirmed_by.len(),
                            expected,
                            "not every node confirmed a change in time"
                        );
                        break;
                    }
                }
            }
            tracing::debug!(
                seq,
                expected,
                confirmed = confirmed_by.len(),
                counted_ms,
                took_ms = started.elapsed().as_millis() as u64,
                "change notice confirmed"
            );
            self.confirmed
                .send_modify(|done| *done = (*done).max(count));
        }
    }

    /// Tracks the NATS connection; after a reconnect the node takes its id and its chargers
    /// again and reloads, since it may have missed change notices.
    async fn follow_connection(self: Arc<Self>) {
        let Some(mut events) = self.events.lock().take() else {
            return;
        };
        while let Some(event) = events.recv().await {
            match event {
                async_nats::Event::Disconnected => {
                    self.disconnects.fetch_add(1, Ordering::AcqRel);
                    self.stale.store(true, Ordering::Release);
                    self.up.store(false, Ordering::Relaxed);
                    tracing::warn!("lost the connection to NATS; cross-node commands answer 503");
                }
                async_nats::Event::Connected => {
                    tracing::info!("connected to NATS again; reloading the estate");
                    self.reload.notify_one();
                    let _ = self.nodes.put(&self.node_id, node_value()).await;
                    let claims: Vec<String> = self
                        .claims
                        .iter()
                        .map(|claim| claim.key().clone())
                        .collect();
                    for charger_id in claims {
                        let version = self.holders.get(&charger_id).map(|h| h.version);
                        if let Some(version) = version {
                            let value = HolderValue {
                                node: self.node_id.clone(),
                                version: version.subprotocol().to_owned(),
                            };
                            if let Ok(revision) = self.put_presence(&charger_id, &value).await {
                                if let Some(mut claim) = self.claims.get_mut(&charger_id) {
                                    claim.revision = revision;
                                }
                            }
                        }
                    }
                    self.up.store(true, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    }
}

/// API middleware of a cluster node, inside the request's own task: on a stale node an
/// operator request first waits for [`Cluster::catch_up`]; a request that changed the estate
/// answers once every live node confirmed the change (at most [`PROPAGATION_WAIT`]), so the
/// next request holds on any node.
pub(crate) async fn settle_changes(
    axum::extract::State(state): axum::extract::State<SharedState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Operator requests decide on the estate; probes and the documents do not.
    if request.uri().path().starts_with("/api/v1/") {
        if let Some(cluster) = &state.cluster {
            if let Err(err) = cluster.catch_up(&state).await {
                tracing::error!(error = %err, "stale after losing NATS and the store cannot be read");
                return crate::api::error::ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "this node may have missed changes and cannot read the store to catch up",
                )
                .into_response();
            }
        }
    }
    let Some(cluster) = &state.cluster else {
        return next.run(request).await;
    };
    let (response, committed) = committed_by(next.run(request)).await;
    if let Some(count) = committed {
        cluster.settled(count).await;
    }
    response
}

/// Reads everything another node may have changed back from the store.
async fn reload(state: &AppState) -> Result<(), String> {
    state.estate.reload().await.map_err(|err| err.to_string())?;
    reload_charger_settings(state).await
}

/// Rereads the charger settings this node keeps in memory: schema tolerances and behaviours.
async fn reload_charger_settings(state: &AppState) -> Result<(), String> {
    let tolerances = state
        .store
        .charger_schema_tolerances()
        .await
        .map_err(|err| err.to_string())?;
    state.quirks.reload(tolerances);
    let behaviours = state
        .store
        .charger_behaviours()
        .await
        .map_err(|err| err.to_string())?;
    state
        .behaviours
        .reload(behaviours)
        .map_err(|err| err.to_string())?;
    Ok(())
}

fn node_value() -> bytes::Bytes {
    crate::clock::now_rfc3339().into_bytes().into()
}

/// Opens a key-value bucket, creating its stream first when it does not exist. The stream is
/// made directly, with the settings the client's own bucket creation uses, because that path
/// first reads account fields NATS 2.9 does not send.
async fn open_bucket(
    jetstream: &async_nats::jetstream::Context,
    bucket: &str,
    max_age: Duration,
) -> Result<kv::Store, String> {
    if let Ok(store) = jetstream.get_key_value(bucket).await {
        return Ok(store);
    }
    jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            max_bytes: -1,
            max_message_size: -1,
            storage: async_nats::jetstream::stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: 1,
            discard: async_nats::jetstream::stream::DiscardPolicy::New,
            duplicate_window: if max_age.is_zero() {
                Duration::from_secs(120)
            } else {
                max_age.min(Duration::from_secs(120))
            },
            ..Default::default()
        })
        .await
        .map_err(|err| err.to_string())?;
    jetstream
        .get_key_value(bucket)
        .await
        .map_err(|err| err.to_string())
}

/// A NATS URL without its credentials (user and password, or a token).
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nats_url_is_shown_without_its_credentials() {
        assert_eq!(
            redact("nats://user:secret@nats.local:4222"),
            "nats://***@nats.local:4222"
        );
        assert_eq!(redact("nats://nats.local:4222"), "nats://nats.local:4222");
    }

    #[tokio::test]
    async fn work_is_told_of_its_own_commits_only() {
        note_commit(1);
        let ((), nothing) = committed_by(async {}).await;
        assert_eq!(nothing, None, "a commit before the work is not the work's");

        let ((), last) = committed_by(async {
            note_commit(3);
            tokio::task::yield_now().await;
            note_commit(4);
        })
        .await;
        assert_eq!(last, Some(4));

        // Another request's commit, on its own task while this work runs, is not this one's.
        let (started, start) = tokio::sync::oneshot::channel::<()>();
        let other = tokio::spawn(async move {
            let _ = start.await;
            note_commit(9);
        });
        let ((), seen) = committed_by(async {
            let _ = started.send(());
            other.await.unwrap();
        })
        .await;
        assert_eq!(seen, None);
    }
}
