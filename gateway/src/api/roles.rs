//! `/api/v1/roles`: the preset's roles and, where the preset allows them, custom roles built
//! from its regular (non-admin) permissions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use voltgate_policy::{Action, RoleDef};
use voltgate_store::RoleRecord;

use super::authorize::authorize_global;
use super::error::ApiError;
use super::extract::{Caller, RequestId, StrictJson};
use crate::state::SharedState;
use voltgate_estate::ChangeError;

#[derive(Debug, Serialize)]
pub(crate) struct RoleView {
    pub id: String,
    pub label: String,
    pub admin: bool,
    pub permissions: Vec<String>,
    pub assignable_on: Vec<String>,
    pub can_charge: bool,
    pub custom: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct RoleList {
    pub preset: String,
    pub custom_roles_allowed: bool,
    pub roles: Vec<RoleView>,
}

/// Every role of the preset, then the custom roles in creation order.
pub(crate) async fn list(
    State(state): State<SharedState>,
    _caller: Caller,
) -> Result<Json<RoleList>, ApiError> {
    let engine = state.estate.engine();
    Ok(Json(RoleList {
        preset: engine.preset().id().to_owned(),
        custom_roles_allowed: engine.preset().custom_roles(),
        roles: engine.roles().map(RoleView::from).collect(),
    }))
}

impl From<&RoleDef> for RoleView {
    fn from(r: &RoleDef) -> Self {
        RoleView {
            id: r.id.clone(),
            label: r.label.clone(),
            admin: r.admin,
            permissions: r.permissions.clone(),
            assignable_on: r.assignable_on.clone(),
            can_charge: r.can_charge,
            custom: r.custom,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRole {
    pub id: String,
    pub permissions: Vec<String>,
    #[serde(default)]
    pub label: Option<String>,
}

/// `POST /api/v1/roles` (`role.edit` on the root: roles are estate-wide). The engine's rules
/// for custom roles are asked before the decision, so a malformed role is a 422 whoever asks.
pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(body): StrictJson<NewRole>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    let label = body.label.clone().unwrap_or_else(|| body.id.clone());
    state
        .estate
        .engine()
        .check_define_role(&body.id, &label, &body.permissions)
        .map_err(ChangeError::from)?;
    let grant = authorize_global(&state, &caller, Action::RoleEdit, &request_id).await?;
    let result = define(&state, body, label).await;
    grant.finish_with(&state, result).await
}

async fn define(
    state: &SharedState,
    body: NewRole,
    label: String,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    let record = RoleRecord {
        id: body.id,
        label,
        permissions: body.permissions,
    };
    let role = state.estate.define_role(&record).await?;
    Ok((StatusCode::CREATED, Json(RoleView::from(&role))))
}
