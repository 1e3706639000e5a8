//! One test per reported role-engine finding, named after it, run against the shipped presets.
//!
//! Each test states what the finding tried and what the seed page says must happen instead;
//! each failed on the engine before its fix.

use voltgate_policy::{Action, DenialCode, Engine, Preset, PrincipalKind, Resource};

fn engine(preset: &str) -> Engine {
    Engine::new(Preset::builtin(preset).expect("builtin preset loads"))
}

fn scopes(engine: &mut Engine, tree: &[(&str, &str, &str)]) {
    for (id, kind, parent) in tree {
        engine.add_scope(id, kind, parent).expect("scope added");
    }
}

/// Adds an operator at home on `scope` holding `role` there.
fn holder(engine: &mut Engine, id: &str, role: &str, scope: &str) {
    engine
        .add_principal(id, PrincipalKind::Operator, scope)
        .expect("principal added");
    engine.assign(id, role, scope).expect("role assigned");
}

fn at(id: &str) -> Resource {
    Resource::scope(id)
}

fn code(result: Result<(), voltgate_policy::Denial>) -> Option<DenialCode> {
    result.err().map(|denial| denial.code)
}

/// Assigns when the engine allows it, as the gateway does; returns whether it did.
fn try_assign(
    engine: &mut Engine,
    granter: &str,
    principal: &str,
    role: &str,
    scope: &str,
) -> bool {
    if engine.can_assign(granter, principal, role, scope).is_err() {
        return false;
    }
    engine
        .assign(principal, role, scope)
        .expect("allowed grant applies");
    true
}

fn tenant() -> Engine {
    let mut engine = engine("tenant");
    scopes(
        &mut engine,
        &[
            ("t", "tenant", "root"),
            ("a1", "account", "t"),
            ("st-a1", "station", "a1"),
        ],
    );
    engine
}

// ----- #20.1: self-assignment through escalating grants ------------------------------------

#[test]
fn tenant_customer_support_cannot_assign_itself_account_roles_and_chain_them() {
    let mut engine = tenant();
    holder(&mut engine, "support", "customer-support", "t");
    holder(&mut engine, "colleague", "customer-support", "t");
    // Inviting an account owner still works for someone else: the seed's cell.
    assert_eq!(
        engine.can_assign("support", "colleague", "account-owner", "a1"),
        Ok(())
    );
    assert_eq!(
        code(engine.can_assign("support", "support", "account-owner", "a1")),
        Some(DenialCode::SelfEscalation)
    );
    assert!(!try_assign(
        &mut engine,
        "support",
        "support",
        "account-owner",
        "a1"
    ));
    assert!(!try_assign(
        &mut engine,
        "support",
        "support",
        "account-station-admin",
        "a1"
    ));
    for action in [
        Action::CommandChangeConfiguration,
        Action::CommandSetMaxCurrent,
    ] {
        assert!(
            !engine.check("support", action, &at("st-a1")),
            "customer support reached {action}"
        );
    }
}

#[test]
fn tenant_admin_cannot_reach_set_max_current_through_its_own_invitations() {
    let mut engine = tenant();
    holder(&mut engine, "admin", "tenant-admin", "t");
    assert!(!engine.check("admin", Action::CommandSetMaxCurrent, &at("st-a1")));
    for role in ["account-owner", "account-station-admin", "account-admin"] {
        assert!(
            !try_assign(&mut engine, "admin", "admin", role, "a1"),
            "{role}"
        );
    }
    assert!(!engine.check("admin", Action::CommandSetMaxCurrent, &at("st-a1")));
}

#[test]
fn tenant_account_admin_cannot_assign_itself_account_station_admin() {
    let mut engine = tenant();
    holder(&mut engine, "aa", "account-admin", "a1");
    holder(&mut engine, "other", "account-admin", "a1");
    assert_eq!(
        engine.can_assign("aa", "other", "account-station-admin", "a1"),
        Ok(())
    );
    assert_eq!(
        code(engine.can_assign("aa", "aa", "account-station-admin", "a1")),
        Some(DenialCode::SelfEscalation)
    );
}

#[test]
fn virta_financial_support_cannot_assign_itself_viewer_controls() {
    let mut engine = engine("virta");
    scopes(
        &mut engine,
        &[("org", "organisation", "root"), ("st", "station", "org")],
    );
    holder(&mut engine, "fin", "financial-support", "org");
    assert!(!engine.check("fin", Action::CommandReset, &at("st")));
    assert_eq!(
        code(engine.can_assign("fin", "fin", "viewer", "org")),
        Some(DenialCode::SelfEscalation)
    );
    assert!(!try_assign(&mut engine, "fin", "fin", "viewer", "org"));
    assert!(!engine.check("fin", Action::CommandReset, &at("st")));
}

#[test]
fn multi_account_admin_cannot_assign_itself_a_role_that_charges() {
    let mut engine = engine("multi-account");
    scopes(
        &mut engine,
        &[
            ("op", "operator", "root"),
            ("acc", "account", "op"),
            ("st", "station", "acc"),
        ],
    );
    holder(&mut engine, "mam", "multi-account-admin", "acc");
    holder(&mut engine, "user", "account-agent", "acc");
    assert_eq!(
        engine.can_assign("mam", "user", "account-viewer", "acc"),
        Ok(())
    );
    assert_eq!(
        code(engine.can_assign("mam", "mam", "account-viewer", "acc")),
        Some(DenialCode::SelfEscalation)
    );
    assert!(!try_assign(
        &mut engine,
        "mam",
        "mam",
        "account-viewer",
        "acc"
    ));
    assert!(!engine.check("mam", Action::Charge, &at("st")));
}

#[test]
fn a_self_grant_that_adds_nothing_is_still_allowed() {
    let mut engine = engine("virta");
    scopes(&mut engine, &[("org", "organisation", "root")]);
    holder(&mut engine, "boss", "administrator", "org");
    // The Administrator already holds everything a Viewer does, and no role charges here.
    assert_eq!(engine.can_assign("boss", "boss", "viewer", "org"), Ok(()));
}

// ----- #20.6: tenant support staff delete customers ----------------------------------------

#[test]
fn tenant_customer_support_blocks_but_neither_deletes_customers_nor_strips_their_roles() {
    let mut engine = tenant();
    holder(&mut engine, "support", "customer-support", "t");
    holder(&mut engine, "admin", "tenant-admin", "t");
    holder(&mut engine, "owner", "account-owner", "a1");
    let owner = Resource::principal("owner");
    // "Block customers" is ticked for Customer support.
    assert!(engine.check("support", Action::PrincipalEdit, &owner));
    // "Delete customers" and "Edit customer roles" are ticked for Tenant admin only.
    assert!(!engine.check("support", Action::PrincipalDelete, &owner));
    assert!(engine.check("admin", Action::PrincipalDelete, &owner));
    assert_eq!(
        code(engine.can_unassign("support", "owner", "account-owner", "a1")),
        Some(DenialCode::NoAuthority)
    );
    assert_eq!(
        engine.can_unassign("admin", "owner", "account-owner", "a1"),
        Ok(())
    );
}

#[test]
fn tenant_support_agent_cannot_delete_drivers() {
    let mut engine = tenant();
    holder(&mut engine, "agent", "support-agent", "t");
    holder(&mut engine, "admin", "tenant-admin", "t");
    engine
        .add_principal("dora", PrincipalKind::Driver, "a1")
        .unwrap();
    let dora = Resource::principal("dora");
    assert!(engine.check("agent", Action::DriverEdit, &dora));
    assert!(!engine.check("agent", Action::DriverDelete, &dora));
    assert!(engine.check("admin", Action::DriverDelete, &dora));
}

// ----- #20.2: virta's paid-module switch ----------------------------------------------------

fn virta_orgs() -> Engine {
    let mut engine = engine("virta");
    scopes(
        &mut engine,
        &[
            ("org", "organisation", "root"),
            ("sub", "organisation", "org"),
            ("st", "station", "sub"),
        ],
    );
    engine
}

#[test]
fn virta_sub_organisation_module_editors_switch_only_below_their_own_organisation() {
    let mut engine = virta_orgs();
    holder(&mut engine, "boss", "administrator", "org");
    holder(&mut engine, "charging", "charging-manager", "org");
    holder(&mut engine, "drivers", "driver-manager", "org");
    // The administrator switched a module off for the organisation.
    assert_eq!(
        engine.can_set_module("boss", "org", "station-management-find", false),
        Ok(())
    );
    engine
        .set_module("org", "station-management-find", false)
        .unwrap();
    engine.set_module("org", "solar", true).unwrap();
    for manager in ["charging", "drivers"] {
        for (module, on) in [
            ("station-management-find", true),
            ("general-navigation-alerts", false),
            ("solar", false),
        ] {
            assert_eq!(
                code(engine.can_set_module(manager, "org", module, on)),
                Some(DenialCode::NoAuthority),
                "{manager} switched {module} on its own organisation"
            );
        }
        // Strictly below: an unpaid module of the sub-organisation.
        assert_eq!(
            engine.can_set_module(manager, "sub", "general-navigation-alerts", false),
            Ok(())
        );
        // Never a paid one.
        assert_eq!(
            code(engine.can_set_module(manager, "sub", "solar", false)),
            Some(DenialCode::NoAuthority)
        );
    }
}

#[test]
fn virta_paid_modules_only_by_the_activator_and_never_beyond_the_parent() {
    let mut engine = virta_orgs();
    holder(&mut engine, "payer", "paid-module-activator", "org");
    holder(&mut engine, "subpayer", "paid-module-activator", "sub");
    assert_eq!(engine.can_set_module("payer", "org", "solar", true), Ok(()));
    // The activator switches paid modules only.
    assert_eq!(
        code(engine.can_set_module("payer", "org", "general-navigation-alerts", false)),
        Some(DenialCode::NoAuthority)
    );
    // A sub-organisation cannot buy what its parent lacks, whoever asks.
    for who in ["subpayer", "payer"] {
        assert_eq!(
            code(engine.can_set_module(who, "sub", "solar", true)),
            Some(DenialCode::ParentLacksModule),
            "{who}"
        );
    }
    // Even a switch written directly does not give the child what the parent lacks.
    engine.set_module("sub", "solar", true).unwrap();
    assert_eq!(engine.module_on("sub", "solar"), Ok(false));
    engine.set_module("org", "solar", true).unwrap();
    assert_eq!(engine.module_on("sub", "solar"), Ok(true));
    assert_eq!(
        engine.can_set_module("subpayer", "sub", "solar", false),
        Ok(())
    );
}

// ----- #20.10: zaptec's product line belongs to the installation ---------------------------

#[test]
fn zaptec_pro_is_switched_on_installations_only_even_by_the_system() {
    let mut engine = engine("zaptec");
    scopes(
        &mut engine,
        &[("go", "installation", "root"), ("go-1", "station", "go")],
    );
    engine
        .add_principal("gateway", PrincipalKind::System, "root")
        .unwrap();
    assert_eq!(
        code(engine.can_set_module("gateway", "go-1", "pro", true)),
        Some(DenialCode::NotSwitchableHere)
    );
    assert!(engine.set_module("go-1", "pro", true).is_err());
    assert_eq!(engine.module_on("go-1", "pro"), Ok(false));
    assert_eq!(engine.can_set_module("gateway", "go", "pro", true), Ok(()));
}

// ----- #14.6: deep trees stall everything ---------------------------------------------------

#[test]
fn scope_depth_and_subtree_size_are_limited_by_the_engine() {
    let mut engine = engine("connect");
    engine.set_scope_limits(voltgate_policy::ScopeLimits {
        max_depth: 3,
        max_subtree_scopes: 5,
    });
    scopes(
        &mut engine,
        &[
            ("s1", "site", "root"),
            ("s2", "site", "s1"),
            ("s3", "site", "s2"),
        ],
    );
    assert_eq!(
        engine.add_scope("s4", "site", "s3"),
        Err(voltgate_policy::PolicyError::TooDeep {
            parent: "s3".to_owned(),
            limit: 3
        })
    );
    assert!(engine.check_scope_room("s3").is_err());
    scopes(&mut engine, &[("w1", "site", "s1"), ("w2", "site", "s1")]);
    assert_eq!(
        engine.add_scope("w3", "site", "s2"),
        Err(voltgate_policy::PolicyError::SubtreeFull {
            top: "s1".to_owned(),
            limit: 5
        })
    );
    // Another top-level subtree has room of its own; nothing refused was added.
    engine.add_scope("t1", "site", "root").unwrap();
    assert_eq!(engine.scope_kind("s4"), None);
    assert_eq!(engine.scope_kind("w3"), None);
}

#[test]
fn visible_scopes_lists_a_deep_chain_in_one_pass_and_agrees_with_can_see() {
    let mut engine = engine("connect");
    engine.add_scope("site-0", "site", "root").unwrap();
    for index in 1..2_000 {
        engine
            .add_scope(
                &format!("site-{index}"),
                "site",
                &format!("site-{}", index - 1),
            )
            .unwrap();
    }
    engine
        .add_scope("station-x", "station", "site-1999")
        .unwrap();
    holder(&mut engine, "builder", "site-admin", "site-1000");
    let all: Vec<String> = engine.scopes().map(|(id, _, _)| id.to_owned()).collect();
    let expected: Vec<&str> = all
        .iter()
        .filter(|id| engine.can_see("builder", &at(id)))
        .map(String::as_str)
        .collect();
    assert_eq!(engine.visible_scopes("builder", None), expected);
    assert_eq!(
        engine.visible_scopes("builder", Some("station")),
        ["station-x"]
    );
    assert!(engine
        .visible_scopes("builder", Some("no-such-kind"))
        .is_empty());
}

// ----- #14.10: explanations name what the asker cannot see ----------------------------------

#[test]
fn explain_for_a_viewer_hides_roles_held_on_scopes_it_cannot_see() {
    let mut engine = engine("connect");
    scopes(
        &mut engine,
        &[
            ("hq", "site", "root"),
            ("secret", "site", "root"),
            ("st", "station", "hq"),
        ],
    );
    holder(&mut engine, "local", "site-admin", "hq");
    holder(&mut engine, "roamer", "site-admin", "hq");
    engine.assign("roamer", "site-admin", "secret").unwrap();
    engine
        .add_principal("ghost", PrincipalKind::Operator, "secret")
        .unwrap();
    // `roamer`'s own explanation names its holding; told to `local`, the secret site and the
    // role held there are not named.
    let own = engine.explain("roamer", Action::ChargerView, &at("secret"));
    assert!(own.reason.contains("secret"), "{}", own.reason);
    let told = engine.explain_for("local", "roamer", Action::ChargerView, &at("secret"));
    assert_eq!(told.allowed, own.allowed);
    let text = serde_json::to_string(&told).unwrap();
    assert!(!text.contains("secret"), "{text}");
    // An explanation about an invisible principal does not name it either.
    let about_ghost = engine.explain_for(
        "local",
        "roamer",
        Action::PrincipalView,
        &Resource::principal("ghost"),
    );
    let text = serde_json::to_string(&about_ghost).unwrap();
    assert!(
        !text.contains("ghost") && !text.contains("secret"),
        "{text}"
    );
    // What the viewer can see is still named.
    let visible = engine.explain_for("local", "roamer", Action::ChargerView, &at("st"));
    assert!(visible.reason.contains("hq"), "{}", visible.reason);
}
