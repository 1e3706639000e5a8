//! Which charger-initiated actions the gateway handles per version, and the code that refuses
//! any other CALL a charger sends.
//!
//! Handled: the 1.6 Core-profile requests a charge point sends (plus the firmware and
//! diagnostics notifications that follow our update-firmware and get-log commands); for 2.0.1
//! their equivalents, plus the notifications that follow get-configuration without keys
//! (`NotifyReport`), get-log (`LogStatusNotification`) and update-firmware, and the
//! `NotifyEvent` / `SecurityEventNotification` every 2.0.1 station sends on its own.

use crate::validate::is_known_action;
use crate::{ErrorCode, OcppVersion};

/// 1.6 actions a charge point sends that the gateway answers.
pub const CHARGER_ACTIONS_V16: &[&str] = &[
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
];

/// 2.0.1 actions a charging station sends that the gateway answers.
pub const CHARGER_ACTIONS_V201: &[&str] = &[
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "FirmwareStatusNotification",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "NotifyEvent",
    "NotifyReport",
    "SecurityEventNotification",
    "StatusNotification",
    "TransactionEvent",
];

/// The charger-initiated actions the gateway handles in `version`.
pub fn charger_actions(version: OcppVersion) -> &'static [&'static str] {
    match version {
        OcppVersion::V16 => CHARGER_ACTIONS_V16,
        OcppVersion::V201 => CHARGER_ACTIONS_V201,
    }
}

/// Whether `action` is a charger → central system request the gateway handles in `version`.
pub fn is_charger_initiated(version: OcppVersion, action: &str) -> bool {
    charger_actions(version).contains(&action)
}

/// The code for a CALL whose action we do not handle: `NotImplemented` when the action is
/// unknown in that version, `NotSupported` when it is a known action of that version that a
/// charger may not send us (or one we do not handle).
pub fn unhandled_action_code(version: OcppVersion, action: &str) -> ErrorCode {
    if is_known_action(version, action) {
        ErrorCode::NotSupported
    } else {
        ErrorCode::NotImplemented
    }
}
