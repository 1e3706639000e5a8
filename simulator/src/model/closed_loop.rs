//! The closed-loop messages (Heartbeat, StatusNotification, MeterValues sent back to back)
//! written straight to JSON text: the throughput measurement sends hundreds of thousands of
//! them, and building a `serde_json::Value` for each would cost more than the rest of the
//! simulator's work per message. Tests check the text parses and validates like the rest.

use std::fmt::Write as _;

use voltgate_ocpp::OcppVersion;

use super::config::Setting;
use super::profiles::{DEFAULT_PHASES, NOMINAL_VOLTAGE};
use super::{Charger, MeterSample, Millis};

/// (measurand, value, unit) of the readings a sample reports, as configured.
fn readings(charger: &Charger, sample: &MeterSample) -> Vec<(&'static str, f64, &'static str)> {
    let mut out = Vec::with_capacity(4);
    for m in charger.config.list(Setting::SampledMeasurands) {
        let reading = match m {
            "Energy.Active.Import.Register" => (
                "Energy.Active.Import.Register",
                sample.energy_wh.round(),
                "Wh",
            ),
            "Power.Active.Import" => ("Power.Active.Import", round1(sample.power_w), "W"),
            "Power.Offered" => (
                "Power.Offered",
                round1(sample.offered_a * NOMINAL_VOLTAGE * f64::from(DEFAULT_PHASES)),
                "W",
            ),
            "Current.Import" => ("Current.Import", round1(sample.current_a), "A"),
            "Current.Offered" => ("Current.Offered", round1(sample.offered_a), "A"),
            "Voltage" => ("Voltage", NOMINAL_VOLTAGE, "V"),
            _ => continue,
        };
        out.push(reading);
    }
    if out.is_empty() {
        out.push((
            "Energy.Active.Import.Register",
            sample.energy_wh.round(),
            "Wh",
        ));
    }
    out
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Charger {
    /// The `step`th closed-loop message (0 Heartbeat, 1 StatusNotification, 2 MeterValues of
    /// connector 1) as action and payload text.
    pub(super) fn closed_loop_text(&self, step: u8, now: Millis) -> Option<(&'static str, String)> {
        let c = self.connectors.first()?;
        let mut out = String::with_capacity(320);
        let v16 = self.spec.version == OcppVersion::V16;
        let action = match step {
            0 => {
                out.push_str("{}");
                "Heartbeat"
            }
            1 => {
                let status = self.derived_status(c);
                let at = self.wall(now).rfc3339();
                if v16 {
                    let _ = write!(
                        out,
                        r#"{{"connectorId":1,"errorCode":"NoError","status":"{status}","timestamp":"{at}"}}"#
                    );
                } else {
                    let _ = write!(
                        out,
                        r#"{{"timestamp":"{at}","connectorStatus":"{status}","evseId":1,"connectorId":1}}"#
                    );
                }
                "StatusNotification"
            }
            _ => {
                let sample = self.sample(c, now, "Sample.Periodic");
                let at = sample.at.rfc3339();
                if v16 {
                    let _ = write!(
                        out,
                        r#"{{"connectorId":1,"meterValue":[{{"timestamp":"{at}","sampledValue":["#
                    );
                } else {
                    let _ = write!(
                        out,
                        r#"{{"evseId":1,"meterValue":[{{"timestamp":"{at}","sampledValue":["#
                    );
                }
                for (i, (measurand, value, unit)) in readings(self, &sample).into_iter().enumerate()
                {
                    if i > 0 {
                        out.push(',');
                    }
                    if v16 {
                        let _ = write!(
                            out,
                            r#"{{"value":"{value}","context":"Sample.Periodic","measurand":"{measurand}","unit":"{unit}"}}"#
                        );
                    } else {
                        let _ = write!(
                            out,
                            r#"{{"value":{value},"context":"Sample.Periodic","measurand":"{measurand}","unitOfMeasure":{{"unit":"{unit}"}}}}"#
                        );
                    }
                }
                out.push_str("]}]}");
                "MeterValues"
            }
        };
        Some((action, out))
    }
}
