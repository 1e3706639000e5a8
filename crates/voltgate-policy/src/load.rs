//! Reading preset TOML and rejecting anything the engine could misread.
//!
//! A preset is hand-written from a help-centre page, so every reference between its parts is
//! checked and every problem is reported with the file, the line and the offending name. All
//! problems found are reported together so an author can fix a file in one pass.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::action::Action;
use crate::bitset::PermissionSet;
use crate::id_map::{name_map, NameMap};
use crate::preset::{
    ActingFor, ActionRule, CompiledRole, CompiledRule, KindDef, KindIndex, ModuleDef,
    PermissionDef, PresetData, RoleDef, MAX_KINDS, MAX_MODULES, ROOT_KIND, ROOT_KIND_INDEX,
    STATION_KIND,
};

/// The value an action maps to when only admin roles may perform it.
pub const ADMIN_ONLY: &str = "admin-only";

/// Why a preset could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    #[error("no builtin preset named `{0}`")]
    UnknownBuiltin(String),
    /// Every problem found, in file order.
    #[error("{}", join_issues(.0))]
    Invalid(Vec<PresetIssue>),
}

impl PresetError {
    /// The individual problems (empty for [`PresetError::UnknownBuiltin`]).
    pub fn issues(&self) -> &[PresetIssue] {
        match self {
            PresetError::UnknownBuiltin(_) => &[],
            PresetError::Invalid(issues) => issues,
        }
    }
}

fn join_issues(issues: &[PresetIssue]) -> String {
    issues
        .iter()
        .map(PresetIssue::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One problem at one place in a preset file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct PresetIssue {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub problem: PresetProblem,
}

/// What is wrong, naming the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetProblem {
    #[error("{0}")]
    Syntax(String),
    #[error("preset id `{id}` does not match the file name `{stem}`")]
    IdMismatch { id: String, stem: String },
    #[error("`{name}` is not a valid {what} id (use kebab-case: lowercase letters, digits, single hyphens)")]
    InvalidId { what: &'static str, name: String },
    #[error("duplicate {what} `{name}`")]
    Duplicate { what: &'static str, name: String },
    #[error("kind `root` is implicit and must not be declared")]
    RootDeclared,
    #[error("unknown kind `{name}`")]
    UnknownKind { name: String },
    #[error("kind `{kind}` names unknown parent kind `{parent}`")]
    UnknownParentKind { kind: String, parent: String },
    #[error("kind `{kind}` names no parent kinds, so no scope of it could ever exist")]
    KindWithoutParents { kind: String },
    #[error("the preset declares no `station` kind")]
    MissingStationKind,
    #[error("unknown permission `{name}`")]
    UnknownPermission { name: String },
    #[error("unknown module `{name}`")]
    UnknownModule { name: String },
    #[error("role `{role}` is assignable on no scope kind")]
    AssignableNowhere { role: String },
    #[error("non-admin role `{role}` contains admin permission `{permission}`")]
    AdminPermissionInRegularRole { role: String, permission: String },
    #[error("admin role `{role}` lists permissions; admin roles hold every permission implicitly")]
    AdminRoleWithPermissions { role: String },
    #[error("admin role `{role}` lists granted_by; only admin roles may grant admin roles")]
    AdminRoleWithGrantedBy { role: String },
    #[error("action `{action}` is not mapped in [actions]")]
    UnmappedAction { action: Action },
    #[error("unknown action `{name}`")]
    UnknownAction { name: String },
    #[error("action `{action}` maps to `{value}`; use a list of permissions or \"admin-only\"")]
    InvalidActionRule { action: String, value: String },
    #[error("{count} {what} exceed the limit of {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreset {
    preset: Spanned<RawHeader>,
    #[serde(default)]
    kinds: Vec<Spanned<RawKind>>,
    #[serde(default)]
    modules: Vec<Spanned<RawModule>>,
    #[serde(default)]
    permissions: Vec<Spanned<RawPermission>>,
    actions: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawRule>>>>,
    #[serde(default)]
    roles: Vec<Spanned<RawRole>>,
    module_switching: Option<Spanned<RawModuleSwitching>>,
}

/// Who may switch modules, where the plain `module.edit` action is not the whole rule.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawModuleSwitching {
    /// Permissions that switch paid modules (and only those) where they are held.
    #[serde(default)]
    paid: Vec<Spanned<String>>,
    /// Permissions that switch unpaid modules strictly below the scope where they are held.
    #[serde(default)]
    below: Vec<Spanned<String>>,
    /// A scope under another non-root scope never has a module its parent lacks.
    #[serde(default)]
    nested: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    id: Spanned<String>,
    label: String,
    seed: Option<String>,
    #[serde(default)]
    custom_roles: bool,
    #[serde(default)]
    upward_visibility: bool,
    #[serde(default)]
    acting_for_operators: ActingFor,
    #[serde(default)]
    delete_requires_blocked: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    id: Spanned<String>,
    parents: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    id: Spanned<String>,
    label: String,
    #[serde(default)]
    default_on: bool,
    #[serde(default)]
    paid: bool,
    #[serde(default)]
    switchable_on: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermission {
    id: Spanned<String>,
    label: String,
    group: Option<String>,
    module: Option<Spanned<String>>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    personal_data: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    id: Spanned<String>,
    label: String,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    permissions: Vec<Spanned<String>>,
    #[serde(default)]
    assignable_on: Vec<Spanned<String>>,
    station_requires_module: Option<Spanned<String>>,
    #[serde(default = "default_can_charge")]
    can_charge: bool,
    #[serde(default)]
    granted_by: Vec<Spanned<String>>,
    #[serde(default)]
    removed_by: Vec<Spanned<String>>,
    #[serde(default)]
    allow_escalation: bool,
}

fn default_can_charge() -> bool {
    true
}

/// An `[actions]` value: a permission list or a bare string (which must be `admin-only`).
enum RawRule {
    Named(String),
    AnyOf(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawRule, D::Error> {
        struct RuleVisitor;

        impl<'de> Visitor<'de> for RuleVisitor {
            type Value = RawRule;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of permission ids or \"admin-only\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawRule, E> {
                Ok(RawRule::Named(text.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<RawRule, A::Error> {
                let mut permissions = Vec::new();
                while let Some(permission) = items.next_element::<Spanned<String>>()? {
                    permissions.push(permission);
                }
                Ok(RawRule::AnyOf(permissions))
            }
        }

        deserializer.deserialize_any(RuleVisitor)
    }
}

/// Collects issues and turns byte offsets into line numbers.
struct Reporter<'a> {
    file: &'a str,
    line_starts: Vec<usize>,
    issues: Vec<PresetIssue>,
}

impl<'a> Reporter<'a> {
    fn new(file: &'a str, text: &str) -> Reporter<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(offset, _)| offset + 1))
            .collect();
        Reporter {
            file,
            line_starts,
            issues: Vec::new(),
        }
    }

    fn line_of(&self, span: &Range<usize>) -> usize {
        self.line_starts
            .partition_point(|&start| start <= span.start)
    }

    fn report(&mut self, span: &Range<usize>, problem: PresetProblem) {
        let line = self.line_of(span).max(1);
        self.issues.push(PresetIssue {
            file: self.file.to_owned(),
            line,
            problem,
        });
    }

    fn finish(mut self) -> Result<(), PresetError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            self.issues.sort_by_key(|issue| issue.line);
            Err(PresetError::Invalid(self.issues))
        }
    }
}

pub(crate) fn load(source_name: &str, text: &str) -> Result<PresetData, PresetError> {
    let mut reporter = Reporter::new(source_name, text);
    let raw: RawPreset = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            reporter.report(&span, PresetProblem::Syntax(error.message().to_owned()));
            return Err(PresetError::Invalid(reporter.issues));
        }
    };
    let data = compile(raw, source_name, &mut reporter);
    reporter.finish()?;
    Ok(data)
}

pub(crate) fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn file_stem(source_name: &str) -> Option<&str> {
    let file_name = source_name.rsplit(['/', '\\']).next()?;
    file_name.strip_suffix(".toml")
}

/// Gives each name an index, reporting malformed and repeated ids.
fn index_names<'a>(
    what: &'static str,
    names: impl Iterator<Item = &'a Spanned<String>>,
    reporter: &mut Reporter<'_>,
) -> NameMap<usize> {
    let mut index = name_map();
    for name in names {
        if !is_kebab_case(name.get_ref()) {
            reporter.report(
                &name.span(),
                PresetProblem::InvalidId {
                    what,
                    name: name.get_ref().clone(),
                },
            );
        }
        if index.contains_key(name.get_ref()) {
            reporter.report(
                &name.span(),
                PresetProblem::Duplicate {
                    what,
                    name: name.get_ref().clone(),
                },
            );
        } else {
            index.insert(name.get_ref().clone(), index.len());
        }
    }
    index
}

/// Resolves a list of permission names to a set, reporting unknown and repeated entries.
fn permission_set(
    names: &[Spanned<String>],
    permission_index: &NameMap<usize>,
    duplicate_what: &'static str,
    reporter: &mut Reporter<'_>,
) -> PermissionSet {
    let mut set = PermissionSet::EMPTY;
    for name in names {
        match permission_index.get(name.get_ref()) {
            Some(&index) => {
                if set.contains(index) {
                    reporter.report(
                        &name.span(),
                        PresetProblem::Duplicate {
                            what: duplicate_what,
                            name: name.get_ref().clone(),
                        },
                    );
                }
                set.insert(index);
            }
            None => reporter.report(
                &name.span(),
                PresetProblem::UnknownPermission {
                    name: name.get_ref().clone(),
                },
            ),
        }
    }
    set
}

fn strings(names: &[Spanned<String>]) -> Vec<String> {
    names.iter().map(|name| name.get_ref().clone()).collect()
}

fn compile(raw: RawPreset, source_name: &str, reporter: &mut Reporter<'_>) -> PresetData {
    let header = raw.preset.into_inner();
    if let Some(stem) = file_stem(source_name) {
        if header.id.get_ref() != stem {
            reporter.report(
                &header.id.span(),
                PresetProblem::IdMismatch {
                    id: header.id.get_ref().clone(),
                    stem: stem.to_owned(),
                },
            );
        }
    }

    let (kinds, kind_index, kind_parents, station_kind) = compile_kinds(&raw.kinds, reporter);
    let mut kind_names = vec![String::new(); kind_index.len()];
    for (name, &index) in &kind_index {
        if let Some(slot) = kind_names.get_mut(usize::from(index)) {
            slot.clone_from(name);
        }
    }
    let compiled_modules = compile_modules(&raw.modules, &kind_index, reporter);
    let (modules, module_index, modules_default_on) = (
        compiled_modules.defs,
        compiled_modules.index,
        compiled_modules.default_on,
    );
    let permissions = compile_permissions(&raw.permissions, &module_index, reporter);
    let switching = raw
        .module_switching
        .as_ref()
        .map(Spanned::get_ref)
        .map_or_else(
            || (PermissionSet::EMPTY, PermissionSet::EMPTY, false),
            |rule| {
                (
                    permission_set(&rule.paid, &permissions.index, "paid switch", reporter),
                    permission_set(&rule.below, &permissions.index, "below switch", reporter),
                    rule.nested,
                )
            },
        );

    let all_permissions = PermissionSet::first(permissions.index.len());
    let (roles, role_index, compiled_roles) = compile_roles(
        &raw.roles,
        &permissions,
        all_permissions,
        &kind_index,
        &module_index,
        reporter,
    );
    let (action_rules, compiled_rules) =
        compile_actions(raw.actions.as_ref(), &permissions.index, reporter);

    PresetData {
        id: header.id.into_inner(),
        label: header.label,
        seed: header.seed,
        custom_roles: header.custom_roles,
        upward_visibility: header.upward_visibility,
        acting_for_operators: header.acting_for_operators,
        delete_requires_blocked: header.delete_requires_blocked,
        kinds,
        modules,
        permissions: permissions.defs,
        roles,
        action_rules,
        kind_names,
        kind_index,
        kind_parents,
        station_kind,
        permission_index: permissions.index,
        module_index,
        role_index,
        compiled_roles,
        compiled_rules,
        all_permissions,
        admin_permissions: permissions.admin,
        unconditional: permissions.unconditional,
        permission_module_bits: permissions.module_bits,
        module_permissions: permissions.per_module,
        modules_default_on,
        module_switchable_on: compiled_modules.switchable_on,
        paid_modules: compiled_modules.paid,
        paid_switch: switching.0,
        below_switch: switching.1,
        nested_modules: switching.2,
    }
}

type CompiledKinds = (Vec<KindDef>, NameMap<KindIndex>, Vec<u64>, KindIndex);

fn compile_kinds(raw: &[Spanned<RawKind>], reporter: &mut Reporter<'_>) -> CompiledKinds {
    let mut kind_index: NameMap<KindIndex> = name_map();
    kind_index.insert(ROOT_KIND.to_owned(), ROOT_KIND_INDEX);
    if raw.len() + 1 > MAX_KINDS {
        reporter.report(
            &raw.get(MAX_KINDS - 1).map_or(0..0, Spanned::span),
            PresetProblem::TooMany {
                what: "scope kinds",
                count: raw.len() + 1,
                limit: MAX_KINDS,
            },
        );
    }
    for kind in raw.iter().take(MAX_KINDS - 1) {
        let id = &kind.get_ref().id;
        if id.get_ref() == ROOT_KIND {
            reporter.report(&id.span(), PresetProblem::RootDeclared);
            continue;
        }
        if !is_kebab_case(id.get_ref()) {
            reporter.report(
                &id.span(),
                PresetProblem::InvalidId {
                    what: "kind",
                    name: id.get_ref().clone(),
                },
            );
        }
        let next = KindIndex::try_from(kind_index.len()).unwrap_or(KindIndex::MAX);
        if kind_index.contains_key(id.get_ref()) {
            reporter.report(
                &id.span(),
                PresetProblem::Duplicate {
                    what: "kind",
                    name: id.get_ref().clone(),
                },
            );
        } else {
            kind_index.insert(id.get_ref().clone(), next);
        }
    }

    let mut kind_parents = vec![0u64; kind_index.len()];
    let mut kinds = Vec::with_capacity(raw.len());
    for kind in raw {
        let kind = kind.get_ref();
        let Some(&own_index) = kind_index.get(kind.id.get_ref()) else {
            continue;
        };
        if own_index == ROOT_KIND_INDEX {
            continue;
        }
        if kind.parents.is_empty() {
            reporter.report(
                &kind.id.span(),
                PresetProblem::KindWithoutParents {
                    kind: kind.id.get_ref().clone(),
                },
            );
        }
        let mut mask = 0u64;
        for parent in &kind.parents {
            match kind_index.get(parent.get_ref()) {
                Some(&parent_index) => {
                    let bit = 1u64 << parent_index;
                    if mask & bit != 0 {
                        reporter.report(
                            &parent.span(),
                            PresetProblem::Duplicate {
                                what: "parent kind",
                                name: parent.get_ref().clone(),
                            },
                        );
                    }
                    mask |= bit;
                }
                None => reporter.report(
                    &parent.span(),
                    PresetProblem::UnknownParentKind {
                        kind: kind.id.get_ref().clone(),
                        parent: parent.get_ref().clone(),
                    },
                ),
            }
        }
        if let Some(slot) = kind_parents.get_mut(usize::from(own_index)) {
            // A duplicated kind keeps the parents of its first declaration.
            if *slot == 0 {
                *slot = mask;
                kinds.push(KindDef {
                    id: kind.id.get_ref().clone(),
                    parents: strings(&kind.parents),
                });
            }
        }
    }

    let station_kind = kind_index.get(STATION_KIND).copied().unwrap_or_else(|| {
        let span = raw.first().map_or(0..0, Spanned::span);
        reporter.report(&span, PresetProblem::MissingStationKind);
        ROOT_KIND_INDEX
    });
    (kinds, kind_index, kind_parents, station_kind)
}

struct CompiledModules {
    defs: Vec<ModuleDef>,
    index: NameMap<usize>,
    default_on: u64,
    paid: u64,
    switchable_on: Vec<u64>,
}

fn compile_modules(
    raw: &[Spanned<RawModule>],
    kind_index: &NameMap<KindIndex>,
    reporter: &mut Reporter<'_>,
) -> CompiledModules {
    if raw.len() > MAX_MODULES {
        reporter.report(
            &raw.get(MAX_MODULES).map_or(0..0, Spanned::span),
            PresetProblem::TooMany {
                what: "modules",
                count: raw.len(),
                limit: MAX_MODULES,
            },
        );
    }
    let module_index = index_names(
        "module",
        raw.iter().map(|module| &module.get_ref().id),
        reporter,
    );
    let every_kind = kind_index
        .values()
        .fold(0u64, |mask, &kind| mask | (1u64 << kind));
    let mut default_on = 0u64;
    let mut paid = 0u64;
    let mut switchable_on = Vec::with_capacity(raw.len());
    let mut modules = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for module in raw {
        let module = module.get_ref();
        if !seen.insert(module.id.get_ref().as_str()) {
            continue;
        }
        let bit = module_bit(modules.len()).unwrap_or(0);
        if module.default_on {
            default_on |= bit;
        }
        if module.paid {
            paid |= bit;
        }
        let mut kinds = 0u64;
        for kind in &module.switchable_on {
            match kind_index.get(kind.get_ref()) {
                Some(&index) => kinds |= 1u64 << index,
                None => reporter.report(
                    &kind.span(),
                    PresetProblem::UnknownKind {
                        name: kind.get_ref().clone(),
                    },
                ),
            }
        }
        switchable_on.push(if module.switchable_on.is_empty() {
            every_kind
        } else {
            kinds
        });
        modules.push(ModuleDef {
            id: module.id.get_ref().clone(),
            label: module.label.clone(),
            default_on: module.default_on,
            paid: module.paid,
            switchable_on: strings(&module.switchable_on),
        });
    }
    CompiledModules {
        defs: modules,
        index: module_index,
        default_on,
        paid,
        switchable_on,
    }
}

pub(crate) fn module_bit(index: usize) -> Option<u64> {
    (index < MAX_MODULES).then(|| 1u64 << index)
}

struct CompiledPermissions {
    defs: Vec<PermissionDef>,
    index: NameMap<usize>,
    admin: PermissionSet,
    unconditional: PermissionSet,
    per_module: Vec<PermissionSet>,
    module_bits: Vec<u64>,
}

fn compile_permissions(
    raw: &[Spanned<RawPermission>],
    module_index: &NameMap<usize>,
    reporter: &mut Reporter<'_>,
) -> CompiledPermissions {
    if raw.len() > PermissionSet::CAPACITY {
        reporter.report(
            &raw.get(PermissionSet::CAPACITY).map_or(0..0, Spanned::span),
            PresetProblem::TooMany {
                what: "permissions",
                count: raw.len(),
                limit: PermissionSet::CAPACITY,
            },
        );
    }
    let index = index_names(
        "permission",
        raw.iter().map(|permission| &permission.get_ref().id),
        reporter,
    );
    let mut compiled = CompiledPermissions {
        defs: Vec::with_capacity(raw.len()),
        index,
        admin: PermissionSet::EMPTY,
        unconditional: PermissionSet::EMPTY,
        per_module: vec![PermissionSet::EMPTY; module_index.len()],
        module_bits: Vec::with_capacity(raw.len()),
    };
    let mut seen = HashSet::new();
    for permission in raw {
        let permission = permission.get_ref();
        if !seen.insert(permission.id.get_ref().as_str()) {
            continue;
        }
        let bit = compiled.defs.len();
        let mut module_bit_needed = 0;
        match &permission.module {
            None => {
                compiled.unconditional.insert(bit);
            }
            Some(module) => match module_index.get(module.get_ref()) {
                Some(&module) => {
                    if let Some(set) = compiled.per_module.get_mut(module) {
                        set.insert(bit);
                    }
                    module_bit_needed = module_bit(module).unwrap_or(0);
                }
                None => reporter.report(
                    &module.span(),
                    PresetProblem::UnknownModule {
                        name: module.get_ref().clone(),
                    },
                ),
            },
        }
        compiled.module_bits.push(module_bit_needed);
        if permission.admin {
            compiled.admin.insert(bit);
        }
        compiled.defs.push(PermissionDef {
            id: permission.id.get_ref().clone(),
            label: permission.label.clone(),
            group: permission.group.clone(),
            module: permission
                .module
                .as_ref()
                .map(|module| module.get_ref().clone()),
            admin: permission.admin,
            personal_data: permission.personal_data,
        });
    }
    compiled
}

fn compile_roles(
    raw: &[Spanned<RawRole>],
    permissions: &CompiledPermissions,
    all_permissions: PermissionSet,
    kind_index: &NameMap<KindIndex>,
    module_index: &NameMap<usize>,
    reporter: &mut Reporter<'_>,
) -> (Vec<RoleDef>, NameMap<usize>, Vec<CompiledRole>) {
    let role_index = index_names("role", raw.iter().map(|role| &role.get_ref().id), reporter);
    let mut roles = Vec::with_capacity(raw.len());
    let mut compiled_roles = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for role in raw {
        let role = role.get_ref();
        let name = role.id.get_ref();
        if !seen.insert(name.as_str()) {
            continue;
        }
        let listed = permission_set(
            &role.permissions,
            &permissions.index,
            "permission in role",
            reporter,
        );
        if role.admin {
            if let Some(first) = role.permissions.first() {
                reporter.report(
                    &first.span(),
                    PresetProblem::AdminRoleWithPermissions { role: name.clone() },
                );
            }
            if let Some(first) = role.granted_by.first().or(role.removed_by.first()) {
                reporter.report(
                    &first.span(),
                    PresetProblem::AdminRoleWithGrantedBy { role: name.clone() },
                );
            }
        } else {
            for permission in &role.permissions {
                let is_admin = permissions
                    .index
                    .get(permission.get_ref())
                    .is_some_and(|&index| permissions.admin.contains(index));
                if is_admin {
                    reporter.report(
                        &permission.span(),
                        PresetProblem::AdminPermissionInRegularRole {
                            role: name.clone(),
                            permission: permission.get_ref().clone(),
                        },
                    );
                }
            }
        }

        if role.assignable_on.is_empty() {
            reporter.report(
                &role.id.span(),
                PresetProblem::AssignableNowhere { role: name.clone() },
            );
        }
        let mut assignable_on = 0u64;
        for kind in &role.assignable_on {
            match kind_index.get(kind.get_ref()) {
                Some(&index) => {
                    let bit = 1u64 << index;
                    if assignable_on & bit != 0 {
                        reporter.report(
                            &kind.span(),
                            PresetProblem::Duplicate {
                                what: "assignable kind",
                                name: kind.get_ref().clone(),
                            },
                        );
                    }
                    assignable_on |= bit;
                }
                None => reporter.report(
                    &kind.span(),
                    PresetProblem::UnknownKind {
                        name: kind.get_ref().clone(),
                    },
                ),
            }
        }

        let station_requires_module = role.station_requires_module.as_ref().and_then(|module| {
            let found = module_index.get(module.get_ref()).copied();
            if found.is_none() {
                reporter.report(
                    &module.span(),
                    PresetProblem::UnknownModule {
                        name: module.get_ref().clone(),
                    },
                );
            }
            found
        });
        let granted_by = permission_set(
            &role.granted_by,
            &permissions.index,
            "granted_by permission",
            reporter,
        );
        let removed_by = if role.removed_by.is_empty() {
            granted_by
        } else {
            permission_set(
                &role.removed_by,
                &permissions.index,
                "removed_by permission",
                reporter,
            )
        };

        compiled_roles.push(CompiledRole {
            permissions: if role.admin { all_permissions } else { listed },
            admin: role.admin,
            can_charge: role.can_charge,
            assignable_on,
            station_requires_module,
            granted_by,
            removed_by,
            allow_escalation: role.allow_escalation,
        });
        roles.push(RoleDef {
            id: name.clone(),
            label: role.label.clone(),
            admin: role.admin,
            permissions: strings(&role.permissions),
            assignable_on: strings(&role.assignable_on),
            station_requires_module: role
                .station_requires_module
                .as_ref()
                .map(|module| module.get_ref().clone()),
            can_charge: role.can_charge,
            granted_by: strings(&role.granted_by),
            removed_by: strings(&role.removed_by),
            allow_escalation: role.allow_escalation,
            custom: false,
        });
    }
    (roles, role_index, compiled_roles)
}

type RawActions = Spanned<BTreeMap<Spanned<String>, Spanned<RawRule>>>;

fn compile_actions(
    raw: Option<&RawActions>,
    permission_index: &NameMap<usize>,
    reporter: &mut Reporter<'_>,
) -> (Vec<ActionRule>, Vec<CompiledRule>) {
    let mut rules: Vec<Option<(ActionRule, CompiledRule)>> = vec![None; Action::ALL.len()];
    if let Some(table) = raw {
        for (name, value) in table.get_ref() {
            let Ok(action) = name.get_ref().parse::<Action>() else {
                reporter.report(
                    &name.span(),
                    PresetProblem::UnknownAction {
                        name: name.get_ref().clone(),
                    },
                );
                continue;
            };
            let rule = match value.get_ref() {
                RawRule::Named(text) if text == ADMIN_ONLY => {
                    (ActionRule::AdminOnly, CompiledRule::AdminOnly)
                }
                RawRule::Named(text) => {
                    reporter.report(
                        &value.span(),
                        PresetProblem::InvalidActionRule {
                            action: name.get_ref().clone(),
                            value: text.clone(),
                        },
                    );
                    (
                        ActionRule::AnyOf(Vec::new()),
                        CompiledRule::AnyOf(PermissionSet::EMPTY),
                    )
                }
                RawRule::AnyOf(names) => {
                    let set =
                        permission_set(names, permission_index, "permission in action", reporter);
                    (ActionRule::AnyOf(strings(names)), CompiledRule::AnyOf(set))
                }
            };
            if let Some(slot) = rules.get_mut(action.index()) {
                *slot = Some(rule);
            }
        }
    }

    let table_span = raw.map_or(0..0, Spanned::span);
    let mut action_rules = Vec::with_capacity(rules.len());
    let mut compiled_rules = Vec::with_capacity(rules.len());
    for (&action, rule) in Action::ALL.iter().zip(rules) {
        let (rule, compiled) = rule.unwrap_or_else(|| {
            reporter.report(&table_span, PresetProblem::UnmappedAction { action });
            (
                ActionRule::AnyOf(Vec::new()),
                CompiledRule::AnyOf(PermissionSet::EMPTY),
            )
        });
        action_rules.push(rule);
        compiled_rules.push(compiled);
    }
    (action_rules, compiled_rules)
}
