//! The OCPP-J codec of Voltgate: everything about OCPP 1.6 and 2.0.1 messages that does not
//! involve a socket or a clock.
//!
//! - [`OcppVersion`]: subprotocol negotiation.
//! - [`Frame`]: the OCPP-J message array, read from and written to WebSocket text; a
//!   [`FrameError`] says which CALLERROR answers a frame that cannot be read.
//! - [`Validator`]: the official JSON schemas (vendored from the MIT-licensed Python `ocpp`
//!   package, see `schemas/README.md`), compiled once, with schema failures mapped to
//!   [`ErrorCode`]s.
//! - [`is_charger_initiated`] / [`unhandled_action_code`]: which charger requests are handled.
//! - [`ChargerRequest`]: typed views of the handled requests, after validation. They are our own
//!   small structs, not `rust-ocpp` types, because `rust-ocpp` 3.x rejects valid payloads (meter
//!   readings above `i32`, sampled values beyond `Decimal`'s range); see [`views`].
//! - [`Tolerance`] / [`Validator::check`]: the tolerance layer that accepts benign, known schema
//!   deviations of what a charger sends ([`DeviationKind`]) and normalises them for the handlers.
//! - [`responses`]: builders for the CALLRESULTs the gateway answers with.
//! - [`Command`]: version-neutral operator commands and their translation into CALLs.
//! - [`normalize_id_token`]: the one stored and compared form of an id token.
//! - [`password`]: the charger Basic-auth password rules of each version, and the hex form a
//!   1.6 `AuthorizationKey` carries.
//!
//! Architecture invariant: no I/O, no clock, no async runtime; callers pass the time in.
//! Numbers behave the same with and without serde_json's `arbitrary_precision` feature (which
//! other crates of the workspace may switch on).

mod actions;
mod command;
mod error_code;
mod formats;
mod frame;
mod list_limits;
pub mod password;
pub mod responses;
mod tolerance;
mod validate;
mod version;
pub mod views;

pub use actions::{
    charger_actions, is_charger_initiated, unhandled_action_code, CHARGER_ACTIONS_V16,
    CHARGER_ACTIONS_V201,
};
pub use command::{
    is_security_key, local_list_item, normalize_id_token, response_status, Command, CommandError,
    IdTokenError, LocalListEntry, LocalTokenInfo, OutgoingCall, COMMAND_NAMES,
    DEFAULT_ID_TOKEN_TYPE, ID_TOKEN_TYPES, LOCAL_LIST_COMMAND_NAMES, V16_MAX_ID_TAG,
};
pub use error_code::ErrorCode;
pub use frame::{
    Frame, FrameError, FrameErrorKind, CALL, CALL_ERROR, CALL_RESULT, MAX_ERROR_DESCRIPTION_LEN,
    MAX_MESSAGE_ID_LEN,
};
pub use list_limits::{ListLimits, ListMessageSize};
pub use tolerance::{
    Accepted, Deviation, DeviationKind, Tolerance, UnknownDeviationKind, UnknownTolerance,
    MAX_LENGTH_FACTOR,
};
pub use validate::{
    embedded_schemas, is_known_action, Direction, EmbeddedSchema, PayloadError, SchemaError,
    Validator,
};
pub use version::OcppVersion;
pub use views::ChargerRequest;
