//! What the tests that run the server as its own process share.

#![allow(dead_code)] // each test crate uses a part

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A workspace binary, built if this test run has not built it.
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--bin", name])
            .status()
            .unwrap();
        assert!(status.success(), "building {name}");
    }
    path
}

/// A child process killed (SIGKILL) when dropped, also when a test fails.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback address no one listens on now.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// Starts `tenantless-server --clock manual` on `dir` (and PostgreSQL at `db`) and the
/// given addresses, with the world's secret and token; returns once it listens.
pub fn server_on(dir: &Path, db: Option<&str>, device: SocketAddr, admin: SocketAddr) -> Killed {
    let mut command = Command::new(binary("tenantless-server"));
    if let Some(url) = db {
        command.args(["--db", url]);
    }
    let mut child = command
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", &device.to_string()])
        .args(["--admin-listen", &admin.to_string()])
        .args(["--clock", "manual", "--clock-start", "2026-11-24T09:00:00Z"])
        .args([
            "--enroll-secret",
            "tenantless",
            "--admin-token",
            "tenantless-admin",
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("admin:"));
    assert!(ready, "the server printed its addresses");
    Killed(child)
}
