//! The charger's configuration store: the 1.6 configuration keys read and written by
//! Get/ChangeConfiguration, and the 2.0.1 device-model variables read and written by
//! Get/SetVariables and listed by GetBaseReport. Each entry knows its type, whether it may be
//! written, and (where the model acts on it) which behaviour it drives.

use std::collections::HashMap;

use voltgate_ocpp::{password, OcppVersion};

/// A configuration value the charger model acts on, whatever its name in a given version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    HeartbeatInterval,
    MeterSampleInterval,
    SampledMeasurands,
    ClockAlignedInterval,
    AlignedMeasurands,
    AuthorizeRemoteStart,
    LocalAuthorizeOffline,
    LocalPreAuthorize,
    OfflineTxForUnknownId,
    AuthCacheEnabled,
    LocalListEnabled,
    /// Entries the local list can hold (1.6 `LocalAuthListMaxLength`).
    LocalListMaxLength,
    /// Entries per SendLocalList (1.6 `SendLocalListMaxLength`, 2.0.1 `ItemsPerMessage`).
    LocalListPerMessage,
    /// Serialized bytes per SendLocalList (2.0.1 `BytesPerMessage`).
    LocalListBytesPerMessage,
    ConnectionTimeout,
    StopTxOnInvalidId,
    StopTxOnEvDisconnect,
    MessageAttempts,
    MessageRetryInterval,
    MaxStackLevel,
    MaxPeriods,
    MaxProfiles,
    SmartChargingEnabled,
    BasicAuthPassword,
    ReportItemsPerMessage,
}

/// Who may read or write an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "ReadOnly",
            Mutability::ReadWrite => "ReadWrite",
            Mutability::WriteOnly => "WriteOnly",
        }
    }
}

/// What values an entry accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueKind {
    Integer {
        min: i64,
        max: i64,
    },
    Boolean,
    /// A comma-separated list of measurand names.
    Measurands,
    /// One of a fixed set of words.
    OneOf(&'static [&'static str]),
    /// Free text up to a length.
    Text {
        max_len: usize,
    },
    /// A 1.6 `AuthorizationKey`: the Basic-auth password in hexadecimal, decoded on write as
    /// a real charger does (see `voltgate_ocpp::password`).
    HexPassword,
    /// A 2.0.1 `BasicAuthPassword`: 16 to 40 `passwordString` characters, taken as is.
    Password,
}

impl ValueKind {
    /// The 2.0.1 device-model data type of this kind.
    pub fn data_type(self) -> &'static str {
        match self {
            ValueKind::Integer { .. } => "integer",
            ValueKind::Boolean => "boolean",
            ValueKind::Measurands => "MemberList",
            ValueKind::OneOf(_) => "OptionList",
            ValueKind::Text { .. } | ValueKind::HexPassword | ValueKind::Password => "string",
        }
    }

    fn accepts(self, value: &str, version: OcppVersion) -> bool {
        match self {
            ValueKind::Integer { min, max } => value
                .trim()
                .parse::<i64>()
                .is_ok_and(|n| (min..=max).contains(&n)),
            ValueKind::Boolean => matches!(value, "true" | "false" | "True" | "False"),
            ValueKind::Measurands => value
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .all(|m| is_measurand(version, m)),
            ValueKind::OneOf(options) => options.contains(&value),
            ValueKind::Text { max_len } => value.chars().count() <= max_len,
            ValueKind::HexPassword => password::decode_authorization_key(value).is_ok(),
            ValueKind::Password => password::check_password(Some(OcppVersion::V201), value).is_ok(),
        }
    }
}

/// One configuration key (1.6) or component variable (2.0.1).
#[derive(Debug, Clone)]
pub struct Entry {
    /// The 2.0.1 component name; empty for 1.6 keys.
    pub component: &'static str,
    /// The 1.6 key or the 2.0.1 variable name.
    pub name: &'static str,
    pub value: String,
    pub mutability: Mutability,
    pub kind: ValueKind,
    pub setting: Option<Setting>,
    pub reboot_required: bool,
}

impl Entry {
    /// The key as the operator API writes it: `Name` for 1.6, `Component.Name` for 2.0.1.
    pub fn key(&self) -> String {
        if self.component.is_empty() {
            self.name.to_owned()
        } else {
            format!("{}.{}", self.component, self.name)
        }
    }
}

/// Why a write was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Accepted,
    RebootRequired,
    Rejected,
    UnknownComponent,
    UnknownVariable,
}

/// The values the model starts from, before any gateway writes.
#[derive(Debug, Clone)]
pub struct ConfigDefaults {
    pub connectors: u32,
    pub heartbeat_interval_s: u32,
    pub meter_interval_s: u32,
    pub password: Option<String>,
    pub local_list: LocalListLimits,
}

/// The local authorisation list limits a charger reports and enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalListLimits {
    /// Entries per SendLocalList.
    pub per_message: u32,
    /// Serialized bytes of a SendLocalList payload (2.0.1 only).
    pub bytes_per_message: u32,
    /// Entries the list can hold (1.6 `LocalAuthListMaxLength`; 2.0.1 the `maxLimit` of
    /// `LocalAuthListCtrlr.Entries`).
    pub capacity: u32,
}

impl Default for LocalListLimits {
    fn default() -> Self {
        LocalListLimits {
            per_message: 1000,
            bytes_per_message: 65_536,
            capacity: 1000,
        }
    }
}

/// The configuration store of one charger.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    version: OcppVersion,
    entries: Vec<Entry>,
    by_key: HashMap<String, usize>,
    /// Entry index per [`Setting`] (as `usize`), so the model's reads cost no search.
    by_setting: [Option<usize>; SETTING_COUNT],
    /// Each entry's value read as an integer (0 when it is not one), kept in step with writes.
    ints: Vec<i64>,
}

/// How many [`Setting`] variants there are.
const SETTING_COUNT: usize = Setting::ReportItemsPerMessage as usize + 1;

fn parse_int(value: &str) -> i64 {
    value.trim().parse().unwrap_or(0)
}

const DEFAULT_MEASURANDS: &str =
    "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Current.Offered";

const MEASURANDS_V16: &[&str] = &[
    "Energy.Active.Export.Register",
    "Energy.Active.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval",
    "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Power.Active.Export",
    "Power.Active.Import",
    "Power.Offered",
    "Power.Reactive.Export",
    "Power.Reactive.Import",
    "Power.Factor",
    "Current.Import",
    "Current.Export",
    "Current.Offered",
    "Voltage",
    "Frequency",
    "Temperature",
    "SoC",
    "RPM",
];

/// Whether `name` is a measurand of `version` (2.0.1 adds `Energy.Active.Net` and friends
/// and drops `Temperature` and `RPM`).
pub fn is_measurand(version: OcppVersion, name: &str) -> bool {
    match version {
        OcppVersion::V16 => MEASURANDS_V16.contains(&name),
        OcppVersion::V201 => {
            (MEASURANDS_V16.contains(&name) && name != "Temperature" && name != "RPM")
                || matches!(
                    name,
                    "Energy.Active.Net"
                        | "Energy.Reactive.Net"
                        | "Energy.Apparent.Net"
                        | "Energy.Apparent.Import"
                        | "Energy.Apparent.Export"
                )
        }
    }
}

struct Spec {
    component: &'static str,
    name: &'static str,
    value: String,
    mutability: Mutability,
    kind: ValueKind,
    setting: Option<Setting>,
}

fn rw(
    component: &'static str,
    name: &'static str,
    value: impl Into<String>,
    kind: ValueKind,
) -> Spec {
    Spec {
        component,
        name,
        value: value.into(),
        mutability: Mutability::ReadWrite,
        kind,
        setting: None,
    }
}

fn ro(
    component: &'static str,
    name: &'static str,
    value: impl Into<String>,
    kind: ValueKind,
) -> Spec {
    Spec {
        component,
        name,
        value: value.into(),
        mutability: Mutability::ReadOnly,
        kind,
        setting: None,
    }
}

impl Spec {
    fn drives(mut self, setting: Setting) -> Spec {
        self.setting = Some(setting);
        self
    }
}

const SECONDS: ValueKind = ValueKind::Integer {
    min: 0,
    max: 86_400 * 7,
};
const COUNT: ValueKind = ValueKind::Integer {
    min: 0,
    max: 1_000_000,
};
const BOOL: ValueKind = ValueKind::Boolean;

fn v16_entries(d: &ConfigDefaults) -> Vec<Spec> {
    use Setting as S;
    let connectors = d.connectors.to_string();
    vec![
        rw("", "AllowOfflineTxForUnknownId", "false", BOOL).drives(S::OfflineTxForUnknownId),
        rw("", "AuthorizationCacheEnabled", "true", BOOL).drives(S::AuthCacheEnabled),
        rw("", "AuthorizeRemoteTxRequests", "false", BOOL).drives(S::AuthorizeRemoteStart),
        rw("", "ClockAlignedDataInterval", "0", SECONDS).drives(S::ClockAlignedInterval),
        rw("", "ConnectionTimeOut", "60", SECONDS).drives(S::ConnectionTimeout),
        rw(
            "",
            "ConnectorPhaseRotation",
            "0.RST",
            ValueKind::Text { max_len: 500 },
        ),
        ro("", "GetConfigurationMaxKeys", "64", COUNT),
        rw(
            "",
            "HeartbeatInterval",
            d.heartbeat_interval_s.to_string(),
            SECONDS,
        )
        .drives(S::HeartbeatInterval),
        rw("", "LocalAuthorizeOffline", "true", BOOL).drives(S::LocalAuthorizeOffline),
        rw("", "LocalPreAuthorize", "false", BOOL).drives(S::LocalPreAuthorize),
        rw(
            "",
            "MeterValuesAlignedData",
            "Energy.Active.Import.Register",
            ValueKind::Measurands,
        )
        .drives(S::AlignedMeasurands),
        rw(
            "",
            "MeterValuesSampledData",
            DEFAULT_MEASURANDS,
            ValueKind::Measurands,
        )
        .drives(S::SampledMeasurands),
        rw(
            "",
            "MeterValueSampleInterval",
            d.meter_interval_s.to_string(),
            SECONDS,
        )
        .drives(S::MeterSampleInterval),
        ro("", "NumberOfConnectors", connectors, COUNT),
        rw("", "ResetRetries", "3", COUNT),
        rw("", "StopTransactionOnEVSideDisconnect", "true", BOOL).drives(S::StopTxOnEvDisconnect),
        rw("", "StopTransactionOnInvalidId", "true", BOOL).drives(S::StopTxOnInvalidId),
        rw("", "StopTxnAlignedData", "", ValueKind::Measurands),
        rw("", "StopTxnSampledData", "", ValueKind::Measurands),
        ro(
            "",
            "SupportedFeatureProfiles",
            "Core,FirmwareManagement,LocalAuthListManagement,RemoteTrigger,SmartCharging",
            ValueKind::Text { max_len: 500 },
        ),
        rw("", "TransactionMessageAttempts", "3", COUNT).drives(S::MessageAttempts),
        rw("", "TransactionMessageRetryInterval", "10", SECONDS).drives(S::MessageRetryInterval),
        rw("", "UnlockConnectorOnEVSideDisconnect", "true", BOOL),
        rw("", "WebSocketPingInterval", "0", SECONDS),
        rw("", "LocalAuthListEnabled", "true", BOOL).drives(S::LocalListEnabled),
        ro(
            "",
            "LocalAuthListMaxLength",
            d.local_list.capacity.to_string(),
            COUNT,
        )
        .drives(S::LocalListMaxLength),
        ro(
            "",
            "SendLocalListMaxLength",
            d.local_list.per_message.to_string(),
            COUNT,
        )
        .drives(S::LocalListPerMessage),
        ro("", "ChargeProfileMaxStackLevel", "10", COUNT).drives(S::MaxStackLevel),
        ro(
            "",
            "ChargingScheduleAllowedChargingRateUnit",
            "Current,Power",
            ValueKind::Text { max_len: 500 },
        ),
        ro("", "ChargingScheduleMaxPeriods", "24", COUNT).drives(S::MaxPeriods),
        ro("", "MaxChargingProfilesInstalled", "16", COUNT).drives(S::MaxProfiles),
        Spec {
            component: "",
            name: "AuthorizationKey",
            value: d.password.clone().unwrap_or_default(),
            mutability: Mutability::WriteOnly,
            kind: ValueKind::HexPassword,
            setting: Some(S::BasicAuthPassword),
        },
    ]
}

fn v201_entries(d: &ConfigDefaults) -> Vec<Spec> {
    use Setting as S;
    const TX_START: &[&str] = &["PowerPathClosed"];
    const TX_STOP: &[&str] = &["EVConnected,Authorized"];
    const SECURITY_PROFILES: &[&str] = &["1", "2", "3"];
    vec![
        rw(
            "OCPPCommCtrlr",
            "HeartbeatInterval",
            d.heartbeat_interval_s.to_string(),
            SECONDS,
        )
        .drives(S::HeartbeatInterval),
        rw("OCPPCommCtrlr", "MessageAttempts", "3", COUNT).drives(S::MessageAttempts),
        rw("OCPPCommCtrlr", "MessageAttemptInterval", "10", SECONDS)
            .drives(S::MessageRetryInterval),
        rw("OCPPCommCtrlr", "MessageTimeout", "30", SECONDS),
        rw("OCPPCommCtrlr", "WebSocketPingInterval", "0", SECONDS),
        rw("OCPPCommCtrlr", "ResetRetries", "3", COUNT),
        rw(
            "SampledDataCtrlr",
            "TxUpdatedInterval",
            d.meter_interval_s.to_string(),
            SECONDS,
        )
        .drives(S::MeterSampleInterval),
        rw(
            "SampledDataCtrlr",
            "TxUpdatedMeasurands",
            DEFAULT_MEASURANDS,
            ValueKind::Measurands,
        )
        .drives(S::SampledMeasurands),
        rw(
            "SampledDataCtrlr",
            "TxStartedMeasurands",
            "Energy.Active.Import.Register",
            ValueKind::Measurands,
        ),
        rw(
            "SampledDataCtrlr",
            "TxEndedMeasurands",
            "Energy.Active.Import.Register",
            ValueKind::Measurands,
        ),
        rw("SampledDataCtrlr", "TxEndedInterval", "0", SECONDS),
        rw("AlignedDataCtrlr", "Interval", "0", SECONDS).drives(S::ClockAlignedInterval),
        rw(
            "AlignedDataCtrlr",
            "Measurands",
            "Energy.Active.Import.Register",
            ValueKind::Measurands,
        )
        .drives(S::AlignedMeasurands),
        rw("AuthCtrlr", "AuthorizeRemoteStart", "false", BOOL).drives(S::AuthorizeRemoteStart),
        rw("AuthCtrlr", "LocalAuthorizeOffline", "true", BOOL).drives(S::LocalAuthorizeOffline),
        rw("AuthCtrlr", "LocalPreAuthorize", "false", BOOL).drives(S::LocalPreAuthorize),
        rw("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "false", BOOL)
            .drives(S::OfflineTxForUnknownId),
        rw("AuthCacheCtrlr", "Enabled", "true", BOOL).drives(S::AuthCacheEnabled),
        rw("LocalAuthListCtrlr", "Enabled", "true", BOOL).drives(S::LocalListEnabled),
        // The value is how many entries the list holds; its maxLimit how many it can hold.
        ro(
            "LocalAuthListCtrlr",
            "Entries",
            "0",
            ValueKind::Integer {
                min: 0,
                max: i64::from(d.local_list.capacity),
            },
        ),
        ro(
            "LocalAuthListCtrlr",
            "ItemsPerMessage",
            d.local_list.per_message.to_string(),
            COUNT,
        )
        .drives(S::LocalListPerMessage),
        ro(
            "LocalAuthListCtrlr",
            "BytesPerMessage",
            d.local_list.bytes_per_message.to_string(),
            COUNT,
        )
        .drives(S::LocalListBytesPerMessage),
        rw("TxCtrlr", "EVConnectionTimeOut", "60", SECONDS).drives(S::ConnectionTimeout),
        rw("TxCtrlr", "StopTxOnInvalidId", "true", BOOL).drives(S::StopTxOnInvalidId),
        rw("TxCtrlr", "StopTxOnEVSideDisconnect", "true", BOOL).drives(S::StopTxOnEvDisconnect),
        ro(
            "TxCtrlr",
            "TxStartPoint",
            "PowerPathClosed",
            ValueKind::OneOf(TX_START),
        ),
        ro(
            "TxCtrlr",
            "TxStopPoint",
            "EVConnected,Authorized",
            ValueKind::OneOf(TX_STOP),
        ),
        rw("SmartChargingCtrlr", "Enabled", "true", BOOL).drives(S::SmartChargingEnabled),
        ro("SmartChargingCtrlr", "ProfileStackLevel", "10", COUNT).drives(S::MaxStackLevel),
        ro("SmartChargingCtrlr", "PeriodsPerSchedule", "24", COUNT).drives(S::MaxPeriods),
        ro("SmartChargingCtrlr", "Entries", "16", COUNT).drives(S::MaxProfiles),
        ro(
            "SmartChargingCtrlr",
            "RateUnit",
            "A,W",
            ValueKind::Text { max_len: 10 },
        ),
        ro("DeviceDataCtrlr", "ItemsPerMessage", "20", COUNT).drives(S::ReportItemsPerMessage),
        ro(
            "ChargingStation",
            "NumberOfEVSE",
            d.connectors.to_string(),
            COUNT,
        ),
        rw(
            "SecurityCtrlr",
            "SecurityProfile",
            "1",
            ValueKind::OneOf(SECURITY_PROFILES),
        ),
        Spec {
            component: "SecurityCtrlr",
            name: "BasicAuthPassword",
            value: d.password.clone().unwrap_or_default(),
            mutability: Mutability::WriteOnly,
            kind: ValueKind::Password,
            setting: Some(S::BasicAuthPassword),
        },
    ]
}

impl ConfigStore {
    /// The store a charger of `version` starts with.
    pub fn new(version: OcppVersion, defaults: &ConfigDefaults) -> ConfigStore {
        let specs = match version {
            OcppVersion::V16 => v16_entries(defaults),
            OcppVersion::V201 => v201_entries(defaults),
        };
        let entries: Vec<Entry> = specs
            .into_iter()
            .map(|s| Entry {
                component: s.component,
                name: s.name,
                value: s.value,
                mutability: s.mutability,
                kind: s.kind,
                reboot_required: s.name == "SecurityProfile",
                setting: s.setting,
            })
            .collect();
        let by_key = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key(), i))
            .collect();
        let mut by_setting = [None; SETTING_COUNT];
        for (i, e) in entries.iter().enumerate() {
            if let Some(setting) = e.setting {
                by_setting[setting as usize] = Some(i);
            }
        }
        let ints = entries.iter().map(|e| parse_int(&e.value)).collect();
        ConfigStore {
            version,
            entries,
            by_key,
            by_setting,
            ints,
        }
    }

    /// Every entry, in a stable order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry under an API key (`Name` for 1.6, `Component.Name` for 2.0.1).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.by_key.get(key).map(|&i| &self.entries[i])
    }

    /// The 2.0.1 entry for a component and variable.
    pub fn variable(&self, component: &str, variable: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.component == component && e.name == variable)
    }

    /// Whether any entry belongs to `component`.
    pub fn has_component(&self, component: &str) -> bool {
        self.entries.iter().any(|e| e.component == component)
    }

    /// Writes a value as the gateway would: read-only entries and ill-typed values are
    /// rejected, unknown keys reported.
    pub fn write(&mut self, component: &str, name: &str, value: &str) -> WriteOutcome {
        let Some(index) = self
            .entries
            .iter()
            .position(|e| e.component == component && e.name == name)
        else {
            if !component.is_empty() && !self.has_component(component) {
                return WriteOutcome::UnknownComponent;
            }
            return WriteOutcome::UnknownVariable;
        };
        let entry = &mut self.entries[index];
        if entry.mutability == Mutability::ReadOnly || !entry.kind.accepts(value, self.version) {
            return WriteOutcome::Rejected;
        }
        entry.value = normalise(entry.kind, value);
        self.ints[index] = parse_int(&entry.value);
        if entry.reboot_required {
            WriteOutcome::RebootRequired
        } else {
            WriteOutcome::Accepted
        }
    }

    /// Sets a value from inside the charger (e.g. the heartbeat interval a BootNotification
    /// answer dictates, or a read-only counter), bypassing the write checks.
    pub fn set_internal(&mut self, setting: Setting, value: String) {
        if let Some(index) = self.by_setting[setting as usize] {
            self.ints[index] = parse_int(&value);
            self.entries[index].value = value;
        }
    }

    /// Sets a read-only entry by component and name from inside the charger.
    pub fn set_named(&mut self, component: &str, name: &str, value: String) {
        if let Some(index) = self
            .entries
            .iter()
            .position(|e| e.component == component && e.name == name)
        {
            self.ints[index] = parse_int(&value);
            self.entries[index].value = value;
        }
    }

    fn raw(&self, setting: Setting) -> Option<&str> {
        self.by_setting[setting as usize].map(|i| self.entries[i].value.as_str())
    }

    /// An integer setting; 0 when absent or unreadable.
    pub fn int(&self, setting: Setting) -> i64 {
        self.by_setting[setting as usize].map_or(0, |i| self.ints[i])
    }

    /// A non-negative integer setting as `u64`.
    pub fn uint(&self, setting: Setting) -> u64 {
        u64::try_from(self.int(setting)).unwrap_or(0)
    }

    /// A boolean setting; `true` only when written as true. Settings the version does not
    /// have read as `default`.
    pub fn flag(&self, setting: Setting, default: bool) -> bool {
        match self.raw(setting) {
            Some(v) => v.eq_ignore_ascii_case("true"),
            None => default,
        }
    }

    /// A text setting, or `None` when the version lacks it or it is empty.
    pub fn text(&self, setting: Setting) -> Option<&str> {
        self.raw(setting).filter(|v| !v.is_empty())
    }

    /// A measurand-list setting, split.
    pub fn list(&self, setting: Setting) -> Vec<&str> {
        self.raw(setting)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn normalise(kind: ValueKind, value: &str) -> String {
    match kind {
        ValueKind::Boolean => value.to_ascii_lowercase(),
        ValueKind::Integer { .. } => value.trim().to_owned(),
        ValueKind::HexPassword => {
            password::decode_authorization_key(value).unwrap_or_else(|_| value.to_owned())
        }
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ConfigDefaults {
        ConfigDefaults {
            connectors: 2,
            heartbeat_interval_s: 60,
            meter_interval_s: 30,
            password: None,
            local_list: LocalListLimits::default(),
        }
    }

    #[test]
    fn v16_write_rules() {
        let mut store = ConfigStore::new(OcppVersion::V16, &defaults());
        assert_eq!(store.int(Setting::HeartbeatInterval), 60);
        assert_eq!(
            store.write("", "HeartbeatInterval", "120"),
            WriteOutcome::Accepted
        );
        assert_eq!(store.int(Setting::HeartbeatInterval), 120);
        assert_eq!(
            store.write("", "HeartbeatInterval", "soon"),
            WriteOutcome::Rejected
        );
        assert_eq!(
            store.write("", "HeartbeatInterval", "-5"),
            WriteOutcome::Rejected
        );
        assert_eq!(
            store.write("", "NumberOfConnectors", "4"),
            WriteOutcome::Rejected
        );
        assert_eq!(
            store.write("", "NoSuchKey", "1"),
            WriteOutcome::UnknownVariable
        );
        assert_eq!(
            store.write("", "LocalPreAuthorize", "True"),
            WriteOutcome::Accepted
        );
        assert!(store.flag(Setting::LocalPreAuthorize, false));
        assert_eq!(
            store.write(
                "",
                "MeterValuesSampledData",
                "Energy.Active.Import.Register,Voltage"
            ),
            WriteOutcome::Accepted
        );
        assert_eq!(
            store.list(Setting::SampledMeasurands),
            vec!["Energy.Active.Import.Register", "Voltage"]
        );
        assert_eq!(
            store.write("", "MeterValuesSampledData", "Energy.Bogus"),
            WriteOutcome::Rejected
        );
        assert_eq!(
            store.get("NumberOfConnectors").map(|e| e.value.as_str()),
            Some("2")
        );
    }

    #[test]
    fn v201_components_and_variables() {
        let mut store = ConfigStore::new(OcppVersion::V201, &defaults());
        assert_eq!(
            store
                .get("OCPPCommCtrlr.HeartbeatInterval")
                .map(|e| e.value.as_str()),
            Some("60")
        );
        assert_eq!(
            store.write("OCPPCommCtrlr", "HeartbeatInterval", "15"),
            WriteOutcome::Accepted
        );
        assert_eq!(store.int(Setting::HeartbeatInterval), 15);
        assert_eq!(
            store.write("NoSuchCtrlr", "X", "1"),
            WriteOutcome::UnknownComponent
        );
        assert_eq!(
            store.write("OCPPCommCtrlr", "Nope", "1"),
            WriteOutcome::UnknownVariable
        );
        assert_eq!(
            store.write("TxCtrlr", "TxStartPoint", "Authorized"),
            WriteOutcome::Rejected
        );
        assert_eq!(
            store.write("SecurityCtrlr", "SecurityProfile", "2"),
            WriteOutcome::RebootRequired
        );
        assert_eq!(
            store.write("SampledDataCtrlr", "TxUpdatedMeasurands", "RPM"),
            WriteOutcome::Rejected
        );
        assert_eq!(
            store.write(
                "SampledDataCtrlr",
                "TxUpdatedMeasurands",
                "Energy.Active.Net"
            ),
            WriteOutcome::Accepted
        );
        assert!(store.flag(Setting::SmartChargingEnabled, false));
        assert!(store.has_component("AuthCtrlr"));
    }

    #[test]
    fn write_only_password_is_stored() {
        let mut store = ConfigStore::new(
            OcppVersion::V16,
            &ConfigDefaults {
                password: Some("s3cret".into()),
                ..defaults()
            },
        );
        assert_eq!(store.text(Setting::BasicAuthPassword), Some("s3cret"));
        assert_eq!(
            store.write("", "AuthorizationKey", "n3w-secret-n3w-secret"),
            WriteOutcome::Rejected,
            "1.6 takes the password in hex only"
        );
        let hex = password::authorization_key("n3w-secret-n3w-16");
        assert_eq!(
            store.write("", "AuthorizationKey", &hex),
            WriteOutcome::Accepted
        );
        assert_eq!(
            store.text(Setting::BasicAuthPassword),
            Some("n3w-secret-n3w-16")
        );
        assert_eq!(
            store.write("", "AuthorizationKey", &hex.to_uppercase()),
            WriteOutcome::Accepted
        );
        assert_eq!(
            store.text(Setting::BasicAuthPassword),
            Some("n3w-secret-n3w-16")
        );
    }

    #[test]
    fn password_2_0_1_is_a_password_string_taken_as_is() {
        let mut store = ConfigStore::new(OcppVersion::V201, &defaults());
        for refused in ["too-short", "has spaces in the password", &"a".repeat(41)] {
            assert_eq!(
                store.write("SecurityCtrlr", "BasicAuthPassword", refused),
                WriteOutcome::Rejected,
                "{refused}"
            );
        }
        let taken = "Aa0*-_=:+|@.Aa0*-_=:+|@.xyz";
        assert_eq!(
            store.write("SecurityCtrlr", "BasicAuthPassword", taken),
            WriteOutcome::Accepted
        );
        assert_eq!(store.text(Setting::BasicAuthPassword), Some(taken));
    }
}
