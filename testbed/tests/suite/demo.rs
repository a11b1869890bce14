//! The README's main job: the demo tells the story (the IME by SyncML, an app through
//! 1618 retries and the GRS, a script, inventory, a daily remediation, client health
//! restarting a stopped IME) and leaves its artefacts.

#[tokio::test]
async fn the_demo_tells_the_story_and_leaves_artefacts() {
    let dir = tempfile::tempdir().unwrap();
    let options = testbed::demo::DemoOptions {
        dir: dir.path().join("demo"),
        seed: 1,
    };
    let mut out = Vec::new();
    testbed::demo::run(&options, &mut out)
        .await
        .unwrap()
        .stop()
        .await;
    let text = String::from_utf8(out).unwrap();
    for expected in [
        "enrolled (Issue) by alice@contoso.com",
        "Exec ./Device/Vendor/MSFT/EnterpriseDesktopAppManagement/MSI/%7B6D2F2E4B-3C1A-4E8D-9B7F-1A2B3C4D5E6F%7D/DownloadInstall -> 202",
        "IME 1.93.102.0 installed (code 0)",
        "<MsiInstallJob id=\"{6D2F2E4B-3C1A-4E8D-9B7F-1A2B3C4D5E6F}\">",
        "IME on the device: 1.93.102.0 (running)",
        "enforcement 5006 -> 5000, error 0x00000652",
        "compliance 4 -> 1, enforcement 5000 -> 1000",
        ": Success (exit 0)",
        "Delta inventory: 2 program(s); added Contoso Widget",
        "09:00:00  DESKTOP-DEMO01   remediation ",
        ": detection fail, remediation success",
        ": detection success, remediation skipped",
        "client health: IME 1.93.102.0 running",
        "client health: IME 1.93.102.0 was stopped; restarted",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let demo = dir.path().join("demo");
    let reg = std::fs::read(demo.join("DESKTOP-DEMO01.reg")).unwrap();
    assert_eq!(&reg[..2], &[0xFF, 0xFE]);
    assert!(demo
        .join("devices/DESKTOP-DEMO01/C/ProgramData/Microsoft/IntuneManagementExtension/Logs/IntuneManagementExtension.log")
        .exists());
    assert!(demo.join("server/tenantless.db").exists());
    assert!(text.contains("tenantless logs DESKTOP-DEMO01 --dir "));
    assert!(text.contains("tenantless explain-app DESKTOP-DEMO01 \"Contoso Widget\" --dir "));
    the_logs_speak_the_real_imes_words(&demo);
    logs_and_explain_app_read_the_demos_device(&demo);

    // Running it again starts afresh in the same folder, and writes the same logs.
    let logs_of = |demo: &std::path::Path| {
        let drive = agent::device::Drive::open(demo.join("devices/DESKTOP-DEMO01/C")).unwrap();
        testbed::logs::LOG_FILES
            .iter()
            .map(|f| without_ports(&agent::cmtrace::messages(&drive, f).join("\n")))
            .collect::<Vec<String>>()
    };
    let first = logs_of(&demo);
    let mut again = Vec::new();
    testbed::demo::run(&options, &mut again)
        .await
        .unwrap()
        .stop()
        .await;
    let second = logs_of(&demo);
    for (file, (a, b)) in testbed::logs::LOG_FILES
        .iter()
        .zip(first.iter().zip(&second))
    {
        let diverge = a.lines().zip(b.lines()).find(|(x, y)| x != y);
        assert!(
            a == b,
            "{file}: the same seed, the same logs; first difference: {diverge:?}"
        );
    }
}

#[test]
fn pack_writes_a_package_that_opens_and_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("app");
    std::fs::create_dir_all(folder.join("files")).unwrap();
    let msi = syncml::sim_msi::SimulatedMsi::new(
        "{11111111-2222-3333-4444-555555555555}",
        "Contoso Widget",
        "1.2.0",
        "Contoso",
    );
    std::fs::write(folder.join("widget.msi"), msi.to_bytes()).unwrap();
    std::fs::write(folder.join("files/readme.txt"), b"hi").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenantless"))
        .args(["pack", "--setup", "widget.msi", "--folder"])
        .arg(&folder)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let package = std::fs::read(dir.path().join("widget.intunewin")).unwrap();
    let opened = syncml::intunewin::open(&package).unwrap();
    assert_eq!(opened.detection.setup_file, "widget.msi");
    assert_eq!(
        opened.detection.msi.as_ref().unwrap().product_code,
        "{11111111-2222-3333-4444-555555555555}"
    );
    let inner =
        syncml::intunewin::decrypt(&opened.encrypted, &opened.detection.encryption).unwrap();
    let files = syncml::intunewin::extract(&inner).unwrap();
    assert_eq!(
        files.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["files/readme.txt", "widget.msi"]
    );

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_tenantless"))
        .args(["pack", "--setup", "nope.exe", "--folder"])
        .arg(&folder)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.exe is not in"));
}

fn tenantless(args: &[&str], demo: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenantless"))
        .args(args)
        .arg("--dir")
        .arg(demo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Each family of the real IME's lines (spec ime.md section 12) is in the demo's logs:
/// the application poller, subgraphs, GRS, detection, enforcement, reporting, the
/// PowerShell poller, and AgentExecutor for scripts and remediations.
fn the_logs_speak_the_real_imes_words(demo: &std::path::Path) {
    let drive = agent::device::Drive::open(demo.join("devices/DESKTOP-DEMO01/C")).unwrap();
    let app = agent::cmtrace::messages(&drive, "AppWorkload.log");
    let ime = agent::cmtrace::messages(&drive, "IntuneManagementExtension.log");
    let executor = agent::cmtrace::messages(&drive, "AgentExecutor.log");
    let has = |lines: &[String], what: &str, p: &dyn Fn(&str) -> bool| {
        assert!(lines.iter().any(|m| p(m)), "no {what} line");
    };
    let bar = "-----------------------------------------------------";
    has(&app, "poller", &|m| {
        m == format!("[Win32App] {bar} application poller starts. {bar} ")
    });
    has(&app, "poller", &|m| {
        m == format!("[Win32App] {bar} application poller stopped. {bar} ")
    });
    has(&app, "user session", &|m| {
        m.starts_with("[Win32App] ..................... Processing user session 0, userId: 00000000-0000-0000-0000-000000000000, userSID:")
    });
    has(&app, "ESP", &|m| {
        m == "[Win32App] The EspPhase: NotInEsp in session"
    });
    has(&app, "requested kinds", &|m| {
        m == "[Win32App] Requesting required apps"
    });
    has(&app, "policies", &|m| m.starts_with("Get policies = [{"));
    has(&app, "app count", &|m| {
        m.starts_with("[Win32App] Got 1 Win32App(s) for user 00000000-0000-0000-0000-000000000000 in session 0")
    });
    has(&app, "subgraph", &|m| {
        m.starts_with("[Win32App][V3Processor] Processing subgraph with app ids: ")
    });
    has(&app, "subgraph", &|m| {
        m == "[Win32App][V3Processor] Done processing 1 subgraphs."
    });
    has(&app, "reevaluation", &|m| {
        m.starts_with("[Win32App][ReevaluationScheduleManager] Found previous reevaluation check-in time value: ")
    });
    has(&app, "GRS", &|m| {
        m.starts_with("[Win32App][GRSManager] App with id: ")
            && m.contains(" is not expired. | Hash = ")
    });
    has(&app, "GRS", &|m| {
        m.starts_with("[Win32App][GRSManager] Found GRS value: ")
    });
    has(&app, "decision", &|m| {
        m.starts_with("[Win32App][ActionProcessor] App with id: ")
            && m.contains("\nGRS expired = True")
    });
    has(&app, "no action", &|m| {
        m.starts_with("[Win32App][ActionProcessor] No action required for app with id: ")
    });
    has(&app, "detection", &|m| {
        m.starts_with("[Win32App][DetectionActionHandler] Detection for policy with id: ")
            && m.ends_with("detection state: Detected.")
    });
    has(&app, "applicability", &|m| {
        m.ends_with("resulted in action status: Success and applicability state: Applicable.")
    });
    has(&app, "detection delta", &|m| {
        m.contains("Detection state for app with id: ") && m.contains(r#"Report delta: {"DetectionState":{"OldValue":"NotInstalled","NewValue":"Installed"}}"#)
    });
    has(&app, "enforcement", &|m| {
        m.starts_with(
            "[Win32App] Handler invoked with execution type: Install for policy with id: ",
        )
    });
    has(&app, "download", &|m| {
        m.starts_with("[Win32App] Downloaded file size ")
    });
    has(&app, "hash", &|m| {
        m == "[Win32App] file hash validation pass, starts decrypting"
    });
    has(&app, "exit code", &|m| m == "[Win32App] lpExitCode 1618");
    has(&app, "mapping", &|m| {
        m == "[Win32App] lpExitCode is defined as Retry"
    });
    has(&app, "reporting", &|m| {
        m.starts_with("[Win32App][ReportingManager] App with id: ")
            && m.contains("has been loaded and reporting state initialized. ReportingState: {")
    });
    has(&app, "report delta", &|m| {
        m.contains("Execution state for app with id: ") && m.contains(r#""NewValue":"Success""#)
    });
    has(&app, "company portal", &|m| {
        m.starts_with(r#"[Win32App][ReportingManager] Sending status to company portal based on report: {"ApplicationId":""#)
    });
    has(&app, "status service", &|m| {
        m.starts_with("[StatusService] Returning status to user with id: ")
            && m.ends_with("Status: Installed, ErrorCode: 0")
    });
    has(&ime, "PowerShell poller", &|m| {
        m == "[PowerShell] Polling thread starts."
    });
    has(&ime, "PowerShell poller", &|m| {
        m == "[PowerShell] Polling thread stopped."
    });
    has(&ime, "PowerShell policies", &|m| {
        m.starts_with("[PowerShell] Get 1 policies for user ")
    });
    has(&ime, "PowerShell result", &|m| {
        m.starts_with("[PowerShell] User Id = ") && m.ends_with("policy result = Success")
    });
    has(&executor, "AgentExecutor", &|m| {
        m == "ExecutorLog AgentExecutor gets invoked"
    });
    has(&executor, "AgentExecutor script", &|m| {
        m == "Powershell option gets invoked"
    });
    has(&executor, "AgentExecutor remediation", &|m| {
        m == "remediation script option gets invoked"
    });
    has(&executor, "AgentExecutor remediation", &|m| {
        m.starts_with(
            r"Adding argument remediationScript with value C:\Windows\IMECache\HealthScripts\",
        ) && m.ends_with(r"\detect.ps1")
    });
    has(&executor, "exit code", &|m| {
        m == "Powershell exit code is 0"
    });
}

/// `tenantless logs` and `tenantless explain-app` on the demo's device.
fn logs_and_explain_app_read_the_demos_device(demo: &std::path::Path) {
    let logs = tenantless(
        &[
            "logs",
            "DESKTOP-DEMO01",
            "--file",
            "AppWorkload.log",
            "--grep",
            "lpExitCode",
        ],
        demo,
    );
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.ends_with("[Win32App] lpExitCode 1618"))
            .count(),
        4,
        "{logs}"
    );
    assert!(lines
        .iter()
        .all(|l| l.contains("AppWorkload.log") && l.contains(" 14  ")));
    let times: Vec<&str> = lines.iter().map(|l| &l[..23]).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    assert!(!logs.contains("\x1b["), "no colours when not on a terminal");

    let all = tenantless(
        &["logs", "DESKTOP-DEMO01", "--since", "2026-11-24T09:00:00Z"],
        demo,
    );
    for file in [
        "IntuneManagementExtension.log",
        "AppWorkload.log",
        "AgentExecutor.log",
        "HealthScripts.log",
    ] {
        assert!(all.contains(file), "{file} merged in");
    }

    let story = tenantless(&["explain-app", "DESKTOP-DEMO01", "Contoso Widget"], demo);
    for expected in [
        "Contoso Widget (",
        "for the device",
        "Intent 3 = Required",
        "ComplianceState 1 = Installed",
        "EnforcementState 1000 = Success",
        "Installer runs: 5",
        "exit code 1618 (Retry): another installation is already in progress",
        "exit code 0 (Success): the action completed successfully",
        "GRS: no entry",
    ] {
        assert!(story.contains(expected), "missing {expected:?} in\n{story}");
    }
}

/// `text` with every `localhost:<port>` written `localhost:PORT` (the server listens on
/// a new port each run) and the content keys sealed to the device's certificate left
/// out (the device's key and the sealing are fresh randomness each run).
fn without_ports(text: &str) -> String {
    let text = without_between(
        text,
        "<EncryptionCertificateThumbprint>",
        "</EncryptionCertificateThumbprint>",
    );
    let text = without_between(&text, "<EncryptedContent>", "</EncryptedContent>");
    let text = text.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("localhost:") {
        let (head, tail) = rest.split_at(at + "localhost:".len());
        out.push_str(head);
        out.push_str("PORT");
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// `text` without what stands between each `open` and the next `close`.
fn without_between(text: &str, open: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(open) {
        out.push_str(&rest[..at + open.len()]);
        rest = &rest[at + open.len()..];
        rest = rest.find(close).map_or("", |end| &rest[end..]);
    }
    out.push_str(rest);
    out
}
