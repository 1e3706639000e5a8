//! Schema validation of CALL and CALLRESULT payloads against the official OCPP JSON schemas
//! (vendored under `schemas/`, embedded at build time), and the mapping of a schema failure to
//! the CALLERROR code OCPP-J prescribes.
//!
//! Every schema is compiled once in [`Validator::new`]; a validation is then one hash lookup and
//! one pass of the compiled validator. Failures map to codes as follows (first failure found):
//!
//! | schema keyword | code |
//! |---|---|
//! | `type` | TypeConstraintViolation |
//! | `required`, `minItems`, `maxItems`, `minProperties`, `maxProperties` | OccurrenceConstraintViolation |
//! | `enum`, `const`, `maxLength`, `minLength`, `pattern`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `format`, `uniqueItems` | PropertyConstraintViolation |
//! | `additionalProperties` (an unknown field) and anything else | FormationViolation |
//!
//! The unknown-field rule follows the Python `ocpp` package, which answers it with
//! `FormatViolation`; the other rows follow the OCPP-J error-code definitions (the Python package
//! differs there: it answers `required` with `ProtocolError` and `maxLength` with
//! `TypeConstraintViolation`). `format` is checked (`date-time`, `uri`).

use std::collections::HashMap;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::frame::truncate_chars;
use crate::{ErrorCode, OcppVersion, MAX_ERROR_DESCRIPTION_LEN};

/// Whether a schema describes a request (CALL payload) or its response (CALLRESULT payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Request,
    Response,
}

/// One vendored schema file, embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedSchema {
    pub version: OcppVersion,
    pub action: &'static str,
    pub direction: Direction,
    /// The file's path under `schemas/`, e.g. `v16/Heartbeat.json`.
    pub file: &'static str,
    pub text: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/embedded_schemas.rs"));

/// Every embedded schema, in file-name order per version.
pub fn embedded_schemas() -> &'static [EmbeddedSchema] {
    EMBEDDED_SCHEMAS
}

/// Whether `action` is an action of `version` at all (it has a request schema).
pub fn is_known_action(version: OcppVersion, action: &str) -> bool {
    EMBEDDED_SCHEMAS
        .iter()
        .any(|s| s.version == version && s.direction == Direction::Request && s.action == action)
}

/// A vendored schema that would not load; a build defect, never caused by input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("schema {file} is not valid JSON: {message}")]
    NotJson { file: &'static str, message: String },
    #[error("schema {file} does not compile: {message}")]
    DoesNotCompile { file: &'static str, message: String },
}

/// Why a payload was refused, as it goes into the CALLERROR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct PayloadError {
    pub code: ErrorCode,
    /// Names the JSON path and the rule, e.g. `/connectorId: type: "1" is not of type "integer"`;
    /// at most [`MAX_ERROR_DESCRIPTION_LEN`] characters.
    pub description: String,
}

impl PayloadError {
    pub(crate) fn new(code: ErrorCode, description: impl AsRef<str>) -> PayloadError {
        PayloadError {
            code,
            description: truncate_chars(description.as_ref(), MAX_ERROR_DESCRIPTION_LEN).to_owned(),
        }
    }
}

type ValidatorTable = HashMap<&'static str, jsonschema::Validator>;

/// All embedded schemas, compiled. Build one per process and share it (`Send + Sync`).
pub struct Validator {
    /// Indexed by [`table_index`].
    tables: [ValidatorTable; 4],
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let compiled: usize = self.tables.iter().map(HashMap::len).sum();
        f.debug_struct("Validator")
            .field("compiled_schemas", &compiled)
            .finish()
    }
}

fn table_index(version: OcppVersion, direction: Direction) -> usize {
    match (version, direction) {
        (OcppVersion::V16, Direction::Request) => 0,
        (OcppVersion::V16, Direction::Response) => 1,
        (OcppVersion::V201, Direction::Request) => 2,
        (OcppVersion::V201, Direction::Response) => 3,
    }
}

impl Validator {
    /// Compiles every embedded schema.
    pub fn new() -> Result<Validator, SchemaError> {
        let mut tables: [ValidatorTable; 4] = Default::default();
        for schema in EMBEDDED_SCHEMAS {
            let document: Value =
                serde_json::from_str(schema.text).map_err(|e| SchemaError::NotJson {
                    file: schema.file,
                    message: e.to_string(),
                })?;
            let compiled = jsonschema::options()
                .should_validate_formats(true)
                .build(&document)
                .map_err(|e| SchemaError::DoesNotCompile {
                    file: schema.file,
                    message: e.to_string(),
                })?;
            tables[table_index(schema.version, schema.direction)].insert(schema.action, compiled);
        }
        Ok(Validator { tables })
    }

    /// Checks a CALL payload. An action without a request schema in `version` gives
    /// `NotImplemented`.
    pub fn validate_request(
        &self,
        version: OcppVersion,
        action: &str,
        payload: &Value,
    ) -> Result<(), PayloadError> {
        self.validate_in(version, Direction::Request, action, payload)
    }

    /// Checks a CALLRESULT payload answering `action`. An action without a response schema in
    /// `version` gives `NotImplemented`.
    pub fn validate_response(
        &self,
        version: OcppVersion,
        action: &str,
        payload: &Value,
    ) -> Result<(), PayloadError> {
        self.validate_in(version, Direction::Response, action, payload)
    }

    /// The compiled schema of `action` in `version` and `direction`, if there is one.
    pub(crate) fn compiled(
        &self,
        version: OcppVersion,
        direction: Direction,
        action: &str,
    ) -> Option<&jsonschema::Validator> {
        self.tables[table_index(version, direction)].get(action)
    }

    pub(crate) fn validate_in(
        &self,
        version: OcppVersion,
        direction: Direction,
        action: &str,
        payload: &Value,
    ) -> Result<(), PayloadError> {
        let Some(compiled) = self.compiled(version, direction, action) else {
            return Err(PayloadError::new(
                ErrorCode::NotImplemented,
                format!("{action} is not an OCPP {version} action"),
            ));
        };
        if compiled.is_valid(payload) {
            return Ok(());
        }
        match compiled.validate(payload) {
            Ok(()) => Ok(()),
            Err(error) => {
                let path = error.instance_path().as_str();
                let path = if path.is_empty() { "/" } else { path };
                Err(PayloadError::new(
                    code_for(error.kind()),
                    format!("{path}: {}: {error}", error.kind().keyword()),
                ))
            }
        }
    }
}

/// The CALLERROR code for the first schema rule a payload breaks (table in the module docs).
fn code_for(kind: &ValidationErrorKind) -> ErrorCode {
    match kind {
        ValidationErrorKind::Type { .. } => ErrorCode::TypeConstraintViolation,
        ValidationErrorKind::Required { .. }
        | ValidationErrorKind::MinItems { .. }
        | ValidationErrorKind::MaxItems { .. }
        | ValidationErrorKind::MinProperties { .. }
        | ValidationErrorKind::MaxProperties { .. } => ErrorCode::OccurrenceConstraintViolation,
        ValidationErrorKind::Enum { .. }
        | ValidationErrorKind::Constant { .. }
        | ValidationErrorKind::MaxLength { .. }
        | ValidationErrorKind::MinLength { .. }
        | ValidationErrorKind::Pattern { .. }
        | ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. }
        | ValidationErrorKind::MultipleOf { .. }
        | ValidationErrorKind::Format { .. }
        | ValidationErrorKind::UniqueItems => ErrorCode::PropertyConstraintViolation,
        _ => ErrorCode::FormationViolation,
    }
}
