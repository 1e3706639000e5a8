//! Property tests: random estates checked against the rules of the model and against a naive
//! reference implementation that walks every assignment without any index.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{fixture_preset, FixtureOptions};
use proptest::prelude::*;
use voltgate_policy::{ActingFor, Action, ActionRule, Engine, Preset, PrincipalKind, Resource};

const KINDS: [&str; 3] = ["organisation", "site", "station"];
const MODULES: [&str; 3] = ["analytics", "billing", "pro"];

/// Raw material for an estate; indices are reduced modulo what exists when they are used.
#[derive(Debug, Clone)]
struct Plan {
    /// (parent, kind) per scope.
    scopes: Vec<(usize, usize)>,
    /// (scope, module, setting: 0 off, 1 on, 2 clear).
    modules: Vec<(usize, usize, u8)>,
    /// (home scope, kind: 0..=5 operator, 6 driver, 7 system) per principal.
    principals: Vec<(usize, u8)>,
    /// (principal, role, scope).
    assignments: Vec<(usize, usize, usize)>,
    blocked: Vec<usize>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec((any::<usize>(), 0..KINDS.len()), 1..24),
        prop::collection::vec((any::<usize>(), 0..MODULES.len(), 0u8..3), 0..8),
        prop::collection::vec((any::<usize>(), 0u8..8), 1..8),
        prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 0..24),
        prop::collection::vec(any::<usize>(), 0..2),
    )
        .prop_map(|(scopes, modules, principals, assignments, blocked)| Plan {
            scopes,
            modules,
            principals,
            assignments,
            blocked,
        })
}

/// The estate as plain data, and the rules of the model evaluated by brute force.
#[derive(Debug, Clone)]
struct Model {
    preset: Preset,
    /// In creation order: (id, kind, parent).
    scopes: Vec<(String, String, Option<String>)>,
    module_settings: HashMap<(String, String), bool>,
    /// id -> (kind, home, blocked).
    principals: Vec<(String, PrincipalKind, String, bool)>,
    assignments: BTreeSet<(String, String, String)>,
}

impl Model {
    fn parent(&self, scope: &str) -> Option<&str> {
        self.scopes
            .iter()
            .find(|(id, _, _)| id == scope)
            .and_then(|(_, _, parent)| parent.as_deref())
    }

    fn kind(&self, scope: &str) -> Option<&str> {
        self.scopes
            .iter()
            .find(|(id, _, _)| id == scope)
            .map(|(_, kind, _)| kind.as_str())
    }

    fn is_ancestor_or_self(&self, ancestor: &str, scope: &str) -> bool {
        let mut current = Some(scope);
        while let Some(here) = current {
            if here == ancestor {
                return true;
            }
            current = self.parent(here);
        }
        false
    }

    fn module_on(&self, scope: &str, module: &str) -> bool {
        let mut current = Some(scope);
        while let Some(here) = current {
            if let Some(&on) = self
                .module_settings
                .get(&(here.to_owned(), module.to_owned()))
            {
                return on;
            }
            current = self.parent(here);
        }
        self.preset
            .module(module)
            .is_some_and(|definition| definition.default_on)
    }

    fn principal(&self, id: &str) -> Option<&(String, PrincipalKind, String, bool)> {
        self.principals.iter().find(|(name, _, _, _)| name == id)
    }

    fn role_active(&self, role: &str, scope: &str) -> bool {
        let definition = self.preset.role(role).expect("model uses preset roles");
        match &definition.station_requires_module {
            Some(module) if self.kind(scope) == Some("station") => self.module_on(scope, module),
            _ => true,
        }
    }

    fn role_grants(&self, role: &str, permission: &str) -> bool {
        let definition = self.preset.role(role).expect("model uses preset roles");
        definition.admin || definition.permissions.iter().any(|held| held == permission)
    }

    fn permission_on(&self, permission: &str, scope: &str) -> bool {
        match &self
            .preset
            .permission(permission)
            .expect("known permission")
            .module
        {
            Some(module) => self.module_on(scope, module),
            None => true,
        }
    }

    /// Active assignments of `principal` on `scope` or an ancestor.
    fn reaching<'a>(
        &'a self,
        principal: &'a str,
        scope: &'a str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.assignments
            .iter()
            .filter(move |(holder, role, held_on)| {
                holder == principal
                    && self.is_ancestor_or_self(held_on, scope)
                    && self.role_active(role, held_on)
            })
            .map(|(_, role, _)| role.as_str())
    }

    fn has_permission(&self, principal: &str, permission: &str, scope: &str) -> bool {
        let Some((_, kind, _, blocked)) = self.principal(principal) else {
            return false;
        };
        if *blocked || self.kind(scope).is_none() || self.preset.permission(permission).is_none() {
            return false;
        }
        if *kind == PrincipalKind::System {
            return true;
        }
        self.permission_on(permission, scope)
            && self
                .reaching(principal, scope)
                .any(|role| self.role_grants(role, permission))
    }

    fn sees_scope(&self, principal: &str, scope: &str) -> bool {
        self.assignments.iter().any(|(holder, _, held_on)| {
            holder == principal
                && (self.is_ancestor_or_self(held_on, scope)
                    || (self.preset.upward_visibility()
                        && self.is_ancestor_or_self(scope, held_on)))
        })
    }

    fn target(&self, resource: &Resource) -> Option<String> {
        match resource {
            Resource::Scope(id) => self.kind(id).map(|_| id.clone()),
            Resource::Principal(id) => self.principal(id).map(|(_, _, home, _)| home.clone()),
        }
    }

    fn can_see(&self, principal: &str, resource: &Resource) -> bool {
        let Some((_, kind, _, blocked)) = self.principal(principal) else {
            return false;
        };
        let Some(target) = self.target(resource) else {
            return false;
        };
        if *blocked {
            return false;
        }
        if *kind == PrincipalKind::System
            || matches!(resource, Resource::Principal(other) if other == principal)
        {
            return true;
        }
        if self.driver_hidden(principal, resource) {
            return false;
        }
        self.sees_scope(principal, &target)
    }

    /// Another driver is seen only with `driver.view` on it.
    fn driver_hidden(&self, principal: &str, resource: &Resource) -> bool {
        let Resource::Principal(other) = resource else {
            return false;
        };
        other != principal
            && self
                .principal(other)
                .is_some_and(|(_, kind, _, _)| *kind == PrincipalKind::Driver)
            && !self.permits(principal, Action::DriverView, resource)
    }

    /// [`Model::permits`] plus the rules for acting on another principal: drivers are hidden
    /// without `driver.view`, and acting for a principal needs authority to grant each of its
    /// roles (asked of the engine's `can_assign`, which other properties cover).
    fn check(&self, engine: &Engine, principal: &str, action: Action, resource: &Resource) -> bool {
        let allowed = self.permits(principal, action, resource);
        let Resource::Principal(other) = resource else {
            return allowed;
        };
        let Some((_, kind, _, _)) = self.principal(principal) else {
            return false;
        };
        if *kind == PrincipalKind::System || other == principal {
            return allowed;
        }
        if self.driver_hidden(principal, resource) || !allowed {
            return false;
        }
        if !action.acts_for_principal() {
            return true;
        }
        if self
            .principal(other)
            .is_some_and(|(_, kind, _, _)| *kind == PrincipalKind::System)
        {
            return false;
        }
        let same_roles = self.preset.acting_for_operators() == ActingFor::SameRoles
            && self
                .principal(other)
                .is_some_and(|(_, kind, _, _)| *kind == PrincipalKind::Operator);
        self.assignments
            .iter()
            .filter(|(holder, _, _)| holder == other)
            .all(|(_, role, scope)| {
                if same_roles {
                    self.assignments.iter().any(|(holder, own, at)| {
                        holder == principal && own == role && self.is_ancestor_or_self(at, scope)
                    })
                } else {
                    engine.can_assign(principal, other, role, scope).is_ok()
                }
            })
    }

    /// The permission rule alone, before the rules particular to principal targets.
    fn permits(&self, principal: &str, action: Action, resource: &Resource) -> bool {
        let Some((_, kind, _, blocked)) = self.principal(principal) else {
            return false;
        };
        let Some(target) = self.target(resource) else {
            return false;
        };
        if *blocked {
            return false;
        }
        if *kind == PrincipalKind::System {
            return true;
        }
        if let Resource::Principal(other) = resource {
            if other == principal {
                if action == Action::PrincipalView {
                    return true;
                }
            } else if !self.sees_scope(principal, &target) {
                return false;
            }
        }
        let charging = action == Action::Charge;
        let may_use = |role: &str| {
            !charging
                || self
                    .preset
                    .role(role)
                    .is_some_and(|definition| definition.can_charge)
        };
        match self.preset.action_permissions(action) {
            ActionRule::AdminOnly => self.reaching(principal, &target).any(|role| {
                may_use(role)
                    && self
                        .preset
                        .role(role)
                        .is_some_and(|definition| definition.admin)
            }),
            ActionRule::AnyOf(permissions) => self.reaching(principal, &target).any(|role| {
                may_use(role)
                    && permissions.iter().any(|permission| {
                        self.role_grants(role, permission)
                            && self.permission_on(permission, &target)
                    })
            }),
        }
    }
}

/// Applies a plan to a fresh engine, recording in the model only what the engine accepted.
fn build(preset: &Preset, plan: &Plan) -> (Engine, Model) {
    let roles: Vec<String> = preset.roles().map(|role| role.id.clone()).collect();
    build_with_roles(preset, plan, &roles)
}

/// [`build`], assigning only the given roles.
fn build_with_roles(preset: &Preset, plan: &Plan, roles: &[String]) -> (Engine, Model) {
    let mut engine = Engine::new(preset.clone());
    let mut model = Model {
        preset: preset.clone(),
        scopes: vec![("root".into(), "root".into(), None)],
        module_settings: HashMap::new(),
        principals: Vec::new(),
        assignments: BTreeSet::new(),
    };
    for (index, &(parent, kind)) in plan.scopes.iter().enumerate() {
        let id = format!("s{index}");
        let parent = model.scopes[parent % model.scopes.len()].0.clone();
        let kind = KINDS[kind];
        if engine.add_scope(&id, kind, &parent).is_ok() {
            model.scopes.push((id, kind.to_owned(), Some(parent)));
        }
    }
    for &(scope, module, setting) in &plan.modules {
        let scope = model.scopes[scope % model.scopes.len()].0.clone();
        let module = MODULES[module];
        let key = (scope.clone(), module.to_owned());
        match setting {
            2 => {
                engine.clear_module(&scope, module).unwrap();
                model.module_settings.remove(&key);
            }
            on => {
                engine.set_module(&scope, module, on == 1).unwrap();
                model.module_settings.insert(key, on == 1);
            }
        }
    }
    for (index, &(home, kind)) in plan.principals.iter().enumerate() {
        let id = format!("p{index}");
        let home = model.scopes[home % model.scopes.len()].0.clone();
        let kind = match kind {
            7 => PrincipalKind::System,
            6 => PrincipalKind::Driver,
            _ => PrincipalKind::Operator,
        };
        engine.add_principal(&id, kind, &home).unwrap();
        model.principals.push((id, kind, home, false));
    }
    for &(principal, role, scope) in &plan.assignments {
        let principal = model.principals[principal % model.principals.len()]
            .0
            .clone();
        let role = roles[role % roles.len()].clone();
        let scope = model.scopes[scope % model.scopes.len()].0.clone();
        if engine.assign(&principal, &role, &scope).is_ok() {
            model.assignments.insert((principal, role, scope));
        }
    }
    for &blocked in &plan.blocked {
        let index = blocked % model.principals.len();
        engine
            .set_blocked(&model.principals[index].0, true)
            .unwrap();
        model.principals[index].3 = true;
    }
    (engine, model)
}

fn resources(model: &Model) -> Vec<Resource> {
    model
        .scopes
        .iter()
        .map(|(id, _, _)| Resource::scope(id))
        .chain(
            model
                .principals
                .iter()
                .map(|(id, _, _, _)| Resource::principal(id)),
        )
        .chain([Resource::scope("missing"), Resource::principal("missing")])
        .collect()
}

fn principal_ids(model: &Model) -> Vec<String> {
    model
        .principals
        .iter()
        .map(|(id, _, _, _)| id.clone())
        .chain(["missing".to_owned()])
        .collect()
}

/// Every `check`, `can_see` and `has_permission` answer of the engine equals the model's.
fn agrees_with_model(preset: &Preset, engine: &Engine, model: &Model) -> Result<(), TestCaseError> {
    let permissions: Vec<String> = preset.permissions().map(|p| p.id.clone()).collect();
    for principal in principal_ids(model) {
        for resource in resources(model) {
            prop_assert_eq!(
                engine.can_see(&principal, &resource),
                model.can_see(&principal, &resource),
                "can_see {} {}",
                principal,
                resource
            );
            for &action in Action::ALL {
                prop_assert_eq!(
                    engine.check(&principal, action, &resource),
                    model.check(engine, &principal, action, &resource),
                    "check {} {} {}",
                    principal,
                    action,
                    resource
                );
            }
        }
        for (scope, _, _) in &model.scopes {
            for permission in &permissions {
                prop_assert_eq!(
                    engine.has_permission(&principal, permission, scope),
                    model.has_permission(&principal, permission, scope),
                    "has_permission {} {} {}",
                    principal,
                    permission,
                    scope
                );
            }
        }
    }
    Ok(())
}

fn options(upward_visibility: bool) -> FixtureOptions {
    FixtureOptions {
        upward_visibility,
        ..FixtureOptions::default()
    }
}

/// Options where acting for an operator needs the actor's own roles.
fn same_roles_options(upward_visibility: bool, same_roles: bool) -> FixtureOptions {
    FixtureOptions {
        same_roles,
        ..options(upward_visibility)
    }
}

/// Runs `property` on `cases` generated values, failing on the first counterexample (shrunk),
/// and returns what the passing cases counted: a property that holds only because nothing
/// happened (every assignment refused, say) shows up as a count of zero.
fn run_counting<S: Strategy>(
    cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<Counts, TestCaseError>,
) -> Counts {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    let total = std::cell::Cell::new(Counts::default());
    let outcome = runner.run(&strategy, |value| {
        let counts = property(value)?;
        let sum = total.get();
        total.set(Counts {
            done: sum.done + counts.done,
            refused: sum.refused + counts.refused,
        });
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    total.get()
}

/// What one run of a property did: operations that took effect and operations refused.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    done: u32,
    refused: u32,
}

#[test]
fn the_fast_engine_agrees_with_the_naive_model() {
    let cases = 96;
    let counts = run_counting(
        cases,
        (plan(), any::<bool>(), any::<bool>()),
        |(plan, upward, same_roles)| {
            let preset = fixture_preset(same_roles_options(upward, same_roles));
            let (engine, model) = build(&preset, &plan);
            agrees_with_model(&preset, &engine, &model)?;
            let assigned = model.assignments.len() as u32;
            Ok(Counts {
                done: assigned,
                refused: (plan.assignments.len() as u32).saturating_sub(assigned),
            })
        },
    );
    eprintln!("assignments: {counts:?}");
    // Agreement on empty estates proves nothing: most planned assignments must take effect.
    assert!(
        counts.done >= cases,
        "only {} assignments took effect in {cases} estates ({} refused)",
        counts.done,
        counts.refused
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn removing_a_principal_leaves_the_estate_as_if_it_never_existed(
        plan in plan(),
        upward in any::<bool>(),
        removed in any::<usize>(),
    ) {
        let preset = fixture_preset(options(upward));
        let (mut engine, mut model) = build(&preset, &plan);
        let removed = model.principals.remove(removed % model.principals.len()).0;
        model.assignments.retain(|(principal, _, _)| *principal != removed);
        engine.remove_principal(&removed).unwrap();
        prop_assert!(engine.principal_kind(&removed).is_none());
        prop_assert!(engine.remove_principal(&removed).is_err());
        let order: Vec<&str> = engine.principals().collect();
        let expected: Vec<&str> = model.principals.iter().map(|(id, _, _, _)| id.as_str()).collect();
        prop_assert_eq!(order, expected);
        agrees_with_model(&preset, &engine, &model)?;
        for resource in resources(&model) {
            for &action in Action::ALL {
                prop_assert!(!engine.check(&removed, action, &resource), "{} {}", action, resource);
            }
        }
    }

    #[test]
    fn explain_always_agrees_with_check(
        plan in plan(),
        upward in any::<bool>(),
        same_roles in any::<bool>(),
    ) {
        let (engine, model) = build(&fixture_preset(same_roles_options(upward, same_roles)), &plan);
        for principal in principal_ids(&model) {
            for resource in resources(&model) {
                for &action in Action::ALL {
                    let allowed = engine.check(&principal, action, &resource);
                    let decision = engine.explain(&principal, action, &resource);
                    prop_assert_eq!(decision.allowed, allowed, "{} {} {}: {}", principal, action, resource, decision.reason);
                    prop_assert_eq!(decision.evidence.finding.allows(), allowed);
                    prop_assert!(decision.reason.ends_with('.'));
                }
            }
        }
    }

    #[test]
    fn visible_agrees_with_can_see_on_every_scope(plan in plan(), upward in any::<bool>()) {
        let (engine, model) = build(&fixture_preset(options(upward)), &plan);
        for principal in principal_ids(&model) {
            for kind in ["root", "organisation", "site", "station"] {
                let expected: Vec<String> = engine
                    .scopes()
                    .filter(|&(_, scope_kind, _)| scope_kind == kind)
                    .filter(|&(id, _, _)| engine.can_see(&principal, &Resource::scope(id)))
                    .map(|(id, _, _)| id.to_owned())
                    .collect();
                prop_assert_eq!(engine.visible(&principal, kind), expected, "{} {}", principal, kind);
            }
        }
    }

    #[test]
    fn stacking_a_role_never_removes_a_permission(
        plan in plan(),
        extra in (any::<usize>(), any::<usize>(), any::<usize>()),
        upward in any::<bool>(),
    ) {
        let preset = fixture_preset(options(upward));
        let (before, model) = build(&preset, &plan);
        let mut after = before.clone();
        let roles: Vec<String> = preset.roles().map(|role| role.id.clone()).collect();
        let principal = &model.principals[extra.0 % model.principals.len()].0;
        let role = &roles[extra.1 % roles.len()];
        let scope = &model.scopes[extra.2 % model.scopes.len()].0;
        prop_assume!(after.assign(principal, role, scope).is_ok());
        for holder in principal_ids(&model) {
            for resource in resources(&model) {
                prop_assert!(!before.can_see(&holder, &resource) || after.can_see(&holder, &resource));
                for &action in Action::ALL {
                    // Acting for the principal that gained the role may rightly need more
                    // authority now: that is the no-escalation rule, not a lost permission.
                    let acts_for_gainer = action.acts_for_principal()
                        && resource == Resource::principal(principal.as_str());
                    if before.check(&holder, action, &resource) && !acts_for_gainer {
                        prop_assert!(
                            after.check(&holder, action, &resource),
                            "{} lost {} on {} after gaining {} on {}", holder, action, resource, role, scope
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_role_reaches_every_descendant_and_never_a_sibling_or_ancestor(
        plan in plan(),
        pick in (any::<usize>(), any::<usize>()),
    ) {
        let preset = fixture_preset(options(false));
        let mut plan = plan;
        plan.assignments.clear();
        plan.blocked.clear();
        plan.principals = vec![(0, 0)];
        let (mut engine, model) = build(&preset, &plan);
        let roles: Vec<&voltgate_policy::RoleDef> = preset.roles().filter(|role| role.station_requires_module.is_none()).collect();
        let role = roles[pick.0 % roles.len()];
        let held_on = &model.scopes[pick.1 % model.scopes.len()].0;
        prop_assume!(engine.assign("p0", &role.id, held_on).is_ok());
        let unconditional: Vec<String> = preset
            .permissions()
            .filter(|permission| permission.module.is_none())
            .filter(|permission| role.admin || role.permissions.contains(&permission.id))
            .map(|permission| permission.id.clone())
            .collect();
        prop_assert!(!unconditional.is_empty());
        for (scope, _, _) in &model.scopes {
            let below = model.is_ancestor_or_self(held_on, scope);
            prop_assert_eq!(engine.can_see("p0", &Resource::scope(scope)), below, "{} on {} seen at {}", &role.id, held_on, scope);
            for permission in &unconditional {
                prop_assert_eq!(
                    engine.has_permission("p0", permission, scope),
                    below,
                    "{} from {} on {} at {}", permission, &role.id, held_on, scope
                );
            }
        }
    }
}

#[test]
fn no_sequence_of_allowed_grants_exceeds_what_the_granters_held() {
    // Escalation needs a specific shape of estate to show up, so this property gets more cases.
    let cases = 256;
    let attempts = prop::collection::vec(
        (
            any::<usize>(),
            any::<usize>(),
            any::<usize>(),
            any::<usize>(),
            any::<bool>(),
        ),
        1..64,
    );
    let counts = run_counting(cases, (plan(), attempts), |(plan, attempts)| {
        let mut counts = Counts::default();
        // No role in this preset is marked allow_escalation.
        let preset = fixture_preset(FixtureOptions {
            escalating_role: false,
            ..FixtureOptions::default()
        });
        let mut plan = plan;
        // Everyone but the system principal is an ordinary operator; the system principal
        // seeded the starting assignments, and is not used as a granter afterwards.
        for principal in &mut plan.principals {
            principal.1 = 0;
        }
        // Module switches here are all analytics: on below a scope where it is off is where a
        // granter could hand out export-sessions without holding it.
        for setting in &mut plan.modules {
            setting.1 = 0;
        }
        plan.blocked.clear();
        // The system principal hands out a bounded set of roles that may invite others, each
        // lacking a permission (configure-stations, or export-sessions where analytics is on)
        // that a role it may grant carries.
        let seeded: Vec<String> = ["operator", "fleet-operator", "driver-manager", "technician"]
            .map(String::from)
            .to_vec();
        let (mut engine, model) = build_with_roles(&preset, &plan, &seeded);

        let scope_ids: Vec<String> = model.scopes.iter().map(|(id, _, _)| id.clone()).collect();
        let people: Vec<String> = model
            .principals
            .iter()
            .map(|(id, _, _, _)| id.clone())
            .collect();
        let bound: HashMap<&str, BTreeSet<String>> = scope_ids
            .iter()
            .map(|scope| {
                let held: BTreeSet<String> = people
                    .iter()
                    .flat_map(|person| engine.effective_permissions(person, scope))
                    .map(str::to_owned)
                    .collect();
                (scope.as_str(), held)
            })
            .collect();

        let roles: Vec<String> = preset
            .roles()
            .filter(|role| !role.admin)
            .map(|role| role.id.clone())
            .collect();
        for (granter, principal, role, scope, remove) in attempts {
            let granter = &people[granter % people.len()];
            let principal = &people[principal % people.len()];
            let role = &roles[role % roles.len()];
            let scope = &scope_ids[scope % scope_ids.len()];
            if remove {
                if engine.can_unassign(granter, principal, role, scope).is_ok() {
                    prop_assert_eq!(engine.unassign(principal, role, scope), Ok(true));
                }
            } else if engine.can_assign(granter, principal, role, scope).is_ok() {
                engine.assign(principal, role, scope).unwrap();
                counts.done += 1;
            } else {
                counts.refused += 1;
            }
        }

        for person in &people {
            for scope in &scope_ids {
                for permission in engine.effective_permissions(person, scope) {
                    prop_assert!(
                        bound[scope.as_str()].contains(permission),
                        "{} gained {} at {} which no one held there",
                        person,
                        permission,
                        scope
                    );
                }
            }
        }
        Ok(counts)
    });
    eprintln!("grants: {counts:?}");
    // The bound holds vacuously if every grant was refused, and says little if none was.
    assert!(
        counts.done > 0 && counts.refused > 0,
        "grants allowed {}, refused {}: both must happen",
        counts.done,
        counts.refused
    );
}

/// A small estate in `preset`: under every scope, one child of every kind allowed there, to
/// depth three.
fn every_shape(preset: &Preset) -> Engine {
    let mut engine = Engine::new(preset.clone());
    let mut level = vec![("root".to_owned(), "root".to_owned())];
    let mut count = 0;
    for _ in 0..3 {
        let mut next = Vec::new();
        for (parent, parent_kind) in &level {
            for kind in preset.kinds() {
                if kind.parents.iter().any(|allowed| allowed == parent_kind) {
                    count += 1;
                    let id = format!("{}-{count}", kind.id);
                    engine.add_scope(&id, &kind.id, parent).unwrap();
                    next.push((id, kind.id.clone()));
                }
            }
        }
        level = next;
    }
    engine
}

/// Issue #20: an escalating grant (a seed's "invite X" cell) could reach the inviter itself,
/// and grants chain. For every preset and every role, a principal holding only that role
/// repeats every self-assignment and module switch the engine allows until nothing new
/// succeeds; it must end with no permission outside the role's own column and may do
/// nothing an idle twin holding the same role may not.
#[test]
fn no_principal_gains_beyond_its_column_by_its_own_actions() {
    for name in Preset::BUILTIN {
        let preset = Preset::builtin(name).unwrap();
        let mut successes = 0usize;
        for role in preset.roles() {
            let mut engine = every_shape(&preset);
            let scopes: Vec<String> = engine.scopes().map(|(id, _, _)| id.to_owned()).collect();
            let modules: Vec<String> = preset.modules().map(|module| module.id.clone()).collect();
            for module in &modules {
                for scope in scopes.iter().skip(1).step_by(3) {
                    let _ = engine.set_module(scope, module, true);
                }
            }
            let Some(home) = scopes.iter().find(|scope| {
                engine.scope_kind(scope).is_some_and(|kind| {
                    kind != "root" && role.assignable_on.iter().any(|allowed| allowed == kind)
                })
            }) else {
                continue;
            };
            for id in ["actor", "twin"] {
                engine
                    .add_principal(id, PrincipalKind::Operator, home)
                    .unwrap();
                if engine.assign(id, &role.id, home).is_err() {
                    break;
                }
            }
            if engine.assignments_of("twin").is_empty() {
                continue;
            }
            let roles: Vec<String> = engine.roles().map(|role| role.id.clone()).collect();
            for _pass in 0..4 {
                let mut changed = false;
                for other in &roles {
                    for scope in &scopes {
                        if engine.can_assign("actor", "actor", other, scope).is_ok() {
                            successes += 1;
                            let before = engine.assignments_of("actor").len();
                            engine.assign("actor", other, scope).unwrap();
                            changed |= engine.assignments_of("actor").len() != before;
                        }
                    }
                }
                for module in &modules {
                    for scope in &scopes {
                        for on in [true, false] {
                            if engine.can_set_module("actor", scope, module, on).is_ok() {
                                successes += 1;
                                let before = engine.module_on(scope, module).unwrap();
                                engine.set_module(scope, module, on).unwrap();
                                changed |= engine.module_on(scope, module).unwrap() != before;
                            }
                        }
                    }
                }
                if !changed {
                    break;
                }
            }
            for scope in &scopes {
                if !role.admin {
                    for permission in engine.effective_permissions("actor", scope) {
                        assert!(
                            role.permissions.iter().any(|own| own == permission),
                            "{name}: `actor` holding `{}` gained `{permission}` at `{scope}`",
                            role.id
                        );
                    }
                }
                for &action in Action::ALL {
                    let resource = Resource::scope(scope.clone());
                    assert!(
                        !engine.check("actor", action, &resource)
                            || engine.check("twin", action, &resource),
                        "{name}: `actor` holding `{}` gained `{action}` at `{scope}`",
                        role.id
                    );
                }
            }
        }
        assert!(successes > 0, "{name}: no self-service step ever succeeded");
    }
}
