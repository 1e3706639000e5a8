//! Rule-by-rule tests of the engine against the fixture preset in `common`.

mod common;

use common::{add_operator, fixture_estate, fixture_preset, FixtureOptions};
use voltgate_policy::{Action, DenialCode, Engine, Finding, PolicyError, PrincipalKind, Resource};

fn scope(id: &str) -> Resource {
    Resource::scope(id)
}

fn estate() -> Engine {
    fixture_estate(FixtureOptions::default())
}

fn custom_estate() -> Engine {
    fixture_estate(FixtureOptions {
        custom_roles: true,
        ..FixtureOptions::default()
    })
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[test]
fn a_new_engine_has_only_the_root_scope() {
    let engine = Engine::new(fixture_preset(FixtureOptions::default()));
    let scopes: Vec<_> = engine.scopes().collect();
    assert_eq!(scopes, [("root", "root", None)]);
    assert_eq!(engine.scope_kind("root"), Some("root"));
    assert_eq!(engine.scope_parent("root"), None);
}

#[test]
fn scopes_must_fit_the_kind_tree() {
    let mut engine = estate();
    assert_eq!(
        engine.add_scope("org-a", "organisation", "root"),
        Err(PolicyError::DuplicateScope("org-a".into()))
    );
    assert_eq!(
        engine.add_scope("x", "building", "root"),
        Err(PolicyError::UnknownKind("building".into()))
    );
    assert_eq!(
        engine.add_scope("x", "site", "nowhere"),
        Err(PolicyError::UnknownScope("nowhere".into()))
    );
    assert_eq!(
        engine.add_scope("x", "station", "root"),
        Err(PolicyError::ParentKindNotAllowed {
            kind: "station".into(),
            parent: "root".into(),
            parent_kind: "root".into(),
        })
    );
    assert_eq!(
        engine.add_scope("x", "root", "root"),
        Err(PolicyError::RootKind)
    );
    assert!(matches!(
        engine.add_scope("", "site", "org-a"),
        Err(PolicyError::InvalidId { .. })
    ));
    assert_eq!(
        engine.check_kind_under("station", "root"),
        Err(PolicyError::ParentKindNotAllowed {
            kind: "station".into(),
            parent: "root".into(),
            parent_kind: "root".into(),
        })
    );
    assert_eq!(
        engine.check_kind_under("station", "nowhere"),
        Err(PolicyError::UnknownScope("nowhere".into()))
    );
    assert_eq!(engine.check_kind_under("station", "org-a"), Ok(()));
    let holders = engine.parent_kinds_of("station").unwrap();
    assert!(
        !holders.contains(&"root") && holders.contains(&"organisation"),
        "{holders:?}"
    );
    for kind in holders {
        let parent = engine
            .scopes()
            .find(|(_, scope_kind, _)| *scope_kind == kind)
            .map(|(id, _, _)| id.to_owned());
        if let Some(parent) = parent {
            assert_eq!(
                engine.check_kind_under("station", &parent),
                Ok(()),
                "{parent}"
            );
        }
    }
    engine.add_scope("st-org", "station", "org-a").unwrap();
    assert_eq!(engine.scope_kind("st-org"), Some("station"));
    assert_eq!(engine.scope_parent("st-org"), Some("org-a"));
    assert_eq!(engine.scope_parent("st-a1-1"), Some("site-a1"));
    let order: Vec<&str> = engine.scopes().map(|(id, _, _)| id).collect();
    assert_eq!(order.first(), Some(&"root"));
    assert_eq!(order.last(), Some(&"st-org"));
}

#[test]
fn principals_are_registered_once_with_an_existing_home() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    assert_eq!(
        engine.add_principal("alice", PrincipalKind::Driver, "org-b"),
        Err(PolicyError::DuplicatePrincipal("alice".into()))
    );
    assert_eq!(
        engine.add_principal("bob", PrincipalKind::Driver, "nowhere"),
        Err(PolicyError::UnknownScope("nowhere".into()))
    );
    assert_eq!(
        engine.principal_kind("alice"),
        Some(PrincipalKind::Operator)
    );
    assert_eq!(engine.principal_kind("system"), Some(PrincipalKind::System));
    assert_eq!(engine.home_scope("alice"), Some("org-a"));
    assert_eq!(engine.home_scope("nobody"), None);
    assert_eq!(engine.principals().collect::<Vec<_>>(), ["system", "alice"]);
}

#[test]
fn a_role_reaches_its_scope_and_descendants_only() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "site-a1").unwrap();
    for reached in ["site-a1", "st-a1-1", "st-a1-2"] {
        assert!(
            engine.check("alice", Action::ChargerView, &scope(reached)),
            "{reached}"
        );
        assert!(engine.can_see("alice", &scope(reached)), "{reached}");
    }
    for outside in ["root", "org-a", "site-a2", "st-a2-1", "org-b", "st-b1-1"] {
        assert!(
            !engine.check("alice", Action::ChargerView, &scope(outside)),
            "{outside}"
        );
        assert!(!engine.can_see("alice", &scope(outside)), "{outside}");
    }
}

#[test]
fn roles_stack_by_union() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "org-a").unwrap();
    assert!(!engine.check("alice", Action::CommandReset, &scope("st-a1-1")));
    engine.assign("alice", "technician", "site-a1").unwrap();
    assert!(engine.check("alice", Action::CommandReset, &scope("st-a1-1")));
    assert!(engine.check("alice", Action::TransactionView, &scope("st-a1-1")));
    assert!(!engine.check("alice", Action::CommandReset, &scope("st-a2-1")));
    assert!(engine.check("alice", Action::TransactionView, &scope("st-a2-1")));
}

#[test]
fn module_permissions_follow_the_closest_explicit_setting() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "org-a").unwrap();
    // analytics is off by default, billing on by default.
    assert!(!engine.check("alice", Action::TransactionExport, &scope("st-a1-1")));
    assert!(engine.check("alice", Action::AuditView, &scope("st-a1-1")));

    engine.set_module("org-a", "analytics", true).unwrap();
    engine.set_module("site-a1", "analytics", false).unwrap();
    engine.set_module("st-a1-2", "analytics", true).unwrap();
    assert!(engine.check("alice", Action::TransactionExport, &scope("org-a")));
    assert!(engine.check("alice", Action::TransactionExport, &scope("st-a2-1")));
    assert!(!engine.check("alice", Action::TransactionExport, &scope("site-a1")));
    assert!(!engine.check("alice", Action::TransactionExport, &scope("st-a1-1")));
    assert!(engine.check("alice", Action::TransactionExport, &scope("st-a1-2")));
    assert_eq!(engine.module_on("st-a1-1", "analytics"), Ok(false));
    assert_eq!(
        engine.module_setting("site-a1", "analytics"),
        Ok(Some(false))
    );
    assert_eq!(engine.module_setting("st-a1-1", "analytics"), Ok(None));

    engine.clear_module("site-a1", "analytics").unwrap();
    assert!(engine.check("alice", Action::TransactionExport, &scope("st-a1-1")));

    engine.set_module("org-a", "billing", false).unwrap();
    assert!(!engine.check("alice", Action::AuditView, &scope("st-a1-1")));
    assert!(!engine.has_permission("alice", "view-billing", "site-a2"));
    assert!(engine.has_permission("alice", "view-stations", "site-a2"));

    assert_eq!(
        engine.set_module("org-a", "nope", true),
        Err(PolicyError::UnknownModule("nope".into()))
    );
    assert_eq!(
        engine.set_module("nowhere", "billing", true),
        Err(PolicyError::UnknownScope("nowhere".into()))
    );
}

#[test]
fn scopes_only_keeps_the_tree_and_drops_every_rule() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "org-a").unwrap();
    engine.set_module("org-a", "analytics", true).unwrap();
    engine.set_module("org-a", "billing", false).unwrap();
    let bare = engine.scopes_only();
    for id in ["org-a", "site-a1", "st-a1-1", "st-a2-1"] {
        assert_eq!(bare.scope_kind(id), engine.scope_kind(id), "{id}");
    }
    assert_eq!(bare.principal_kind("alice"), None);
    // Every module back at its default: analytics off, billing on.
    assert_eq!(bare.module_setting("org-a", "analytics"), Ok(None));
    assert_eq!(bare.module_on("st-a1-1", "analytics"), Ok(false));
    assert_eq!(bare.module_on("st-a1-1", "billing"), Ok(true));
    assert_eq!(
        engine.module_on("st-a1-1", "analytics"),
        Ok(true),
        "the original keeps its"
    );
}

#[test]
fn admin_roles_hold_every_permission_their_modules_allow() {
    let mut engine = estate();
    add_operator(&mut engine, "ada", "org-a");
    engine.assign("ada", "admin", "org-a").unwrap();
    for &action in Action::ALL {
        let rule = engine.preset().action_permissions(action);
        let expected = match &rule {
            voltgate_policy::ActionRule::AdminOnly => true,
            voltgate_policy::ActionRule::AnyOf(names) => {
                names.iter().any(|name| name != "export-sessions")
            }
        };
        assert_eq!(
            engine.check("ada", action, &scope("st-a1-1")),
            expected,
            "{action} ({rule:?})"
        );
    }
    assert!(!engine.check("ada", Action::ModuleEdit, &scope("org-b")));
    engine.set_module("site-a1", "analytics", true).unwrap();
    assert!(engine.check("ada", Action::TransactionExport, &scope("st-a1-1")));
    assert!(!engine.check("ada", Action::TransactionExport, &scope("st-a2-1")));
}

#[test]
fn admin_only_actions_need_an_admin_role() {
    let mut engine = estate();
    add_operator(&mut engine, "dm", "org-a");
    engine.assign("dm", "driver-manager", "org-a").unwrap();
    assert!(!engine.check("dm", Action::ScopeEdit, &scope("org-a")));
    assert!(!engine.check("dm", Action::RoleEdit, &scope("site-a1")));
}

#[test]
fn actions_mapped_to_nothing_are_for_the_system_principal_only() {
    let mut engine = estate();
    add_operator(&mut engine, "ada", "root");
    engine.assign("ada", "admin", "root").unwrap();
    assert!(!engine.check("ada", Action::CommandSetMaxCurrent, &scope("st-a1-1")));
    assert!(engine.check("system", Action::CommandSetMaxCurrent, &scope("st-a1-1")));
}

#[test]
fn the_system_principal_passes_every_check_on_existing_resources() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "site-b1");
    for &action in Action::ALL {
        assert!(engine.check("system", action, &scope("st-a1-1")));
        assert!(engine.check("system", action, &Resource::principal("alice")));
        assert!(!engine.check("system", action, &scope("nowhere")));
        assert!(!engine.check("system", action, &Resource::principal("nobody")));
    }
    assert!(engine.has_permission("system", "manage-operators", "org-b"));
    assert!(!engine.has_permission("system", "no-such-permission", "org-b"));
    assert_eq!(engine.visible("system", "station").len(), 5);
}

#[test]
fn unknown_principals_and_resources_are_denied() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "admin", "root").unwrap();
    assert!(!engine.check("nobody", Action::ChargerView, &scope("org-a")));
    assert!(!engine.check("alice", Action::ChargerView, &scope("nowhere")));
    assert!(!engine.check(
        "alice",
        Action::PrincipalView,
        &Resource::principal("nobody")
    ));
    assert!(!engine.can_see("nobody", &scope("org-a")));
    assert!(!engine.has_permission("nobody", "view-stations", "org-a"));
    assert!(!engine.has_permission("alice", "view-stations", "nowhere"));
}

#[test]
fn blocked_principals_are_denied_everything_and_see_nothing() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "admin", "root").unwrap();
    engine.set_blocked("alice", true).unwrap();
    assert_eq!(engine.is_blocked("alice"), Some(true));
    for &action in Action::ALL {
        assert!(!engine.check("alice", action, &scope("st-a1-1")));
        assert!(!engine.check("alice", action, &Resource::principal("alice")));
    }
    assert!(!engine.can_see("alice", &scope("org-a")));
    assert!(engine.visible("alice", "station").is_empty());
    assert!(!engine.has_permission("alice", "view-stations", "org-a"));
    assert!(engine
        .can_assign("alice", "alice", "viewer", "org-a")
        .is_err());
    // Blocking keeps the assignments; unblocking restores access.
    assert_eq!(engine.assignments_of("alice").len(), 1);
    engine.set_blocked("alice", false).unwrap();
    assert!(engine.check("alice", Action::ChargerView, &scope("st-a1-1")));

    engine.set_blocked("system", true).unwrap();
    assert!(!engine.check("system", Action::ChargerView, &scope("st-a1-1")));
    assert_eq!(
        engine.set_blocked("nobody", true),
        Err(PolicyError::UnknownPrincipal("nobody".into()))
    );
}

#[test]
fn principal_resources_are_judged_at_their_home_scope() {
    let mut engine = estate();
    add_operator(&mut engine, "lead", "org-a");
    add_operator(&mut engine, "in-a1", "site-a1");
    add_operator(&mut engine, "in-a2", "site-a2");
    add_operator(&mut engine, "in-b", "org-b");
    engine.assign("lead", "operator", "site-a1").unwrap();
    assert!(engine.check("lead", Action::PrincipalView, &Resource::principal("in-a1")));
    assert!(!engine.check("lead", Action::PrincipalView, &Resource::principal("in-a2")));
    assert!(!engine.check("lead", Action::PrincipalView, &Resource::principal("in-b")));
    assert!(engine.can_see("lead", &Resource::principal("in-a1")));
    assert!(!engine.can_see("lead", &Resource::principal("in-b")));
    // lead's own home (org-a) is above its role, but it always sees and views itself.
    assert!(engine.can_see("lead", &Resource::principal("lead")));
    assert!(engine.check("lead", Action::PrincipalView, &Resource::principal("lead")));
    assert!(!engine.check("lead", Action::PrincipalEdit, &Resource::principal("lead")));
    // Someone with no role at all may still view themselves.
    assert!(engine.check("in-b", Action::PrincipalView, &Resource::principal("in-b")));
    assert!(!engine.check("in-b", Action::PrincipalView, &Resource::principal("lead")));
}

#[test]
fn roles_that_may_not_charge_never_grant_charge() {
    let mut engine = estate();
    add_operator(&mut engine, "fleet", "org-a");
    engine.assign("fleet", "fleet-operator", "org-a").unwrap();
    assert!(engine.has_permission("fleet", "start-charging", "st-a1-1"));
    assert!(!engine.check("fleet", Action::Charge, &scope("st-a1-1")));
    // The same permission still serves other actions.
    assert!(engine.check("fleet", Action::TransactionViewOwn, &scope("st-a1-1")));

    engine.assign("fleet", "driver", "site-a1").unwrap();
    assert!(engine.check("fleet", Action::Charge, &scope("st-a1-1")));
    assert!(!engine.check("fleet", Action::Charge, &scope("st-a2-1")));
}

#[test]
fn station_roles_need_their_module() {
    let mut engine = estate();
    add_operator(&mut engine, "tech", "org-a");
    assert_eq!(
        engine.assign("tech", "technician", "st-a1-1"),
        Err(PolicyError::ModuleRequired {
            role: "technician".into(),
            scope: "st-a1-1".into(),
            module: "pro".into(),
        })
    );
    // Above station level the module is not needed.
    engine.assign("tech", "technician", "site-a2").unwrap();
    assert!(engine.check("tech", Action::CommandReset, &scope("st-a2-1")));

    engine.set_module("site-a1", "pro", true).unwrap();
    engine.assign("tech", "technician", "st-a1-1").unwrap();
    assert!(engine.check("tech", Action::CommandUpdateFirmware, &scope("st-a1-1")));
    assert!(!engine.check("tech", Action::CommandUpdateFirmware, &scope("st-a1-2")));

    // Switching the module off makes the station assignment inert, not forgotten.
    engine.set_module("site-a1", "pro", false).unwrap();
    assert!(!engine.check("tech", Action::CommandUpdateFirmware, &scope("st-a1-1")));
    assert!(!engine.has_permission("tech", "configure-stations", "st-a1-1"));
    assert!(engine.check("tech", Action::CommandReset, &scope("st-a2-1")));
    assert_eq!(engine.assignments_of("tech").len(), 2);
    engine.set_module("st-a1-1", "pro", true).unwrap();
    assert!(engine.check("tech", Action::CommandUpdateFirmware, &scope("st-a1-1")));
}

#[test]
fn roles_are_assignable_only_on_their_kinds() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    assert_eq!(
        engine.assign("alice", "operator", "st-a1-1"),
        Err(PolicyError::RoleNotAssignable {
            role: "operator".into(),
            scope: "st-a1-1".into(),
            kind: "station".into(),
        })
    );
    assert_eq!(
        engine.assign("alice", "nope", "org-a"),
        Err(PolicyError::UnknownRole("nope".into()))
    );
    assert_eq!(
        engine.assign("nobody", "viewer", "org-a"),
        Err(PolicyError::UnknownPrincipal("nobody".into()))
    );
    assert_eq!(
        engine.assign("alice", "viewer", "nowhere"),
        Err(PolicyError::UnknownScope("nowhere".into()))
    );
    assert!(engine.assignments_of("alice").is_empty());
}

#[test]
fn assignments_are_recorded_idempotently_and_removable() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "site-a2").unwrap();
    engine.assign("alice", "operator", "site-a1").unwrap();
    engine.assign("alice", "viewer", "site-a1").unwrap();
    engine.assign("alice", "viewer", "site-a1").unwrap();
    assert_eq!(
        engine.assignments_of("alice"),
        [
            ("operator".to_owned(), "site-a1".to_owned()),
            ("viewer".to_owned(), "site-a1".to_owned()),
            ("viewer".to_owned(), "site-a2".to_owned()),
        ]
    );
    assert_eq!(engine.unassign("alice", "operator", "site-a1"), Ok(true));
    assert_eq!(engine.unassign("alice", "operator", "site-a1"), Ok(false));
    assert_eq!(engine.unassign("alice", "viewer", "org-b"), Ok(false));
    assert!(!engine.check("alice", Action::CommandUnlock, &scope("st-a1-1")));
    assert!(engine.check("alice", Action::ChargerView, &scope("st-a1-1")));
    assert_eq!(engine.unassign("alice", "viewer", "site-a1"), Ok(true));
    assert!(!engine.check("alice", Action::ChargerView, &scope("st-a1-1")));
    assert_eq!(engine.assignments_of("alice").len(), 1);
    assert!(engine.assignments_of("nobody").is_empty());
    assert_eq!(
        engine.unassign("alice", "nope", "site-a1"),
        Err(PolicyError::UnknownRole("nope".into()))
    );
}

#[test]
fn effective_permissions_list_what_applies_at_a_scope() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "site-a1").unwrap();
    assert_eq!(
        engine.effective_permissions("alice", "st-a1-1"),
        ["view-stations", "view-sessions", "view-billing"]
    );
    engine.set_module("org-a", "analytics", true).unwrap();
    assert_eq!(
        engine.effective_permissions("alice", "st-a1-1"),
        [
            "view-stations",
            "view-sessions",
            "export-sessions",
            "view-billing"
        ]
    );
    assert!(engine.effective_permissions("alice", "org-b").is_empty());
}

#[test]
fn visible_lists_scopes_of_a_kind_in_creation_order() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "site-a1").unwrap();
    engine.assign("alice", "viewer", "org-a-sub").unwrap();
    engine.assign("alice", "viewer", "st-a1-2").unwrap();
    assert_eq!(
        engine.visible("alice", "station"),
        ["st-a1-1", "st-a1-2", "st-as1-1"]
    );
    assert_eq!(engine.visible("alice", "site"), ["site-a1", "site-as1"]);
    assert_eq!(engine.visible("alice", "organisation"), ["org-a-sub"]);
    assert!(engine.visible("alice", "root").is_empty());
    assert!(engine.visible("alice", "building").is_empty());
    assert!(engine.visible("nobody", "station").is_empty());
    assert_eq!(engine.visible("system", "root"), ["root"]);
}

#[test]
fn upward_visibility_shows_ancestors_but_not_their_other_descendants() {
    let options = FixtureOptions {
        upward_visibility: true,
        ..FixtureOptions::default()
    };
    let mut engine = fixture_estate(options);
    add_operator(&mut engine, "alice", "org-a");
    add_operator(&mut engine, "at-org", "org-a");
    engine.assign("alice", "viewer", "site-as1").unwrap();
    assert_eq!(
        engine.visible("alice", "organisation"),
        ["org-a", "org-a-sub"]
    );
    assert_eq!(engine.visible("alice", "site"), ["site-as1"]);
    assert_eq!(engine.visible("alice", "station"), ["st-as1-1"]);
    assert_eq!(engine.visible("alice", "root"), ["root"]);
    assert!(engine.can_see("alice", &scope("org-a")));
    assert!(!engine.can_see("alice", &scope("site-a1")));
    assert!(engine.can_see("alice", &Resource::principal("at-org")));
    // Seeing an ancestor is not acting on it.
    assert!(!engine.check("alice", Action::ChargerView, &scope("org-a")));

    let plain = estate();
    assert!(!plain.preset().upward_visibility());
}

#[test]
fn who_can_lists_allowed_principals_sorted() {
    let mut engine = estate();
    add_operator(&mut engine, "zed", "org-a");
    add_operator(&mut engine, "amy", "org-a");
    add_operator(&mut engine, "bob", "org-b");
    add_operator(&mut engine, "cat", "org-a");
    engine.assign("zed", "viewer", "site-a1").unwrap();
    engine.assign("amy", "viewer", "org-a").unwrap();
    engine.assign("bob", "viewer", "org-b").unwrap();
    engine.assign("cat", "viewer", "org-a").unwrap();
    engine.set_blocked("cat", true).unwrap();
    assert_eq!(
        engine.who_can(Action::ChargerView, &scope("st-a1-1")),
        ["amy", "system", "zed"]
    );
    assert_eq!(
        engine.who_can(Action::ChargerView, &scope("st-b1-1")),
        ["bob", "system"]
    );
    assert!(engine
        .who_can(Action::ChargerView, &scope("nowhere"))
        .is_empty());
}

#[test]
fn explain_names_the_assignment_and_permission_used() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "org-a").unwrap();
    engine.assign("alice", "technician", "site-a1").unwrap();
    let decision = engine.explain("alice", Action::CommandReset, &scope("st-a1-1"));
    assert!(decision.allowed);
    assert_eq!(
        decision.evidence.finding,
        Finding::Permission {
            permission: "operate-stations".into(),
            role: "technician".into(),
            held_on: "site-a1".into(),
        }
    );
    assert_eq!(decision.evidence.judged_at.as_deref(), Some("st-a1-1"));
    assert_eq!(
        decision.reason,
        "`alice` may do `command.reset` on scope `st-a1-1` because role `technician` held on `site-a1` grants `operate-stations` at `st-a1-1`."
    );

    let json = serde_json::to_value(&decision).unwrap();
    assert_eq!(json["allowed"], true);
    assert_eq!(json["evidence"]["finding"]["kind"], "permission");
    assert_eq!(json["evidence"]["finding"]["role"], "technician");
    assert_eq!(json["evidence"]["finding"]["held_on"], "site-a1");
    assert_eq!(json["evidence"]["judged_at"], "st-a1-1");
    assert_eq!(json["evidence"]["action"], "command.reset");
    assert_eq!(json["evidence"]["resource"]["type"], "scope");
    assert_eq!(
        json["evidence"]["requires"]["any-of"][1],
        "configure-stations"
    );
}

#[test]
fn explain_says_where_and_why_a_permission_is_missing() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "org-a").unwrap();
    let decision = engine.explain("alice", Action::TransactionExport, &scope("st-a1-1"));
    assert!(!decision.allowed);
    assert_eq!(
        decision.evidence.finding,
        Finding::Missing {
            modules_off: vec!["analytics".into()],
            roles_without_charging: vec![],
        }
    );
    assert!(
        decision.reason.contains("`export-sessions`"),
        "{}",
        decision.reason
    );
    assert!(
        decision.reason.contains("`analytics`"),
        "{}",
        decision.reason
    );

    let decision = engine.explain("alice", Action::CommandReset, &scope("st-a1-1"));
    assert!(decision
        .reason
        .contains("one of `operate-stations`, `configure-stations`"));

    add_operator(&mut engine, "fleet", "org-a");
    engine.assign("fleet", "fleet-operator", "org-a").unwrap();
    let decision = engine.explain("fleet", Action::Charge, &scope("st-a1-1"));
    assert_eq!(
        decision.evidence.finding,
        Finding::Missing {
            modules_off: vec![],
            roles_without_charging: vec!["fleet-operator".into()],
        }
    );
}

#[test]
fn explain_covers_every_kind_of_finding() {
    let mut engine = estate();
    add_operator(&mut engine, "ada", "org-a");
    add_operator(&mut engine, "blocked", "org-a");
    add_operator(&mut engine, "other", "org-b");
    engine.assign("ada", "admin", "org-a").unwrap();
    engine.set_blocked("blocked", true).unwrap();

    let cases = [
        (
            "system",
            Action::ChargerView,
            scope("st-a1-1"),
            Finding::SystemPrincipal,
            true,
        ),
        (
            "ada",
            Action::PrincipalView,
            Resource::principal("ada"),
            Finding::OwnRecord,
            true,
        ),
        (
            "ada",
            Action::ModuleEdit,
            scope("site-a1"),
            Finding::AdminRole {
                role: "admin".into(),
                held_on: "org-a".into(),
                permission: None,
            },
            true,
        ),
        (
            "ada",
            Action::ChargerView,
            scope("site-a1"),
            Finding::AdminRole {
                role: "admin".into(),
                held_on: "org-a".into(),
                permission: Some("view-stations".into()),
            },
            true,
        ),
        (
            "nobody",
            Action::ChargerView,
            scope("org-a"),
            Finding::UnknownPrincipal,
            false,
        ),
        (
            "blocked",
            Action::PrincipalView,
            Resource::principal("blocked"),
            Finding::Blocked,
            false,
        ),
        (
            "ada",
            Action::ChargerView,
            scope("nowhere"),
            Finding::UnknownResource,
            false,
        ),
        (
            "ada",
            Action::PrincipalView,
            Resource::principal("other"),
            Finding::Invisible,
            false,
        ),
        (
            "ada",
            Action::CommandSetMaxCurrent,
            scope("org-a"),
            Finding::SystemOnly,
            false,
        ),
        (
            "ada",
            Action::ModuleEdit,
            scope("org-b"),
            Finding::AdminRequired,
            false,
        ),
    ];
    for (principal, action, resource, finding, allowed) in cases {
        let decision = engine.explain(principal, action, &resource);
        assert_eq!(
            decision.evidence.finding, finding,
            "{principal} {action} {resource}"
        );
        assert_eq!(decision.allowed, allowed, "{principal} {action} {resource}");
        assert_eq!(engine.check(principal, action, &resource), allowed);
        assert!(decision.reason.ends_with('.'), "{}", decision.reason);
        assert!(!decision.reason.contains('\n'));
        assert!(
            decision.reason.contains(principal)
                || finding == Finding::SystemOnly
                || finding == Finding::UnknownResource
        );
    }
}

#[test]
fn system_may_grant_anything_assignable() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-b");
    assert_eq!(
        engine.can_assign("system", "alice", "admin", "org-a"),
        Ok(())
    );
    assert_eq!(
        engine.can_assign("system", "alice", "viewer", "st-a1-1"),
        Ok(())
    );
    let denial = engine
        .can_assign("system", "alice", "operator", "st-a1-1")
        .unwrap_err();
    assert_eq!(denial.code, DenialCode::NotAssignableHere);
    let denial = engine
        .can_assign("system", "alice", "technician", "st-a1-1")
        .unwrap_err();
    assert_eq!(denial.code, DenialCode::ModuleRequired);
    assert!(denial.to_string().contains("`pro`"));
}

#[test]
fn grants_need_existing_visible_parties() {
    let mut engine = estate();
    add_operator(&mut engine, "lead", "org-a");
    add_operator(&mut engine, "far", "org-b");
    add_operator(&mut engine, "near", "site-a1");
    engine.assign("lead", "driver-manager", "org-a").unwrap();
    let code = |result: Result<(), voltgate_policy::Denial>| result.unwrap_err().code;
    assert_eq!(
        code(engine.can_assign("nobody", "near", "viewer", "org-a")),
        DenialCode::UnknownGranter
    );
    assert_eq!(
        code(engine.can_assign("lead", "nobody", "viewer", "org-a")),
        DenialCode::UnknownPrincipal
    );
    assert_eq!(
        code(engine.can_assign("lead", "near", "nope", "org-a")),
        DenialCode::UnknownRole
    );
    assert_eq!(
        code(engine.can_assign("lead", "near", "viewer", "nowhere")),
        DenialCode::UnknownScope
    );
    assert_eq!(
        code(engine.can_assign("lead", "far", "viewer", "org-a")),
        DenialCode::PrincipalInvisible
    );
    assert_eq!(engine.can_assign("lead", "near", "viewer", "org-a"), Ok(()));
    engine.set_blocked("lead", true).unwrap();
    assert_eq!(
        code(engine.can_assign("lead", "near", "viewer", "org-a")),
        DenialCode::GranterBlocked
    );
}

#[test]
fn granted_by_permissions_give_authority_only_where_held() {
    let mut engine = estate();
    add_operator(&mut engine, "op", "org-a");
    add_operator(&mut engine, "new", "org-a");
    engine.assign("op", "operator", "site-a1").unwrap();
    engine.assign("op", "viewer", "org-a").unwrap();
    assert_eq!(engine.can_assign("op", "new", "viewer", "site-a1"), Ok(()));
    assert_eq!(engine.can_assign("op", "new", "viewer", "st-a1-1"), Ok(()));
    let denial = engine
        .can_assign("op", "new", "viewer", "site-a2")
        .unwrap_err();
    assert_eq!(denial.code, DenialCode::NoAuthority);
    assert!(denial.reason.contains("`invite-viewer`"), "{denial}");
    // Roles without granted_by are for admins only.
    let denial = engine
        .can_assign("op", "new", "driver-manager", "org-a")
        .unwrap_err();
    assert_eq!(denial.code, DenialCode::NoAuthority);
    assert!(denial.reason.contains("Only admin roles"), "{denial}");
}

#[test]
fn no_one_grants_permissions_they_lack() {
    let mut engine = estate();
    add_operator(&mut engine, "dm", "org-a");
    add_operator(&mut engine, "new", "org-a");
    engine.assign("dm", "driver-manager", "org-a").unwrap();
    // driver-manager holds everything an operator has ...
    assert_eq!(
        engine.can_assign("dm", "new", "operator", "site-a1"),
        Ok(())
    );
    // ... but not configure-stations, which a technician carries.
    let denial = engine
        .can_assign("dm", "new", "technician", "site-a1")
        .unwrap_err();
    assert_eq!(denial.code, DenialCode::Escalation);
    assert!(denial.reason.contains("`configure-stations`"), "{denial}");
    // The same applies to removing the role.
    engine.assign("new", "technician", "site-a1").unwrap();
    assert_eq!(
        engine
            .can_unassign("dm", "new", "technician", "site-a1")
            .unwrap_err()
            .code,
        DenialCode::Escalation
    );
    assert_eq!(
        engine.can_unassign("system", "new", "technician", "site-a1"),
        Ok(())
    );
}

#[test]
fn escalation_counts_modules_switched_on_below_the_scope() {
    let mut engine = custom_estate();
    add_operator(&mut engine, "lead", "org-a");
    add_operator(&mut engine, "new", "org-a");
    // The viewer's permissions minus export-sessions, plus the right to invite viewers.
    engine
        .define_role(
            "operator-lite",
            "Operator lite",
            &strings(&[
                "view-stations",
                "view-sessions",
                "view-billing",
                "invite-viewer",
            ]),
        )
        .unwrap();
    engine.assign("lead", "operator-lite", "org-a").unwrap();
    // analytics is off at org-a, so export-sessions is not effective there ...
    assert_eq!(engine.can_assign("lead", "new", "viewer", "org-a"), Ok(()));
    // ... until a scope below switches it on: then viewer would give it there.
    engine.set_module("st-a1-1", "analytics", true).unwrap();
    let denial = engine
        .can_assign("lead", "new", "viewer", "org-a")
        .unwrap_err();
    assert_eq!(denial.code, DenialCode::Escalation);
    assert!(denial.reason.contains("`export-sessions`"), "{denial}");
    assert_eq!(
        engine.can_assign("lead", "new", "viewer", "site-a2"),
        Ok(())
    );
}

#[test]
fn allow_escalation_lets_a_granter_hand_out_what_it_lacks() {
    let mut engine = estate();
    add_operator(&mut engine, "op", "org-a");
    add_operator(&mut engine, "new", "org-a");
    engine.assign("op", "operator", "org-a").unwrap();
    assert!(!engine.has_permission("op", "configure-stations", "site-a1"));
    assert_eq!(engine.can_assign("op", "new", "helper", "site-a1"), Ok(()));
}

#[test]
fn admin_roles_are_granted_only_by_admins_whose_reach_covers_the_scope() {
    let mut engine = estate();
    add_operator(&mut engine, "ada", "org-a");
    add_operator(&mut engine, "dm", "org-a");
    add_operator(&mut engine, "new", "org-a-sub");
    engine.assign("ada", "admin", "org-a").unwrap();
    engine.assign("dm", "driver-manager", "org-a").unwrap();
    assert_eq!(
        engine.can_assign("ada", "new", "admin", "org-a-sub"),
        Ok(())
    );
    assert_eq!(
        engine.can_assign("ada", "new", "technician", "site-a1"),
        Ok(())
    );
    assert_eq!(
        engine
            .can_assign("ada", "new", "admin", "root")
            .unwrap_err()
            .code,
        DenialCode::AdminRoleRequired
    );
    assert_eq!(
        engine
            .can_assign("dm", "new", "admin", "org-a-sub")
            .unwrap_err()
            .code,
        DenialCode::AdminRoleRequired
    );
}

#[test]
fn unassign_needs_an_existing_assignment_and_authority() {
    let mut engine = estate();
    add_operator(&mut engine, "op", "org-a");
    add_operator(&mut engine, "new", "site-a1");
    engine.assign("op", "operator", "site-a1").unwrap();
    assert_eq!(
        engine
            .can_unassign("op", "new", "viewer", "site-a1")
            .unwrap_err()
            .code,
        DenialCode::NotHeld
    );
    engine.assign("new", "viewer", "site-a1").unwrap();
    engine.assign("new", "viewer", "site-a2").unwrap();
    assert_eq!(
        engine.can_unassign("op", "new", "viewer", "site-a1"),
        Ok(())
    );
    assert_eq!(
        engine
            .can_unassign("op", "new", "viewer", "site-a2")
            .unwrap_err()
            .code,
        DenialCode::NoAuthority
    );
}

#[test]
fn custom_roles_need_a_preset_that_allows_them() {
    let mut engine = estate();
    assert_eq!(
        engine.define_role("support", "Support", &strings(&["view-stations"])),
        Err(PolicyError::CustomRolesDisabled {
            preset: "fixture".into()
        })
    );
    assert!(engine.role("support").is_none());
}

#[test]
fn custom_roles_refuse_admin_permissions_and_admin_role_names() {
    let mut engine = custom_estate();
    assert_eq!(
        engine.define_role(
            "support",
            "Support",
            &strings(&["view-stations", "manage-operators"])
        ),
        Err(PolicyError::AdminPermissionInCustomRole {
            role: "support".into(),
            permission: "manage-operators".into(),
        })
    );
    assert_eq!(
        engine.define_role("support", "Support", &strings(&["admin"])),
        Err(PolicyError::AdminRoleInCustomRole {
            role: "support".into(),
            admin_role: "admin".into(),
        })
    );
    assert_eq!(
        engine.define_role("admin", "Admin", &strings(&["view-stations"])),
        Err(PolicyError::AdminRoleName {
            role: "admin".into(),
            name: "admin".into(),
        })
    );
    assert_eq!(
        engine.define_role("boss", "administrator", &strings(&["view-stations"])),
        Err(PolicyError::AdminRoleName {
            role: "boss".into(),
            name: "Administrator".into(),
        })
    );
    assert_eq!(
        engine.define_role("viewer", "Viewer 2", &strings(&["view-stations"])),
        Err(PolicyError::DuplicateRole("viewer".into()))
    );
    assert_eq!(
        engine.define_role("support", "Support", &strings(&["fly"])),
        Err(PolicyError::UnknownPermission("fly".into()))
    );
    assert!(matches!(
        engine.define_role("Support Team", "Support", &strings(&["view-stations"])),
        Err(PolicyError::InvalidId { .. })
    ));
    assert!(engine.role("support").is_none());
    let message = PolicyError::AdminPermissionInCustomRole {
        role: "support".into(),
        permission: "manage-operators".into(),
    }
    .to_string();
    assert_eq!(
        message,
        "custom role `support` cannot contain admin permission `manage-operators`"
    );
}

#[test]
fn custom_roles_work_like_preset_roles_and_only_admins_grant_them() {
    let mut engine = custom_estate();
    engine
        .define_role(
            "support",
            "Customer support",
            &strings(&["view-stations", "operate-stations"]),
        )
        .unwrap();
    let role = engine.role("support").unwrap();
    assert!(role.custom);
    assert!(!role.admin);
    assert_eq!(role.permissions, ["view-stations", "operate-stations"]);
    assert_eq!(
        role.assignable_on,
        ["root", "organisation", "site", "station"]
    );
    assert_eq!(
        engine.roles().last().map(|role| role.id.as_str()),
        Some("support")
    );
    // The preset itself is unchanged.
    assert!(engine.preset().role("support").is_none());

    add_operator(&mut engine, "ada", "org-a");
    add_operator(&mut engine, "dm", "org-a");
    add_operator(&mut engine, "cs", "org-a");
    engine.assign("ada", "admin", "org-a").unwrap();
    engine.assign("dm", "driver-manager", "org-a").unwrap();
    assert_eq!(engine.can_assign("ada", "cs", "support", "st-a1-1"), Ok(()));
    assert_eq!(
        engine
            .can_assign("dm", "cs", "support", "site-a1")
            .unwrap_err()
            .code,
        DenialCode::NoAuthority
    );
    engine.assign("cs", "support", "site-a1").unwrap();
    assert!(engine.check("cs", Action::CommandRemoteStart, &scope("st-a1-2")));
    assert!(!engine.check("cs", Action::CommandRemoteStart, &scope("st-a2-1")));
}

#[test]
fn engines_and_presets_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Engine>();
    shareable::<voltgate_policy::Preset>();
    let engine = estate();
    let copy = engine.clone();
    let handle =
        std::thread::spawn(move || copy.check("system", Action::ChargerView, &scope("org-a")));
    assert!(handle.join().unwrap());
}

#[test]
fn evidence_recomputes_the_same_reason() {
    let mut engine = estate();
    add_operator(&mut engine, "alice", "org-a");
    engine.assign("alice", "viewer", "site-a1").unwrap();
    for resource in [
        scope("st-a1-1"),
        scope("st-b1-1"),
        Resource::principal("alice"),
    ] {
        let decision = engine.explain("alice", Action::ChargerView, &resource);
        assert_eq!(decision.evidence.reason(), decision.reason);
    }
}

/// `connect`: site-a with sub-site a1 and a station in each, site-b with one; a driver on
/// site-a, one on a1, one on the root, one on site-b, and a global admin homed on site-a.
fn card_estate() -> Engine {
    let mut engine = Engine::new(voltgate_policy::Preset::builtin("connect").unwrap());
    engine.add_scope("site-a", "site", "root").unwrap();
    engine.add_scope("a1", "site", "site-a").unwrap();
    engine.add_scope("site-b", "site", "root").unwrap();
    engine.add_scope("CP-A", "station", "site-a").unwrap();
    engine.add_scope("CP-A1", "station", "a1").unwrap();
    engine.add_scope("CP-B", "station", "site-b").unwrap();
    engine
        .define_role("driver", "Driver", &["charge-at-sites".to_owned()])
        .unwrap();
    for (id, home, role, at) in [
        ("ann", "site-a", "driver", "site-a"),
        ("al", "a1", "driver", "a1"),
        ("rita", "root", "driver", "root"),
        ("bob", "site-b", "driver", "site-b"),
        ("gus", "site-a", "global-admin", "root"),
    ] {
        engine
            .add_principal(id, PrincipalKind::Driver, home)
            .unwrap();
        engine.assign(id, role, at).unwrap();
    }
    engine
}

#[test]
fn check_unblocked_answers_as_check_would_without_the_block() {
    let mut engine = card_estate();
    engine.set_blocked("ann", true).unwrap();
    assert!(!engine.check("ann", Action::Charge, &scope("CP-A")));
    assert!(engine.check_unblocked("ann", Action::Charge, &scope("CP-A")));
    assert!(!engine.check_unblocked("ann", Action::Charge, &scope("CP-B")));
    assert!(!engine.check_unblocked("bob", Action::Charge, &scope("CP-A")));
    assert!(engine.check_unblocked("bob", Action::Charge, &scope("CP-B")));
    assert!(!engine.check_unblocked("nobody", Action::Charge, &scope("CP-B")));
}

#[test]
fn reach_within_holds_only_when_every_role_lies_in_the_subtree() {
    let mut engine = card_estate();
    assert!(engine.reach_within("ann", "site-a"));
    assert!(!engine.reach_within("ann", "a1"), "site-a is above a1");
    assert!(engine.reach_within("al", "site-a"));
    assert!(engine.reach_within("al", "a1"));
    assert!(!engine.reach_within("rita", "site-a"), "a root role");
    assert!(
        !engine.reach_within("gus", "site-a"),
        "homed on site-a, role on root"
    );
    assert!(!engine.reach_within("bob", "site-a"));
    assert!(engine.reach_within("bob", "root"));
    assert!(!engine.reach_within("ann", "nowhere"));
    engine.assign("al", "driver", "site-b").unwrap();
    assert!(
        !engine.reach_within("al", "site-a"),
        "one role outside is enough"
    );
}
