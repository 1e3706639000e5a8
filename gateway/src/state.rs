//! The state every part of the gateway shares, and the start-up steps that build it.
//!
//! Both listeners (chargers and operators) hold one [`SharedState`]. The role engine and the
//! store it mirrors live in the [`Estate`], the one write path for every change the engine
//! decides on.
//!
//! Secrets are only ever handled here as hashes: API tokens are high-entropy random strings
//! stored as a plain SHA-256 digest, charger passwords are chosen by people and stored as
//! salted Argon2id hashes.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use voltgate_policy::{Engine, PrincipalKind, ROOT_SCOPE_ID};
use voltgate_store::{ApiTokenRecord, ChargerRecord, PrincipalRecord, Store, StoreError};

use crate::clock;
use voltgate_estate::{ChangeError, Estate};

/// Everything a request handler or a charger session may need.
pub(crate) struct AppState {
    /// The role engine and the one write path for what it decides on.
    pub estate: Estate,
    pub store: Arc<dyn Store>,
    pub validator: Arc<voltgate_ocpp::Validator>,
    pub chargers: crate::charger::ChargerRegistry,
    pub metrics: crate::metrics::Metrics,
    pub settings: Settings,
    /// `true` once shutdown began.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Failed-authentication throttles and the verified-password cache of both listeners.
    pub auth_guard: crate::throttle::AuthGuard,
    /// Keeps chargers' local authorisation lists in sync with the role engine.
    pub local_lists: crate::local_list::LocalLists,
    /// Each charger's schema tolerance and the deviations accepted from it.
    pub quirks: crate::charger::Quirks,
    /// Each charger's post-boot sync and free-vend settings.
    pub behaviours: crate::behaviour::Behaviours,
    /// This node's cluster membership; `None` for a gateway running alone (no `--cluster`).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl AppState {
    /// A state without listeners over `store`, whose contents `engine` holds: default
    /// throttles, local lists off. For embedding the API router (the fuzz targets, unit tests).
    pub(crate) fn bare(
        store: Arc<dyn Store>,
        engine: Engine,
        settings: Settings,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> AppState {
        AppState {
            estate: Estate::new(store.clone(), engine),
            store,
            validator: Arc::new(
                voltgate_ocpp::Validator::new().expect("the vendored OCPP schemas compile"),
            ),
            chargers: crate::charger::ChargerRegistry::new(),
            metrics: crate::metrics::Metrics::new(),
            settings,
            shutdown,
            auth_guard: crate::throttle::AuthGuard::new(),
            local_lists: crate::local_list::LocalLists::new(false),
            quirks: crate::charger::Quirks::new(voltgate_ocpp::Tolerance::Lenient),
            behaviours: crate::behaviour::Behaviours::new(),
            cluster: None,
        }
    }
}

/// Run-time knobs that come from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sent to chargers in BootNotification responses.
    pub heartbeat_interval_secs: u32,
    /// How long an operator command waits for the charger's answer.
    pub command_timeout: Duration,
    /// Larger WebSocket frames are refused.
    pub max_frame_bytes: usize,
    /// Unknown chargers are created under this scope instead of being refused.
    pub auto_register: Option<String>,
    /// Auto-registered chargers are trusted at once rather than held pending approval.
    pub auto_register_trusted: bool,
    /// Chargers connect to `{ocpp_path_prefix}/{id}`.
    pub ocpp_path_prefix: String,
    /// OCPP security profile given to auto-registered chargers.
    pub default_security_profile: u8,
    /// Whether a TLS listener for chargers is configured (profiles 2 and 3 need one).
    pub ocpp_tls: bool,
    /// Whether that listener checks client certificates against a CA (profile 3 needs it).
    pub ocpp_client_ca: bool,
    /// When a silent charger is pinged and dropped; `None` = never.
    pub keep_alive: Option<crate::charger::KeepAlive>,
    /// Peers whose `X-Forwarded-For` or PROXY line names the client address.
    pub trusted_proxies: crate::proxy::TrustedProxies,
}

pub(crate) type SharedState = Arc<AppState>;

/// The principal created at first start; it may do everything.
pub(crate) const ADMIN_PRINCIPAL: &str = "admin";
/// Prefix of every API token the gateway issues, so leaked tokens are easy to recognise.
pub(crate) const API_TOKEN_PREFIX: &str = "vg_";

/// A new API token: the prefix followed by 32 random bytes in hex.
pub(crate) fn new_api_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{API_TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// A short random identifier for stored token rows (not secret).
pub(crate) fn new_token_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("tok_{}", hex::encode(bytes))
}

/// The stored form of an API token (lowercase hex SHA-256). Tokens carry 256 random bits,
/// so an unsalted digest is enough and allows a direct lookup.
pub(crate) fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Scheme tag of the salted SHA-256 format written by earlier releases; still verified, and
/// replaced by an Argon2id hash at the charger's next successful handshake.
const LEGACY_PASSWORD_SCHEME: &str = "sha256";

/// Argon2id cost for charger passwords: 8 MiB and 2 passes keep a verification in the low
/// milliseconds on one core (a boot storm is further absorbed by
/// [`crate::throttle::VerifiedPasswords`]) while making offline guessing costly.
const PASSWORD_MEMORY_KIB: u32 = 8 * 1024;
const PASSWORD_PASSES: u32 = 2;

fn password_hasher() -> argon2::Argon2<'static> {
    let params =
        argon2::Params::new(PASSWORD_MEMORY_KIB, PASSWORD_PASSES, 1, None).unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// The stored form of a charger password: an Argon2id hash in PHC string format
/// (`$argon2id$v=19$m=…,t=…,p=1$salt$hash`) with a random 16-byte salt.
pub(crate) fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let hashed = SaltString::encode_b64(&salt).and_then(|salt| {
        password_hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    });
    match hashed {
        Ok(phc) => phc,
        // Only reachable with invalid constant parameters; the salted digest is still a
        // valid stored form and is upgraded at the next successful handshake.
        Err(_) => legacy_hash_password(password, &salt),
    }
}

fn legacy_hash_password(password: &str, salt: &[u8]) -> String {
    format!(
        "{LEGACY_PASSWORD_SCHEME}${}${}",
        hex::encode(salt),
        hex::encode(salted_digest(salt, password))
    )
}

/// Whether `presented` matches a stored password hash (Argon2 PHC string, or the older
/// `sha256$<salt hex>$<digest hex>` form); compares in constant time. Slow by design: call
/// it off the async executor.
pub(crate) fn verify_password(stored: &str, presented: &str) -> bool {
    if stored.starts_with('$') {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        return PasswordHash::new(stored).is_ok_and(|hash| {
            password_hasher()
                .verify_password(presented.as_bytes(), &hash)
                .is_ok()
        });
    }
    let mut parts = stored.split('$');
    let (Some(scheme), Some(salt_hex), Some(digest_hex), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if scheme != LEGACY_PASSWORD_SCHEME {
        return false;
    }
    let (Ok(salt), Ok(expected)) = (hex::decode(salt_hex), hex::decode(digest_hex)) else {
        return false;
    };
    constant_time_eq(&salted_digest(&salt, presented), &expected)
}

/// Whether a stored hash should be replaced by a fresh [`hash_password`] once the password
/// is known again (older format or other cost parameters).
pub(crate) fn password_needs_rehash(stored: &str) -> bool {
    let current = format!("m={PASSWORD_MEMORY_KIB},t={PASSWORD_PASSES},p=1$");
    !(stored.starts_with("$argon2id$v=19$") && stored.contains(&current))
}

fn salted_digest(salt: &[u8], password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

/// Equality whose running time depends only on the lengths, not on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Creates a charger: its store record and its station scope under `parent_scope`, with an
/// explicit OCPP security profile (0–3) that the caller has checked against the password and
/// the listeners. Used by `POST /api/v1/chargers` and by auto-registration at the handshake;
/// the caller audits the decision.
pub(crate) async fn register_charger_with_profile(
    state: &AppState,
    id: &str,
    parent_scope: &str,
    password_hash: Option<String>,
    security_profile: u8,
) -> Result<(), ChangeError> {
    state
        .estate
        .register_charger(&ChargerRecord {
            id: id.to_owned(),
            scope: parent_scope.to_owned(),
            password_hash,
            security_profile,
            pending: false,
        })
        .await
}

/// Why the gateway could not start from its stored state.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored principal `admin` exists but is of kind `{0}`, not `system`")]
    AdminNotSystem(String),
    #[error("the role engine refused the bootstrap administrator: {0}")]
    Engine(String),
}

/// Ensures the bootstrap principal `admin` (kind system, home `root`) exists and can log in.
///
/// With `configured_token`, its hash is registered (once). Without one, a token is generated
/// only when `admin` did not exist yet; it is returned so the caller can show it once.
pub(crate) async fn bootstrap_admin(
    store: &dyn Store,
    engine: &mut Engine,
    configured_token: Option<&str>,
) -> Result<Option<String>, StartupError> {
    let existing = engine.principal_kind(ADMIN_PRINCIPAL);
    match existing {
        Some(PrincipalKind::System) => {}
        Some(other) => return Err(StartupError::AdminNotSystem(other.as_str().to_owned())),
        None => {
            let record = PrincipalRecord {
                id: ADMIN_PRINCIPAL.to_owned(),
                kind: PrincipalKind::System.as_str().to_owned(),
                home_scope: ROOT_SCOPE_ID.to_owned(),
                name: "Bootstrap administrator".to_owned(),
                blocked: false,
            };
            store.put_principal(&record).await?;
            engine
                .add_principal(ADMIN_PRINCIPAL, PrincipalKind::System, ROOT_SCOPE_ID)
                .map_err(|err| StartupError::Engine(err.to_string()))?;
        }
    }
    engine
        .protect_principal(ADMIN_PRINCIPAL)
        .map_err(|err| StartupError::Engine(err.to_string()))?;
    let (token, generated) = match configured_token {
        Some(token) => (token.to_owned(), false),
        None if existing.is_none() => (new_api_token(), true),
        None => return Ok(None),
    };
    let hash = hash_token(&token);
    if store.principal_for_token_hash(&hash).await?.is_none() {
        store
            .add_api_token(&ApiTokenRecord {
                id: new_token_id(),
                principal: ADMIN_PRINCIPAL.to_owned(),
                hash,
                created_at: clock::now_rfc3339(),
                expires_at: None,
            })
            .await?;
    }
    Ok(generated.then_some(token))
}

/// Why `voltgate admin reset-token` could not issue a new admin token.
#[derive(Debug, thiserror::Error)]
pub enum AdminResetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("this database has no principal `admin`: start the gateway on it once to create one")]
    NoAdmin,
}

/// Issues a new token for the bootstrap `admin` and revokes every other token it has (the
/// lost or leaked ones): the way back in when the admin token is gone. Works on the store
/// alone, so it runs with the gateway stopped; a running gateway checks tokens against the
/// store on every request and sees the change at once. Returns the new token (shown once,
/// stored only as a hash) and how many tokens were revoked.
pub async fn reset_admin_token(store: &dyn Store) -> Result<(String, usize), AdminResetError> {
    let admin = store
        .principals()
        .await?
        .into_iter()
        .any(|principal| principal.id == ADMIN_PRINCIPAL);
    if !admin {
        return Err(AdminResetError::NoAdmin);
    }
    let earlier = store.api_tokens_of(ADMIN_PRINCIPAL).await?;
    let token = new_api_token();
    store
        .add_api_token(&ApiTokenRecord {
            id: new_token_id(),
            principal: ADMIN_PRINCIPAL.to_owned(),
            hash: hash_token(&token),
            created_at: clock::now_rfc3339(),
            expires_at: None,
        })
        .await?;
    let mut revoked = 0;
    for record in earlier {
        if store.revoke_api_token(&record.id).await? {
            revoked += 1;
        }
    }
    Ok((token, revoked))
}

#[cfg(test)]
pub(crate) mod testing {
    //! One way to build a complete state for unit tests: in-memory store, a builtin preset,
    //! no listeners.

    use super::*;
    use voltgate_estate::load_engine;
    use voltgate_policy::Preset;

    pub(crate) const TEST_COMMAND_TIMEOUT: Duration = Duration::from_millis(200);

    pub(crate) async fn test_state(preset: &str) -> SharedState {
        let store = voltgate_store::open("sqlite::memory:")
            .await
            .expect("in-memory store opens");
        let preset = Preset::builtin(preset).expect("builtin preset loads");
        let engine = load_engine(store.as_ref(), preset)
            .await
            .expect("empty store replays");
        state_from_parts(store, engine)
    }

    pub(crate) fn state_from_parts(store: Arc<dyn Store>, engine: Engine) -> SharedState {
        let (_tx, shutdown) = tokio::sync::watch::channel(false);
        let settings = Settings {
            command_timeout: TEST_COMMAND_TIMEOUT,
            keep_alive: None,
            ..crate::config::ServeArgs::ephemeral().settings()
        };
        Arc::new(AppState::bare(store, engine, settings, shutdown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltgate_estate::load_engine;
    use voltgate_policy::{Preset, STATION_KIND};

    #[test]
    fn password_hash_round_trip_and_salt() {
        let a = hash_password("correct horse");
        let b = hash_password("correct horse");
        assert_ne!(a, b, "two hashes of one password differ by salt");
        assert!(verify_password(&a, "correct horse"));
        assert!(verify_password(&b, "correct horse"));
        assert!(!verify_password(&a, "correct horsf"));
        assert!(!verify_password("garbage", "correct horse"));
        assert!(!verify_password("md5$00$00", "correct horse"));
    }

    #[test]
    fn argon2_hashes_and_legacy_digests_both_verify() {
        let modern = hash_password("correct horse");
        assert!(modern.starts_with("$argon2id$"), "{modern}");
        assert!(!modern.contains("correct horse"));
        assert!(!password_needs_rehash(&modern));
        let legacy = legacy_hash_password("correct horse", &[7u8; 16]);
        assert!(legacy.starts_with("sha256$"));
        assert!(verify_password(&legacy, "correct horse"));
        assert!(!verify_password(&legacy, "correct horsf"));
        assert!(password_needs_rehash(&legacy));
        assert!(!verify_password("$argon2id$garbage", "correct horse"));
    }

    #[test]
    fn api_tokens_are_prefixed_random_and_hash_stably() {
        let a = new_api_token();
        let b = new_api_token();
        assert!(a.starts_with(API_TOKEN_PREFIX));
        assert_eq!(a.len(), API_TOKEN_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).len(), 64);
    }

    #[tokio::test]
    async fn bootstrap_generates_a_token_once_and_replay_keeps_everything() {
        let store = voltgate_store::open("sqlite::memory:").await.unwrap();
        let preset = Preset::builtin("connect").unwrap();
        let mut engine = load_engine(store.as_ref(), preset.clone()).await.unwrap();
        let token = bootstrap_admin(store.as_ref(), &mut engine, None)
            .await
            .unwrap()
            .expect("first start generates a token");
        let record = store
            .principal_for_token_hash(&hash_token(&token))
            .await
            .unwrap()
            .expect("the token hash is stored");
        assert_eq!(record.principal, ADMIN_PRINCIPAL);
        assert_ne!(record.hash, token, "the clear token is never stored");

        let mut again = load_engine(store.as_ref(), preset).await.unwrap();
        assert_eq!(
            again.principal_kind(ADMIN_PRINCIPAL),
            Some(PrincipalKind::System)
        );
        let second = bootstrap_admin(store.as_ref(), &mut again, None)
            .await
            .unwrap();
        assert_eq!(second, None, "an existing admin gets no new token");
    }

    #[tokio::test]
    async fn configured_admin_token_is_registered_once() {
        let store = voltgate_store::open("sqlite::memory:").await.unwrap();
        let preset = Preset::builtin("connect").unwrap();
        let mut engine = load_engine(store.as_ref(), preset).await.unwrap();
        for _ in 0..2 {
            let shown = bootstrap_admin(store.as_ref(), &mut engine, Some("vg_configured"))
                .await
                .unwrap();
            assert_eq!(shown, None, "a configured token is never printed");
        }
        let tokens = store.api_tokens_of(ADMIN_PRINCIPAL).await.unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].hash, hash_token("vg_configured"));
    }

    #[tokio::test]
    async fn replay_restores_scopes_and_chargers_without_scope_rows() {
        let store = voltgate_store::open("sqlite::memory:").await.unwrap();
        store
            .put_scope(&voltgate_store::ScopeRecord {
                id: "north".into(),
                kind: "site".into(),
                parent: Some(ROOT_SCOPE_ID.into()),
                name: None,
            })
            .await
            .unwrap();
        store
            .put_charger(&ChargerRecord {
                id: "CP-1".into(),
                scope: "north".into(),
                password_hash: None,
                security_profile: 0,
                pending: false,
            })
            .await
            .unwrap();
        let engine = load_engine(store.as_ref(), Preset::builtin("connect").unwrap())
            .await
            .unwrap();
        assert_eq!(engine.scope_kind("north"), Some("site"));
        assert_eq!(engine.scope_kind("CP-1"), Some(STATION_KIND));
        assert_eq!(engine.scope_parent("CP-1"), Some("north"));
    }
}
