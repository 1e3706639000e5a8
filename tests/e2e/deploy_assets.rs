//! The deployment assets under `deploy/`, checked against the gateway they deploy.
//!
//! An alert on a metric the gateway does not export never fires, a dashboard panel on one stays
//! empty, and a `VOLTGATE_*` variable the binary does not read is silently ignored: none of
//! these fail anywhere else. So: the rules, their unit tests and the systemd unit go through
//! their own tools (`deploy/check.sh`); every metric the alerts and the dashboard query is
//! looked up in a running gateway's `/metrics`; every variable the assets set is looked up in
//! `voltgate --help`; a backup taken the way the deployment page says restores into a new
//! gateway; and the compose file, Grafana provisioning, Dockerfile and Helm chart are checked
//! for the references between their files, which no tool here can run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value as Json};
use serde_norway::Value as Yaml;
use voltgate_tests::{binary_path, Charger, Gateway, GatewayOptions};

/// The name prefixes of the families the gateway exports: its own and the process collector's.
const GATEWAY_PREFIXES: &[&str] = &["voltgate_", "process_"];

/// Metric families the test cannot make this gateway export (each says what it would need; a
/// store error needs a failing disk). They must still be registered in `gateway/src/metrics.rs`.
const NOT_OBSERVABLE_HERE: &[&str] = &[
    "voltgate_store_errors_total",
    // Needs one address to fail authentication many times in a row.
    "voltgate_auth_throttled_total",
    // Needs TLS listeners with certificate files.
    "voltgate_tls_reloads_total",
    // Needs `--local-auth-lists` and chargers with id tokens to sync.
    "voltgate_local_list_syncs_total",
    // Needs a charger whose local list limits are smaller than its list.
    "voltgate_local_list_entries_left_out_total",
    // Needs the open-file limit reached (tests/e2e/startup.rs).
    "voltgate_accept_errors_total",
];

/// Suffixes of the series a histogram family exports.
const HISTOGRAM_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository")
        .to_path_buf()
}

fn deploy_file(relative: &str) -> PathBuf {
    repo_root().join("deploy").join(relative)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn yaml(relative: &str) -> Yaml {
    let path = deploy_file(relative);
    serde_norway::from_str(&read(&path)).unwrap_or_else(|err| panic!("{relative}: {err}"))
}

/// `value[key]` for a YAML mapping, failing with the path when it is missing.
fn field<'a>(value: &'a Yaml, key: &str, context: &str) -> &'a Yaml {
    value
        .get(key)
        .unwrap_or_else(|| panic!("{context}: no `{key}` in {value:?}"))
}

fn text<'a>(value: &'a Yaml, key: &str, context: &str) -> &'a str {
    field(value, key, context)
        .as_str()
        .unwrap_or_else(|| panic!("{context}: `{key}` is not a string"))
}

/// Every `voltgate_*` and `process_*` identifier in a PromQL expression (`up` and the other
/// series Prometheus makes itself are not the gateway's).
fn metric_names_in(expression: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in GATEWAY_PREFIXES {
        let mut rest = expression;
        while let Some(start) = rest.find(prefix) {
            let preceded_by_word = rest[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if !preceded_by_word {
                names.insert(tail[..end].to_string());
            }
            rest = &tail[end..];
        }
    }
    names
}

/// A series name with a histogram suffix mapped to its family, and whether it had one.
fn family_of(series: &str) -> (String, bool) {
    for suffix in HISTOGRAM_SUFFIXES {
        if let Some(family) = series.strip_suffix(suffix) {
            return (family.to_string(), true);
        }
    }
    (series.to_string(), false)
}

fn alert_expressions() -> Vec<(String, String)> {
    let rules = yaml("prometheus/alerts.yaml");
    let mut expressions = Vec::new();
    for group in field(&rules, "groups", "alerts.yaml")
        .as_sequence()
        .expect("groups is a list")
    {
        for rule in field(group, "rules", "alerts.yaml group")
            .as_sequence()
            .expect("rules is a list")
        {
            let name = text(rule, "alert", "alert rule").to_string();
            expressions.push((name.clone(), text(rule, "expr", &name).to_string()));
        }
    }
    expressions
}

fn dashboard() -> Json {
    let path = deploy_file("grafana/voltgate.json");
    serde_json::from_str(&read(&path)).expect("the dashboard is JSON")
}

/// Every query string in the dashboard: panel targets and template variables.
fn dashboard_queries(value: &Json, found: &mut Vec<String>) {
    match value {
        Json::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("expr" | "query" | "definition", Json::String(query)) => {
                        found.push(query.clone())
                    }
                    _ => dashboard_queries(inner, found),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|item| dashboard_queries(item, found)),
        _ => {}
    }
}

/// The metric names `gateway/src/metrics.rs` registers: its `"voltgate_..."` and
/// `"process_..."` string literals outside the unit tests.
fn registered_metric_names() -> BTreeSet<String> {
    let source = read(&repo_root().join("gateway/src/metrics.rs"));
    let definitions = source.split("#[cfg(test)]").next().unwrap_or_default();
    definitions
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|literal| {
            GATEWAY_PREFIXES
                .iter()
                .any(|prefix| literal.starts_with(prefix))
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// `# TYPE name kind` lines of a Prometheus text exposition.
fn exported_families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

#[test]
fn check_script_passes() {
    let voltgate = binary_path("voltgate").expect("voltgate builds");
    let output = Command::new("bash")
        .arg(deploy_file("check.sh"))
        .env("VOLTGATE_BIN", &voltgate)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "deploy/check.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("8 rules found"), "{stdout}");
    assert!(stdout.contains("all deployment checks passed"), "{stdout}");
}

#[tokio::test]
async fn alerts_and_dashboard_use_only_metrics_the_gateway_exports() {
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    for (alert, expression) in alert_expressions() {
        for name in metric_names_in(&expression) {
            used.entry(name).or_insert_with(|| format!("alert {alert}"));
        }
    }
    let mut queries = Vec::new();
    dashboard_queries(&dashboard(), &mut queries);
    for query in &queries {
        for name in metric_names_in(query) {
            used.entry(name)
                .or_insert_with(|| "the dashboard".to_string());
        }
    }
    for expected in [
        "voltgate_chargers_connected",
        "voltgate_ocpp_messages_total",
        "voltgate_command_duration_seconds_bucket",
        "voltgate_authz_decisions_total",
        "voltgate_ocpp_handshakes_refused_total",
        "voltgate_store_errors_total",
        "process_open_fds",
        "process_max_fds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(
            used.contains_key(expected),
            "{expected} is used by neither the alerts nor the dashboard: {used:?}"
        );
    }

    let registered = registered_metric_names();
    assert!(
        registered.len() >= 8,
        "metrics.rs registers too few families to be parsed right: {registered:?}"
    );

    let gateway = Gateway::start(GatewayOptions::preset("connect")).expect("gateway starts");
    exercise(&gateway).await;
    let exposition = crate::metrics(&gateway.api_url).await;
    let exported = exported_families(&exposition);

    for name in exported.keys() {
        assert!(
            registered.contains(name),
            "the gateway exports {name}, which metrics.rs does not register as parsed here"
        );
    }
    for name in &registered {
        if !NOT_OBSERVABLE_HERE.contains(&name.as_str()) {
            assert!(
                exported.contains_key(name),
                "{name} was not exported after the exercise; /metrics:\n{exposition}"
            );
        }
    }

    let mut missing = Vec::new();
    for (series, user) in &used {
        let (family, histogram_series) = family_of(series);
        if !registered.contains(&family) {
            missing.push(format!("{series} (used by {user}) is not a gateway metric"));
            continue;
        }
        match exported.get(&family) {
            Some(kind) if histogram_series && kind != "histogram" => missing.push(format!(
                "{series} (used by {user}) queries a histogram series of {family}, a {kind}"
            )),
            Some(_) => {}
            None if NOT_OBSERVABLE_HERE.contains(&family.as_str()) => {}
            None => missing.push(format!(
                "{series} (used by {user}) is missing from /metrics"
            )),
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Makes the gateway observe something in every metric family a healthy gateway can: a
/// refused handshake, a charger that connects, boots and sends a frame the gateway rejects, a
/// command answered by the charger, and role-engine decisions on API requests.
async fn exercise(gateway: &Gateway) {
    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    admin
        .charger("CP-DEPLOY", "site-a")
        .await
        .unwrap()
        .expect(201);

    gateway
        .api_as("vg_not_a_token_of_this_gateway")
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(401);

    let refusal = Charger::try_connect(&gateway.ocpp_url, "CP-UNKNOWN", &["ocpp1.6"], None)
        .await
        .unwrap()
        .err()
        .expect("an unknown charger is refused");
    assert_eq!(refusal.status, 401);

    let mut charger = Charger::connect(&gateway.ocpp_url, "CP-DEPLOY", &["ocpp1.6"])
        .await
        .expect("charger connects");
    let boot = charger.boot().await.expect("boot answered");
    assert_eq!(boot["status"], "Accepted", "boot: {boot}");
    charger.call_ok("Heartbeat", json!({})).await.unwrap();
    // A benign schema deviation (an unknown field), accepted under the default tolerance.
    charger
        .call_ok("Heartbeat", json!({"uptime": 1}))
        .await
        .unwrap();

    let command = {
        let admin = admin.clone();
        tokio::spawn(async move {
            admin
                .command("CP-DEPLOY", "reset", json!({"type": "soft"}))
                .await
        })
    };
    let (message_id, action, _) = charger
        .next_call(Duration::from_secs(10))
        .await
        .expect("the reset reaches the charger");
    assert_eq!(action, "Reset");
    charger
        .reply(&message_id, json!({"status": "Accepted"}))
        .unwrap();
    let reply = command.await.unwrap().unwrap();
    assert_eq!(reply.status, 200, "reset: {}", reply.text);

    charger.send_text("this is not OCPP-J").unwrap();
    let rejected = charger.next(Duration::from_secs(5)).await;
    assert!(
        rejected.is_some(),
        "the gateway neither answered nor closed after a frame that is not JSON"
    );
}

/// Every `VOLTGATE_*` name in `text`.
pub(crate) fn voltgate_variables(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("VOLTGATE_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].trim_end_matches('_');
        // `VOLTGATE_*` in prose stands for all of them.
        if name != "VOLTGATE" {
            names.insert(name.to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// The example settings file shows each setting commented out with its default, so uncommenting
/// a line changes nothing until its value is edited. Settings without a default may show an
/// example value; the database is the unit's own (set in `voltgate.service`).
#[test]
fn the_example_settings_show_the_gateway_defaults() {
    let voltgate = binary_path("voltgate").expect("voltgate builds");
    let scratch = tempfile::tempdir().unwrap();
    let empty = scratch.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let output = Command::new(&voltgate)
        .args(["config", "check"])
        .arg(&empty)
        .env_clear()
        .output()
        .expect("voltgate config check runs");
    assert!(output.status.success(), "{output:?}");
    let effective = String::from_utf8_lossy(&output.stdout).to_string();
    let mut defaults = BTreeMap::new();
    for line in effective.lines() {
        if let Some((key, rest)) = line.split_once(" = ") {
            if let Some(value) = rest.strip_suffix("  # default") {
                defaults.insert(key.to_string(), value.trim_matches('"').to_string());
            }
        }
    }
    assert!(defaults.len() > 20, "{effective}");
    let example = read(&deploy_file("systemd/voltgate.env.example"));
    let mut wrong = Vec::new();
    let mut compared = 0;
    for line in example.lines() {
        let Some((name, value)) = line
            .strip_prefix("#VOLTGATE_")
            .and_then(|rest| rest.split_once('='))
        else {
            continue;
        };
        let key = name.to_ascii_lowercase().replace('_', "-");
        if key == "db" {
            continue;
        }
        if let Some(default) = defaults.get(&key) {
            compared += 1;
            if default != value {
                wrong.push(format!("VOLTGATE_{name}={value}, default {default}"));
            }
        }
    }
    assert!(compared > 20, "only {compared} settings compared");
    assert!(
        wrong.is_empty(),
        "example values that are not defaults: {wrong:?}"
    );
}

#[test]
fn every_voltgate_variable_in_the_assets_is_a_gateway_setting() {
    let voltgate = binary_path("voltgate").expect("voltgate builds");
    let help = Command::new(&voltgate)
        .arg("--help")
        .output()
        .expect("voltgate --help runs");
    assert!(help.status.success());
    let known = voltgate_variables(&String::from_utf8_lossy(&help.stdout));
    assert!(
        known.contains("VOLTGATE_API_LISTEN") && known.contains("VOLTGATE_DB"),
        "voltgate --help lists no environment variables: {known:?}"
    );

    let mut files = vec![
        "docker/Dockerfile",
        "docker/compose.yaml",
        "docker/compose.cluster.yaml",
        "haproxy/haproxy.cfg",
        "systemd/voltgate.service",
        "systemd/voltgate.env.example",
        "README.md",
    ]
    .into_iter()
    .map(deploy_file)
    .collect::<Vec<_>>();
    let templates = deploy_file("helm/voltgate/templates");
    for entry in std::fs::read_dir(&templates).expect("chart templates") {
        files.push(entry.expect("template entry").path());
    }
    for file in &files {
        let unknown: Vec<String> = voltgate_variables(&read(file))
            .difference(&known)
            .cloned()
            .collect();
        assert!(
            unknown.is_empty(),
            "{} sets {unknown:?}, which voltgate does not read",
            file.display()
        );
    }

    let documented = voltgate_variables(&read(&deploy_file("systemd/voltgate.env.example")));
    let undocumented: Vec<&String> = known.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "document {undocumented:?} in deploy/systemd/voltgate.env.example"
    );
}

#[tokio::test]
async fn an_online_backup_restores_into_a_new_gateway() {
    let original = Gateway::start(GatewayOptions::preset("connect")).expect("gateway starts");
    let admin = original.api();
    admin
        .scope("depot", "site", "root")
        .await
        .unwrap()
        .expect(201);
    admin.charger("CP-KEPT", "depot").await.unwrap().expect(201);

    let database = original.workdir.path().join("voltgate.db");
    let backup_dir = tempfile::tempdir().unwrap();
    let backup = backup_dir.path().join("backup.db");
    let vacuum = Command::new("sqlite3")
        .arg(&database)
        .arg(format!("VACUUM INTO '{}'", backup.display()))
        .output()
        .expect("the sqlite3 shell runs (Debian package sqlite3)");
    assert!(
        vacuum.status.success(),
        "VACUUM INTO failed: {}",
        String::from_utf8_lossy(&vacuum.stderr)
    );

    let restored = Gateway::start(
        GatewayOptions::preset("connect").db(&format!("sqlite://{}", backup.display())),
    )
    .expect("a gateway starts on the backup");
    let chargers = restored
        .api()
        .get("/api/v1/chargers/CP-KEPT")
        .await
        .unwrap()
        .expect(200);
    assert!(chargers.text.contains("depot"), "{}", chargers.text);
    drop(original);
}

#[test]
fn compose_prometheus_and_grafana_files_fit_together() {
    let compose_dir = deploy_file("docker");
    let compose = yaml("docker/compose.yaml");
    let services = field(&compose, "services", "compose.yaml");
    for name in ["gateway", "prometheus", "grafana"] {
        field(services, name, "compose.yaml services");
    }

    let gateway = field(services, "gateway", "compose");
    let build = field(gateway, "build", "gateway");
    let context = compose_dir.join(text(build, "context", "gateway build"));
    assert!(
        context
            .join(text(build, "dockerfile", "gateway build"))
            .is_file(),
        "the gateway's Dockerfile is not where compose looks"
    );
    assert!(
        context.join("Cargo.toml").is_file(),
        "the build context is not the repository root"
    );

    let mounts_of = |service: &str| -> Vec<(PathBuf, String)> {
        field(field(services, service, "compose"), "volumes", service)
            .as_sequence()
            .expect("volumes is a list")
            .iter()
            .filter_map(Yaml::as_str)
            .filter(|mount| mount.starts_with('.'))
            .map(|mount| {
                let mut parts = mount.split(':');
                let source = compose_dir.join(parts.next().unwrap_or_default());
                let target = parts.next().unwrap_or_default().to_string();
                assert!(
                    source.exists(),
                    "{service} mounts {} which does not exist",
                    source.display()
                );
                (source, target)
            })
            .collect()
    };

    let prometheus_mounts = mounts_of("prometheus");
    let prometheus_config = prometheus_mounts
        .iter()
        .find(|(_, target)| target == "/etc/prometheus/prometheus.yml")
        .expect("compose mounts the Prometheus configuration");
    let config: Yaml = serde_norway::from_str(&read(&prometheus_config.0)).unwrap();
    for rule_file in field(&config, "rule_files", "prometheus.yml")
        .as_sequence()
        .expect("rule_files is a list")
    {
        let rule_file = rule_file.as_str().expect("rule file path");
        let in_container = format!("/etc/prometheus/{rule_file}");
        assert!(
            prometheus_mounts
                .iter()
                .any(|(source, target)| *target == in_container
                    && source.ends_with("prometheus/alerts.yaml")),
            "prometheus.yml loads {rule_file}, which compose does not mount as the alert rules"
        );
    }
    let targets: Vec<String> = field(&config, "scrape_configs", "prometheus.yml")
        .as_sequence()
        .expect("scrape_configs is a list")
        .iter()
        .flat_map(|job| {
            field(job, "static_configs", "scrape job")
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|static_config| {
            field(&static_config, "targets", "static config")
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|target| target.as_str().map(str::to_string))
        .collect();
    assert_eq!(
        targets,
        ["gateway:8080"],
        "Prometheus must scrape the gateway's API port"
    );
    let dockerfile = read(&deploy_file("docker/Dockerfile"));
    assert!(dockerfile.contains("VOLTGATE_API_LISTEN=0.0.0.0:8080"));

    let grafana_mounts = mounts_of("grafana");
    let provisioning = grafana_mounts
        .iter()
        .find(|(_, target)| target == "/etc/grafana/provisioning")
        .map(|(source, _)| source.clone())
        .expect("compose mounts Grafana's provisioning directory");
    let datasources: Yaml =
        serde_norway::from_str(&read(&provisioning.join("datasources/prometheus.yaml"))).unwrap();
    let datasource = &field(&datasources, "datasources", "datasources")
        .as_sequence()
        .expect("datasources is a list")[0];
    assert_eq!(text(datasource, "type", "datasource"), "prometheus");
    assert_eq!(
        text(datasource, "url", "datasource"),
        "http://prometheus:9090"
    );
    let providers: Yaml =
        serde_norway::from_str(&read(&provisioning.join("dashboards/voltgate.yaml"))).unwrap();
    let provider = &field(&providers, "providers", "dashboards")
        .as_sequence()
        .expect("providers is a list")[0];
    let dashboards_path = text(field(provider, "options", "provider"), "path", "provider");
    assert!(
        grafana_mounts
            .iter()
            .any(|(source, target)| source.ends_with("grafana/voltgate.json")
                && Path::new(target).starts_with(dashboards_path)),
        "the dashboard is not mounted where the provider loads dashboards from ({dashboards_path})"
    );

    let dashboard = dashboard();
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("template variables");
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "datasource" && v["query"] == "prometheus"),
        "the dashboard needs a Prometheus data-source variable"
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    let mut cells = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            assert!(
                target["expr"].as_str().is_some_and(|e| !e.is_empty()),
                "{title}: empty query"
            );
        }
        let grid = &panel["gridPos"];
        let (x, y, w, h) = (
            grid["x"].as_u64().unwrap(),
            grid["y"].as_u64().unwrap(),
            grid["w"].as_u64().unwrap(),
            grid["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24, "{title} is wider than the dashboard");
        for column in x..x + w {
            for row in y..y + h {
                assert!(
                    cells.insert((column, row)),
                    "{title} overlaps another panel"
                );
            }
        }
    }
}

/// `${NAME}` references in an HAProxy configuration (HAProxy expands them from its
/// environment inside double quotes).
fn haproxy_variables(config: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = config;
    while let Some(start) = rest.find("${") {
        let tail = &rest[start + 2..];
        let end = tail.find('}').expect("an unclosed ${ in haproxy.cfg");
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Runs `haproxy -c` on the shipped configuration with `env`; returns its output. Fails the
/// test when the file is refused.
pub fn haproxy_check(env: &BTreeMap<String, String>) -> String {
    let output = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(deploy_file("haproxy/haproxy.cfg"))
        .envs(env)
        .output()
        .expect("haproxy runs (Debian package haproxy; tests/run.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "haproxy -c refused the file:\n{text}"
    );
    assert!(text.contains("Configuration file is valid"), "{text}");
    text
}

#[test]
fn cluster_compose_runs_three_nodes_on_postgres_and_nats_behind_haproxy() {
    let compose_dir = deploy_file("docker");
    let mut compose = yaml("docker/compose.cluster.yaml");
    compose.apply_merge().expect("YAML merge keys resolve");
    let services = field(&compose, "services", "compose.cluster.yaml");
    let env_of = |service: &str| -> BTreeMap<String, String> {
        let environment = field(
            field(services, service, "compose.cluster"),
            "environment",
            service,
        );
        let mut env = environment.clone();
        env.apply_merge().expect("merge keys in the environment");
        env.as_mapping()
            .unwrap_or_else(|| panic!("{service}: environment is a mapping"))
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Yaml::String(s) => s.clone(),
                    other => serde_norway::to_string(other).unwrap().trim().to_string(),
                };
                (k.as_str().expect("a variable name").to_string(), value)
            })
            .collect()
    };

    let nodes = ["gateway-1", "gateway-2", "gateway-3"];
    let mut node_ids = BTreeSet::new();
    for node in nodes {
        let env = env_of(node);
        assert!(
            env["VOLTGATE_DB"].starts_with("postgres://"),
            "{node}: {env:?}"
        );
        assert!(
            env["VOLTGATE_DB"].contains("@postgres:5432/"),
            "{node}: {env:?}"
        );
        assert_eq!(env["VOLTGATE_CLUSTER"], "nats://nats:4222", "{node}");
        node_ids.insert(env["VOLTGATE_NODE_ID"].clone());
        let service = field(services, node, "compose.cluster");
        assert_eq!(text(service, "image", node), "voltgate:local");
        assert!(
            field(service, "stop_grace_period", node)
                .as_str()
                .is_some_and(|grace| grace.trim_end_matches('s').parse::<u64>().unwrap() > 10),
            "{node}: the grace period must exceed the 10 s shutdown timeout"
        );
    }
    assert_eq!(node_ids.len(), 3, "every node has its own id: {node_ids:?}");
    let build = field(
        field(services, "gateway-1", "compose"),
        "build",
        "gateway-1",
    );
    assert!(compose_dir
        .join(text(build, "context", "build"))
        .join(text(build, "dockerfile", "build"))
        .is_file());

    let nats: Vec<&str> = field(field(services, "nats", "compose"), "command", "nats")
        .as_sequence()
        .expect("the nats command is a list")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(nats.contains(&"-js"), "NATS runs with JetStream: {nats:?}");
    field(services, "postgres", "compose.cluster");

    // HAProxy gets the shipped configuration and every address it refers to, pointing at
    // the nodes' listeners as the image sets them (9000 and 8080).
    let haproxy = field(services, "haproxy", "compose.cluster");
    let mounts: Vec<&str> = field(haproxy, "volumes", "haproxy")
        .as_sequence()
        .expect("volumes is a list")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    let config_mount = mounts
        .iter()
        .find(|m| m.ends_with(":/usr/local/etc/haproxy/haproxy.cfg:ro"))
        .expect("compose mounts haproxy.cfg where the image reads it");
    let source = compose_dir.join(config_mount.split(':').next().unwrap());
    assert_eq!(
        source.canonicalize().unwrap(),
        deploy_file("haproxy/haproxy.cfg").canonicalize().unwrap()
    );
    let env = env_of("haproxy");
    let wanted = haproxy_variables(&read(&deploy_file("haproxy/haproxy.cfg")));
    let given: BTreeSet<String> = env.keys().cloned().collect();
    assert_eq!(
        wanted, given,
        "haproxy.cfg's variables and compose's environment differ"
    );
    for (n, node) in nodes.iter().enumerate() {
        assert_eq!(env[&format!("NODE{}_OCPP", n + 1)], format!("{node}:9000"));
        assert_eq!(env[&format!("NODE{}_API", n + 1)], format!("{node}:8080"));
    }
    let dockerfile = read(&deploy_file("docker/Dockerfile"));
    assert!(dockerfile.contains("VOLTGATE_OCPP_LISTEN=0.0.0.0:9000"));
    assert!(dockerfile.contains("VOLTGATE_API_LISTEN=0.0.0.0:8080"));

    // The file itself, by HAProxy: valid, with no complaint but the compose host names this
    // machine cannot resolve (the servers start without an address and resolve at run time).
    let report = haproxy_check(&env);
    for line in report
        .lines()
        .filter(|l| l.contains("[WARNING]") || l.contains("[ALERT]"))
    {
        assert!(
            line.contains("could not resolve address"),
            "{line}\n{report}"
        );
    }
    let config = read(&deploy_file("haproxy/haproxy.cfg"));
    for needed in [
        "mode tcp",
        "timeout tunnel 1h",
        "uri /readyz",
        "balance leastconn",
    ] {
        assert!(config.contains(needed), "haproxy.cfg lacks `{needed}`");
    }
}

#[test]
fn dockerfile_builds_both_binaries_into_a_non_root_image() {
    let dockerfile = read(&deploy_file("docker/Dockerfile"));
    let instructions: Vec<String> = dockerfile
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    let with = |keyword: &str| -> Vec<&String> {
        instructions
            .iter()
            .filter(|line| line.starts_with(&format!("{keyword} ")))
            .collect()
    };
    assert!(dockerfile.contains("ARG RUST_IMAGE=rust:1-bookworm"));
    assert!(dockerfile.contains("ARG RUNTIME_IMAGE=debian:bookworm-slim"));
    assert!(
        with("RUN")
            .iter()
            .any(|run| run.contains("cargo chef cook")),
        "no dependency-caching step"
    );
    for source in with("COPY")
        .iter()
        .filter(|copy| !copy.contains("--from="))
        .flat_map(|copy| {
            let words: Vec<&str> = copy.split_whitespace().skip(1).collect();
            words[..words.len() - 1]
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        })
    {
        assert!(
            repo_root().join(&source).exists(),
            "the Dockerfile copies {source}, which is not in the repository"
        );
    }
    let runtime_copy = with("COPY")
        .into_iter()
        .find(|copy| copy.contains("--from=builder"))
        .expect("the runtime stage copies the binaries");
    for binary in ["voltgate", "voltgate-sim"] {
        assert!(
            runtime_copy
                .split_whitespace()
                .any(|w| w == format!("/out/{binary}")),
            "{binary} is not in the image"
        );
    }
    let user = with("USER")
        .last()
        .map(|u| u.as_str())
        .unwrap_or("USER root");
    assert!(
        !user.contains("root") && user != "USER 0" && !user.starts_with("USER 0:"),
        "the image runs as {user}"
    );
    let healthcheck = with("HEALTHCHECK");
    assert!(
        healthcheck.len() == 1 && healthcheck[0].contains("/healthz"),
        "{healthcheck:?}"
    );
    assert_eq!(with("EXPOSE"), [&"EXPOSE 9000 8080".to_string()]);
    assert!(dockerfile.contains("VOLTGATE_DB=sqlite:///var/lib/voltgate/voltgate.db"));
    assert!(with("VOLUME")
        .iter()
        .any(|v| v.contains("/var/lib/voltgate")));
    let ignored = read(&deploy_file("docker/Dockerfile.dockerignore"));
    assert!(
        ignored.lines().any(|line| line.trim() == "target"),
        "the build context would include target/"
    );
}

/// The `{{ ... }}` actions of a Go template, trimmed of `-` and spaces.
fn template_actions(source: &str, file: &str) -> Vec<String> {
    let mut actions = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .unwrap_or_else(|| panic!("{file}: an action is not closed"));
        let action = after[..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
        actions.push(action.to_string());
        rest = &after[end + 2..];
    }
    assert!(!rest.contains("}}"), "{file}: `}}}}` without `{{{{`");
    actions
}

/// Every `.Values.a.b` path in a template action.
fn values_paths(action: &str) -> Vec<Vec<String>> {
    action
        .match_indices(".Values.")
        .map(|(at, marker)| {
            action[at + marker.len()..]
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .next()
                .unwrap_or_default()
                .trim_end_matches('.')
                .split('.')
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn helm_chart_templates_reference_what_exists() {
    let chart = yaml("helm/voltgate/Chart.yaml");
    assert_eq!(text(&chart, "apiVersion", "Chart.yaml"), "v2");
    assert_eq!(text(&chart, "name", "Chart.yaml"), "voltgate");
    let version = text(&chart, "version", "Chart.yaml");
    assert_eq!(
        version.split('.').count(),
        3,
        "chart version {version} is not semver"
    );
    let values = yaml("helm/voltgate/values.yaml");

    let templates = deploy_file("helm/voltgate/templates");
    let helpers = read(&templates.join("_helpers.tpl"));
    let defined: BTreeSet<String> = template_actions(&helpers, "_helpers.tpl")
        .iter()
        .filter_map(|action| action.strip_prefix("define "))
        .map(|name| name.trim().trim_matches('"').to_string())
        .collect();

    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(&templates).expect("templates") {
        let path = entry.expect("template").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        sources.insert(name, read(&path));
    }
    for required in [
        "_helpers.tpl",
        "deployment.yaml",
        "service.yaml",
        "configmap.yaml",
        "secret.yaml",
        "servicemonitor.yaml",
        "pvc.yaml",
        "presets.yaml",
        "prometheusrule.yaml",
        "dashboard.yaml",
    ] {
        assert!(
            sources.contains_key(required),
            "the chart has no {required}"
        );
    }

    for (file, source) in &sources {
        let mut open_blocks = Vec::new();
        for action in template_actions(source, file) {
            if action.starts_with("/*") {
                assert!(action.ends_with("*/"), "{file}: unclosed comment {action}");
                continue;
            }
            let keyword = action.split_whitespace().next().unwrap_or_default();
            match keyword {
                "if" | "range" | "with" | "define" | "block" => open_blocks.push(action.clone()),
                "end" => {
                    open_blocks
                        .pop()
                        .unwrap_or_else(|| panic!("{file}: `end` without a block"));
                }
                _ => {}
            }
            for path in values_paths(&action) {
                let mut node = &values;
                for key in &path {
                    node = node.get(key.as_str()).unwrap_or_else(|| {
                        panic!("{file}: .Values.{} is not in values.yaml", path.join("."))
                    });
                }
            }
            for quoted in ["include \"", "template \""] {
                for (at, marker) in action.match_indices(quoted) {
                    let name = action[at + marker.len()..]
                        .split('"')
                        .next()
                        .unwrap_or_default();
                    assert!(
                        defined.contains(name),
                        "{file}: `{name}` is not defined in _helpers.tpl"
                    );
                }
            }
        }
        assert!(open_blocks.is_empty(), "{file}: unclosed {open_blocks:?}");
    }

    let probe_path = |probe: &str| {
        text(
            field(field(&values, probe, "values"), "httpGet", probe),
            "path",
            probe,
        )
        .to_string()
    };
    assert_eq!(probe_path("livenessProbe"), "/healthz");
    assert_eq!(probe_path("readinessProbe"), "/readyz");
    assert_eq!(probe_path("startupProbe"), "/healthz");
    let service = field(&values, "service", "values");
    let port = |service: &Yaml, key: &str| field(service, key, "service").as_u64();
    assert_eq!(port(field(service, "ocpp", "service"), "port"), Some(9000));
    assert_eq!(
        port(field(service, "ocpp", "service"), "tlsPort"),
        Some(9443)
    );
    assert_eq!(port(field(service, "api", "service"), "port"), Some(8080));
    assert_eq!(
        field(
            field(&values, "serviceMonitor", "values"),
            "enabled",
            "serviceMonitor"
        )
        .as_bool(),
        Some(false)
    );
    assert!(sources["servicemonitor.yaml"].starts_with("{{- if .Values.serviceMonitor.enabled }}"));
    assert!(sources["secret.yaml"].contains("kind: Secret"));
    let deployment = &sources["deployment.yaml"];
    for needed in [
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
        "secretKeyRef",
        "persistentVolumeClaim",
        "configMapRef",
    ] {
        assert!(
            deployment.contains(needed),
            "the Deployment has no {needed}"
        );
    }
}
