//! Malformed and unexpected frames from a charger: each gets the CALLERROR its OCPP version
//! prescribes (schema failures under `--schema-tolerance strict`), a metric, and the
//! connection stays up.

use std::time::Duration;

use serde_json::json;
use voltgate_tests::{Charger, Received};

use crate::Estate;

/// One hostile frame and the error codes the version allows as an answer.
struct Case {
    name: &'static str,
    frame: String,
    v16: &'static [&'static str],
    v201: &'static [&'static str],
    /// The message id the CALLERROR must carry, where the frame had a readable one.
    id: Option<&'static str>,
}

fn cases(v16: bool) -> Vec<Case> {
    let status = if v16 {
        json!({"connectorId": 1, "errorCode": "NoError", "status": "Bogus"})
    } else {
        json!({"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Bogus", "evseId": 1, "connectorId": 1})
    };
    let wrong_type = if v16 {
        json!({"connectorId": "one", "errorCode": "NoError", "status": "Available"})
    } else {
        json!({"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available", "evseId": "one", "connectorId": 1})
    };
    let missing = if v16 {
        json!({"chargePointVendor": "V"})
    } else {
        json!({"reason": "PowerUp"})
    };
    let too_long = if v16 {
        json!({"chargePointVendor": "V".repeat(21), "chargePointModel": "M"})
    } else {
        json!({"reason": "PowerUp", "chargingStation": {"vendorName": "V".repeat(51), "model": "M"}})
    };
    let csms_only = if v16 {
        "RemoteStartTransaction"
    } else {
        "RequestStartTransaction"
    };
    vec![
        Case {
            name: "not JSON",
            frame: "this is not json".into(),
            v16: &["FormationViolation", "ProtocolError", "GenericError"],
            v201: &["RpcFrameworkError", "FormatViolation", "ProtocolError"],
            id: None,
        },
        Case {
            name: "JSON that is not a message array",
            frame: json!({"hello": "world"}).to_string(),
            v16: &["FormationViolation", "ProtocolError", "GenericError"],
            v201: &["RpcFrameworkError", "FormatViolation", "ProtocolError"],
            id: None,
        },
        Case {
            name: "enum value out of range",
            frame: json!([2, "m-enum", "StatusNotification", status]).to_string(),
            v16: &["PropertyConstraintViolation"],
            v201: &["PropertyConstraintViolation"],
            id: Some("m-enum"),
        },
        Case {
            name: "wrong JSON type",
            frame: json!([2, "m-type", "StatusNotification", wrong_type]).to_string(),
            v16: &["TypeConstraintViolation"],
            v201: &["TypeConstraintViolation"],
            id: Some("m-type"),
        },
        Case {
            name: "required field missing",
            frame: json!([2, "m-missing", "BootNotification", missing]).to_string(),
            v16: &["OccurenceConstraintViolation"],
            v201: &["OccurrenceConstraintViolation"],
            id: Some("m-missing"),
        },
        Case {
            name: "string too long",
            frame: json!([2, "m-long", "BootNotification", too_long]).to_string(),
            v16: &["PropertyConstraintViolation"],
            v201: &["PropertyConstraintViolation"],
            id: Some("m-long"),
        },
        Case {
            name: "unknown action",
            frame: json!([2, "m-unknown", "FlyToTheMoon", {}]).to_string(),
            v16: &["NotImplemented"],
            v201: &["NotImplemented"],
            id: Some("m-unknown"),
        },
        Case {
            name: "action only a central system may send",
            frame: json!([2, "m-csms", csms_only, {}]).to_string(),
            v16: &["NotSupported", "NotImplemented"],
            v201: &["NotSupported", "NotImplemented"],
            id: Some("m-csms"),
        },
        Case {
            name: "action of the other OCPP version",
            frame: if v16 {
                json!([2, "m-other", "TransactionEvent", {}]).to_string()
            } else {
                json!([2, "m-other", "StartTransaction", {}]).to_string()
            },
            v16: &["NotImplemented"],
            v201: &["NotImplemented"],
            id: Some("m-other"),
        },
        Case {
            name: "unknown message type",
            frame: json!([7, "m-seven", "Heartbeat", {}]).to_string(),
            v16: &["FormationViolation", "ProtocolError"],
            v201: &["MessageTypeNotSupported"],
            id: Some("m-seven"),
        },
    ]
}

async fn hostile_frames_get_the_right_error(subprotocol: &str) {
    // The table's enum and length cases are benign deviations a lenient gateway accepts
    // (tests/e2e/quirks.rs); strict tolerance answers every schema failure with its code.
    let estate = Estate::new(&["--max-frame-bytes", "4096", "--schema-tolerance", "strict"]).await;
    let id = format!("CP-BAD-{}", subprotocol.replace('.', "-"));
    let mut charger = estate.charger(&id, subprotocol).await;
    let v16 = charger.is_v16();
    for case in cases(v16) {
        charger.send_text(&case.frame).unwrap();
        let answer = charger.next(Duration::from_secs(5)).await;
        let Some(Received::Error {
            id,
            code,
            description,
        }) = answer
        else {
            panic!("{}: expected a CALLERROR, got {answer:?}", case.name);
        };
        let allowed = if v16 { case.v16 } else { case.v201 };
        assert!(
            allowed.contains(&code.as_str()),
            "{}: code {code} not in {allowed:?} ({description})",
            case.name
        );
        assert!(!description.is_empty(), "{}: empty description", case.name);
        if let Some(expected) = case.id {
            assert_eq!(id, expected, "{}: wrong message id", case.name);
        }
        let beat = charger.call_ok("Heartbeat", json!({})).await;
        assert!(
            beat.is_ok(),
            "{}: connection unusable afterwards: {beat:?}",
            case.name
        );
    }

    let metrics = crate::metrics(&estate.gateway.api_url).await;
    assert!(
        metrics.contains("voltgate_ocpp_frames_rejected_total"),
        "no rejection metric in /metrics"
    );

    // An oversize frame is refused without taking the gateway down.
    charger
        .send_text(
            &json!([2, "m-big", "DataTransfer", {"vendorId": "x", "data": "y".repeat(10_000)}])
                .to_string(),
        )
        .unwrap();
    let outcome = charger.next(Duration::from_secs(5)).await;
    assert!(
        matches!(outcome, Some(Received::Closed { code: Some(1009) })),
        "oversize frame: expected close 1009, got {outcome:?}"
    );
    let mut again = Charger::connect(&estate.gateway.ocpp_url, &id, &[subprotocol])
        .await
        .unwrap();
    again.boot().await.unwrap();
}

#[tokio::test]
async fn hostile_frames_v16() {
    hostile_frames_get_the_right_error("ocpp1.6").await;
}

#[tokio::test]
async fn hostile_frames_v201() {
    hostile_frames_get_the_right_error("ocpp2.0.1").await;
}

#[tokio::test]
async fn binary_frames_are_refused_and_the_gateway_stays_healthy() {
    let estate = Estate::new(&[]).await;
    let mut charger = estate.charger("CP-BIN", "ocpp1.6").await;
    charger.send_binary(vec![0xde, 0xad, 0xbe, 0xef]).unwrap();
    // OCPP-J is text frames only: a binary frame is refused with close code 1003.
    let outcome = charger.next(Duration::from_secs(5)).await;
    assert!(
        matches!(outcome, Some(Received::Closed { code: Some(1003) })),
        "binary frame: expected close 1003, got {outcome:?}"
    );
    let health = reqwest::get(format!("{}/healthz", estate.gateway.api_url))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
