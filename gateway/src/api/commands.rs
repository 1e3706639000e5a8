//! `POST /api/v1/chargers/{id}/commands/{command}`: version-neutral operator commands,
//! handed to [`crate::gate::send_command`] (the only way a command reaches a charger).

use axum::extract::State;
use axum::Json;
use voltgate_ocpp::{Command, CommandError};

use super::error::ApiError;
use super::extract::{Caller, JsonValue, RequestId, StrictPath};
use crate::gate::{self, CommandReply};
use crate::state::SharedState;

pub async fn send(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath((charger_id, name)): StrictPath<(String, String)>,
    JsonValue(body): JsonValue,
) -> Result<Json<CommandReply>, ApiError> {
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
