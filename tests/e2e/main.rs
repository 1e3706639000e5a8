//! End-to-end tests: the real `voltgate` binary on loopback, real WebSockets, real HTTP.
//!
//! One test binary (see `tests/Cargo.toml`) so the suite links once. Each module covers one face of
//! the gateway as an outsider sees it.

mod card_isolation;
mod card_namespaces;
mod charge_authorization;
mod cluster;
mod commands;
mod compliance;
mod conformance;
mod crash;
mod dependency_loss;
mod deploy_assets;
mod durability;
mod estate_integrity;
mod explorer;
mod failover;
mod faults;
mod frames;
mod handshake;
mod handshake_security;
mod helm_chart;
mod hostile_api;
mod id_token_normalisation;
mod keepalive;
mod lifecycle;
mod local_lists;
mod logs;
mod operator_tokens;
mod passwords;
mod post_boot_sync;
mod postgres;
mod quirks;
mod role_models;
mod secrets;
mod security_profiles;
mod startup;
mod third_party;
mod throttling;

use std::time::Duration;

use voltgate_tests::{Api, Charger, Gateway, GatewayOptions};

/// How long a test waits to be sure that nothing reached a charger.
pub const QUIET: Duration = Duration::from_millis(400);

/// A gateway on the `connect` preset with two sites, a charger in the first, and three operators:
/// `ops` (site admin of site-a), `watcher` (may only view chargers on site-a) and `outsider`
/// (site admin of site-b, who cannot see site-a at all).
pub struct Estate {
    pub gateway: Gateway,
    pub admin: Api,
    pub ops: Api,
    pub watcher: Api,
    pub outsider: Api,
}

impl Estate {
    pub async fn new(extra_args: &[&str]) -> Estate {
        let mut options = GatewayOptions::preset("connect");
        for arg in extra_args {
            options = options.arg(arg);
        }
        let gateway = Gateway::start(options).expect("gateway starts");
        let admin = gateway.api();
        admin
            .scope("site-a", "site", "root")
            .await
            .unwrap()
            .expect(201);
        admin
            .scope("site-b", "site", "root")
            .await
            .unwrap()
            .expect(201);
        for (id, home) in [
            ("ops", "site-a"),
            ("watcher", "site-a"),
            ("outsider", "site-b"),
        ] {
            admin
                .principal(id, "operator", home)
                .await
                .unwrap()
                .expect(201);
        }
        admin
            .post(
                "/api/v1/roles",
                serde_json::json!({"id": "charger-viewer", "permissions": ["view-chargers"]}),
            )
            .await
            .unwrap()
            .expect(201);
        admin
            .assign("ops", "site-admin", "site-a")
            .await
            .unwrap()
            .expect(201);
        admin
            .assign("watcher", "charger-viewer", "site-a")
            .await
            .unwrap()
            .expect(201);
        admin
            .assign("outsider", "site-admin", "site-b")
            .await
            .unwrap()
            .expect(201);
        let ops = gateway.api_as(&admin.token_for("ops").await.unwrap());
        let watcher = gateway.api_as(&admin.token_for("watcher").await.unwrap());
        let outsider = gateway.api_as(&admin.token_for("outsider").await.unwrap());
        Estate {
            gateway,
            admin,
            ops,
            watcher,
            outsider,
        }
    }

    /// Gives `id_token` to a new driver of site-a who may charge there, so operators of site-a
    /// may name it in a remote start.
    pub async fn site_a_card(&self, driver: &str, id_token: &str) {
        self.admin
            .post(
                "/api/v1/roles",
                serde_json::json!({"id": "site-driver", "permissions": ["charge-at-sites"]}),
            )
            .await
            .unwrap();
        self.admin
            .principal(driver, "driver", "site-a")
            .await
            .unwrap()
            .expect(201);
        self.admin
            .assign(driver, "site-driver", "site-a")
            .await
            .unwrap()
            .expect(201);
        self.admin
            .id_token(driver, id_token)
            .await
            .unwrap()
            .expect(201);
    }

    /// Registers a charger on site-a, connects it with the given subprotocol and boots it.
    pub async fn charger(&self, id: &str, subprotocol: &str) -> Charger {
        self.admin.charger(id, "site-a").await.unwrap().expect(201);
        let mut charger = Charger::connect(&self.gateway.ocpp_url, id, &[subprotocol])
            .await
            .expect("charger connects");
        assert_eq!(charger.subprotocol, subprotocol);
        let boot = charger.boot().await.expect("boot answered");
        assert_eq!(boot["status"], "Accepted", "boot: {boot}");
        charger
    }
}

/// Closes a "nothing reached the charger" check: an unlock that `operator` may send must be
/// the very next CALL the charger sees, so a refused command delivered after the quiet window
/// still fails the test, and a closed connection cannot pass for silence.
pub async fn backstop(operator: &Api, charger: &mut Charger) {
    let api = operator.clone();
    let id = charger.id.clone();
    let request = tokio::spawn(async move {
        api.command(&id, "unlock", serde_json::json!({"connector": 1}))
            .await
    });
    let (call, _) = charger
        .expect_call("UnlockConnector", Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("backstop: {e}"));
    charger
        .reply(&call, serde_json::json!({"status": "Unlocked"}))
        .unwrap();
    request.await.unwrap().unwrap().expect(200);
}

/// The gateway's `/metrics` exposition text.
pub async fn metrics(api_url: &str) -> String {
    reqwest::get(format!("{api_url}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// The value of one series in `/metrics` text, named with its labels exactly as exposed; a series
/// that is not there fails the test (a renamed metric or label must not read as 0).
pub fn metric(text: &str, series: &str) -> f64 {
    metric_if_present(text, series)
        .unwrap_or_else(|| panic!("no series {series} in /metrics:\n{text}"))
}

/// [`metric`] for a series the test allows to be absent (a labelled counter appears only once
/// incremented): `None` when it is not there.
pub fn metric_if_present(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| {
            value
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{series}: {value:?} is not a number ({e})"))
        })
}

#[test]
#[should_panic(expected = "no series b_total")]
fn a_missing_series_fails_the_read() {
    metric("a_total 1\n", "b_total");
}

#[test]
fn a_series_is_read_by_its_exact_name_and_labels() {
    let text = "a_total{r=\"x\"} 2\na_total_more 9\n";
    assert_eq!(metric(text, "a_total{r=\"x\"}"), 2.0);
    assert_eq!(metric_if_present(text, "a_total"), None);
    assert_eq!(metric_if_present(text, "a_total{r=\"y\"}"), None);
}
