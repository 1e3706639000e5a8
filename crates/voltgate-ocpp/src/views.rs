//! Typed views of the charger-initiated requests the gateway acts on, read from a payload that
//! has already passed schema validation.
//!
//! These are small structs of our own rather than `rust-ocpp` types: `rust-ocpp` 3.x reads
//! meter readings into 32-bit integers and sampled values into `rust_decimal::Decimal`, so it
//! rejects payloads the official schemas accept (a lifetime `meterStop` above 2^31 Wh, a
//! sampled value beyond 28 significant digits), and it would tie the gateway to `chrono`.
//! Enumerated values (statuses, reasons, measurands) are kept as the wire strings, timestamps as
//! the RFC 3339 text the charger sent.

use serde::Deserialize;
use serde_json::Value;

use crate::{ErrorCode, OcppVersion, PayloadError};

/// A charger-initiated request, read into the shape the gateway needs.
#[derive(Debug, Clone, PartialEq)]
pub enum ChargerRequest {
    BootNotification(BootInfo),
    Heartbeat,
    StatusNotification(StatusReport),
    Authorize(IdToken),
    /// 1.6 only.
    StartTransaction(StartTransactionInfo),
    /// 1.6 only.
    StopTransaction(StopTransactionInfo),
    MeterValues(MeterValuesReport),
    /// 2.0.1 only.
    TransactionEvent(TransactionEventInfo),
    /// The status of a firmware update.
    FirmwareStatusNotification {
        status: String,
    },
    /// The status of a log upload: 1.6 DiagnosticsStatusNotification, 2.0.1
    /// LogStatusNotification.
    LogStatusNotification {
        status: String,
    },
    /// 2.0.1 only.
    SecurityEventNotification(SecurityEventInfo),
    /// Any other action; the gateway answers it without looking inside.
    Other {
        action: String,
    },
}

/// What a charger says about itself when it boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootInfo {
    pub vendor: String,
    pub model: String,
    /// 1.6 `chargePointSerialNumber` (else the deprecated `chargeBoxSerialNumber`), 2.0.1
    /// `chargingStation.serialNumber`.
    pub serial: Option<String>,
    pub firmware: Option<String>,
    /// 2.0.1 boot reason (`PowerUp`, `Triggered`, ...); 1.6 has none.
    pub reason: Option<String>,
}

/// The state of one connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// 2.0.1 EVSE id; 1.6 has no EVSE level.
    pub evse: Option<u32>,
    /// 1.6 `connectorId` (0 = the whole charge point); 2.0.1 connector id within the EVSE.
    pub connector: u32,
    /// 1.6 `ChargePointStatus` or 2.0.1 `ConnectorStatusEnumType`, as sent.
    pub status: String,
    /// 1.6 `errorCode` (`NoError`, ...); 2.0.1 reports errors through NotifyEvent.
    pub error_code: Option<String>,
    pub timestamp: Option<String>,
}

/// An identifier presented for authorisation: a 1.6 `idTag` or a 2.0.1 `IdTokenType`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdToken {
    pub id: String,
    /// 2.0.1 token type (`ISO14443`, `Central`, ...); 1.6 tags have none.
    pub kind: Option<String>,
}

/// A 1.6 StartTransaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartTransactionInfo {
    pub connector: u32,
    pub id_tag: String,
    /// Meter reading in Wh.
    pub meter_start: i64,
    pub timestamp: String,
    pub reservation_id: Option<i64>,
}

/// A 1.6 StopTransaction.
#[derive(Debug, Clone, PartialEq)]
pub struct StopTransactionInfo {
    pub transaction_id: i64,
    /// Meter reading in Wh.
    pub meter_stop: i64,
    pub timestamp: String,
    pub reason: Option<String>,
    pub id_tag: Option<String>,
    /// `transactionData`.
    pub meter_values: Option<Readings>,
}

/// A MeterValues request.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterValuesReport {
    /// 1.6 `connectorId`, 2.0.1 `evseId` (0 = the main meter).
    pub connector: u32,
    /// 1.6 `transactionId`; 2.0.1 carries it in TransactionEvent instead.
    pub transaction_id: Option<i64>,
    pub meter_values: Readings,
}

/// A `meterValue` array (1.6 `transactionData`): the readings, and the array as the charger
/// sent it, which is what the store keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Readings {
    pub values: Vec<MeterValue>,
    pub as_sent: Value,
}

/// A 2.0.1 SecurityEventNotification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEventInfo {
    /// The event type (`FirmwareUpdated`, `InvalidCentralSystemCertificate`, …), as sent.
    pub kind: String,
    pub timestamp: String,
}

/// Readings taken at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterValue {
    pub timestamp: String,
    pub samples: Vec<SampledValue>,
}

/// One reading. Absent optional fields stay `None`; OCPP's defaults (measurand
/// `Energy.Active.Import.Register`, unit `Wh`) are the reader's to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledValue {
    /// The reading as sent (1.6 sends a string, 2.0.1 a number).
    pub raw: String,
    /// The reading as a number, when it is one (not for 1.6 `SignedData`).
    pub value: Option<f64>,
    pub measurand: Option<String>,
    pub unit: Option<String>,
    /// 2.0.1 `unitOfMeasure.multiplier` (power of ten); 0 for 1.6.
    pub multiplier: i32,
    pub phase: Option<String>,
    pub context: Option<String>,
    pub location: Option<String>,
}

/// A 2.0.1 TransactionEvent.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionEventInfo {
    /// `Started`, `Updated` or `Ended`.
    pub event_type: String,
    pub timestamp: String,
    pub trigger_reason: String,
    pub seq_no: i64,
    pub transaction_id: String,
    pub charging_state: Option<String>,
    pub stopped_reason: Option<String>,
    pub remote_start_id: Option<i64>,
    pub offline: bool,
    pub evse: Option<u32>,
    pub connector: Option<u32>,
    pub id_token: Option<IdToken>,
    pub meter_values: Option<Readings>,
}

impl ChargerRequest {
    /// Reads a CALL payload that passed [`crate::Validator::validate_request`]. Fails only on
    /// values the schema allows but the view cannot hold (e.g. a connector id beyond `u32`).
    pub fn from_call(
        version: OcppVersion,
        action: &str,
        payload: &Value,
    ) -> Result<ChargerRequest, PayloadError> {
        let request = match (version, action) {
            (_, "Heartbeat") => ChargerRequest::Heartbeat,
            (OcppVersion::V16, "BootNotification") => {
                let p: wire16::BootNotification = read(action, payload)?;
                ChargerRequest::BootNotification(BootInfo {
                    vendor: p.charge_point_vendor,
                    model: p.charge_point_model,
                    serial: p.charge_point_serial_number.or(p.charge_box_serial_number),
                    firmware: p.firmware_version,
                    reason: None,
                })
            }
            (OcppVersion::V201, "BootNotification") => {
                let p: wire201::BootNotification = read(action, payload)?;
                ChargerRequest::BootNotification(BootInfo {
                    vendor: p.charging_station.vendor_name,
                    model: p.charging_station.model,
                    serial: p.charging_station.serial_number,
                    firmware: p.charging_station.firmware_version,
                    reason: Some(p.reason),
                })
            }
            (OcppVersion::V16, "StatusNotification") => {
                let p: wire16::StatusNotification = read(action, payload)?;
                ChargerRequest::StatusNotification(StatusReport {
                    evse: None,
                    connector: p.connector_id.0,
                    status: p.status,
                    error_code: Some(p.error_code),
                    timestamp: p.timestamp,
                })
            }
            (OcppVersion::V201, "StatusNotification") => {
                let p: wire201::StatusNotification = read(action, payload)?;
                ChargerRequest::StatusNotification(StatusReport {
                    evse: Some(p.evse_id.0),
                    connector: p.connector_id.0,
                    status: p.connector_status,
                    error_code: None,
                    timestamp: Some(p.timestamp),
                })
            }
            (OcppVersion::V16, "Authorize") => {
                let p: wire16::Authorize = read(action, payload)?;
                ChargerRequest::Authorize(IdToken {
                    id: p.id_tag,
                    kind: None,
                })
            }
            (OcppVersion::V201, "Authorize") => {
                let p: wire201::Authorize = read(action, payload)?;
                ChargerRequest::Authorize(p.id_token.into())
            }
            (OcppVersion::V16, "StartTransaction") => {
                let p: wire16::StartTransaction = read(action, payload)?;
                ChargerRequest::StartTransaction(StartTransactionInfo {
                    connector: p.connector_id.0,
                    id_tag: p.id_tag,
                    meter_start: p.meter_start.0,
                    timestamp: p.timestamp,
                    reservation_id: p.reservation_id.map(|id| id.0),
                })
            }
            (OcppVersion::V16, "StopTransaction") => {
                let p: wire16::StopTransaction = read(action, payload)?;
                ChargerRequest::StopTransaction(StopTransactionInfo {
                    transaction_id: p.transaction_id.0,
                    meter_stop: p.meter_stop.0,
                    timestamp: p.timestamp,
                    reason: p.reason,
                    id_tag: p.id_tag,
                    meter_values: readings(&payload["transactionData"], p.transaction_data),
                })
            }
            (OcppVersion::V16, "MeterValues") => {
                let p: wire16::MeterValues = read(action, payload)?;
                ChargerRequest::MeterValues(MeterValuesReport {
                    connector: p.connector_id.0,
                    transaction_id: p.transaction_id.map(|id| id.0),
                    meter_values: Readings::read(&payload["meterValue"], p.meter_value),
                })
            }
            (OcppVersion::V201, "MeterValues") => {
                let p: wire201::MeterValues = read(action, payload)?;
                ChargerRequest::MeterValues(MeterValuesReport {
                    connector: p.evse_id.0,
                    transaction_id: None,
                    meter_values: Readings::read(&payload["meterValue"], p.meter_value),
                })
            }
            (OcppVersion::V201, "TransactionEvent") => {
                let p: wire201::TransactionEvent = read(action, payload)?;
                ChargerRequest::TransactionEvent(TransactionEventInfo {
                    event_type: p.event_type,
                    timestamp: p.timestamp,
                    trigger_reason: p.trigger_reason,
                    seq_no: p.seq_no.0,
                    transaction_id: p.transaction_info.transaction_id,
                    charging_state: p.transaction_info.charging_state,
                    stopped_reason: p.transaction_info.stopped_reason,
                    remote_start_id: p.transaction_info.remote_start_id.map(|id| id.0),
                    offline: p.offline.unwrap_or(false),
                    evse: p.evse.as_ref().map(|e| e.id.0),
                    connector: p.evse.and_then(|e| e.connector_id).map(|c| c.0),
                    id_token: p.id_token.map(Into::into),
                    meter_values: readings(&payload["meterValue"], p.meter_value),
                })
            }
            (_, "FirmwareStatusNotification") => {
                let p: wire::Status = read(action, payload)?;
                ChargerRequest::FirmwareStatusNotification { status: p.status }
            }
            (OcppVersion::V16, "DiagnosticsStatusNotification")
            | (OcppVersion::V201, "LogStatusNotification") => {
                let p: wire::Status = read(action, payload)?;
                ChargerRequest::LogStatusNotification { status: p.status }
            }
            (OcppVersion::V201, "SecurityEventNotification") => {
                let p: wire201::SecurityEventNotification = read(action, payload)?;
                ChargerRequest::SecurityEventNotification(SecurityEventInfo {
                    kind: p.kind,
                    timestamp: p.timestamp,
                })
            }
            (_, other) => ChargerRequest::Other {
                action: other.to_owned(),
            },
        };
        Ok(request)
    }

    /// The identifier this request presents, if any: Authorize, StartTransaction, a 1.6
    /// StopTransaction's optional `idTag`, a TransactionEvent's optional `idToken`.
    pub fn id_token(&self) -> Option<IdToken> {
        match self {
            ChargerRequest::Authorize(token) => Some(token.clone()),
            ChargerRequest::StartTransaction(start) => Some(IdToken {
                id: start.id_tag.clone(),
                kind: None,
            }),
            ChargerRequest::StopTransaction(stop) => {
                stop.id_tag.clone().map(|id| IdToken { id, kind: None })
            }
            ChargerRequest::TransactionEvent(event) => event.id_token.clone(),
            _ => None,
        }
    }
}

impl Readings {
    fn read<W: Into<MeterValue>>(as_sent: &Value, values: Vec<W>) -> Readings {
        Readings {
            values: values.into_iter().map(Into::into).collect(),
            as_sent: as_sent.clone(),
        }
    }

    /// The energy register reading in Wh: the first sampled value without a phase whose
    /// measurand is `Energy.Active.Import.Register` (OCPP's default when none is named), in
    /// `Wh` unless it says `kWh`, scaled by its 2.0.1 multiplier. `None` when there is no such
    /// value or it is not a number (1.6 `SignedData`).
    pub fn energy_register_wh(&self) -> Option<f64> {
        let sample = self.values.iter().flat_map(|v| &v.samples).find(|s| {
            s.phase.is_none() && s.measurand.as_deref().is_none_or(|m| m == ENERGY_REGISTER)
        })?;
        let scale = match sample.unit.as_deref() {
            Some(unit) if unit.eq_ignore_ascii_case("kWh") => 1000.0,
            _ => 1.0,
        };
        Some(sample.value? * scale * 10f64.powi(sample.multiplier))
    }
}

/// The measurand a sampled value without one reports.
const ENERGY_REGISTER: &str = "Energy.Active.Import.Register";

/// An optional `meterValue` array: `None` when the charger left it out.
fn readings<W: Into<MeterValue>>(as_sent: &Value, values: Option<Vec<W>>) -> Option<Readings> {
    values.map(|values| Readings::read(as_sent, values))
}

fn read<T: for<'de> Deserialize<'de>>(action: &str, payload: &Value) -> Result<T, PayloadError> {
    T::deserialize(payload).map_err(|e| {
        PayloadError::new(
            ErrorCode::PropertyConstraintViolation,
            format!("{action}: {e}"),
        )
    })
}

/// What both versions' payload shapes share. Integer fields are read through [`Whole`]: the
/// 2.0.1 schemas are draft-06, where `1.0` is an integer, and a 1.6 charger may write one so too.
mod wire {
    use serde::de::{Deserializer, Error as _};
    use serde::Deserialize;
    use serde_json::Number;

    /// An integer that may be written with a zero fraction (`2.0`).
    pub(super) struct Whole<T>(pub T);

    impl<'de, T: TryFrom<i64>> Deserialize<'de> for Whole<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let number = Number::deserialize(deserializer)?;
            let whole = match number.as_i64() {
                Some(i) => Some(i),
                None => number
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64)
                    .map(|f| f as i64),
            };
            whole
                .and_then(|i| T::try_from(i).ok())
                .map(Whole)
                .ok_or_else(|| D::Error::custom(format!("{number} is out of range")))
        }
    }

    /// A notification that carries only a status.
    #[derive(Deserialize)]
    pub(super) struct Status {
        pub status: String,
    }
}

/// The 1.6 payload shapes, limited to the fields the views use (unknown fields are ignored:
/// the schema has already judged them).
mod wire16 {
    use serde::Deserialize;

    use super::wire::Whole;
    use super::{MeterValue, SampledValue};

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct BootNotification {
        pub charge_point_vendor: String,
        pub charge_point_model: String,
        pub charge_point_serial_number: Option<String>,
        pub charge_box_serial_number: Option<String>,
        pub firmware_version: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct StatusNotification {
        pub connector_id: Whole<u32>,
        pub error_code: String,
        pub status: String,
        pub timestamp: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Authorize {
        pub id_tag: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct StartTransaction {
        pub connector_id: Whole<u32>,
        pub id_tag: String,
        pub meter_start: Whole<i64>,
        pub timestamp: String,
        pub reservation_id: Option<Whole<i64>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct StopTransaction {
        pub transaction_id: Whole<i64>,
        pub meter_stop: Whole<i64>,
        pub timestamp: String,
        pub reason: Option<String>,
        pub id_tag: Option<String>,
        pub transaction_data: Option<Vec<MeterValueWire>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct MeterValues {
        pub connector_id: Whole<u32>,
        pub transaction_id: Option<Whole<i64>>,
        pub meter_value: Vec<MeterValueWire>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct MeterValueWire {
        pub timestamp: String,
        pub sampled_value: Vec<SampledValueWire>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct SampledValueWire {
        pub value: String,
        pub format: Option<String>,
        pub measurand: Option<String>,
        pub unit: Option<String>,
        pub phase: Option<String>,
        pub context: Option<String>,
        pub location: Option<String>,
    }

    impl From<MeterValueWire> for MeterValue {
        fn from(wire: MeterValueWire) -> MeterValue {
            MeterValue {
                timestamp: wire.timestamp,
                samples: wire.sampled_value.into_iter().map(Into::into).collect(),
            }
        }
    }

    impl From<SampledValueWire> for SampledValue {
        fn from(wire: SampledValueWire) -> SampledValue {
            let signed = wire.format.as_deref() == Some("SignedData");
            SampledValue {
                value: if signed {
                    None
                } else {
                    wire.value.trim().parse().ok()
                },
                raw: wire.value,
                measurand: wire.measurand,
                unit: wire.unit,
                multiplier: 0,
                phase: wire.phase,
                context: wire.context,
                location: wire.location,
            }
        }
    }
}

/// The 2.0.1 payload shapes, limited to the fields the views use.
mod wire201 {
    use serde::Deserialize;
    use serde_json::Number;

    use super::wire::Whole;
    use super::{IdToken, MeterValue, SampledValue};

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct BootNotification {
        pub reason: String,
        pub charging_station: ChargingStation,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct ChargingStation {
        pub serial_number: Option<String>,
        pub model: String,
        pub vendor_name: String,
        pub firmware_version: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct StatusNotification {
        pub timestamp: String,
        pub connector_status: String,
        pub evse_id: Whole<u32>,
        pub connector_id: Whole<u32>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Authorize {
        pub id_token: IdTokenWire,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct IdTokenWire {
        pub id_token: String,
        #[serde(rename = "type")]
        pub kind: String,
    }

    impl From<IdTokenWire> for IdToken {
        fn from(wire: IdTokenWire) -> IdToken {
            IdToken {
                id: wire.id_token,
                kind: Some(wire.kind),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct MeterValues {
        pub evse_id: Whole<u32>,
        pub meter_value: Vec<MeterValueWire>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct TransactionEvent {
        pub event_type: String,
        pub timestamp: String,
        pub trigger_reason: String,
        pub seq_no: Whole<i64>,
        pub offline: Option<bool>,
        pub transaction_info: TransactionInfo,
        pub id_token: Option<IdTokenWire>,
        pub evse: Option<Evse>,
        pub meter_value: Option<Vec<MeterValueWire>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct SecurityEventNotification {
        #[serde(rename = "type")]
        pub kind: String,
        pub timestamp: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct TransactionInfo {
        pub transaction_id: String,
        pub charging_state: Option<String>,
        pub stopped_reason: Option<String>,
        pub remote_start_id: Option<Whole<i64>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Evse {
        pub id: Whole<u32>,
        pub connector_id: Option<Whole<u32>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct MeterValueWire {
        pub timestamp: String,
        pub sampled_value: Vec<SampledValueWire>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct SampledValueWire {
        pub value: Number,
        pub measurand: Option<String>,
        pub phase: Option<String>,
        pub context: Option<String>,
        pub location: Option<String>,
        pub unit_of_measure: Option<UnitOfMeasure>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct UnitOfMeasure {
        pub unit: Option<String>,
        pub multiplier: Option<Whole<i32>>,
    }

    impl From<MeterValueWire> for MeterValue {
        fn from(wire: MeterValueWire) -> MeterValue {
            MeterValue {
                timestamp: wire.timestamp,
                samples: wire.sampled_value.into_iter().map(Into::into).collect(),
            }
        }
    }

    impl From<SampledValueWire> for SampledValue {
        fn from(wire: SampledValueWire) -> SampledValue {
            let (unit, multiplier) = match wire.unit_of_measure {
                Some(u) => (u.unit, u.multiplier.map_or(0, |m| m.0)),
                None => (None, 0),
            };
            SampledValue {
                raw: wire.value.to_string(),
                value: wire.value.as_f64(),
                measurand: wire.measurand,
                unit,
                multiplier,
                phase: wire.phase,
                context: wire.context,
                location: wire.location,
            }
        }
    }
}
