//! Regression tests for the first attack on the role engine's promise (connect preset): cards
//! that act for principals beyond the actor's reach, changes a dropped request left half done,
//! audit labels an id could steer into another tenant's view, and ids that pass for the
//! gateway's own audit entries.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::Estate;

/// `global` (global admin, homed on site-a) and `roamer` (homed on site-a, holding a role on
/// site-b): both beyond what ops, the site admin of site-a, could grant.
async fn principals_reaching_beyond_site_a(estate: &Estate) {
    let admin = &estate.admin;
    for id in ["global", "roamer"] {
        admin
            .principal(id, "operator", "site-a")
            .await
            .unwrap()
            .expect(201);
    }
    admin
        .assign("global", "global-admin", "root")
        .await
        .unwrap()
        .expect(201);
    admin
        .assign("roamer", "charger-viewer", "site-b")
        .await
        .unwrap()
        .expect(201);
}

#[tokio::test]
async fn a_site_admin_cannot_give_or_free_cards_of_principals_beyond_its_site() {
    let estate = Estate::new(&[]).await;
    principals_reaching_beyond_site_a(&estate).await;
    for id in ["global", "roamer"] {
        let refused = estate
            .ops
            .id_token(id, &format!("CARD-{id}"))
            .await
            .unwrap()
            .expect(403);
        assert!(
            refused.text.contains("beyond"),
            "the refusal says why: {}",
            refused.text
        );
    }
    // A card the global admin's administrator registered and blocked stays blocked.
    estate
        .admin
        .id_token("global", "CARD-G")
        .await
        .unwrap()
        .expect(201);
    estate
        .admin
        .post("/api/v1/id-tokens/CARD-G/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    estate
        .ops
        .post("/api/v1/id-tokens/CARD-G/unblock", json!({}))
        .await
        .unwrap()
        .expect(403);
    estate
        .ops
        .patch("/api/v1/id-tokens/CARD-G", json!({"expires_at": null}))
        .await
        .unwrap()
        .expect(403);
    let cards = estate
        .admin
        .get("/api/v1/principals/global/id-tokens")
        .await
        .unwrap()
        .expect(200);
    assert_eq!(
        cards.body["id_tokens"][0]["blocked"], true,
        "{}",
        cards.text
    );
    // explain gives the same answer as the API.
    let explained = estate
        .admin
        .post(
            "/api/v1/authz/explain",
            json!({"principal": "ops", "action": "id-token.edit", "resource": "principal:roamer"}),
        )
        .await
        .unwrap()
        .expect(200);
    assert_eq!(explained.body["allowed"], false, "{}", explained.text);
    // Within its site the site admin keeps managing cards.
    estate
        .admin
        .principal("driver-a", "driver", "site-a")
        .await
        .unwrap()
        .expect(201);
    estate
        .ops
        .id_token("driver-a", "CARD-A")
        .await
        .unwrap()
        .expect(201);
}

/// Sends one request on a fresh connection and resets the connection after `after`, without
/// reading the answer.
async fn send_and_reset(api_url: &str, token: &str, body: &Value, after: Duration) {
    let address = api_url.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut stream = stream;
    let body = body.to_string();
    let request = format!(
        "POST /api/v1/assignments HTTP/1.1\r\nHost: voltgate\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(after).await;
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

#[tokio::test]
async fn a_dropped_request_never_leaves_a_change_without_its_audit_record() {
    let estate = Estate::new(&[]).await;
    const COUNT: usize = 40;
    for n in 0..COUNT {
        estate
            .admin
            .principal(&format!("dropper-{n}"), "operator", "site-a")
            .await
            .unwrap()
            .expect(201);
    }
    let token = estate.gateway.admin_token.clone();
    for n in 0..COUNT {
        let body = json!({"principal": format!("dropper-{n}"), "role": "charger-viewer", "scope": "site-a"});
        // From before the request is read to after the change is written; the last two wait
        // long enough to be taken for certain, so the checks below see stored changes too.
        let after = if n >= COUNT - 2 {
            Duration::from_millis(300)
        } else {
            Duration::from_micros(250 * (n as u64 % 20))
        };
        send_and_reset(&estate.gateway.api_url, &token, &body, after).await;
    }
    // Let every change that started finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let audit = estate
        .admin
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let entries = audit.body["entries"].as_array().unwrap();
    let mut stored_count = 0;
    for n in 0..COUNT {
        let principal = format!("dropper-{n}");
        let stored = estate
            .admin
            .get(&format!("/api/v1/assignments?principal={principal}"))
            .await
            .unwrap()
            .expect(200);
        let stored = !stored.body["assignments"].as_array().unwrap().is_empty();
        let effective = estate
            .admin
            .post(
                "/api/v1/authz/explain",
                json!({"principal": principal, "action": "charger.view", "resource": "site-a"}),
            )
            .await
            .unwrap()
            .expect(200)
            .body["allowed"]
            == true;
        let label = format!("assignment:{principal}:charger-viewer@site-a");
        let audited = entries.iter().any(|e| {
            e["action"] == "role.assign"
                && e["resource"] == label.as_str()
                && e["allowed"] == true
                && e["outcome"] == "ok"
        });
        assert_eq!(stored, effective, "{principal}: store and engine agree");
        assert_eq!(
            stored, audited,
            "{principal}: a stored change has its record"
        );
        stored_count += usize::from(stored);
    }
    assert!(
        stored_count >= 2,
        "the requests that waited 300 ms were taken: {stored_count} of {COUNT}"
    );
}

#[tokio::test]
async fn ids_with_label_separators_keep_their_audit_records_in_their_own_tenant() {
    let estate = Estate::new(&[]).await;
    // A station of site-a whose id ends like site-b, and one with a colon.
    for id in ["CP@site-b", "CP:A1"] {
        estate.ops.charger(id, "site-a").await.unwrap().expect(201);
    }
    estate
        .ops
        .assign("watcher", "charger-viewer", "CP@site-b")
        .await
        .unwrap()
        .expect(201);
    // Commands are audited under the charger's own label (both are offline: 409).
    for id in ["CP@site-b", "CP:A1"] {
        estate
            .ops
            .command(id, "reset", json!({"type": "soft"}))
            .await
            .unwrap()
            .expect(409);
    }
    let outsider_view = estate
        .outsider
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    for entry in outsider_view.body["entries"].as_array().unwrap() {
        let resource = entry["resource"].as_str().unwrap_or_default();
        assert!(
            !resource.contains("CP"),
            "site-b's admin sees a record of site-a: {entry}"
        );
    }
    let owner_view = estate
        .ops
        .get("/api/v1/audit?limit=1000")
        .await
        .unwrap()
        .expect(200);
    let resources: Vec<&str> = owner_view.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"].as_str())
        .collect();
    for expected in [
        "CP%40site-b",
        "CP%3AA1",
        "assignment:watcher:charger-viewer@CP%40site-b",
    ] {
        assert!(
            resources.contains(&expected),
            "the owner sees {expected}: {resources:?}"
        );
    }
}

#[tokio::test]
async fn operators_cannot_take_the_names_the_gateway_audits_under() {
    let estate = Estate::new(&[]).await;
    for id in ["system", "anonymous", "id-token:X1", "charger:CP-1"] {
        let refused = estate
            .admin
            .principal(id, "operator", "site-a")
            .await
            .unwrap()
            .expect(422);
        assert!(refused.text.contains("reserved"), "{}", refused.text);
    }
}

#[tokio::test]
async fn nobody_deletes_themselves_or_the_bootstrap_admin() {
    let estate = Estate::new(&[]).await;
    estate
        .ops
        .delete("/api/v1/principals/ops", json!(null))
        .await
        .unwrap()
        .expect(409);
    estate
        .admin
        .delete("/api/v1/principals/admin", json!(null))
        .await
        .unwrap()
        .expect(409);
}

#[tokio::test]
async fn a_deleted_principal_s_id_is_not_given_to_anyone_else() {
    let estate = Estate::new(&[]).await;
    estate
        .admin
        .principal("leaver", "operator", "site-a")
        .await
        .unwrap()
        .expect(201);
    estate
        .admin
        .delete("/api/v1/principals/leaver", json!(null))
        .await
        .unwrap()
        .expect(204);
    // Someone in site-b asking for the same id would inherit the leaver's audit history. The
    // clash is answered as one with a live principal, saying nothing of whose the id was.
    let refused = estate
        .outsider
        .principal("leaver", "operator", "site-b")
        .await
        .unwrap()
        .expect(409);
    assert!(refused.text.contains("is taken"), "{}", refused.text);
    assert!(!refused.text.contains("deleted"), "{}", refused.text);
}
