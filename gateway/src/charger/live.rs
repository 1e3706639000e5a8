//! What the gateway knows right now about each charger: connection, boot data, connector
//! states, active transactions, last message time.
//!
//! This is memory only, rebuilt as chargers talk; durable facts (boots, transactions) go to
//! the store. A charger's session is the only writer of its [`LiveCell`]; the operator API
//! reads snapshots. The per-message timestamp is an atomic so the hot path (Heartbeat,
//! StatusNotification, MeterValues) never waits for a reader.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use voltgate_ocpp::views::BootInfo;
use voltgate_ocpp::OcppVersion;

use crate::clock::rfc3339_millis;

/// A snapshot of one charger for the operator API (`GET /api/v1/chargers/{id}`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LiveState {
    pub id: String,
    pub connected: bool,
    pub ocpp_version: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    /// 1.6: by connectorId (0 = the whole charger); 2.0.1: by evseId, the connector within the
    /// EVSE folded in (the latest report wins).
    pub connectors: BTreeMap<u32, ConnectorState>,
    /// 1.6: the numeric transactionId as text; 2.0.1: the charger's transactionId.
    pub active_transactions: Vec<String>,
    pub last_message_at: Option<String>,
    pub connected_since: Option<String>,
    /// Last FirmwareStatusNotification status.
    pub firmware_status: Option<String>,
    /// Last 1.6 DiagnosticsStatusNotification or 2.0.1 LogStatusNotification status.
    pub log_status: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct ConnectorState {
    pub status: String,
    pub error_code: Option<String>,
    pub updated_at: String,
}

/// The mutable live state of one charger.
#[derive(Default)]
pub(crate) struct LiveCell {
    data: Mutex<LiveData>,
    /// Unix milliseconds of the last frame received; 0 = none yet.
    last_message_ms: AtomicI64,
}

#[derive(Default)]
struct LiveData {
    connected: bool,
    version: Option<OcppVersion>,
    connected_since_ms: Option<i64>,
    vendor: Option<String>,
    model: Option<String>,
    serial: Option<String>,
    firmware: Option<String>,
    connectors: BTreeMap<u32, ConnectorData>,
    active_transactions: Vec<String>,
    firmware_status: Option<String>,
    log_status: Option<String>,
}

struct ConnectorData {
    status: String,
    error_code: Option<String>,
    updated_ms: i64,
}

impl LiveCell {
    pub(crate) fn connected(&self, version: OcppVersion, now_ms: i64) {
        let mut data = self.data.lock();
        data.connected = true;
        data.version = Some(version);
        data.connected_since_ms = Some(now_ms);
    }

    pub(crate) fn disconnected(&self) {
        let mut data = self.data.lock();
        data.connected = false;
        data.connected_since_ms = None;
    }

    pub(crate) fn touch(&self, now_ms: i64) {
        self.last_message_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Keeps what a BootNotification told about the charger (its boot reason is not kept).
    pub(crate) fn boot(&self, boot: BootInfo) {
        let mut data = self.data.lock();
        data.vendor = Some(boot.vendor);
        data.model = Some(boot.model);
        data.serial = boot.serial;
        data.firmware = boot.firmware;
    }

    /// Records a connector (1.6) or EVSE (2.0.1) status; allocates only when it changed.
    pub(crate) fn connector_status(
        &self,
        connector: u32,
        status: &str,
        error_code: Option<&str>,
        now_ms: i64,
    ) {
        let mut data = self.data.lock();
        match data.connectors.get_mut(&connector) {
            Some(existing) => {
                if existing.status != status {
                    status.clone_into(&mut existing.status);
                }
                if existing.error_code.as_deref() != error_code {
                    existing.error_code = error_code.map(str::to_owned);
                }
                existing.updated_ms = now_ms;
            }
            None => {
                data.connectors.insert(
                    connector,
                    ConnectorData {
                        status: status.to_owned(),
                        error_code: error_code.map(str::to_owned),
                        updated_ms: now_ms,
                    },
                );
            }
        }
    }

    pub(crate) fn transaction_started(&self, transaction: &str) {
        let mut data = self.data.lock();
        if !data.active_transactions.iter().any(|t| t == transaction) {
            data.active_transactions.push(transaction.to_owned());
        }
    }

    pub(crate) fn transaction_ended(&self, transaction: &str) {
        self.data
            .lock()
            .active_transactions
            .retain(|t| t != transaction);
    }

    /// Replaces the active transactions, e.g. with what the store knows at connection time.
    pub(crate) fn set_active_transactions(&self, transactions: Vec<String>) {
        self.data.lock().active_transactions = transactions;
    }

    pub(crate) fn firmware_status(&self, status: &str) {
        self.data.lock().firmware_status = Some(status.to_owned());
    }

    pub(crate) fn log_status(&self, status: &str) {
        self.data.lock().log_status = Some(status.to_owned());
    }

    pub(crate) fn snapshot(&self, id: &str) -> LiveState {
        let last = self.last_message_ms.load(Ordering::Relaxed);
        let data = self.data.lock();
        LiveState {
            id: id.to_owned(),
            connected: data.connected,
            ocpp_version: data.version.map(|v| v.to_string()),
            vendor: data.vendor.clone(),
            model: data.model.clone(),
            serial: data.serial.clone(),
            firmware: data.firmware.clone(),
            connectors: data
                .connectors
                .iter()
                .map(|(id, c)| {
                    (
                        *id,
                        ConnectorState {
                            status: c.status.clone(),
                            error_code: c.error_code.clone(),
                            updated_at: rfc3339_millis(c.updated_ms),
                        },
                    )
                })
                .collect(),
            active_transactions: data.active_transactions.clone(),
            last_message_at: (last != 0).then(|| rfc3339_millis(last)),
            connected_since: data.connected_since_ms.map(rfc3339_millis),
            firmware_status: data.firmware_status.clone(),
            log_status: data.log_status.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_every_update() {
        let cell = LiveCell::default();
        let empty = cell.snapshot("CP-1");
        assert!(!empty.connected);
        assert_eq!(empty.last_message_at, None);

        cell.connected(OcppVersion::V16, 1_000);
        cell.touch(2_000);
        cell.boot(BootInfo {
            vendor: "Acme".into(),
            model: "W1".into(),
            serial: Some("S-9".into()),
            firmware: None,
            reason: None,
        });
        cell.connector_status(1, "Available", Some("NoError"), 3_000);
        cell.connector_status(1, "Charging", Some("NoError"), 4_000);
        cell.connector_status(2, "Faulted", Some("GroundFailure"), 4_000);
        cell.transaction_started("17");
        cell.transaction_started("17");
        cell.transaction_started("18");
        cell.transaction_ended("17");
        cell.firmware_status("Installed");

        let live = cell.snapshot("CP-1");
        assert!(live.connected);
        assert_eq!(live.ocpp_version.as_deref(), Some("1.6"));
        assert_eq!(live.vendor.as_deref(), Some("Acme"));
        assert_eq!(live.serial.as_deref(), Some("S-9"));
        assert_eq!(live.connectors.len(), 2);
        assert_eq!(live.connectors[&1].status, "Charging");
        assert_eq!(live.connectors[&1].updated_at, rfc3339_millis(4_000));
        assert_eq!(
            live.connectors[&2].error_code.as_deref(),
            Some("GroundFailure")
        );
        assert_eq!(live.active_transactions, vec!["18".to_owned()]);
        assert_eq!(live.last_message_at, Some(rfc3339_millis(2_000)));
        assert_eq!(live.connected_since, Some(rfc3339_millis(1_000)));
        assert_eq!(live.firmware_status.as_deref(), Some("Installed"));

        cell.disconnected();
        let after = cell.snapshot("CP-1");
        assert!(!after.connected);
        assert_eq!(after.connected_since, None);
        assert_eq!(after.vendor.as_deref(), Some("Acme"), "boot data survives");
    }
}
