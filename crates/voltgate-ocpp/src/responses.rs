//! Builders for the CALLRESULT payloads the gateway answers chargers with. Times are passed in
//! as RFC 3339 text: this crate has no clock.

use serde_json::{json, Map, Value};

use crate::OcppVersion;

/// The registration status of a BootNotification answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationStatus {
    Accepted,
    Pending,
    Rejected,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Accepted => "Accepted",
            RegistrationStatus::Pending => "Pending",
            RegistrationStatus::Rejected => "Rejected",
        }
    }
}

/// The authorisation verdict for an id tag / id token (members both versions share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthorizationStatus {
    Accepted,
    Blocked,
    Expired,
    Invalid,
}

impl AuthorizationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationStatus::Accepted => "Accepted",
            AuthorizationStatus::Blocked => "Blocked",
            AuthorizationStatus::Expired => "Expired",
            AuthorizationStatus::Invalid => "Invalid",
        }
    }
}

/// The answer to a charger's DataTransfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataTransferStatus {
    Accepted,
    Rejected,
    UnknownMessageId,
    UnknownVendorId,
}

impl DataTransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DataTransferStatus::Accepted => "Accepted",
            DataTransferStatus::Rejected => "Rejected",
            DataTransferStatus::UnknownMessageId => "UnknownMessageId",
            DataTransferStatus::UnknownVendorId => "UnknownVendorId",
        }
    }
}

/// Charger-initiated actions whose answer is the empty object `{}`.
const EMPTY_ANSWERS_V16: &[&str] = &[
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "MeterValues",
    "StatusNotification",
];
const EMPTY_ANSWERS_V201: &[&str] = &[
    "FirmwareStatusNotification",
    "LogStatusNotification",
    "MeterValues",
    "NotifyEvent",
    "NotifyReport",
    "SecurityEventNotification",
    "StatusNotification",
];

/// BootNotification answer (the same shape in both versions); `interval_secs` is the heartbeat
/// interval (or, when not accepted, the wait before the next boot attempt).
pub fn boot_notification(status: RegistrationStatus, now: &str, interval_secs: u32) -> Value {
    json!({ "status": status.as_str(), "currentTime": now, "interval": interval_secs })
}

/// BootNotification answer with status `Accepted`.
pub fn boot_notification_accepted(now: &str, interval_secs: u32) -> Value {
    boot_notification(RegistrationStatus::Accepted, now, interval_secs)
}

/// Heartbeat answer (the same in both versions).
pub fn heartbeat(now: &str) -> Value {
    json!({ "currentTime": now })
}

fn id_info(version: OcppVersion, status: AuthorizationStatus) -> (&'static str, Value) {
    let key = match version {
        OcppVersion::V16 => "idTagInfo",
        OcppVersion::V201 => "idTokenInfo",
    };
    (key, json!({ "status": status.as_str() }))
}

/// Authorize answer: 1.6 `idTagInfo`, 2.0.1 `idTokenInfo`.
pub fn authorize(version: OcppVersion, status: AuthorizationStatus) -> Value {
    let (key, info) = id_info(version, status);
    let mut payload = Map::new();
    payload.insert(key.to_owned(), info);
    Value::Object(payload)
}

/// 1.6 StartTransaction answer. OCPP transaction ids are 32-bit integers.
pub fn start_transaction(transaction_id: i32, status: AuthorizationStatus) -> Value {
    json!({ "transactionId": transaction_id, "idTagInfo": { "status": status.as_str() } })
}

/// 1.6 StopTransaction answer; `idTagInfo` only when the request carried an `idTag`.
pub fn stop_transaction(status: Option<AuthorizationStatus>) -> Value {
    match status {
        Some(status) => authorize(OcppVersion::V16, status),
        None => empty(),
    }
}

/// 2.0.1 TransactionEvent answer; `idTokenInfo` only when the request carried an `idToken`.
pub fn transaction_event(status: Option<AuthorizationStatus>) -> Value {
    match status {
        Some(status) => authorize(OcppVersion::V201, status),
        None => empty(),
    }
}

/// DataTransfer answer (the same in both versions).
pub fn data_transfer(status: DataTransferStatus) -> Value {
    json!({ "status": status.as_str() })
}

/// The empty answer `{}`.
pub fn empty() -> Value {
    Value::Object(Map::new())
}

/// `{}` when that is the whole answer to `action` in `version` (status, meter and other
/// notifications), `None` when the answer carries data.
pub fn empty_answer(version: OcppVersion, action: &str) -> Option<Value> {
    let actions = match version {
        OcppVersion::V16 => EMPTY_ANSWERS_V16,
        OcppVersion::V201 => EMPTY_ANSWERS_V201,
    };
    actions.contains(&action).then(empty)
}
