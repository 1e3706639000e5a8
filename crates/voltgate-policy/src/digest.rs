//! Digests of the rules behind the engine's answers, for whoever derives something from
//! those answers for many scopes at once (local lists: every card holder at every charger)
//! and must know whether a change since it last did could make any of it differ.
//!
//! What the engine answers about a principal at a scope depends on the principal (kind,
//! home, block, the roles it holds and where), on the definitions of those roles, on the
//! module settings, and on the scope tree. The tree only grows, by leaves, so an answer at a
//! scope that existed does not depend on what was added since; everything else is in the two
//! digests below. They hash names, not the engine's internal indices, so an engine rebuilt
//! from the same rules (a reload, a follower's replay) gives the same digests.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::engine::Engine;

impl Engine {
    /// A digest of everything the answers about `principal` depend on apart from the module
    /// settings ([`Engine::modules_digest`]) and the scope tree: its kind, home scope and
    /// block, and each role it holds, where, with the role's definition. Equal digests mean
    /// equal answers; `None` for an unknown principal.
    pub fn principal_digest(&self, principal: &str) -> Option<u64> {
        let record = self.record(principal)?;
        let mut hasher = DefaultHasher::new();
        record.kind.hash(&mut hasher);
        self.scopes.name(record.home).hash(&mut hasher);
        record.blocked.hash(&mut hasher);
        let holdings = record.holdings();
        holdings.len().hash(&mut hasher);
        for holding in holdings {
            self.scopes.name(holding.scope).hash(&mut hasher);
            holding.roles.len().hash(&mut hasher);
            for role in &holding.roles {
                self.roles.get(usize::from(*role)).hash(&mut hasher);
            }
        }
        Some(hasher.finish())
    }

    /// A digest of every module setting: which scope switches which module on or off.
    pub fn modules_digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        for (scope, set, on) in self.scopes.module_settings() {
            self.scopes.name(scope).hash(&mut hasher);
            set.hash(&mut hasher);
            on.hash(&mut hasher);
        }
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Engine, Preset, PrincipalKind};

    fn estate() -> Engine {
        let mut engine = Engine::new(Preset::builtin("connect").unwrap());
        for site in ["north", "south"] {
            engine.add_scope(site, "site", "root").unwrap();
        }
        engine.add_scope("CP-N", "station", "north").unwrap();
        for (id, home) in [("dina", "north"), ("olga", "south")] {
            engine
                .add_principal(id, PrincipalKind::Operator, home)
                .unwrap();
        }
        engine
    }

    fn custom(engine: &mut Engine, id: &str, permissions: &[&str]) {
        let permissions: Vec<String> = permissions.iter().map(|p| p.to_string()).collect();
        engine.define_role(id, "custom", &permissions).unwrap();
    }

    fn digests(engine: &Engine) -> (Option<u64>, Option<u64>, u64) {
        (
            engine.principal_digest("dina"),
            engine.principal_digest("olga"),
            engine.modules_digest(),
        )
    }

    /// Every rule an answer about dina depends on moves her digest, and only hers; a scope
    /// added or a role nobody holds moves nothing.
    #[test]
    fn a_digest_moves_with_each_rule_of_its_principal_and_nothing_else() {
        let mut engine = estate();
        let (dina, olga, modules) = digests(&engine);
        assert!(dina.is_some() && dina != olga, "homes differ");

        engine.add_scope("CP-N2", "station", "north").unwrap();
        custom(&mut engine, "viewer", &["view-chargers"]);
        assert_eq!(
            digests(&engine),
            (dina, olga, modules),
            "nothing anyone holds"
        );

        engine.assign("dina", "viewer", "north").unwrap();
        let assigned = engine.principal_digest("dina");
        assert_ne!(assigned, dina, "a role assigned");
        assert_eq!(engine.principal_digest("olga"), olga, "not olga's");
        engine.assign("dina", "site-admin", "north").unwrap();
        let two_roles = engine.principal_digest("dina");
        assert_ne!(two_roles, assigned, "a second role at the same scope");
        engine.unassign("dina", "site-admin", "north").unwrap();
        engine.assign("dina", "site-admin", "south").unwrap();
        assert_ne!(
            engine.principal_digest("dina"),
            two_roles,
            "the role elsewhere"
        );
        engine.unassign("dina", "site-admin", "south").unwrap();
        assert_eq!(engine.principal_digest("dina"), assigned);

        engine.set_blocked("dina", true).unwrap();
        assert_ne!(engine.principal_digest("dina"), assigned, "blocked");
        engine.set_blocked("dina", false).unwrap();
        assert_eq!(engine.principal_digest("dina"), assigned, "unblocked again");

        let mut other = estate();
        custom(&mut other, "viewer", &["view-chargers", "charge-at-sites"]);
        other.assign("dina", "viewer", "north").unwrap();
        assert_ne!(
            other.principal_digest("dina"),
            assigned,
            "the same role name held with another definition"
        );

        engine.unassign("dina", "viewer", "north").unwrap();
        assert_eq!(engine.principal_digest("dina"), dina, "the role taken away");
        engine.remove_principal("dina").unwrap();
        assert_eq!(engine.principal_digest("dina"), None);
        engine
            .add_principal("dina", PrincipalKind::Operator, "south")
            .unwrap();
        assert_ne!(engine.principal_digest("dina"), dina, "another home");
    }

    /// A module switched anywhere moves the modules digest, and switched back it is as
    /// before.
    #[test]
    fn the_modules_digest_moves_with_each_setting() {
        let mut engine = Engine::new(Preset::builtin("virta").unwrap());
        engine.add_scope("org", "organisation", "root").unwrap();
        let before = engine.modules_digest();
        let module = engine
            .preset()
            .modules()
            .map(|m| m.id.clone())
            .find(|module| engine.clone().set_module("org", module, true).is_ok())
            .expect("a module switches at an organisation");
        engine.set_module("org", &module, true).unwrap();
        let on = engine.modules_digest();
        assert_ne!(on, before, "switched on");
        engine.set_module("org", &module, false).unwrap();
        assert_ne!(engine.modules_digest(), on, "switched off");
        assert_ne!(engine.modules_digest(), before, "off is a setting too");
    }

    /// An engine rebuilt from the same rules, in another order, gives the same digests.
    #[test]
    fn the_same_rules_give_the_same_digests_in_another_engine() {
        let mut one = estate();
        custom(&mut one, "viewer", &["view-chargers"]);
        one.assign("dina", "viewer", "north").unwrap();
        one.assign("olga", "site-admin", "south").unwrap();

        let mut two = Engine::new(Preset::builtin("connect").unwrap());
        for site in ["south", "north"] {
            two.add_scope(site, "site", "root").unwrap();
        }
        two.add_scope("CP-N", "station", "north").unwrap();
        for (id, home) in [("olga", "south"), ("dina", "north")] {
            two.add_principal(id, PrincipalKind::Operator, home)
                .unwrap();
        }
        two.assign("olga", "site-admin", "south").unwrap();
        custom(&mut two, "viewer", &["view-chargers"]);
        two.assign("dina", "viewer", "north").unwrap();
        assert_eq!(digests(&one), digests(&two));
    }
}
