//! The tolerance layer between schema validation and the handlers: real firmware breaks the
//! schemas in harmless ways (an over-long model name, a unit outside the list, a number sent
//! as text), and refusing such a payload bricks a charger that would otherwise work.
//!
//! [`Validator::check`] validates strictly first; a payload the schema accepts comes back
//! unchanged, whatever the [`Tolerance`]. Under [`Tolerance::Lenient`] a failing payload is
//! accepted when every failure is one of the benign [`DeviationKind`]s, and normalised where a
//! handler needs it (numeric strings become numbers, zone-less timestamps get `Z`, a 1.6
//! DataTransfer `data` that is JSON becomes its JSON text); the other deviations are kept as
//! given. Anything else — a wrong structure, a missing required field, an out-of-range number,
//! an unknown `eventType` (it decides what the handler does with a transaction) or answer
//! `status` (it is the command's outcome) — is refused
//! with the strict error, exactly as under [`Tolerance::Strict`].
//!
//! This applies only to what a charger sends (its requests and its answers to commands); what
//! the gateway sends is built and checked strictly elsewhere.

use std::fmt;
use std::str::FromStr;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::types::JsonType;
use serde_json::{Number, Value};

use crate::formats::is_date_time;
use crate::validate::Direction;
use crate::{OcppVersion, PayloadError, Validator};

/// How far past its `maxLength` a string may run and still be accepted (4× the limit).
pub const MAX_LENGTH_FACTOR: usize = 4;

/// Enumerated fields of requests whose value decides what the gateway does, so a value outside
/// the list changes meaning and is refused even under [`Tolerance::Lenient`]. The top-level
/// `status` of a charger's answer (the command's outcome) is refused likewise.
const MEANINGFUL_ENUMS: [&str; 1] = ["eventType"];

/// The longest example text a [`Deviation`] carries.
const MAX_EXAMPLE_CHARS: usize = 120;

/// How many rounds of normalisation a payload may need (a fix can uncover another failure
/// only once: the fixed value is checked again).
const MAX_ROUNDS: usize = 3;

/// How strictly a charger's payloads are held to their schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tolerance {
    /// Every schema failure is refused.
    Strict,
    /// Benign, known deviations are accepted (and counted); the rest is refused.
    Lenient,
}

impl Tolerance {
    pub fn as_str(self) -> &'static str {
        match self {
            Tolerance::Strict => "strict",
            Tolerance::Lenient => "lenient",
        }
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tolerance name that is neither `strict` nor `lenient`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema tolerance must be `strict` or `lenient`, not `{0}`")]
pub struct UnknownTolerance(pub String);

impl FromStr for Tolerance {
    type Err = UnknownTolerance;

    fn from_str(text: &str) -> Result<Tolerance, UnknownTolerance> {
        match text {
            "strict" => Ok(Tolerance::Strict),
            "lenient" => Ok(Tolerance::Lenient),
            other => Err(UnknownTolerance(other.to_owned())),
        }
    }
}

/// A benign, known schema deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviationKind {
    /// A string over its `maxLength` (CiString), up to [`MAX_LENGTH_FACTOR`] times; kept.
    StringTooLong,
    /// An enumerated value outside its list; kept as given.
    EnumValue,
    /// A `unit` or `measurand` outside its list; kept as given.
    UnitOrMeasurand,
    /// A number sent as a numeric string; converted to the number.
    NumericString,
    /// A `date-time` without a zone; taken as UTC (`Z` appended).
    TimestampWithoutZone,
    /// A 1.6 DataTransfer `data` that is JSON rather than a string; replaced by its JSON text.
    DataTransferJson,
    /// A field the schema does not define; kept (the handlers ignore it).
    UnknownField,
}

impl DeviationKind {
    pub const ALL: [DeviationKind; 7] = [
        DeviationKind::StringTooLong,
        DeviationKind::EnumValue,
        DeviationKind::UnitOrMeasurand,
        DeviationKind::NumericString,
        DeviationKind::TimestampWithoutZone,
        DeviationKind::DataTransferJson,
        DeviationKind::UnknownField,
    ];

    /// The label used in metrics, logs, the API and the simulator's `--quirks`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviationKind::StringTooLong => "string_too_long",
            DeviationKind::EnumValue => "enum_value",
            DeviationKind::UnitOrMeasurand => "unit_or_measurand",
            DeviationKind::NumericString => "numeric_string",
            DeviationKind::TimestampWithoutZone => "timestamp_without_zone",
            DeviationKind::DataTransferJson => "data_transfer_json",
            DeviationKind::UnknownField => "unknown_field",
        }
    }
}

impl fmt::Display for DeviationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`DeviationKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown deviation kind `{0}` (known: string_too_long, enum_value, unit_or_measurand, numeric_string, timestamp_without_zone, data_transfer_json, unknown_field)")]
pub struct UnknownDeviationKind(pub String);

impl FromStr for DeviationKind {
    type Err = UnknownDeviationKind;

    fn from_str(text: &str) -> Result<DeviationKind, UnknownDeviationKind> {
        DeviationKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownDeviationKind(text.to_owned()))
    }
}

/// One accepted deviation: its kind, where it is (JSON pointer) and what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    pub kind: DeviationKind,
    /// JSON pointer into the payload, `/` for the payload itself.
    pub path: String,
    /// What was sent there and which rule it breaks, at most 120 characters, e.g.
    /// `"Grizzl-E Smart 40A 1ph" (22 characters, limit 20)`.
    pub example: String,
}

/// A payload let through: normalised where needed, with the deviations accepted on the way
/// (none when it passed its schema as sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub payload: Value,
    pub deviations: Vec<Deviation>,
}

/// What to do about one failure: accept it with a kind, and maybe replace the value.
struct Benign {
    kind: DeviationKind,
    example: String,
    replacement: Option<Value>,
}

impl Validator {
    /// Checks a charger's CALL payload under `tolerance` (see the module docs).
    pub fn check_request(
        &self,
        version: OcppVersion,
        action: &str,
        payload: Value,
        tolerance: Tolerance,
    ) -> Result<Accepted, PayloadError> {
        self.check(version, Direction::Request, action, payload, tolerance)
    }

    /// Checks a charger's CALLRESULT answering `action` under `tolerance`.
    pub fn check_response(
        &self,
        version: OcppVersion,
        action: &str,
        payload: Value,
        tolerance: Tolerance,
    ) -> Result<Accepted, PayloadError> {
        self.check(version, Direction::Response, action, payload, tolerance)
    }

    /// Validates `payload`; under [`Tolerance::Lenient`] accepts and normalises benign
    /// deviations. A refusal is the strict validation's error.
    pub fn check(
        &self,
        version: OcppVersion,
        direction: Direction,
        action: &str,
        mut payload: Value,
        tolerance: Tolerance,
    ) -> Result<Accepted, PayloadError> {
        let strict = match self.validate_in(version, direction, action, &payload) {
            Ok(()) => {
                return Ok(Accepted {
                    payload,
                    deviations: Vec::new(),
                })
            }
            Err(err) => err,
        };
        if tolerance == Tolerance::Strict {
            return Err(strict);
        }
        let Some(compiled) = self.compiled(version, direction, action) else {
            return Err(strict);
        };
        let mut deviations: Vec<Deviation> = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let mut fixes: Vec<(String, Value)> = Vec::new();
            let mut failures = 0usize;
            for error in compiled.iter_errors(&payload) {
                failures += 1;
                let path = error.instance_path().as_str().to_owned();
                let Some(benign) = classify(version, direction, action, &path, &error) else {
                    return Err(strict);
                };
                let path = if path.is_empty() {
                    "/".to_owned()
                } else {
                    path
                };
                if !deviations
                    .iter()
                    .any(|d| d.kind == benign.kind && d.path == path)
                {
                    deviations.push(Deviation {
                        kind: benign.kind,
                        path: path.clone(),
                        example: benign.example,
                    });
                }
                if let Some(value) = benign.replacement {
                    fixes.push((path, value));
                }
            }
            if failures == 0 || fixes.is_empty() {
                return Ok(Accepted {
                    payload,
                    deviations,
                });
            }
            for (path, value) in fixes {
                let target = if path == "/" {
                    Some(&mut payload)
                } else {
                    payload.pointer_mut(&path)
                };
                match target {
                    Some(slot) => *slot = value,
                    None => return Err(strict),
                }
            }
        }
        Err(strict)
    }
}

/// Whether one schema failure is a benign deviation, and how to normalise it.
fn classify(
    version: OcppVersion,
    direction: Direction,
    action: &str,
    path: &str,
    error: &jsonschema::ValidationError<'_>,
) -> Option<Benign> {
    let instance: &Value = error.instance();
    let field = path.rsplit('/').next().unwrap_or("");
    match error.kind() {
        ValidationErrorKind::MaxLength { limit } => {
            let text = instance.as_str()?;
            let chars = text.chars().count();
            let bound = usize::try_from(*limit)
                .ok()?
                .saturating_mul(MAX_LENGTH_FACTOR);
            (chars <= bound).then(|| Benign {
                kind: DeviationKind::StringTooLong,
                example: example(instance, &format!("{chars} characters, limit {limit}")),
                replacement: None,
            })
        }
        ValidationErrorKind::Enum { .. } => {
            instance.as_str()?;
            let outcome = direction == Direction::Response && path == "/status";
            if outcome || MEANINGFUL_ENUMS.contains(&field) {
                return None;
            }
            let kind = if field == "unit" || field == "measurand" {
                DeviationKind::UnitOrMeasurand
            } else {
                DeviationKind::EnumValue
            };
            Some(Benign {
                kind,
                example: example(instance, "not in the list"),
                replacement: None,
            })
        }
        ValidationErrorKind::Type { kind } => {
            let data_transfer = version == OcppVersion::V16
                && direction == Direction::Request
                && action == "DataTransfer"
                && path == "/data";
            if data_transfer && !instance.is_string() {
                return Some(Benign {
                    kind: DeviationKind::DataTransferJson,
                    example: example(instance, "JSON, not a string"),
                    replacement: Some(Value::String(instance.to_string())),
                });
            }
            let number = numeric_string(instance.as_str()?, kind)?;
            Some(Benign {
                kind: DeviationKind::NumericString,
                example: example(instance, "a number sent as a string"),
                replacement: Some(Value::Number(number)),
            })
        }
        ValidationErrorKind::Format { format } if format == "date-time" => {
            let text = instance.as_str()?;
            let zoned = format!("{text}Z");
            is_date_time(&zoned).then(|| Benign {
                kind: DeviationKind::TimestampWithoutZone,
                example: example(instance, "no zone, taken as UTC"),
                replacement: Some(Value::String(zoned)),
            })
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => Some(Benign {
            kind: DeviationKind::UnknownField,
            example: truncate(&format!("unknown field(s) {}", unexpected.join(", "))),
            replacement: None,
        }),
        _ => None,
    }
}

/// The number a numeric string stands for, when the schema wants a number (any) or an
/// integer (only a whole one).
fn numeric_string(text: &str, expected: &TypeKind) -> Option<Number> {
    let wants = |ty: JsonType| match expected {
        TypeKind::Single(single) => *single == ty,
        TypeKind::Multiple(set) => set.contains(ty),
    };
    let number = match serde_json::from_str::<Value>(text).ok()? {
        Value::Number(number) => number,
        _ => return None,
    };
    if wants(JsonType::Number) {
        return number
            .as_f64()
            .is_some_and(f64::is_finite)
            .then_some(number);
    }
    if wants(JsonType::Integer) {
        return match (number.as_i64(), number.as_u64()) {
            (Some(i), _) => Some(Number::from(i)),
            (None, Some(u)) => Some(Number::from(u)),
            _ => None,
        };
    }
    None
}

fn example(instance: &Value, rule: &str) -> String {
    let sent = instance.to_string();
    let sent = if sent.chars().count() > MAX_EXAMPLE_CHARS / 2 {
        let mut cut: String = sent.chars().take(MAX_EXAMPLE_CHARS / 2).collect();
        cut.push('…');
        cut
    } else {
        sent
    };
    truncate(&format!("{sent} ({rule})"))
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_EXAMPLE_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_EXAMPLE_CHARS - 1).collect();
    cut.push('…');
    cut
}
