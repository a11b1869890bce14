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
    testbed::demo::run(&options, &mut out).await.unwrap();
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

    // Running it again starts afresh in the same folder.
    let mut again = Vec::new();
    testbed::demo::run(&options, &mut again).await.unwrap();
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
