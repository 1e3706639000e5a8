//! Validates arbitrary JSON as the payload of a few actions in both versions. Validation must
//! never panic, and a payload that passes must read into its typed view without panicking.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use voltgate_ocpp::{ChargerRequest, OcppVersion, Validator};

const ACTIONS: &[&str] = &[
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "MeterValues",
    "StartTransaction",
    "StopTransaction",
    "TransactionEvent",
    "Authorize",
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
            if validator()
                .validate_request(version, action, &payload)
                .is_ok()
            {
                let _ = ChargerRequest::from_call(version, action, &payload);
            }
            let _ = validator().validate_response(version, action, &payload);
        }
    }
});
