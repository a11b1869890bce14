//! HTTPS as the device speaks it: trusting only the CAs it was given (and later the
//! one enrollment provisioned), presenting its client certificate on management
//! sessions. Errors are sorted into what a person can act on.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::AgentError;

/// The crypto provider the whole project uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTPS client trusting these CAs (PEM), with an optional client identity (DER
/// certificate, PKCS#8 key).
pub fn client(
    trusted_pem: &[String],
    identity: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<reqwest::Client, AgentError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for pem in trusted_pem {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| AgentError::Config(format!("CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| AgentError::Config(format!("CA certificate: {e}")))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AgentError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(cert)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .map_err(|e| AgentError::Config(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .user_agent("MSFT OMA DM Client/1.2.0.1")
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| AgentError::Config(e.to_string()))
}

/// Sorts a transport error: an untrusted server certificate, an unreachable server,
/// or something else.
pub fn classify(url: &str, e: reqwest::Error) -> AgentError {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_lowercase();
    if lower.contains("certificate")
        || lower.contains("unknownissuer")
        || lower.contains("invalid peer")
    {
        AgentError::Untrusted {
            url: url.into(),
            reason: chain,
        }
    } else {
        AgentError::Unreachable {
            url: url.into(),
            reason: chain,
        }
    }
}
