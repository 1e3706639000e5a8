//! Read-only history: charging sessions (`/api/v1/transactions`) and the audit log
//! (`/api/v1/audit`), each filtered to what the caller may see.
//!
//! A session's driver data (its principal and the card it was started with) is EV-driver
//! personal data: it is shown only to a caller the engine lets `driver.view` that principal
//! (or, for a card no principal known at that charger holds, `driver.view` at the charger),
//! and to the driver itself; everyone else who may see the session gets both as `null`.
//!
//! Filtering happens after the store query, so a page is read with some headroom
//! ([`SCAN_FACTOR`] times the requested size) and then cut to the requested size.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use voltgate_policy::{Action, Engine, Resource};
use voltgate_store::{AuditFilter, StoredAuditRecord, TransactionFilter, TransactionRecord};

use super::authorize::{refuse, visible, Target};
use super::error::ApiError;
use super::extract::{Caller, RequestId, StrictQuery};
use crate::state::SharedState;
use voltgate_policy::ROOT_SCOPE_ID;

pub(crate) const DEFAULT_PAGE: u32 = 100;
pub(crate) const MAX_PAGE: u32 = 1000;
const SCAN_FACTOR: u32 = 10;

fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_PAGE}"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransactionQuery {
    #[serde(default)]
    pub charger: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TransactionList {
    pub transactions: Vec<TransactionRecord>,
}

/// Sessions on chargers where the caller has `transaction.view`, plus its own sessions
/// where it has `transaction.view-own`; newest first, driver data redacted (module docs).
pub(crate) async fn transactions(
    State(state): State<SharedState>,
    caller: Caller,
    StrictQuery(query): StrictQuery<TransactionQuery>,
) -> Result<Json<TransactionList>, ApiError> {
    let limit = page_size(query.limit)?;
    if let Some(charger) = &query.charger {
        if !visible(&state, &caller, &Target::Charger(charger.clone())) {
            return Err(ApiError::not_found(format!(
                "charger `{charger}` not found"
            )));
        }
    }
    let filter = TransactionFilter {
        charger: query.charger.clone(),
        principal: None,
        active_only: query.active.unwrap_or(false),
        limit: limit.saturating_mul(SCAN_FACTOR),
    };
    let rows = state.store.transactions(&filter).await?;
    let engine = state.estate.engine();
    let transactions = rows
        .into_iter()
        .filter(|t| may_view_transaction(&engine, &caller.id, t))
        .take(limit as usize)
        .map(|t| redact_driver_data(&engine, &caller.id, t))
        .collect();
    Ok(Json(TransactionList { transactions }))
}

fn may_view_transaction(engine: &Engine, caller: &str, t: &TransactionRecord) -> bool {
    let at = Resource::Scope(t.charger.clone());
    engine.check(caller, Action::TransactionView, &at)
        || (t.principal.as_deref() == Some(caller)
            && engine.check(caller, Action::TransactionViewOwn, &at))
}

/// Whether `caller` may read who charged in `t` and with which card.
fn may_view_driver_data(engine: &Engine, caller: &str, t: &TransactionRecord) -> bool {
    match t.principal.as_deref() {
        Some(principal) => {
            principal == caller
                || engine.check(
                    caller,
                    Action::DriverView,
                    &Resource::Principal(principal.to_owned()),
                )
        }
        None => engine.check(
            caller,
            Action::DriverView,
            &Resource::Scope(t.charger.clone()),
        ),
    }
}

fn redact_driver_data(
    engine: &Engine,
    caller: &str,
    mut t: TransactionRecord,
) -> TransactionRecord {
    if !may_view_driver_data(engine, caller, &t) {
        t.principal = None;
        t.id_token = None;
    }
    t
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    pub limit: Option<u32>,
    /// Continue a listing: only records older than this id.
    #[serde(default)]
    pub after_id: Option<i64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AuditList {
    pub entries: Vec<StoredAuditRecord>,
}

/// The audit log, newest first. `audit.view` on the root shows everything; held lower
/// down, it shows the records about scopes, chargers and principals within its reach.
pub(crate) async fn audit(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictQuery(query): StrictQuery<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    let limit = page_size(query.limit)?;
    let (everything, somewhere) = {
        let engine = state.estate.engine();
        let everything = engine.check(
            &caller.id,
            Action::AuditView,
            &Resource::Scope(ROOT_SCOPE_ID.to_owned()),
        );
        let somewhere = everything
            || engine.assignments_of(&caller.id).iter().any(|(_, scope)| {
                engine.check(
                    &caller.id,
                    Action::AuditView,
                    &Resource::Scope(scope.clone()),
                )
            });
        (everything, somewhere)
    };
    state
        .metrics
        .authz_decision(Action::AuditView.as_str(), somewhere);
    if !somewhere {
        let reason = format!("{} holds `audit.view` on no scope", caller.id);
        refuse(
            &state,
            &caller,
            Action::AuditView.as_str(),
            ROOT_SCOPE_ID,
            &reason,
            "refused",
            &request_id,
        )
        .await;
        return Err(ApiError::forbidden(reason));
    }
    let filter = AuditFilter {
        limit: if everything {
            limit
        } else {
            limit.saturating_mul(SCAN_FACTOR)
        },
        after_id: query.after_id,
    };
    let rows = state.store.audit(&filter).await?;
    let entries = if everything {
        rows
    } else {
        let engine = state.estate.engine();
        rows.into_iter()
            .filter(|r| {
                crate::audit::labelled_resource(&r.record.resource)
                    .is_some_and(|res| engine.check(&caller.id, Action::AuditView, &res))
            })
            .take(limit as usize)
            .collect()
    };
    Ok(Json(AuditList { entries }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some(5)).unwrap(), 5);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(MAX_PAGE + 1)).is_err());
    }
}
