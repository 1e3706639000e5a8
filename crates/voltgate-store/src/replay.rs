//! Puts stored role-engine state back in an order the engine accepts, the same for every
//! backend.

use std::collections::{HashMap, VecDeque};

use crate::records::ScopeRecord;

/// Orders scopes so every parent precedes its children, keeping insertion order among
/// siblings. A scope whose parent is not stored (such as the engine's implicit root) counts as
/// top-level; scopes caught in a parent cycle come last, in insertion order.
pub(crate) fn parents_first(scopes: Vec<ScopeRecord>) -> Vec<ScopeRecord> {
    let index_of: HashMap<&str, usize> = scopes
        .iter()
        .enumerate()
        .map(|(index, scope)| (scope.id.as_str(), index))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); scopes.len()];
    let mut queue = VecDeque::new();
    for (index, scope) in scopes.iter().enumerate() {
        match scope
            .parent
            .as_deref()
            .and_then(|parent| index_of.get(parent))
        {
            Some(&parent) if parent != index => {
                if let Some(siblings) = children.get_mut(parent) {
                    siblings.push(index);
                }
            }
            _ => queue.push_back(index),
        }
    }
    let mut placed = vec![false; scopes.len()];
    let mut order = Vec::with_capacity(scopes.len());
    while let Some(index) = queue.pop_front() {
        match placed.get_mut(index) {
            Some(done) if !*done => *done = true,
            _ => continue,
        }
        order.push(index);
        if let Some(below) = children.get(index) {
            queue.extend(below.iter().copied());
        }
    }
    order.extend((0..scopes.len()).filter(|&index| !placed.get(index).copied().unwrap_or(true)));
    let mut slots: Vec<Option<ScopeRecord>> = scopes.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|index| slots.get_mut(index).and_then(Option::take))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(id: &str, parent: Option<&str>) -> ScopeRecord {
        ScopeRecord {
            id: id.to_owned(),
            kind: "organisation".to_owned(),
            parent: parent.map(str::to_owned),
            name: None,
        }
    }

    fn ids(scopes: &[ScopeRecord]) -> Vec<&str> {
        scopes.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn parents_come_before_children_inserted_earlier() {
        let ordered = parents_first(vec![
            scope("station", Some("site")),
            scope("site", Some("org")),
            scope("org", Some("root")),
            scope("other", None),
        ]);
        assert_eq!(ids(&ordered), ["org", "other", "site", "station"]);
    }

    #[test]
    fn cycles_are_kept_at_the_end() {
        let ordered = parents_first(vec![
            scope("a", Some("b")),
            scope("top", None),
            scope("b", Some("a")),
            scope("self", Some("self")),
        ]);
        assert_eq!(ids(&ordered), ["top", "self", "a", "b"]);
    }
}
