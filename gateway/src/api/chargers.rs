//! `/api/v1/chargers`: registering chargers, changing how they authenticate, and reading
//! their stored and live state.
//!
//! A charger's OCPP security profile is 0 (no authentication), 1 (HTTP Basic), 2 (TLS and
//! HTTP Basic) or 3 (TLS client certificate). Profiles 1 and 2 need a password, 2 and 3 the
//! charger TLS listener. Passwords are hashed before they are stored and appear in no answer,
//! log line or audit record (except a generated one, once, in the answer that asked for it).
//!
//! Every path that sets a password holds it to the rule of the charger's OCPP version (see
//! [`voltgate_ocpp::password`]: 1.6 16–20 bytes, 2.0.1 16–40 `passwordString` characters;
//! either, while the version is not known). A charger deployed with a weaker password
//! configured by hand is onboarded with an explicit `legacy_password` reason, which is
//! audited. Changing a charger's security settings needs `charger.security`.
//!
//! A charger's own schema tolerance (`schema_tolerance` in a `PATCH`, `charger.edit`) makes
//! one charger strict, or lets one through, whatever the gateway's `--schema-tolerance`;
//! `GET /chargers/{id}` shows it under `schema`, with the deviations accepted from the charger.
//! `post_boot_sync` and `free_vend` in a `PATCH` (`charger.edit`) set the charger's behaviour
//! ([`crate::behaviour`]); both are shown in its summary and in `GET /chargers/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use voltgate_policy::{Action, Resource};
use voltgate_store::ChargerRecord;

use voltgate_ocpp::password::{self as ocpp_password, GENERATED_ALPHABET};
use voltgate_ocpp::{OcppVersion, Tolerance};

use super::authorize::{authorize, Target};
use super::error::ApiError;
use super::extract::{Caller, RequestId, StrictJson, StrictPath};
use crate::audit;
use crate::behaviour::PostBootSync;
use crate::state::{hash_password, register_charger_with_profile, SharedState};
use voltgate_policy::STATION_KIND;

/// The longest password a `legacy_password` exception accepts: the longest value either
/// version's key holds (1.6 AuthorizationKey, 2.0.1 BasicAuthPassword: 40 characters).
const MAX_LEGACY_PASSWORD_CHARS: usize = 40;
/// The longest `legacy_password` reason.
const MAX_LEGACY_REASON_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCharger {
    pub id: String,
    pub scope: String,
    #[serde(default)]
    pub password: Option<String>,
    /// Generate the password (instead of `password`); the answer carries it, this once.
    #[serde(default)]
    pub generate_password: bool,
    /// Why `password` may break the OCPP rules (a charger already deployed with it).
    #[serde(default)]
    pub legacy_password: Option<String>,
    /// OCPP security profile 0–3; without it, 1 when a password is given, else 0.
    #[serde(default)]
    pub security_profile: Option<u8>,
}

/// `PATCH /api/v1/chargers/{id}`: what to change; absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChargerChange {
    /// A new password for HTTP Basic authentication (the charger must be told separately, or
    /// use `POST /chargers/{id}/password`, which changes it on both sides).
    #[serde(default)]
    pub password: Option<String>,
    /// Why `password` may break the OCPP rules (a charger already deployed with it).
    #[serde(default)]
    pub legacy_password: Option<String>,
    #[serde(default)]
    pub security_profile: Option<u8>,
    /// This charger's schema tolerance: `strict`, `lenient`, or `default` to follow the
    /// gateway's `--schema-tolerance` (`charger.edit`).
    #[serde(default)]
    pub schema_tolerance: Option<String>,
    /// What the gateway sends on its own after the charger boots: `"on"`, `"off"` or
    /// `{"delay_s": n}` (`charger.edit`; see [`crate::behaviour`]).
    #[serde(default)]
    pub post_boot_sync: Option<Value>,
    /// Whether 2.0.1 `NoAuthorization` id tokens are accepted (`charger.edit`).
    #[serde(default)]
    pub free_vend: Option<bool>,
}

/// What `schema_tolerance` in a `PATCH` asks for: a charger's own tolerance, or `None` to
/// follow the gateway's.
fn requested_tolerance(text: &str) -> Result<Option<Tolerance>, ApiError> {
    match text {
        "default" => Ok(None),
        other => other.parse().map(Some).map_err(|_| {
            ApiError::invalid_body(format!(
                "schema_tolerance must be `strict`, `lenient` or `default`, not `{other}`"
            ))
        }),
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ChargerSummary {
    pub id: String,
    pub scope: String,
    pub password_set: bool,
    pub security_profile: u8,
    pub connected: bool,
    pub ocpp_version: Option<String>,
    /// In a cluster, the node holding the connected charger's socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The schema tolerance in force for this charger (its own, else the gateway's).
    pub schema_tolerance: &'static str,
    /// What the gateway sends on its own after the charger boots.
    pub post_boot_sync: Value,
    /// Whether 2.0.1 `NoAuthorization` id tokens are accepted.
    pub free_vend: bool,
    /// A generated password, only in the answer to the registration that asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChargerList {
    pub chargers: Vec<ChargerSummary>,
}

/// Where a charger is connected: here, or in a cluster on another node (`None`: nowhere).
/// The node is named only in a cluster.
fn connection(state: &SharedState, id: &str) -> Option<(OcppVersion, Option<String>)> {
    if let Some(version) = state.chargers.version(id) {
        let node = state.cluster.as_ref().map(|c| c.node_id().to_owned());
        return Some((version, node));
    }
    let cluster = state.cluster.as_ref()?;
    let holder = cluster.holder(id).filter(|h| h.node != cluster.node_id())?;
    Some((holder.version, Some(holder.node)))
}

fn summary(state: &SharedState, record: &ChargerRecord) -> ChargerSummary {
    let connection = connection(state, &record.id);
    ChargerSummary {
        id: record.id.clone(),
        scope: record.scope.clone(),
        password_set: record.password_hash.is_some(),
        security_profile: record.security_profile,
        connected: connection.is_some(),
        ocpp_version: connection.as_ref().map(|(v, _)| v.to_string()),
        node: connection.and_then(|(_, node)| node),
        schema_tolerance: state.quirks.tolerance(&record.id).as_str(),
        post_boot_sync: state.behaviours.get(&record.id).post_boot_sync.to_api(),
        free_vend: state.behaviours.get(&record.id).free_vend,
        password: None,
    }
}

/// Holds `password` to the rule of `version` (`None`: not known yet), unless `legacy` gives
/// a reason to take a password outside the rules; then it only has to fit the charger's key.
fn check_password(
    version: Option<OcppVersion>,
    password: &str,
    legacy: Option<&str>,
) -> Result<(), ApiError> {
    let Some(reason) = legacy else {
        return ocpp_password::check_password(version, password).map_err(|err| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "password_rule",
                format!("{err}; a charger already deployed with such a password needs an explicit `legacy_password` reason"),
            )
        });
    };
    let reason_chars = reason.trim().chars().count();
    if reason_chars == 0 || reason_chars > MAX_LEGACY_REASON_CHARS {
        return Err(ApiError::invalid_body(format!(
            "legacy_password must give a reason of 1 to {MAX_LEGACY_REASON_CHARS} characters"
        )));
    }
    let chars = password.chars().count();
    if chars == 0 || chars > MAX_LEGACY_PASSWORD_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_rule",
            format!("a legacy password must be 1 to {MAX_LEGACY_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Audits a password accepted by a `legacy_password` exception, with its reason.
async fn record_legacy_exception(
    state: &SharedState,
    caller: &Caller,
    request_id: &RequestId,
    charger: &str,
    reason: &str,
) {
    let reason = format!(
        "password outside the OCPP password rules accepted by explicit exception: {}",
        reason.trim()
    );
    audit::record(
        state,
        audit::entry(
            &caller.id,
            Action::ChargerSecurity.as_str(),
            charger,
            true,
            &reason,
            Some("legacy_password".into()),
            Some(request_id.as_str()),
        ),
    )
    .await;
}

/// A new password for a charger of `version`, of the longest length its rule allows, drawn
/// from the operating system's cryptographic RNG.
fn generate_password(version: Option<OcppVersion>) -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..ocpp_password::generated_length(version))
        .map(|_| char::from(GENERATED_ALPHABET[rng.gen_range(0..GENERATED_ALPHABET.len())]))
        .collect()
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

pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(mut body): StrictJson<NewCharger>,
) -> Result<(StatusCode, Json<ChargerSummary>), ApiError> {
    let version = state.chargers.version(&body.id);
    if body.generate_password {
        if body.password.is_some() || body.legacy_password.is_some() {
            return Err(ApiError::invalid_body(
                "generate_password excludes password and legacy_password",
            ));
        }
        body.password = Some(generate_password(version));
    }
    match &body.password {
        Some(password) => check_password(version, password, body.legacy_password.as_deref())?,
        None if body.legacy_password.is_some() => {
            return Err(ApiError::invalid_body("legacy_password needs a password"))
        }
        None => {}
    }
    let generated = body.password.clone().filter(|_| body.generate_password);
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
            pending: false,
        };
        let mut created = summary(&state, &record);
        created.password = generated;
        (StatusCode::CREATED, Json(created))
    });
    if result.is_ok() {
        tracing::info!(charger_id = %body.id, scope = %body.scope, by = %caller.id, "charger registered");
        if let Some(reason) = &body.legacy_password {
            record_legacy_exception(&state, &caller, &request_id, &body.id, reason).await;
        }
    }
    grant.finish_with(&state, result).await
}

/// Changes a charger's security profile and/or stored password (`charger.security`,
/// audited). The new settings apply from the charger's next connection; an open connection
/// stays.
pub(crate) async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
    StrictJson(body): StrictJson<ChargerChange>,
) -> Result<Json<ChargerSummary>, ApiError> {
    let legacy = body.legacy_password.clone();
    match &body.password {
        Some(password) => {
            check_password(state.chargers.version(&id), password, legacy.as_deref())?;
        }
        None if legacy.is_some() => {
            return Err(ApiError::invalid_body("legacy_password needs a password"))
        }
        None => {}
    }
    let tolerance = body
        .schema_tolerance
        .as_deref()
        .map(requested_tolerance)
        .transpose()?;
    let post_boot_sync = body
        .post_boot_sync
        .as_ref()
        .map(PostBootSync::from_api)
        .transpose()
        .map_err(|err| ApiError::invalid_body(err.to_string()))?;
    let free_vend = body.free_vend;
    let action = if body.password.is_some() || body.security_profile.is_some() {
        Action::ChargerSecurity
    } else {
        Action::ChargerEdit
    };
    let grant = authorize(
        &state,
        &caller,
        action,
        &Target::Charger(id.clone()),
        &request_id,
    )
    .await?;
    let result = match apply_change(&state, &id, body).await {
        Ok(summary) => match tolerance {
            Some(tolerance) => set_tolerance(&state, &id, tolerance, summary).await,
            None => Ok(summary),
        },
        Err(err) => Err(err),
    };
    let result = match result {
        Ok(summary) if post_boot_sync.is_some() || free_vend.is_some() => {
            set_behaviour(&state, &id, post_boot_sync, free_vend, summary).await
        }
        other => other,
    };
    if let Ok(Json(summary)) = &result {
        tracing::info!(charger_id = %id, security_profile = summary.security_profile, by = %caller.id, "charger security settings changed");
        if let Some(reason) = &legacy {
            record_legacy_exception(&state, &caller, &request_id, &id, reason).await;
        }
    }
    grant.finish_with(&state, result).await
}

async fn apply_change(
    state: &SharedState,
    id: &str,
    change: ChargerChange,
) -> Result<Json<ChargerSummary>, ApiError> {
    let new_hash = match change.password {
        Some(password) => Some(hash_off_thread(password).await?),
        None => None,
    };
    let record = state
        .estate
        .update_charger(id, |record| {
            let profile = change.security_profile.unwrap_or(record.security_profile);
            check_profile(
                state,
                profile,
                new_hash.is_some() || record.password_hash.is_some(),
            )?;
            if let Some(hash) = new_hash {
                record.password_hash = Some(hash);
            }
            record.security_profile = profile;
            Ok::<(), ApiError>(())
        })
        .await??;
    state.auth_guard.passwords.forget(id);
    Ok(Json(summary(state, &record)))
}

/// Stores a charger's own schema tolerance (or clears it) and makes it the one its session
/// uses from its next message on.
async fn set_tolerance(
    state: &SharedState,
    id: &str,
    tolerance: Option<Tolerance>,
    Json(mut summary): Json<ChargerSummary>,
) -> Result<Json<ChargerSummary>, ApiError> {
    state
        .estate
        .set_charger_schema_tolerance(id, tolerance.map(Tolerance::as_str), || {
            state.quirks.set_override(id, tolerance);
        })
        .await?;
    summary.schema_tolerance = state.quirks.tolerance(id).as_str();
    tracing::info!(charger_id = %id, schema_tolerance = summary.schema_tolerance, own = tolerance.is_some(), "charger schema tolerance changed");
    Ok(Json(summary))
}

/// Stores a charger's post-boot sync and free-vend settings (the ones given; the others stay)
/// and makes them the ones in force: post-boot sync from the charger's next boot or
/// connection, free vend from its next id token.
async fn set_behaviour(
    state: &SharedState,
    id: &str,
    post_boot_sync: Option<PostBootSync>,
    free_vend: Option<bool>,
    Json(mut summary): Json<ChargerSummary>,
) -> Result<Json<ChargerSummary>, ApiError> {
    let next = parking_lot::Mutex::new(state.behaviours.get(id));
    state
        .estate
        .set_charger_behaviour(
            || {
                let mut behaviour = state.behaviours.get(id);
                behaviour.post_boot_sync = post_boot_sync.unwrap_or(behaviour.post_boot_sync);
                behaviour.free_vend = free_vend.unwrap_or(behaviour.free_vend);
                *next.lock() = behaviour;
                behaviour.record(id)
            },
            || state.behaviours.set(id, *next.lock()),
        )
        .await?;
    let behaviour = *next.lock();
    summary.post_boot_sync = behaviour.post_boot_sync.to_api();
    summary.free_vend = behaviour.free_vend;
    tracing::info!(charger_id = %id, post_boot_sync = %summary.post_boot_sync, free_vend = summary.free_vend, "charger behaviour changed");
    Ok(Json(summary))
}

/// The answer to an approval.
#[derive(Debug, Serialize)]
pub(crate) struct Approval {
    pub id: String,
    /// Whether the charger was pending before (an approval of a trusted charger changes nothing).
    pub was_pending: bool,
}

/// `POST /api/v1/chargers/{id}/approve`: trusts a charger that auto-registration left pending
/// (`charger.edit`, audited). From then on its id tokens are decided by the role engine and it
/// gets its local list.
pub(crate) async fn approve(
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
        let was_pending = state.estate.approve_charger(&id).await?;
        if was_pending {
            let post_boot = state.behaviours.get(&id).post_boot_sync;
            state.local_lists.booted(&id, post_boot);
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

/// `POST /api/v1/chargers/{id}/password`: the new Basic-auth password; without one (or
/// without a body) the gateway generates it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordRotation {
    #[serde(default)]
    pub password: Option<String>,
}

/// The charger's answer to a password rotation.
#[derive(Debug, Serialize)]
pub(crate) struct RotationResult {
    /// The charger's status (`Accepted`, `Rejected`, …).
    pub status: String,
    /// Whether the stored password was replaced (only when the charger took it).
    pub password_changed: bool,
    /// Whether the gateway generated the password (it is never shown).
    pub password_generated: bool,
}

/// Rotates a charger's password on both sides: needs `charger.security` on the charger, then
/// sends [`voltgate_ocpp::Command::SetBasicAuthPassword`] (1.6 `ChangeConfiguration
/// AuthorizationKey`, hex-encoded; 2.0.1 `SetVariables SecurityCtrlr.BasicAuthPassword`)
/// through [`crate::gate::send_command`] (which asks the role engine again and audits the
/// command without its value). The password is the one given, held to the rule of the
/// charger's version, or else one generated at that rule's longest length and never shown.
/// An `Accepted` or `RebootRequired` answer (the charger took the value and uses it from its
/// next connection) replaces the stored hash of the password itself; from then on the old
/// password is refused, and the open connection stays until the charger reconnects with the
/// new one. Any other answer keeps the old password.
pub(crate) async fn rotate_password(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
    StrictJson(body): StrictJson<PasswordRotation>,
) -> Result<Json<RotationResult>, ApiError> {
    let version = state.chargers.version(&id);
    if let Some(password) = &body.password {
        check_password(version, password, None)?;
    }
    let grant = authorize(
        &state,
        &caller,
        Action::ChargerSecurity,
        &Target::Charger(id.clone()),
        &request_id,
    )
    .await?;
    let result = rotate(&state, &caller, &request_id, &id, version, body.password).await;
    grant.finish_with(&state, result).await
}

async fn rotate(
    state: &SharedState,
    caller: &Caller,
    request_id: &RequestId,
    id: &str,
    version: Option<OcppVersion>,
    password: Option<String>,
) -> Result<Json<RotationResult>, ApiError> {
    if state.store.charger(id).await?.is_none() {
        return Err(ApiError::not_found(format!("charger `{id}` not found")));
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(|| generate_password(version));
    // Hashed before it is sent: a charger that takes the password and reconnects at once
    // must find it stored.
    let hash = hash_off_thread(password.clone()).await?;
    let command = voltgate_ocpp::Command::SetBasicAuthPassword { password };
    let reply =
        crate::gate::send_command(state, &caller.id, id, command, Some(request_id.as_str()))
            .await?;
    let accepted = matches!(reply.status.as_str(), "Accepted" | "RebootRequired");
    if accepted {
        state
            .estate
            .update_charger(id, |record| {
                record.password_hash = Some(hash);
                Ok::<(), std::convert::Infallible>(())
            })
            .await?
            .unwrap_or_else(|never| match never {});
        state.auth_guard.passwords.forget(id);
        tracing::info!(charger_id = %id, by = %caller.id, "charger password rotated");
    }
    Ok(Json(RotationResult {
        status: reply.status,
        password_changed: accepted,
        password_generated: generated,
    }))
}

/// Every charger the caller may view (`charger.view`), sorted by id.
pub(crate) async fn list(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<Json<ChargerList>, ApiError> {
    let visible: std::collections::HashSet<String> = {
        let engine = state.estate.engine();
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
pub(crate) async fn get(
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
    let mut view = match live_view(state, id).await {
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::internal("live state could not be rendered")),
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
    let behaviour = state.behaviours.get(id);
    view.insert("post_boot_sync".into(), behaviour.post_boot_sync.to_api());
    view.insert("free_vend".into(), Value::Bool(behaviour.free_vend));
    match serde_json::to_value(state.quirks.summary(id)) {
        Ok(schema) => view.insert("schema".into(), schema),
        Err(_) => return Err(ApiError::internal("schema summary could not be rendered")),
    };
    Ok(Json(Value::Object(view)))
}

/// The charger's live state: this node's, or in a cluster that of the node holding it
/// (with its `node`); `None` when no node has seen it connect.
async fn live_view(state: &SharedState, id: &str) -> Option<Value> {
    let here = state.chargers.live(id);
    let Some(cluster) = &state.cluster else {
        return here.and_then(|live| serde_json::to_value(live).ok());
    };
    let (mut view, node) = match here.filter(|live| live.connected) {
        Some(live) => (
            serde_json::to_value(live).ok()?,
            cluster.node_id().to_owned(),
        ),
        None => match cluster.holder(id).filter(|h| h.node != cluster.node_id()) {
            Some(holder) => match cluster.live_view(&holder, id).await {
                Some(view) => (view, holder.node),
                None => {
                    return state
                        .chargers
                        .live(id)
                        .and_then(|l| serde_json::to_value(l).ok())
                }
            },
            None => {
                return state
                    .chargers
                    .live(id)
                    .and_then(|l| serde_json::to_value(l).ok())
            }
        },
    };
    if let Value::Object(map) = &mut view {
        map.insert("node".into(), Value::String(node));
    }
    Some(view)
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
