//! Operator commands in one version-neutral shape (the body of the gateway's command API) and
//! their translation into the CALL of each OCPP version.
//!
//! Input is checked here against every limit the target schema sets (lengths, formats, enum
//! members), so an accepted command yields a payload the official request schema accepts; the
//! tests check that for every command and version.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::formats::{is_date_time, is_uri};
use crate::password::{authorization_key, check_password};
use crate::OcppVersion;

/// A command an operator sends to a charger, before translation to a version.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RemoteStart {
        connector: Option<u32>,
        id_token: String,
        /// The 2.0.1 `IdTokenEnumType` to start with (the type the token is stored with, so
        /// the charger reports it back as that type); `None` sends
        /// [`DEFAULT_ID_TOKEN_TYPE`]. Not part of the API body: the gateway fills it in.
        token_type: Option<String>,
    },
    RemoteStop {
        transaction_id: String,
    },
    Unlock {
        connector: u32,
    },
    Reset {
        hard: bool,
    },
    UpdateFirmware {
        location: String,
        retrieve_at: Option<String>,
    },
    GetConfiguration {
        keys: Option<Vec<String>>,
    },
    ChangeConfiguration {
        key: String,
        value: String,
    },
    SetMaxCurrent {
        connector: Option<u32>,
        amps: f64,
    },
    ChangeAvailability {
        connector: Option<u32>,
        available: bool,
    },
    TriggerMessage {
        message: String,
        connector: Option<u32>,
    },
    GetLog {
        location: String,
    },
    ClearCache,
    DataTransfer {
        vendor_id: String,
        message_id: Option<String>,
        data: Option<String>,
    },
    /// Installs (`full`) or changes (differential) the charger's local authorisation list.
    /// The gateway builds it (the list is the one the role engine computes), to keep the list
    /// in sync and for the operator command `send-local-list`; [`Command::from_api`] never
    /// builds it.
    SendLocalList {
        version: i64,
        full: bool,
        entries: Vec<LocalListEntry>,
    },
    /// Asks which local list version the charger holds: sent by the gateway's sync and by the
    /// operator command `get-local-list-version` (see [`LOCAL_LIST_COMMAND_NAMES`]).
    GetLocalListVersion,
    /// Sets the charger's Basic-auth password: 1.6 `ChangeConfiguration AuthorizationKey`
    /// (hex-encoded), 2.0.1 `SetVariables SecurityCtrlr.BasicAuthPassword` (as is), each
    /// checked against its version's rule (see [`crate::password`]). Sent by the password
    /// endpoint, so it has no API name in [`COMMAND_NAMES`].
    SetBasicAuthPassword {
        password: String,
    },
}

/// The OCPP 2.0.1 `IdTokenEnumType` values, spelled as on the wire.
pub const ID_TOKEN_TYPES: [&str; 8] = [
    "Central",
    "eMAID",
    "ISO14443",
    "ISO15693",
    "KeyCode",
    "Local",
    "MacAddress",
    "NoAuthorization",
];

/// The `IdTokenEnumType` of a token stored without one, where 2.0.1 needs a type (local
/// lists, remote starts): most tokens are RFID cards.
pub const DEFAULT_ID_TOKEN_TYPE: &str = "ISO14443";

/// Why a text is not an id token: see [`normalize_id_token`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("an id token must not be empty")]
    Empty,
    #[error("an id token is at most {MAX_ID_TOKEN} characters long")]
    TooLong,
    #[error("an id token must not contain whitespace inside it")]
    InnerWhitespace,
    #[error("an id token must be printable ASCII (no accented, full-width or control characters)")]
    NotAscii,
}

/// The one form an id token is stored, looked up and sent to chargers in. OCPP id tokens are
/// case-insensitive identifier strings (1.6 `CiString20Type`, 2.0.1 `identifierString`), so
/// `SAME01`, `same01` and ` SAME01 ` are one card: surrounding whitespace goes and ASCII
/// letters become upper case. Texts that would look like a card but compare differently are
/// refused rather than guessed at: whitespace inside, and anything outside printable ASCII
/// (a full-width `ＳＡＭＥ０１` is not `SAME01`).
pub fn normalize_id_token(text: &str) -> Result<String, IdTokenError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(IdTokenError::Empty);
    }
    if trimmed.chars().any(char::is_whitespace) {
        return Err(IdTokenError::InnerWhitespace);
    }
    if !trimmed.chars().all(|c| c.is_ascii_graphic()) {
        return Err(IdTokenError::NotAscii);
    }
    if trimmed.len() > MAX_ID_TOKEN {
        return Err(IdTokenError::TooLong);
    }
    Ok(trimmed.to_ascii_uppercase())
}

/// Configuration keys that set how a charger authenticates or where and how it connects:
/// changing them needs the `charger.security` action, not `command.change-configuration`.
/// 1.6: `AuthorizationKey` and `SecurityProfile` (Security Whitepaper), the whitepaper's
/// certificate keys (`CpoName`, `AdditionalRootCertificateCheck`,
/// `CertificateSignedMaxChainSize`, `CertificateStoreMaxLength`). 2.0.1: every
/// `SecurityCtrlr` variable, the `NetworkConfiguration` component, and the `OCPPCommCtrlr`
/// variables that pick the network connection profile.
const V16_SECURITY_KEYS: [&str; 6] = [
    "AuthorizationKey",
    "SecurityProfile",
    "CpoName",
    "AdditionalRootCertificateCheck",
    "CertificateSignedMaxChainSize",
    "CertificateStoreMaxLength",
];
const V201_SECURITY_COMPONENTS: [&str; 2] = ["SecurityCtrlr", "NetworkConfiguration"];
const V201_SECURITY_VARIABLES: [(&str, &str); 2] = [
    ("OCPPCommCtrlr", "NetworkConfigurationPriority"),
    ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts"),
];

/// Whether a change-configuration key is one of the security and network settings above.
/// Compared without case (chargers differ in how they treat it), so a differently spelled
/// key cannot slip past the stricter action.
pub fn is_security_key(key: &str) -> bool {
    let key = key.trim();
    if V16_SECURITY_KEYS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
    {
        return true;
    }
    let Some((component, variable)) = key.split_once('.') else {
        return false;
    };
    let component = component.split('[').next().unwrap_or(component).trim();
    let variable = variable.trim();
    V201_SECURITY_COMPONENTS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(component))
        || V201_SECURITY_VARIABLES
            .iter()
            .any(|(c, v)| c.eq_ignore_ascii_case(component) && v.eq_ignore_ascii_case(variable))
}

/// One id token in a [`Command::SendLocalList`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalListEntry {
    pub id_token: String,
    /// The 2.0.1 `IdTokenEnumType` the token is listed with; `None` lists it as `ISO14443`
    /// (RFID cards, what chargers report for most tokens). 1.6 idTags carry no type.
    pub token_type: Option<String>,
    /// What the charger should answer for the token; `None` removes it (differential only).
    pub info: Option<LocalTokenInfo>,
}

/// The answer a charger keeps for a listed id token (1.6 IdTagInfo / 2.0.1 IdTokenInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTokenInfo {
    /// `Accepted`, `Blocked`, `Expired` or `Invalid`.
    pub status: String,
    /// RFC 3339; 1.6 expiryDate, 2.0.1 cacheExpiryDateTime.
    pub expires_at: Option<String>,
    /// 1.6 parentIdTag, 2.0.1 groupIdToken.
    pub group: Option<String>,
}

/// The id-token statuses both versions share.
const TOKEN_STATUSES: [&str; 4] = ["Accepted", "Blocked", "Expired", "Invalid"];

/// Why a command cannot be built or translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    #[error("invalid command body: {0}")]
    InvalidBody(String),
    #[error("{what} does not exist in OCPP {version}")]
    NotInVersion { what: String, version: OcppVersion },
}

/// A CALL ready to be framed: the caller adds the message id.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingCall {
    pub action: &'static str,
    pub payload: Value,
}

/// Every command name, as used in the API's URL.
pub const COMMAND_NAMES: [&str; 13] = [
    "remote-start",
    "remote-stop",
    "unlock",
    "reset",
    "update-firmware",
    "get-configuration",
    "change-configuration",
    "set-max-current",
    "change-availability",
    "trigger-message",
    "get-log",
    "clear-cache",
    "data-transfer",
];

/// Operator commands on a charger's local authorisation list, in the same URL space as
/// [`COMMAND_NAMES`] but composed by the gateway rather than read from the body:
/// `send-local-list` re-sends the whole list the role engine computes for the charger (one or
/// more [`Command::SendLocalList`]), `get-local-list-version` is
/// [`Command::GetLocalListVersion`]. Both take an empty body.
pub const LOCAL_LIST_COMMAND_NAMES: [&str; 2] = ["send-local-list", "get-local-list-version"];

/// Messages a 1.6 TriggerMessage may request.
const TRIGGERS_V16: &[&str] = &[
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
];

/// Messages a 2.0.1 TriggerMessage may request.
const TRIGGERS_V201: &[&str] = &[
    "BootNotification",
    "LogStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "SignChargingStationCertificate",
    "SignV2GCertificate",
    "StatusNotification",
    "TransactionEvent",
    "SignCombinedCertificate",
    "PublishFirmwareStatusNotification",
];

/// Longest operator-supplied strings either version accepts (the 2.0.1 schema limits); the
/// tighter 1.6 limits below are checked on translation to 1.6.
const MAX_ID_TOKEN: usize = 36;
const MAX_TRANSACTION_ID: usize = 36;
const MAX_LOCATION: usize = 512;
const MAX_CONFIG_KEY: usize = 101;
const MAX_CONFIG_VALUE: usize = 1000;
const MAX_VENDOR_ID: usize = 255;
const MAX_DATA_TRANSFER_MESSAGE_ID: usize = 50;
const MAX_COMPONENT_OR_VARIABLE: usize = 50;
/// The longest 1.6 idTag or parentIdTag (`CiString20Type`).
pub const V16_MAX_ID_TAG: usize = 20;
const V16_MAX_CONFIG_KEY: usize = 50;
const V16_MAX_CONFIG_VALUE: usize = 500;
/// A sanity bound on a current limit; no charger comes near it.
const MAX_AMPS: f64 = 1.0e6;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteStartBody {
    connector: Option<u32>,
    id_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteStopBody {
    #[serde(deserialize_with = "transaction_id_text")]
    transaction_id: String,
}

/// A transaction id as `GET /transactions` lists it: an integer (1.6) or a string (2.0.1).
fn transaction_id_text<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Integer(i64),
        Text(String),
    }
    match Id::deserialize(de) {
        Ok(Id::Integer(id)) => Ok(id.to_string()),
        Ok(Id::Text(id)) => Ok(id),
        Err(_) => Err(serde::de::Error::custom(
            "transaction_id must be an integer (1.6) or a string (2.0.1), as GET /transactions lists it",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockBody {
    connector: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    #[serde(rename = "type")]
    kind: ResetKind,
}

/// `soft` lets the charger finish what it is doing (1.6 Soft, 2.0.1 OnIdle); `hard` reboots at
/// once (1.6 Hard, 2.0.1 Immediate).
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ResetKind {
    Soft,
    Hard,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateFirmwareBody {
    location: String,
    retrieve_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetConfigurationBody {
    keys: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeConfigurationBody {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetMaxCurrentBody {
    connector: Option<u32>,
    amps: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeAvailabilityBody {
    connector: Option<u32>,
    available: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerMessageBody {
    message: String,
    connector: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetLogBody {
    location: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataTransferBody {
    vendor_id: String,
    message_id: Option<String>,
    data: Option<String>,
}

/// Reads a command body; `null` stands for `{}`.
fn read_body<T: DeserializeOwned>(body: &Value) -> Result<T, CommandError> {
    let result = match body {
        Value::Null => T::deserialize(&Value::Object(Map::new())),
        other => T::deserialize(other),
    };
    result.map_err(|e| CommandError::InvalidBody(e.to_string()))
}

fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::InvalidBody(message.into())
}

fn check_length(field: &str, value: &str, min: usize, max: usize) -> Result<(), CommandError> {
    let length = value.chars().count();
    if length < min {
        return Err(invalid(format!("{field} must not be empty")));
    }
    if length > max {
        return Err(invalid(format!(
            "{field} is {length} characters long, at most {max} are allowed"
        )));
    }
    Ok(())
}

fn check_location(location: &str) -> Result<(), CommandError> {
    check_length("location", location, 1, MAX_LOCATION)?;
    if is_uri(location) {
        Ok(())
    } else {
        Err(invalid("location must be an absolute URI"))
    }
}

fn check_date_time(field: &str, value: &str) -> Result<(), CommandError> {
    if is_date_time(value) {
        Ok(())
    } else {
        Err(invalid(format!("{field} must be an RFC 3339 date-time")))
    }
}

/// A caller-supplied sequence number as a 32-bit OCPP integer id (identity on 0..2^31).
fn ocpp_id(seq: i64) -> i64 {
    seq.rem_euclid(1 << 31)
}

/// The 2.0.1 component and variable names in a `Component.Variable` key.
fn split_component_variable(key: &str) -> Result<(&str, &str), CommandError> {
    match key.split_once('.') {
        Some((component, variable)) if !component.is_empty() && !variable.is_empty() => {
            check_length("component name", component, 1, MAX_COMPONENT_OR_VARIABLE)?;
            check_length("variable name", variable, 1, MAX_COMPONENT_OR_VARIABLE)?;
            Ok((component, variable))
        }
        _ => Err(invalid(format!(
            "OCPP 2.0.1 configuration keys are Component.Variable, {key:?} is not"
        ))),
    }
}

fn component_variable(key: &str) -> Result<Value, CommandError> {
    let (component, variable) = split_component_variable(key)?;
    Ok(json!({ "component": { "name": component }, "variable": { "name": variable } }))
}

/// Amps rounded to the one decimal the 1.6 schemas allow (`multipleOf: 0.1`).
fn limit_value(amps: f64) -> Value {
    let rounded = (amps * 10.0).round() / 10.0;
    serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
}

impl Command {
    /// Builds a command from its API name and JSON body (field names as in the variants; a
    /// `null` body stands for `{}`).
    pub fn from_api(name: &str, body: &Value) -> Result<Command, CommandError> {
        let command = match name {
            "remote-start" => {
                let b: RemoteStartBody = read_body(body)?;
                Command::RemoteStart {
                    connector: b.connector,
                    id_token: b.id_token,
                    token_type: None,
                }
            }
            "remote-stop" => {
                let b: RemoteStopBody = read_body(body)?;
                Command::RemoteStop {
                    transaction_id: b.transaction_id,
                }
            }
            "unlock" => {
                let b: UnlockBody = read_body(body)?;
                Command::Unlock {
                    connector: b.connector,
                }
            }
            "reset" => {
                let b: ResetBody = read_body(body)?;
                Command::Reset {
                    hard: matches!(b.kind, ResetKind::Hard),
                }
            }
            "update-firmware" => {
                let b: UpdateFirmwareBody = read_body(body)?;
                Command::UpdateFirmware {
                    location: b.location,
                    retrieve_at: b.retrieve_at,
                }
            }
            "get-configuration" => {
                let b: GetConfigurationBody = read_body(body)?;
                Command::GetConfiguration { keys: b.keys }
            }
            "change-configuration" => {
                let b: ChangeConfigurationBody = read_body(body)?;
                Command::ChangeConfiguration {
                    key: b.key,
                    value: b.value,
                }
            }
            "set-max-current" => {
                let b: SetMaxCurrentBody = read_body(body)?;
                Command::SetMaxCurrent {
                    connector: b.connector,
                    amps: b.amps,
                }
            }
            "change-availability" => {
                let b: ChangeAvailabilityBody = read_body(body)?;
                Command::ChangeAvailability {
                    connector: b.connector,
                    available: b.available,
                }
            }
            "trigger-message" => {
                let b: TriggerMessageBody = read_body(body)?;
                Command::TriggerMessage {
                    message: b.message,
                    connector: b.connector,
                }
            }
            "get-log" => {
                let b: GetLogBody = read_body(body)?;
                Command::GetLog {
                    location: b.location,
                }
            }
            "clear-cache" => {
                let EmptyBody {} = read_body(body)?;
                Command::ClearCache
            }
            "data-transfer" => {
                let b: DataTransferBody = read_body(body)?;
                Command::DataTransfer {
                    vendor_id: b.vendor_id,
                    message_id: b.message_id,
                    data: b.data,
                }
            }
            other => return Err(CommandError::UnknownCommand(other.to_owned())),
        };
        command.check()?;
        Ok(command)
    }

    /// The checks that hold whatever the version (the per-version limits are checked on
    /// translation). [`Command::from_api`] and [`Command::to_call`] both run them, so a command
    /// built directly is held to the same rules.
    pub fn check(&self) -> Result<(), CommandError> {
        match self {
            Command::RemoteStart {
                connector,
                id_token,
                token_type,
            } => {
                check_length("id_token", id_token, 1, MAX_ID_TOKEN)?;
                if let Some(kind) = token_type {
                    if !ID_TOKEN_TYPES.contains(&kind.as_str()) {
                        return Err(invalid(format!(
                            "token type must be one of {}",
                            ID_TOKEN_TYPES.join(", ")
                        )));
                    }
                }
                if *connector == Some(0) {
                    return Err(invalid("connector must be 1 or more"));
                }
            }
            Command::RemoteStop { transaction_id } => {
                check_length("transaction_id", transaction_id, 1, MAX_TRANSACTION_ID)?;
            }
            Command::Unlock { connector } => {
                if *connector == 0 {
                    return Err(invalid("connector must be 1 or more"));
                }
            }
            Command::Reset { .. } | Command::ChangeAvailability { .. } | Command::ClearCache => {}
            Command::UpdateFirmware {
                location,
                retrieve_at,
            } => {
                check_location(location)?;
                if let Some(at) = retrieve_at {
                    check_date_time("retrieve_at", at)?;
                }
            }
            Command::GetConfiguration { keys } => {
                for key in keys.iter().flatten() {
                    check_length("key", key, 1, MAX_CONFIG_KEY)?;
                }
            }
            Command::ChangeConfiguration { key, value } => {
                check_length("key", key, 1, MAX_CONFIG_KEY)?;
                check_length("value", value, 0, MAX_CONFIG_VALUE)?;
            }
            Command::SetMaxCurrent { amps, .. } => {
                if !amps.is_finite() || *amps < 0.0 || *amps > MAX_AMPS {
                    return Err(invalid(format!(
                        "amps must be a number from 0 to {MAX_AMPS}"
                    )));
                }
            }
            Command::TriggerMessage { message, .. } => {
                if !TRIGGERS_V16.contains(&message.as_str())
                    && !TRIGGERS_V201.contains(&message.as_str())
                {
                    return Err(invalid(format!(
                        "{message:?} is not a message a charger can be asked to send"
                    )));
                }
            }
            Command::GetLog { location } => check_location(location)?,
            Command::SendLocalList {
                version,
                full,
                entries,
            } => check_local_list(*version, *full, entries)?,
            Command::GetLocalListVersion => {}
            Command::SetBasicAuthPassword { password } => {
                check_password(None, password).map_err(|e| invalid(e.to_string()))?;
            }
            Command::DataTransfer {
                vendor_id,
                message_id,
                ..
            } => {
                check_length("vendor_id", vendor_id, 1, MAX_VENDOR_ID)?;
                if let Some(id) = message_id {
                    check_length("message_id", id, 0, MAX_DATA_TRANSFER_MESSAGE_ID)?;
                }
            }
        }
        Ok(())
    }

    /// The API name (URL segment) of the command.
    pub fn name(&self) -> &'static str {
        match self {
            Command::RemoteStart { .. } => "remote-start",
            Command::RemoteStop { .. } => "remote-stop",
            Command::Unlock { .. } => "unlock",
            Command::Reset { .. } => "reset",
            Command::UpdateFirmware { .. } => "update-firmware",
            Command::GetConfiguration { .. } => "get-configuration",
            Command::ChangeConfiguration { .. } => "change-configuration",
            Command::SetMaxCurrent { .. } => "set-max-current",
            Command::ChangeAvailability { .. } => "change-availability",
            Command::TriggerMessage { .. } => "trigger-message",
            Command::GetLog { .. } => "get-log",
            Command::ClearCache => "clear-cache",
            Command::DataTransfer { .. } => "data-transfer",
            Command::SendLocalList { .. } => "send-local-list",
            Command::GetLocalListVersion => "get-local-list-version",
            Command::SetBasicAuthPassword { .. } => "set-password",
        }
    }

    /// The role engine's action string for this command: `command.<name>`.
    pub fn engine_action(&self) -> &'static str {
        match self {
            Command::RemoteStart { .. } => "command.remote-start",
            Command::RemoteStop { .. } => "command.remote-stop",
            Command::Unlock { .. } => "command.unlock",
            Command::Reset { .. } => "command.reset",
            Command::UpdateFirmware { .. } => "command.update-firmware",
            Command::GetConfiguration { .. } => "command.get-configuration",
            Command::ChangeConfiguration { key, .. } if is_security_key(key) => "charger.security",
            Command::ChangeConfiguration { .. } => "command.change-configuration",
            Command::SetMaxCurrent { .. } => "command.set-max-current",
            Command::ChangeAvailability { .. } => "command.change-availability",
            Command::TriggerMessage { .. } => "command.trigger-message",
            Command::GetLog { .. } => "command.get-log",
            Command::ClearCache => "command.clear-cache",
            Command::DataTransfer { .. } => "command.data-transfer",
            // No role-engine action of their own (see [`Command::decided_by`]); the names
            // label audit records.
            Command::SendLocalList { .. } => "command.send-local-list",
            Command::GetLocalListVersion => "command.get-local-list-version",
            Command::SetBasicAuthPassword { .. } => "charger.security",
        }
    }

    /// The role-engine action that decides whether an operator may send this command: its
    /// own [`Command::engine_action`], except for the local-list messages, which the presets
    /// govern as charger configuration: reading the list version is a configuration read
    /// (`command.get-configuration`), installing a list a configuration change
    /// (`command.change-configuration`).
    pub fn decided_by(&self) -> &'static str {
        match self {
            Command::SendLocalList { .. } => "command.change-configuration",
            Command::GetLocalListVersion => "command.get-configuration",
            other => other.engine_action(),
        }
    }

    /// Translates the command into a CALL of `version`. `seq` is a caller-supplied unique
    /// number used for the ids 2.0.1 needs (remoteStartId, requestId, profile ids); it is
    /// reduced into the 32-bit range OCPP integers have (identity on 0..2^31).
    ///
    /// An update-firmware without `retrieve_at` needs the current time: use
    /// [`Command::to_call_at`]; here it gives `InvalidBody`.
    pub fn to_call(&self, version: OcppVersion, seq: i64) -> Result<OutgoingCall, CommandError> {
        self.translate(version, seq, None)
    }

    /// As [`Command::to_call`], with the current time (RFC 3339) for the fields that default
    /// to "now": update-firmware's retrieve date and the start of an absolute charging profile.
    pub fn to_call_at(
        &self,
        version: OcppVersion,
        seq: i64,
        now: &str,
    ) -> Result<OutgoingCall, CommandError> {
        check_date_time("now", now)?;
        self.translate(version, seq, Some(now))
    }

    fn translate(
        &self,
        version: OcppVersion,
        seq: i64,
        now: Option<&str>,
    ) -> Result<OutgoingCall, CommandError> {
        self.check()?;
        match version {
            OcppVersion::V16 => self.translate_v16(seq, now),
            OcppVersion::V201 => self.translate_v201(seq, now),
        }
    }

    fn translate_v16(&self, seq: i64, now: Option<&str>) -> Result<OutgoingCall, CommandError> {
        let call = |action, payload| Ok(OutgoingCall { action, payload });
        match self {
            Command::RemoteStart {
                connector,
                id_token,
                ..
            } => {
                check_length("id_token", id_token, 1, V16_MAX_ID_TAG)?;
                let mut payload = json!({ "idTag": id_token });
                if let Some(connector) = connector {
                    payload["connectorId"] = json!(connector);
                }
                call("RemoteStartTransaction", payload)
            }
            Command::RemoteStop { transaction_id } => {
                let id: i64 = transaction_id.trim().parse().map_err(|_| {
                    invalid(format!(
                        "OCPP 1.6 transaction ids are integers, {transaction_id:?} is not"
                    ))
                })?;
                call("RemoteStopTransaction", json!({ "transactionId": id }))
            }
            Command::Unlock { connector } => {
                call("UnlockConnector", json!({ "connectorId": connector }))
            }
            Command::Reset { hard } => call(
                "Reset",
                json!({ "type": if *hard { "Hard" } else { "Soft" } }),
            ),
            Command::UpdateFirmware {
                location,
                retrieve_at,
            } => {
                let retrieve = retrieve_at.as_deref().or(now).ok_or_else(|| {
                    invalid("retrieve_at is required unless the current time is supplied")
                })?;
                call(
                    "UpdateFirmware",
                    json!({ "location": location, "retrieveDate": retrieve }),
                )
            }
            Command::GetConfiguration { keys } => {
                let mut payload = json!({});
                if let Some(keys) = keys.as_ref().filter(|k| !k.is_empty()) {
                    for key in keys {
                        check_length("key", key, 1, V16_MAX_CONFIG_KEY)?;
                    }
                    payload["key"] = json!(keys);
                }
                call("GetConfiguration", payload)
            }
            Command::ChangeConfiguration { key, value } => {
                check_length("key", key, 1, V16_MAX_CONFIG_KEY)?;
                check_length("value", value, 0, V16_MAX_CONFIG_VALUE)?;
                call("ChangeConfiguration", json!({ "key": key, "value": value }))
            }
            Command::SetBasicAuthPassword { password } => {
                check_password(Some(OcppVersion::V16), password)
                    .map_err(|e| invalid(e.to_string()))?;
                call(
                    "ChangeConfiguration",
                    json!({ "key": "AuthorizationKey", "value": authorization_key(password) }),
                )
            }
            Command::SetMaxCurrent { connector, amps } => {
                let (connector_id, purpose, kind) = match connector {
                    None => (0, "ChargePointMaxProfile", "Absolute"),
                    Some(c) => (*c, "TxDefaultProfile", "Relative"),
                };
                let mut schedule = json!({
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": limit_value(*amps) }],
                });
                if let (Some(now), "Absolute") = (now, kind) {
                    schedule["startSchedule"] = json!(now);
                }
                call(
                    "SetChargingProfile",
                    json!({
                        "connectorId": connector_id,
                        "csChargingProfiles": {
                            "chargingProfileId": ocpp_id(seq),
                            "stackLevel": 0,
                            "chargingProfilePurpose": purpose,
                            "chargingProfileKind": kind,
                            "chargingSchedule": schedule,
                        },
                    }),
                )
            }
            Command::ChangeAvailability {
                connector,
                available,
            } => call(
                "ChangeAvailability",
                json!({
                    "connectorId": connector.unwrap_or(0),
                    "type": if *available { "Operative" } else { "Inoperative" },
                }),
            ),
            Command::TriggerMessage { message, connector } => {
                if !TRIGGERS_V16.contains(&message.as_str()) {
                    return Err(CommandError::NotInVersion {
                        what: format!("TriggerMessage of {message}"),
                        version: OcppVersion::V16,
                    });
                }
                let mut payload = json!({ "requestedMessage": message });
                if let Some(connector) = connector {
                    payload["connectorId"] = json!(connector);
                }
                call("TriggerMessage", payload)
            }
            Command::GetLog { location } => call("GetDiagnostics", json!({ "location": location })),
            Command::ClearCache => call("ClearCache", json!({})),
            Command::SendLocalList {
                version,
                full,
                entries,
            } => {
                let list = entries
                    .iter()
                    .map(|entry| local_list_item(OcppVersion::V16, entry))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut payload = json!({
                    "listVersion": version,
                    "updateType": if *full { "Full" } else { "Differential" },
                });
                if !list.is_empty() {
                    payload["localAuthorizationList"] = Value::Array(list);
                }
                call("SendLocalList", payload)
            }
            Command::GetLocalListVersion => call("GetLocalListVersion", json!({})),
            Command::DataTransfer {
                vendor_id,
                message_id,
                data,
            } => call(
                "DataTransfer",
                data_transfer_payload(vendor_id, message_id, data),
            ),
        }
    }

    fn translate_v201(&self, seq: i64, now: Option<&str>) -> Result<OutgoingCall, CommandError> {
        let call = |action, payload| Ok(OutgoingCall { action, payload });
        let id = ocpp_id(seq);
        match self {
            Command::RemoteStart {
                connector,
                id_token,
                token_type,
            } => {
                let token_type = token_type.as_deref().unwrap_or(DEFAULT_ID_TOKEN_TYPE);
                let mut payload = json!({
                    "idToken": { "idToken": id_token, "type": token_type },
                    "remoteStartId": id,
                });
                if let Some(connector) = connector {
                    payload["evseId"] = json!(connector);
                }
                call("RequestStartTransaction", payload)
            }
            Command::RemoteStop { transaction_id } => call(
                "RequestStopTransaction",
                json!({ "transactionId": transaction_id }),
            ),
            Command::Unlock { connector } => call(
                "UnlockConnector",
                json!({ "evseId": connector, "connectorId": 1 }),
            ),
            Command::Reset { hard } => call(
                "Reset",
                json!({ "type": if *hard { "Immediate" } else { "OnIdle" } }),
            ),
            Command::UpdateFirmware {
                location,
                retrieve_at,
            } => {
                let retrieve = retrieve_at.as_deref().or(now).ok_or_else(|| {
                    invalid("retrieve_at is required unless the current time is supplied")
                })?;
                call(
                    "UpdateFirmware",
                    json!({
                        "requestId": id,
                        "firmware": { "location": location, "retrieveDateTime": retrieve },
                    }),
                )
            }
            Command::GetConfiguration { keys } => match keys.as_ref().filter(|k| !k.is_empty()) {
                Some(keys) => {
                    let data = keys
                        .iter()
                        .map(|k| component_variable(k))
                        .collect::<Result<Vec<_>, _>>()?;
                    call("GetVariables", json!({ "getVariableData": data }))
                }
                None => call(
                    "GetBaseReport",
                    json!({ "requestId": id, "reportBase": "FullInventory" }),
                ),
            },
            Command::ChangeConfiguration { key, value } => {
                let mut datum = component_variable(key)?;
                datum["attributeValue"] = json!(value);
                call("SetVariables", json!({ "setVariableData": [datum] }))
            }
            Command::SetBasicAuthPassword { password } => {
                check_password(Some(OcppVersion::V201), password)
                    .map_err(|e| invalid(e.to_string()))?;
                call(
                    "SetVariables",
                    json!({ "setVariableData": [{
                        "component": { "name": "SecurityCtrlr" },
                        "variable": { "name": "BasicAuthPassword" },
                        "attributeValue": password,
                    }] }),
                )
            }
            Command::SetMaxCurrent { connector, amps } => {
                let (evse_id, purpose, kind) = match connector {
                    None => (0, "ChargingStationMaxProfile", "Absolute"),
                    Some(c) => (*c, "TxDefaultProfile", "Relative"),
                };
                let mut schedule = json!({
                    "id": id,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": limit_value(*amps) }],
                });
                if let (Some(now), "Absolute") = (now, kind) {
                    schedule["startSchedule"] = json!(now);
                }
                call(
                    "SetChargingProfile",
                    json!({
                        "evseId": evse_id,
                        "chargingProfile": {
                            "id": id,
                            "stackLevel": 0,
                            "chargingProfilePurpose": purpose,
                            "chargingProfileKind": kind,
                            "chargingSchedule": [schedule],
                        },
                    }),
                )
            }
            Command::ChangeAvailability {
                connector,
                available,
            } => {
                let mut payload = json!({
                    "operationalStatus": if *available { "Operative" } else { "Inoperative" },
                });
                if let Some(evse) = connector.filter(|c| *c > 0) {
                    payload["evse"] = json!({ "id": evse });
                }
                call("ChangeAvailability", payload)
            }
            Command::TriggerMessage { message, connector } => {
                if !TRIGGERS_V201.contains(&message.as_str()) {
                    return Err(CommandError::NotInVersion {
                        what: format!("TriggerMessage of {message}"),
                        version: OcppVersion::V201,
                    });
                }
                let evse = connector.filter(|c| *c > 0);
                if message == "StatusNotification" && evse.is_none() {
                    return Err(invalid(
                        "a 2.0.1 TriggerMessage of StatusNotification needs a connector (1 or \
                         more): a station reports status per connector, so the request names \
                         its EVSE (F06.FR.13)",
                    ));
                }
                let mut payload = json!({ "requestedMessage": message });
                if let Some(evse) = evse {
                    payload["evse"] = json!({ "id": evse });
                }
                call("TriggerMessage", payload)
            }
            Command::GetLog { location } => call(
                "GetLog",
                json!({
                    "logType": "DiagnosticsLog",
                    "requestId": id,
                    "log": { "remoteLocation": location },
                }),
            ),
            Command::ClearCache => call("ClearCache", json!({})),
            Command::DataTransfer {
                vendor_id,
                message_id,
                data,
            } => call(
                "DataTransfer",
                data_transfer_payload(vendor_id, message_id, data),
            ),
            Command::SendLocalList {
                version,
                full,
                entries,
            } => {
                let list = entries
                    .iter()
                    .map(|entry| local_list_item(OcppVersion::V201, entry))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut payload = json!({
                    "versionNumber": version,
                    "updateType": if *full { "Full" } else { "Differential" },
                });
                if !list.is_empty() {
                    payload["localAuthorizationList"] = Value::Array(list);
                }
                call("SendLocalList", payload)
            }
            Command::GetLocalListVersion => call("GetLocalListVersion", json!({})),
        }
    }
}

/// The `localAuthorizationList` item a SendLocalList of `version` carries for `entry`. Public
/// so a sender can measure a message's serialized size before building it.
pub fn local_list_item(
    version: OcppVersion,
    entry: &LocalListEntry,
) -> Result<Value, CommandError> {
    match version {
        OcppVersion::V16 => {
            check_length("id_token", &entry.id_token, 1, V16_MAX_ID_TAG)?;
            let mut item = json!({ "idTag": entry.id_token });
            if let Some(info) = &entry.info {
                let mut tag_info = json!({ "status": info.status });
                if let Some(at) = &info.expires_at {
                    tag_info["expiryDate"] = json!(at);
                }
                if let Some(group) = &info.group {
                    check_length("group", group, 1, V16_MAX_ID_TAG)?;
                    tag_info["parentIdTag"] = json!(group);
                }
                item["idTagInfo"] = tag_info;
            }
            Ok(item)
        }
        OcppVersion::V201 => {
            let token_type = entry.token_type.as_deref().unwrap_or(DEFAULT_ID_TOKEN_TYPE);
            let mut item = json!({
                "idToken": { "idToken": entry.id_token, "type": token_type },
            });
            if let Some(info) = &entry.info {
                let mut token_info = json!({ "status": info.status });
                if let Some(at) = &info.expires_at {
                    token_info["cacheExpiryDateTime"] = json!(at);
                }
                if let Some(group) = &info.group {
                    token_info["groupIdToken"] = json!({ "idToken": group, "type": "Central" });
                }
                item["idTokenInfo"] = token_info;
            }
            Ok(item)
        }
    }
}

/// A list version is a positive 32-bit integer; a full list gives every token its answer, a
/// differential one may remove tokens; a token (text and type) appears once.
fn check_local_list(
    version: i64,
    full: bool,
    entries: &[LocalListEntry],
) -> Result<(), CommandError> {
    if !(1..=i64::from(i32::MAX)).contains(&version) {
        return Err(invalid("a local list version must be from 1 to 2147483647"));
    }
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    for entry in entries {
        check_length("id_token", &entry.id_token, 1, MAX_ID_TOKEN)?;
        // A 2.0.1 list is keyed by text and type, so a type change removes the old pair and
        // adds the new one in the same differential.
        let token_type = entry.token_type.as_deref().unwrap_or(DEFAULT_ID_TOKEN_TYPE);
        if !seen.insert((entry.id_token.as_str(), token_type)) {
            return Err(invalid(format!(
                "id token {:?} appears twice in one local list",
                entry.id_token
            )));
        }
        match &entry.info {
            None if full => {
                return Err(invalid(
                    "a full local list must give every id token its status",
                ))
            }
            None => {}
            Some(info) => {
                if !TOKEN_STATUSES.contains(&info.status.as_str()) {
                    return Err(invalid(format!(
                        "{:?} is not an id token status",
                        info.status
                    )));
                }
                if let Some(at) = &info.expires_at {
                    check_date_time("expires_at", at)?;
                }
                if let Some(group) = &info.group {
                    check_length("group", group, 1, MAX_ID_TOKEN)?;
                }
            }
        }
    }
    Ok(())
}

fn data_transfer_payload(
    vendor_id: &str,
    message_id: &Option<String>,
    data: &Option<String>,
) -> Value {
    let mut payload = json!({ "vendorId": vendor_id });
    if let Some(message_id) = message_id {
        payload["messageId"] = json!(message_id);
    }
    if let Some(data) = data {
        payload["data"] = json!(data);
    }
    payload
}

/// The `status` of a CALLRESULT answering `action`, or a summary for the responses that carry
/// none (1.6 GetConfiguration and GetDiagnostics, 2.0.1 GetVariables and SetVariables);
/// `"Received"` for anything else.
pub fn response_status(version: OcppVersion, action: &str, payload: &Value) -> String {
    if let Some(status) = payload.get("status").and_then(Value::as_str) {
        return status.to_owned();
    }
    let count = |field: &str| {
        payload
            .get(field)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    };
    match (version, action) {
        (OcppVersion::V16, "GetConfiguration") => {
            format!(
                "{} keys, {} unknown",
                count("configurationKey"),
                count("unknownKey")
            )
        }
        (OcppVersion::V16, "GetDiagnostics") => {
            match payload.get("fileName").and_then(Value::as_str) {
                Some(file) => format!("file {file}"),
                None => "no file".to_owned(),
            }
        }
        (OcppVersion::V16, "GetLocalListVersion") => list_version(payload.get("listVersion")),
        (OcppVersion::V201, "GetLocalListVersion") => list_version(payload.get("versionNumber")),
        (OcppVersion::V201, "GetVariables") => summarize_statuses(payload.get("getVariableResult")),
        (OcppVersion::V201, "SetVariables") => summarize_statuses(payload.get("setVariableResult")),
        _ => "Received".to_owned(),
    }
}

/// A GetLocalListVersion answer: `version N`, or `no list` for 1.6's -1 (no local list).
fn list_version(version: Option<&Value>) -> String {
    match version.and_then(Value::as_i64) {
        Some(-1) => "no list".to_owned(),
        Some(version) => format!("version {version}"),
        None => "Received".to_owned(),
    }
}

/// `"Accepted"` when every result has that status, else counts in order of first appearance,
/// e.g. `"2 Accepted, 1 UnknownVariable"`.
fn summarize_statuses(results: Option<&Value>) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for result in results.and_then(Value::as_array).into_iter().flatten() {
        let status = result
            .get("attributeStatus")
            .and_then(Value::as_str)
            .unwrap_or("Unknown");
        match counts.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((status, 1)),
        }
    }
    match counts.as_slice() {
        [] => "no results".to_owned(),
        [(status, _)] => (*status).to_owned(),
        _ => counts
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}
