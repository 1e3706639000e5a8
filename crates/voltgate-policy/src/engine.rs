//! The estate (scopes, principals, role assignments, module switches) and the questions asked
//! of it: may this principal do this action here, and what can this principal see.
//!
//! The engine does no I/O. The gateway replays stored state into it with the mutating methods
//! and asks [`Engine::check`] before every operation.

use crate::action::Action;
use crate::bitset::PermissionSet;
use crate::error::PolicyError;
use crate::id_map::{IdIndex, NameMap};
use crate::load::module_bit;
use crate::preset::{
    CompiledRole, CompiledRule, KindIndex, Preset, RoleDef, ROOT_KIND, ROOT_KIND_INDEX,
};
use crate::principal::{
    Grant, Holding, PrincipalIndex, PrincipalKind, PrincipalRecord, Resource, RoleIndex,
};
use crate::scope::{ModuleState, ScopeIndex, ScopeTree};

/// The role engine for one preset and one estate.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) preset: Preset,
    pub(crate) roles: Vec<RoleDef>,
    pub(crate) compiled_roles: Vec<CompiledRole>,
    pub(crate) role_grants: Vec<Grant>,
    pub(crate) role_index: NameMap<RoleIndex>,
    pub(crate) scopes: ScopeTree,
    pub(crate) principals: Vec<PrincipalRecord>,
    pub(crate) principal_index: IdIndex<PrincipalIndex>,
    pub(crate) limits: ScopeLimits,
}

/// How large the scope tree may grow: every answer walks a scope's ancestors, and listings
/// walk subtrees, so depth and subtree size bound what one request can cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeLimits {
    /// Scopes on the way from the root down to any scope, the scope itself included.
    pub max_depth: u32,
    /// Scopes in the subtree of one scope directly under the root, that scope included.
    pub max_subtree_scopes: u32,
}

impl ScopeLimits {
    /// No limit: what a new engine starts with, so replaying a stored estate never drops a
    /// scope; the gateway sets its configured limits afterwards.
    pub const NONE: ScopeLimits = ScopeLimits {
        max_depth: u32::MAX,
        max_subtree_scopes: u32::MAX,
    };
}

/// What a principal's roles add up to at one scope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach {
    pub(crate) grant: Grant,
    /// Modules on at the scope.
    pub(crate) modules: ModuleState,
}

/// The longest custom role id.
pub const MAX_ROLE_ID_CHARS: usize = 64;
/// The longest custom role label.
pub const MAX_ROLE_LABEL_CHARS: usize = 200;

/// Principal ids the gateway writes into its own audit records, so that no principal can be
/// created under them and pass for the gateway: the gateway itself, an unauthenticated
/// caller; and ids starting with one of [`RESERVED_PRINCIPAL_PREFIXES`]: `id-token:…`, the
/// subject of a charger-side card decision, and `charger:…`, a charger at its handshake.
pub const RESERVED_PRINCIPAL_IDS: &[&str] = &["system", "anonymous"];
/// See [`RESERVED_PRINCIPAL_IDS`].
pub const RESERVED_PRINCIPAL_PREFIXES: &[&str] = &["id-token:", "charger:"];

/// Whether `id` is kept for the gateway's own audit entries ([`RESERVED_PRINCIPAL_IDS`]).
pub fn is_reserved_principal_id(id: &str) -> bool {
    RESERVED_PRINCIPAL_IDS
        .iter()
        .any(|reserved| id.eq_ignore_ascii_case(reserved))
        || RESERVED_PRINCIPAL_PREFIXES.iter().any(|reserved| {
            id.get(..reserved.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(reserved))
        })
}

/// The longest id of a scope, charger or principal.
pub const MAX_ID_CHARS: usize = 64;

/// The one rule for scope, charger and principal ids. They travel (percent-encoded) in URL
/// paths and OCPP identity fields: 1 to [`MAX_ID_CHARS`] characters, no control characters,
/// no white space, no `/`, and not `.` or `..`, which every HTTP client normalises away so
/// such a record could never be addressed.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '/')
}

impl Engine {
    /// An engine with only the root scope.
    pub fn new(preset: Preset) -> Engine {
        let data = &preset.data;
        let roles = data.roles.clone();
        let compiled_roles = data.compiled_roles.clone();
        let role_grants = compiled_roles.iter().map(Grant::of_role).collect();
        let role_index = roles
            .iter()
            .enumerate()
            .filter_map(|(index, role)| Some((role.id.clone(), RoleIndex::try_from(index).ok()?)))
            .collect();
        let scopes = ScopeTree::new(
            data.kind_names.len(),
            data.modules_default_on,
            data.nested_modules,
        );
        Engine {
            preset,
            roles,
            compiled_roles,
            role_grants,
            role_index,
            scopes,
            principals: Vec::new(),
            principal_index: IdIndex::new(),
            limits: ScopeLimits::NONE,
        }
    }

    /// This engine's preset, scope limits and scope tree, without the rules the estate adds
    /// to it: no principals, no custom roles, no assignments, every module at its default.
    /// Replaying the stored rules onto it gives the engine a full load would, without
    /// rebuilding thousands of stations.
    pub fn scopes_only(&self) -> Engine {
        let mut engine = Engine::new(self.preset.clone());
        engine.scopes = self.scopes.clone();
        engine.scopes.clear_modules();
        engine.limits = self.limits;
        engine
    }

    /// Limits for scopes added from now on; scopes already there stay.
    pub fn set_scope_limits(&mut self, limits: ScopeLimits) {
        self.limits = limits;
    }

    pub fn scope_limits(&self) -> ScopeLimits {
        self.limits
    }

    /// Whether one more scope fits under `parent` within the [`ScopeLimits`].
    pub fn check_scope_room(&self, parent: &str) -> Result<(), PolicyError> {
        let parent_index = self.scope_index(parent)?;
        self.scope_room(parent_index)
    }

    fn scope_room(&self, parent: ScopeIndex) -> Result<(), PolicyError> {
        if self.scopes.depth(parent) >= self.limits.max_depth {
            return Err(PolicyError::TooDeep {
                parent: self.scopes.name(parent).to_owned(),
                limit: self.limits.max_depth,
            });
        }
        if let Some(top) = self.scopes.top(parent) {
            if self.scopes.subtree_size(top) >= self.limits.max_subtree_scopes {
                return Err(PolicyError::SubtreeFull {
                    top: self.scopes.name(top).to_owned(),
                    limit: self.limits.max_subtree_scopes,
                });
            }
        }
        Ok(())
    }

    pub fn preset(&self) -> &Preset {
        &self.preset
    }

    // ----- scopes -------------------------------------------------------------------------

    /// Adds a scope of a declared kind under an existing parent whose kind is allowed above it.
    pub fn add_scope(&mut self, id: &str, kind: &str, parent: &str) -> Result<(), PolicyError> {
        let (kind_index, parent_index) = self.plan_scope(id, kind, parent)?;
        self.scopes.add(id, kind_index, parent_index);
        Ok(())
    }

    /// Whether [`Engine::add_scope`] would succeed, changing nothing.
    pub fn check_add_scope(&self, id: &str, kind: &str, parent: &str) -> Result<(), PolicyError> {
        self.plan_scope(id, kind, parent).map(|_| ())
    }

    /// Whether a scope of `kind` may sit directly under the existing scope `parent`, whatever
    /// its id would be: the parent-kind rule of [`Engine::add_scope`] on its own, for callers
    /// that must know before they have an id (e.g. where unknown chargers will be registered).
    pub fn check_kind_under(&self, kind: &str, parent: &str) -> Result<(), PolicyError> {
        let kind_index = self.kind_index(kind)?;
        if kind_index == ROOT_KIND_INDEX {
            return Err(PolicyError::RootKind);
        }
        let parent_kind = self.scopes.kind(self.scope_index(parent)?);
        if self.parent_allowed(kind_index, parent_kind) {
            Ok(())
        } else {
            Err(PolicyError::ParentKindNotAllowed {
                kind: kind.to_owned(),
                parent: parent.to_owned(),
                parent_kind: self.kind_name(parent_kind).to_owned(),
            })
        }
    }

    /// The kinds (`root` included) a scope of `kind` may sit directly under, in preset order.
    pub fn parent_kinds_of(&self, kind: &str) -> Result<Vec<&str>, PolicyError> {
        let kind_index = self.kind_index(kind)?;
        let kinds = self.preset.data.kind_names.len();
        Ok((0..kinds)
            .filter_map(|parent| KindIndex::try_from(parent).ok())
            .filter(|parent| self.parent_allowed(kind_index, *parent))
            .map(|parent| self.kind_name(parent))
            .collect())
    }

    fn parent_allowed(&self, kind: KindIndex, parent_kind: KindIndex) -> bool {
        let allowed_parents = self
            .preset
            .data
            .kind_parents
            .get(usize::from(kind))
            .copied()
            .unwrap_or(0);
        allowed_parents & (1u64 << parent_kind) != 0
    }

    fn plan_scope(
        &self,
        id: &str,
        kind: &str,
        parent: &str,
    ) -> Result<(KindIndex, ScopeIndex), PolicyError> {
        if !is_valid_id(id) {
            return Err(PolicyError::InvalidId {
                what: "scope",
                id: id.to_owned(),
            });
        }
        if self.scopes.lookup(id).is_some() {
            return Err(PolicyError::DuplicateScope(id.to_owned()));
        }
        let kind_index = self.kind_index(kind)?;
        if kind_index == ROOT_KIND_INDEX {
            return Err(PolicyError::RootKind);
        }
        let parent_index = self.scope_index(parent)?;
        let parent_kind = self.scopes.kind(parent_index);
        if !self.parent_allowed(kind_index, parent_kind) {
            return Err(PolicyError::ParentKindNotAllowed {
                kind: kind.to_owned(),
                parent: parent.to_owned(),
                parent_kind: self.kind_name(parent_kind).to_owned(),
            });
        }
        self.scope_room(parent_index)?;
        if self.scopes.len() >= ScopeIndex::MAX as usize {
            return Err(PolicyError::TooMany {
                what: "scopes",
                limit: ScopeIndex::MAX as usize,
            });
        }
        Ok((kind_index, parent_index))
    }

    pub fn scope_kind(&self, id: &str) -> Option<&str> {
        let scope = self.scopes.lookup(id)?;
        Some(self.kind_name(self.scopes.kind(scope)))
    }

    pub fn scope_parent(&self, id: &str) -> Option<&str> {
        let scope = self.scopes.lookup(id)?;
        let parent = self.scopes.parent(scope)?;
        Some(self.scopes.name(parent))
    }

    /// Every scope as `(id, kind, parent)`, parents before children.
    pub fn scopes(&self) -> impl Iterator<Item = (&str, &str, Option<&str>)> {
        self.scopes.iter().map(|scope| {
            (
                self.scopes.name(scope),
                self.kind_name(self.scopes.kind(scope)),
                self.scopes
                    .parent(scope)
                    .map(|parent| self.scopes.name(parent)),
            )
        })
    }

    /// Switches a module on or off at a scope; the closest explicit setting above a scope wins.
    /// The module must be switchable on the scope's kind; who may switch it is
    /// [`Engine::can_set_module`]'s question.
    pub fn set_module(&mut self, scope: &str, module: &str, on: bool) -> Result<(), PolicyError> {
        let (scope, bit) = self.module_target(scope, module)?;
        let kind = self.scopes.kind(scope);
        let switchable = self
            .preset
            .data
            .module_index
            .get(module)
            .and_then(|&index| self.preset.data.module_switchable_on.get(index))
            .is_some_and(|kinds| kinds & (1u64 << kind) != 0);
        if !switchable {
            return Err(PolicyError::ModuleNotSwitchable {
                module: module.to_owned(),
                scope: self.scopes.name(scope).to_owned(),
                kind: self.kind_name(kind).to_owned(),
            });
        }
        self.scopes.set_module(scope, bit, Some(on));
        Ok(())
    }

    /// Whether [`Engine::set_module`] would succeed, changing nothing.
    pub fn check_set_module(&self, scope: &str, module: &str) -> Result<(), PolicyError> {
        self.module_target(scope, module).map(|_| ())
    }

    /// Removes a scope's explicit setting, so it inherits the module state from above again.
    pub fn clear_module(&mut self, scope: &str, module: &str) -> Result<(), PolicyError> {
        let (scope, bit) = self.module_target(scope, module)?;
        self.scopes.set_module(scope, bit, None);
        Ok(())
    }

    /// Whether a module is on at a scope (after inheritance and defaults).
    pub fn module_on(&self, scope: &str, module: &str) -> Result<bool, PolicyError> {
        let (scope, bit) = self.module_target(scope, module)?;
        Ok(self.scopes.module_on(scope, bit))
    }

    /// The explicit setting of a module at a scope, if the scope has one.
    pub fn module_setting(&self, scope: &str, module: &str) -> Result<Option<bool>, PolicyError> {
        let (scope, bit) = self.module_target(scope, module)?;
        Ok(self.scopes.explicit_module(scope, bit))
    }

    // ----- principals ---------------------------------------------------------------------

    pub fn add_principal(
        &mut self,
        id: &str,
        kind: PrincipalKind,
        home_scope: &str,
    ) -> Result<(), PolicyError> {
        let (home, index) = self.plan_principal(id, kind, home_scope)?;
        self.principals.push(PrincipalRecord::new(id, kind, home));
        self.principal_index.insert(id, index);
        Ok(())
    }

    /// Whether [`Engine::add_principal`] would succeed, changing nothing.
    pub fn check_add_principal(
        &self,
        id: &str,
        kind: PrincipalKind,
        home_scope: &str,
    ) -> Result<(), PolicyError> {
        self.plan_principal(id, kind, home_scope).map(|_| ())
    }

    /// Operators and drivers may not take an id the gateway uses for its own audit entries
    /// ([`RESERVED_PRINCIPAL_IDS`]); system principals are the gateway's own.
    fn plan_principal(
        &self,
        id: &str,
        kind: PrincipalKind,
        home_scope: &str,
    ) -> Result<(ScopeIndex, PrincipalIndex), PolicyError> {
        if !is_valid_id(id) {
            return Err(PolicyError::InvalidId {
                what: "principal",
                id: id.to_owned(),
            });
        }
        if kind != PrincipalKind::System && is_reserved_principal_id(id) {
            return Err(PolicyError::ReservedId(id.to_owned()));
        }
        if self.principal_index.contains(id) {
            return Err(PolicyError::DuplicatePrincipal(id.to_owned()));
        }
        let home = self.scope_index(home_scope)?;
        let index =
            PrincipalIndex::try_from(self.principals.len()).map_err(|_| PolicyError::TooMany {
                what: "principals",
                limit: PrincipalIndex::MAX as usize,
            })?;
        Ok((home, index))
    }

    /// Forgets a principal and every role it holds. The others keep their order (and
    /// [`Engine::principals`] its insertion order); indices after it move down by one, which is
    /// why this is linear in the number of principals: deletion is rare, checks are not.
    pub fn remove_principal(&mut self, id: &str) -> Result<(), PolicyError> {
        let slot = self.principal_slot(id)?;
        self.principals.remove(slot);
        self.principal_index.remove(id);
        for (index, record) in self.principals.iter().enumerate().skip(slot) {
            let index = PrincipalIndex::try_from(index).map_err(|_| PolicyError::TooMany {
                what: "principals",
                limit: PrincipalIndex::MAX as usize,
            })?;
            self.principal_index.insert(&record.name, index);
        }
        Ok(())
    }

    /// Whether [`Engine::remove_principal`] and [`Engine::set_blocked`] would find `id`.
    pub fn check_principal(&self, id: &str) -> Result<(), PolicyError> {
        self.principal_slot(id).map(|_| ())
    }

    /// A blocked principal is denied everything and sees nothing; its assignments are kept.
    pub fn set_blocked(&mut self, principal: &str, blocked: bool) -> Result<(), PolicyError> {
        let index = self.principal_slot(principal)?;
        if let Some(record) = self.principals.get_mut(index) {
            record.blocked = blocked;
        }
        Ok(())
    }

    pub fn principal_kind(&self, id: &str) -> Option<PrincipalKind> {
        self.record(id).map(|record| record.kind)
    }

    pub fn home_scope(&self, id: &str) -> Option<&str> {
        self.record(id).map(|record| self.scopes.name(record.home))
    }

    pub fn is_blocked(&self, id: &str) -> Option<bool> {
        self.record(id).map(|record| record.blocked)
    }

    /// Every principal id, in the order they were added.
    pub fn principals(&self) -> impl Iterator<Item = &str> {
        self.principals.iter().map(|record| record.name.as_str())
    }

    // ----- roles and assignments ----------------------------------------------------------

    /// Every role: the preset's, then custom roles in definition order.
    pub fn roles(&self) -> impl Iterator<Item = &RoleDef> {
        self.roles.iter()
    }

    pub fn role(&self, id: &str) -> Option<&RoleDef> {
        let index = *self.role_index.get(id)?;
        self.roles.get(usize::from(index))
    }

    /// Defines a custom role: a bundle of regular permissions, assignable on every scope kind
    /// and granted only by admin roles (or the system principal).
    pub fn define_role(
        &mut self,
        id: &str,
        label: &str,
        permissions: &[String],
    ) -> Result<(), PolicyError> {
        let (set, role_index) = self.plan_role(id, label, permissions)?;
        let data = &self.preset.data;
        let every_kind = data
            .kind_names
            .iter()
            .enumerate()
            .fold(0u64, |mask, (index, _)| mask | (1u64 << index));
        let compiled = CompiledRole {
            permissions: set,
            admin: false,
            can_charge: true,
            assignable_on: every_kind,
            station_requires_module: None,
            granted_by: PermissionSet::EMPTY,
            removed_by: PermissionSet::EMPTY,
            allow_escalation: false,
        };
        let definition = RoleDef {
            id: id.to_owned(),
            label: label.to_owned(),
            admin: false,
            permissions: data
                .permissions
                .iter()
                .enumerate()
                .filter(|(index, _)| set.contains(*index))
                .map(|(_, permission)| permission.id.clone())
                .collect(),
            assignable_on: data.kind_names.clone(),
            station_requires_module: None,
            can_charge: true,
            granted_by: Vec::new(),
            removed_by: Vec::new(),
            allow_escalation: false,
            custom: true,
        };
        self.role_grants.push(Grant::of_role(&compiled));
        self.compiled_roles.push(compiled);
        self.roles.push(definition);
        self.role_index.insert(id.to_owned(), role_index);
        Ok(())
    }

    /// Whether [`Engine::define_role`] would succeed, changing nothing.
    pub fn check_define_role(
        &self,
        id: &str,
        label: &str,
        permissions: &[String],
    ) -> Result<(), PolicyError> {
        self.plan_role(id, label, permissions).map(|_| ())
    }

    /// The rules for a custom role: a kebab-case id of at most [`MAX_ROLE_ID_CHARS`] that is
    /// new and not an admin role's, a label of 1 to [`MAX_ROLE_LABEL_CHARS`] characters that
    /// is not an admin role's, and at least one permission, each known and none admin-level.
    fn plan_role(
        &self,
        id: &str,
        label: &str,
        permissions: &[String],
    ) -> Result<(PermissionSet, RoleIndex), PolicyError> {
        let data = &self.preset.data;
        if !data.custom_roles {
            return Err(PolicyError::CustomRolesDisabled {
                preset: data.id.clone(),
            });
        }
        if !crate::load::is_kebab_case(id) || id.chars().count() > MAX_ROLE_ID_CHARS {
            return Err(PolicyError::InvalidId {
                what: "role",
                id: id.to_owned(),
            });
        }
        if let Some(existing) = self.role(id) {
            return Err(if existing.admin {
                PolicyError::AdminRoleName {
                    role: id.to_owned(),
                    name: id.to_owned(),
                }
            } else {
                PolicyError::DuplicateRole(id.to_owned())
            });
        }
        if label.trim().is_empty() || label.chars().count() > MAX_ROLE_LABEL_CHARS {
            return Err(PolicyError::InvalidLabel {
                role: id.to_owned(),
                limit: MAX_ROLE_LABEL_CHARS,
            });
        }
        let label_lower = label.trim().to_lowercase();
        if let Some(admin) = self
            .roles
            .iter()
            .filter(|role| role.admin)
            .find(|role| role.label.to_lowercase() == label_lower || role.id == label_lower)
        {
            return Err(PolicyError::AdminRoleName {
                role: id.to_owned(),
                name: admin.label.clone(),
            });
        }
        if permissions.is_empty() {
            return Err(PolicyError::EmptyCustomRole(id.to_owned()));
        }
        let mut set = PermissionSet::EMPTY;
        for permission in permissions {
            if self.role(permission).is_some_and(|role| role.admin) {
                return Err(PolicyError::AdminRoleInCustomRole {
                    role: id.to_owned(),
                    admin_role: permission.clone(),
                });
            }
            let index = *data
                .permission_index
                .get(permission)
                .ok_or_else(|| PolicyError::UnknownPermission(permission.clone()))?;
            if data.admin_permissions.contains(index) {
                return Err(PolicyError::AdminPermissionInCustomRole {
                    role: id.to_owned(),
                    permission: permission.clone(),
                });
            }
            set.insert(index);
        }
        let role_index =
            RoleIndex::try_from(self.roles.len()).map_err(|_| PolicyError::TooMany {
                what: "roles",
                limit: RoleIndex::MAX as usize,
            })?;
        Ok((set, role_index))
    }

    /// Records that `principal` holds `role` on `scope`. Checks only that the assignment is
    /// valid (role assignable on the scope's kind, required module on); who may grant it is
    /// [`Engine::can_assign`]'s question. Assigning a role already held changes nothing.
    pub fn assign(&mut self, principal: &str, role: &str, scope: &str) -> Result<(), PolicyError> {
        let (slot, role_index, scope_index) = self.plan_assignment(principal, role, scope)?;
        let record = self
            .principals
            .get(slot)
            .ok_or_else(|| PolicyError::UnknownPrincipal(principal.to_owned()))?;
        let position = record.position(scope_index);
        let roles = match record.holding(scope_index) {
            Some(holding) if holding.roles.contains(&role_index) => return Ok(()),
            Some(holding) => {
                let mut roles = holding.roles.clone();
                roles.push(role_index);
                roles
            }
            None => vec![role_index],
        };
        let (grant, conditional) = self.holding_grant(scope_index, &roles);
        let holding = Holding {
            scope: scope_index,
            roles,
            grant,
            conditional,
        };
        if let Some(record) = self.principals.get_mut(slot) {
            record.put(position, holding);
        }
        Ok(())
    }

    /// Whether [`Engine::assign`] would succeed, changing nothing.
    pub fn check_assign(
        &self,
        principal: &str,
        role: &str,
        scope: &str,
    ) -> Result<(), PolicyError> {
        self.plan_assignment(principal, role, scope).map(|_| ())
    }

    fn plan_assignment(
        &self,
        principal: &str,
        role: &str,
        scope: &str,
    ) -> Result<(usize, RoleIndex, ScopeIndex), PolicyError> {
        let slot = self.principal_slot(principal)?;
        let role_index = self.role_slot(role)?;
        let scope_index = self.scope_index(scope)?;
        self.assignment_validity(role_index, scope_index)?;
        Ok((slot, role_index, scope_index))
    }

    /// Whether `principal` holds `role` on `scope` directly (not through an ancestor).
    pub fn holds(&self, principal: &str, role: &str, scope: &str) -> bool {
        let (Some(record), Ok(role), Some(scope)) = (
            self.record(principal),
            self.role_slot(role),
            self.scopes.lookup(scope),
        ) else {
            return false;
        };
        record
            .holding(scope)
            .is_some_and(|holding| holding.roles.contains(&role))
    }

    /// Removes an assignment; `Ok(false)` when the principal did not hold that role there.
    pub fn unassign(
        &mut self,
        principal: &str,
        role: &str,
        scope: &str,
    ) -> Result<bool, PolicyError> {
        let slot = self.principal_slot(principal)?;
        let role_index = self.role_slot(role)?;
        let scope_index = self.scope_index(scope)?;
        let Some(record) = self.principals.get(slot) else {
            return Err(PolicyError::UnknownPrincipal(principal.to_owned()));
        };
        let position = record.position(scope_index);
        let Some(holding) = record.holding(scope_index) else {
            return Ok(false);
        };
        if !holding.roles.contains(&role_index) {
            return Ok(false);
        }
        let remaining: Vec<RoleIndex> = holding
            .roles
            .iter()
            .copied()
            .filter(|&held| held != role_index)
            .collect();
        let (grant, conditional) = self.holding_grant(scope_index, &remaining);
        if let Some(record) = self.principals.get_mut(slot) {
            match position {
                Ok(found) if remaining.is_empty() => record.remove(found),
                _ => record.put(
                    position,
                    Holding {
                        scope: scope_index,
                        roles: remaining,
                        grant,
                        conditional,
                    },
                ),
            }
        }
        Ok(true)
    }

    /// `(role, scope)` pairs, ordered by scope creation and then assignment order.
    pub fn assignments_of(&self, principal: &str) -> Vec<(String, String)> {
        let Some(record) = self.record(principal) else {
            return Vec::new();
        };
        record
            .holdings()
            .iter()
            .flat_map(|holding| {
                holding.roles.iter().map(move |&role| {
                    (
                        self.role_name(role).to_owned(),
                        self.scopes.name(holding.scope).to_owned(),
                    )
                })
            })
            .collect()
    }

    // ----- decisions ----------------------------------------------------------------------

    /// May `principal` perform `action` on `resource`? Denied for unknown or blocked principals
    /// and unknown resources; the system principal passes everything else. Never allocates.
    pub fn check(&self, principal: &str, action: Action, resource: &Resource) -> bool {
        self.record(principal)
            .is_some_and(|record| !record.blocked && self.check_record(record, action, resource))
    }

    /// What [`Engine::check`] would answer if `principal` were not blocked. A charger may learn
    /// that a card is blocked or expired only when its principal's roles would let it charge
    /// there; for any other card the charger is told no more than for an unknown one.
    pub fn check_unblocked(&self, principal: &str, action: Action, resource: &Resource) -> bool {
        self.record(principal)
            .is_some_and(|record| self.check_record(record, action, resource))
    }

    /// Whether every role `principal` holds is on `scope` or below it, so that what the
    /// principal may do reaches no further than `scope`'s subtree. False for an unknown
    /// principal or scope, for a principal with no role and for the system principal.
    pub fn reach_within(&self, principal: &str, scope: &str) -> bool {
        let (Some(record), Some(scope)) = (self.record(principal), self.scopes.lookup(scope))
        else {
            return false;
        };
        record.kind != PrincipalKind::System
            && !record.holdings().is_empty()
            && record
                .holdings()
                .iter()
                .all(|holding| self.scopes.is_ancestor_or_self(scope, holding.scope))
    }

    fn check_record(&self, record: &PrincipalRecord, action: Action, resource: &Resource) -> bool {
        let principal = record.name.as_str();
        let Some(target) = self.target_scope(resource) else {
            return false;
        };
        if record.kind == PrincipalKind::System {
            return true;
        }
        if let Resource::Principal(other) = resource {
            if other == principal {
                if action == Action::PrincipalView {
                    return true;
                }
            } else if !self.sees_scope(record, target) {
                return false;
            }
            if let Some(other) = self.record(other) {
                if self.driver_hidden(record, other) {
                    return false;
                }
                return self.allows_at(record, action, target)
                    && !(action.acts_for_principal()
                        && self.beyond_grant(record, other).is_some());
            }
        }
        self.allows_at(record, action, target)
    }

    /// Whether `principal` holds `permission` at `scope` (after modules). Never allocates.
    pub fn has_permission(&self, principal: &str, permission: &str, scope: &str) -> bool {
        let Some(record) = self.record(principal) else {
            return false;
        };
        let Some(&permission) = self.preset.data.permission_index.get(permission) else {
            return false;
        };
        let Some(scope) = self.scopes.lookup(scope) else {
            return false;
        };
        if record.blocked {
            return false;
        }
        if record.kind == PrincipalKind::System {
            return true;
        }
        let reach = self.reach(record, scope);
        reach.grant.permissions.contains(permission)
            && self.module_allows(permission, reach.modules)
    }

    /// The permission ids `principal` holds at `scope` (after modules), in preset order.
    pub fn effective_permissions(&self, principal: &str, scope: &str) -> Vec<&str> {
        let (Some(record), Some(scope)) = (self.record(principal), self.scopes.lookup(scope))
        else {
            return Vec::new();
        };
        if record.blocked {
            return Vec::new();
        }
        let set = if record.kind == PrincipalKind::System {
            self.preset.data.all_permissions
        } else {
            self.effective_at(record, scope)
        };
        set.iter()
            .filter_map(|index| self.preset.data.permissions.get(index))
            .map(|permission| permission.id.as_str())
            .collect()
    }

    /// Whether `principal` can see `resource`: a scope is visible when the principal holds a
    /// role on it or an ancestor (with upward visibility, also on a descendant); a principal
    /// is visible when its home scope is, and always to itself.
    pub fn can_see(&self, principal: &str, resource: &Resource) -> bool {
        let Some(record) = self.record(principal) else {
            return false;
        };
        if record.blocked {
            return false;
        }
        let Some(target) = self.target_scope(resource) else {
            return false;
        };
        if record.kind == PrincipalKind::System {
            return true;
        }
        if let Resource::Principal(other) = resource {
            if other == principal {
                return true;
            }
            if self
                .record(other)
                .is_some_and(|other| self.driver_hidden(record, other))
            {
                return false;
            }
        }
        self.sees_scope(record, target)
    }

    /// Every scope of `kind` that `principal` can see, in the order the scopes were added.
    pub fn visible(&self, principal: &str, kind: &str) -> Vec<String> {
        let (Some(record), Some(&kind)) = (
            self.record(principal),
            self.preset.data.kind_index.get(kind),
        ) else {
            return Vec::new();
        };
        if record.blocked {
            return Vec::new();
        }
        let candidates = self.scopes.of_kind(kind);
        if record.kind == PrincipalKind::System {
            return candidates
                .iter()
                .map(|&scope| self.scopes.name(scope).to_owned())
                .collect();
        }
        let seen = self.visibility_marks(record);
        candidates
            .iter()
            .filter(|&&scope| seen.contains(scope))
            .map(|&scope| self.scopes.name(scope).to_owned())
            .collect()
    }

    /// Every scope `principal` can see, of `kind` when given, in the order the scopes were
    /// added: one pass over the tree, however deep it is.
    pub fn visible_scopes(&self, principal: &str, kind: Option<&str>) -> Vec<&str> {
        let Some(record) = self.record(principal) else {
            return Vec::new();
        };
        let kind = match kind {
            Some(name) => match self.preset.data.kind_index.get(name) {
                Some(&index) => Some(index),
                None => return Vec::new(),
            },
            None => None,
        };
        if record.blocked {
            return Vec::new();
        }
        let of_kind = |scope: &ScopeIndex| kind.is_none_or(|kind| self.scopes.kind(*scope) == kind);
        if record.kind == PrincipalKind::System {
            return self
                .scopes
                .iter()
                .filter(of_kind)
                .map(|scope| self.scopes.name(scope))
                .collect();
        }
        let seen = self.visibility_marks(record);
        self.scopes
            .iter()
            .filter(|&scope| seen.contains(scope))
            .filter(of_kind)
            .map(|scope| self.scopes.name(scope))
            .collect()
    }

    /// The ids of every principal that may perform `action` on `resource`, sorted.
    pub fn who_can(&self, action: Action, resource: &Resource) -> Vec<String> {
        let mut names: Vec<String> = self
            .principals
            .iter()
            .filter(|record| self.check(&record.name, action, resource))
            .map(|record| record.name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    // ----- internals ----------------------------------------------------------------------

    pub(crate) fn record(&self, principal: &str) -> Option<&PrincipalRecord> {
        let index = self.principal_index.get(principal)?;
        self.principals.get(index as usize)
    }

    fn principal_slot(&self, principal: &str) -> Result<usize, PolicyError> {
        self.principal_index
            .get(principal)
            .map(|index| index as usize)
            .ok_or_else(|| PolicyError::UnknownPrincipal(principal.to_owned()))
    }

    pub(crate) fn role_slot(&self, role: &str) -> Result<RoleIndex, PolicyError> {
        self.role_index
            .get(role)
            .copied()
            .ok_or_else(|| PolicyError::UnknownRole(role.to_owned()))
    }

    pub(crate) fn scope_index(&self, scope: &str) -> Result<ScopeIndex, PolicyError> {
        self.scopes
            .lookup(scope)
            .ok_or_else(|| PolicyError::UnknownScope(scope.to_owned()))
    }

    fn kind_index(&self, kind: &str) -> Result<KindIndex, PolicyError> {
        self.preset
            .data
            .kind_index
            .get(kind)
            .copied()
            .ok_or_else(|| PolicyError::UnknownKind(kind.to_owned()))
    }

    pub(crate) fn kind_name(&self, kind: KindIndex) -> &str {
        self.preset
            .data
            .kind_names
            .get(usize::from(kind))
            .map_or(ROOT_KIND, String::as_str)
    }

    pub(crate) fn role_name(&self, role: RoleIndex) -> &str {
        self.roles
            .get(usize::from(role))
            .map_or("", |role| role.id.as_str())
    }

    pub(crate) fn compiled_role(&self, role: RoleIndex) -> Option<&CompiledRole> {
        self.compiled_roles.get(usize::from(role))
    }

    pub(crate) fn module_name(&self, module: usize) -> &str {
        self.preset
            .data
            .modules
            .get(module)
            .map_or("", |module| module.id.as_str())
    }

    fn module_target(&self, scope: &str, module: &str) -> Result<(ScopeIndex, u64), PolicyError> {
        let scope = self.scope_index(scope)?;
        let bit = self
            .preset
            .data
            .module_index
            .get(module)
            .and_then(|&index| module_bit(index))
            .ok_or_else(|| PolicyError::UnknownModule(module.to_owned()))?;
        Ok((scope, bit))
    }

    /// The scope a resource is judged at: the scope itself or the principal's home scope.
    pub(crate) fn target_scope(&self, resource: &Resource) -> Option<ScopeIndex> {
        match resource {
            Resource::Scope(id) => self.scopes.lookup(id),
            Resource::Principal(id) => self.record(id).map(|record| record.home),
        }
    }

    /// The module a role needs at `scope` for the assignment to count, if any.
    pub(crate) fn required_module(&self, role: RoleIndex, scope: ScopeIndex) -> Option<usize> {
        let role = self.compiled_role(role)?;
        let module = role.station_requires_module?;
        (self.scopes.kind(scope) == self.preset.data.station_kind).then_some(module)
    }

    /// Whether an assignment of `role` on `scope` currently applies.
    pub(crate) fn role_active_at(&self, role: RoleIndex, scope: ScopeIndex) -> bool {
        match self.required_module(role, scope).and_then(module_bit) {
            Some(bit) => self.scopes.module_on(scope, bit),
            None => true,
        }
    }

    pub(crate) fn assignment_validity(
        &self,
        role: RoleIndex,
        scope: ScopeIndex,
    ) -> Result<(), PolicyError> {
        let compiled = self
            .compiled_role(role)
            .ok_or_else(|| PolicyError::UnknownRole(role.to_string()))?;
        let kind = self.scopes.kind(scope);
        if compiled.assignable_on & (1u64 << kind) == 0 {
            return Err(PolicyError::RoleNotAssignable {
                role: self.role_name(role).to_owned(),
                scope: self.scopes.name(scope).to_owned(),
                kind: self.kind_name(kind).to_owned(),
            });
        }
        if let Some(module) = self.required_module(role, scope) {
            if !self.role_active_at(role, scope) {
                return Err(PolicyError::ModuleRequired {
                    role: self.role_name(role).to_owned(),
                    scope: self.scopes.name(scope).to_owned(),
                    module: self.module_name(module).to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The precomputed union of the roles held on one scope; roles that depend on a module
    /// there are left out and flagged for evaluation at check time.
    fn holding_grant(&self, scope: ScopeIndex, roles: &[RoleIndex]) -> (Grant, bool) {
        let mut grant = Grant::default();
        let mut conditional = false;
        for &role in roles {
            if self.required_module(role, scope).is_some() {
                conditional = true;
            } else if let Some(role_grant) = self.role_grants.get(usize::from(role)) {
                grant.merge(role_grant);
            }
        }
        (grant, conditional)
    }

    /// The roles of a holding that currently apply.
    pub(crate) fn active_roles<'a>(
        &'a self,
        holding: &'a Holding,
    ) -> impl Iterator<Item = RoleIndex> + 'a {
        holding
            .roles
            .iter()
            .copied()
            .filter(move |&role| !holding.conditional || self.role_active_at(role, holding.scope))
    }

    /// What the principal's roles on `scope` and its ancestors add up to, with the module
    /// state at `scope`. The walk stops below the principal's lowest-numbered holding.
    pub(crate) fn reach(&self, record: &PrincipalRecord, scope: ScopeIndex) -> Reach {
        let mut grant = Grant::default();
        if let Some(lowest) = record.lowest_held_scope() {
            for current in self.scopes.ancestors_down_to(scope, lowest) {
                let Some(holding) = record.holding(current) else {
                    continue;
                };
                grant.merge(&holding.grant);
                if holding.conditional {
                    for role in holding.roles.iter().copied() {
                        if self.required_module(role, current).is_some()
                            && self.role_active_at(role, current)
                        {
                            if let Some(role_grant) = self.role_grants.get(usize::from(role)) {
                                grant.merge(role_grant);
                            }
                        }
                    }
                }
            }
        }
        Reach {
            grant,
            modules: self.scopes.module_state(scope),
        }
    }

    /// The permissions whose module (if any) is on.
    pub(crate) fn permitted(&self, modules: ModuleState) -> PermissionSet {
        let data = &self.preset.data;
        let mut set = data.unconditional;
        let mut remaining = modules.on;
        while remaining != 0 {
            let module = remaining.trailing_zeros() as usize;
            remaining &= remaining - 1;
            if let Some(permissions) = data.module_permissions.get(module) {
                set.union_with(permissions);
            }
        }
        set
    }

    /// Whether the permission's module (if it needs one) is on.
    fn module_allows(&self, permission: usize, modules: ModuleState) -> bool {
        let needs = self
            .preset
            .data
            .permission_module_bits
            .get(permission)
            .copied()
            .unwrap_or(0);
        needs & !modules.on == 0
    }

    pub(crate) fn effective_at(
        &self,
        record: &PrincipalRecord,
        scope: ScopeIndex,
    ) -> PermissionSet {
        let reach = self.reach(record, scope);
        reach
            .grant
            .permissions
            .intersection(&self.permitted(reach.modules))
    }

    /// The action's rule evaluated at `scope` for a non-system principal.
    pub(crate) fn allows_at(
        &self,
        record: &PrincipalRecord,
        action: Action,
        scope: ScopeIndex,
    ) -> bool {
        let Some(&rule) = self.preset.data.compiled_rules.get(action.index()) else {
            return false;
        };
        let charging = action == Action::Charge;
        if let CompiledRule::AnyOf(required) = rule {
            if required.is_empty() {
                return false;
            }
        }
        if record.holdings().is_empty() {
            return false;
        }
        let reach = self.reach(record, scope);
        match rule {
            CompiledRule::AdminOnly => {
                if charging {
                    reach.grant.admin_charge
                } else {
                    reach.grant.admin
                }
            }
            CompiledRule::AnyOf(required) => {
                let held = if charging {
                    reach.grant.charge_permissions
                } else {
                    reach.grant.permissions
                };
                // Usually one or two candidates: test their modules instead of building the
                // whole set of permitted permissions.
                held.intersection(&required)
                    .iter()
                    .any(|permission| self.module_allows(permission, reach.modules))
            }
        }
    }

    /// Visibility of a scope for a non-system, unblocked principal.
    pub(crate) fn sees_scope(&self, record: &PrincipalRecord, scope: ScopeIndex) -> bool {
        let Some(lowest) = record.lowest_held_scope() else {
            return false;
        };
        if self
            .scopes
            .ancestors_down_to(scope, lowest)
            .any(|current| record.holding(current).is_some())
        {
            return true;
        }
        self.preset.data.upward_visibility
            && record
                .holdings()
                .iter()
                .any(|holding| self.scopes.is_ancestor_or_self(scope, holding.scope))
    }

    /// Marks every scope the principal can see.
    fn visibility_marks(&self, record: &PrincipalRecord) -> ScopeMarks {
        let mut marks = ScopeMarks::new(self.scopes.len());
        let Some(first) = record.holdings().first().map(|holding| holding.scope) else {
            return marks;
        };
        for holding in record.holdings() {
            marks.insert(holding.scope);
        }
        // Parents are numbered before their children, so one pass in index order carries
        // visibility from every held scope down to its whole subtree.
        for scope in self.scopes.iter().skip(first as usize + 1) {
            if let Some(parent) = self.scopes.parent(scope) {
                if marks.contains(parent) {
                    marks.insert(scope);
                }
            }
        }
        if self.preset.data.upward_visibility {
            // Stop at the first ancestor already marked: everything above it is marked too,
            // so the walks together touch each scope once.
            for holding in record.holdings() {
                for ancestor in self.scopes.ancestors(holding.scope).skip(1) {
                    if marks.contains(ancestor) {
                        break;
                    }
                    marks.insert(ancestor);
                }
            }
        }
        marks
    }
}

/// A bit per scope.
struct ScopeMarks {
    words: Vec<u64>,
}

impl ScopeMarks {
    fn new(len: usize) -> ScopeMarks {
        ScopeMarks {
            words: vec![0; len.div_ceil(64)],
        }
    }

    fn insert(&mut self, scope: ScopeIndex) {
        if let Some(word) = self.words.get_mut(scope as usize / 64) {
            *word |= 1 << (scope % 64);
        }
    }

    fn contains(&self, scope: ScopeIndex) -> bool {
        self.words
            .get(scope as usize / 64)
            .is_some_and(|word| word & (1 << (scope % 64)) != 0)
    }
}
