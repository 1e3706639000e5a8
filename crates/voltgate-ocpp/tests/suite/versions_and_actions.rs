//! Subprotocol negotiation, error-code spellings, and which charger actions are handled.

use voltgate_ocpp::{
    charger_actions, is_charger_initiated, is_known_action, unhandled_action_code, ErrorCode,
    OcppVersion,
};

#[test]
fn negotiate_prefers_201_and_ignores_the_rest() {
    let cases: &[(&[&str], Option<OcppVersion>)] = &[
        (&["ocpp1.6"], Some(OcppVersion::V16)),
        (&["ocpp2.0.1"], Some(OcppVersion::V201)),
        (&["ocpp1.6", "ocpp2.0.1"], Some(OcppVersion::V201)),
        (&["ocpp2.0.1", "ocpp1.6"], Some(OcppVersion::V201)),
        (&["ocpp2.0", "ocpp1.6"], Some(OcppVersion::V16)),
        (&["ocpp1.6, ocpp2.0.1"], Some(OcppVersion::V201)),
        (&[" ocpp1.6 "], Some(OcppVersion::V16)),
        (&["ocpp2.1", "ocpp1.5"], None),
        (&["OCPP1.6"], None),
        (&[""], None),
        (&[], None),
    ];
    for (offered, expected) in cases {
        assert_eq!(
            OcppVersion::negotiate(offered.iter().copied()),
            *expected,
            "{offered:?}"
        );
    }
}

#[test]
fn version_names() {
    for version in OcppVersion::ALL {
        assert_eq!(
            OcppVersion::from_subprotocol(version.subprotocol()),
            Some(version)
        );
        let json = serde_json::to_string(&version).expect("serialises");
        assert_eq!(json, format!("\"{version}\""));
        assert_eq!(
            serde_json::from_str::<OcppVersion>(&json).expect("reads back"),
            version
        );
    }
    assert_eq!(OcppVersion::V16.subprotocol(), "ocpp1.6");
    assert_eq!(OcppVersion::V201.subprotocol(), "ocpp2.0.1");
    assert_eq!(OcppVersion::V16.to_string(), "1.6");
    assert_eq!(OcppVersion::V201.to_string(), "2.0.1");
}

#[test]
fn error_code_spellings() {
    let v16 = OcppVersion::V16;
    let v201 = OcppVersion::V201;
    assert_eq!(
        ErrorCode::FormationViolation.as_str(v16),
        "FormationViolation"
    );
    assert_eq!(
        ErrorCode::FormationViolation.as_str(v201),
        "FormatViolation"
    );
    assert_eq!(
        ErrorCode::OccurrenceConstraintViolation.as_str(v16),
        "OccurenceConstraintViolation"
    );
    assert_eq!(
        ErrorCode::OccurrenceConstraintViolation.as_str(v201),
        "OccurrenceConstraintViolation"
    );
    assert_eq!(
        ErrorCode::MessageTypeNotSupported.as_str(v201),
        "MessageTypeNotSupported"
    );
    assert_eq!(
        ErrorCode::RpcFrameworkError.as_str(v201),
        "RpcFrameworkError"
    );
    assert_eq!(ErrorCode::RpcFrameworkError.as_str(v16), "GenericError");
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_wire(code.as_str(v201)), Some(code));
        if !matches!(
            code,
            ErrorCode::MessageTypeNotSupported | ErrorCode::RpcFrameworkError
        ) {
            assert_eq!(ErrorCode::from_wire(code.as_str(v16)), Some(code));
        }
    }
    assert_eq!(ErrorCode::from_wire("Oops"), None);
}

#[test]
fn handled_charger_actions() {
    for version in OcppVersion::ALL {
        for action in charger_actions(version) {
            assert!(
                is_known_action(version, action),
                "{version} has no {action}"
            );
            assert!(is_charger_initiated(version, action));
        }
    }
    assert!(is_charger_initiated(OcppVersion::V16, "StartTransaction"));
    assert!(!is_charger_initiated(OcppVersion::V201, "StartTransaction"));
    assert!(is_charger_initiated(OcppVersion::V201, "TransactionEvent"));
    assert!(!is_charger_initiated(OcppVersion::V16, "TransactionEvent"));
    assert!(!is_charger_initiated(
        OcppVersion::V16,
        "RemoteStartTransaction"
    ));
    assert!(!is_charger_initiated(OcppVersion::V16, "heartbeat"));
}

#[test]
fn unhandled_action_codes() {
    let cases = [
        (
            OcppVersion::V16,
            "RemoteStartTransaction",
            ErrorCode::NotSupported,
        ),
        (OcppVersion::V16, "Reset", ErrorCode::NotSupported),
        (OcppVersion::V16, "SignCertificate", ErrorCode::NotSupported),
        (
            OcppVersion::V16,
            "TransactionEvent",
            ErrorCode::NotImplemented,
        ),
        (
            OcppVersion::V16,
            "RequestStartTransaction",
            ErrorCode::NotImplemented,
        ),
        (OcppVersion::V16, "Teleport", ErrorCode::NotImplemented),
        (OcppVersion::V16, "", ErrorCode::NotImplemented),
        (
            OcppVersion::V201,
            "RequestStartTransaction",
            ErrorCode::NotSupported,
        ),
        (
            OcppVersion::V201,
            "NotifyEVChargingNeeds",
            ErrorCode::NotSupported,
        ),
        (
            OcppVersion::V201,
            "StartTransaction",
            ErrorCode::NotImplemented,
        ),
        (
            OcppVersion::V201,
            "RemoteStartTransaction",
            ErrorCode::NotImplemented,
        ),
        (
            OcppVersion::V201,
            "bootnotification",
            ErrorCode::NotImplemented,
        ),
    ];
    for (version, action, code) in cases {
        assert_eq!(
            unhandled_action_code(version, action),
            code,
            "{version} {action:?}"
        );
    }
}
