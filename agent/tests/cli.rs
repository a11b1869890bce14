//! The `tenantless-agent` binary: registry commands and clear errors.

use std::process::Command;

fn agent(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantless-agent"))
        .arg("--device-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run tenantless-agent");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn commands_on_a_missing_device_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = agent(&dir.path().join("none"), &["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("holds no device"), "{err}");
}

#[test]
fn enrolling_against_nothing_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = agent(
        &dir.path().join("d"),
        &[
            "enroll",
            "--server",
            "https://127.0.0.1:9",
            "--user",
            "a@b.c",
            "--secret",
            "s",
            "--fast-keys",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "tenantless-agent: cannot reach https://127.0.0.1:9/EnrollmentServer/Discovery.svc"
        ),
        "{err}"
    );
}

#[test]
fn registry_set_get_delete_export() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    agent::Agent::create(&d, agent::device::DeviceProfile::default(), [9; 32]).unwrap();
    let key = r"HKLM\SOFTWARE\Contoso\Lab";
    assert_eq!(
        agent(&d, &["registry", "set", key, "Count", "REG_DWORD", "0x1a"]).0,
        0
    );
    assert_eq!(agent(&d, &["registry", "get", key, "count"]).1.trim(), "26");
    let (_, listing, _) = agent(&d, &["registry", "get", r"hklm\software\contoso"]);
    assert_eq!(listing.trim(), "Lab\\");
    let (_, export, _) = agent(&d, &["registry", "export", key]);
    assert!(export.starts_with("Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Lab]\n\"Count\"=dword:0000001a"), "{export}");
    let file = dir.path().join("lab.reg");
    assert_eq!(
        agent(
            &d,
            &["registry", "export", key, "--out", file.to_str().unwrap()]
        )
        .0,
        0
    );
    assert_eq!(
        &std::fs::read(&file).unwrap()[..2],
        &[0xFF, 0xFE],
        "UTF-16LE with a BOM, as regedit writes"
    );
    assert_eq!(
        agent(&d, &["registry", "delete", r"HKLM\SOFTWARE\Contoso"]).0,
        0
    );
    let (code, _, err) = agent(&d, &["registry", "get", key, "Count"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such value"), "{err}");
    let (code, _, err) = agent(&d, &["registry", "set", key, "X", "REG_DWORD", "many"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a number"), "{err}");
}

#[test]
fn status_reports_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let profile = agent::device::DeviceProfile {
        device_name: "LAB-99".into(),
        ..Default::default()
    };
    agent::Agent::create(&d, profile, [8; 32]).unwrap();
    let (code, out, _) = agent(&d, &["status"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deviceName"], "LAB-99");
    assert_eq!(v["managementUrl"], serde_json::Value::Null);
    for command in ["restart-ime", "stop-ime"] {
        let (code, _, err) = agent(&d, &[command]);
        assert_eq!(code, 1, "{command}");
        assert!(err.contains("IME is not installed"), "{command}: {err}");
    }
}
