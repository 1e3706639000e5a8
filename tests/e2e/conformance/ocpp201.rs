//! OCPP 2.0.1 compliance test cases for a CSMS (OCTT Part 6 `TC_X_nn_CSMS`), as far as Voltgate
//! implements them; `docs/CONFORMANCE.md` lists the rest with the reason.

use std::time::Duration;

use serde_json::{json, Value};
use voltgate_tests::tls::{self, TlsAttempt};
use voltgate_tests::Charger;

use super::{answered, Csms, BLOCKED, CARD_TYPE, EXPIRED, UNKNOWN, VALID};
use crate::security_profiles::{register, TlsGateway};

const V201: &str = "ocpp2.0.1";
const CS: &str = "CS201";
const PASSWORD: &str = "conformance-password-201";
const UPLOAD: &str = "https://logs.example.com/cs201/";

async fn booted() -> (Csms, Charger) {
    let csms = Csms::new().await;
    let charger = csms.charger(CS, V201).await;
    (csms, charger)
}

fn token(card: &str) -> Value {
    json!({"idToken": card, "type": CARD_TYPE})
}

async fn connector_status(charger: &mut Charger, status: &str) {
    let answer = answered(
        charger,
        "StatusNotification",
        json!({"timestamp": "2026-11-25T10:00:00Z", "connectorStatus": status,
               "evseId": 1, "connectorId": 1}),
    )
    .await;
    assert_eq!(answer, json!({}));
}

async fn authorize(charger: &mut Charger, card: &str) -> Value {
    let answer = answered(charger, "Authorize", json!({ "idToken": token(card) })).await;
    answer["idTokenInfo"]["status"].clone()
}

/// A TransactionEvent of transaction `tx`; `extra` adds or overrides fields.
async fn event(charger: &mut Charger, tx: &str, kind: &str, seq: u32, extra: Value) -> Value {
    let mut payload = json!({"eventType": kind, "timestamp": "2026-11-25T10:00:00Z",
        "triggerReason": "Authorized", "seqNo": seq,
        "transactionInfo": {"transactionId": tx}, "evse": {"id": 1, "connectorId": 1}});
    if let (Some(payload), Some(extra)) = (payload.as_object_mut(), extra.as_object()) {
        payload.extend(extra.clone());
    }
    answered(charger, "TransactionEvent", payload).await
}

/// The reusable states Authorized, EVConnectedPreSession and EnergyTransferStarted: a
/// transaction `tx` started with the valid card and charging.
async fn energy_transfer_started(charger: &mut Charger, tx: &str) {
    assert_eq!(authorize(charger, VALID).await, "Accepted");
    connector_status(charger, "Occupied").await;
    let started = event(
        charger,
        tx,
        "Started",
        0,
        json!({"triggerReason": "Authorized", "idToken": token(VALID),
               "transactionInfo": {"transactionId": tx, "chargingState": "EVConnected"}}),
    )
    .await;
    assert_eq!(started["idTokenInfo"]["status"], "Accepted", "{started}");
    let charging = event(
        charger,
        tx,
        "Updated",
        1,
        json!({"triggerReason": "ChargingStateChanged",
               "transactionInfo": {"transactionId": tx, "chargingState": "Charging"}}),
    )
    .await;
    assert_eq!(charging, json!({}));
}

async fn reconnect(csms: &Csms, charger: Charger) -> Charger {
    let id = charger.id.clone();
    drop(charger);
    csms.estate
        .admin
        .wait_disconnected(&id, Duration::from_secs(10))
        .await
        .unwrap();
    let mut again = Charger::connect(&csms.estate.gateway.ocpp_url, &id, &[V201])
        .await
        .unwrap();
    let boot = again.boot().await.unwrap();
    assert_eq!(boot["status"], "Accepted", "{boot}");
    again
}

async fn with_password(csms: &Csms) {
    csms.estate
        .admin
        .post(
            "/api/v1/chargers",
            json!({"id": CS, "scope": "site-a", "password": PASSWORD, "security_profile": 1}),
        )
        .await
        .unwrap()
        .expect(201);
}

#[tokio::test]
async fn tc_a_01_csms_basic_authentication_valid_username_password_combination() {
    let csms = Csms::new().await;
    with_password(&csms).await;
    let mut charger = Charger::connect_with(
        &csms.estate.gateway.ocpp_url,
        CS,
        &[V201],
        Some((CS, PASSWORD)),
    )
    .await
    .expect("valid credentials are taken");
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
    connector_status(&mut charger, "Available").await;
}

#[tokio::test]
async fn tc_a_02_csms_basic_authentication_username_does_not_equal_chargingstationid() {
    let csms = Csms::new().await;
    with_password(&csms).await;
    let user = format!("{CS}Invalid");
    let refusal = Charger::try_connect(
        &csms.estate.gateway.ocpp_url,
        CS,
        &[V201],
        Some((&user, PASSWORD)),
    )
    .await
    .unwrap()
    .err()
    .expect("the upgrade is refused");
    assert_eq!(refusal.status, 401);
}

#[tokio::test]
async fn tc_a_04_csms_tls_server_side_certificate_valid_certificate() {
    let gateway = TlsGateway::start_with(&[]).await;
    register(&gateway.admin, CS, Some(PASSWORD), 2).await;
    match gateway.over_tls(CS, Some((CS, PASSWORD)), None).await {
        TlsAttempt::Connected(mut charger) => {
            assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
        }
        other => panic!("profile 2 over TLS: {}", other.describe()),
    }
}

#[tokio::test]
async fn tc_a_07_csms_tls_client_side_certificate_valid_certificate() {
    let gateway = TlsGateway::start_with(&[]).await;
    register(&gateway.admin, CS, None, 3).await;
    let identity = gateway.pki.client(CS, &[], tls::Validity::Current).unwrap();
    match gateway.over_tls(CS, None, Some(&identity)).await {
        TlsAttempt::Connected(mut charger) => {
            assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
        }
        other => panic!("profile 3 with a client certificate: {}", other.describe()),
    }
}

#[tokio::test]
async fn tc_a_09_csms_update_charging_station_password_for_http_basic_authentication_accepted() {
    const NEW: &str = "Rotated-By-Csms-A09-0123456789";
    let csms = Csms::new().await;
    with_password(&csms).await;
    let url = csms.estate.gateway.ocpp_url.clone();
    let mut charger = Charger::connect_with(&url, CS, &[V201], Some((CS, PASSWORD)))
        .await
        .unwrap();
    charger.boot().await.unwrap();
    let request = {
        let ops = csms.estate.ops.clone();
        tokio::spawn(async move {
            ops.post(
                &format!("/api/v1/chargers/{CS}/password"),
                json!({ "password": NEW }),
            )
            .await
        })
    };
    let (call_id, payload) = charger
        .expect_call("SetVariables", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        payload,
        json!({"setVariableData": [{"component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"}, "attributeValue": NEW}]})
    );
    charger
        .reply(
            &call_id,
            json!({"setVariableResult": [{"attributeStatus": "Accepted",
                "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}]}),
        )
        .unwrap();
    request.await.unwrap().unwrap().expect(200);
    drop(charger);
    csms.estate
        .admin
        .wait_disconnected(CS, Duration::from_secs(10))
        .await
        .unwrap();
    let old = Charger::try_connect(&url, CS, &[V201], Some((CS, PASSWORD)))
        .await
        .unwrap()
        .err()
        .expect("only the new credentials are taken");
    assert_eq!(old.status, 401);
    let mut charger = Charger::connect_with(&url, CS, &[V201], Some((CS, NEW)))
        .await
        .expect("the new password is taken");
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
}

#[tokio::test]
async fn tc_b_01_csms_cold_boot_charging_station_accepted() {
    let csms = Csms::new().await;
    csms.estate
        .admin
        .charger(CS, "site-a")
        .await
        .unwrap()
        .expect(201);
    let mut charger = Charger::connect(&csms.estate.gateway.ocpp_url, CS, &[V201])
        .await
        .unwrap();
    let boot = charger.boot().await.unwrap();
    assert_eq!(boot["status"], "Accepted", "{boot}");
    assert_eq!(boot["interval"], 300);
    assert!(boot["currentTime"].is_string(), "{boot}");
    connector_status(&mut charger, "Available").await;
    let beat = answered(&mut charger, "Heartbeat", json!({})).await;
    assert!(beat["currentTime"].is_string(), "{beat}");
}

/// GetVariables of `keys` (`Component.Variable`), each answered Accepted.
async fn get_variables(keys: &[&str]) {
    let (csms, mut charger) = booted().await;
    let asked: Vec<Value> = keys
        .iter()
        .map(|key| {
            let (component, variable) = key.split_once('.').unwrap();
            json!({"component": {"name": component}, "variable": {"name": variable}})
        })
        .collect();
    let results: Vec<Value> = asked
        .iter()
        .map(|datum| {
            let mut result = datum.clone();
            result["attributeStatus"] = json!("Accepted");
            result["attributeValue"] = json!("1");
            result
        })
        .collect();
    let (payload, reply) = csms
        .operate(
            &mut charger,
            "get-configuration",
            json!({ "keys": keys }),
            "GetVariables",
            json!({ "getVariableResult": results }),
        )
        .await;
    let reply = reply.expect(200);
    assert_eq!(payload, json!({ "getVariableData": asked }));
    assert_eq!(reply.body["response"]["getVariableResult"], json!(results));
}

#[tokio::test]
async fn tc_b_06_csms_get_variables_single_value() {
    get_variables(&["OCPPCommCtrlr.HeartbeatInterval"]).await;
}

#[tokio::test]
async fn tc_b_07_csms_get_variables_multiple_values() {
    get_variables(&[
        "OCPPCommCtrlr.HeartbeatInterval",
        "AuthCtrlr.AuthorizeRemoteStart",
        "TxCtrlr.EVConnectionTimeOut",
    ])
    .await;
}

#[tokio::test]
async fn tc_b_09_csms_set_variables_single_value() {
    let (csms, mut charger) = booted().await;
    let (payload, reply) = csms
        .operate(
            &mut charger,
            "change-configuration",
            json!({"key": "OCPPCommCtrlr.HeartbeatInterval", "value": "600"}),
            "SetVariables",
            json!({"setVariableResult": [{"attributeStatus": "Accepted",
                "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}),
        )
        .await;
    reply.expect(200);
    assert_eq!(
        payload,
        json!({"setVariableData": [{"component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"}, "attributeValue": "600"}]})
    );
}

#[tokio::test]
async fn tc_b_13_csms_get_base_report_fullinventory() {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "get-configuration",
            json!({}),
            "GetBaseReport",
            "Accepted",
        )
        .await;
    assert_eq!(payload["reportBase"], "FullInventory");
    let request_id = payload["requestId"].clone();
    assert!(request_id.is_i64(), "{payload}");
    for (seq, tbc) in [(0, true), (1, false)] {
        let answer = answered(
            &mut charger,
            "NotifyReport",
            json!({"requestId": request_id, "generatedAt": "2026-11-25T10:00:00Z",
                   "seqNo": seq, "tbc": tbc, "reportData": [{
                       "component": {"name": "OCPPCommCtrlr"},
                       "variable": {"name": "HeartbeatInterval"},
                       "variableAttribute": [{"value": "300"}]}]}),
        )
        .await;
        assert_eq!(answer, json!({}));
    }
}

async fn reset(csms: &Csms, charger: &mut Charger, kind: &str, wire: &str, answer: &str) {
    let payload = csms
        .operate_status(charger, "reset", json!({ "type": kind }), "Reset", answer)
        .await;
    assert_eq!(payload, json!({ "type": wire }));
}

#[tokio::test]
async fn tc_b_20_csms_reset_charging_station_without_ongoing_transaction_onidle() {
    let (csms, mut charger) = booted().await;
    reset(&csms, &mut charger, "soft", "OnIdle", "Accepted").await;
    let mut charger = reconnect(&csms, charger).await;
    connector_status(&mut charger, "Available").await;
}

#[tokio::test]
async fn tc_b_21_csms_reset_charging_station_with_ongoing_transaction_onidle() {
    let (csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-b21").await;
    reset(&csms, &mut charger, "soft", "OnIdle", "Scheduled").await;
    let ended = event(
        &mut charger,
        "tx-b21",
        "Ended",
        2,
        json!({"triggerReason": "StopAuthorized", "idToken": token(VALID),
               "transactionInfo": {"transactionId": "tx-b21", "stoppedReason": "Local"}}),
    )
    .await;
    assert_eq!(ended["idTokenInfo"]["status"], "Accepted", "{ended}");
    let mut charger = reconnect(&csms, charger).await;
    connector_status(&mut charger, "Available").await;
}

#[tokio::test]
async fn tc_b_22_csms_reset_charging_station_with_ongoing_transaction_immediate() {
    let (csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-b22").await;
    reset(&csms, &mut charger, "hard", "Immediate", "Accepted").await;
    let ended = event(
        &mut charger,
        "tx-b22",
        "Ended",
        2,
        json!({"triggerReason": "ResetCommand",
               "transactionInfo": {"transactionId": "tx-b22", "chargingState": "EVConnected",
                                   "stoppedReason": "ImmediateReset"}}),
    )
    .await;
    assert_eq!(ended, json!({}));
    let mut charger = reconnect(&csms, charger).await;
    connector_status(&mut charger, "Occupied").await;
}

#[tokio::test]
async fn tc_c_02_csms_local_start_transaction_authorization_invalid() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, UNKNOWN).await, "Invalid");
}

#[tokio::test]
async fn tc_c_06_csms_local_start_transaction_authorization_blocked() {
    let (_csms, mut charger) = booted().await;
    let status = authorize(&mut charger, BLOCKED).await;
    assert!(status == "Blocked" || status == "Invalid", "{status}");
}

#[tokio::test]
async fn tc_c_07_csms_local_start_transaction_authorization_expired() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, EXPIRED).await, "Expired");
}

#[tokio::test]
async fn tc_e_04_csms_local_start_transaction_authorization_first_success() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-e04").await;
}

#[tokio::test]
async fn tc_e_09_csms_start_transaction_options_evconnected() {
    let (_csms, mut charger) = booted().await;
    connector_status(&mut charger, "Occupied").await;
    let answer = answered(
        &mut charger,
        "NotifyEvent",
        json!({"generatedAt": "2026-11-25T10:00:00Z", "seqNo": 0, "eventData": [{
            "eventId": 1, "timestamp": "2026-11-25T10:00:00Z", "trigger": "Delta",
            "actualValue": "Occupied", "eventNotificationType": "HardWiredNotification",
            "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
            "variable": {"name": "AvailabilityState"}}]}),
    )
    .await;
    assert_eq!(answer, json!({}));
    let started = event(
        &mut charger,
        "tx-e09",
        "Started",
        0,
        json!({"triggerReason": "CablePluggedIn",
               "transactionInfo": {"transactionId": "tx-e09", "chargingState": "EVConnected"}}),
    )
    .await;
    assert_eq!(started, json!({}));
}

#[tokio::test]
async fn tc_e_12_csms_start_transaction_options_parkingbayoccupied() {
    let (_csms, mut charger) = booted().await;
    let started = event(
        &mut charger,
        "tx-e12",
        "Started",
        0,
        json!({"triggerReason": "EVDetected"}),
    )
    .await;
    assert_eq!(started, json!({}));
}

async fn remote_start(csms: &Csms, charger: &mut Charger) -> i64 {
    let payload = csms
        .operate_status(
            charger,
            "remote-start",
            json!({"connector": 1, "id_token": VALID}),
            "RequestStartTransaction",
            "Accepted",
        )
        .await;
    assert_eq!(payload["idToken"], token(VALID), "the card's stored type");
    assert_eq!(payload["evseId"], 1);
    payload["remoteStartId"]
        .as_i64()
        .unwrap_or_else(|| panic!("no remoteStartId: {payload}"))
}

#[tokio::test]
async fn tc_f_01_csms_remote_start_transaction_cable_plugin_first() {
    let (csms, mut charger) = booted().await;
    connector_status(&mut charger, "Occupied").await;
    let started = event(
        &mut charger,
        "tx-f01",
        "Started",
        0,
        json!({"triggerReason": "CablePluggedIn",
               "transactionInfo": {"transactionId": "tx-f01", "chargingState": "EVConnected"}}),
    )
    .await;
    assert_eq!(started, json!({}));
    let remote_start_id = remote_start(&csms, &mut charger).await;
    let updated = event(
        &mut charger,
        "tx-f01",
        "Updated",
        1,
        json!({"triggerReason": "RemoteStart", "idToken": token(VALID),
               "transactionInfo": {"transactionId": "tx-f01", "remoteStartId": remote_start_id,
                                   "chargingState": "Charging"}}),
    )
    .await;
    assert_eq!(updated["idTokenInfo"]["status"], "Accepted", "{updated}");
}

#[tokio::test]
async fn tc_f_02_csms_remote_start_transaction_remote_start_first() {
    let (csms, mut charger) = booted().await;
    let remote_start_id = remote_start(&csms, &mut charger).await;
    let started = event(
        &mut charger,
        "tx-f02",
        "Started",
        0,
        json!({"triggerReason": "RemoteStart", "idToken": token(VALID),
               "transactionInfo": {"transactionId": "tx-f02", "remoteStartId": remote_start_id}}),
    )
    .await;
    assert_eq!(started["idTokenInfo"]["status"], "Accepted", "{started}");
    connector_status(&mut charger, "Occupied").await;
}

#[tokio::test]
async fn tc_f_06_csms_remote_unlock_connector_without_ongoing_transaction_accepted() {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "unlock",
            json!({"connector": 1}),
            "UnlockConnector",
            "Unlocked",
        )
        .await;
    assert_eq!(payload, json!({"evseId": 1, "connectorId": 1}));
}

#[tokio::test]
async fn tc_f_12_csms_trigger_message_metervalues_all_evse() {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "trigger-message",
            json!({"message": "MeterValues"}),
            "TriggerMessage",
            "Accepted",
        )
        .await;
    assert_eq!(payload, json!({"requestedMessage": "MeterValues"}));
    let answer = answered(
        &mut charger,
        "MeterValues",
        json!({"evseId": 1, "meterValue": [{"timestamp": "2026-11-25T10:00:00Z",
            "sampledValue": [{"value": 1200.0, "context": "Trigger"}]}]}),
    )
    .await;
    assert_eq!(answer, json!({}));
}

async fn availability(available: bool, connector: Option<u32>) -> Value {
    let (csms, mut charger) = booted().await;
    let mut body = json!({ "available": available });
    if let Some(connector) = connector {
        body["connector"] = json!(connector);
    }
    let payload = csms
        .operate_status(
            &mut charger,
            "change-availability",
            body,
            "ChangeAvailability",
            "Accepted",
        )
        .await;
    connector_status(
        &mut charger,
        if available {
            "Available"
        } else {
            "Unavailable"
        },
    )
    .await;
    payload
}

#[tokio::test]
async fn tc_g_03_csms_change_availability_evse_operative_to_inoperative() {
    let payload = availability(false, Some(1)).await;
    assert_eq!(
        payload,
        json!({"operationalStatus": "Inoperative", "evse": {"id": 1}})
    );
}

#[tokio::test]
async fn tc_g_04_csms_change_availability_evse_inoperative_to_operative() {
    let payload = availability(true, Some(1)).await;
    assert_eq!(
        payload,
        json!({"operationalStatus": "Operative", "evse": {"id": 1}})
    );
}

#[tokio::test]
async fn tc_g_05_csms_change_availability_charging_station_operative_to_inoperative() {
    let payload = availability(false, None).await;
    assert_eq!(payload, json!({"operationalStatus": "Inoperative"}));
}

#[tokio::test]
async fn tc_g_06_csms_change_availability_charging_station_inoperative_to_operative() {
    let payload = availability(true, None).await;
    assert_eq!(payload, json!({"operationalStatus": "Operative"}));
}

#[tokio::test]
async fn tc_j_01_csms_clock_aligned_meter_values_no_transaction_ongoing() {
    let (_csms, mut charger) = booted().await;
    for (n, evse) in [0, 1, 0].into_iter().enumerate() {
        let answer = answered(
            &mut charger,
            "MeterValues",
            json!({"evseId": evse, "meterValue": [{"timestamp": format!("2026-11-25T10:0{n}:00Z"),
                "sampledValue": [{"value": 1000.0 + n as f64, "context": "Sample.Clock",
                                  "measurand": "Energy.Active.Import.Register"}]}]}),
        )
        .await;
        assert_eq!(answer, json!({}));
    }
}

#[tokio::test]
async fn tc_j_09_csms_sampled_meter_values_eventtype_updated() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-j09").await;
    for seq in 2..5 {
        let answer = event(
            &mut charger,
            "tx-j09",
            "Updated",
            seq,
            json!({"triggerReason": "MeterValuePeriodic", "meterValue": [{
                "timestamp": format!("2026-11-25T10:0{seq}:00Z"),
                "sampledValue": [{"value": 100.0 * f64::from(seq), "context": "Sample.Periodic",
                                  "measurand": "Energy.Active.Import.Register"}]}]}),
        )
        .await;
        assert_eq!(answer, json!({}));
    }
}

#[tokio::test]
async fn tc_n_34_csms_retrieve_log_information_rejected() {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(
            &mut charger,
            "get-log",
            json!({ "location": UPLOAD }),
            "GetLog",
            "Rejected",
        )
        .await;
    assert_eq!(payload["log"]["remoteLocation"], UPLOAD);
    assert!(payload["requestId"].is_i64(), "{payload}");
}

#[tokio::test]
async fn tc_p_02_csms_data_transfer_to_the_csms() {
    let (_csms, mut charger) = booted().await;
    let answer = answered(
        &mut charger,
        "DataTransfer",
        json!({"vendorId": "com.example.octt", "messageId": "probe", "data": {"x": 1}}),
    )
    .await;
    assert!(
        ["Rejected", "UnknownMessageId", "UnknownVendorId"]
            .contains(&answer["status"].as_str().unwrap_or_default()),
        "{answer}"
    );
}

#[tokio::test]
async fn tc_p_03_csms_customdata_receive_custom_data() {
    let (_csms, mut charger) = booted().await;
    let custom = json!({"vendorId": "com.example.octt", "note": "custom"});
    let answer = answered(
        &mut charger,
        "StatusNotification",
        json!({"timestamp": "2026-11-25T10:00:00Z", "connectorStatus": "Occupied",
               "evseId": 1, "connectorId": 1, "customData": custom}),
    )
    .await;
    assert_eq!(answer, json!({}));
    let answer = event(
        &mut charger,
        "tx-p03",
        "Started",
        0,
        json!({"triggerReason": "CablePluggedIn", "customData": custom,
               "transactionInfo": {"transactionId": "tx-p03", "customData": custom}}),
    )
    .await;
    assert_eq!(answer, json!({}));
}

/// `send-local-list` to a charger of `scope` that accepts it: a Full list. Returns its payload.
async fn send_full_list(csms: &Csms, charger: &mut Charger) -> Value {
    let payload = csms
        .operate_status(
            charger,
            "send-local-list",
            json!({}),
            "SendLocalList",
            "Accepted",
        )
        .await;
    assert_eq!(payload["updateType"], "Full", "{payload}");
    assert!(payload["versionNumber"].as_i64().unwrap() > 0, "{payload}");
    payload
}

#[tokio::test]
async fn tc_d_01_csms_send_local_authorization_list_full() {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CS, "site-a", V201).await;
    let payload = send_full_list(&csms, &mut charger).await;
    assert_eq!(
        payload["localAuthorizationList"],
        json!([
            {"idToken": token(BLOCKED), "idTokenInfo": {"status": "Blocked"}},
            {"idToken": token(EXPIRED), "idTokenInfo": {"status": "Expired"}},
            {"idToken": token(VALID), "idTokenInfo": {"status": "Accepted"}},
        ])
    );
}

/// The next SendLocalList after a Full list of version `initial`: one Differential message
/// with a higher version, accepted. Returns its list.
async fn differential(charger: &mut Charger, initial: &Value) -> Value {
    let (call, payload) = charger
        .expect_call("SendLocalList", Duration::from_secs(10))
        .await
        .unwrap();
    charger.reply(&call, json!({"status": "Accepted"})).unwrap();
    assert_eq!(payload["updateType"], "Differential", "{payload}");
    assert!(
        payload["versionNumber"].as_i64() > initial["versionNumber"].as_i64(),
        "{payload}"
    );
    payload["localAuthorizationList"].clone()
}

/// The manual action "send a Differential update" is, in Voltgate, a change of what the
/// engine lets charge there: a new card for a driver of the site goes out as just that entry.
#[tokio::test]
async fn tc_d_02_csms_send_local_authorization_list_differential_update() {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CS, "site-a", V201).await;
    let full = send_full_list(&csms, &mut charger).await;
    csms.estate
        .admin
        .post(
            "/api/v1/principals/dana/id-tokens",
            json!({"id_token": "100000C09", "type": CARD_TYPE}),
        )
        .await
        .unwrap()
        .expect(201);
    assert_eq!(
        differential(&mut charger, &full).await,
        json!([{"idToken": token("100000C09"), "idTokenInfo": {"status": "Accepted"}}])
    );
}

/// "Differential remove": a card deleted from its driver leaves the list as an entry without
/// idTokenInfo.
#[tokio::test]
async fn tc_d_03_csms_send_local_authorization_list_differential_remove() {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CS, "site-a", V201).await;
    let full = send_full_list(&csms, &mut charger).await;
    csms.estate
        .admin
        .delete(&format!("/api/v1/id-tokens/{VALID}"), json!({}))
        .await
        .unwrap()
        .expect(204);
    assert_eq!(
        differential(&mut charger, &full).await,
        json!([{"idToken": token(VALID)}])
    );
    let (call, _) = charger
        .expect_call("ClearCache", Duration::from_secs(10))
        .await
        .unwrap();
    charger.reply(&call, json!({"status": "Accepted"})).unwrap();
}

/// A charger where no card may charge (site-b, sent by its site admin) gets a Full list
/// without entries.
#[tokio::test]
async fn tc_d_04_csms_send_local_authorization_list_full_with_empty_list() {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CS, "site-b", V201).await;
    let request = {
        let operator = csms.estate.outsider.clone();
        tokio::spawn(async move { operator.command(CS, "send-local-list", json!({})).await })
    };
    let (call, payload) = charger
        .expect_call("SendLocalList", Duration::from_secs(10))
        .await
        .unwrap();
    charger.reply(&call, json!({"status": "Accepted"})).unwrap();
    let reply = request.await.unwrap().unwrap().expect(200);
    assert_eq!(reply.body["status"], "Accepted", "{}", reply.text);
    assert_eq!(payload["updateType"], "Full", "{payload}");
    assert!(payload["versionNumber"].as_i64().unwrap() > 0, "{payload}");
    assert!(payload.get("localAuthorizationList").is_none(), "{payload}");
}

async fn get_local_list_version(version: i64) {
    let csms = Csms::with_lists().await;
    let mut charger = csms.unsynced_charger(CS, "site-a", V201).await;
    let (payload, reply) = csms
        .operate(
            &mut charger,
            "get-local-list-version",
            json!({}),
            "GetLocalListVersion",
            json!({ "versionNumber": version }),
        )
        .await;
    assert_eq!(payload, json!({}));
    let reply = reply.expect(200);
    assert_eq!(
        reply.body["response"]["versionNumber"], version,
        "{}",
        reply.text
    );
    assert_eq!(
        reply.body["status"],
        format!("version {version}"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn tc_d_08_csms_get_local_list_version_success() {
    get_local_list_version(3).await;
}

#[tokio::test]
async fn tc_d_09_csms_get_local_list_version_no_list_available() {
    get_local_list_version(0).await;
}

/// The tool's "notifies the CSMS about the state of the connector": a StatusNotification and
/// the NotifyEvent of the connector's AvailabilityState, each answered with an empty response.
async fn connector_state(charger: &mut Charger, status: &str) {
    connector_status(charger, status).await;
    let answer = answered(
        charger,
        "NotifyEvent",
        json!({"generatedAt": "2026-11-25T10:00:00Z", "seqNo": 0, "eventData": [{
            "eventId": 1, "timestamp": "2026-11-25T10:00:00Z", "trigger": "Delta",
            "actualValue": status, "eventNotificationType": "HardWiredNotification",
            "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
            "variable": {"name": "AvailabilityState"}}]}),
    )
    .await;
    assert_eq!(answer, json!({}));
}

/// A TransactionEvent with `extra`, answered with an empty response (no idToken was sent, so
/// the CSMS has nothing to say about one).
async fn plain_event(charger: &mut Charger, tx: &str, kind: &str, seq: u32, extra: Value) {
    let answer = event(charger, tx, kind, seq, extra).await;
    assert_eq!(answer, json!({}), "{kind} {seq}");
}

fn tx_info(tx: &str, fields: Value) -> Value {
    let mut info = json!({ "transactionId": tx });
    if let (Some(info), Some(fields)) = (info.as_object_mut(), fields.as_object()) {
        info.extend(fields.clone());
    }
    info
}

/// Reusable state Authorized with TxStartPoint Authorized: the valid card is authorised and the
/// transaction starts with it; both answers say Accepted.
async fn authorized(charger: &mut Charger, tx: &str) {
    assert_eq!(authorize(charger, VALID).await, "Accepted");
    let started = event(
        charger,
        tx,
        "Started",
        0,
        json!({"triggerReason": "Authorized", "idToken": token(VALID)}),
    )
    .await;
    assert_eq!(started["idTokenInfo"]["status"], "Accepted", "{started}");
}

/// Reusable state EVConnectedPreSession of a transaction already started (seqNo `seq`).
async fn ev_connected_pre_session(charger: &mut Charger, tx: &str, seq: u32, extra: Value) {
    connector_state(charger, "Occupied").await;
    let mut fields = json!({"triggerReason": "CablePluggedIn",
        "transactionInfo": tx_info(tx, json!({"chargingState": "EVConnected"}))});
    if let (Some(fields), Some(extra)) = (fields.as_object_mut(), extra.as_object()) {
        fields.extend(extra.clone());
    }
    plain_event(charger, tx, "Updated", seq, fields).await;
}

/// Reusable state EnergyTransferStarted of a transaction already started (seqNo `seq`).
async fn charging(charger: &mut Charger, tx: &str, seq: u32) {
    plain_event(
        charger,
        tx,
        "Updated",
        seq,
        json!({"triggerReason": "ChargingStateChanged",
               "transactionInfo": tx_info(tx, json!({"chargingState": "Charging"}))}),
    )
    .await;
}

/// Reusable state EnergyTransferSuspended after EnergyTransferStarted (seqNo 2).
async fn energy_transfer_suspended(charger: &mut Charger, tx: &str) {
    energy_transfer_started(charger, tx).await;
    plain_event(
        charger,
        tx,
        "Updated",
        2,
        json!({"triggerReason": "ChargingStateChanged",
               "transactionInfo": tx_info(tx, json!({"chargingState": "SuspendedEV"}))}),
    )
    .await;
}

/// Reusable state StopAuthorized: the driver presents the valid card again to stop; the
/// Authorize and the Updated event both say Accepted.
async fn stop_authorized(charger: &mut Charger, tx: &str, seq: u32) {
    assert_eq!(authorize(charger, VALID).await, "Accepted");
    let stopping = event(
        charger,
        tx,
        "Updated",
        seq,
        json!({"triggerReason": "StopAuthorized", "idToken": token(VALID),
               "transactionInfo": tx_info(tx, json!({"chargingState": "EVConnected"}))}),
    )
    .await;
    assert_eq!(stopping["idTokenInfo"]["status"], "Accepted", "{stopping}");
}

/// Reusable state EVDisconnected: the connector is Available and the transaction ends on the
/// lost EV communication (seqNo `seq`); `meter` goes into the Ended event.
async fn ev_disconnected(charger: &mut Charger, tx: &str, seq: u32, meter: Option<Value>) {
    connector_state(charger, "Available").await;
    let mut ended = json!({"triggerReason": "EVCommunicationLost",
        "transactionInfo": tx_info(tx, json!({"chargingState": "Idle",
                                             "stoppedReason": "EVDisconnected"}))});
    if let Some(meter) = meter {
        ended["meterValue"] = meter;
    }
    plain_event(charger, tx, "Ended", seq, ended).await;
}

/// An ongoing transaction's Ended event with `trigger` and `stopped_reason`.
async fn ended(charger: &mut Charger, tx: &str, seq: u32, trigger: &str, info: Value) {
    plain_event(
        charger,
        tx,
        "Ended",
        seq,
        json!({"triggerReason": trigger, "transactionInfo": tx_info(tx, info)}),
    )
    .await;
}

/// One signed meter reading as a meter that signs its data reports it.
fn signed(context: &str, value: f64) -> Value {
    json!({"value": value, "context": context, "measurand": "Energy.Active.Import.Register",
           "signedMeterValue": {"signedMeterData": "AQIDBAUGBwgJCgsMDQ4PEA==",
                                "signingMethod": "ECDSA-secp256r1-SHA256",
                                "encodingMethod": "OCMF",
                                "publicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}})
}

fn sampled(context: &str, value: f64) -> Value {
    json!({"value": value, "context": context, "measurand": "Energy.Active.Import.Register"})
}

fn meter(at: &str, samples: Vec<Value>) -> Value {
    json!([{ "timestamp": at, "sampledValue": samples }])
}

#[tokio::test]
async fn tc_e_01_csms_start_transaction_options_powerpathclosed() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    connector_state(&mut charger, "Occupied").await;
    let started = event(
        &mut charger,
        "tx-e01",
        "Started",
        0,
        json!({"triggerReason": "ChargingStateChanged", "idToken": token(VALID),
               "transactionInfo": tx_info("tx-e01", json!({"chargingState": "SuspendedEVSE"}))}),
    )
    .await;
    assert_eq!(started["idTokenInfo"]["status"], "Accepted", "{started}");
    charging(&mut charger, "tx-e01", 1).await;
}

#[tokio::test]
async fn tc_e_02_csms_start_transaction_options_energytransfer() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    connector_state(&mut charger, "Occupied").await;
    let started = event(
        &mut charger,
        "tx-e02",
        "Started",
        0,
        json!({"triggerReason": "ChargingStateChanged", "idToken": token(VALID),
               "transactionInfo": tx_info("tx-e02", json!({"chargingState": "Charging"}))}),
    )
    .await;
    assert_eq!(started["idTokenInfo"]["status"], "Accepted", "{started}");
}

#[tokio::test]
async fn tc_e_03_csms_local_start_transaction_cable_plugin_first_success() {
    let (_csms, mut charger) = booted().await;
    connector_state(&mut charger, "Occupied").await;
    plain_event(
        &mut charger,
        "tx-e03",
        "Started",
        0,
        json!({"triggerReason": "CablePluggedIn",
               "transactionInfo": tx_info("tx-e03", json!({"chargingState": "EVConnected"}))}),
    )
    .await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    let authorized = event(
        &mut charger,
        "tx-e03",
        "Updated",
        1,
        json!({"triggerReason": "Authorized", "idToken": token(VALID)}),
    )
    .await;
    assert_eq!(
        authorized["idTokenInfo"]["status"], "Accepted",
        "{authorized}"
    );
    charging(&mut charger, "tx-e03", 2).await;
}

#[tokio::test]
async fn tc_e_07_csms_stop_transaction_options_powerpathclosed_local_stop() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-e07").await;
    ended(
        &mut charger,
        "tx-e07",
        2,
        "StopAuthorized",
        json!({"stoppedReason": "Local"}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_08_csms_stop_transaction_options_energytransfer_stopped_stopauthorized() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-e08").await;
    stop_authorized(&mut charger, "tx-e08", 2).await;
    ended(
        &mut charger,
        "tx-e08",
        3,
        "ChargingStateChanged",
        json!({"chargingState": "EVConnected", "stoppedReason": "Local"}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_10_csms_start_transaction_options_authorized_local() {
    let (_csms, mut charger) = booted().await;
    authorized(&mut charger, "tx-e10").await;
}

#[tokio::test]
async fn tc_e_11_csms_start_transaction_options_datasigned() {
    let (_csms, mut charger) = booted().await;
    assert_eq!(authorize(&mut charger, VALID).await, "Accepted");
    connector_state(&mut charger, "Occupied").await;
    let started = event(
        &mut charger,
        "tx-e11",
        "Started",
        0,
        json!({"triggerReason": "SignedDataReceived", "idToken": token(VALID),
               "transactionInfo": tx_info("tx-e11", json!({"chargingState": "SuspendedEVSE"})),
               "meterValue": meter("2026-11-25T10:00:00Z",
                                   vec![signed("Transaction.Begin", 0.0)])}),
    )
    .await;
    assert_eq!(started["idTokenInfo"]["status"], "Accepted", "{started}");
    charging(&mut charger, "tx-e11", 1).await;
}

#[tokio::test]
async fn tc_e_14_csms_stop_transaction_options_evdisconnected_charging_station_side() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-e14").await;
    stop_authorized(&mut charger, "tx-e14", 2).await;
    ev_disconnected(&mut charger, "tx-e14", 3, None).await;
}

#[tokio::test]
async fn tc_e_15_csms_stop_transaction_options_stopauthorized_local() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-e15").await;
    stop_authorized(&mut charger, "tx-e15", 2).await;
    ended(
        &mut charger,
        "tx-e15",
        3,
        "StopAuthorized",
        json!({"stoppedReason": "Local"}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_16_csms_stop_transaction_options_deauthorized_invalid_idtoken() {
    let (_csms, mut charger) = booted().await;
    connector_state(&mut charger, "Occupied").await;
    let started = event(
        &mut charger,
        "tx-e16",
        "Started",
        0,
        json!({"triggerReason": "Authorized", "idToken": token(UNKNOWN)}),
    )
    .await;
    let status = started["idTokenInfo"]["status"]
        .as_str()
        .unwrap_or_default();
    assert!(
        status == "Invalid" || status == "Unknown",
        "an unknown card is refused: {started}"
    );
    ended(
        &mut charger,
        "tx-e16",
        1,
        "Deauthorized",
        json!({"stoppedReason": "DeAuthorized"}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_17_csms_stop_transaction_options_deauthorized_ev_side_disconnect() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_suspended(&mut charger, "tx-e17").await;
    ended(
        &mut charger,
        "tx-e17",
        3,
        "EVCommunicationLost",
        json!({"chargingState": "Idle", "stoppedReason": "EVDisconnected"}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_19_csms_stop_transaction_options_parkingbayunoccupied() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-e19").await;
    stop_authorized(&mut charger, "tx-e19", 2).await;
    connector_state(&mut charger, "Available").await;
    plain_event(
        &mut charger,
        "tx-e19",
        "Updated",
        3,
        json!({"triggerReason": "EVCommunicationLost",
               "transactionInfo": tx_info("tx-e19", json!({"chargingState": "Idle"}))}),
    )
    .await;
    ended(
        &mut charger,
        "tx-e19",
        4,
        "EVDeparted",
        json!({"stoppedReason": "Local"}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_20_csms_stop_transaction_options_evdisconnected_ev_side_able_to_charge_iec_61851_1_ev(
) {
    let (_csms, mut charger) = booted().await;
    energy_transfer_suspended(&mut charger, "tx-e20").await;
    ev_disconnected(&mut charger, "tx-e20", 3, None).await;
}

#[tokio::test]
async fn tc_e_21_csms_stop_transaction_options_stopauthorized_remote() {
    let (csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-e21").await;
    let payload = csms
        .operate_status(
            &mut charger,
            "remote-stop",
            json!({"transaction_id": "tx-e21"}),
            "RequestStopTransaction",
            "Accepted",
        )
        .await;
    assert_eq!(payload, json!({"transactionId": "tx-e21"}));
    ended(
        &mut charger,
        "tx-e21",
        2,
        "RemoteStop",
        json!({"stoppedReason": "Remote"}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_22_csms_stop_transaction_options_energytransfer_stopped_suspendedev() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-e22").await;
    ended(
        &mut charger,
        "tx-e22",
        2,
        "ChargingStateChanged",
        json!({"chargingState": "SuspendedEV", "stoppedReason": "StoppedByEV"}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_26_csms_disconnect_cable_on_ev_side_suspend_transaction() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_suspended(&mut charger, "tx-e26").await;
    plain_event(
        &mut charger,
        "tx-e26",
        "Updated",
        3,
        json!({"triggerReason": "EVCommunicationLost",
               "transactionInfo": tx_info("tx-e26", json!({"chargingState": "Idle"}))}),
    )
    .await;
    connector_state(&mut charger, "Available").await;
    ev_connected_pre_session(&mut charger, "tx-e26", 4, json!({})).await;
    charging(&mut charger, "tx-e26", 5).await;
}

#[tokio::test]
async fn tc_e_38_csms_local_start_transaction_ev_not_ready() {
    let (_csms, mut charger) = booted().await;
    authorized(&mut charger, "tx-e38").await;
    ev_connected_pre_session(&mut charger, "tx-e38", 1, json!({})).await;
    plain_event(
        &mut charger,
        "tx-e38",
        "Updated",
        2,
        json!({"triggerReason": "ChargingStateChanged",
               "transactionInfo": tx_info("tx-e38", json!({"chargingState": "SuspendedEV"}))}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_39_csms_stop_transaction_options_deauthorized_timeout() {
    let (_csms, mut charger) = booted().await;
    authorized(&mut charger, "tx-e39").await;
    ended(
        &mut charger,
        "tx-e39",
        1,
        "EVConnectTimeout",
        json!({"stoppedReason": "Timeout"}),
    )
    .await;
}

#[tokio::test]
async fn tc_e_53_csms_reset_sequence_number_csms_accepting_seqno_0_at_start_of_transaction() {
    let (_csms, mut charger) = booted().await;
    for tx in ["tx-e53-a", "tx-e53-b"] {
        energy_transfer_started(&mut charger, tx).await;
        ev_disconnected(&mut charger, tx, 2, None).await;
    }
}

/// The operator's remote start, as the tool answers it when it has no transaction yet: the
/// request names the stored card, and the Started event that follows is Accepted.
async fn remote_start_first(csms: &Csms, charger: &mut Charger, tx: &str) {
    let remote_start_id = remote_start(csms, charger).await;
    let started = event(
        charger,
        tx,
        "Started",
        0,
        json!({"triggerReason": "RemoteStart", "idToken": token(VALID),
               "transactionInfo": tx_info(tx, json!({"remoteStartId": remote_start_id}))}),
    )
    .await;
    assert_eq!(started["idTokenInfo"]["status"], "Accepted", "{started}");
}

#[tokio::test]
async fn tc_f_03_csms_remote_start_transaction_remote_start_first_authorizeremotestart_is_false() {
    let (csms, mut charger) = booted().await;
    remote_start_first(&csms, &mut charger, "tx-f03").await;
    ev_connected_pre_session(&mut charger, "tx-f03", 1, json!({})).await;
    charging(&mut charger, "tx-f03", 2).await;
}

#[tokio::test]
async fn tc_f_04_csms_remote_start_transaction_remote_start_first_cable_plugin_timeout() {
    let (csms, mut charger) = booted().await;
    remote_start_first(&csms, &mut charger, "tx-f04").await;
    plain_event(
        &mut charger,
        "tx-f04",
        "Updated",
        1,
        json!({"triggerReason": "EVConnectTimeout"}),
    )
    .await;
}

/// The operator's `trigger-message` of `message` (on `connector`), answered `status`; returns
/// the TriggerMessage payload.
async fn trigger(
    csms: &Csms,
    charger: &mut Charger,
    message: &str,
    connector: Option<u32>,
    status: &str,
) -> Value {
    let mut body = json!({ "message": message });
    if let Some(connector) = connector {
        body["connector"] = json!(connector);
    }
    csms.operate_status(charger, "trigger-message", body, "TriggerMessage", status)
        .await
}

#[tokio::test]
async fn tc_f_11_csms_trigger_message_metervalues_specific_evse() {
    let (csms, mut charger) = booted().await;
    let payload = trigger(&csms, &mut charger, "MeterValues", Some(1), "Accepted").await;
    assert_eq!(
        payload,
        json!({"requestedMessage": "MeterValues", "evse": {"id": 1}})
    );
    let answer = answered(
        &mut charger,
        "MeterValues",
        json!({"evseId": 1, "meterValue": meter("2026-11-25T10:00:00Z",
                                                vec![sampled("Trigger", 1200.0)])}),
    )
    .await;
    assert_eq!(answer, json!({}));
}

/// A triggered TransactionEvent of an ongoing, charging transaction.
async fn triggered_event(charger: &mut Charger, tx: &str, seq: u32) {
    plain_event(
        charger,
        tx,
        "Updated",
        seq,
        json!({"triggerReason": "Trigger",
               "transactionInfo": tx_info(tx, json!({"chargingState": "Charging"})),
               "meterValue": meter("2026-11-25T10:05:00Z", vec![sampled("Trigger", 1500.0)])}),
    )
    .await;
}

#[tokio::test]
async fn tc_f_13_csms_trigger_message_transactionevent_specific_evse() {
    let (csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-f13").await;
    let payload = trigger(&csms, &mut charger, "TransactionEvent", Some(1), "Accepted").await;
    assert_eq!(
        payload,
        json!({"requestedMessage": "TransactionEvent", "evse": {"id": 1}})
    );
    triggered_event(&mut charger, "tx-f13", 2).await;
}

#[tokio::test]
async fn tc_f_14_csms_trigger_message_transactionevent_all_evse() {
    let (csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-f14").await;
    let payload = trigger(&csms, &mut charger, "TransactionEvent", None, "Accepted").await;
    assert_eq!(payload, json!({"requestedMessage": "TransactionEvent"}));
    triggered_event(&mut charger, "tx-f14", 2).await;
}

/// A triggered notification `action` with status Idle, answered with an empty response.
async fn triggered_idle(message: &str) {
    let (csms, mut charger) = booted().await;
    let payload = trigger(&csms, &mut charger, message, None, "Accepted").await;
    assert_eq!(payload, json!({ "requestedMessage": message }));
    let answer = answered(&mut charger, message, json!({"status": "Idle"})).await;
    assert_eq!(answer, json!({}));
}

#[tokio::test]
async fn tc_f_15_csms_trigger_message_logstatusnotification_idle() {
    triggered_idle("LogStatusNotification").await;
}

#[tokio::test]
async fn tc_f_18_csms_trigger_message_firmwarestatusnotification_idle() {
    triggered_idle("FirmwareStatusNotification").await;
}

#[tokio::test]
async fn tc_f_20_csms_trigger_message_heartbeat() {
    let (csms, mut charger) = booted().await;
    let payload = trigger(&csms, &mut charger, "Heartbeat", None, "Accepted").await;
    assert_eq!(payload, json!({"requestedMessage": "Heartbeat"}));
    let beat = answered(&mut charger, "Heartbeat", json!({})).await;
    assert!(beat["currentTime"].is_string(), "{beat}");
}

/// TriggerMessage StatusNotification for EVSE 1 (F06.FR.13: the CSMS names the EVSE), answered
/// by the connector's state `status`.
async fn triggered_status(status: &str) {
    let (csms, mut charger) = booted().await;
    if status == "Occupied" {
        connector_state(&mut charger, status).await;
    }
    let payload = trigger(
        &csms,
        &mut charger,
        "StatusNotification",
        Some(1),
        "Accepted",
    )
    .await;
    assert_eq!(payload["requestedMessage"], "StatusNotification");
    assert_eq!(payload["evse"]["id"], 1, "{payload}");
    connector_state(&mut charger, status).await;
}

#[tokio::test]
async fn tc_f_23_csms_trigger_message_statusnotification_specific_evse_available() {
    triggered_status("Available").await;
}

#[tokio::test]
async fn tc_f_24_csms_trigger_message_statusnotification_specific_evse_occupied() {
    triggered_status("Occupied").await;
}

#[tokio::test]
async fn tc_f_27_csms_trigger_message_notimplemented() {
    let (csms, mut charger) = booted().await;
    trigger(&csms, &mut charger, "Heartbeat", None, "NotImplemented").await;
    let beat = answered(&mut charger, "Heartbeat", json!({})).await;
    assert!(beat["currentTime"].is_string(), "still served: {beat}");
}

/// The authorisation-cache cases: with TxStartPoint ParkingBayOccupancy the transaction has
/// started and the EV is connected when the station authorises `card` from its cache.
async fn cached(card: &str, tx: &str) -> Value {
    let (_csms, mut charger) = booted().await;
    plain_event(
        &mut charger,
        tx,
        "Started",
        0,
        json!({"triggerReason": "EVDetected"}),
    )
    .await;
    ev_connected_pre_session(&mut charger, tx, 1, json!({})).await;
    let answer = event(
        &mut charger,
        tx,
        "Updated",
        2,
        json!({"triggerReason": "Authorized", "idToken": token(card)}),
    )
    .await;
    answer["idTokenInfo"]["status"].clone()
}

#[tokio::test]
async fn tc_c_08_csms_authorization_through_authorization_cache_accepted() {
    assert_eq!(cached(VALID, "tx-c08").await, "Accepted");
}

#[tokio::test]
async fn tc_c_20_csms_authorization_through_authorization_cache_invalid() {
    let status = cached(UNKNOWN, "tx-c20").await;
    assert!(status == "Invalid" || status == "Unknown", "{status}");
}

async fn clear_cache(status: &str) {
    let (csms, mut charger) = booted().await;
    let payload = csms
        .operate_status(&mut charger, "clear-cache", json!({}), "ClearCache", status)
        .await;
    assert_eq!(payload, json!({}));
}

#[tokio::test]
async fn tc_c_37_csms_clear_authorization_data_in_authorization_cache_accepted() {
    clear_cache("Accepted").await;
}

#[tokio::test]
async fn tc_c_38_csms_clear_authorization_data_in_authorization_cache_rejected() {
    clear_cache("Rejected").await;
}

/// An availability change during a transaction: Scheduled, then the session ends as the tool's
/// reusable states StopAuthorized, EVConnectedPostSession and EVDisconnected, after which the
/// connector reports Unavailable.
async fn availability_during_transaction(connector: Option<u32>, tx: &str) -> Value {
    let (csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, tx).await;
    let mut body = json!({ "available": false });
    if let Some(connector) = connector {
        body["connector"] = json!(connector);
    }
    let payload = csms
        .operate_status(
            &mut charger,
            "change-availability",
            body,
            "ChangeAvailability",
            "Scheduled",
        )
        .await;
    stop_authorized(&mut charger, tx, 2).await;
    plain_event(
        &mut charger,
        tx,
        "Updated",
        3,
        json!({"triggerReason": "ChargingStateChanged",
               "transactionInfo": tx_info(tx, json!({"chargingState": "EVConnected"}))}),
    )
    .await;
    ev_disconnected(&mut charger, tx, 4, None).await;
    connector_state(&mut charger, "Unavailable").await;
    payload
}

#[tokio::test]
async fn tc_g_11_csms_change_availability_evse_with_ongoing_transaction() {
    let payload = availability_during_transaction(Some(1), "tx-g11").await;
    assert_eq!(
        payload,
        json!({"operationalStatus": "Inoperative", "evse": {"id": 1}})
    );
}

#[tokio::test]
async fn tc_g_14_csms_change_availability_charging_station_with_ongoing_transaction() {
    let payload = availability_during_transaction(None, "tx-g14").await;
    assert_eq!(payload, json!({"operationalStatus": "Inoperative"}));
}

#[tokio::test]
async fn tc_g_20_csms_connector_status_notification_lock_failure() {
    let (_csms, mut charger) = booted().await;
    let answer = answered(
        &mut charger,
        "NotifyEvent",
        json!({"generatedAt": "2026-11-25T10:00:00Z", "seqNo": 0, "eventData": [{
            "eventId": 7, "timestamp": "2026-11-25T10:00:00Z", "trigger": "Delta",
            "actualValue": "true", "eventNotificationType": "HardWiredNotification",
            "component": {"name": "ConnectorPlugRetentionLock",
                          "evse": {"id": 1, "connectorId": 1}},
            "variable": {"name": "Problem"}}]}),
    )
    .await;
    assert_eq!(answer, json!({}));
}

#[tokio::test]
async fn tc_j_02_csms_clock_aligned_meter_values_transaction_ongoing() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-j02").await;
    let answer = answered(
        &mut charger,
        "MeterValues",
        json!({"evseId": 0, "meterValue": meter("2026-11-25T10:15:00Z",
                                                vec![sampled("Sample.Clock", 5000.0)])}),
    )
    .await;
    assert_eq!(answer, json!({}));
    for seq in 2..4 {
        plain_event(
            &mut charger,
            "tx-j02",
            "Updated",
            seq,
            json!({"triggerReason": "MeterValueClock",
                   "meterValue": meter(&format!("2026-11-25T10:{}:00Z", 15 * seq),
                                       vec![sampled("Sample.Clock", 100.0 * f64::from(seq))])}),
        )
        .await;
    }
}

#[tokio::test]
async fn tc_j_03_csms_clock_aligned_meter_values_eventtype_ended() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-j03").await;
    let readings = meter(
        "2026-11-25T10:15:00Z",
        vec![
            sampled("Sample.Clock", 300.0),
            sampled("Transaction.End", 320.0),
        ],
    );
    ev_disconnected(&mut charger, "tx-j03", 2, Some(readings)).await;
}

#[tokio::test]
async fn tc_j_04_csms_clock_aligned_meter_values_signed() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-j04").await;
    let readings = meter(
        "2026-11-25T10:15:00Z",
        vec![
            signed("Sample.Clock", 300.0),
            signed("Transaction.End", 320.0),
        ],
    );
    ev_disconnected(&mut charger, "tx-j04", 2, Some(readings)).await;
}

#[tokio::test]
async fn tc_j_07_csms_sampled_meter_values_eventtype_started_evse_known() {
    let (_csms, mut charger) = booted().await;
    connector_state(&mut charger, "Occupied").await;
    plain_event(
        &mut charger,
        "tx-j07",
        "Started",
        0,
        json!({"triggerReason": "CablePluggedIn",
               "transactionInfo": tx_info("tx-j07", json!({"chargingState": "EVConnected"})),
               "meterValue": meter("2026-11-25T10:00:00Z",
                                   vec![sampled("Transaction.Begin", 0.0)])}),
    )
    .await;
}

#[tokio::test]
async fn tc_j_08_csms_sampled_meter_values_context_transaction_begin_evse_not_known() {
    let (_csms, mut charger) = booted().await;
    authorized(&mut charger, "tx-j08").await;
    ev_connected_pre_session(
        &mut charger,
        "tx-j08",
        1,
        json!({"meterValue": meter("2026-11-25T10:00:00Z",
                                   vec![sampled("Transaction.Begin", 0.0)])}),
    )
    .await;
    charging(&mut charger, "tx-j08", 2).await;
}

#[tokio::test]
async fn tc_j_10_csms_sampled_meter_values_eventtype_ended() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-j10").await;
    let readings = meter(
        "2026-11-25T10:15:00Z",
        vec![
            sampled("Sample.Periodic", 300.0),
            sampled("Transaction.End", 320.0),
        ],
    );
    ev_disconnected(&mut charger, "tx-j10", 2, Some(readings)).await;
}

#[tokio::test]
async fn tc_j_11_csms_sampled_meter_values_signed() {
    let (_csms, mut charger) = booted().await;
    energy_transfer_started(&mut charger, "tx-j11").await;
    let readings = meter(
        "2026-11-25T10:15:00Z",
        vec![
            signed("Sample.Periodic", 300.0),
            signed("Transaction.End", 320.0),
        ],
    );
    ev_disconnected(&mut charger, "tx-j11", 2, Some(readings)).await;
}

/// A log upload the operator asks for with `get-log`: the GetLog asks for the diagnostics log
/// and the station's notifications of `statuses` for its requestId are answered. Returns the
/// requestId.
async fn log_upload(csms: &Csms, charger: &mut Charger, answer: &str, statuses: &[&str]) -> i64 {
    let payload = csms
        .operate_status(
            charger,
            "get-log",
            json!({ "location": UPLOAD }),
            "GetLog",
            answer,
        )
        .await;
    assert_eq!(payload["logType"], "DiagnosticsLog", "{payload}");
    assert_eq!(payload["log"]["remoteLocation"], UPLOAD);
    let request_id = payload["requestId"]
        .as_i64()
        .unwrap_or_else(|| panic!("no requestId: {payload}"));
    log_statuses(charger, request_id, statuses).await;
    request_id
}

async fn log_statuses(charger: &mut Charger, request_id: i64, statuses: &[&str]) {
    for status in statuses {
        let answer = answered(
            charger,
            "LogStatusNotification",
            json!({"status": status, "requestId": request_id}),
        )
        .await;
        assert_eq!(answer, json!({}), "{status}");
    }
}

#[tokio::test]
async fn tc_n_25_csms_retrieve_log_information_diagnostics_log_success() {
    let (csms, mut charger) = booted().await;
    log_upload(&csms, &mut charger, "Accepted", &["Uploading", "Uploaded"]).await;
}

#[tokio::test]
async fn tc_n_36_csms_retrieve_log_information_second_request() {
    let (csms, mut charger) = booted().await;
    let first = log_upload(&csms, &mut charger, "Accepted", &["Uploading"]).await;
    let second = log_upload(&csms, &mut charger, "AcceptedCanceled", &[]).await;
    assert_ne!(first, second, "each GetLog has its own requestId");
    log_statuses(&mut charger, first, &["AcceptedCanceled"]).await;
    log_statuses(&mut charger, second, &["Uploading", "Uploaded"]).await;
}

#[tokio::test]
async fn tc_a_03_csms_basic_authentication_invalid_password() {
    let csms = Csms::new().await;
    with_password(&csms).await;
    let url = csms.estate.gateway.ocpp_url.clone();
    for credentials in [None, Some((CS, "not-the-password-of-cs201"))] {
        let refusal = Charger::try_connect(&url, CS, &[V201], credentials)
            .await
            .unwrap()
            .err()
            .unwrap_or_else(|| panic!("{credentials:?} was taken"));
        assert_eq!(refusal.status, 401, "{credentials:?}");
    }
}

#[tokio::test]
async fn tc_a_08_csms_tls_client_side_certificate_invalid_certificate() {
    let gateway = TlsGateway::start_with(&[]).await;
    register(&gateway.admin, CS, None, 3).await;
    let strange_ca = tls::Pki::new("an unknown CA").unwrap();
    let invalid = strange_ca.client(CS, &[], tls::Validity::Current).unwrap();
    let attempt = gateway.over_tls(CS, None, Some(&invalid)).await;
    assert!(
        matches!(attempt, TlsAttempt::TlsFailed(_)),
        "a certificate of an unknown CA ends the TLS handshake: {}",
        attempt.describe()
    );
    let valid = gateway.pki.client(CS, &[], tls::Validity::Current).unwrap();
    match gateway.over_tls(CS, None, Some(&valid)).await {
        TlsAttempt::Connected(mut charger) => {
            assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
            connector_state(&mut charger, "Available").await;
        }
        other => panic!("profile 3 with a valid certificate: {}", other.describe()),
    }
}

#[tokio::test]
async fn tc_a_10_csms_update_charging_station_password_for_http_basic_authentication_rejected() {
    let csms = Csms::new().await;
    with_password(&csms).await;
    let url = csms.estate.gateway.ocpp_url.clone();
    let mut charger = Charger::connect_with(&url, CS, &[V201], Some((CS, PASSWORD)))
        .await
        .unwrap();
    charger.boot().await.unwrap();
    let request = {
        let ops = csms.estate.ops.clone();
        tokio::spawn(async move {
            ops.post(
                &format!("/api/v1/chargers/{CS}/password"),
                json!({ "password": "Refused-By-Station-A10-0123456789" }),
            )
            .await
        })
    };
    let (call_id, payload) = charger
        .expect_call("SetVariables", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        payload["setVariableData"][0]["component"]["name"],
        "SecurityCtrlr"
    );
    assert_eq!(
        payload["setVariableData"][0]["variable"]["name"],
        "BasicAuthPassword"
    );
    charger
        .reply(
            &call_id,
            json!({"setVariableResult": [{"attributeStatus": "Rejected",
                "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}]}),
        )
        .unwrap();
    let reply = request.await.unwrap().unwrap().expect(200);
    assert_eq!(reply.body["status"], "Rejected", "{}", reply.text);
    assert_eq!(reply.body["password_changed"], false, "{}", reply.text);
    drop(charger);
    csms.estate
        .admin
        .wait_disconnected(CS, Duration::from_secs(10))
        .await
        .unwrap();
    let mut charger = Charger::connect_with(&url, CS, &[V201], Some((CS, PASSWORD)))
        .await
        .expect("the old password is still taken");
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
    connector_state(&mut charger, "Available").await;
}

#[tokio::test]
async fn tc_b_58_csms_websocket_subprotocol_validation() {
    let csms = Csms::new().await;
    csms.estate
        .admin
        .charger(CS, "site-a")
        .await
        .unwrap()
        .expect(201);
    let url = csms.estate.gateway.ocpp_url.clone();
    let refusal = Charger::try_connect(&url, CS, &["ocpp0.1"], None)
        .await
        .unwrap()
        .err()
        .expect("an upgrade offering only an unknown subprotocol is refused");
    assert!((400..500).contains(&refusal.status), "{}", refusal.status);
    let mut charger = Charger::connect(&url, CS, &["ocpp0.1", V201])
        .await
        .unwrap();
    assert_eq!(charger.subprotocol, V201, "the version both sides speak");
    assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
}

/// Two cards of driver `dana` in one group, as the GroupId cases configure them.
const GROUP: &str = "FLEET-C";
const GROUP_FIRST: &str = "100000C31";
const GROUP_SECOND: &str = "100000C32";

async fn grouped() -> (Csms, Charger) {
    let (csms, mut charger) = booted().await;
    for card in [GROUP_FIRST, GROUP_SECOND] {
        csms.estate
            .admin
            .post(
                "/api/v1/principals/dana/id-tokens",
                json!({"id_token": card, "type": CARD_TYPE, "group": GROUP}),
            )
            .await
            .unwrap()
            .expect(201);
    }
    connector_state(&mut charger, "Occupied").await;
    (csms, charger)
}

/// An answer's idTokenInfo must be Accepted and name the cards' group.
fn accepted_in_group(answer: &Value) {
    assert_eq!(answer["idTokenInfo"]["status"], "Accepted", "{answer}");
    assert_eq!(
        answer["idTokenInfo"]["groupIdToken"]["idToken"], GROUP,
        "{answer}"
    );
}

/// The GroupId cases: the first card starts the transaction, the second (same group) stops it;
/// with `authorize` the station asks the CSMS about each card before using it.
async fn group_session(tx: &str, authorize: bool) {
    let (_csms, mut charger) = grouped().await;
    for (seq, card, trigger) in [
        (0, GROUP_FIRST, "Authorized"),
        (2, GROUP_SECOND, "StopAuthorized"),
    ] {
        if authorize {
            let answer =
                answered(&mut charger, "Authorize", json!({ "idToken": token(card) })).await;
            accepted_in_group(&answer);
        }
        let kind = if seq == 0 { "Started" } else { "Updated" };
        let answer = event(
            &mut charger,
            tx,
            kind,
            seq,
            json!({"triggerReason": trigger, "idToken": token(card),
                   "transactionInfo": tx_info(tx, json!({"chargingState": "EVConnected"}))}),
        )
        .await;
        accepted_in_group(&answer);
        if seq == 0 {
            charging(&mut charger, tx, 1).await;
        }
    }
    plain_event(
        &mut charger,
        tx,
        "Updated",
        3,
        json!({"triggerReason": "ChargingStateChanged",
               "transactionInfo": tx_info(tx, json!({"chargingState": "EVConnected"}))}),
    )
    .await;
    ev_disconnected(&mut charger, tx, 4, None).await;
}

#[tokio::test]
async fn tc_c_39_csms_authorization_by_groupid_success() {
    group_session("tx-c39", true).await;
}

#[tokio::test]
async fn tc_c_40_csms_authorization_by_groupid_success_with_local_authorization_list() {
    group_session("tx-c40", false).await;
}

#[tokio::test]
async fn tc_c_43_csms_authorization_by_groupid_invalid_status_with_local_authorization_list() {
    let (_csms, mut charger) = grouped().await;
    let started = event(
        &mut charger,
        "tx-c43",
        "Started",
        0,
        json!({"triggerReason": "Authorized", "idToken": token(GROUP_FIRST),
               "transactionInfo": tx_info("tx-c43", json!({"chargingState": "EVConnected"}))}),
    )
    .await;
    accepted_in_group(&started);
    charging(&mut charger, "tx-c43", 1).await;
    let answer = answered(
        &mut charger,
        "Authorize",
        json!({ "idToken": token(GROUP_SECOND) }),
    )
    .await;
    accepted_in_group(&answer);
    let stopping = event(
        &mut charger,
        "tx-c43",
        "Updated",
        2,
        json!({"triggerReason": "StopAuthorized", "idToken": token(GROUP_SECOND)}),
    )
    .await;
    accepted_in_group(&stopping);
    plain_event(
        &mut charger,
        "tx-c43",
        "Updated",
        3,
        json!({"triggerReason": "ChargingStateChanged",
               "transactionInfo": tx_info("tx-c43", json!({"chargingState": "EVConnected"}))}),
    )
    .await;
    ev_disconnected(&mut charger, "tx-c43", 4, None).await;
}

/// A monitoring alert the station raises on its own (`datum` completes one eventData entry);
/// the CSMS answers with an empty NotifyEventResponse (N07.FR.03).
async fn alert(datum: Value) {
    let (_csms, mut charger) = booted().await;
    let mut event = json!({"eventId": 21, "timestamp": "2026-11-25T10:00:00Z",
        "trigger": "Alerting", "actualValue": "81", "eventNotificationType": "CustomMonitor",
        "component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}});
    if let (Some(event), Some(datum)) = (event.as_object_mut(), datum.as_object()) {
        event.extend(datum.clone());
    }
    let answer = answered(
        &mut charger,
        "NotifyEvent",
        json!({"generatedAt": "2026-11-25T10:00:00Z", "seqNo": 0, "eventData": [event]}),
    )
    .await;
    assert_eq!(answer, json!({}));
}

#[tokio::test]
async fn tc_n_21_csms_alert_event_hardwiredmonitor() {
    alert(json!({"eventNotificationType": "HardWiredMonitor"})).await;
}

#[tokio::test]
async fn tc_n_48_csms_alert_event_variable_monitoring_on_write_only() {
    alert(
        json!({"actualValue": "", "component": {"name": "SecurityCtrlr"},
                 "variable": {"name": "BasicAuthPassword"}}),
    )
    .await;
}

#[tokio::test]
async fn tc_n_49_csms_alert_event_lowerthreshold_upperthreshold_cleared_after_reboot() {
    alert(json!({"cleared": true})).await;
}

#[tokio::test]
async fn tc_n_50_csms_alert_event_periodic_triggered() {
    alert(json!({"trigger": "Periodic", "eventNotificationType": "CustomMonitor"})).await;
}

/// A ClientHello offering only `version` (no supported_versions extension), with what a
/// TLS 1.2 server needs to go on (ECDHE suites, a group, signature algorithms).
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut hello = version.to_vec();
    hello.extend([0x5a; 32]);
    hello.push(0);
    hello.extend([0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]);
    hello.extend([0x01, 0x00]);
    let extensions = [
        &[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d][..],
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
        &[
            0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x08, 0x04, 0x04, 0x03, 0x04, 0x01,
        ],
        &[0x00, 0x17, 0x00, 0x00],
    ]
    .concat();
    hello.extend(u16::try_from(extensions.len()).unwrap().to_be_bytes());
    hello.extend(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend(u16::try_from(hello.len()).unwrap().to_be_bytes());
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend(handshake);
    record
}

/// The first record header and two bytes the gateway answers `hello` with.
async fn first_answer(address: &str, hello: &[u8]) -> [u8; 7] {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(hello).await.unwrap();
    let mut answer = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut answer))
        .await
        .expect("the gateway answers the hello")
        .expect("a TLS record");
    answer
}

#[tokio::test]
async fn tc_a_06_csms_tls_server_side_certificate_tls_version_too_low() {
    let gateway = TlsGateway::start_with(&[]).await;
    register(&gateway.admin, CS, Some(PASSWORD), 2).await;
    let url = gateway.gateway.ocpp_tls_url().unwrap();
    let address = url
        .strip_prefix("wss://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("not a wss URL: {url}"));
    let tls_1_2 = first_answer(address, &client_hello([0x03, 0x03])).await;
    assert_eq!(
        (tls_1_2[0], tls_1_2[5]),
        (0x16, 0x02),
        "the same hello offering TLS 1.2 gets a ServerHello: {tls_1_2:?}"
    );
    let tls_1_1 = first_answer(address, &client_hello([0x03, 0x02])).await;
    assert_eq!(
        (tls_1_1[0], tls_1_1[5]),
        (0x15, 2),
        "TLS 1.1 ends in a fatal alert: {tls_1_1:?}"
    );
    match gateway.over_tls(CS, Some((CS, PASSWORD)), None).await {
        TlsAttempt::Connected(mut charger) => {
            assert_eq!(charger.boot().await.unwrap()["status"], "Accepted");
            connector_state(&mut charger, "Available").await;
        }
        other => panic!("TLS 1.2 or later: {}", other.describe()),
    }
}
