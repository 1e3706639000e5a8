//! `POST /api/v1/chargers/{id}/commands/{command}`: version-neutral operator commands,
//! handed to [`crate::gate::send_command`] (the only way a command reaches a charger).

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;
use voltgate_ocpp::{Command, CommandError};

use super::error::ApiError;
use super::extract::{Caller, JsonValue, RequestId};
use crate::gate::{self, CommandReply};
use crate::state::SharedState;

pub async fn send(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    Path((charger_id, name)): Path<(String, String)>,
    JsonValue(body): JsonValue,
) -> Result<Json<CommandReply>, ApiError> {
    let body = if name == "reset" {
        reset_body(body)?
    } else {
        body
    };
    let command = Command::from_api(&name, &body).map_err(|err| match err {
        CommandError::UnknownCommand(_) => ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "unknown_command",
            format!(
                "unknown command `{name}`; known commands: {}",
                voltgate_ocpp::COMMAND_NAMES.join(", ")
            ),
        ),
        other => ApiError::invalid_body(other.to_string()),
    })?;
    let reply = gate::send_command(
        &state,
        &caller.id,
        &charger_id,
        command,
        Some(request_id.as_str()),
    )
    .await?;
    Ok(Json(reply))
}

/// The API's reset body is `{"type": "soft" | "hard"}`; the codec takes `{"hard": bool}`.
fn reset_body(body: Value) -> Result<Value, ApiError> {
    let Value::Object(mut fields) = body else {
        return Err(ApiError::invalid_body("reset needs a JSON object body"));
    };
    let hard = match fields.remove("type") {
        Some(Value::String(kind)) if kind == "soft" => false,
        Some(Value::String(kind)) if kind == "hard" => true,
        Some(other) => {
            return Err(ApiError::invalid_body(format!(
                "reset type must be \"soft\" or \"hard\", not {other}"
            )))
        }
        None => {
            return Err(ApiError::invalid_body(
                "reset needs `type`: \"soft\" or \"hard\"",
            ))
        }
    };
    if let Some(extra) = fields.keys().next() {
        return Err(ApiError::invalid_body(format!(
            "unknown field `{extra}` in reset body"
        )));
    }
    Ok(serde_json::json!({ "hard": hard }))
}

#[cfg(test)]
mod tests {
    use super::reset_body;
    use serde_json::json;

    #[test]
    fn reset_type_maps_to_the_codec_shape() {
        assert_eq!(
            reset_body(json!({"type": "soft"})).unwrap(),
            json!({"hard": false})
        );
        assert_eq!(
            reset_body(json!({"type": "hard"})).unwrap(),
            json!({"hard": true})
        );
        assert!(reset_body(json!({"type": "Soft"})).is_err());
        assert!(reset_body(json!({})).is_err());
        assert!(reset_body(json!({"type": "soft", "hard": true})).is_err());
        assert!(reset_body(json!([1])).is_err());
    }
}
