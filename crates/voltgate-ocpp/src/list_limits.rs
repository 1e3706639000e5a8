//! What a charger says it can take in a SendLocalList, and how large such a message is.
//!
//! A charger reports how many entries one SendLocalList may carry and how many its list holds
//! (1.6 configuration keys), or entries and bytes per message (2.0.1 variables of
//! `LocalAuthListCtrlr`). A sender that splits a list to fit asks with [`ListLimits::query`],
//! reads the answer with [`ListLimits::from_reply`], and measures messages with
//! [`ListMessageSize`].

use serde_json::{json, Value};

use crate::{local_list_item, Command, LocalListEntry, OcppVersion};

/// 1.6: entries per SendLocalList.
const V16_ITEMS_PER_MESSAGE: &str = "SendLocalListMaxLength";
/// 1.6: entries the local list can hold.
const V16_CAPACITY: &str = "LocalAuthListMaxLength";
/// 2.0.1: the component holding the list's variables.
const V201_COMPONENT: &str = "LocalAuthListCtrlr";
/// 2.0.1: entries per SendLocalList.
const V201_ITEMS_PER_MESSAGE: &str = "ItemsPerMessage";
/// 2.0.1: bytes per SendLocalList.
const V201_BYTES_PER_MESSAGE: &str = "BytesPerMessage";

/// What a charger accepts, as it reported it; `None` where it reported nothing usable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListLimits {
    pub items_per_message: Option<usize>,
    pub bytes_per_message: Option<usize>,
    pub capacity: Option<usize>,
}

impl ListLimits {
    /// The command that reads the limits: a GetConfiguration of the two 1.6 keys, or (as the
    /// same version-neutral command) a GetVariables of the two 2.0.1 variables.
    pub fn query(version: OcppVersion) -> Command {
        let keys = match version {
            OcppVersion::V16 => vec![V16_ITEMS_PER_MESSAGE.to_owned(), V16_CAPACITY.to_owned()],
            OcppVersion::V201 => vec![
                format!("{V201_COMPONENT}.{V201_ITEMS_PER_MESSAGE}"),
                format!("{V201_COMPONENT}.{V201_BYTES_PER_MESSAGE}"),
            ],
        };
        Command::GetConfiguration { keys: Some(keys) }
    }

    /// The limits in a GetConfiguration (1.6) or GetVariables (2.0.1) answer. Values that are
    /// missing, unknown, refused or not a positive integer leave their limit unknown.
    pub fn from_reply(version: OcppVersion, response: &Value) -> ListLimits {
        let positive = |value: &Value| {
            value
                .as_str()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|n| *n > 0)
        };
        let mut limits = ListLimits::default();
        match version {
            OcppVersion::V16 => {
                let keys = response["configurationKey"].as_array();
                for item in keys.into_iter().flatten() {
                    match item["key"].as_str() {
                        Some(V16_ITEMS_PER_MESSAGE) => {
                            limits.items_per_message = positive(&item["value"]);
                        }
                        Some(V16_CAPACITY) => limits.capacity = positive(&item["value"]),
                        _ => {}
                    }
                }
            }
            OcppVersion::V201 => {
                let results = response["getVariableResult"].as_array();
                for item in results.into_iter().flatten() {
                    if item["attributeStatus"] != "Accepted"
                        || item["component"]["name"] != V201_COMPONENT
                    {
                        continue;
                    }
                    let value = positive(&item["attributeValue"]);
                    match item["variable"]["name"].as_str() {
                        Some(V201_ITEMS_PER_MESSAGE) => limits.items_per_message = value,
                        Some(V201_BYTES_PER_MESSAGE) => limits.bytes_per_message = value,
                        _ => {}
                    }
                }
            }
        }
        limits
    }
}

/// Serialized sizes of SendLocalList messages as a charger with a bytes-per-message limit may
/// count them: the whole OCPP-J frame, with the longest message id, list version and update
/// type, so a charger counting only the payload is satisfied too.
#[derive(Debug, Clone, Copy)]
pub struct ListMessageSize {
    version: OcppVersion,
    envelope: usize,
}

impl ListMessageSize {
    pub fn new(version: OcppVersion) -> ListMessageSize {
        let field = match version {
            OcppVersion::V16 => "listVersion",
            OcppVersion::V201 => "versionNumber",
        };
        let frame = json!([
            2,
            u64::MAX.to_string(),
            "SendLocalList",
            {
                field: i32::MAX,
                "updateType": "Differential",
                "localAuthorizationList": [],
            }
        ]);
        ListMessageSize {
            version,
            envelope: frame.to_string().len(),
        }
    }

    /// Bytes of a message whose list is empty:
    /// `[2,"<id>","SendLocalList",{…,"localAuthorizationList":[]}]`.
    pub fn envelope(&self) -> usize {
        self.envelope
    }

    /// What one entry adds to a message: its item and the comma before the next one. An entry
    /// the version cannot carry adds nothing (it is never sent).
    pub fn entry(&self, entry: &LocalListEntry) -> usize {
        local_list_item(self.version, entry).map_or(0, |item| item.to_string().len()) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_either_version_and_unknown_ones_stay_unknown() {
        let v16 = json!({
            "configurationKey": [
                {"key": "SendLocalListMaxLength", "readonly": true, "value": "2"},
                {"key": "LocalAuthListMaxLength", "readonly": true, "value": " 40 "},
            ],
        });
        assert_eq!(
            ListLimits::from_reply(OcppVersion::V16, &v16),
            ListLimits {
                items_per_message: Some(2),
                bytes_per_message: None,
                capacity: Some(40),
            }
        );
        let v16_odd = json!({
            "configurationKey": [
                {"key": "SendLocalListMaxLength", "readonly": true, "value": "0"},
                {"key": "LocalAuthListMaxLength", "readonly": true, "value": "lots"},
            ],
            "unknownKey": [],
        });
        assert_eq!(
            ListLimits::from_reply(OcppVersion::V16, &v16_odd),
            ListLimits::default()
        );
        assert_eq!(
            ListLimits::from_reply(
                OcppVersion::V16,
                &json!({"unknownKey": ["SendLocalListMaxLength", "LocalAuthListMaxLength"]})
            ),
            ListLimits::default()
        );
        let v201 = json!({
            "getVariableResult": [
                {"attributeStatus": "Accepted", "attributeValue": "3",
                 "component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "ItemsPerMessage"}},
                {"attributeStatus": "Accepted", "attributeValue": "4096",
                 "component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "BytesPerMessage"}},
                {"attributeStatus": "Accepted", "attributeValue": "9",
                 "component": {"name": "DeviceDataCtrlr"}, "variable": {"name": "ItemsPerMessage"}},
            ],
        });
        assert_eq!(
            ListLimits::from_reply(OcppVersion::V201, &v201),
            ListLimits {
                items_per_message: Some(3),
                bytes_per_message: Some(4096),
                capacity: None,
            }
        );
        let refused = json!({
            "getVariableResult": [
                {"attributeStatus": "UnknownVariable",
                 "component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "BytesPerMessage"}},
            ],
        });
        assert_eq!(
            ListLimits::from_reply(OcppVersion::V201, &refused),
            ListLimits::default()
        );
    }

    #[test]
    fn the_query_names_each_versions_keys() {
        let Command::GetConfiguration { keys: Some(v201) } = ListLimits::query(OcppVersion::V201)
        else {
            panic!("not a GetConfiguration")
        };
        assert_eq!(
            v201,
            [
                "LocalAuthListCtrlr.ItemsPerMessage",
                "LocalAuthListCtrlr.BytesPerMessage"
            ]
        );
        let Command::GetConfiguration { keys: Some(v16) } = ListLimits::query(OcppVersion::V16)
        else {
            panic!("not a GetConfiguration")
        };
        assert_eq!(v16, ["SendLocalListMaxLength", "LocalAuthListMaxLength"]);
    }
}
