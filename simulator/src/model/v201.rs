//! OCPP 2.0.1 payloads of the charger model: the requests a 2.0.1 charging station sends,
//! how it reads the CSMS's answers, and how it answers each CSMS request, including the
//! device model (Get/SetVariables, GetBaseReport → NotifyReport).

use serde_json::{json, Map, Value};
use voltgate_ocpp::{unhandled_action_code, ErrorCode, OcppVersion};

use super::auth::{ListOutcome, TokenInfo, UpdateKind};
use super::clock::Millis;
use super::config::{Entry, Mutability, Setting, ValueKind, WriteOutcome};
use super::fields::{
    as_index, is_transfer_url, object, opt_array, opt_int, opt_obj, opt_str, opt_time, req_array,
    req_int, req_num, req_obj, req_str, Fault, Obj,
};
use super::profiles::{ClearFilter, Kind, Period, Profile, Purpose, RateUnit};
use super::{
    AvailabilityOutcome, BootReason, Charger, JobKind, JobStep, MeterSample, Outgoing,
    Registration, RemoteStart, StopReason, TxEvent,
};

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn status(word: &str) -> Value {
    json!({ "status": word })
}

fn property(description: impl Into<String>) -> Fault {
    Fault::new(ErrorCode::PropertyConstraintViolation, description)
}

fn stopped_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Local => "Local",
        StopReason::Remote => "Remote",
        StopReason::EvDisconnected => "EVDisconnected",
        StopReason::HardReset | StopReason::SoftReset => "ImmediateReset",
        StopReason::UnlockCommand => "Other",
        StopReason::DeAuthorized => "DeAuthorized",
    }
}

/// Reads a 2.0.1 `idTokenInfo`.
fn token_info(info: Option<&Obj>) -> TokenInfo {
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
            .get("cacheExpiryDateTime")
            .and_then(Value::as_str)
            .and_then(Millis::parse_rfc3339),
    }
}

fn parse_purpose(word: &str) -> Option<Purpose> {
    Some(match word {
        "ChargingStationMaxProfile" => Purpose::StationMax,
        "TxDefaultProfile" => Purpose::TxDefault,
        "TxProfile" => Purpose::Tx,
        "ChargingStationExternalConstraints" => Purpose::External,
        _ => return None,
    })
}

/// Reads a 2.0.1 `chargingProfile` (its first schedule).
fn parse_profile(o: &Obj, evse: u32) -> Result<Profile, Fault> {
    let purpose = parse_purpose(req_str(o, "chargingProfilePurpose")?)
        .ok_or_else(|| property("unknown chargingProfilePurpose"))?;
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
    let schedules = req_array(o, "chargingSchedule")?;
    let schedule = object(
        schedules.first().ok_or_else(|| {
            Fault::new(
                ErrorCode::OccurrenceConstraintViolation,
                "chargingSchedule is empty",
            )
        })?,
        "chargingSchedule",
    )?;
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
        id: req_int(o, "id")?,
        stack_level: req_int(o, "stackLevel")?,
        purpose,
        kind,
        connector: evse,
        transaction: opt_str(o, "transactionId")?.map(str::to_owned),
        valid_from: opt_time(o, "validFrom")?,
        valid_to: opt_time(o, "validTo")?,
        start_schedule: opt_time(schedule, "startSchedule")?,
        duration_s: opt_int(schedule, "duration")?,
        unit,
        periods,
        installed_at: Millis(0),
    })
}

fn measurand_v201(sample: &MeterSample, measurand: &str) -> Option<Value> {
    let nominal = super::profiles::NOMINAL_VOLTAGE;
    let phases = f64::from(super::profiles::DEFAULT_PHASES);
    let (value, unit) = match measurand {
        "Energy.Active.Import.Register" => (sample.energy_wh.round(), "Wh"),
        "Power.Active.Import" => (round1(sample.power_w), "W"),
        "Power.Offered" => (round1(sample.offered_a * nominal * phases), "W"),
        "Current.Import" => (round1(sample.current_a), "A"),
        "Current.Offered" => (round1(sample.offered_a), "A"),
        "Voltage" => (nominal, "V"),
        _ => return None,
    };
    Some(json!({
        "value": value,
        "context": sample.context,
        "measurand": measurand,
        "unitOfMeasure": { "unit": unit },
    }))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A component reference (`{name, evse?}`) as JSON.
fn component(name: &str, evse: Option<u32>) -> Value {
    match evse {
        Some(id) => json!({ "name": name, "evse": { "id": id } }),
        None => json!({ "name": name }),
    }
}

impl Charger {
    fn sampled_values_v201(&self, sample: &MeterSample) -> Vec<Value> {
        let setting = if sample.context == "Sample.Clock" {
            Setting::AlignedMeasurands
        } else {
            Setting::SampledMeasurands
        };
        let mut values: Vec<Value> = self
            .config
            .list(setting)
            .into_iter()
            .filter_map(|m| measurand_v201(sample, m))
            .collect();
        if values.is_empty() {
            values.extend(measurand_v201(sample, "Energy.Active.Import.Register"));
        }
        values
    }

    fn meter_value_v201(&self, sample: &MeterSample) -> Value {
        json!([{ "timestamp": sample.at.rfc3339(), "sampledValue": self.sampled_values_v201(sample) }])
    }

    fn id_token(&self, token: &str) -> Value {
        json!({ "idToken": cut(token, 36), "type": self.token_type(token) })
    }

    pub(super) fn render_v201(&mut self, msg: &Outgoing) -> Option<(&'static str, Value)> {
        let (action, payload) = match msg {
            Outgoing::Boot => (
                "BootNotification",
                json!({
                    "reason": self.boot_reason.as_str(),
                    "chargingStation": {
                        "model": cut(&self.spec.model, 20),
                        "vendorName": cut(&self.spec.vendor, 50),
                        "serialNumber": cut(&self.spec.serial, 25),
                        "firmwareVersion": cut(&self.firmware_version, 50),
                    },
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
                    "timestamp": at.rfc3339(),
                    "connectorStatus": status,
                    "evseId": connector,
                    "connectorId": 1,
                }),
            ),
            Outgoing::Authorize { token, .. } => {
                ("Authorize", json!({ "idToken": self.id_token(token) }))
            }
            Outgoing::Meter {
                connector, sample, ..
            } => (
                "MeterValues",
                json!({ "evseId": connector, "meterValue": self.meter_value_v201(sample) }),
            ),
            Outgoing::TxEvent(event) => ("TransactionEvent", self.tx_event_payload(event)),
            Outgoing::Firmware { status, request_id } => {
                let mut payload = json!({ "status": status });
                if let (Some(id), Some(map)) = (request_id, payload.as_object_mut()) {
                    map.insert("requestId".into(), json!(id));
                }
                ("FirmwareStatusNotification", payload)
            }
            Outgoing::Log { status, request_id } => {
                let mut payload = json!({ "status": status });
                if let (Some(id), Some(map)) = (request_id, payload.as_object_mut()) {
                    map.insert("requestId".into(), json!(id));
                }
                ("LogStatusNotification", payload)
            }
            Outgoing::Report {
                request_id,
                seq_no,
                tbc,
                at,
                items,
            } => (
                "NotifyReport",
                json!({
                    "requestId": request_id,
                    "generatedAt": at.rfc3339(),
                    "seqNo": seq_no,
                    "tbc": tbc,
                    "reportData": items,
                }),
            ),
            Outgoing::StartTx { .. }
            | Outgoing::StopTx { .. }
            | Outgoing::Diagnostics { .. }
            | Outgoing::ClosedLoop(_) => return None,
        };
        Some((action, payload))
    }

    fn tx_event_payload(&self, e: &TxEvent) -> Value {
        let mut info = Map::new();
        info.insert("transactionId".into(), json!(e.uid));
        if let Some(state) = e.charging_state {
            info.insert("chargingState".into(), json!(state));
        }
        if let Some(reason) = e.stopped_reason {
            info.insert("stoppedReason".into(), json!(stopped_reason(reason)));
        }
        if let Some(id) = e.remote_start_id {
            info.insert("remoteStartId".into(), json!(id));
        }
        let mut payload = Map::new();
        payload.insert("eventType".into(), json!(e.event_type));
        payload.insert("timestamp".into(), json!(e.at.rfc3339()));
        payload.insert("triggerReason".into(), json!(e.trigger));
        payload.insert("seqNo".into(), json!(e.seq_no));
        payload.insert("transactionInfo".into(), Value::Object(info));
        payload.insert("evse".into(), json!({ "id": e.evse, "connectorId": 1 }));
        if e.offline {
            payload.insert("offline".into(), json!(true));
        }
        if let Some(token) = &e.token {
            payload.insert("idToken".into(), self.id_token(token));
        }
        if let Some(sample) = &e.sample {
            payload.insert("meterValue".into(), self.meter_value_v201(sample));
        }
        Value::Object(payload)
    }

    pub(super) fn on_result_v201(&mut self, now: Millis, msg: Outgoing, payload: &Value) {
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
                let info = token_info(o.get("idTokenInfo").and_then(Value::as_object));
                self.authorize_verdict(now, connector, &token, remote, info);
            }
            Outgoing::TxEvent(event) => {
                let (Some(token), Some(info)) = (
                    &event.token,
                    o.get("idTokenInfo").and_then(Value::as_object),
                ) else {
                    return;
                };
                let info = token_info(Some(info));
                let running = self
                    .connector(event.evse)
                    .and_then(|c| c.tx.as_ref())
                    .is_some_and(|t| t.uid == event.uid);
                if running {
                    self.tx_token_verdict(now, event.evse, token, info);
                } else if self.config.flag(Setting::AuthCacheEnabled, true) {
                    self.cache.remember(token, info);
                }
            }
            _ => {}
        }
    }

    pub(super) fn handle_call_v201(
        &mut self,
        now: Millis,
        action: &str,
        payload: &Value,
    ) -> Result<Value, Fault> {
        let o = object(payload, "payload")?;
        match action {
            "RequestStartTransaction" => {
                let token_obj = req_obj(o, "idToken")?;
                let token = req_str(token_obj, "idToken")?.to_owned();
                let token_type = req_str(token_obj, "type")?.to_owned();
                let remote_start_id = req_int(o, "remoteStartId")?;
                let evse = opt_int(o, "evseId")?
                    .map(|e| as_index(e, "evseId"))
                    .transpose()?;
                let profile = match opt_obj(o, "chargingProfile")? {
                    Some(p) => {
                        let profile = parse_profile(p, evse.unwrap_or(0))?;
                        if profile.purpose != Purpose::Tx {
                            return Ok(status("Rejected"));
                        }
                        Some(profile)
                    }
                    None => None,
                };
                if evse == Some(0) {
                    return Ok(status("Rejected"));
                }
                let request = RemoteStart {
                    connector: evse,
                    token,
                    token_type: Some(token_type),
                    remote_start_id: Some(remote_start_id),
                    profile,
                };
                match self.remote_start(now, request) {
                    Some(evse) => {
                        let mut answer = json!({ "status": "Accepted" });
                        if let (Some(id), Some(map)) =
                            (self.transaction_id(evse), answer.as_object_mut())
                        {
                            map.insert("transactionId".into(), json!(id));
                        }
                        Ok(answer)
                    }
                    None => Ok(status("Rejected")),
                }
            }
            "RequestStopTransaction" => {
                let id = req_str(o, "transactionId")?;
                Ok(status(if self.remote_stop(now, id) {
                    "Accepted"
                } else {
                    "Rejected"
                }))
            }
            "UnlockConnector" => {
                let evse = as_index(req_int(o, "evseId")?, "evseId")?;
                let connector = req_int(o, "connectorId")?;
                let Some(c) = self.connector(evse).filter(|_| connector == 1) else {
                    return Ok(status("UnknownConnector"));
                };
                if c.tx.as_ref().is_some_and(|t| !t.deauthorized) {
                    return Ok(status("OngoingAuthorizedTransaction"));
                }
                self.stop_transaction(now, evse, StopReason::UnlockCommand);
                self.unlock(now, evse);
                Ok(status("Unlocked"))
            }
            "Reset" => {
                let immediate = match req_str(o, "type")? {
                    "Immediate" => true,
                    "OnIdle" => false,
                    other => return Err(property(format!("unknown reset type {other}"))),
                };
                match opt_int(o, "evseId")?
                    .map(|e| as_index(e, "evseId"))
                    .transpose()?
                {
                    Some(evse) => {
                        let Some(c) = self.connector(evse) else {
                            return Ok(status("Rejected"));
                        };
                        if c.tx.is_none() {
                            return Ok(status("Accepted"));
                        }
                        if immediate {
                            self.stop_transaction(now, evse, StopReason::HardReset);
                            Ok(status("Accepted"))
                        } else {
                            Ok(status("Scheduled"))
                        }
                    }
                    None if immediate || self.idle() => {
                        self.begin_reboot(now, BootReason::RemoteReset, false);
                        Ok(status("Accepted"))
                    }
                    None => {
                        self.reset_when_idle = true;
                        Ok(status("Scheduled"))
                    }
                }
            }
            "UpdateFirmware" => self.update_firmware(now, o),
            "GetVariables" => self.get_variables(o),
            "SetVariables" => self.set_variables(now, o),
            "GetBaseReport" => self.get_base_report(now, o),
            "SetChargingProfile" => {
                let evse = as_index(req_int(o, "evseId")?, "evseId")?;
                let profile = parse_profile(req_obj(o, "chargingProfile")?, evse)?;
                if !self.config.flag(Setting::SmartChargingEnabled, true) {
                    return Ok(status("Rejected"));
                }
                if profile.purpose == Purpose::Tx && profile.transaction.is_none() {
                    return Ok(status("Rejected"));
                }
                Ok(status(if self.install_profile(now, profile) {
                    "Accepted"
                } else {
                    "Rejected"
                }))
            }
            "ClearChargingProfile" => {
                let criteria = opt_obj(o, "chargingProfileCriteria")?;
                let mut filter = ClearFilter {
                    id: opt_int(o, "chargingProfileId")?,
                    ..ClearFilter::default()
                };
                if let Some(c) = criteria {
                    filter.connector = opt_int(c, "evseId")?
                        .map(|e| as_index(e, "evseId"))
                        .transpose()?;
                    filter.purpose = opt_str(c, "chargingProfilePurpose")?.and_then(parse_purpose);
                    filter.stack_level = opt_int(c, "stackLevel")?;
                }
                Ok(status(if self.profiles.clear(&filter) > 0 {
                    "Accepted"
                } else {
                    "Unknown"
                }))
            }
            "GetCompositeSchedule" => {
                let evse = as_index(req_int(o, "evseId")?, "evseId")?;
                let duration = u64::try_from(req_int(o, "duration")?).unwrap_or(0);
                if evse > self.spec.connectors {
                    return Ok(status("Rejected"));
                }
                let watts = opt_str(o, "chargingRateUnit")? == Some("W");
                let periods = self.composite_periods(now, evse, duration, watts);
                Ok(json!({
                    "status": "Accepted",
                    "schedule": {
                        "evseId": evse,
                        "duration": duration,
                        "scheduleStart": self.wall(now).rfc3339(),
                        "chargingRateUnit": if watts { "W" } else { "A" },
                        "chargingSchedulePeriod": periods,
                    },
                }))
            }
            "ChangeAvailability" => {
                let operative = match req_str(o, "operationalStatus")? {
                    "Operative" => true,
                    "Inoperative" => false,
                    other => return Err(property(format!("unknown operationalStatus {other}"))),
                };
                let evse = match opt_obj(o, "evse")? {
                    Some(e) => Some(as_index(req_int(e, "id")?, "evse.id")?),
                    None => None,
                };
                if evse.is_some_and(|e| e > self.spec.connectors) {
                    return Ok(status("Rejected"));
                }
                Ok(status(
                    match self.change_availability(evse.filter(|e| *e != 0), operative) {
                        AvailabilityOutcome::Accepted => "Accepted",
                        AvailabilityOutcome::Scheduled => "Scheduled",
                        AvailabilityOutcome::Rejected => "Rejected",
                    },
                ))
            }
            "TriggerMessage" => self.trigger_message(now, o),
            "GetLog" => {
                let log = req_obj(o, "log")?;
                let location = req_str(log, "remoteLocation")?;
                let request_id = req_int(o, "requestId")?;
                let log_type = req_str(o, "logType")?;
                let replaced = self.upload_job.is_some();
                let last = if is_transfer_url(location) {
                    "Uploaded"
                } else {
                    "UploadFailure"
                };
                self.start_job(
                    now,
                    JobKind::Upload,
                    Some(request_id),
                    vec![JobStep::Notify("Uploading"), JobStep::Notify(last)],
                );
                let file = format!("{}-{}.log", log_type.to_ascii_lowercase(), request_id);
                Ok(
                    json!({ "status": if replaced { "AcceptedCanceled" } else { "Accepted" }, "filename": file }),
                )
            }
            "ClearCache" => {
                if !self.config.flag(Setting::AuthCacheEnabled, true) {
                    return Ok(status("Rejected"));
                }
                self.cache.clear();
                Ok(status("Accepted"))
            }
            "DataTransfer" => Ok(self.data_transfer(o, OcppVersion::V201)),
            "SendLocalList" => {
                let version = req_int(o, "versionNumber")?;
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
                    let token_obj = req_obj(entry, "idToken")?;
                    let token = req_str(token_obj, "idToken")?.to_owned();
                    if let Some(kind) = opt_str(token_obj, "type")? {
                        self.token_types.insert(token.clone(), kind.to_owned());
                    }
                    let info = opt_obj(entry, "idTokenInfo")?.map(|i| token_info(Some(i)));
                    updates.push((token, info));
                }
                let per_message = self.config.uint(Setting::LocalListPerMessage) as usize;
                let bytes_limit = self.config.uint(Setting::LocalListBytesPerMessage) as usize;
                let capacity = self.spec.local_list.capacity as usize;
                // BytesPerMessage counted over the request payload as serialized.
                let bytes = Value::Object(o.clone()).to_string().len();
                let outcome = if bytes > bytes_limit {
                    ListOutcome::Failed
                } else {
                    self.local_list
                        .apply(version, kind, updates, per_message, capacity)
                };
                self.config.set_named(
                    "LocalAuthListCtrlr",
                    "Entries",
                    self.local_list.len().to_string(),
                );
                Ok(status(match outcome {
                    ListOutcome::Accepted => "Accepted",
                    ListOutcome::VersionMismatch => "VersionMismatch",
                    ListOutcome::Failed => "Failed",
                }))
            }
            "GetLocalListVersion" => Ok(json!({ "versionNumber": self.local_list.version() })),
            other => Err(Fault::new(
                unhandled_action_code(OcppVersion::V201, other),
                format!("{other} is not supported by this charging station"),
            )),
        }
    }

    fn update_firmware(&mut self, now: Millis, o: &Obj) -> Result<Value, Fault> {
        let request_id = req_int(o, "requestId")?;
        let firmware = req_obj(o, "firmware")?;
        let location = req_str(firmware, "location")?.to_owned();
        let retrieve = opt_time(firmware, "retrieveDateTime")?.ok_or_else(|| {
            Fault::new(
                ErrorCode::OccurrenceConstraintViolation,
                "retrieveDateTime is required",
            )
        })?;
        let install = opt_time(firmware, "installDateTime")?;
        let signed = opt_str(firmware, "signature")?.is_some();
        let to_local = |at: Millis| Millis(at.0.saturating_add_signed(-self.clock_offset_ms));
        let replaced = self.firmware_job.is_some();
        let mut steps = Vec::new();
        if to_local(retrieve) > now {
            steps.extend([
                JobStep::Notify("DownloadScheduled"),
                JobStep::NotBefore(to_local(retrieve)),
            ]);
        }
        steps.push(JobStep::Notify("Downloading"));
        if is_transfer_url(&location) {
            steps.push(JobStep::Notify("Downloaded"));
            if signed {
                steps.push(JobStep::Notify("SignatureVerified"));
            }
            if let Some(at) = install.map(to_local).filter(|at| *at > now) {
                steps.extend([JobStep::Notify("InstallScheduled"), JobStep::NotBefore(at)]);
            }
            steps.extend([
                JobStep::WhenIdle,
                JobStep::Notify("Installing"),
                JobStep::SetFirmware(self.firmware_from(&location)),
                JobStep::Notify("InstallRebooting"),
                JobStep::Reboot,
                JobStep::AfterBoot,
                JobStep::Notify("Installed"),
            ]);
        } else {
            steps.push(JobStep::Notify("DownloadFailed"));
        }
        self.start_job(now, JobKind::Firmware, Some(request_id), steps);
        Ok(status(if replaced {
            "AcceptedCanceled"
        } else {
            "Accepted"
        }))
    }

    /// Reads the availability variables the device model derives from live state:
    /// `AvailabilityState` of `ChargingStation`, of each `EVSE` and of each `Connector`.
    fn dynamic_variable(
        &self,
        component: &str,
        evse: Option<u32>,
        variable: &str,
    ) -> Option<String> {
        if variable != "AvailabilityState" {
            return None;
        }
        match (component, evse) {
            ("ChargingStation", _) => Some(self.station_status().to_owned()),
            ("EVSE" | "Connector", Some(id)) => self.status(id).map(str::to_owned),
            _ => None,
        }
    }

    fn get_variables(&self, o: &Obj) -> Result<Value, Fault> {
        let mut results = Vec::new();
        for item in req_array(o, "getVariableData")? {
            let item = object(item, "getVariableData item")?;
            let comp = req_obj(item, "component")?;
            let var = req_obj(item, "variable")?;
            let comp_name = req_str(comp, "name")?;
            let var_name = req_str(var, "name")?;
            let evse = opt_obj(comp, "evse")?
                .map(|e| req_int(e, "id"))
                .transpose()?;
            let evse = evse.and_then(|e| u32::try_from(e).ok());
            let attribute = opt_str(item, "attributeType")?.unwrap_or("Actual");
            let mut result = Map::new();
            result.insert("component".into(), Value::Object(comp.clone()));
            result.insert("variable".into(), Value::Object(var.clone()));
            if attribute != "Actual" {
                result.insert("attributeType".into(), json!(attribute));
                result.insert("attributeStatus".into(), json!("NotSupportedAttributeType"));
            } else if let Some(value) = self.dynamic_variable(comp_name, evse, var_name) {
                result.insert("attributeStatus".into(), json!("Accepted"));
                result.insert("attributeValue".into(), json!(value));
            } else {
                match self.config.variable(comp_name, var_name) {
                    Some(e) if e.mutability == Mutability::WriteOnly => {
                        result.insert("attributeStatus".into(), json!("Rejected"));
                    }
                    Some(e) => {
                        result.insert("attributeStatus".into(), json!("Accepted"));
                        result.insert("attributeValue".into(), json!(cut(&e.value, 2500)));
                    }
                    None if self.config.has_component(comp_name)
                        || is_dynamic_component(comp_name) =>
                    {
                        result.insert("attributeStatus".into(), json!("UnknownVariable"));
                    }
                    None => {
                        result.insert("attributeStatus".into(), json!("UnknownComponent"));
                    }
                }
            }
            results.push(Value::Object(result));
        }
        Ok(json!({ "getVariableResult": results }))
    }

    fn set_variables(&mut self, now: Millis, o: &Obj) -> Result<Value, Fault> {
        let mut results = Vec::new();
        for item in req_array(o, "setVariableData")? {
            let item = object(item, "setVariableData item")?;
            let comp = req_obj(item, "component")?;
            let var = req_obj(item, "variable")?;
            let comp_name = req_str(comp, "name")?;
            let var_name = req_str(var, "name")?;
            let value = req_str(item, "attributeValue")?;
            let attribute = opt_str(item, "attributeType")?.unwrap_or("Actual");
            let word = if attribute != "Actual" {
                "NotSupportedAttributeType"
            } else if is_dynamic_component(comp_name) && var_name == "AvailabilityState" {
                "Rejected"
            } else {
                let setting = self
                    .config
                    .variable(comp_name, var_name)
                    .and_then(|e| e.setting);
                match self.config.write(comp_name, var_name, value) {
                    WriteOutcome::Accepted => {
                        self.config_changed(now, setting);
                        "Accepted"
                    }
                    WriteOutcome::RebootRequired => "RebootRequired",
                    WriteOutcome::Rejected => "Rejected",
                    WriteOutcome::UnknownComponent if is_dynamic_component(comp_name) => {
                        "UnknownVariable"
                    }
                    WriteOutcome::UnknownComponent => "UnknownComponent",
                    WriteOutcome::UnknownVariable => "UnknownVariable",
                }
            };
            let mut result = Map::new();
            if attribute != "Actual" {
                result.insert("attributeType".into(), json!(attribute));
            }
            result.insert("attributeStatus".into(), json!(word));
            result.insert("component".into(), Value::Object(comp.clone()));
            result.insert("variable".into(), Value::Object(var.clone()));
            results.push(Value::Object(result));
        }
        Ok(json!({ "setVariableResult": results }))
    }

    fn report_item(entry: &Entry) -> Value {
        let mut attribute = Map::new();
        attribute.insert("type".into(), json!("Actual"));
        if entry.mutability != Mutability::WriteOnly {
            attribute.insert("value".into(), json!(cut(&entry.value, 2500)));
        }
        attribute.insert("mutability".into(), json!(entry.mutability.as_str()));
        attribute.insert("persistent".into(), json!(true));
        attribute.insert(
            "constant".into(),
            json!(entry.mutability == Mutability::ReadOnly),
        );
        let mut characteristics = Map::new();
        characteristics.insert("dataType".into(), json!(entry.kind.data_type()));
        characteristics.insert("supportsMonitoring".into(), json!(false));
        match entry.kind {
            ValueKind::OneOf(options) => {
                characteristics.insert("valuesList".into(), json!(options.join(",")));
            }
            ValueKind::Integer { min, max } => {
                characteristics.insert("minLimit".into(), json!(min));
                characteristics.insert("maxLimit".into(), json!(max));
            }
            _ => {}
        }
        json!({
            "component": component(entry.component, None),
            "variable": { "name": entry.name },
            "variableAttribute": [Value::Object(attribute)],
            "variableCharacteristics": Value::Object(characteristics),
        })
    }

    fn availability_items(&self) -> Vec<Value> {
        let item = |component: Value, value: &str| {
            json!({
                "component": component,
                "variable": { "name": "AvailabilityState" },
                "variableAttribute": [{ "type": "Actual", "value": value, "mutability": "ReadOnly", "persistent": false, "constant": false }],
                "variableCharacteristics": { "dataType": "OptionList", "supportsMonitoring": false, "valuesList": "Available,Occupied,Reserved,Unavailable,Faulted" },
            })
        };
        let mut items = vec![item(
            component("ChargingStation", None),
            self.station_status(),
        )];
        for c in &self.connectors {
            let status = self.derived_status(c);
            items.push(item(component("EVSE", Some(c.id)), status));
            items.push(item(
                json!({ "name": "Connector", "evse": { "id": c.id, "connectorId": 1 } }),
                status,
            ));
        }
        items
    }

    fn get_base_report(&mut self, now: Millis, o: &Obj) -> Result<Value, Fault> {
        let request_id = req_int(o, "requestId")?;
        let items: Vec<Value> = match req_str(o, "reportBase")? {
            "ConfigurationInventory" => self
                .config
                .entries()
                .iter()
                .filter(|e| e.mutability != Mutability::ReadOnly)
                .map(Self::report_item)
                .collect(),
            "FullInventory" => {
                let mut items: Vec<Value> = self
                    .config
                    .entries()
                    .iter()
                    .map(Self::report_item)
                    .collect();
                items.extend(self.availability_items());
                items
            }
            "SummaryInventory" => self.availability_items(),
            other => return Err(property(format!("unknown reportBase {other}"))),
        };
        if items.is_empty() {
            return Ok(status("EmptyResultSet"));
        }
        let per_message = self.config.uint(Setting::ReportItemsPerMessage).max(1) as usize;
        let parts: Vec<Vec<Value>> = items.chunks(per_message).map(<[Value]>::to_vec).collect();
        let count = parts.len();
        let at = self.wall(now);
        for (seq_no, items) in parts.into_iter().enumerate() {
            let msg = Outgoing::Report {
                request_id,
                seq_no: seq_no as i64,
                tbc: seq_no + 1 < count,
                at,
                items,
            };
            self.enqueue(now, msg);
        }
        Ok(status("Accepted"))
    }

    fn trigger_message(&mut self, now: Millis, o: &Obj) -> Result<Value, Fault> {
        let evse = match opt_obj(o, "evse")? {
            Some(e) => Some(as_index(req_int(e, "id")?, "evse.id")?),
            None => None,
        };
        if evse.is_some_and(|e| e > self.spec.connectors) {
            return Ok(status("Rejected"));
        }
        let evse = evse.filter(|e| *e > 0);
        match req_str(o, "requestedMessage")? {
            "BootNotification" => {
                if self.registration == Registration::Accepted {
                    return Ok(status("Rejected"));
                }
                self.boot_reason = BootReason::Triggered;
                self.boot_at = Some(now);
            }
            "LogStatusNotification" => {
                let (status, request_id) = self
                    .upload_job
                    .as_ref()
                    .map_or(("Idle", None), |j| (j.status, j.request_id));
                self.enqueue_front(now, Outgoing::Log { status, request_id });
            }
            "FirmwareStatusNotification" => {
                let (status, request_id) = self
                    .firmware_job
                    .as_ref()
                    .map_or(("Idle", None), |j| (j.status, j.request_id));
                self.enqueue_front(now, Outgoing::Firmware { status, request_id });
            }
            "Heartbeat" => self.enqueue_front(now, Outgoing::Heartbeat),
            "MeterValues" => self.queue_triggered_readings(now, evse),
            "StatusNotification" => self.queue_triggered_statuses(now, evse),
            "TransactionEvent" => {
                let targets: Vec<usize> = self
                    .connectors
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.tx.is_some() && evse.is_none_or(|e| e == c.id))
                    .map(|(i, _)| i)
                    .collect();
                if targets.is_empty() {
                    return Ok(status("Rejected"));
                }
                for index in targets {
                    let sample = self.sample(&self.connectors[index], now, "Trigger");
                    self.queue_tx_event(now, index, "Updated", "Trigger", Some(sample), None);
                }
            }
            _ => return Ok(status("NotImplemented")),
        }
        Ok(status("Accepted"))
    }
}

fn is_dynamic_component(name: &str) -> bool {
    matches!(name, "ChargingStation" | "EVSE" | "Connector")
}
