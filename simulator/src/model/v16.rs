//! OCPP 1.6J payloads of the charger model: the requests a 1.6 charge point sends, how it
//! reads the central system's answers, and how it answers each central-system request.

use serde_json::{json, Map, Value};
use voltgate_ocpp::{unhandled_action_code, ErrorCode, OcppVersion};

use super::auth::{ListOutcome, TokenInfo, UpdateKind};
use super::clock::Millis;
use super::config::{Mutability, Setting, WriteOutcome};
use super::fields::{
    as_index, is_transfer_url, object, opt_array, opt_int, opt_obj, opt_str, opt_time, req_array,
    req_int, req_num, req_obj, req_str, Fault, Obj,
};
use super::profiles::{ClearFilter, Kind, Period, Profile, Purpose, RateUnit};
use super::{
    AvailabilityOutcome, BootReason, Charger, JobKind, JobStep, MeterSample, Outgoing,
    Registration, RemoteStart, StopReason,
};

/// `text` cut to at most `max` characters (1.6 string fields have hard limits).
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn status(word: &str) -> Value {
    json!({ "status": word })
}

fn stop_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Local => "Local",
        StopReason::Remote => "Remote",
        StopReason::EvDisconnected => "EVDisconnected",
        StopReason::HardReset => "HardReset",
        StopReason::SoftReset => "SoftReset",
        StopReason::UnlockCommand => "UnlockCommand",
        StopReason::DeAuthorized => "DeAuthorized",
    }
}

/// Reads a 1.6 `idTagInfo`.
pub(super) fn token_info(info: Option<&Obj>) -> TokenInfo {
    let Some(info) = info else {
        return TokenInfo {
            status: "Invalid".into(),
            expires: None,
        };
    };
    TokenInfo {
        status: info
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("Invalid")
            .to_owned(),
        expires: info
            .get("expiryDate")
            .and_then(Value::as_str)
            .and_then(Millis::parse_rfc3339),
    }
}

/// Reads a 1.6 `csChargingProfiles` / `chargingProfile` object.
pub(super) fn parse_profile(o: &Obj, connector: u32) -> Result<Profile, Fault> {
    let purpose = match req_str(o, "chargingProfilePurpose")? {
        "ChargePointMaxProfile" => Purpose::StationMax,
        "TxDefaultProfile" => Purpose::TxDefault,
        "TxProfile" => Purpose::Tx,
        other => return Err(property(format!("unknown chargingProfilePurpose {other}"))),
    };
    let kind = match (
        req_str(o, "chargingProfileKind")?,
        opt_str(o, "recurrencyKind")?,
    ) {
        ("Absolute", _) => Kind::Absolute,
        ("Relative", _) => Kind::Relative,
        ("Recurring", Some("Daily")) => Kind::RecurringDaily,
        ("Recurring", Some("Weekly")) => Kind::RecurringWeekly,
        ("Recurring", _) => return Err(property("a Recurring profile needs recurrencyKind")),
        (other, _) => return Err(property(format!("unknown chargingProfileKind {other}"))),
    };
    let schedule = req_obj(o, "chargingSchedule")?;
    let unit = match req_str(schedule, "chargingRateUnit")? {
        "W" => RateUnit::Watts,
        _ => RateUnit::Amps,
    };
    let periods = req_array(schedule, "chargingSchedulePeriod")?
        .iter()
        .map(|p| {
            let p = object(p, "chargingSchedulePeriod")?;
            Ok(Period {
                start_s: req_int(p, "startPeriod")?,
                limit: req_num(p, "limit")?,
                phases: opt_int(p, "numberPhases")?.and_then(|n| u32::try_from(n).ok()),
            })
        })
        .collect::<Result<Vec<_>, Fault>>()?;
    Ok(Profile {
        id: req_int(o, "chargingProfileId")?,
        stack_level: req_int(o, "stackLevel")?,
        purpose,
        kind,
        connector,
        transaction: opt_int(o, "transactionId")?.map(|id| id.to_string()),
        valid_from: opt_time(o, "validFrom")?,
        valid_to: opt_time(o, "validTo")?,
        start_schedule: opt_time(schedule, "startSchedule")?,
        duration_s: opt_int(schedule, "duration")?,
        unit,
        periods,
        installed_at: Millis(0),
    })
}

fn property(description: impl Into<String>) -> Fault {
    Fault::new(ErrorCode::PropertyConstraintViolation, description)
}

impl Charger {
    fn sampled_values_v16(&self, sample: &MeterSample) -> Vec<Value> {
        let setting = if sample.context == "Sample.Clock" {
            Setting::AlignedMeasurands
        } else {
            Setting::SampledMeasurands
        };
        let mut values: Vec<Value> = self
            .config
            .list(setting)
            .into_iter()
            .filter_map(|m| measurand_v16(sample, m))
            .collect();
        if values.is_empty() {
            values.extend(measurand_v16(sample, "Energy.Active.Import.Register"));
        }
        values
    }

    pub(super) fn render_v16(&mut self, msg: &Outgoing) -> Option<(&'static str, Value)> {
        let (action, payload) = match msg {
            Outgoing::Boot => (
                "BootNotification",
                json!({
                    "chargePointVendor": cut(&self.spec.vendor, 20),
                    "chargePointModel": cut(&self.spec.model, 20),
                    "chargePointSerialNumber": cut(&self.spec.serial, 25),
                    "firmwareVersion": cut(&self.firmware_version, 50),
                    "meterType": "SimMeter",
                }),
            ),
            Outgoing::Heartbeat => ("Heartbeat", json!({})),
            Outgoing::Status {
                connector,
                status,
                at,
            } => (
                "StatusNotification",
                json!({
                    "connectorId": connector,
                    "errorCode": "NoError",
                    "status": status,
                    "timestamp": at.rfc3339(),
                }),
            ),
            Outgoing::Authorize { token, .. } => ("Authorize", json!({ "idTag": cut(token, 20) })),
            Outgoing::StartTx {
                connector,
                token,
                meter_start,
                at,
                ..
            } => (
                "StartTransaction",
                json!({
                    "connectorId": connector,
                    "idTag": cut(token, 20),
                    "meterStart": meter_start,
                    "timestamp": at.rfc3339(),
                }),
            ),
            Outgoing::StopTx {
                local_id,
                token,
                meter_stop,
                at,
                reason,
            } => {
                let transaction_id = *self.gateway_tx_ids.get(local_id)?;
                let mut payload = json!({
                    "transactionId": transaction_id,
                    "meterStop": meter_stop,
                    "timestamp": at.rfc3339(),
                    "reason": stop_reason(*reason),
                });
                if let (Some(token), Some(map)) = (token, payload.as_object_mut()) {
                    map.insert("idTag".into(), Value::String(cut(token, 20)));
                }
                ("StopTransaction", payload)
            }
            Outgoing::Meter {
                connector,
                local_id,
                sample,
            } => {
                let mut payload = json!({
                    "connectorId": connector,
                    "meterValue": [{
                        "timestamp": sample.at.rfc3339(),
                        "sampledValue": self.sampled_values_v16(sample),
                    }],
                });
                if let Some(local_id) = local_id {
                    let transaction_id = *self.gateway_tx_ids.get(local_id)?;
                    if let Some(map) = payload.as_object_mut() {
                        map.insert("transactionId".into(), json!(transaction_id));
                    }
                }
                ("MeterValues", payload)
            }
            Outgoing::Firmware { status, .. } => {
                ("FirmwareStatusNotification", json!({ "status": status }))
            }
            Outgoing::Diagnostics { status } => {
                ("DiagnosticsStatusNotification", json!({ "status": status }))
            }
            Outgoing::TxEvent(_)
            | Outgoing::Log { .. }
            | Outgoing::Report { .. }
            | Outgoing::ClosedLoop(_) => return None,
        };
        Some((action, payload))
    }

    pub(super) fn on_result_v16(&mut self, now: Millis, msg: Outgoing, payload: &Value) {
        let empty = Map::new();
        let o = payload.as_object().unwrap_or(&empty);
        match msg {
            Outgoing::Boot => {
                self.learn_time(now, o.get("currentTime").and_then(Value::as_str));
                let interval = o.get("interval").and_then(Value::as_i64).unwrap_or(0);
                match o.get("status").and_then(Value::as_str) {
                    Some("Accepted") => self.boot_accepted(now, interval),
                    Some("Pending") => self.boot_refused(now, Registration::Pending, interval),
                    _ => self.boot_refused(now, Registration::Rejected, interval),
                }
            }
            Outgoing::Heartbeat => {
                self.learn_time(now, o.get("currentTime").and_then(Value::as_str));
            }
            Outgoing::Authorize {
                connector,
                token,
                remote,
            } => {
                let info = token_info(o.get("idTagInfo").and_then(Value::as_object));
                self.authorize_verdict(now, connector, &token, remote, info);
            }
            Outgoing::StartTx {
                connector,
                local_id,
                token,
                ..
            } => {
                if let Some(id) = o.get("transactionId").and_then(Value::as_i64) {
                    self.gateway_tx_ids.insert(local_id, id);
                    self.events.push_back(super::Event::TransactionsChanged);
                }
                let info = token_info(o.get("idTagInfo").and_then(Value::as_object));
                let running = self
                    .connector(connector)
                    .and_then(|c| c.tx.as_ref())
                    .is_some_and(|t| t.local_id == local_id);
                if running {
                    self.tx_token_verdict(now, connector, &token, info);
                }
            }
            Outgoing::StopTx {
                local_id, token, ..
            } => {
                self.gateway_tx_ids.remove(&local_id);
                if let (Some(token), Some(info)) =
                    (token, o.get("idTagInfo").and_then(Value::as_object))
                {
                    if self.config.flag(Setting::AuthCacheEnabled, true) {
                        self.cache.remember(&token, token_info(Some(info)));
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn handle_call_v16(
        &mut self,
        now: Millis,
        action: &str,
        payload: &Value,
    ) -> Result<Value, Fault> {
        let o = object(payload, "payload")?;
        match action {
            "RemoteStartTransaction" => {
                let token = req_str(o, "idTag")?.to_owned();
                let connector = opt_int(o, "connectorId")?
                    .map(|c| as_index(c, "connectorId"))
                    .transpose()?;
                let profile = match opt_obj(o, "chargingProfile")? {
                    Some(p) => {
                        let profile = parse_profile(p, connector.unwrap_or(0))?;
                        if profile.purpose != Purpose::Tx {
                            return Ok(status("Rejected"));
                        }
                        Some(profile)
                    }
                    None => None,
                };
                if connector == Some(0) {
                    return Ok(status("Rejected"));
                }
                let request = RemoteStart {
                    connector,
                    token,
                    token_type: None,
                    remote_start_id: None,
                    profile,
                };
                Ok(status(if self.remote_start(now, request).is_some() {
                    "Accepted"
                } else {
                    "Rejected"
                }))
            }
            "RemoteStopTransaction" => {
                let id = req_int(o, "transactionId")?;
                Ok(status(if self.remote_stop(now, &id.to_string()) {
                    "Accepted"
                } else {
                    "Rejected"
                }))
            }
            "UnlockConnector" => {
                let connector = as_index(req_int(o, "connectorId")?, "connectorId")?;
                if connector == 0 || connector > self.spec.connectors {
                    return Ok(status("NotSupported"));
                }
                self.stop_transaction(now, connector, StopReason::UnlockCommand);
                self.unlock(now, connector);
                Ok(status("Unlocked"))
            }
            "Reset" => {
                let hard = match req_str(o, "type")? {
                    "Hard" => true,
                    "Soft" => false,
                    other => return Err(property(format!("unknown reset type {other}"))),
                };
                self.begin_reboot(now, BootReason::RemoteReset, hard);
                Ok(status("Accepted"))
            }
            "UpdateFirmware" => {
                let location = req_str(o, "location")?.to_owned();
                let retrieve = opt_time(o, "retrieveDate")?.ok_or_else(|| {
                    Fault::new(
                        ErrorCode::OccurrenceConstraintViolation,
                        "retrieveDate is required",
                    )
                })?;
                let local_retrieve =
                    Millis(retrieve.0.saturating_add_signed(-self.clock_offset_ms));
                let mut steps = vec![
                    JobStep::NotBefore(local_retrieve),
                    JobStep::Notify("Downloading"),
                ];
                if is_transfer_url(&location) {
                    steps.extend([
                        JobStep::Notify("Downloaded"),
                        JobStep::WhenIdle,
                        JobStep::Notify("Installing"),
                        JobStep::SetFirmware(self.firmware_from(&location)),
                        JobStep::Reboot,
                        JobStep::AfterBoot,
                        JobStep::Notify("Installed"),
                    ]);
                } else {
                    steps.push(JobStep::Notify("DownloadFailed"));
                }
                self.start_job(now, JobKind::Firmware, None, steps);
                Ok(json!({}))
            }
            "GetConfiguration" => self.get_configuration(o),
            "ChangeConfiguration" => {
                let key = req_str(o, "key")?;
                let value = req_str(o, "value")?;
                let setting = self.config.get(key).and_then(|e| e.setting);
                let word = match self.config.write("", key, value) {
                    WriteOutcome::Accepted => "Accepted",
                    WriteOutcome::RebootRequired => "RebootRequired",
                    WriteOutcome::Rejected => "Rejected",
                    WriteOutcome::UnknownComponent | WriteOutcome::UnknownVariable => {
                        "NotSupported"
                    }
                };
                if word == "Accepted" {
                    self.config_changed(now, setting);
                }
                Ok(status(word))
            }
            "SetChargingProfile" => {
                let connector = as_index(req_int(o, "connectorId")?, "connectorId")?;
                let profile = parse_profile(req_obj(o, "csChargingProfiles")?, connector)?;
                Ok(status(if self.install_profile(now, profile) {
                    "Accepted"
                } else {
                    "Rejected"
                }))
            }
            "ClearChargingProfile" => {
                let filter = ClearFilter {
                    id: opt_int(o, "id")?,
                    connector: opt_int(o, "connectorId")?
                        .map(|c| as_index(c, "connectorId"))
                        .transpose()?,
                    purpose: match opt_str(o, "chargingProfilePurpose")? {
                        Some("ChargePointMaxProfile") => Some(Purpose::StationMax),
                        Some("TxDefaultProfile") => Some(Purpose::TxDefault),
                        Some("TxProfile") => Some(Purpose::Tx),
                        _ => None,
                    },
                    stack_level: opt_int(o, "stackLevel")?,
                };
                Ok(status(if self.profiles.clear(&filter) > 0 {
                    "Accepted"
                } else {
                    "Unknown"
                }))
            }
            "GetCompositeSchedule" => {
                let connector = as_index(req_int(o, "connectorId")?, "connectorId")?;
                let duration = u64::try_from(req_int(o, "duration")?).unwrap_or(0);
                if connector > self.spec.connectors {
                    return Ok(status("Rejected"));
                }
                let watts = opt_str(o, "chargingRateUnit")? == Some("W");
                let periods = self.composite_periods(now, connector, duration, watts);
                Ok(json!({
                    "status": "Accepted",
                    "connectorId": connector,
                    "scheduleStart": self.wall(now).rfc3339(),
                    "chargingSchedule": {
                        "duration": duration,
                        "startSchedule": self.wall(now).rfc3339(),
                        "chargingRateUnit": if watts { "W" } else { "A" },
                        "chargingSchedulePeriod": periods,
                    },
                }))
            }
            "ChangeAvailability" => {
                let connector = as_index(req_int(o, "connectorId")?, "connectorId")?;
                let operative = match req_str(o, "type")? {
                    "Operative" => true,
                    "Inoperative" => false,
                    other => return Err(property(format!("unknown availability type {other}"))),
                };
                if connector > self.spec.connectors {
                    return Ok(status("Rejected"));
                }
                let target = (connector != 0).then_some(connector);
                Ok(status(match self.change_availability(target, operative) {
                    AvailabilityOutcome::Accepted => "Accepted",
                    AvailabilityOutcome::Scheduled => "Scheduled",
                    AvailabilityOutcome::Rejected => "Rejected",
                }))
            }
            "TriggerMessage" => {
                let connector = opt_int(o, "connectorId")?
                    .map(|c| as_index(c, "connectorId"))
                    .transpose()?;
                if connector.is_some_and(|c| c > self.spec.connectors) {
                    return Ok(status("Rejected"));
                }
                match req_str(o, "requestedMessage")? {
                    "BootNotification" => {
                        self.boot_reason = BootReason::Triggered;
                        self.enqueue_front(now, Outgoing::Boot);
                    }
                    "DiagnosticsStatusNotification" => {
                        let status = self.upload_job.as_ref().map_or("Idle", |j| j.status);
                        self.enqueue_front(now, Outgoing::Diagnostics { status });
                    }
                    "FirmwareStatusNotification" => {
                        let status = self.firmware_status();
                        self.enqueue_front(
                            now,
                            Outgoing::Firmware {
                                status,
                                request_id: None,
                            },
                        );
                    }
                    "Heartbeat" => self.enqueue_front(now, Outgoing::Heartbeat),
                    "MeterValues" => {
                        self.queue_triggered_readings(now, connector.filter(|c| *c > 0));
                    }
                    "StatusNotification" => self.queue_triggered_statuses(now, connector),
                    _ => return Ok(status("NotImplemented")),
                }
                Ok(status("Accepted"))
            }
            "GetDiagnostics" => {
                let location = req_str(o, "location")?;
                let last = if is_transfer_url(location) {
                    "Uploaded"
                } else {
                    "UploadFailed"
                };
                let file_name = format!("diagnostics-{}.log", now.0);
                self.start_job(
                    now,
                    JobKind::Upload,
                    None,
                    vec![JobStep::Notify("Uploading"), JobStep::Notify(last)],
                );
                Ok(json!({ "fileName": file_name }))
            }
            "ClearCache" => {
                if !self.config.flag(Setting::AuthCacheEnabled, true) {
                    return Ok(status("Rejected"));
                }
                self.cache.clear();
                Ok(status("Accepted"))
            }
            "DataTransfer" => Ok(self.data_transfer(o, OcppVersion::V16)),
            "SendLocalList" => {
                let version = req_int(o, "listVersion")?;
                let kind = match req_str(o, "updateType")? {
                    "Full" => UpdateKind::Full,
                    _ => UpdateKind::Differential,
                };
                let mut updates = Vec::new();
                for entry in opt_array(o, "localAuthorizationList")?
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    let entry = object(entry, "localAuthorizationList item")?;
                    let token = req_str(entry, "idTag")?.to_owned();
                    let info = opt_obj(entry, "idTagInfo")?.map(|i| token_info(Some(i)));
                    updates.push((token, info));
                }
                let per_message = self.config.uint(Setting::LocalListPerMessage) as usize;
                let capacity = self.config.uint(Setting::LocalListMaxLength) as usize;
                Ok(status(
                    match self
                        .local_list
                        .apply(version, kind, updates, per_message, capacity)
                    {
                        ListOutcome::Accepted => "Accepted",
                        ListOutcome::VersionMismatch => "VersionMismatch",
                        ListOutcome::Failed => "Failed",
                    },
                ))
            }
            "GetLocalListVersion" => Ok(json!({ "listVersion": self.local_list.version() })),
            other => Err(Fault::new(
                unhandled_action_code(OcppVersion::V16, other),
                format!("{other} is not supported by this charge point"),
            )),
        }
    }

    fn get_configuration(&self, o: &Obj) -> Result<Value, Fault> {
        let requested = opt_array(o, "key")?;
        let entry_json = |e: &super::config::Entry| {
            json!({
                "key": e.name,
                "readonly": e.mutability == Mutability::ReadOnly,
                "value": cut(&e.value, 500),
            })
        };
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        match requested {
            Some(keys) if !keys.is_empty() => {
                for key in keys {
                    let key = key.as_str().ok_or_else(|| {
                        Fault::new(
                            ErrorCode::TypeConstraintViolation,
                            "key items must be strings",
                        )
                    })?;
                    match self.config.get(key) {
                        Some(e) if e.mutability != Mutability::WriteOnly => {
                            known.push(entry_json(e))
                        }
                        _ => unknown.push(Value::String(key.to_owned())),
                    }
                }
            }
            _ => {
                known = self
                    .config
                    .entries()
                    .iter()
                    .filter(|e| e.mutability != Mutability::WriteOnly)
                    .map(entry_json)
                    .collect();
            }
        }
        let mut answer = Map::new();
        if !known.is_empty() {
            answer.insert("configurationKey".into(), Value::Array(known));
        }
        if !unknown.is_empty() {
            answer.insert("unknownKey".into(), Value::Array(unknown));
        }
        Ok(Value::Object(answer))
    }

    /// Periods of the composite schedule as OCPP JSON, in amps or watts.
    pub(super) fn composite_periods(
        &self,
        now: Millis,
        connector: u32,
        duration_s: u64,
        watts: bool,
    ) -> Vec<Value> {
        let key = self
            .connector(connector)
            .and_then(|c| c.tx.as_ref())
            .map(|t| (self.tx_key(t).unwrap_or_default(), t.started));
        let ctx = key
            .as_ref()
            .map(|(id, started)| super::profiles::TxContext {
                id,
                started: *started,
            });
        self.profiles
            .composite(now, duration_s, connector, ctx, self.spec.max_current_a)
            .into_iter()
            .map(|(start, amps)| {
                let limit = if watts {
                    amps * super::profiles::NOMINAL_VOLTAGE
                        * f64::from(super::profiles::DEFAULT_PHASES)
                } else {
                    amps
                };
                json!({ "startPeriod": start, "limit": (limit * 10.0).round() / 10.0 })
            })
            .collect()
    }

    /// DataTransfer: our own vendor id echoes the data back (message id `echo` or none);
    /// anything else is unknown.
    pub(super) fn data_transfer(&self, o: &Obj, version: OcppVersion) -> Value {
        let vendor = o
            .get("vendorId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if vendor != self.spec.vendor {
            return status("UnknownVendorId");
        }
        match o.get("messageId").and_then(Value::as_str) {
            None | Some("echo") | Some("Echo") => match o.get("data") {
                Some(Value::String(s)) => json!({ "status": "Accepted", "data": s }),
                Some(other) if version == OcppVersion::V201 && !other.is_null() => {
                    json!({ "status": "Accepted", "data": other })
                }
                _ => status("Accepted"),
            },
            Some(_) => status("UnknownMessageId"),
        }
    }
}

fn measurand_v16(sample: &MeterSample, measurand: &str) -> Option<Value> {
    let (value, unit) = match measurand {
        "Energy.Active.Import.Register" => (format!("{}", sample.energy_wh.round() as i64), "Wh"),
        "Power.Active.Import" => (format!("{:.1}", sample.power_w), "W"),
        "Power.Offered" => (
            format!(
                "{:.1}",
                sample.offered_a
                    * super::profiles::NOMINAL_VOLTAGE
                    * f64::from(super::profiles::DEFAULT_PHASES)
            ),
            "W",
        ),
        "Current.Import" => (format!("{:.1}", sample.current_a), "A"),
        "Current.Offered" => (format!("{:.1}", sample.offered_a), "A"),
        "Voltage" => (format!("{:.1}", super::profiles::NOMINAL_VOLTAGE), "V"),
        _ => return None,
    };
    Some(json!({
        "value": value,
        "context": sample.context,
        "measurand": measurand,
        "unit": unit,
    }))
}
