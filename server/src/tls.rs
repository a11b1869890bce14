//! The device-facing HTTPS listener: rustls asks for a client certificate but lets
//! connections without one through (discovery and enrollment need that), and every
//! request carries the certificate its connection presented as a [`PeerCertificate`].

use std::sync::Arc;

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

/// The scheme a request came in by: `https` when it came through [`serve`] (which marks
/// each request with its [`PeerCertificate`]), else `http`.
pub fn scheme(extensions: &axum::http::Extensions) -> &'static str {
    if extensions.get::<PeerCertificate>().is_some() {
        "https"
    } else {
        "http"
    }
}

/// `scheme://host` as the client addressed this server (its `Host` header, `localhost`
/// without one), for absolute links in answers.
pub fn origin(headers: &axum::http::HeaderMap, extensions: &axum::http::Extensions) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}", scheme(extensions))
}

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

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 1024;
/// How long a connection may take to send a request's headers, the next one's on a
/// kept-alive connection included.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Serves `app` over TLS on `listener` until `shutdown` turns true; a client gets
/// `handshake_timeout` (real time, as a network is) for its TLS handshake.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: S,
    handshake_timeout: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = 0u64;
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (stream, peer_addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Retrying at once spins and floods the log while the cause lasts.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
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
            let _slot = slot;
            let tls_stream =
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer_addr, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer_addr, "TLS handshake timed out");
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
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
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
