//! Chargers that bend the OCPP schemas the way real firmware does (`--quirks`), so load and CI
//! runs exercise the gateway's tolerance layer. A share of the chargers (`--quirks-share`) is
//! quirky; a quirky charger's CALLs are bent on the way out, without the model's knowledge,
//! in the ways that keep their meaning: an over-long model name, a non-standard reading
//! context, an extra sample with a unit or measurand outside the list, a connector or EVSE id
//! as text, timestamps without a zone, an unknown field in heartbeats. The gateway must answer
//! them as if they were valid under its default (lenient) tolerance.
//!
//! `data_transfer_json` is not offered: the simulated chargers send no DataTransfer of their own.

use serde_json::{json, Value};
use voltgate_ocpp::{DeviationKind, OcppVersion};

/// The deviation kinds a simulated charger can produce.
pub const SUPPORTED: [DeviationKind; 6] = [
    DeviationKind::StringTooLong,
    DeviationKind::EnumValue,
    DeviationKind::UnitOrMeasurand,
    DeviationKind::NumericString,
    DeviationKind::TimestampWithoutZone,
    DeviationKind::UnknownField,
];

/// The model name a quirky charger boots with: 22 characters, over CiString20.
pub const LONG_MODEL: &str = "Grizzl-E Smart 40A 1ph";

/// Which deviations quirky chargers produce, and how many chargers are quirky.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quirks {
    pub kinds: Vec<DeviationKind>,
    /// Share (0–1) of the chargers that are quirky.
    pub share: f64,
}

/// A `--quirks` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuirksError {
    #[error("--quirks: {0}")]
    Unknown(#[from] voltgate_ocpp::UnknownDeviationKind),
    #[error("--quirks: {0} cannot be produced by the simulated chargers (they send no DataTransfer of their own)")]
    Unsupported(DeviationKind),
    #[error("--quirks-share needs --quirks")]
    ShareWithoutKinds,
}

impl Quirks {
    /// Reads `KIND[,KIND..]` and the share (already checked to lie in 0–1).
    pub fn parse(list: Option<&str>, share: f64) -> Result<Quirks, QuirksError> {
        let Some(list) = list else {
            return if share > 0.0 {
                Err(QuirksError::ShareWithoutKinds)
            } else {
                Ok(Quirks::default())
            };
        };
        let mut kinds = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let kind: DeviationKind = name.parse()?;
            if !SUPPORTED.contains(&kind) {
                return Err(QuirksError::Unsupported(kind));
            }
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(Quirks { kinds, share })
    }

    pub fn is_off(&self) -> bool {
        self.kinds.is_empty() || self.share <= 0.0
    }
}

/// Bends one outgoing CALL payload in every configured way that applies to `action`.
/// Returns whether anything changed.
pub fn bend(
    version: OcppVersion,
    action: &str,
    payload: &mut Value,
    kinds: &[DeviationKind],
) -> bool {
    let mut changed = false;
    for kind in kinds {
        changed |= match kind {
            DeviationKind::StringTooLong => long_model(version, action, payload),
            DeviationKind::EnumValue => reading_context(action, payload),
            DeviationKind::UnitOrMeasurand => odd_sample(version, action, payload),
            DeviationKind::NumericString => id_as_text(version, action, payload),
            DeviationKind::TimestampWithoutZone => zone_less(action, payload),
            DeviationKind::UnknownField => extra_field(action, payload),
            DeviationKind::DataTransferJson => false,
        };
    }
    changed
}

fn long_model(version: OcppVersion, action: &str, payload: &mut Value) -> bool {
    if action != "BootNotification" {
        return false;
    }
    let model = match version {
        OcppVersion::V16 => payload.get_mut("chargePointModel"),
        OcppVersion::V201 => payload
            .get_mut("chargingStation")
            .and_then(|s| s.get_mut("model")),
    };
    match model {
        Some(model) => {
            *model = json!(LONG_MODEL);
            true
        }
        None => false,
    }
}

/// The sampled values of a MeterValues (or a TransactionEvent's meter values).
fn samples(payload: &mut Value) -> impl Iterator<Item = &mut Value> {
    payload
        .get_mut("meterValue")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|mv| mv.get_mut("sampledValue").and_then(Value::as_array_mut))
        .flatten()
}

fn reading_context(action: &str, payload: &mut Value) -> bool {
    if action != "MeterValues" {
        return false;
    }
    let mut changed = false;
    for sample in samples(payload) {
        if let Some(object) = sample.as_object_mut() {
            object.insert("context".into(), json!("CurrentMax"));
            changed = true;
        }
    }
    changed
}

fn odd_sample(version: OcppVersion, action: &str, payload: &mut Value) -> bool {
    if action != "MeterValues" {
        return false;
    }
    let extra = match version {
        OcppVersion::V16 => json!({"value": "50.0", "measurand": "Frequency", "unit": "Hz"}),
        OcppVersion::V201 => json!({"value": 0, "measurand": "Request.Energy"}),
    };
    let Some(first) = payload
        .get_mut("meterValue")
        .and_then(Value::as_array_mut)
        .and_then(|values| values.first_mut())
        .and_then(|mv| mv.get_mut("sampledValue"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    first.push(extra);
    true
}

fn id_as_text(version: OcppVersion, action: &str, payload: &mut Value) -> bool {
    let field = match (version, action) {
        (OcppVersion::V16, "StatusNotification" | "MeterValues") => "connectorId",
        (OcppVersion::V201, "StatusNotification" | "MeterValues") => "evseId",
        _ => return false,
    };
    match payload.get_mut(field) {
        Some(id) if id.is_number() => {
            *id = json!(id.to_string());
            true
        }
        _ => false,
    }
}

fn strip_zone(value: &mut Value) -> bool {
    match value.as_str().and_then(|t| t.strip_suffix('Z')) {
        Some(local) => {
            *value = json!(local);
            true
        }
        None => false,
    }
}

fn zone_less(action: &str, payload: &mut Value) -> bool {
    match action {
        "StatusNotification" => payload.get_mut("timestamp").is_some_and(strip_zone),
        "MeterValues" => {
            let mut changed = false;
            if let Some(values) = payload.get_mut("meterValue").and_then(Value::as_array_mut) {
                for value in values {
                    if let Some(timestamp) = value.get_mut("timestamp") {
                        changed |= strip_zone(timestamp);
                    }
                }
            }
            changed
        }
        _ => false,
    }
}

fn extra_field(action: &str, payload: &mut Value) -> bool {
    match (action, payload.as_object_mut()) {
        ("Heartbeat", Some(object)) => {
            object.insert("firmwareUptime".into(), json!(1));
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use voltgate_ocpp::{Tolerance, Validator};

    use super::*;

    /// Valid payloads of the actions the quirks bend, per version.
    fn valid(version: OcppVersion) -> Vec<(&'static str, Value)> {
        match version {
            OcppVersion::V16 => vec![
                (
                    "BootNotification",
                    json!({"chargePointVendor": "Sim", "chargePointModel": "S1"}),
                ),
                ("Heartbeat", json!({})),
                (
                    "StatusNotification",
                    json!({"connectorId": 1, "errorCode": "NoError",
                    "status": "Available", "timestamp": "2025-01-01T00:00:00Z"}),
                ),
                (
                    "MeterValues",
                    json!({"connectorId": 1, "transactionId": 5, "meterValue": [
                    {"timestamp": "2025-01-01T00:00:00Z", "sampledValue": [
                        {"value": "10", "context": "Sample.Periodic"}]}]}),
                ),
            ],
            OcppVersion::V201 => vec![
                (
                    "BootNotification",
                    json!({"reason": "PowerUp",
                    "chargingStation": {"vendorName": "Sim", "model": "S1"}}),
                ),
                ("Heartbeat", json!({})),
                (
                    "StatusNotification",
                    json!({"timestamp": "2025-01-01T00:00:00Z",
                    "connectorStatus": "Available", "evseId": 1, "connectorId": 1}),
                ),
                (
                    "MeterValues",
                    json!({"evseId": 1, "meterValue": [
                    {"timestamp": "2025-01-01T00:00:00Z", "sampledValue": [
                        {"value": 10, "context": "Sample.Periodic"}]}]}),
                ),
            ],
        }
    }

    #[test]
    fn every_kind_bends_some_payload_into_exactly_that_deviation() {
        let validator = Validator::new().unwrap();
        for kind in SUPPORTED {
            for version in OcppVersion::ALL {
                let mut bent_any = false;
                for (action, payload) in valid(version) {
                    let mut bent = payload.clone();
                    if !bend(version, action, &mut bent, &[kind]) {
                        assert_eq!(bent, payload, "{kind} {version} {action}");
                        continue;
                    }
                    bent_any = true;
                    assert!(
                        validator.validate_request(version, action, &bent).is_err(),
                        "{kind} {version} {action}: still valid: {bent}"
                    );
                    let accepted = validator
                        .check_request(version, action, bent.clone(), Tolerance::Lenient)
                        .unwrap_or_else(|e| panic!("{kind} {version} {action}: {e}"));
                    assert!(
                        accepted.deviations.iter().all(|d| d.kind == kind),
                        "{kind} {version} {action}: {:?}",
                        accepted.deviations
                    );
                }
                assert!(bent_any, "{kind} bends nothing in {version}");
            }
        }
    }

    #[test]
    fn the_quirks_list_is_parsed_and_bad_names_refused() {
        let quirks =
            Quirks::parse(Some("string_too_long, unknown_field,unknown_field"), 0.1).unwrap();
        assert_eq!(
            quirks.kinds,
            [DeviationKind::StringTooLong, DeviationKind::UnknownField]
        );
        assert!(!quirks.is_off());
        assert!(Quirks::parse(None, 0.0).unwrap().is_off());
        assert!(matches!(
            Quirks::parse(Some("typo"), 1.0),
            Err(QuirksError::Unknown(_))
        ));
        assert_eq!(
            Quirks::parse(Some("data_transfer_json"), 1.0),
            Err(QuirksError::Unsupported(DeviationKind::DataTransferJson))
        );
        assert_eq!(
            Quirks::parse(None, 0.5),
            Err(QuirksError::ShareWithoutKinds)
        );
    }
}
