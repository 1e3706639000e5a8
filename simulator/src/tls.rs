//! TLS client settings for wss:// gateways: the public web roots, plus a CA file the
//! operator trusts (a private CA, or the gateway's self-signed certificate).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Why the TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("CA file {0} holds no certificate")]
    NoCertificate(String),
    #[error("certificate in {path} not accepted: {message}")]
    BadCertificate { path: String, message: String },
}

/// Client settings trusting the public roots and, when given, the certificates in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    // One process-wide provider; a second install (tests, several runs) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsError::CaFile {
                path: shown.clone(),
                message: e.to_string(),
            })?
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::CaFile {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate(shown));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::BadCertificate {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_ca_files_are_reported() {
        assert!(client_config(None).is_ok());
        assert!(matches!(
            client_config(Some(Path::new("/nonexistent/ca.pem"))),
            Err(TlsError::CaFile { .. })
        ));
        let dir = std::env::temp_dir().join(format!("voltgate-sim-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            client_config(Some(&empty)),
            Err(TlsError::NoCertificate(_))
        ));
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let good = dir.join("ca.pem");
        std::fs::write(&good, cert.cert.pem()).unwrap();
        assert!(client_config(Some(&good)).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
