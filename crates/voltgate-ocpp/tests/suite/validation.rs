//! Schema validation: the data-driven payload table (one case per error-code path), every
//! schema compiling, and the unknown-action answers.

use serde::Deserialize;
use serde_json::{json, Value};
use voltgate_ocpp::{
    embedded_schemas, Direction, ErrorCode, OcppVersion, MAX_ERROR_DESCRIPTION_LEN,
};

use crate::validator;

#[derive(Deserialize)]
struct PayloadCase {
    name: String,
    version: OcppVersion,
    action: String,
    payload: Value,
    /// Wire spelling of the expected code; `None` when the payload is valid.
    code: Option<String>,
    /// The JSON path the description must name.
    #[serde(default)]
    path: Option<String>,
}

#[test]
fn payload_table_gives_the_expected_codes_and_paths() {
    let cases: Vec<PayloadCase> = serde_json::from_str(include_str!("../data/payload_cases.json"))
        .expect("case file is JSON");
    let mut codes_seen = std::collections::HashSet::new();
    for case in &cases {
        let result = validator().validate_request(case.version, &case.action, &case.payload);
        match (&case.code, result) {
            (None, Ok(())) => {}
            (None, Err(e)) => panic!("{}: expected valid, got {e:?}", case.name),
            (Some(code), Ok(())) => panic!("{}: expected {code}, got valid", case.name),
            (Some(code), Err(e)) => {
                assert_eq!(
                    e.code.as_str(case.version),
                    code,
                    "{}: {}",
                    case.name,
                    e.description
                );
                codes_seen.insert(e.code);
                if let Some(path) = &case.path {
                    assert!(
                        e.description.starts_with(&format!("{path}: ")),
                        "{}: description {:?} must start with the path {path}",
                        case.name,
                        e.description
                    );
                }
            }
        }
    }
    for code in [
        ErrorCode::TypeConstraintViolation,
        ErrorCode::OccurrenceConstraintViolation,
        ErrorCode::PropertyConstraintViolation,
        ErrorCode::FormationViolation,
        ErrorCode::NotImplemented,
    ] {
        assert!(codes_seen.contains(&code), "no case covers {code:?}");
    }
}

#[test]
fn descriptions_name_the_rule_and_stay_short() {
    let payload = json!({ "idTag": "x".repeat(10_000) });
    let error = validator()
        .validate_request(OcppVersion::V16, "Authorize", &payload)
        .expect_err("too long");
    assert!(
        error.description.starts_with("/idTag: maxLength: "),
        "{}",
        error.description
    );
    assert!(error.description.chars().count() <= MAX_ERROR_DESCRIPTION_LEN);
}

#[test]
fn responses_are_checked_against_response_schemas() {
    let ok = json!({ "currentTime": "2024-05-01T12:00:00Z" });
    assert_eq!(
        validator().validate_response(OcppVersion::V16, "Heartbeat", &ok),
        Ok(())
    );
    let missing = json!({});
    let error = validator()
        .validate_response(OcppVersion::V201, "Heartbeat", &missing)
        .expect_err("currentTime is required");
    assert_eq!(error.code, ErrorCode::OccurrenceConstraintViolation);
    // A request shape is not a response shape.
    let error = validator()
        .validate_response(
            OcppVersion::V16,
            "StatusNotification",
            &json!({"connectorId": 1}),
        )
        .expect_err("the response has no fields");
    assert_eq!(error.code, ErrorCode::FormationViolation);
}

#[test]
fn every_action_has_both_schemas_in_both_versions() {
    let schemas = embedded_schemas();
    let count = |v| schemas.iter().filter(|s| s.version == v).count();
    assert_eq!(count(OcppVersion::V16), 78);
    assert_eq!(count(OcppVersion::V201), 128);
    for schema in schemas {
        let other = match schema.direction {
            Direction::Request => Direction::Response,
            Direction::Response => Direction::Request,
        };
        assert!(
            schemas.iter().any(|s| s.version == schema.version
                && s.action == schema.action
                && s.direction == other),
            "{} has no {other:?} schema",
            schema.file
        );
    }
}

#[test]
fn validator_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<voltgate_ocpp::Validator>();
}
