//! A small preset and estate shared by the engine tests, independent of the shipped presets.

#![allow(dead_code)]

use voltgate_policy::{Engine, Preset, PrincipalKind};

/// Options for [`fixture_toml`].
#[derive(Debug, Clone, Copy)]
pub struct FixtureOptions {
    pub upward_visibility: bool,
    pub custom_roles: bool,
    /// Include `helper`, a role that may be granted by a granter lacking its permissions.
    pub escalating_role: bool,
    /// Acting for an operator needs the actor's own roles (`acting_for_operators = "same-roles"`).
    pub same_roles: bool,
}

impl Default for FixtureOptions {
    fn default() -> Self {
        FixtureOptions {
            upward_visibility: false,
            custom_roles: false,
            escalating_role: true,
            same_roles: false,
        }
    }
}

pub fn fixture_toml(options: FixtureOptions) -> String {
    let mut text = format!(
        r#"
[preset]
id = "fixture"
label = "Test fixture"
custom_roles = {custom_roles}
upward_visibility = {upward_visibility}
acting_for_operators = "{acting_for}"

[[kinds]]
id = "organisation"
parents = ["root", "organisation"]

[[kinds]]
id = "site"
parents = ["organisation"]

[[kinds]]
id = "station"
parents = ["site", "organisation"]

[[modules]]
id = "analytics"
label = "Analytics"
default_on = false

[[modules]]
id = "billing"
label = "Billing"
default_on = true

[[modules]]
id = "pro"
label = "Pro"

[[permissions]]
id = "view-stations"
label = "View stations"
group = "Stations"

[[permissions]]
id = "operate-stations"
label = "Operate stations"
group = "Stations"

[[permissions]]
id = "configure-stations"
label = "Configure stations"
group = "Stations"

[[permissions]]
id = "view-sessions"
label = "View sessions"
group = "Sessions"

[[permissions]]
id = "export-sessions"
label = "Export sessions"
group = "Sessions"
module = "analytics"

[[permissions]]
id = "view-billing"
label = "View billing"
module = "billing"

[[permissions]]
id = "view-drivers"
label = "View drivers"
personal_data = true

[[permissions]]
id = "edit-drivers"
label = "Edit drivers"
personal_data = true

[[permissions]]
id = "start-charging"
label = "Start charging"

[[permissions]]
id = "invite-viewer"
label = "Invite viewers"

[[permissions]]
id = "invite-operator"
label = "Invite operators"

[[permissions]]
id = "manage-operators"
label = "Manage operators"
admin = true

[actions]
"charger.view" = ["view-stations"]
"charger.register" = ["configure-stations"]
"charger.edit" = ["configure-stations"]
"charger.security" = ["configure-stations"]
"command.remote-start" = ["operate-stations"]
"command.remote-stop" = ["operate-stations"]
"command.unlock" = ["operate-stations"]
"command.reset" = ["operate-stations", "configure-stations"]
"command.update-firmware" = ["configure-stations"]
"command.get-configuration" = ["configure-stations"]
"command.change-configuration" = ["configure-stations"]
"command.set-max-current" = []
"command.change-availability" = ["operate-stations"]
"command.trigger-message" = ["configure-stations"]
"command.get-log" = ["configure-stations"]
"command.clear-cache" = ["configure-stations"]
"command.data-transfer" = []
"transaction.view" = ["view-sessions"]
"transaction.view-own" = ["start-charging"]
"transaction.export" = ["export-sessions"]
"driver.view" = ["view-drivers"]
"driver.edit" = ["edit-drivers"]
"driver.delete" = ["edit-drivers"]
"id-token.edit" = ["edit-drivers"]
"principal.view" = ["manage-operators", "invite-viewer"]
"principal.edit" = ["manage-operators"]
"principal.delete" = ["manage-operators"]
"role.edit" = "admin-only"
"role.assign" = ["invite-viewer", "invite-operator"]
"scope.edit" = "admin-only"
"module.edit" = "admin-only"
"audit.view" = ["view-billing"]
"charge" = ["start-charging"]

[[roles]]
id = "admin"
label = "Administrator"
admin = true
assignable_on = ["root", "organisation"]

[[roles]]
id = "viewer"
label = "Viewer"
permissions = ["view-stations", "view-sessions", "view-billing", "export-sessions"]
assignable_on = ["organisation", "site", "station"]
granted_by = ["invite-viewer"]

[[roles]]
id = "operator"
label = "Operator"
permissions = ["view-stations", "operate-stations", "view-sessions", "start-charging", "invite-viewer", "view-billing"]
assignable_on = ["organisation", "site"]
granted_by = ["invite-operator"]

[[roles]]
id = "technician"
label = "Technician"
permissions = ["view-stations", "operate-stations", "configure-stations"]
assignable_on = ["organisation", "site", "station"]
station_requires_module = "pro"
granted_by = ["invite-operator"]

[[roles]]
id = "driver-manager"
label = "Driver manager"
permissions = ["view-drivers", "edit-drivers", "invite-viewer", "invite-operator", "view-stations", "view-sessions", "operate-stations", "view-billing", "export-sessions", "start-charging"]
assignable_on = ["organisation"]

[[roles]]
id = "driver"
label = "Driver"
permissions = ["start-charging"]
assignable_on = ["site", "station"]
granted_by = ["edit-drivers"]

[[roles]]
id = "fleet-operator"
label = "Fleet operator"
permissions = ["start-charging", "view-stations"]
assignable_on = ["organisation"]
can_charge = false
granted_by = ["invite-operator"]
"#,
        custom_roles = options.custom_roles,
        upward_visibility = options.upward_visibility,
        acting_for = if options.same_roles {
            "same-roles"
        } else {
            "grant"
        },
    );
    if options.escalating_role {
        text.push_str(
            r#"
# Handed out by viewers although they cannot configure stations themselves.
[[roles]]
id = "helper"
label = "Helper"
permissions = ["configure-stations"]
assignable_on = ["site"]
granted_by = ["invite-viewer"]
allow_escalation = true
"#,
        );
    }
    text
}

pub fn fixture_preset(options: FixtureOptions) -> Preset {
    Preset::parse("fixture.toml", &fixture_toml(options)).expect("fixture preset loads")
}

/// root
/// ├── org-a
/// │   ├── site-a1: st-a1-1, st-a1-2
/// │   ├── site-a2: st-a2-1
/// │   └── org-a-sub (organisation): site-as1: st-as1-1
/// └── org-b
///     └── site-b1: st-b1-1
pub fn fixture_estate(options: FixtureOptions) -> Engine {
    let mut engine = Engine::new(fixture_preset(options));
    for (id, kind, parent) in [
        ("org-a", "organisation", "root"),
        ("site-a1", "site", "org-a"),
        ("st-a1-1", "station", "site-a1"),
        ("st-a1-2", "station", "site-a1"),
        ("site-a2", "site", "org-a"),
        ("st-a2-1", "station", "site-a2"),
        ("org-a-sub", "organisation", "org-a"),
        ("site-as1", "site", "org-a-sub"),
        ("st-as1-1", "station", "site-as1"),
        ("org-b", "organisation", "root"),
        ("site-b1", "site", "org-b"),
        ("st-b1-1", "station", "site-b1"),
    ] {
        engine.add_scope(id, kind, parent).expect("fixture scope");
    }
    engine
        .add_principal("system", PrincipalKind::System, "root")
        .expect("system principal");
    engine
}

pub fn add_operator(engine: &mut Engine, id: &str, home: &str) {
    engine
        .add_principal(id, PrincipalKind::Operator, home)
        .expect("principal added");
}
