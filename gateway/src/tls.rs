//! TLS for both listeners: the charger listener for OCPP security profiles 2 and 3 (wss://),
//! and optionally HTTPS for the operator API.
//!
//! Only TLS 1.2 and 1.3 are offered, with the cipher suites OCPP 2.0.1 part 2 (A00) and the
//! OCPP 1.6 security whitepaper list that rustls implements: for TLS 1.2
//! `TLS_ECDHE_ECDSA_WITH_AES_{128,256}_GCM_*` and `TLS_ECDHE_RSA_WITH_AES_{128,256}_GCM_*`, for
//! TLS 1.3 `TLS_AES_128_GCM_SHA256` and `TLS_AES_256_GCM_SHA384`. The specification also lists
//! `TLS_RSA_WITH_AES_{128,256}_GCM_*` (static RSA key exchange, no forward secrecy) for chargers
//! without elliptic-curve support; rustls does not implement them, so such a charger needs the
//! ECDHE_RSA suites, which every TLS 1.2 stack of the last decade offers.
//!
//! With a client CA configured, the charger listener asks for a client certificate but does
//! not require one at the TLS level, so profile-2 chargers share the listener with profile-3
//! ones; a presented certificate must chain to the CA and be valid now, or the TLS handshake
//! fails. Whether a certificate is required, and whether it names the charger, is decided at
//! the WebSocket handshake (see [`crate::charger::server`]) from the names extracted here.
//!
//! Certificate, key and CA files are re-read on SIGHUP and when their modification time or
//! size changes (polled every few seconds). Each accepted connection takes the configuration
//! current at that moment, so open connections keep theirs; a new file that does not load
//! leaves the old configuration in place and is logged (and counted) as an error.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use axum::Router;
use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{CipherSuite, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::charger::server::{self, Transport};
use crate::config::OcppTls;
use crate::state::SharedState;

/// How often the certificate files are checked for changes.
pub(crate) const RELOAD_POLL: Duration = Duration::from_secs(2);
/// A TLS handshake must finish within this time.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// API connections whose TLS handshake is done but which axum has not picked up yet.
const API_ACCEPT_QUEUE: usize = 64;

/// The cipher suites offered, in the order of preference.
pub(crate) const CIPHER_SUITES: &[CipherSuite] = &[
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
];

/// Why a TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read {what} `{path}`: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{what} `{path}` holds no certificate")]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("client CA `{path}` is not usable: {reason}")]
    ClientCa { path: PathBuf, reason: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("{0}")]
    Settings(String),
}

/// Which files make up one listener's TLS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA certificates client certificates must chain to; `None`: no client certificates.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [self.cert.as_path(), self.key.as_path()]
            .into_iter()
            .chain(self.client_ca.as_deref())
    }
}

/// The crypto provider restricted to [`CIPHER_SUITES`].
fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|suite| CIPHER_SUITES.contains(&suite.suite()));
    provider.cipher_suites.sort_by_key(|suite| {
        CIPHER_SUITES
            .iter()
            .position(|allowed| *allowed == suite.suite())
    });
    Arc::new(provider)
}

fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// Builds a server configuration from the files.
pub(crate) fn load_server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let certificates = read_certificates("certificate", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Read {
        what: "private key",
        path: files.key.clone(),
        source,
    })?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates("client CA", path)? {
                roots.add(certificate).map_err(|err| TlsError::ClientCa {
                    path: path.clone(),
                    reason: err.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|err| TlsError::ClientCa {
                    path: path.clone(),
                    reason: err.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(builder.with_single_cert(certificates, key)?)
}

/// Modification time and size of each file, to notice replacements.
type FileStamps = Vec<Option<(SystemTime, u64)>>;

fn stamps(files: &TlsFiles) -> FileStamps {
    files
        .paths()
        .map(|path| {
            std::fs::metadata(path)
                .ok()
                .and_then(|meta| Some((meta.modified().ok()?, meta.len())))
        })
        .collect()
}

/// A listener's TLS configuration that can be swapped while connections are open.
pub(crate) struct ReloadingTls {
    /// `ocpp` or `api`, for logs and metrics.
    pub listener: &'static str,
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    seen: Mutex<FileStamps>,
}

impl ReloadingTls {
    /// Loads the files once; fails when they do not make a configuration.
    pub(crate) fn load(listener: &'static str, files: TlsFiles) -> Result<ReloadingTls, TlsError> {
        let seen = stamps(&files);
        let config = load_server_config(&files)?;
        Ok(ReloadingTls {
            listener,
            files,
            current: RwLock::new(Arc::new(config)),
            seen: Mutex::new(seen),
        })
    }

    /// The configuration for the next connection.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.current.read().clone()
    }

    /// Re-reads the files; on failure the previous configuration stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        *self.seen.lock() = stamps(&self.files);
        let config = load_server_config(&self.files)?;
        *self.current.write() = Arc::new(config);
        Ok(())
    }

    /// Reloads when a file's modification time or size changed; `None` when nothing changed.
    pub(crate) fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = stamps(&self.files);
        if *self.seen.lock() == now {
            return None;
        }
        Some(self.reload())
    }

    fn report(&self, state: &SharedState, trigger: &str, result: Result<(), TlsError>) {
        match result {
            Ok(()) => {
                state.metrics.tls_reload(self.listener, true);
                tracing::info!(
                    listener = self.listener,
                    trigger,
                    "TLS certificate reloaded"
                );
            }
            Err(err) => {
                state.metrics.tls_reload(self.listener, false);
                tracing::error!(
                    listener = self.listener,
                    trigger,
                    error = %err,
                    "TLS files could not be reloaded; keeping the previous certificate"
                );
            }
        }
    }

    /// Reloads on SIGHUP and on file changes until shutdown.
    pub(crate) fn spawn_watcher(self: &Arc<Self>, state: SharedState) {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut shutdown = state.shutdown.clone();
            #[cfg(unix)]
            let mut hangup = match tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            ) {
                Ok(signal) => Some(signal),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot watch SIGHUP; TLS files reload on change only");
                    None
                }
            };
            let mut poll = tokio::time::interval(RELOAD_POLL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hangup_received = async {
                    match hangup.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup_received = std::future::pending::<Option<()>>();
                if *shutdown.borrow() {
                    return;
                }
                tokio::select! {
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    _ = hangup_received => {
                        let result = tls.reload();
                        tls.report(&state, "SIGHUP", result);
                    }
                    _ = poll.tick() => {
                        if let Some(result) = tls.reload_if_changed() {
                            tls.report(&state, "file change", result);
                        }
                    }
                }
            }
        });
    }
}

/// Why a client certificate names no charge point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CertificateIdentityError {
    #[error("the client certificate cannot be read")]
    Unreadable,
    #[error("the client certificate's subject has no common name")]
    NoCommonName,
    #[error("the client certificate's subject has several common names")]
    SeveralCommonNames,
}

/// The charge point id a DER client certificate names: its one subject common name (OCPP 1.6
/// security whitepaper and OCPP 2.0.1 part 2 A00: the CN holds the charge point identity).
/// Subject alternative names identify nothing here: a certificate listing several names must
/// not connect as each of them, and neither may one with several common names.
pub(crate) fn certificate_identity(certificate: &[u8]) -> Result<String, CertificateIdentityError> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate) else {
        return Err(CertificateIdentityError::Unreadable);
    };
    let mut common_names = parsed.subject().iter_common_name();
    let first = common_names
        .next()
        .ok_or(CertificateIdentityError::NoCommonName)?;
    if common_names.next().is_some() {
        return Err(CertificateIdentityError::SeveralCommonNames);
    }
    first
        .as_str()
        .map(str::to_owned)
        .map_err(|_| CertificateIdentityError::Unreadable)
}

/// Binds the charger TLS listener when one is configured and serves it until shutdown;
/// returns its address.
pub(crate) async fn start_charger_listener(
    config: Option<&OcppTls>,
    state: &SharedState,
) -> Result<Option<SocketAddr>, TlsError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let tls = Arc::new(ReloadingTls::load("ocpp", config.files.clone())?);
    let address = config.listen;
    let listener = TcpListener::bind(address).await.map_err(|err| {
        TlsError::Settings(format!(
            "cannot listen for chargers over TLS on {address}: {err}"
        ))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|err| TlsError::Settings(err.to_string()))?;
    tls.spawn_watcher(state.clone());
    tokio::spawn(serve_chargers(listener, state.clone(), tls));
    Ok(Some(bound))
}

/// The API's TLS configuration when one is configured (watched for changes until shutdown).
pub(crate) fn api_tls(
    files: Option<&TlsFiles>,
    state: &SharedState,
) -> Result<Option<Arc<ReloadingTls>>, TlsError> {
    let Some(files) = files else {
        return Ok(None);
    };
    let tls = Arc::new(ReloadingTls::load("api", files.clone())?);
    tls.spawn_watcher(state.clone());
    Ok(Some(tls))
}

/// Accepts chargers over TLS until shutdown; after the TLS handshake each connection goes
/// through the same WebSocket handshake as plain ones.
pub(crate) async fn serve_chargers(
    listener: TcpListener,
    state: SharedState,
    tls: Arc<ReloadingTls>,
) -> io::Result<()> {
    server::accept_until_shutdown(listener, state, "ocpp_tls", move |stream, peer, state| {
        charger_connection(stream, peer, state, tls.current())
    })
    .await
}

async fn charger_connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: SharedState,
    config: Arc<ServerConfig>,
) {
    let handshake = TlsAcceptor::from(config).accept(stream);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => {
            let client_identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| certificate_identity(leaf.as_ref()));
            server::connection(stream, peer, state, Transport::Tls { client_identity }).await;
        }
        Ok(Err(err)) => {
            state.metrics.handshake_refused("tls_handshake");
            state.auth_guard.chargers.record_address_failure(peer.ip());
            tracing::info!(%peer, error = %err, "charger TLS handshake failed");
        }
        Err(_) => {
            state.metrics.handshake_refused("timeout");
            tracing::info!(%peer, "charger TLS handshake timed out");
        }
    }
}

/// The client address of an API connection, plain or TLS (axum's `ConnectInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// A TCP listener whose connections come out TLS-terminated. Handshakes run in their own
/// tasks, so a slow client does not hold up the others.
pub(crate) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, tls: Arc<ReloadingTls>) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (done, ready) = mpsc::channel(API_ACCEPT_QUEUE);
        let acceptor = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accepting an API connection failed");
                        tokio::time::sleep(server::ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                };
                let done = done.clone();
                let config = tls.current();
                tokio::spawn(async move {
                    let handshake = TlsAcceptor::from(config).accept(stream);
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => {
                            let _ = done.send((stream, peer)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "API TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "API TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task is gone (only when the listener is being dropped).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves the operator API over plain HTTP, or HTTPS with `tls`, until `shutdown` completes.
/// Handlers see the client address as `ConnectInfo<PeerAddr>`.
pub(crate) async fn serve_api<F>(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<ReloadingTls>>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    match tls {
        None => {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<PeerAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        Some(tls) => {
            axum::serve(
                TlsListener::new(listener, tls)?,
                app.into_make_service_with_connect_info::<PeerAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

    struct Pki {
        dir: tempfile::TempDir,
        ca: rcgen::Certificate,
        ca_key: KeyPair,
    }

    impl Pki {
        fn new() -> Pki {
            let ca_key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(DnType::CommonName, "test CA");
            let ca = params.self_signed(&ca_key).unwrap();
            Pki {
                dir: tempfile::tempdir().unwrap(),
                ca,
                ca_key,
            }
        }

        fn issue(&self, name: &str, common_name: &str) -> (String, String) {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        }

        fn write(&self, file: &str, text: &str) -> PathBuf {
            let path = self.dir.path().join(file);
            std::fs::write(&path, text).unwrap();
            path
        }

        fn files(&self, name: &str) -> TlsFiles {
            let (cert, key) = self.issue(name, name);
            TlsFiles {
                cert: self.write("server.pem", &cert),
                key: self.write("server.key", &key),
                client_ca: Some(self.write("ca.pem", &self.ca.pem())),
            }
        }
    }

    #[test]
    fn only_the_listed_suites_and_versions_are_offered() {
        let pki = Pki::new();
        let config = load_server_config(&pki.files("localhost")).unwrap();
        let offered: Vec<CipherSuite> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|suite| suite.suite())
            .collect();
        assert_eq!(offered, CIPHER_SUITES);
        assert!(!offered.contains(&CipherSuite::TLS13_CHACHA20_POLY1305_SHA256));
    }

    #[test]
    fn the_identity_is_the_one_subject_common_name() {
        let pki = Pki::new();
        let issue = |common_names: &[&str], alternative: &[&str]| {
            let key = KeyPair::generate().unwrap();
            let names: Vec<String> = alternative.iter().map(|n| (*n).to_owned()).collect();
            let mut params = CertificateParams::new(names).unwrap();
            params
                .subject_alt_names
                .push(SanType::URI("urn:cp:CP-8".try_into().unwrap()));
            params.distinguished_name = rcgen::DistinguishedName::new();
            for name in common_names {
                params.distinguished_name.push(DnType::CommonName, *name);
            }
            params.signed_by(&key, &pki.ca, &pki.ca_key).unwrap()
        };
        let cert = issue(&["CP-7"], &["CP-9", "cp-7.example"]);
        assert_eq!(certificate_identity(cert.der()).as_deref(), Ok("CP-7"));
        let two = {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, "CP-7");
            // A second CN attribute, which rcgen only writes under a custom type of the same OID.
            params
                .distinguished_name
                .push(DnType::CustomDnType(vec![2, 5, 4, 3]), "CP-8");
            params.signed_by(&key, &pki.ca, &pki.ca_key).unwrap()
        };
        assert_eq!(
            certificate_identity(two.der()),
            Err(CertificateIdentityError::SeveralCommonNames)
        );
        let no_cn = issue(&[], &["CP-7"]);
        assert_eq!(
            certificate_identity(no_cn.der()),
            Err(CertificateIdentityError::NoCommonName)
        );
        assert_eq!(
            certificate_identity(b"not a certificate"),
            Err(CertificateIdentityError::Unreadable)
        );
    }

    #[test]
    fn bad_files_are_reported_and_reload_keeps_the_old_config() {
        let pki = Pki::new();
        let files = pki.files("localhost");
        let tls = ReloadingTls::load("ocpp", files.clone()).unwrap();
        let before = tls.current();
        assert!(tls.reload_if_changed().is_none(), "nothing changed");

        std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
        let result = tls.reload();
        assert!(result.is_err());
        assert!(Arc::ptr_eq(&before, &tls.current()), "old config kept");

        let (cert, key) = pki.issue("localhost", "second");
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        tls.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, &tls.current()), "new config in place");

        let missing = TlsFiles {
            cert: pki.dir.path().join("missing.pem"),
            ..files
        };
        let err = load_server_config(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let pki = Pki::new();
        let files = pki.files("localhost");
        let (_, other_key) = pki.issue("localhost", "other");
        std::fs::write(&files.key, other_key).unwrap();
        assert!(load_server_config(&files).is_err());
    }
}
