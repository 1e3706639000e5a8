//! Every cell of every seed table, checked against the shipped presets and the engine.
//!
//! The tables are kept as files in `tests/data/` (one TSV per seed table, `1`/`0` for a
//! granted or empty cell). Each cell is checked twice: statically (the role's definition) and
//! through the engine (a principal holding only that role, asked at a station). Where the seed
//! pages themselves are present (`../shared/seeds` beside the repository, as in CI), the tables
//! are parsed again from the page text by the reading rules of the seeds' README, so the data
//! files cannot drift from the seeds.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use voltgate_policy::{Engine, Preset, PrincipalKind, Resource};

// ----- data files -------------------------------------------------------------------------

/// A TSV file: the header line and the rows, split on tabs.
struct Table {
    name: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn load(name: &str) -> Table {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or_else(|| panic!("{name} is empty"))
            .split('\t')
            .map(str::to_owned)
            .collect();
        let rows: Vec<Vec<String>> = lines
            .map(|line| line.split('\t').map(str::to_owned).collect::<Vec<_>>())
            .collect();
        for (number, row) in rows.iter().enumerate() {
            assert_eq!(
                row.len(),
                header.len(),
                "{name} row {} has {} cells, the header has {}",
                number + 2,
                row.len(),
                header.len()
            );
        }
        assert!(!rows.is_empty(), "{name} has no rows");
        Table {
            name: name.to_owned(),
            header,
            rows,
        }
    }

    fn column(&self, title: &str) -> usize {
        self.header
            .iter()
            .position(|column| column == title)
            .unwrap_or_else(|| panic!("{} has no column `{title}`", self.name))
    }
}

/// A `1`/`0` cell.
fn granted(table: &Table, cell: &str) -> bool {
    match cell {
        "1" => true,
        "0" => false,
        other => panic!("{}: `{other}` is not a 0/1 cell", table.name),
    }
}

fn capitalised(section: &str) -> String {
    let mut chars = section.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn engine(preset: &str) -> Engine {
    Engine::new(Preset::builtin(preset).expect("builtin preset loads"))
}

fn operator(engine: &mut Engine, id: &str, home: &str) {
    engine
        .add_principal(id, PrincipalKind::Operator, home)
        .expect("principal added");
}

/// Checks a role-per-column table against the preset and the engine. `holder` has been given
/// each role column's role (its id is `holder(role)`), `at` lists the scopes where the cell
/// must hold, `group` is the expected group of a row.
fn check_role_columns(
    table: &Table,
    engine: &Engine,
    first_role_column: usize,
    at: &[&str],
    group: impl Fn(&[String]) -> String,
    holder: impl Fn(&str) -> String,
) -> usize {
    let preset = engine.preset();
    let id_column = table.column("id");
    let label_column = table.column("permission");
    let mut cells = 0;
    for row in &table.rows {
        let id = &row[id_column];
        let permission = preset
            .permission(id)
            .unwrap_or_else(|| panic!("{}: no permission `{id}` in the preset", table.name));
        assert_eq!(permission.label, row[label_column], "label of `{id}`");
        assert_eq!(
            permission.group.as_deref(),
            Some(group(row).as_str()),
            "group of `{id}`"
        );
        for (column, role) in table.header.iter().enumerate().skip(first_role_column) {
            let expected = granted(table, &row[column]);
            assert_eq!(
                preset.role_has_permission(role, id),
                Some(expected),
                "{}: static cell role `{role}` x `{id}`",
                table.name
            );
            for scope in at {
                assert_eq!(
                    engine.has_permission(&holder(role), id, scope),
                    expected,
                    "{}: role `{role}` x `{id}` at `{scope}`",
                    table.name
                );
            }
            cells += 1;
        }
    }
    cells
}

/// The ids of a table's `id` column.
fn ids(table: &Table) -> BTreeSet<String> {
    let column = table.column("id");
    table.rows.iter().map(|row| row[column].clone()).collect()
}

/// The preset's permissions whose group starts with `prefix`.
fn permissions_in_groups(preset: &Preset, prefix: &str) -> BTreeSet<String> {
    preset
        .permissions()
        .filter(|permission| {
            permission
                .group
                .as_deref()
                .is_some_and(|group| group.starts_with(prefix))
        })
        .map(|permission| permission.id.clone())
        .collect()
}

// ----- tenant -----------------------------------------------------------------------------

/// A tenant estate: tenant `t`, account `a` (BUSINESS plan when `business`), its sub-account
/// `s`, and stations `st-a` (on the account) and `st-s` (on the sub-account).
fn tenant_estate(business: bool) -> Engine {
    let mut engine = engine("tenant");
    engine.add_scope("t", "tenant", "root").unwrap();
    engine.add_scope("a", "account", "t").unwrap();
    engine.add_scope("s", "sub-account", "a").unwrap();
    engine.add_scope("st-a", "station", "a").unwrap();
    engine.add_scope("st-s", "station", "s").unwrap();
    engine.set_module("a", "business", business).unwrap();
    engine
}

fn holder(role: &str) -> String {
    format!("holder-{role}")
}

#[test]
fn tenant_tables_for_tenant_roles() {
    let table = Table::load("tenant-tenant-roles.tsv");
    let mut engine = tenant_estate(true);
    for role in &table.header[3..] {
        operator(&mut engine, &holder(role), "t");
        engine.assign(&holder(role), role, "t").unwrap();
    }
    let section = table.column("section");
    let cells = check_role_columns(
        &table,
        &engine,
        3,
        &["t", "a", "s", "st-a", "st-s"],
        |row| format!("Tenant users > {}", capitalised(&row[section])),
        holder,
    );
    assert_eq!(cells, table.rows.len() * 7);
    assert_eq!(
        ids(&table),
        permissions_in_groups(engine.preset(), "Tenant users > "),
        "every tenant-table permission of the preset is a row of the data"
    );
}

/// The account roles as the tables mean them: owners and admins of the account, owner and
/// driver of its sub-account. Every one of them reaches the sub-account's station.
fn tenant_account_holders(engine: &mut Engine, roles: &[String]) {
    for role in roles {
        let scope = match role.as_str() {
            "sub-account-owner" | "driver" => "s",
            _ => "a",
        };
        operator(engine, &holder(role), scope);
        engine.assign(&holder(role), role, scope).unwrap();
    }
}

#[test]
fn tenant_tables_for_account_roles() {
    let table = Table::load("tenant-account-roles.tsv");
    let mut engine = tenant_estate(true);
    tenant_account_holders(&mut engine, &table.header[3..]);
    let section = table.column("section");
    let cells = check_role_columns(
        &table,
        &engine,
        3,
        &["s", "st-s"],
        |row| {
            format!(
                "Account and sub-account users > {}",
                capitalised(&row[section])
            )
        },
        holder,
    );
    assert_eq!(cells, table.rows.len() * 5);
    assert_eq!(
        ids(&table),
        permissions_in_groups(engine.preset(), "Account and sub-account users > "),
        "every account-table permission of the preset is a row of the data"
    );
}

#[test]
fn tenant_business_rows_are_granted_only_on_the_business_plan() {
    let table = Table::load("tenant-account-roles.tsv");
    let mut engine = tenant_estate(false);
    tenant_account_holders(&mut engine, &table.header[3..]);
    let preset = engine.preset().clone();
    let (id_column, label_column) = (table.column("id"), table.column("permission"));
    let mut business_rows = 0;
    for row in &table.rows {
        let id = &row[id_column];
        let business = row[label_column].ends_with("BUSINESS");
        let module = preset.permission(id).and_then(|p| p.module.clone());
        assert_eq!(
            module.as_deref(),
            business.then_some("business"),
            "module of `{id}`"
        );
        business_rows += usize::from(business);
        for (column, role) in table.header.iter().enumerate().skip(3) {
            let expected = granted(&table, &row[column]) && !business;
            assert_eq!(
                engine.has_permission(&holder(role), id, "st-s"),
                expected,
                "`{role}` x `{id}` without the BUSINESS plan"
            );
        }
    }
    assert_eq!(business_rows, 4);
}

// ----- virta ------------------------------------------------------------------------------

/// The module a virta row belongs to: its Module > Submodule, or its own paid module.
fn virta_module_id(module: &str, submodule: &str) -> String {
    let kebab = |text: &str| {
        text.to_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    };
    if submodule.is_empty() {
        kebab(module)
    } else {
        format!("{}-{}", kebab(module), kebab(submodule))
    }
}

#[test]
fn virta_table_with_every_module_on() {
    let table = Table::load("virta-roles.tsv");
    let mut engine = engine("virta");
    engine.add_scope("org", "organisation", "root").unwrap();
    engine.add_scope("sub-org", "organisation", "org").unwrap();
    engine.add_scope("st", "station", "sub-org").unwrap();
    let modules: Vec<String> = engine.preset().modules().map(|m| m.id.clone()).collect();
    for module in &modules {
        engine.set_module("org", module, true).unwrap();
    }
    for role in &table.header[4..] {
        operator(&mut engine, &holder(role), "org");
        engine.assign(&holder(role), role, "org").unwrap();
    }
    let (module, submodule) = (table.column("module"), table.column("submodule"));
    let cells = check_role_columns(
        &table,
        &engine,
        4,
        &["org", "sub-org", "st"],
        |row| {
            if row[submodule].is_empty() {
                row[module].clone()
            } else {
                format!("{} > {}", row[module], row[submodule])
            }
        },
        holder,
    );
    assert_eq!(cells, table.rows.len() * 6);

    // Each row is gated by its Module > Submodule, or by a paid module of its own that is off
    // unless an organisation switches it on.
    let preset = engine.preset();
    for row in &table.rows {
        let permission = preset.permission(&row[table.column("id")]).unwrap();
        let gate = permission
            .module
            .as_deref()
            .expect("every table row has a module");
        let table_module = virta_module_id(&row[module], &row[submodule]);
        let label = &permission.label;
        if label.contains("(paid module)") || label.contains("firmware library module") {
            assert_ne!(gate, table_module, "`{label}` needs its own paid module");
            assert!(!preset.module(gate).unwrap().default_on, "`{gate}` is paid");
        } else {
            assert_eq!(gate, table_module, "module of `{label}`");
        }
    }

    // Rows whose module is off are not effective, whatever the table says.
    engine
        .set_module("sub-org", "station-management-manage", false)
        .unwrap();
    assert!(engine.has_permission(
        &holder("technician"),
        "change-station-configurations",
        "org"
    ));
    assert!(!engine.has_permission(&holder("technician"), "change-station-configurations", "st"));

    let table_ids = ids(&table);
    let outside: Vec<String> = engine
        .preset()
        .permissions()
        .filter(|permission| !table_ids.contains(&permission.id))
        .map(|permission| permission.id.clone())
        .collect();
    assert_eq!(
        outside,
        ["activate-paid-modules"],
        "only the prose permission is not a row"
    );
}

// ----- connect ----------------------------------------------------------------------------

#[test]
fn connect_regular_permissions_table() {
    let table = Table::load("connect-regular-permissions.tsv");
    let preset = Preset::builtin("connect").unwrap();
    let source =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/connect.toml"))
            .unwrap();
    let (label, explanation, id) = (
        table.column("permission"),
        table.column("explanation"),
        table.column("id"),
    );
    for row in &table.rows {
        let permission = preset
            .permission(&row[id])
            .unwrap_or_else(|| panic!("no permission `{}`", row[id]));
        assert_eq!(permission.label, row[label]);
        assert_eq!(permission.group.as_deref(), Some("Regular permissions"));
        assert!(!permission.admin, "`{}` is a regular permission", row[id]);
        // The Explanation cell is the comment directly above the permission.
        let block = format!(
            "# {}\n[[permissions]]\nid = \"{}\"\n",
            row[explanation], row[id]
        );
        assert!(
            source.contains(&block),
            "explanation of `{}` missing",
            row[id]
        );
    }
    let regular: BTreeSet<String> = preset
        .permissions()
        .filter(|permission| permission.group.as_deref() == Some("Regular permissions"))
        .map(|permission| permission.id.clone())
        .collect();
    assert_eq!(regular, ids(&table));
}

/// Connect sites: `all` at the top with `fi` and `se` below it, a station in each country.
fn connect_estate() -> Engine {
    let mut engine = engine("connect");
    engine.add_scope("all", "site", "root").unwrap();
    engine.add_scope("fi", "site", "all").unwrap();
    engine.add_scope("se", "site", "all").unwrap();
    engine.add_scope("st-fi", "station", "fi").unwrap();
    engine.add_scope("st-se", "station", "se").unwrap();
    engine
}

#[test]
fn connect_admin_permissions_table() {
    let table = Table::load("connect-admin-permissions.tsv");
    let all_features = table.column("access to all features");
    let all_sites = table.column("access to all sites");
    let uses_site_access = table.column("uses site access");
    let id = table.column("id");
    for row in &table.rows {
        let role_id = &row[id];
        let mut engine = connect_estate();
        let role = engine.preset().role(role_id).unwrap().clone();
        assert_eq!(role.label, row[table.column("permission")]);

        // Access to all features: an admin role holds every permission and admin-only actions.
        assert_eq!(
            role.admin,
            granted(&table, &row[all_features]),
            "`{role_id}`"
        );

        // Uses site access: the role is granted per site.
        let per_site = role.assignable_on.iter().any(|kind| kind == "site");
        assert_eq!(
            per_site,
            granted(&table, &row[uses_site_access]),
            "`{role_id}`"
        );

        // Access to all sites: held where the role can be held most broadly, it sees every
        // site, and it may act on every station.
        let broadest = if role.assignable_on.iter().any(|kind| kind == "root") {
            "root"
        } else {
            "fi"
        };
        operator(&mut engine, "holder", "all");
        engine.assign("holder", role_id, broadest).unwrap();
        let sees_all = engine.visible("holder", "site") == ["all", "fi", "se"]
            && engine.check(
                "holder",
                voltgate_policy::Action::CommandReset,
                &Resource::scope("st-se"),
            );
        assert_eq!(sees_all, granted(&table, &row[all_sites]), "`{role_id}`");
        if role.admin {
            for permission in engine.preset().permissions() {
                assert!(engine.has_permission("holder", &permission.id, "st-fi"));
            }
        }
    }
}

#[test]
fn connect_home_site_table() {
    let table = Table::load("connect-home-site.tsv");
    let (use_case, determines) = (table.column("use case"), table.column("determines"));
    let rows: Vec<(&str, &str)> = table
        .rows
        .iter()
        .map(|row| (row[use_case].as_str(), row[determines].as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("Home site", "Who can see the operator"),
            ("Site access", "What the operator can see"),
        ]
    );

    // An operator at home in Finland with site access to Sweden only.
    let mut engine = connect_estate();
    engine
        .define_role("sweden-desk", "Sweden desk", &["view-chargers".to_owned()])
        .unwrap();
    for (id, home, access) in [
        ("mover", "fi", "se"),
        ("finn", "fi", "fi"),
        ("swede", "se", "se"),
    ] {
        operator(&mut engine, id, home);
        engine.assign(id, "sweden-desk", access).unwrap();
    }
    // Home site: who can see the operator.
    assert!(engine.can_see("finn", &Resource::principal("mover")));
    assert!(!engine.can_see("swede", &Resource::principal("mover")));
    // Site access: what the operator can see.
    assert_eq!(engine.visible("mover", "site"), ["se"]);
    assert_eq!(engine.visible("mover", "station"), ["st-se"]);
    assert!(!engine.can_see("mover", &Resource::scope("st-fi")));
}

// ----- the data against the seed pages ----------------------------------------------------

/// `../shared/seeds` seen from the repository root, when present.
fn seeds_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds");
    dir.is_dir().then_some(dir)
}

/// Whether the tests run under CI (`CI` set to anything but `false` or empty, as CI
/// services do).
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false")
}

const TENANT_ROLES_HEADER: &str = "Tenant adminCustomer supportTechnical supportSupport agent\
                                   Branding specialistBilling plan adminRoaming admin";
const ACCOUNT_ROLES_HEADER: &str = "Account ownerAccount adminAccount station admin\
                                    Sub-account owner / subsidiaryDriver / employee";
const TENANT_SECTIONS: [&str; 8] = [
    "dashboard",
    "cards",
    "stations",
    "users",
    "settings",
    "billing",
    "roaming",
    "insights",
];
const ACCOUNT_SECTIONS: [&str; 5] = ["dashboard", "cards", "stations", "users", "insights"];
const TICK: &str = "(tick)";

/// One parsed row: its leading text cells, then its 0/1 cells.
type SeedRow = (Vec<String>, Vec<bool>);

/// One row of a tenant-page table: its label and its cells.
type LabelledRow = (String, Vec<bool>);

/// The rows of one tenant-page table body, by the README's rules: a label, then one mark per
/// column (`(tick)` granted, a line break empty); further line breaks separate rows; at the
/// end of the text missing cells are empty; a label ending in BUSINESS keeps the line break
/// after it.
fn parse_tenant_table(body: &str, columns: usize) -> Vec<LabelledRow> {
    let mut rows = Vec::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches('\n');
        if rest.is_empty() {
            break;
        }
        let end = [rest.find('\n'), rest.find(TICK)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(rest.len());
        let label = &rest[..end];
        rest = &rest[end..];
        if label.ends_with("BUSINESS") {
            rest = rest.strip_prefix('\n').unwrap_or(rest);
        }
        let mut cells = Vec::with_capacity(columns);
        while cells.len() < columns {
            if let Some(after) = rest.strip_prefix(TICK) {
                cells.push(true);
                rest = after;
            } else if let Some(after) = rest.strip_prefix('\n') {
                cells.push(false);
                rest = after;
            } else if rest.is_empty() {
                cells.push(false);
            } else {
                panic!(
                    "unexpected text in a table row: {:?}",
                    &rest[..rest.len().min(40)]
                );
            }
        }
        rows.push((label.replace('\u{a0}', " ").trim().to_owned(), cells));
    }
    rows
}

/// The tenant page's tables: (is the tenant-roles table, rows).
fn parse_tenant_seed(text: &str) -> Vec<(bool, Vec<LabelledRow>)> {
    let lines: Vec<&str> = text.split('\n').collect();
    let headers: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| **line == TENANT_ROLES_HEADER || **line == ACCOUNT_ROLES_HEADER)
        .map(|(index, _)| index)
        .collect();
    headers
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = headers.get(n + 1).copied().unwrap_or(lines.len());
            // The prose between the two groups of tables ends the last tenant table.
            let end = lines[start + 1..end]
                .iter()
                .position(|line| *line == "Account and sub-account users")
                .map_or(end, |offset| start + 1 + offset);
            let tenant = lines[start] == TENANT_ROLES_HEADER;
            let body = lines[start + 1..end].join("\n");
            (
                tenant,
                parse_tenant_table(&body, if tenant { 7 } else { 5 }),
            )
        })
        .collect()
}

/// The virta page's table: Module, Submodule, permission, six marks. See the virta preset's
/// header comment for the reading of two-cell rows.
fn parse_virta_seed(text: &str) -> Vec<SeedRow> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.starts_with("Module | Submodule |"))
        .expect("virta table header");
    let end = lines
        .iter()
        .position(|line| line.starts_with("In need of some specific role?"))
        .expect("end of the virta table");
    let body = lines[start + 1..end].join(" ");
    let mut rows = Vec::new();
    let (mut labels, mut marks) = (Vec::new(), Vec::new());
    for cell in body
        .split('|')
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
    {
        match cell {
            "✅" | "❌" => {
                marks.push(cell == "✅");
                if marks.len() == 6 {
                    rows.push((std::mem::take(&mut labels), std::mem::take(&mut marks)));
                }
            }
            label => {
                assert!(marks.is_empty(), "label `{label}` among a row's marks");
                labels.push(label.to_owned());
            }
        }
    }
    assert!(labels.is_empty() && marks.is_empty(), "unfinished last row");
    let (mut module, mut submodule) = (String::new(), String::new());
    let mut view_module_submodules = false;
    rows.into_iter()
        .map(|(labels, marks)| {
            let permission = match labels.as_slice() {
                [m, s, p] => {
                    (module, submodule) = (m.clone(), s.clone());
                    view_module_submodules = p == "View module";
                    p.clone()
                }
                [name, p] if p == "View module" && !view_module_submodules => {
                    (module, submodule) = (name.clone(), String::new());
                    p.clone()
                }
                [s, p] => {
                    submodule = s.clone();
                    p.clone()
                }
                [p] => p.clone(),
                other => panic!("unexpected virta row {other:?}"),
            };
            (vec![module.clone(), submodule.clone(), permission], marks)
        })
        .collect()
}

/// A `a | b | c |` table after the line `header`: each row's cells, `✅`/`❌` as marks.
fn parse_pipe_table(text: &str, header: &str) -> Vec<SeedRow> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|line| *line == header)
        .unwrap_or_else(|| panic!("no table `{header}`"));
    lines[start + 1..]
        .iter()
        .filter(|line| !line.starts_with("|---"))
        .take_while(|line| line.contains('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let cells = &cells[..cells.len() - 1];
            let labels = cells
                .iter()
                .filter(|cell| !matches!(**cell, "✅" | "❌"))
                .map(|cell| (*cell).to_owned())
                .collect();
            let marks = cells
                .iter()
                .filter(|cell| matches!(**cell, "✅" | "❌"))
                .map(|cell| *cell == "✅")
                .collect();
            (labels, marks)
        })
        .collect()
}

/// A data file's rows as (text columns, 0/1 columns), dropping the `id` column.
fn data_rows(table: &Table, text_columns: &[&str], first_mark: usize) -> Vec<SeedRow> {
    table
        .rows
        .iter()
        .map(|row| {
            let texts = text_columns
                .iter()
                .map(|title| row[table.column(title)].clone())
                .collect();
            let marks = row[first_mark..]
                .iter()
                .map(|cell| granted(table, cell))
                .collect();
            (texts, marks)
        })
        .collect()
}

fn read_seed(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap_or_else(|error| panic!("cannot read {file}: {error}"))
}

#[test]
fn data_files_match_the_seed_pages() {
    let Some(dir) = seeds_dir() else {
        // CI runs from a clean clone with ../shared beside it: there a missing input is a
        // failure, not a skip.
        assert!(
            !under_ci(),
            "../shared/seeds is absent under CI=true; the data files cannot be compared with \
             the seed pages"
        );
        println!(
            "note: ../shared/seeds is absent; the data files were not compared with the seed pages"
        );
        return;
    };
    let seed_of = |preset: &str| {
        Preset::builtin(preset)
            .unwrap()
            .seed()
            .expect("every builtin preset names its seed")
            .to_owned()
    };

    // Tenant: eight tables for the tenant roles, then five for the account roles.
    let tables = parse_tenant_seed(&read_seed(&dir, &seed_of("tenant")));
    let tenant: Vec<_> = tables.iter().filter(|(tenant, _)| *tenant).collect();
    let account: Vec<_> = tables.iter().filter(|(tenant, _)| !*tenant).collect();
    assert_eq!((tenant.len(), account.len()), (8, 5));
    for (file, parsed, sections) in [
        ("tenant-tenant-roles.tsv", tenant, &TENANT_SECTIONS[..]),
        ("tenant-account-roles.tsv", account, &ACCOUNT_SECTIONS[..]),
    ] {
        let seed_rows: Vec<SeedRow> = parsed
            .iter()
            .zip(sections)
            .flat_map(|((_, rows), section)| {
                rows.iter().map(move |(label, cells)| {
                    (vec![(*section).to_owned(), label.clone()], cells.clone())
                })
            })
            .collect();
        let table = Table::load(file);
        assert_eq!(
            data_rows(&table, &["section", "permission"], 3),
            seed_rows,
            "{file}"
        );
    }

    let virta = Table::load("virta-roles.tsv");
    assert_eq!(
        data_rows(&virta, &["module", "submodule", "permission"], 4),
        parse_virta_seed(&read_seed(&dir, &seed_of("virta"))),
        "virta-roles.tsv"
    );

    let connect = read_seed(&dir, &seed_of("connect"));
    let regular = Table::load("connect-regular-permissions.tsv");
    assert_eq!(
        data_rows(&regular, &["permission", "explanation"], 3),
        parse_pipe_table(&connect, "Permission | Explanation |"),
        "connect-regular-permissions.tsv"
    );
    let admin = Table::load("connect-admin-permissions.tsv");
    assert_eq!(
        data_rows(&admin, &["permission"], 2),
        parse_pipe_table(
            &connect,
            "Permission | Access to All Features | Access to All Sites | Uses Site Access |"
        ),
        "connect-admin-permissions.tsv"
    );
    let home = Table::load("connect-home-site.tsv");
    assert_eq!(
        data_rows(&home, &["use case", "determines"], 2),
        parse_pipe_table(&connect, "Use Case | Determines |"),
        "connect-home-site.tsv"
    );
}
