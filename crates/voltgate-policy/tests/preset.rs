//! Loading presets: the builtin files, and every validation error with its file and line.

mod common;

use common::{fixture_toml, FixtureOptions};
use voltgate_policy::{Action, ActionRule, Preset, PresetError, PresetProblem};

/// A valid preset, small enough to mutate line by line in tests.
fn minimal(actions_extra: &str, body_extra: &str) -> String {
    let mut actions = String::new();
    for action in Action::ALL {
        if *action != Action::ChargerView {
            actions.push_str(&format!("\"{action}\" = []\n"));
        }
    }
    format!(
        r#"[preset]
id = "mini"
label = "Mini"

[[kinds]]
id = "site"
parents = ["root"]

[[kinds]]
id = "station"
parents = ["site"]

[[modules]]
id = "extra"
label = "Extra"

[[permissions]]
id = "view"
label = "View"

[[permissions]]
id = "boss"
label = "Boss"
admin = true

[actions]
"charger.view" = ["view"]
{actions}{actions_extra}
[[roles]]
id = "viewer"
label = "Viewer"
permissions = ["view"]
assignable_on = ["site"]
{body_extra}"#
    )
}

fn issues(source_name: &str, text: &str) -> Vec<(usize, PresetProblem)> {
    match Preset::parse(source_name, text) {
        Ok(_) => panic!("preset unexpectedly loaded"),
        Err(error) => error
            .issues()
            .iter()
            .map(|issue| {
                assert_eq!(issue.file, source_name);
                (issue.line, issue.problem.clone())
            })
            .collect(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|index| index + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in text"))
}

#[test]
fn the_minimal_preset_loads() {
    let preset = Preset::parse("mini.toml", &minimal("", "")).unwrap();
    assert_eq!(preset.id(), "mini");
    assert_eq!(preset.label(), "Mini");
    assert_eq!(preset.seed(), None);
    assert!(!preset.custom_roles());
    assert_eq!(preset.kinds().count(), 2);
    assert_eq!(preset.permissions().count(), 2);
    assert_eq!(
        preset.modules().next().map(|module| module.default_on),
        Some(false)
    );
    assert_eq!(
        preset.action_permissions(Action::ChargerView),
        ActionRule::AnyOf(vec!["view".into()])
    );
    let role = preset.role("viewer").unwrap();
    assert!(role.can_charge, "can_charge defaults to true");
    assert!(!role.allow_escalation);
    assert!(role.granted_by.is_empty());
}

#[test]
fn every_builtin_preset_loads_and_is_named_after_its_file() {
    for &name in Preset::BUILTIN {
        let preset = Preset::builtin(name).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(preset.id(), name);
        assert!(preset.seed().is_some(), "{name} names its seed");
        assert!(preset.kinds().any(|kind| kind.id == "station"));
        assert!(preset.roles().count() > 0);
    }
    assert_eq!(
        Preset::builtin("nope").unwrap_err(),
        PresetError::UnknownBuiltin("nope".into())
    );
}

#[test]
fn errors_name_file_line_and_offending_name() {
    let text = minimal("", "").replace(r#"permissions = ["view"]"#, r#"permissions = ["veiw"]"#);
    let error = Preset::parse("presets/mini.toml", &text).unwrap_err();
    let line = line_of(&text, "\"veiw\"");
    assert_eq!(
        error.to_string(),
        format!("presets/mini.toml:{line}: unknown permission `veiw`")
    );
}

#[test]
fn unknown_kind_permission_and_module_names_are_reported() {
    let body = r#"
[[roles]]
id = "tech"
label = "Tech"
permissions = ["view"]
assignable_on = ["building"]
station_requires_module = "turbo"
granted_by = ["invite"]
"#;
    let text =
        minimal(r#""command.reset" = ["reboot"]"#, body).replace("\"command.reset\" = []\n", "");
    let text = text.replace(
        "[[permissions]]\nid = \"view\"\nlabel = \"View\"",
        "[[permissions]]\nid = \"view\"\nlabel = \"View\"\nmodule = \"missing\"",
    );
    let found = issues("mini.toml", &text);
    let expected = [
        (
            line_of(&text, "\"missing\""),
            PresetProblem::UnknownModule {
                name: "missing".into(),
            },
        ),
        (
            line_of(&text, "\"reboot\""),
            PresetProblem::UnknownPermission {
                name: "reboot".into(),
            },
        ),
        (
            line_of(&text, "\"building\""),
            PresetProblem::UnknownKind {
                name: "building".into(),
            },
        ),
        (
            line_of(&text, "\"turbo\""),
            PresetProblem::UnknownModule {
                name: "turbo".into(),
            },
        ),
        (
            line_of(&text, "\"invite\""),
            PresetProblem::UnknownPermission {
                name: "invite".into(),
            },
        ),
    ];
    for issue in &expected {
        assert!(found.contains(issue), "missing {issue:?} in {found:?}");
    }
    assert_eq!(found.len(), expected.len(), "{found:?}");
}

#[test]
fn duplicate_ids_are_reported() {
    let body = r#"
[[roles]]
id = "viewer"
label = "Viewer again"
permissions = ["view"]
assignable_on = ["site"]

[[roles]]
id = "other"
label = "Other"
permissions = ["view", "view"]
assignable_on = ["site", "site"]
"#;
    let text = minimal("", body).replace(
        "[[permissions]]\nid = \"boss\"",
        "[[permissions]]\nid = \"view\"\nlabel = \"View\"\n\n[[kinds]]\nid = \"site\"\nparents = [\"root\"]\n\n[[modules]]\nid = \"extra\"\nlabel = \"Again\"\n\n[[permissions]]\nid = \"boss\"",
    );
    let found = issues("mini.toml", &text);
    let whats: Vec<(&str, String)> = found
        .iter()
        .filter_map(|(_, problem)| match problem {
            PresetProblem::Duplicate { what, name } => Some((*what, name.clone())),
            _ => None,
        })
        .collect();
    for expected in [
        ("permission", "view"),
        ("kind", "site"),
        ("module", "extra"),
        ("role", "viewer"),
        ("permission in role", "view"),
        ("assignable kind", "site"),
    ] {
        assert!(
            whats.contains(&(expected.0, expected.1.to_owned())),
            "missing duplicate {expected:?} in {found:?}"
        );
    }
}

#[test]
fn a_role_must_be_assignable_somewhere() {
    let text = minimal("", "").replace("assignable_on = [\"site\"]\n", "");
    let found = issues("mini.toml", &text);
    assert_eq!(
        found,
        [(
            line_of(&text, "id = \"viewer\""),
            PresetProblem::AssignableNowhere {
                role: "viewer".into()
            }
        )]
    );
}

#[test]
fn every_action_must_be_mapped_and_only_known_actions() {
    let text = minimal("\"charger.delete\" = []\n", "").replace("\"command.unlock\" = []\n", "");
    let found = issues("mini.toml", &text);
    assert!(found.contains(&(
        line_of(&text, "[actions]"),
        PresetProblem::UnmappedAction {
            action: Action::CommandUnlock
        }
    )));
    assert!(found.contains(&(
        line_of(&text, "charger.delete"),
        PresetProblem::UnknownAction {
            name: "charger.delete".into()
        }
    )));
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn action_values_are_lists_or_admin_only() {
    let text = minimal("", "").replace("\"role.edit\" = []", "\"role.edit\" = \"admins\"");
    let found = issues("mini.toml", &text);
    assert_eq!(
        found,
        [(
            line_of(&text, "\"admins\""),
            PresetProblem::InvalidActionRule {
                action: "role.edit".into(),
                value: "admins".into()
            }
        )]
    );
    let text = minimal("", "").replace("\"role.edit\" = []", "\"role.edit\" = \"admin-only\"");
    let preset = Preset::parse("mini.toml", &text).unwrap();
    assert_eq!(
        preset.action_permissions(Action::RoleEdit),
        ActionRule::AdminOnly
    );
}

#[test]
fn admin_permissions_stay_out_of_regular_roles() {
    let text = minimal("", "").replace(
        r#"permissions = ["view"]"#,
        r#"permissions = ["view", "boss"]"#,
    );
    let found = issues("mini.toml", &text);
    assert_eq!(
        found,
        [(
            line_of(&text, "\"boss\"]"),
            PresetProblem::AdminPermissionInRegularRole {
                role: "viewer".into(),
                permission: "boss".into()
            }
        )]
    );
}

#[test]
fn admin_roles_list_neither_permissions_nor_granters() {
    let body = r#"
[[roles]]
id = "chief"
label = "Chief"
admin = true
permissions = ["view"] # chief
assignable_on = ["root"]
granted_by = ["boss"]
"#;
    let text = minimal("", body);
    let found = issues("mini.toml", &text);
    assert_eq!(
        found,
        [
            (
                line_of(&text, "# chief"),
                PresetProblem::AdminRoleWithPermissions {
                    role: "chief".into()
                }
            ),
            (
                line_of(&text, "granted_by = [\"boss\"]"),
                PresetProblem::AdminRoleWithGrantedBy {
                    role: "chief".into()
                }
            ),
        ]
    );
}

#[test]
fn kinds_need_known_parents_a_station_and_no_root() {
    let text = minimal("", "")
        .replace("parents = [\"site\"]", "parents = [\"depot\"]")
        .replace(
            "[[kinds]]\nid = \"site\"",
            "[[kinds]]\nid = \"root\"\nparents = []\n\n[[kinds]]\nid = \"site\"",
        );
    let found = issues("mini.toml", &text);
    assert!(found.contains(&(line_of(&text, "id = \"root\""), PresetProblem::RootDeclared)));
    assert!(found.contains(&(
        line_of(&text, "\"depot\""),
        PresetProblem::UnknownParentKind {
            kind: "station".into(),
            parent: "depot".into()
        }
    )));

    let text = minimal("", "").replace("id = \"station\"", "id = \"charger\"");
    let found = issues("mini.toml", &text);
    assert_eq!(
        found,
        [(
            line_of(&text, "[[kinds]]"),
            PresetProblem::MissingStationKind
        )]
    );
}

#[test]
fn the_preset_id_must_match_the_file_stem() {
    let text = minimal("", "");
    let found = issues("presets/other.toml", &text);
    assert_eq!(
        found,
        [(
            line_of(&text, "id = \"mini\""),
            PresetProblem::IdMismatch {
                id: "mini".into(),
                stem: "other".into()
            }
        )]
    );
    // A source that is not a file name is not checked.
    assert!(Preset::parse("<inline>", &text).is_ok());
}

#[test]
fn ids_are_kebab_case() {
    let text = minimal("", "").replace("id = \"viewer\"", "id = \"Viewer_Role\"");
    let found = issues("mini.toml", &text);
    assert_eq!(
        found,
        [(
            line_of(&text, "Viewer_Role"),
            PresetProblem::InvalidId {
                what: "role",
                name: "Viewer_Role".into()
            }
        )]
    );
}

#[test]
fn syntax_errors_and_unknown_fields_carry_their_line() {
    let text = minimal("", "").replace(
        "label = \"Viewer\"",
        "label = \"Viewer\"\ncan_chrage = false",
    );
    let found = issues("mini.toml", &text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, line_of(&text, "can_chrage"));
    assert!(
        matches!(&found[0].1, PresetProblem::Syntax(message) if message.contains("can_chrage"))
    );

    let text = minimal("", "").replace("label = \"Mini\"", "label = \"Mini");
    let found = issues("mini.toml", &text);
    assert_eq!(found[0].0, line_of(&text, "label = \"Mini"));
}

#[test]
fn the_permission_bitset_capacity_is_enforced() {
    let mut permissions = String::new();
    for index in 0..voltgate_policy::PermissionSet::CAPACITY {
        permissions.push_str(&format!(
            "[[permissions]]\nid = \"p{index}\"\nlabel = \"P\"\n\n"
        ));
    }
    let text = minimal("", "").replace("[actions]", &format!("{permissions}[actions]"));
    let found = issues("mini.toml", &text);
    assert!(
        found.iter().any(|(_, problem)| matches!(
            problem,
            PresetProblem::TooMany { what: "permissions", count, limit: 256 } if *count == 258
        )),
        "{found:?}"
    );
}

#[test]
fn the_fixture_matrix_marks_each_cell() {
    let preset = Preset::parse("fixture.toml", &fixture_toml(FixtureOptions::default())).unwrap();
    let matrix = preset.matrix();
    let lines: Vec<&str> = matrix.lines().collect();
    assert!(lines[0].starts_with("fixture: 8 roles × 12 permissions"));
    let header = lines[1];
    assert!(header.starts_with("permission"));
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns[1..],
        [
            "admin*",
            "viewer",
            "operator",
            "technician",
            "driver-manager",
            "driver",
            "fleet-operator",
            "helper"
        ]
    );
    let row = lines
        .iter()
        .find(|line| line.starts_with("configure-stations"))
        .unwrap();
    let marks: Vec<&str> = row.split_whitespace().skip(1).collect();
    assert_eq!(marks, ["✓", "·", "·", "✓", "·", "·", "·", "✓"]);
    let export = lines
        .iter()
        .find(|line| line.starts_with("export-sessions"))
        .unwrap();
    assert!(export.ends_with("module: analytics"));
    assert!(lines.contains(&"[Stations]"));
    for role in preset.roles() {
        for permission in preset.permissions() {
            let cell = preset
                .role_has_permission(&role.id, &permission.id)
                .unwrap();
            assert_eq!(
                cell,
                role.admin || role.permissions.contains(&permission.id)
            );
        }
    }
    assert_eq!(preset.role_has_permission("nope", "view-stations"), None);
    assert_eq!(preset.role_has_permission("viewer", "nope"), None);
}

#[test]
fn builtin_matrices_list_every_role_and_permission() {
    for &name in Preset::BUILTIN {
        let preset = Preset::builtin(name).unwrap();
        let matrix = preset.matrix();
        for permission in preset.permissions() {
            assert!(
                matrix
                    .lines()
                    .any(|line| line.split_whitespace().next() == Some(permission.id.as_str())),
                "{name}: {}",
                permission.id
            );
        }
        let header = matrix.lines().nth(1).unwrap();
        for role in preset.roles() {
            assert!(header.contains(role.id.as_str()), "{name}: {}", role.id);
        }
    }
}
