//! Per-charger behaviour an operator sets with `PATCH /chargers/{id}` (`charger.edit`,
//! audited, stored through the estate, loaded at start), for chargers and test tools that
//! need the gateway to act differently from its defaults:
//!
//! - `post_boot_sync`: what the gateway sends on its own after the charger boots (or first
//!   speaks on a connection). `on` (the default) starts the local-list sync at once
//!   (GetLocalListVersion, the list limits, a full SendLocalList when needed); `off` sends
//!   nothing, and the list is synced only when an operator sends `send-local-list`; a delay
//!   (`{"delay_s": n}`) starts the sync that long after the BootNotification. Scripted
//!   sequences (the OCPP compliance tool) and chargers with slow boot logic need the last two.
//! - `free_vend`: whether a 2.0.1 `NoAuthorization` id token (what a free-vend station
//!   reports) is answered `Accepted`, the session stored without a principal; off, it is
//!   unknown (`Invalid`) like any other unstored token. No other token type, and no 1.6
//!   charger, is affected.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::RwLock;
use serde_json::{json, Value};
use voltgate_store::ChargerBehaviour;

/// The longest post-boot delay: an hour; a charger that needs longer is better served `off`.
pub(crate) const MAX_POST_BOOT_DELAY_S: u64 = 3600;

/// What the gateway sends on its own after a charger boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum PostBootSync {
    /// The local-list sync starts at once.
    #[default]
    On,
    /// Nothing; an operator triggers syncs.
    Off,
    /// The sync starts this long after the BootNotification.
    Delay(Duration),
}

/// Why a `post_boot_sync` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("post_boot_sync must be \"on\", \"off\" or {{\"delay_s\": n}} with n from 1 to {MAX_POST_BOOT_DELAY_S}, not {0}")]
pub(crate) struct PostBootSyncError(String);

impl PostBootSync {
    /// Reads the API form: `"on"`, `"off"` or `{"delay_s": n}`.
    pub(crate) fn from_api(value: &Value) -> Result<PostBootSync, PostBootSyncError> {
        let refused = || PostBootSyncError(value.to_string());
        match value {
            Value::String(text) if text == "on" => Ok(PostBootSync::On),
            Value::String(text) if text == "off" => Ok(PostBootSync::Off),
            Value::Object(fields) if fields.len() == 1 => fields
                .get("delay_s")
                .and_then(Value::as_u64)
                .and_then(Self::delay)
                .ok_or_else(refused),
            _ => Err(refused()),
        }
    }

    fn delay(seconds: u64) -> Option<PostBootSync> {
        (1..=MAX_POST_BOOT_DELAY_S)
            .contains(&seconds)
            .then(|| PostBootSync::Delay(Duration::from_secs(seconds)))
    }

    /// The API form, as `GET /chargers/{id}` shows it.
    pub(crate) fn to_api(self) -> Value {
        match self {
            PostBootSync::On => json!("on"),
            PostBootSync::Off => json!("off"),
            PostBootSync::Delay(delay) => json!({ "delay_s": delay.as_secs() }),
        }
    }

    /// The stored form: `None` for the default, `off`, `delay:<seconds>`.
    fn to_stored(self) -> Option<String> {
        match self {
            PostBootSync::On => None,
            PostBootSync::Off => Some("off".to_owned()),
            PostBootSync::Delay(delay) => Some(format!("delay:{}", delay.as_secs())),
        }
    }

    fn from_stored(text: Option<&str>) -> Option<PostBootSync> {
        match text {
            None => Some(PostBootSync::On),
            Some("off") => Some(PostBootSync::Off),
            Some(other) => other
                .strip_prefix("delay:")
                .and_then(|s| s.parse().ok())
                .and_then(Self::delay),
        }
    }
}

/// One charger's behaviour settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Behaviour {
    pub post_boot_sync: PostBootSync,
    pub free_vend: bool,
}

impl Behaviour {
    /// The stored record of `charger` with these settings.
    pub(crate) fn record(self, charger: &str) -> ChargerBehaviour {
        ChargerBehaviour {
            id: charger.to_owned(),
            post_boot_sync: self.post_boot_sync.to_stored(),
            free_vend: self.free_vend,
        }
    }
}

/// A stored setting this gateway cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("charger `{charger}` has a stored post_boot_sync `{value}` this gateway cannot read")]
pub(crate) struct StoredBehaviourError {
    charger: String,
    value: String,
}

/// Every charger's behaviour; chargers not in the map have the defaults.
#[derive(Default)]
pub(crate) struct Behaviours {
    own: RwLock<HashMap<String, Behaviour>>,
}

impl Behaviours {
    pub(crate) fn new() -> Behaviours {
        Behaviours::default()
    }

    /// Takes the stored settings (at start).
    pub(crate) fn load(&self, stored: Vec<ChargerBehaviour>) -> Result<(), StoredBehaviourError> {
        let mut own = self.own.write();
        for record in stored {
            let post_boot_sync = PostBootSync::from_stored(record.post_boot_sync.as_deref())
                .ok_or_else(|| StoredBehaviourError {
                    charger: record.id.clone(),
                    value: record.post_boot_sync.clone().unwrap_or_default(),
                })?;
            own.insert(
                record.id,
                Behaviour {
                    post_boot_sync,
                    free_vend: record.free_vend,
                },
            );
        }
        Ok(())
    }

    /// Replaces every charger's settings with the stored ones (another node changed one).
    pub(crate) fn reload(&self, stored: Vec<ChargerBehaviour>) -> Result<(), StoredBehaviourError> {
        let fresh = Behaviours::new();
        fresh.load(stored)?;
        let fresh = std::mem::take(&mut *fresh.own.write());
        *self.own.write() = fresh;
        Ok(())
    }

    pub(crate) fn get(&self, charger: &str) -> Behaviour {
        self.own.read().get(charger).copied().unwrap_or_default()
    }

    /// Replaces a charger's settings (after the store took them).
    pub(crate) fn set(&self, charger: &str, behaviour: Behaviour) {
        let mut own = self.own.write();
        if behaviour == Behaviour::default() {
            own.remove(charger);
        } else {
            own.insert(charger.to_owned(), behaviour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_boot_sync_reads_the_api_form_and_round_trips_through_the_store() {
        for (text, expected) in [
            (json!("on"), PostBootSync::On),
            (json!("off"), PostBootSync::Off),
            (
                json!({"delay_s": 30}),
                PostBootSync::Delay(Duration::from_secs(30)),
            ),
        ] {
            let read = PostBootSync::from_api(&text).unwrap();
            assert_eq!(read, expected);
            assert_eq!(read.to_api(), text);
            assert_eq!(
                PostBootSync::from_stored(read.to_stored().as_deref()),
                Some(read)
            );
        }
        for bad in [
            json!("On"),
            json!(true),
            json!(30),
            json!({"delay_s": 0}),
            json!({"delay_s": 3601}),
            json!({"delay_s": -1}),
            json!({"delay_s": 1.5}),
            json!({"delay_s": 30, "x": 1}),
            json!({"delay": 30}),
        ] {
            let err = PostBootSync::from_api(&bad).unwrap_err();
            assert!(err.to_string().contains("post_boot_sync"), "{err}");
        }
        assert_eq!(PostBootSync::from_stored(Some("delay:0")), None);
        assert_eq!(PostBootSync::from_stored(Some("later")), None);
    }

    #[test]
    fn defaults_are_not_kept_and_unreadable_stored_values_are_refused() {
        let behaviours = Behaviours::new();
        behaviours
            .load(vec![ChargerBehaviour {
                id: "CP-1".into(),
                post_boot_sync: Some("delay:5".into()),
                free_vend: true,
            }])
            .unwrap();
        assert_eq!(
            behaviours.get("CP-1"),
            Behaviour {
                post_boot_sync: PostBootSync::Delay(Duration::from_secs(5)),
                free_vend: true
            }
        );
        assert_eq!(behaviours.get("CP-2"), Behaviour::default());
        behaviours.set("CP-1", Behaviour::default());
        assert!(behaviours.own.read().is_empty());
        let err = behaviours
            .load(vec![ChargerBehaviour {
                id: "CP-3".into(),
                post_boot_sync: Some("soon".into()),
                free_vend: false,
            }])
            .unwrap_err();
        assert!(err.to_string().contains("CP-3"), "{err}");
    }
}
