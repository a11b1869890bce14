//! `tenantless-server --probe`: asks a running server whether it is ready, for a
//! container's `HEALTHCHECK` (the image holds no curl).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;

/// How long the probe waits for the whole answer.
const PATIENCE: Duration = Duration::from_secs(5);

/// Where a server listening on `listen` is reached from the same host: an unspecified
/// address (`0.0.0.0`, `[::]`) means loopback.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    match listen {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    }
}

/// `GET /testbed/ready` on the admin listener: Ok when the server answers 200 (it is up
/// and its database answers), otherwise what went wrong.
pub async fn ready(admin: SocketAddr) -> Result<(), String> {
    let admin = local_address(admin);
    match tokio::time::timeout(PATIENCE, ask(admin)).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("{admin}: no answer within {PATIENCE:?}")),
    }
}

async fn ask(admin: SocketAddr) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(admin)
        .await
        .map_err(|e| format!("{admin}: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("{admin}: {e}"))?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/testbed/ready")
        .header(hyper::header::HOST, admin.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{admin}: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{admin}: not ready ({})", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_probed_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(local_address(any), "127.0.0.1:8080".parse().unwrap());
        let any6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(local_address(any6), "[::1]:8080".parse().unwrap());
        let given: SocketAddr = "10.0.0.5:9000".parse().unwrap();
        assert_eq!(local_address(given), given);
    }

    #[tokio::test]
    async fn nothing_listening_is_not_ready() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        drop(socket);
        assert!(ready(addr).await.is_err());
    }
}
