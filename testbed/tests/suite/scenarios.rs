//! Scenario files: the labs and feature scenarios run green, twice with the same seed giving the same
//! journal; a wrong expectation fails with exit code 1, a JUnit failure and the closest
//! events; errors point at the line.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every device's IME logs, every file and rolled part, as text (the server's address,
/// which changes from run to run, written as `https://tenantless`).
fn log_bytes(world: &testbed::World) -> String {
    let mut text = String::new();
    for name in world.device_names() {
        let drive = &world.device(&name).unwrap().device().drive;
        for file in testbed::logs::LOG_FILES {
            for part in agent::cmtrace::files(drive, file) {
                let bytes = drive
                    .read(&format!(r"{}\{part}", agent::cmtrace::LOG_DIR))
                    .unwrap_or_default();
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    text.replace(world.base_url(), "https://tenantless")
}

/// Every line of every device's AppWorkload.log is one of the real IME's shapes (spec
/// ime.md section 12), and every application poller that starts stops.
fn speaks_the_imes_voice(world: &testbed::World, lab: &Path) {
    const SHAPES: [&str; 6] = [
        "[Win32App]",
        "[StatusService]",
        "Get policies = [",
        "Starts verifying encrypted hash",
        "Start unzipping",
        "Cleaning up staging content ",
    ];
    for name in world.device_names() {
        let drive = &world.device(&name).unwrap().device().drive;
        let lines = agent::cmtrace::messages(drive, "AppWorkload.log");
        for line in &lines {
            assert!(
                SHAPES.iter().any(|s| line.starts_with(s)),
                "{}: {name}: {line:?} is not in the IME's words",
                lab.display()
            );
        }
        let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
        assert_eq!(
            count("application poller starts."),
            count("application poller stopped."),
            "{}: {name}: every poller run is framed",
            lab.display()
        );
    }
}

#[tokio::test]
async fn every_lab_runs_green_and_replays_identically() {
    runs_green_and_replays_identically("scenarios/labs").await;
}

#[tokio::test]
async fn every_feature_scenario_runs_green_and_replays_identically() {
    runs_green_and_replays_identically("scenarios/features").await;
}

/// Runs every scenario under `dir` twice: each expectation holds, the IME's logs are in
/// its voice, and both runs leave the same journal and logs.
async fn runs_green_and_replays_identically(dir: &str) {
    let labs = testbed::scenario::find(&root().join(dir));
    assert!(!labs.is_empty());
    for lab in labs {
        let mut fingerprints = Vec::new();
        let mut logs = Vec::new();
        for _ in 0..2 {
            let (report, world) = testbed::scenario::run(&lab, None, |_, _| {}).await.unwrap();
            for e in &report.expectations {
                assert!(
                    e.ok,
                    "{}: line {} {}: {}",
                    lab.display(),
                    e.line,
                    e.description,
                    testbed::report::failure_text(e)
                );
            }
            assert!(!report.expectations.is_empty());
            fingerprints.push(world.fingerprint().await.unwrap());
            logs.push(log_bytes(&world));
            speaks_the_imes_voice(&world, &lab);
            world.stop().await;
        }
        assert_eq!(
            logs[0],
            logs[1],
            "{}: the IME's logs replay byte for byte",
            lab.display()
        );
        assert_eq!(
            fingerprints[0],
            fingerprints[1],
            "{} replays identically",
            lab.display()
        );
    }
}

#[test]
fn a_wrong_expectation_fails_with_exit_code_1_a_junit_failure_and_near_misses() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tenantless"))
        .arg("run")
        .arg(fixture("wrong-expectation.toml"))
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL A deliberately wrong expectation"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("line 11: at least 1: device=LAB-01 kind=session_ended outcome=\"aborted\""),
        "{stdout}"
    );
    assert!(stdout.contains("closest events:"), "{stdout}");
    assert!(stdout.contains("missed: outcome = \"aborted\""), "{stdout}");
    assert!(stdout.contains("TENANTLESS_SEED=3"), "{stdout}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(
            "<testsuite name=\"A deliberately wrong expectation\" tests=\"2\" failures=\"1\""
        ),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"expected at least 1 event(s)"),
        "{xml}"
    );
    assert!(xml.contains("closest events:"), "{xml}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["failed"], 1);
    assert_eq!(report["scenarios"][0]["expectations"][1]["ok"], true);
}

#[test]
fn errors_name_the_file_and_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantless"))
        .arg("run")
        .arg(fixture("bad-step.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("bad-step.toml:9: no device named LAB-99"),
        "{stdout}"
    );
}
