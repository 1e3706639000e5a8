//! Keeps authentication expensive for someone guessing and cheap for everyone else.
//!
//! [`FailureThrottle`] is a token bucket per client address: every failed authentication (a
//! charger handshake refused for its credentials or certificate, an operator request with a
//! bad token) takes a token, and an address without tokens is answered "too many requests"
//! until one has been refilled. Successes take nothing, so a working charger behind the same
//! NAT as a misconfigured one is only held back once the misconfigured one has used up the
//! burst. IPv6 addresses are grouped by their /64, which one host can usually fill.
//!
//! [`VerifiedPasswords`] remembers, per charger, a keyed digest of the last password that
//! passed the slow hash, so the reconnect storm after a network outage does not run the slow
//! hash once per handshake. The digest key is random per process; the cache is never written
//! anywhere.
//!
//! Both maps are bounded: when full, buckets that have refilled completely are dropped, and if
//! that frees nothing new addresses are not tracked (and logged) rather than growing memory.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Failed authentications an address may make in a burst.
pub const DEFAULT_FAILURE_BURST: u32 = 10;
/// One more failure is allowed after this much time without one.
pub const DEFAULT_FAILURE_REFILL: Duration = Duration::from_secs(10);
/// Most client addresses tracked per listener.
pub const DEFAULT_MAX_TRACKED_ADDRESSES: usize = 100_000;
/// Most chargers whose last verified password is remembered.
const MAX_REMEMBERED_PASSWORDS: usize = 500_000;

/// Which listener a throttle protects; used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Ocpp,
    Api,
}

impl Listener {
    pub fn label(self) -> &'static str {
        match self {
            Listener::Ocpp => "ocpp",
            Listener::Api => "api",
        }
    }
}

/// The authentication guards the two listeners share through [`crate::state::AppState`].
pub struct AuthGuard {
    /// Failed charger handshakes per address.
    pub chargers: FailureThrottle,
    /// Failed operator API authentications per address.
    pub api: FailureThrottle,
    /// Charger passwords that recently passed the slow hash.
    pub passwords: VerifiedPasswords,
}

impl AuthGuard {
    /// Guards with the default limits.
    pub fn new() -> AuthGuard {
        AuthGuard::with_failure_limits(DEFAULT_FAILURE_BURST, DEFAULT_FAILURE_REFILL)
    }

    /// Guards allowing `burst` failed authentications per address at once, then one per
    /// `refill`, on each listener.
    pub fn with_failure_limits(burst: u32, refill: Duration) -> AuthGuard {
        AuthGuard {
            chargers: FailureThrottle::new(burst, refill, DEFAULT_MAX_TRACKED_ADDRESSES),
            api: FailureThrottle::new(burst, refill, DEFAULT_MAX_TRACKED_ADDRESSES),
            passwords: VerifiedPasswords::new(MAX_REMEMBERED_PASSWORDS),
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

/// A token bucket of failures per client address.
pub struct FailureThrottle {
    buckets: DashMap<IpAddr, Bucket>,
    burst: f64,
    refill: Duration,
    max_tracked: usize,
}

impl FailureThrottle {
    /// `burst` failures at once, then one per `refill`; at most `max_tracked` addresses.
    pub fn new(burst: u32, refill: Duration, max_tracked: usize) -> FailureThrottle {
        FailureThrottle {
            buckets: DashMap::new(),
            burst: f64::from(burst.max(1)),
            refill: refill.max(Duration::from_millis(1)),
            max_tracked,
        }
    }

    /// `Err(wait)` when `address` has no failures left; `wait` is when the next one is allowed.
    pub fn check(&self, address: IpAddr) -> Result<(), Duration> {
        self.check_at(address, Instant::now())
    }

    /// Takes one failure from `address`'s bucket.
    pub fn record_failure(&self, address: IpAddr) {
        self.record_failure_at(address, Instant::now());
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn check_at(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = bucket_key(address);
        let Some(bucket) = self.buckets.get(&key).map(|b| *b) else {
            return Ok(());
        };
        let tokens = self.refilled(bucket, now);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.refill.mul_f64(1.0 - tokens))
        }
    }

    fn record_failure_at(&self, address: IpAddr, now: Instant) {
        let key = bucket_key(address);
        if let Some(mut bucket) = self.buckets.get_mut(&key) {
            let tokens = self.refilled(*bucket, now);
            *bucket = Bucket {
                tokens: (tokens - 1.0).max(0.0),
                updated: now,
            };
            return;
        }
        if self.buckets.len() >= self.max_tracked {
            self.buckets
                .retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
            if self.buckets.len() >= self.max_tracked {
                tracing::warn!(
                    tracked = self.buckets.len(),
                    "too many client addresses with failed authentications to track another"
                );
                return;
            }
        }
        self.buckets.insert(
            key,
            Bucket {
                tokens: self.burst - 1.0,
                updated: now,
            },
        );
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated);
        let gained = elapsed.as_secs_f64() / self.refill.as_secs_f64();
        (bucket.tokens + gained).min(self.burst)
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
pub struct VerifiedPasswords {
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
    pub fn new(max_entries: usize) -> VerifiedPasswords {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        VerifiedPasswords {
            key,
            entries: DashMap::new(),
            max_entries,
        }
    }

    /// Whether `password` is the one that last passed verification against `stored_hash`.
    pub fn is_known(&self, charger_id: &str, stored_hash: &str, password: &str) -> bool {
        let digest = self.digest(charger_id, password);
        self.entries.get(charger_id).is_some_and(|entry| {
            entry.stored_hash == stored_hash
                && crate::state::constant_time_eq(&entry.digest, &digest)
        })
    }

    /// Records that `password` passed verification against `stored_hash`.
    pub fn remember(&self, charger_id: &str, stored_hash: &str, password: &str) {
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
    pub fn forget(&self, charger_id: &str) {
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
            assert_eq!(throttle.check_at(A, start), Ok(()));
            throttle.record_failure_at(A, start);
        }
        let wait = throttle.check_at(A, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        assert_eq!(
            throttle.check_at(B, start),
            Ok(()),
            "other addresses are free"
        );
        let later = start + Duration::from_secs(4);
        let wait = throttle.check_at(A, later).unwrap_err();
        assert!(wait > Duration::from_secs(5) && wait <= Duration::from_secs(6));
        let refilled = start + Duration::from_secs(10);
        assert_eq!(throttle.check_at(A, refilled), Ok(()));
        throttle.record_failure_at(A, refilled);
        assert!(throttle.check_at(A, refilled).is_err(), "one token, used");
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
            throttle.record_failure_at(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), start);
        }
        assert_eq!(throttle.tracked(), 4);
        let fifth = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99));
        throttle.record_failure_at(fifth, start);
        assert_eq!(
            throttle.tracked(),
            4,
            "full and nothing refilled: not tracked"
        );
        throttle.record_failure_at(fifth, start + Duration::from_secs(5));
        assert_eq!(throttle.tracked(), 1, "refilled buckets were dropped");
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
