//! The tolerance layer: the real-world corpus under `tests/data/quirks/` (accepted with its
//! kind under lenient, refused under strict), the deviations that stay refused, charger
//! answers, and the property that tolerance never changes what strict accepts.

use std::path::PathBuf;

use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};
use voltgate_ocpp::{DeviationKind, Direction, OcppVersion, Tolerance};

use crate::validator;

#[derive(Deserialize)]
struct QuirkCase {
    version: OcppVersion,
    kind: String,
    reported: String,
    frame: (u8, String, String, Value),
}

fn corpus() -> Vec<(String, QuirkCase)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/quirks");
    let mut cases: Vec<(String, QuirkCase)> = std::fs::read_dir(&dir)
        .expect("the quirks corpus exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable case");
            let case: QuirkCase =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), case)
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

/// `"$TX"` stands for a transaction the end-to-end replay starts; any id does here.
fn with_transaction(payload: &Value) -> Value {
    let text = payload.to_string().replace("\"$TX\"", "7");
    serde_json::from_str(&text).expect("still JSON")
}

#[test]
fn every_corpus_case_is_refused_strictly_and_accepted_leniently_with_its_kind() {
    let cases = corpus();
    assert!(cases.len() >= 14, "the corpus has {} cases", cases.len());
    let mut kinds_seen = std::collections::BTreeSet::new();
    for (name, case) in &cases {
        assert!(
            !case.reported.is_empty(),
            "{name}: says where it was reported"
        );
        let kind: DeviationKind = case.kind.parse().expect("a known kind");
        kinds_seen.insert(kind);
        let (_, _, action, payload) = &case.frame;
        let payload = with_transaction(payload);
        let strict =
            validator().check_request(case.version, action, payload.clone(), Tolerance::Strict);
        assert!(strict.is_err(), "{name}: strict accepted it");
        let accepted = validator()
            .check_request(case.version, action, payload.clone(), Tolerance::Lenient)
            .unwrap_or_else(|e| panic!("{name}: lenient refused it: {e}"));
        assert!(!accepted.deviations.is_empty(), "{name}: no deviation");
        for deviation in &accepted.deviations {
            assert_eq!(deviation.kind, kind, "{name}: {deviation:?}");
            assert!(deviation.example.chars().count() <= 120, "{name}");
        }
        let normalises = matches!(
            kind,
            DeviationKind::NumericString
                | DeviationKind::TimestampWithoutZone
                | DeviationKind::DataTransferJson
        );
        if normalises {
            validator()
                .validate_request(case.version, action, &accepted.payload)
                .unwrap_or_else(|e| panic!("{name}: normalised payload still fails: {e}"));
        } else {
            assert_eq!(accepted.payload, payload, "{name}: kept as sent");
        }
    }
    assert_eq!(
        kinds_seen.into_iter().collect::<Vec<_>>(),
        DeviationKind::ALL.to_vec(),
        "the corpus covers every kind"
    );
}

fn lenient(version: OcppVersion, action: &str, payload: Value) -> Result<Value, String> {
    validator()
        .check_request(version, action, payload, Tolerance::Lenient)
        .map(|a| a.payload)
        .map_err(|e| e.description)
}

#[test]
fn normalisation_gives_the_handlers_numbers_zoned_timestamps_and_text() {
    let status = lenient(
        OcppVersion::V16,
        "StatusNotification",
        json!({"connectorId": " 2", "errorCode": "NoError", "status": "Available",
               "timestamp": "2024-05-01T12:00:00.5"}),
    )
    .expect("accepted");
    assert_eq!(status["connectorId"], json!(2));
    assert_eq!(status["timestamp"], json!("2024-05-01T12:00:00.5Z"));
    let data = lenient(
        OcppVersion::V16,
        "DataTransfer",
        json!({"vendorId": "Growatt", "data": {"a": [1, 2]}}),
    )
    .expect("accepted");
    assert_eq!(data["data"], json!(r#"{"a":[1,2]}"#));
    let start = lenient(
        OcppVersion::V16,
        "StartTransaction",
        json!({"connectorId": 1, "idTag": "04A2", "meterStart": "1234",
               "timestamp": "2024-05-01T12:00:00Z"}),
    )
    .expect("accepted");
    assert_eq!(start["meterStart"], json!(1234));
}

#[test]
fn harmful_deviations_stay_refused_with_the_strict_error() {
    let long = |n: usize| "M".repeat(n);
    let refused = [
        // Missing required field.
        (
            OcppVersion::V16,
            "BootNotification",
            json!({"chargePointVendor": "Acme"}),
        ),
        // Over 4x the CiString20 bound.
        (
            OcppVersion::V16,
            "BootNotification",
            json!({"chargePointVendor": "Acme", "chargePointModel": long(81)}),
        ),
        // A fraction where an integer is needed, and text that is no number.
        (
            OcppVersion::V16,
            "StatusNotification",
            json!({"connectorId": "1.5", "errorCode": "NoError", "status": "Available"}),
        ),
        (
            OcppVersion::V16,
            "StatusNotification",
            json!({"connectorId": "one", "errorCode": "NoError", "status": "Available"}),
        ),
        // Wrong structure.
        (
            OcppVersion::V16,
            "MeterValues",
            json!({"connectorId": 1, "meterValue": {"timestamp": "2024-05-01T12:00:00Z"}}),
        ),
        // A timestamp that is no date-time even with a zone.
        (
            OcppVersion::V16,
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available",
                "timestamp": "yesterday"}),
        ),
        // An eventType outside the list changes what happens to the transaction.
        (
            OcppVersion::V201,
            "TransactionEvent",
            json!({"eventType": "Paused", "timestamp": "2024-05-01T12:00:00Z",
                "triggerReason": "Authorized", "seqNo": 0,
                "transactionInfo": {"transactionId": "T1"}}),
        ),
        // A benign deviation does not carry a harmful one.
        (
            OcppVersion::V16,
            "BootNotification",
            json!({"chargePointModel": long(22), "extra": 1}),
        ),
        // A non-string where 1.6 wants a string, outside DataTransfer data.
        (
            OcppVersion::V16,
            "DataTransfer",
            json!({"vendorId": {"name": "Growatt"}}),
        ),
    ];
    for (version, action, payload) in refused {
        let strict = validator()
            .validate_request(version, action, &payload)
            .expect_err("strict refuses it");
        let err = validator()
            .check_request(version, action, payload.clone(), Tolerance::Lenient)
            .expect_err(&format!("lenient refuses {payload}"));
        assert_eq!(err, strict, "{payload}");
    }
}

#[test]
fn exactly_four_times_the_limit_is_accepted() {
    let payload = json!({"chargePointVendor": "Acme", "chargePointModel": "M".repeat(80)});
    let accepted = validator()
        .check_request(
            OcppVersion::V16,
            "BootNotification",
            payload.clone(),
            Tolerance::Lenient,
        )
        .expect("accepted");
    assert_eq!(accepted.payload, payload);
    assert_eq!(accepted.deviations.len(), 1);
    assert_eq!(accepted.deviations[0].kind, DeviationKind::StringTooLong);
    assert_eq!(accepted.deviations[0].path, "/chargePointModel");
    assert!(accepted.deviations[0]
        .example
        .contains("80 characters, limit 20"));
}

#[test]
fn charger_answers_to_commands_get_the_same_tolerance() {
    let answer = json!({"status": "Accepted", "statusInfo": "done"});
    assert!(validator()
        .check_response(OcppVersion::V16, "Reset", answer.clone(), Tolerance::Strict)
        .is_err());
    let accepted = validator()
        .check_response(
            OcppVersion::V16,
            "Reset",
            answer.clone(),
            Tolerance::Lenient,
        )
        .expect("accepted");
    assert_eq!(accepted.deviations[0].kind, DeviationKind::UnknownField);
    let outcome = json!({"status": "Maybe"});
    assert!(
        validator()
            .check_response(OcppVersion::V16, "Reset", outcome, Tolerance::Lenient)
            .is_err(),
        "an answer's status is its outcome: never guessed"
    );
    let refused = json!({"status": 1});
    assert!(validator()
        .check(
            OcppVersion::V16,
            Direction::Response,
            "Reset",
            refused,
            Tolerance::Lenient
        )
        .is_err());
}

#[test]
fn tolerance_and_kind_names_parse_and_refuse_unknown_names() {
    assert_eq!("strict".parse(), Ok(Tolerance::Strict));
    assert_eq!("lenient".parse(), Ok(Tolerance::Lenient));
    assert!("loose".parse::<Tolerance>().is_err());
    for kind in DeviationKind::ALL {
        assert_eq!(kind.as_str().parse(), Ok(kind));
    }
    assert!("typo".parse::<DeviationKind>().is_err());
}

/// A 1.6 BootNotification or StatusNotification with some fields bent the ways firmware bends
/// them (or not).
fn bent_payload() -> impl Strategy<Value = (&'static str, Value)> {
    let boot = (
        "[A-Za-z0-9 -]{0,90}",
        proptest::option::of("[A-Z0-9]{0,40}"),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(model, serial, extra)| {
            let mut payload = json!({"chargePointVendor": "Acme", "chargePointModel": model});
            if let Some(serial) = serial {
                payload["chargeBoxSerialNumber"] = json!(serial);
            }
            if let Some(extra) = extra {
                payload["vendorExtra"] = json!(extra);
            }
            ("BootNotification", payload)
        });
    let status = (
        0u32..5,
        any::<bool>(),
        prop_oneof![Just("Available"), Just("Charging"), Just("Resting")],
        proptest::option::of(prop_oneof![
            Just("2024-05-01T12:00:00Z"),
            Just("2024-05-01T12:00:00"),
            Just("2024-05-01 12:00")
        ]),
    )
        .prop_map(|(connector, as_text, status, timestamp)| {
            let connector = if as_text {
                json!(connector.to_string())
            } else {
                json!(connector)
            };
            let mut payload =
                json!({"connectorId": connector, "errorCode": "NoError", "status": status});
            if let Some(timestamp) = timestamp {
                payload["timestamp"] = json!(timestamp);
            }
            ("StatusNotification", payload)
        });
    prop_oneof![boot, status]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accepted_under_strict_is_accepted_unchanged_under_lenient((action, payload) in bent_payload()) {
        let strict = validator().check_request(OcppVersion::V16, action, payload.clone(), Tolerance::Strict);
        let lenient = validator().check_request(OcppVersion::V16, action, payload.clone(), Tolerance::Lenient);
        match strict {
            Ok(strict) => {
                prop_assert_eq!(&strict.payload, &payload);
                prop_assert!(strict.deviations.is_empty());
                let lenient = lenient.expect("lenient accepts what strict accepts");
                prop_assert_eq!(lenient.payload, payload);
                prop_assert!(lenient.deviations.is_empty());
            }
            Err(strict) => {
                // What lenient accepts from a refused payload always names a deviation.
                if let Ok(lenient) = lenient {
                    prop_assert!(!lenient.deviations.is_empty());
                } else if let Err(err) = lenient {
                    prop_assert_eq!(err, strict);
                }
            }
        }
    }
}
