//! Behaviour tests of the charger model, driven through a scripted central system. Every
//! payload that crosses the (absent) wire is checked against the official schemas: the
//! charger's requests and answers, and the central system's requests and answers.

use std::sync::OnceLock;

use serde_json::{json, Value};
use voltgate_ocpp::{Command, ErrorCode, OcppVersion, Validator, COMMAND_NAMES};

use super::*;

const T0: Millis = Millis(1_714_564_800_000);
const BOTH: [OcppVersion; 2] = [OcppVersion::V16, OcppVersion::V201];

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| Validator::new().unwrap())
}

/// The central system's side of the conversation, with answers a test may change.
struct Csms {
    version: OcppVersion,
    boot_status: &'static str,
    interval: i64,
    auth_status: &'static str,
    start_status: &'static str,
    next_tx: i64,
    fail_next: usize,
}

impl Csms {
    fn answer(&mut self, action: &str, payload: &Value, now: Millis) -> Value {
        let v16 = self.version == OcppVersion::V16;
        match action {
            "BootNotification" => {
                json!({ "status": self.boot_status, "currentTime": now.rfc3339(), "interval": self.interval })
            }
            "Heartbeat" => json!({ "currentTime": now.rfc3339() }),
            "Authorize" if v16 => json!({ "idTagInfo": { "status": self.auth_status } }),
            "Authorize" => json!({ "idTokenInfo": { "status": self.auth_status } }),
            "StartTransaction" => {
                self.next_tx += 1;
                json!({ "transactionId": self.next_tx, "idTagInfo": { "status": self.start_status } })
            }
            "TransactionEvent" if payload.get("idToken").is_some() => {
                json!({ "idTokenInfo": { "status": self.start_status } })
            }
            _ => json!({}),
        }
    }
}

struct CallView {
    action: &'static str,
    payload: Value,
}

struct Harness {
    c: Charger,
    now: Millis,
    csms: Csms,
    log: Vec<(String, Value)>,
    events: Vec<Event>,
    seq: i64,
}

fn spec(version: OcppVersion) -> ChargerSpec {
    let mut spec = ChargerSpec::new("CP-1", version);
    spec.meter_interval_s = 30;
    spec
}

impl Harness {
    fn new(version: OcppVersion) -> Harness {
        Harness::with_spec(spec(version))
    }

    fn with_spec(spec: ChargerSpec) -> Harness {
        let version = spec.version;
        Harness {
            c: Charger::new(spec, T0),
            now: T0,
            csms: Csms {
                version,
                boot_status: "Accepted",
                interval: 120,
                auth_status: "Accepted",
                start_status: "Accepted",
                next_tx: 100,
                fail_next: 0,
            },
            log: Vec::new(),
            events: Vec::new(),
            seq: 7,
        }
    }

    fn online(mut self) -> Harness {
        self.c.connected(self.now);
        self.pump();
        assert_eq!(self.c.registration(), Registration::Accepted);
        self.log.clear();
        self
    }

    fn version(&self) -> OcppVersion {
        self.c.version()
    }

    /// Sends every CALL the charger has now, answering each.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let Some(call) = self.c.next_call(self.now) else {
                break;
            };
            let call = CallView {
                action: call.action,
                payload: call.payload.to_value(),
            };
            if let Err(e) = validator().validate_request(self.version(), call.action, &call.payload)
            {
                panic!(
                    "charger sent an invalid {}: {e}\n{:#}",
                    call.action, call.payload
                );
            }
            if self.csms.fail_next > 0 {
                self.csms.fail_next -= 1;
                self.log.push((call.action.to_owned(), call.payload));
                self.c
                    .handle_error(self.now, "InternalError", "scripted failure");
                continue;
            }
            let answer = self.csms.answer(call.action, &call.payload, self.now);
            validator()
                .validate_response(self.version(), call.action, &answer)
                .unwrap();
            self.log.push((call.action.to_owned(), call.payload));
            self.c.handle_result(self.now, &answer);
        }
        while let Some(event) = self.c.poll_event() {
            self.events.push(event);
        }
    }

    /// A CALL from the central system that must succeed; its answer is schema-checked.
    fn call(&mut self, action: &str, payload: Value) -> Value {
        validator()
            .validate_request(self.version(), action, &payload)
            .unwrap();
        match self.c.handle_call(self.now, action, &payload) {
            Answer::Result(v) => {
                if let Err(e) = validator().validate_response(self.version(), action, &v) {
                    panic!("invalid answer to {action}: {e}\n{v:#}");
                }
                self.pump();
                v
            }
            Answer::Error { code, description } => {
                panic!("{action} refused: {code:?} {description}")
            }
        }
    }

    fn status_of(&mut self, action: &str, payload: Value) -> String {
        self.call(action, payload)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The CALL an operator command turns into at the gateway, sent to the charger.
    fn command(&mut self, name: &str, body: Value) -> Value {
        let command = Command::from_api(name, &body).unwrap();
        let call = command
            .to_call_at(self.version(), self.seq, &self.now.rfc3339())
            .unwrap();
        self.seq += 1;
        self.call(call.action, call.payload)
    }

    /// Lets time pass, waking the charger whenever it asked to be woken.
    fn advance(&mut self, ms: u64) {
        let target = self.now.plus_ms(ms);
        for _ in 0..100_000 {
            match self.c.next_wakeup() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.c.tick(self.now);
                    self.pump();
                    if self.c.next_wakeup().is_some_and(|next| next <= self.now) {
                        self.now = self.now.plus_ms(1);
                    }
                }
                _ => break,
            }
        }
        self.now = target;
        self.c.tick(self.now);
        self.pump();
    }

    /// Plays the driver's part in a reboot: close, wait, reconnect.
    fn follow_reboot(&mut self) -> bool {
        let Some(pos) = self
            .events
            .iter()
            .position(|e| matches!(e, Event::Reboot { .. }))
        else {
            return false;
        };
        let Event::Reboot { reconnect_after_ms } = self.events.remove(pos) else {
            return false;
        };
        self.c.disconnected(self.now);
        self.advance(reconnect_after_ms);
        self.c.connected(self.now);
        self.pump();
        true
    }

    fn take_log(&mut self) -> Vec<(String, Value)> {
        std::mem::take(&mut self.log)
    }

    fn actions(&mut self) -> Vec<String> {
        self.take_log().into_iter().map(|(a, _)| a).collect()
    }

    fn sent(&self, action: &str) -> Vec<Value> {
        self.log
            .iter()
            .filter(|(a, _)| a == action)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Starts a local session on connector 1 and returns its transaction id.
    fn start_local(&mut self, token: &str) -> String {
        self.c.plug_in(self.now, 1);
        self.c.present_token(self.now, 1, token);
        self.pump();
        self.c.transaction_id(1).expect("a transaction runs")
    }
}

fn stop_messages(h: &Harness) -> Vec<Value> {
    match h.version() {
        OcppVersion::V16 => h.sent("StopTransaction"),
        OcppVersion::V201 => h
            .sent("TransactionEvent")
            .into_iter()
            .filter(|p| p["eventType"] == "Ended")
            .collect(),
    }
}

fn stopped_reason(h: &Harness) -> Option<String> {
    let last = stop_messages(h).pop()?;
    let reason = match h.version() {
        OcppVersion::V16 => last["reason"].clone(),
        OcppVersion::V201 => last["transactionInfo"]["stoppedReason"].clone(),
    };
    reason.as_str().map(str::to_owned)
}

// ----- boot, heartbeat, status ---------------------------------------------------------------

#[test]
fn boot_reports_every_connector_then_heartbeats_at_the_given_interval() {
    for version in BOTH {
        let mut h = Harness::new(version);
        h.c.connected(h.now);
        h.pump();
        let actions = h.actions();
        assert_eq!(actions[0], "BootNotification");
        let statuses = actions
            .iter()
            .filter(|a| *a == "StatusNotification")
            .count();
        let expected = if version == OcppVersion::V16 { 3 } else { 2 };
        assert_eq!(statuses, expected, "{version}: {actions:?}");
        assert_eq!(h.c.heartbeat_interval_s(), 120);
        h.advance(119_000);
        assert!(h.actions().is_empty());
        h.advance(1_000);
        assert_eq!(h.actions(), vec!["Heartbeat"]);
    }
}

#[test]
fn pending_and_rejected_boots_retry_after_the_interval_and_errors_after_the_retry_delay() {
    for version in BOTH {
        let mut h = Harness::new(version);
        h.csms.boot_status = "Pending";
        h.csms.interval = 30;
        h.c.connected(h.now);
        h.pump();
        assert_eq!(h.c.registration(), Registration::Pending);
        assert_eq!(h.actions(), vec!["BootNotification"]);
        h.advance(29_000);
        assert!(
            h.actions().is_empty(),
            "nothing but boots before acceptance"
        );
        h.csms.boot_status = "Rejected";
        h.advance(1_000);
        assert_eq!(h.actions(), vec!["BootNotification"]);
        assert_eq!(h.c.registration(), Registration::Rejected);
        h.csms.boot_status = "Accepted";
        h.csms.fail_next = 1;
        h.advance(30_000);
        assert_eq!(h.actions(), vec!["BootNotification"]);
        h.advance(h.c.spec().timings.boot_retry_ms);
        assert_eq!(h.c.registration(), Registration::Accepted);
    }
}

#[test]
fn v201_boot_carries_the_reason_and_station_details() {
    let mut h = Harness::new(OcppVersion::V201);
    h.c.connected(h.now);
    h.pump();
    let boot = h.sent("BootNotification").remove(0);
    assert_eq!(boot["reason"], "PowerUp");
    assert_eq!(boot["chargingStation"]["vendorName"], "VoltgateSim");
    assert_eq!(boot["chargingStation"]["firmwareVersion"], "1.0.0");
}

// ----- local sessions and metering -------------------------------------------------------------

#[test]
fn local_session_authorises_meters_and_stops() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        h.c.plug_in(h.now, 1);
        h.pump();
        let expected_plugged = if version == OcppVersion::V16 {
            "Preparing"
        } else {
            "Occupied"
        };
        assert_eq!(h.c.status(1), Some(expected_plugged));
        h.c.present_token(h.now, 1, "CARD-1");
        h.pump();
        let actions = h.actions();
        assert_eq!(
            actions[..2],
            ["StatusNotification".to_owned(), "Authorize".to_owned()][..],
            "{actions:?}"
        );
        let start = if version == OcppVersion::V16 {
            "StartTransaction"
        } else {
            "TransactionEvent"
        };
        assert!(actions.contains(&start.to_owned()), "{actions:?}");
        let charging = if version == OcppVersion::V16 {
            "Charging"
        } else {
            "Occupied"
        };
        assert_eq!(h.c.status(1), Some(charging));
        let energy_before = h.c.energy_wh(1).unwrap();
        h.advance(30_000);
        let readings = h.actions();
        let reading = if version == OcppVersion::V16 {
            "MeterValues"
        } else {
            "TransactionEvent"
        };
        assert_eq!(readings, vec![reading], "one periodic reading after 30 s");
        let energy_after = h.c.energy_wh(1).unwrap();
        // 32 A * 230 V * 3 phases for 30 s = 184 Wh
        assert!(
            (energy_after - energy_before - 184.0).abs() < 1.0,
            "{energy_before} -> {energy_after}"
        );
        h.c.present_token(h.now, 1, "CARD-1");
        h.pump();
        assert_eq!(stopped_reason(&h).as_deref(), Some("Local"));
        let after_stop = if version == OcppVersion::V16 {
            "Finishing"
        } else {
            "Occupied"
        };
        assert_eq!(h.c.status(1), Some(after_stop));
        h.advance(h.c.spec().timings.unplug_ms);
        assert_eq!(h.c.status(1), Some("Available"));
        assert!(!h.c.is_plugged(1));
    }
}

#[test]
fn meter_values_carry_the_transaction_and_measurands() {
    let mut h = Harness::new(OcppVersion::V16).online();
    let tx = h.start_local("CARD-1");
    h.take_log();
    h.advance(30_000);
    let mv = h.sent("MeterValues").remove(0);
    assert_eq!(mv["transactionId"].to_string(), tx);
    let measurands: Vec<&str> = mv["meterValue"][0]["sampledValue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["measurand"].as_str().unwrap())
        .collect();
    assert_eq!(
        measurands,
        [
            "Energy.Active.Import.Register",
            "Power.Active.Import",
            "Current.Import",
            "Current.Offered"
        ]
    );

    let mut h = Harness::new(OcppVersion::V201).online();
    let tx = h.start_local("CARD-1");
    h.take_log();
    h.advance(30_000);
    let ev = h.sent("TransactionEvent").remove(0);
    assert_eq!(ev["transactionInfo"]["transactionId"], tx.as_str());
    assert_eq!(ev["triggerReason"], "MeterValuePeriodic");
    assert_eq!(ev["seqNo"], 1);
}

#[test]
fn refused_token_starts_nothing_and_the_ev_leaves() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        h.csms.auth_status = "Invalid";
        h.c.plug_in(h.now, 1);
        h.c.present_token(h.now, 1, "BAD");
        h.pump();
        assert_eq!(h.c.transaction_id(1), None);
        h.advance(h.c.spec().timings.unplug_ms);
        assert!(!h.c.is_plugged(1));
        assert_eq!(h.c.status(1), Some("Available"));
    }
}

#[test]
fn transaction_refused_at_start_is_stopped_deauthorised() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        h.csms.start_status = "Blocked";
        h.c.plug_in(h.now, 1);
        h.call(
            if version == OcppVersion::V16 { "ChangeConfiguration" } else { "SetVariables" },
            if version == OcppVersion::V16 {
                json!({"key": "LocalPreAuthorize", "value": "true"})
            } else {
                json!({"setVariableData": [{"component": {"name": "AuthCtrlr"}, "variable": {"name": "LocalPreAuthorize"}, "attributeValue": "true"}]})
            },
        );
        // the local list says yes, the gateway says Blocked at start
        let list = if version == OcppVersion::V16 {
            json!({"listVersion": 1, "updateType": "Full", "localAuthorizationList": [{"idTag": "CARD-9", "idTagInfo": {"status": "Accepted"}}]})
        } else {
            json!({"versionNumber": 1, "updateType": "Full", "localAuthorizationList": [{"idToken": {"idToken": "CARD-9", "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}}]})
        };
        assert_eq!(h.status_of("SendLocalList", list), "Accepted");
        h.take_log();
        h.c.present_token(h.now, 1, "CARD-9");
        h.pump();
        assert!(h.sent("Authorize").is_empty(), "pre-authorised locally");
        assert_eq!(stopped_reason(&h).as_deref(), Some("DeAuthorized"));
        assert_eq!(h.c.transaction_id(1), None);
    }
}

#[test]
fn sessions_plan_runs_sessions_on_its_own() {
    for version in BOTH {
        let mut s = spec(version);
        s.sessions = Some(SessionPlan {
            id_tag: "FLEET".into(),
            mean_gap_ms: 60_000,
            length_ms: 120_000,
        });
        s.connectors = 1;
        let mut h = Harness::with_spec(s).online();
        h.advance(3_600_000);
        let starts = match version {
            OcppVersion::V16 => h.sent("StartTransaction").len(),
            OcppVersion::V201 => h
                .sent("TransactionEvent")
                .iter()
                .filter(|p| p["eventType"] == "Started")
                .count(),
        };
        assert!(starts >= 5, "{version}: only {starts} sessions in an hour");
        assert!(stop_messages(&h).len() + 1 >= starts);
    }
}

// ----- remote start / stop ---------------------------------------------------------------------

#[test]
fn remote_start_plugs_in_starts_and_remote_stop_ends_it() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        let answer = h.command(
            "remote-start",
            json!({"connector": 1, "id_token": "APP-USER"}),
        );
        assert_eq!(answer["status"], "Accepted");
        h.advance(h.c.spec().timings.ev_plug_ms);
        let tx = h.c.transaction_id(1).expect("transaction started");
        match version {
            OcppVersion::V16 => {
                let start = h.sent("StartTransaction").remove(0);
                assert_eq!(start["idTag"], "APP-USER");
                assert_eq!(start["connectorId"], 1);
            }
            OcppVersion::V201 => {
                let started = h.sent("TransactionEvent").remove(0);
                assert_eq!(started["eventType"], "Started");
                assert_eq!(started["triggerReason"], "RemoteStart");
                assert_eq!(started["transactionInfo"]["remoteStartId"], 7);
                // The type it was started with (a remote start of a token stored without one).
                assert_eq!(started["idToken"]["type"], "ISO14443");
            }
        }
        assert_eq!(
            h.command("remote-start", json!({"connector": 1, "id_token": "OTHER"}))["status"],
            "Rejected"
        );
        assert_eq!(
            h.command("remote-stop", json!({"transaction_id": "999999"}))["status"],
            "Rejected"
        );
        assert_eq!(
            h.command("remote-stop", json!({"transaction_id": tx}))["status"],
            "Accepted"
        );
        assert_eq!(stopped_reason(&h).as_deref(), Some("Remote"));
        assert_eq!(h.c.transaction_id(1), None);
    }
}

#[test]
fn remote_start_picks_a_free_connector_and_can_authorise_first() {
    let mut h = Harness::new(OcppVersion::V16).online();
    h.call(
        "ChangeConfiguration",
        json!({"key": "AuthorizeRemoteTxRequests", "value": "true"}),
    );
    h.start_local("CARD-1");
    h.take_log();
    assert_eq!(
        h.status_of("RemoteStartTransaction", json!({"idTag": "APP"})),
        "Accepted"
    );
    h.advance(1_000);
    assert_eq!(h.sent("Authorize").len(), 1, "authorised before starting");
    assert!(h.c.transaction_id(2).is_some(), "second connector used");
    assert_eq!(
        h.status_of("RemoteStartTransaction", json!({"idTag": "APP"})),
        "Rejected",
        "no free connector"
    );
}

#[test]
fn v201_request_start_on_a_plugged_evse_answers_the_transaction_id() {
    let mut h = Harness::new(OcppVersion::V201).online();
    h.c.plug_in(h.now, 2);
    let answer = h.call(
        "RequestStartTransaction",
        json!({"evseId": 2, "remoteStartId": 5, "idToken": {"idToken": "APP", "type": "Central"}}),
    );
    assert_eq!(answer["status"], "Accepted");
    assert_eq!(
        answer["transactionId"].as_str(),
        h.c.transaction_id(2).as_deref()
    );
}

#[test]
fn remote_start_with_a_tx_profile_limits_the_current() {
    let mut h = Harness::new(OcppVersion::V16).online();
    let profile = json!({"chargingProfileId": 5, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": {"chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}});
    assert_eq!(
        h.status_of(
            "RemoteStartTransaction",
            json!({"connectorId": 1, "idTag": "APP", "chargingProfile": profile})
        ),
        "Accepted"
    );
    h.advance(1_000);
    assert_eq!(h.c.offered_amps(1, h.now), Some(10.0));
    let tx = h.c.transaction_id(1).unwrap();
    h.call(
        "RemoteStopTransaction",
        json!({"transactionId": tx.parse::<i64>().unwrap()}),
    );
    assert_eq!(
        h.c.offered_amps(1, h.now),
        Some(32.0),
        "TxProfile ends with the transaction"
    );
}

// ----- unlock, reset, availability -----------------------------------------------------------

#[test]
fn unlock_connector_per_version() {
    let mut h = Harness::new(OcppVersion::V16).online();
    h.start_local("CARD-1");
    assert!(h.c.is_locked(1));
    assert_eq!(
        h.command("unlock", json!({"connector": 1}))["status"],
        "Unlocked"
    );
    assert_eq!(stopped_reason(&h).as_deref(), Some("UnlockCommand"));
    assert!(!h.c.is_locked(1) && !h.c.is_plugged(1));
    assert_eq!(
        h.status_of("UnlockConnector", json!({"connectorId": 9})),
        "NotSupported"
    );

    let mut h = Harness::new(OcppVersion::V201).online();
    h.start_local("CARD-1");
    assert_eq!(
        h.command("unlock", json!({"connector": 1}))["status"],
        "OngoingAuthorizedTransaction"
    );
    assert!(h.c.is_plugged(1));
    h.c.present_token(h.now, 1, "CARD-1");
    h.pump();
    assert_eq!(
        h.command("unlock", json!({"connector": 1}))["status"],
        "Unlocked"
    );
    assert!(!h.c.is_plugged(1));
    assert_eq!(
        h.status_of("UnlockConnector", json!({"evseId": 9, "connectorId": 1})),
        "UnknownConnector"
    );
}

#[test]
fn reset_stops_transactions_reboots_and_boots_again() {
    // (version, hard, stop reason, stop sent before the reboot)
    let cases = [
        (OcppVersion::V16, false, "SoftReset", true),
        (OcppVersion::V16, true, "HardReset", false),
        (OcppVersion::V201, true, "ImmediateReset", true),
    ];
    for (version, hard, reason, stop_first) in cases {
        let mut h = Harness::new(version).online();
        h.start_local("CARD-1");
        h.take_log();
        assert_eq!(
            h.command("reset", json!({"type": if hard { "hard" } else { "soft" }}))["status"],
            "Accepted"
        );
        if stop_first {
            assert_eq!(
                stopped_reason(&h).as_deref(),
                Some(reason),
                "stop sent before the reboot"
            );
        } else {
            assert_eq!(stopped_reason(&h), None);
        }
        assert!(h.follow_reboot(), "{version} hard={hard}: reboot requested");
        let boots = h.sent("BootNotification");
        assert_eq!(boots.len(), 1);
        if version == OcppVersion::V201 {
            assert_eq!(boots[0]["reason"], "RemoteReset");
        }
        assert_eq!(
            stopped_reason(&h).as_deref(),
            Some(reason),
            "stop delivered"
        );
        assert_eq!(h.c.registration(), Registration::Accepted);
        assert_eq!(h.c.transaction_id(1), None);
    }
}

#[test]
fn v201_reset_on_idle_waits_for_the_transaction() {
    let mut h = Harness::new(OcppVersion::V201).online();
    h.start_local("CARD-1");
    assert_eq!(h.status_of("Reset", json!({"type": "OnIdle"})), "Scheduled");
    assert!(!h.events.iter().any(|e| matches!(e, Event::Reboot { .. })));
    h.c.present_token(h.now, 1, "CARD-1");
    h.pump();
    assert!(h.follow_reboot(), "reboot once idle");
    assert_eq!(
        h.status_of("Reset", json!({"type": "OnIdle", "evseId": 1})),
        "Accepted"
    );
    assert_eq!(
        h.status_of("Reset", json!({"type": "Immediate", "evseId": 7})),
        "Rejected"
    );
}

#[test]
fn change_availability_now_or_when_the_transaction_ends() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        assert_eq!(
            h.command(
                "change-availability",
                json!({"connector": 2, "available": false})
            )["status"],
            "Accepted"
        );
        assert_eq!(h.c.status(2), Some("Unavailable"));
        let last = h.sent("StatusNotification").pop().unwrap();
        let status_field = if version == OcppVersion::V16 {
            "status"
        } else {
            "connectorStatus"
        };
        assert_eq!(last[status_field], "Unavailable");
        assert_eq!(
            h.command("remote-start", json!({"connector": 2, "id_token": "X"}))["status"],
            "Rejected"
        );
        h.start_local("CARD-1");
        assert_eq!(
            h.command(
                "change-availability",
                json!({"connector": 1, "available": false})
            )["status"],
            "Scheduled"
        );
        assert!(h.c.is_operative(1));
        h.c.present_token(h.now, 1, "CARD-1");
        h.pump();
        assert!(!h.c.is_operative(1));
        assert_eq!(
            h.command("change-availability", json!({"available": true}))["status"],
            "Accepted"
        );
        assert!(h.c.is_operative(1) && h.c.is_operative(2));
        assert_eq!(
            h.command("change-availability", json!({"available": false}))["status"],
            "Accepted"
        );
        assert_eq!(h.c.status(1), Some("Unavailable"));
        assert_eq!(
            h.command(
                "change-availability",
                json!({"connector": 5, "available": true})
            )["status"],
            "Rejected"
        );
    }
}

// ----- configuration -------------------------------------------------------------------------------

#[test]
fn v16_get_and_change_configuration() {
    let mut h = Harness::new(OcppVersion::V16).online();
    let all = h.command("get-configuration", json!({}));
    let keys = all["configurationKey"].as_array().unwrap();
    assert!(keys
        .iter()
        .any(|k| k["key"] == "HeartbeatInterval" && k["value"] == "120"));
    assert!(
        !keys.iter().any(|k| k["key"] == "AuthorizationKey"),
        "write-only keys stay hidden"
    );
    let some = h.command(
        "get-configuration",
        json!({"keys": ["NumberOfConnectors", "Bogus"]}),
    );
    assert_eq!(some["configurationKey"][0]["value"], "2");
    assert_eq!(some["configurationKey"][0]["readonly"], true);
    assert_eq!(some["unknownKey"], json!(["Bogus"]));
    assert_eq!(
        h.command(
            "change-configuration",
            json!({"key": "HeartbeatInterval", "value": "10"})
        )["status"],
        "Accepted"
    );
    assert_eq!(
        h.command(
            "change-configuration",
            json!({"key": "NumberOfConnectors", "value": "4"})
        )["status"],
        "Rejected"
    );
    assert_eq!(
        h.command(
            "change-configuration",
            json!({"key": "Bogus", "value": "4"})
        )["status"],
        "NotSupported"
    );
    h.take_log();
    h.advance(10_000);
    assert_eq!(
        h.actions(),
        vec!["Heartbeat"],
        "new interval in force at once"
    );
}

#[test]
fn v201_get_set_variables_and_base_report() {
    let mut h = Harness::new(OcppVersion::V201).online();
    let got = h.command(
        "get-configuration",
        json!({"keys": ["OCPPCommCtrlr.HeartbeatInterval"]}),
    );
    assert_eq!(got["getVariableResult"][0]["attributeStatus"], "Accepted");
    assert_eq!(got["getVariableResult"][0]["attributeValue"], "120");
    let set = h.command(
        "change-configuration",
        json!({"key": "OCPPCommCtrlr.HeartbeatInterval", "value": "15"}),
    );
    assert_eq!(set["setVariableResult"][0]["attributeStatus"], "Accepted");
    assert_eq!(h.c.heartbeat_interval_s(), 15);
    let answer = h.call(
        "GetVariables",
        json!({"getVariableData": [
            {"component": {"name": "Nope"}, "variable": {"name": "X"}},
            {"component": {"name": "AuthCtrlr"}, "variable": {"name": "Nope"}},
            {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}},
            {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "AvailabilityState"}},
            {"component": {"name": "AuthCtrlr"}, "variable": {"name": "LocalPreAuthorize"}, "attributeType": "Target"}
        ]}),
    );
    let statuses: Vec<&str> = answer["getVariableResult"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attributeStatus"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "UnknownComponent",
            "UnknownVariable",
            "Rejected",
            "Accepted",
            "NotSupportedAttributeType"
        ]
    );
    assert_eq!(
        answer["getVariableResult"][3]["attributeValue"],
        "Available"
    );
    let set = h.call(
        "SetVariables",
        json!({"setVariableData": [
            {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"}, "attributeValue": "Authorized"},
            {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}, "attributeValue": "2"},
            {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"}, "attributeValue": "abc"}
        ]}),
    );
    let statuses: Vec<&str> = set["setVariableResult"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attributeStatus"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Rejected", "RebootRequired", "Rejected"]);

    h.take_log();
    let report = h.command("get-configuration", json!({}));
    let request_id = h.seq - 1;
    assert_eq!(report["status"], "Accepted");
    let parts = h.sent("NotifyReport");
    assert!(parts.len() >= 2, "split by ItemsPerMessage");
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part["seqNo"], i as i64);
        assert_eq!(part["tbc"], i + 1 < parts.len());
        assert_eq!(part["requestId"], request_id);
    }
    let items: usize = parts
        .iter()
        .map(|p| p["reportData"].as_array().unwrap().len())
        .sum();
    assert!(items > 30);
    assert_eq!(
        h.status_of(
            "GetBaseReport",
            json!({"requestId": 8, "reportBase": "SummaryInventory"})
        ),
        "Accepted"
    );
}

// ----- charging profiles -----------------------------------------------------------------------

#[test]
fn set_max_current_changes_the_reported_limit() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        h.start_local("CARD-1");
        assert_eq!(
            h.command("set-max-current", json!({"amps": 16.0}))["status"],
            "Accepted"
        );
        assert_eq!(h.c.offered_amps(1, h.now), Some(16.0));
        assert_eq!(
            h.command("set-max-current", json!({"connector": 1, "amps": 10.0}))["status"],
            "Accepted"
        );
        assert_eq!(h.c.offered_amps(1, h.now), Some(10.0));
        assert_eq!(h.c.offered_amps(2, h.now), Some(16.0));
        h.take_log();
        h.call("TriggerMessage", json!({"requestedMessage": "MeterValues", if version == OcppVersion::V16 { "connectorId" } else { "evse" }: if version == OcppVersion::V16 { json!(1) } else { json!({"id": 1}) }}));
        let mv = h.sent("MeterValues").remove(0);
        let offered = mv["meterValue"][0]["sampledValue"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["measurand"] == "Current.Offered")
            .unwrap()["value"]
            .clone();
        let offered: f64 = offered
            .as_str()
            .map_or_else(|| offered.as_f64().unwrap(), |s| s.parse().unwrap());
        assert_eq!(offered, 10.0);
        // a limit below 6 A suspends charging
        h.command("set-max-current", json!({"connector": 1, "amps": 0.0}));
        let suspended = if version == OcppVersion::V16 {
            "SuspendedEVSE"
        } else {
            "Occupied"
        };
        assert_eq!(h.c.status(1), Some(suspended));
        if version == OcppVersion::V201 {
            let last = h.sent("TransactionEvent").pop().unwrap();
            assert_eq!(last["transactionInfo"]["chargingState"], "SuspendedEVSE");
        }
        let energy = h.c.energy_wh(1).unwrap();
        h.advance(60_000);
        assert_eq!(h.c.energy_wh(1), Some(energy), "no energy while suspended");
    }
}

#[test]
fn charging_profile_rules_and_clearing() {
    let mut h = Harness::new(OcppVersion::V16).online();
    let profile = |id: i64, purpose: &str, limit: f64| {
        json!({"chargingProfileId": id, "stackLevel": 0, "chargingProfilePurpose": purpose, "chargingProfileKind": "Absolute",
               "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": T0.rfc3339(), "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}})
    };
    let set = |h: &mut Harness, connector: u32, p: Value| {
        h.status_of(
            "SetChargingProfile",
            json!({"connectorId": connector, "csChargingProfiles": p}),
        )
    };
    assert_eq!(
        set(&mut h, 1, profile(1, "ChargePointMaxProfile", 10.0)),
        "Rejected",
        "station max only on connector 0"
    );
    assert_eq!(
        set(&mut h, 1, profile(2, "TxProfile", 10.0)),
        "Rejected",
        "no transaction"
    );
    assert_eq!(
        set(&mut h, 9, profile(3, "TxDefaultProfile", 10.0)),
        "Rejected"
    );
    assert_eq!(
        set(&mut h, 0, profile(4, "ChargePointMaxProfile", 20.0)),
        "Accepted"
    );
    assert_eq!(h.c.offered_amps(1, h.now), Some(20.0));
    let composite = h.call(
        "GetCompositeSchedule",
        json!({"connectorId": 1, "duration": 3600}),
    );
    assert_eq!(
        composite["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"].as_f64(),
        Some(20.0)
    );
    assert_eq!(
        h.status_of("ClearChargingProfile", json!({"id": 99})),
        "Unknown"
    );
    assert_eq!(
        h.status_of("ClearChargingProfile", json!({"id": 4})),
        "Accepted"
    );
    assert_eq!(h.c.offered_amps(1, h.now), Some(32.0));

    let mut h = Harness::new(OcppVersion::V201).online();
    let tx = h.start_local("CARD-1");
    let p = json!({"id": 3, "stackLevel": 1, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
                   "transactionId": tx, "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6900.0, "numberPhases": 3}]}]});
    assert_eq!(
        h.status_of(
            "SetChargingProfile",
            json!({"evseId": 1, "chargingProfile": p})
        ),
        "Accepted"
    );
    assert_eq!(h.c.offered_amps(1, h.now), Some(10.0));
    let mut wrong = p.clone();
    wrong["transactionId"] = json!("other");
    assert_eq!(
        h.status_of(
            "SetChargingProfile",
            json!({"evseId": 1, "chargingProfile": wrong})
        ),
        "Rejected"
    );
    let composite = h.call(
        "GetCompositeSchedule",
        json!({"evseId": 1, "duration": 60, "chargingRateUnit": "A"}),
    );
    assert_eq!(
        composite["schedule"]["chargingSchedulePeriod"][0]["limit"].as_f64(),
        Some(10.0)
    );
    assert_eq!(
        h.status_of(
            "ClearChargingProfile",
            json!({"chargingProfileCriteria": {"chargingProfilePurpose": "TxProfile"}})
        ),
        "Accepted"
    );
    assert_eq!(h.c.offered_amps(1, h.now), Some(32.0));
}

#[test]
fn schedule_periods_change_the_limit_over_time() {
    let mut h = Harness::new(OcppVersion::V16).online();
    h.start_local("CARD-1");
    let p = json!({"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
                   "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": h.now.rfc3339(),
                   "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}, {"startPeriod": 600, "limit": 0.0}]}});
    assert_eq!(
        h.status_of(
            "SetChargingProfile",
            json!({"connectorId": 1, "csChargingProfiles": p})
        ),
        "Accepted"
    );
    assert_eq!(h.c.status(1), Some("Charging"));
    h.take_log();
    h.advance(600_000);
    assert_eq!(h.c.status(1), Some("SuspendedEVSE"));
    assert!(h
        .sent("StatusNotification")
        .iter()
        .any(|s| s["status"] == "SuspendedEVSE"));
}

// ----- firmware and logs ------------------------------------------------------------------------

fn firmware_walk(h: &Harness) -> Vec<String> {
    h.sent("FirmwareStatusNotification")
        .iter()
        .map(|p| p["status"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn firmware_update_walks_through_the_states_and_reboots_into_the_new_version() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        let answer = h.command(
            "update-firmware",
            json!({"location": "https://fw.example.com/sim-2.0.0.bin"}),
        );
        if version == OcppVersion::V201 {
            assert_eq!(answer["status"], "Accepted");
        }
        for _ in 0..6 {
            h.advance(h.c.spec().timings.step_ms);
            h.follow_reboot();
        }
        let walk = firmware_walk(&h);
        let expected: &[&str] = match version {
            OcppVersion::V16 => &["Downloading", "Downloaded", "Installing", "Installed"],
            OcppVersion::V201 => &[
                "Downloading",
                "Downloaded",
                "Installing",
                "InstallRebooting",
                "Installed",
            ],
        };
        assert_eq!(walk, expected, "{version}");
        assert_eq!(h.c.firmware_version(), "sim-2.0.0");
        let boot = h.sent("BootNotification").pop().expect("booted again");
        let fw = if version == OcppVersion::V16 {
            &boot["firmwareVersion"]
        } else {
            &boot["chargingStation"]["firmwareVersion"]
        };
        assert_eq!(fw, "sim-2.0.0");
        if version == OcppVersion::V201 {
            assert_eq!(boot["reason"], "FirmwareUpdate");
            assert!(h
                .sent("FirmwareStatusNotification")
                .iter()
                .all(|p| p["requestId"] == 7));
        }
        assert_eq!(h.c.firmware_status(), "Idle");
    }
}

#[test]
fn firmware_update_waits_for_its_time_and_fails_on_a_bad_location() {
    let mut h = Harness::new(OcppVersion::V201).online();
    let later = h.now.plus_secs(3600).rfc3339();
    h.call("UpdateFirmware", json!({"requestId": 1, "firmware": {"location": "https://fw.example.com/x.bin", "retrieveDateTime": later}}));
    assert_eq!(firmware_walk(&h), ["DownloadScheduled"]);
    h.advance(3_599_000);
    assert_eq!(firmware_walk(&h), ["DownloadScheduled"]);
    h.advance(1_000);
    assert_eq!(firmware_walk(&h), ["DownloadScheduled", "Downloading"]);
    let replaced = h.status_of("UpdateFirmware", json!({"requestId": 2, "firmware": {"location": "nowhere", "retrieveDateTime": h.now.rfc3339()}}));
    assert_eq!(replaced, "AcceptedCanceled");
    h.advance(5_000);
    assert_eq!(
        firmware_walk(&h).last().map(String::as_str),
        Some("DownloadFailed")
    );
    assert!(!h.events.iter().any(|e| matches!(e, Event::Reboot { .. })));

    let mut h = Harness::new(OcppVersion::V16).online();
    h.start_local("CARD-1");
    h.call(
        "UpdateFirmware",
        json!({"location": "ftp://fw.example.com/fw-3.bin", "retrieveDate": h.now.rfc3339()}),
    );
    h.advance(10_000);
    assert_eq!(
        firmware_walk(&h),
        ["Downloading", "Downloaded"],
        "install waits for the transaction"
    );
    h.c.present_token(h.now, 1, "CARD-1");
    h.advance(2_000);
    assert!(firmware_walk(&h).contains(&"Installing".to_owned()));
}

#[test]
fn get_log_and_diagnostics_upload_walks() {
    let mut h = Harness::new(OcppVersion::V16).online();
    let answer = h.command(
        "get-log",
        json!({"location": "https://logs.example.com/up"}),
    );
    assert!(answer["fileName"].as_str().unwrap().ends_with(".log"));
    h.advance(3_000);
    let walk: Vec<Value> = h
        .sent("DiagnosticsStatusNotification")
        .iter()
        .map(|p| p["status"].clone())
        .collect();
    assert_eq!(walk, [json!("Uploading"), json!("Uploaded")]);

    let mut h = Harness::new(OcppVersion::V201).online();
    let answer = h.command(
        "get-log",
        json!({"location": "https://logs.example.com/up"}),
    );
    assert_eq!(answer["status"], "Accepted");
    h.advance(3_000);
    let walk: Vec<(Value, Value)> = h
        .sent("LogStatusNotification")
        .iter()
        .map(|p| (p["status"].clone(), p["requestId"].clone()))
        .collect();
    assert_eq!(
        walk,
        [
            (json!("Uploading"), json!(7)),
            (json!("Uploaded"), json!(7))
        ]
    );
}

// ----- trigger message ---------------------------------------------------------------------------

#[test]
fn trigger_message_sends_what_was_asked() {
    let cases_v16 = [
        ("Heartbeat", "Heartbeat"),
        ("StatusNotification", "StatusNotification"),
        ("MeterValues", "MeterValues"),
        ("FirmwareStatusNotification", "FirmwareStatusNotification"),
        (
            "DiagnosticsStatusNotification",
            "DiagnosticsStatusNotification",
        ),
        ("BootNotification", "BootNotification"),
    ];
    for (requested, sent) in cases_v16 {
        let mut h = Harness::new(OcppVersion::V16).online();
        assert_eq!(
            h.status_of("TriggerMessage", json!({"requestedMessage": requested})),
            "Accepted"
        );
        assert_eq!(
            h.take_log().first().map(|(a, _)| a.clone()).as_deref(),
            Some(sent),
            "{requested}"
        );
    }
    let mut h = Harness::new(OcppVersion::V16).online();
    assert_eq!(
        h.status_of(
            "TriggerMessage",
            json!({"requestedMessage": "StatusNotification", "connectorId": 5})
        ),
        "Rejected"
    );

    let cases_v201 = [
        ("Heartbeat", "Heartbeat"),
        ("StatusNotification", "StatusNotification"),
        ("MeterValues", "MeterValues"),
        ("FirmwareStatusNotification", "FirmwareStatusNotification"),
        ("LogStatusNotification", "LogStatusNotification"),
    ];
    for (requested, sent) in cases_v201 {
        let mut h = Harness::new(OcppVersion::V201).online();
        assert_eq!(
            h.status_of("TriggerMessage", json!({"requestedMessage": requested})),
            "Accepted"
        );
        assert_eq!(
            h.take_log().first().map(|(a, _)| a.clone()).as_deref(),
            Some(sent),
            "{requested}"
        );
    }
    let mut h = Harness::new(OcppVersion::V201).online();
    assert_eq!(
        h.status_of(
            "TriggerMessage",
            json!({"requestedMessage": "BootNotification"})
        ),
        "Rejected",
        "already accepted"
    );
    assert_eq!(
        h.status_of(
            "TriggerMessage",
            json!({"requestedMessage": "TransactionEvent"})
        ),
        "Rejected",
        "no transaction"
    );
    assert_eq!(
        h.status_of(
            "TriggerMessage",
            json!({"requestedMessage": "SignV2GCertificate"})
        ),
        "NotImplemented"
    );
    h.start_local("CARD-1");
    h.take_log();
    assert_eq!(
        h.status_of(
            "TriggerMessage",
            json!({"requestedMessage": "TransactionEvent"})
        ),
        "Accepted"
    );
    assert_eq!(h.sent("TransactionEvent")[0]["triggerReason"], "Trigger");
}

// ----- cache, data transfer, local list ------------------------------------------------------------

#[test]
fn clear_cache_forgets_remembered_tokens() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        h.start_local("CARD-1");
        assert!(h.c.auth_cache().lookup("CARD-1").is_some());
        assert_eq!(h.command("clear-cache", json!({}))["status"], "Accepted");
        assert!(h.c.auth_cache().is_empty());
    }
}

#[test]
fn data_transfer_echoes_for_our_vendor_only() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        let echo = h.command(
            "data-transfer",
            json!({"vendor_id": "VoltgateSim", "message_id": "echo", "data": "ping"}),
        );
        assert_eq!(
            (echo["status"].as_str(), echo["data"].as_str()),
            (Some("Accepted"), Some("ping"))
        );
        assert_eq!(
            h.command(
                "data-transfer",
                json!({"vendor_id": "VoltgateSim", "message_id": "other"})
            )["status"],
            "UnknownMessageId"
        );
        assert_eq!(
            h.command("data-transfer", json!({"vendor_id": "Acme"}))["status"],
            "UnknownVendorId"
        );
    }
}

fn local_list(
    version: OcppVersion,
    list_version: i64,
    update: &str,
    entries: &[(&str, Option<&str>)],
) -> Value {
    let items: Vec<Value> = entries
        .iter()
        .map(|(token, status)| match (version, status) {
            (OcppVersion::V16, Some(s)) => json!({"idTag": token, "idTagInfo": {"status": s}}),
            (OcppVersion::V16, None) => json!({"idTag": token}),
            (OcppVersion::V201, Some(s)) => json!({"idToken": {"idToken": token, "type": "ISO14443"}, "idTokenInfo": {"status": s}}),
            (OcppVersion::V201, None) => json!({"idToken": {"idToken": token, "type": "ISO14443"}}),
        })
        .collect();
    let (v, list) = if version == OcppVersion::V16 {
        ("listVersion", "localAuthorizationList")
    } else {
        ("versionNumber", "localAuthorizationList")
    };
    let mut payload = json!({ v: list_version, "updateType": update });
    if !items.is_empty() {
        payload[list] = Value::Array(items);
    }
    payload
}

#[test]
fn local_list_versions_and_offline_charging() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        let field = if version == OcppVersion::V16 {
            "listVersion"
        } else {
            "versionNumber"
        };
        assert_eq!(h.call("GetLocalListVersion", json!({}))[field], 0);
        let full = local_list(
            version,
            5,
            "Full",
            &[
                ("OFFLINE-OK", Some("Accepted")),
                ("BLOCKED", Some("Blocked")),
            ],
        );
        assert_eq!(h.status_of("SendLocalList", full), "Accepted");
        assert_eq!(h.call("GetLocalListVersion", json!({}))[field], 5);
        let stale = local_list(version, 5, "Differential", &[("X", Some("Accepted"))]);
        assert_eq!(h.status_of("SendLocalList", stale), "VersionMismatch");
        let diff = local_list(
            version,
            6,
            "Differential",
            &[("X", Some("Accepted")), ("BLOCKED", None)],
        );
        assert_eq!(h.status_of("SendLocalList", diff), "Accepted");
        assert_eq!(h.c.local_list().len(), 2);

        // the gateway goes away: tokens on the list still charge, others do not
        h.c.disconnected(h.now);
        h.c.plug_in(h.now, 2);
        h.c.present_token(h.now, 2, "UNKNOWN");
        assert_eq!(h.c.transaction_id(2), None);
        h.c.plug_in(h.now, 1);
        h.c.present_token(h.now, 1, "OFFLINE-OK");
        h.advance(60_000);
        h.c.present_token(h.now, 1, "OFFLINE-OK");
        assert!(h.take_log().is_empty(), "nothing sent while offline");
        h.c.connected(h.now);
        h.pump();
        let actions = h.actions();
        match version {
            OcppVersion::V16 => {
                let start = actions
                    .iter()
                    .position(|a| a == "StartTransaction")
                    .expect("start delivered");
                let stop = actions
                    .iter()
                    .position(|a| a == "StopTransaction")
                    .expect("stop delivered");
                assert!(start < stop, "{actions:?}");
            }
            OcppVersion::V201 => {
                assert!(
                    actions.iter().filter(|a| *a == "TransactionEvent").count() >= 3,
                    "{actions:?}"
                );
            }
        }
    }
}

#[test]
fn local_list_limits_are_reported_and_enforced_like_a_real_charger() {
    for version in BOTH {
        let mut spec = spec(version);
        spec.local_list = LocalListLimits {
            per_message: 2,
            bytes_per_message: 400,
            capacity: 3,
        };
        let mut h = Harness::with_spec(spec).online();
        let field = if version == OcppVersion::V16 {
            "listVersion"
        } else {
            "versionNumber"
        };
        let reported = match version {
            OcppVersion::V16 => {
                let answer = h.call(
                    "GetConfiguration",
                    json!({"key": ["SendLocalListMaxLength", "LocalAuthListMaxLength"]}),
                );
                let value = |key: &str| {
                    answer["configurationKey"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|k| k["key"] == key)
                        .map(|k| k["value"].clone())
                };
                (
                    value("SendLocalListMaxLength"),
                    value("LocalAuthListMaxLength"),
                )
            }
            OcppVersion::V201 => {
                let answer = h.call(
                    "GetVariables",
                    json!({"getVariableData": [
                        {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "ItemsPerMessage"}},
                        {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "BytesPerMessage"}},
                    ]}),
                );
                let results = answer["getVariableResult"].as_array().unwrap();
                assert_eq!(results[1]["attributeValue"], "400");
                (Some(results[0]["attributeValue"].clone()), None::<Value>)
            }
        };
        assert_eq!(reported.0, Some(json!("2")), "{version}");
        if version == OcppVersion::V16 {
            assert_eq!(reported.1, Some(json!("3")));
        }

        let three = local_list(
            version,
            1,
            "Full",
            &[
                ("A", Some("Accepted")),
                ("B", Some("Accepted")),
                ("C", Some("Accepted")),
            ],
        );
        assert_eq!(
            h.status_of("SendLocalList", three),
            "Failed",
            "{version}: three entries in one message"
        );
        assert_eq!(h.call("GetLocalListVersion", json!({}))[field], 0);
        let first = local_list(
            version,
            1,
            "Full",
            &[("A", Some("Accepted")), ("B", Some("Blocked"))],
        );
        assert_eq!(h.status_of("SendLocalList", first), "Accepted");
        let rest = local_list(version, 2, "Differential", &[("C", Some("Accepted"))]);
        assert_eq!(h.status_of("SendLocalList", rest), "Accepted");
        assert_eq!(h.call("GetLocalListVersion", json!({}))[field], 2);
        assert_eq!(h.c.local_list().len(), 3);
        let overfill = local_list(version, 3, "Differential", &[("D", Some("Accepted"))]);
        assert_eq!(
            h.status_of("SendLocalList", overfill),
            "Failed",
            "{version}: a fourth entry is past the capacity"
        );
        assert_eq!(h.call("GetLocalListVersion", json!({}))[field], 2);
        assert!(h.c.local_list().lookup("D").is_none());
        assert_eq!(
            h.c.local_list().lookup("B").map(|i| i.status.as_str()),
            Some("Blocked")
        );
        if version == OcppVersion::V201 {
            let item = |token: &str| {
                json!({
                    "idToken": {"idToken": token, "type": "ISO14443"},
                    "idTokenInfo": {
                        "status": "Accepted",
                        "cacheExpiryDateTime": "2099-01-01T00:00:00Z",
                        "groupIdToken": {"idToken": "G".repeat(36), "type": "Central"},
                    },
                })
            };
            let big = json!({
                "versionNumber": 3,
                "updateType": "Differential",
                "localAuthorizationList": [item("A"), item("C")],
            });
            assert!(
                big.to_string().len() > 400,
                "changes only, so within capacity"
            );
            assert_eq!(
                h.status_of("SendLocalList", big),
                "Failed",
                "over BytesPerMessage"
            );
            assert_eq!(h.call("GetLocalListVersion", json!({}))[field], 2);
        }
    }
}

#[test]
fn offline_events_are_marked_and_stop_uses_the_late_transaction_id() {
    let mut h = Harness::new(OcppVersion::V201).online();
    h.status_of(
        "SendLocalList",
        local_list(OcppVersion::V201, 1, "Full", &[("T", Some("Accepted"))]),
    );
    h.c.disconnected(h.now);
    h.start_local("T");
    h.c.connected(h.now);
    h.pump();
    let started = h
        .sent("TransactionEvent")
        .into_iter()
        .find(|p| p["eventType"] == "Started")
        .unwrap();
    assert_eq!(started["offline"], true);

    let mut h = Harness::new(OcppVersion::V16).online();
    h.status_of(
        "SendLocalList",
        local_list(OcppVersion::V16, 1, "Full", &[("T", Some("Accepted"))]),
    );
    h.c.disconnected(h.now);
    h.c.plug_in(h.now, 1);
    h.c.present_token(h.now, 1, "T");
    h.c.present_token(h.now, 1, "T");
    h.c.connected(h.now);
    h.pump();
    let start_id = h.csms.next_tx;
    let stop = h.sent("StopTransaction").remove(0);
    assert_eq!(stop["transactionId"], start_id);
}

#[test]
fn transactional_messages_are_retried_after_errors() {
    let mut h = Harness::new(OcppVersion::V16).online();
    h.c.plug_in(h.now, 1);
    h.c.present_token(h.now, 1, "CARD-1");
    h.csms.fail_next = 0;
    h.pump();
    h.take_log();
    h.csms.fail_next = 2;
    h.c.present_token(h.now, 1, "CARD-1");
    h.pump();
    h.advance(60_000);
    let stops = h.sent("StopTransaction").len();
    assert_eq!(stops, 3, "two failures, then delivered");
}

// ----- unknown requests, every operator command ----------------------------------------------

#[test]
fn unknown_and_unsupported_actions_are_refused_with_the_right_code() {
    for version in BOTH {
        let mut h = Harness::new(version).online();
        match h.c.handle_call(h.now, "MakeCoffee", &json!({})) {
            Answer::Error { code, .. } => assert_eq!(code, ErrorCode::NotImplemented),
            other => panic!("{other:?}"),
        }
        match h.c.handle_call(h.now, "ReserveNow", &json!({})) {
            Answer::Error { code, .. } => assert_eq!(code, ErrorCode::NotSupported),
            other => panic!("{other:?}"),
        }
        match h.c.handle_call(h.now, "Reset", &json!({})) {
            Answer::Error { code, .. } => {
                assert_eq!(code, ErrorCode::OccurrenceConstraintViolation)
            }
            other => panic!("{other:?}"),
        }
    }
}

fn sample_body(name: &str) -> Value {
    match name {
        "remote-start" => json!({"id_token": "APP-1"}),
        "remote-stop" => json!({"transaction_id": "1"}),
        "unlock" => json!({"connector": 2}),
        "reset" => json!({"type": "soft"}),
        "update-firmware" => json!({"location": "https://fw.example.com/a.bin"}),
        "get-configuration" => json!({}),
        "change-configuration" => json!({"key": "HeartbeatInterval", "value": "60"}),
        "set-max-current" => json!({"amps": 20.0}),
        "change-availability" => json!({"connector": 1, "available": false}),
        "trigger-message" => json!({"message": "Heartbeat"}),
        "get-log" => json!({"location": "https://logs.example.com/"}),
        "clear-cache" => json!({}),
        "data-transfer" => json!({"vendor_id": "Acme", "data": "x"}),
        other => panic!("no sample body for {other}"),
    }
}

#[test]
fn every_operator_command_gets_a_schema_valid_answer_in_both_versions() {
    for version in BOTH {
        for name in COMMAND_NAMES {
            let mut h = Harness::new(version).online();
            let mut body = sample_body(name);
            if version == OcppVersion::V201 && name == "change-configuration" {
                body = json!({"key": "OCPPCommCtrlr.HeartbeatInterval", "value": "60"});
            }
            let answer = h.command(name, body);
            assert!(answer.is_object(), "{version} {name}: {answer}");
            h.advance(20_000);
            h.follow_reboot();
        }
    }
}

// ----- closed loop ---------------------------------------------------------------------------------

#[test]
fn closed_loop_cycles_heartbeat_status_and_meter_values() {
    for version in BOTH {
        let mut s = spec(version);
        s.closed_loop = true;
        let mut h = Harness::with_spec(s);
        h.c.connected(h.now);
        // pump answers up to 10,000 CALLs back to back
        h.pump();
        let log = h.take_log();
        assert_eq!(log.len(), 10_000);
        let tail: Vec<&str> = log[log.len() - 3..]
            .iter()
            .map(|(a, _)| a.as_str())
            .collect();
        let mut sorted = tail.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ["Heartbeat", "MeterValues", "StatusNotification"]);
    }
}

#[test]
fn disconnect_drops_status_messages_but_keeps_transaction_messages() {
    let mut h = Harness::new(OcppVersion::V16).online();
    h.start_local("CARD-1");
    h.advance(29_000);
    h.c.disconnected(h.now);
    h.advance(1_000);
    assert_eq!(h.c.queued_actions(), ["MeterValues"]);
    h.c.present_token(h.now, 1, "CARD-1");
    assert_eq!(h.c.queued_actions(), ["MeterValues", "StopTransaction"]);
    assert!(!h.c.has_outstanding_call());
}
