//! Local authorisation: the list the gateway installs with SendLocalList (versioned, full or
//! differential) and the cache of answers the charger remembers, both consulted when the
//! gateway cannot be asked (offline) or need not be (local pre-authorisation).

use std::collections::{BTreeMap, HashMap};

use super::clock::Millis;

/// What the central system said about an id token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The status word as sent (`Accepted`, `Blocked`, `Expired`, `Invalid`, ...).
    pub status: String,
    pub expires: Option<Millis>,
}

impl TokenInfo {
    pub fn accepted() -> TokenInfo {
        TokenInfo {
            status: "Accepted".into(),
            expires: None,
        }
    }

    /// Whether the token may charge at `now`.
    pub fn allows(&self, now: Millis) -> bool {
        self.status == "Accepted" && self.expires.is_none_or(|e| now < e)
    }
}

/// How a SendLocalList request changes the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    Full,
    Differential,
}

/// The answer to a SendLocalList request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOutcome {
    Accepted,
    VersionMismatch,
    Failed,
}

/// The local authorisation list.
#[derive(Debug, Clone, Default)]
pub struct LocalList {
    version: i64,
    entries: BTreeMap<String, TokenInfo>,
}

impl LocalList {
    /// The installed version; 0 when no list was ever installed.
    pub fn version(&self) -> i64 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Applies an update. A differential update must carry a newer version than the installed
    /// one; an entry without token info removes the token. An update of more than
    /// `per_message` entries fails, and so does one that would grow the list past `max_len`;
    /// a failed update leaves the list as it was.
    pub fn apply(
        &mut self,
        version: i64,
        kind: UpdateKind,
        updates: Vec<(String, Option<TokenInfo>)>,
        per_message: usize,
        max_len: usize,
    ) -> ListOutcome {
        if version < 0 || updates.len() > per_message {
            return ListOutcome::Failed;
        }
        let mut next = match kind {
            UpdateKind::Full => BTreeMap::new(),
            UpdateKind::Differential => {
                if version <= self.version {
                    return ListOutcome::VersionMismatch;
                }
                self.entries.clone()
            }
        };
        for (token, info) in updates {
            match info {
                Some(info) => {
                    next.insert(token, info);
                }
                None => {
                    next.remove(&token);
                }
            }
        }
        if next.len() > max_len {
            return ListOutcome::Failed;
        }
        self.entries = next;
        self.version = version;
        ListOutcome::Accepted
    }

    pub fn lookup(&self, token: &str) -> Option<&TokenInfo> {
        self.entries.get(token)
    }
}

/// The authorisation cache: the last answer seen for each token.
#[derive(Debug, Clone, Default)]
pub struct AuthCache {
    entries: HashMap<String, TokenInfo>,
}

impl AuthCache {
    pub fn remember(&mut self, token: &str, info: TokenInfo) {
        self.entries.insert(token.to_owned(), info);
    }

    pub fn lookup(&self, token: &str) -> Option<&TokenInfo> {
        self.entries.get(token)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted() -> Option<TokenInfo> {
        Some(TokenInfo::accepted())
    }

    #[test]
    fn full_then_differential_updates() {
        let mut list = LocalList::default();
        assert_eq!(list.version(), 0);
        let full = vec![("A".to_owned(), accepted()), ("B".to_owned(), accepted())];
        assert_eq!(
            list.apply(3, UpdateKind::Full, full, 100, 10),
            ListOutcome::Accepted
        );
        assert_eq!((list.version(), list.len()), (3, 2));
        let diff = vec![("A".to_owned(), None), ("C".to_owned(), accepted())];
        assert_eq!(
            list.apply(3, UpdateKind::Differential, diff.clone(), 100, 10),
            ListOutcome::VersionMismatch
        );
        assert_eq!(
            list.apply(4, UpdateKind::Differential, diff, 100, 10),
            ListOutcome::Accepted
        );
        assert!(list.lookup("A").is_none());
        assert!(list.lookup("C").is_some());
        assert_eq!(list.version(), 4);
        // a full update may go back in version and empties the list
        assert_eq!(
            list.apply(1, UpdateKind::Full, vec![], 100, 10),
            ListOutcome::Accepted
        );
        assert!(list.is_empty());
    }

    #[test]
    fn too_long_lists_fail_and_leave_the_old_one() {
        let mut list = LocalList::default();
        let many: Vec<_> = (0..5).map(|i| (format!("T{i}"), accepted())).collect();
        assert_eq!(
            list.apply(1, UpdateKind::Full, many, 100, 4),
            ListOutcome::Failed
        );
        assert_eq!(list.version(), 0);
        assert_eq!(
            list.apply(-1, UpdateKind::Full, vec![], 100, 4),
            ListOutcome::Failed
        );
    }

    fn tokens(range: std::ops::Range<usize>) -> Vec<(String, Option<TokenInfo>)> {
        range.map(|i| (format!("T{i}"), accepted())).collect()
    }

    #[test]
    fn more_entries_than_one_message_may_carry_fail_whatever_the_room() {
        let mut list = LocalList::default();
        assert_eq!(
            list.apply(1, UpdateKind::Full, tokens(0..3), 2, 100),
            ListOutcome::Failed
        );
        assert_eq!((list.version(), list.len()), (0, 0));
        assert_eq!(
            list.apply(1, UpdateKind::Full, tokens(0..2), 2, 100),
            ListOutcome::Accepted
        );
        assert_eq!(
            list.apply(2, UpdateKind::Differential, tokens(2..5), 2, 100),
            ListOutcome::Failed
        );
        assert_eq!((list.version(), list.len()), (1, 2), "nothing applied");
    }

    #[test]
    fn a_full_list_in_pieces_builds_up_and_a_differential_may_not_overfill() {
        let mut list = LocalList::default();
        assert_eq!(
            list.apply(7, UpdateKind::Full, tokens(0..2), 2, 5),
            ListOutcome::Accepted
        );
        assert_eq!(
            list.apply(8, UpdateKind::Differential, tokens(2..4), 2, 5),
            ListOutcome::Accepted
        );
        assert_eq!(
            list.apply(9, UpdateKind::Differential, tokens(4..5), 2, 5),
            ListOutcome::Accepted
        );
        assert_eq!((list.version(), list.len()), (9, 5));
        assert_eq!(
            list.apply(10, UpdateKind::Differential, tokens(5..6), 2, 5),
            ListOutcome::Failed,
            "a sixth entry does not fit"
        );
        assert_eq!((list.version(), list.len()), (9, 5));
        let swap = vec![("T0".to_owned(), None), ("T5".to_owned(), accepted())];
        assert_eq!(
            list.apply(10, UpdateKind::Differential, swap, 2, 5),
            ListOutcome::Accepted,
            "a removal makes room in the same message"
        );
        assert!(list.lookup("T0").is_none() && list.lookup("T5").is_some());
    }

    #[test]
    fn token_info_expiry_and_cache() {
        let info = TokenInfo {
            status: "Accepted".into(),
            expires: Some(Millis(1000)),
        };
        assert!(info.allows(Millis(999)));
        assert!(!info.allows(Millis(1000)));
        assert!(!TokenInfo {
            status: "Blocked".into(),
            expires: None
        }
        .allows(Millis(0)));
        let mut cache = AuthCache::default();
        cache.remember("X", info);
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert!(cache.lookup("X").is_none());
    }
}
