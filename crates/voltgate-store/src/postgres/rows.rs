//! Turns PostgreSQL rows back into records, reporting a value the schema should never hold as
//! [`StoreError::Corrupt`] instead of panicking. JSONB columns are selected as text
//! (`column::text AS column`) and parsed here.

use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::error::StoreError;
use crate::records::{
    ApiTokenRecord, AssignmentRecord, AuditRecord, BootRecord, ChargerRecord, IdTokenRecord,
    LocalListRecord, MeterValuesRecord, PrincipalRecord, RoleRecord, ScopeRecord,
    SecurityEventRecord, StoredAuditRecord, TransactionRecord,
};

fn json_column<T: serde::de::DeserializeOwned>(
    row: &PgRow,
    column: &str,
    table: &str,
) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text)
        .map_err(|err| StoreError::Corrupt(format!("{table}.{column} is not valid JSON: {err}")))
}

pub(super) fn scope(row: &PgRow) -> Result<ScopeRecord, StoreError> {
    Ok(ScopeRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        parent: row.try_get("parent")?,
        name: row.try_get("name")?,
    })
}

pub(super) fn module(row: &PgRow) -> Result<(String, String, bool), StoreError> {
    Ok((
        row.try_get("scope")?,
        row.try_get("module")?,
        row.try_get("enabled")?,
    ))
}

pub(super) fn principal(row: &PgRow) -> Result<PrincipalRecord, StoreError> {
    Ok(PrincipalRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        home_scope: row.try_get("home_scope")?,
        name: row.try_get("name")?,
        blocked: row.try_get("blocked")?,
    })
}

pub(super) fn role(row: &PgRow) -> Result<RoleRecord, StoreError> {
    Ok(RoleRecord {
        id: row.try_get("id")?,
        label: row.try_get("label")?,
        permissions: json_column(row, "permissions", "roles")?,
    })
}

pub(super) fn assignment(row: &PgRow) -> Result<AssignmentRecord, StoreError> {
    Ok(AssignmentRecord {
        principal: row.try_get("principal")?,
        role: row.try_get("role")?,
        scope: row.try_get("scope")?,
    })
}

pub(super) fn charger(row: &PgRow) -> Result<ChargerRecord, StoreError> {
    let profile: i16 = row.try_get("security_profile")?;
    let security_profile = u8::try_from(profile).map_err(|_| {
        StoreError::Corrupt(format!(
            "chargers.security_profile {profile} is out of range"
        ))
    })?;
    Ok(ChargerRecord {
        id: row.try_get("id")?,
        scope: row.try_get("scope")?,
        password_hash: row.try_get("password_hash")?,
        security_profile,
        pending: row.try_get("pending")?,
    })
}

pub(super) fn boot(row: &PgRow) -> Result<BootRecord, StoreError> {
    Ok(BootRecord {
        vendor: row.try_get("vendor")?,
        model: row.try_get("model")?,
        serial: row.try_get("serial")?,
        firmware: row.try_get("firmware")?,
        ocpp_version: row.try_get("ocpp_version")?,
        at: row.try_get("at")?,
    })
}

pub(super) fn api_token(row: &PgRow) -> Result<ApiTokenRecord, StoreError> {
    Ok(ApiTokenRecord {
        id: row.try_get("id")?,
        principal: row.try_get("principal")?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

pub(super) fn id_token(row: &PgRow) -> Result<IdTokenRecord, StoreError> {
    Ok(IdTokenRecord {
        id_token: row.try_get("id_token")?,
        principal: row.try_get("principal")?,
        blocked: row.try_get("blocked")?,
        expires_at: row.try_get("expires_at")?,
        group: row.try_get("group_id")?,
        token_type: row.try_get("token_type")?,
    })
}

pub(super) fn local_list(row: &PgRow) -> Result<LocalListRecord, StoreError> {
    let charger: String = row.try_get("charger")?;
    let entries: String = row.try_get("entries")?;
    let entries = serde_json::from_str(&entries)
        .map_err(|err| StoreError::Corrupt(format!("local_lists.entries of `{charger}`: {err}")))?;
    Ok(LocalListRecord {
        charger,
        version: row.try_get("version")?,
        entries,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) fn transaction(row: &PgRow) -> Result<TransactionRecord, StoreError> {
    let connector: i64 = row.try_get("connector")?;
    let connector = u32::try_from(connector).map_err(|_| {
        StoreError::Corrupt(format!(
            "transactions.connector {connector} is out of range"
        ))
    })?;
    Ok(TransactionRecord {
        id: row.try_get("id")?,
        charger: row.try_get("charger")?,
        key: row.try_get("key")?,
        connector,
        id_token: row.try_get("id_token")?,
        principal: row.try_get("principal")?,
        meter_start: row.try_get("meter_start")?,
        meter_stop: row.try_get("meter_stop")?,
        started_at: row.try_get("started_at")?,
        stopped_at: row.try_get("stopped_at")?,
        stop_reason: row.try_get("stop_reason")?,
    })
}

pub(super) fn meter_values(row: &PgRow) -> Result<MeterValuesRecord, StoreError> {
    Ok(MeterValuesRecord {
        transaction_id: row.try_get("transaction_id")?,
        seq: row.try_get("seq")?,
        values: json_column(row, "sample", "meter_values")?,
        at: row.try_get("at")?,
    })
}

pub(super) fn audit(row: &PgRow) -> Result<StoredAuditRecord, StoreError> {
    Ok(StoredAuditRecord {
        id: row.try_get("id")?,
        record: AuditRecord {
            at: row.try_get("at")?,
            principal: row.try_get("principal")?,
            action: row.try_get("action")?,
            resource: row.try_get("resource")?,
            allowed: row.try_get("allowed")?,
            reason: row.try_get("reason")?,
            outcome: row.try_get("outcome")?,
            request_id: row.try_get("request_id")?,
        },
    })
}

pub(super) fn security_event(row: &PgRow) -> Result<SecurityEventRecord, StoreError> {
    Ok(SecurityEventRecord {
        id: row.try_get("id")?,
        charger: row.try_get("charger")?,
        kind: row.try_get("kind")?,
        at: row.try_get("at")?,
        info: json_column(row, "info", "security_events")?,
    })
}

/// Maps every row, stopping at the first that cannot be decoded.
pub(super) fn all<T>(
    rows: &[PgRow],
    decode: fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(decode).collect()
}
