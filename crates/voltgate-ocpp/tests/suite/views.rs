//! Typed views of charger requests, read from payloads that pass schema validation.

use serde_json::{json, Value};
use voltgate_ocpp::views::{
    BootInfo, IdToken, MeterValue, MeterValuesReport, Readings, SampledValue, SecurityEventInfo,
    StartTransactionInfo, StatusReport, StopTransactionInfo, TransactionEventInfo,
};
use voltgate_ocpp::{ChargerRequest, ErrorCode, OcppVersion};

use crate::validator;

fn view(version: OcppVersion, action: &str, payload: Value) -> ChargerRequest {
    validator()
        .validate_request(version, action, &payload)
        .unwrap_or_else(|e| panic!("{version} {action} sample is invalid: {e:?}"));
    ChargerRequest::from_call(version, action, &payload).unwrap_or_else(|e| panic!("{action}: {e}"))
}

#[test]
fn boot_notification_both_versions() {
    let v16 = view(
        OcppVersion::V16,
        "BootNotification",
        json!({"chargePointVendor": "Acme", "chargePointModel": "AC22", "chargeBoxSerialNumber": "BOX-1", "firmwareVersion": "1.2.3"}),
    );
    assert_eq!(
        v16,
        ChargerRequest::BootNotification(BootInfo {
            vendor: "Acme".into(),
            model: "AC22".into(),
            serial: Some("BOX-1".into()),
            firmware: Some("1.2.3".into()),
            reason: None,
        })
    );
    let v201 = view(
        OcppVersion::V201,
        "BootNotification",
        json!({"reason": "PowerUp", "chargingStation": {"vendorName": "Acme", "model": "DC150", "serialNumber": "S-9"}}),
    );
    assert_eq!(
        v201,
        ChargerRequest::BootNotification(BootInfo {
            vendor: "Acme".into(),
            model: "DC150".into(),
            serial: Some("S-9".into()),
            firmware: None,
            reason: Some("PowerUp".into()),
        })
    );
}

#[test]
fn status_notification_both_versions() {
    let v16 = view(
        OcppVersion::V16,
        "StatusNotification",
        json!({"connectorId": 2, "errorCode": "NoError", "status": "SuspendedEV"}),
    );
    assert_eq!(
        v16,
        ChargerRequest::StatusNotification(StatusReport {
            evse: None,
            connector: 2,
            status: "SuspendedEV".into(),
            error_code: Some("NoError".into()),
            timestamp: None,
        })
    );
    let v201 = view(
        OcppVersion::V201,
        "StatusNotification",
        json!({"timestamp": "2024-05-01T12:00:00Z", "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1.0}),
    );
    assert_eq!(
        v201,
        ChargerRequest::StatusNotification(StatusReport {
            evse: Some(1),
            connector: 1,
            status: "Occupied".into(),
            error_code: None,
            timestamp: Some("2024-05-01T12:00:00Z".into()),
        })
    );
}

#[test]
fn id_tokens_from_authorize_and_transactions() {
    let v16 = view(OcppVersion::V16, "Authorize", json!({"idTag": "TAG-1"}));
    assert_eq!(
        v16.id_token(),
        Some(IdToken {
            id: "TAG-1".into(),
            kind: None
        })
    );
    let v201 = view(
        OcppVersion::V201,
        "Authorize",
        json!({"idToken": {"idToken": "AA11", "type": "ISO14443"}}),
    );
    assert_eq!(
        v201,
        ChargerRequest::Authorize(IdToken {
            id: "AA11".into(),
            kind: Some("ISO14443".into())
        })
    );
    let heartbeat = view(OcppVersion::V201, "Heartbeat", json!({}));
    assert_eq!(heartbeat, ChargerRequest::Heartbeat);
    assert_eq!(heartbeat.id_token(), None);
}

#[test]
fn start_and_stop_transaction() {
    let start = view(
        OcppVersion::V16,
        "StartTransaction",
        json!({"connectorId": 1, "idTag": "TAG", "meterStart": 2_500_000_000_i64, "timestamp": "2024-05-01T12:00:00Z", "reservationId": 4}),
    );
    assert_eq!(
        start,
        ChargerRequest::StartTransaction(StartTransactionInfo {
            connector: 1,
            id_tag: "TAG".into(),
            meter_start: 2_500_000_000,
            timestamp: "2024-05-01T12:00:00Z".into(),
            reservation_id: Some(4),
        })
    );
    assert_eq!(
        start.id_token(),
        Some(IdToken {
            id: "TAG".into(),
            kind: None
        })
    );
    let stop = view(
        OcppVersion::V16,
        "StopTransaction",
        json!({"transactionId": 77, "meterStop": 3_000_000_000_i64, "timestamp": "2024-05-01T13:00:00Z", "reason": "EVDisconnected",
               "transactionData": [{"timestamp": "2024-05-01T13:00:00Z", "sampledValue": [{"value": "3000000000"}]}]}),
    );
    assert_eq!(
        stop,
        ChargerRequest::StopTransaction(StopTransactionInfo {
            transaction_id: 77,
            meter_stop: 3_000_000_000,
            timestamp: "2024-05-01T13:00:00Z".into(),
            reason: Some("EVDisconnected".into()),
            id_tag: None,
            meter_values: Some(Readings {
                values: vec![MeterValue {
                    timestamp: "2024-05-01T13:00:00Z".into(),
                    samples: vec![SampledValue {
                        raw: "3000000000".into(),
                        value: Some(3.0e9),
                        measurand: None,
                        unit: None,
                        multiplier: 0,
                        phase: None,
                        context: None,
                        location: None,
                    }],
                }],
                as_sent: json!([{"timestamp": "2024-05-01T13:00:00Z", "sampledValue": [{"value": "3000000000"}]}]),
            }),
        })
    );
    assert_eq!(stop.id_token(), None);
}

#[test]
fn meter_values_both_versions() {
    let v16 = view(
        OcppVersion::V16,
        "MeterValues",
        json!({"connectorId": 1, "transactionId": 5, "meterValue": [{"timestamp": "2024-05-01T12:00:00Z", "sampledValue": [
            {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
            {"value": "c2lnbmVk", "format": "SignedData"}]}]}),
    );
    let ChargerRequest::MeterValues(MeterValuesReport {
        connector,
        transaction_id,
        meter_values,
    }) = v16
    else {
        panic!("not MeterValues: {v16:?}");
    };
    assert_eq!((connector, transaction_id), (1, Some(5)));
    assert_eq!(
        meter_values.as_sent[0]["sampledValue"][1]["format"],
        "SignedData"
    );
    assert_eq!(meter_values.energy_register_wh(), Some(1_234_500.0));
    let samples = &meter_values.values[0].samples;
    assert_eq!(samples[0].value, Some(1234.5));
    assert_eq!(samples[0].unit.as_deref(), Some("kWh"));
    assert_eq!(
        (samples[1].value, samples[1].raw.as_str()),
        (None, "c2lnbmVk")
    );

    let v201 = view(
        OcppVersion::V201,
        "MeterValues",
        json!({"evseId": 2, "meterValue": [{"timestamp": "2024-05-01T12:00:00Z", "sampledValue": [
            {"value": 12.5, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "kWh", "multiplier": 3}},
            {"value": 1e30, "phase": "L1"}]}]}),
    );
    let ChargerRequest::MeterValues(report) = v201 else {
        panic!("not MeterValues: {v201:?}")
    };
    assert_eq!((report.connector, report.transaction_id), (2, None));
    assert_eq!(report.meter_values.energy_register_wh(), Some(12.5e6));
    let samples = &report.meter_values.values[0].samples;
    assert_eq!((samples[0].value, samples[0].multiplier), (Some(12.5), 3));
    assert_eq!(samples[1].value, Some(1e30));
    assert_eq!(samples[1].phase.as_deref(), Some("L1"));
}

#[test]
fn transaction_event() {
    let event = view(
        OcppVersion::V201,
        "TransactionEvent",
        json!({"eventType": "Ended", "timestamp": "2024-05-01T12:00:00Z", "triggerReason": "EVCommunicationLost", "seqNo": 12,
               "offline": true,
               "transactionInfo": {"transactionId": "tx-9", "stoppedReason": "EVDisconnected", "remoteStartId": 3},
               "idToken": {"idToken": "AA11", "type": "ISO14443"}, "evse": {"id": 1, "connectorId": 2},
               "meterValue": [{"timestamp": "2024-05-01T12:00:00Z", "sampledValue": [{"value": 42}]}]}),
    );
    let ChargerRequest::TransactionEvent(info) = &event else {
        panic!("not a TransactionEvent: {event:?}")
    };
    assert_eq!(
        (
            info.event_type.as_str(),
            info.seq_no,
            info.transaction_id.as_str(),
            info.evse,
            info.connector
        ),
        ("Ended", 12, "tx-9", Some(1), Some(2))
    );
    assert_eq!(
        (
            info.stopped_reason.as_deref(),
            info.remote_start_id,
            info.offline
        ),
        (Some("EVDisconnected"), Some(3), true)
    );
    let readings = info.meter_values.as_ref().expect("meterValue was sent");
    assert_eq!(readings.values[0].samples[0].value, Some(42.0));
    assert_eq!(readings.energy_register_wh(), Some(42.0));
    assert_eq!(
        event.id_token(),
        Some(IdToken {
            id: "AA11".into(),
            kind: Some("ISO14443".into())
        })
    );

    let minimal = view(
        OcppVersion::V201,
        "TransactionEvent",
        json!({"eventType": "Updated", "timestamp": "2024-05-01T12:00:00Z", "triggerReason": "MeterValuePeriodic", "seqNo": 1,
               "transactionInfo": {"transactionId": "tx-9"}}),
    );
    assert_eq!(
        minimal,
        ChargerRequest::TransactionEvent(TransactionEventInfo {
            event_type: "Updated".into(),
            timestamp: "2024-05-01T12:00:00Z".into(),
            trigger_reason: "MeterValuePeriodic".into(),
            seq_no: 1,
            transaction_id: "tx-9".into(),
            charging_state: None,
            stopped_reason: None,
            remote_start_id: None,
            offline: false,
            evse: None,
            connector: None,
            id_token: None,
            meter_values: None,
        })
    );
}

#[test]
fn other_actions_pass_through_and_out_of_range_values_are_refused() {
    let other = view(
        OcppVersion::V16,
        "DataTransfer",
        json!({"vendorId": "acme"}),
    );
    assert_eq!(
        other,
        ChargerRequest::Other {
            action: "DataTransfer".into()
        }
    );
    let huge =
        json!({"connectorId": 5_000_000_000_i64, "errorCode": "NoError", "status": "Available"});
    assert_eq!(
        validator().validate_request(OcppVersion::V16, "StatusNotification", &huge),
        Ok(())
    );
    let error = ChargerRequest::from_call(OcppVersion::V16, "StatusNotification", &huge)
        .expect_err("5e9 does not fit a connector id");
    assert_eq!(error.code, ErrorCode::PropertyConstraintViolation);
    assert!(
        error.description.starts_with("StatusNotification: "),
        "{}",
        error.description
    );
}

#[test]
fn the_energy_register_is_the_first_whole_meter_reading_of_that_measurand() {
    let readings = |samples: Value| {
        let report = view(
            OcppVersion::V16,
            "MeterValues",
            json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-05-01T12:00:00Z", "sampledValue": samples}]}),
        );
        let ChargerRequest::MeterValues(report) = report else {
            panic!("not MeterValues: {report:?}")
        };
        report.meter_values.energy_register_wh()
    };
    assert_eq!(
        readings(
            json!([{"value": "7", "phase": "L1"}, {"value": "9", "measurand": "Power.Active.Import"}, {"value": " 11 "}])
        ),
        Some(11.0),
        "phases and other measurands are skipped; the default measurand is the register"
    );
    assert_eq!(
        readings(
            json!([{"value": "2.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"}])
        ),
        Some(2500.0)
    );
    assert_eq!(
        readings(json!([{"value": "c2lnbmVk", "format": "SignedData"}, {"value": "5"}])),
        None,
        "the first register reading decides, even when it cannot be read"
    );
    assert_eq!(
        readings(json!([{"value": "3", "measurand": "Voltage"}])),
        None
    );
}

#[test]
fn status_notifications_and_security_events() {
    for (version, action) in [
        (OcppVersion::V16, "FirmwareStatusNotification"),
        (OcppVersion::V201, "FirmwareStatusNotification"),
    ] {
        assert_eq!(
            view(version, action, json!({"status": "Installed"})),
            ChargerRequest::FirmwareStatusNotification {
                status: "Installed".into()
            }
        );
    }
    for (version, action) in [
        (OcppVersion::V16, "DiagnosticsStatusNotification"),
        (OcppVersion::V201, "LogStatusNotification"),
    ] {
        assert_eq!(
            view(version, action, json!({"status": "Uploaded"})),
            ChargerRequest::LogStatusNotification {
                status: "Uploaded".into()
            }
        );
    }
    assert_eq!(
        view(
            OcppVersion::V201,
            "SecurityEventNotification",
            json!({"type": "FirmwareUpdated", "timestamp": "2024-05-01T12:00:00Z", "techInfo": "v2"})
        ),
        ChargerRequest::SecurityEventNotification(SecurityEventInfo {
            kind: "FirmwareUpdated".into(),
            timestamp: "2024-05-01T12:00:00Z".into(),
        })
    );
}

#[test]
fn whole_numbers_written_with_a_fraction_are_read_in_both_versions() {
    let status = ChargerRequest::from_call(
        OcppVersion::V16,
        "StatusNotification",
        &json!({"connectorId": 2.0, "errorCode": "NoError", "status": "Available"}),
    )
    .expect("2.0 is the whole number 2");
    let ChargerRequest::StatusNotification(report) = status else {
        panic!("not a StatusNotification: {status:?}")
    };
    assert_eq!(report.connector, 2);
    let half = ChargerRequest::from_call(
        OcppVersion::V16,
        "StatusNotification",
        &json!({"connectorId": 2.5, "errorCode": "NoError", "status": "Available"}),
    );
    assert!(half.is_err(), "{half:?}");
}
