//! TLS for the end-to-end suite: a throwaway certificate authority made by the test itself (rcgen),
//! server and charger certificates issued from it, and TLS clients for the charger listener and the
//! API. Nothing here is checked in; every key lives in a temporary directory for one test.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::charger::{Charger, Refusal};

/// A certificate authority with its key, and a directory for the files it issues.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

/// A client certificate chain with its private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl Identity {
    pub fn key(&self) -> Result<PrivateKeyDer<'static>> {
        PrivateKeyDer::try_from(self.key_der.clone()).map_err(|e| anyhow!("bad key: {e}"))
    }
}

/// How long a certificate is valid, relative to now.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// From a day ago for a year.
    Current,
    /// From ten days ago until yesterday.
    Expired,
}

impl Pki {
    pub fn new(name: &str) -> Result<Pki> {
        let ca_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        set_validity(&mut params, Validity::Current);
        let ca = params.self_signed(&ca_key)?;
        Ok(Pki {
            dir: tempfile::tempdir()?,
            ca,
            ca_key,
        })
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Writes the CA certificate and returns its path.
    pub fn ca_file(&self) -> Result<PathBuf> {
        self.write("ca.pem", &self.ca.pem())
    }

    /// Issues a server certificate for `localhost` and 127.0.0.1 with the given common name and
    /// writes it and its key under `stem` (`{stem}.pem`, `{stem}.key`).
    pub fn server_files(&self, stem: &str, common_name: &str) -> Result<(PathBuf, PathBuf)> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params, Validity::Current);
        let cert = params.signed_by(&key, &self.ca, &self.ca_key)?;
        let cert_path = self.write(&format!("{stem}.pem"), &cert.pem())?;
        let key_path = self.write(&format!("{stem}.key"), &key.serialize_pem())?;
        Ok((cert_path, key_path))
    }

    /// Issues a client certificate whose subject CN is `common_name`, with `alt_names` as DNS
    /// subject alternative names.
    pub fn client(
        &self,
        common_name: &str,
        alt_names: &[&str],
        validity: Validity,
    ) -> Result<Identity> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = alt_names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params, validity);
        let cert = params.signed_by(&key, &self.ca, &self.ca_key)?;
        Ok(Identity {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
        })
    }

    /// Issues a client certificate whose subject carries one or two CN attributes (rcgen keeps
    /// one value per attribute type, so a second CN goes under the CN's own OID).
    pub fn client_with_common_names(&self, common_names: &[&str]) -> Result<Identity> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (n, name) in common_names.iter().enumerate() {
            let kind = match n {
                0 => DnType::CommonName,
                _ => DnType::CustomDnType(vec![2, 5, 4, 3]),
            };
            params.distinguished_name.push(kind, *name);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params, Validity::Current);
        let cert = params.signed_by(&key, &self.ca, &self.ca_key)?;
        Ok(Identity {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
        })
    }

    pub fn write(&self, file: &str, text: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let now = time::OffsetDateTime::now_utc();
    let (from, until) = match validity {
        Validity::Current => (
            now - time::Duration::days(1),
            now + time::Duration::days(365),
        ),
        Validity::Expired => (
            now - time::Duration::days(10),
            now - time::Duration::days(1),
        ),
    };
    params.not_before = from;
    params.not_after = until;
}

/// A client configuration trusting the CA certificates in `trusted_ca_pem`, presenting
/// `identity` when given.
pub fn client_config(
    trusted_ca_pem: &str,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(trusted_ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => builder.with_client_auth_cert(identity.chain.clone(), identity.key()?)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `host:port` of a `ws://`, `wss://`, `http://` or `https://` URL.
pub fn authority(url: &str) -> Result<String> {
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("`{url}` has no scheme"))?;
    Ok(rest.split('/').next().unwrap_or(rest).to_string())
}

/// Opens a TCP connection to `authority` and runs the TLS handshake as 127.0.0.1.
pub async fn connect(
    authority: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(authority).await?;
    let name = ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
    TlsConnector::from(config).connect(name, tcp).await
}

/// How a charger's attempt over TLS ended.
pub enum TlsAttempt {
    Connected(Charger),
    /// The WebSocket handshake was answered with an HTTP error.
    Refused(Refusal),
    /// The TLS handshake failed or the connection broke before an HTTP answer.
    TlsFailed(TlsFailure),
}

/// Why a connection failed below HTTP, told apart so a test can require the one it means: a
/// gateway that refuses a certificate sends an alert; a broken listener only closes.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsFailure {
    /// The gateway ended the handshake with this fatal alert.
    AlertFromGateway(AlertDescription),
    /// This client refused the gateway's certificate.
    GatewayCertificateRefused(String),
    /// Any other TLS error, on either side.
    Tls(String),
    /// The connection failed or closed without a TLS error (refused, reset, end of stream).
    Transport(String),
}

impl TlsFailure {
    /// Classifies the first TLS or I/O error found in `error`'s chain.
    pub fn classify(error: &anyhow::Error) -> TlsFailure {
        for cause in error.chain() {
            if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
                return TlsFailure::from_rustls(tls);
            }
            let io = match cause.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
                Some(tokio_tungstenite::tungstenite::Error::Io(io)) => Some(io),
                _ => cause.downcast_ref::<std::io::Error>(),
            };
            if let Some(io) = io {
                return TlsFailure::from_io(io);
            }
        }
        TlsFailure::Transport(format!("{error:#}"))
    }

    pub fn from_io(error: &std::io::Error) -> TlsFailure {
        match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => TlsFailure::from_rustls(tls),
            None => TlsFailure::Transport(error.to_string()),
        }
    }

    fn from_rustls(error: &rustls::Error) -> TlsFailure {
        match error {
            rustls::Error::AlertReceived(alert) => TlsFailure::AlertFromGateway(*alert),
            rustls::Error::InvalidCertificate(why) => {
                TlsFailure::GatewayCertificateRefused(format!("{why:?}"))
            }
            other => TlsFailure::Tls(other.to_string()),
        }
    }
}

impl TlsAttempt {
    pub fn describe(&self) -> String {
        match self {
            TlsAttempt::Connected(_) => "connected".to_string(),
            TlsAttempt::Refused(refusal) => format!("refused {} {}", refusal.status, refusal.body),
            TlsAttempt::TlsFailed(failure) => format!("tls failed: {failure:?}"),
        }
    }
}

/// A charger connecting over TLS to `{tls_url}/{id}`.
pub async fn charger_over_tls(
    tls_url: &str,
    id: &str,
    protocols: &[&str],
    basic_auth: Option<(&str, &str)>,
    config: Arc<ClientConfig>,
) -> Result<TlsAttempt> {
    let stream = match connect(&authority(tls_url)?, config).await {
        Ok(stream) => stream,
        Err(err) => return Ok(TlsAttempt::TlsFailed(TlsFailure::from_io(&err))),
    };
    let url = format!("{}/{}", tls_url.trim_end_matches('/'), id);
    match Charger::try_connect_on(stream, &url, id, protocols, basic_auth).await {
        Ok(Ok(charger)) => Ok(TlsAttempt::Connected(charger)),
        Ok(Err(refusal)) => Ok(TlsAttempt::Refused(refusal)),
        Err(err) => Ok(TlsAttempt::TlsFailed(TlsFailure::classify(&err))),
    }
}

/// The leaf certificate a TLS listener presents right now.
pub async fn served_certificate(authority: &str, trusted_ca_pem: &str) -> Result<Vec<u8>> {
    let stream = connect(authority, client_config(trusted_ca_pem, None)?).await?;
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| anyhow!("no server certificate"))?;
    Ok(leaf.as_ref().to_vec())
}

/// One HTTPS GET with `Connection: close`; returns the status and the raw response text.
pub async fn https_get(
    authority: &str,
    trusted_ca_pem: &str,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String)> {
    let mut stream = connect(authority, client_config(trusted_ca_pem, None)?).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // A peer that closes without close_notify is fine here: the whole response has arrived.
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("no HTTP status in {text:?}"))?;
    Ok((status, text))
}
