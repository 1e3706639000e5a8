//! The rules for acting on another principal, on the `connect` preset the way the first
//! attack tried them: site A and site B, a site admin per site, a global admin homed on site A,
//! an operator homed on A holding a role on B, drivers with cards in each site.

use voltgate_policy::{
    Action, DenialCode, Engine, Finding, PolicyError, Preset, PrincipalKind, Resource,
};

fn estate() -> Engine {
    let mut engine = Engine::new(Preset::builtin("connect").unwrap());
    engine.add_scope("site-a", "site", "root").unwrap();
    engine.add_scope("site-b", "site", "root").unwrap();
    engine
        .define_role("driver", "Driver", &["charge-at-sites".to_owned()])
        .unwrap();
    for (id, kind, home) in [
        ("admin-a", PrincipalKind::Operator, "site-a"),
        ("admin-b", PrincipalKind::Operator, "site-b"),
        ("global", PrincipalKind::Operator, "site-a"),
        ("roamer", PrincipalKind::Operator, "site-a"),
        ("viewer", PrincipalKind::Operator, "site-a"),
        ("driver-a", PrincipalKind::Driver, "site-a"),
        ("driver-b", PrincipalKind::Driver, "site-b"),
        ("gateway", PrincipalKind::System, "root"),
    ] {
        engine.add_principal(id, kind, home).unwrap();
    }
    engine.assign("admin-a", "site-admin", "site-a").unwrap();
    engine.assign("admin-b", "site-admin", "site-b").unwrap();
    engine.assign("global", "global-admin", "root").unwrap();
    engine
        .assign("roamer", "customer-service", "site-b")
        .unwrap();
    engine
        .assign("viewer", "customer-service", "site-a")
        .unwrap();
    engine.assign("driver-a", "driver", "site-a").unwrap();
    engine.assign("driver-b", "driver", "site-b").unwrap();
    engine
}

fn on(id: &str) -> Resource {
    Resource::principal(id)
}

#[test]
fn a_site_admin_may_not_act_for_someone_who_reaches_beyond_its_site() {
    let engine = estate();
    for action in [Action::IdTokenEdit, Action::PrincipalEdit] {
        for target in ["global", "roamer"] {
            assert!(
                !engine.check("admin-a", action, &on(target)),
                "admin-a {action} {target}"
            );
            let decision = engine.explain("admin-a", action, &on(target));
            assert!(!decision.allowed);
            assert!(
                matches!(decision.evidence.finding, Finding::BeyondGrant { .. }),
                "{:?}",
                decision.evidence.finding
            );
        }
    }
    // What lies within its site stays its to manage, cards included.
    assert!(engine.check("admin-a", Action::IdTokenEdit, &on("driver-a")));
    assert!(engine.check("admin-a", Action::DriverEdit, &on("driver-a")));
    assert!(engine.check("admin-a", Action::PrincipalEdit, &on("viewer")));
    // Viewing is not acting for someone.
    assert!(engine.check("admin-a", Action::PrincipalView, &on("roamer")));
    // Those who could grant every role still may.
    assert!(engine.check("global", Action::IdTokenEdit, &on("roamer")));
    assert!(engine.check("gateway", Action::IdTokenEdit, &on("global")));
}

#[test]
fn the_reason_names_no_scope_the_actor_cannot_see() {
    let engine = estate();
    let decision = engine.explain("admin-a", Action::IdTokenEdit, &on("roamer"));
    match &decision.evidence.finding {
        Finding::BeyondGrant { role, scope } => {
            assert_eq!(role, "customer-service");
            assert_eq!(scope, &None, "site-b is invisible to admin-a");
        }
        other => panic!("{other:?}"),
    }
    assert!(!decision.reason.contains("site-b"), "{}", decision.reason);
}

#[test]
fn only_a_system_principal_acts_for_a_system_principal() {
    let engine = estate();
    let decision = engine.explain("global", Action::PrincipalEdit, &on("gateway"));
    assert!(!decision.allowed);
    assert_eq!(decision.evidence.finding, Finding::SystemTarget);
}

#[test]
fn drivers_are_seen_only_with_driver_view() {
    let engine = estate();
    // customer-service has no driver permission: driver-a is hidden although its home is seen.
    assert!(!engine.can_see("viewer", &on("driver-a")));
    assert!(!engine.check("viewer", Action::PrincipalView, &on("driver-a")));
    let decision = engine.explain("viewer", Action::PrincipalView, &on("driver-a"));
    assert_eq!(decision.evidence.finding, Finding::DriverHidden);
    // Operators on the same site stay visible, and a driver sees itself.
    assert!(engine.can_see("viewer", &on("admin-a")));
    assert!(engine.can_see("driver-a", &on("driver-a")));
    assert!(engine.can_see("admin-a", &on("driver-a")));
}

#[test]
fn nobody_deletes_themselves_or_a_protected_principal() {
    let mut engine = estate();
    engine.protect_principal("gateway").unwrap();
    assert_eq!(
        engine
            .can_remove_principal("global", "global")
            .unwrap_err()
            .code,
        DenialCode::SelfRemoval
    );
    assert_eq!(
        engine
            .can_remove_principal("global", "gateway")
            .unwrap_err()
            .code,
        DenialCode::Protected
    );
    assert!(engine.can_remove_principal("global", "admin-a").is_ok());
    assert!(engine.protect_principal("nobody").is_err());
}

#[test]
fn the_gateway_s_own_audit_names_cannot_be_taken() {
    let mut engine = estate();
    for id in [
        "system",
        "anonymous",
        "SYSTEM",
        "id-token:ABC",
        "charger:CP-1",
    ] {
        assert_eq!(
            engine.add_principal(id, PrincipalKind::Operator, "site-a"),
            Err(PolicyError::ReservedId(id.to_owned())),
            "{id}"
        );
    }
    assert!(engine
        .add_principal("systematic", PrincipalKind::Operator, "site-a")
        .is_ok());
}

#[test]
fn every_change_has_a_validate_only_twin_that_agrees() {
    let mut engine = estate();
    let scope_cases = [
        ("new-site", "site", "root"),
        ("site-a", "site", "root"),
        ("st-1", "station", "site-a"),
        ("st-2", "station", "root"),
        ("x", "nonsense", "root"),
        ("..", "site", "root"),
        ("a/b", "site", "root"),
        ("orphan", "site", "missing"),
    ];
    for (id, kind, parent) in scope_cases {
        let checked = engine.check_add_scope(id, kind, parent);
        assert_eq!(checked, engine.add_scope(id, kind, parent), "{id}");
    }
    let role_cases: [(&str, &str, Vec<String>); 5] = [
        ("night-shift", "Night shift", vec!["view-chargers".into()]),
        ("night-shift", "Again", vec!["view-chargers".into()]),
        ("empty", "Empty", vec![]),
        ("Bad_Id", "Bad", vec!["view-chargers".into()]),
        ("sneaky", "Global admin", vec!["view-chargers".into()]),
    ];
    for (id, label, permissions) in role_cases {
        let checked = engine.check_define_role(id, label, &permissions);
        assert_eq!(checked, engine.define_role(id, label, &permissions), "{id}");
    }
    let assignment_cases = [
        ("admin-b", "customer-service", "site-a"),
        ("admin-b", "global-admin", "site-a"),
        ("nobody", "site-admin", "site-a"),
        ("admin-b", "no-role", "site-a"),
    ];
    for (principal, role, scope) in assignment_cases {
        let checked = engine.check_assign(principal, role, scope);
        assert_eq!(checked, engine.assign(principal, role, scope), "{role}");
    }
    for (id, home) in [
        ("fresh", "site-a"),
        ("fresh", "site-a"),
        ("lost", "nowhere"),
    ] {
        let checked = engine.check_add_principal(id, PrincipalKind::Operator, home);
        assert_eq!(
            checked,
            engine.add_principal(id, PrincipalKind::Operator, home),
            "{id}"
        );
    }
    assert_eq!(
        engine.check_set_module("site-a", "no-module"),
        engine.set_module("site-a", "no-module", true)
    );
    assert!(engine.check_principal("fresh").is_ok());
    assert!(engine.check_principal("nobody").is_err());
}

/// Virta acts for team members by "the same roles as themselves", and deletes only archived
/// (blocked) members.
#[test]
fn virta_acts_for_members_with_its_own_roles_and_deletes_only_archived_ones() {
    let mut engine = Engine::new(Preset::builtin("virta").unwrap());
    engine.add_scope("org", "organisation", "root").unwrap();
    engine.add_scope("sub", "organisation", "org").unwrap();
    for (id, role, scope) in [
        ("tech-1", "technician", "org"),
        ("tech-2", "technician", "sub"),
        ("manager", "driver-manager", "org"),
        ("watcher", "viewer", "org"),
        ("upstairs", "technician", "org"),
    ] {
        engine
            .add_principal(id, PrincipalKind::Operator, scope)
            .unwrap();
        engine.assign(id, role, scope).unwrap();
    }
    engine.assign("upstairs", "viewer", "org").unwrap();
    let allowed =
        |actor: &str, target: &str| engine.check(actor, Action::PrincipalEdit, &on(target));
    // A technician's role on `org` reaches the technician on `sub`, never the other way round.
    assert!(allowed("tech-1", "tech-2"));
    assert!(!allowed("tech-2", "tech-1"));
    // The driver manager could invite a viewer but does not hold the role.
    assert!(!allowed("manager", "watcher"));
    let decision = engine.explain("manager", Action::PrincipalEdit, &on("watcher"));
    assert!(
        matches!(
            &decision.evidence.finding,
            Finding::BeyondOwnRoles { role, scope: Some(scope) } if role == "viewer" && scope == "org"
        ),
        "{decision:?}"
    );
    // Every role of the target must be held: technician + viewer is beyond a technician.
    assert!(!allowed("tech-1", "upstairs"));

    let denial = engine.can_remove_principal("tech-1", "tech-2").unwrap_err();
    assert_eq!(denial.code, DenialCode::NotBlocked);
    engine.set_blocked("tech-2", true).unwrap();
    engine.can_remove_principal("tech-1", "tech-2").unwrap();
    // Other presets delete without archiving.
    let connect = estate();
    connect.can_remove_principal("admin-a", "viewer").unwrap();
}
