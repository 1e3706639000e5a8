//! A small client for the operator HTTP API that returns status and JSON body together, so tests
//! can assert on both without the client hiding errors.

use anyhow::Result;
use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// One API answer: the HTTP status and the parsed body (`Value::Null` when the body was empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Panics with the whole reply when the status is not the expected one.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status, status,
            "expected HTTP {status}, got {} with body {}",
            self.status, self.text
        );
        self
    }

    /// Panics with the whole reply unless it is HTTP `status` with error code `error`.
    #[track_caller]
    pub fn expect_error(self, status: u16, error: &str) -> Reply {
        let reply = self.expect(status);
        assert_eq!(reply.body["error"], error, "{}", reply.text);
        reply
    }
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            token: token.to_string(),
            http: self.http.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends one request; an answer `gateway/openapi.json` does not describe fails the test
    /// (see [`crate::openapi`]).
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply> {
        let request = request.bearer_auth(&self.token).build()?;
        let method = request.method().as_str().to_owned();
        let path = request.url().path().to_owned();
        let response = self.http.execute(request).await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        if let Err(mismatch) =
            crate::openapi::check_answer(&method, &path, status, content_type.as_deref(), &text)
        {
            panic!("the answer is not the documented one: {mismatch}");
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply { status, body, text })
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.send(self.http.get(self.url(path))).await
    }

    /// Polls `/readyz` until it answers `status`; fails after `within`.
    pub async fn wait_ready(&self, status: u16, within: std::time::Duration) -> Result<()> {
        self.wait_readyz(within, |reply| reply.status == status)
            .await
    }

    /// Waits until `/readyz` names `reason` ("cluster unreachable", "store unreachable"):
    /// the gateway has noticed that loss, which it learns a moment after it happens.
    pub async fn wait_unready_for(&self, reason: &str, within: std::time::Duration) -> Result<()> {
        self.wait_readyz(within, |reply| {
            reply.status == 503 && reply.body["status"] == reason
        })
        .await
    }

    /// Polls `/readyz` until its answer passes `done`; fails after `within` with the last one.
    async fn wait_readyz(
        &self,
        within: std::time::Duration,
        done: impl Fn(&Reply) -> bool,
    ) -> Result<()> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let reply = self.get("/readyz").await?;
            if done(&reply) {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "/readyz still {} ({}) after {within:?}",
                    reply.status,
                    reply.text
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Reply> {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Result<Reply> {
        self.send(
            self.http
                .post(self.url(path))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Result<Reply> {
        self.send(self.http.put(self.url(path)).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Reply> {
        self.send(self.http.patch(self.url(path)).json(&body)).await
    }

    pub async fn delete(&self, path: &str, body: Value) -> Result<Reply> {
        self.send(self.http.delete(self.url(path)).json(&body))
            .await
    }

    // Shorthands for the set-up every test repeats.

    pub async fn scope(&self, id: &str, kind: &str, parent: &str) -> Result<Reply> {
        self.post(
            "/api/v1/scopes",
            serde_json::json!({"id": id, "kind": kind, "parent": parent}),
        )
        .await
    }

    pub async fn charger(&self, id: &str, scope: &str) -> Result<Reply> {
        self.post(
            "/api/v1/chargers",
            serde_json::json!({"id": id, "scope": scope}),
        )
        .await
    }

    pub async fn principal(&self, id: &str, kind: &str, home: &str) -> Result<Reply> {
        self.post(
            "/api/v1/principals",
            serde_json::json!({"id": id, "kind": kind, "home_scope": home}),
        )
        .await
    }

    /// Defines `role`, a custom role whose one permission is to charge (`charge-at-sites`, as
    /// the `connect` preset names it), and expects it to be new; then makes `driver` a driver
    /// homed on `site` who holds the role there.
    pub async fn charging_driver(&self, role: &str, driver: &str, site: &str) -> Result<()> {
        self.post(
            "/api/v1/roles",
            serde_json::json!({"id": role, "permissions": ["charge-at-sites"]}),
        )
        .await?
        .expect(201);
        self.principal(driver, "driver", site).await?.expect(201);
        self.assign(driver, role, site).await?.expect(201);
        Ok(())
    }

    /// Issues an API token for a principal and returns it.
    pub async fn token_for(&self, principal: &str) -> Result<String> {
        let reply = self
            .post(
                &format!("/api/v1/principals/{principal}/tokens"),
                serde_json::json!({}),
            )
            .await?
            .expect(201);
        reply.body["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no token in {}", reply.text))
    }

    /// Binds the id token (RFID) `id_token` to `principal`.
    pub async fn id_token(&self, principal: &str, id_token: &str) -> Result<Reply> {
        self.post(
            &format!("/api/v1/principals/{principal}/id-tokens"),
            serde_json::json!({"id_token": id_token}),
        )
        .await
    }

    /// Polls the charger's live state until it reads disconnected; fails after `within`.
    pub async fn wait_disconnected(
        &self,
        charger: &str,
        within: std::time::Duration,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let live = self
                .get(&format!("/api/v1/chargers/{charger}"))
                .await?
                .expect(200);
            if live.body["connected"] == false {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "`{charger}` still connected after {within:?}: {}",
                    live.text
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Whether `GET /api/v1/transactions` lists the transaction `id`.
    pub async fn lists_transaction(&self, id: i64) -> Result<bool> {
        let reply = self.get("/api/v1/transactions").await?.expect(200);
        Ok(reply.body["transactions"]
            .as_array()
            .is_some_and(|all| all.iter().any(|t| t["id"].as_i64() == Some(id))))
    }

    pub async fn assign(&self, principal: &str, role: &str, scope: &str) -> Result<Reply> {
        self.post(
            "/api/v1/assignments",
            serde_json::json!({"principal": principal, "role": role, "scope": scope}),
        )
        .await
    }

    pub async fn command(&self, charger: &str, command: &str, body: Value) -> Result<Reply> {
        self.post(
            &format!("/api/v1/chargers/{charger}/commands/{command}"),
            body,
        )
        .await
    }
}
