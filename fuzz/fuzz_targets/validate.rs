//! Validates arbitrary JSON as the payload of a few actions in both versions, strictly and
//! through the tolerance layer. Neither may panic; a payload that passes (or that tolerance
//! accepts, once normalised) must read into its typed view without panicking; tolerance must
//! return a strictly valid payload unchanged, and name a deviation for every payload it lets
//! through that strict validation refused.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use voltgate_ocpp::{ChargerRequest, Direction, OcppVersion, Tolerance, Validator};

const ACTIONS: &[&str] = &[
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "MeterValues",
    "StartTransaction",
    "StopTransaction",
    "TransactionEvent",
    "Authorize",
    "DataTransfer",
    "FirmwareStatusNotification",
    "DiagnosticsStatusNotification",
    "LogStatusNotification",
    "SecurityEventNotification",
];

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| Validator::new().expect("embedded schemas compile"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for version in OcppVersion::ALL {
        for action in ACTIONS {
            let strict = validator().validate_request(version, action, &payload);
            if strict.is_ok() {
                let _ = ChargerRequest::from_call(version, action, &payload);
            }
            tolerated(
                version,
                Direction::Request,
                action,
                &payload,
                strict.is_ok(),
            );
            let strict = validator().validate_response(version, action, &payload);
            tolerated(
                version,
                Direction::Response,
                action,
                &payload,
                strict.is_ok(),
            );
        }
    }
});

fn tolerated(
    version: OcppVersion,
    direction: Direction,
    action: &str,
    payload: &Value,
    strict_ok: bool,
) {
    match validator().check(
        version,
        direction,
        action,
        payload.clone(),
        Tolerance::Lenient,
    ) {
        Ok(accepted) if strict_ok => {
            assert_eq!(
                &accepted.payload, payload,
                "tolerance changed a valid payload"
            );
            assert!(
                accepted.deviations.is_empty(),
                "deviations in a valid payload"
            );
        }
        Ok(accepted) => {
            assert!(
                !accepted.deviations.is_empty(),
                "let through without a deviation"
            );
            if direction == Direction::Request {
                let _ = ChargerRequest::from_call(version, action, &accepted.payload);
            }
        }
        Err(_) => assert!(!strict_ok, "tolerance refused a valid payload"),
    }
}
