//! Throttling that does not lock out the innocent: many chargers (or operators) behind one
//! address keep getting in with valid credentials while a neighbour fails, and the address a
//! proxy reports counts only when the proxy is trusted (`--trusted-proxies`).

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use voltgate_tests::{Api, Gateway, GatewayOptions};

use crate::security_profiles::register;

const PASSWORD: &str = "correct-horse-batt";

fn gateway(args: &[&str]) -> Gateway {
    let mut options = GatewayOptions::preset("connect")
        .arg("--auth-failure-refill")
        .arg("1h");
    for arg in args {
        options = options.arg(arg);
    }
    Gateway::start(options).unwrap()
}

async fn site(gateway: &Gateway) -> Api {
    let admin = gateway.api();
    admin
        .scope("site-a", "site", "root")
        .await
        .unwrap()
        .expect(201);
    admin
}

/// The status of a WebSocket handshake for `id` sent as raw bytes, after `preamble` (a PROXY
/// line, or nothing), with `headers` added: 101 when accepted, 0 when the connection closed
/// without an HTTP answer.
async fn handshake(
    gateway: &Gateway,
    preamble: &str,
    id: &str,
    password: Option<&str>,
    headers: &[(&str, &str)],
) -> u16 {
    let address = gateway
        .ocpp_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut request = format!(
        "{preamble}GET /ocpp/{id} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"
    );
    if let Some(password) = password {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{password}"));
        request.push_str(&format!("Authorization: Basic {basic}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 256];
    while !answer.windows(2).any(|pair| pair == b"\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    let line = String::from_utf8_lossy(&answer).into_owned();
    if line.is_empty() {
        return 0;
    }
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status: {line:?}"))
}

async fn api_status(gateway: &Gateway, token: &str, forwarded_for: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new()
        .get(gateway.api().url("/api/v1/scopes"))
        .bearer_auth(token);
    if let Some(client) = forwarded_for {
        request = request.header("X-Forwarded-For", client);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn chargers_behind_one_address_still_connect_when_a_neighbour_used_its_budget() {
    let gateway = gateway(&[
        "--auth-failure-burst",
        "3",
        "--auth-failure-address-burst",
        "6",
    ]);
    let admin = site(&gateway).await;
    for n in 1..=4 {
        register(&admin, &format!("CP-{n}"), Some(PASSWORD), 1).await;
    }
    register(&admin, "CP-BAD", Some(PASSWORD), 1).await;

    // One charger guessing wrong: its own budget of 3, then 429.
    let mut bad = Vec::new();
    for _ in 0..4 {
        bad.push(handshake(&gateway, "", "CP-BAD", Some("wrong"), &[]).await);
    }
    assert_eq!(bad, [401, 401, 401, 429]);
    // Guessing over other ids uses up the address's budget of 6.
    let mut spread = Vec::new();
    for n in 0..4 {
        let id = format!("CP-U{n}");
        spread.push(handshake(&gateway, "", &id, Some("wrong"), &[]).await);
    }
    assert_eq!(spread, [401, 401, 401, 429]);

    // The others, never seen before (no remembered password), still get in.
    for n in 1..=4 {
        let id = format!("CP-{n}");
        assert_eq!(
            handshake(&gateway, "", &id, Some(PASSWORD), &[]).await,
            101,
            "{id} with valid credentials behind the busy address"
        );
    }
    // While the address has no budget, a registered charger gets one try, not a budget.
    assert_eq!(
        handshake(&gateway, "", "CP-1", Some("wrong"), &[]).await,
        401
    );
    assert_eq!(
        handshake(&gateway, "", "CP-1", Some("wrong"), &[]).await,
        429
    );
}

#[tokio::test]
async fn valid_api_tokens_are_let_in_from_an_address_whose_failures_used_its_budget() {
    let gateway = gateway(&[
        "--auth-failure-burst",
        "2",
        "--auth-failure-address-burst",
        "4",
    ]);
    let mut statuses = Vec::new();
    for n in 0..5 {
        statuses.push(api_status(&gateway, &format!("vg_forged_{n:0>20}"), None).await);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429], "the address's budget");
    assert_eq!(
        api_status(&gateway, &gateway.admin_token, None).await,
        200,
        "a valid token from the same address"
    );
    let forged = "vg_forged_the_same_one_again";
    let mut same = Vec::new();
    for _ in 0..3 {
        same.push(api_status(&gateway, forged, None).await);
    }
    assert_eq!(same, [429, 429, 429]);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let args = [
        "--auth-failure-burst",
        "1",
        "--auth-failure-address-burst",
        "2",
    ];
    // Through a trusted proxy every client has its own budget.
    let trusted = gateway(&[&args[..], &["--trusted-proxies", "10.9.0.0/16,127.0.0.1"]].concat());
    let mut first_client = Vec::new();
    for n in 0..3 {
        let token = format!("vg_forged_{n:0>20}");
        first_client.push(api_status(&trusted, &token, Some("198.51.100.1")).await);
    }
    assert_eq!(first_client, [401, 401, 429]);
    assert_eq!(
        api_status(&trusted, "vg_forged_other_client_000", Some("198.51.100.2")).await,
        401,
        "another client behind the same proxy"
    );
    assert_eq!(
        api_status(
            &trusted,
            "vg_forged_spoofed_left_0000",
            Some("203.0.113.7, 198.51.100.1")
        )
        .await,
        429,
        "what a client writes left of the proxy's entry is not believed"
    );

    // The same requests straight from an untrusted peer: the header is ignored.
    let direct = gateway(&args);
    let mut spoofed = Vec::new();
    for n in 0..3 {
        let token = format!("vg_forged_{n:0>20}");
        let client = format!("198.51.100.{n}");
        spoofed.push(api_status(&direct, &token, Some(&client)).await);
    }
    assert_eq!(spoofed, [401, 401, 429], "one budget for the real address");
    let mut chargers = Vec::new();
    for n in 0..3 {
        let id = format!("CP-U{n}");
        let client = format!("198.51.100.{n}");
        chargers.push(handshake(&direct, "", &id, None, &[("X-Forwarded-For", &client)]).await);
    }
    assert_eq!(chargers, [401, 401, 429], "on the charger listener too");
    let refused = handshake(
        &direct,
        "PROXY TCP4 198.51.100.9 127.0.0.1 40000 9000\r\n",
        "CP-P",
        None,
        &[],
    )
    .await;
    assert!(
        refused == 0 || refused >= 400,
        "a PROXY line from an untrusted peer is not HTTP: {refused}"
    );
}

#[tokio::test]
async fn a_trusted_proxy_names_the_charger_address_by_proxy_protocol_or_header() {
    let gateway = gateway(&[
        "--auth-failure-burst",
        "1",
        "--auth-failure-address-burst",
        "2",
        "--trusted-proxies",
        "127.0.0.0/8",
    ]);
    let proxied = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 9000\r\n");
    let mut first = Vec::new();
    for n in 0..3 {
        let id = format!("CP-U{n}");
        first.push(handshake(&gateway, &proxied("198.51.100.1"), &id, None, &[]).await);
    }
    assert_eq!(first, [401, 401, 429]);
    assert_eq!(
        handshake(&gateway, &proxied("198.51.100.2"), "CP-U9", None, &[]).await,
        401,
        "another client behind the proxy"
    );
    let mut forwarded = Vec::new();
    for n in 0..3 {
        let id = format!("CP-F{n}");
        forwarded.push(
            handshake(
                &gateway,
                "",
                &id,
                None,
                &[("X-Forwarded-For", "198.51.100.3")],
            )
            .await,
        );
    }
    assert_eq!(forwarded, [401, 401, 429]);
    // A refusal is counted just after its answer is written: wait for the count.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let metrics = crate::metrics(&gateway.api_url).await;
        let throttled = crate::metric(
            &metrics,
            r#"voltgate_auth_throttled_total{listener="ocpp"}"#,
        );
        if throttled >= 2.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
