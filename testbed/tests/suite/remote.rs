//! Remote mode: the server and the agents as separate processes on loopback, the
//! server owning a manual world clock that the agents follow.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{binary, Killed};

/// Starts the server with a manual clock; returns it and its device and admin URLs.
fn server(dir: &Path) -> (Killed, String, String) {
    let mut child = Command::new(binary("tenantless-server"))
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--clock",
            "manual",
        ])
        .args(["--clock-start", "2026-11-24T09:00:00Z", "--seed", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let devices = lines.next().unwrap().unwrap();
    let admin = lines.next().unwrap().unwrap();
    let base = devices
        .split("enrollment at ")
        .nth(1)
        .unwrap()
        .split("/EnrollmentServer")
        .next()
        .unwrap()
        .to_owned();
    let admin = admin.trim_start_matches("admin:").trim().to_owned();
    (Killed(child), base, admin)
}

fn agent(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary("tenantless-agent"));
    cmd.arg("--device-dir")
        .arg(dir)
        .args(["--clock", "server"])
        .args(args);
    cmd
}

/// The world times of a page of journal events.
fn at_times(events: &serde_json::Value) -> Vec<String> {
    events["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["at"].as_str().map(str::to_owned))
        .collect()
}

/// The server's admin API with its default token.
struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    /// A GET's JSON answer.
    async fn get(&self, path: String) -> serde_json::Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth("tenantless-admin")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn agents_in_other_processes_follow_the_servers_clock() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let (_server, base, admin) = server(&tmp.path().join("server"));
    let ca = tmp.path().join("server/pki/ca.pem");
    let http = reqwest::Client::new();
    let api = Admin {
        http: http.clone(),
        base: admin.clone(),
    };
    let get = |path: String| api.get(path);

    let mut runners = Vec::new();
    // The secret from a file for one device, from the environment for the other: never
    // on a command line others can read.
    let secret_file = tmp.path().join("enroll-secret");
    std::fs::write(&secret_file, "tenantless\n").unwrap();
    for name in ["REMOTE-01", "REMOTE-02"] {
        let dir = tmp.path().join(name);
        let mut enroll = agent(
            &dir,
            &[
                "enroll",
                "--server",
                &base,
                "--user",
                "lab@contoso.com",
                "--fast-keys",
                "--device-name",
                name,
            ],
        );
        if name == "REMOTE-01" {
            enroll.arg("--secret-file").arg(&secret_file);
        } else {
            enroll.env("TENANTLESS_ENROLL_SECRET", "tenantless");
        }
        let enrolled = enroll.arg("--ca").arg(&ca).output().unwrap();
        assert!(
            enrolled.status.success(),
            "{}",
            String::from_utf8_lossy(&enrolled.stderr)
        );
        runners.push(Killed(
            agent(&dir, &["run"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
    }
    let clock = get("/testbed/clock?followers=2".into()).await;
    assert_eq!(
        clock["followers"], 2,
        "both agents follow the clock: {clock}"
    );
    assert_eq!(clock["now"], "2026-11-24T09:00:00.000Z");

    let advanced: serde_json::Value = http
        .post(format!("{admin}/testbed/clock/advance"))
        .bearer_auth("tenantless-admin")
        .json(&serde_json::json!({ "by": "24h" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(advanced["now"], "2026-11-25T09:00:00.000Z");

    // Each device checked in at every moment of its schedule, stamped with world time:
    // the enrollment's session at 09:00, every 3 min to 09:15, every 15 min to 11:15,
    // then 19:15 and 03:15.
    let devices = get("/beta/deviceManagement/managedDevices".into()).await;
    assert_eq!(devices["value"].as_array().unwrap().len(), 2);
    for d in devices["value"].as_array().unwrap() {
        let id = d["id"].as_str().unwrap();
        let times =
            at_times(&get(format!("/testbed/events?device={id}&kind=session_started")).await);
        assert_eq!(times.len(), 16, "{id}: {times:?}");
        assert_eq!(times[1], "2026-11-24T09:03:00.000Z");
        assert_eq!(times[6], "2026-11-24T09:30:00.000Z");
        assert_eq!(times[15], "2026-11-25T03:15:00.000Z");
    }

    // syncDevice: the push ends the device's long poll and it checks in at once, at
    // world time 09:00 (its next scheduled session is at 11:15). The advance after it
    // waits for the pushed device to finish.
    let id = devices["value"][0]["id"].as_str().unwrap().to_owned();
    let synced = http
        .post(format!(
            "{admin}/beta/deviceManagement/managedDevices/{id}/syncDevice"
        ))
        .bearer_auth("tenantless-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status().as_u16(), 204);
    http.post(format!("{admin}/testbed/clock/advance"))
        .bearer_auth("tenantless-admin")
        .json(&serde_json::json!({ "by": "1m" }))
        .send()
        .await
        .unwrap();
    let times = at_times(&get(format!("/testbed/events?device={id}&kind=session_started")).await);
    assert_eq!(times.len(), 17, "{times:?}");
    assert_eq!(times[16], "2026-11-25T09:00:00.000Z");
}

#[tokio::test]
async fn an_agent_on_the_system_clock_takes_the_servers_pushes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let (_server, base, admin) = server(&tmp.path().join("server"));
    let ca = tmp.path().join("server/pki/ca.pem");
    let http = reqwest::Client::new();
    let api = Admin {
        http: http.clone(),
        base: admin.clone(),
    };
    let get = |path: String| api.get(path);
    let dir = tmp.path().join("SYSTEM-01");
    let device = |args: &[&str]| {
        let mut cmd = Command::new(binary("tenantless-agent"));
        cmd.arg("--device-dir").arg(&dir).args(args);
        cmd
    };
    let enrolled = device(&["enroll", "--server", &base, "--user", "lab@contoso.com"])
        .args(["--fast-keys", "--device-name", "SYSTEM-01", "--ca"])
        .arg(&ca)
        .env("TENANTLESS_ENROLL_SECRET", "tenantless")
        .output()
        .unwrap();
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    // `run` with no --clock: the device keeps its own (system) time.
    let _runner = Killed(
        device(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Its long poll for pushes is open once the server counts it waiting.
    let clock = get("/testbed/clock?followers=1".into()).await;
    assert_eq!(
        clock["followers"], 1,
        "the device waits for pushes: {clock}"
    );

    let devices = get("/beta/deviceManagement/managedDevices".into()).await;
    let id = devices["value"][0]["id"].as_str().unwrap().to_owned();
    let sessions = |events: &serde_json::Value| events["value"].as_array().map_or(0, Vec::len);
    let before = sessions(&get(format!("/testbed/events?device={id}&kind=session_started")).await);
    let synced = http
        .post(format!(
            "{admin}/beta/deviceManagement/managedDevices/{id}/syncDevice"
        ))
        .bearer_auth("tenantless-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status().as_u16(), 204);
    // Another process's work, not world time, is what is waited for here.
    let mut after = before;
    for _ in 0..200 {
        after = sessions(&get(format!("/testbed/events?device={id}&kind=session_started")).await);
        if after > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(after > before, "the push started a management session");
}

/// `tenantless run SCENARIOS --server ADMIN`, which must succeed; its output.
fn run_remotely(scenarios: &[std::path::PathBuf], admin: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantless"))
        .arg("run")
        .args(scenarios)
        .args(["--server", admin])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn scenarios_run_against_a_remote_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, _base, admin) = server(&dir.path().join("server"));
    let labs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/labs");
    // Two labs in a row: the server is reset (and its clock set back) between them.
    let stdout = run_remotely(
        &[
            labs.join("01-ime-arrives-by-syncml"),
            labs.join("07-scripts-remediations-and-client-health"),
        ],
        &admin,
    );
    assert!(stdout.contains("2 scenario(s)"), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");

    // The journal stayed on the server: the last lab's events are there to read.
    let events = Command::new(env!("CARGO_BIN_EXE_tenantless"))
        .args(["journal", "--server", &admin, "--kind", "health_report"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&events.stdout);
    assert!(text.contains("client health"), "{text}");
}

#[tokio::test]
async fn a_world_moves_the_clock_of_every_replica_and_skips_one_that_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (_a, _base, admin_a) = server(&dir.path().join("a"));
    let (_b, _base, admin_b) = server(&dir.path().join("b"));
    let down = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", socket.local_addr().unwrap())
    };
    let lab = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/labs")
        .join("01-ime-arrives-by-syncml");
    run_remotely(&[lab], &format!("{down},{admin_a},{admin_b}"));

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let mut clocks = Vec::new();
    for admin in [&admin_a, &admin_b] {
        let clock: serde_json::Value = http
            .get(format!("{admin}/testbed/clock"))
            .bearer_auth("tenantless-admin")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        clocks.push(clock["now"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        clocks[0], clocks[1],
        "both replicas stand at the world's time"
    );
    assert!(
        clocks[0].as_str() > "2026-11-24T09:00:00.000Z",
        "{clocks:?}"
    );
}
