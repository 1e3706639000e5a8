//! The CALLERROR error codes of OCPP-J, with the per-version wire spellings: 1.6 writes
//! `FormationViolation` and `OccurenceConstraintViolation` (sic), 2.0.1 fixed both and added
//! `MessageTypeNotSupported` and `RpcFrameworkError`.

use crate::OcppVersion;

/// A version-neutral CALLERROR code; [`ErrorCode::as_str`] gives the spelling for a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Payload is syntactically incorrect (1.6 `FormationViolation`, 2.0.1 `FormatViolation`).
    FormationViolation,
    GenericError,
    InternalError,
    /// The action is not known by the receiver.
    NotImplemented,
    /// The action is known but not supported by the receiver.
    NotSupported,
    /// A field occurs too few or too many times (1.6 spells it `OccurenceConstraintViolation`).
    OccurrenceConstraintViolation,
    /// A field has a value outside its allowed set, length, range or format.
    PropertyConstraintViolation,
    ProtocolError,
    SecurityError,
    /// A field has the wrong JSON type.
    TypeConstraintViolation,
    /// 2.0.1 only: unknown message type id.
    MessageTypeNotSupported,
    /// 2.0.1 only: not a valid RPC frame, e.g. the message id could not be read.
    RpcFrameworkError,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::FormationViolation,
        ErrorCode::GenericError,
        ErrorCode::InternalError,
        ErrorCode::NotImplemented,
        ErrorCode::NotSupported,
        ErrorCode::OccurrenceConstraintViolation,
        ErrorCode::PropertyConstraintViolation,
        ErrorCode::ProtocolError,
        ErrorCode::SecurityError,
        ErrorCode::TypeConstraintViolation,
        ErrorCode::MessageTypeNotSupported,
        ErrorCode::RpcFrameworkError,
    ];

    /// The exact wire string for `version`. The two codes 1.6 lacks are sent as `GenericError`
    /// there (this crate itself never picks them for 1.6).
    pub fn as_str(self, version: OcppVersion) -> &'static str {
        let v16 = version == OcppVersion::V16;
        match self {
            ErrorCode::FormationViolation if v16 => "FormationViolation",
            ErrorCode::FormationViolation => "FormatViolation",
            ErrorCode::GenericError => "GenericError",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotSupported => "NotSupported",
            ErrorCode::OccurrenceConstraintViolation if v16 => "OccurenceConstraintViolation",
            ErrorCode::OccurrenceConstraintViolation => "OccurrenceConstraintViolation",
            ErrorCode::PropertyConstraintViolation => "PropertyConstraintViolation",
            ErrorCode::ProtocolError => "ProtocolError",
            ErrorCode::SecurityError => "SecurityError",
            ErrorCode::TypeConstraintViolation => "TypeConstraintViolation",
            ErrorCode::MessageTypeNotSupported | ErrorCode::RpcFrameworkError if v16 => {
                "GenericError"
            }
            ErrorCode::MessageTypeNotSupported => "MessageTypeNotSupported",
            ErrorCode::RpcFrameworkError => "RpcFrameworkError",
        }
    }

    /// Reads a code received in a CALLERROR. Peers mix the 1.6 and 2.0.1 spellings, so both are
    /// accepted whatever the connection's version.
    pub fn from_wire(code: &str) -> Option<ErrorCode> {
        Some(match code {
            "FormationViolation" | "FormatViolation" => ErrorCode::FormationViolation,
            "GenericError" => ErrorCode::GenericError,
            "InternalError" => ErrorCode::InternalError,
            "NotImplemented" => ErrorCode::NotImplemented,
            "NotSupported" => ErrorCode::NotSupported,
            "OccurenceConstraintViolation" | "OccurrenceConstraintViolation" => {
                ErrorCode::OccurrenceConstraintViolation
            }
            "PropertyConstraintViolation" => ErrorCode::PropertyConstraintViolation,
            "ProtocolError" => ErrorCode::ProtocolError,
            "SecurityError" => ErrorCode::SecurityError,
            "TypeConstraintViolation" => ErrorCode::TypeConstraintViolation,
            "MessageTypeNotSupported" => ErrorCode::MessageTypeNotSupported,
            "RpcFrameworkError" => ErrorCode::RpcFrameworkError,
            _ => return None,
        })
    }
}
