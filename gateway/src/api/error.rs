//! The API's single error shape: a status code plus `{"error": CODE, "message": TEXT}`,
//! where CODE is a stable machine-readable word and TEXT is meant for a person.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use voltgate_store::StoreError;

use crate::gate::GateError;
use voltgate_estate::ChangeError;
use voltgate_policy::PolicyError;

#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", reason)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub(crate) fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message)
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Store failures: conflicts and missing rows keep their meaning; anything else is the
    /// database being unavailable, logged here with its detail and reported without it.
    pub(crate) fn store(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => Self::conflict(what),
            StoreError::NotFound(what) => Self::not_found(what),
            other => {
                tracing::error!(error = %other, "store operation failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store could not complete the request; nothing was changed",
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::store(err)
    }
}

impl From<GateError> for ApiError {
    fn from(err: GateError) -> Self {
        let message = err.to_string();
        match err {
            GateError::NotFound(_) => ApiError::not_found(message),
            GateError::Forbidden { reason } => ApiError::forbidden(reason),
            GateError::NotConnected(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_connected", message)
            }
            GateError::NotInVersion { .. } => {
                ApiError::bad_request("unsupported_in_version", message)
            }
            GateError::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "charger_busy", message)
            }
            GateError::CallError { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "charger_call_error", message)
            }
            GateError::Timeout(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "charger_timeout", message)
            }
            GateError::Translation(_) => ApiError::invalid_body(message),
            GateError::AuditUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                message,
            ),
            GateError::ClusterUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster_unavailable",
                message,
            ),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(err: ChangeError) -> Self {
        let message = err.to_string();
        match err {
            ChangeError::Invalid(
                PolicyError::DuplicateScope(_)
                | PolicyError::DuplicatePrincipal(_)
                | PolicyError::DuplicateRole(_)
                | PolicyError::CardTaken(_)
                | PolicyError::TooDeep { .. }
                | PolicyError::SubtreeFull { .. },
            )
            | ChangeError::Conflict(_) => ApiError::conflict(message),
            ChangeError::Invalid(
                PolicyError::UnknownScope(_)
                | PolicyError::UnknownPrincipal(_)
                | PolicyError::UnknownRole(_)
                | PolicyError::UnknownModule(_),
            )
            | ChangeError::NotFound(_) => ApiError::not_found(message),
            ChangeError::Invalid(PolicyError::CustomRolesDisabled { .. }) => {
                ApiError::bad_request("custom_roles_disabled", message)
            }
            ChangeError::Invalid(_) => ApiError::invalid_body(message),
            ChangeError::Store(store) => ApiError::store(store),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
