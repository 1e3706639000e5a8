//! The seed pages' prose rules, one named test each, run against the shipped presets.
//!
//! `seed_tables.rs` checks the pages' tables cell by cell; this file checks what the pages say
//! in words: who charges where, who sees whose history, who may invite whom, what modules
//! switch on, and where a seed requires a granter to hand out more than it holds.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use voltgate_policy::{
    Action, ActionRule, DenialCode, Engine, PolicyError, Preset, PrincipalKind, Resource,
};

fn engine(preset: &str) -> Engine {
    Engine::new(Preset::builtin(preset).expect("builtin preset loads"))
}

fn scopes(engine: &mut Engine, tree: &[(&str, &str, &str)]) {
    for (id, kind, parent) in tree {
        engine.add_scope(id, kind, parent).expect("scope added");
    }
}

fn operator(engine: &mut Engine, id: &str, home: &str) {
    engine
        .add_principal(id, PrincipalKind::Operator, home)
        .expect("principal added");
}

/// Adds an operator at home on `scope` holding `role` there.
fn holder(engine: &mut Engine, id: &str, role: &str, scope: &str) {
    operator(engine, id, scope);
    engine.assign(id, role, scope).expect("role assigned");
}

fn at(id: &str) -> Resource {
    Resource::scope(id)
}

fn denial_code(result: Result<(), voltgate_policy::Denial>) -> Option<DenialCode> {
    result.err().map(|denial| denial.code)
}

/// A preset file of this crate with `allow_escalation = true` removed from one role.
fn without_escalation(preset: &str, role: &str) -> Preset {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("presets/{preset}.toml"));
    let text = fs::read_to_string(path).expect("preset file");
    let start = text
        .find(&format!("id = \"{role}\"\n"))
        .expect("role in the preset");
    let end = text[start..]
        .find("[[roles]]")
        .map_or(text.len(), |offset| start + offset);
    let block = &text[start..end];
    assert!(
        block.contains("allow_escalation = true\n"),
        "`{role}` escalates"
    );
    let edited = format!(
        "{}{}{}",
        &text[..start],
        block.replace("allow_escalation = true\n", ""),
        &text[end..]
    );
    Preset::parse(&format!("{preset}.toml"), &edited).expect("edited preset loads")
}

// ----- zaptec -----------------------------------------------------------------------------

/// A Pro installation with two chargers and a Go installation with one.
fn zaptec() -> Engine {
    let mut engine = engine("zaptec");
    scopes(
        &mut engine,
        &[
            ("pro", "installation", "root"),
            ("pro-1", "station", "pro"),
            ("pro-2", "station", "pro"),
            ("go", "installation", "root"),
            ("go-1", "station", "go"),
        ],
    );
    engine.set_module("pro", "pro", true).unwrap();
    engine
}

#[test]
fn zaptec_user_charges_only_where_assigned() {
    let mut engine = zaptec();
    holder(&mut engine, "charger-user", "user", "pro-1");
    holder(&mut engine, "site-user", "user", "go");
    assert!(engine.check("charger-user", Action::Charge, &at("pro-1")));
    assert!(!engine.check("charger-user", Action::Charge, &at("pro-2")));
    assert!(!engine.check("charger-user", Action::Charge, &at("go-1")));
    assert!(engine.check("site-user", Action::Charge, &at("go-1")));
    assert!(!engine.check("site-user", Action::Charge, &at("pro-1")));
    // "Cannot change settings".
    assert!(!engine.check("site-user", Action::ChargerEdit, &at("go-1")));
}

#[test]
fn zaptec_user_sees_only_own_charging_history() {
    let mut engine = zaptec();
    holder(&mut engine, "user", "user", "pro");
    assert!(engine.check("user", Action::TransactionViewOwn, &at("pro-1")));
    assert!(!engine.check("user", Action::TransactionView, &at("pro-1")));
    assert!(!engine.check("user", Action::TransactionView, &at("pro")));
    assert!(!engine.check("user", Action::TransactionExport, &at("pro")));
}

#[test]
fn zaptec_charger_owner_cannot_see_installation_wide_history() {
    let mut engine = zaptec();
    holder(&mut engine, "owner", "charger-owner", "pro-1");
    assert!(engine.check("owner", Action::TransactionView, &at("pro-1")));
    assert!(!engine.check("owner", Action::TransactionView, &at("pro")));
    assert!(!engine.check("owner", Action::TransactionView, &at("pro-2")));
    assert!(!engine.check("owner", Action::TransactionExport, &at("pro")));
    assert!(!engine.can_see("owner", &at("pro")));
    // It manages its own charger.
    assert!(engine.check("owner", Action::CommandRemoteStart, &at("pro-1")));
    assert!(engine.check("owner", Action::Charge, &at("pro-1")));
}

#[test]
fn zaptec_installation_owner_cannot_change_technical_charger_configuration() {
    let mut engine = zaptec();
    holder(&mut engine, "owner", "installation-owner", "pro");
    holder(&mut engine, "installer", "service", "pro");
    for technical in [
        Action::CommandChangeConfiguration,
        Action::CommandUpdateFirmware,
        Action::CommandDataTransfer,
    ] {
        assert!(
            !engine.check("owner", technical, &at("pro-1")),
            "{technical}"
        );
        assert!(
            engine.check("installer", technical, &at("pro-1")),
            "{technical}"
        );
    }
    // What it does hold: full control, power management, installation-wide history.
    for allowed in [
        Action::ChargerEdit,
        Action::CommandRemoteStart,
        Action::CommandSetMaxCurrent,
        Action::TransactionView,
        Action::TransactionExport,
    ] {
        assert!(engine.check("owner", allowed, &at("pro-1")), "{allowed}");
    }
    assert!(engine.check("owner", Action::TransactionExport, &at("pro")));
}

#[test]
fn zaptec_go_installation_refuses_station_level_roles_while_pro_allows_them() {
    let mut engine = zaptec();
    operator(&mut engine, "person", "root");
    for role in ["user", "charger-owner", "service"] {
        assert!(
            matches!(
                engine.assign("person", role, "go-1"),
                Err(PolicyError::ModuleRequired { .. })
            ),
            "`{role}` on a Go charger"
        );
        engine.assign("person", role, "pro-1").expect("Pro charger");
    }
    engine
        .assign("person", "user", "go")
        .expect("Go installation");

    holder(&mut engine, "owner", "installation-owner", "go");
    operator(&mut engine, "neighbour", "go");
    assert_eq!(
        denial_code(engine.can_assign("owner", "neighbour", "user", "go-1")),
        Some(DenialCode::ModuleRequired)
    );
    assert_eq!(
        engine.can_assign("owner", "neighbour", "user", "go"),
        Ok(())
    );

    // The same installation upgraded to Pro.
    engine.set_module("go", "pro", true).unwrap();
    assert_eq!(
        engine.can_assign("owner", "neighbour", "charger-owner", "go-1"),
        Ok(())
    );
}

#[test]
fn zaptec_installation_owner_assigns_user_and_owner_access_but_not_service() {
    let mut engine = zaptec();
    holder(&mut engine, "owner", "installation-owner", "pro");
    holder(&mut engine, "charger-owner", "charger-owner", "pro-1");
    operator(&mut engine, "tenant", "pro");
    operator(&mut engine, "gateway", "root");
    engine
        .add_principal("system", PrincipalKind::System, "root")
        .unwrap();
    assert_eq!(engine.can_assign("owner", "tenant", "user", "pro"), Ok(()));
    assert_eq!(
        engine.can_assign("owner", "tenant", "charger-owner", "pro-2"),
        Ok(())
    );
    assert_eq!(
        engine.can_assign("owner", "tenant", "installation-owner", "pro"),
        Ok(())
    );
    assert_eq!(
        denial_code(engine.can_assign("owner", "tenant", "service", "pro")),
        Some(DenialCode::NoAuthority)
    );
    // A charger owner does not "Assign user and owner access".
    assert_eq!(
        denial_code(engine.can_assign("charger-owner", "charger-owner", "user", "pro-1")),
        Some(DenialCode::NoAuthority)
    );
    assert_eq!(
        engine.can_assign("system", "gateway", "service", "root"),
        Ok(())
    );
}

// ----- connect ----------------------------------------------------------------------------

/// `all` > `operational` > {`fi`, `se`} and `all` > `test`, a station in each leaf.
fn connect() -> Engine {
    let mut engine = engine("connect");
    scopes(
        &mut engine,
        &[
            ("all", "site", "root"),
            ("operational", "site", "all"),
            ("test", "site", "all"),
            ("fi", "site", "operational"),
            ("se", "site", "operational"),
            ("st-fi", "station", "fi"),
            ("st-se", "station", "se"),
            ("st-test", "station", "test"),
        ],
    );
    engine
}

fn regular_permissions(preset: &Preset) -> Vec<String> {
    preset
        .permissions()
        .filter(|permission| !permission.admin)
        .map(|permission| permission.id.clone())
        .collect()
}

#[test]
fn connect_custom_roles_cannot_include_admin_permissions() {
    let mut engine = connect();
    let refusal = engine
        .define_role(
            "support",
            "Support",
            &["view-chargers".to_owned(), "global-admin".to_owned()],
        )
        .unwrap_err();
    assert!(
        matches!(refusal, PolicyError::AdminRoleInCustomRole { .. }),
        "{refusal:?}"
    );
    assert!(refusal.to_string().contains("global-admin"), "{refusal}");

    for admin_permission in ["manage-operators", "manage-roles"] {
        let refusal = engine
            .define_role("support", "Support", &[admin_permission.to_owned()])
            .unwrap_err();
        assert!(
            matches!(refusal, PolicyError::AdminPermissionInCustomRole { .. }),
            "{refusal:?}"
        );
        let message = refusal.to_string();
        assert!(
            message.contains(admin_permission) && message.contains("admin"),
            "{message}"
        );
    }
    assert!(matches!(
        engine.define_role("global-admin", "Everything", &[]),
        Err(PolicyError::AdminRoleName { .. })
    ));
    assert!(matches!(
        engine.define_role("regional-lead", "Site admin", &[]),
        Err(PolicyError::AdminRoleName { .. })
    ));
    // A bundle of every regular permission is fine.
    let regular = regular_permissions(engine.preset());
    engine.define_role("support", "Support", &regular).unwrap();

    // The preset itself may not put an admin permission in a regular role.
    let text = include_str!("../presets/connect.toml").replace(
        "permissions = [\"view-chargers\", \"operate-chargers\", \"view-sites\"]",
        "permissions = [\"view-chargers\", \"operate-chargers\", \"view-sites\", \"manage-roles\"]",
    );
    let error = Preset::parse("connect.toml", &text)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("customer-service") && error.contains("manage-roles"),
        "{error}"
    );
}

#[test]
fn connect_only_admins_manage_operators_and_roles() {
    let mut engine = connect();
    let regular = regular_permissions(engine.preset());
    engine
        .define_role("power-user", "Power user", &regular)
        .unwrap();
    holder(&mut engine, "power", "power-user", "all");
    holder(&mut engine, "admin", "site-admin", "all");
    operator(&mut engine, "colleague", "fi");
    for action in [Action::PrincipalEdit, Action::RoleAssign, Action::RoleEdit] {
        assert!(!engine.check("power", action, &at("fi")), "{action}");
        assert!(engine.check("admin", action, &at("fi")), "{action}");
    }
    assert!(engine.check(
        "power",
        Action::PrincipalView,
        &Resource::principal("colleague")
    ));
    assert!(!engine.check(
        "power",
        Action::PrincipalEdit,
        &Resource::principal("colleague")
    ));
    assert_eq!(
        denial_code(engine.can_assign("power", "colleague", "customer-service", "fi")),
        Some(DenialCode::NoAuthority)
    );
    assert_eq!(
        denial_code(engine.can_assign("power", "colleague", "power-user", "fi")),
        Some(DenialCode::NoAuthority)
    );
    assert_eq!(
        engine.can_assign("admin", "colleague", "power-user", "fi"),
        Ok(())
    );
}

#[test]
fn connect_site_admin_manages_only_operators_within_its_sites() {
    let mut engine = connect();
    holder(&mut engine, "finnish-admin", "site-admin", "fi");
    operator(&mut engine, "finn", "fi");
    operator(&mut engine, "swede", "se");
    let finn = Resource::principal("finn");
    let swede = Resource::principal("swede");
    assert!(engine.check("finnish-admin", Action::PrincipalEdit, &finn));
    assert!(!engine.check("finnish-admin", Action::PrincipalEdit, &swede));
    assert!(!engine.can_see("finnish-admin", &swede));
    assert_eq!(
        engine.can_assign("finnish-admin", "finn", "customer-service", "fi"),
        Ok(())
    );
    assert_eq!(
        engine.can_assign("finnish-admin", "finn", "site-admin", "fi"),
        Ok(())
    );
    assert_eq!(
        denial_code(engine.can_assign("finnish-admin", "swede", "customer-service", "se")),
        Some(DenialCode::PrincipalInvisible)
    );
    assert_eq!(
        denial_code(engine.can_assign("finnish-admin", "finn", "customer-service", "se")),
        Some(DenialCode::NoAuthority)
    );
    assert_eq!(
        denial_code(engine.can_assign("finnish-admin", "finn", "global-admin", "root")),
        Some(DenialCode::AdminRoleRequired)
    );
    // Drivers are managed within the site scope too.
    assert!(engine.check("finnish-admin", Action::DriverEdit, &at("st-fi")));
    assert!(!engine.check("finnish-admin", Action::DriverEdit, &at("st-se")));
}

#[test]
fn connect_site_access_is_inherited_from_parent_sites() {
    let mut engine = connect();
    holder(&mut engine, "desk", "customer-service", "operational");
    assert_eq!(engine.visible("desk", "site"), ["operational", "fi", "se"]);
    assert_eq!(engine.visible("desk", "station"), ["st-fi", "st-se"]);
    assert!(engine.check("desk", Action::ChargerView, &at("st-se")));
    assert!(engine.check("desk", Action::CommandReset, &at("st-fi")));
    assert!(!engine.check("desk", Action::ChargerView, &at("st-test")));
    assert!(!engine.can_see("desk", &at("all")));
}

#[test]
fn connect_home_site_decides_who_sees_an_operator() {
    let mut engine = connect();
    operator(&mut engine, "finn", "fi");
    engine.assign("finn", "customer-service", "test").unwrap();
    holder(
        &mut engine,
        "nordic-desk",
        "customer-service",
        "operational",
    );
    holder(&mut engine, "test-desk", "customer-service", "test");
    let finn = Resource::principal("finn");
    assert!(engine.check("nordic-desk", Action::PrincipalView, &finn));
    // Sharing access to the test sites does not reveal an operator at home in Finland.
    assert!(!engine.check("test-desk", Action::PrincipalView, &finn));
    assert!(!engine.can_see("test-desk", &finn));
    // What the operator itself can see is its site access, not its home.
    assert_eq!(engine.visible("finn", "station"), ["st-test"]);
    assert!(engine.check("finn", Action::PrincipalView, &finn));
}

/// The page has no driver role; a custom role bundling the added `charge-at-sites` permission
/// lets a driver charge exactly where it is held, and seed roles never charge.
#[test]
fn connect_drivers_charge_only_where_a_custom_driver_role_is_held() {
    let mut engine = connect();
    engine
        .define_role("driver", "Driver", &["charge-at-sites".to_string()])
        .expect("a regular permission may be bundled");
    engine
        .add_principal("dave", PrincipalKind::Driver, "fi")
        .expect("driver added");
    engine
        .assign("dave", "driver", "fi")
        .expect("role assigned");
    assert!(engine.check("dave", Action::Charge, &at("st-fi")));
    assert!(!engine.check("dave", Action::Charge, &at("st-se")));
    assert!(!engine.check("dave", Action::ChargerView, &at("st-fi")));
    holder(&mut engine, "desk", "customer-service", "fi");
    assert!(!engine.check("desk", Action::Charge, &at("st-fi")));
}

#[test]
fn connect_global_admin_sees_all() {
    let mut engine = connect();
    holder(&mut engine, "boss", "global-admin", "root");
    operator(&mut engine, "anyone", "test");
    assert_eq!(
        engine.visible("boss", "site"),
        ["all", "operational", "test", "fi", "se"]
    );
    assert_eq!(
        engine.visible("boss", "station"),
        ["st-fi", "st-se", "st-test"]
    );
    for &action in Action::ALL {
        // Admin roles hold every permission, the added `charge-at-sites` included.
        assert!(engine.check("boss", action, &at("st-test")), "{action}");
    }
    assert!(engine.check(
        "boss",
        Action::PrincipalEdit,
        &Resource::principal("anyone")
    ));
}

#[test]
fn connect_operate_chargers_covers_remote_commands_but_not_firmware() {
    let mut engine = connect();
    engine
        .define_role("operations", "Operations", &["operate-chargers".to_owned()])
        .unwrap();
    engine
        .define_role(
            "firmware",
            "Firmware",
            &["update-charger-firmware".to_owned()],
        )
        .unwrap();
    holder(&mut engine, "operations", "operations", "all");
    holder(&mut engine, "firmware", "firmware", "all");
    for action in [
        Action::CommandRemoteStart,
        Action::CommandRemoteStop,
        Action::CommandReset,
        Action::CommandUnlock,
        Action::CommandChangeAvailability,
    ] {
        assert!(engine.check("operations", action, &at("st-fi")), "{action}");
        assert!(!engine.check("firmware", action, &at("st-fi")), "{action}");
    }
    assert!(!engine.check("operations", Action::CommandUpdateFirmware, &at("st-fi")));
    assert!(!engine.check(
        "operations",
        Action::CommandChangeConfiguration,
        &at("st-fi")
    ));
    assert!(engine.check("firmware", Action::CommandUpdateFirmware, &at("st-fi")));
}

// ----- tenant -----------------------------------------------------------------------------

/// Tenant `t`; account `a1` (BUSINESS plan) with sub-account `s1`; account `a2`; a station on
/// each of `a1`, `s1` and `a2`.
fn tenant() -> Engine {
    let mut engine = engine("tenant");
    scopes(
        &mut engine,
        &[
            ("t", "tenant", "root"),
            ("a1", "account", "t"),
            ("s1", "sub-account", "a1"),
            ("a2", "account", "t"),
            ("st-a1", "station", "a1"),
            ("st-s1", "station", "s1"),
            ("st-a2", "station", "a2"),
        ],
    );
    engine.set_module("a1", "business", true).unwrap();
    engine
}

#[test]
fn tenant_sub_account_cannot_see_its_parent_accounts_stations() {
    let mut engine = tenant();
    holder(&mut engine, "subsidiary", "sub-account-owner", "s1");
    holder(&mut engine, "owner", "account-owner", "a1");
    assert!(engine.check("subsidiary", Action::ChargerView, &at("st-s1")));
    assert!(!engine.check("subsidiary", Action::ChargerView, &at("st-a1")));
    assert!(!engine.can_see("subsidiary", &at("st-a1")));
    assert!(!engine.can_see("subsidiary", &at("a1")));
    assert_eq!(engine.visible("subsidiary", "station"), ["st-s1"]);
    // The account sees its sub-accounts' stations, not another account's.
    assert_eq!(engine.visible("owner", "station"), ["st-a1", "st-s1"]);
}

#[test]
fn tenant_stacking_support_agent_and_technical_support_extends_station_access() {
    let mut engine = tenant();
    holder(&mut engine, "agent", "support-agent", "t");
    let extended = [
        Action::CommandRemoteStart,
        Action::CommandChangeConfiguration,
        Action::CommandSetMaxCurrent,
        Action::CommandDataTransfer,
    ];
    for action in extended {
        assert!(
            !engine.check("agent", action, &at("st-a2")),
            "{action} before stacking"
        );
    }
    let before: BTreeSet<String> = engine
        .effective_permissions("agent", "st-a2")
        .into_iter()
        .map(str::to_owned)
        .collect();
    engine.assign("agent", "technical-support", "t").unwrap();
    for action in extended {
        assert!(
            engine.check("agent", action, &at("st-a2")),
            "{action} after stacking"
        );
    }
    let after: BTreeSet<String> = engine
        .effective_permissions("agent", "st-a2")
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert!(after.is_superset(&before) && after.len() > before.len());
    // Tenant users see every station of the tenant.
    assert_eq!(
        engine.visible("agent", "station"),
        ["st-a1", "st-s1", "st-a2"]
    );
}

#[test]
fn tenant_users_cannot_invite_account_system_users() {
    let mut engine = tenant();
    let tenant_roles = [
        "tenant-admin",
        "customer-support",
        "technical-support",
        "support-agent",
        "branding-specialist",
        "billing-plan-admin",
        "roaming-admin",
    ];
    operator(&mut engine, "newcomer", "a1");
    for role in tenant_roles {
        let id = format!("tenant-{role}");
        holder(&mut engine, &id, role, "t");
        for system_user in ["account-admin", "account-station-admin"] {
            assert_eq!(
                denial_code(engine.can_assign(&id, "newcomer", system_user, "a1")),
                Some(DenialCode::NoAuthority),
                "`{role}` inviting `{system_user}`"
            );
        }
    }
    // Only account owners and account admins do.
    holder(&mut engine, "owner", "account-owner", "a1");
    holder(&mut engine, "admin", "account-admin", "a1");
    for granter in ["owner", "admin"] {
        for system_user in ["account-admin", "account-station-admin"] {
            assert_eq!(
                engine.can_assign(granter, "newcomer", system_user, "a1"),
                Ok(())
            );
        }
    }
    // Tenant users with the Customers page can still see them.
    assert!(engine.check(
        "tenant-tenant-admin",
        Action::PrincipalView,
        &Resource::principal("admin")
    ));
}

/// The roles an invite row lets its holders assign, keyed by the row's permission id.
fn tenant_invited_roles(id: &str) -> &'static [&'static str] {
    match id {
        // "Invite support agents" has its own row.
        "tenant-users-invite-all-tenant-system-users" => &[
            "tenant-admin",
            "customer-support",
            "technical-support",
            "branding-specialist",
            "billing-plan-admin",
            "roaming-admin",
        ],
        "tenant-users-invite-support-agents" => &["support-agent"],
        "tenant-users-invite-account-owners" => &["account-owner"],
        "tenant-users-invite-sub-account-owners" | "account-users-invite-sub-account-owners" => {
            &["sub-account-owner"]
        }
        "tenant-users-invite-drivers" | "account-users-invite-drivers" => &["driver"],
        "account-users-invite-account-admins" => &["account-admin"],
        "account-users-invite-account-station-admins" => &["account-station-admin"],
        other => panic!("invite row `{other}` names no role"),
    }
}

/// The scope an invited role is given on: the sub-account every account role reaches.
fn tenant_invite_scope(role: &str) -> &'static str {
    match role {
        "account-owner" => "a1",
        role if role.starts_with("account-") || role == "sub-account-owner" || role == "driver" => {
            "s1"
        }
        _ => "t",
    }
}

#[test]
fn tenant_who_may_invite_whom_follows_the_invite_rows() {
    let mut checked = 0;
    for file in ["tenant-tenant-roles.tsv", "tenant-account-roles.tsv"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(file);
        let text = fs::read_to_string(path).unwrap();
        let mut lines = text
            .lines()
            .map(|line| line.split('\t').collect::<Vec<_>>());
        let header = lines.next().unwrap();
        for row in lines.filter(|row| row[1].starts_with("Invite")) {
            for (column, granter_role) in header.iter().enumerate().skip(3) {
                let mut engine = tenant();
                let granter_scope = match *granter_role {
                    "sub-account-owner" | "driver" => "s1",
                    role if tenant_invite_scope(role) == "t" => "t",
                    _ => "a1",
                };
                holder(&mut engine, "granter", granter_role, granter_scope);
                operator(&mut engine, "invitee", "s1");
                for invited in tenant_invited_roles(row[2]) {
                    let scope = tenant_invite_scope(invited);
                    let result = engine.can_assign("granter", "invitee", invited, scope);
                    assert_eq!(
                        result.is_ok(),
                        row[column] == "1",
                        "`{granter_role}` inviting `{invited}` on `{scope}` by \"{}\": {result:?}",
                        row[1]
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 60, "{checked} invitations checked");
}

#[test]
fn tenant_admin_invites_technical_support_although_it_lacks_set_maximum_current() {
    let mut engine = tenant();
    holder(&mut engine, "admin", "tenant-admin", "t");
    holder(&mut engine, "technician", "technical-support", "t");
    // The table withholds "Set maximum current" from Tenant admin despite the prose.
    assert!(!engine.check("admin", Action::CommandSetMaxCurrent, &at("st-a1")));
    assert!(engine.check("technician", Action::CommandSetMaxCurrent, &at("st-a1")));
    operator(&mut engine, "new-technician", "t");
    assert_eq!(
        engine.can_assign("admin", "new-technician", "technical-support", "t"),
        Ok(())
    );

    // Without the preset's allow_escalation the same invitation would be refused.
    let mut strict = Engine::new(without_escalation("tenant", "technical-support"));
    scopes(&mut strict, &[("t", "tenant", "root")]);
    holder(&mut strict, "admin", "tenant-admin", "t");
    operator(&mut strict, "new-technician", "t");
    let refusal = strict
        .can_assign("admin", "new-technician", "technical-support", "t")
        .unwrap_err();
    assert_eq!(refusal.code, DenialCode::Escalation);
    assert!(
        refusal
            .reason
            .contains("tenant-stations-set-maximum-current"),
        "{refusal}"
    );
}

#[test]
fn tenant_account_owner_invites_station_admins_with_more_technical_access() {
    let mut engine = tenant();
    holder(&mut engine, "owner", "account-owner", "a1");
    operator(&mut engine, "helper", "a1");
    assert!(!engine.check("owner", Action::CommandUpdateFirmware, &at("st-a1")));
    assert_eq!(
        engine.can_assign("owner", "helper", "account-station-admin", "a1"),
        Ok(())
    );

    let mut strict = Engine::new(without_escalation("tenant", "account-station-admin"));
    scopes(
        &mut strict,
        &[("t", "tenant", "root"), ("a1", "account", "t")],
    );
    holder(&mut strict, "owner", "account-owner", "a1");
    operator(&mut strict, "helper", "a1");
    assert_eq!(
        denial_code(strict.can_assign("owner", "helper", "account-station-admin", "a1")),
        Some(DenialCode::Escalation)
    );
}

// ----- virta ------------------------------------------------------------------------------

/// `org` with a sub-organisation `sub` and a station `st` under it.
fn virta() -> Engine {
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

const DRIVER_DATA_ACTIONS: [Action; 3] =
    [Action::DriverView, Action::DriverEdit, Action::IdTokenEdit];

#[test]
fn virta_charging_manager_cannot_see_ev_driver_data() {
    let mut engine = virta();
    holder(&mut engine, "charging", "charging-manager", "org");
    holder(&mut engine, "driver", "driver-manager", "org");
    holder(&mut engine, "finance", "financial-support", "org");
    let personal: Vec<String> = engine
        .preset()
        .permissions()
        .filter(|permission| permission.personal_data)
        .map(|permission| permission.id.clone())
        .collect();
    assert!(personal.len() >= 10);
    for permission in &personal {
        assert!(
            !engine.has_permission("charging", permission, "st"),
            "{permission}"
        );
        assert!(
            engine.has_permission("driver", permission, "st"),
            "{permission}"
        );
    }
    for action in DRIVER_DATA_ACTIONS {
        assert!(!engine.check("charging", action, &at("st")), "{action}");
        assert!(engine.check("driver", action, &at("st")), "{action}");
        assert!(engine.check("finance", action, &at("st")), "{action}");
    }
    // Otherwise the charging manager manages the network like a driver manager.
    assert!(engine.check("charging", Action::CommandReset, &at("st")));
    assert!(engine.check("charging", Action::CommandUpdateFirmware, &at("st")));
}

#[test]
fn virta_ev_driver_data_is_reachable_only_through_personal_data_permissions() {
    let preset = Preset::builtin("virta").unwrap();
    for action in DRIVER_DATA_ACTIONS {
        let ActionRule::AnyOf(permissions) = preset.action_permissions(action) else {
            panic!("{action} is not a permission list");
        };
        assert!(!permissions.is_empty());
        for permission in permissions {
            assert!(
                preset.permission(&permission).unwrap().personal_data,
                "{action}: {permission}"
            );
        }
    }
    // "viewing it is reserved to ... specific roles: Administrator, Driver manager, Financial
    // support".
    let with_personal_data: BTreeSet<&str> = preset
        .roles()
        .filter(|role| {
            preset.permissions().any(|permission| {
                permission.personal_data
                    && preset.role_has_permission(&role.id, &permission.id) == Some(true)
            })
        })
        .map(|role| role.id.as_str())
        .collect();
    assert_eq!(
        with_personal_data,
        BTreeSet::from(["administrator", "driver-manager", "financial-support"])
    );
    // "... reserved to specific modules: EV drivers > Find, Manage, History".
    for permission in preset
        .permissions()
        .filter(|p| p.group.as_deref() == Some("EV Drivers > Find"))
    {
        assert!(permission.personal_data, "{}", permission.id);
    }
}

#[test]
fn virta_permission_in_disabled_paid_module_is_not_effective() {
    let mut engine = virta();
    holder(&mut engine, "technician", "technician", "org");
    holder(&mut engine, "drivers", "driver-manager", "org");
    assert!(!engine.has_permission("technician", "edit-solar-load-management", "st"));
    assert!(engine.has_permission("technician", "edit-dynamic-load-management", "st"));
    engine.set_module("org", "solar", true).unwrap();
    assert!(engine.has_permission("technician", "edit-solar-load-management", "st"));
    // A sub-organisation without the module.
    engine.set_module("sub", "solar", false).unwrap();
    assert!(!engine.has_permission("technician", "edit-solar-load-management", "st"));
    assert!(engine.has_permission("technician", "edit-solar-load-management", "org"));

    // A table module switched off takes its rows with it.
    assert!(engine.check("drivers", Action::DriverEdit, &at("st")));
    for module in ["ev-drivers-manage", "station-management-access-management"] {
        engine.set_module("org", module, false).unwrap();
    }
    assert!(!engine.check("drivers", Action::DriverEdit, &at("st")));
    assert!(engine.check("drivers", Action::DriverView, &at("st")));
}

#[test]
fn virta_administrator_gets_exactly_what_modules_allow() {
    let mut engine = virta();
    holder(&mut engine, "admin", "administrator", "org");
    let modules: Vec<String> = engine.preset().modules().map(|m| m.id.clone()).collect();
    // Every other module flipped from its default.
    for (index, module) in modules.iter().enumerate() {
        if index % 2 == 0 {
            let default_on = engine.preset().module(module).unwrap().default_on;
            engine.set_module("org", module, !default_on).unwrap();
        }
    }
    let preset = engine.preset().clone();
    let mut held = 0;
    for permission in preset.permissions() {
        let allowed = permission
            .module
            .as_ref()
            .is_none_or(|module| engine.module_on("st", module).unwrap());
        assert_eq!(
            engine.has_permission("admin", &permission.id, "st"),
            allowed,
            "{}",
            permission.id
        );
        held += usize::from(allowed);
    }
    assert!(held > 0 && held < preset.permissions().count());
    assert_eq!(engine.effective_permissions("admin", "st").len(), held);
    assert!(engine.check("admin", Action::ModuleEdit, &at("sub")));
    assert!(engine.check("admin", Action::AuditView, &at("st")));
}

/// The role each invite row of the virta table hands out.
fn virta_invited_role(label: &str) -> Option<&'static str> {
    match label {
        "Invite/assign Viewer role" => Some("viewer"),
        "Invite Driver manager role" => Some("driver-manager"),
        "Invite Charging manager role" => Some("charging-manager"),
        "Invite/assign technician role" => Some("technician"),
        "Invite/assign Financial support role" => Some("financial-support"),
        _ => None,
    }
}

#[test]
fn virta_invite_rules_follow_the_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/virta-roles.tsv");
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>());
    let header = lines.next().unwrap();
    let mut rows = 0;
    for row in lines.filter(|row| row[2].starts_with("Invite")) {
        let invited = virta_invited_role(row[2]).expect("every invite row names a role");
        rows += 1;
        for (column, granter_role) in header.iter().enumerate().skip(4) {
            let mut engine = virta();
            holder(&mut engine, "granter", granter_role, "org");
            operator(&mut engine, "newcomer", "org");
            let result = engine.can_assign("granter", "newcomer", invited, "sub");
            assert_eq!(
                result.is_ok(),
                row[column] == "1",
                "`{granter_role}` by \"{}\": {result:?}",
                row[2]
            );
        }
    }
    assert_eq!(rows, 5);

    let mut engine = virta();
    holder(&mut engine, "admin", "administrator", "org");
    holder(&mut engine, "viewer", "viewer", "org");
    operator(&mut engine, "newcomer", "org");
    for role in engine
        .preset()
        .roles()
        .map(|role| role.id.clone())
        .collect::<Vec<_>>()
    {
        assert_eq!(
            engine.can_assign("admin", "newcomer", &role, "sub"),
            Ok(()),
            "{role}"
        );
    }
    // Nobody but an Administrator grants the paid module activator.
    assert_eq!(
        denial_code(engine.can_assign("viewer", "newcomer", "paid-module-activator", "org")),
        Some(DenialCode::NoAuthority)
    );
}

#[test]
fn virta_technician_and_financial_support_invite_viewers_who_hold_more() {
    let mut engine = virta();
    holder(&mut engine, "technician", "technician", "org");
    holder(&mut engine, "finance", "financial-support", "org");
    operator(&mut engine, "newcomer", "org");
    assert!(!engine.has_permission("technician", "view-tariffs-tab", "org"));
    assert!(!engine.has_permission("finance", "view-use-controls", "org"));
    assert_eq!(
        engine.can_assign("technician", "newcomer", "viewer", "org"),
        Ok(())
    );
    assert_eq!(
        engine.can_assign("finance", "newcomer", "viewer", "org"),
        Ok(())
    );

    let mut strict = Engine::new(without_escalation("virta", "viewer"));
    scopes(&mut strict, &[("org", "organisation", "root")]);
    holder(&mut strict, "technician", "technician", "org");
    holder(&mut strict, "finance", "financial-support", "org");
    holder(&mut strict, "manager", "driver-manager", "org");
    operator(&mut strict, "newcomer", "org");
    for granter in ["technician", "finance"] {
        assert_eq!(
            denial_code(strict.can_assign(granter, "newcomer", "viewer", "org")),
            Some(DenialCode::Escalation),
            "{granter}"
        );
    }
    // A driver manager holds everything a viewer does.
    assert_eq!(
        strict.can_assign("manager", "newcomer", "viewer", "org"),
        Ok(())
    );
}

#[test]
fn virta_paid_module_activator_switches_paid_modules() {
    let mut engine = virta();
    holder(&mut engine, "activator", "paid-module-activator", "org");
    holder(&mut engine, "technician", "technician", "org");
    holder(&mut engine, "viewer", "viewer", "org");
    assert_eq!(
        engine.can_set_module("activator", "org", "solar", true),
        Ok(())
    );
    for who in ["technician", "viewer"] {
        assert!(engine.can_set_module(who, "org", "solar", true).is_err());
    }
    // It activates modules, it does not operate stations.
    assert!(!engine.check("activator", Action::ChargerView, &at("st")));
}

// ----- multi-account ----------------------------------------------------------------------

/// Operator `op` with accounts `a1`, `a2`, `a3`, one station each.
fn multi_account() -> Engine {
    let mut engine = engine("multi-account");
    scopes(
        &mut engine,
        &[
            ("op", "operator", "root"),
            ("a1", "account", "op"),
            ("a2", "account", "op"),
            ("a3", "account", "op"),
            ("st1", "station", "a1"),
            ("st2", "station", "a2"),
            ("st3", "station", "a3"),
        ],
    );
    engine
}

#[test]
fn multi_account_operator_and_multi_account_roles_cannot_charge_but_account_roles_can() {
    let mut engine = multi_account();
    for role in ["operator-viewer", "operator-agent", "operator-admin"] {
        holder(&mut engine, role, role, "op");
    }
    for role in [
        "multi-account-viewer",
        "multi-account-agent",
        "multi-account-admin",
        "account-viewer",
        "account-agent",
        "account-admin",
    ] {
        holder(&mut engine, role, role, "a1");
    }
    for role in engine
        .preset()
        .roles()
        .map(|role| role.id.clone())
        .collect::<Vec<_>>()
    {
        let may_charge = role.starts_with("account-");
        assert_eq!(
            engine.check(&role, Action::Charge, &at("st1")),
            may_charge,
            "{role}"
        );
        assert_eq!(
            engine.preset().role(&role).unwrap().can_charge,
            may_charge,
            "{role}"
        );
    }
    // The operator admin holds the app permission like every permission, yet does not charge.
    assert!(engine.has_permission("operator-admin", "use-app-as-end-user", "st1"));
}

#[test]
fn multi_account_roles_reach_only_selected_accounts() {
    let mut engine = multi_account();
    operator(&mut engine, "manager", "a1");
    for account in ["a1", "a2"] {
        engine
            .assign("manager", "multi-account-agent", account)
            .unwrap();
    }
    holder(&mut engine, "all-accounts", "operator-viewer", "op");
    assert_eq!(engine.visible("manager", "account"), ["a1", "a2"]);
    assert!(engine.check("manager", Action::CommandRemoteStart, &at("st2")));
    assert!(!engine.check("manager", Action::CommandRemoteStart, &at("st3")));
    assert!(!engine.can_see("manager", &at("st3")));
    assert!(!engine.can_see("manager", &at("op")));
    assert_eq!(
        engine.visible("all-accounts", "account"),
        ["a1", "a2", "a3"]
    );
    assert!(matches!(
        engine.assign("manager", "multi-account-viewer", "op"),
        Err(PolicyError::RoleNotAssignable { .. })
    ));
}

#[test]
fn multi_account_agents_and_admins_differ() {
    let mut engine = multi_account();
    for role in ["operator-viewer", "operator-agent", "operator-admin"] {
        holder(&mut engine, role, role, "op");
    }
    for role in [
        "multi-account-viewer",
        "multi-account-agent",
        "multi-account-admin",
    ] {
        holder(&mut engine, role, role, "a1");
    }
    let station = at("st1");
    // Viewers: "View-only access ... Cannot perform any actions."
    for viewer in ["operator-viewer", "multi-account-viewer"] {
        assert!(engine.check(viewer, Action::ChargerView, &station));
        for action in [
            Action::DriverEdit,
            Action::CommandRemoteStart,
            Action::ChargerEdit,
        ] {
            assert!(!engine.check(viewer, action, &station), "{viewer} {action}");
        }
    }
    // Agents: basic operations only.
    for agent in ["operator-agent", "multi-account-agent"] {
        for action in [
            Action::DriverEdit,
            Action::ChargerRegister,
            Action::CommandRemoteStart,
            Action::CommandRemoteStop,
            Action::CommandUnlock,
        ] {
            assert!(engine.check(agent, action, &station), "{agent} {action}");
        }
        for action in [
            Action::ChargerEdit,
            Action::CommandReset,
            Action::PrincipalEdit,
        ] {
            assert!(!engine.check(agent, action, &station), "{agent} {action}");
        }
    }
    // Group discounts: the operator agent only.
    assert!(engine.has_permission("operator-agent", "add-group-discounts-to-a-driver", "st1"));
    assert!(!engine.has_permission(
        "multi-account-agent",
        "add-group-discounts-to-a-driver",
        "st1"
    ));
    // Admins: every setting of their accounts; operator settings only at operator level.
    for admin in ["operator-admin", "multi-account-admin"] {
        for action in [
            Action::ChargerEdit,
            Action::CommandReset,
            Action::PrincipalEdit,
        ] {
            assert!(engine.check(admin, action, &station), "{admin} {action}");
        }
    }
    assert!(engine.has_permission("operator-admin", "view-and-edit-operator-settings", "op"));
    assert!(!engine.has_permission(
        "multi-account-admin",
        "view-and-edit-operator-settings",
        "a1"
    ));
    assert!(engine.check("operator-admin", Action::ScopeEdit, &at("op")));
    assert!(!engine.check("multi-account-admin", Action::ScopeEdit, &at("a1")));
}

#[test]
fn multi_account_roles_are_granted_by_operator_level_admins() {
    let mut engine = multi_account();
    holder(&mut engine, "operator-admin", "operator-admin", "op");
    holder(&mut engine, "operator-agent", "operator-agent", "op");
    holder(&mut engine, "account-admin", "account-admin", "a1");
    holder(&mut engine, "multi-admin", "multi-account-admin", "a1");
    operator(&mut engine, "newcomer", "a1");
    for role in [
        "multi-account-viewer",
        "multi-account-agent",
        "multi-account-admin",
    ] {
        assert_eq!(
            engine.can_assign("operator-admin", "newcomer", role, "a1"),
            Ok(())
        );
        for granter in ["operator-agent", "account-admin", "multi-admin"] {
            assert_eq!(
                denial_code(engine.can_assign(granter, "newcomer", role, "a1")),
                Some(DenialCode::NoAuthority),
                "{granter} granting {role}"
            );
        }
    }
    for role in ["operator-viewer", "operator-agent"] {
        assert_eq!(
            engine.can_assign("operator-admin", "newcomer", role, "op"),
            Ok(())
        );
        assert_eq!(
            denial_code(engine.can_assign("account-admin", "newcomer", role, "op")),
            Some(DenialCode::NoAuthority)
        );
    }
    // Account roles come from the account's own settings.
    for role in ["account-viewer", "account-agent", "account-admin"] {
        for granter in ["operator-admin", "account-admin", "multi-admin"] {
            assert_eq!(
                engine.can_assign(granter, "newcomer", role, "a1"),
                Ok(()),
                "{granter}"
            );
        }
        assert_eq!(
            denial_code(engine.can_assign("operator-agent", "newcomer", role, "a1")),
            Some(DenialCode::NoAuthority)
        );
    }
}

#[test]
fn multi_account_admin_adds_account_users_who_may_use_the_app() {
    let mut engine = multi_account();
    holder(&mut engine, "multi-admin", "multi-account-admin", "a1");
    operator(&mut engine, "resident", "a1");
    assert!(!engine.has_permission("multi-admin", "use-app-as-end-user", "a1"));
    assert_eq!(
        engine.can_assign("multi-admin", "resident", "account-viewer", "a1"),
        Ok(())
    );

    let mut strict = Engine::new(without_escalation("multi-account", "account-viewer"));
    scopes(
        &mut strict,
        &[("op", "operator", "root"), ("a1", "account", "op")],
    );
    holder(&mut strict, "multi-admin", "multi-account-admin", "a1");
    operator(&mut strict, "resident", "a1");
    let refusal = strict
        .can_assign("multi-admin", "resident", "account-viewer", "a1")
        .unwrap_err();
    assert_eq!(refusal.code, DenialCode::Escalation);
    assert!(refusal.reason.contains("use-app-as-end-user"), "{refusal}");
}
