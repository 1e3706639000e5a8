//! `/api/v1/chargers`: registering chargers and reading their stored and live state.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use voltgate_policy::{Action, Resource};
use voltgate_store::ChargerRecord;

use super::authorize::{authorize, Target};
use super::error::ApiError;
use super::extract::{Caller, RequestId, StrictJson};
use crate::state::{hash_password, register_charger, SharedState, STATION_KIND};

/// OCPP's Basic-auth passwords (1.6 AuthorizationKey, 2.0.1 BasicAuthPassword) are at most
/// 40 characters.
const MAX_PASSWORD_CHARS: usize = 40;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCharger {
    pub id: String,
    pub scope: String,
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ChargerSummary {
    pub id: String,
    pub scope: String,
    pub password_set: bool,
    pub security_profile: u8,
    pub connected: bool,
    pub ocpp_version: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ChargerList {
    pub chargers: Vec<ChargerSummary>,
}

fn summary(state: &SharedState, record: &ChargerRecord) -> ChargerSummary {
    ChargerSummary {
        id: record.id.clone(),
        scope: record.scope.clone(),
        password_set: record.password_hash.is_some(),
        security_profile: record.security_profile,
        connected: state.chargers.is_connected(&record.id),
        ocpp_version: state.chargers.version(&record.id).map(|v| v.to_string()),
    }
}

pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(body): StrictJson<NewCharger>,
) -> Result<(StatusCode, Json<ChargerSummary>), ApiError> {
    if let Some(password) = &body.password {
        let chars = password.chars().count();
        if chars == 0 || chars > MAX_PASSWORD_CHARS {
            return Err(ApiError::invalid_body(format!(
                "password must be 1 to {MAX_PASSWORD_CHARS} characters"
            )));
        }
    }
    let grant = authorize(
        &state,
        &caller,
        Action::ChargerRegister,
        &Target::Scope(body.scope.clone()),
        &request_id,
    )
    .await?;
    let password_hash = body.password.as_deref().map(hash_password);
    let result = register_charger(&state, &body.id, &body.scope, password_hash.clone())
        .await
        .map_err(ApiError::from)
        .map(|()| {
            let record = ChargerRecord {
                id: body.id.clone(),
                scope: body.scope.clone(),
                security_profile: u8::from(password_hash.is_some()),
                password_hash,
            };
            (StatusCode::CREATED, Json(summary(&state, &record)))
        });
    if result.is_ok() {
        tracing::info!(charger_id = %body.id, scope = %body.scope, by = %caller.id, "charger registered");
    }
    grant.finish_with(&state, result).await
}

/// Every charger the caller may view (`charger.view`), sorted by id.
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<Json<ChargerList>, ApiError> {
    let visible: std::collections::HashSet<String> = {
        let engine = state.policy.read();
        engine
            .visible(&caller.id, STATION_KIND)
            .into_iter()
            .filter(|id| {
                engine.check(
                    &caller.id,
                    Action::ChargerView,
                    &Resource::Scope(id.clone()),
                )
            })
            .collect()
    };
    let mut chargers: Vec<ChargerSummary> = state
        .store
        .chargers()
        .await?
        .iter()
        .filter(|c| visible.contains(&c.id))
        .map(|c| summary(&state, c))
        .collect();
    chargers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(ChargerList { chargers }))
}

/// The stored charger merged with its live state (connection, boot data, connectors,
/// active transactions, last message time).
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let grant = authorize(
        &state,
        &caller,
        Action::ChargerView,
        &Target::Charger(id.clone()),
        &request_id,
    )
    .await?;
    let result = charger_view(&state, &id).await;
    grant.finish_with(&state, result).await
}

async fn charger_view(state: &SharedState, id: &str) -> Result<Json<Value>, ApiError> {
    let record = state
        .store
        .charger(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("charger `{id}` not found")))?;
    let mut view = match state.chargers.live(id) {
        Some(live) => match serde_json::to_value(live) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ApiError::internal("live state could not be rendered")),
        },
        None => offline_view(id),
    };
    view.insert("scope".into(), Value::String(record.scope.clone()));
    view.insert(
        "password_set".into(),
        Value::Bool(record.password_hash.is_some()),
    );
    view.insert(
        "security_profile".into(),
        Value::from(record.security_profile),
    );
    Ok(Json(Value::Object(view)))
}

/// The live-state shape of a charger that has not connected since the gateway started.
fn offline_view(id: &str) -> Map<String, Value> {
    let mut view = Map::new();
    view.insert("id".into(), Value::String(id.to_owned()));
    view.insert("connected".into(), Value::Bool(false));
    for field in [
        "ocpp_version",
        "vendor",
        "model",
        "serial",
        "firmware",
        "last_message_at",
        "connected_since",
        "firmware_status",
        "log_status",
    ] {
        view.insert(field.into(), Value::Null);
    }
    view.insert("connectors".into(), Value::Object(Map::new()));
    view.insert("active_transactions".into(), Value::Array(Vec::new()));
    view
}
