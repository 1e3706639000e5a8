//! `voltgate policy …`: inspect a role model without running the gateway.
//!
//! `validate` loads a preset and reports what it holds (or every load error with file and
//! line), `matrix` prints the role × permission table, and `explain` builds an engine from a
//! small fixture file and explains one decision.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde::Deserialize;
use voltgate_policy::{Action, ActionRule, Engine, Preset, Resource};

use crate::config::load_preset;

use voltgate_policy::ROOT_SCOPE_ID;

/// Exit status of `policy explain` when the decision is a denial.
pub(crate) const EXIT_DENIED: u8 = 3;

const FIXTURE_HELP: &str = "\
FIXTURE FORMAT (TOML, or JSON when the file name ends in .json):

  [[scopes]]            # parents before children; parent defaults to \"root\"
  id = \"north\"
  kind = \"site\"
  parent = \"root\"

  [[modules]]           # optional: switch a feature module on or off for a scope
  scope = \"north\"
  module = \"ev-drivers\"
  on = true

  [[principals]]        # kind: operator | driver | system
  id = \"alice\"
  kind = \"operator\"
  home_scope = \"north\"
  blocked = false       # optional

  [[roles]]             # optional: custom roles, where the preset allows them
  id = \"viewer\"
  label = \"Viewer\"      # optional
  permissions = [\"view-chargers\"]

  [[assignments]]
  principal = \"alice\"
  role = \"site-admin\"
  scope = \"north\"

RESOURCE is a scope or charger id (optionally written `scope:ID`) or `principal:ID`.

EXIT STATUS: 0 allowed, 3 denied, 1 on any error.";

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Load a preset and report its contents, or every error with file and line.
    Validate {
        /// Builtin preset name (zaptec, connect, tenant, virta, multi-account) or TOML path.
        preset: String,
    },
    /// Print every role × permission of a preset as a table.
    Matrix {
        /// Builtin preset name or TOML path.
        preset: String,
    },
    /// Print every engine action (the names the API, the audit log and `explain` use) with the
    /// permissions that grant it in a preset and the roles that hold one of them.
    Actions {
        /// Builtin preset name or TOML path.
        preset: String,
    },
    /// Explain one decision against a fixture estate.
    #[command(after_long_help = FIXTURE_HELP)]
    Explain {
        /// Builtin preset name or TOML path.
        preset: String,
        /// Fixture file with scopes, modules, principals, roles and assignments (see --help).
        #[arg(long)]
        fixture: PathBuf,
        /// The principal whose decision is explained.
        #[arg(long)]
        principal: String,
        /// An engine action, e.g. `command.reset` or `charge`.
        #[arg(long)]
        action: String,
        /// A scope or charger id, or `principal:ID`.
        #[arg(long)]
        resource: String,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one policy subcommand, writing its report to `out` (stdout in the binary).
pub fn run(command: PolicyCommand, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Validate { preset } => {
            let preset = load_preset(&preset)?;
            writeln!(out, "{}", summary(&preset))?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Matrix { preset } => {
            let preset = load_preset(&preset)?;
            write!(out, "{}", preset.matrix())?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Actions { preset } => {
            let preset = load_preset(&preset)?;
            write!(out, "{}", actions_table(&preset))?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Explain {
            preset,
            fixture,
            principal,
            action,
            resource,
            json,
        } => {
            let preset = load_preset(&preset)?;
            let engine = engine_from_fixture(preset, &fixture)?;
            let action: Action = action
                .parse()
                .with_context(|| format!("`{action}` is not an engine action"))?;
            let resource = parse_resource(&resource);
            let decision = engine.explain(&principal, action, &resource);
            if json {
                let report = serde_json::json!({
                    "principal": principal,
                    "action": action.as_str(),
                    "resource": resource_label(&resource),
                    "allowed": decision.allowed,
                    "reason": decision.reason,
                    "evidence": decision.evidence,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                let verdict = if decision.allowed {
                    "ALLOWED"
                } else {
                    "DENIED"
                };
                writeln!(out, "{verdict}")?;
                writeln!(out, "reason: {}", decision.reason)?;
                writeln!(
                    out,
                    "evidence: {}",
                    serde_json::to_string_pretty(&decision.evidence)?
                )?;
            }
            Ok(if decision.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_DENIED)
            })
        }
    }
}

/// One paragraph describing a valid preset.
pub(crate) fn summary(preset: &Preset) -> String {
    let kinds: Vec<&str> = preset.kinds().map(|k| k.id.as_str()).collect();
    let roles: Vec<&str> = preset.roles().map(|r| r.id.as_str()).collect();
    format!(
        "preset `{}` is valid: {}\n  kinds ({}): {}\n  roles ({}): {}\n  permissions: {}\n  modules: {}\n  actions mapped: {}\n  custom roles: {}",
        preset.id(),
        preset.label(),
        kinds.len(),
        kinds.join(", "),
        roles.len(),
        roles.join(", "),
        preset.permissions().count(),
        preset.modules().count(),
        Action::ALL.len(),
        if preset.custom_roles() { "allowed" } else { "not allowed" },
    )
}

/// One line per engine action: `action: permissions -> roles`.
pub(crate) fn actions_table(preset: &Preset) -> String {
    let mut text = String::new();
    for &action in Action::ALL {
        let line = match preset.action_permissions(action) {
            ActionRule::AdminOnly => "admin roles only".to_owned(),
            ActionRule::AnyOf(permissions) if permissions.is_empty() => {
                "the system principal only".to_owned()
            }
            ActionRule::AnyOf(permissions) => {
                let roles: Vec<&str> = preset
                    .roles()
                    .filter(|role| {
                        permissions.iter().any(|permission| {
                            preset.role_has_permission(&role.id, permission) == Some(true)
                        })
                    })
                    .map(|role| role.id.as_str())
                    .collect();
                let roles = if roles.is_empty() {
                    "no shipped role (custom roles may)".to_owned()
                } else {
                    roles.join(", ")
                };
                format!("{} -> {roles}", permissions.join(" | "))
            }
        };
        text.push_str(&format!("{}: {line}\n", action.as_str()));
    }
    text
}

/// `principal:ID` is a principal, `scope:ID` or a bare id is a scope (chargers are scopes).
pub(crate) fn parse_resource(text: &str) -> Resource {
    if let Some(id) = text.strip_prefix("principal:") {
        Resource::Principal(id.to_owned())
    } else if let Some(id) = text.strip_prefix("scope:") {
        Resource::Scope(id.to_owned())
    } else {
        Resource::Scope(text.to_owned())
    }
}

pub(crate) fn resource_label(resource: &Resource) -> String {
    match resource {
        Resource::Scope(id) => id.clone(),
        Resource::Principal(id) => format!("principal:{id}"),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fixture {
    #[serde(default)]
    pub scopes: Vec<FixtureScope>,
    #[serde(default)]
    pub modules: Vec<FixtureModule>,
    #[serde(default)]
    pub principals: Vec<FixturePrincipal>,
    #[serde(default)]
    pub roles: Vec<FixtureRole>,
    #[serde(default)]
    pub assignments: Vec<FixtureAssignment>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixtureScope {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub parent: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixtureModule {
    pub scope: String,
    pub module: String,
    pub on: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixturePrincipal {
    pub id: String,
    pub kind: String,
    pub home_scope: String,
    #[serde(default)]
    pub blocked: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixtureRole {
    pub id: String,
    #[serde(default)]
    pub label: Option<String>,
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixtureAssignment {
    pub principal: String,
    pub role: String,
    pub scope: String,
}

/// Reads a fixture file (TOML, or JSON for `*.json`).
pub(crate) fn read_fixture(path: &Path) -> anyhow::Result<Fixture> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read fixture {}", path.display()))?;
    let is_json = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(&text).with_context(|| format!("invalid fixture {}", path.display()))
    } else {
        toml::from_str(&text).with_context(|| format!("invalid fixture {}", path.display()))
    }
}

/// An engine holding exactly what the fixture describes.
pub(crate) fn engine_from_fixture(preset: Preset, path: &Path) -> anyhow::Result<Engine> {
    let fixture = read_fixture(path)?;
    build_engine(preset, &fixture).with_context(|| format!("in fixture {}", path.display()))
}

pub(crate) fn build_engine(preset: Preset, fixture: &Fixture) -> anyhow::Result<Engine> {
    let mut engine = Engine::new(preset);
    for scope in &fixture.scopes {
        let parent = scope.parent.as_deref().unwrap_or(ROOT_SCOPE_ID);
        engine
            .add_scope(&scope.id, &scope.kind, parent)
            .with_context(|| format!("scope `{}`", scope.id))?;
    }
    for module in &fixture.modules {
        engine
            .set_module(&module.scope, &module.module, module.on)
            .with_context(|| format!("module `{}` on scope `{}`", module.module, module.scope))?;
    }
    for principal in &fixture.principals {
        let Some(kind) = principal
            .kind
            .parse::<voltgate_policy::PrincipalKind>()
            .ok()
        else {
            bail!(
                "principal `{}`: kind `{}` is not operator, driver or system",
                principal.id,
                principal.kind
            );
        };
        engine
            .add_principal(&principal.id, kind, &principal.home_scope)
            .with_context(|| format!("principal `{}`", principal.id))?;
        if principal.blocked {
            engine
                .set_blocked(&principal.id, true)
                .with_context(|| format!("principal `{}`", principal.id))?;
        }
    }
    for role in &fixture.roles {
        let label = role.label.as_deref().unwrap_or(&role.id);
        engine
            .define_role(&role.id, label, &role.permissions)
            .with_context(|| format!("role `{}`", role.id))?;
    }
    for a in &fixture.assignments {
        engine
            .assign(&a.principal, &a.role, &a.scope)
            .with_context(|| {
                format!(
                    "assignment of `{}` to `{}` on `{}`",
                    a.role, a.principal, a.scope
                )
            })?;
    }
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_quiet(command: PolicyCommand) -> anyhow::Result<ExitCode> {
        run(command, &mut Vec::new())
    }

    #[test]
    fn reports_go_to_the_given_writer() {
        let mut out = Vec::new();
        run(
            PolicyCommand::Validate {
                preset: "virta".into(),
            },
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("preset `virta` is valid"), "{text}");
    }
    use std::io::Write;

    const CONNECT_FIXTURE: &str = r#"
        [[scopes]]
        id = "north"
        kind = "site"
        [[scopes]]
        id = "north-garage"
        kind = "site"
        parent = "north"
        [[scopes]]
        id = "south"
        kind = "site"
        [[scopes]]
        id = "CP-1"
        kind = "station"
        parent = "north-garage"
        [[principals]]
        id = "alice"
        kind = "operator"
        home_scope = "north"
        [[assignments]]
        principal = "alice"
        role = "site-admin"
        scope = "north"
    "#;

    fn fixture_file(text: &str, suffix: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn explain(file: &Path, principal: &str, action: &str, resource: &str) -> ExitCode {
        run_quiet(PolicyCommand::Explain {
            preset: "connect".into(),
            fixture: file.to_path_buf(),
            principal: principal.into(),
            action: action.into(),
            resource: resource.into(),
            json: true,
        })
        .unwrap()
    }

    #[test]
    fn fixture_roles_reach_descendants_and_not_siblings() {
        let file = fixture_file(CONNECT_FIXTURE, ".toml");
        let engine = engine_from_fixture(Preset::builtin("connect").unwrap(), file.path()).unwrap();
        let reset = Action::CommandReset;
        assert!(engine.check("alice", reset, &parse_resource("CP-1")));
        assert!(!engine.check("alice", reset, &parse_resource("scope:south")));
        assert_eq!(
            explain(file.path(), "alice", "command.reset", "CP-1"),
            ExitCode::SUCCESS
        );
        assert_eq!(
            explain(file.path(), "alice", "command.reset", "south"),
            ExitCode::from(EXIT_DENIED)
        );
    }

    #[test]
    fn json_fixtures_work_too() {
        let json = r#"{
            "scopes": [{"id": "north", "kind": "site"}],
            "principals": [{"id": "bob", "kind": "operator", "home_scope": "north", "blocked": true}],
            "assignments": [{"principal": "bob", "role": "site-admin", "scope": "north"}]
        }"#;
        let file = fixture_file(json, ".json");
        let engine = engine_from_fixture(Preset::builtin("connect").unwrap(), file.path()).unwrap();
        assert!(
            !engine.check("bob", Action::ChargerView, &parse_resource("north")),
            "a blocked principal is denied"
        );
    }

    #[test]
    fn fixture_errors_name_the_entry() {
        let bad_kind = fixture_file("[[scopes]]\nid = \"x\"\nkind = \"galaxy\"\n", ".toml");
        let err =
            engine_from_fixture(Preset::builtin("connect").unwrap(), bad_kind.path()).unwrap_err();
        assert!(format!("{err:#}").contains("scope `x`"), "{err:#}");

        let unknown_field = fixture_file(
            "[[scopes]]\nid = \"x\"\nkind = \"site\"\ncolour = 1\n",
            ".toml",
        );
        let err = read_fixture(unknown_field.path()).unwrap_err();
        assert!(format!("{err:#}").contains("colour"), "{err:#}");

        let bad_principal = fixture_file(
            "[[principals]]\nid = \"p\"\nkind = \"robot\"\nhome_scope = \"root\"\n",
            ".toml",
        );
        let err = engine_from_fixture(Preset::builtin("connect").unwrap(), bad_principal.path())
            .unwrap_err();
        assert!(format!("{err:#}").contains("robot"), "{err:#}");
    }

    #[test]
    fn unknown_action_is_an_error() {
        let file = fixture_file(CONNECT_FIXTURE, ".toml");
        let result = run_quiet(PolicyCommand::Explain {
            preset: "connect".into(),
            fixture: file.path().to_path_buf(),
            principal: "alice".into(),
            action: "charger.teleport".into(),
            resource: "CP-1".into(),
            json: false,
        });
        assert!(result.is_err());
    }

    #[test]
    fn validate_and_matrix_accept_builtin_names_and_paths() {
        for name in Preset::BUILTIN {
            let preset = load_preset(name).unwrap();
            let text = summary(&preset);
            assert!(
                text.contains(&format!("preset `{name}` is valid")),
                "{text}"
            );
            assert!(!preset.matrix().is_empty());
            let actions = actions_table(&preset);
            assert_eq!(actions.lines().count(), Action::ALL.len(), "{actions}");
        }
        let connect = actions_table(&load_preset("connect").unwrap());
        assert!(
            connect
                .lines()
                .any(|line| line.starts_with("command.reset: ") && line.contains("site-admin")),
            "{connect}"
        );
        let broken = fixture_file("[preset]\nid = \"broken\"\n", ".toml");
        let err = run_quiet(PolicyCommand::Validate {
            preset: broken.path().display().to_string(),
        })
        .unwrap_err();
        assert!(!format!("{err:#}").is_empty());
    }

    #[test]
    fn resource_syntax() {
        assert!(
            matches!(parse_resource("principal:alice"), Resource::Principal(id) if id == "alice")
        );
        assert!(matches!(parse_resource("scope:north"), Resource::Scope(id) if id == "north"));
        assert!(matches!(parse_resource("CP-1"), Resource::Scope(id) if id == "CP-1"));
        assert_eq!(
            resource_label(&parse_resource("principal:bob")),
            "principal:bob"
        );
    }
}
