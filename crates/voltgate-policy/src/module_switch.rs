//! Who may switch a feature module, and where a module may be switched at all.
//!
//! Switching a module on hands out every permission tied to it, so it is a grant rule of its
//! own, decided here rather than by whoever serves the switch. A module is switched only on
//! the scope kinds its preset names (a product line belongs to the installation, not to one
//! charger); in a nested preset a scope never has a module its non-root parent lacks. Paid
//! modules are switched only by the preset's paid-module permissions, and those switch
//! nothing else; unpaid modules by `module.edit` on the scope, or by a "below" permission
//! held strictly above it (editing sub-organisations' modules is not editing one's own).

use crate::action::Action;
use crate::engine::Engine;
use crate::grant::{Denial, DenialCode};
use crate::load::module_bit;
use crate::principal::{PrincipalKind, Resource};

fn deny(code: DenialCode, reason: String) -> Result<(), Denial> {
    Err(Denial { code, reason })
}

impl Engine {
    /// May `principal` switch `module` on (`on`) or off at `scope`?
    pub fn can_set_module(
        &self,
        principal: &str,
        scope: &str,
        module: &str,
        on: bool,
    ) -> Result<(), Denial> {
        let Some(record) = self.record(principal) else {
            return deny(
                DenialCode::UnknownGranter,
                format!("`{principal}` is not a known principal."),
            );
        };
        if record.blocked {
            return deny(
                DenialCode::GranterBlocked,
                format!("`{principal}` is blocked and may not switch modules."),
            );
        }
        let Ok(scope_index) = self.scope_index(scope) else {
            return deny(
                DenialCode::UnknownScope,
                format!("Scope `{scope}` does not exist."),
            );
        };
        let Some(&module_index) = self.preset.data.module_index.get(module) else {
            return deny(
                DenialCode::UnknownModule,
                format!("This preset has no module `{module}`."),
            );
        };
        if !self.can_see(principal, &Resource::scope(scope)) {
            return deny(
                DenialCode::ScopeInvisible,
                format!("Scope `{scope}` does not exist or is not visible to `{principal}`."),
            );
        }
        self.module_switch_validity(scope_index, module_index, on)?;
        if record.kind == PrincipalKind::System {
            return Ok(());
        }
        let data = &self.preset.data;
        let bit = module_bit(module_index).unwrap_or(0);
        let held = self.effective_at(record, scope_index);
        let admin = self.reach(record, scope_index).grant.admin;
        let state = if on { "on" } else { "off" };
        if data.paid_modules & bit != 0 && !data.paid_switch.is_empty() {
            if admin || held.intersects(&data.paid_switch) {
                return Ok(());
            }
            return deny(
                DenialCode::NoAuthority,
                format!(
                    "`{principal}` may not switch the paid module `{module}` {state} at `{scope}`: that needs {} there.",
                    self.describe_any_of(&data.paid_switch)
                ),
            );
        }
        if self.allows_at(record, Action::ModuleEdit, scope_index) {
            return Ok(());
        }
        let from_above = self.scopes.parent(scope_index).is_some_and(|parent| {
            self.effective_at(record, parent)
                .intersects(&data.below_switch)
        });
        if from_above {
            return Ok(());
        }
        let below = if data.below_switch.is_empty() {
            String::new()
        } else {
            format!(
                ", or {} on a scope above it",
                self.describe_any_of(&data.below_switch)
            )
        };
        deny(
            DenialCode::NoAuthority,
            format!("`{principal}` may not switch module `{module}` {state} at `{scope}`: that needs `module.edit` there{below}."),
        )
    }

    /// Rules that hold for everyone, the system principal included.
    fn module_switch_validity(
        &self,
        scope: crate::scope::ScopeIndex,
        module: usize,
        on: bool,
    ) -> Result<(), Denial> {
        let data = &self.preset.data;
        let kind = self.scopes.kind(scope);
        let module_name = self.module_name(module);
        let scope_name = self.scopes.name(scope);
        let switchable = data
            .module_switchable_on
            .get(module)
            .is_some_and(|kinds| kinds & (1u64 << kind) != 0);
        if !switchable {
            return deny(
                DenialCode::NotSwitchableHere,
                format!(
                    "Module `{module_name}` cannot be switched on `{scope_name}`, a scope of kind `{}`.",
                    self.kind_name(kind)
                ),
            );
        }
        let bit = module_bit(module).unwrap_or(0);
        if on && data.nested_modules {
            if let Some(parent) = self
                .scopes
                .parent(scope)
                .filter(|&parent| parent != crate::scope::ROOT_SCOPE)
            {
                if !self.scopes.module_on(parent, bit) {
                    return deny(
                        DenialCode::ParentLacksModule,
                        format!(
                            "Module `{module_name}` cannot be switched on at `{scope_name}` while its parent `{}` does not have it.",
                            self.scopes.name(parent)
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}
