//! Fixed-size permission sets.
//!
//! Every permission of a preset gets a bit index at load time, so a role, a principal's grants
//! at a scope and an action's requirement are all plain bit sets. Their size is fixed so that
//! combining them on the hot path never allocates.

use std::fmt;

const WORDS: usize = 4;

/// A set of permission indices below [`PermissionSet::CAPACITY`].
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet {
    words: [u64; WORDS],
}

impl PermissionSet {
    /// How many distinct permissions a preset may declare.
    pub const CAPACITY: usize = WORDS * 64;

    pub const EMPTY: PermissionSet = PermissionSet { words: [0; WORDS] };

    /// The set `{0, 1, ..., len - 1}`; `len` is clamped to the capacity.
    pub fn first(len: usize) -> PermissionSet {
        let mut set = PermissionSet::EMPTY;
        for index in 0..len.min(Self::CAPACITY) {
            set.insert(index);
        }
        set
    }

    /// Adds `index`; returns false (and changes nothing) when it is beyond the capacity.
    pub fn insert(&mut self, index: usize) -> bool {
        match self.words.get_mut(index / 64) {
            Some(word) => {
                *word |= 1 << (index % 64);
                true
            }
            None => false,
        }
    }

    pub fn remove(&mut self, index: usize) {
        if let Some(word) = self.words.get_mut(index / 64) {
            *word &= !(1 << (index % 64));
        }
    }

    pub fn contains(&self, index: usize) -> bool {
        self.words
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&word| word == 0)
    }

    pub fn len(&self) -> usize {
        self.words
            .iter()
            .map(|word| word.count_ones() as usize)
            .sum()
    }

    #[must_use]
    pub fn union(mut self, other: &PermissionSet) -> PermissionSet {
        self.union_with(other);
        self
    }

    pub fn union_with(&mut self, other: &PermissionSet) {
        for (word, theirs) in self.words.iter_mut().zip(other.words) {
            *word |= theirs;
        }
    }

    #[must_use]
    pub fn intersection(mut self, other: &PermissionSet) -> PermissionSet {
        for (word, theirs) in self.words.iter_mut().zip(other.words) {
            *word &= theirs;
        }
        self
    }

    #[must_use]
    pub fn difference(mut self, other: &PermissionSet) -> PermissionSet {
        for (word, theirs) in self.words.iter_mut().zip(other.words) {
            *word &= !theirs;
        }
        self
    }

    pub fn intersects(&self, other: &PermissionSet) -> bool {
        self.words
            .iter()
            .zip(other.words)
            .any(|(word, theirs)| word & theirs != 0)
    }

    pub fn is_subset(&self, other: &PermissionSet) -> bool {
        self.words
            .iter()
            .zip(other.words)
            .all(|(word, theirs)| word & !theirs == 0)
    }

    /// The member indices in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(word_index, &word)| {
                let mut rest = word;
                std::iter::from_fn(move || {
                    if rest == 0 {
                        return None;
                    }
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    Some(word_index * 64 + bit)
                })
            })
    }
}

impl FromIterator<usize> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = usize>>(indices: I) -> Self {
        let mut set = PermissionSet::EMPTY;
        for index in indices {
            set.insert(index);
        }
        set
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::PermissionSet;

    #[test]
    fn capacity_holds_at_least_256_permissions() {
        const { assert!(PermissionSet::CAPACITY >= 256) };
        let mut set = PermissionSet::EMPTY;
        assert!(set.insert(PermissionSet::CAPACITY - 1));
        assert!(!set.insert(PermissionSet::CAPACITY));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn set_algebra_matches_index_lists() {
        let a: PermissionSet = [0, 5, 64, 200].into_iter().collect();
        let b: PermissionSet = [5, 65, 200, 255].into_iter().collect();
        assert_eq!(
            a.union(&b).iter().collect::<Vec<_>>(),
            [0, 5, 64, 65, 200, 255]
        );
        assert_eq!(a.intersection(&b).iter().collect::<Vec<_>>(), [5, 200]);
        assert_eq!(a.difference(&b).iter().collect::<Vec<_>>(), [0, 64]);
        assert!(a.intersects(&b));
        assert!(!a.is_subset(&b));
        assert!(a.intersection(&b).is_subset(&a));
        assert!(PermissionSet::EMPTY.is_empty());
        assert!(!a.contains(1));
        assert!(a.contains(64));
    }

    #[test]
    fn first_and_remove() {
        let mut set = PermissionSet::first(70);
        assert_eq!(set.len(), 70);
        set.remove(69);
        assert!(!set.contains(69));
        assert!(set.contains(68));
        assert_eq!(PermissionSet::first(10_000).len(), PermissionSet::CAPACITY);
    }
}
