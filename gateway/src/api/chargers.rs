//! `/api/v1/chargers`: registering chargers, changing how they authenticate, and reading
//! their stored and live state.
//!
//! A charger's OCPP security profile is 0 (no authentication), 1 (HTTP Basic), 2 (TLS and
//! HTTP Basic) or 3 (TLS client certificate). Profiles 1 and 2 need a password, 2 and 3 the
//! charger TLS listener. Passwords are hashed before they are stored and appear in no answer,
//! log line or audit record.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use voltgate_policy::{Action, Resource};
use voltgate_store::ChargerRecord;

use super::authorize::{authorize, Target};
use super::error::ApiError;
use super::extract::{Caller, RequestId, StrictJson, StrictPath};
use crate::state::{hash_password, register_charger_with_profile, SharedState, STATION_KIND};

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
    /// OCPP security profile 0–3; without it, 1 when a password is given, else 0.
    #[serde(default)]
    pub security_profile: Option<u8>,
}

/// `PATCH /api/v1/chargers/{id}`: what to change; absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargerChange {
    /// A new password for HTTP Basic authentication (the charger must be told separately, or
    /// use the `set-password` command).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub security_profile: Option<u8>,
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

fn check_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars == 0 || chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid_body(format!(
            "password must be 1 to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Whether a charger with `profile` can connect at all given its password and the listeners.
fn check_profile(state: &SharedState, profile: u8, password_set: bool) -> Result<(), ApiError> {
    if profile > 3 {
        return Err(ApiError::invalid_body(
            "security_profile must be 0, 1, 2 or 3",
        ));
    }
    if matches!(profile, 1 | 2) && !password_set {
        return Err(ApiError::invalid_body(format!(
            "security profile {profile} needs a password"
        )));
    }
    if profile >= 2 && !state.settings.ocpp_tls {
        return Err(ApiError::invalid_body(format!(
            "security profile {profile} needs the charger TLS listener (--ocpp-tls-listen)"
        )));
    }
    if profile == 3 && !state.settings.ocpp_client_ca {
        return Err(ApiError::invalid_body(
            "security profile 3 needs client certificates checked against a CA (--tls-client-ca)",
        ));
    }
    Ok(())
}

/// Hashes off the async executor: the password hash is slow on purpose.
async fn hash_off_thread(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ApiError::internal("the password could not be hashed"))
}

pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(body): StrictJson<NewCharger>,
) -> Result<(StatusCode, Json<ChargerSummary>), ApiError> {
    if let Some(password) = &body.password {
        check_password(password)?;
    }
    let security_profile = body
        .security_profile
        .unwrap_or(u8::from(body.password.is_some()));
    check_profile(&state, security_profile, body.password.is_some())?;
    let grant = authorize(
        &state,
        &caller,
        Action::ChargerRegister,
        &Target::Scope(body.scope.clone()),
        &request_id,
    )
    .await?;
    let password_hash = match body.password {
        Some(password) => Some(hash_off_thread(password).await?),
        None => None,
    };
    let result = register_charger_with_profile(
        &state,
        &body.id,
        &body.scope,
        password_hash.clone(),
        security_profile,
    )
    .await
    .map_err(ApiError::from)
    .map(|()| {
        let record = ChargerRecord {
            id: body.id.clone(),
            scope: body.scope.clone(),
            security_profile,
            password_hash,
        };
        (StatusCode::CREATED, Json(summary(&state, &record)))
    });
    if result.is_ok() {
        tracing::info!(charger_id = %body.id, scope = %body.scope, by = %caller.id, "charger registered");
    }
    grant.finish_with(&state, result).await
}

/// Changes a charger's security profile and/or stored password (`charger.edit`, audited).
/// The new settings apply from the charger's next connection; an open connection stays.
pub async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
    StrictJson(body): StrictJson<ChargerChange>,
) -> Result<Json<ChargerSummary>, ApiError> {
    if let Some(password) = &body.password {
        check_password(password)?;
    }
    let grant = authorize(
        &state,
        &caller,
        Action::ChargerEdit,
        &Target::Charger(id.clone()),
        &request_id,
    )
    .await?;
    let result = apply_change(&state, &id, body).await;
    if let Ok(Json(summary)) = &result {
        tracing::info!(charger_id = %id, security_profile = summary.security_profile, by = %caller.id, "charger security settings changed");
    }
    grant.finish_with(&state, result).await
}

async fn apply_change(
    state: &SharedState,
    id: &str,
    change: ChargerChange,
) -> Result<Json<ChargerSummary>, ApiError> {
    let _guard = crate::state::mutation_lock().await;
    let mut record = state
        .store
        .charger(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("charger `{id}` not found")))?;
    let profile = change.security_profile.unwrap_or(record.security_profile);
    check_profile(
        state,
        profile,
        change.password.is_some() || record.password_hash.is_some(),
    )?;
    if let Some(password) = change.password {
        record.password_hash = Some(hash_off_thread(password).await?);
    }
    record.security_profile = profile;
    state.store.put_charger(&record).await?;
    state.auth_guard.passwords.forget(id);
    Ok(Json(summary(state, &record)))
}

/// The answer to an approval.
#[derive(Debug, Serialize)]
pub struct Approval {
    pub id: String,
    /// Whether the charger was pending before (an approval of a trusted charger changes nothing).
    pub was_pending: bool,
}

/// `POST /api/v1/chargers/{id}/approve`: trusts a charger that auto-registration left pending
/// (`charger.edit`, audited). From then on its id tokens are decided by the role engine and it
/// gets its local list.
pub async fn approve(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
) -> Result<Json<Approval>, ApiError> {
    let grant = authorize(
        &state,
        &caller,
        Action::ChargerEdit,
        &Target::Charger(id.clone()),
        &request_id,
    )
    .await?;
    let result = async {
        let was_pending = state.store.charger_pending(&id).await?;
        if !state.store.set_charger_pending(&id, false).await? {
            return Err(ApiError::not_found(format!("charger `{id}` not found")));
        }
        if was_pending {
            state.local_lists.booted(&id);
            tracing::info!(charger_id = %id, by = %caller.id, "charger approved");
        }
        Ok(Json(Approval {
            id: id.clone(),
            was_pending,
        }))
    }
    .await;
    grant.finish_with(&state, result).await
}

/// `POST /api/v1/chargers/{id}/password`: the new Basic-auth password.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRotation {
    pub password: String,
}

/// The charger's answer to a password rotation.
#[derive(Debug, Serialize)]
pub struct RotationResult {
    /// The charger's status (`Accepted`, `Rejected`, …).
    pub status: String,
    /// Whether the stored password was replaced (only when the charger took it).
    pub password_changed: bool,
}

/// Rotates a charger's password on both sides: needs `charger.edit` on the charger, then sends
/// 1.6 `ChangeConfiguration AuthorizationKey` or 2.0.1 `SetVariables
/// SecurityCtrlr.BasicAuthPassword` through [`crate::gate::send_command`] (which asks the role
/// engine for `command.change-configuration` and audits the command without its value). An
/// `Accepted` or `RebootRequired` answer (the charger took the value and uses it from its next
/// connection) replaces the stored hash; from then on the old password is refused, and the open
/// connection stays until the charger reconnects with the new one.
pub async fn rotate_password(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
    StrictJson(body): StrictJson<PasswordRotation>,
) -> Result<Json<RotationResult>, ApiError> {
    check_password(&body.password)?;
    let grant = authorize(
        &state,
        &caller,
        Action::ChargerEdit,
        &Target::Charger(id.clone()),
        &request_id,
    )
    .await?;
    let result = rotate(&state, &caller, &request_id, &id, body.password).await;
    grant.finish_with(&state, result).await
}

async fn rotate(
    state: &SharedState,
    caller: &Caller,
    request_id: &RequestId,
    id: &str,
    password: String,
) -> Result<Json<RotationResult>, ApiError> {
    if state.store.charger(id).await?.is_none() {
        return Err(ApiError::not_found(format!("charger `{id}` not found")));
    }
    let key = match state.chargers.version(id) {
        Some(voltgate_ocpp::OcppVersion::V16) => "AuthorizationKey",
        _ => "SecurityCtrlr.BasicAuthPassword",
    };
    let command = voltgate_ocpp::Command::ChangeConfiguration {
        key: key.to_owned(),
        value: password.clone(),
    };
    let reply =
        crate::gate::send_command(state, &caller.id, id, command, Some(request_id.as_str()))
            .await?;
    let accepted = matches!(reply.status.as_str(), "Accepted" | "RebootRequired");
    if accepted {
        let hash = hash_off_thread(password).await?;
        let _guard = crate::state::mutation_lock().await;
        let mut record = state
            .store
            .charger(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("charger `{id}` not found")))?;
        record.password_hash = Some(hash);
        state.store.put_charger(&record).await?;
        state.auth_guard.passwords.forget(id);
        tracing::info!(charger_id = %id, by = %caller.id, "charger password rotated");
    }
    Ok(Json(RotationResult {
        status: reply.status,
        password_changed: accepted,
    }))
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
    StrictPath(id): StrictPath<String>,
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
