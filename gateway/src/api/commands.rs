//! `POST /api/v1/chargers/{id}/commands/{command}`: version-neutral operator commands,
//! handed to [`crate::gate::send_command`] (the only way a command reaches a charger).
//!
//! A remote start charges a session to the card it names, so that card must be one the caller
//! may see (its principal is visible to the caller: another tenant's card is unknown, 422)
//! and one the engine lets `charge` at that charger (403); both refusals are audited. The
//! card is the one the charger itself would take the text for (its tenant's, else a
//! root-level one: [`card_at_station`]), so two tenants' cards of one text never mix.

use axum::extract::State;
use axum::Json;
use voltgate_ocpp::{Command, CommandError, LOCAL_LIST_COMMAND_NAMES};
use voltgate_policy::{Action, Resource};

use super::authorize::{refuse, visible, Target};
use super::error::ApiError;
use super::extract::{Caller, JsonValue, RequestId, StrictPath};
use crate::charger::handlers::{card_at_station, cards_named};
use crate::gate::{self, CommandReply};
use crate::local_list::{self, SendNowError};
use crate::state::{AppState, SharedState};
use voltgate_policy::STATION_KIND;

pub(crate) async fn send(
    State(state): State<SharedState>,
    caller: Caller,
    request_id: RequestId,
    StrictPath((charger_id, name)): StrictPath<(String, String)>,
    JsonValue(body): JsonValue,
) -> Result<Json<CommandReply>, ApiError> {
    if LOCAL_LIST_COMMAND_NAMES.contains(&name.as_str()) {
        return local_list_command(&state, &caller, &request_id, &charger_id, &name, &body).await;
    }
    let command = Command::from_api(&name, &body).map_err(|err| match err {
        CommandError::UnknownCommand(_) => ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "unknown_command",
            format!(
                "unknown command `{name}`; known commands: {}, {}",
                voltgate_ocpp::COMMAND_NAMES.join(", "),
                LOCAL_LIST_COMMAND_NAMES.join(", ")
            ),
        ),
        other => ApiError::invalid_body(other.to_string()),
    })?;
    if let Command::RemoteStart {
        id_token,
        token_type,
        ..
    } = &command
    {
        check_remote_start_token(
            &state,
            &caller,
            &request_id,
            &charger_id,
            id_token,
            token_type.as_deref(),
        )
        .await?;
    }
    let command = with_stored_token_type(&state, &charger_id, command).await?;
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

/// `send-local-list` (the whole list the engine computes for the charger, sent now as the sync
/// would, version bumped) and `get-local-list-version` (the charger's answer as is). Decided
/// by the action the presets govern local lists with ([`Command::decided_by`]), each message
/// audited under the caller. Both take an empty body (or none).
async fn local_list_command(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    charger_id: &str,
    name: &str,
    body: &serde_json::Value,
) -> Result<Json<CommandReply>, ApiError> {
    let empty = match body {
        serde_json::Value::Null => true,
        serde_json::Value::Object(fields) => fields.is_empty(),
        _ => false,
    };
    if !empty {
        return Err(ApiError::invalid_body(format!(
            "`{name}` takes an empty body"
        )));
    }
    // The command whose deciding action the grant is for; a `send-local-list`'s messages
    // themselves are built by `local_list::send_now` from the list the engine computes.
    let command = if name == "get-local-list-version" {
        Command::GetLocalListVersion
    } else {
        Command::SendLocalList {
            version: 1,
            full: true,
            entries: Vec::new(),
        }
    };
    let grant = gate::decide_command(
        state,
        &caller.id,
        charger_id,
        &command,
        Some(request_id.as_str()),
    )
    .await?;
    let reply = match command {
        Command::GetLocalListVersion => gate::send_granted(state, &grant, command).await?,
        _ => local_list::send_now(state, &grant, charger_id)
            .await
            .map_err(|err| match err {
                SendNowError::Gate(err) => ApiError::from(err),
                SendNowError::Store(err) => ApiError::from(err),
                pending @ SendNowError::Pending(_) => ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "charger_pending",
                    pending.to_string(),
                ),
            })?,
    };
    Ok(Json(reply))
}

/// A remote start carries its id token in the stored form and the type it is stored with, so a 2.0.1 charger starts
/// (and reports back) the token as the type the gateway recognises it by; a token stored
/// without a type, or not stored, goes as [`voltgate_ocpp::DEFAULT_ID_TOKEN_TYPE`].
async fn with_stored_token_type(
    state: &SharedState,
    charger: &str,
    command: Command,
) -> Result<Command, ApiError> {
    match command {
        Command::RemoteStart {
            connector,
            id_token,
            token_type: None,
        } => {
            let cards = cards_named(state.store.as_ref(), &id_token).await?;
            let record =
                card_at_station(&state.estate.engine(), charger, &id_token, None, &cards).cloned();
            Ok(Command::RemoteStart {
                connector,
                id_token: record.as_ref().map_or(id_token, |r| r.id_token.clone()),
                token_type: record.and_then(|record| record.token_type),
            })
        }
        other => Ok(other),
    }
}

/// Refuses a remote start whose card the caller may not use at `charger`. Only asked when the
/// caller may send the command there at all; otherwise the gate refuses it (404 or 403)
/// without revealing anything about the card.
async fn check_remote_start_token(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    charger: &str,
    id_token: &str,
    token_type: Option<&str>,
) -> Result<(), ApiError> {
    let action = Action::CommandRemoteStart;
    let station = Resource::Scope(charger.to_owned());
    {
        let engine = state.estate.engine();
        let may_send = engine.scope_kind(charger) == Some(STATION_KIND)
            && engine.check(&caller.id, action, &station);
        if !may_send {
            return Ok(());
        }
    }
    let cards = cards_named(state.store.as_ref(), id_token).await?;
    let holder = card_at_station(
        &state.estate.engine(),
        charger,
        id_token,
        token_type,
        &cards,
    )
    .map(|record| record.principal.clone());
    let owner =
        holder.filter(|principal| visible(state, caller, &Target::Principal(principal.clone())));
    let refusal = match owner {
        None => Some((
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_id_token",
                format!("id token `{id_token}` is unknown"),
            ),
            "unknown_id_token",
        )),
        Some(principal)
            if !state
                .estate
                .engine()
                .check(&principal, Action::Charge, &station) =>
        {
            Some((
                ApiError::forbidden(format!(
                    "`{principal}`, who holds id token `{id_token}`, may not charge at charger `{charger}`"
                )),
                "refused",
            ))
        }
        Some(_) => None,
    };
    let Some((error, outcome)) = refusal else {
        return Ok(());
    };
    state.metrics.authz_decision(action.as_str(), false);
    refuse(
        state,
        caller,
        action.as_str(),
        &crate::audit::scope_label(charger),
        &error.message,
        outcome,
        request_id,
    )
    .await;
    Err(error)
}
