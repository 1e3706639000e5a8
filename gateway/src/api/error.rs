//! The API's single error shape: a status code plus `{"error": CODE, "message": TEXT}`,
//! where CODE is a stable machine-readable word and TEXT is meant for a person.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use voltgate_store::StoreError;

use crate::gate::GateError;
use crate::state::RegisterError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", reason)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Store failures: conflicts and missing rows keep their meaning; anything else is the
    /// database being unavailable, logged here with its detail and reported without it.
    pub fn store(err: StoreError) -> Self {
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
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(err: RegisterError) -> Self {
        let message = err.to_string();
        match err {
            RegisterError::ParentNotFound(_) => ApiError::not_found(message),
            RegisterError::ParentKindNotAllowed { .. } | RegisterError::InvalidId => {
                ApiError::invalid_body(message)
            }
            RegisterError::AlreadyExists(_) | RegisterError::TreeLimit(_) => {
                ApiError::conflict(message)
            }
            RegisterError::Store(store) => ApiError::store(store),
            RegisterError::Engine(_) => {
                tracing::error!(error = %message, "engine refused a change the store accepted");
                ApiError::internal(message)
            }
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
