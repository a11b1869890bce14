//! The server on PostgreSQL: a throwaway cluster started by the test itself, one server
//! restarted on it, and two servers sharing it (what several servers behind one
//! database do).
//!
//! The cluster needs PostgreSQL's binaries (`initdb`, `pg_ctl`): `TENANTLESS_PG_BIN`, or
//! the newest `/usr/lib/postgresql/*/bin`. Without them the test says so and passes,
//! unless `TENANTLESS_REQUIRE_POSTGRES=1` (which `.ci/run` sets) makes that a failure.
//! As root, the cluster runs as the `postgres` user (PostgreSQL refuses root).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::Arc;

use common::*;
use serde_json::json;
use server::{Config, RunningServer};
use syncml::dm::Command;

const DEVICE: &str = "0A1B2C3D-4E5F-4061-8273-948596A7B8C9";

/// A PostgreSQL cluster in a temporary directory, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    url: String,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let bin = pg_bin()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let run_as = if is_root() {
            let owner = "postgres";
            let status = Process::new("chown")
                .args([owner, &dir.path().to_string_lossy()])
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown the cluster's directory to {owner}");
            Some(owner.to_owned())
        } else {
            None
        };
        let port = free_port();
        let cluster = Cluster {
            url: format!("postgres://tenantless@127.0.0.1:{port}/postgres"),
            dir,
            bin,
            run_as,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "tenantless",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("postgres.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        );
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn command(&self, program: &str) -> Process {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Process::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Process::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TENANTLESS_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Process::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

async fn start_on(dir: &Path, url: &str) -> RunningServer {
    install_provider();
    let clock = Arc::new(server::clock::ManualClock::new(
        server::clock::parse("2026-11-24T09:00:00Z").expect("time"),
    ));
    let mut config = Config::for_tests(dir.to_owned());
    config.db_url = Some(url.to_owned());
    server::start(config, clock)
        .await
        .expect("server starts on PostgreSQL")
}

#[tokio::test]
async fn postgres_keeps_state_across_a_restart_and_between_two_servers() {
    let Some(cluster) = Cluster::start() else {
        assert!(
            std::env::var("TENANTLESS_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "TENANTLESS_REQUIRE_POSTGRES=1 but no PostgreSQL binaries were found"
        );
        eprintln!("skipped: no PostgreSQL binaries (set TENANTLESS_PG_BIN)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");

    // One server: enroll, queue a command, stop.
    let first = start_on(dir.path(), &cluster.url).await;
    let e = enroll(&first, DEVICE).await;
    let (status, _) = admin(&first)
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Get", "items": [{ "target": "./DevDetail/SwV" }] }),
        )
        .await;
    assert_eq!(status, 201);
    first.stop().await;

    // Restarted on the same database (the schema is migrated again, harmlessly), and a
    // second server beside it: both see the device.
    let a = start_on(dir.path(), &cluster.url).await;
    let b = start_on(dir.path(), &cluster.url).await;
    for server in [&a, &b] {
        let (_, devices) = admin(server)
            .get("/beta/deviceManagement/managedDevices")
            .await;
        assert_eq!(devices["value"][0]["id"], DEVICE);
    }

    // The device checks in at B and gets the command queued before the restart.
    let client = https(b.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let url = format!("{}/ManagementServer/MDM.svc", b.base_url);
    let reply = exchange(&client, &url, &package1(DEVICE, "1", &url, None)).await;
    assert_eq!(header_status(&reply).data, "200");
    let cmds = commands(&reply);
    assert_eq!(cmds.len(), 1, "the pending Get is delivered by B");
    assert!(matches!(cmds[0], Command::Get(_)));

    // A's journal holds B's session (one journal, whichever server wrote it).
    let started = admin(&a).events(DEVICE, "session_started").await;
    assert_eq!(started.len(), 1, "{started:?}");
    let delivered = admin(&a).events(DEVICE, "command_delivered").await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");

    // A command queued at A now is delivered at B's next session.
    let (status, _) = admin(&a)
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Get", "items": [{ "target": "./DevInfo/Mod" }] }),
        )
        .await;
    assert_eq!(status, 201);
    let reply = exchange(&client, &url, &package1(DEVICE, "2", &url, None)).await;
    let targets: Vec<String> = commands(&reply)
        .iter()
        .filter_map(|c| match c {
            Command::Get(g) => g
                .items
                .first()
                .and_then(|i| i.target.as_ref())
                .map(|t| t.loc_uri.clone()),
            _ => None,
        })
        .collect();
    assert!(
        targets.iter().any(|t| t == "./DevInfo/Mod"),
        "queued at A, delivered at B: {targets:?}"
    );
    a.stop().await;
    b.stop().await;
}
