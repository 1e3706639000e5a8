//! The validated, immutable description of one role model.
//!
//! A preset names the scope kinds, feature modules, permissions, roles and the mapping from
//! every [`Action`] to the permissions that allow it. Parsing and validation live in
//! [`crate::load`]; this module holds the result in two forms: the definitions as written
//! (for people and for tables) and a compiled form of bit sets and indices (for the engine).

use std::sync::Arc;

use serde::Serialize;

use crate::action::Action;
use crate::bitset::PermissionSet;
use crate::id_map::NameMap;
use crate::load::{self, PresetError};

/// The kind of the implicit top scope every estate has.
pub const ROOT_KIND: &str = "root";
/// The kind every preset must declare: the scope a charger belongs to.
pub const STATION_KIND: &str = "station";

/// A scope kind and the kinds allowed directly above it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindDef {
    pub id: String,
    pub parents: Vec<String>,
}

/// A feature module that scopes switch on or off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleDef {
    pub id: String,
    pub label: String,
    /// State at the root when no scope on the way up set it.
    pub default_on: bool,
    /// Paid for: switched only by the preset's paid-module permissions (if it names any).
    pub paid: bool,
    /// Scope kinds where the module may be switched; empty: every kind.
    pub switchable_on: Vec<String>,
}

/// One permission, in the seed's own wording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionDef {
    pub id: String,
    pub label: String,
    pub group: Option<String>,
    /// When set, the permission is only effective where this module is on.
    pub module: Option<String>,
    /// Admin-level permissions may not be part of custom roles.
    pub admin: bool,
    /// Gives access to EV-driver personal data.
    pub personal_data: bool,
}

/// A role as declared in the preset (or defined at run time as a custom role).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RoleDef {
    pub id: String,
    pub label: String,
    /// Holds every permission of the preset within its reach and satisfies admin-only actions.
    pub admin: bool,
    /// Empty for admin roles.
    pub permissions: Vec<String>,
    pub assignable_on: Vec<String>,
    /// Assignment on a scope of kind `station` needs this module on there.
    pub station_requires_module: Option<String>,
    /// False: holding this role never grants the `charge` action.
    pub can_charge: bool,
    /// Permissions, any of which lets a granter assign this role (and remove it, unless
    /// `removed_by` is given).
    pub granted_by: Vec<String>,
    /// Permissions, any of which lets a granter remove this role; empty: `granted_by`.
    pub removed_by: Vec<String>,
    /// The granter need not hold the role's permissions.
    pub allow_escalation: bool,
    /// Defined at run time rather than in the preset.
    pub custom: bool,
}

/// What an action requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionRule {
    /// Allowed if any listed permission is held; an empty list allows only the system principal.
    AnyOf(Vec<String>),
    /// Only admin roles (and the system principal) may do it.
    AdminOnly,
}

/// An [`ActionRule`] over permission indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompiledRule {
    AnyOf(PermissionSet),
    AdminOnly,
}

/// Index of a scope kind; `0` is the implicit root kind, declared kinds follow in file order.
pub(crate) type KindIndex = u8;
pub(crate) const ROOT_KIND_INDEX: KindIndex = 0;
/// Kind sets are `u64` bit masks.
pub(crate) const MAX_KINDS: usize = 64;
/// Module states are `u64` bit masks.
pub(crate) const MAX_MODULES: usize = 64;

/// A role reduced to what the engine evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledRole {
    /// Every permission of the preset for admin roles.
    pub(crate) permissions: PermissionSet,
    pub(crate) admin: bool,
    pub(crate) can_charge: bool,
    /// Bit `k` set: assignable on scopes of kind index `k`.
    pub(crate) assignable_on: u64,
    pub(crate) station_requires_module: Option<usize>,
    pub(crate) granted_by: PermissionSet,
    /// `granted_by` when the preset names no separate removal rule.
    pub(crate) removed_by: PermissionSet,
    pub(crate) allow_escalation: bool,
}

/// Everything a loaded preset knows; shared behind an `Arc`.
#[derive(Debug)]
pub(crate) struct PresetData {
    pub(crate) id: String,
    pub(crate) label: String,
    pub(crate) seed: Option<String>,
    pub(crate) custom_roles: bool,
    pub(crate) upward_visibility: bool,
    pub(crate) acting_for_operators: ActingFor,
    pub(crate) delete_requires_blocked: bool,
    pub(crate) kinds: Vec<KindDef>,
    pub(crate) modules: Vec<ModuleDef>,
    pub(crate) permissions: Vec<PermissionDef>,
    pub(crate) roles: Vec<RoleDef>,
    pub(crate) action_rules: Vec<ActionRule>,

    /// Kind name to index, including `root`.
    pub(crate) kind_index: NameMap<KindIndex>,
    /// Kind names by index, `root` first.
    pub(crate) kind_names: Vec<String>,
    /// Per kind index (root first): bit mask of kind indices allowed as direct parent.
    pub(crate) kind_parents: Vec<u64>,
    pub(crate) station_kind: KindIndex,
    pub(crate) permission_index: NameMap<usize>,
    pub(crate) module_index: NameMap<usize>,
    pub(crate) role_index: NameMap<usize>,
    pub(crate) compiled_roles: Vec<CompiledRole>,
    pub(crate) compiled_rules: Vec<CompiledRule>,
    pub(crate) all_permissions: PermissionSet,
    pub(crate) admin_permissions: PermissionSet,
    /// Permissions that need no module.
    pub(crate) unconditional: PermissionSet,
    /// Per module: the permissions that need it.
    pub(crate) module_permissions: Vec<PermissionSet>,
    /// Per permission: the bit of the module it needs (0 when it needs none).
    pub(crate) permission_module_bits: Vec<u64>,
    /// Bit `m` set: module `m` is on where nobody set it.
    pub(crate) modules_default_on: u64,
    /// Per module: bit mask of the kind indices where it may be switched.
    pub(crate) module_switchable_on: Vec<u64>,
    /// Bit `m` set: module `m` is paid for.
    pub(crate) paid_modules: u64,
    /// Permissions that switch paid modules where held (empty: `module.edit` does).
    pub(crate) paid_switch: PermissionSet,
    /// Permissions that switch unpaid modules strictly below where held.
    pub(crate) below_switch: PermissionSet,
    /// A scope below a non-root parent never has a module the parent lacks.
    pub(crate) nested_modules: bool,
}

/// A parsed and validated preset; cheap to clone.
#[derive(Debug, Clone)]
pub struct Preset {
    pub(crate) data: Arc<PresetData>,
}

/// How far acting for another operator may reach (`acting_for_operators` in a preset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActingFor {
    /// Every role the target holds must be one the actor could grant it there.
    #[default]
    Grant,
    /// Every role the target holds must be one the actor holds itself, there or above:
    /// "archive team members with the same roles as themselves".
    SameRoles,
}

macro_rules! builtin_sources {
    ($($name:literal),+ $(,)?) => {
        const BUILTIN_SOURCES: &[(&str, &str, &str)] = &[
            $(($name, concat!("presets/", $name, ".toml"), include_str!(concat!("../presets/", $name, ".toml"))),)+
        ];
    };
}

builtin_sources!("zaptec", "connect", "tenant", "virta", "multi-account");

impl Preset {
    /// The presets compiled into the library.
    pub const BUILTIN: &'static [&'static str] =
        &["zaptec", "connect", "tenant", "virta", "multi-account"];

    /// Loads one of [`Preset::BUILTIN`].
    pub fn builtin(name: &str) -> Result<Preset, PresetError> {
        let (_, source_name, text) = BUILTIN_SOURCES
            .iter()
            .find(|(builtin, _, _)| *builtin == name)
            .ok_or_else(|| PresetError::UnknownBuiltin(name.to_owned()))?;
        Preset::parse(source_name, text)
    }

    /// Parses and validates preset TOML. `source_name` is used in error messages; when it
    /// ends in `.toml` the preset id must equal its file stem.
    pub fn parse(source_name: &str, text: &str) -> Result<Preset, PresetError> {
        load::load(source_name, text).map(|data| Preset {
            data: Arc::new(data),
        })
    }

    pub fn id(&self) -> &str {
        &self.data.id
    }

    pub fn label(&self) -> &str {
        &self.data.label
    }

    /// The seed file the preset reproduces.
    pub fn seed(&self) -> Option<&str> {
        self.data.seed.as_deref()
    }

    /// Whether operators may define roles at run time.
    pub fn custom_roles(&self) -> bool {
        self.data.custom_roles
    }

    /// The rule for acting for another operator (blocking it, deleting it, holding its tokens).
    pub fn acting_for_operators(&self) -> ActingFor {
        self.data.acting_for_operators
    }

    /// Whether a principal must be blocked (archived) before it may be deleted.
    pub fn delete_requires_blocked(&self) -> bool {
        self.data.delete_requires_blocked
    }

    /// Whether a role held on a scope also makes that scope's ancestors visible.
    pub fn upward_visibility(&self) -> bool {
        self.data.upward_visibility
    }

    /// Declared kinds (the implicit `root` is not listed).
    pub fn kinds(&self) -> impl Iterator<Item = &KindDef> {
        self.data.kinds.iter()
    }

    pub fn roles(&self) -> impl Iterator<Item = &RoleDef> {
        self.data.roles.iter()
    }

    pub fn permissions(&self) -> impl Iterator<Item = &PermissionDef> {
        self.data.permissions.iter()
    }

    pub fn modules(&self) -> impl Iterator<Item = &ModuleDef> {
        self.data.modules.iter()
    }

    pub fn role(&self, id: &str) -> Option<&RoleDef> {
        let index = *self.data.role_index.get(id)?;
        self.data.roles.get(index)
    }

    pub fn permission(&self, id: &str) -> Option<&PermissionDef> {
        let index = *self.data.permission_index.get(id)?;
        self.data.permissions.get(index)
    }

    pub fn module(&self, id: &str) -> Option<&ModuleDef> {
        let index = *self.data.module_index.get(id)?;
        self.data.modules.get(index)
    }

    /// What the preset requires for `action`.
    pub fn action_permissions(&self, action: Action) -> ActionRule {
        self.data
            .action_rules
            .get(action.index())
            .cloned()
            .unwrap_or(ActionRule::AnyOf(Vec::new()))
    }

    /// The static role × permission cell: does the role's definition include the permission?
    /// Admin roles include every permission. `None` when either name is unknown.
    pub fn role_has_permission(&self, role: &str, permission: &str) -> Option<bool> {
        let role = self
            .data
            .compiled_roles
            .get(*self.data.role_index.get(role)?)?;
        let permission = *self.data.permission_index.get(permission)?;
        Some(role.permissions.contains(permission))
    }

    /// The role × permission table as text.
    pub fn matrix(&self) -> String {
        crate::matrix::render(self)
    }
}
