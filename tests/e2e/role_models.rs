//! The role-engine findings of issues #20 and #14, tried through the real binary: what a
//! principal of each seed model tried against the operator API, and the answer it gets now.

use serde_json::{json, Value};
use voltgate_tests::{Api, Gateway, GatewayOptions};

/// Creates `id` at home on `home` holding `role` there and returns its API client.
async fn member(gateway: &Gateway, admin: &Api, id: &str, role: &str, home: &str) -> Api {
    admin
        .principal(id, "operator", home)
        .await
        .unwrap()
        .expect(201);
    admin.assign(id, role, home).await.unwrap().expect(201);
    gateway.api_as(&admin.token_for(id).await.unwrap())
}

fn assignment(principal: &str, role: &str, scope: &str) -> Value {
    json!({"principal": principal, "role": role, "scope": scope})
}

async fn scopes(admin: &Api, tree: &[(&str, &str, &str)]) {
    for (id, kind, parent) in tree {
        admin.scope(id, kind, parent).await.unwrap().expect(201);
    }
}

#[tokio::test]
async fn tenant_support_can_neither_promote_itself_nor_delete_or_strip_customers() {
    let gateway = Gateway::start(GatewayOptions::preset("tenant")).expect("gateway starts");
    let admin = gateway.api();
    scopes(&admin, &[("t", "tenant", "root"), ("a1", "account", "t")]).await;
    admin.charger("st-a1", "a1").await.unwrap().expect(201);
    let support = member(&gateway, &admin, "support", "customer-support", "t").await;
    let tenant_admin = member(&gateway, &admin, "boss", "tenant-admin", "t").await;
    admin
        .principal("owner", "operator", "a1")
        .await
        .unwrap()
        .expect(201);
    admin
        .principal("dora", "driver", "a1")
        .await
        .unwrap()
        .expect(201);

    // The invitation the seed gives Customer support still works for someone else...
    support
        .post(
            "/api/v1/assignments",
            assignment("owner", "account-owner", "a1"),
        )
        .await
        .unwrap()
        .expect(201);
    // ...but never for itself, so it never reaches the account's stations.
    for role in ["account-owner", "account-station-admin"] {
        let refused = support
            .post("/api/v1/assignments", assignment("support", role, "a1"))
            .await
            .unwrap();
        assert_eq!(refused.status, 403, "{role}: {}", refused.text);
    }
    let max_current = support
        .command("st-a1", "set-max-current", json!({"amps": 16}))
        .await
        .unwrap();
    assert_eq!(max_current.status, 403, "{}", max_current.text);

    // Blocking customers is its row; deleting them and editing their roles are not.
    let strip = support
        .delete(
            "/api/v1/assignments",
            assignment("owner", "account-owner", "a1"),
        )
        .await
        .unwrap();
    assert_eq!(strip.status, 403, "{}", strip.text);
    for target in ["owner", "dora"] {
        let deleted = support
            .delete(&format!("/api/v1/principals/{target}"), json!(null))
            .await
            .unwrap();
        assert_eq!(deleted.status, 403, "{target}: {}", deleted.text);
    }
    tenant_admin
        .delete(
            "/api/v1/assignments",
            assignment("owner", "account-owner", "a1"),
        )
        .await
        .unwrap()
        .expect(200);
    tenant_admin
        .delete("/api/v1/principals/dora", json!(null))
        .await
        .unwrap()
        .expect(204);
}

#[tokio::test]
async fn multi_account_admin_cannot_make_itself_an_app_user() {
    let gateway = Gateway::start(GatewayOptions::preset("multi-account")).expect("gateway starts");
    let admin = gateway.api();
    scopes(
        &admin,
        &[("op", "operator", "root"), ("acc", "account", "op")],
    )
    .await;
    let mam = member(&gateway, &admin, "mam", "multi-account-admin", "acc").await;
    let refused = mam
        .post(
            "/api/v1/assignments",
            assignment("mam", "account-viewer", "acc"),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 403, "{}", refused.text);
}

#[tokio::test]
async fn virta_module_switches_follow_the_paid_and_sub_organisation_rules() {
    let gateway = Gateway::start(GatewayOptions::preset("virta")).expect("gateway starts");
    let admin = gateway.api();
    scopes(
        &admin,
        &[
            ("org", "organisation", "root"),
            ("sub", "organisation", "org"),
        ],
    )
    .await;
    let manager = member(&gateway, &admin, "manager", "charging-manager", "org").await;
    let payer = member(&gateway, &admin, "payer", "paid-module-activator", "org").await;
    let switch = |scope: &str, module: &str| format!("/api/v1/scopes/{scope}/modules/{module}");

    // Editing sub-organisation modules: strictly below, never paid, never one's own.
    for (scope, module) in [("org", "general-navigation-alerts"), ("sub", "solar")] {
        let refused = manager
            .put(&switch(scope, module), json!({"on": false}))
            .await
            .unwrap();
        assert_eq!(refused.status, 403, "{scope}/{module}: {}", refused.text);
    }
    manager
        .put(
            &switch("sub", "general-navigation-alerts"),
            json!({"on": false}),
        )
        .await
        .unwrap()
        .expect(200);
    // The activator switches paid modules, and nothing else.
    let unpaid = payer
        .put(
            &switch("org", "general-navigation-alerts"),
            json!({"on": false}),
        )
        .await
        .unwrap();
    assert_eq!(unpaid.status, 403, "{}", unpaid.text);
    // A sub-organisation cannot have a paid module its parent lacks.
    let beyond = payer
        .put(&switch("sub", "solar"), json!({"on": true}))
        .await
        .unwrap();
    assert_eq!(beyond.status, 422, "{}", beyond.text);
    payer
        .put(&switch("org", "solar"), json!({"on": true}))
        .await
        .unwrap()
        .expect(200);
}

#[tokio::test]
async fn zaptec_pro_is_an_installation_switch_only() {
    let gateway = Gateway::start(GatewayOptions::preset("zaptec")).expect("gateway starts");
    let admin = gateway.api();
    scopes(&admin, &[("go", "installation", "root")]).await;
    admin.charger("go-1", "go").await.unwrap().expect(201);
    let refused = admin
        .put("/api/v1/scopes/go-1/modules/pro", json!({"on": true}))
        .await
        .unwrap();
    assert_eq!(refused.status, 422, "{}", refused.text);
    admin
        .put("/api/v1/scopes/go/modules/pro", json!({"on": true}))
        .await
        .unwrap()
        .expect(200);
}

#[tokio::test]
async fn scope_depth_is_limited_and_listing_stays_complete() {
    let gateway = Gateway::start(GatewayOptions::preset("connect").arg("--max-scope-depth=4"))
        .expect("gateway starts");
    let admin = gateway.api();
    scopes(
        &admin,
        &[
            ("s1", "site", "root"),
            ("s2", "site", "s1"),
            ("s3", "site", "s2"),
            ("s4", "site", "s3"),
        ],
    )
    .await;
    let deeper = admin.scope("s5", "site", "s4").await.unwrap();
    assert_eq!(deeper.status, 409, "{}", deeper.text);
    let charger = admin.charger("cp-deep", "s4").await.unwrap();
    assert_eq!(charger.status, 409, "{}", charger.text);
    let builder = member(&gateway, &admin, "builder", "site-admin", "s2").await;
    let listed = builder.get("/api/v1/scopes").await.unwrap().expect(200);
    let ids: Vec<&str> = listed.body["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|scope| scope["id"].as_str())
        .collect();
    assert_eq!(ids, ["s2", "s3", "s4"], "{}", listed.text);
}

#[tokio::test]
async fn explain_and_token_listing_reveal_nothing_beyond_the_callers_reach() {
    let gateway = Gateway::start(GatewayOptions::preset("connect")).expect("gateway starts");
    let admin = gateway.api();
    scopes(
        &admin,
        &[("parent", "site", "root"), ("child", "site", "parent")],
    )
    .await;
    let local = member(&gateway, &admin, "local", "site-admin", "child").await;
    admin
        .principal("roamer", "operator", "child")
        .await
        .unwrap()
        .expect(201);
    admin
        .assign("roamer", "site-admin", "parent")
        .await
        .unwrap()
        .expect(201);
    admin.token_for("roamer").await.unwrap();

    let explained = local
        .post(
            "/api/v1/authz/explain",
            json!({"principal": "roamer", "action": "charger.view", "resource": "child"}),
        )
        .await
        .unwrap()
        .expect(200);
    assert_eq!(explained.body["allowed"], true, "{}", explained.text);
    assert!(
        !explained.text.contains("parent"),
        "the explanation names a site `local` cannot see: {}",
        explained.text
    );

    // `local` may edit roamer at its home, but could not grant what roamer holds on `parent`:
    // listing roamer's credentials is refused, and the refusal does not name `parent`.
    let tokens = local.get("/api/v1/principals/roamer/tokens").await.unwrap();
    assert_eq!(tokens.status, 403, "{}", tokens.text);
    assert!(!tokens.text.contains("parent"), "{}", tokens.text);
}

/// Virta: "Archive team members with same roles as themselves" and "Restore/delete archived
/// team members". A technician archives another technician (whom it could never invite); a
/// driver manager may invite viewers but not archive one, a role it does not hold; a member is
/// deleted only once archived.
#[tokio::test]
async fn virta_archives_members_with_the_same_roles_and_deletes_only_archived_ones() {
    let gateway = Gateway::start(GatewayOptions::preset("virta")).expect("gateway starts");
    let admin = gateway.api();
    scopes(&admin, &[("org", "organisation", "root")]).await;
    let technician = member(&gateway, &admin, "tech-1", "technician", "org").await;
    member(&gateway, &admin, "tech-2", "technician", "org").await;
    let manager = member(&gateway, &admin, "manager", "driver-manager", "org").await;
    member(&gateway, &admin, "watcher", "viewer", "org").await;

    let refused = manager
        .post("/api/v1/principals/watcher/block", json!({}))
        .await
        .unwrap();
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.text.contains("does not hold"),
        "the reason names the rule: {}",
        refused.text
    );

    let not_archived = technician
        .delete("/api/v1/principals/tech-2", json!(null))
        .await
        .unwrap();
    assert_eq!(not_archived.status, 409, "{}", not_archived.text);
    assert!(
        not_archived.text.contains("archived"),
        "{}",
        not_archived.text
    );
    technician
        .post("/api/v1/principals/tech-2/block", json!({}))
        .await
        .unwrap()
        .expect(200);
    technician
        .delete("/api/v1/principals/tech-2", json!(null))
        .await
        .unwrap()
        .expect(204);
    let principals = admin.get("/api/v1/principals").await.unwrap().expect(200);
    assert!(
        !principals.text.contains("\"tech-2\""),
        "{}",
        principals.text
    );
}
