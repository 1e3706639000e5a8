//! `/api/v1/principals`: operators and drivers, their API tokens and their id tokens (RFID
//! cards / idTags), and blocking.
//!
//! Creating or changing a driver needs `driver.edit`, an operator `principal.edit`, both at
//! the principal's home scope: driver data is reachable only through the permissions the
//! preset names for it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use voltgate_policy::{Action, PrincipalKind, Resource};
use voltgate_store::{ApiTokenRecord, IdTokenRecord, PrincipalRecord};

use super::authorize::{authorize, grant, visible, Target};
use super::error::ApiError;
use super::extract::{check_id, Caller, RequestId, StrictJson, StrictPath, StrictQuery};
use crate::charger::handlers::cards_named;
use crate::clock;
use crate::state::{hash_token, new_api_token, new_token_id, SharedState};

/// OCPP 2.0.1 IdToken values are at most 36 characters (1.6 idTag: 20).
const MAX_ID_TOKEN_CHARS: usize = 36;
const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPrincipal {
    pub id: String,
    pub kind: String,
    pub home_scope: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PrincipalView {
    pub id: String,
    pub kind: String,
    pub home_scope: String,
    pub name: String,
    pub blocked: bool,
}

impl From<PrincipalRecord> for PrincipalView {
    fn from(p: PrincipalRecord) -> Self {
        PrincipalView {
            id: p.id,
            kind: p.kind,
            home_scope: p.home_scope,
            name: p.name,
            blocked: p.blocked,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct PrincipalList {
    pub principals: Vec<PrincipalView>,
}

/// The action that guards changes to a principal of this kind.
fn edit_action(kind: PrincipalKind) -> Action {
    match kind {
        PrincipalKind::Driver => Action::DriverEdit,
        PrincipalKind::Operator | PrincipalKind::System => Action::PrincipalEdit,
    }
}

/// The action that guards deleting a principal of this kind.
fn delete_action(kind: PrincipalKind) -> Action {
    match kind {
        PrincipalKind::Driver => Action::DriverDelete,
        PrincipalKind::Operator | PrincipalKind::System => Action::PrincipalDelete,
    }
}

fn view_action(kind: PrincipalKind) -> Action {
    match kind {
        PrincipalKind::Driver => Action::DriverView,
        PrincipalKind::Operator | PrincipalKind::System => Action::PrincipalView,
    }
}

pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(body): StrictJson<NewPrincipal>,
) -> Result<(StatusCode, Json<PrincipalView>), ApiError> {
    check_id("principal", &body.id)?;
    let kind = match body.kind.parse::<PrincipalKind>().ok() {
        Some(kind @ (PrincipalKind::Operator | PrincipalKind::Driver)) => kind,
        _ => {
            return Err(ApiError::invalid_body(format!(
                "kind must be `operator` or `driver`, not `{}`",
                body.kind
            )))
        }
    };
    let name = body.name.unwrap_or_else(|| body.id.clone());
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid_body(format!(
            "name must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    let grant = authorize(
        &state,
        &caller,
        edit_action(kind),
        &Target::Scope(body.home_scope.clone()),
        &request_id,
    )
    .await?;
    let record = PrincipalRecord {
        id: body.id,
        kind: kind.as_str().to_owned(),
        home_scope: body.home_scope,
        name,
        blocked: false,
    };
    let result = insert_principal(&state, record, kind).await;
    grant.finish_with(&state, result).await
}

async fn insert_principal(
    state: &SharedState,
    record: PrincipalRecord,
    kind: PrincipalKind,
) -> Result<(StatusCode, Json<PrincipalView>), ApiError> {
    state.estate.add_principal(&record, kind).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// The caller itself, plus every operator it may view (`principal.view`) and every driver
/// it may view (`driver.view`).
pub(crate) async fn list(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<Json<PrincipalList>, ApiError> {
    let records = state.store.principals().await?;
    let engine = state.estate.engine();
    let principals = records
        .into_iter()
        .filter(|p| {
            if p.id == caller.id {
                return true;
            }
            let Some(kind) = engine.principal_kind(&p.id) else {
                return false;
            };
            engine.check(
                &caller.id,
                view_action(kind),
                &Resource::Principal(p.id.clone()),
            )
        })
        .map(PrincipalView::from)
        .collect();
    Ok(Json(PrincipalList { principals }))
}

/// The kind of a principal, for choosing the action that guards it. An unknown id gets
/// `operator`; [`authorize`] then answers 404 and audits the attempt.
fn kind_of(state: &SharedState, id: &str) -> PrincipalKind {
    state
        .estate
        .engine()
        .principal_kind(id)
        .unwrap_or(PrincipalKind::Operator)
}

/// The grant to act for principal `id` (issue or revoke its tokens, block it, delete it):
/// the edit permission for its kind, which the engine grants only within the caller's own
/// reach (no role the target holds beyond what the caller could grant it).
async fn manage_grant(
    state: &SharedState,
    caller: &Caller,
    id: &str,
    request_id: &RequestId,
) -> Result<super::authorize::Grant, ApiError> {
    manage_grant_for(
        state,
        caller,
        id,
        edit_action(kind_of(state, id)),
        request_id,
    )
    .await
}

/// [`manage_grant`] for a given action on the principal (editing or deleting it).
async fn manage_grant_for(
    state: &SharedState,
    caller: &Caller,
    id: &str,
    action: Action,
    request_id: &RequestId,
) -> Result<super::authorize::Grant, ApiError> {
    authorize(
        state,
        caller,
        action,
        &Target::Principal(id.to_owned()),
        request_id,
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewApiToken {
    /// RFC 3339; the token stops working at this time.
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct IssuedToken {
    pub id: String,
    pub principal: String,
    /// Shown once; only its hash is stored.
    pub token: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// `POST /api/v1/principals/{id}/tokens`: a principal may always issue tokens for itself;
/// for others it needs `principal.edit` (operators) or `driver.edit` (drivers), which the engine
/// grants only to those who could grant every role the other holds.
pub(crate) async fn issue_token(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
    StrictJson(body): StrictJson<NewApiToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    if let Some(expires_at) = &body.expires_at {
        match clock::parse_rfc3339(expires_at) {
            Some(at) if at > clock::now() => {}
            Some(_) => return Err(ApiError::invalid_body("expires_at must be in the future")),
            None => {
                return Err(ApiError::invalid_body(
                    "expires_at must be an RFC 3339 date-time",
                ))
            }
        }
    }
    let grant = if id == caller.id {
        grant(
            &caller,
            Action::PrincipalEdit.as_str(),
            &Target::Principal(id.clone()).label(),
            "a principal may always issue API tokens for itself",
            &request_id,
        )
    } else {
        manage_grant(&state, &caller, &id, &request_id).await?
    };
    let token = new_api_token();
    let record = ApiTokenRecord {
        id: new_token_id(),
        principal: id.clone(),
        hash: hash_token(&token),
        created_at: clock::now_rfc3339(),
        expires_at: body.expires_at,
    };
    let result = state
        .store
        .add_api_token(&record)
        .await
        .map_err(ApiError::from)
        .map(|()| {
            (
                StatusCode::CREATED,
                Json(IssuedToken {
                    id: record.id.clone(),
                    principal: record.principal.clone(),
                    token,
                    created_at: record.created_at.clone(),
                    expires_at: record.expires_at.clone(),
                }),
            )
        });
    grant.finish_with(&state, result).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewIdToken {
    pub id_token: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// The OCPP 2.0.1 IdTokenEnumType the token is presented with; absent matches any.
    #[serde(default, rename = "type")]
    pub token_type: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct IdTokenView {
    pub id_token: String,
    pub principal: String,
    pub blocked: bool,
    pub expires_at: Option<String>,
    pub group: Option<String>,
    #[serde(rename = "type")]
    pub token_type: Option<String>,
}

impl From<IdTokenRecord> for IdTokenView {
    fn from(t: IdTokenRecord) -> Self {
        IdTokenView {
            id_token: t.id_token,
            principal: t.principal,
            blocked: t.blocked,
            expires_at: t.expires_at,
            group: t.group,
            token_type: t.token_type,
        }
    }
}

/// A token type must be one of the 2.0.1 `IdTokenEnumType` values, spelled as on the wire.
fn check_id_token_type(value: &str) -> Result<(), ApiError> {
    if voltgate_ocpp::ID_TOKEN_TYPES.contains(&value) {
        return Ok(());
    }
    Err(ApiError::invalid_body(format!(
        "type must be one of {}",
        voltgate_ocpp::ID_TOKEN_TYPES.join(", ")
    )))
}

fn check_id_token_text(field: &str, value: &str) -> Result<(), ApiError> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_ID_TOKEN_CHARS || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_body(format!(
            "{field} must be 1 to {MAX_ID_TOKEN_CHARS} printable characters"
        )));
    }
    Ok(())
}

/// `POST /api/v1/principals/{id}/id-tokens`: bind an RFID card / idTag to a principal, so a
/// charger presenting it charges as that principal (`id-token.edit`).
pub(crate) async fn add_id_token(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
    StrictJson(body): StrictJson<NewIdToken>,
) -> Result<(StatusCode, Json<IdTokenView>), ApiError> {
    let id_token = voltgate_ocpp::normalize_id_token(&body.id_token)
        .map_err(|err| ApiError::invalid_body(format!("id_token: {err}")))?;
    if let Some(group) = &body.group {
        check_id_token_text("group", group)?;
    }
    if let Some(token_type) = &body.token_type {
        check_id_token_type(token_type)?;
    }
    if let Some(expires_at) = &body.expires_at {
        if clock::parse_rfc3339(expires_at).is_none() {
            return Err(ApiError::invalid_body(
                "expires_at must be an RFC 3339 date-time",
            ));
        }
    }
    let grant = authorize(
        &state,
        &caller,
        Action::IdTokenEdit,
        &Target::Principal(id.clone()),
        &request_id,
    )
    .await?;
    let record = IdTokenRecord {
        id_token,
        principal: id,
        blocked: false,
        expires_at: body.expires_at,
        group: body.group,
        token_type: body.token_type,
    };
    let result = insert_id_token(&state, record).await;
    grant.finish_with(&state, result).await
}

async fn insert_id_token(
    state: &SharedState,
    record: IdTokenRecord,
) -> Result<(StatusCode, Json<IdTokenView>), ApiError> {
    state.estate.add_id_token(&record).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// `POST /api/v1/principals/{id}/block`.
pub(crate) async fn block(
    state: State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
) -> Result<Json<PrincipalView>, ApiError> {
    set_blocked(state, caller, request_id, id, true).await
}

/// `POST /api/v1/principals/{id}/unblock`.
pub(crate) async fn unblock(
    state: State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
) -> Result<Json<PrincipalView>, ApiError> {
    set_blocked(state, caller, request_id, id, false).await
}

/// A blocked principal is denied everything by the engine, its API tokens stop working and
/// its id tokens answer `Blocked` at chargers.
async fn set_blocked(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    id: String,
    blocked: bool,
) -> Result<Json<PrincipalView>, ApiError> {
    let grant = manage_grant(&state, &caller, &id, &request_id).await?;
    let result = apply_blocked(&state, &id, blocked).await;
    grant.finish_with(&state, result).await
}

async fn apply_blocked(
    state: &SharedState,
    id: &str,
    blocked: bool,
) -> Result<Json<PrincipalView>, ApiError> {
    let record = state.estate.set_blocked(id, blocked).await?;
    Ok(Json(record.into()))
}

/// `DELETE /api/v1/principals/{id}`: the principal goes with its API tokens (they stop
/// working at once), its id tokens (chargers answer them `Invalid`, local lists drop them)
/// and its role assignments. Needs `principal.delete` (`driver.delete` for drivers) on the
/// principal, without reaching beyond the caller's own grants, as for blocking; nobody
/// deletes themselves (that leaves nobody to undo a mistake) nor the bootstrap administrator (recreated at every start).
pub(crate) async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
) -> Result<StatusCode, ApiError> {
    let action = delete_action(kind_of(&state, &id));
    let grant = manage_grant_for(&state, &caller, &id, action, &request_id).await?;
    let removable = state.estate.engine().can_remove_principal(&caller.id, &id);
    let result = match removable {
        Ok(()) => remove_principal(&state, &caller, &id).await,
        Err(denial) => Err(ApiError::conflict(denial.reason)),
    };
    grant.finish_with(&state, result).await
}

async fn remove_principal(
    state: &SharedState,
    caller: &Caller,
    id: &str,
) -> Result<StatusCode, ApiError> {
    state.estate.remove_principal(id).await?;
    tracing::info!(principal_removed = %id, by = %caller.id, "principal deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// One API token as listed: never the secret or its hash.
#[derive(Debug, Serialize)]
pub(crate) struct ApiTokenView {
    pub id: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Whether `expires_at` has passed (the token no longer works).
    pub expired: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct ApiTokenList {
    pub tokens: Vec<ApiTokenView>,
}

/// The grant for listing (`revoke = false`) or revoking (`revoke = true`) a principal's API
/// tokens: a principal may always handle its own; for others both need `principal.edit`
/// (`driver.edit` for drivers), as issuing does, since a credential inventory is as sensitive
/// as the credentials it lists, and the engine grants that only within the caller's reach.
async fn credentials_grant(
    state: &SharedState,
    caller: &Caller,
    request_id: &RequestId,
    id: &str,
) -> Result<super::authorize::Grant, ApiError> {
    if id == caller.id {
        return Ok(grant(
            caller,
            Action::PrincipalEdit.as_str(),
            &Target::Principal(id.to_owned()).label(),
            "a principal may always manage its own API tokens",
            request_id,
        ));
    }
    manage_grant(state, caller, id, request_id).await
}

/// `GET /api/v1/principals/{id}/tokens`: the principal's API tokens without their secrets.
/// Revoked tokens are deleted, so they are not listed (the audit log keeps the revocation).
pub(crate) async fn list_tokens(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
) -> Result<Json<ApiTokenList>, ApiError> {
    let grant = credentials_grant(&state, &caller, &request_id, &id).await?;
    let now = clock::now();
    let result = state
        .store
        .api_tokens_of(&id)
        .await
        .map_err(ApiError::from)
        .map(|records| {
            let tokens = records
                .into_iter()
                .map(|t| ApiTokenView {
                    expired: t
                        .expires_at
                        .as_deref()
                        .is_some_and(|at| clock::parse_rfc3339(at).is_none_or(|at| at <= now)),
                    id: t.id,
                    created_at: t.created_at,
                    expires_at: t.expires_at,
                })
                .collect();
            Json(ApiTokenList { tokens })
        });
    grant.finish_with(&state, result).await
}

/// `DELETE /api/v1/principals/{id}/tokens/{token_id}`: revokes the token at once; the next
/// request that presents it is answered 401.
pub(crate) async fn revoke_token(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath((id, token_id)): StrictPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let grant = credentials_grant(&state, &caller, &request_id, &id).await?;
    let result = revoke_owned_token(&state, &id, &token_id).await;
    grant.finish_with(&state, result).await
}

async fn revoke_owned_token(
    state: &SharedState,
    principal: &str,
    token_id: &str,
) -> Result<StatusCode, ApiError> {
    let owned = state
        .store
        .api_tokens_of(principal)
        .await?
        .iter()
        .any(|t| t.id == token_id);
    if !owned || !state.store.revoke_api_token(token_id).await? {
        return Err(ApiError::not_found(format!(
            "principal `{principal}` has no API token `{token_id}`"
        )));
    }
    tracing::info!(%principal, token = %token_id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
pub(crate) struct IdTokenList {
    pub id_tokens: Vec<IdTokenView>,
}

/// `GET /api/v1/principals/{id}/id-tokens`: the principal's RFID cards / idTags
/// (`driver.view` / `principal.view`, or the principal itself).
pub(crate) async fn list_id_tokens(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(id): StrictPath<String>,
) -> Result<Json<IdTokenList>, ApiError> {
    let grant = if id == caller.id {
        grant(
            &caller,
            Action::PrincipalView.as_str(),
            &Target::Principal(id.clone()).label(),
            "a principal may always see its own id tokens",
            &request_id,
        )
    } else {
        authorize(
            &state,
            &caller,
            view_action(kind_of(&state, &id)),
            &Target::Principal(id.clone()),
            &request_id,
        )
        .await?
    };
    let result = state
        .store
        .id_tokens_of(&id)
        .await
        .map_err(ApiError::from)
        .map(|tokens| {
            Json(IdTokenList {
                id_tokens: tokens.into_iter().map(IdTokenView::from).collect(),
            })
        });
    grant.finish_with(&state, result).await
}

/// A change to one id token. An absent field is left as it is; `"expires_at": null` removes
/// the expiry, `"group": null` the group, `"type": null` the type.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdTokenChange {
    #[serde(default)]
    pub blocked: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub group: Option<Option<String>>,
    #[serde(default, rename = "type", deserialize_with = "present")]
    pub token_type: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `PATCH /api/v1/id-tokens/{token}`: block or unblock, set or clear the expiry, the group or
/// the 2.0.1 token type (`id-token.edit` on the token's principal). Chargers' local lists follow within seconds.
pub(crate) async fn change_id_token(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(token): StrictPath<String>,
    StrictQuery(card): StrictQuery<CardQuery>,
    StrictJson(body): StrictJson<IdTokenChange>,
) -> Result<Json<IdTokenView>, ApiError> {
    if let Some(Some(expires_at)) = &body.expires_at {
        if clock::parse_rfc3339(expires_at).is_none() {
            return Err(ApiError::invalid_body(
                "expires_at must be an RFC 3339 date-time",
            ));
        }
    }
    if let Some(Some(group)) = &body.group {
        check_id_token_text("group", group)?;
    }
    if let Some(Some(token_type)) = &body.token_type {
        check_id_token_type(token_type)?;
    }
    let (grant, card) = id_token_grant(&state, &caller, &request_id, &token, card).await?;
    let result = update_id_token(&state, &card, |record| {
        if let Some(blocked) = body.blocked {
            record.blocked = blocked;
        }
        if let Some(expires_at) = body.expires_at {
            record.expires_at = expires_at;
        }
        if let Some(group) = body.group {
            record.group = group;
        }
        if let Some(token_type) = body.token_type {
            record.token_type = token_type;
        }
    })
    .await;
    grant.finish_with(&state, result).await
}

/// `POST /api/v1/id-tokens/{token}/block`: the token answers `Blocked` at every charger and
/// leaves every local list.
pub(crate) async fn block_id_token(
    state: State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(token): StrictPath<String>,
    StrictQuery(card): StrictQuery<CardQuery>,
) -> Result<Json<IdTokenView>, ApiError> {
    set_id_token_blocked(state, caller, request_id, token, card, true).await
}

/// `POST /api/v1/id-tokens/{token}/unblock`.
pub(crate) async fn unblock_id_token(
    state: State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(token): StrictPath<String>,
    StrictQuery(card): StrictQuery<CardQuery>,
) -> Result<Json<IdTokenView>, ApiError> {
    set_id_token_blocked(state, caller, request_id, token, card, false).await
}

async fn set_id_token_blocked(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    token: String,
    card: CardQuery,
    blocked: bool,
) -> Result<Json<IdTokenView>, ApiError> {
    let (grant, card) = id_token_grant(&state, &caller, &request_id, &token, card).await?;
    let result = update_id_token(&state, &card, |record| record.blocked = blocked).await;
    grant.finish_with(&state, result).await
}

/// `DELETE /api/v1/id-tokens/{token}`: forgets the token; chargers answer it `Invalid`.
pub(crate) async fn delete_id_token(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath(token): StrictPath<String>,
    StrictQuery(card): StrictQuery<CardQuery>,
) -> Result<StatusCode, ApiError> {
    let (grant, card) = id_token_grant(&state, &caller, &request_id, &token, card).await?;
    let result = match state
        .estate
        .delete_id_token(&card.principal, &card.id_token)
        .await
    {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(id_token_not_found(&token)),
        Err(err) => Err(err.into()),
    };
    grant.finish_with(&state, result).await
}

fn id_token_not_found(token: &str) -> ApiError {
    ApiError::not_found(format!("id token `{token}` not found"))
}

/// Which card `/id-tokens/{token}` means when its text alone does not say: cards are unique
/// per tenant, so two principals the caller sees (in two tenants, or one tenant and the root)
/// may hold the same text.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CardQuery {
    /// The principal holding the card.
    #[serde(default)]
    pub principal: Option<String>,
}

/// A card as the API names it: its stored text and its principal.
struct CardKey {
    id_token: String,
    principal: String,
}

/// `id-token.edit` on the principal the card belongs to, and the card as stored (the URL may
/// name it in any case, see [`cards_named`]). Only cards of principals the caller sees are
/// candidates, so an unknown card and one the caller cannot see take the same work (one store
/// read, no audit record) and answer the same 404; two candidates are told apart by
/// `?principal=`, and without it answer 409.
async fn id_token_grant(
    state: &SharedState,
    caller: &Caller,
    request_id: &RequestId,
    token: &str,
    query: CardQuery,
) -> Result<(super::authorize::Grant, CardKey), ApiError> {
    let cards = cards_named(state.store.as_ref(), token).await?;
    let mut seen: Vec<IdTokenRecord> = cards
        .into_iter()
        .filter(|card| {
            query
                .principal
                .as_ref()
                .is_none_or(|p| *p == card.principal)
        })
        .filter(|card| visible(state, caller, &Target::Principal(card.principal.clone())))
        .collect();
    // A row stored in exactly the named text goes before one found by its normal form.
    if seen.iter().any(|card| card.id_token == token) {
        seen.retain(|card| card.id_token == token);
    }
    let record = match seen.len() {
        1 => seen.swap_remove(0),
        0 => {
            return Err(match voltgate_ocpp::normalize_id_token(token) {
                Ok(_) => id_token_not_found(token),
                Err(err) => ApiError::invalid_body(format!("id token in the path: {err}")),
            })
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "ambiguous_id_token",
                format!(
                    "id token `{token}` is held by several principals; name one with ?principal="
                ),
            ))
        }
    };
    let card = CardKey {
        id_token: record.id_token,
        principal: record.principal,
    };
    authorize(
        state,
        caller,
        Action::IdTokenEdit,
        &Target::Principal(card.principal.clone()),
        request_id,
    )
    .await
    .map(|grant| (grant, card))
    .map_err(|err| {
        if err.status == StatusCode::NOT_FOUND {
            id_token_not_found(token)
        } else {
            err
        }
    })
}

/// Reads, changes and writes one id token as one step of the estate, so the local-list sync
/// sees the change whole.
async fn update_id_token(
    state: &SharedState,
    card: &CardKey,
    change: impl FnOnce(&mut IdTokenRecord),
) -> Result<Json<IdTokenView>, ApiError> {
    let record = state
        .estate
        .update_id_token(&card.principal, &card.id_token, change)
        .await?;
    Ok(Json(record.into()))
}
