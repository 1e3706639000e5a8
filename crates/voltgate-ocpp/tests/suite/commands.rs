//! Operator commands: API bodies, per-version translation, and the rule that every payload we
//! build validates against the official request schema.

use proptest::prelude::*;
use serde_json::{json, Value};
use voltgate_ocpp::{response_status, Command, CommandError, OcppVersion, COMMAND_NAMES};

use crate::validator;

const NOW: &str = "2024-05-01T12:00:00Z";

/// Commands covering every variant and every branch of the translation.
fn sample_commands() -> Vec<Command> {
    vec![
        Command::RemoteStart {
            connector: None,
            id_token: "TAG-1".into(),
            token_type: None,
        },
        Command::RemoteStart {
            connector: Some(2),
            id_token: "12345678901234567890".into(),
            token_type: None,
        },
        Command::RemoteStop {
            transaction_id: "42".into(),
        },
        Command::Unlock { connector: 1 },
        Command::Reset { hard: true },
        Command::Reset { hard: false },
        Command::UpdateFirmware {
            location: "https://fw.example.com/v2.bin".into(),
            retrieve_at: Some(NOW.into()),
        },
        Command::UpdateFirmware {
            location: "ftp://fw.example.com/v2.bin".into(),
            retrieve_at: None,
        },
        Command::GetConfiguration { keys: None },
        Command::GetConfiguration { keys: Some(vec![]) },
        Command::GetConfiguration {
            keys: Some(vec![
                "OCPPCommCtrlr.HeartbeatInterval".into(),
                "AuthCtrlr.Enabled".into(),
            ]),
        },
        Command::ChangeConfiguration {
            key: "OCPPCommCtrlr.HeartbeatInterval".into(),
            value: "300".into(),
        },
        Command::ChangeConfiguration {
            key: "AuthCtrlr.LocalPreAuthorize".into(),
            value: String::new(),
        },
        Command::SetMaxCurrent {
            connector: None,
            amps: 32.0,
        },
        Command::SetMaxCurrent {
            connector: Some(0),
            amps: 6.55,
        },
        Command::SetMaxCurrent {
            connector: Some(1),
            amps: 16.1,
        },
        Command::ChangeAvailability {
            connector: None,
            available: false,
        },
        Command::ChangeAvailability {
            connector: Some(0),
            available: true,
        },
        Command::ChangeAvailability {
            connector: Some(2),
            available: true,
        },
        Command::TriggerMessage {
            message: "Heartbeat".into(),
            connector: None,
        },
        Command::TriggerMessage {
            message: "StatusNotification".into(),
            connector: Some(1),
        },
        Command::TriggerMessage {
            message: "MeterValues".into(),
            connector: Some(0),
        },
        Command::GetLog {
            location: "https://logs.example.com/upload".into(),
        },
        Command::ClearCache,
        Command::DataTransfer {
            vendor_id: "com.example".into(),
            message_id: None,
            data: None,
        },
        Command::DataTransfer {
            vendor_id: "com.example".into(),
            message_id: Some("Ping".into()),
            data: Some("{\"a\":1}".into()),
        },
        Command::SetBasicAuthPassword {
            password: "0123456789abcdefghij".into(),
        },
    ]
}

#[test]
fn every_command_in_every_version_validates_against_the_request_schema() {
    let mut variants = std::collections::HashSet::new();
    for command in sample_commands() {
        variants.insert(command.name());
        for version in OcppVersion::ALL {
            for seq in [1, 7, i64::MAX, -5] {
                let call = command
                    .to_call_at(version, seq, NOW)
                    .unwrap_or_else(|e| panic!("{command:?} on {version}: {e}"));
                if let Err(e) = validator().validate_request(version, call.action, &call.payload) {
                    panic!(
                        "{command:?} on {version} built {} {}: {e:?}",
                        call.action, call.payload
                    );
                }
            }
            match command.to_call(version, 1) {
                Ok(call) => assert_eq!(
                    validator().validate_request(version, call.action, &call.payload),
                    Ok(())
                ),
                Err(e) => assert!(
                    matches!(
                        command,
                        Command::UpdateFirmware {
                            retrieve_at: None,
                            ..
                        }
                    ),
                    "{command:?} on {version} needs no clock: {e}"
                ),
            }
        }
    }
    // set-password is sent by the password endpoint and has no command API name.
    assert_eq!(
        variants.len(),
        COMMAND_NAMES.len() + 1,
        "a variant has no sample"
    );
}

fn call(command: &Command, version: OcppVersion) -> (&'static str, Value) {
    let call = command.to_call_at(version, 9, NOW).expect("translates");
    (call.action, call.payload)
}

#[test]
fn translations_follow_the_version_rules() {
    let v16 = OcppVersion::V16;
    let v201 = OcppVersion::V201;
    let start = Command::RemoteStart {
        connector: Some(2),
        id_token: "TAG".into(),
        token_type: None,
    };
    assert_eq!(
        call(&start, v16),
        (
            "RemoteStartTransaction",
            json!({"connectorId": 2, "idTag": "TAG"})
        )
    );
    assert_eq!(
        call(&start, v201),
        (
            "RequestStartTransaction",
            json!({"idToken": {"idToken": "TAG", "type": "ISO14443"}, "remoteStartId": 9, "evseId": 2})
        )
    );
    let typed = Command::RemoteStart {
        connector: None,
        id_token: "TAG".into(),
        token_type: Some("eMAID".into()),
    };
    assert_eq!(
        call(&typed, v201).1["idToken"],
        json!({"idToken": "TAG", "type": "eMAID"})
    );
    assert_eq!(call(&typed, v16).1, json!({"idTag": "TAG"}));
    let badly_typed = Command::RemoteStart {
        connector: None,
        id_token: "TAG".into(),
        token_type: Some("Card".into()),
    };
    assert!(matches!(
        badly_typed.to_call(v201, 9),
        Err(CommandError::InvalidBody(_))
    ));
    let stop = Command::RemoteStop {
        transaction_id: "42".into(),
    };
    assert_eq!(
        call(&stop, v16),
        ("RemoteStopTransaction", json!({"transactionId": 42}))
    );
    assert_eq!(
        call(&stop, v201),
        ("RequestStopTransaction", json!({"transactionId": "42"}))
    );
    let unlock = Command::Unlock { connector: 3 };
    assert_eq!(
        call(&unlock, v16),
        ("UnlockConnector", json!({"connectorId": 3}))
    );
    assert_eq!(
        call(&unlock, v201),
        ("UnlockConnector", json!({"evseId": 3, "connectorId": 1}))
    );
    assert_eq!(
        call(&Command::Reset { hard: true }, v16),
        ("Reset", json!({"type": "Hard"}))
    );
    assert_eq!(
        call(&Command::Reset { hard: false }, v16),
        ("Reset", json!({"type": "Soft"}))
    );
    assert_eq!(
        call(&Command::Reset { hard: true }, v201),
        ("Reset", json!({"type": "Immediate"}))
    );
    assert_eq!(
        call(&Command::Reset { hard: false }, v201),
        ("Reset", json!({"type": "OnIdle"}))
    );
    let firmware = Command::UpdateFirmware {
        location: "https://fw/x".into(),
        retrieve_at: None,
    };
    assert_eq!(
        call(&firmware, v16),
        (
            "UpdateFirmware",
            json!({"location": "https://fw/x", "retrieveDate": NOW})
        )
    );
    assert_eq!(
        call(&firmware, v201),
        (
            "UpdateFirmware",
            json!({"requestId": 9, "firmware": {"location": "https://fw/x", "retrieveDateTime": NOW}})
        )
    );
    let get_all = Command::GetConfiguration { keys: None };
    assert_eq!(call(&get_all, v16), ("GetConfiguration", json!({})));
    assert_eq!(
        call(&get_all, v201),
        (
            "GetBaseReport",
            json!({"requestId": 9, "reportBase": "FullInventory"})
        )
    );
    let get_some = Command::GetConfiguration {
        keys: Some(vec!["A.B".into()]),
    };
    assert_eq!(
        call(&get_some, v16),
        ("GetConfiguration", json!({"key": ["A.B"]}))
    );
    assert_eq!(
        call(&get_some, v201),
        (
            "GetVariables",
            json!({"getVariableData": [{"component": {"name": "A"}, "variable": {"name": "B"}}]})
        )
    );
    let change = Command::ChangeConfiguration {
        key: "A.B".into(),
        value: "1".into(),
    };
    assert_eq!(
        call(&change, v16),
        ("ChangeConfiguration", json!({"key": "A.B", "value": "1"}))
    );
    assert_eq!(
        call(&change, v201),
        (
            "SetVariables",
            json!({"setVariableData": [{"attributeValue": "1", "component": {"name": "A"}, "variable": {"name": "B"}}]})
        )
    );
    let max = Command::SetMaxCurrent {
        connector: None,
        amps: 16.04,
    };
    assert_eq!(
        call(&max, v16),
        (
            "SetChargingProfile",
            json!({"connectorId": 0, "csChargingProfiles": {
            "chargingProfileId": 9, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": NOW,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}}})
        )
    );
    let tx_default = Command::SetMaxCurrent {
        connector: Some(2),
        amps: 10.0,
    };
    assert_eq!(
        call(&tx_default, v201),
        (
            "SetChargingProfile",
            json!({"evseId": 2, "chargingProfile": {
            "id": 9, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
            "chargingSchedule": [{"id": 9, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}]}})
        )
    );
    let station_max = Command::SetMaxCurrent {
        connector: None,
        amps: 10.0,
    };
    let (_, payload) = call(&station_max, v201);
    assert_eq!(payload["evseId"], json!(0));
    assert_eq!(
        payload["chargingProfile"]["chargingProfilePurpose"],
        json!("ChargingStationMaxProfile")
    );
    let off = Command::ChangeAvailability {
        connector: None,
        available: false,
    };
    assert_eq!(
        call(&off, v16),
        (
            "ChangeAvailability",
            json!({"connectorId": 0, "type": "Inoperative"})
        )
    );
    assert_eq!(
        call(&off, v201),
        (
            "ChangeAvailability",
            json!({"operationalStatus": "Inoperative"})
        )
    );
    let on = Command::ChangeAvailability {
        connector: Some(2),
        available: true,
    };
    assert_eq!(
        call(&on, v201),
        (
            "ChangeAvailability",
            json!({"operationalStatus": "Operative", "evse": {"id": 2}})
        )
    );
    let trigger = Command::TriggerMessage {
        message: "StatusNotification".into(),
        connector: Some(1),
    };
    assert_eq!(
        call(&trigger, v16),
        (
            "TriggerMessage",
            json!({"requestedMessage": "StatusNotification", "connectorId": 1})
        )
    );
    assert_eq!(
        call(&trigger, v201),
        (
            "TriggerMessage",
            json!({"requestedMessage": "StatusNotification", "evse": {"id": 1}})
        )
    );
    let log = Command::GetLog {
        location: "https://logs/x".into(),
    };
    assert_eq!(
        call(&log, v16),
        ("GetDiagnostics", json!({"location": "https://logs/x"}))
    );
    assert_eq!(
        call(&log, v201),
        (
            "GetLog",
            json!({"logType": "DiagnosticsLog", "requestId": 9, "log": {"remoteLocation": "https://logs/x"}})
        )
    );
    assert_eq!(call(&Command::ClearCache, v16), ("ClearCache", json!({})));
    let transfer = Command::DataTransfer {
        vendor_id: "v".into(),
        message_id: Some("m".into()),
        data: Some("d".into()),
    };
    assert_eq!(
        call(&transfer, v201),
        (
            "DataTransfer",
            json!({"vendorId": "v", "messageId": "m", "data": "d"})
        )
    );
}

#[test]
fn sequence_numbers_become_32_bit_ids() {
    let command = Command::GetLog {
        location: "https://logs/x".into(),
    };
    let id = |seq| {
        command
            .to_call(OcppVersion::V201, seq)
            .expect("translates")
            .payload["requestId"]
            .clone()
    };
    assert_eq!(id(0), json!(0));
    assert_eq!(id(2_147_483_647), json!(2_147_483_647));
    assert_eq!(id(2_147_483_648), json!(0));
    assert_eq!(id(-1), json!(2_147_483_647));
}

#[test]
fn version_specific_refusals() {
    let not_int = Command::RemoteStop {
        transaction_id: "tx-abc".into(),
    };
    assert!(matches!(
        not_int.to_call(OcppVersion::V16, 1),
        Err(CommandError::InvalidBody(_))
    ));
    assert!(not_int.to_call(OcppVersion::V201, 1).is_ok());
    let long_tag = Command::RemoteStart {
        connector: None,
        id_token: "x".repeat(21),
        token_type: None,
    };
    assert!(matches!(
        long_tag.to_call(OcppVersion::V16, 1),
        Err(CommandError::InvalidBody(_))
    ));
    assert!(long_tag.to_call(OcppVersion::V201, 1).is_ok());
    let plain_key = Command::ChangeConfiguration {
        key: "HeartbeatInterval".into(),
        value: "60".into(),
    };
    assert!(plain_key.to_call(OcppVersion::V16, 1).is_ok());
    assert!(matches!(
        plain_key.to_call(OcppVersion::V201, 1),
        Err(CommandError::InvalidBody(_))
    ));
    let long_value = Command::ChangeConfiguration {
        key: "A.B".into(),
        value: "v".repeat(501),
    };
    assert!(matches!(
        long_value.to_call(OcppVersion::V16, 1),
        Err(CommandError::InvalidBody(_))
    ));
    assert!(long_value.to_call(OcppVersion::V201, 1).is_ok());
    let diag = Command::TriggerMessage {
        message: "DiagnosticsStatusNotification".into(),
        connector: None,
    };
    assert!(diag.to_call(OcppVersion::V16, 1).is_ok());
    assert!(matches!(
        diag.to_call(OcppVersion::V201, 1),
        Err(CommandError::NotInVersion {
            version: OcppVersion::V201,
            ..
        })
    ));
    for connector in [None, Some(0)] {
        let all_status = Command::TriggerMessage {
            message: "StatusNotification".into(),
            connector,
        };
        assert!(all_status.to_call(OcppVersion::V16, 1).is_ok());
        assert!(
            matches!(
                all_status.to_call(OcppVersion::V201, 1),
                Err(CommandError::InvalidBody(ref why)) if why.contains("F06.FR.13")
            ),
            "a 2.0.1 StatusNotification trigger names its EVSE ({connector:?})"
        );
    }
    let event = Command::TriggerMessage {
        message: "TransactionEvent".into(),
        connector: None,
    };
    assert!(matches!(
        event.to_call(OcppVersion::V16, 1),
        Err(CommandError::NotInVersion {
            version: OcppVersion::V16,
            ..
        })
    ));
    let firmware = Command::UpdateFirmware {
        location: "https://fw/x".into(),
        retrieve_at: None,
    };
    assert!(matches!(
        firmware.to_call(OcppVersion::V16, 1),
        Err(CommandError::InvalidBody(_))
    ));
    assert!(matches!(
        firmware.to_call_at(OcppVersion::V16, 1, "now"),
        Err(CommandError::InvalidBody(_))
    ));
    let nan = Command::SetMaxCurrent {
        connector: None,
        amps: f64::NAN,
    };
    assert!(matches!(
        nan.to_call(OcppVersion::V16, 1),
        Err(CommandError::InvalidBody(_))
    ));
}

#[test]
fn from_api_reads_each_command_body() {
    let cases: Vec<(&str, Value, Command)> = vec![
        (
            "remote-start",
            json!({"id_token": "T"}),
            Command::RemoteStart {
                connector: None,
                id_token: "T".into(),
                token_type: None,
            },
        ),
        (
            "remote-start",
            json!({"id_token": "T", "connector": 2}),
            Command::RemoteStart {
                connector: Some(2),
                id_token: "T".into(),
                token_type: None,
            },
        ),
        (
            "remote-stop",
            json!({"transaction_id": "9"}),
            Command::RemoteStop {
                transaction_id: "9".into(),
            },
        ),
        (
            "unlock",
            json!({"connector": 1}),
            Command::Unlock { connector: 1 },
        ),
        (
            "reset",
            json!({"type": "hard"}),
            Command::Reset { hard: true },
        ),
        (
            "reset",
            json!({"type": "soft"}),
            Command::Reset { hard: false },
        ),
        (
            "update-firmware",
            json!({"location": "https://fw/x"}),
            Command::UpdateFirmware {
                location: "https://fw/x".into(),
                retrieve_at: None,
            },
        ),
        (
            "update-firmware",
            json!({"location": "https://fw/x", "retrieve_at": NOW}),
            Command::UpdateFirmware {
                location: "https://fw/x".into(),
                retrieve_at: Some(NOW.into()),
            },
        ),
        (
            "get-configuration",
            json!({}),
            Command::GetConfiguration { keys: None },
        ),
        (
            "get-configuration",
            json!({"keys": ["A.B"]}),
            Command::GetConfiguration {
                keys: Some(vec!["A.B".into()]),
            },
        ),
        (
            "change-configuration",
            json!({"key": "K", "value": "V"}),
            Command::ChangeConfiguration {
                key: "K".into(),
                value: "V".into(),
            },
        ),
        (
            "set-max-current",
            json!({"amps": 16}),
            Command::SetMaxCurrent {
                connector: None,
                amps: 16.0,
            },
        ),
        (
            "set-max-current",
            json!({"amps": 6.5, "connector": 1}),
            Command::SetMaxCurrent {
                connector: Some(1),
                amps: 6.5,
            },
        ),
        (
            "change-availability",
            json!({"available": false}),
            Command::ChangeAvailability {
                connector: None,
                available: false,
            },
        ),
        (
            "trigger-message",
            json!({"message": "Heartbeat"}),
            Command::TriggerMessage {
                message: "Heartbeat".into(),
                connector: None,
            },
        ),
        (
            "get-log",
            json!({"location": "sftp://logs/x"}),
            Command::GetLog {
                location: "sftp://logs/x".into(),
            },
        ),
        ("clear-cache", Value::Null, Command::ClearCache),
        ("clear-cache", json!({}), Command::ClearCache),
        (
            "data-transfer",
            json!({"vendor_id": "v", "data": "d"}),
            Command::DataTransfer {
                vendor_id: "v".into(),
                message_id: None,
                data: Some("d".into()),
            },
        ),
    ];
    let mut names = std::collections::HashSet::new();
    for (name, body, expected) in cases {
        let command =
            Command::from_api(name, &body).unwrap_or_else(|e| panic!("{name} {body}: {e}"));
        assert_eq!(command, expected, "{name} {body}");
        assert_eq!(command.name(), name);
        assert_eq!(command.engine_action(), format!("command.{name}"));
        names.insert(name);
    }
    assert_eq!(names.len(), COMMAND_NAMES.len());
    assert!(COMMAND_NAMES.iter().all(|n| names.contains(n)));
}

#[test]
fn from_api_refuses_bad_bodies() {
    let invalid: Vec<(&str, Value)> = vec![
        ("remote-start", json!({})),
        ("remote-start", json!({"id_token": ""})),
        ("remote-start", json!({"id_token": "x".repeat(37)})),
        ("remote-start", json!({"id_token": "T", "connector": 0})),
        ("remote-start", json!({"id_token": "T", "connector": -1})),
        ("remote-start", json!({"id_token": "T", "colour": "red"})),
        ("remote-start", json!([])),
        ("remote-stop", json!({"transaction_id": 1.5})),
        ("remote-stop", json!({"transaction_id": true})),
        ("unlock", json!({"connector": 0})),
        ("unlock", json!({})),
        ("reset", json!({"hard": true})),
        ("reset", json!({"type": "Soft"})),
        ("reset", Value::Null),
        ("update-firmware", json!({"location": "not a uri"})),
        (
            "update-firmware",
            json!({"location": "https://fw/x", "retrieve_at": "tomorrow"}),
        ),
        (
            "update-firmware",
            json!({"location": format!("https://fw/{}", "x".repeat(600))}),
        ),
        ("get-configuration", json!({"keys": [""]})),
        ("get-configuration", json!({"keys": "A.B"})),
        ("change-configuration", json!({"key": "K"})),
        ("set-max-current", json!({"amps": -1})),
        ("set-max-current", json!({"amps": "16"})),
        ("set-max-current", json!({"amps": 1e9})),
        ("change-availability", json!({})),
        ("trigger-message", json!({"message": "Reboot"})),
        ("get-log", json!({"location": ""})),
        ("clear-cache", json!({"all": true})),
        ("data-transfer", json!({"vendor_id": ""})),
        (
            "data-transfer",
            json!({"vendor_id": "v", "message_id": "m".repeat(51)}),
        ),
    ];
    for (name, body) in invalid {
        match Command::from_api(name, &body) {
            Err(CommandError::InvalidBody(reason)) => assert!(!reason.is_empty()),
            other => panic!("{name} {body}: expected InvalidBody, got {other:?}"),
        }
    }
    // The form GET /transactions lists a 1.6 id in: an integer, taken as its decimal text.
    assert_eq!(
        Command::from_api("remote-stop", &json!({"transaction_id": 9})),
        Ok(Command::RemoteStop {
            transaction_id: "9".into()
        })
    );
    assert_eq!(
        Command::from_api("self-destruct", &json!({})),
        Err(CommandError::UnknownCommand("self-destruct".into()))
    );
}

#[test]
fn response_status_reads_status_or_summarises() {
    let v16 = OcppVersion::V16;
    let v201 = OcppVersion::V201;
    assert_eq!(
        response_status(v16, "Reset", &json!({"status": "Accepted"})),
        "Accepted"
    );
    assert_eq!(
        response_status(
            v201,
            "RequestStartTransaction",
            &json!({"status": "Rejected"})
        ),
        "Rejected"
    );
    assert_eq!(
        response_status(
            v16,
            "GetConfiguration",
            &json!({"configurationKey": [{"key": "A", "readonly": true}], "unknownKey": ["B", "C"]})
        ),
        "1 keys, 2 unknown"
    );
    assert_eq!(
        response_status(v16, "GetDiagnostics", &json!({"fileName": "diag.zip"})),
        "file diag.zip"
    );
    assert_eq!(
        response_status(v16, "GetDiagnostics", &json!({})),
        "no file"
    );
    let all_ok = json!({"setVariableResult": [
        {"attributeStatus": "Accepted", "component": {"name": "A"}, "variable": {"name": "B"}},
        {"attributeStatus": "Accepted", "component": {"name": "A"}, "variable": {"name": "C"}}]});
    assert_eq!(response_status(v201, "SetVariables", &all_ok), "Accepted");
    let mixed = json!({"getVariableResult": [
        {"attributeStatus": "Accepted", "component": {"name": "A"}, "variable": {"name": "B"}},
        {"attributeStatus": "UnknownVariable", "component": {"name": "A"}, "variable": {"name": "C"}},
        {"attributeStatus": "Accepted", "component": {"name": "A"}, "variable": {"name": "D"}}]});
    assert_eq!(
        response_status(v201, "GetVariables", &mixed),
        "2 Accepted, 1 UnknownVariable"
    );
    assert_eq!(
        response_status(v201, "GetVariables", &json!({"getVariableResult": []})),
        "no results"
    );
    assert_eq!(
        response_status(v201, "Heartbeat", &json!({"currentTime": NOW})),
        "Received"
    );
    assert_eq!(
        response_status(v16, "GetLocalListVersion", &json!({"listVersion": 4})),
        "version 4"
    );
    assert_eq!(
        response_status(v16, "GetLocalListVersion", &json!({"listVersion": -1})),
        "no list"
    );
    assert_eq!(
        response_status(v201, "GetLocalListVersion", &json!({"versionNumber": 0})),
        "version 0"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn an_accepted_location_always_validates(location in "[a-z][a-z0-9+.-]{0,5}:[ -~]{0,24}") {
        if let Ok(command) = Command::from_api("get-log", &json!({ "location": location })) {
            for version in OcppVersion::ALL {
                let call = command.to_call(version, 1).expect("translates");
                prop_assert_eq!(validator().validate_request(version, call.action, &call.payload), Ok(()));
            }
        }
    }

    #[test]
    fn an_accepted_retrieve_time_always_validates(
        at in "[0-9]{4}-[0-1][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{1,4})?(Z|z|[+-][0-2][0-9]:[0-6][0-9])?"
    ) {
        let body = json!({ "location": "https://fw/x", "retrieve_at": at });
        if let Ok(command) = Command::from_api("update-firmware", &body) {
            for version in OcppVersion::ALL {
                let call = command.to_call(version, 1).expect("translates");
                prop_assert_eq!(validator().validate_request(version, call.action, &call.payload), Ok(()));
            }
        }
    }

    #[test]
    fn any_current_limit_validates(amps in 0.0f64..2000.0, connector in proptest::option::of(0u32..4)) {
        let command = Command::SetMaxCurrent { connector, amps };
        for version in OcppVersion::ALL {
            let call = command.to_call(version, 3).expect("translates");
            prop_assert_eq!(validator().validate_request(version, call.action, &call.payload), Ok(()));
        }
    }
}

fn local_list_samples() -> Vec<Command> {
    use voltgate_ocpp::{LocalListEntry, LocalTokenInfo};
    let accepted = |token: &str, expires_at: Option<&str>, group: Option<&str>| LocalListEntry {
        id_token: token.into(),
        token_type: None,
        info: Some(LocalTokenInfo {
            status: "Accepted".into(),
            expires_at: expires_at.map(Into::into),
            group: group.map(Into::into),
        }),
    };
    vec![
        Command::GetLocalListVersion,
        Command::SendLocalList {
            version: 1,
            full: true,
            entries: vec![],
        },
        Command::SendLocalList {
            version: 2,
            full: true,
            entries: vec![
                accepted("TAG-1", None, None),
                accepted("TAG-2", Some(NOW), Some("FLEET-7")),
            ],
        },
        Command::SendLocalList {
            version: 3,
            full: false,
            entries: vec![
                LocalListEntry {
                    id_token: "TAG-1".into(),
                    token_type: None,
                    info: None,
                },
                accepted("TAG-3", None, None),
                LocalListEntry {
                    token_type: Some("eMAID".into()),
                    ..accepted("DE-ABC-C12345678-X", None, None)
                },
            ],
        },
    ]
}

#[test]
fn local_list_commands_validate_in_both_versions() {
    for command in local_list_samples() {
        for version in OcppVersion::ALL {
            let call = command
                .to_call_at(version, 1, NOW)
                .unwrap_or_else(|e| panic!("{command:?} on {version}: {e}"));
            assert_eq!(
                validator().validate_request(version, call.action, &call.payload),
                Ok(()),
                "{command:?} on {version}: {}",
                call.payload
            );
        }
    }
    let differential = &local_list_samples()[3];
    let (action, v16) = call(differential, OcppVersion::V16);
    assert_eq!(action, "SendLocalList");
    assert_eq!(v16["listVersion"], 3);
    assert_eq!(v16["updateType"], "Differential");
    assert_eq!(v16["localAuthorizationList"][0], json!({"idTag": "TAG-1"}));
    assert_eq!(
        v16["localAuthorizationList"][1]["idTagInfo"]["status"],
        "Accepted"
    );
    let (_, full_v16) = call(&local_list_samples()[2], OcppVersion::V16);
    assert_eq!(
        full_v16["localAuthorizationList"][1]["idTagInfo"],
        json!({"status": "Accepted", "expiryDate": NOW, "parentIdTag": "FLEET-7"})
    );
    let (_, full_v201) = call(&local_list_samples()[2], OcppVersion::V201);
    assert_eq!(full_v201["versionNumber"], 2);
    assert_eq!(
        full_v201["localAuthorizationList"][1]["idTokenInfo"],
        json!({"status": "Accepted", "cacheExpiryDateTime": NOW,
               "groupIdToken": {"idToken": "FLEET-7", "type": "Central"}})
    );
    let (_, empty) = call(&local_list_samples()[1], OcppVersion::V201);
    assert!(empty.get("localAuthorizationList").is_none(), "{empty}");
    assert_eq!(
        local_list_samples()[0].engine_action(),
        "command.get-local-list-version"
    );
    assert_eq!(
        local_list_samples()[0].decided_by(),
        "command.get-configuration"
    );
    assert_eq!(
        local_list_samples()[2].decided_by(),
        "command.change-configuration"
    );
    assert_eq!(
        voltgate_ocpp::LOCAL_LIST_COMMAND_NAMES,
        [
            local_list_samples()[2].name(),
            local_list_samples()[0].name()
        ]
    );
    assert!(
        !COMMAND_NAMES.contains(&"send-local-list"),
        "composed by the gateway, not read from a body"
    );
}

#[test]
fn bad_local_lists_are_refused() {
    use voltgate_ocpp::{LocalListEntry, LocalTokenInfo};
    let entry = |token: &str, status: Option<&str>| LocalListEntry {
        id_token: token.into(),
        token_type: None,
        info: status.map(|status| LocalTokenInfo {
            status: status.into(),
            expires_at: None,
            group: None,
        }),
    };
    let bad = [
        (0, true, vec![entry("A", Some("Accepted"))]),
        (1, true, vec![entry("A", None)]),
        (1, false, vec![entry("A", Some("Maybe"))]),
        (
            1,
            false,
            vec![entry("A", None), entry("A", Some("Accepted"))],
        ),
        (1, false, vec![entry("", Some("Accepted"))]),
    ];
    for (version, full, entries) in bad {
        let command = Command::SendLocalList {
            version,
            full,
            entries,
        };
        assert!(
            matches!(command.check(), Err(CommandError::InvalidBody(_))),
            "{command:?}"
        );
    }
    let long = Command::SendLocalList {
        version: 1,
        full: true,
        entries: vec![entry(&"X".repeat(21), Some("Accepted"))],
    };
    assert!(long.to_call(OcppVersion::V201, 1).is_ok());
    assert!(
        long.to_call(OcppVersion::V16, 1).is_err(),
        "1.6 idTags are at most 20 characters"
    );
}

#[test]
fn local_list_items_carry_the_stored_token_type() {
    use voltgate_ocpp::{local_list_item, LocalListEntry, LocalTokenInfo, ID_TOKEN_TYPES};
    let entry = |token_type: Option<&str>| LocalListEntry {
        id_token: "CARD-1".into(),
        token_type: token_type.map(Into::into),
        info: Some(LocalTokenInfo {
            status: "Accepted".into(),
            expires_at: None,
            group: None,
        }),
    };
    for token_type in ID_TOKEN_TYPES {
        let item = local_list_item(OcppVersion::V201, &entry(Some(token_type))).unwrap();
        assert_eq!(
            item["idToken"],
            json!({"idToken": "CARD-1", "type": token_type})
        );
    }
    let untyped = local_list_item(OcppVersion::V201, &entry(None)).unwrap();
    assert_eq!(untyped["idToken"]["type"], "ISO14443");
    let v16 = local_list_item(OcppVersion::V16, &entry(Some("KeyCode"))).unwrap();
    assert_eq!(
        v16,
        json!({"idTag": "CARD-1", "idTagInfo": {"status": "Accepted"}})
    );
}

#[test]
fn passwords_are_hex_on_1_6_and_plain_on_2_0_1_within_each_rule() {
    let set = |password: &str| Command::SetBasicAuthPassword {
        password: password.into(),
    };
    let twenty = set("0123456789ABCDEFghij");
    assert_eq!(
        call(&twenty, OcppVersion::V16),
        (
            "ChangeConfiguration",
            json!({"key": "AuthorizationKey", "value": "303132333435363738394142434445466768696a"})
        )
    );
    assert_eq!(
        call(&twenty, OcppVersion::V201),
        (
            "SetVariables",
            json!({"setVariableData": [{"component": {"name": "SecurityCtrlr"},
                   "variable": {"name": "BasicAuthPassword"},
                   "attributeValue": "0123456789ABCDEFghij"}]})
        )
    );
    // 30 characters: too long for 1.6, fine for 2.0.1; with a space: fine for 1.6 only.
    let thirty = set(&"a".repeat(30));
    assert!(thirty.to_call(OcppVersion::V16, 1).is_err());
    assert!(thirty.to_call(OcppVersion::V201, 1).is_ok());
    let spaced = set("sixteen bytes ok");
    assert!(spaced.to_call(OcppVersion::V16, 1).is_ok());
    assert!(spaced.to_call(OcppVersion::V201, 1).is_err());
    for short in ["", "fifteen-chars-x"] {
        for version in OcppVersion::ALL {
            assert!(
                set(short).to_call(version, 1).is_err(),
                "{short:?} {version}"
            );
        }
    }
    assert_eq!(twenty.engine_action(), "charger.security");
}

#[test]
fn security_keys_need_the_security_action() {
    let change = |key: &str| Command::ChangeConfiguration {
        key: key.into(),
        value: "x".into(),
    };
    for key in [
        "AuthorizationKey",
        "authorizationkey",
        "SecurityProfile",
        "CpoName",
        "SecurityCtrlr.BasicAuthPassword",
        "SecurityCtrlr.SecurityProfile",
        "securityctrlr.Identity",
        "NetworkConfiguration.OcppCsmsUrl",
        "OCPPCommCtrlr.NetworkConfigurationPriority",
        "OCPPCommCtrlr.NetworkProfileConnectionAttempts",
    ] {
        assert_eq!(change(key).engine_action(), "charger.security", "{key}");
    }
    for key in [
        "HeartbeatInterval",
        "OCPPCommCtrlr.HeartbeatInterval",
        "AuthCtrlr.AuthorizeRemoteStart",
        "Security",
    ] {
        assert_eq!(
            change(key).engine_action(),
            "command.change-configuration",
            "{key}"
        );
    }
}

#[test]
fn an_id_token_has_one_form_whatever_its_case_and_surrounding_space() {
    use voltgate_ocpp::{normalize_id_token, IdTokenError};
    for same in ["SAME01", "same01", "Same01", " SAME01 ", "\tsame01\n"] {
        assert_eq!(
            normalize_id_token(same).as_deref(),
            Ok("SAME01"),
            "{same:?}"
        );
    }
    assert_eq!(normalize_id_token(&"a".repeat(36)), Ok("A".repeat(36)));
    for (text, error) in [
        ("", IdTokenError::Empty),
        ("   ", IdTokenError::Empty),
        ("SAME 01", IdTokenError::InnerWhitespace),
        ("SAME\t01", IdTokenError::InnerWhitespace),
        ("ＳＡＭＥ０１", IdTokenError::NotAscii),
        ("SAMÉ01", IdTokenError::NotAscii),
        ("SAME\u{0}01", IdTokenError::NotAscii),
        (&"A".repeat(37), IdTokenError::TooLong),
    ] {
        assert_eq!(normalize_id_token(text), Err(error), "{text:?}");
    }
}
