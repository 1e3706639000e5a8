//! Plain data passed across the [`Store`](crate::Store) boundary.
//!
//! These types carry no database handles or SQL types, so the gateway can build, log and
//! serialise them freely and a second backend can reuse them unchanged. Times are RFC 3339
//! strings chosen by the caller; the store keeps no clock.

use serde::{Deserialize, Serialize};

/// A node of the scope tree. `parent` is `None` (or the engine's implicit root) for top-level
/// scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRecord {
    pub id: String,
    pub kind: String,
    pub parent: Option<String>,
    pub name: Option<String>,
}

/// An operator, driver or system principal. `kind` is the engine's principal kind
/// (`operator`, `driver`, `system`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalRecord {
    pub id: String,
    pub kind: String,
    pub home_scope: String,
    pub name: String,
    pub blocked: bool,
}

/// A custom role defined at run time; built-in roles live in the preset and are not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub id: String,
    pub label: String,
    pub permissions: Vec<String>,
}

/// One role held by one principal on one scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AssignmentRecord {
    pub principal: String,
    pub role: String,
    pub scope: String,
}

/// A registered charge point. `security_profile` is the OCPP security profile (0–3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargerRecord {
    pub id: String,
    pub scope: String,
    pub password_hash: Option<String>,
    pub security_profile: u8,
    /// Awaits an operator's approval (auto-registered, not yet trusted). Stored with the
    /// record when it is first written, so a charger is never trusted for a moment by
    /// accident; later `put_charger` calls leave it as it is and only `set_charger_pending`
    /// changes it.
    #[serde(default)]
    pub pending: bool,
}

/// A charger's own behaviour settings, outside its security record: how the gateway's
/// local-list sync starts after the charger boots, and whether it may free-vend. Written only
/// by [`crate::Store::set_charger_behaviour`]; other writes of the charger keep them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargerBehaviour {
    pub id: String,
    /// `off`, or `delay:<seconds>`; `None` is the default (`on`).
    pub post_boot_sync: Option<String>,
    /// 2.0.1 `NoAuthorization` id tokens are accepted at this charger.
    pub free_vend: bool,
}

/// What a charger reported about itself in a BootNotification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    pub vendor: String,
    pub model: String,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    /// The OCPP version the charger spoke, e.g. `1.6` or `2.0.1`.
    pub ocpp_version: String,
    pub at: String,
}

/// An operator API token. Only the hash of the token is ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub id: String,
    pub principal: String,
    pub hash: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// A driver's RFID card or other OCPP idTag / IdToken, bound to a principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenRecord {
    pub id_token: String,
    pub principal: String,
    pub blocked: bool,
    pub expires_at: Option<String>,
    pub group: Option<String>,
    /// OCPP 2.0.1 IdTokenEnumType (`ISO14443`, `eMAID`, ...); `None` matches any presented type.
    pub token_type: Option<String>,
}

/// The start of a charging session as reported by a charger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTransaction {
    pub charger: String,
    /// Idempotency key: the OCPP 1.6 StartTransaction message id or the 2.0.1 transactionId.
    pub key: String,
    pub connector: u32,
    pub id_token: Option<String>,
    pub principal: Option<String>,
    pub meter_start: Option<f64>,
    pub started_at: String,
}

/// A stored charging session. `id` doubles as the OCPP 1.6 transactionId.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionRecord {
    pub id: i64,
    pub charger: String,
    pub key: String,
    pub connector: u32,
    pub id_token: Option<String>,
    pub principal: Option<String>,
    pub meter_start: Option<f64>,
    pub meter_stop: Option<f64>,
    pub started_at: String,
    pub stopped_at: Option<String>,
    pub stop_reason: Option<String>,
}

/// Which transactions to list; results are newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionFilter {
    pub charger: Option<String>,
    pub principal: Option<String>,
    /// Only sessions that have not been stopped.
    pub active_only: bool,
    /// At most this many rows; `0` means no limit.
    pub limit: u32,
}

/// One meter-values message stored against a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterValuesRecord {
    pub transaction_id: i64,
    pub seq: Option<i64>,
    pub values: serde_json::Value,
    pub at: String,
}

/// An authorisation decision and, once known, what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: String,
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    pub reason: String,
    pub outcome: Option<String>,
    pub request_id: Option<String>,
}

/// An audit record together with the id the store gave it (increasing with time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAuditRecord {
    pub id: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Which audit records to list; results are newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// At most this many rows; `0` means no limit.
    pub limit: u32,
    /// Continue a newest-first listing: only records with an id below this one.
    pub after_id: Option<i64>,
}

/// A security-relevant event reported by or about a charger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityEventRecord {
    pub id: i64,
    pub charger: String,
    pub kind: String,
    pub at: String,
    pub info: serde_json::Value,
}

/// What the gateway last installed in one charger's local authorisation list (OCPP 1.6 and
/// 2.0.1 SendLocalList), kept so a restart continues with differential updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalListRecord {
    pub charger: String,
    /// The list version the charger accepted last.
    pub version: i64,
    /// The entries as the gateway chose them; the store does not interpret this value.
    pub entries: serde_json::Value,
    pub updated_at: String,
}
