//! The OCPP versions Voltgate speaks, and how a charger's WebSocket subprotocol offer picks one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An OCPP-J protocol version, chosen per connection by subprotocol negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OcppVersion {
    #[serde(rename = "1.6")]
    V16,
    #[serde(rename = "2.0.1")]
    V201,
}

impl OcppVersion {
    /// Every supported version, oldest first.
    pub const ALL: [OcppVersion; 2] = [OcppVersion::V16, OcppVersion::V201];

    /// The WebSocket subprotocol token for this version.
    pub fn subprotocol(self) -> &'static str {
        match self {
            OcppVersion::V16 => "ocpp1.6",
            OcppVersion::V201 => "ocpp2.0.1",
        }
    }

    /// The version named by one subprotocol token (surrounding whitespace ignored, case
    /// sensitive as RFC 6455 tokens are).
    pub fn from_subprotocol(token: &str) -> Option<Self> {
        match token.trim() {
            "ocpp1.6" => Some(OcppVersion::V16),
            "ocpp2.0.1" => Some(OcppVersion::V201),
            _ => None,
        }
    }

    /// The best version among the offered subprotocols (2.0.1 preferred), `None` if neither is
    /// offered. Each offered item may itself be a comma-separated header value.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        offered
            .into_iter()
            .flat_map(|item| item.split(','))
            .filter_map(OcppVersion::from_subprotocol)
            .max()
    }
}

impl fmt::Display for OcppVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OcppVersion::V16 => "1.6",
            OcppVersion::V201 => "2.0.1",
        })
    }
}
