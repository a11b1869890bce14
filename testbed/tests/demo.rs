//! The README's main job: the demo tells the story and leaves its artefacts.

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
