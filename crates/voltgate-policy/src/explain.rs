//! Why a check came out the way it did, in a form a person can read and a client can parse.
//!
//! [`Engine::explain`] follows the same rules as [`Engine::check`] but records which
//! assignment and permission allowed the action, or which requirement was not met where.

use serde::Serialize;

use crate::action::Action;
use crate::engine::Engine;
use crate::preset::{ActionRule, CompiledRule};
use crate::principal::{PrincipalKind, PrincipalRecord, Resource};
use crate::scope::ScopeIndex;

/// The outcome of a check with its justification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// One sentence for a person.
    pub reason: String,
    pub evidence: Evidence,
}

/// The facts behind a [`Decision`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub principal: String,
    pub action: Action,
    pub resource: Resource,
    /// The scope the rule was judged at: the resource scope, or a principal's home scope.
    pub judged_at: Option<String>,
    /// What the preset requires for the action.
    pub requires: ActionRule,
    pub finding: Finding,
}

/// What decided the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// Allowed: the system principal passes every check.
    SystemPrincipal,
    /// Allowed: a principal may always view its own record.
    OwnRecord,
    /// Allowed by a regular role.
    Permission {
        permission: String,
        role: String,
        held_on: String,
    },
    /// Allowed by an admin role; `permission` is the one used when the action names any.
    AdminRole {
        role: String,
        held_on: String,
        permission: Option<String>,
    },
    /// Denied: the principal does not exist.
    UnknownPrincipal,
    /// Denied: the principal is blocked.
    Blocked,
    /// Denied: the scope or principal acted on does not exist.
    UnknownResource,
    /// Denied: the resource principal's home scope is not visible to the principal.
    Invisible,
    /// Denied: the principal acted on is a driver, seen only with `driver.view` on it.
    DriverHidden,
    /// Denied: only a system principal may act for a system principal.
    SystemTarget,
    /// Denied: acting for the principal would reach beyond what the actor could grant: the
    /// target holds `role` on `scope` (`None` when the actor cannot see that scope), which
    /// the actor could not assign to it.
    BeyondGrant { role: String, scope: Option<String> },
    /// Denied: acting for an operator under a preset whose rule is "the same roles as
    /// themselves" (see [`crate::ActingFor::SameRoles`]), and the target holds `role` on
    /// `scope` (`None` when the actor cannot see it) which the actor does not hold there.
    BeyondOwnRoles { role: String, scope: Option<String> },
    /// Denied: the action maps to no permission, so only the system principal may do it.
    SystemOnly,
    /// Denied: the action is admin-only and no admin role reaches the scope.
    AdminRequired,
    /// Denied: no role reaching the scope grants a required permission there.
    Missing {
        /// Modules that are off at the scope and would enable a required permission.
        modules_off: Vec<String>,
        /// Roles that hold a required permission but may not charge.
        roles_without_charging: Vec<String>,
    },
}

impl Finding {
    pub fn allows(&self) -> bool {
        matches!(
            self,
            Finding::SystemPrincipal
                | Finding::OwnRecord
                | Finding::Permission { .. }
                | Finding::AdminRole { .. }
        )
    }
}

/// Stands in for a name the viewer of an explanation may not learn.
pub const HIDDEN: &str = "(not visible to you)";

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Engine {
    /// [`Engine::check`] with its reasons.
    pub fn explain(&self, principal: &str, action: Action, resource: &Resource) -> Decision {
        let (judged_at, finding) = self.find(principal, action, resource);
        let evidence = Evidence {
            principal: principal.to_owned(),
            action,
            resource: resource.clone(),
            judged_at: judged_at.map(|scope| self.scopes.name(scope).to_owned()),
            requires: self.preset.action_permissions(action),
            finding,
        };
        Decision {
            allowed: evidence.finding.allows(),
            reason: evidence.reason(),
            evidence,
        }
    }

    /// [`Engine::explain`] as told to `viewer`: a role held on a scope `viewer` cannot see
    /// is named neither by role nor by scope, and a resource `viewer` cannot see is not named,
    /// so asking why never reveals who holds what where the asker has no access.
    pub fn explain_for(
        &self,
        viewer: &str,
        principal: &str,
        action: Action,
        resource: &Resource,
    ) -> Decision {
        let mut decision = self.explain(principal, action, resource);
        let evidence = &mut decision.evidence;
        let hidden = |scope: &str| !self.can_see(viewer, &Resource::scope(scope));
        match &mut evidence.finding {
            Finding::Permission { role, held_on, .. }
            | Finding::AdminRole { role, held_on, .. }
                if hidden(held_on) =>
            {
                *role = HIDDEN.to_owned();
                *held_on = HIDDEN.to_owned();
            }
            _ => {}
        }
        if evidence.judged_at.as_deref().is_some_and(hidden) {
            evidence.judged_at = Some(HIDDEN.to_owned());
        }
        if !self.can_see(viewer, resource) {
            evidence.resource = match resource {
                Resource::Scope(_) => Resource::scope(HIDDEN),
                Resource::Principal(_) => Resource::principal(HIDDEN),
            };
        }
        decision.reason = evidence.reason();
        decision
    }

    fn find(
        &self,
        principal: &str,
        action: Action,
        resource: &Resource,
    ) -> (Option<ScopeIndex>, Finding) {
        let Some(record) = self.record(principal) else {
            return (None, Finding::UnknownPrincipal);
        };
        if record.blocked {
            return (None, Finding::Blocked);
        }
        let Some(target) = self.target_scope(resource) else {
            return (None, Finding::UnknownResource);
        };
        if record.kind == PrincipalKind::System {
            return (Some(target), Finding::SystemPrincipal);
        }
        if let Resource::Principal(other) = resource {
            if other == principal {
                if action == Action::PrincipalView {
                    return (Some(target), Finding::OwnRecord);
                }
            } else if !self.sees_scope(record, target) {
                return (Some(target), Finding::Invisible);
            }
            if let Some(other) = self.record(other) {
                if self.driver_hidden(record, other) {
                    return (Some(target), Finding::DriverHidden);
                }
                let finding = self.find_at(record, action, target);
                if finding.allows() && action.acts_for_principal() {
                    if let Some(beyond) = self.beyond_grant(record, other) {
                        return (Some(target), beyond);
                    }
                }
                return (Some(target), finding);
            }
        }
        (Some(target), self.find_at(record, action, target))
    }

    /// Searches the assignments on the way from `scope` to the root, closest first.
    fn find_at(&self, record: &PrincipalRecord, action: Action, scope: ScopeIndex) -> Finding {
        let data = &self.preset.data;
        let charging = action == Action::Charge;
        let rule = data
            .compiled_rules
            .get(action.index())
            .copied()
            .unwrap_or(CompiledRule::AnyOf(crate::bitset::PermissionSet::EMPTY));
        let permitted = self.permitted(self.scopes.module_state(scope));
        let rule_order: Vec<usize> = match &self.preset.action_permissions(action) {
            ActionRule::AnyOf(names) => names
                .iter()
                .filter_map(|name| data.permission_index.get(name).copied())
                .collect(),
            ActionRule::AdminOnly => Vec::new(),
        };
        if let CompiledRule::AnyOf(required) = rule {
            if required.is_empty() {
                return Finding::SystemOnly;
            }
        }

        let mut roles_without_charging = Vec::new();
        for current in self.scopes.ancestors(scope) {
            let Some(holding) = record.holding(current) else {
                continue;
            };
            for role in self.active_roles(holding) {
                let Some(compiled) = self.compiled_role(role) else {
                    continue;
                };
                let role_name = self.role_name(role).to_owned();
                let held_on = self.scopes.name(current).to_owned();
                match rule {
                    CompiledRule::AdminOnly => {
                        if compiled.admin && (!charging || compiled.can_charge) {
                            return Finding::AdminRole {
                                role: role_name,
                                held_on,
                                permission: None,
                            };
                        }
                    }
                    CompiledRule::AnyOf(required) => {
                        let usable = compiled.permissions.intersection(&permitted);
                        let Some(&permission) = rule_order
                            .iter()
                            .find(|&&index| usable.contains(index) && required.contains(index))
                        else {
                            continue;
                        };
                        if charging && !compiled.can_charge {
                            if !roles_without_charging.contains(&role_name) {
                                roles_without_charging.push(role_name);
                            }
                            continue;
                        }
                        let permission = data
                            .permissions
                            .get(permission)
                            .map(|definition| definition.id.clone())
                            .unwrap_or_default();
                        return if compiled.admin {
                            Finding::AdminRole {
                                role: role_name,
                                held_on,
                                permission: Some(permission),
                            }
                        } else {
                            Finding::Permission {
                                permission,
                                role: role_name,
                                held_on,
                            }
                        };
                    }
                }
            }
        }

        match rule {
            CompiledRule::AdminOnly => Finding::AdminRequired,
            CompiledRule::AnyOf(required) => {
                let mut modules_off: Vec<String> = required
                    .difference(&permitted)
                    .iter()
                    .filter_map(|index| data.permissions.get(index))
                    .filter_map(|permission| permission.module.clone())
                    .collect();
                modules_off.sort();
                modules_off.dedup();
                Finding::Missing {
                    modules_off,
                    roles_without_charging,
                }
            }
        }
    }
}

impl Evidence {
    /// One sentence for a person.
    pub fn reason(&self) -> String {
        let Evidence {
            principal,
            action,
            resource,
            judged_at,
            requires,
            finding,
        } = self;
        let at = judged_at.as_deref().unwrap_or("?");
        match finding {
            Finding::SystemPrincipal => format!(
                "`{principal}` is the system principal, which may do `{action}` on {resource}."
            ),
            Finding::OwnRecord => {
                format!("`{principal}` may always view their own principal record.")
            }
            Finding::Permission {
                permission,
                role,
                held_on,
            } => format!(
                "`{principal}` may do `{action}` on {resource} because role `{role}` held on `{held_on}` grants `{permission}` at `{at}`."
            ),
            Finding::AdminRole {
                role,
                held_on,
                permission: Some(permission),
            } => format!(
                "`{principal}` may do `{action}` on {resource} because the admin role `{role}` held on `{held_on}` includes `{permission}` at `{at}`."
            ),
            Finding::AdminRole { role, held_on, .. } => format!(
                "`{principal}` may do `{action}` on {resource} because the admin role `{role}` is held on `{held_on}`."
            ),
            Finding::UnknownPrincipal => format!("`{principal}` is not a known principal."),
            Finding::Blocked => format!("`{principal}` is blocked and may do nothing."),
            Finding::UnknownResource => format!("{resource} does not exist."),
            Finding::Invisible => format!(
                "`{principal}` cannot see {resource}, whose home scope `{at}` is outside their access, so may not do `{action}` on it."
            ),
            Finding::DriverHidden => format!(
                "`{principal}` cannot see {resource}: a driver is visible only to itself and to holders of `driver.view` on it, so `{principal}` may not do `{action}` on it."
            ),
            Finding::SystemTarget => format!(
                "Only a system principal may do `{action}` on {resource}, which is a system principal."
            ),
            Finding::BeyondGrant { role, scope } => {
                let place = scope.as_deref().map_or_else(
                    || "a scope outside their access".to_owned(),
                    |scope| format!("`{scope}`"),
                );
                format!(
                    "`{principal}` may not do `{action}` on {resource}: it holds role `{role}` on {place}, which `{principal}` could not grant, and acting for a principal never reaches beyond one's own grants."
                )
            }
            Finding::BeyondOwnRoles { role, scope } => {
                let place = scope.as_deref().map_or_else(
                    || "a scope outside their access".to_owned(),
                    |scope| format!("`{scope}`"),
                );
                format!(
                    "`{principal}` may not do `{action}` on {resource}: it holds role `{role}` on {place}, which `{principal}` does not hold there, and in this preset one acts only for team members with the same roles as oneself."
                )
            }
            Finding::SystemOnly => {
                format!("Only the system principal may do `{action}`; no role grants it.")
            }
            Finding::AdminRequired => format!(
                "`{action}` needs an admin role reaching `{at}`, and `{principal}` holds none there."
            ),
            Finding::Missing {
                modules_off,
                roles_without_charging,
            } => {
                let needed = match requires {
                    ActionRule::AnyOf(names) if names.len() == 1 => quoted_list(names),
                    ActionRule::AnyOf(names) => format!("one of {}", quoted_list(names)),
                    ActionRule::AdminOnly => "an admin role".to_owned(),
                };
                let mut sentence = format!(
                    "`{principal}` may not do `{action}` on {resource}: it needs {needed} at `{at}`, which no role of theirs grants there"
                );
                if !modules_off.is_empty() {
                    sentence.push_str(&format!(
                        " (module {} is off there)",
                        quoted_list(modules_off)
                    ));
                }
                if !roles_without_charging.is_empty() {
                    sentence.push_str(&format!(
                        " (role {} may not charge)",
                        quoted_list(roles_without_charging)
                    ));
                }
                sentence.push('.');
                sentence
            }
        }
    }
}
