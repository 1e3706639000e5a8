//! Every CALLRESULT builder produces a payload its response schema accepts.

use serde_json::json;
use voltgate_ocpp::responses::{
    self, AuthorizationStatus, DataTransferStatus, IdTokenInfo, RegistrationStatus,
};
use voltgate_ocpp::{charger_actions, OcppVersion};

use crate::validator;

const NOW: &str = "2024-05-01T12:00:00.123Z";
const STATUSES: [AuthorizationStatus; 4] = [
    AuthorizationStatus::Accepted,
    AuthorizationStatus::Blocked,
    AuthorizationStatus::Expired,
    AuthorizationStatus::Invalid,
];

/// The status alone, and with an expiry and a group (one too long for a 1.6 parentIdTag).
fn infos(status: AuthorizationStatus) -> [IdTokenInfo<'static>; 3] {
    [
        IdTokenInfo::status(status),
        IdTokenInfo {
            status,
            expires_at: Some(NOW),
            group: Some("FLEET-1"),
        },
        IdTokenInfo {
            status,
            expires_at: Some(NOW),
            group: Some("A-GROUP-NAME-LONGER-THAN-20"),
        },
    ]
}

fn assert_valid(version: OcppVersion, action: &str, payload: &serde_json::Value) {
    if let Err(e) = validator().validate_response(version, action, payload) {
        panic!("{version} {action} answer {payload} is invalid: {e:?}");
    }
}

#[test]
fn every_builder_validates_against_its_response_schema() {
    for version in OcppVersion::ALL {
        for status in [
            RegistrationStatus::Accepted,
            RegistrationStatus::Pending,
            RegistrationStatus::Rejected,
        ] {
            assert_valid(
                version,
                "BootNotification",
                &responses::boot_notification(status, NOW, 300),
            );
        }
        assert_valid(
            version,
            "BootNotification",
            &responses::boot_notification_accepted(NOW, 60),
        );
        assert_valid(version, "Heartbeat", &responses::heartbeat(NOW));
        for status in STATUSES {
            for info in infos(status) {
                assert_valid(version, "Authorize", &responses::authorize(version, &info));
            }
        }
        for status in [
            DataTransferStatus::Accepted,
            DataTransferStatus::Rejected,
            DataTransferStatus::UnknownMessageId,
            DataTransferStatus::UnknownVendorId,
        ] {
            assert_valid(version, "DataTransfer", &responses::data_transfer(status));
        }
    }
    for info in STATUSES.into_iter().flat_map(infos) {
        assert_valid(
            OcppVersion::V16,
            "StartTransaction",
            &responses::start_transaction(i64::from(i32::MAX), &info),
        );
        assert_valid(
            OcppVersion::V16,
            "StopTransaction",
            &responses::stop_transaction(Some(&info)),
        );
        assert_valid(
            OcppVersion::V201,
            "TransactionEvent",
            &responses::transaction_event(Some(&info)),
        );
    }
    assert_valid(
        OcppVersion::V16,
        "StopTransaction",
        &responses::stop_transaction(None),
    );
    assert_valid(
        OcppVersion::V201,
        "TransactionEvent",
        &responses::transaction_event(None),
    );
}

#[test]
fn builders_carry_what_they_were_given() {
    assert_eq!(
        responses::boot_notification_accepted(NOW, 300),
        json!({"status": "Accepted", "currentTime": NOW, "interval": 300})
    );
    assert_eq!(
        responses::authorize(
            OcppVersion::V16,
            &IdTokenInfo::status(AuthorizationStatus::Blocked)
        ),
        json!({"idTagInfo": {"status": "Blocked"}})
    );
    assert_eq!(
        responses::authorize(
            OcppVersion::V201,
            &IdTokenInfo::status(AuthorizationStatus::Expired)
        ),
        json!({"idTokenInfo": {"status": "Expired"}})
    );
    assert_eq!(
        responses::start_transaction(17, &IdTokenInfo::status(AuthorizationStatus::Accepted)),
        json!({"transactionId": 17, "idTagInfo": {"status": "Accepted"}})
    );
}

#[test]
fn empty_answers_validate_and_only_where_the_schema_allows_them() {
    for version in OcppVersion::ALL {
        for action in charger_actions(version) {
            let empty_is_valid = validator()
                .validate_response(version, action, &json!({}))
                .is_ok();
            match responses::empty_answer(version, action) {
                Some(payload) => {
                    assert_eq!(payload, json!({}));
                    assert_valid(version, action, &payload);
                }
                // StopTransaction / TransactionEvent have their own builders.
                None => assert!(
                    !empty_is_valid || matches!(*action, "StopTransaction" | "TransactionEvent"),
                    "{version} {action} could be answered with {{}}"
                ),
            }
        }
    }
    assert_eq!(responses::empty_answer(OcppVersion::V16, "Heartbeat"), None);
    assert_eq!(
        responses::empty_answer(OcppVersion::V201, "BootNotification"),
        None
    );
}

#[test]
fn an_expiry_goes_only_with_an_accepted_token_and_a_1_6_group_only_within_20_characters() {
    let info = |status, group| IdTokenInfo {
        status,
        expires_at: Some(NOW),
        group: Some(group),
    };
    let accepted = info(AuthorizationStatus::Accepted, "FLEET-1");
    assert_eq!(
        accepted.v16(),
        json!({"status": "Accepted", "expiryDate": NOW, "parentIdTag": "FLEET-1"})
    );
    assert_eq!(
        accepted.v201(),
        json!({"status": "Accepted", "cacheExpiryDateTime": NOW,
               "groupIdToken": {"idToken": "FLEET-1", "type": "Central"}})
    );
    let blocked = info(AuthorizationStatus::Blocked, "A-GROUP-NAME-LONGER-THAN-20");
    assert_eq!(blocked.v16(), json!({"status": "Blocked"}));
    assert_eq!(
        blocked.v201(),
        json!({"status": "Blocked",
               "groupIdToken": {"idToken": "A-GROUP-NAME-LONGER-THAN-20", "type": "Central"}})
    );
}
