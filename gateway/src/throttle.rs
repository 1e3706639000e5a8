//! Keeps authentication expensive for someone guessing and cheap for everyone else.
//!
//! [`FailureThrottle`] is a token bucket of failures per key: every failed authentication takes
//! a token, and a key without tokens is answered "too many requests" until one has been
//! refilled. IPv6 addresses are grouped by their /64, which one host can usually fill. The
//! address is the client's as [`crate::proxy`] finds it (behind a trusted proxy, the one the
//! proxy names).
//!
//! Both listeners go through a [`CredentialThrottle`], because many clients share one address
//! (a site NAT, a mobile carrier, an office) and one misconfigured or hostile neighbour must
//! not lock the others out:
//! - Failures are counted per address *and credential identity* (on the charger listener the
//!   charger id, which the Basic user must equal; on the API a fingerprint of the bearer token
//!   presented), with the `--auth-failure-burst` budget, and per address with a larger budget
//!   (`--auth-failure-address-burst`) that bounds guessing across many identities. Both refill
//!   one failure per `--auth-failure-refill`.
//! - Only failures are counted and only refusals are throttled. Valid credentials are never
//!   answered 429 because of other identities' failures: an API token is always looked up
//!   (cheap) unless that same token has used up its own budget, and a failure from an address
//!   without budget is answered 429; a registered charger whose own budget is untouched still
//!   gets its password checked while its address has no budget (one try per identity per full
//!   refill, so guessing across ids stays bounded), and a charger that needs no secret
//!   (profile 0) or presents the password already verified since the gateway started (the
//!   keyed digest in [`VerifiedPasswords`]) is admitted without consulting a budget.
//! - A budget is *reserved before* the slow password hash runs and given back only when the
//!   password was right ([`Reservation`]), so parallel guesses cannot all pass a check that
//!   happens before any of them is charged. Verifications in flight are also capped per
//!   address and per charger ([`CredentialThrottle::verifying`]); more wait their turn.
//!
//! [`RegistrationLimit`] bounds how many unknown chargers `--auto-register` creates: a bucket per
//! address and one for the whole gateway, both refilled one charger per
//! `--auto-register-refill`.
//!
//! [`VerifiedPasswords`] remembers, per charger, a keyed digest of the last password that
//! passed the slow hash, so the reconnect storm after a network outage does not run the slow
//! hash once per handshake. The digest key is random per process; the cache is never written
//! anywhere.
//!
//! The maps are bounded: when full, buckets that have refilled completely are dropped, and if
//! that frees nothing new keys are not tracked (and logged) rather than growing memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Failed authentications an address may make in a burst (for chargers: per charger id).
pub(crate) const DEFAULT_FAILURE_BURST: u32 = 10;
/// Failed charger authentications an address may make in a burst over all charger ids.
pub(crate) const DEFAULT_ADDRESS_FAILURE_BURST: u32 = 100;
/// Chargers one address may auto-register in a burst.
pub(crate) const DEFAULT_REGISTRATION_ADDRESS_BURST: u32 = 10;
/// Chargers the whole gateway may auto-register in a burst.
pub(crate) const DEFAULT_REGISTRATION_TOTAL_BURST: u32 = 100;
/// Each registration budget refills one charger per this much time.
pub(crate) const DEFAULT_REGISTRATION_REFILL: Duration = Duration::from_secs(60);
/// Slow password verifications running at once for one client address.
const VERIFYING_PER_ADDRESS: usize = 2;
/// Slow password verifications running at once for one charger id.
const VERIFYING_PER_CHARGER: usize = 1;
/// One more failure is allowed after this much time without one.
pub(crate) const DEFAULT_FAILURE_REFILL: Duration = Duration::from_secs(10);
/// Most client addresses tracked per listener.
pub(crate) const DEFAULT_MAX_TRACKED_ADDRESSES: usize = 100_000;
/// Most chargers whose last verified password is remembered.
const MAX_REMEMBERED_PASSWORDS: usize = 500_000;

/// Which listener a throttle protects; used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    Ocpp,
    Api,
}

impl Listener {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Listener::Ocpp => "ocpp",
            Listener::Api => "api",
        }
    }
}

/// The authentication guards the two listeners share through [`crate::state::AppState`].
pub(crate) struct AuthGuard {
    /// Failed charger handshakes per address and charger id.
    pub chargers: CredentialThrottle,
    /// Failed operator API authentications per address and token fingerprint.
    pub api: CredentialThrottle,
    /// Charger passwords that recently passed the slow hash.
    pub passwords: VerifiedPasswords,
    /// Chargers auto-registered per address and in total.
    pub registrations: RegistrationLimit,
    /// Slow password verifications running at once; more wait, so a storm of handshakes with
    /// unknown passwords queues instead of occupying every blocking thread (and its memory).
    pub password_checks: tokio::sync::Semaphore,
}

/// How many charger password verifications (Argon2id) run at once per gateway.
const PASSWORD_CHECKS_AT_ONCE: usize = 4;

/// The size of a pair of token buckets and how fast they refill, one token per `refill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed authentications: per address and credential identity. Registrations: in all.
    pub burst: u32,
    /// Per address, over every identity.
    pub address_burst: u32,
    pub refill: Duration,
}

impl AuthGuard {
    /// Guards with the default limits.
    pub(crate) fn new() -> AuthGuard {
        AuthGuard::with_failure_limits(Limits {
            burst: DEFAULT_FAILURE_BURST,
            address_burst: DEFAULT_ADDRESS_FAILURE_BURST,
            refill: DEFAULT_FAILURE_REFILL,
        })
    }

    /// Guards allowing `burst` failed authentications per address (per address and charger id
    /// on the charger listener, where the address may fail `address_burst` times over all ids)
    /// at once, then one per `refill`.
    pub(crate) fn with_failure_limits(limits: Limits) -> AuthGuard {
        let throttle = || {
            CredentialThrottle::new(
                limits.burst,
                limits.address_burst,
                limits.refill,
                DEFAULT_MAX_TRACKED_ADDRESSES,
            )
        };
        AuthGuard {
            chargers: throttle(),
            api: throttle(),
            passwords: VerifiedPasswords::new(MAX_REMEMBERED_PASSWORDS),
            registrations: RegistrationLimit::new(
                DEFAULT_REGISTRATION_ADDRESS_BURST,
                DEFAULT_REGISTRATION_TOTAL_BURST,
                DEFAULT_REGISTRATION_REFILL,
            ),
            password_checks: tokio::sync::Semaphore::new(PASSWORD_CHECKS_AT_ONCE),
        }
    }

    /// The same guards with other auto-registration limits.
    pub(crate) fn with_registration_limits(self, limits: Limits) -> AuthGuard {
        AuthGuard {
            registrations: RegistrationLimit::new(
                limits.address_burst,
                limits.burst,
                limits.refill,
            ),
            ..self
        }
    }
}

impl Default for AuthGuard {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token bucket of failures per key (by default the client address).
pub(crate) struct FailureThrottle<K = IpAddr> {
    buckets: DashMap<K, Bucket>,
    burst: f64,
    refill: Duration,
    max_tracked: usize,
}

impl<K: Eq + Hash + Clone> FailureThrottle<K> {
    /// `burst` failures at once, then one per `refill`; at most `max_tracked` keys.
    pub(crate) fn new(burst: u32, refill: Duration, max_tracked: usize) -> FailureThrottle<K> {
        FailureThrottle {
            buckets: DashMap::new(),
            burst: f64::from(burst.max(1)),
            refill: refill.max(Duration::from_millis(1)),
            max_tracked,
        }
    }

    /// Keys currently tracked.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// Whether `key` has no failure counted (or all of them refilled).
    fn is_untouched(&self, key: &K, now: Instant) -> bool {
        self.buckets
            .get(key)
            .is_none_or(|bucket| self.refilled(*bucket, now) >= self.burst)
    }

    fn check_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let Some(bucket) = self.buckets.get(key).map(|b| *b) else {
            return Ok(());
        };
        let tokens = self.refilled(bucket, now);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.refill.mul_f64(1.0 - tokens))
        }
    }

    /// Takes one failure from `key`'s bucket in one step; `Err(wait)` (nothing taken) when it
    /// has none left.
    fn take_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        if !self.buckets.contains_key(&key) && !self.make_room(now) {
            return Ok(());
        }
        let mut bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens < 1.0 {
            return Err(self.refill.mul_f64(1.0 - tokens));
        }
        *bucket = Bucket {
            tokens: tokens - 1.0,
            updated: now,
        };
        Ok(())
    }

    /// Whether another key may be tracked, after dropping fully refilled buckets if full.
    fn make_room(&self, now: Instant) -> bool {
        if self.buckets.len() < self.max_tracked {
            return true;
        }
        self.buckets
            .retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
        if self.buckets.len() < self.max_tracked {
            return true;
        }
        tracing::warn!(
            tracked = self.buckets.len(),
            "too many clients with failed authentications to track another"
        );
        false
    }

    /// Gives back a failure taken by [`FailureThrottle::take_at`].
    fn give_back_at(&self, key: &K, now: Instant) {
        if let Some(mut bucket) = self.buckets.get_mut(key) {
            let tokens = self.refilled(*bucket, now);
            *bucket = Bucket {
                tokens: (tokens + 1.0).min(self.burst),
                updated: now,
            };
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated);
        let gained = elapsed.as_secs_f64() / self.refill.as_secs_f64();
        (bucket.tokens + gained).min(self.burst)
    }
}

/// Failed authentications per address and credential identity, and per address over all
/// identities; see the module documentation.
pub(crate) struct CredentialThrottle {
    identities: FailureThrottle<(IpAddr, String)>,
    addresses: FailureThrottle<IpAddr>,
    verifying_per_address: InFlight<IpAddr>,
    verifying_per_charger: InFlight<String>,
}

impl CredentialThrottle {
    pub(crate) fn new(
        burst: u32,
        address_burst: u32,
        refill: Duration,
        max_tracked: usize,
    ) -> CredentialThrottle {
        CredentialThrottle {
            identities: FailureThrottle::new(burst, refill, max_tracked),
            addresses: FailureThrottle::new(address_burst.max(burst), refill, max_tracked),
            verifying_per_address: InFlight::new(VERIFYING_PER_ADDRESS),
            verifying_per_charger: InFlight::new(VERIFYING_PER_CHARGER),
        }
    }

    /// Takes one failure from the budgets of `identity` at `address` and of `address`, before
    /// a secret is checked; the [`Reservation`] gives it back if the secret was right.
    /// `Err(wait)` (nothing taken) when either budget is used up, except that a `registered`
    /// identity whose own budget is untouched is let through to its check while only its
    /// address has no budget (see the module documentation).
    pub(crate) fn reserve(
        &self,
        address: IpAddr,
        identity: &str,
        registered: bool,
    ) -> Result<Reservation<'_>, Duration> {
        self.reserve_at(address, identity, registered, Instant::now())
    }

    /// Counts a failure that needed no slow check (an unknown id, a missing certificate, a
    /// wrong API token); `Err(wait)` (nothing counted) when a budget is used up.
    pub(crate) fn record_failure(&self, address: IpAddr, identity: &str) -> Result<(), Duration> {
        self.reserve_at(address, identity, false, Instant::now())
            .map(Reservation::keep)
    }

    /// `Err(wait)` when `identity` at `address` has used up its own budget (the address's
    /// budget is not looked at: see [`CredentialThrottle::record_failure`]).
    pub(crate) fn check_identity(&self, address: IpAddr, identity: &str) -> Result<(), Duration> {
        self.identities
            .check_at(&(bucket_key(address), identity.to_owned()), Instant::now())
    }

    /// Counts a failure before any charger id was read (a failed TLS handshake).
    pub(crate) fn record_address_failure(&self, address: IpAddr) {
        let _ = self.addresses.take_at(bucket_key(address), Instant::now());
    }

    /// Waits until a slow verification for `charger_id` from `address` may run: a few at a time
    /// per address and per charger.
    pub(crate) async fn verifying(&self, address: IpAddr, charger_id: &str) -> Verifying {
        let per_address = self.verifying_per_address.enter(bucket_key(address)).await;
        let per_charger = self
            .verifying_per_charger
            .enter(charger_id.to_owned())
            .await;
        Verifying {
            _per_address: per_address,
            _per_charger: per_charger,
        }
    }

    fn reserve_at(
        &self,
        address: IpAddr,
        identity: &str,
        registered: bool,
        now: Instant,
    ) -> Result<Reservation<'_>, Duration> {
        let address = bucket_key(address);
        let identity = (address, identity.to_owned());
        let untouched = self.identities.is_untouched(&identity, now);
        self.identities.take_at(identity.clone(), now)?;
        let address_taken = match self.addresses.take_at(address, now) {
            Ok(()) => true,
            Err(_) if registered && untouched => false,
            Err(wait) => {
                self.identities.give_back_at(&identity, now);
                return Err(wait);
            }
        };
        Ok(Reservation {
            throttle: self,
            identity,
            address_taken,
        })
    }
}

/// One failure taken from a charger's and its address's budgets; kept unless
/// [`Reservation::give_back`] is called (so a check that never finishes counts as failed).
#[must_use = "a reservation is kept or given back"]
pub(crate) struct Reservation<'a> {
    throttle: &'a CredentialThrottle,
    identity: (IpAddr, String),
    /// Whether the address's budget was taken too (not when the address had none left).
    address_taken: bool,
}

impl Reservation<'_> {
    /// The check failed: the failure stays counted.
    pub(crate) fn keep(self) {}

    /// The check succeeded: successes take nothing.
    pub(crate) fn give_back(self) {
        self.give_back_at(Instant::now());
    }

    fn give_back_at(self, now: Instant) {
        self.throttle.identities.give_back_at(&self.identity, now);
        if self.address_taken {
            self.throttle.addresses.give_back_at(&self.identity.0, now);
        }
    }
}

/// How many unknown chargers auto-registration creates: a token bucket per address and one for
/// the whole gateway, so a flood of handshakes cannot create chargers without end.
pub(crate) struct RegistrationLimit {
    per_address: FailureThrottle<IpAddr>,
    total: FailureThrottle<()>,
}

impl RegistrationLimit {
    pub(crate) fn new(address_burst: u32, total_burst: u32, refill: Duration) -> RegistrationLimit {
        RegistrationLimit {
            per_address: FailureThrottle::new(address_burst, refill, DEFAULT_MAX_TRACKED_ADDRESSES),
            total: FailureThrottle::new(total_burst, refill, 1),
        }
    }

    /// Takes one registration from `address`'s budget and the total; `Err(wait)` (nothing
    /// taken) when either is used up.
    pub(crate) fn take(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        self.take_at(address, Instant::now())
    }

    fn take_at(&self, address: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        if let Some(address) = address {
            let address = bucket_key(address);
            self.per_address.take_at(address, now)?;
            if let Err(wait) = self.total.take_at((), now) {
                self.per_address.give_back_at(&address, now);
                return Err(wait);
            }
            return Ok(());
        }
        self.total.take_at((), now)
    }
}

/// Slots for slow verifications, per address and per charger, held until dropped.
pub(crate) struct Verifying {
    _per_address: InFlightPermit<IpAddr>,
    _per_charger: InFlightPermit<String>,
}

/// At most `limit` holders per key at once; the map holds only keys in use.
struct InFlight<K: Eq + Hash + Clone> {
    limit: usize,
    slots: Arc<parking_lot::Mutex<HashMap<K, Arc<tokio::sync::Semaphore>>>>,
}

struct InFlightPermit<K: Eq + Hash + Clone> {
    key: K,
    semaphore: Arc<tokio::sync::Semaphore>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    slots: Arc<parking_lot::Mutex<HashMap<K, Arc<tokio::sync::Semaphore>>>>,
}

impl<K: Eq + Hash + Clone> InFlight<K> {
    fn new(limit: usize) -> InFlight<K> {
        InFlight {
            limit: limit.max(1),
            slots: Arc::default(),
        }
    }

    async fn enter(&self, key: K) -> InFlightPermit<K> {
        let semaphore = self
            .slots
            .lock()
            .entry(key.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.limit)))
            .clone();
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = semaphore.clone().acquire_owned().await.ok();
        InFlightPermit {
            key,
            semaphore,
            permit,
            slots: self.slots.clone(),
        }
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.slots.lock().len()
    }
}

impl<K: Eq + Hash + Clone> Drop for InFlightPermit<K> {
    fn drop(&mut self) {
        self.permit.take();
        let mut slots = self.slots.lock();
        // Clones are only made under this lock: the map's and ours left means nobody waits.
        if Arc::strong_count(&self.semaphore) == 2 {
            slots.remove(&self.key);
        }
    }
}

/// IPv4 (also when mapped into IPv6) as is; other IPv6 addresses by their /64 prefix.
fn bucket_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Remembers which password last passed the slow hash for each charger, as a keyed digest.
pub(crate) struct VerifiedPasswords {
    key: [u8; 32],
    entries: DashMap<String, RememberedPassword>,
    max_entries: usize,
}

struct RememberedPassword {
    /// The stored hash the password was verified against; a new hash invalidates the entry.
    stored_hash: String,
    digest: [u8; 32],
}

impl VerifiedPasswords {
    pub(crate) fn new(max_entries: usize) -> VerifiedPasswords {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        VerifiedPasswords {
            key,
            entries: DashMap::new(),
            max_entries,
        }
    }

    /// Whether `password` is the one that last passed verification against `stored_hash`.
    pub(crate) fn is_known(&self, charger_id: &str, stored_hash: &str, password: &str) -> bool {
        let digest = self.digest(charger_id, password);
        self.entries.get(charger_id).is_some_and(|entry| {
            entry.stored_hash == stored_hash
                && crate::state::constant_time_eq(&entry.digest, &digest)
        })
    }

    /// Records that `password` passed verification against `stored_hash`.
    pub(crate) fn remember(&self, charger_id: &str, stored_hash: &str, password: &str) {
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(charger_id) {
            return;
        }
        let entry = RememberedPassword {
            stored_hash: stored_hash.to_owned(),
            digest: self.digest(charger_id, password),
        };
        self.entries.insert(charger_id.to_owned(), entry);
    }

    /// Forgets a charger's password (e.g. after it was changed).
    pub(crate) fn forget(&self, charger_id: &str) {
        self.entries.remove(charger_id);
    }

    fn digest(&self, charger_id: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update((charger_id.len() as u64).to_be_bytes());
        hasher.update(charger_id.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_burst_of_failures_then_one_per_refill() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(10), 100);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.check_at(&A, start), Ok(()));
            assert_eq!(throttle.take_at(A, start), Ok(()));
        }
        let wait = throttle.check_at(&A, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        assert_eq!(
            throttle.take_at(A, start),
            Err(wait),
            "nothing left to take"
        );
        assert_eq!(
            throttle.check_at(&B, start),
            Ok(()),
            "other addresses are free"
        );
        let later = start + Duration::from_secs(4);
        let wait = throttle.check_at(&A, later).unwrap_err();
        assert!(wait > Duration::from_secs(5) && wait <= Duration::from_secs(6));
        let refilled = start + Duration::from_secs(10);
        assert_eq!(throttle.check_at(&A, refilled), Ok(()));
        assert_eq!(throttle.take_at(A, refilled), Ok(()));
        assert!(throttle.check_at(&A, refilled).is_err(), "one token, used");
    }

    #[test]
    fn guesses_reserve_before_checking_and_successes_give_back() {
        let throttle = CredentialThrottle::new(3, 5, Duration::from_secs(3600), 100);
        let now = Instant::now();
        let held: Vec<_> = (0..3)
            .map(|_| {
                throttle
                    .reserve_at(A, "CP-1", false, now)
                    .expect("within the burst")
            })
            .collect();
        assert!(
            throttle.reserve_at(A, "CP-1", false, now).is_err(),
            "checks still running count: a fourth parallel guess is refused"
        );
        for reservation in held {
            reservation.keep();
        }
        assert!(throttle.reserve_at(A, "CP-1", false, now).is_err());
        assert!(
            throttle.reserve_at(B, "CP-1", false, now).is_ok(),
            "another address"
        );
        let right = throttle.reserve_at(A, "CP-2", false, now).unwrap();
        right.give_back_at(now);
        for _ in 0..2 {
            throttle.reserve_at(A, "CP-2", false, now).unwrap().keep();
        }
        assert!(
            throttle.reserve_at(A, "CP-3", false, now).is_err(),
            "the address budget bounds guessing across ids"
        );
        for _ in 0..4 {
            throttle.record_address_failure(B);
        }
        assert!(
            throttle.reserve_at(B, "CP-9", false, now).is_err(),
            "failed TLS handshakes count for the address"
        );
    }

    #[test]
    fn an_address_without_budget_still_checks_a_registered_identity_that_never_failed() {
        let throttle = CredentialThrottle::new(3, 4, Duration::from_secs(3600), 100);
        let now = Instant::now();
        for id in ["X-1", "X-2"] {
            for _ in 0..2 {
                throttle.reserve_at(A, id, false, now).unwrap().keep();
            }
        }
        assert!(
            throttle.reserve_at(A, "X-3", false, now).is_err(),
            "the address has no budget left"
        );
        let innocent = throttle
            .reserve_at(A, "CP-OK", true, now)
            .expect("a registered charger that never failed is checked");
        innocent.give_back_at(now);
        let again = throttle.reserve_at(A, "CP-OK", true, now).unwrap();
        again.keep();
        assert!(
            throttle.reserve_at(A, "CP-OK", true, now).is_err(),
            "one try per identity while the address has no budget"
        );
        assert!(
            throttle.reserve_at(A, "CP-NEW", false, now).is_err(),
            "unregistered identities get no extra try"
        );
        assert_eq!(throttle.check_identity(A, "X-3"), Ok(()));
        throttle.reserve_at(B, "T", false, now).unwrap().keep();
        for _ in 0..2 {
            throttle.reserve_at(B, "T", false, now).unwrap().keep();
        }
        assert!(throttle.check_identity(B, "T").is_err(), "its own budget");
    }

    #[test]
    fn ipv6_hosts_share_their_slash_64_and_mapped_ipv4_is_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(bucket_key(one), bucket_key(two));
        assert_ne!(bucket_key(one), bucket_key(other));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(bucket_key(mapped), A);
        assert_eq!(
            bucket_key(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let throttle = FailureThrottle::new(2, Duration::from_secs(1), 4);
        let start = Instant::now();
        for last in 0..4u8 {
            let _ = throttle.take_at(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), start);
        }
        assert_eq!(throttle.tracked(), 4);
        let fifth = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99));
        let _ = throttle.take_at(fifth, start);
        assert_eq!(
            throttle.tracked(),
            4,
            "full and nothing refilled: not tracked"
        );
        let _ = throttle.take_at(fifth, start + Duration::from_secs(5));
        assert_eq!(throttle.tracked(), 1, "refilled buckets were dropped");
    }

    #[test]
    fn registrations_are_limited_per_address_and_in_total() {
        let limit = RegistrationLimit::new(2, 3, Duration::from_secs(60));
        let now = Instant::now();
        assert!(limit.take_at(Some(A), now).is_ok());
        assert!(limit.take_at(Some(A), now).is_ok());
        assert!(limit.take_at(Some(A), now).is_err(), "per address");
        assert!(limit.take_at(Some(B), now).is_ok());
        let wait = limit.take_at(Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))), now);
        assert_eq!(wait, Err(Duration::from_secs(60)), "in total");
        assert!(limit
            .take_at(Some(B), now + Duration::from_secs(60))
            .is_ok());
    }

    #[tokio::test]
    async fn verifications_in_flight_are_capped_per_key_and_keys_forgotten() {
        let in_flight = InFlight::new(2);
        let first = in_flight.enter("CP-1").await;
        let _second = in_flight.enter("CP-1").await;
        let third = tokio::time::timeout(Duration::from_millis(50), in_flight.enter("CP-1")).await;
        assert!(third.is_err(), "a third waits");
        let _other = in_flight.enter("CP-2").await;
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), in_flight.enter("CP-1"))
            .await
            .expect("a slot was freed");
        drop((third, _second, _other));
        assert_eq!(in_flight.keys(), 0);
    }

    #[test]
    fn remembered_passwords_match_only_the_same_password_and_hash() {
        let cache = VerifiedPasswords::new(2);
        cache.remember("CP-1", "hash-1", "secret");
        assert!(cache.is_known("CP-1", "hash-1", "secret"));
        assert!(!cache.is_known("CP-1", "hash-1", "secreT"));
        assert!(!cache.is_known("CP-1", "hash-2", "secret"), "hash changed");
        assert!(!cache.is_known("CP-2", "hash-1", "secret"));
        cache.remember("CP-2", "h", "p");
        cache.remember("CP-3", "h", "p");
        assert!(!cache.is_known("CP-3", "h", "p"), "full: not remembered");
        cache.forget("CP-1");
        assert!(!cache.is_known("CP-1", "hash-1", "secret"));
    }
}
