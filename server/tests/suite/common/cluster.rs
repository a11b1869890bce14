//! A throwaway PostgreSQL cluster for the tests that need one.
//!
//! The cluster needs PostgreSQL's binaries (`initdb`, `pg_ctl`): `TENANTLESS_PG_BIN`, or
//! the newest `/usr/lib/postgresql/*/bin`. Without them a test says so and passes,
//! unless `TENANTLESS_REQUIRE_POSTGRES=1` (which `.ci/run` sets) makes that a failure.
//! As root, the cluster runs as the `postgres` user (PostgreSQL refuses root).

use std::path::PathBuf;
use std::process::Command as Process;

/// A PostgreSQL cluster in a temporary directory, stopped when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    pub url: String,
}

impl Cluster {
    /// A cluster, or `None` (after saying why) when no PostgreSQL binaries are found
    /// and `TENANTLESS_REQUIRE_POSTGRES` is not `1`.
    pub fn start_or_skip() -> Option<Cluster> {
        let cluster = Cluster::start();
        if cluster.is_none() {
            assert!(
                std::env::var("TENANTLESS_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "TENANTLESS_REQUIRE_POSTGRES=1 but no PostgreSQL binaries were found"
            );
            eprintln!("skipped: no PostgreSQL binaries (set TENANTLESS_PG_BIN)");
        }
        cluster
    }

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
