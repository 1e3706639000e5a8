//! OCPP 1.6 compliance test cases for a central system (OCTT `TC_nnn_CSMS`), as far as Voltgate
//! implements them; `docs/CONFORMANCE.md` lists the rest with the reason.

use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::tls::{self, TlsAttempt};
use voltgate_tests::Charger;

use super::{answered, Csms, BLOCKED, EXPIRED, UNKNOWN, VALID};
use crate::security_profiles::{register, TlsGateway};

const V16: &str = "ocpp1.6";
const CP: &str = "CP16";
const PASSWORD: &str = "conformance-pass-16";
const FIRMWARE: &str = "https://firmware.example.com/cp16-2.0.bin";
const UPLOAD: &str = "ftp://logs.example.com/cp16/";

async fn booted() -> (Csms, Charger) {
    let csms = Csms::new().await;
    let charger = csms.charger(CP, V16).await;
    (csms, charger)
}

async fn status(charger: &mut Charger, connector: u32, status: &str, error: &str) {
    let answer = answered(
        charger,
        "StatusNotification",
        json!({"connectorId": connector, "errorCode": error, "status": status}),
    )
    .await;
    assert_eq!(answer, json!({}));
}

async fn authorize(charger: &mut Charger, tag: &str) -> Value {
    let answer = answered(charger, "Authorize", json!({ "idTag": tag })).await;
    answer["idTagInfo"]["status"].clone()
}

/// StartTransaction on connector 1 at `at`; returns the transaction id and the tag's status.
async fn start_at(charger: &mut Charger, tag: &str, at: &str) -> (i64, Value) {
    let answer = answered(
        charger,
        "StartTransaction",
        json!({"connectorId": 1, "idTag": tag, "meterStart": 0, "timestamp": at}),
    )
    .await;
    let id = answer["transactionId"]
        .as_i64()
        .unwrap_or_else(|| panic!("no transactionId: {answer}"));
    (id, answer["idTagInfo"]["status"].clone())
}

async fn start(charger: &mut Charger, tag: &str) -> i64 {
    let (id, status) = start_at(charger, tag, "2026-11-25T10:00:00Z").await;
    assert_eq!(status, "Accepted");
    id
}

async fn stop(charger: &mut Charger, transaction: i64, reason: &str) -> Value {
    answered(
        charger,
        "StopTransaction",
        json!({"transactionId": transaction, "idTag": VALID, "meterStop": 4200,
               "timestamp": "2026-11-25T11:00:00Z", "reason": reason}),
    )
    .await
}

/// A charging session on connector 1 as the tool's reusable state `Charging` leaves it.
async fn charging(charger: &mut Charger) -> i64 {
    status(charger, 1, "Preparing", "NoError").await;
    let transaction = start(charger, VALID).await;
    status(charger, 1, "Charging", "NoError").await;
    transaction
}

/// The charger goes away (reset, power cut, lost link) and comes back with a new connection.
async fn reconnect(csms: &Csms, charger: Charger) -> Charger {
    let id = charger.id.clone();
    drop(charger);
    csms.estate
        .admin
        .wait_disconnected(&id, Duration::from_secs(10))
        .await
        .unwrap();
    let mut again = Charger::connect(&csms.estate.gateway.ocpp_url, &id, &[V16])
        .await
        .unwrap();
    let boot = again.boot().await.unwrap();
    assert_eq!(boot["status"], "Accepted", "{boot}");
    again
}

async fn remote_start(csms: &Csms, charger: &mut Charger, status: &str) {
    let payload = csms
        .operate_status(
            charger,
            "remote-start",
            json!({"connector": 1, "id_token": VALID}),
            "RemoteStartTransaction",
            status,
        )
        .await;
    assert_eq!(payload, json!({"connectorId": 1, "idTag": VALID}));
}

#[tokio::test]
async fn tc_001_csms_cold_boot_charge_point() {
    let csms = Csms::new().await;
    csms.estate
        .admin
        .charger(CP, "site-a")
        .await
        .unwrap()
        .expect(201);
    let mut charger = Charger::connect(&csms.estate.gateway.ocpp_url, CP, &[V16])
        .await
        .unwrap();
    let boot = charger.boot().await.unwrap();
    assert_eq!(boot["status"], "Accepted", "{boot}");
    assert_eq!(boot["interval"], 300, "the configured heartbeat interval");
    assert!(boot["currentTime"].is_string(), "{boot}");
    for connector in [0, 1] {
        status(&mut charger, connector, "Available", "NoError").await;
    }
    let beat = answered(&mut charger, "Heartbeat", json!({})).await;
    assert!(beat["currentTime"].is_string(), "{beat}");
}

#[tokio::test]
async fn tc_003_csms_regular_charging_session_plugin_first() {
    let (_csms, mut charger) = booted().await;
    status(&mut charger, 1, "Preparing", "NoError").await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    start(&mut charger, VALID).await;
    status(&mut charger, 1, "Charging", "NoError").await;
}

#[tokio::test]
async fn tc_004_1_csms_regular_charging_session_identification_first() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    status(&mut charger, 1, "Preparing", "NoError").await;
    start(&mut charger, VALID).await;
    status(&mut charger, 1, "Charging", "NoError").await;
}

#[tokio::test]
async fn tc_004_2_csms_regular_charging_session_identification_first_connectiontimeout() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    status(&mut charger, 1, "Preparing", "NoError").await;
    // No cable within ConnectionTimeOut: the charger returns to Available without a session.
    status(&mut charger, 1, "Available", "NoError").await;
}

#[tokio::test]
async fn tc_005_1_csms_ev_side_disconnected() {
    let (_csms, mut charger) = booted().await;
    let transaction = charging(&mut charger).await;
    status(&mut charger, 1, "SuspendedEV", "NoError").await;
    let stopped = stop(&mut charger, transaction, "EVDisconnected").await;
    assert_eq!(stopped["idTagInfo"]["status"], "Accepted", "{stopped}");
    status(&mut charger, 1, "Finishing", "NoError").await;
    status(&mut charger, 1, "Available", "NoError").await;
}

#[tokio::test]
async fn tc_007_csms_regular_start_charging_session_cached_id() {
    let (_csms, mut charger) = booted().await;
    // The tag comes from the charger's cache: no Authorize before the start.
    status(&mut charger, 1, "Preparing", "NoError").await;
    start(&mut charger, VALID).await;
    status(&mut charger, 1, "Charging", "NoError").await;
}

#[tokio::test]
async fn tc_010_csms_remote_start_charging_session_cable_plugged_in_first() {
    let (csms, mut charger) = booted().await;
    status(&mut charger, 1, "Preparing", "NoError").await;
    remote_start(&csms, &mut charger, "Accepted").await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    start(&mut charger, VALID).await;
    status(&mut charger, 1, "Charging", "NoError").await;
}

#[tokio::test]
async fn tc_011_1_csms_remote_start_charging_session_remote_start_first() {
    let (csms, mut charger) = booted().await;
    remote_start(&csms, &mut charger, "Accepted").await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    status(&mut charger, 1, "Preparing", "NoError").await;
    start(&mut charger, VALID).await;
    status(&mut charger, 1, "Charging", "NoError").await;
}

#[tokio::test]
async fn tc_011_2_csms_remote_start_charging_session_time_out() {
    let (csms, mut charger) = booted().await;
    remote_start(&csms, &mut charger, "Accepted").await;
    status(&mut charger, 1, "Preparing", "NoError").await;
    // The driver never plugs in: the charger gives up and is Available again.
    status(&mut charger, 1, "Available", "NoError").await;
}

/// A charging session stopped by the operator's `remote-stop`, which the charger answers
/// `answer`; the RemoteStopTransaction names the session's id.
async fn remote_stop(csms: &Csms, charger: &mut Charger, answer: &str) -> i64 {
    let transaction = charging(charger).await;
    let payload = csms
        .operate_status(
            charger,
            "remote-stop",
            json!({ "transaction_id": transaction.to_string() }),
            "RemoteStopTransaction",
            answer,
        )
        .await;
    assert_eq!(payload, json!({ "transactionId": transaction }));
    transaction
}

#[tokio::test]
async fn tc_012_csms_remote_stop_charging_session() {
    let (csms, mut charger) = booted().await;
    let transaction = remote_stop(&csms, &mut charger, "Accepted").await;
    let stopped = stop(&mut charger, transaction, "Remote").await;
    assert_eq!(stopped["idTagInfo"]["status"], "Accepted", "{stopped}");
    status(&mut charger, 1, "Finishing", "NoError").await;
}

async fn reset(kind: &str, wire: &str) {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "reset",
            json!({ "type": kind }),
            "Reset",
            "Accepted",
        )
        .await;
    assert_eq!(payload, json!({ "type": wire }));
    let mut charger = reconnect(&csms, charger).await;
    status(&mut charger, 1, "Available", "NoError").await;
}

#[tokio::test]
async fn tc_013_csms_hard_reset_without_transaction() {
    reset("hard", "Hard").await;
}

#[tokio::test]
async fn tc_014_csms_soft_reset_without_transaction() {
    reset("soft", "Soft").await;
}

async fn unlock(answer: &str) {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "unlock",
            json!({"connector": 1}),
            "UnlockConnector",
            answer,
        )
        .await;
    assert_eq!(payload, json!({"connectorId": 1}));
}

#[tokio::test]
async fn tc_017_1_csms_unlock_connector_no_charging_session_running_not_fixed_cable() {
    unlock("Unlocked").await;
}

#[tokio::test]
async fn tc_017_2_csms_unlock_connector_no_charging_session_running_fixed_cable() {
    unlock("NotSupported").await;
}

#[tokio::test]
async fn tc_018_1_csms_unlock_connector_with_charging_session() {
    let (csms, mut charger) = booted().await;
    let transaction = charging(&mut charger).await;
    let payload = csms
        .operate_status(
            &mut charger,
            "unlock",
            json!({"connector": 1}),
            "UnlockConnector",
            "Unlocked",
        )
        .await;
    assert_eq!(payload, json!({"connectorId": 1}));
    let stopped = stop(&mut charger, transaction, "UnlockCommand").await;
    assert_eq!(stopped["idTagInfo"]["status"], "Accepted", "{stopped}");
    status(&mut charger, 1, "Finishing", "NoError").await;
}

async fn get_configuration(body: Value, asked: Value) {
    let (csms, mut charger) = booted().await;
    let answer = json!({"configurationKey": [
        {"key": "HeartbeatInterval", "readonly": false, "value": "300"}]});
    let (payload, reply) = csms
        .operate(
            &mut charger,
            "get-configuration",
            body,
            "GetConfiguration",
            answer.clone(),
        )
        .await;
    assert_eq!(payload, asked);
    let reply = reply.expect(200);
    assert_eq!(reply.body["response"], answer, "{}", reply.text);
}

#[tokio::test]
async fn tc_019_1_csms_retrieve_all_configuration_keys() {
    get_configuration(json!({}), json!({})).await;
}

#[tokio::test]
async fn tc_019_2_csms_retrieve_specific_configuration_key() {
    get_configuration(
        json!({"keys": ["HeartbeatInterval"]}),
        json!({"key": ["HeartbeatInterval"]}),
    )
    .await;
}

async fn change_configuration(answer: &str) {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "change-configuration",
            json!({"key": "MeterValueSampleInterval", "value": "60"}),
            "ChangeConfiguration",
            answer,
        )
        .await;
    assert_eq!(
        payload,
        json!({"key": "MeterValueSampleInterval", "value": "60"})
    );
}

#[tokio::test]
async fn tc_021_csms_change_set_configuration() {
    change_configuration("Accepted").await;
}

#[tokio::test]
async fn tc_023_1_csms_start_charging_session_authorize_invalid() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, UNKNOWN).await, "Invalid");
}

#[tokio::test]
async fn tc_023_2_csms_start_charging_session_authorize_expired() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, EXPIRED).await, "Expired");
}

#[tokio::test]
async fn tc_023_3_csms_start_charging_session_authorize_blocked() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, BLOCKED).await, "Blocked");
}

#[tokio::test]
async fn tc_024_csms_start_charging_session_lock_failure() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    status(&mut charger, 1, "Preparing", "NoError").await;
    status(&mut charger, 1, "Faulted", "ConnectorLockFailure").await;
}

#[tokio::test]
async fn tc_026_csms_remote_start_charging_session_rejected() {
    let (csms, mut charger) = booted().await;
    remote_start(&csms, &mut charger, "Rejected").await;
}

#[tokio::test]
async fn tc_028_csms_remote_stop_transaction_rejected() {
    let (csms, mut charger) = booted().await;
    remote_stop(&csms, &mut charger, "Rejected").await;
}

#[tokio::test]
async fn tc_030_csms_unlock_connector_unlock_failure() {
    unlock("UnlockFailed").await;
}

#[tokio::test]
async fn tc_031_csms_unlock_connector_unknown_connector() {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "unlock",
            json!({"connector": 9}),
            "UnlockConnector",
            "NotSupported",
        )
        .await;
    assert_eq!(payload, json!({"connectorId": 9}));
}

#[tokio::test]
async fn tc_032_1_csms_power_failure_boot_charging_point_stop_transaction_s_before_going_down() {
    let (csms, mut charger) = booted().await;
    let transaction = charging(&mut charger).await;
    let mut charger = reconnect(&csms, charger).await;
    let stopped = stop(&mut charger, transaction, "PowerLoss").await;
    assert_eq!(stopped["idTagInfo"]["status"], "Accepted", "{stopped}");
    status(&mut charger, 1, "Available", "NoError").await;
    assert!(csms
        .estate
        .admin
        .lists_transaction(transaction)
        .await
        .unwrap());
}

#[tokio::test]
async fn tc_037_1_csms_offline_start_transaction() {
    let (csms, charger) = booted().await;
    let mut charger = reconnect(&csms, charger).await;
    // Started while the link was down, sent once it is back.
    let (_, status) = start_at(&mut charger, VALID, "2026-11-25T09:00:00Z").await;
    assert_eq!(status, "Accepted");
}

#[tokio::test]
async fn tc_037_3_csms_offline_start_transaction_invalid_idtag() {
    let (csms, charger) = booted().await;
    let mut charger = reconnect(&csms, charger).await;
    let (transaction, status) = start_at(&mut charger, UNKNOWN, "2026-11-25T09:00:00Z").await;
    assert_eq!(status, "Invalid");
    let stopped = answered(
        &mut charger,
        "StopTransaction",
        json!({"transactionId": transaction, "meterStop": 10,
               "timestamp": "2026-11-25T09:01:00Z", "reason": "DeAuthorized"}),
    )
    .await;
    assert_eq!(stopped, json!({}));
}

#[tokio::test]
async fn tc_039_csms_offline_transaction() {
    let (csms, charger) = booted().await;
    let mut charger = reconnect(&csms, charger).await;
    let (transaction, status) = start_at(&mut charger, VALID, "2026-11-25T08:00:00Z").await;
    assert_eq!(status, "Accepted");
    let stopped = stop(&mut charger, transaction, "Local").await;
    assert_eq!(stopped["idTagInfo"]["status"], "Accepted", "{stopped}");
    assert!(csms
        .estate
        .admin
        .lists_transaction(transaction)
        .await
        .unwrap());
}

#[tokio::test]
async fn tc_040_1_csms_configuration_keys_not_supported() {
    change_configuration("NotSupported").await;
}

#[tokio::test]
async fn tc_040_2_csms_configuration_keys_invalid_value() {
    change_configuration("Rejected").await;
}

/// `get-local-list-version` to a charger that answers `version`.
async fn get_local_list_version(version: i64) {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CP, "site-a", V16).await;
    let (payload, reply) = csms
        .operate(
            &mut charger,
            "get-local-list-version",
            json!({}),
            "GetLocalListVersion",
            json!({ "listVersion": version }),
        )
        .await;
    assert_eq!(payload, json!({}));
    let reply = reply.expect(200);
    assert_eq!(
        reply.body["response"]["listVersion"], version,
        "{}",
        reply.text
    );
    let status = match version {
        -1 => "no list".to_owned(),
        n => format!("version {n}"),
    };
    assert_eq!(reply.body["status"], status, "{}", reply.text);
}

#[tokio::test]
async fn tc_042_1_csms_get_local_list_version_not_supported() {
    get_local_list_version(-1).await;
}

#[tokio::test]
async fn tc_042_2_csms_get_local_list_version_empty() {
    get_local_list_version(0).await;
}

/// `send-local-list` to a charger of site-a that answers `status`: a Full list whose every
/// entry has an idTagInfo (dana's three cards, refusals first). Returns the list version sent.
async fn send_full_list(csms: &Csms, charger: &mut Charger, status: &str) -> i64 {
    let payload = csms
        .operate_status(
            charger,
            "send-local-list",
            json!({}),
            "SendLocalList",
            status,
        )
        .await;
    assert_eq!(payload["updateType"], "Full", "{payload}");
    assert_eq!(
        payload["localAuthorizationList"],
        json!([
            {"idTag": BLOCKED, "idTagInfo": {"status": "Blocked"}},
            {"idTag": EXPIRED, "idTagInfo": {"status": "Expired"}},
            {"idTag": VALID, "idTagInfo": {"status": "Accepted"}},
        ])
    );
    let version = payload["listVersion"].as_i64().expect("a list version");
    assert!(version > 0, "{payload}");
    version
}

#[tokio::test]
async fn tc_043_1_csms_send_local_authorization_list_notsupported() {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CP, "site-a", V16).await;
    send_full_list(&csms, &mut charger, "NotSupported").await;
}

#[tokio::test]
async fn tc_043_3_csms_send_local_authorization_list_failed() {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CP, "site-a", V16).await;
    send_full_list(&csms, &mut charger, "Failed").await;
}

#[tokio::test]
async fn tc_043_4_csms_send_local_authorization_list_full() {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CP, "site-a", V16).await;
    send_full_list(&csms, &mut charger, "Accepted").await;
}

/// The manual action "send a Differential list for an idTag not in the list" is, in Voltgate,
/// giving a driver who may charge there a new card: the gateway sends just that card.
#[tokio::test]
async fn tc_043_5_csms_send_local_authorization_list_differential() {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CP, "site-a", V16).await;
    let initial = send_full_list(&csms, &mut charger, "Accepted").await;
    csms.estate
        .admin
        .id_token("dana", "100000C09")
        .await
        .unwrap()
        .expect(201);
    let (call, payload) = charger
        .expect_call("SendLocalList", Duration::from_secs(10))
        .await
        .unwrap();
    charger.reply(&call, json!({"status": "Accepted"})).unwrap();
    assert_eq!(payload["updateType"], "Differential", "{payload}");
    assert_eq!(
        payload["localAuthorizationList"],
        json!([{"idTag": "100000C09", "idTagInfo": {"status": "Accepted"}}])
    );
    assert!(
        payload["listVersion"].as_i64().unwrap() > initial,
        "{payload}"
    );
}

async fn firmware(statuses: &[&str]) {
    let (csms, mut charger) = booted().await;
    let (payload, reply) = csms
        .operate(
            &mut charger,
            "update-firmware",
            json!({"location": FIRMWARE, "retrieve_at": "2026-11-25T10:00:00Z"}),
            "UpdateFirmware",
            json!({}),
        )
        .await;
    reply.expect(200);
    assert_eq!(
        payload,
        json!({"location": FIRMWARE, "retrieveDate": "2026-11-25T10:00:00Z"})
    );
    for status in statuses {
        let answer = answered(
            &mut charger,
            "FirmwareStatusNotification",
            json!({ "status": status }),
        )
        .await;
        assert_eq!(answer, json!({}));
    }
}

#[tokio::test]
async fn tc_044_1_csms_firmware_update_download_and_install() {
    firmware(&["Downloading", "Downloaded", "Installing", "Installed"]).await;
}

#[tokio::test]
async fn tc_044_2_csms_firmware_update_download_failed() {
    firmware(&["Downloading", "DownloadFailed"]).await;
}

#[tokio::test]
async fn tc_044_3_csms_firmware_update_installation_failed() {
    firmware(&[
        "Downloading",
        "Downloaded",
        "Installing",
        "InstallationFailed",
    ])
    .await;
}

#[tokio::test]
async fn tc_045_1_csms_get_diagnostics() {
    let (csms, mut charger) = booted().await;
    let (payload, reply) = csms
        .operate(
            &mut charger,
            "get-log",
            json!({ "location": UPLOAD }),
            "GetDiagnostics",
            json!({"fileName": "diagnostics.zip"}),
        )
        .await;
    reply.expect(200);
    assert_eq!(payload, json!({ "location": UPLOAD }));
    for status in ["Uploading", "Uploaded"] {
        let answer = answered(
            &mut charger,
            "DiagnosticsStatusNotification",
            json!({ "status": status }),
        )
        .await;
        assert_eq!(answer, json!({}));
    }
}

#[tokio::test]
async fn tc_054_csms_trigger_message() {
    let (csms, mut charger) = booted().await;
    let triggered = [
        (
            "MeterValues",
            json!({"connectorId": 1, "meterValue": [{"timestamp": "2026-11-25T10:00:00Z",
            "sampledValue": [{"value": "1200", "measurand": "Energy.Active.Import.Register"}]}]}),
        ),
        ("Heartbeat", json!({})),
        (
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
        ),
        ("DiagnosticsStatusNotification", json!({"status": "Idle"})),
        ("FirmwareStatusNotification", json!({"status": "Idle"})),
        (
            "BootNotification",
            json!({"chargePointVendor": "TestVendor", "chargePointModel": "TestModel"}),
        ),
    ];
    for (message, sent) in triggered {
        let payload = csms
            .operate_status(
                &mut charger,
                "trigger-message",
                json!({"message": message, "connector": 1}),
                "TriggerMessage",
                "Accepted",
            )
            .await;
        assert_eq!(
            payload,
            json!({"requestedMessage": message, "connectorId": 1})
        );
        answered(&mut charger, message, sent).await;
    }
}

#[tokio::test]
async fn tc_055_csms_trigger_message_rejected() {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "trigger-message",
            json!({"message": "MeterValues", "connector": 1}),
            "TriggerMessage",
            "Rejected",
        )
        .await;
    assert_eq!(payload["requestedMessage"], "MeterValues");
}

#[tokio::test]
async fn tc_056_csms_central_smart_charging_txdefaultprofile() {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "set-max-current",
            json!({"connector": 1, "amps": 16}),
            "SetChargingProfile",
            "Accepted",
        )
        .await;
    assert_eq!(payload["connectorId"], 1);
    let profile = &payload["csChargingProfiles"];
    assert_eq!(profile["chargingProfilePurpose"], "TxDefaultProfile");
    assert_eq!(profile["stackLevel"], 0);
    assert_eq!(profile["chargingSchedule"]["chargingRateUnit"], "A");
    assert_eq!(
        profile["chargingSchedule"]["chargingSchedulePeriod"],
        json!([{"startPeriod": 0, "limit": 16.0}])
    );
}

#[tokio::test]
async fn tc_061_csms_clear_authorization_data_in_authorization_cache() {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "clear-cache",
            json!({}),
            "ClearCache",
            "Accepted",
        )
        .await;
    assert_eq!(payload, json!({}));
}

#[tokio::test]
async fn tc_064_csms_data_transfer_to_a_central_system() {
    let (_csms, mut charger) = booted().await;
    let answer = answered(
        &mut charger,
        "DataTransfer",
        json!({"vendorId": "com.example.octt", "messageId": "probe", "data": "x"}),
    )
    .await;
    assert!(
        ["Rejected", "UnknownMessageId", "UnknownVendorId"]
            .contains(&answer["status"].as_str().unwrap_or_default()),
        "{answer}"
    );
}

#[tokio::test]
async fn tc_073_csms_update_charge_point_password_for_http_basic_authentication() {
    const NEW: &str = "rotated-by-csms-073";
    let csms = Csms::new().await;
    let url = csms.estate.gateway.ocpp_url.clone();
    csms.estate
        .admin
        .post(
            "/api/v1/chargers",
            json!({"id": CP, "scope": "site-a", "password": PASSWORD}),
        )
        .await
        .unwrap()
        .expect(201);
    let mut charger = Charger::connect_with(&url, CP, &[V16], Some((CP, PASSWORD)))
        .await
        .unwrap();
    charger.boot().await.unwrap();
    let request = {
        let ops = csms.estate.ops.clone();
        tokio::spawn(async move {
            ops.post(
                &format!("/api/v1/chargers/{CP}/password"),
                json!({ "password": NEW }),
            )
            .await
        })
    };
    let (call_id, payload) = charger
        .expect_call("ChangeConfiguration", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(payload["key"], "AuthorizationKey");
    let hex: String = NEW.bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(payload["value"], hex.as_str(), "the password, hex encoded");
    assert!(hex.len() <= 40 && (16..=20).contains(&NEW.len()));
    charger
        .reply(&call_id, json!({"status": "Accepted"}))
        .unwrap();
    request.await.unwrap().unwrap().expect(200);
    drop(charger);
    csms.estate
        .admin
        .wait_disconnected(CP, Duration::from_secs(10))
        .await
        .unwrap();
    let mut charger = Charger::connect_with(&url, CP, &[V16], Some((CP, NEW)))
        .await
        .expect("the charger reconnects with the new password");
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
}

#[tokio::test]
async fn tc_085_csms_basic_authentication_valid_username_password_combination() {
    let csms = Csms::new().await;
    let url = csms.estate.gateway.ocpp_url.clone();
    csms.estate
        .admin
        .post(
            "/api/v1/chargers",
            json!({"id": CP, "scope": "site-a", "password": PASSWORD, "security_profile": 1}),
        )
        .await
        .unwrap()
        .expect(201);
    let mut charger = Charger::connect_with(&url, CP, &[V16], Some((CP, PASSWORD)))
        .await
        .expect("valid credentials are taken");
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
}

#[tokio::test]
async fn tc_086_csms_tls_server_side_certificate_valid_certificate() {
    let gateway = TlsGateway::start_with(&[]).await;
    register(&gateway.admin, CP, Some(PASSWORD), 2).await;
    let tls_url = gateway.gateway.ocpp_tls_url().expect("a TLS listener");
    let config = tls::client_config(&gateway.pki.ca_pem(), None).unwrap();
    match tls::charger_over_tls(&tls_url, CP, &[V16], Some((CP, PASSWORD)), config)
        .await
        .unwrap()
    {
        TlsAttempt::Connected(mut charger) => {
            assert_eq!(charger.subprotocol, V16);
            assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
        }
        other => panic!("profile 2 over TLS: {}", other.describe()),
    }
}

#[tokio::test]
async fn tc_087_csms_tls_client_side_certificate_valid_certificate() {
    let gateway = TlsGateway::start_with(&[]).await;
    register(&gateway.admin, CP, None, 3).await;
    let tls_url = gateway.gateway.ocpp_tls_url().expect("a TLS listener");
    let identity = gateway.pki.client(CP, &[], tls::Validity::Current).unwrap();
    let config = tls::client_config(&gateway.pki.ca_pem(), Some(&identity)).unwrap();
    match tls::charger_over_tls(&tls_url, CP, &[V16], None, config)
        .await
        .unwrap()
    {
        TlsAttempt::Connected(mut charger) => {
            assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
        }
        other => panic!("profile 3 with a client certificate: {}", other.describe()),
    }
}

#[tokio::test]
async fn tc_088_csms_websocket_subprotocol_validation() {
    let csms = Csms::new().await;
    csms.estate
        .admin
        .charger(CP, "site-a")
        .await
        .unwrap()
        .expect(201);
    let url = csms.estate.gateway.ocpp_url.clone();
    let mut charger = Charger::connect(&url, CP, &["ocpp1.5", V16]).await.unwrap();
    assert_eq!(charger.subprotocol, V16, "the version both sides speak");
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
}
