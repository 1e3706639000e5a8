//! The fixed list of things the gateway asks the engine about.
//!
//! Presets map every action to the permissions that allow it, so the gateway never reasons
//! about permission names; it only names the action it is about to perform.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! actions {
    ($($variant:ident => $text:literal,)+) => {
        /// An operation the gateway performs on behalf of a principal.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($variant,)+
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)+];

            /// The action's wire name, e.g. `"command.remote-start"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $text,)+
                }
            }
        }

        impl FromStr for Action {
            type Err = UnknownAction;

            fn from_str(text: &str) -> Result<Action, UnknownAction> {
                match text {
                    $($text => Ok(Action::$variant),)+
                    _ => Err(UnknownAction(text.to_owned())),
                }
            }
        }
    };
}

actions! {
    ChargerView => "charger.view",
    ChargerRegister => "charger.register",
    ChargerEdit => "charger.edit",
    ChargerSecurity => "charger.security",
    CommandRemoteStart => "command.remote-start",
    CommandRemoteStop => "command.remote-stop",
    CommandUnlock => "command.unlock",
    CommandReset => "command.reset",
    CommandUpdateFirmware => "command.update-firmware",
    CommandGetConfiguration => "command.get-configuration",
    CommandChangeConfiguration => "command.change-configuration",
    CommandSetMaxCurrent => "command.set-max-current",
    CommandChangeAvailability => "command.change-availability",
    CommandTriggerMessage => "command.trigger-message",
    CommandGetLog => "command.get-log",
    CommandClearCache => "command.clear-cache",
    CommandDataTransfer => "command.data-transfer",
    TransactionView => "transaction.view",
    TransactionViewOwn => "transaction.view-own",
    TransactionExport => "transaction.export",
    DriverView => "driver.view",
    DriverEdit => "driver.edit",
    DriverDelete => "driver.delete",
    IdTokenEdit => "id-token.edit",
    PrincipalView => "principal.view",
    PrincipalEdit => "principal.edit",
    PrincipalDelete => "principal.delete",
    RoleEdit => "role.edit",
    RoleAssign => "role.assign",
    ScopeEdit => "scope.edit",
    ModuleEdit => "module.edit",
    AuditView => "audit.view",
    Charge => "charge",
}

impl Action {
    /// Position of the action in [`Action::ALL`], used to index per-action tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A string that names no [`Action`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{0}`")]
pub struct UnknownAction(pub String);

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Action, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn every_action_round_trips_through_its_name() {
        assert_eq!(Action::ALL.len(), 33);
        for (position, &action) in Action::ALL.iter().enumerate() {
            assert_eq!(action.index(), position);
            assert_eq!(action.to_string().parse::<Action>(), Ok(action));
        }
    }

    #[test]
    fn names_follow_the_contract() {
        assert_eq!(
            Action::CommandSetMaxCurrent.as_str(),
            "command.set-max-current"
        );
        assert_eq!(Action::IdTokenEdit.as_str(), "id-token.edit");
        assert_eq!(Action::Charge.as_str(), "charge");
        assert!("charger.delete".parse::<Action>().is_err());
    }

    #[test]
    fn serde_uses_the_wire_name() {
        let json = serde_json::to_string(&Action::TransactionViewOwn).unwrap();
        assert_eq!(json, "\"transaction.view-own\"");
        let back: Action = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Action::TransactionViewOwn);
        assert!(serde_json::from_str::<Action>("\"nope\"").is_err());
    }
}
