//! The Helm chart rendered and checked without a `helm` binary.
//!
//! `gotemplate` renders `deploy/helm/voltgate` the way `helm template` would, failing on
//! anything outside the subset it knows; these tests render the defaults and one value set per
//! option, parse every document as YAML, and check what the deployment page promises: chargers
//! and the operator API on separate Services (the API never exposed by `service.ocpp.type`),
//! ports that meet, variables the gateway reads, files that are mounted where the settings
//! point, the alert rules and the dashboard equal to the ones under `deploy/`, and the probes.

mod gotemplate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_norway::Value as Yaml;
use voltgate_tests::binary_path;

use gotemplate::{Chart, Value};

const RELEASE: &str = "gw";
const NAMESPACE: &str = "charging";
const FULLNAME: &str = "gw-voltgate";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository")
        .to_path_buf()
}

fn chart_dir() -> PathBuf {
    repo_root().join("deploy/helm/voltgate")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn chart() -> &'static Chart {
    static CHART: OnceLock<Chart> = OnceLock::new();
    CHART.get_or_init(|| Chart::load(&chart_dir()).unwrap_or_else(|e| panic!("chart: {e}")))
}

fn values(yaml: &str) -> Value {
    let parsed: Yaml = serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    Value::from_yaml(&parsed).unwrap()
}

/// A custom preset `site` (a shipped one renamed: the id must be the file's name), to mount.
fn preset_text() -> String {
    let shipped = read(&repo_root().join("crates/voltgate-policy/presets/virta.toml"));
    assert!(shipped.contains("\nid = \"virta\"\n"));
    shipped.replacen("\nid = \"virta\"\n", "\nid = \"site\"\n", 1)
}

/// One value set: what it turns on, and the objects it expects besides the default ones.
struct Scenario {
    name: &'static str,
    values: String,
    /// (kind, name) of the objects rendered in addition to the defaults'.
    extra: Vec<(&'static str, String)>,
    /// (kind, name) of the defaults' objects it leaves out.
    left_out: Vec<(&'static str, String)>,
    /// Objects the value set names that exist in the cluster already: (kind, name).
    existing: Vec<(&'static str, &'static str)>,
}

fn scenarios() -> Vec<Scenario> {
    let preset_values = format!(
        "config:\n  preset: /etc/voltgate/presets/site.toml\npresets:\n  files:\n    site.toml: |\n{}",
        preset_text()
            .lines()
            .map(|line| format!("      {line}\n"))
            .collect::<String>()
    );
    let tls = "tls:\n  enabled: true\n  existingSecret: charger-tls\n  clientCA:\n    existingSecret: charger-ca\n";
    let everything = format!(
        "{preset_values}{tls}  api:\n    enabled: true\n    existingSecret: api-tls\nservice:\n  ocpp:\n    type: LoadBalancer\n    externalTrafficPolicy: Local\nserviceMonitor:\n  enabled: true\nprometheusRule:\n  enabled: true\ngrafanaDashboard:\n  enabled: true\n"
    );
    vec![
        Scenario {
            name: "defaults",
            values: "{}".into(),
            extra: vec![],
            left_out: vec![],
            existing: vec![],
        },
        Scenario {
            name: "existing admin token secret and volume claim",
            values: "adminToken:\n  existingSecret: admin-token\n  key: token\npersistence:\n  existingClaim: voltgate-data\nserviceAccount:\n  create: false\n".into(),
            extra: vec![],
            left_out: vec![
                ("Secret", FULLNAME.into()),
                ("PersistentVolumeClaim", format!("{FULLNAME}-data")),
                ("ServiceAccount", FULLNAME.into()),
            ],
            existing: vec![
                ("Secret", "admin-token"),
                ("PersistentVolumeClaim", "voltgate-data"),
            ],
        },
        Scenario {
            name: "ocpp load balancer",
            values: "service:\n  ocpp:\n    type: LoadBalancer\n    externalTrafficPolicy: Local\n    annotations:\n      service.beta.kubernetes.io/aws-load-balancer-type: nlb\n".into(),
            extra: vec![],
            left_out: vec![],
            existing: vec![],
        },
        Scenario {
            name: "ocpp node port",
            values: "service:\n  ocpp:\n    type: NodePort\n".into(),
            extra: vec![],
            left_out: vec![],
            existing: vec![],
        },
        Scenario {
            name: "charger tls with a CA secret",
            values: tls.into(),
            extra: vec![],
            left_out: vec![],
            existing: vec![("Secret", "charger-tls"), ("Secret", "charger-ca")],
        },
        Scenario {
            name: "charger tls with a CA config map",
            values: "tls:\n  enabled: true\n  existingSecret: charger-tls\n  clientCA:\n    existingConfigMap: charger-ca\n    key: bundle.pem\n".into(),
            extra: vec![],
            left_out: vec![],
            existing: vec![("Secret", "charger-tls"), ("ConfigMap", "charger-ca")],
        },
        Scenario {
            name: "api tls",
            values: "tls:\n  api:\n    enabled: true\n    existingSecret: api-tls\nserviceMonitor:\n  enabled: true\n  tlsConfig:\n    insecureSkipVerify: true\n".into(),
            extra: vec![("ServiceMonitor", FULLNAME.into())],
            left_out: vec![],
            existing: vec![("Secret", "api-tls")],
        },
        Scenario {
            name: "presets from values",
            values: preset_values.clone(),
            extra: vec![("ConfigMap", format!("{FULLNAME}-presets"))],
            left_out: vec![],
            existing: vec![],
        },
        Scenario {
            name: "presets from an existing config map",
            values: "config:\n  preset: /etc/voltgate/presets/site.toml\npresets:\n  existingConfigMap: site-presets\n".into(),
            extra: vec![],
            left_out: vec![],
            existing: vec![("ConfigMap", "site-presets")],
        },
        Scenario {
            name: "prometheus rule",
            values: "prometheusRule:\n  enabled: true\n  labels:\n    release: prometheus\n".into(),
            extra: vec![("PrometheusRule", FULLNAME.into())],
            left_out: vec![],
            existing: vec![],
        },
        Scenario {
            name: "dashboard",
            values: "grafanaDashboard:\n  enabled: true\n".into(),
            extra: vec![("ConfigMap", format!("{FULLNAME}-dashboard"))],
            left_out: vec![],
            existing: vec![],
        },
        Scenario {
            name: "cluster of three on postgresql and nats",
            values: "replicaCount: 3\ndatabase:\n  existingSecret: voltgate-db\ncluster:\n  nats: nats://nats-0.nats:4222,nats://nats-1.nats:4222\n".into(),
            extra: vec![("PodDisruptionBudget", FULLNAME.into())],
            left_out: vec![("PersistentVolumeClaim", format!("{FULLNAME}-data"))],
            existing: vec![("Secret", "voltgate-db")],
        },
        Scenario {
            name: "one node on postgresql",
            values: "database:\n  existingSecret: voltgate-db\n  key: url\n".into(),
            extra: vec![],
            left_out: vec![("PersistentVolumeClaim", format!("{FULLNAME}-data"))],
            existing: vec![("Secret", "voltgate-db")],
        },
        Scenario {
            name: "everything",
            values: everything,
            extra: vec![
                ("ConfigMap", format!("{FULLNAME}-presets")),
                ("ServiceMonitor", FULLNAME.into()),
                ("PrometheusRule", FULLNAME.into()),
                ("ConfigMap", format!("{FULLNAME}-dashboard")),
            ],
            left_out: vec![],
            existing: vec![
                ("Secret", "charger-tls"),
                ("Secret", "charger-ca"),
                ("Secret", "api-tls"),
            ],
        },
    ]
}

/// Every document of every rendered template, parsed; empty documents left out.
fn documents(rendered: &gotemplate::Rendered) -> Vec<(String, Yaml)> {
    let mut docs = Vec::new();
    for (template, text) in &rendered.manifests {
        let mut current = String::new();
        let mut flush = |current: &mut String| {
            let doc: Yaml = serde_norway::from_str(current)
                .unwrap_or_else(|e| panic!("{template} is not YAML ({e}):\n{text}"));
            if !doc.is_null() {
                docs.push((template.clone(), doc));
            }
            current.clear();
        };
        for line in text.lines() {
            if line.trim_end() == "---" {
                flush(&mut current);
            } else {
                current.push_str(line);
                current.push('\n');
            }
        }
        flush(&mut current);
    }
    docs
}

fn get<'a>(value: &'a Yaml, path: &str) -> &'a Yaml {
    let mut node = value;
    for key in path.split('.') {
        node = node
            .get(key)
            .unwrap_or_else(|| panic!("no `{path}` (at `{key}`) in {value:?}"));
    }
    node
}

fn str_at<'a>(value: &'a Yaml, path: &str) -> &'a str {
    get(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("`{path}` is not a string in {value:?}"))
}

fn list_at<'a>(value: &'a Yaml, path: &str) -> &'a [Yaml] {
    value
        .get(path.split('.').next().unwrap())
        .map(|_| get(value, path))
        .and_then(Yaml::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn kind_and_name(doc: &Yaml) -> (String, String) {
    (
        str_at(doc, "kind").to_string(),
        str_at(doc, "metadata.name").to_string(),
    )
}

fn find<'a>(docs: &'a [(String, Yaml)], kind: &str, name: &str) -> Option<&'a Yaml> {
    docs.iter()
        .map(|(_, doc)| doc)
        .find(|doc| kind_and_name(doc) == (kind.to_string(), name.to_string()))
}

fn labels(value: &Yaml) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    let value = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| panic!("label {k:?} is not a string: {v:?}"));
                    (k.as_str().unwrap().to_string(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The `VOLTGATE_*` variables `voltgate --help` lists: the settings the gateway reads.
fn gateway_variables() -> &'static BTreeSet<String> {
    static KNOWN: OnceLock<BTreeSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let voltgate = binary_path("voltgate").expect("voltgate builds");
        let help = Command::new(&voltgate)
            .arg("--help")
            .output()
            .expect("voltgate --help runs");
        assert!(help.status.success());
        let known =
            crate::deploy_assets::voltgate_variables(&String::from_utf8_lossy(&help.stdout));
        assert!(known.contains("VOLTGATE_TLS_CERT"), "{known:?}");
        known
    })
}

fn port_of(address: &str) -> u64 {
    address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("{address} has no port"))
}

/// Everything a scenario's manifests must satisfy.
fn check(scenario: &Scenario, docs: &[(String, Yaml)], merged_values: &Yaml) {
    let context = scenario.name;

    // Kinds and names.
    let expected: BTreeSet<(String, String)> = [
        ("ServiceAccount", FULLNAME.to_string()),
        ("Secret", FULLNAME.to_string()),
        ("ConfigMap", FULLNAME.to_string()),
        ("PersistentVolumeClaim", format!("{FULLNAME}-data")),
        ("Service", FULLNAME.to_string()),
        ("Service", format!("{FULLNAME}-api")),
        ("Deployment", FULLNAME.to_string()),
    ]
    .into_iter()
    .chain(scenario.extra.iter().cloned())
    .filter(|object| !scenario.left_out.contains(object))
    .map(|(kind, name)| (kind.to_string(), name))
    .collect();
    let mut rendered = BTreeSet::new();
    for (template, doc) in docs {
        assert!(
            str_at(doc, "apiVersion").contains('v'),
            "{context}: {template}"
        );
        assert!(
            rendered.insert(kind_and_name(doc)),
            "{context}: {:?} rendered twice",
            kind_and_name(doc)
        );
    }
    assert_eq!(rendered, expected, "{context}: objects");
    let existing = |kind: &str, name: &str| {
        find(docs, kind, name).is_some()
            || scenario
                .existing
                .iter()
                .any(|(k, n)| *k == kind && *n == name)
    };

    // The pod.
    let deployment = find(docs, "Deployment", FULLNAME).unwrap();
    let pod = get(deployment, "spec.template");
    let pod_labels = labels(get(pod, "metadata.labels"));
    assert!(selects(
        &labels(get(deployment, "spec.selector.matchLabels")),
        &pod_labels
    ));
    let account = str_at(pod, "spec.serviceAccountName");
    assert!(
        existing("ServiceAccount", account) || account == "default",
        "{context}: service account {account}"
    );
    let containers = list_at(pod, "spec.containers");
    assert_eq!(containers.len(), 1, "{context}");
    let container = &containers[0];
    let container_ports: BTreeMap<String, u64> = list_at(container, "ports")
        .iter()
        .map(|port| {
            (
                str_at(port, "name").to_string(),
                get(port, "containerPort").as_u64().expect("a port number"),
            )
        })
        .collect();

    // Services: the API one is ClusterIP whatever the values say; only the ocpp one follows
    // service.ocpp.type; ports meet the container's.
    let ocpp_type = str_at(merged_values, "service.ocpp.type");
    let tls_enabled = get(merged_values, "tls.enabled").as_bool().unwrap();
    let api_tls = get(merged_values, "tls.api.enabled").as_bool().unwrap();
    let services: Vec<&Yaml> = docs
        .iter()
        .map(|(_, doc)| doc)
        .filter(|doc| str_at(doc, "kind") == "Service")
        .collect();
    for service in &services {
        let (_, name) = kind_and_name(service);
        assert!(
            selects(&labels(get(service, "spec.selector")), &pod_labels),
            "{context}: {name} selects no pod"
        );
        for port in list_at(service, "spec.ports") {
            let target = str_at(port, "targetPort");
            let number = get(port, "port").as_u64().unwrap();
            assert_eq!(
                container_ports.get(target),
                Some(&number),
                "{context}: {name} port {number} targets {target}, container ports {container_ports:?}"
            );
        }
    }
    let api_service = find(docs, "Service", &format!("{FULLNAME}-api")).unwrap();
    let ocpp_service = find(docs, "Service", FULLNAME).unwrap();
    assert_eq!(str_at(api_service, "spec.type"), "ClusterIP", "{context}");
    assert_eq!(str_at(ocpp_service, "spec.type"), ocpp_type, "{context}");
    let port_names = |service: &Yaml| -> BTreeSet<String> {
        list_at(service, "spec.ports")
            .iter()
            .map(|p| str_at(p, "name").to_string())
            .collect()
    };
    assert_eq!(port_names(api_service), BTreeSet::from(["api".to_string()]));
    let mut ocpp_ports = BTreeSet::from(["ocpp".to_string()]);
    if tls_enabled {
        ocpp_ports.insert("ocpp-tls".to_string());
    }
    assert_eq!(port_names(ocpp_service), ocpp_ports, "{context}");
    if ocpp_type != "ClusterIP" {
        assert_eq!(
            get(ocpp_service, "spec")
                .get("externalTrafficPolicy")
                .and_then(Yaml::as_str),
            get(merged_values, "service.ocpp.externalTrafficPolicy")
                .as_str()
                .filter(|p| !p.is_empty()),
        );
    }

    // Settings: every variable is one the gateway reads, listen ports are the container's.
    let mut settings: BTreeMap<String, String> = BTreeMap::new();
    for source in list_at(container, "envFrom") {
        let name = str_at(source, "configMapRef.name");
        let config = find(docs, "ConfigMap", name)
            .unwrap_or_else(|| panic!("{context}: envFrom names {name}, not rendered"));
        for (key, value) in get(config, "data").as_mapping().unwrap() {
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("{context}: {key:?} is not a string"));
            settings.insert(key.as_str().unwrap().to_string(), value.to_string());
        }
    }
    for env in list_at(container, "env") {
        let name = str_at(env, "name").to_string();
        if let Some(secret) = env.get("valueFrom").and_then(|v| v.get("secretKeyRef")) {
            let secret_name = str_at(secret, "name");
            assert!(
                existing("Secret", secret_name),
                "{context}: {name} reads {secret_name}"
            );
            if let Some(rendered) = find(docs, "Secret", secret_name) {
                get(get(rendered, "data"), str_at(secret, "key"));
            }
            settings.insert(name, "<secret>".into());
        } else if let Some(field) = env.get("valueFrom").and_then(|v| v.get("fieldRef")) {
            assert_eq!(
                (name.as_str(), str_at(field, "fieldPath")),
                ("VOLTGATE_NODE_ID", "metadata.name"),
                "{context}: only the node id comes from the pod"
            );
            settings.insert(name, "<pod name>".into());
        } else {
            settings.insert(name, str_at(env, "value").to_string());
        }
    }
    let unknown: Vec<&String> = settings
        .keys()
        .filter(|name| !gateway_variables().contains(*name))
        .collect();
    assert!(
        unknown.is_empty(),
        "{context}: voltgate reads no {unknown:?}"
    );
    for (variable, port) in [
        ("VOLTGATE_OCPP_LISTEN", "ocpp"),
        ("VOLTGATE_API_LISTEN", "api"),
        ("VOLTGATE_OCPP_TLS_LISTEN", "ocpp-tls"),
    ] {
        match settings.get(variable) {
            Some(address) => assert_eq!(
                Some(&port_of(address)),
                container_ports.get(port),
                "{context}: {variable}"
            ),
            None => assert!(
                !container_ports.contains_key(port),
                "{context}: {port} without {variable}"
            ),
        }
    }
    assert_eq!(
        settings.contains_key("VOLTGATE_OCPP_TLS_LISTEN"),
        tls_enabled
    );
    assert_eq!(settings.contains_key("VOLTGATE_API_TLS_CERT"), api_tls);

    // Volumes: every mount has its volume, every volume its source, and every file a setting
    // names is in a mounted volume that provides it.
    let volumes: BTreeMap<String, &Yaml> = list_at(pod, "spec.volumes")
        .iter()
        .map(|v| (str_at(v, "name").to_string(), v))
        .collect();
    let mut mounts = Vec::new();
    for mount in list_at(container, "volumeMounts") {
        let name = str_at(mount, "name");
        let volume = volumes
            .get(name)
            .unwrap_or_else(|| panic!("{context}: mount of {name}, which is no volume"));
        let read_only = mount.get("readOnly").and_then(Yaml::as_bool) == Some(true);
        if volume.get("secret").is_some() || volume.get("configMap").is_some() {
            assert!(read_only, "{context}: {name} is mounted writable");
        }
        mounts.push((str_at(mount, "mountPath").to_string(), *volume));
    }
    for (name, volume) in &volumes {
        if let Some(secret) = volume.get("secret") {
            assert!(
                existing("Secret", str_at(secret, "secretName")),
                "{context}: {name}"
            );
        } else if let Some(config) = volume.get("configMap") {
            assert!(
                existing("ConfigMap", str_at(config, "name")),
                "{context}: {name}"
            );
        } else if let Some(claim) = volume.get("persistentVolumeClaim") {
            assert!(
                existing("PersistentVolumeClaim", str_at(claim, "claimName")),
                "{context}: {name}"
            );
        } else {
            assert!(
                volume.get("emptyDir").is_some(),
                "{context}: {name} has no source"
            );
        }
    }
    let provides = |path: &str| -> bool {
        let path = Path::new(path);
        mounts.iter().any(|(dir, volume)| {
            let Ok(file) = path.strip_prefix(dir) else {
                return false;
            };
            let file = file.to_string_lossy();
            let items: Vec<&str> = ["secret", "configMap"]
                .iter()
                .filter_map(|source| volume.get(*source))
                .flat_map(|source| list_at(source, "items"))
                .map(|item| str_at(item, "path"))
                .collect();
            if !items.is_empty() {
                return items.contains(&file.as_ref());
            }
            match volume.get("configMap") {
                Some(config) => match find(docs, "ConfigMap", str_at(config, "name")) {
                    Some(rendered) => get(rendered, "data").get(file.as_ref()).is_some(),
                    None => true,
                },
                None => volume.get("secret").is_none(),
            }
        })
    };
    for variable in [
        "VOLTGATE_TLS_CERT",
        "VOLTGATE_TLS_KEY",
        "VOLTGATE_TLS_CLIENT_CA",
        "VOLTGATE_API_TLS_CERT",
        "VOLTGATE_API_TLS_KEY",
        "VOLTGATE_PRESET",
    ] {
        if let Some(path) = settings.get(variable).filter(|p| p.starts_with('/')) {
            assert!(
                provides(path),
                "{context}: {variable}={path} is no mounted file"
            );
        }
    }
    // The database: the SQLite file on the volume, or PostgreSQL from a Secret with no volume
    // at all; several replicas only in the cluster mode, with a PodDisruptionBudget.
    let replicas = get(deployment, "spec.replicas").as_u64().unwrap();
    let external = get(merged_values, "database.existingSecret")
        .as_str()
        .is_some_and(|secret| !secret.is_empty());
    let db = &settings["VOLTGATE_DB"];
    let strategy = str_at(deployment, "spec.strategy.type");
    if external {
        assert_eq!(
            db, "<secret>",
            "{context}: the database URL holds a password"
        );
        assert!(
            !volumes.contains_key("data"),
            "{context}: a data volume with PostgreSQL"
        );
        assert!(
            find(docs, "PersistentVolumeClaim", &format!("{FULLNAME}-data")).is_none(),
            "{context}: a claim with PostgreSQL"
        );
        assert_eq!(strategy, "RollingUpdate", "{context}");
    } else {
        let db_path = db.strip_prefix("sqlite://").expect("a SQLite database");
        assert!(provides(db_path), "{context}: {db} is not on a volume");
        assert_eq!(replicas, 1, "{context}: SQLite runs one pod");
        assert_eq!(strategy, "Recreate", "{context}");
    }
    assert_eq!(
        settings.get("VOLTGATE_NODE_ID").map(String::as_str),
        Some("<pod name>"),
        "{context}"
    );
    let nats = str_at(merged_values, "cluster.nats");
    assert_eq!(
        settings.get("VOLTGATE_CLUSTER").map(String::as_str),
        (!nats.is_empty()).then_some(nats),
        "{context}"
    );
    assert_eq!(
        replicas,
        get(merged_values, "replicaCount").as_f64().unwrap() as u64,
        "{context}"
    );
    match find(docs, "PodDisruptionBudget", FULLNAME) {
        Some(budget) => {
            assert!(
                replicas > 1,
                "{context}: a budget for one pod blocks node drains"
            );
            assert!(external && !nats.is_empty(), "{context}");
            assert!(selects(
                &labels(get(budget, "spec.selector.matchLabels")),
                &pod_labels
            ));
            let allowed = get(budget, "spec.maxUnavailable").as_u64().unwrap();
            assert!(
                allowed >= 1 && allowed < replicas,
                "{context}: maxUnavailable {allowed}"
            );
        }
        None => assert_eq!(replicas, 1, "{context}: several pods without a budget"),
    }
    // Kubernetes waits longer than the drain before it kills the pod.
    let shutdown = settings["VOLTGATE_SHUTDOWN_TIMEOUT"]
        .strip_suffix('s')
        .and_then(|n| n.parse::<u64>().ok())
        .expect("a shutdown timeout in seconds");
    let grace = get(pod, "spec.terminationGracePeriodSeconds")
        .as_u64()
        .unwrap();
    assert!(
        grace > shutdown,
        "{context}: grace {grace} s, drain {shutdown} s"
    );

    // Probes: a startup probe holds liveness back; all on the API port, HTTPS with API TLS.
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        let http = get(get(container, probe), "httpGet");
        assert_eq!(str_at(http, "path"), path, "{context}: {probe}");
        assert_eq!(str_at(http, "port"), "api", "{context}: {probe}");
        assert_eq!(
            http.get("scheme").and_then(Yaml::as_str).unwrap_or("HTTP"),
            if api_tls { "HTTPS" } else { "HTTP" },
            "{context}: {probe}"
        );
    }

    // The ServiceMonitor scrapes the API Service only.
    if let Some(monitor) = find(docs, "ServiceMonitor", FULLNAME) {
        let selector = labels(get(monitor, "spec.selector.matchLabels"));
        assert!(selects(
            &selector,
            &labels(get(api_service, "metadata.labels"))
        ));
        assert!(!selects(
            &selector,
            &labels(get(ocpp_service, "metadata.labels"))
        ));
        for endpoint in list_at(monitor, "spec.endpoints") {
            assert_eq!(str_at(endpoint, "port"), "api");
            assert_eq!(str_at(endpoint, "path"), "/metrics");
            assert_eq!(
                endpoint
                    .get("scheme")
                    .and_then(Yaml::as_str)
                    .unwrap_or("http"),
                if api_tls { "https" } else { "http" }
            );
        }
    }

    // The alert rules and the dashboard are the ones under deploy/.
    if let Some(rule) = find(docs, "PrometheusRule", FULLNAME) {
        let alerts: Yaml =
            serde_norway::from_str(&read(&repo_root().join("deploy/prometheus/alerts.yaml")))
                .unwrap();
        assert_eq!(
            get(rule, "spec.groups"),
            get(&alerts, "groups"),
            "{context}"
        );
        assert_eq!(get(rule, "spec").as_mapping().unwrap().len(), 1);
    }
    if let Some(config) = find(docs, "ConfigMap", &format!("{FULLNAME}-dashboard")) {
        assert_eq!(
            labels(get(config, "metadata.labels")).get("grafana_dashboard"),
            Some(&"1".to_string())
        );
        let json: serde_json::Value = serde_json::from_str(get_str_key(config, "voltgate.json"))
            .expect("the dashboard in the ConfigMap is JSON");
        let expected: serde_json::Value =
            serde_json::from_str(&read(&repo_root().join("deploy/grafana/voltgate.json"))).unwrap();
        assert_eq!(json, expected, "{context}");
    }
}

/// `data[key]` of a ConfigMap, for keys with dots.
fn get_str_key<'a>(config: &'a Yaml, key: &str) -> &'a str {
    get(config, "data")
        .get(key)
        .and_then(Yaml::as_str)
        .unwrap_or_else(|| panic!("no data.{key}"))
}

fn to_yaml(value: &Value) -> Yaml {
    match value {
        Value::Nil => Yaml::Null,
        Value::Bool(b) => Yaml::Bool(*b),
        Value::Int(i) => serde_norway::to_value(i).unwrap(),
        Value::Float(f) => serde_norway::to_value(f).unwrap(),
        Value::Str(s) => Yaml::String(s.clone()),
        Value::List(items) => Yaml::Sequence(items.iter().map(to_yaml).collect()),
        Value::Map(map) => Yaml::Mapping(
            map.iter()
                .map(|(k, v)| (Yaml::String(k.clone()), to_yaml(v)))
                .collect(),
        ),
        Value::Files | Value::Method(_) => unreachable!("values hold data only"),
    }
}

fn render(overrides: &str) -> Result<(gotemplate::Rendered, Yaml), String> {
    let overrides = values(overrides);
    let mut merged = chart().default_values().clone();
    gotemplate::coalesce(&mut merged, &overrides);
    let rendered = chart().render(RELEASE, NAMESPACE, &overrides)?;
    Ok((rendered, to_yaml(&merged)))
}

#[test]
fn every_value_set_renders_what_the_deployment_page_promises() {
    for scenario in scenarios() {
        let (rendered, merged) =
            render(&scenario.values).unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
        let docs = documents(&rendered);
        check(&scenario, &docs, &merged);

        let notes = &rendered.notes;
        assert!(notes.contains(&format!("svc/{FULLNAME}-api")), "{notes}");
        assert!(
            notes.contains(&format!("ws://{FULLNAME}.{NAMESPACE}.svc:9000/ocpp/")),
            "{notes}"
        );
        let tls = get(&merged, "tls.enabled").as_bool().unwrap();
        assert_eq!(
            notes.contains(&format!("wss://{FULLNAME}.{NAMESPACE}.svc:9443/ocpp/")),
            tls,
            "{}: {notes}",
            scenario.name
        );
    }
}

#[test]
fn a_custom_preset_is_mounted_and_valid() {
    let scenario = scenarios()
        .into_iter()
        .find(|s| s.name == "presets from values")
        .unwrap();
    let (rendered, _) = render(&scenario.values).unwrap();
    let docs = documents(&rendered);
    let presets = find(&docs, "ConfigMap", &format!("{FULLNAME}-presets")).unwrap();
    let text = get_str_key(presets, "site.toml");
    assert_eq!(text.trim_end(), preset_text().trim_end());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.toml");
    std::fs::write(&file, text).unwrap();
    let voltgate = binary_path("voltgate").expect("voltgate builds");
    let output = Command::new(voltgate)
        .args(["policy", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the mounted preset does not load: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn values_that_would_deploy_something_else_are_refused() {
    for (values, expected) in [
        ("service:\n  type: LoadBalancer\n", "service.type is now service.ocpp.type"),
        ("service:\n  apiPort: 8081\n", "service.apiPort is now service.api.port"),
        ("tls:\n  enabled: true\n", "tls.enabled needs tls.existingSecret"),
        ("tls:\n  api:\n    enabled: true\n", "tls.api.enabled needs tls.api.existingSecret"),
        (
            "tls:\n  clientCA:\n    existingSecret: ca\n",
            "tls.clientCA is used by the charger TLS listener",
        ),
        (
            "config:\n  preset: /etc/voltgate/presets/site.toml\n",
            "no presets are mounted",
        ),
        (
            "config:\n  preset: /etc/voltgate/presets/site.toml\npresets:\n  files:\n    other.toml: x\n",
            "presets.files has no site.toml",
        ),
        ("replicaCount: 2\n", "replicaCount above 1 needs PostgreSQL"),
        (
            "replicaCount: 2\ndatabase:\n  existingSecret: db\n",
            "replicaCount above 1 needs cluster.nats",
        ),
        (
            "cluster:\n  nats: nats://nats:4222\n",
            "cluster.nats needs database.existingSecret",
        ),
        (
            "terminationGracePeriodSeconds: 10\n",
            "terminationGracePeriodSeconds must be above config.shutdownTimeoutSeconds",
        ),
    ] {
        match render(values) {
            Ok(_) => panic!("{values} rendered"),
            Err(err) => assert!(err.contains(expected), "{values}: {err}"),
        }
    }
}

#[test]
fn alert_rules_and_dashboard_in_the_chart_are_copies_of_deploy() {
    for (copy, original) in [
        ("files/alerts.yaml", "deploy/prometheus/alerts.yaml"),
        ("files/voltgate.json", "deploy/grafana/voltgate.json"),
    ] {
        let copy_bytes = std::fs::read(chart_dir().join(copy)).unwrap();
        let original_bytes = std::fs::read(repo_root().join(original)).unwrap();
        assert!(
            copy_bytes == original_bytes,
            "deploy/helm/voltgate/{copy} differs from {original}: cp {original} deploy/helm/voltgate/{copy}"
        );
    }
}
