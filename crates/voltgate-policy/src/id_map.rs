//! Hash maps from ids to indices, used on the hot path of every check.
//!
//! Ids are short strings. The maps use a keyed fast hash (randomly seeded per map), which
//! costs a fraction of the standard library's SipHash while still not letting whoever picks
//! ids predict collisions. The large estate indices also keep short ids inside the table
//! itself, so a lookup does not chase a pointer to compare the key.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

type FastState = foldhash::fast::RandomState;

/// A map from names to values, for the small tables of a preset.
pub(crate) type NameMap<V> = HashMap<String, V, FastState>;

pub(crate) fn name_map<V>() -> NameMap<V> {
    NameMap::default()
}

const INLINE_CAPACITY: usize = 22;

/// An id stored inline when it is short, on the heap otherwise.
#[derive(Debug, Clone)]
enum IdKey {
    Inline {
        len: u8,
        bytes: [u8; INLINE_CAPACITY],
    },
    Heap(Box<str>),
}

impl IdKey {
    fn new(id: &str) -> IdKey {
        match u8::try_from(id.len()) {
            Ok(len) if id.len() <= INLINE_CAPACITY => {
                let mut bytes = [0; INLINE_CAPACITY];
                if let Some(prefix) = bytes.get_mut(..id.len()) {
                    prefix.copy_from_slice(id.as_bytes());
                }
                IdKey::Inline { len, bytes }
            }
            _ => IdKey::Heap(id.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            IdKey::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            IdKey::Heap(text) => text.as_bytes(),
        }
    }
}

// Keys are compared and hashed as bytes, so a lookup by `&[u8]` needs no UTF-8 check.
impl Borrow<[u8]> for IdKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &IdKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for IdKey {}

/// Interned ids of one kind (scopes, principals) to their indices.
#[derive(Debug, Clone)]
pub(crate) struct IdIndex<V> {
    map: HashMap<IdKey, V, FastState>,
}

impl<V: Copy> IdIndex<V> {
    pub(crate) fn new() -> IdIndex<V> {
        IdIndex {
            map: HashMap::default(),
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<V> {
        self.map.get(id.as_bytes()).copied()
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id.as_bytes())
    }

    pub(crate) fn insert(&mut self, id: &str, value: V) {
        self.map.insert(IdKey::new(id), value);
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<V> {
        self.map.remove(id.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::IdIndex;

    #[test]
    fn short_and_long_ids_round_trip() {
        let mut index = IdIndex::new();
        let long = "a-station-id-that-is-much-longer-than-the-inline-capacity";
        index.insert("st-1", 1u32);
        index.insert("exactly-twenty-two-chr", 2);
        index.insert(long, 3);
        index.insert("", 4);
        index.insert("ünïcødé-ïd", 5);
        assert_eq!(index.get("st-1"), Some(1));
        assert_eq!(index.get("exactly-twenty-two-chr"), Some(2));
        assert_eq!(index.get(long), Some(3));
        assert_eq!(index.get(""), Some(4));
        assert_eq!(index.get("ünïcødé-ïd"), Some(5));
        assert_eq!(index.get("st-2"), None);
        assert!(index.contains("st-1"));
        assert!(!index.contains("st-1 "));
    }
}
