//! Starting and stopping a server: data dir, CA, database, listeners.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::ime::ImeRelease;
use crate::pki::{Ca, PkiError};
use crate::state::{AppState, Shared};
use crate::storage::{Store, StoreError};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA could not be loaded or created.
    #[error("PKI: {0}")]
    Pki(#[from] PkiError),
    /// The database could not be opened.
    #[error("database: {0}")]
    Db(#[from] StoreError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be configured.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// A server that is running.
pub struct RunningServer {
    /// The device-facing HTTPS address.
    pub device_addr: SocketAddr,
    /// The admin HTTP address.
    pub admin_addr: SocketAddr,
    /// The admin HTTPS address, when configured.
    pub admin_tls_addr: Option<SocketAddr>,
    /// The base URL devices use.
    pub base_url: String,
    /// The shared state (for in-process callers such as the testbed).
    pub state: Shared,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// The CA certificate devices must trust, PEM.
    pub fn ca_pem(&self) -> &str {
        self.state.ca.cert_pem()
    }

    /// Stops accepting connections and waits for the listeners to close.
    pub async fn stop(self) {
        if let Err(e) = self.state.journal.commit(None).await {
            tracing::error!("journal: {e}");
        }
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // What requests in flight recorded while the listeners closed.
        if let Err(e) = self.state.journal.commit(None).await {
            tracing::error!("journal: {e}");
        }
    }
}

/// The device-facing routes.
pub fn device_router(state: Shared) -> Router {
    crate::enroll::routes()
        .merge(crate::omadm::routes())
        .merge(crate::ime::routes())
        .merge(crate::apps::device_routes())
        .route(
            "/testbed/clock",
            axum::routing::get(crate::worldclock::get_clock_for_devices),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            commit_request,
        ))
        .with_state(state)
}

/// Runs a request inside the store's open transaction and answers only after what it
/// wrote is committed (group commit, see [`crate::journal::Journal::commit`]). When the
/// commit fails, the request gets its protocol's "try again" instead of its answer.
pub async fn commit_request(
    axum::extract::State(state): axum::extract::State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_owned();
    let started = state.store.txn();
    let response = state.store.in_request(started, next.run(request)).await;
    match state.journal.commit(Some(started)).await {
        Ok(()) => response,
        Err(e) => {
            tracing::error!(path, "not committed, the request fails: {e}");
            // What this server remembered may have been rolled back with it.
            state.forget_cached();
            not_committed(&path)
        }
    }
}

/// The answer to a request whose writes were not committed, in its protocol's words:
/// a device or tool that gets it tries again.
fn not_committed(path: &str) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    if path.eq_ignore_ascii_case(crate::enroll::MANAGEMENT_PATH) {
        // The OMA-DM client ends the session and tries again at its next poll.
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, syncml::dm::CONTENT_TYPE)],
        )
            .into_response();
    }
    if path.starts_with("/EnrollmentServer/") {
        return crate::enroll::not_committed_fault();
    }
    let mut response = crate::api_error::ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the request's changes could not be committed; try again",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// Starts a server: creates the data dir, CA and database on first start, binds both
/// listeners and serves until [`RunningServer::stop`].
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer, StartError> {
    let data_dir = config.data_dir.clone();
    let dir_error = |source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&data_dir).map_err(dir_error)?;
    // The CA's key and the database (device secrets) are the server's user's alone.
    crate::secret::restrict(&data_dir, 0o700).map_err(dir_error)?;
    let probe = data_dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(dir_error)?;
    let _ = std::fs::remove_file(&probe);

    let now = clock.now();
    let ca = Ca::load_or_create(&data_dir.join("pki"), now)?;
    let db_url = config.db_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("tenantless.db").display()
        )
    });
    let store = Store::open(&db_url).await?;
    if config.db_url.is_none() {
        for file in ["tenantless.db", "tenantless.db-wal", "tenantless.db-shm"] {
            let path = data_dir.join(file);
            if path.exists() {
                crate::secret::restrict(&path, 0o600).map_err(dir_error)?;
            }
        }
    }

    let device_listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.admin_listen,
            source,
        })?;
    let admin_tls_listener = match config.admin_tls_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?,
        ),
        None => None,
    };
    let admin_tls_addr = admin_tls_listener
        .as_ref()
        .and_then(|l| l.local_addr().ok());
    let device_addr = device_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: config.admin_listen,
            source,
        })?;

    let base_url = config
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| default_base_url(device_addr));
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !device_addr.ip().is_unspecified() {
        hosts.push(device_addr.ip().to_string());
    }
    if let Some(host) = host_of(&base_url) {
        hosts.push(host);
    }
    hosts.dedup();
    let (cert, key) = ca.issue_server_cert(&hosts, now)?;
    let tls = crate::tls::server_config(ca.cert_der(), cert, key)?;

    let ime_version = store
        .setting("ime.version")
        .await?
        .unwrap_or_else(|| config.ime_version.clone());
    let state: Shared = Arc::new(AppState::new(
        config,
        store,
        ca,
        clock,
        base_url.clone(),
        ImeRelease::new(&ime_version),
    ));

    let (shutdown, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(listener) = admin_tls_listener {
        tasks.push(tokio::spawn(crate::tls::serve(
            listener,
            tls.clone(),
            crate::admin::service(state.clone()),
            state.config.handshake_timeout,
            rx.clone(),
        )));
    }
    let device_task = tokio::spawn(crate::tls::serve(
        device_listener,
        tls,
        device_router(state.clone()),
        state.config.handshake_timeout,
        rx.clone(),
    ));
    let admin = axum::ServiceExt::<axum::extract::Request>::into_make_service(
        crate::admin::service(state.clone()),
    );
    let mut admin_rx = rx;
    let admin_task = tokio::spawn(async move {
        let stop = async move {
            let _ = admin_rx.changed().await;
        };
        if let Err(e) = axum::serve(admin_listener, admin)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!("admin listener: {e}");
        }
    });
    tasks.extend([
        device_task,
        admin_task,
        tokio::spawn(commit_regularly(state.clone(), shutdown.subscribe())),
    ]);
    tracing::info!(%device_addr, %admin_addr, ?admin_tls_addr, %base_url, "tenantless-server listening");
    Ok(RunningServer {
        device_addr,
        admin_addr,
        admin_tls_addr,
        base_url,
        state,
        shutdown,
        tasks,
    })
}

/// Commits every [`crate::journal::WRITE_EVERY`] what was written outside any request
/// (an in-process world calls the server's functions directly), until the server stops.
async fn commit_regularly(state: Shared, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::journal::WRITE_EVERY) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = state.journal.commit(None).await {
            tracing::error!("journal: {e}");
        }
    }
}

fn default_base_url(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_loopback() || ip.is_unspecified() => "localhost".to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    format!("https://{host}:{}", addr.port())
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split("://").nth(1)?;
    let authority = rest.split('/').next()?;
    let host = if authority.starts_with('[') {
        authority.trim_start_matches('[').split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_owned())
}
