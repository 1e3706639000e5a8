//! The rules for acting on another principal, in one place so every door asks the same
//! question: the API's handlers, `explain`, and the property tests.
//!
//! * **Drivers are personal data.** Another principal sees a driver only with `driver.view`
//!   on it; operators are seen wherever their home scope is.
//! * **Acting for someone never reaches beyond one's own grants.** Holding a principal's API
//!   token, registering or changing its cards (a card charges as its principal), blocking it
//!   or deleting it are actions *for* that principal: besides the action's permission, the
//!   actor must be able to grant every role the target holds, where it holds it, and only a
//!   system principal acts for a system principal.
//!   A preset may make the rule for operators "the same roles as oneself" instead
//!   ([`ActingFor::SameRoles`], Virta's "archive team members with same roles as themselves"):
//!   the actor must then hold every role the operator holds, there or above. Either way
//!   nobody acts for someone with more power than their own.
//! * **Nobody removes themselves, nor a protected principal** (the gateway's bootstrap
//!   administrator, recreated at every start); a preset may also delete only principals that
//!   were blocked first ("restore/delete archived team members").

use crate::action::Action;
use crate::engine::Engine;
use crate::error::PolicyError;
use crate::explain::Finding;
use crate::grant::{Denial, DenialCode};
use crate::preset::ActingFor;
use crate::principal::{PrincipalKind, PrincipalRecord};

impl Action {
    /// Whether performing the action on a principal means acting for it, so that the
    /// no-escalation rule applies on top of the action's permission.
    pub fn acts_for_principal(self) -> bool {
        matches!(
            self,
            Action::PrincipalEdit
                | Action::DriverEdit
                | Action::IdTokenEdit
                | Action::PrincipalDelete
                | Action::DriverDelete
        )
    }
}

impl Engine {
    /// Whether `viewer` (not the system principal) is kept from seeing principal `target`
    /// although its home scope is visible: a driver is seen only by itself and by holders of
    /// `driver.view` on it.
    pub(crate) fn driver_hidden(&self, viewer: &PrincipalRecord, target: &PrincipalRecord) -> bool {
        target.kind == PrincipalKind::Driver
            && target.name != viewer.name
            && !self.allows_at(viewer, Action::DriverView, target.home)
    }

    /// Why `actor` may not act for `target` although the action's permission allows it:
    /// `None` when every role `target` holds is one `actor` could grant it there.
    pub(crate) fn beyond_grant(
        &self,
        actor: &PrincipalRecord,
        target: &PrincipalRecord,
    ) -> Option<Finding> {
        if actor.kind == PrincipalKind::System || actor.name == target.name {
            return None;
        }
        if target.kind == PrincipalKind::System {
            return Some(Finding::SystemTarget);
        }
        if target.kind == PrincipalKind::Operator
            && self.preset.acting_for_operators() == ActingFor::SameRoles
        {
            return self.beyond_own_roles(actor, target);
        }
        self.assignments_of(&target.name)
            .into_iter()
            .find_map(|(role, scope)| {
                self.can_assign(&actor.name, &target.name, &role, &scope)
                    .err()
                    .map(|_| {
                        let visible = self
                            .scopes
                            .lookup(&scope)
                            .is_some_and(|index| self.sees_scope(actor, index));
                        Finding::BeyondGrant {
                            role,
                            scope: visible.then_some(scope),
                        }
                    })
            })
    }

    /// The first role `target` holds that `actor` does not hold at the same scope or above.
    fn beyond_own_roles(
        &self,
        actor: &PrincipalRecord,
        target: &PrincipalRecord,
    ) -> Option<Finding> {
        target.holdings().iter().find_map(|holding| {
            let missing = holding.roles.iter().find(|&&role| {
                !actor.holdings().iter().any(|own| {
                    own.roles.contains(&role)
                        && self.scopes.is_ancestor_or_self(own.scope, holding.scope)
                })
            })?;
            let visible = self.sees_scope(actor, holding.scope);
            Some(Finding::BeyondOwnRoles {
                role: self.role_name(*missing).to_owned(),
                scope: visible.then(|| self.scopes.name(holding.scope).to_owned()),
            })
        })
    }

    /// Marks a principal that may never be deleted (the gateway's bootstrap administrator).
    pub fn protect_principal(&mut self, id: &str) -> Result<(), PolicyError> {
        let slot = self
            .principal_index
            .get(id)
            .ok_or_else(|| PolicyError::UnknownPrincipal(id.to_owned()))?;
        if let Some(record) = self.principals.get_mut(slot as usize) {
            record.protected = true;
        }
        Ok(())
    }

    /// May `actor` delete principal `target`, given that it may perform `action` (the edit or
    /// delete action for the target's kind) on it? The action's own decision comes from
    /// [`Engine::explain`]; this adds what is particular to removal.
    pub fn can_remove_principal(&self, actor: &str, target: &str) -> Result<(), Denial> {
        let Some(record) = self.record(target) else {
            return Err(Denial {
                code: DenialCode::UnknownPrincipal,
                reason: format!("`{target}` is not a known principal."),
            });
        };
        if actor == target {
            return Err(Denial {
                code: DenialCode::SelfRemoval,
                reason: format!(
                    "`{actor}` cannot delete itself; another administrator can, so a mistake can be undone."
                ),
            });
        }
        if record.protected {
            return Err(Denial {
                code: DenialCode::Protected,
                reason: format!(
                    "`{target}` is the bootstrap administrator, recreated at every start; block it or revoke its tokens instead."
                ),
            });
        }
        if self.preset.delete_requires_blocked() && !record.blocked {
            return Err(Denial {
                code: DenialCode::NotBlocked,
                reason: format!("`{target}` must be archived (blocked) before it can be deleted."),
            });
        }
        Ok(())
    }
}
