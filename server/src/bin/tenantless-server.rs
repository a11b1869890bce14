//! `tenantless-server`: runs the management service until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use server::config::{Config, DEFAULT_ADMIN_CLIENT_ID, DEFAULT_IME_VERSION};

/// The Tenantless management service: MS-MDE2 enrollment and OMA-DM sessions for
/// Windows devices on an HTTPS listener, and an admin API (Microsoft Graph shapes) on
/// an HTTP listener.
///
/// Every flag can also be given as the environment variable shown beside it (the flag
/// wins), which is how the container image is configured.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where the database, the CA (`pki/ca.pem` is the certificate devices must trust)
    /// and hosted content live. Created on first start.
    #[arg(long, default_value = "./tenantless-data", env = "TENANTLESS_DATA_DIR")]
    data_dir: PathBuf,
    /// Address of the device-facing HTTPS listener (enrollment, management, content).
    #[arg(long, default_value = "127.0.0.1:8443", env = "TENANTLESS_LISTEN")]
    listen: SocketAddr,
    /// The admin API on HTTPS as well, at this address, with the server's certificate
    /// (for Graph clients that send tokens only over TLS). Default: none.
    #[arg(long, env = "TENANTLESS_ADMIN_TLS_LISTEN")]
    admin_tls_listen: Option<SocketAddr>,
    /// Address of the admin HTTP listener (keep it on loopback).
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        env = "TENANTLESS_ADMIN_LISTEN"
    )]
    admin_listen: SocketAddr,
    /// Database URL: `sqlite://PATH` or `postgres://...`. Default: SQLite at
    /// DATA_DIR/tenantless.db.
    #[arg(long, env = "TENANTLESS_DB", hide_env_values = true)]
    db: Option<String>,
    /// The enrollment secret: any user name with this password may enroll.
    #[arg(
        long,
        default_value = "tenantless",
        env = "TENANTLESS_ENROLL_SECRET",
        hide_env_values = true
    )]
    enroll_secret: String,
    /// The admin API's bearer token.
    #[arg(
        long,
        default_value = "tenantless-admin",
        env = "TENANTLESS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: String,
    /// The client id that gets admin tokens by OAuth client credentials at
    /// /{tenant}/oauth2/v2.0/token (its client secret is the admin token).
    #[arg(long, default_value = DEFAULT_ADMIN_CLIENT_ID, env = "TENANTLESS_ADMIN_CLIENT_ID")]
    admin_client_id: String,
    /// The base URL devices reach this server at (default: https://localhost:PORT).
    #[arg(long, env = "TENANTLESS_PUBLIC_URL")]
    public_url: Option<String>,
    /// The IME version delivered to devices that need it.
    #[arg(long, default_value = DEFAULT_IME_VERSION, env = "TENANTLESS_IME_VERSION")]
    ime_version: String,
    /// Seed for the server's random choices, for reproducible journals.
    #[arg(long, env = "TENANTLESS_SEED")]
    seed: Option<u64>,
    /// The world clock: `real`, `manual` (moves only by POST /testbed/clock/advance) or
    /// `scaled:N` (N times real time, and advanceable). Agents follow it with
    /// `tenantless-agent --clock server run`.
    #[arg(long, default_value = "real", env = "TENANTLESS_CLOCK")]
    clock: String,
    /// World time at start for manual and scaled clocks (RFC 3339; default: now).
    #[arg(long, env = "TENANTLESS_CLOCK_START")]
    clock_start: Option<String>,
    /// How long a device may take over its TLS handshake (real time: `10s`, `2m`).
    #[arg(long, default_value = "10s", env = "TENANTLESS_HANDSHAKE_TIMEOUT")]
    handshake_timeout: String,
    /// Do not serve: ask the server configured here (its --admin-listen, loopback for
    /// 0.0.0.0) whether it is up and its database answers, and exit 0 if so (the
    /// container image's HEALTHCHECK).
    #[arg(long)]
    probe: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenantless-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.probe {
        return match runtime.block_on(server::probe::ready(args.admin_listen)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tenantless-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let start = match args.clock_start.as_deref().map(server::clock::parse) {
        Some(None) => {
            eprintln!("tenantless-server: --clock-start is not an RFC 3339 time");
            return ExitCode::FAILURE;
        }
        Some(t) => t,
        None => None,
    };
    let clock = match server::clock::from_spec(&args.clock, start) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tenantless-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(handshake_timeout) = server::worldclock::parse_duration(&args.handshake_timeout)
        .and_then(|d| d.to_std().ok())
        .filter(|d| !d.is_zero())
    else {
        eprintln!("tenantless-server: --handshake-timeout is not a duration like 10s");
        return ExitCode::FAILURE;
    };
    let config = Config {
        data_dir: args.data_dir,
        listen: args.listen,
        admin_listen: args.admin_listen,
        admin_tls_listen: args.admin_tls_listen,
        db_url: args.db,
        enroll_secret: args.enroll_secret,
        admin_token: args.admin_token,
        admin_client_id: args.admin_client_id,
        public_url: args.public_url,
        seed: args.seed,
        ime_version: args.ime_version,
        handshake_timeout,
    };
    runtime.block_on(async move {
        let server = match server::start(config, clock).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tenantless-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "devices: {} (enrollment at {}/EnrollmentServer/Discovery.svc)",
            server.device_addr, server.base_url
        );
        println!("admin:   http://{}", server.admin_addr);
        if let Some(addr) = server.admin_tls_addr {
            println!("admin:   https://{addr}");
        }
        stopped().await;
        server.stop().await;
        ExitCode::SUCCESS
    })
}

/// Waits for Ctrl-C, or (Unix) SIGTERM as `docker stop` and service managers send.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        eprintln!("tenantless-server: cannot wait for Ctrl-C; stopping");
    }
}
