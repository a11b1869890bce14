//! The device-facing HTTPS listener: rustls asks for a client certificate but lets
//! connections without one through (discovery and enrollment need that), and every
//! request carries the certificate its connection presented as a [`PeerCertificate`].

use std::sync::Arc;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// The client certificate (DER) of the connection a request arrived on, if any.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificate(pub Option<Arc<Vec<u8>>>);

/// Which accepted connection a request arrived on (numbered from 1 per listener): what
/// binds a digest-authenticated management session to the connection it began on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionId(pub u64);

/// The crypto provider the whole project uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server configuration with this certificate chain, asking for (not requiring)
/// client certificates issued by `ca_der`.
pub fn server_config(
    ca_der: &[u8],
    cert_der: Vec<u8>,
    key_pkcs8: Vec<u8>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec()))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![
                CertificateDer::from(cert_der),
                CertificateDer::from(ca_der.to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8)),
        )?;
    Ok(Arc::new(config))
}

/// Serves `app` over TLS on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = 0u64;
    loop {
        let (stream, peer_addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        connections += 1;
        let connection_id = ConnectionId(connections);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let tls_stream = match acceptor.accept(stream).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer_addr, "TLS handshake failed: {e}");
                    return;
                }
            };
            let peer = PeerCertificate(
                tls_stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|c| Arc::new(c.as_ref().to_vec())),
            );
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(peer.clone());
                req.extensions_mut().insert(connection_id);
                app.clone().oneshot(req)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls_stream), service);
            tokio::pin!(connection);
            // A stopped server closes its kept-alive connections too (after the
            // requests in flight), so clients see it gone.
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer_addr, "connection ended: {e}");
            }
        });
    }
}
