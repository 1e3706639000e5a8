//! Every operator command, in both OCPP versions: what reaches the charger when the role engine
//! allows it, that nothing reaches it when it refuses (403) or when the caller cannot see the
//! charger (404), and that the audit log holds both.

use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::{Api, Charger};

use crate::{Estate, QUIET};

/// The commands the `connect` preset lets a holder of `view-chargers` send: reading a charger's
/// configuration is viewing charger information.
const WATCHER_MAY: &[&str] = &["get-configuration"];

/// One command as the operator sends it and as the charger must receive it.
struct Case {
    command: &'static str,
    body: Value,
    action: &'static str,
    /// JSON pointers into the CALL payload and the value each must have.
    expect: Vec<(&'static str, Value)>,
    /// What the simulated charger answers.
    answer: Value,
}

fn v16_cases() -> Vec<Case> {
    vec![
        Case {
            command: "remote-start",
            body: json!({"connector": 1, "id_token": "TAG-1"}),
            action: "RemoteStartTransaction",
            expect: vec![("/connectorId", json!(1)), ("/idTag", json!("TAG-1"))],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "remote-stop",
            body: json!({"transaction_id": "42"}),
            action: "RemoteStopTransaction",
            expect: vec![("/transactionId", json!(42))],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "unlock",
            body: json!({"connector": 2}),
            action: "UnlockConnector",
            expect: vec![("/connectorId", json!(2))],
            answer: json!({"status": "Unlocked"}),
        },
        Case {
            command: "reset",
            body: json!({"type": "hard"}),
            action: "Reset",
            expect: vec![("/type", json!("Hard"))],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "update-firmware",
            body: json!({"location": "https://fw.example.com/v2.bin", "retrieve_at": "2026-12-01T00:00:00Z"}),
            action: "UpdateFirmware",
            expect: vec![
                ("/location", json!("https://fw.example.com/v2.bin")),
                ("/retrieveDate", json!("2026-12-01T00:00:00Z")),
            ],
            answer: json!({}),
        },
        Case {
            command: "get-configuration",
            body: json!({"keys": ["HeartbeatInterval"]}),
            action: "GetConfiguration",
            expect: vec![("/key/0", json!("HeartbeatInterval"))],
            answer: json!({"configurationKey": [{"key": "HeartbeatInterval", "readonly": false, "value": "300"}]}),
        },
        Case {
            command: "change-configuration",
            body: json!({"key": "HeartbeatInterval", "value": "60"}),
            action: "ChangeConfiguration",
            expect: vec![
                ("/key", json!("HeartbeatInterval")),
                ("/value", json!("60")),
            ],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "set-max-current",
            body: json!({"amps": 16}),
            action: "SetChargingProfile",
            expect: vec![
                ("/connectorId", json!(0)),
                (
                    "/csChargingProfiles/chargingProfilePurpose",
                    json!("ChargePointMaxProfile"),
                ),
                (
                    "/csChargingProfiles/chargingSchedule/chargingRateUnit",
                    json!("A"),
                ),
            ],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "change-availability",
            body: json!({"available": false}),
            action: "ChangeAvailability",
            expect: vec![("/connectorId", json!(0)), ("/type", json!("Inoperative"))],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "trigger-message",
            body: json!({"message": "StatusNotification", "connector": 1}),
            action: "TriggerMessage",
            expect: vec![
                ("/requestedMessage", json!("StatusNotification")),
                ("/connectorId", json!(1)),
            ],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "get-log",
            body: json!({"location": "ftp://logs.example.com/upload"}),
            action: "GetDiagnostics",
            expect: vec![("/location", json!("ftp://logs.example.com/upload"))],
            answer: json!({"fileName": "diagnostics.zip"}),
        },
        Case {
            command: "clear-cache",
            body: json!({}),
            action: "ClearCache",
            expect: vec![],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "data-transfer",
            body: json!({"vendor_id": "com.example", "message_id": "ping", "data": "hello"}),
            action: "DataTransfer",
            expect: vec![
                ("/vendorId", json!("com.example")),
                ("/messageId", json!("ping")),
                ("/data", json!("hello")),
            ],
            answer: json!({"status": "Accepted", "data": "pong"}),
        },
    ]
}

fn v201_cases() -> Vec<Case> {
    vec![
        Case {
            command: "remote-start",
            body: json!({"connector": 1, "id_token": "TAG-1"}),
            action: "RequestStartTransaction",
            expect: vec![("/evseId", json!(1)), ("/idToken/idToken", json!("TAG-1"))],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "remote-stop",
            body: json!({"transaction_id": "tx-42"}),
            action: "RequestStopTransaction",
            expect: vec![("/transactionId", json!("tx-42"))],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "unlock",
            body: json!({"connector": 2}),
            action: "UnlockConnector",
            expect: vec![("/evseId", json!(2))],
            answer: json!({"status": "Unlocked"}),
        },
        Case {
            command: "reset",
            body: json!({"type": "soft"}),
            action: "Reset",
            expect: vec![("/type", json!("OnIdle"))],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "update-firmware",
            body: json!({"location": "https://fw.example.com/v2.bin", "retrieve_at": "2026-12-01T00:00:00Z"}),
            action: "UpdateFirmware",
            expect: vec![
                ("/firmware/location", json!("https://fw.example.com/v2.bin")),
                ("/firmware/retrieveDateTime", json!("2026-12-01T00:00:00Z")),
            ],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "get-configuration",
            body: json!({"keys": ["OCPPCommCtrlr.HeartbeatInterval"]}),
            action: "GetVariables",
            expect: vec![
                ("/getVariableData/0/component/name", json!("OCPPCommCtrlr")),
                (
                    "/getVariableData/0/variable/name",
                    json!("HeartbeatInterval"),
                ),
            ],
            answer: json!({"getVariableResult": [{"attributeStatus": "Accepted",
                "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
                "attributeValue": "300"}]}),
        },
        Case {
            command: "change-configuration",
            body: json!({"key": "OCPPCommCtrlr.HeartbeatInterval", "value": "60"}),
            action: "SetVariables",
            expect: vec![
                ("/setVariableData/0/component/name", json!("OCPPCommCtrlr")),
                (
                    "/setVariableData/0/variable/name",
                    json!("HeartbeatInterval"),
                ),
                ("/setVariableData/0/attributeValue", json!("60")),
            ],
            answer: json!({"setVariableResult": [{"attributeStatus": "Accepted",
                "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}),
        },
        Case {
            command: "set-max-current",
            body: json!({"amps": 16}),
            action: "SetChargingProfile",
            expect: vec![
                ("/evseId", json!(0)),
                (
                    "/chargingProfile/chargingProfilePurpose",
                    json!("ChargingStationMaxProfile"),
                ),
                (
                    "/chargingProfile/chargingSchedule/0/chargingRateUnit",
                    json!("A"),
                ),
            ],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "change-availability",
            body: json!({"available": false}),
            action: "ChangeAvailability",
            expect: vec![("/operationalStatus", json!("Inoperative"))],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "trigger-message",
            body: json!({"message": "StatusNotification", "connector": 1}),
            action: "TriggerMessage",
            expect: vec![
                ("/requestedMessage", json!("StatusNotification")),
                ("/evse/id", json!(1)),
            ],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "get-log",
            body: json!({"location": "ftp://logs.example.com/upload"}),
            action: "GetLog",
            expect: vec![
                (
                    "/log/remoteLocation",
                    json!("ftp://logs.example.com/upload"),
                ),
                ("/logType", json!("DiagnosticsLog")),
            ],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "clear-cache",
            body: json!({}),
            action: "ClearCache",
            expect: vec![],
            answer: json!({"status": "Accepted"}),
        },
        Case {
            command: "data-transfer",
            body: json!({"vendor_id": "com.example", "message_id": "ping", "data": "hello"}),
            action: "DataTransfer",
            expect: vec![
                ("/vendorId", json!("com.example")),
                ("/messageId", json!("ping")),
            ],
            answer: json!({"status": "Accepted", "data": "pong"}),
        },
    ]
}

/// Sends one case as `operator`, plays the charger's side, and checks what the charger got and what
/// the operator was told.
async fn run_allowed(operator: &Api, charger: &mut Charger, case: &Case) {
    let api = operator.clone();
    let id = charger.id.clone();
    let command = case.command;
    let body = case.body.clone();
    let request = tokio::spawn(async move { api.command(&id, command, body).await });
    let (message_id, action, payload) = charger
        .next_call(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{}: no CALL reached the charger", case.command));
    assert_eq!(action, case.action, "{}: wrong OCPP action", case.command);
    for (pointer, expected) in &case.expect {
        assert_eq!(
            payload.pointer(pointer),
            Some(expected),
            "{}: {} in {}",
            case.command,
            pointer,
            payload
        );
    }
    charger.reply(&message_id, case.answer.clone()).unwrap();
    let reply = request.await.unwrap().unwrap().expect(200);
    assert_eq!(
        reply.body["response"], case.answer,
        "{}: {}",
        case.command, reply.text
    );
    let expected_status = case.answer["status"].as_str().unwrap_or("Accepted");
    if case.answer.get("status").is_some() {
        assert_eq!(reply.body["status"], expected_status, "{}", reply.text);
    }
}

async fn every_command_is_gated(subprotocol: &str, cases: Vec<Case>) {
    let estate = Estate::new(&[]).await;
    estate.site_a_card("tia", "TAG-1").await;
    let id = format!("CP-{}", subprotocol.replace('.', "-"));
    let mut charger = estate.charger(&id, subprotocol).await;
    for case in &cases {
        run_allowed(&estate.ops, &mut charger, case).await;
        if WATCHER_MAY.contains(&case.command) {
            run_allowed(&estate.watcher, &mut charger, case).await;
        } else {
            let refused = estate
                .watcher
                .command(&id, case.command, case.body.clone())
                .await
                .unwrap()
                .expect(403);
            assert!(
                refused.body["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "403 without a reason: {}",
                refused.text
            );
        }
        let hidden = estate
            .outsider
            .command(&id, case.command, case.body.clone())
            .await
            .unwrap()
            .expect(404);
        assert!(
            !hidden.text.contains("site-a"),
            "404 reveals where the charger is: {}",
            hidden.text
        );
        charger.quiet(QUIET).await.unwrap_or_else(|e| {
            panic!(
                "{}: a refused command reached the charger: {e}",
                case.command
            )
        });
    }
    crate::backstop(&estate.admin, &mut charger).await;

    let audit = estate
        .admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let entries = audit.body["entries"]
        .as_array()
        .or_else(|| audit.body.as_array())
        .cloned()
        .unwrap_or_default();
    for case in &cases {
        let action = format!("command.{}", case.command);
        let by = |who: &str, allowed: bool| {
            entries.iter().any(|e| {
                e["principal"] == who
                    && e["action"] == action.as_str()
                    && e["resource"].as_str().is_some_and(|r| r.contains(&id))
                    && e["allowed"] == allowed
            })
        };
        assert!(
            by("ops", true),
            "no allow record for {action} in {}",
            audit.text
        );
        let watcher_allowed = WATCHER_MAY.contains(&case.command);
        assert!(
            by("watcher", watcher_allowed),
            "no watcher record for {action}"
        );
        assert!(
            by("outsider", false),
            "no deny record for the invisible {action}"
        );
    }
}

#[tokio::test]
async fn every_command_is_gated_v16() {
    every_command_is_gated("ocpp1.6", v16_cases()).await;
}

#[tokio::test]
async fn every_command_is_gated_v201() {
    every_command_is_gated("ocpp2.0.1", v201_cases()).await;
}

#[tokio::test]
async fn command_outcomes_map_to_http_statuses() {
    let estate = Estate::new(&["--command-timeout", "1"]).await;
    let mut charger = estate.charger("CP-OUT", "ocpp1.6").await;
    estate
        .admin
        .charger("CP-OFFLINE", "site-a")
        .await
        .unwrap()
        .expect(201);

    // not connected
    estate
        .ops
        .command("CP-OFFLINE", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect(409);
    // unknown charger and unknown command
    estate
        .ops
        .command("CP-NOWHERE", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect(404);
    // a bad body never reaches the charger
    estate
        .ops
        .command("CP-OUT", "reset", json!({"type": "sideways"}))
        .await
        .unwrap()
        .expect(422);
    estate
        .ops
        .command("CP-OUT", "unlock", json!({"connector": "one"}))
        .await
        .unwrap()
        .expect(422);
    charger.quiet(QUIET).await.unwrap();

    // the charger answers with a CALLERROR; the ClearCache is the next CALL it sees, so a bad
    // command delivered late would show here
    let api = estate.ops.clone();
    let request =
        tokio::spawn(async move { api.command("CP-OUT", "clear-cache", json!({})).await });
    let (id, _) = charger
        .expect_call("ClearCache", Duration::from_secs(5))
        .await
        .unwrap();
    charger
        .reply_error(&id, "InternalError", "flash full")
        .unwrap();
    let reply = request.await.unwrap().unwrap().expect(502);
    assert!(reply.text.contains("InternalError"), "{}", reply.text);

    // the charger never answers
    let api = estate.ops.clone();
    let request =
        tokio::spawn(async move { api.command("CP-OUT", "clear-cache", json!({})).await });
    let (late_id, _, _) = charger
        .next_call(Duration::from_secs(5))
        .await
        .expect("call");
    request.await.unwrap().unwrap().expect(504);
    // an answer after the timeout is ignored and the connection stays usable
    charger
        .reply(&late_id, json!({"status": "Accepted"}))
        .unwrap();
    let heartbeat = charger.call_ok("Heartbeat", json!({})).await.unwrap();
    assert!(heartbeat["currentTime"].is_string());
}

#[tokio::test]
async fn role_changes_take_effect_on_the_next_request() {
    let estate = Estate::new(&[]).await;
    let mut charger = estate.charger("CP-ROLE", "ocpp2.0.1").await;
    estate
        .watcher
        .command("CP-ROLE", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect(403);
    estate
        .admin
        .assign("watcher", "site-admin", "site-a")
        .await
        .unwrap()
        .expect(201);
    let api = estate.watcher.clone();
    let request =
        tokio::spawn(async move { api.command("CP-ROLE", "clear-cache", json!({})).await });
    let (id, action, _) = charger
        .next_call(Duration::from_secs(5))
        .await
        .expect("call");
    assert_eq!(action, "ClearCache");
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    request.await.unwrap().unwrap().expect(200);

    estate
        .admin
        .delete(
            "/api/v1/assignments",
            json!({"principal": "watcher", "role": "site-admin", "scope": "site-a"}),
        )
        .await
        .unwrap()
        .expect(200);
    estate
        .watcher
        .command("CP-ROLE", "clear-cache", json!({}))
        .await
        .unwrap()
        .expect(403);
    charger.quiet(QUIET).await.unwrap();
    crate::backstop(&estate.admin, &mut charger).await;
}
