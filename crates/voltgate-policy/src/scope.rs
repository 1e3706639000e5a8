//! The scope tree: interned scope ids, parent links, children and module switches.
//!
//! Scopes are numbered in creation order, so a parent always has a smaller number than its
//! children and the root is `0`. That ordering lets one pass in index order carry anything
//! from parents to children, and lets an upward walk stop as soon as it passes below the
//! smallest scope it is looking for. Each scope caches which modules are on there, so a check
//! reads the module state instead of computing it.

use crate::id_map::IdIndex;
use crate::preset::{KindIndex, ROOT_KIND_INDEX};

pub(crate) type ScopeIndex = u32;
pub(crate) const ROOT_SCOPE: ScopeIndex = 0;
/// The id of the root scope every engine starts with.
pub const ROOT_SCOPE_ID: &str = "root";

/// The state of every module at one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModuleState {
    /// Bit `m`: module `m` is on.
    pub(crate) on: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct ScopeTree {
    /// Everything a check reads about a scope, one entry per scope for cache locality.
    nodes: Vec<Node>,
    names: Vec<String>,
    children: Vec<Vec<ScopeIndex>>,
    /// Bit `m`: module `m` is explicitly switched on at this scope or somewhere below it.
    switched_on_below: Vec<u64>,
    /// Per scope: its distance from the root, and its ancestor directly under the root.
    depths: Vec<u32>,
    tops: Vec<ScopeIndex>,
    /// Per scope directly under the root: how many scopes its subtree holds, itself included.
    subtree_sizes: Vec<u32>,
    index: IdIndex<ScopeIndex>,
    by_kind: Vec<Vec<ScopeIndex>>,
    /// Bit `m`: module `m` is on where no scope on the way up set it.
    modules_default_on: u64,
    /// A scope under a non-root parent has only modules the parent has.
    nested: bool,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Bit `m`: the scope sets module `m` explicitly.
    module_set: u64,
    /// Bit `m`: the explicit setting of module `m` is "on" (only meaningful where set).
    module_on: u64,
    /// Bit `m`: module `m` is on here, after inheritance and defaults.
    modules_effective: u64,
    /// The root is its own parent; [`ScopeTree::parent`] hides that.
    parent: ScopeIndex,
    kind: KindIndex,
}

impl Node {
    /// The effective modules here, given those of the parent.
    fn effective_under(&self, inherited: u64) -> u64 {
        (inherited & !self.module_set) | (self.module_on & self.module_set)
    }
}

impl ScopeTree {
    pub(crate) fn new(kind_count: usize, modules_default_on: u64, nested: bool) -> ScopeTree {
        let mut by_kind = vec![Vec::new(); kind_count.max(1)];
        if let Some(roots) = by_kind.get_mut(usize::from(ROOT_KIND_INDEX)) {
            roots.push(ROOT_SCOPE);
        }
        let mut index = IdIndex::new();
        index.insert(ROOT_SCOPE_ID, ROOT_SCOPE);
        ScopeTree {
            nodes: vec![Node {
                module_set: 0,
                module_on: 0,
                modules_effective: modules_default_on,
                parent: ROOT_SCOPE,
                kind: ROOT_KIND_INDEX,
            }],
            names: vec![ROOT_SCOPE_ID.to_owned()],
            children: vec![Vec::new()],
            switched_on_below: vec![0],
            depths: vec![0],
            tops: vec![ROOT_SCOPE],
            subtree_sizes: vec![0],
            index,
            by_kind,
            modules_default_on,
            nested,
        }
    }

    /// The effective modules of `node` under `parent`: inherited, overridden by the node's own
    /// settings, and (nested) never more than a non-root parent has.
    fn effective_modules(&self, node: &Node, parent: ScopeIndex) -> u64 {
        let inherited = self
            .node(parent)
            .map_or(self.modules_default_on, |parent| parent.modules_effective);
        let own = node.effective_under(inherited);
        if self.nested && parent != ROOT_SCOPE {
            own & inherited
        } else {
            own
        }
    }

    fn node(&self, scope: ScopeIndex) -> Option<&Node> {
        self.nodes.get(scope as usize)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = ScopeIndex> {
        0..ScopeIndex::try_from(self.nodes.len()).unwrap_or(ScopeIndex::MAX)
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<ScopeIndex> {
        self.index.get(name)
    }

    /// Every scope that switches a module itself: the scope, the modules it sets and which of
    /// those it sets on.
    pub(crate) fn module_settings(&self) -> impl Iterator<Item = (ScopeIndex, u64, u64)> + '_ {
        (0..).zip(&self.nodes).filter_map(|(index, node)| {
            (node.module_set != 0).then_some((
                index,
                node.module_set,
                node.module_on & node.module_set,
            ))
        })
    }

    pub(crate) fn name(&self, scope: ScopeIndex) -> &str {
        self.names.get(scope as usize).map_or("", String::as_str)
    }

    pub(crate) fn kind(&self, scope: ScopeIndex) -> KindIndex {
        self.node(scope).map_or(ROOT_KIND_INDEX, |node| node.kind)
    }

    pub(crate) fn parent(&self, scope: ScopeIndex) -> Option<ScopeIndex> {
        match self.node(scope) {
            Some(node) if node.parent != scope => Some(node.parent),
            _ => None,
        }
    }

    pub(crate) fn of_kind(&self, kind: KindIndex) -> &[ScopeIndex] {
        self.by_kind
            .get(usize::from(kind))
            .map_or(&[], Vec::as_slice)
    }

    /// Distance from the root (the root is 0).
    pub(crate) fn depth(&self, scope: ScopeIndex) -> u32 {
        self.depths.get(scope as usize).copied().unwrap_or(0)
    }

    /// The ancestor of `scope` (or `scope` itself) directly under the root; `None` for the root.
    pub(crate) fn top(&self, scope: ScopeIndex) -> Option<ScopeIndex> {
        self.tops
            .get(scope as usize)
            .copied()
            .filter(|&top| top != ROOT_SCOPE)
    }

    /// How many scopes the subtree of a scope directly under the root holds.
    pub(crate) fn subtree_size(&self, top: ScopeIndex) -> u32 {
        self.subtree_sizes.get(top as usize).copied().unwrap_or(0)
    }

    /// `scope` itself, then its parent, up to the root.
    pub(crate) fn ancestors(&self, scope: ScopeIndex) -> impl Iterator<Item = ScopeIndex> + '_ {
        std::iter::successors(Some(scope), move |&current| self.parent(current))
    }

    /// `scope` and its ancestors numbered `lowest` or above: the walk stops early because
    /// parents are numbered before their children.
    pub(crate) fn ancestors_down_to(
        &self,
        scope: ScopeIndex,
        lowest: ScopeIndex,
    ) -> impl Iterator<Item = ScopeIndex> + '_ {
        self.ancestors(scope)
            .take_while(move |&current| current >= lowest)
    }

    pub(crate) fn is_ancestor_or_self(&self, ancestor: ScopeIndex, scope: ScopeIndex) -> bool {
        self.ancestors_down_to(scope, ancestor)
            .any(|current| current == ancestor)
    }

    /// Adds a scope; the caller has checked that the name is new and the kind may sit there.
    pub(crate) fn add(&mut self, name: &str, kind: KindIndex, parent: ScopeIndex) -> ScopeIndex {
        let scope = ScopeIndex::try_from(self.nodes.len()).unwrap_or(ScopeIndex::MAX);
        let mut node = Node {
            module_set: 0,
            module_on: 0,
            modules_effective: 0,
            parent,
            kind,
        };
        node.modules_effective = self.effective_modules(&node, parent);
        self.nodes.push(node);
        self.names.push(name.to_owned());
        self.children.push(Vec::new());
        self.switched_on_below.push(0);
        self.depths.push(self.depth(parent).saturating_add(1));
        let top = self.top(parent).unwrap_or(scope);
        self.tops.push(top);
        self.subtree_sizes.push(0);
        if let Some(size) = self.subtree_sizes.get_mut(top as usize) {
            *size = size.saturating_add(1);
        }
        self.index.insert(name, scope);
        if let Some(siblings) = self.children.get_mut(parent as usize) {
            siblings.push(scope);
        }
        if let Some(same_kind) = self.by_kind.get_mut(usize::from(kind)) {
            same_kind.push(scope);
        }
        scope
    }

    /// Explicit setting of `module_bit` at `scope`: `Some(true)` on, `Some(false)` off,
    /// `None` to clear.
    pub(crate) fn set_module(&mut self, scope: ScopeIndex, module_bit: u64, setting: Option<bool>) {
        let Some(node) = self.nodes.get_mut(scope as usize) else {
            return;
        };
        match setting {
            Some(state) => {
                node.module_set |= module_bit;
                if state {
                    node.module_on |= module_bit;
                } else {
                    node.module_on &= !module_bit;
                }
            }
            None => {
                node.module_set &= !module_bit;
                node.module_on &= !module_bit;
            }
        }
        self.refresh_effective_modules(scope);
        self.refresh_switched_on_below(scope);
    }

    /// Removes every scope's explicit module settings: each module is back to its default
    /// everywhere.
    pub(crate) fn clear_modules(&mut self) {
        for node in &mut self.nodes {
            node.module_set = 0;
            node.module_on = 0;
        }
        self.switched_on_below.iter_mut().for_each(|mask| *mask = 0);
        self.refresh_effective_modules(ROOT_SCOPE);
    }

    /// Recomputes the cached module state of `scope` and every scope created after it (which
    /// includes its whole subtree); parents come first, so one pass suffices.
    fn refresh_effective_modules(&mut self, scope: ScopeIndex) {
        for index in scope as usize..self.nodes.len() {
            let Some(&node) = self.nodes.get(index) else {
                break;
            };
            let effective = if index == ROOT_SCOPE as usize {
                node.effective_under(self.modules_default_on)
            } else {
                self.effective_modules(&node, node.parent)
            };
            if let Some(slot) = self.nodes.get_mut(index) {
                slot.modules_effective = effective;
            }
        }
    }

    /// Recomputes the "switched on at or below" masks from `scope` up to the root.
    fn refresh_switched_on_below(&mut self, scope: ScopeIndex) {
        let mut current = Some(scope);
        while let Some(scope) = current {
            let below = self.children.get(scope as usize).map_or(0, |children| {
                children.iter().fold(0, |mask, &child| {
                    mask | self
                        .switched_on_below
                        .get(child as usize)
                        .copied()
                        .unwrap_or(0)
                })
            });
            let own = self
                .node(scope)
                .map_or(0, |node| node.module_set & node.module_on);
            match self.switched_on_below.get_mut(scope as usize) {
                Some(slot) if *slot != own | below => *slot = own | below,
                _ => break,
            }
            current = self.parent(scope);
        }
    }

    /// The explicit setting of the module at `scope`, if any.
    pub(crate) fn explicit_module(&self, scope: ScopeIndex, module_bit: u64) -> Option<bool> {
        let node = self.node(scope)?;
        (node.module_set & module_bit != 0).then_some(node.module_on & module_bit != 0)
    }

    /// Which modules are on at `scope`: per module, the closest explicit setting on the way
    /// up wins; with none, the module's default.
    pub(crate) fn module_state(&self, scope: ScopeIndex) -> ModuleState {
        ModuleState {
            on: self
                .node(scope)
                .map_or(self.modules_default_on, |node| node.modules_effective),
        }
    }

    pub(crate) fn module_on(&self, scope: ScopeIndex, module_bit: u64) -> bool {
        self.module_state(scope).on & module_bit != 0
    }

    /// Modules that are on at `scope` or at some scope below it.
    pub(crate) fn modules_possible_below(&self, scope: ScopeIndex) -> u64 {
        self.module_state(scope).on
            | self
                .switched_on_below
                .get(scope as usize)
                .copied()
                .unwrap_or(0)
    }
}
