//! Shared fixtures for the charger-side unit tests: a state with chosen settings, an
//! in-memory WebSocket pair standing in for a charger, and a store that refuses everything
//! while counting how often it was asked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use voltgate_ocpp::{Frame, OcppVersion};
use voltgate_policy::{Engine, Preset, PrincipalKind};
use voltgate_store::*;

use crate::state::{AppState, Settings, SharedState};

pub(crate) fn settings() -> Settings {
    Settings {
        command_timeout: Duration::from_secs(5),
        max_frame_bytes: 4096,
        keep_alive: None,
        ..crate::config::ServeArgs::ephemeral().settings()
    }
}

/// The preset the charger tests run on: its `user` role grants `charge`.
pub(crate) const PRESET: &str = "zaptec";
/// An installation holding the stations [`STATIONS`].
pub(crate) const INSTALLATION: &str = "inst-1";
pub(crate) const STATIONS: [&str; 2] = ["CP-1", "CP-2"];

/// A state on `store` with an empty engine. The shutdown sender is returned so the caller can
/// keep it alive (or signal shutdown).
pub(crate) fn state_on(
    store: Arc<dyn Store>,
    settings: Settings,
) -> (SharedState, tokio::sync::watch::Sender<bool>) {
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let engine = Engine::new(Preset::builtin(PRESET).expect("builtin preset"));
    let state = Arc::new(AppState::bare(store, engine, settings, shutdown));
    (state, shutdown_tx)
}

/// Stores and registers the installation and its stations.
pub(crate) async fn seed_estate(state: &AppState) {
    let scopes = std::iter::once((INSTALLATION, "installation", "root"))
        .chain(STATIONS.iter().map(|id| (*id, "station", INSTALLATION)));
    for (id, kind, parent) in scopes {
        state
            .store
            .put_scope(&ScopeRecord {
                id: id.to_owned(),
                kind: kind.to_owned(),
                parent: Some(parent.to_owned()),
                name: None,
            })
            .await
            .expect("scope stored");
        state
            .estate
            .engine_mut()
            .add_scope(id, kind, parent)
            .expect("scope added");
    }
}

/// An in-memory store with the seeded estate.
pub(crate) async fn memory_state() -> (SharedState, tokio::sync::watch::Sender<bool>) {
    let store = voltgate_store::open("sqlite::memory:")
        .await
        .expect("in-memory store");
    let (state, shutdown) = state_on(store, settings());
    seed_estate(&state).await;
    (state, shutdown)
}

/// Stores and registers a principal (home `root`) with one id token.
pub(crate) async fn add_token_holder(
    state: &AppState,
    principal: &str,
    kind: PrincipalKind,
    token: IdTokenRecord,
) {
    state
        .store
        .put_principal(&PrincipalRecord {
            id: principal.to_owned(),
            kind: kind.as_str().to_owned(),
            home_scope: "root".to_owned(),
            name: principal.to_owned(),
            blocked: false,
        })
        .await
        .expect("principal stored");
    state
        .estate
        .engine_mut()
        .add_principal(principal, kind, "root")
        .expect("principal added");
    state
        .store
        .put_id_token(&token)
        .await
        .expect("token stored");
}

pub(crate) fn id_token(token: &str, principal: &str) -> IdTokenRecord {
    IdTokenRecord {
        id_token: token.to_owned(),
        principal: principal.to_owned(),
        blocked: false,
        expires_at: None,
        group: None,
        token_type: None,
    }
}

/// The charger's end of an in-memory connection.
pub(crate) struct FakeCharger {
    pub ws: WebSocketStream<DuplexStream>,
    next_id: u64,
}

/// Starts a session for `charger_id` over an in-memory pipe, as the server would after a
/// successful handshake.
pub(crate) async fn connect(
    state: &SharedState,
    charger_id: &str,
    version: OcppVersion,
) -> (FakeCharger, JoinHandle<()>) {
    let (charger_io, gateway_io) = tokio::io::duplex(64 * 1024);
    let config = super::server::websocket_config(state.settings.max_frame_bytes);
    let gateway = WebSocketStream::from_raw_socket(gateway_io, Role::Server, Some(config)).await;
    let charger = WebSocketStream::from_raw_socket(charger_io, Role::Client, None).await;
    let previous = state.chargers.connection_id(charger_id);
    let task = tokio::spawn(super::session::run(
        gateway,
        state.clone(),
        charger_id.to_owned(),
        version,
    ));
    // Let the session register before the test goes on.
    while state.chargers.connection_id(charger_id).is_none()
        || state.chargers.connection_id(charger_id) == previous
    {
        tokio::task::yield_now().await;
    }
    (
        FakeCharger {
            ws: charger,
            next_id: 0,
        },
        task,
    )
}

impl FakeCharger {
    pub(crate) async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("gateway reads");
    }

    /// The next message that is not a ping/pong.
    pub(crate) async fn next_message(&mut self) -> Option<Message> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub(crate) async fn next_frame(&mut self) -> Frame {
        match self.next_message().await {
            Some(Message::Text(text)) => Frame::parse(text.as_str()).expect("gateway sends OCPP-J"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Sends a CALL and returns the gateway's answer.
    pub(crate) async fn call(&mut self, action: &str, payload: Value) -> Frame {
        self.next_id += 1;
        let id = format!("c{}", self.next_id);
        let frame = Frame::Call {
            id: id.clone(),
            action: action.to_owned(),
            payload,
        };
        self.send_text(&frame.to_text()).await;
        let answer = self.next_frame().await;
        assert_eq!(answer.id(), id, "the answer carries the CALL's id");
        answer
    }

    /// The payload of a CALLRESULT, panicking on anything else.
    pub(crate) async fn call_ok(&mut self, action: &str, payload: Value) -> Value {
        match self.call(action, payload).await {
            Frame::CallResult { payload, .. } => payload,
            other => panic!("{action}: expected a CALLRESULT, got {other:?}"),
        }
    }

    /// The close code the gateway sent.
    pub(crate) async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.next_message().await {
                Some(Message::Close(frame)) => return frame.map(|f| f.code.into()),
                Some(_) => continue,
                None => return None,
            }
        }
    }
}

/// A store that fails every call and counts them, to prove which paths use the store.
#[derive(Default)]
pub(crate) struct RefusingStore {
    calls: AtomicUsize,
}

impl RefusingStore {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn refuse<T>(&self) -> Result<T, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Corrupt(
            "this test store refuses every call".to_owned(),
        ))
    }
}

#[async_trait::async_trait]
impl Store for RefusingStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn scopes(&self) -> Result<Vec<ScopeRecord>, StoreError> {
        self.refuse()
    }
    async fn scope(&self, _: &str) -> Result<Option<ScopeRecord>, StoreError> {
        self.refuse()
    }
    async fn put_scope(&self, _: &ScopeRecord) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn set_module(&self, _: &str, _: &str, _: bool) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn modules(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        self.refuse()
    }
    async fn put_principal(&self, _: &PrincipalRecord) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        self.refuse()
    }
    async fn delete_principal(&self, _: &str) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn principal_id_retired(&self, _: &str) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn set_principal_blocked(&self, _: &str, _: bool) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn put_role(&self, _: &RoleRecord) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.refuse()
    }
    async fn add_assignment(&self, _: &AssignmentRecord) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn remove_assignment(&self, _: &AssignmentRecord) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn assignments(&self) -> Result<Vec<AssignmentRecord>, StoreError> {
        self.refuse()
    }
    async fn put_charger(&self, _: &ChargerRecord) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn add_charger(&self, _: &ChargerRecord, _: &ScopeRecord) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn charger(&self, _: &str) -> Result<Option<ChargerRecord>, StoreError> {
        self.refuse()
    }
    async fn chargers_named(&self, _: &[String]) -> Result<Vec<ChargerRecord>, StoreError> {
        self.refuse()
    }
    async fn chargers(&self) -> Result<Vec<ChargerRecord>, StoreError> {
        self.refuse()
    }
    async fn charger_pending(&self, _: &str) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn set_charger_pending(&self, _: &str, _: bool) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn set_charger_schema_tolerance(
        &self,
        _: &str,
        _: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn charger_schema_tolerances(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.refuse()
    }
    async fn set_charger_behaviour(&self, _: &ChargerBehaviour) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn charger_behaviours(&self) -> Result<Vec<ChargerBehaviour>, StoreError> {
        self.refuse()
    }
    async fn record_boot(&self, _: &str, _: &BootRecord) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn add_api_token(&self, _: &ApiTokenRecord) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn principal_for_token_hash(
        &self,
        _: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        self.refuse()
    }
    async fn api_tokens_of(&self, _: &str) -> Result<Vec<ApiTokenRecord>, StoreError> {
        self.refuse()
    }
    async fn revoke_api_token(&self, _: &str) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn put_id_token(&self, _: &IdTokenRecord) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn id_tokens_named(&self, _: &str, _: &str) -> Result<Vec<IdTokenRecord>, StoreError> {
        self.refuse()
    }
    async fn id_tokens(&self) -> Result<Vec<IdTokenRecord>, StoreError> {
        self.refuse()
    }
    async fn id_tokens_of(&self, _: &str) -> Result<Vec<IdTokenRecord>, StoreError> {
        self.refuse()
    }
    async fn delete_id_token(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn local_list(&self, _: &str) -> Result<Option<LocalListRecord>, StoreError> {
        self.refuse()
    }
    async fn put_local_list(&self, _: &LocalListRecord) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn start_transaction(&self, _: &NewTransaction) -> Result<TransactionRecord, StoreError> {
        self.refuse()
    }
    async fn add_meter_values(
        &self,
        _: &str,
        _: i64,
        _: Option<i64>,
        _: &Value,
        _: &str,
    ) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn stop_transaction(
        &self,
        _: &str,
        _: i64,
        _: Option<f64>,
        _: &str,
        _: Option<&str>,
    ) -> Result<Option<TransactionRecord>, StoreError> {
        self.refuse()
    }
    async fn transaction_by_key(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<TransactionRecord>, StoreError> {
        self.refuse()
    }
    async fn transactions(
        &self,
        _: &TransactionFilter,
    ) -> Result<Vec<TransactionRecord>, StoreError> {
        self.refuse()
    }
    async fn append_audit(&self, _: &AuditRecord) -> Result<i64, StoreError> {
        self.refuse()
    }
    async fn set_audit_outcome(&self, _: i64, _: &str) -> Result<(), StoreError> {
        self.refuse()
    }
    async fn audit(&self, _: &AuditFilter) -> Result<Vec<StoredAuditRecord>, StoreError> {
        self.refuse()
    }
    async fn security_event(&self, _: &str, _: &str, _: &str, _: &Value) -> Result<(), StoreError> {
        self.refuse()
    }
}
