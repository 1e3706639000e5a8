//! Operator access: API tokens are listed without secrets, revoked at once, refused once
//! expired; id tokens are listed, changed and deleted under the same rules as other principal
//! management; a deleted principal takes its tokens, id tokens and roles with it.

use std::time::Duration;

use serde_json::json;
use voltgate_tests::Api;

use crate::Estate;

#[tokio::test]
async fn api_tokens_are_listed_without_secrets_and_revoked_at_once() {
    let estate = Estate::new(&[]).await;
    let admin = &estate.admin;
    let first = admin
        .post("/api/v1/principals/ops/tokens", json!({}))
        .await
        .unwrap()
        .expect(201);
    let second = admin
        .post(
            "/api/v1/principals/ops/tokens",
            json!({"expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await
        .unwrap()
        .expect(201);
    let first_secret = first.body["token"].as_str().unwrap().to_owned();
    let second_secret = second.body["token"].as_str().unwrap().to_owned();

    // The Estate already issued one token for ops; ops may list its own.
    let listed = estate
        .ops
        .get("/api/v1/principals/ops/tokens")
        .await
        .unwrap()
        .expect(200);
    let tokens = listed.body["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 3, "{}", listed.text);
    assert!(
        !listed.text.contains(&first_secret) && !listed.text.contains("vg_"),
        "no secret is ever listed: {}",
        listed.text
    );
    assert!(tokens.iter().all(|t| t.get("hash").is_none()));
    let second_view = tokens
        .iter()
        .find(|t| t["id"] == second.body["id"])
        .expect("the second token is listed");
    assert_eq!(second_view["expires_at"], "2099-01-01T00:00:00Z");
    assert_eq!(second_view["expired"], false);

    // Others need principal.view: the watcher may only view chargers, the outsider cannot
    // even see ops.
    estate
        .watcher
        .get("/api/v1/principals/ops/tokens")
        .await
        .unwrap()
        .expect(403);
    estate
        .outsider
        .get("/api/v1/principals/ops/tokens")
        .await
        .unwrap()
        .expect(404);
    estate
        .outsider
        .delete(
            &format!(
                "/api/v1/principals/ops/tokens/{}",
                first.body["id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await
        .unwrap()
        .expect(404);

    let as_first = estate.gateway.api_as(&first_secret);
    as_first.get("/api/v1/chargers").await.unwrap().expect(200);
    estate
        .ops
        .delete(
            &format!(
                "/api/v1/principals/ops/tokens/{}",
                first.body["id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await
        .unwrap()
        .expect(204);
    as_first.get("/api/v1/chargers").await.unwrap().expect(401);
    estate
        .gateway
        .api_as(&second_secret)
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(200);
    admin
        .delete(
            &format!(
                "/api/v1/principals/ops/tokens/{}",
                first.body["id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await
        .unwrap()
        .expect(404);
    // A token id of another principal is not found under this one.
    admin
        .delete(
            &format!(
                "/api/v1/principals/watcher/tokens/{}",
                second.body["id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await
        .unwrap()
        .expect(404);
    let after = admin
        .get("/api/v1/principals/ops/tokens")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(after.body["tokens"].as_array().unwrap().len(), 2);

    let audit = admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    assert!(
        audit.body["entries"].as_array().unwrap().iter().any(|e| {
            e["principal"] == "ops" && e["action"] == "principal.edit" && e["outcome"] == "ok"
        }),
        "the revocation is audited"
    );
}

#[tokio::test]
async fn an_expired_api_token_is_refused() {
    let estate = Estate::new(&[]).await;
    // Far enough ahead that the first use lands before it even on a loaded machine; the
    // refusal is checked once the wall clock has passed it, however long that took.
    let lifetime = Duration::from_secs(8);
    let expires = std::time::SystemTime::now() + lifetime;
    let soon = time_in(lifetime);
    let issued = estate
        .admin
        .post("/api/v1/principals/ops/tokens", json!({"expires_at": soon}))
        .await
        .unwrap()
        .expect(201);
    let api = estate
        .gateway
        .api_as(issued.body["token"].as_str().unwrap());
    api.get("/api/v1/chargers").await.unwrap().expect(200);
    // `expires_at` is cut to whole seconds, at or before `expires`; a second more covers the
    // gateway reading the clock a little behind this test.
    let past = expires + Duration::from_secs(1);
    if let Ok(left) = past.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
    api.get("/api/v1/chargers").await.unwrap().expect(401);
    let listed = estate
        .admin
        .get("/api/v1/principals/ops/tokens")
        .await
        .unwrap()
        .expect(200);
    let view = listed.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == issued.body["id"])
        .cloned()
        .unwrap();
    assert_eq!(view["expired"], true);
}

/// RFC 3339 for now + `ahead`, computed from the system clock.
fn time_in(ahead: Duration) -> String {
    let at = std::time::SystemTime::now() + ahead;
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap());
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A role with `view-drivers` for the watcher on site-a: it sees drivers but may not edit them.
async fn let_the_watcher_view_drivers(admin: &Api) {
    admin
        .post(
            "/api/v1/roles",
            json!({"id": "driver-viewer", "permissions": ["view-drivers"]}),
        )
        .await
        .unwrap()
        .expect(201);
    admin
        .assign("watcher", "driver-viewer", "site-a")
        .await
        .unwrap()
        .expect(201);
}

#[tokio::test]
async fn id_tokens_are_listed_changed_and_deleted_by_those_who_may() {
    let estate = Estate::new(&[]).await;
    let admin = &estate.admin;
    admin
        .principal("dora", "driver", "site-a")
        .await
        .unwrap()
        .expect(201);
    // The watcher may also view drivers, but not edit their cards.
    let_the_watcher_view_drivers(admin).await;
    for token in ["DORA-2", "DORA-1"] {
        admin.id_token("dora", token).await.unwrap().expect(201);
    }
    let listed = estate
        .ops
        .get("/api/v1/principals/dora/id-tokens")
        .await
        .unwrap()
        .expect(200);
    let tokens: Vec<&str> = listed.body["id_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id_token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, ["DORA-1", "DORA-2"]);

    let changed = estate
        .ops
        .patch(
            "/api/v1/id-tokens/DORA-1",
            json!({"expires_at": "2099-01-01T00:00:00Z", "group": "FLEET"}),
        )
        .await
        .unwrap()
        .expect(200);
    assert_eq!(changed.body["expires_at"], "2099-01-01T00:00:00Z");
    assert_eq!(changed.body["group"], "FLEET");
    assert_eq!(changed.body["blocked"], false);
    let cleared = estate
        .ops
        .patch("/api/v1/id-tokens/DORA-1", json!({"group": null}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(cleared.body["group"], serde_json::Value::Null);
    assert_eq!(
        cleared.body["expires_at"], "2099-01-01T00:00:00Z",
        "an absent field is kept"
    );
    estate
        .ops
        .patch("/api/v1/id-tokens/DORA-1", json!({"expires_at": "soon"}))
        .await
        .unwrap()
        .expect(422);
    estate
        .ops
        .patch("/api/v1/id-tokens/DORA-1", json!({"colour": "red"}))
        .await
        .unwrap()
        .expect(422);

    let blocked = estate
        .ops
        .post("/api/v1/id-tokens/DORA-2/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(blocked.body["blocked"], true);

    estate
        .watcher
        .get("/api/v1/principals/dora/id-tokens")
        .await
        .unwrap()
        .expect(200);
    // The watcher has no id-token.edit; the outsider cannot see dora at all, so her token
    // looks exactly like one that does not exist.
    estate
        .watcher
        .post("/api/v1/id-tokens/DORA-2/unblock", json!({}))
        .await
        .unwrap()
        .expect(403);
    let hidden = estate
        .outsider
        .post("/api/v1/id-tokens/DORA-2/unblock", json!({}))
        .await
        .unwrap()
        .expect(404);
    let missing = estate
        .outsider
        .post("/api/v1/id-tokens/NO-SUCH/unblock", json!({}))
        .await
        .unwrap()
        .expect(404);
    assert_eq!(
        hidden.body["message"]
            .as_str()
            .unwrap()
            .replace("DORA-2", "X"),
        missing.body["message"]
            .as_str()
            .unwrap()
            .replace("NO-SUCH", "X")
    );
    estate
        .outsider
        .get("/api/v1/principals/dora/id-tokens")
        .await
        .unwrap()
        .expect(404);

    estate
        .ops
        .delete("/api/v1/id-tokens/DORA-2", json!(null))
        .await
        .unwrap()
        .expect(204);
    estate
        .ops
        .delete("/api/v1/id-tokens/DORA-2", json!(null))
        .await
        .unwrap()
        .expect(404);
    let after = admin
        .get("/api/v1/principals/dora/id-tokens")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(after.body["id_tokens"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_deleted_principal_loses_its_tokens_id_tokens_and_roles_at_once() {
    let estate = Estate::new(&[]).await;
    let admin = &estate.admin;
    let mut charger = estate.charger("CP-DEL", "ocpp1.6").await;
    admin
        .charging_driver("site-driver", "dora", "site-a")
        .await
        .unwrap();
    admin.id_token("dora", "DORA-1").await.unwrap().expect(201);
    let before = charger
        .call_ok("Authorize", json!({"idTag": "DORA-1"}))
        .await
        .unwrap();
    assert_eq!(before["idTagInfo"]["status"], "Accepted", "{before}");

    // Deleting is managing: the watcher may see her but not delete her, the outsider cannot
    // even see her.
    let_the_watcher_view_drivers(admin).await;
    estate
        .watcher
        .delete("/api/v1/principals/dora", json!(null))
        .await
        .unwrap()
        .expect(403);
    estate
        .outsider
        .delete("/api/v1/principals/dora", json!(null))
        .await
        .unwrap()
        .expect(404);
    estate
        .ops
        .delete("/api/v1/principals/dora", json!(null))
        .await
        .unwrap()
        .expect(204);
    let after = charger
        .call_ok("Authorize", json!({"idTag": "DORA-1"}))
        .await
        .unwrap();
    assert_eq!(after["idTagInfo"]["status"], "Invalid", "{after}");
    estate
        .ops
        .delete("/api/v1/principals/dora", json!(null))
        .await
        .unwrap()
        .expect(404);
    let principals = admin.get("/api/v1/principals").await.unwrap().expect(200);
    assert!(!principals.text.contains("\"dora\""), "{}", principals.text);
    let assignments = admin.get("/api/v1/assignments").await.unwrap().expect(200);
    assert!(
        !assignments.text.contains("\"dora\""),
        "{}",
        assignments.text
    );

    // An operator's API tokens stop working with it; the admin may delete operators but
    // neither itself nor the bootstrap administrator.
    estate
        .watcher
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(200);
    admin
        .delete("/api/v1/principals/watcher", json!(null))
        .await
        .unwrap()
        .expect(204);
    estate
        .watcher
        .get("/api/v1/chargers")
        .await
        .unwrap()
        .expect(401);
    let itself = admin
        .delete("/api/v1/principals/admin", json!(null))
        .await
        .unwrap()
        .expect(409);
    assert!(
        itself.body["message"].as_str().unwrap().contains("itself"),
        "{}",
        itself.text
    );
    // The id stays with the deleted principal's audit history: it is not given out again.
    admin
        .principal("dora", "driver", "site-a")
        .await
        .unwrap()
        .expect(409);
    let audit = admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let entries = audit.body["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| {
            e["principal"] == "ops"
                && e["action"] == "driver.delete"
                && e["allowed"] == true
                && e["resource"].as_str().unwrap_or_default().contains("dora")
        }),
        "the deletion is audited: {}",
        audit.text
    );
    assert!(
        entries.iter().any(|e| {
            e["principal"] == "watcher" && e["action"] == "driver.delete" && e["allowed"] == false
        }),
        "the refused deletion is audited: {}",
        audit.text
    );
}
