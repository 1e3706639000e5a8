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

/// "Node `node` committed its change number `seq`", with what changed since its last notice
/// ([`Changes`]).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Notice {
    pub node: String,
    pub seq: u64,
    #[serde(flatten)]
    pub changes: Changes,
}

/// What a follower must do to hold what one or more changes committed elsewhere
/// ([`voltgate_estate::Committed`], batched): reload everything, or follow each part alone.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Changes {
    /// Reload the estate and the charger settings; the rest is then moot. A notice without
    /// it (from a node that names no changes) asks for a reload; `Changes::default()`, the
    /// empty batch a node starts from, does not.
    #[serde(default = "reload_by_default")]
    pub reload: bool,
    /// Chargers to add, as told or from their stored records.
    #[serde(default)]
    pub registered: Vec<RegisteredCharger>,
    /// Scopes to add as described, parents first.
    #[serde(default)]
    pub scopes: Vec<voltgate_store::ScopeRecord>,
    /// Replay the stored rules (principals, custom roles, assignments, modules).
    #[serde(default)]
    pub rules: bool,
    /// Chargers whose approval to reread.
    #[serde(default)]
    pub approved: Vec<String>,
    /// Cards changed: recompute what derives from them.
    #[serde(default)]
    pub cards: bool,
    /// Reread the charger settings outside the engine.
    #[serde(default)]
    pub charger_settings: bool,
}

/// A charger registration in a notice ([`voltgate_estate::Registration`]): a trusted one
/// with the scope it sits in, so a follower adds it without asking the store; any other as
/// its bare id, to be read from the store (as nodes that name only ids send them all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum RegisteredCharger {
    Trusted { id: String, scope: String },
    Stored(String),
}

impl From<voltgate_estate::Registration> for RegisteredCharger {
    fn from(registration: voltgate_estate::Registration) -> Self {
        match registration.trusted_under {
            Some(scope) => RegisteredCharger::Trusted {
                id: registration.id,
                scope,
            },
            None => RegisteredCharger::Stored(registration.id),
        }
    }
}

impl From<RegisteredCharger> for voltgate_estate::Registration {
    fn from(registered: RegisteredCharger) -> Self {
        match registered {
            RegisteredCharger::Trusted { id, scope } => voltgate_estate::Registration {
                id,
                trusted_under: Some(scope),
            },
            RegisteredCharger::Stored(id) => voltgate_estate::Registration::stored(id),
        }
    }
}

/// A notice that does not say otherwise asks for a reload.
fn reload_by_default() -> bool {
    true
}

impl Changes {
    /// Adds one committed change.
    pub(crate) fn note(&mut self, committed: voltgate_estate::Committed) {
        use voltgate_estate::Committed;
        match committed {
            Committed::ChargerRegistered(registration) => {
                self.registered.push(registration.into());
            }
            Committed::ScopeAdded(scope) => self.scopes.push(scope),
            Committed::Rules => self.rules = true,
            Committed::ChargerApproved(id) => self.approved.push(id),
            Committed::Cards => self.cards = true,
            Committed::ChargerSettings => self.charger_settings = true,
            Committed::Nothing => {}
            Committed::Other => self.reload = true,
        }
    }

    /// Adds the changes of a later batch.
    pub(crate) fn merge(&mut self, later: Changes) {
        self.reload |= later.reload;
        self.registered.extend(later.registered);
        self.scopes.extend(later.scopes);
        self.rules |= later.rules;
        self.approved.extend(later.approved);
        self.cards |= later.cards;
        self.charger_settings |= later.charger_settings;
    }

    /// How many things the changes name one by one.
    pub(crate) fn named(&self) -> usize {
        self.registered.len() + self.scopes.len() + self.approved.len()
    }

    /// A reload in place of changes too many to name in one message.
    pub(crate) fn reload_beyond(self, most_named: usize) -> Changes {
        if self.reload || self.named() > most_named {
            Changes {
                reload: true,
                ..Changes::default()
            }
        } else {
            self
        }
    }
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

    #[test]
    fn a_notice_without_its_changes_asks_for_a_reload_and_batches_add_up() {
        let bare: Notice = serde_json::from_str(r#"{"node":"a","seq":1}"#).unwrap();
        assert!(
            bare.changes.reload,
            "a notice that says nothing asks for a reload"
        );
        let registrations: Notice = serde_json::from_str(
            r#"{"node":"a","seq":2,"reload":false,
                "registered":["CP-1",{"id":"CP-9","scope":"site-a"}]}"#,
        )
        .unwrap();
        assert!(!registrations.changes.reload);
        let stored = |id: &str| RegisteredCharger::Stored(id.into());
        let trusted = |id: &str, scope: &str| RegisteredCharger::Trusted {
            id: id.into(),
            scope: scope.into(),
        };
        assert_eq!(
            registrations.changes.registered,
            [stored("CP-1"), trusted("CP-9", "site-a")]
        );

        use voltgate_estate::Committed;
        let mut changes = Changes::default();
        for committed in [
            Committed::ScopeAdded(voltgate_store::ScopeRecord {
                id: "s".into(),
                kind: "site".into(),
                parent: None,
                name: None,
            }),
            Committed::ChargerRegistered(voltgate_estate::Registration {
                id: "CP-2".into(),
                trusted_under: Some("s".into()),
            }),
            Committed::ChargerRegistered(voltgate_estate::Registration::stored("CP-3")),
            Committed::Rules,
            Committed::ChargerApproved("CP-2".into()),
            Committed::Cards,
            Committed::ChargerSettings,
            Committed::Nothing,
        ] {
            changes.note(committed);
        }
        assert!(!changes.reload);
        assert_eq!(changes.named(), 4);
        assert!(changes.rules && changes.cards && changes.charger_settings);
        let mut merged = changes.clone();
        merged.merge(registrations.changes);
        assert_eq!(
            merged.registered,
            [
                trusted("CP-2", "s"),
                stored("CP-3"),
                stored("CP-1"),
                trusted("CP-9", "site-a")
            ]
        );
        assert_eq!(
            changes.clone().reload_beyond(4),
            changes,
            "within the limit"
        );
        assert_eq!(
            changes.reload_beyond(3),
            Changes {
                reload: true,
                ..Changes::default()
            }
        );
        let mut other = Changes::default();
        other.note(Committed::Other);
        assert!(other.reload);

        let round_trip: Notice = serde_json::from_slice(
            &serde_json::to_vec(&Notice {
                node: "b".into(),
                seq: 3,
                changes: merged.clone(),
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(round_trip.changes, merged);
    }
}
