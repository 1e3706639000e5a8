//! What travels between nodes: the JSON of presence entries, forwarded commands, their
//! answers, change notices and their confirmations, and the key under which a charger's presence is kept.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::charger::CallFailure;

/// The value of a charger's presence entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HolderValue {
    pub node: String,
    /// The OCPP version of the held connection, as its WebSocket subprotocol.
    pub version: String,
}

/// A command decided and audited on another node, for the charger this node holds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CommandRequest {
    pub audit_id: i64,
    pub charger_id: String,
    pub action: String,
    pub payload: Value,
    pub timeout_ms: u64,
}

/// The holder's answer to a [`CommandRequest`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum CommandAnswer {
    Answered {
        payload: Value,
    },
    NotConnected,
    Busy,
    Timeout,
    Disconnected,
    CallError {
        code: String,
        description: String,
        details: Value,
    },
}

impl CommandAnswer {
    pub(crate) fn from_result(result: Result<Value, CallFailure>) -> CommandAnswer {
        match result {
            Ok(payload) => CommandAnswer::Answered { payload },
            Err(CallFailure::NotConnected) => CommandAnswer::NotConnected,
            Err(CallFailure::Busy) => CommandAnswer::Busy,
            Err(CallFailure::Timeout) => CommandAnswer::Timeout,
            Err(CallFailure::Disconnected) => CommandAnswer::Disconnected,
            Err(CallFailure::CallError {
                code,
                description,
                details,
            }) => CommandAnswer::CallError {
                code,
                description,
                details,
            },
        }
    }

    pub(crate) fn into_result(self) -> Result<Value, CallFailure> {
        match self {
            CommandAnswer::Answered { payload } => Ok(payload),
            CommandAnswer::NotConnected => Err(CallFailure::NotConnected),
            CommandAnswer::Busy => Err(CallFailure::Busy),
            CommandAnswer::Timeout => Err(CallFailure::Timeout),
            CommandAnswer::Disconnected => Err(CallFailure::Disconnected),
            CommandAnswer::CallError {
                code,
                description,
                details,
            } => Err(CallFailure::CallError {
                code,
                description,
                details,
            }),
        }
    }
}

/// "Node `node` committed its change number `seq`": reload what the store holds, or, when
/// the changes since the last notice were charger registrations only (`reload` false), add
/// the chargers named in `registered` from their stored records.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Notice {
    pub node: String,
    pub seq: u64,
    #[serde(default = "reload_by_default")]
    pub reload: bool,
    #[serde(default)]
    pub registered: Vec<String>,
}

/// A notice that does not say otherwise asks for a reload.
fn reload_by_default() -> bool {
    true
}

/// "Node `node` reloaded after your change number `seq` arrived": the answer to a [`Notice`],
/// naming the change so a late answer to an earlier one is not taken for it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ack {
    pub node: String,
    pub seq: u64,
}

/// The presence key of a charger: its id in hex, since a key-value key holds only a few
/// characters a charger id may contain.
pub(crate) fn charger_key(charger_id: &str) -> String {
    format!("c{}", hex::encode(charger_id))
}

/// The charger id of a presence key; `None` for a key this module did not write.
pub(crate) fn charger_from_key(key: &str) -> Option<String> {
    let bytes = hex::decode(key.strip_prefix('c')?).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charger_id_survives_its_presence_key() {
        for id in ["CP-1", "cp 2/ä", ""] {
            assert_eq!(charger_from_key(&charger_key(id)).as_deref(), Some(id));
        }
        assert_eq!(charger_from_key("xyz"), None);
    }

    #[test]
    fn every_call_failure_crosses_the_wire_unchanged() {
        let answer = CommandAnswer::from_result(Err(CallFailure::CallError {
            code: "NotSupported".into(),
            description: "no".into(),
            details: serde_json::json!({}),
        }));
        let bytes = serde_json::to_vec(&answer).unwrap();
        let back: CommandAnswer = serde_json::from_slice(&bytes).unwrap();
        assert!(matches!(
            back.into_result(),
            Err(CallFailure::CallError { code, .. }) if code == "NotSupported"
        ));
    }
}
