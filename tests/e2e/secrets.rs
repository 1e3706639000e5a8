//! No secret leaves the gateway: after a full run (admin token, issued API tokens, charger
//! passwords, right and wrong, given and generated, forged bearer tokens) the process output in both log formats at
//! debug level, every API answer seen, the audit log, `/metrics` and the raw database files
//! are searched for every secret. Id tokens are identifiers, not secrets, and are not searched.

use std::time::Duration;

use serde_json::json;
use voltgate_tests::api::Reply;
use voltgate_tests::{Api, Charger, Gateway, GatewayOptions};

/// Runs everything a deployment does with secrets and returns (secrets, every answer text).
async fn full_run(gateway: &Gateway) -> (Vec<String>, Vec<String>) {
    let admin = gateway.api();
    let mut secrets = vec![gateway.admin_token.clone()];
    let mut answers = Vec::new();
    keep(
        &mut answers,
        admin.scope("site-a", "site", "root").await.unwrap(),
    )
    .expect(201);
    keep(
        &mut answers,
        admin.principal("ops", "operator", "site-a").await.unwrap(),
    )
    .expect(201);
    keep(
        &mut answers,
        admin.assign("ops", "site-admin", "site-a").await.unwrap(),
    )
    .expect(201);
    let ops_token = admin.token_for("ops").await.unwrap();
    let second_token = admin.token_for("ops").await.unwrap();
    secrets.push(ops_token.clone());
    secrets.push(second_token.clone());

    let password = "Sup3r-Secret-Charger-Pw-0042";
    let wrong_password = "Wr0ng-Guess-Charger-Pw-9917";
    secrets.push(password.to_string());
    secrets.push(wrong_password.to_string());
    keep(
        &mut answers,
        admin
            .post(
                "/api/v1/chargers",
                json!({"id": "CP-SECRET", "scope": "site-a", "password": password}),
            )
            .await
            .unwrap(),
    )
    .expect(201);
    // A password that breaks the rules is refused without being echoed.
    let too_long = "Way-Too-Long-Password-That-Breaks-Rules-0123456789";
    secrets.push(too_long.to_string());
    keep(
        &mut answers,
        admin
            .post(
                "/api/v1/chargers",
                json!({"id": "CP-SECRET-2", "scope": "site-a", "password": too_long}),
            )
            .await
            .unwrap(),
    )
    .expect(422);
    keep(
        &mut answers,
        admin
            .post(
                "/api/v1/principals/ops/id-tokens",
                json!({"id_token": "ID-TAG-OPS-1"}),
            )
            .await
            .unwrap(),
    )
    .expect(201);

    // The charger: a wrong password (refused), then the right one.
    let refused = Charger::try_connect(
        &gateway.ocpp_url,
        "CP-SECRET",
        &["ocpp1.6"],
        Some(("CP-SECRET", wrong_password)),
    )
    .await
    .unwrap();
    match refused {
        Err(refusal) => {
            assert_eq!(refusal.status, 401);
            answers.push(refusal.body);
        }
        Ok(_) => panic!("a wrong charger password was accepted"),
    }
    let mut charger = Charger::connect_with(
        &gateway.ocpp_url,
        "CP-SECRET",
        &["ocpp1.6"],
        Some(("CP-SECRET", password)),
    )
    .await
    .unwrap();
    charger.boot().await.unwrap();
    charger
        .call_ok("Authorize", json!({"idTag": "ID-TAG-OPS-1"}))
        .await
        .unwrap();

    // The operator works, then tries forged and broken credentials.
    let ops = gateway.api_as(&ops_token);
    keep(&mut answers, ops.get("/api/v1/chargers").await.unwrap()).expect(200);
    let command = {
        let ops = ops.clone();
        tokio::spawn(async move { ops.command("CP-SECRET", "clear-cache", json!({})).await })
    };
    let (id, _, _) = charger
        .next_call(Duration::from_secs(5))
        .await
        .expect("command");
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    keep(&mut answers, command.await.unwrap().unwrap()).expect(200);

    // Generated passwords: one shown once at registration (that answer is not kept), one made
    // by a rotation and never shown; the charger is told it (1.6: in hex, also a secret).
    let shown = admin
        .post(
            "/api/v1/chargers",
            json!({"id": "CP-SECRET-3", "scope": "site-a", "generate_password": true}),
        )
        .await
        .unwrap()
        .expect(201);
    secrets.push(shown.body["password"].as_str().unwrap().to_string());
    let rotation = {
        let ops = ops.clone();
        tokio::spawn(async move {
            ops.post("/api/v1/chargers/CP-SECRET/password", json!({}))
                .await
        })
    };
    let (id, action, payload) = charger
        .next_call(Duration::from_secs(5))
        .await
        .expect("rotation");
    assert_eq!(action, "ChangeConfiguration");
    let key = payload["value"].as_str().unwrap().to_string();
    let rotated: String = (0..key.len())
        .step_by(2)
        .map(|i| char::from(u8::from_str_radix(&key[i..i + 2], 16).unwrap()))
        .collect();
    secrets.push(key);
    secrets.push(rotated.clone());
    charger.reply(&id, json!({"status": "Accepted"})).unwrap();
    keep(&mut answers, rotation.await.unwrap().unwrap()).expect(200);
    drop(charger);
    Charger::connect_with(
        &gateway.ocpp_url,
        "CP-SECRET",
        &["ocpp1.6"],
        Some(("CP-SECRET", &rotated)),
    )
    .await
    .expect("the generated password works");
    let forged = format!("{}x", &ops_token[..ops_token.len() - 1]);
    secrets.push(forged.clone());
    let forged_api = Api::new(&gateway.api_url, &forged);
    keep(
        &mut answers,
        forged_api.get("/api/v1/chargers").await.unwrap(),
    )
    .expect(401);
    keep(
        &mut answers,
        forged_api
            .command("CP-SECRET", "reset", json!({"type": "soft"}))
            .await
            .unwrap(),
    )
    .expect(401);
    keep(
        &mut answers,
        admin.get("/api/v1/audit?limit=1000").await.unwrap(),
    )
    .expect(200);
    keep(&mut answers, admin.get("/api/v1/principals").await.unwrap()).expect(200);
    keep(
        &mut answers,
        admin.get("/api/v1/chargers/CP-SECRET").await.unwrap(),
    )
    .expect(200);
    // A body that repeats a secret in an unknown field must not be echoed back.
    keep(
        &mut answers,
        admin
            .post(
                "/api/v1/scopes",
                json!({"id": "site-z", "kind": "site", "parent": "root", "token": ops_token}),
            )
            .await
            .unwrap(),
    )
    .expect(422);
    let metrics = crate::metrics(&gateway.api_url).await;
    answers.push(metrics);
    // Let the last log lines reach the output.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (secrets, answers)
}

fn keep(answers: &mut Vec<String>, reply: Reply) -> Reply {
    answers.push(reply.text.clone());
    reply
}

fn assert_absent(secrets: &[String], place: &str, haystack: &str) {
    for secret in secrets {
        assert!(
            !haystack.contains(secret.as_str()),
            "a secret ({}…) appears in {place}",
            &secret[..6]
        );
    }
}

async fn no_secret_anywhere(log_format: &str) {
    let gateway = Gateway::start(
        GatewayOptions::preset("connect")
            .arg("--log-format")
            .arg(log_format)
            .arg("--log")
            .arg("debug"),
    )
    .unwrap();
    let (secrets, answers) = full_run(&gateway).await;
    let output = gateway.output();
    assert!(
        output.lines().count() > 20,
        "too little output to judge: {output}"
    );
    // Controls: the places searched do hold the run's non-secret traces.
    assert!(
        output.contains("CP-SECRET"),
        "the log does not cover the run"
    );
    assert!(
        answers.iter().any(|a| a.contains("command.clear-cache")),
        "the audit answer is missing"
    );
    assert_absent(&secrets, &format!("the {log_format} log"), &output);
    for answer in &answers {
        assert_absent(&secrets, "an API answer", answer);
    }
    // The issued tokens were shown exactly once, in their own answers, which are not kept above.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(gateway.workdir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push(path);
        }
    }
    assert!(
        files.iter().any(|p| p.ends_with("voltgate.db")),
        "no database file in {files:?}"
    );
    let mut database_text = String::new();
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert_absent(&secrets, &path.display().to_string(), &text);
        database_text.push_str(&text);
    }
    assert!(
        database_text.contains("CP-SECRET"),
        "the database files hold no trace of the run"
    );
}

#[tokio::test]
async fn no_secret_in_text_logs_answers_audit_metrics_or_database() {
    no_secret_anywhere("text").await;
}

#[tokio::test]
async fn no_secret_in_json_logs_answers_audit_metrics_or_database() {
    no_secret_anywhere("json").await;
}
