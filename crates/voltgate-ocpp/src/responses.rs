//! Builders for the CALLRESULT payloads the gateway answers chargers with. Times are passed in
//! as RFC 3339 text: this crate has no clock.

use serde_json::{json, Map, Value};

use crate::{OcppVersion, V16_MAX_ID_TAG};

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

/// What a charger is told about an id token it presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdTokenInfo<'a> {
    pub status: AuthorizationStatus,
    /// Until when (RFC 3339) the charger may keep an accepted token in its cache: 1.6
    /// `expiryDate`, 2.0.1 `cacheExpiryDateTime`. Left out of an answer that is not Accepted.
    pub expires_at: Option<&'a str>,
    /// The token's group: 1.6 `parentIdTag` (left out beyond [`V16_MAX_ID_TAG`] characters),
    /// 2.0.1 `groupIdToken` (of type `Central`).
    pub group: Option<&'a str>,
}

impl IdTokenInfo<'_> {
    /// Just a status: no expiry, no group.
    pub fn status(status: AuthorizationStatus) -> IdTokenInfo<'static> {
        IdTokenInfo {
            status,
            expires_at: None,
            group: None,
        }
    }

    fn cache_expiry(&self) -> Option<&str> {
        self.expires_at
            .filter(|_| self.status == AuthorizationStatus::Accepted)
    }

    /// The 1.6 `IdTagInfo`.
    pub fn v16(&self) -> Value {
        let mut info = Map::new();
        info.insert("status".into(), json!(self.status.as_str()));
        if let Some(at) = self.cache_expiry() {
            info.insert("expiryDate".into(), json!(at));
        }
        if let Some(group) = self
            .group
            .filter(|group| group.chars().count() <= V16_MAX_ID_TAG)
        {
            info.insert("parentIdTag".into(), json!(group));
        }
        Value::Object(info)
    }

    /// The 2.0.1 `IdTokenInfoType`.
    pub fn v201(&self) -> Value {
        let mut info = Map::new();
        info.insert("status".into(), json!(self.status.as_str()));
        if let Some(at) = self.cache_expiry() {
            info.insert("cacheExpiryDateTime".into(), json!(at));
        }
        if let Some(group) = self.group {
            info.insert(
                "groupIdToken".into(),
                json!({ "idToken": group, "type": "Central" }),
            );
        }
        Value::Object(info)
    }
}

/// Authorize answer: 1.6 `idTagInfo`, 2.0.1 `idTokenInfo`.
pub fn authorize(version: OcppVersion, info: &IdTokenInfo<'_>) -> Value {
    match version {
        OcppVersion::V16 => json!({ "idTagInfo": info.v16() }),
        OcppVersion::V201 => json!({ "idTokenInfo": info.v201() }),
    }
}

/// 1.6 StartTransaction answer.
pub fn start_transaction(transaction_id: i64, info: &IdTokenInfo<'_>) -> Value {
    json!({ "transactionId": transaction_id, "idTagInfo": info.v16() })
}

/// 1.6 StopTransaction answer; `idTagInfo` only when the request carried an `idTag`.
pub fn stop_transaction(info: Option<&IdTokenInfo<'_>>) -> Value {
    info.map_or_else(empty, |info| authorize(OcppVersion::V16, info))
}

/// 2.0.1 TransactionEvent answer; `idTokenInfo` only when the request carried an `idToken`.
pub fn transaction_event(info: Option<&IdTokenInfo<'_>>) -> Value {
    info.map_or_else(empty, |info| authorize(OcppVersion::V201, info))
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
