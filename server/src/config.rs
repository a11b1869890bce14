//! How a server is configured: by flags (see `tenantless-server --help`) or by a test.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything a server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database, PKI and content live.
    pub data_dir: PathBuf,
    /// The device-facing HTTPS listener.
    pub listen: SocketAddr,
    /// The admin HTTP listener.
    pub admin_listen: SocketAddr,
    /// The admin API on HTTPS too (the server's certificate), for clients that send
    /// tokens only over TLS; `None` for none.
    pub admin_tls_listen: Option<SocketAddr>,
    /// Database URL; `None` means SQLite at `data_dir/tenantless.db`.
    pub db_url: Option<String>,
    /// The enrollment secret (OnPremise UsernameToken password).
    pub enroll_secret: String,
    /// The admin API's bearer token, and the client secret of its OAuth client.
    pub admin_token: String,
    /// The admin API's OAuth client id (client credentials at
    /// `/{tenant}/oauth2/v2.0/token`, its secret the admin token).
    pub admin_client_id: String,
    /// The base URL devices use (`https://host:port`); defaults to the listen address,
    /// with `localhost` for an unspecified or loopback IP.
    pub public_url: Option<String>,
    /// Seed for the server's random choices (nonces, session ids); `None` for entropy.
    pub seed: Option<u64>,
    /// The IME version the server delivers.
    pub ime_version: String,
    /// How long a device may take over its TLS handshake (real time).
    pub handshake_timeout: std::time::Duration,
}

/// A TLS handshake's time unless configured otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Config {
    /// A configuration for a server on loopback with OS-chosen ports, for tests.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Config {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_tls_listen: None,
            db_url: None,
            enroll_secret: "enroll-secret".into(),
            admin_token: "admin-token".into(),
            admin_client_id: DEFAULT_ADMIN_CLIENT_ID.into(),
            public_url: None,
            seed: Some(7),
            ime_version: DEFAULT_IME_VERSION.into(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// The admin API's OAuth client id unless configured otherwise.
pub const DEFAULT_ADMIN_CLIENT_ID: &str = "tenantless";

/// The IME version delivered unless configured otherwise.
pub const DEFAULT_IME_VERSION: &str = "1.93.102.0";
