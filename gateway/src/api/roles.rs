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
use crate::state::{mutation_lock, SharedState};

const MAX_LABEL_CHARS: usize = 200;
const MAX_ROLE_ID_CHARS: usize = 64;

#[derive(Debug, Serialize)]
pub struct RoleView {
    pub id: String,
    pub label: String,
    pub admin: bool,
    pub permissions: Vec<String>,
    pub assignable_on: Vec<String>,
    pub can_charge: bool,
    pub custom: bool,
}

#[derive(Debug, Serialize)]
pub struct RoleList {
    pub preset: String,
    pub custom_roles_allowed: bool,
    pub roles: Vec<RoleView>,
}

/// Every role of the preset, then the custom roles in creation order.
pub async fn list(
    State(state): State<SharedState>,
    _caller: Caller,
) -> Result<Json<RoleList>, ApiError> {
    let engine = state.policy.read();
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
pub struct NewRole {
    pub id: String,
    pub permissions: Vec<String>,
    #[serde(default)]
    pub label: Option<String>,
}

fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ROLE_ID_CHARS
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `POST /api/v1/roles` (`role.edit` on the root: roles are estate-wide).
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictJson(body): StrictJson<NewRole>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    {
        let engine = state.policy.read();
        if !engine.preset().custom_roles() {
            return Err(ApiError::bad_request(
                "custom_roles_disabled",
                format!(
                    "preset `{}` does not allow custom roles",
                    engine.preset().id()
                ),
            ));
        }
    }
    if !is_kebab_case(&body.id) {
        return Err(ApiError::invalid_body(format!(
            "role id `{}` must be kebab-case (a-z, 0-9, single dashes), at most {MAX_ROLE_ID_CHARS} characters",
            body.id
        )));
    }
    let label = body.label.clone().unwrap_or_else(|| body.id.clone());
    if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
        return Err(ApiError::invalid_body(format!(
            "label must be 1 to {MAX_LABEL_CHARS} characters"
        )));
    }
    let grant = authorize_global(&state, &caller, Action::RoleEdit, &request_id).await?;
    let result = define(&state, body, label).await;
    grant.finish_with(&state, result).await
}

async fn define(
    state: &SharedState,
    body: NewRole,
    label: String,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    let _guard = mutation_lock().await;
    check_role(state, &body, &label)?;
    let record = RoleRecord {
        id: body.id,
        label,
        permissions: body.permissions,
    };
    state.store.put_role(&record).await?;
    let mut engine = state.policy.write();
    engine
        .define_role(&record.id, &record.label, &record.permissions)
        .map_err(|err| {
            tracing::error!(role = %record.id, error = %err, "engine refused a stored custom role");
            ApiError::invalid_body(err.to_string())
        })?;
    let view = engine
        .role(&record.id)
        .map(RoleView::from)
        .ok_or_else(|| ApiError::internal("the new role is missing from the engine"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The engine's rules for custom roles, checked before anything is stored: a new id, a
/// label that is not an admin role's, at least one permission, every permission known and
/// none admin-level or an admin role.
fn check_role(state: &SharedState, body: &NewRole, label: &str) -> Result<(), ApiError> {
    let engine = state.policy.read();
    let preset = engine.preset();
    if let Some(role) = engine.role(&body.id) {
        if role.admin {
            return Err(ApiError::invalid_body(format!(
                "`{}` is the name of an admin role and cannot be used for a custom role",
                body.id
            )));
        }
        return Err(ApiError::conflict(format!(
            "role `{}` already exists",
            body.id
        )));
    }
    let label_lower = label.trim().to_lowercase();
    if let Some(admin) = engine
        .roles()
        .filter(|r| r.admin)
        .find(|r| r.label.to_lowercase() == label_lower || r.id == label_lower)
    {
        return Err(ApiError::invalid_body(format!(
            "a custom role cannot be labelled like admin role `{}`",
            admin.label
        )));
    }
    if body.permissions.is_empty() {
        return Err(ApiError::invalid_body(
            "a custom role needs at least one permission",
        ));
    }
    for name in &body.permissions {
        if let Some(role) = engine.role(name) {
            return Err(ApiError::invalid_body(if role.admin {
                format!("custom roles cannot contain admin role `{name}`; admin roles are assigned on their own")
            } else {
                format!("`{name}` is a role, not a permission")
            }));
        }
        match preset.permission(name) {
            Some(permission) if permission.admin => {
                return Err(ApiError::invalid_body(format!(
                    "custom roles cannot contain admin-level permission `{name}`"
                )))
            }
            Some(_) => {}
            None => {
                return Err(ApiError::invalid_body(format!(
                    "unknown permission `{name}` in preset `{}`",
                    preset.id()
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_kebab_case;

    #[test]
    fn role_ids_are_kebab_case() {
        assert!(is_kebab_case("night-shift-2"));
        assert!(!is_kebab_case("Night"));
        assert!(!is_kebab_case("a--b"));
        assert!(!is_kebab_case("-a"));
        assert!(!is_kebab_case("a_b"));
        assert!(!is_kebab_case(""));
    }
}
