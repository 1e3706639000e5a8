//! Local authorisation lists: every connected charger that supports them holds the id tokens
//! the role engine lets charge there, so a charger that loses its connection to us still lets
//! exactly the right people charge, and the refusals it may know (a card of someone who could
//! charge there, blocked or expired, is listed `Blocked` / `Expired`, so an offline charger
//! that lets unknown cards charge does not let that one). Where a rule change could make an `Accepted` the charger
//! remembers wrong (a token removed, blocked, expired or changed), its authorisation cache is
//! cleared too.
//!
//! # How the lists stay in sync
//!
//! - **Connect / boot.** The first message of a connection (and every BootNotification) queues
//!   a version check: `GetLocalListVersion` (then, once per connection, the limits below).
//!   When the charger holds the version we installed last (kept in the store, so this
//!   survives a restart of the gateway), only differences are sent from then on; an unknown
//!   or other version gets a `Full` list with a new version.
//!   A charger that answers `NotSupported` (or 1.6 version `-1`) gets no lists on this
//!   connection; its cache is still cleared when rules tighten.
//! - **A charger's `post_boot_sync`** ([`crate::behaviour`]) decides when that check starts:
//!   at once (`on`, the default), that long after the BootNotification (a delay: the
//!   session waits, sends nothing and is left out of change rounds until then; a later boot
//!   starts the wait again), or never (`off`: nothing is sent on the gateway's own initiative,
//!   and what the charger held is forgotten at each boot).
//! - **The operator's `send-local-list`** ([`send_now`]) sends the whole list now, as a
//!   `Full` update with the next version, through the operator's own decision (each message
//!   audited under the operator). Once the charger accepted all of it, the list is the one
//!   kept in sync from then on, also for a charger whose `post_boot_sync` is `off`. It reads
//!   no limits and clears no cache of its own accord, so it sends exactly what was asked.
//! - **Changes.** Every change to the role-engine state and to id tokens goes through the
//!   estate service ([`voltgate_estate::Estate`]); when one that may change an answer finishes
//!   (its generation moves: rules, cards, approvals, charger settings, reloads; not a scope or
//!   charger added, a new leaf that changes no other charger's list), the sync task waits a
//!   short [`DEBOUNCE`] (so a burst of changes costs one round), recomputes the list of every
//!   charger it keeps in sync and sends a `Differential` update where the list changed. An id
//!   token's expiry schedules a round of its own.
//! - **Rounds that cannot change a list are skipped.** A list is computed from the cards,
//!   the rules of the principals who hold them, the module settings and which chargers await
//!   approval; the round hashes all of these ([`rules_digest`]). A round over every charger
//!   that leaves each of them holding its list vouches for its digest, and a later round with
//!   the same digest does nothing: a role given to someone without a card, or a custom role
//!   nobody holds, costs no round over thousands of chargers. Nothing is vouched for while a
//!   charger is left unsettled (an update it refused is sent again at the next change) or
//!   when a change came in during the round.
//! - **Cost.** One background task; a round reads the id tokens once, groups them by
//!   principal and asks the engine's allocation-free `check` once per (charger, principal that
//!   holds tokens). The engine's read lock is held for one charger at a time, and at most
//!   [`MAX_IN_FLIGHT`] chargers are talked to at once. The unit tests count the checks; measured
//!   once (debug build, 2 cores): about a microsecond per check, so 19,000 chargers × 100 token-holding
//!   principals is roughly two seconds of one core per round, whatever the number of changes
//!   in it. Only chargers whose list really changed get a message, and only they are handed
//!   to a task of their own; the others are passed over where their list was computed.
//!
//! # The charger's limits
//!
//! - **Reading them.** Once per connection, right after a version check that found lists
//!   supported, one more request asks the charger what it accepts: 1.6 `GetConfiguration` of
//!   `SendLocalListMaxLength` (entries per message) and `LocalAuthListMaxLength` (entries it
//!   holds); 2.0.1 `GetVariables` of `LocalAuthListCtrlr.ItemsPerMessage` and
//!   `LocalAuthListCtrlr.BytesPerMessage`. A key that is missing, unknown or not a positive
//!   integer (or a read that fails) means no such limit is known, and lists go out as before.
//!   The 2.0.1 capacity is the `maxLimit` characteristic of `LocalAuthListCtrlr.Entries`,
//!   which only a device-model report carries, not `GetVariables`; it is not read, so a 2.0.1
//!   list is never cut for capacity (a charger that cannot hold it answers `Failed`).
//! - **Splitting.** An update larger than one message allows (entries, or serialized bytes
//!   counted over the whole OCPP-J frame with the longest id and version) goes as several
//!   messages: a full list as a `Full` message with the first part and `Differential`
//!   messages with the rest (the split OCPP 2.0.1 describes in D01.FR.11); a differential
//!   update as several `Differential` messages, removals and changes before additions so the
//!   list never grows past its final size on the way. Each message carries the next version,
//!   because a charger answers `VersionMismatch` to a differential update that does not
//!   raise its version (OCPP 1.6 says so in SendLocalList); the gateway stores the list and
//!   its last version only after the charger accepted every message, so the store never
//!   claims a version the charger did not fully receive.
//! - **A piece refused.** `Failed` on the first message changes nothing (as for an update of
//!   one message). `Failed` on a later one leaves the charger with part of an update: the
//!   next round sends a `Full` list and clears the cache afterwards. `VersionMismatch`, an
//!   error or a timeout makes the next round check the version again; a charger reporting
//!   a version the store does not hold gets a `Full` list and a cleared cache.
//! - **A list larger than the charger holds** (1.6 `LocalAuthListMaxLength`). Refusals
//!   (`Blocked`, `Expired`, `Invalid`) come first, so a right taken away is never left
//!   behind, then accepted tokens in token order, up to the capacity; an entry that does not
//!   fit one message even alone is left out as well. The cut is deterministic, so the same
//!   rules give the same list on every round. Leaving a token out never lets anyone charge:
//!   it is decided online by Authorize as before, and offline like any unlisted token. Each
//!   update sent with something left out logs a warning (charger, wanted and held counts)
//!   and adds the left-out count to `voltgate_local_list_entries_left_out_total{reason}`
//!   (`capacity` or `message_size`). Cutting a token for capacity does not clear the cache:
//!   an answer the charger remembers for it is still right.
//!
//! # What a list exposes
//!
//! A list is readable by whoever controls the charger (a site admin can switch it to
//! security profile 0 and connect as it), so it carries only cards of principals the engine
//! confines to that charger's part of the tree: a principal is listed only when its roles
//! would let it charge there ([`Engine::check_unblocked`]) and every role it holds lies within
//! the subtree of the charger's ancestor `--local-list-max-reach` levels up (default 1: the
//! charger's site; [`Engine::reach_within`]). Cards of principals with roles higher up (root
//! drivers, global admins, a tenant's drivers at a sub-site's charger) stay out and are
//! decided online; `--local-list-max-reach any` lists every card allowed at the charger.
//! Like an Authorize, a list carries only cards of the charger's tenant and root-level ones
//! whose text no card of the tenant holds (the engine's card namespaces), never another
//! tenant's card of the same text.
//!
//! Everything sent goes through [`gate::send_system_command`] as the system principal, so it
//! is audited and counted like an operator's command. The feature is on by default;
//! `--local-auth-lists false` switches it off.

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Notify;
use voltgate_ocpp::{
    Command, ListLimits, ListMessageSize, LocalListEntry, LocalTokenInfo, OcppVersion,
    V16_MAX_ID_TAG,
};
use voltgate_policy::{Action, Engine, Resource};
use voltgate_store::{IdTokenRecord, LocalListRecord};

use crate::behaviour::PostBootSync;
use crate::clock;
use crate::gate::{self, GateError};
use crate::state::{AppState, SharedState};

/// How long a round waits after the first change it sees, so a burst is handled once.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(200);
/// The sync task looks for missed wake-ups this often.
const RECHECK: Duration = Duration::from_secs(1);
/// Chargers talked to at the same time in one round.
pub(crate) const MAX_IN_FLIGHT: usize = 64;
/// Chargers computed between two yields to the runtime.
const COMPUTE_BATCH: usize = 256;

/// How far up the tree a listed principal's roles may reach: within the subtree of the
/// charger's ancestor this many levels up (1 = its parent), or anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListReach {
    Levels(u32),
    Any,
}

/// The default of `--local-list-max-reach`: the charger's own site.
pub(crate) const DEFAULT_LIST_REACH: ListReach = ListReach::Levels(1);

impl FromStr for ListReach {
    type Err = String;

    fn from_str(text: &str) -> Result<ListReach, String> {
        let text = text.trim();
        if text == "any" {
            return Ok(ListReach::Any);
        }
        match text.parse::<u32>() {
            Ok(levels) if (1..=64).contains(&levels) => Ok(ListReach::Levels(levels)),
            _ => Err(format!(
                "`{text}` is not a number of levels from 1 to 64 or `any`"
            )),
        }
    }
}

impl ListReach {
    /// The scope whose subtree a listed principal's roles must stay in; `None` for any.
    fn anchor(self, engine: &Engine, charger: &str) -> Option<String> {
        let ListReach::Levels(levels) = self else {
            return None;
        };
        let mut anchor = charger;
        for _ in 0..levels {
            match engine.scope_parent(anchor) {
                Some(parent) => anchor = parent,
                None => break,
            }
        }
        Some(anchor.to_owned())
    }
}

/// What a charger's list says about one id token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct ListedToken {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The 2.0.1 IdTokenEnumType the token is listed with; `None` is listed as ISO14443 (and
    /// is what every list stored before token types existed holds). Always `None` on 1.6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// A whole list: id token → entry.
pub(crate) type ListContent = BTreeMap<String, ListedToken>;

/// What this connection of a charger can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    /// The version check has not been answered yet.
    Unchecked,
    /// Local lists (and cache clearing).
    Lists,
    /// No local lists; the authorisation cache is still cleared when rules tighten.
    CacheOnly,
    /// Nothing more is sent on this connection.
    Nothing,
    /// The charger's post-boot delay has not passed yet: nothing is sent until it has.
    Deferred,
}

/// The sync state of one charger's current connection.
#[derive(Debug, Clone)]
struct Session {
    /// Tells this session from a later one of the same charger (after a boot).
    epoch: u64,
    support: Support,
    cache_clearing: bool,
    /// What the charger holds: its list (Lists) or the tokens it was last allowed to accept
    /// (CacheOnly). `None` when unknown, which makes the next update a full one.
    held: Option<ListContent>,
    /// The list version the charger accepted last (or reported).
    version: i64,
    /// The charger reported a list this gateway cannot vouch for (or an update of several
    /// messages broke off half way): after replacing it, its cache is cleared too.
    foreign_list: bool,
    /// What the charger takes per message and holds; `None` until read on this connection.
    limits: Option<ListLimits>,
}

impl Session {
    fn new(epoch: u64) -> Session {
        Session {
            epoch,
            support: Support::Unchecked,
            cache_clearing: true,
            held: None,
            version: 0,
            foreign_list: false,
            limits: None,
        }
    }

    /// Whether a round has nothing to tell this connection when the charger's list should be
    /// `desired`: it holds exactly that (or, without lists, was last allowed exactly that), or
    /// nothing is sent on it anyway. Most chargers of a round are settled; they are passed
    /// over without a task of their own.
    fn settled_on(&self, desired: &ListContent) -> bool {
        match self.support {
            Support::Nothing | Support::Deferred => true,
            Support::Lists | Support::CacheOnly => self.held.as_ref() == Some(desired),
            Support::Unchecked => false,
        }
    }
}

#[derive(Debug, Default)]
struct Pending {
    everything: bool,
    chargers: HashSet<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.everything && self.chargers.is_empty()
    }
}

/// The shared handle: the charger side tells it about connections, the sync task does the
/// rest.
pub(crate) struct LocalLists {
    enabled: AtomicBool,
    pending: Mutex<Pending>,
    wake: Notify,
    sessions: DashMap<String, Session>,
    next_epoch: AtomicU64,
    reach: ListReach,
    /// Sessions waiting for their post-boot delay: when, which charger, which session.
    deferred: Mutex<Vec<(tokio::time::Instant, String, u64)>>,
    /// The [`rules_digest`] of the last round over every charger, kept only while every
    /// charger it and later rounds handled was left settled: while the digest stays the
    /// same, no list can differ and a round over every charger has nothing to do.
    settled_digest: Mutex<Option<u64>>,
}

impl LocalLists {
    pub(crate) fn new(enabled: bool) -> LocalLists {
        LocalLists {
            enabled: AtomicBool::new(enabled),
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            sessions: DashMap::new(),
            next_epoch: AtomicU64::new(1),
            reach: DEFAULT_LIST_REACH,
            deferred: Mutex::new(Vec::new()),
            settled_digest: Mutex::new(None),
        }
    }

    /// Sets how far a listed principal's roles may reach (`--local-list-max-reach`).
    pub(crate) fn with_reach(mut self, reach: ListReach) -> LocalLists {
        self.reach = reach;
        self
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// A message arrived from the charger: a connection not seen yet gets its version check,
    /// as `post_boot` says. Costs one map lookup when nothing is to be done.
    pub(crate) fn seen(&self, charger: &str, post_boot: impl FnOnce() -> PostBootSync) {
        if !self.is_enabled() || self.sessions.contains_key(charger) {
            return;
        }
        self.after_boot(charger, post_boot());
    }

    /// The charger (re)booted: whatever it held may be gone, so its version is checked again,
    /// as `post_boot` says.
    pub(crate) fn booted(&self, charger: &str, post_boot: PostBootSync) {
        if self.is_enabled() {
            self.after_boot(charger, post_boot);
        }
    }

    /// Starts the sync of a charger that booted or connected: at once (`on`), after its delay,
    /// or not at all (`off`: what it held is forgotten, and only an operator's
    /// `send-local-list` starts a sync again).
    fn after_boot(&self, charger: &str, post_boot: PostBootSync) {
        match post_boot {
            PostBootSync::On => self.start_session(charger),
            PostBootSync::Off => {
                self.sessions.remove(charger);
            }
            PostBootSync::Delay(delay) => {
                let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
                self.sessions.insert(
                    charger.to_owned(),
                    Session {
                        support: Support::Deferred,
                        ..Session::new(epoch)
                    },
                );
                let due = tokio::time::Instant::now() + delay;
                self.deferred.lock().push((due, charger.to_owned(), epoch));
                self.wake.notify_one();
            }
        }
    }

    /// When the next deferred session is due.
    fn next_deferred(&self) -> Option<tokio::time::Instant> {
        self.deferred.lock().iter().map(|(due, _, _)| *due).min()
    }

    /// Starts the deferred sessions whose delay has passed (unless a later boot replaced them).
    fn start_due(&self, now: tokio::time::Instant) {
        let due: Vec<(String, u64)> = {
            let mut deferred = self.deferred.lock();
            let (due, waiting) = deferred.drain(..).partition(|(at, _, _)| *at <= now);
            *deferred = waiting;
            due.into_iter()
                .map(|(_, charger, epoch)| (charger, epoch))
                .collect()
        };
        for (charger, epoch) in due {
            let current = self
                .sessions
                .get(&charger)
                .is_some_and(|s| s.epoch == epoch && s.support == Support::Deferred);
            if current {
                self.start_session(&charger);
            }
        }
    }

    fn start_session(&self, charger: &str) {
        let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
        self.sessions
            .insert(charger.to_owned(), Session::new(epoch));
        self.pending.lock().chargers.insert(charger.to_owned());
        self.wake.notify_one();
    }

    fn take_pending(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock())
    }

    fn requeue(&self, work: Pending) {
        let mut pending = self.pending.lock();
        pending.everything |= work.everything;
        pending.chargers.extend(work.chargers);
    }

    /// Chargers a round looks at: the queued ones, or every session when everything is dirty.
    fn targets(&self, work: &Pending) -> Vec<String> {
        let mut targets: Vec<String> = if work.everything {
            self.sessions
                .iter()
                .filter(|s| !matches!(s.support, Support::Nothing | Support::Deferred))
                .map(|s| s.key().clone())
                .collect()
        } else {
            work.chargers.iter().cloned().collect()
        };
        targets.sort_unstable();
        targets
    }

    /// Keeps `session` unless the charger started a newer one meanwhile.
    fn put_back(&self, charger: &str, session: Session) {
        if let Some(mut current) = self.sessions.get_mut(charger) {
            if current.epoch == session.epoch {
                *current = session;
            }
        }
    }

    fn forget(&self, charger: &str, epoch: u64) {
        self.sessions
            .remove_if(charger, |_, session| session.epoch == epoch);
    }
}

/// The sync task: runs until shutdown. Does nothing while the feature is off.
pub(crate) async fn run(state: SharedState) {
    let mut shutdown = state.shutdown.clone();
    let mut seen_generation = state.estate.generation();
    let mut next_expiry: Option<OffsetDateTime> = None;
    loop {
        let expiry_wait = next_expiry.map_or(RECHECK, |at| {
            let left = at - clock::now();
            Duration::try_from(left)
                .unwrap_or(Duration::ZERO)
                .min(RECHECK)
        });
        let deferred_wait = state.local_lists.next_deferred().map_or(RECHECK, |due| {
            due.saturating_duration_since(tokio::time::Instant::now())
        });
        tokio::select! {
            _ = state.local_lists.wake.notified() => {}
            _ = state.estate.changed() => {}
            _ = tokio::time::sleep(expiry_wait.min(deferred_wait)) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        state.local_lists.start_due(tokio::time::Instant::now());
        if !state.local_lists.is_enabled() {
            continue;
        }
        let generation = state.estate.generation();
        let expired = next_expiry.is_some_and(|at| at <= clock::now());
        if generation == seen_generation && !expired && state.local_lists.pending.lock().is_empty()
        {
            continue;
        }
        tokio::time::sleep(DEBOUNCE).await;
        let mut work = state.local_lists.take_pending();
        let generation = state.estate.generation();
        if generation != seen_generation || expired {
            work.everything = true;
            seen_generation = generation;
        }
        if work.is_empty() {
            continue;
        }
        match sync_round(&state, &work).await {
            Ok(expiry) => next_expiry = expiry,
            Err(err) => {
                state.metrics.store_error("id_tokens");
                tracing::error!(error = %err, "local lists: id tokens could not be read; retrying");
                state.local_lists.requeue(work);
            }
        }
    }
}

/// One round: computes the targets' lists and brings each charger up to date. Returns when
/// the next id token expires.
async fn sync_round(
    state: &SharedState,
    work: &Pending,
) -> Result<Option<OffsetDateTime>, voltgate_store::StoreError> {
    // Read before anything the round is computed from: a change after it keeps the round
    // from vouching for its digest.
    let generation = state.estate.generation();
    let tokens = state.store.id_tokens().await?;
    let started = std::time::Instant::now();
    let candidates = Candidates::new(tokens, clock::now());
    let lists = &state.local_lists;
    // Only a round over every charger is skipped by, or vouches for, a digest.
    let digest = work.everything.then(|| {
        rules_digest(
            &state.estate.engine(),
            state.estate.pending_digest(),
            &candidates,
        )
    });
    if digest.is_some() && work.chargers.is_empty() && *lists.settled_digest.lock() == digest {
        return Ok(candidates.next_expiry);
    }
    let targets = state.local_lists.targets(work);
    let mut computed = Vec::with_capacity(targets.len());
    for (n, charger) in targets.into_iter().enumerate() {
        let Some(version) = state.chargers.version(&charger) else {
            if let Some(epoch) = state.local_lists.sessions.get(&charger).map(|s| s.epoch) {
                state.local_lists.forget(&charger, epoch);
            }
            continue;
        };
        let desired = desired_list(
            &state.estate.engine(),
            &candidates,
            &charger,
            version,
            state.local_lists.reach,
        );
        let settled = state
            .local_lists
            .sessions
            .get(&charger)
            .is_some_and(|session| session.settled_on(&desired));
        if !settled {
            computed.push((charger, version, desired));
        }
        if n % COMPUTE_BATCH == COMPUTE_BATCH - 1 {
            tokio::task::yield_now().await;
        }
    }
    state
        .metrics
        .local_list_round(started.elapsed().as_secs_f64());
    let mut in_flight = tokio::task::JoinSet::new();
    let mut all_settled = true;
    for (charger, version, desired) in computed {
        if in_flight.len() >= MAX_IN_FLIGHT {
            all_settled &= in_flight
                .join_next()
                .await
                .is_none_or(|settled| matches!(settled, Ok(true)));
        }
        let state = state.clone();
        in_flight.spawn(async move { sync_charger(&state, &charger, version, desired).await });
    }
    while let Some(settled) = in_flight.join_next().await {
        all_settled &= matches!(settled, Ok(true));
    }
    // A round over every charger vouches for the digest it was computed from, unless a
    // change came in meanwhile or a charger was left unsettled (to be tried again at the
    // next round); a round over some chargers never vouches, and one that left a charger
    // unsettled withdraws what an earlier round vouched for.
    let mut settled_digest = lists.settled_digest.lock();
    if !all_settled || state.estate.generation() != generation {
        *settled_digest = None;
    } else if digest.is_some() {
        *settled_digest = digest;
    }
    Ok(candidates.next_expiry)
}

/// A digest of everything a round's lists are computed from besides the scope tree (which
/// only grows by leaves, changing no existing charger's list): the module settings, the
/// chargers awaiting approval, and each card holder's cards and rules. Equal digests, equal
/// lists.
fn rules_digest(engine: &Engine, pending_digest: u64, candidates: &Candidates) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.modules_digest().hash(&mut hasher);
    pending_digest.hash(&mut hasher);
    for (principal, tokens) in &candidates.by_principal {
        principal.hash(&mut hasher);
        engine.principal_digest(principal).hash(&mut hasher);
        tokens.hash(&mut hasher);
    }
    hasher.finish()
}

/// Every id token as a list would carry it (`Accepted`, or `Blocked` / `Expired` by the
/// token's own state), by principal.
struct Candidates {
    by_principal: BTreeMap<String, Vec<(String, ListedToken)>>,
    next_expiry: Option<OffsetDateTime>,
}

impl Candidates {
    fn new(tokens: Vec<IdTokenRecord>, now: OffsetDateTime) -> Candidates {
        let mut by_principal: BTreeMap<String, Vec<(String, ListedToken)>> = BTreeMap::new();
        let mut next_expiry: Option<OffsetDateTime> = None;
        for token in tokens {
            // An expiry we cannot read is treated as passed, as at the charger's Authorize.
            let expiry = token.expires_at.as_deref().map(clock::parse_rfc3339);
            let status = if token.blocked {
                "Blocked"
            } else {
                match expiry {
                    Some(Some(at)) if at > now => {
                        next_expiry = Some(next_expiry.map_or(at, |next| next.min(at)));
                        "Accepted"
                    }
                    Some(_) => "Expired",
                    None => "Accepted",
                }
            };
            // Only an acceptance carries the expiry (and only a readable one reaches here).
            let expires_at = token.expires_at.filter(|_| status == "Accepted");
            by_principal.entry(token.principal).or_default().push((
                token.id_token,
                ListedToken {
                    status: status.to_owned(),
                    expires_at,
                    group: token.group,
                    token_type: token.token_type,
                },
            ));
        }
        Candidates {
            by_principal,
            next_expiry,
        }
    }
}

/// The list `charger` should hold: the tokens of every principal whose roles would let it
/// `charge` there unblocked (the charger may know its refusals, as an online Authorize tells
/// them) and reach no further than `reach` allows (module docs). A blocked principal's tokens
/// are listed `Blocked`. 1.6 idTags longer than 20 characters cannot be listed (nor
/// presented); a longer group is left out.
fn desired_list(
    engine: &Engine,
    candidates: &Candidates,
    charger: &str,
    version: OcppVersion,
    reach: ListReach,
) -> ListContent {
    let resource = Resource::Scope(charger.to_owned());
    let anchor = reach.anchor(engine, charger);
    // A charger means the card of its own tenant, else a root-level principal's, never another
    // tenant's (the engine's card namespaces): the tenant's texts shadow root-level cards.
    let tenant = engine.tenant_of_scope(charger);
    let shadowed: HashSet<&str> = candidates
        .by_principal
        .iter()
        .filter(|(principal, _)| tenant.is_some() && engine.card_namespace(principal) == tenant)
        .flat_map(|(_, tokens)| tokens.iter().map(|(token, _)| token.as_str()))
        .collect();
    let mut list = ListContent::new();
    for (principal, tokens) in &candidates.by_principal {
        #[cfg(test)]
        tests::ENGINE_CHECKS.with(|checks| checks.set(checks.get() + 1));
        let namespace = engine.card_namespace(principal);
        if namespace.is_some() && namespace != tenant {
            continue;
        }
        if !engine.check_unblocked(principal, Action::Charge, &resource) {
            continue;
        }
        if anchor
            .as_deref()
            .is_some_and(|anchor| !engine.reach_within(principal, anchor))
        {
            continue;
        }
        let principal_blocked = engine.is_blocked(principal).unwrap_or(false);
        for (token, entry) in tokens {
            if namespace.is_none() && shadowed.contains(token.as_str()) {
                continue;
            }
            let mut entry = entry.clone();
            if principal_blocked {
                entry.status = "Blocked".to_owned();
                entry.expires_at = None;
            }
            if version == OcppVersion::V16 {
                entry.token_type = None;
                if token.chars().count() > V16_MAX_ID_TAG {
                    continue;
                }
                if entry
                    .group
                    .as_ref()
                    .is_some_and(|g| g.chars().count() > V16_MAX_ID_TAG)
                {
                    entry.group = None;
                }
            }
            list.insert(token.clone(), entry);
        }
    }
    list
}

/// A differential update from `held` to `desired`.
#[derive(Debug, Default, PartialEq)]
struct ListDiff {
    changes: Vec<LocalListEntry>,
    /// Something the charger may have remembered as Accepted was removed or changed.
    tightened: bool,
}

fn diff(held: &ListContent, desired: &ListContent) -> ListDiff {
    let mut out = ListDiff::default();
    for (token, old) in held {
        match desired.get(token) {
            None => {
                out.tightened = true;
                out.changes.push(removal(token, old));
            }
            Some(new) if new.token_type != old.token_type => {
                // A 2.0.1 charger keys its list by text and type: drop the old pair.
                out.tightened = true;
                out.changes.push(removal(token, old));
                out.changes.push(entry(token, new));
            }
            Some(new) if new != old => {
                out.tightened = true;
                out.changes.push(entry(token, new));
            }
            Some(_) => {}
        }
    }
    for (token, new) in desired {
        if !held.contains_key(token) {
            out.changes.push(entry(token, new));
        }
    }
    out
}

fn removal(token: &str, listed: &ListedToken) -> LocalListEntry {
    LocalListEntry {
        id_token: token.to_owned(),
        token_type: listed.token_type.clone(),
        info: None,
    }
}

fn entry(token: &str, listed: &ListedToken) -> LocalListEntry {
    LocalListEntry {
        id_token: token.to_owned(),
        token_type: listed.token_type.clone(),
        info: Some(LocalTokenInfo {
            status: listed.status.clone(),
            expires_at: listed.expires_at.clone(),
            group: listed.group.clone(),
        }),
    }
}

/// The version after `version`, wrapping back to 1 before leaving OCPP's 32-bit integers.
fn next_version(version: i64) -> i64 {
    if (1..i64::from(i32::MAX)).contains(&version) {
        version + 1
    } else {
        1
    }
}

/// The part of a list a charger is given, and what was left out for which reason.
#[derive(Debug, Default, PartialEq)]
struct Fitted {
    list: ListContent,
    /// Entries that do not fit one message of the charger's byte limit even alone.
    too_large: usize,
    /// Entries past what the charger can hold.
    over_capacity: usize,
}

/// Where an entry comes in the order lists are sent and cut: refusals (`Blocked`, `Expired`,
/// `Invalid`) before acceptances, then by token.
fn send_order(list: &ListContent) -> Vec<(&String, &ListedToken)> {
    // A stable sort of a list already in token order.
    let mut entries: Vec<_> = list.iter().collect();
    entries.sort_by_key(|(_, listed)| listed.status == "Accepted");
    entries
}

/// Cuts `desired` to what the charger can take: an entry that does not fit a message alone
/// is left out, and past the capacity the last entries of [`send_order`] are left out. Leaving
/// an entry out never lets anyone charge: an unlisted token is decided online (or refused
/// offline), as before it was listed.
fn fit_to_limits(desired: &ListContent, limits: &ListLimits, size: &ListMessageSize) -> Fitted {
    let mut fitted = Fitted::default();
    let capacity = limits.capacity.unwrap_or(usize::MAX);
    for (token, listed) in send_order(desired) {
        let too_large = limits
            .bytes_per_message
            .is_some_and(|bytes| size.envelope() + size.entry(&entry(token, listed)) > bytes);
        if too_large {
            fitted.too_large += 1;
        } else if fitted.list.len() >= capacity {
            fitted.over_capacity += 1;
        } else {
            fitted.list.insert(token.clone(), listed.clone());
        }
    }
    fitted
}

/// A whole list as entries, in [`send_order`].
fn full_entries(list: &ListContent) -> Vec<LocalListEntry> {
    send_order(list)
        .into_iter()
        .map(|(token, listed)| entry(token, listed))
        .collect()
}

/// Whether the charger may remember an answer for a token in `held` that the rules no longer
/// give: a token that left `allowed` or whose entry changed. A token cut only for the
/// charger's capacity is still allowed, so its remembered answer stays right.
fn tightens(held: &ListContent, allowed: &ListContent) -> bool {
    held.iter()
        .any(|(token, old)| allowed.get(token) != Some(old))
}

/// One SendLocalList of an update.
#[derive(Debug, Clone, PartialEq)]
struct Piece {
    version: i64,
    full: bool,
    entries: Vec<LocalListEntry>,
}

/// Splits `entries`, in order, into messages within the per-message limits; never returns no
/// message (an empty full list still has to be sent). An entry larger than the byte limit
/// alone gets a message of its own.
fn split_messages(
    entries: Vec<LocalListEntry>,
    limits: &ListLimits,
    size: &ListMessageSize,
) -> Vec<Vec<LocalListEntry>> {
    let items = limits.items_per_message.unwrap_or(usize::MAX);
    let mut messages = Vec::new();
    let mut current: Vec<LocalListEntry> = Vec::new();
    let mut bytes = size.envelope();
    for entry in entries {
        let added = size.entry(&entry);
        let full = current.len() >= items
            || limits
                .bytes_per_message
                .is_some_and(|limit| bytes + added > limit);
        if full && !current.is_empty() {
            messages.push(std::mem::take(&mut current));
            bytes = size.envelope();
        }
        bytes += added;
        current.push(entry);
    }
    messages.push(current);
    messages
}

/// The messages of one update: a full update is a `Full` message with the first part and
/// `Differential` messages with the rest. Every message carries the next version (OCPP 1.6
/// and 2.0.1 both refuse a differential update whose version is not above the one
/// installed), so after the last one the charger holds the last version and the whole list.
fn plan_pieces(
    full: bool,
    entries: Vec<LocalListEntry>,
    limits: &ListLimits,
    size: &ListMessageSize,
    installed_version: i64,
) -> Vec<Piece> {
    let mut version = installed_version;
    split_messages(entries, limits, size)
        .into_iter()
        .enumerate()
        .map(|(n, entries)| {
            version = next_version(version);
            Piece {
                version,
                full: full && n == 0,
                entries,
            }
        })
        .collect()
}

fn not_supported(err: &GateError) -> bool {
    matches!(err, GateError::CallError { code, .. } if code == "NotSupported" || code == "NotImplemented")
}

/// Brings one charger's connection up to `desired`; answers whether it is left settled on it
/// (or gone, or waiting for an approval, which changes the round's digest): `false` where an
/// update failed and must be tried again.
async fn sync_charger(
    state: &AppState,
    charger: &str,
    version: OcppVersion,
    desired: ListContent,
) -> bool {
    let lists = &state.local_lists;
    let Some(mut session) = lists.sessions.get(charger).map(|s| s.clone()) else {
        return true;
    };
    // A pending (auto-registered, not yet approved) charger gets no list until approval
    // starts its session again.
    if state.estate.charger_pending(charger) {
        return true;
    }
    if session.support == Support::Unchecked {
        match check_version(state, charger, &session).await {
            Some(checked) => session = checked,
            None => {
                lists.forget(charger, session.epoch);
                return true;
            }
        }
    }
    let wanted = desired.clone();
    let connected = match session.support {
        Support::Lists => push_list(state, charger, version, &mut session, desired).await,
        Support::CacheOnly => {
            let tightened = session
                .held
                .as_ref()
                .is_some_and(|held| diff(held, &desired).tightened);
            session.held = Some(desired);
            !tightened || clear_cache(state, charger, &mut session).await
        }
        Support::Unchecked | Support::Nothing | Support::Deferred => true,
    };
    if connected {
        let settled = session.settled_on(&wanted);
        lists.put_back(charger, session);
        settled
    } else {
        lists.forget(charger, session.epoch);
        true
    }
}

/// Asks the charger which list it holds. `None` when it is no longer connected.
async fn check_version(state: &AppState, charger: &str, session: &Session) -> Option<Session> {
    let version = state.chargers.version(charger)?;
    let mut checked = session.clone();
    match gate::send_system_command(state, charger, Command::GetLocalListVersion).await {
        Ok(reply) => {
            let field = match version {
                OcppVersion::V16 => "listVersion",
                OcppVersion::V201 => "versionNumber",
            };
            match reply.response[field].as_i64() {
                Some(reported) if reported >= 0 => {
                    state.metrics.local_list_sync("version", "ok");
                    let stored = match state.store.local_list(charger).await {
                        Ok(stored) => stored,
                        Err(err) => {
                            state.metrics.store_error("local_list");
                            tracing::error!(error = %err, charger, "stored local list unreadable");
                            None
                        }
                    };
                    let stored_version = stored.as_ref().map_or(0, |s| s.version);
                    checked.held = stored
                        .filter(|s| reported > 0 && s.version == reported)
                        .and_then(|s| serde_json::from_value(s.entries).ok());
                    checked.version = reported.max(stored_version);
                    checked.foreign_list = reported > 0 && checked.held.is_none();
                    checked.support = Support::Lists;
                }
                // 1.6: -1 means the charger has no local list.
                _ => {
                    state.metrics.local_list_sync("version", "not_supported");
                    checked.support = Support::CacheOnly;
                }
            }
        }
        Err(err) if not_supported(&err) => {
            state.metrics.local_list_sync("version", "not_supported");
            checked.support = Support::CacheOnly;
        }
        Err(GateError::NotConnected(_)) => return None,
        Err(err) => {
            state.metrics.local_list_sync("version", "error");
            tracing::warn!(charger, error = %err, "local list version check failed; not syncing this connection");
            checked.support = Support::Nothing;
        }
    }
    if checked.support == Support::Lists && checked.limits.is_none() {
        checked.limits = Some(read_limits(state, charger, version).await?);
    }
    Some(checked)
}

/// Reads the charger's list limits with one GetConfiguration (1.6) or GetVariables (2.0.1).
/// A key the charger does not report, or a read that fails, leaves that limit unknown.
/// `None` when the charger is no longer connected.
async fn read_limits(state: &AppState, charger: &str, version: OcppVersion) -> Option<ListLimits> {
    match gate::send_system_command(state, charger, ListLimits::query(version)).await {
        Ok(reply) => {
            state.metrics.local_list_sync("limits", "ok");
            let limits = ListLimits::from_reply(version, &reply.response);
            tracing::debug!(charger, ?limits, "local list limits read");
            Some(limits)
        }
        Err(GateError::NotConnected(_)) => None,
        Err(err) => {
            state.metrics.local_list_sync("limits", "error");
            tracing::warn!(charger, error = %err, "local list limits not readable; sending lists whole");
            Some(ListLimits::default())
        }
    }
}

/// Sends the update that makes the charger's list `desired` (as much of it as the charger can
/// hold), split into as many messages as its limits ask. `false` when the charger is gone.
async fn push_list(
    state: &AppState,
    charger: &str,
    version: OcppVersion,
    session: &mut Session,
    desired: ListContent,
) -> bool {
    let limits = session.limits.unwrap_or_default();
    let size = ListMessageSize::new(version);
    let fitted = fit_to_limits(&desired, &limits, &size);
    let (full, entries, tightened) = match &session.held {
        None => (true, full_entries(&fitted.list), session.foreign_list),
        Some(held) => {
            let changes = diff(held, &fitted.list);
            if changes.changes.is_empty() {
                return true;
            }
            (false, changes.changes, tightens(held, &desired))
        }
    };
    if fitted.over_capacity + fitted.too_large > 0 {
        tracing::warn!(
            charger,
            wanted = desired.len(),
            held = fitted.list.len(),
            over_capacity = fitted.over_capacity,
            too_large = fitted.too_large,
            "local list does not fit the charger; the rest is authorised online only"
        );
        state
            .metrics
            .local_list_left_out("capacity", fitted.over_capacity);
        state
            .metrics
            .local_list_left_out("message_size", fitted.too_large);
    }
    let pieces = plan_pieces(full, entries, &limits, &size, session.version);
    let count = pieces.len();
    for (n, piece) in pieces.into_iter().enumerate() {
        let kind = if piece.full { "full" } else { "differential" };
        let piece_version = piece.version;
        let command = Command::SendLocalList {
            version: piece.version,
            full: piece.full,
            entries: piece.entries,
        };
        match gate::send_system_command(state, charger, command).await {
            Ok(reply) => match reply.response["status"].as_str().unwrap_or("") {
                "Accepted" => {
                    state.metrics.local_list_sync(kind, "accepted");
                    session.version = piece_version;
                }
                "VersionMismatch" => {
                    state.metrics.local_list_sync(kind, "version_mismatch");
                    recheck_later(state, charger, session);
                    return true;
                }
                "NotSupported" => {
                    state.metrics.local_list_sync(kind, "not_supported");
                    session.support = Support::CacheOnly;
                    session.held = Some(desired);
                    return !tightened || clear_cache(state, charger, session).await;
                }
                other => {
                    state.metrics.local_list_sync(kind, "failed");
                    tracing::warn!(
                        charger,
                        status = other,
                        piece = n + 1,
                        pieces = count,
                        "charger did not install the local list"
                    );
                    if n > 0 {
                        // Earlier pieces were applied: what the charger holds is known to
                        // nobody, so the next round replaces it whole and clears the cache.
                        session.held = None;
                        session.foreign_list = true;
                    }
                    return true;
                }
            },
            Err(GateError::NotConnected(_)) => return false,
            Err(err) if not_supported(&err) => {
                state.metrics.local_list_sync(kind, "not_supported");
                session.support = Support::CacheOnly;
                return true;
            }
            Err(err) => {
                state.metrics.local_list_sync(kind, "error");
                tracing::warn!(charger, error = %err, "local list update failed; checking the version again");
                recheck_later(state, charger, session);
                return true;
            }
        }
    }
    let record = LocalListRecord {
        charger: charger.to_owned(),
        version: session.version,
        entries: serde_json::to_value(&fitted.list).unwrap_or_default(),
        updated_at: clock::now_rfc3339(),
    };
    if let Err(err) = state.store.put_local_list(&record).await {
        state.metrics.store_error("put_local_list");
        tracing::error!(error = %err, charger, "installed local list could not be stored");
    }
    let kind = if full { "full" } else { "differential" };
    tracing::info!(
        charger,
        version = session.version,
        kind,
        messages = count,
        "local list installed"
    );
    session.held = Some(fitted.list);
    session.foreign_list = false;
    !tightened || clear_cache(state, charger, session).await
}

/// Why an operator's `send-local-list` produced no charger answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendNowError {
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error(transparent)]
    Store(#[from] voltgate_store::StoreError),
    #[error("charger `{0}` awaits approval and gets no local list until it is approved")]
    Pending(String),
}

/// The operator command `send-local-list`: sends `charger` the whole list the engine computes
/// for it now, as the sync would (cut and split to the limits read on this connection, if
/// any), as a `Full` update with the version after the one it holds, every message through
/// the operator's `grant`. Accepted in full, the list becomes what the sync keeps up to date
/// from then on (also for a charger whose `post_boot_sync` is `off`). Answers the charger's
/// reply to the last message sent: the first one not `Accepted`, or the last one.
pub(crate) async fn send_now(
    state: &AppState,
    grant: &gate::CommandGrant,
    charger: &str,
) -> Result<gate::CommandReply, SendNowError> {
    let Some(version) = state.chargers.version(charger) else {
        return Err(GateError::NotConnected(charger.to_owned()).into());
    };
    if state.estate.charger_pending(charger) {
        return Err(SendNowError::Pending(charger.to_owned()));
    }
    let lists = &state.local_lists;
    let candidates = Candidates::new(state.store.id_tokens().await?, clock::now());
    let desired = desired_list(
        &state.estate.engine(),
        &candidates,
        charger,
        version,
        lists.reach,
    );
    let mut session = match lists.sessions.get(charger) {
        Some(session) => session.clone(),
        None => Session::new(lists.next_epoch.fetch_add(1, Ordering::Relaxed)),
    };
    let stored_version = state
        .store
        .local_list(charger)
        .await?
        .map_or(0, |stored| stored.version);
    let limits = session.limits.unwrap_or_default();
    let size = ListMessageSize::new(version);
    let fitted = fit_to_limits(&desired, &limits, &size);
    let pieces = plan_pieces(
        true,
        full_entries(&fitted.list),
        &limits,
        &size,
        session.version.max(stored_version),
    );
    let mut last = None;
    for (n, piece) in pieces.into_iter().enumerate() {
        let piece_version = piece.version;
        let command = Command::SendLocalList {
            version: piece.version,
            full: piece.full,
            entries: piece.entries,
        };
        let reply = gate::send_granted(state, grant, command).await?;
        let kind = if n == 0 { "full" } else { "differential" };
        if reply.status != "Accepted" {
            state.metrics.local_list_sync(kind, "failed");
            if n > 0 {
                session.held = None;
                session.foreign_list = true;
                keep_session(state, charger, session);
            }
            return Ok(reply);
        }
        state.metrics.local_list_sync(kind, "accepted");
        session.version = piece_version;
        last = Some(reply);
    }
    let record = LocalListRecord {
        charger: charger.to_owned(),
        version: session.version,
        entries: serde_json::to_value(&fitted.list).unwrap_or_default(),
        updated_at: clock::now_rfc3339(),
    };
    state.store.put_local_list(&record).await?;
    tracing::info!(
        charger,
        version = session.version,
        "local list sent on request"
    );
    session.support = Support::Lists;
    session.held = Some(fitted.list);
    session.foreign_list = false;
    keep_session(state, charger, session);
    last.ok_or_else(|| GateError::Translation("no local list message was planned".into()).into())
}

/// Keeps `session` as the charger's, unless a newer one (a boot) replaced it meanwhile.
fn keep_session(state: &AppState, charger: &str, session: Session) {
    state
        .local_lists
        .sessions
        .entry(charger.to_owned())
        .and_modify(|current| {
            if current.epoch == session.epoch {
                *current = session.clone();
            }
        })
        .or_insert(session);
}

/// Whether the charger applied an update is unknown: ask its version in the next round.
fn recheck_later(state: &AppState, charger: &str, session: &mut Session) {
    session.support = Support::Unchecked;
    session.held = None;
    state
        .local_lists
        .pending
        .lock()
        .chargers
        .insert(charger.to_owned());
    state.local_lists.wake.notify_one();
}

/// Clears the charger's authorisation cache. `false` when the charger is gone.
async fn clear_cache(state: &AppState, charger: &str, session: &mut Session) -> bool {
    if !session.cache_clearing {
        return true;
    }
    match gate::send_system_command(state, charger, Command::ClearCache).await {
        Ok(reply) if reply.response["status"] == "Accepted" => {
            state.metrics.local_list_sync("clear_cache", "accepted");
            true
        }
        Ok(_) => {
            // Rejected: the charger keeps no cache (or will not clear it); stop asking.
            state.metrics.local_list_sync("clear_cache", "rejected");
            session.cache_clearing = false;
            true
        }
        Err(GateError::NotConnected(_)) => false,
        Err(err) => {
            let outcome = if not_supported(&err) {
                session.cache_clearing = false;
                "not_supported"
            } else {
                "error"
            };
            state.metrics.local_list_sync("clear_cache", outcome);
            tracing::warn!(charger, error = %err, "authorisation cache not cleared");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use voltgate_policy::{Preset, PrincipalKind};

    const NOW: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

    thread_local! {
        /// Engine checks [`desired_list`] made on this thread: the cost is counted, not timed.
        pub(super) static ENGINE_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn token(id: &str, principal: &str) -> IdTokenRecord {
        IdTokenRecord {
            id_token: id.to_owned(),
            principal: principal.to_owned(),
            blocked: false,
            expires_at: None,
            group: None,
            token_type: None,
        }
    }

    fn accepted(expires_at: Option<&str>, group: Option<&str>) -> ListedToken {
        ListedToken {
            status: "Accepted".to_owned(),
            expires_at: expires_at.map(str::to_owned),
            group: group.map(str::to_owned),
            token_type: None,
        }
    }

    /// zaptec: `user` on an installation may charge at its chargers.
    fn estate() -> Engine {
        let mut engine = Engine::new(Preset::builtin("zaptec").unwrap());
        engine.add_scope("inst-1", "installation", "root").unwrap();
        engine.add_scope("inst-2", "installation", "root").unwrap();
        engine.add_scope("CP-1", "station", "inst-1").unwrap();
        engine.add_scope("CP-2", "station", "inst-2").unwrap();
        for (driver, home) in [("dave", "inst-1"), ("erin", "inst-2"), ("fred", "inst-1")] {
            engine
                .add_principal(driver, PrincipalKind::Driver, home)
                .unwrap();
        }
        engine.assign("dave", "user", "inst-1").unwrap();
        engine.assign("erin", "user", "inst-2").unwrap();
        engine.assign("fred", "user", "inst-1").unwrap();
        engine
    }

    #[tokio::test(start_paused = true)]
    async fn post_boot_sync_starts_at_once_after_its_delay_or_never() {
        let lists = LocalLists::new(true);
        let queued = |lists: &LocalLists| {
            let mut chargers: Vec<String> = lists.take_pending().chargers.into_iter().collect();
            chargers.sort();
            chargers
        };
        let support =
            |lists: &LocalLists, charger: &str| lists.sessions.get(charger).map(|s| s.support);

        lists.seen("CP-ON", || PostBootSync::On);
        assert_eq!(queued(&lists), ["CP-ON"]);

        lists.booted("CP-OFF", PostBootSync::Off);
        lists.seen("CP-OFF", || PostBootSync::Off);
        assert!(queued(&lists).is_empty());
        assert_eq!(support(&lists, "CP-OFF"), None);
        // A boot with `off` forgets what an earlier session knew.
        lists.booted("CP-ON", PostBootSync::Off);
        assert_eq!(support(&lists, "CP-ON"), None);

        let delay = Duration::from_secs(30);
        lists.booted("CP-LATER", PostBootSync::Delay(delay));
        lists.seen("CP-LATER", || {
            unreachable!("a waiting session is a session")
        });
        assert_eq!(support(&lists, "CP-LATER"), Some(Support::Deferred));
        assert!(
            lists
                .targets(&Pending {
                    everything: true,
                    chargers: HashSet::new()
                })
                .is_empty(),
            "a waiting charger is left out of change rounds"
        );
        tokio::time::advance(delay - Duration::from_millis(1)).await;
        lists.start_due(tokio::time::Instant::now());
        assert!(queued(&lists).is_empty());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(lists.next_deferred(), Some(tokio::time::Instant::now()));
        lists.start_due(tokio::time::Instant::now());
        assert_eq!(queued(&lists), ["CP-LATER"]);
        assert_eq!(support(&lists, "CP-LATER"), Some(Support::Unchecked));

        // A second boot during the wait starts the wait again.
        lists.booted("CP-TWICE", PostBootSync::Delay(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(5)).await;
        lists.booted("CP-TWICE", PostBootSync::Delay(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(5)).await;
        lists.start_due(tokio::time::Instant::now());
        assert!(queued(&lists).is_empty());
        tokio::time::advance(Duration::from_secs(5)).await;
        lists.start_due(tokio::time::Instant::now());
        assert_eq!(queued(&lists), ["CP-TWICE"]);
        assert_eq!(lists.next_deferred(), None);
    }

    #[test]
    fn a_list_holds_exactly_the_tokens_whose_principal_may_charge_there() {
        let mut engine = estate();
        let tokens = vec![
            IdTokenRecord {
                group: Some("FLEET".into()),
                ..token("DAVE-1", "dave")
            },
            IdTokenRecord {
                expires_at: Some("2024-06-01T00:00:00Z".into()),
                ..token("DAVE-2", "dave")
            },
            token("ERIN-1", "erin"),
            IdTokenRecord {
                blocked: true,
                ..token("FRED-BLOCKED", "fred")
            },
            IdTokenRecord {
                expires_at: Some("2024-05-01T11:00:00Z".into()),
                ..token("FRED-EXPIRED", "fred")
            },
            IdTokenRecord {
                expires_at: Some("whenever".into()),
                ..token("FRED-UNREADABLE", "fred")
            },
            token("GHOST-1", "ghost"),
        ];
        let candidates = Candidates::new(tokens, NOW);
        assert_eq!(
            candidates.next_expiry,
            Some(datetime!(2024-06-01 00:00:00 UTC))
        );
        let cp1 = desired_list(
            &engine,
            &candidates,
            "CP-1",
            OcppVersion::V201,
            DEFAULT_LIST_REACH,
        );
        let refused = |status: &str| ListedToken {
            status: status.to_owned(),
            ..accepted(None, None)
        };
        let expected: ListContent = [
            ("DAVE-1".to_owned(), accepted(None, Some("FLEET"))),
            (
                "DAVE-2".to_owned(),
                accepted(Some("2024-06-01T00:00:00Z"), None),
            ),
            ("FRED-BLOCKED".to_owned(), refused("Blocked")),
            ("FRED-EXPIRED".to_owned(), refused("Expired")),
            ("FRED-UNREADABLE".to_owned(), refused("Expired")),
        ]
        .into();
        assert_eq!(cp1, expected);
        let cp2 = desired_list(
            &engine,
            &candidates,
            "CP-2",
            OcppVersion::V16,
            DEFAULT_LIST_REACH,
        );
        assert_eq!(cp2.keys().collect::<Vec<_>>(), ["ERIN-1"]);

        engine.set_blocked("dave", true).unwrap();
        let blocked = desired_list(
            &engine,
            &candidates,
            "CP-1",
            OcppVersion::V201,
            DEFAULT_LIST_REACH,
        );
        assert_eq!(
            blocked["DAVE-1"].status, "Blocked",
            "a blocked principal's tokens"
        );
        assert_eq!(
            blocked["DAVE-2"],
            refused("Blocked"),
            "no expiry on a refusal"
        );
    }

    #[test]
    fn lists_carry_only_principals_whose_roles_stay_within_reach() {
        let mut engine = estate();
        // A driver whose roles reach beyond inst-1 (here: both installations).
        engine
            .add_principal("wide", PrincipalKind::Driver, "inst-1")
            .unwrap();
        engine.assign("wide", "user", "inst-1").unwrap();
        engine.assign("wide", "user", "inst-2").unwrap();
        let tokens = vec![token("DAVE-1", "dave"), token("ROOT-1", "wide")];
        let candidates = Candidates::new(tokens, NOW);
        let site = desired_list(
            &engine,
            &candidates,
            "CP-1",
            OcppVersion::V16,
            DEFAULT_LIST_REACH,
        );
        assert_eq!(site.keys().collect::<Vec<_>>(), ["DAVE-1"]);
        let any = desired_list(
            &engine,
            &candidates,
            "CP-1",
            OcppVersion::V16,
            ListReach::Any,
        );
        assert_eq!(any.keys().collect::<Vec<_>>(), ["DAVE-1", "ROOT-1"]);
        let two = desired_list(
            &engine,
            &candidates,
            "CP-1",
            OcppVersion::V16,
            ListReach::Levels(2),
        );
        assert_eq!(two.keys().collect::<Vec<_>>(), ["DAVE-1", "ROOT-1"]);
        assert_eq!("any".parse(), Ok(ListReach::Any));
        assert_eq!("3".parse(), Ok(ListReach::Levels(3)));
        assert!("0".parse::<ListReach>().is_err());
        assert!("site".parse::<ListReach>().is_err());
    }

    #[test]
    fn version_1_6_lists_leave_out_what_1_6_cannot_carry() {
        let engine = estate();
        let tokens = vec![
            token("DAVE-0123456789ABCDEF-LONG", "dave"),
            IdTokenRecord {
                group: Some("A-GROUP-NAME-LONGER-THAN-20".into()),
                ..token("DAVE-SHORT", "dave")
            },
        ];
        let candidates = Candidates::new(tokens, NOW);
        let v16 = desired_list(
            &engine,
            &candidates,
            "CP-1",
            OcppVersion::V16,
            DEFAULT_LIST_REACH,
        );
        assert_eq!(v16.len(), 1);
        assert_eq!(v16["DAVE-SHORT"].group, None);
        let v201 = desired_list(
            &engine,
            &candidates,
            "CP-1",
            OcppVersion::V201,
            DEFAULT_LIST_REACH,
        );
        assert_eq!(v201.len(), 2);
        assert!(v201["DAVE-SHORT"].group.is_some());
    }

    #[test]
    fn differences_and_what_tightens() {
        let held: ListContent = [
            ("A".to_owned(), accepted(None, None)),
            ("B".to_owned(), accepted(None, None)),
            ("C".to_owned(), accepted(None, None)),
        ]
        .into();
        let same = diff(&held, &held.clone());
        assert_eq!(same, ListDiff::default());

        let mut grown = held.clone();
        grown.insert("D".into(), accepted(None, None));
        let added = diff(&held, &grown);
        assert!(!added.tightened, "adding a token tightens nothing");
        assert_eq!(added.changes.len(), 1);
        assert_eq!(added.changes[0].id_token, "D");

        let mut shrunk = held.clone();
        shrunk.remove("B");
        shrunk.insert("C".into(), accepted(Some("2024-05-02T00:00:00Z"), None));
        let removed = diff(&held, &shrunk);
        assert!(removed.tightened);
        assert_eq!(
            removed.changes,
            vec![
                LocalListEntry {
                    id_token: "B".into(),
                    token_type: None,
                    info: None
                },
                entry("C", &accepted(Some("2024-05-02T00:00:00Z"), None)),
            ]
        );
    }

    fn typed(token_type: Option<&str>) -> ListedToken {
        ListedToken {
            token_type: token_type.map(str::to_owned),
            ..accepted(None, None)
        }
    }

    #[test]
    fn v2_0_1_lists_carry_the_stored_token_type_and_1_6_lists_none() {
        let engine = estate();
        let tokens = vec![
            IdTokenRecord {
                token_type: Some("KeyCode".into()),
                ..token("DAVE-PIN", "dave")
            },
            token("DAVE-CARD", "dave"),
        ];
        let candidates = Candidates::new(tokens, NOW);
        let v201 = desired_list(
            &engine,
            &candidates,
            "CP-1",
            OcppVersion::V201,
            DEFAULT_LIST_REACH,
        );
        assert_eq!(v201["DAVE-PIN"], typed(Some("KeyCode")));
        assert_eq!(v201["DAVE-CARD"], typed(None));
        let call = Command::SendLocalList {
            version: 1,
            full: true,
            entries: full_entries(&v201),
        }
        .to_call(OcppVersion::V201, 0)
        .unwrap();
        let sent: Vec<_> = call.payload["localAuthorizationList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["idToken"].clone())
            .collect();
        assert_eq!(sent.len(), 2);
        assert!(sent.contains(&serde_json::json!({"idToken": "DAVE-PIN", "type": "KeyCode"})));
        assert!(sent.contains(&serde_json::json!({"idToken": "DAVE-CARD", "type": "ISO14443"})));

        let v16 = desired_list(
            &engine,
            &candidates,
            "CP-1",
            OcppVersion::V16,
            DEFAULT_LIST_REACH,
        );
        assert!(v16.values().all(|listed| listed.token_type.is_none()));
    }

    #[test]
    fn a_type_change_replaces_the_listed_pair_in_a_differential() {
        let held: ListContent = [
            ("A".to_owned(), typed(None)),
            ("B".to_owned(), typed(Some("ISO15693"))),
        ]
        .into();
        let desired: ListContent = [
            ("A".to_owned(), typed(Some("eMAID"))),
            ("B".to_owned(), typed(Some("ISO15693"))),
        ]
        .into();
        let changed = diff(&held, &desired);
        assert!(
            changed.tightened,
            "the old pair may have been accepted offline"
        );
        assert_eq!(
            changed.changes,
            vec![
                LocalListEntry {
                    id_token: "A".into(),
                    token_type: None,
                    info: None,
                },
                entry("A", &typed(Some("eMAID"))),
            ]
        );
        assert!(tightens(&held, &desired));
        // Both halves travel in one valid 2.0.1 differential.
        let call = Command::SendLocalList {
            version: 2,
            full: false,
            entries: changed.changes,
        }
        .to_call(OcppVersion::V201, 0)
        .unwrap();
        assert_eq!(
            call.payload["localAuthorizationList"],
            serde_json::json!([
                {"idToken": {"idToken": "A", "type": "ISO14443"}},
                {"idToken": {"idToken": "A", "type": "eMAID"},
                 "idTokenInfo": {"status": "Accepted"}},
            ])
        );
        // A list stored before token types existed reads back untyped.
        let stored: ListedToken = serde_json::from_str(r#"{"status":"Accepted"}"#).unwrap();
        assert_eq!(stored, typed(None));
    }

    /// A round passes over a connection only where it would send nothing: lists and caches
    /// holding exactly the list, and connections that take nothing.
    #[test]
    fn a_round_passes_over_only_settled_connections() {
        let list: ListContent = [("RFID-1".to_owned(), listed("Accepted"))].into();
        let other: ListContent = [("RFID-2".to_owned(), listed("Accepted"))].into();
        let session = |support, held: Option<&ListContent>| Session {
            support,
            held: held.cloned(),
            ..Session::new(1)
        };
        for support in [Support::Lists, Support::CacheOnly] {
            assert!(
                session(support, Some(&list)).settled_on(&list),
                "{support:?}"
            );
            assert!(
                !session(support, Some(&other)).settled_on(&list),
                "{support:?}"
            );
            assert!(
                !session(support, None).settled_on(&list),
                "{support:?}: unknown"
            );
            assert!(
                !session(support, None).settled_on(&ListContent::new()),
                "{support:?}: an unknown list is replaced even by an empty one"
            );
        }
        assert!(!session(Support::Unchecked, Some(&list)).settled_on(&list));
        for support in [Support::Nothing, Support::Deferred] {
            assert!(session(support, None).settled_on(&list), "{support:?}");
        }
    }

    #[test]
    fn versions_stay_inside_ocpp_integers() {
        assert_eq!(next_version(0), 1);
        assert_eq!(next_version(41), 42);
        assert_eq!(next_version(i64::from(i32::MAX)), 1);
        assert_eq!(next_version(-1), 1);
    }

    fn listed(status: &str) -> ListedToken {
        ListedToken {
            status: status.to_owned(),
            expires_at: None,
            group: None,
            token_type: None,
        }
    }

    /// Each piece as (version, full?, its tokens).
    fn shape_of(pieces: &[Piece]) -> Vec<(i64, bool, Vec<&str>)> {
        pieces
            .iter()
            .map(|p| (p.version, p.full, tokens_of(&p.entries)))
            .collect()
    }

    fn tokens_of(entries: &[LocalListEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.id_token.as_str()).collect()
    }

    fn five_tokens() -> ListContent {
        ["T1", "T2", "T3", "T4", "T5"]
            .into_iter()
            .map(|t| (t.to_owned(), accepted(None, None)))
            .collect()
    }

    /// The serialized frame a charger receives for `piece`, with a long message id.
    fn frame_bytes(version: OcppVersion, piece: &Piece) -> usize {
        let call = Command::SendLocalList {
            version: piece.version,
            full: piece.full,
            entries: piece.entries.clone(),
        }
        .to_call(version, 0)
        .unwrap();
        serde_json::json!([2, "18446744073709551615", call.action, call.payload])
            .to_string()
            .len()
    }

    #[test]
    fn a_full_list_over_the_item_limit_is_full_then_differentials_with_rising_versions() {
        let limits = ListLimits {
            items_per_message: Some(2),
            ..ListLimits::default()
        };
        let size = ListMessageSize::new(OcppVersion::V16);
        let pieces = plan_pieces(true, full_entries(&five_tokens()), &limits, &size, 7);
        let shape = shape_of(&pieces);
        assert_eq!(
            shape,
            vec![
                (8, true, vec!["T1", "T2"]),
                (9, false, vec!["T3", "T4"]),
                (10, false, vec!["T5"]),
            ]
        );
        let whole = plan_pieces(
            true,
            full_entries(&five_tokens()),
            &ListLimits::default(),
            &size,
            7,
        );
        assert_eq!(whole.len(), 1, "no limit known: one message, as before");
        assert_eq!((whole[0].version, whole[0].full), (8, true));
        let empty = plan_pieces(true, Vec::new(), &limits, &size, 0);
        assert_eq!(
            empty,
            vec![Piece {
                version: 1,
                full: true,
                entries: Vec::new()
            }],
            "an empty full list is still sent, to empty the charger's list"
        );
    }

    #[test]
    fn a_differential_update_is_split_the_same_way_removals_first() {
        let held = five_tokens();
        let mut desired: ListContent = held
            .iter()
            .filter(|(t, _)| t.as_str() != "T2" && t.as_str() != "T4")
            .map(|(t, e)| (t.clone(), e.clone()))
            .collect();
        for added in ["A1", "A2", "Z9"] {
            desired.insert(added.to_owned(), accepted(None, None));
        }
        let changes = diff(&held, &desired).changes;
        let limits = ListLimits {
            items_per_message: Some(2),
            ..ListLimits::default()
        };
        let pieces = plan_pieces(
            false,
            changes,
            &limits,
            &ListMessageSize::new(OcppVersion::V201),
            41,
        );
        let shape = shape_of(&pieces);
        assert_eq!(
            shape,
            vec![
                (42, false, vec!["T2", "T4"]),
                (43, false, vec!["A1", "A2"]),
                (44, false, vec!["Z9"]),
            ]
        );
        assert!(pieces[0].entries.iter().all(|e| e.info.is_none()));
    }

    #[test]
    fn messages_stay_within_the_byte_limit_and_are_packed_greedily() {
        for version in [OcppVersion::V16, OcppVersion::V201] {
            let list: ListContent = (0..40)
                .map(|i| {
                    let entry = ListedToken {
                        status: "Accepted".to_owned(),
                        expires_at: (i % 3 == 0).then(|| "2099-01-01T00:00:00Z".to_owned()),
                        group: (i % 4 == 0).then(|| format!("GROUP-{i}")),
                        token_type: (i % 5 == 0).then(|| "eMAID".to_owned()),
                    };
                    (format!("TAG-{i:03}"), entry)
                })
                .collect();
            let size = ListMessageSize::new(version);
            let plain = size.entry(&entry("TAG-999", &accepted(None, None)));
            // The smallest limit carries two plain entries but no entry with both an
            // expiry and a group.
            for (limit, some_too_large) in [
                (size.envelope() + 2 * plain + 5, true),
                (600, false),
                (1500, false),
            ] {
                let limits = ListLimits {
                    bytes_per_message: Some(limit),
                    ..ListLimits::default()
                };
                let fitted = fit_to_limits(&list, &limits, &size);
                assert_eq!(fitted.too_large > 0, some_too_large, "{version}: {limit}");
                let entries = full_entries(&fitted.list);
                let pieces = plan_pieces(true, entries.clone(), &limits, &size, 0);
                assert!(pieces.len() > 1, "{version}: {limit} bytes forces a split");
                let sent: Vec<LocalListEntry> =
                    pieces.iter().flat_map(|p| p.entries.clone()).collect();
                assert_eq!(sent, entries, "{version}: every entry once, in order");
                for (n, piece) in pieces.iter().enumerate() {
                    assert!(
                        frame_bytes(version, piece) <= limit,
                        "{version}: piece {n} is {} bytes, over {limit}",
                        frame_bytes(version, piece)
                    );
                    if let Some(next) = pieces.get(n + 1) {
                        let mut grown = piece.clone();
                        grown.entries.push(next.entries[0].clone());
                        grown.version = i64::from(i32::MAX);
                        grown.full = false;
                        assert!(
                            frame_bytes(version, &grown) >= limit,
                            "{version}: piece {n} had room for one more entry"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn over_capacity_keeps_refusals_first_then_acceptances_in_token_order() {
        let mut desired = five_tokens();
        desired.insert("X-BLOCKED".into(), listed("Blocked"));
        desired.insert("Y-EXPIRED".into(), listed("Expired"));
        let size = ListMessageSize::new(OcppVersion::V16);
        let limits = ListLimits {
            capacity: Some(4),
            ..ListLimits::default()
        };
        let fitted = fit_to_limits(&desired, &limits, &size);
        assert_eq!(
            fitted.list.keys().collect::<Vec<_>>(),
            ["T1", "T2", "X-BLOCKED", "Y-EXPIRED"]
        );
        assert_eq!((fitted.over_capacity, fitted.too_large), (3, 0));
        assert_eq!(
            tokens_of(&full_entries(&fitted.list)),
            ["X-BLOCKED", "Y-EXPIRED", "T1", "T2"],
            "refusals are sent first"
        );
        assert!(
            fitted
                .list
                .iter()
                .all(|(token, entry)| desired.get(token) == Some(entry)),
            "a cut list only holds what the rules give"
        );
        assert_eq!(
            fit_to_limits(&desired, &limits, &size),
            fitted,
            "the same list every round"
        );
        let roomy = ListLimits {
            capacity: Some(100),
            ..ListLimits::default()
        };
        assert_eq!(fit_to_limits(&desired, &roomy, &size).list, desired);
    }

    #[test]
    fn an_entry_too_large_for_any_message_is_left_out() {
        let size = ListMessageSize::new(OcppVersion::V201);
        let mut desired = five_tokens();
        desired.insert(
            "LONG".into(),
            accepted(Some("2099-01-01T00:00:00Z"), Some(&"G".repeat(200))),
        );
        let limits = ListLimits {
            bytes_per_message: Some(size.envelope() + 120),
            ..ListLimits::default()
        };
        let fitted = fit_to_limits(&desired, &limits, &size);
        assert_eq!((fitted.too_large, fitted.over_capacity), (1, 0));
        assert!(!fitted.list.contains_key("LONG"));
        assert_eq!(fitted.list.len(), 5);
    }

    #[test]
    fn a_cut_for_capacity_does_not_tighten_but_a_removed_right_does() {
        let allowed = five_tokens();
        let held: ListContent = allowed
            .iter()
            .take(3)
            .map(|(t, e)| (t.clone(), e.clone()))
            .collect();
        assert!(!tightens(&held, &allowed));
        let mut revoked = allowed.clone();
        revoked.remove("T2");
        assert!(tightens(&held, &revoked));
        let mut shortened = allowed.clone();
        shortened.insert("T1".into(), accepted(Some("2024-05-02T00:00:00Z"), None));
        assert!(tightens(&held, &shortened));
    }

    /// The cost the module documentation quotes: one engine check per (charger, principal).
    #[test]
    fn computing_lists_costs_one_check_per_charger_and_token_holder() {
        let mut engine = Engine::new(Preset::builtin("zaptec").unwrap());
        let installations = 20;
        let chargers_each = 50;
        let drivers = 100;
        for i in 0..installations {
            engine
                .add_scope(&format!("inst-{i}"), "installation", "root")
                .unwrap();
            for c in 0..chargers_each {
                engine
                    .add_scope(&format!("CP-{i}-{c}"), "station", &format!("inst-{i}"))
                    .unwrap();
            }
        }
        let mut tokens = Vec::new();
        for d in 0..drivers {
            let home = format!("inst-{}", d % installations);
            let id = format!("driver-{d}");
            engine
                .add_principal(&id, PrincipalKind::Driver, &home)
                .unwrap();
            engine.assign(&id, "user", &home).unwrap();
            tokens.push(token(&format!("TAG-{d}"), &id));
        }
        let candidates = Candidates::new(tokens, NOW);
        ENGINE_CHECKS.with(|checks| checks.set(0));
        let mut listed = 0;
        for i in 0..installations {
            for c in 0..chargers_each {
                let list = desired_list(
                    &engine,
                    &candidates,
                    &format!("CP-{i}-{c}"),
                    OcppVersion::V16,
                    DEFAULT_LIST_REACH,
                );
                assert_eq!(list.len(), drivers / installations);
                listed += list.len();
            }
        }
        assert_eq!(
            listed,
            installations * chargers_each * drivers / installations
        );
        assert_eq!(
            ENGINE_CHECKS.with(std::cell::Cell::get),
            installations * chargers_each * drivers,
            "one engine check per (charger, token-holding principal), no more"
        );
    }
}
