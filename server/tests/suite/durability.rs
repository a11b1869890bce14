//! Acknowledged means written: a `tenantless-server` process killed with SIGKILL right
//! after it answered has every answered request's events in its journal, once.

use crate::common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::seeded;
use common::*;
use serde_json::{json, Value};

const DEVICE: &str = "0DD5EED5-1111-4222-8333-944444444444";

/// A `tenantless-server` process on fixed loopback ports and a data dir.
struct ServerProcess {
    child: Child,
    device: SocketAddr,
    admin: SocketAddr,
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

impl ServerProcess {
    /// Starts the server and returns once it printed its addresses (it is listening).
    fn start(dir: &Path, db: Option<&str>, device: SocketAddr, admin: SocketAddr) -> Self {
        Self::start_with(
            Command::new(env!("CARGO_BIN_EXE_tenantless-server")),
            dir,
            db,
            device,
            admin,
        )
    }

    /// [`ServerProcess::start`] with a command prepared by the caller (limits, flags).
    fn start_with(
        mut command: Command,
        dir: &Path,
        db: Option<&str>,
        device: SocketAddr,
        admin: SocketAddr,
    ) -> Self {
        if let Some(url) = db {
            command.args(["--db", url]);
        }
        let mut child = command
            .args(["--data-dir", &dir.display().to_string()])
            .args(["--listen", &device.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .args(["--enroll-secret", SECRET, "--admin-token", TOKEN])
            .args(["--clock", "manual", "--clock-start", "2026-11-24T09:00:00Z"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("tenantless-server starts");
        let stdout = child.stdout.take().expect("stdout");
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.starts_with("admin:"));
        assert!(ready, "the server printed its addresses");
        ServerProcess {
            child,
            device,
            admin,
        }
    }

    fn kill_9(self) {
        // Dropping kills (below).
    }

    fn base_url(&self) -> String {
        format!("https://localhost:{}", self.device.port())
    }

    fn admin_client(&self) -> AdminClient {
        AdminClient {
            base: format!("http://{}", self.admin),
            http: reqwest::Client::new(),
        }
    }
}

impl Drop for ServerProcess {
    /// SIGKILL, also when a test fails: the process never outlives its test.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn all_events(admin: &AdminClient, kind: &str) -> Vec<Value> {
    let (status, v) = admin
        .get(&format!(
            "/testbed/events?device={DEVICE}&kind={kind}&limit=10000"
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    v["value"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_request_survives_kill_9() {
    campaign(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_request_survives_kill_9_on_postgres() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    campaign(Some(&cluster.url)).await;
}

/// Requests answered, then SIGKILL at seeded moments (`TENANTLESS_KILLS` times, 20 by
/// default; `TENANTLESS_SEED` picks the moments), then checks the journal.
async fn campaign(db: Option<&str>) {
    install_provider();
    let kills = seeded::env_number("TENANTLESS_KILLS", 20);
    let seed = seeded::env_number("TENANTLESS_SEED", 16);
    eprintln!("kill campaign: {kills} kills, TENANTLESS_SEED={seed}");
    let mut rng = seeded::Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let (device_addr, admin_addr) = (free_port(), free_port());
    let mut server = ServerProcess::start(dir.path(), db, device_addr, admin_addr);
    let ca = std::fs::read_to_string(dir.path().join("pki/ca.pem")).unwrap();
    let e = enroll_at(&server.base_url(), &ca, DEVICE).await;

    // Management sessions and gateway calls, each answered, then SIGKILL at once.
    let mut answered_sessions = Vec::new();
    let mut answered_gateway_calls = 0;
    let mut session = 0;
    for _ in 0..kills {
        let client = https(&ca, Some((&e.cert_der, &e.key_pkcs8)));
        for _ in 0..1 + rng.below(3) {
            session += 1;
            let url = format!("{}/ManagementServer/MDM.svc", server.base_url());
            let reply = exchange(
                &client,
                &url,
                &package1(DEVICE, &session.to_string(), &url, None),
            )
            .await;
            assert_eq!(header_status(&reply).data, "200");
            answered_sessions.push(session.to_string());
            if rng.below(2) == 0 {
                let url = format!(
                    "{}/SideCar/StatelessSideCarGatewayService/SideCarGatewaySessions('4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c')",
                    server.base_url()
                );
                let envelope = json!({
                    "Key": "key", "SessionId": "4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c",
                    "RequestContentType": "RequestApplication", "RequestPayload": "[]",
                    "CheckinReason": "AgentRestart",
                });
                let r = client.put(url).json(&envelope).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                answered_gateway_calls += 1;
            }
        }
        server.kill_9();
        server = ServerProcess::start(dir.path(), db, device_addr, admin_addr);
    }

    let admin = server.admin_client();
    assert_eq!(all_events(&admin, "enrolled").await.len(), 1);
    let started = all_events(&admin, "session_started").await;
    let ids: Vec<&str> = started
        .iter()
        .map(|e| e["payload"]["sessionId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ids, answered_sessions,
        "every answered session, once, in order"
    );
    let mut rows: Vec<i64> = started
        .iter()
        .map(|e| e["payload"]["session"].as_i64().unwrap_or_default())
        .collect();
    rows.sort();
    rows.dedup();
    assert_eq!(
        rows.len(),
        started.len(),
        "session numbers are never reused"
    );
    let calls = all_events(&admin, "gateway_call").await;
    assert_eq!(calls.len(), answered_gateway_calls);
    // The state tables agree: the sessions the admin API lists are the journal's.
    let (_, sessions) = admin
        .get(&format!(
            "/beta/deviceManagement/managedDevices/{DEVICE}/sessions"
        ))
        .await;
    assert_eq!(
        sessions["value"].as_array().map(Vec::len),
        Some(answered_sessions.len()),
        "{sessions}"
    );
    server.kill_9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_fails_requests_that_are_tried_again() {
    use sqlx::{Connection, Executor};
    let (server, dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let url = format!(
        "{}/SideCar/StatelessSideCarGatewayService/SideCarGatewaySessions('4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c')",
        server.base_url
    );
    let envelope = json!({
        "Key": "key", "SessionId": "4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c",
        "RequestContentType": "RequestApplication", "RequestPayload": "[]",
        "CheckinReason": "Scheduled",
    });
    let call = || async {
        let r = client.put(&url).json(&envelope).send().await.unwrap();
        r.status().as_u16()
    };
    // The first check-in: the server now knows the device and its (empty) policy, so
    // the next one needs the database only to record it.
    assert_eq!(call().await, 200);

    // Another process takes SQLite's write lock and keeps it: the check-in cannot be
    // recorded, so it is not acknowledged.
    let db = format!("sqlite://{}", dir.path().join("tenantless.db").display());
    let mut other = sqlx::SqliteConnection::connect(&db).await.unwrap();
    other.execute("BEGIN IMMEDIATE").await.unwrap();
    assert_eq!(call().await, 503, "the device is told to try again");

    // The lock goes; the device tries again: every acknowledged call is recorded, once.
    other.execute("COMMIT").await.unwrap();
    drop(other);
    assert_eq!(call().await, 200);
    let calls = admin(&server).events(DEVICE, "gateway_call").await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_lock_devices_out() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let (device_addr, admin_addr) = (free_port(), free_port());
    // 64 file descriptors, and a second for a TLS handshake.
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut command = Command::new("sh");
    command
        .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_tenantless-server"))
        .args(["--handshake-timeout", "1s"])
        .stderr(log);
    let data = dir.path().join("data");
    let server = ServerProcess::start_with(command, &data, None, device_addr, admin_addr);

    // A hundred connections that never say anything: more than the server can hold.
    let idle: Vec<std::net::TcpStream> = (0..100)
        .filter_map(|_| std::net::TcpStream::connect(device_addr).ok())
        .collect();
    assert!(idle.len() > 64, "{} idle connections", idle.len());

    // A device still gets its answer once the idle ones have had their second.
    let ca = std::fs::read_to_string(data.join("pki/ca.pem")).unwrap();
    let client = https(&ca, None);
    let answer = client
        .get(format!("{}/testbed/clock", server.base_url()))
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .expect("answered despite the idle connections");
    assert_eq!(answer.status().as_u16(), 200);
    drop(idle);
    drop(server);
    let logged = std::fs::metadata(dir.path().join("server.log"))
        .unwrap()
        .len();
    assert!(logged < 1_000_000, "the log grew by {logged} bytes");
}
