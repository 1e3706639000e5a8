//! The Open Charge Alliance's compliance test cases for a central system (OCTT, CSMS side), one
//! test per case that applies to what Voltgate implements, named after the case id: each plays
//! the test tool's charger over a real WebSocket (and the operator where the tool asks for a
//! manual action) and checks what the tool checks on the CSMS side. `docs/CONFORMANCE.md` lists
//! every case with its status and the test that proves it; the table test below keeps the two in
//! step, so certification readiness stays a number that regressions change.

mod ocpp16;
mod ocpp201;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::api::Reply;
use voltgate_tests::Charger;

use crate::Estate;

/// A card the central system accepts.
pub const VALID: &str = "100000C01";
/// A card stored as blocked.
pub const BLOCKED: &str = "100000C06";
/// A card whose validity ended.
pub const EXPIRED: &str = "100000C07";
/// A card the central system has never seen.
pub const UNKNOWN: &str = "100000C02";
/// The 2.0.1 type every card of the suite is stored (and presented) with.
pub const CARD_TYPE: &str = "ISO14443";
/// How long a charger waits for the CALL an operator action makes the gateway send.
const CALL_LIMIT: Duration = Duration::from_secs(10);

/// One gateway as the test tool finds it: the `Estate` operators of site-a, and driver `dana`
/// holding a valid, a blocked and an expired card (all `ISO14443`).
pub struct Csms {
    pub estate: Estate,
}

impl Csms {
    pub async fn new() -> Csms {
        Self::with_args(&[]).await
    }

    pub async fn with_args(args: &[&str]) -> Csms {
        let estate = Estate::new(args).await;
        let admin = &estate.admin;
        admin
            .charging_driver("driver", "dana", "site-a")
            .await
            .unwrap();
        for (card, extra) in [
            (VALID, json!({})),
            (BLOCKED, json!({})),
            (EXPIRED, json!({"expires_at": "2020-01-01T00:00:00Z"})),
        ] {
            let mut body = json!({"id_token": card, "type": CARD_TYPE});
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            admin
                .post("/api/v1/principals/dana/id-tokens", body)
                .await
                .unwrap()
                .expect(201);
        }
        admin
            .post(&format!("/api/v1/id-tokens/{BLOCKED}/block"), json!({}))
            .await
            .unwrap()
            .expect(200);
        Csms { estate }
    }

    /// A charger of site-a on `subprotocol`, connected and booted (the boot is Accepted).
    pub async fn charger(&self, id: &str, subprotocol: &str) -> Charger {
        self.estate.charger(id, subprotocol).await
    }

    /// A gateway with local-list sync on (the local authorisation list cases).
    pub async fn with_lists() -> Csms {
        Self::with_args(&["--local-auth-lists"]).await
    }

    /// A charger of `scope` on `subprotocol` whose `post_boot_sync` is `off`, connected and
    /// booted: the gateway sends it nothing on its own (checked), so it sees only what the
    /// case's operator action makes the gateway send.
    pub async fn unsynced_charger(&self, id: &str, scope: &str, subprotocol: &str) -> Charger {
        let admin = &self.estate.admin;
        admin.charger(id, scope).await.unwrap().expect(201);
        admin
            .patch(
                &format!("/api/v1/chargers/{id}"),
                json!({"post_boot_sync": "off"}),
            )
            .await
            .unwrap()
            .expect(200);
        let mut charger = Charger::connect(&self.estate.gateway.ocpp_url, id, &[subprotocol])
            .await
            .expect("charger connects");
        let boot = charger.boot().await.expect("boot answered");
        assert_eq!(boot["status"], "Accepted", "boot: {boot}");
        charger.quiet(crate::QUIET).await.unwrap();
        charger
    }

    /// The operator action a case starts with: `ops` sends `command` with `body`; the charger
    /// must be asked with `action` next, answers `answer`, and the API's reply comes back with
    /// the payload the charger was sent.
    pub async fn operate(
        &self,
        charger: &mut Charger,
        command: &str,
        body: Value,
        action: &str,
        answer: Value,
    ) -> (Value, Reply) {
        let request = {
            let ops = self.estate.ops.clone();
            let id = charger.id.clone();
            let command = command.to_owned();
            tokio::spawn(async move { ops.command(&id, &command, body).await })
        };
        let (call_id, payload) = charger
            .expect_call(action, CALL_LIMIT)
            .await
            .unwrap_or_else(|e| panic!("{command}: {e}"));
        charger.reply(&call_id, answer).unwrap();
        let reply = request.await.unwrap().unwrap();
        (payload, reply)
    }

    /// As [`Csms::operate`], for a command the charger answers with `{"status": status}`; the
    /// API reports that status (HTTP 200). Returns the payload the charger was sent.
    pub async fn operate_status(
        &self,
        charger: &mut Charger,
        command: &str,
        body: Value,
        action: &str,
        status: &str,
    ) -> Value {
        let (payload, reply) = self
            .operate(charger, command, body, action, json!({ "status": status }))
            .await;
        let reply = reply.expect(200);
        assert_eq!(reply.body["status"], status, "{}", reply.text);
        payload
    }
}

/// A CALL the charger sends that the central system must answer with a CALLRESULT.
pub async fn answered(charger: &mut Charger, action: &str, payload: Value) -> Value {
    charger
        .call_ok(action, payload)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// One row of a version's table in `docs/CONFORMANCE.md`.
#[derive(Debug)]
struct Row {
    case: String,
    status: String,
    proof: String,
}

/// A version's table and the counts its summary line claims.
#[derive(Debug)]
struct Table {
    rows: Vec<Row>,
    summary: Vec<(String, usize)>,
}

/// The statuses a row may have; `fails` is written `fails: <why>`.
const STATUSES: [&str; 4] = ["passes", "not implemented", "not applicable", "fails"];

/// Reads the section headed `heading` (up to the next `## `): its table rows and its one line
/// starting `Summary:` (`Summary: 3 cases: 1 passes, 1 not implemented, ...`).
fn table(document: &str, heading: &str) -> Table {
    let section = document
        .split("\n## ")
        .find(|part| part.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/CONFORMANCE.md has no section {heading:?}"));
    let mut rows = Vec::new();
    let mut summary = None;
    for line in section.lines() {
        if let Some(counts) = line.strip_prefix("Summary: ") {
            assert!(summary.is_none(), "{heading}: two summary lines");
            summary = Some(parse_summary(counts));
            continue;
        }
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if !line.starts_with("| TC_") {
            continue;
        }
        assert_eq!(cells.len(), 4, "{heading}: a row has four cells: {line}");
        rows.push(Row {
            case: cells[0].to_owned(),
            status: cells[2].to_owned(),
            proof: cells[3].to_owned(),
        });
    }
    Table {
        rows,
        summary: summary.unwrap_or_else(|| panic!("{heading}: no `Summary: ` line")),
    }
}

/// `12 cases: 7 passes, 3 not implemented, 2 not applicable, 0 fails; readiness ...` as
/// (`cases`, 12), (`passes`, 7), ...
fn parse_summary(text: &str) -> Vec<(String, usize)> {
    let counts = text.split(';').next().unwrap_or_default();
    counts
        .split([':', ','])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (number, what) = part
                .split_once(' ')
                .unwrap_or_else(|| panic!("summary part {part:?} is not `N what`"));
            let number = number
                .parse()
                .unwrap_or_else(|e| panic!("summary part {part:?}: {e}"));
            (what.to_owned(), number)
        })
        .collect()
}

/// The names of the `#[tokio::test]` functions in a module's source.
fn test_functions(source: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = source.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0].trim() == "#[tokio::test]")
        .filter_map(|pair| {
            let name = pair[1].trim().strip_prefix("async fn ")?;
            Some(name.split('(').next()?.to_owned())
        })
        .collect()
}

fn check_table(document: &str, heading: &str, module: &str, source: &str) {
    let table = table(document, heading);
    let tests = test_functions(source);
    assert!(!tests.is_empty(), "{module}: no tests found");
    let mut cases = BTreeSet::new();
    let mut proven = BTreeSet::new();
    for row in &table.rows {
        assert!(cases.insert(row.case.clone()), "{} listed twice", row.case);
        let status = STATUSES
            .iter()
            .find(|s| row.status == **s || row.status.starts_with(&format!("{s}: ")))
            .unwrap_or_else(|| panic!("{}: unknown status {:?}", row.case, row.status));
        if *status == "passes" {
            let name = row
                .proof
                .trim_matches('`')
                .strip_prefix(&format!("conformance::{module}::"))
                .unwrap_or_else(|| {
                    panic!("{}: a passing case names its test: {}", row.case, row.proof)
                });
            assert!(
                tests.contains(name),
                "{}: no test `{name}` in conformance::{module}",
                row.case
            );
            assert!(
                name.starts_with(&format!("{}_", row.case.to_lowercase())),
                "{}: `{name}` is not named after its case",
                row.case
            );
            proven.insert(name.to_owned());
        } else {
            assert!(
                !row.proof.is_empty() && !row.proof.contains("conformance::"),
                "{}: a case that does not pass gives its reason, not a test: {}",
                row.case,
                row.proof
            );
        }
    }
    let unlisted: Vec<&String> = tests.difference(&proven).collect();
    assert!(
        unlisted.is_empty(),
        "{module}: tests no passing row names: {unlisted:?}"
    );
    let count = |status: &str| {
        table
            .rows
            .iter()
            .filter(|r| r.status == status || r.status.starts_with(&format!("{status}: ")))
            .count()
    };
    let mut expected = vec![("cases".to_owned(), table.rows.len())];
    expected.extend(STATUSES.iter().map(|s| (s.to_string(), count(s))));
    assert_eq!(table.summary, expected, "{heading}: the summary line");
}

#[test]
fn the_conformance_table_names_the_tests_that_prove_it() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFORMANCE.md");
    let document = std::fs::read_to_string(path).expect("docs/CONFORMANCE.md");
    check_table(&document, "OCPP 1.6", "ocpp16", include_str!("ocpp16.rs"));
    check_table(
        &document,
        "OCPP 2.0.1",
        "ocpp201",
        include_str!("ocpp201.rs"),
    );
}

#[test]
#[should_panic(expected = "no test `tc_999_csms_missing`")]
fn a_passing_row_without_its_test_fails_the_table() {
    let document = "# x\n\n## OCPP 1.6\n\n| Case | Title | Status | Proof |\n|---|---|---|---|\n\
        | TC_999_CSMS | Missing | passes | `conformance::ocpp16::tc_999_csms_missing` |\n\n\
        Summary: 1 cases: 1 passes, 0 not implemented, 0 not applicable, 0 fails\n";
    check_table(
        document,
        "OCPP 1.6",
        "ocpp16",
        "#[tokio::test]\nasync fn tc_998_csms_other() {}\n",
    );
}

#[test]
#[should_panic(expected = "the summary line")]
fn a_summary_that_miscounts_fails_the_table() {
    let document = "# x\n\n## OCPP 1.6\n\n| Case | Title | Status | Proof |\n|---|---|---|---|\n\
        | TC_998_CSMS | Other | passes | `conformance::ocpp16::tc_998_csms_other` |\n\
        | TC_997_CSMS | Gap | not implemented | no such command |\n\n\
        Summary: 2 cases: 2 passes, 0 not implemented, 0 not applicable, 0 fails\n";
    check_table(
        document,
        "OCPP 1.6",
        "ocpp16",
        "#[tokio::test]\nasync fn tc_998_csms_other() {}\n",
    );
}

#[test]
#[should_panic(expected = "tests no passing row names")]
fn a_test_missing_from_the_table_fails_the_table() {
    let document = "# x\n\n## OCPP 1.6\n\n| Case | Title | Status | Proof |\n|---|---|---|---|\n\
        | TC_998_CSMS | Other | passes | `conformance::ocpp16::tc_998_csms_other` |\n\n\
        Summary: 1 cases: 1 passes, 0 not implemented, 0 not applicable, 0 fails\n";
    check_table(
        document,
        "OCPP 1.6",
        "ocpp16",
        "#[tokio::test]\nasync fn tc_998_csms_other() {}\n#[tokio::test]\nasync fn tc_996_csms_x() {}\n",
    );
}
