//! A tiny central system for the simulator's own tests: accepts OCPP WebSocket connections
//! (optionally over TLS, with Basic auth, refusing unknown ids), answers every charger request
//! with a schema-checked answer, can send CALLs to connected chargers, and serves the two API
//! routes the simulator uses (charger registration and commands), translating commands with
//! the shared codec just as the gateway does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::Message;
use voltgate_ocpp::{response_status, Command, ErrorCode, Frame, OcppVersion, Validator};
use voltgate_sim::driver::wall_clock;

#[derive(Default, Clone)]
pub struct MockOptions {
    /// Refuse ids that were not registered through the API (404).
    pub require_known: bool,
    /// Require this Basic password (401 otherwise).
    pub password: Option<String>,
    /// Bearer token the API requires.
    pub api_token: Option<String>,
    /// Actions the mock never answers.
    pub silent_actions: Vec<&'static str>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

struct Outbound {
    action: String,
    payload: Value,
    reply: oneshot::Sender<Frame>,
}

struct Session {
    version: OcppVersion,
    tx: mpsc::UnboundedSender<Outbound>,
}

pub struct MockState {
    options: MockOptions,
    validator: Validator,
    known: Mutex<HashSet<String>>,
    sessions: Mutex<HashMap<String, Session>>,
    calls: Mutex<BTreeMap<String, u64>>,
    boots: Mutex<HashMap<String, u64>>,
    pub invalid: AtomicU64,
    pub refused_handshakes: AtomicU64,
    pub connections: AtomicU64,
    seq: AtomicI64,
    next_tx: AtomicI64,
    /// Becomes `true` when the mock goes down: it stops listening and drops every session.
    down: watch::Sender<bool>,
}

impl MockState {
    pub fn calls(&self, action: &str) -> u64 {
        self.calls.lock().unwrap().get(action).copied().unwrap_or(0)
    }

    pub fn boots_of(&self, id: &str) -> u64 {
        self.boots.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    pub fn is_connected(&self, id: &str) -> bool {
        self.sessions.lock().unwrap().contains_key(id)
    }

    pub fn registered(&self) -> usize {
        self.known.lock().unwrap().len()
    }

    /// Sends a CALL to a connected charger and waits for its answer.
    pub async fn call(
        &self,
        id: &str,
        action: &str,
        payload: Value,
        wait: Duration,
    ) -> Option<Frame> {
        let (reply, rx) = oneshot::channel();
        {
            let sessions = self.sessions.lock().unwrap();
            let session = sessions.get(id)?;
            session
                .tx
                .send(Outbound {
                    action: action.to_owned(),
                    payload,
                    reply,
                })
                .ok()?;
        }
        tokio::time::timeout(wait, rx).await.ok()?.ok()
    }

    fn version_of(&self, id: &str) -> Option<OcppVersion> {
        self.sessions.lock().unwrap().get(id).map(|s| s.version)
    }

    fn answer(&self, version: OcppVersion, action: &str, payload: &Value) -> Value {
        let now = wall_clock().rfc3339();
        let v16 = version == OcppVersion::V16;
        match action {
            "BootNotification" => {
                json!({ "status": "Accepted", "currentTime": now, "interval": 300 })
            }
            "Heartbeat" => json!({ "currentTime": now }),
            "Authorize" if v16 => json!({ "idTagInfo": { "status": "Accepted" } }),
            "Authorize" => json!({ "idTokenInfo": { "status": "Accepted" } }),
            "StartTransaction" => {
                let id = self.next_tx.fetch_add(1, Ordering::Relaxed);
                json!({ "transactionId": id, "idTagInfo": { "status": "Accepted" } })
            }
            "TransactionEvent" if payload.get("idToken").is_some() => {
                json!({ "idTokenInfo": { "status": "Accepted" } })
            }
            _ => json!({}),
        }
    }
}

pub struct MockGateway {
    pub ocpp_url: String,
    pub api_url: String,
    pub state: Arc<MockState>,
}

impl MockGateway {
    pub async fn start(options: MockOptions) -> MockGateway {
        let state = Arc::new(MockState {
            options,
            validator: Validator::new().unwrap(),
            known: Mutex::default(),
            sessions: Mutex::default(),
            calls: Mutex::default(),
            boots: Mutex::default(),
            invalid: AtomicU64::new(0),
            refused_handshakes: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            seq: AtomicI64::new(1),
            next_tx: AtomicI64::new(1),
            down: watch::Sender::new(false),
        });
        let ocpp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ocpp_addr = ocpp.local_addr().unwrap();
        let scheme = if state.options.tls.is_some() {
            "wss://localhost"
        } else {
            "ws://127.0.0.1"
        };
        let ocpp_url = format!("{scheme}:{}/ocpp", ocpp_addr.port());
        tokio::spawn(accept_loop(ocpp, Arc::clone(&state)));

        let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_addr: SocketAddr = api.local_addr().unwrap();
        let router = Router::new()
            .route("/api/v1/chargers", post(register))
            .route("/api/v1/chargers/{id}/commands/{command}", post(command))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(api, router).await;
        });
        MockGateway {
            ocpp_url,
            api_url: format!("http://{api_addr}"),
            state,
        }
    }
}

impl MockGateway {
    /// Goes down as a killed gateway would: the port closes and every connection drops.
    pub fn go_down(&self) {
        self.state.down.send_replace(true);
    }
}

async fn until_down(down: &mut watch::Receiver<bool>) {
    let _ = down.wait_for(|down| *down).await;
}

async fn accept_loop(listener: TcpListener, state: Arc<MockState>) {
    let mut down = state.down.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = until_down(&mut down) => return,
        };
        let Ok((tcp, _)) = accepted else {
            return;
        };
        let _ = tcp.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            match state.options.tls.clone() {
                None => serve_connection(tcp, state).await,
                Some(config) => {
                    if let Ok(tls) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await {
                        serve_connection(tls, state).await;
                    }
                }
            }
        });
    }
}

fn refuse(status: u16, body: &str) -> ErrorResponse {
    let mut response = http::Response::new(Some(body.to_owned()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response
}

// The handshake callback's error type is tungstenite's, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(stream: S, state: Arc<MockState>) {
    let mut chosen: Option<(String, OcppVersion)> = None;
    let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        let id = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let offered: Vec<&str> = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let Some(version) = OcppVersion::negotiate(offered) else {
            state.refused_handshakes.fetch_add(1, Ordering::Relaxed);
            return Err(refuse(400, "no OCPP subprotocol offered"));
        };
        if state.options.require_known && !state.known.lock().unwrap().contains(&id) {
            state.refused_handshakes.fetch_add(1, Ordering::Relaxed);
            return Err(refuse(404, "unknown charger"));
        }
        if let Some(password) = &state.options.password {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{password}"))
            );
            let given = request
                .headers()
                .get("Authorization")
                .and_then(|v| v.to_str().ok());
            if given != Some(expected.as_str()) {
                state.refused_handshakes.fetch_add(1, Ordering::Relaxed);
                return Err(refuse(401, "bad credentials"));
            }
        }
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            http::HeaderValue::from_static(version.subprotocol()),
        );
        chosen = Some((id, version));
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some((id, version)) = chosen else { return };
    state.connections.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    let ours = tx.clone();
    state
        .sessions
        .lock()
        .unwrap()
        .insert(id.clone(), Session { version, tx });
    let mut pending: HashMap<String, oneshot::Sender<Frame>> = HashMap::new();
    let mut next = 1u64;
    let mut down = state.down.subscribe();
    loop {
        tokio::select! {
            _ = until_down(&mut down) => break,
            incoming = ws.next() => {
                let Some(Ok(message)) = incoming else { break };
                let Message::Text(text) = message else { continue };
                let frame = match Frame::parse(text.as_str()) {
                    Ok(frame) => frame,
                    Err(e) => {
                        state.invalid.fetch_add(1, Ordering::Relaxed);
                        if let Some(reply) = e.reply(version) {
                            let _ = ws.send(Message::Text(reply.to_text().into())).await;
                        }
                        continue;
                    }
                };
                match frame {
                    Frame::Call { id: message_id, action, payload } => {
                        *state.calls.lock().unwrap().entry(action.clone()).or_insert(0) += 1;
                        if state.options.silent_actions.contains(&action.as_str()) {
                            continue;
                        }
                        let reply = match state.validator.validate_request(version, &action, &payload) {
                            Err(e) => {
                                state.invalid.fetch_add(1, Ordering::Relaxed);
                                let code = if voltgate_ocpp::is_known_action(version, &action) { e.code } else { ErrorCode::NotImplemented };
                                Frame::call_error(&message_id, version, code, &e.description)
                            }
                            Ok(()) => {
                                if action == "BootNotification" {
                                    *state.boots.lock().unwrap().entry(id.clone()).or_insert(0) += 1;
                                }
                                let answer = state.answer(version, &action, &payload);
                                assert!(state.validator.validate_response(version, &action, &answer).is_ok());
                                Frame::CallResult { id: message_id, payload: answer }
                            }
                        };
                        if ws.send(Message::Text(reply.to_text().into())).await.is_err() {
                            break;
                        }
                    }
                    other => {
                        if let Some(waiter) = pending.remove(other.id()) {
                            let _ = waiter.send(other);
                        }
                    }
                }
            }
            outbound = rx.recv() => {
                let Some(out) = outbound else { break };
                let message_id = format!("gw-{next}");
                next += 1;
                pending.insert(message_id.clone(), out.reply);
                let frame = Frame::Call { id: message_id, action: out.action, payload: out.payload };
                if ws.send(Message::Text(frame.to_text().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    let mut sessions = state.sessions.lock().unwrap();
    if sessions.get(&id).is_some_and(|s| s.tx.same_channel(&ours)) {
        sessions.remove(&id);
    }
}

fn authorised(state: &MockState, headers: &HeaderMap) -> bool {
    match &state.options.api_token {
        None => true,
        Some(token) => headers
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {token}")),
    }
}

async fn register(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorised(&state, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        );
    }
    let Some(id) = body["id"].as_str() else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "id missing"})),
        );
    };
    if body["scope"].as_str().is_none() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "scope missing"})),
        );
    }
    if state.known.lock().unwrap().insert(id.to_owned()) {
        (StatusCode::CREATED, Json(json!({"id": id})))
    } else {
        (StatusCode::CONFLICT, Json(json!({"error": "exists"})))
    }
}

async fn command(
    State(state): State<Arc<MockState>>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorised(&state, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        );
    }
    // like the gateway, the API spells reset `{type: soft|hard}`
    let body = if name == "reset" {
        json!({ "hard": body["type"] == "hard" })
    } else {
        body
    };
    let command = match Command::from_api(&name, &body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": format!("{e:?}")})),
            )
        }
    };
    let Some(version) = state.version_of(&id) else {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "not connected"})),
        );
    };
    let seq = state.seq.fetch_add(1, Ordering::Relaxed);
    let call = match command.to_call_at(version, seq, &wall_clock().rfc3339()) {
        Ok(call) => call,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("{e:?}")})),
            )
        }
    };
    match state
        .call(&id, call.action, call.payload, Duration::from_secs(5))
        .await
    {
        Some(Frame::CallResult { payload, .. }) => {
            let status = response_status(version, call.action, &payload);
            (
                StatusCode::OK,
                Json(json!({"status": status, "response": payload})),
            )
        }
        Some(Frame::CallError { code, .. }) => {
            (StatusCode::BAD_GATEWAY, Json(json!({"error": code})))
        }
        _ => (
            StatusCode::GATEWAY_TIMEOUT,
            Json(json!({"error": "timeout"})),
        ),
    }
}

/// A CA and a `localhost` certificate it signed, for wss:// tests: (server config, CA PEM).
pub fn tls_pair() -> (Arc<rustls::ServerConfig>, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Voltgate test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    (Arc::new(config), ca.pem())
}
