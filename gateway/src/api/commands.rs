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
    let command = with_stored_token_type(&state, command).await?;
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

/// A remote start carries the type its id token is stored with, so a 2.0.1 charger starts
/// (and reports back) the token as the type the gateway recognises it by; a token stored
/// without a type, or not stored, goes as [`voltgate_ocpp::DEFAULT_ID_TOKEN_TYPE`].
async fn with_stored_token_type(
    state: &SharedState,
    command: Command,
) -> Result<Command, ApiError> {
    match command {
        Command::RemoteStart {
            connector,
            id_token,
            token_type: None,
        } => {
            let token_type = state
                .store
                .id_token(&id_token)
                .await?
                .and_then(|record| record.token_type);
            Ok(Command::RemoteStart {
                connector,
                id_token,
                token_type,
            })
        }
        other => Ok(other),
    }
}
