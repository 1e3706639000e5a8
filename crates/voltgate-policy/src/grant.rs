//! Who may hand out or take away a role, without ever handing out more than they hold.
//!
//! A granter needs authority over the role on the scope (the system principal, an admin role
//! reaching the scope, or one of the role's `granted_by` permissions there) and, unless the
//! preset says the seed requires otherwise, must already hold every permission the role would
//! give anywhere in the scope's subtree.
//!
//! A role marked `allow_escalation` (a seed's "invite X" cell that hands out a role the inviter
//! does not hold) escalates only for others: a principal never assigns itself anything its
//! roles reaching the scope do not already give it, permissions and charging alike, so no
//! sequence of its own grants widens what it may do. Removal has its own rule (`removed_by`,
//! by default the granting permissions), so a seed that lets a role invite but not "edit
//! roles" is followed.

use std::fmt;

use serde::Serialize;

use crate::action::Action;
use crate::engine::Engine;
use crate::preset::CompiledRule;
use crate::principal::{Grant, PrincipalKind, PrincipalRecord, Resource, RoleIndex};
use crate::scope::ScopeIndex;

/// Why a grant or removal is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenialCode {
    UnknownGranter,
    GranterBlocked,
    UnknownPrincipal,
    UnknownRole,
    UnknownScope,
    /// The granter cannot see the principal.
    PrincipalInvisible,
    /// The role may not be assigned on the scope's kind.
    NotAssignableHere,
    /// The role needs a module that is off at the station.
    ModuleRequired,
    /// The granter holds neither an admin role nor a `granted_by` permission on the scope.
    NoAuthority,
    /// Only admin roles (or the system principal) may grant or remove admin roles.
    AdminRoleRequired,
    /// The role would give permissions the granter does not hold.
    Escalation,
    /// The role would give the granter itself more than it holds (permissions or charging).
    SelfEscalation,
    /// There is no such assignment to remove.
    NotHeld,
    /// A principal may not delete itself.
    SelfRemoval,
    /// The principal is protected from deletion.
    Protected,
    /// The preset deletes only principals that were blocked (archived) first.
    NotBlocked,
    /// The scope is not visible to the principal.
    ScopeInvisible,
    UnknownModule,
    /// The module may not be switched on a scope of this kind.
    NotSwitchableHere,
    /// The parent scope does not have the module, so the scope may not switch it on.
    ParentLacksModule,
}

/// A refused grant or removal, with one sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub code: DenialCode,
    pub reason: String,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Denial {}

fn deny(code: DenialCode, reason: String) -> Result<(), Denial> {
    Err(Denial { code, reason })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Assign,
    Remove,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Assign => "assign",
            Verb::Remove => "remove",
        }
    }
}

/// The resolved parties of a grant question.
struct GrantRequest<'a> {
    granter: &'a PrincipalRecord,
    principal: &'a str,
    role: RoleIndex,
    role_name: &'a str,
    scope: ScopeIndex,
    scope_name: &'a str,
}

impl Engine {
    /// May `granter` assign `role` to `principal` on `scope`?
    pub fn can_assign(
        &self,
        granter: &str,
        principal: &str,
        role: &str,
        scope: &str,
    ) -> Result<(), Denial> {
        let request = self.resolve_grant(granter, principal, role, scope)?;
        let kind = self.scopes.kind(request.scope);
        let assignable = self
            .compiled_role(request.role)
            .is_some_and(|compiled| compiled.assignable_on & (1u64 << kind) != 0);
        if !assignable {
            return deny(
                DenialCode::NotAssignableHere,
                format!(
                    "Role `{role}` cannot be assigned on `{scope}`, which is a scope of kind `{}`.",
                    self.kind_name(kind)
                ),
            );
        }
        if let Some(module) = self.required_module(request.role, request.scope) {
            if !self.role_active_at(request.role, request.scope) {
                return deny(
                    DenialCode::ModuleRequired,
                    format!(
                        "Role `{role}` can only be assigned on station `{scope}` while module `{}` is on there.",
                        self.module_name(module)
                    ),
                );
            }
        }
        self.granter_may_manage(&request, Verb::Assign)
    }

    /// May `granter` remove `role` from `principal` on `scope`? The same authority rule as
    /// [`Engine::can_assign`], applied to the role being removed.
    pub fn can_unassign(
        &self,
        granter: &str,
        principal: &str,
        role: &str,
        scope: &str,
    ) -> Result<(), Denial> {
        let request = self.resolve_grant(granter, principal, role, scope)?;
        let held = self
            .record(principal)
            .and_then(|record| record.holding(request.scope))
            .is_some_and(|holding| holding.roles.contains(&request.role));
        if !held {
            return deny(
                DenialCode::NotHeld,
                format!("`{principal}` does not hold role `{role}` on `{scope}`, so there is nothing to remove."),
            );
        }
        self.granter_may_manage(&request, Verb::Remove)
    }

    fn resolve_grant<'a>(
        &'a self,
        granter: &str,
        principal: &'a str,
        role: &'a str,
        scope: &'a str,
    ) -> Result<GrantRequest<'a>, Denial> {
        let Some(granter_record) = self.record(granter) else {
            return Err(Denial {
                code: DenialCode::UnknownGranter,
                reason: format!("`{granter}` is not a known principal."),
            });
        };
        if granter_record.blocked {
            return Err(Denial {
                code: DenialCode::GranterBlocked,
                reason: format!("`{granter}` is blocked and may not manage roles."),
            });
        }
        if self.record(principal).is_none() {
            return Err(Denial {
                code: DenialCode::UnknownPrincipal,
                reason: format!("`{principal}` is not a known principal."),
            });
        }
        let Ok(role_index) = self.role_slot(role) else {
            return Err(Denial {
                code: DenialCode::UnknownRole,
                reason: format!("`{role}` is not a role of this preset."),
            });
        };
        let Ok(scope_index) = self.scope_index(scope) else {
            return Err(Denial {
                code: DenialCode::UnknownScope,
                reason: format!("Scope `{scope}` does not exist."),
            });
        };
        if !self.can_see(granter, &Resource::Principal(principal.to_owned())) {
            return Err(Denial {
                code: DenialCode::PrincipalInvisible,
                reason: format!("`{granter}` cannot see `{principal}`, whose home scope is outside their access."),
            });
        }
        Ok(GrantRequest {
            granter: granter_record,
            principal,
            role: role_index,
            role_name: role,
            scope: scope_index,
            scope_name: scope,
        })
    }

    /// Authority and no-escalation, shared by assignment and removal.
    fn granter_may_manage(&self, request: &GrantRequest<'_>, verb: Verb) -> Result<(), Denial> {
        let granter = request.granter;
        if granter.kind == PrincipalKind::System {
            return Ok(());
        }
        let Some(role) = self.compiled_role(request.role) else {
            return deny(
                DenialCode::UnknownRole,
                format!("`{}` is not a role of this preset.", request.role_name),
            );
        };
        let reach = self.reach(granter, request.scope);
        if verb == Verb::Assign && granter.name == request.principal {
            self.self_grant_within_reach(request, &reach.grant)?;
        }
        if reach.grant.admin {
            return Ok(());
        }
        let (name, role_name, scope_name, principal) = (
            &granter.name,
            request.role_name,
            request.scope_name,
            request.principal,
        );
        let authority = match verb {
            Verb::Assign => &role.granted_by,
            Verb::Remove => &role.removed_by,
        };
        let verb = verb.as_str();
        if role.admin {
            return deny(
                DenialCode::AdminRoleRequired,
                format!("Only an admin role reaching `{scope_name}` may {verb} the admin role `{role_name}`, and `{name}` holds none there."),
            );
        }
        let effective = reach
            .grant
            .permissions
            .intersection(&self.permitted(reach.modules));
        if !effective.intersects(authority) {
            let reason = if authority.is_empty() {
                format!("Only admin roles may {verb} role `{role_name}`, and `{name}` holds none reaching `{scope_name}`.")
            } else {
                format!(
                    "`{name}` may not {verb} role `{role_name}` for `{principal}`: that needs {} on `{scope_name}`, or an admin role.",
                    self.describe_any_of(authority)
                )
            };
            return deny(DenialCode::NoAuthority, reason);
        }
        if role.allow_escalation {
            return Ok(());
        }
        let missing = self.escalation(&reach.grant, request.role, request.scope);
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = missing
            .iter()
            .filter_map(|index| self.preset.data.permissions.get(index))
            .map(|permission| format!("`{}`", permission.id))
            .collect();
        deny(
            DenialCode::Escalation,
            format!(
                "`{name}` may not {verb} role `{role_name}` on `{scope_name}` because it carries {} that `{name}` does not hold there.",
                names.join(", ")
            ),
        )
    }

    /// A principal assigning a role to itself: the role may give nothing (no permission
    /// anywhere in the scope's subtree, no admin standing, no charging) that the roles already
    /// reaching the scope do not give. `allow_escalation` and admin standing do not lift this.
    fn self_grant_within_reach(
        &self,
        request: &GrantRequest<'_>,
        held: &Grant,
    ) -> Result<(), Denial> {
        let Some(role) = self.compiled_role(request.role) else {
            return Ok(());
        };
        let offered = Grant::of_role(role);
        let possible = self.permitted(crate::scope::ModuleState {
            on: self.scopes.modules_possible_below(request.scope),
        });
        let name = &request.granter.name;
        let (role_name, scope_name) = (request.role_name, request.scope_name);
        let admin_gain = offered.admin && !held.admin;
        let charge_gain = match self.preset.data.compiled_rules.get(Action::Charge.index()) {
            Some(CompiledRule::AnyOf(required)) => !offered
                .charge_permissions
                .intersection(&possible)
                .intersection(required)
                .difference(&held.charge_permissions)
                .is_empty(),
            Some(CompiledRule::AdminOnly) => offered.admin_charge && !held.admin_charge,
            None => false,
        };
        let permission_gain = !held.admin
            && !offered
                .permissions
                .intersection(&possible)
                .difference(&held.permissions)
                .is_empty();
        if admin_gain || charge_gain || permission_gain {
            let what = if charge_gain && !admin_gain && !permission_gain {
                "charging"
            } else {
                "permissions"
            };
            return deny(
                DenialCode::SelfEscalation,
                format!("`{name}` may not assign role `{role_name}` on `{scope_name}` to themselves: it would give them {what} their roles there do not."),
            );
        }
        Ok(())
    }

    /// Permissions the role would give somewhere in the scope's subtree that the granter's
    /// roles reaching the scope do not contain.
    fn escalation(
        &self,
        granter: &Grant,
        role: RoleIndex,
        scope: ScopeIndex,
    ) -> crate::bitset::PermissionSet {
        let Some(compiled) = self.compiled_role(role) else {
            return crate::bitset::PermissionSet::EMPTY;
        };
        let possible = self.scopes.modules_possible_below(scope);
        compiled
            .permissions
            .intersection(&self.permitted(crate::scope::ModuleState { on: possible }))
            .difference(&granter.permissions)
    }

    pub(crate) fn describe_any_of(&self, set: &crate::bitset::PermissionSet) -> String {
        let names: Vec<String> = set
            .iter()
            .filter_map(|index| self.preset.data.permissions.get(index))
            .map(|permission| format!("`{}`", permission.id))
            .collect();
        match names.as_slice() {
            [single] => single.clone(),
            _ => format!("one of {}", names.join(", ")),
        }
    }
}
