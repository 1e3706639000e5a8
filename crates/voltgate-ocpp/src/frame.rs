//! The OCPP-J message array (`[2, id, action, payload]`, `[3, id, payload]`,
//! `[4, id, code, description, details]`): reading a WebSocket text frame into a [`Frame`],
//! writing one back, and saying which CALLERROR answers a frame that cannot be read.
//!
//! Which code answers which defect (1.6 / 2.0.1):
//!
//! | defect | 1.6 | 2.0.1 |
//! |---|---|---|
//! | not JSON, not an array, no integer message type id | FormationViolation | FormatViolation |
//! | message id missing or not a string | FormationViolation | RpcFrameworkError |
//! | message id longer than 36 characters | FormationViolation | FormatViolation |
//! | message type id other than 2, 3, 4 | ProtocolError | MessageTypeNotSupported |
//! | too few or too many elements | ProtocolError | ProtocolError |
//! | an element of the wrong JSON type | FormationViolation | FormatViolation |
//!
//! A CALLERROR without its details element (or with `null` details) is accepted with empty
//! details: it is never answered, and dropping it would leave the request it answers pending.
//! serde_json's recursion limit (128) bounds nesting, so deep input cannot exhaust the stack.

use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use crate::{ErrorCode, OcppVersion};

/// The message type id of a CALL.
pub const CALL: u64 = 2;
/// The message type id of a CALLRESULT.
pub const CALL_RESULT: u64 = 3;
/// The message type id of a CALLERROR.
pub const CALL_ERROR: u64 = 4;
/// The longest message id OCPP-J allows.
pub const MAX_MESSAGE_ID_LEN: usize = 36;
/// The longest CALLERROR description 2.0.1 allows; [`Frame::call_error`] cuts longer ones.
pub const MAX_ERROR_DESCRIPTION_LEN: usize = 255;

/// One OCPP-J message.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Call {
        id: String,
        action: String,
        payload: Value,
    },
    CallResult {
        id: String,
        payload: Value,
    },
    CallError {
        id: String,
        code: String,
        description: String,
        details: Value,
    },
}

/// Why a text frame is not an OCPP-J message, with what could still be read from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct FrameError {
    /// The message id, when element 1 was a string.
    pub message_id: Option<String>,
    /// The message type id, when element 0 was a non-negative integer.
    pub message_type_id: Option<u64>,
    pub kind: FrameErrorKind,
}

/// The defect that made [`Frame::parse`] fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameErrorKind {
    #[error("frame is not valid JSON: {0}")]
    NotJson(String),
    #[error("frame is not a JSON array")]
    NotAnArray,
    #[error("frame does not start with a non-negative integer message type id")]
    MessageTypeIdNotInteger,
    #[error("message id is missing or not a string")]
    MessageIdUnreadable,
    #[error("message id is {0} characters long, at most 36 are allowed")]
    MessageIdTooLong(usize),
    #[error("message type id {0} is not CALL (2), CALLRESULT (3) or CALLERROR (4)")]
    UnknownMessageType(u64),
    #[error("a {frame} has {expected} elements, this one has {found}")]
    WrongLength {
        frame: &'static str,
        expected: &'static str,
        found: usize,
    },
    #[error("element {index} ({name}) of a {frame} must be {expected}")]
    WrongElementType {
        frame: &'static str,
        index: usize,
        name: &'static str,
        expected: &'static str,
    },
}

impl FrameError {
    /// The CALLERROR code that answers this defect on a `version` connection.
    pub fn code(&self, version: OcppVersion) -> ErrorCode {
        match (&self.kind, version) {
            (FrameErrorKind::MessageIdUnreadable, OcppVersion::V201) => {
                ErrorCode::RpcFrameworkError
            }
            (FrameErrorKind::UnknownMessageType(_), OcppVersion::V16) => ErrorCode::ProtocolError,
            (FrameErrorKind::UnknownMessageType(_), OcppVersion::V201) => {
                ErrorCode::MessageTypeNotSupported
            }
            (FrameErrorKind::WrongLength { .. }, _) => ErrorCode::ProtocolError,
            _ => ErrorCode::FormationViolation,
        }
    }

    /// The CALLERROR to send back, when there is one: the message id must be known, and a
    /// malformed CALLRESULT or CALLERROR is never answered (only requests get answers). An
    /// over-long message id is echoed as received, so the sender can match the answer.
    pub fn reply(&self, version: OcppVersion) -> Option<Frame> {
        let id = self.message_id.as_deref()?;
        if matches!(self.message_type_id, Some(CALL_RESULT | CALL_ERROR)) {
            return None;
        }
        Some(Frame::call_error(
            id,
            version,
            self.code(version),
            &self.kind.to_string(),
        ))
    }
}

impl Frame {
    /// Reads one WebSocket text frame.
    pub fn parse(text: &str) -> Result<Frame, FrameError> {
        let value: Value = serde_json::from_str(text).map_err(|e| FrameError {
            message_id: None,
            message_type_id: None,
            kind: FrameErrorKind::NotJson(e.to_string()),
        })?;
        let Value::Array(items) = value else {
            return Err(FrameError {
                message_id: None,
                message_type_id: None,
                kind: FrameErrorKind::NotAnArray,
            });
        };
        let message_id = items.get(1).and_then(Value::as_str).map(str::to_owned);
        let message_type_id = items.first().and_then(Value::as_u64);
        let fail = |kind| FrameError {
            message_id: message_id.clone(),
            message_type_id,
            kind,
        };

        let Some(type_id) = message_type_id else {
            return Err(fail(FrameErrorKind::MessageTypeIdNotInteger));
        };
        let Some(id_len) = message_id.as_ref().map(|id| id.chars().count()) else {
            return Err(fail(FrameErrorKind::MessageIdUnreadable));
        };
        if id_len > MAX_MESSAGE_ID_LEN {
            return Err(fail(FrameErrorKind::MessageIdTooLong(id_len)));
        }
        match type_id {
            CALL => parse_call(items).map_err(fail),
            CALL_RESULT => parse_call_result(items).map_err(fail),
            CALL_ERROR => parse_call_error(items).map_err(fail),
            other => Err(fail(FrameErrorKind::UnknownMessageType(other))),
        }
    }

    /// Writes the frame as OCPP-J text.
    pub fn to_text(&self) -> String {
        // Serialising strings and `Value`s cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The message id.
    pub fn id(&self) -> &str {
        match self {
            Frame::Call { id, .. } | Frame::CallResult { id, .. } | Frame::CallError { id, .. } => {
                id
            }
        }
    }

    /// The message type id (2, 3 or 4).
    pub fn message_type_id(&self) -> u64 {
        match self {
            Frame::Call { .. } => CALL,
            Frame::CallResult { .. } => CALL_RESULT,
            Frame::CallError { .. } => CALL_ERROR,
        }
    }

    /// A CALLERROR answering message `id`, with the code spelled for `version`, the description
    /// cut to [`MAX_ERROR_DESCRIPTION_LEN`] characters and empty details.
    pub fn call_error(id: &str, version: OcppVersion, code: ErrorCode, description: &str) -> Frame {
        Frame::CallError {
            id: id.to_owned(),
            code: code.as_str(version).to_owned(),
            description: truncate_chars(description, MAX_ERROR_DESCRIPTION_LEN).to_owned(),
            details: Value::Object(Map::new()),
        }
    }
}

/// The longest prefix of `text` with at most `max` characters.
pub(crate) fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

fn wrong_type(
    frame: &'static str,
    index: usize,
    name: &'static str,
    expected: &'static str,
) -> FrameErrorKind {
    FrameErrorKind::WrongElementType {
        frame,
        index,
        name,
        expected,
    }
}

fn take_string(
    item: Value,
    frame: &'static str,
    index: usize,
    name: &'static str,
) -> Result<String, FrameErrorKind> {
    match item {
        Value::String(s) => Ok(s),
        _ => Err(wrong_type(frame, index, name, "a string")),
    }
}

fn take_object(
    item: Value,
    frame: &'static str,
    index: usize,
    name: &'static str,
) -> Result<Value, FrameErrorKind> {
    match item {
        Value::Object(_) => Ok(item),
        _ => Err(wrong_type(frame, index, name, "an object")),
    }
}

/// Splits a message array of exactly `N` elements, message id already checked to be a string.
fn split<const N: usize>(
    items: Vec<Value>,
    frame: &'static str,
    expected: &'static str,
) -> Result<[Value; N], FrameErrorKind> {
    let found = items.len();
    <[Value; N]>::try_from(items).map_err(|_| FrameErrorKind::WrongLength {
        frame,
        expected,
        found,
    })
}

fn parse_call(items: Vec<Value>) -> Result<Frame, FrameErrorKind> {
    const NAME: &str = "CALL";
    let [_, id, action, payload] = split::<4>(items, NAME, "4")?;
    Ok(Frame::Call {
        id: take_string(id, NAME, 1, "message id")?,
        action: take_string(action, NAME, 2, "action")?,
        payload: take_object(payload, NAME, 3, "payload")?,
    })
}

fn parse_call_result(items: Vec<Value>) -> Result<Frame, FrameErrorKind> {
    const NAME: &str = "CALLRESULT";
    let [_, id, payload] = split::<3>(items, NAME, "3")?;
    Ok(Frame::CallResult {
        id: take_string(id, NAME, 1, "message id")?,
        payload: take_object(payload, NAME, 2, "payload")?,
    })
}

fn parse_call_error(mut items: Vec<Value>) -> Result<Frame, FrameErrorKind> {
    const NAME: &str = "CALLERROR";
    if items.len() == 4 {
        items.push(Value::Null);
    }
    let [_, id, code, description, details] = split::<5>(items, NAME, "5 (or 4)")?;
    let details = match details {
        Value::Null => Value::Object(Map::new()),
        other => take_object(other, NAME, 4, "error details")?,
    };
    Ok(Frame::CallError {
        id: take_string(id, NAME, 1, "message id")?,
        code: take_string(code, NAME, 2, "error code")?,
        description: take_string(description, NAME, 3, "error description")?,
        details,
    })
}

impl Serialize for Frame {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Frame::Call {
                id,
                action,
                payload,
            } => {
                let mut seq = serializer.serialize_seq(Some(4))?;
                seq.serialize_element(&CALL)?;
                seq.serialize_element(id)?;
                seq.serialize_element(action)?;
                seq.serialize_element(payload)?;
                seq.end()
            }
            Frame::CallResult { id, payload } => {
                let mut seq = serializer.serialize_seq(Some(3))?;
                seq.serialize_element(&CALL_RESULT)?;
                seq.serialize_element(id)?;
                seq.serialize_element(payload)?;
                seq.end()
            }
            Frame::CallError {
                id,
                code,
                description,
                details,
            } => {
                let mut seq = serializer.serialize_seq(Some(5))?;
                seq.serialize_element(&CALL_ERROR)?;
                seq.serialize_element(id)?;
                seq.serialize_element(code)?;
                seq.serialize_element(description)?;
                seq.serialize_element(details)?;
                seq.end()
            }
        }
    }
}
