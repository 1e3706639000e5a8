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
