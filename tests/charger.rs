//! A scripted charger for the end-to-end tests: a raw OCPP-J WebSocket client that sends exactly what
//! a test tells it to and shows the test everything the gateway sends back, frame by frame.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// What arrived from the gateway.
#[derive(Debug, Clone)]
pub enum Received {
    Call {
        id: String,
        action: String,
        payload: Value,
    },
    Result {
        id: String,
        payload: Value,
    },
    Error {
        id: String,
        code: String,
        description: String,
    },
    /// A text frame that is not an OCPP-J array.
    Other(String),
    Closed {
        code: Option<u16>,
    },
}

impl Received {
    /// The code of a CALLERROR, or `None` for anything else.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Received::Error { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub struct Charger {
    pub id: String,
    pub subprotocol: String,
    outgoing: mpsc::UnboundedSender<Message>,
    incoming: mpsc::UnboundedReceiver<Received>,
    stash: VecDeque<Received>,
    next_id: u64,
}

/// The gateway's answer to a handshake it refused.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub body: String,
}

impl Charger {
    /// Connects offering the given subprotocols (the first listed is this charger's own version).
    pub async fn connect(url: &str, id: &str, protocols: &[&str]) -> Result<Charger> {
        Self::connect_with(url, id, protocols, None).await
    }

    pub async fn connect_with(
        url: &str,
        id: &str,
        protocols: &[&str],
        basic_auth: Option<(&str, &str)>,
    ) -> Result<Charger> {
        match Self::try_connect(url, id, protocols, basic_auth).await? {
            Ok(charger) => Ok(charger),
            Err(refusal) => bail!("handshake refused: {} {}", refusal.status, refusal.body),
        }
    }

    /// Connects and returns the refusal instead of an error when the gateway says no.
    pub async fn try_connect(
        url: &str,
        id: &str,
        protocols: &[&str],
        basic_auth: Option<(&str, &str)>,
    ) -> Result<std::result::Result<Charger, Refusal>> {
        let full = format!("{}/{}", url.trim_end_matches('/'), id);
        let uri: tokio_tungstenite::tungstenite::http::Uri = full.parse()?;
        let Some(authority) = uri.authority() else {
            bail!("`{full}` names no host");
        };
        let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
        Self::try_connect_on(stream, &full, id, protocols, basic_auth).await
    }

    /// Like [`Charger::try_connect`], over a stream the caller already opened (e.g. TLS);
    /// `url` is the full charger URL including the id.
    pub async fn try_connect_on<S>(
        stream: S,
        url: &str,
        id: &str,
        protocols: &[&str],
        basic_auth: Option<(&str, &str)>,
    ) -> Result<std::result::Result<Charger, Refusal>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let mut request = url.into_client_request()?;
        if !protocols.is_empty() {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(&protocols.join(", "))?,
            );
        }
        if let Some((user, password)) = basic_auth {
            let encoded = BASE64.encode(format!("{user}:{password}"));
            request.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Basic {encoded}"))?,
            );
        }
        let (ws, response) = match tokio_tungstenite::client_async(request, stream).await {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default();
                return Ok(Err(Refusal { status, body }));
            }
            Err(other) => return Err(other.into()),
        };
        let subprotocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Ok(Self::running(ws, id, subprotocol)))
    }

    /// A charger driving an open WebSocket: one task sends what the test queues, one turns
    /// what arrives into [`Received`] values.
    fn running<S>(
        ws: tokio_tungstenite::WebSocketStream<S>,
        id: &str,
        subprotocol: String,
    ) -> Charger
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut source) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (in_tx, in_rx) = mpsc::unbounded_channel::<Received>();
        tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                if sink.send(message).await.is_err() {
                    return;
                }
            }
            // The test dropped its charger: close the way a charger going away does.
            let _ = sink.close().await;
        });
        tokio::spawn(async move {
            while let Some(message) = source.next().await {
                let received = match message {
                    Ok(Message::Text(text)) => parse_frame(text.as_str()),
                    Ok(Message::Close(frame)) => Received::Closed {
                        code: frame.map(|f| u16::from(f.code)),
                    },
                    Ok(_) => continue,
                    Err(_) => Received::Closed { code: None },
                };
                let closed = matches!(received, Received::Closed { .. });
                if in_tx.send(received).is_err() || closed {
                    return;
                }
            }
            let _ = in_tx.send(Received::Closed { code: None });
        });
        Charger {
            id: id.to_string(),
            subprotocol,
            outgoing: out_tx,
            incoming: in_rx,
            stash: VecDeque::new(),
            next_id: 1,
        }
    }

    pub fn is_v16(&self) -> bool {
        self.subprotocol == "ocpp1.6"
    }

    pub fn send_text(&self, text: &str) -> Result<()> {
        self.outgoing
            .send(Message::text(text.to_string()))
            .map_err(|_| anyhow!("connection closed"))
    }

    pub fn send_binary(&self, bytes: Vec<u8>) -> Result<()> {
        self.outgoing
            .send(Message::binary(bytes))
            .map_err(|_| anyhow!("connection closed"))
    }

    /// Sends a CALL and waits for the matching CALLRESULT or CALLERROR (other frames are kept for later).
    pub async fn call(&mut self, action: &str, payload: Value) -> Result<Received> {
        let id = format!("t{}", self.next_id);
        self.next_id += 1;
        self.send_text(&json!([2, id, action, payload]).to_string())?;
        self.answer_to(&id, Duration::from_secs(10)).await
    }

    /// Like `call` but returns the CALLRESULT payload, failing on a CALLERROR.
    pub async fn call_ok(&mut self, action: &str, payload: Value) -> Result<Value> {
        match self.call(action, payload).await? {
            Received::Result { payload, .. } => Ok(payload),
            other => bail!("{action} was not accepted: {other:?}"),
        }
    }

    /// Waits for the CALLRESULT or CALLERROR with this message id.
    pub async fn answer_to(&mut self, id: &str, limit: Duration) -> Result<Received> {
        if let Some(pos) = self.stash.iter().position(|r| answers(r, id)) {
            return Ok(self
                .stash
                .remove(pos)
                .unwrap_or(Received::Closed { code: None }));
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let received = tokio::time::timeout_at(deadline, self.incoming.recv())
                .await
                .map_err(|_| anyhow!("no answer to message {id} within {limit:?}"))?
                .ok_or_else(|| anyhow!("connection closed while waiting for {id}"))?;
            if answers(&received, id) {
                return Ok(received);
            }
            if let Received::Closed { code } = received {
                bail!("connection closed ({code:?}) while waiting for {id}");
            }
            self.stash.push_back(received);
        }
    }

    /// The next frame of any kind, if one arrives within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<Received> {
        if let Some(r) = self.stash.pop_front() {
            return Some(r);
        }
        tokio::time::timeout(limit, self.incoming.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next CALL the gateway sends, if one arrives within `limit`.
    pub async fn next_call(&mut self, limit: Duration) -> Option<(String, String, Value)> {
        if let Some(pos) = self
            .stash
            .iter()
            .position(|r| matches!(r, Received::Call { .. }))
        {
            if let Some(Received::Call {
                id,
                action,
                payload,
            }) = self.stash.remove(pos)
            {
                return Some((id, action, payload));
            }
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let received = tokio::time::timeout_at(deadline, self.incoming.recv())
                .await
                .ok()
                .flatten()?;
            match received {
                Received::Call {
                    id,
                    action,
                    payload,
                } => return Some((id, action, payload)),
                Received::Closed { .. } => {
                    self.stash.push_back(received);
                    return None;
                }
                other => self.stash.push_back(other),
            }
        }
    }

    /// Waits `limit` and fails when the gateway sends a CALL or closes the connection
    /// meanwhile: silence counts only on a connection that is still open. Other frames are
    /// kept for later.
    pub async fn quiet(&mut self, limit: Duration) -> Result<()> {
        if let Some(early) = self
            .stash
            .iter()
            .find(|r| matches!(r, Received::Call { .. } | Received::Closed { .. }))
        {
            bail!("expected silence, but {early:?} had already arrived");
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let received = match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Err(_) => return Ok(()),
                Ok(None) => bail!("expected silence, but the connection is gone"),
                Ok(Some(received)) => received,
            };
            match received {
                Received::Call { .. } | Received::Closed { .. } => {
                    let shown = format!("{received:?}");
                    self.stash.push_back(received);
                    bail!("expected silence, but {shown} arrived");
                }
                other => self.stash.push_back(other),
            }
        }
    }

    /// The next CALL, which must be `action`, within `limit`: another CALL first, a closed
    /// connection or nothing at all is an error. Returns the CALL's id and payload.
    pub async fn expect_call(&mut self, action: &str, limit: Duration) -> Result<(String, Value)> {
        match self.next_call(limit).await {
            Some((id, got, payload)) if got == action => Ok((id, payload)),
            Some((_, got, payload)) => bail!("expected {action} next, got {got} {payload}"),
            None => match self
                .stash
                .iter()
                .find(|r| matches!(r, Received::Closed { .. }))
            {
                Some(closed) => bail!("expected {action}, but the connection closed: {closed:?}"),
                None => bail!("no {action} within {limit:?}"),
            },
        }
    }

    pub fn reply(&self, id: &str, payload: Value) -> Result<()> {
        self.send_text(&json!([3, id, payload]).to_string())
    }

    pub fn reply_error(&self, id: &str, code: &str, description: &str) -> Result<()> {
        self.send_text(&json!([4, id, code, description, {}]).to_string())
    }

    /// Boots the charger the way its version does and returns the BootNotification answer.
    pub async fn boot(&mut self) -> Result<Value> {
        let payload = if self.is_v16() {
            json!({"chargePointVendor": "TestVendor", "chargePointModel": "TestModel",
                   "chargePointSerialNumber": format!("SN-{}", self.id), "firmwareVersion": "1.0.0"})
        } else {
            json!({"reason": "PowerUp", "chargingStation": {"vendorName": "TestVendor",
                   "model": "TestModel", "serialNumber": format!("SN-{}", self.id),
                   "firmwareVersion": "1.0.0"}})
        };
        self.call_ok("BootNotification", payload).await
    }

    /// Reports a connector (1.6) or EVSE connector (2.0.1) as available.
    pub async fn status_available(&mut self, connector: u32) -> Result<Value> {
        let payload = if self.is_v16() {
            json!({"connectorId": connector, "errorCode": "NoError", "status": "Available"})
        } else {
            json!({"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available",
                   "evseId": connector, "connectorId": 1})
        };
        self.call_ok("StatusNotification", payload).await
    }

    /// Waits until the gateway closes the connection; returns the close code if one was sent.
    pub async fn closed(&mut self, limit: Duration) -> Option<Option<u16>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(pos) = self
                .stash
                .iter()
                .position(|r| matches!(r, Received::Closed { .. }))
            {
                if let Some(Received::Closed { code }) = self.stash.remove(pos) {
                    return Some(code);
                }
            }
            let received = tokio::time::timeout_at(deadline, self.incoming.recv())
                .await
                .ok()?;
            match received {
                None => return Some(None),
                Some(Received::Closed { code }) => return Some(code),
                Some(_) => continue,
            }
        }
    }
}

fn answers(received: &Received, id: &str) -> bool {
    matches!(received, Received::Result { id: rid, .. } | Received::Error { id: rid, .. } if rid == id)
}

fn parse_frame(text: &str) -> Received {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return Received::Other(text.to_string());
    };
    let kind = items.first().and_then(Value::as_u64);
    let id = items
        .get(1)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match (kind, items.len()) {
        (Some(2), 4) => Received::Call {
            id,
            action: items[2].as_str().unwrap_or_default().to_string(),
            payload: items[3].clone(),
        },
        (Some(3), 3) => Received::Result {
            id,
            payload: items[2].clone(),
        },
        (Some(4), 5) => Received::Error {
            id,
            code: items[2].as_str().unwrap_or_default().to_string(),
            description: items[3].as_str().unwrap_or_default().to_string(),
        },
        _ => Received::Other(text.to_string()),
    }
}
