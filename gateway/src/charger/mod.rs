//! The charger side of the gateway: chargers connect over OCPP-J (1.6 or 2.0.1) WebSockets,
//! the handshake decides who may connect ([`server`]), one task per connection speaks the
//! protocol ([`session`]) and answers charger-initiated messages ([`handlers`]), and the
//! [`registry`] holds every charger's live state and the way to send it a CALL; [`keepalive`]
//! decides when a silent charger is pinged and when it counts as gone; [`quirks`] holds each
//! charger's schema tolerance and the deviations accepted from it.
//!
//! Architecture invariant: the only way from the operator side to a charger is
//! [`ChargerRegistry::call`], and only `gate.rs` uses it, after the role engine allowed it.

pub(crate) mod handlers;
pub(crate) mod keepalive;
pub(crate) mod live;
pub(crate) mod quirks;
pub(crate) mod registry;
pub(crate) mod server;
pub(crate) mod session;

pub(crate) use keepalive::KeepAlive;
pub(crate) use quirks::Quirks;
pub(crate) use registry::{CallFailure, ChargerRegistry};

#[cfg(test)]
pub(crate) mod test_support;
