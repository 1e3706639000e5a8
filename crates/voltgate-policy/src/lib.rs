//! The Voltgate role engine: who may do what to which charger, and who can see what.
//!
//! # Model
//!
//! * A **preset** ([`Preset`]) is one platform's role model, loaded from TOML: scope kinds and
//!   which kinds may sit under which, feature **modules**, **permissions** (in the platform's
//!   own wording), **roles** (bundles of permissions, or *admin* roles that hold every
//!   permission), and for every [`Action`] the permissions that allow it (or `admin-only`).
//! * The **estate** held by an [`Engine`] is a tree of **scopes** under the implicit `root`
//!   (organisations, sites, accounts, ..., stations), **principals** (operators, drivers and
//!   the system principal), each with a home scope, and **assignments**: a principal holds a
//!   role on a scope.
//! * A role held on a scope applies there and on every descendant, never on an ancestor or a
//!   sibling; roles stack by union. A permission tied to a module only counts where the module
//!   is on; per module the closest explicit setting on the way up wins, else its default. A
//!   role with `station_requires_module` can only be assigned on a station where that module
//!   is on, and such an assignment stops counting while the module is off there.
//! * [`Engine::check`] answers "may principal P do action A on resource R", where R is a scope
//!   or a principal (judged at its home scope). Anything a principal cannot see it cannot act
//!   on ([`Engine::can_see`]). Blocked principals are denied everything; the system principal
//!   is allowed everything that exists.
//! * [`Engine::can_assign`] guards role management: the granter needs authority over the role
//!   on the scope (the system principal, an admin role reaching it, or one of the role's
//!   `granted_by` permissions there), and may not hand out a permission it does not hold
//!   wherever the role would make it effective, including below the scope where a module is
//!   switched on.
//! * [`Engine::can_set_module`] guards module switches: the kinds a module is switched on,
//!   paid modules only by the paid-module permissions, editing sub-scopes' modules only below
//!   where that permission is held, and (nested presets) never a module the parent lacks.
//! * [`Engine::explain`] gives the evidence for a decision and one sentence for a person;
//!   [`Engine::explain_for`] tells it to someone else without naming what they cannot see.
//!
//! # Performance
//!
//! Scopes and principals are interned to integer indices numbered parents-first, permission
//! sets are fixed-size bit sets, every scope caches its module state, and each principal keeps
//! its assignments sorted by scope with the union of their roles precomputed. A check is two
//! id lookups and a short walk up the ancestor chain with a binary search per step; it never
//! allocates.
//!
//! The library does no I/O: the gateway loads stored state into an [`Engine`] and asks it.

mod action;
mod bitset;
mod card;
mod digest;
mod engine;
mod error;
mod explain;
mod grant;
mod id_map;
mod load;
mod manage;
mod matrix;
mod module_switch;
mod preset;
mod principal;
mod scope;

pub use action::{Action, UnknownAction};
pub use bitset::PermissionSet;
pub use card::CardClaim;
pub use engine::{
    is_reserved_principal_id, is_valid_id, Engine, ScopeLimits, MAX_ID_CHARS, MAX_ROLE_ID_CHARS,
    MAX_ROLE_LABEL_CHARS, RESERVED_PRINCIPAL_IDS, RESERVED_PRINCIPAL_PREFIXES,
};
pub use error::PolicyError;
pub use explain::{Decision, Evidence, Finding, HIDDEN};
pub use grant::{Denial, DenialCode};
pub use load::{PresetError, PresetIssue, PresetProblem, ADMIN_ONLY};
pub use preset::{
    ActingFor, ActionRule, KindDef, ModuleDef, PermissionDef, Preset, RoleDef, ROOT_KIND,
    STATION_KIND,
};
pub use principal::{PrincipalKind, Resource, UnknownPrincipalKind};
pub use scope::ROOT_SCOPE_ID;
