//! Who acts, and what they hold.
//!
//! A principal's assignments are kept per scope, sorted by scope number, each with the union of
//! its roles precomputed. A check walks the target's ancestor chain and binary-searches this
//! short list at every step, so it never allocates and never scans other principals.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::bitset::PermissionSet;
use crate::preset::CompiledRole;
use crate::scope::ScopeIndex;

/// What sort of actor a principal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// A person operating the back office.
    Operator,
    /// An EV driver.
    Driver,
    /// The gateway itself and its internal jobs: passes every check.
    System,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Operator => "operator",
            PrincipalKind::Driver => "driver",
            PrincipalKind::System => "system",
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`PrincipalKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown principal kind `{0}` (expected operator, driver or system)")]
pub struct UnknownPrincipalKind(pub String);

impl FromStr for PrincipalKind {
    type Err = UnknownPrincipalKind;

    fn from_str(text: &str) -> Result<PrincipalKind, UnknownPrincipalKind> {
        match text {
            "operator" => Ok(PrincipalKind::Operator),
            "driver" => Ok(PrincipalKind::Driver),
            "system" => Ok(PrincipalKind::System),
            _ => Err(UnknownPrincipalKind(text.to_owned())),
        }
    }
}

/// What an action is performed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum Resource {
    /// A scope (a station, a site, an organisation, ...) by id.
    Scope(String),
    /// A principal by id, judged at the principal's home scope.
    Principal(String),
}

impl Resource {
    pub fn scope(id: impl Into<String>) -> Resource {
        Resource::Scope(id.into())
    }

    pub fn principal(id: impl Into<String>) -> Resource {
        Resource::Principal(id.into())
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Scope(id) => write!(f, "scope `{id}`"),
            Resource::Principal(id) => write!(f, "principal `{id}`"),
        }
    }
}

pub(crate) type PrincipalIndex = u32;
pub(crate) type RoleIndex = u16;

/// What a set of role assignments adds up to, before modules are applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) permissions: PermissionSet,
    /// The permissions of roles that may charge.
    pub(crate) charge_permissions: PermissionSet,
    pub(crate) admin: bool,
    /// An admin role that may charge.
    pub(crate) admin_charge: bool,
}

impl Grant {
    pub(crate) fn of_role(role: &CompiledRole) -> Grant {
        Grant {
            permissions: role.permissions,
            charge_permissions: if role.can_charge {
                role.permissions
            } else {
                PermissionSet::EMPTY
            },
            admin: role.admin,
            admin_charge: role.admin && role.can_charge,
        }
    }

    pub(crate) fn merge(&mut self, other: &Grant) {
        self.permissions.union_with(&other.permissions);
        self.charge_permissions
            .union_with(&other.charge_permissions);
        self.admin |= other.admin;
        self.admin_charge |= other.admin_charge;
    }
}

/// The roles a principal holds on one scope.
#[derive(Debug, Clone)]
pub(crate) struct Holding {
    pub(crate) scope: ScopeIndex,
    /// In assignment order.
    pub(crate) roles: Vec<RoleIndex>,
    /// Union of the roles that apply unconditionally.
    pub(crate) grant: Grant,
    /// Some role here only applies while a module is on at this scope.
    pub(crate) conditional: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct PrincipalRecord {
    pub(crate) name: String,
    pub(crate) kind: PrincipalKind,
    pub(crate) home: ScopeIndex,
    pub(crate) blocked: bool,
    /// May never be deleted (the gateway's bootstrap administrator).
    pub(crate) protected: bool,
    /// The scopes of `holdings`, sorted; kept apart so a search touches little memory.
    held_scopes: Vec<ScopeIndex>,
    /// Sorted by scope.
    holdings: Vec<Holding>,
}

impl PrincipalRecord {
    pub(crate) fn new(name: &str, kind: PrincipalKind, home: ScopeIndex) -> PrincipalRecord {
        PrincipalRecord {
            name: name.to_owned(),
            kind,
            home,
            blocked: false,
            protected: false,
            held_scopes: Vec::new(),
            holdings: Vec::new(),
        }
    }

    /// Sorted by scope.
    pub(crate) fn holdings(&self) -> &[Holding] {
        &self.holdings
    }

    /// The smallest scope number the principal holds a role on.
    pub(crate) fn lowest_held_scope(&self) -> Option<ScopeIndex> {
        self.held_scopes.first().copied()
    }

    /// Where the holding for `scope` is (`Ok`) or would go (`Err`).
    pub(crate) fn position(&self, scope: ScopeIndex) -> Result<usize, usize> {
        self.held_scopes.binary_search(&scope)
    }

    pub(crate) fn holding(&self, scope: ScopeIndex) -> Option<&Holding> {
        self.position(scope)
            .ok()
            .and_then(|position| self.holdings.get(position))
    }

    /// Stores `holding` at the place [`PrincipalRecord::position`] gave for its scope.
    pub(crate) fn put(&mut self, position: Result<usize, usize>, holding: Holding) {
        match position {
            Ok(found) => {
                if let Some(slot) = self.holdings.get_mut(found) {
                    *slot = holding;
                }
            }
            Err(insert_at) => {
                self.held_scopes.insert(insert_at, holding.scope);
                self.holdings.insert(insert_at, holding);
            }
        }
    }

    pub(crate) fn remove(&mut self, position: usize) {
        if position < self.holdings.len() {
            self.held_scopes.remove(position);
            self.holdings.remove(position);
        }
    }
}
