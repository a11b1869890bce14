//! The IME's Win32 app engine end to end on the world clock: the registry, the logs and
//! the journal for a first-try install, the seed's retry timeline, a plain failure, a
//! detection that holds before anything runs, the Ripley maneuver and tampered content.

use agent::ime::win32::{self, DEVICE_USER, WIN32APPS};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use syncml::sim_msi::SimulatedMsi;
use testbed::{AdminBody, Expectation, Filter, World, WorldOptions};

const PRODUCT: &str = "{7E2D3C1A-9B8F-4E6D-A5C4-3B2A1F0E9D8C}";

fn keys() -> syncml::intunewin::Keys {
    syncml::intunewin::Keys {
        encryption_key: [5; 32],
        mac_key: [6; 32],
        iv: [7; 16],
    }
}

fn package(exit_codes: Vec<u32>) -> Vec<u8> {
    let mut msi = SimulatedMsi::new(PRODUCT, "Contoso Widget", "1.2.0", "Contoso");
    msi.exit_codes = exit_codes;
    msi.files.push(syncml::sim_msi::MsiFile {
        path: r"C:\Program Files\Contoso\widget.exe".into(),
        content: "widget".into(),
    });
    syncml::intunewin::pack(
        &[("widget.msi".into(), msi.to_bytes())],
        "widget.msi",
        &keys(),
        None,
    )
    .unwrap()
}

/// A world with one device whose IME is installed, and a required app with this content.
async fn world_with_app(content: Vec<u8>) -> (World, String) {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.settle().await;
    let (status, app) = w
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.win32LobApp",
                "displayName": "Contoso Widget",
                "publisher": "Contoso",
                "installCommandLine": "msiexec /i widget.msi /qn",
                "uninstallCommandLine": format!("msiexec /x {PRODUCT} /qn"),
                "applicableArchitectures": "x64,x86",
                "rules": [{ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": PRODUCT, "productVersionOperator": "notConfigured" }],
                "installExperience": { "runAsAccount": "system", "deviceRestartBehavior": "basedOnReturnCode", "maxRunTimeInMinutes": 60 },
            })),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let id = app["id"].as_str().unwrap().to_owned();
    let (status, body) = w
        .admin(
            "PUT",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/content"),
            AdminBody::Bytes(content),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (w, id)
}

async fn assign(w: &World, id: &str) {
    let (status, body) = testbed::workload::assign(w, id, json!([{ "intent": "required", "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }])).await;
    assert_eq!(status, 204, "{body}");
}

/// The app's key under whichever user's key holds it (the device's all-zero id, or
/// the signed-in user's object id for user-targeted and Company Portal apps).
fn app_key(w: &World, id: &str) -> String {
    let registry = &w.device("LAB-01").unwrap().device().registry;
    for user in registry.subkeys(WIN32APPS) {
        let key = format!(r"{WIN32APPS}\{user}");
        if let Some(sub) = registry
            .subkeys(&key)
            .into_iter()
            .find(|k| k.starts_with(id))
        {
            return format!(r"{key}\{sub}");
        }
    }
    panic!("no {id}_<rev> under {WIN32APPS}")
}

fn state_message(w: &World, id: &str, which: &str) -> Value {
    let key = format!(r"{}\{which}", app_key(w, id));
    let text = w
        .device("LAB-01")
        .unwrap()
        .device()
        .registry
        .get_text(&key, which)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The minutes at which the installer ended (from AppWorkload.log's `lpExitCode <n>`
/// lines, as a person reads it; the steps of a check-in take seconds).
fn install_times(w: &World) -> Vec<DateTime<Utc>> {
    use chrono::DurationRound;
    agent::cmtrace::records(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG)
        .into_iter()
        .filter(|(_, m)| {
            m.strip_prefix("[Win32App] lpExitCode ")
                .is_some_and(|code| code.parse::<i64>().is_ok())
        })
        .map(|(t, _)| t.duration_trunc(Duration::minutes(1)).unwrap_or(t))
        .collect()
}

fn program_installed(w: &World) -> bool {
    w.device("LAB-01")
        .unwrap()
        .device()
        .installed_programs()
        .iter()
        .any(|p| p.display_name == "Contoso Widget")
}

#[tokio::test]
async fn a_required_app_installs_on_the_first_try() {
    let (mut w, id) = world_with_app(package(vec![0])).await;
    assign(&w, &id).await;
    w.advance(Duration::hours(1)).await;

    assert!(program_installed(&w));
    assert_eq!(install_times(&w).len(), 1);
    let compliance = state_message(&w, &id, "ComplianceStateMessage");
    assert_eq!(
        (
            compliance["ComplianceState"].as_i64(),
            compliance["Applicability"].as_i64(),
            compliance["DesiredState"].as_i64()
        ),
        (Some(1), Some(0), Some(2))
    );
    assert_eq!(
        state_message(&w, &id, "EnforcementStateMessage")["EnforcementState"],
        1000
    );
    let agent = w.device("LAB-01").unwrap();
    let drive = &agent.device().drive;
    let rev = app_key(&w, &id).rsplit('_').next().unwrap().to_owned();
    let log = agent::cmtrace::messages(drive, win32::APP_LOG);
    let unzipped = log.iter().position(|m| m == "Start unzipping");
    let cleaned = log.iter().position(|m| {
        m == &format!(r"[Win32App] Cleaning up content cache C:\Windows\IMECache\{id}_{rev}")
    });
    assert!(
        unzipped.is_some() && cleaned > unzipped,
        "phase 3: unzipped to IMECache, cleaned up after the install: {log:#?}"
    );
    assert!(
        !drive.exists(&format!(r"C:\Windows\IMECache\{id}_{rev}")),
        "the IMECache is empty after a successful install (ContentCacheDuration unset)"
    );
    // Detection runs right before the installer and again after it.
    let detection = format!(
        "[Win32App][DetectionActionHandler] Detection for policy with id: {id} resulted in action status: Success and detection state: "
    );
    let launch = log
        .iter()
        .position(|m| m.starts_with("[Win32App] Launch Win32AppInstaller"))
        .expect("the installer ran");
    let exit = log
        .iter()
        .position(|m| m == "[Win32App] lpExitCode is defined as Success")
        .expect("its exit code");
    assert_eq!(
        log[..launch].last().map(String::as_str),
        Some(format!("{detection}NotDetected.").as_str()),
        "detection right before the installer"
    );
    assert_eq!(
        log[exit + 1],
        format!("{detection}Detected."),
        "and right after it"
    );
    assert!(
        !drive.exists(&format!(r"{}\{id}_{rev}.bin", win32::INCOMING)),
        "staging cleaned up"
    );
    assert!(
        log.iter().any(|m| m.starts_with("Get policies = [{")),
        "the policy JSON is logged"
    );

    let dev = w.device_id("LAB-01").unwrap();
    let installed = Filter::kind("app_state_changed")
        .device(&dev)
        .field("appId", id.as_str())
        .field("newCompliance", 1);
    assert!(holds(&w, installed, Expectation::Exactly(1)).await);
    let (_, statuses) = w
        .admin(
            "GET",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses"),
            AdminBody::None,
        )
        .await;
    assert_eq!(statuses["value"][0]["installState"], "installed");
    w.stop().await;
}

#[tokio::test]
async fn the_seeds_retry_timeline_1618_four_times_then_success_after_24_hours() {
    let (mut w, id) = world_with_app(package(vec![1618, 1618, 1618, 1618, 0])).await;
    assign(&w, &id).await;
    w.advance(Duration::hours(23)).await;
    let times = install_times(&w);
    assert_eq!(times.len(), 4, "{times:?}");
    let t = times[0];
    assert_eq!(
        times,
        [
            t,
            t + Duration::minutes(5),
            t + Duration::minutes(10),
            t + Duration::minutes(15)
        ]
    );
    assert!(!program_installed(&w));
    let agent = w.device("LAB-01").unwrap();
    let grs = win32::grs_key(DEVICE_USER, &id);
    let stamp = agent
        .device()
        .registry
        .get_text(&grs, &id)
        .expect("a GRS entry named after the app");
    assert_eq!(
        stamp,
        (t + Duration::minutes(15))
            .format("%m/%d/%Y %H:%M:%S")
            .to_string()
    );
    assert_eq!(
        state_message(&w, &id, "EnforcementStateMessage")["EnforcementState"],
        5000
    );
    let log = agent::cmtrace::messages(&agent.device().drive, win32::APP_LOG);
    assert!(log.iter().any(|m| m.starts_with(&format!(
        "[Win32App][GRSManager] App with id: {id} is not expired. | Hash = "
    ))));

    w.advance(Duration::hours(3)).await;
    let times = install_times(&w);
    assert_eq!(times.len(), 5);
    let last = times[4];
    assert!(
        last >= t + Duration::minutes(15) + Duration::hours(24)
            && last <= t + Duration::minutes(15) + Duration::hours(25),
        "retried at the first check-in after the GRS expired: {last}"
    );
    assert!(program_installed(&w));
    assert_eq!(
        state_message(&w, &id, "ComplianceStateMessage")["ComplianceState"],
        1
    );
    assert!(
        w.device("LAB-01")
            .unwrap()
            .device()
            .registry
            .get_text(&grs, &id)
            .is_none(),
        "success clears the GRS"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_plain_failure_is_retried_every_24_hours() {
    let (mut w, id) = world_with_app(package(vec![1603])).await;
    assign(&w, &id).await;
    w.advance(Duration::hours(74)).await;
    let times = install_times(&w);
    assert_eq!(times.len(), 4, "{times:?}");
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::hours(24) && gap <= Duration::hours(25),
            "{gap}"
        );
    }
    let enforcement = state_message(&w, &id, "EnforcementStateMessage");
    assert_eq!(
        (
            enforcement["EnforcementState"].as_i64(),
            enforcement["ErrorCode"].as_i64()
        ),
        (Some(5000), Some(1603))
    );
    assert_eq!(
        state_message(&w, &id, "ComplianceStateMessage")["ComplianceState"],
        4
    );
    let (_, statuses) = w
        .admin(
            "GET",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses"),
            AdminBody::None,
        )
        .await;
    assert_eq!(
        (
            statuses["value"][0]["installState"].as_str(),
            statuses["value"][0]["errorCode"].as_i64()
        ),
        (Some("failed"), Some(1603))
    );
    w.stop().await;
}

#[tokio::test]
async fn a_detection_that_holds_before_anything_runs() {
    let (mut w, id) = world_with_app(package(vec![0])).await;
    let agent = w.device_mut("LAB-01").unwrap();
    agent::device::programs::register_msi(
        &mut agent.device_mut().registry,
        PRODUCT,
        "Contoso Widget",
        "1.0.0",
        "Contoso",
        "20260101",
    );
    agent.save().unwrap();
    assign(&w, &id).await;
    w.advance(Duration::hours(1)).await;
    assert!(install_times(&w).is_empty(), "nothing ran");
    assert_eq!(
        state_message(&w, &id, "ComplianceStateMessage")["ComplianceState"],
        1
    );
    let agent = w.device("LAB-01").unwrap();
    assert!(
        !agent.device().drive.exists(r"C:\Windows\IMECache"),
        "no content was downloaded"
    );
    w.stop().await;
}

#[tokio::test]
async fn the_ripley_maneuver_retries_at_the_next_check_in() {
    let (mut w, id) = world_with_app(package(vec![1603, 0])).await;
    assign(&w, &id).await;
    w.advance(Duration::hours(2)).await;
    assert_eq!(install_times(&w).len(), 1);
    assert!(!program_installed(&w));
    // Delete the app's key and its GRS key, then sync.
    let key = app_key(&w, &id);
    let agent = w.device_mut("LAB-01").unwrap();
    agent.device_mut().registry.delete_key(&key);
    agent
        .device_mut()
        .registry
        .delete_key(&win32::grs_key(DEVICE_USER, &id));
    agent.save().unwrap();
    w.sync("LAB-01").await.unwrap();
    assert_eq!(
        install_times(&w).len(),
        2,
        "retried at once, not 24 hours later"
    );
    assert!(program_installed(&w));
    w.stop().await;
}

#[tokio::test]
async fn a_package_of_megabytes_is_downloaded_decrypted_and_unzipped_in_pieces_and_installs() {
    // Bytes that do not compress: the encrypted file spans several of the device's pieces.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let payload: Vec<u8> = (0..3 << 20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let msi = SimulatedMsi::new(PRODUCT, "Contoso Widget", "1.2.0", "Contoso");
    // Unzipped after the setup file: a payload that did not unzip whole fails the
    // install.
    let files = [
        ("widget.msi".to_owned(), msi.to_bytes()),
        ("data/payload.bin".to_owned(), payload),
    ];
    let package = syncml::intunewin::pack(&files, "widget.msi", &keys(), None).unwrap();
    let encrypted = syncml::intunewin::open(&package).unwrap().encrypted.len();
    let (mut w, id) = world_with_app(package).await;
    assign(&w, &id).await;
    w.advance(Duration::hours(1)).await;
    assert_eq!(install_times(&w).len(), 1);
    assert!(program_installed(&w));
    let drive = &w.device("LAB-01").unwrap().device().drive;
    let log = agent::cmtrace::messages(drive, win32::APP_LOG);
    assert!(
        log.iter()
            .any(|m| *m == format!("[Win32App] Downloaded file size {encrypted}")),
        "{log:?}"
    );
    w.stop().await;
}

/// Flips a byte of an app's stored content on the server.
async fn damage_content(w: &World, id: &str) {
    let state = &w.server().unwrap().state;
    let (file, _) = state.store.app_package(id).await.unwrap().unwrap();
    let block = state.store.blocks(&file).await.unwrap().remove(0);
    let mut chunk = state
        .store
        .chunk(&file, &block.id, 0)
        .await
        .unwrap()
        .unwrap();
    chunk[100] ^= 0xFF;
    state.store.drop_block(&file, &block.id).await.unwrap();
    state
        .store
        .put_chunk(&file, &block.id, 0, &chunk)
        .await
        .unwrap();
    state.journal.commit(None).await.unwrap();
}

#[tokio::test]
async fn a_tampered_package_is_refused_with_a_content_error() {
    // The server checked the package at commit; its stored copy is damaged afterwards,
    // as a content delivery network's copy can be.
    let (mut w, id) = world_with_app(package(vec![0])).await;
    damage_content(&w, &id).await;
    assign(&w, &id).await;
    w.advance(Duration::hours(1)).await;
    assert!(
        install_times(&w).is_empty(),
        "nothing was installed from tampered content"
    );
    assert!(!program_installed(&w));
    let enforcement = state_message(&w, &id, "EnforcementStateMessage");
    assert_eq!(
        (
            enforcement["EnforcementState"].as_i64(),
            enforcement["ErrorCode"].as_i64()
        ),
        (Some(5003), Some(win32::E_CONTENT))
    );
    let log = agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG);
    assert!(
        log.iter().any(|m| m.contains("MAC does not match")),
        "{log:?}"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_scheduled_assignment_detects_before_the_start_downloads_between_and_installs_at_the_deadline(
) {
    let (mut w, id) = world_with_app(package(vec![0])).await;
    let t0 = w.now();
    let start = t0 + Duration::hours(12);
    let deadline = t0 + Duration::hours(24);
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, body) = testbed::workload::assign(&w, &id, json!([{
                "intent": "required",
                "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" },
                "settings": { "@odata.type": "#microsoft.graph.win32LobAppAssignmentSettings",
                    "installTimeSettings": { "useLocalTime": false, "startDateTime": fmt(start), "deadlineDateTime": fmt(deadline) } },
            }])).await;
    assert_eq!(status, 204, "{body}");
    let downloads = |w: &World| {
        agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG)
            .iter()
            .filter(|m| {
                m.starts_with(&format!(
                    "[Win32App] Content cache miss for app (id = {id},"
                ))
            })
            .count()
    };

    // Before the start: the policy is evaluated, detection runs and is reported, nothing else.
    w.advance(Duration::hours(11)).await;
    assert_eq!(downloads(&w), 0);
    assert!(install_times(&w).is_empty());
    assert_eq!(
        state_message(&w, &id, "ComplianceStateMessage")["ComplianceState"],
        2,
        "reported NotInstalled"
    );
    let dev = w.device_id("LAB-01").unwrap();
    let reported = Filter::kind("app_report")
        .device(&dev)
        .field("appId", id.as_str())
        .field("compliance", 2);
    assert!(holds(&w, reported, Expectation::AtLeast(1)).await);

    // Between start and deadline: downloaded and cached, still not installed, pending.
    w.advance(Duration::hours(2)).await;
    assert_eq!(downloads(&w), 1);
    assert!(install_times(&w).is_empty());
    let enforcement = state_message(&w, &id, "EnforcementStateMessage");
    assert_eq!(enforcement["EnforcementState"], 2009);
    let (_, statuses) = w
        .admin(
            "GET",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses"),
            AdminBody::None,
        )
        .await;
    assert_eq!(statuses["value"][0]["installState"], "pendingInstall");

    // At the deadline: installed, without downloading again.
    w.advance(Duration::hours(12)).await;
    assert_eq!(
        install_times(&w),
        [deadline],
        "installed at the deadline itself"
    );
    assert_eq!(downloads(&w), 1, "no second download");
    assert!(program_installed(&w));
    w.stop().await;
}

/// Adds a second required app (its own product) with this exit-code plan.
async fn add_required_app(w: &World, name: &str, product: &str, exit_codes: Vec<u32>) -> String {
    let mut msi = SimulatedMsi::new(product, name, "1.0.0", "Contoso");
    msi.exit_codes = exit_codes;
    let content = syncml::intunewin::pack(
        &[("setup.msi".into(), msi.to_bytes())],
        "setup.msi",
        &keys(),
        None,
    )
    .unwrap();
    let (_, app) = w
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.win32LobApp",
                "displayName": name,
                "installCommandLine": "msiexec /i setup.msi /qn",
                "rules": [{ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": product, "productVersionOperator": "notConfigured" }],
            })),
        )
        .await;
    let id = app["id"].as_str().unwrap().to_owned();
    w.admin(
        "PUT",
        &format!("/beta/deviceAppManagement/mobileApps/{id}/content"),
        AdminBody::Bytes(content),
    )
    .await;
    assign(w, &id).await;
    id
}

#[tokio::test]
async fn a_hard_reboot_blocks_the_next_install_until_the_device_restarts() {
    let (mut w, _unassigned) = world_with_app(package(vec![0])).await;
    // The first app asks for a hard reboot; the second arrives while it is pending.
    let first = add_required_app(
        &w,
        "Needs Reboot",
        "{AAAAAAAA-0000-4000-8000-000000000001}",
        vec![1641],
    )
    .await;
    w.advance(Duration::hours(2)).await;
    let second = add_required_app(
        &w,
        "Waits",
        "{AAAAAAAA-0000-4000-8000-000000000002}",
        vec![0],
    )
    .await;
    w.advance(Duration::hours(3)).await;
    let installed = |w: &World, name: &str| {
        w.device("LAB-01")
            .unwrap()
            .device()
            .installed_programs()
            .iter()
            .any(|p| p.display_name == name)
    };
    assert!(
        installed(&w, "Needs Reboot"),
        "1641 is a success that needs a reboot"
    );
    assert_eq!(
        state_message(&w, &first, "ComplianceStateMessage")["ComplianceState"],
        1
    );
    assert!(!installed(&w, "Waits"), "blocked by the pending reboot");
    assert_eq!(
        state_message(&w, &second, "EnforcementStateMessage")["EnforcementState"],
        2003
    );

    w.reboot("LAB-01").unwrap();
    // Windows is back a minute and a half later; the IME starts and checks in.
    w.advance(Duration::minutes(5)).await;
    assert!(
        installed(&w, "Waits"),
        "installed once the device restarted"
    );
    assert_eq!(
        state_message(&w, &second, "ComplianceStateMessage")["ComplianceState"],
        1
    );
    w.stop().await;
}

async fn assign_intent(w: &World, id: &str, intent: &str) {
    let (status, body) = testbed::workload::assign(w, id, json!([{ "intent": intent, "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }])).await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn an_available_app_installs_only_when_the_user_asks() {
    let (mut w, id) = world_with_app(package(vec![0])).await;
    assign_intent(&w, &id, "available").await;
    w.advance(Duration::hours(6)).await;
    assert!(!program_installed(&w), "not installed on its own");
    // Company Portal lists it, not yet tried.
    let listed = w.company_portal("LAB-01").await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|a| (a.name.as_str(), a.status))
            .collect::<Vec<_>>(),
        [("Contoso Widget", "Available")]
    );
    assert!(!w.install_available("LAB-01", "No Such App").await.unwrap());
    assert!(w
        .install_available("LAB-01", "Contoso Widget")
        .await
        .unwrap());
    assert!(program_installed(&w));
    assert_eq!(
        state_message(&w, &id, "ComplianceStateMessage")["ComplianceState"],
        1
    );
    assert_eq!(
        w.company_portal("LAB-01").await.unwrap()[0].status,
        "Installed"
    );
    let (_, statuses) = w
        .admin(
            "GET",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses"),
            AdminBody::None,
        )
        .await;
    assert_eq!(statuses["value"][0]["installState"], "installed");
    let user = w
        .device("LAB-01")
        .unwrap()
        .device()
        .profile
        .user_object_id
        .clone();
    assert!(
        app_key(&w, &id).starts_with(&format!(r"{WIN32APPS}\{user}\")),
        "Company Portal installs in the user's session, under the user's id"
    );
    // Company Portal's flow: the list of available apps, then the one the user picked.
    let dev = w.device_id("LAB-01").unwrap();
    let selected = Filter::kind("gateway_call")
        .device(&dev)
        .field("request", "GetSelectedApp");
    assert!(
        holds(&w, selected, Expectation::Exactly(1)).await,
        "one GetSelectedApp, for the app that exists"
    );
    w.stop().await;
}

#[tokio::test]
async fn the_uninstall_intent_removes_an_installed_app() {
    let (mut w, id) = world_with_app(package(vec![0])).await;
    assign_intent(&w, &id, "required").await;
    w.advance(Duration::hours(1)).await;
    assert!(program_installed(&w));
    assign_intent(&w, &id, "uninstall").await;
    w.advance(Duration::hours(1)).await;
    assert!(!program_installed(&w), "uninstalled");
    assert!(!w
        .device("LAB-01")
        .unwrap()
        .device()
        .drive
        .exists(r"C:\Program Files\Contoso\widget.exe"));
    let compliance = state_message(&w, &id, "ComplianceStateMessage");
    assert_eq!(
        (
            compliance["ComplianceState"].as_i64(),
            compliance["DesiredState"].as_i64()
        ),
        (Some(2), Some(1))
    );
    let log = agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG);
    assert!(log
        .iter()
        .any(|m| m.starts_with("[Win32App] Handler invoked with execution type: Uninstall")));
    w.stop().await;
}

/// Creates an app (not assigned) with its own product and content.
async fn create_app(w: &World, name: &str, product: &str) -> String {
    let msi = SimulatedMsi::new(product, name, "1.0.0", "Contoso");
    let content = syncml::intunewin::pack(
        &[("setup.msi".into(), msi.to_bytes())],
        "setup.msi",
        &keys(),
        None,
    )
    .unwrap();
    let (_, app) = w
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.win32LobApp",
                "displayName": name,
                "installCommandLine": "msiexec /i setup.msi /qn",
                "uninstallCommandLine": format!("msiexec /x {product} /qn"),
                "rules": [{ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": product, "productVersionOperator": "notConfigured" }],
            })),
        )
        .await;
    let id = app["id"].as_str().unwrap().to_owned();
    w.admin(
        "PUT",
        &format!("/beta/deviceAppManagement/mobileApps/{id}/content"),
        AdminBody::Bytes(content),
    )
    .await;
    id
}

fn installed_named(w: &World, name: &str) -> bool {
    w.device("LAB-01")
        .unwrap()
        .device()
        .installed_programs()
        .iter()
        .any(|p| p.display_name == name)
}

#[tokio::test]
async fn a_dependency_is_installed_before_its_parent() {
    let (mut w, _unassigned) = world_with_app(package(vec![0])).await;
    let runtime = create_app(
        &w,
        "Contoso Runtime",
        "{BBBBBBBB-0000-4000-8000-000000000001}",
    )
    .await;
    let app = create_app(&w, "Contoso App", "{BBBBBBBB-0000-4000-8000-000000000002}").await;
    let (status, body) = w
        .admin(
            "POST",
            &format!("/beta/deviceAppManagement/mobileApps/{app}/updateRelationships"),
            AdminBody::Json(json!({ "relationships": [{ "@odata.type": "#microsoft.graph.mobileAppDependency", "targetId": runtime, "dependencyType": "autoInstall" }] })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assign_intent(&w, &app, "required").await; // only the parent is assigned
    w.advance(Duration::hours(1)).await;
    assert!(installed_named(&w, "Contoso Runtime") && installed_named(&w, "Contoso App"));
    let log = agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG);
    let dependency_first = log
        .iter()
        .position(|m| {
            m == &format!("[Win32App][ActionProcessor] Dependency with id: {runtime} of app with id: {app} is not detected and will be enforced first.")
        })
        .expect("the dependency went first");
    let launches: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, m)| m.starts_with("[Win32App] Launch Win32AppInstaller"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(launches.len(), 2);
    assert!(
        dependency_first < launches[0],
        "the dependency's install is the first launched"
    );
    assert_eq!(
        state_message(&w, &runtime, "ComplianceStateMessage")["ComplianceState"],
        1
    );
    assert_eq!(
        state_message(&w, &app, "ComplianceStateMessage")["ComplianceState"],
        1
    );
    w.stop().await;
}

#[tokio::test]
async fn a_replacing_app_uninstalls_the_one_it_supersedes() {
    let (mut w, _unassigned) = world_with_app(package(vec![0])).await;
    let old = create_app(
        &w,
        "Contoso Classic",
        "{CCCCCCCC-0000-4000-8000-000000000001}",
    )
    .await;
    assign_intent(&w, &old, "required").await;
    w.advance(Duration::hours(1)).await;
    assert!(installed_named(&w, "Contoso Classic"));

    let new = create_app(&w, "Contoso Next", "{CCCCCCCC-0000-4000-8000-000000000002}").await;
    w.admin(
        "POST",
        &format!("/beta/deviceAppManagement/mobileApps/{new}/updateRelationships"),
        AdminBody::Json(json!({ "relationships": [{ "@odata.type": "#microsoft.graph.mobileAppSupersedence", "targetId": old, "supersedenceType": "replace" }] })),
    )
    .await;
    testbed::workload::assign(&w, &old, json!([])).await;
    assign_intent(&w, &new, "required").await;
    w.advance(Duration::hours(1)).await;
    assert!(installed_named(&w, "Contoso Next"));
    assert!(
        !installed_named(&w, "Contoso Classic"),
        "the superseded app was uninstalled"
    );
    w.stop().await;
}

#[tokio::test]
async fn an_app_removed_by_hand_returns_at_the_next_reevaluation_and_logs_roll_over() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    let profile = agent::device::DeviceProfile {
        log_max_kb: 4,
        ..Default::default()
    };
    w.add_device("LAB-01", profile).await.unwrap();
    w.settle().await;
    let id = create_app(&w, "Contoso Widget", PRODUCT).await;
    assign_intent(&w, &id, "required").await;
    w.advance(Duration::hours(1)).await;
    assert!(program_installed(&w));
    w.advance(Duration::minutes(30)).await; // a check-in finds it detected: evaluated now

    // The user removes it by hand.
    let now = w.now();
    let agent = w.device_mut("LAB-01").unwrap();
    assert_eq!(
        agent
            .device_mut()
            .run(
                &format!("msiexec /x {PRODUCT} /qn"),
                r"C:\Windows\Temp",
                std::time::Duration::from_secs(5),
                now
            )
            .exit_code,
        0
    );
    agent.save().unwrap();
    w.advance(Duration::hours(3)).await;
    assert!(
        !program_installed(&w),
        "not before the subgraph's reevaluation"
    );
    let log = agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG);
    assert!(log.iter().any(|m| m.starts_with(
        "[Win32App][ReevaluationScheduleManager] Subgraph reevaluation interval is not expired"
    )));
    assert!(log.iter().any(|m| m.starts_with(
        "[Win32App][ReevaluationScheduleManager] Found previous subgraph reevaluation time value: "
    )));
    w.advance(Duration::hours(6)).await;
    assert!(
        program_installed(&w),
        "reinstalled within the 480-minute reevaluation interval"
    );

    // With a 4 KB limit the logs rolled over, named as the IME names them.
    let logs = w
        .device("LAB-01")
        .unwrap()
        .device()
        .drive
        .resolve(agent::cmtrace::LOG_DIR)
        .unwrap();
    let names: Vec<String> = std::fs::read_dir(logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let rolled = names
        .iter()
        .filter(|n| n.starts_with("AppWorkload-") && n.ends_with(".log"))
        .count();
    assert!(rolled >= 1, "{names:?}");
    assert!(
        names.iter().all(|n| !n.starts_with("AppWorkload-")
            || n.len() == "AppWorkload-20261124-090000.log".len()),
        "{names:?}"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_requirement_rule_holds_back_an_app_and_a_detection_script_confirms_it() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // The detection script is PowerShell to Windows; its shebang makes it run under sh
    // here. It finds the file the MSI lays down.
    let probe = "#!/bin/sh\n# Detect Contoso Widget\nif [ -f \"$TENANTLESS_C_DRIVE/Program Files/Contoso/widget.exe\" ]; then\n  echo \"Contoso Widget found\"\nfi\nexit 0\n";
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.settle().await;
    let (status, app) = w
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.win32LobApp",
                "displayName": "Contoso Widget",
                "installCommandLine": "msiexec /i widget.msi /qn",
                "rules": [
                    { "@odata.type": "#microsoft.graph.win32LobAppPowerShellScriptRule", "ruleType": "detection", "scriptContent": b64(probe), "enforceSignatureCheck": false, "runAs32Bit": false },
                    { "@odata.type": "#microsoft.graph.win32LobAppRegistryRule", "ruleType": "requirement", "keyPath": r"HKEY_LOCAL_MACHINE\SOFTWARE\Contoso", "valueName": "Ring", "operationType": "string", "operator": "equal", "comparisonValue": "pilot" },
                ],
            })),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let id = app["id"].as_str().unwrap().to_owned();
    w.admin(
        "PUT",
        &format!("/beta/deviceAppManagement/mobileApps/{id}/content"),
        AdminBody::Bytes(package(vec![0])),
    )
    .await;
    assign(&w, &id).await;
    w.advance(Duration::hours(1)).await;

    // The device is not in the pilot ring: requirements not met (registry rule, 1007).
    assert!(!program_installed(&w));
    let compliance = state_message(&w, &id, "ComplianceStateMessage");
    assert_eq!(compliance["Applicability"], 1007, "{compliance}");
    assert_eq!(
        state_message(&w, &id, "EnforcementStateMessage")["EnforcementState"],
        3000
    );
    assert!(install_times(&w).is_empty());

    // Put it in the ring: the next hourly check-in installs, and the script detects.
    w.device_mut("LAB-01").unwrap().device_mut().registry.set(
        r"HKLM\SOFTWARE\Contoso",
        "Ring",
        agent::device::RegValue::Sz("pilot".into()),
    );
    w.advance(Duration::hours(1)).await;
    assert!(program_installed(&w));
    let compliance = state_message(&w, &id, "ComplianceStateMessage");
    assert_eq!(
        (
            compliance["ComplianceState"].as_i64(),
            compliance["Applicability"].as_i64()
        ),
        (Some(1), Some(0)),
        "{compliance}"
    );
    let dev = w.device_id("LAB-01").unwrap();
    let installed = Filter::kind("app_state_changed")
        .device(&dev)
        .field("appId", id.as_str())
        .field("newCompliance", 1);
    assert!(holds(&w, installed, Expectation::Exactly(1)).await);

    // Remove the file: the script no longer detects the app, and the next reevaluation
    // (8 hours on) installs it again.
    w.device_mut("LAB-01")
        .unwrap()
        .device_mut()
        .drive
        .remove(r"C:\Program Files\Contoso\widget.exe")
        .unwrap();
    w.advance(Duration::hours(9)).await;
    assert_eq!(
        install_times(&w).len(),
        2,
        "installed again after the script missed it"
    );
    w.stop().await;
}

#[tokio::test]
async fn the_decryption_info_is_sealed_to_the_device_certificate() {
    // RSA device keys, as Windows has: the keys travel in a CMS EnvelopedData.
    let mut w = World::start(WorldOptions {
        fast_keys: false,
        ..Default::default()
    })
    .await
    .unwrap();
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.settle().await;
    let id = add_required_app(&w, "Sealed Widget", PRODUCT, vec![0]).await;
    w.advance(Duration::hours(1)).await;
    assert!(
        installed_named(&w, "Sealed Widget"),
        "content opened and installed"
    );

    let agent = w.device("LAB-01").unwrap();
    let line = agent::cmtrace::messages(&agent.device().drive, win32::APP_LOG)
        .into_iter()
        .find_map(|m| {
            m.strip_prefix("[Win32App] Get content info from service,ret = ")
                .map(str::to_owned)
        })
        .expect("the content info is logged, as the IME logs it");
    let ret: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ret["ApplicationId"], id.as_str());
    let decrypt_info = ret["DecryptInfo"].as_str().unwrap();
    assert!(
        decrypt_info.starts_with("<EncryptedMessage>") && !decrypt_info.contains("EncryptionKey"),
        "sealed, not in the clear: {decrypt_info}"
    );

    // Anyone with the device's key opens it with standard CMS tools.
    let Ok(openssl) = which_openssl() else {
        eprintln!("openssl is not installed; the interop half of this test is skipped");
        w.stop().await;
        return;
    };
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let message = syncml::xml::parse(decrypt_info).unwrap();
    let der = b64
        .decode(message.child_text("EncryptedContent").unwrap())
        .unwrap();
    let enrollment = agent.state().enrollment.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.der"), der).unwrap();
    std::fs::write(
        dir.path().join("key.der"),
        b64.decode(&enrollment.key_b64).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new(openssl)
        .args(["cms", "-decrypt", "-inform", "DER", "-in", "m.der"])
        .args(["-inkey", "key.der", "-keyform", "DER"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in ["EncryptionKey", "MacKey", "IV", "Mac", "FileDigest"] {
        assert!(
            keys[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field} in {keys}"
        );
    }
    w.stop().await;
}

fn which_openssl() -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("openssl"))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

/// A line looked for: what it is, and how to know it.
type Wanted<'a> = (&'a str, Box<dyn Fn(&str) -> bool>);

/// Finds `wanted` in order among `lines`; returns the index of each match, failing
/// with the first that is missing.
fn in_order(lines: &[(DateTime<Utc>, String)], wanted: &[Wanted<'_>]) -> Vec<usize> {
    let mut at = 0;
    let mut found = Vec::new();
    for (what, matches) in wanted {
        let Some(i) = lines[at..].iter().position(|(_, m)| matches(m)) else {
            panic!("after line {at}: no {what}");
        };
        found.push(at + i);
        at += i + 1;
    }
    found
}

/// The seed's 1618 timeline as AppWorkload.log tells it, in the real IME's words: four
/// enforcements each with its content line, `lpExitCode 1618` and its meaning, the GRS
/// entry, hourly "not expired" skips with the subgraph's hash, "expired" a day later,
/// and the successful install with its report delta; timestamps advance within a
/// check-in and the poller writes on its own thread.
#[tokio::test]
async fn the_1618_timeline_in_the_real_imes_words() {
    let (mut w, id) = world_with_app(package(vec![1618, 1618, 1618, 1618, 0])).await;
    assign(&w, &id).await;
    w.advance(Duration::hours(26)).await;
    let agent = w.device("LAB-01").unwrap();
    let lines = agent::cmtrace::records(&agent.device().drive, win32::APP_LOG);
    let hash = win32::subgraph_hash(&id);
    let is = |text: String| -> Box<dyn Fn(&str) -> bool> { Box::new(move |m: &str| m == text) };
    let starts = |text: String| -> Box<dyn Fn(&str) -> bool> {
        Box::new(move |m: &str| m.starts_with(&text))
    };
    let content = {
        let (miss, hit) = (
            format!("[Win32App] Content cache miss for app (id = {id},"),
            format!("[Win32App] Content cache found for app id {id}"),
        );
        move || -> Box<dyn Fn(&str) -> bool> {
            let (miss, hit) = (miss.clone(), hit.clone());
            Box::new(move |m: &str| m.starts_with(&miss) || m == hit)
        }
    };
    let mut wanted: Vec<Wanted<'_>> = vec![
        ("poller start", starts("[Win32App] ----------------------------------------------------- application poller starts.".into())),
        ("policies", starts("Get policies = [{".into())),
        ("subgraph", is(format!("[Win32App][V3Processor] Processing subgraph with app ids: {id}"))),
        ("no GRS value yet", is(format!("[Win32App][GRSManager] App with id: {id} has no recorded GRS value which will be treated as expired. | Hash = {hash}"))),
    ];
    for _ in 0..4 {
        wanted.push(("download or cache line", content()));
        wanted.push(("exit code", is("[Win32App] lpExitCode 1618".into())));
        wanted.push((
            "its meaning",
            is("[Win32App] lpExitCode is defined as Retry".into()),
        ));
    }
    wanted.push((
        "the GRS entry",
        starts("[Win32App][GRSManager] Saving GRS value: ".into()),
    ));
    for _ in 0..20 {
        wanted.push((
            "an hourly skip",
            is(format!(
                "[Win32App][GRSManager] App with id: {id} is not expired. | Hash = {hash}"
            )),
        ));
    }
    wanted.push((
        "expiry",
        is(format!(
            "[Win32App][GRSManager] App with id: {id} is expired. | Hash = {hash}"
        )),
    ));
    wanted.push(("the install", content()));
    wanted.push(("exit code 0", is("[Win32App] lpExitCode 0".into())));
    wanted.push((
        "success",
        is("[Win32App] lpExitCode is defined as Success".into()),
    ));
    wanted.push((
        "the report delta",
        Box::new({
            let id = id.clone();
            move |m: &str| {
                m.starts_with(&format!("[Win32App][ReportingManager] Execution state for app with id: {id} has been updated. Report delta: "))
                    && m.contains(r#""NewValue":"Success""#)
            }
        }),
    ));
    let found = in_order(&lines, &wanted);

    // Time passes within a check-in: from the first content line to its exit code.
    let (first_content, first_exit) = (lines[found[4]].0, lines[found[5]].0);
    assert!(
        first_exit > first_content,
        "{first_content} .. {first_exit}"
    );
    let times: Vec<DateTime<Utc>> = lines.iter().map(|(t, _)| *t).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "the log's times never go back"
    );
    // Expiry comes 24 h after the GRS entry (the value saved is the check-in's time,
    // the line comes seconds later, after the installer ran).
    let grs_at = lines[found[16]].0;
    let expired_at = lines[found[37]].0;
    let waited = expired_at - grs_at;
    assert!(
        waited > Duration::hours(24) - Duration::minutes(1) && waited < Duration::hours(25),
        "{grs_at} .. {expired_at}"
    );
    // The poller writes on its own thread, the status service on another.
    let raw = String::from_utf8_lossy(
        &agent
            .device()
            .drive
            .read(&format!(r"{}\{}", agent::cmtrace::LOG_DIR, win32::APP_LOG))
            .unwrap(),
    )
    .into_owned();
    assert!(raw.contains(r#"thread="14""#) && raw.contains(r#"thread="26""#));
    assert!(!raw.contains(r#"component="AppWorkload" context="" type="1" thread="1" "#));
    w.stop().await;
}

/// A user-targeted app is processed in the signed-in user's session (1, with the user's
/// object id and SID) and its state lives under the user's id, in the user's context.
#[tokio::test]
async fn a_user_targeted_app_is_processed_in_the_users_session() {
    let (mut w, id) = world_with_app(package(vec![0])).await;
    let (status, body) = testbed::workload::assign(&w, &id, json!([{ "intent": "required", "target": { "@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget" } }])).await;
    assert_eq!(status, 204, "{body}");
    w.advance(Duration::hours(1)).await;
    assert!(program_installed(&w));
    let profile = w.device("LAB-01").unwrap().device().profile.clone();
    let key = app_key(&w, &id);
    assert!(
        key.starts_with(&format!(r"{WIN32APPS}\{}\{id}_", profile.user_object_id)),
        "{key}"
    );
    assert!(!w
        .device("LAB-01")
        .unwrap()
        .device()
        .registry
        .key_exists(&format!(
            r"{WIN32APPS}\{DEVICE_USER}\{}",
            key.rsplit('\\').next().unwrap()
        )));
    let compliance = state_message(&w, &id, "ComplianceStateMessage");
    assert_eq!(
        (
            compliance["InstallContext"].as_i64(),
            compliance["TargetType"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let log = agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG);
    let session = format!(
        "[Win32App] ..................... Processing user session 1, userId: {}, userSID: {} ..................... ",
        profile.user_object_id,
        profile.user_sid()
    );
    let at = log
        .iter()
        .position(|m| m == &session)
        .expect("the user's session");
    assert!(profile.user_sid().starts_with("S-1-12-1-"));
    assert!(log[at..].iter().any(|m| m
        == &format!(
            "[Win32App] Got 1 Win32App(s) for user {} in session 1",
            profile.user_object_id
        )));
    assert!(log
        .iter()
        .any(|m| m == "[Win32App] Got 2 active user sessions"));
    w.stop().await;
}

/// A restart of the device leaves a gap between `EMS Agent Stopped` and `EMS Agent
/// Started` (Windows was down); a restart of the service does not.
#[tokio::test]
async fn a_reboot_shows_as_a_gap_in_the_imes_log() {
    let (mut w, _id) = world_with_app(package(vec![0])).await;
    w.require_ime("LAB-01").await.unwrap();
    w.advance(Duration::hours(1)).await;
    let now = w.now();
    w.device_mut("LAB-01").unwrap().restart_ime(now).unwrap();
    w.advance(Duration::minutes(10)).await;
    w.reboot("LAB-01").unwrap();
    w.advance(Duration::minutes(10)).await;
    let records = agent::cmtrace::records(
        &w.device("LAB-01").unwrap().device().drive,
        "IntuneManagementExtension.log",
    );
    let times = |m: &str| -> Vec<DateTime<Utc>> {
        records
            .iter()
            .filter(|(_, r)| r == m)
            .map(|(t, _)| *t)
            .collect()
    };
    let (stopped, started) = (times("EMS Agent Stopped"), times("EMS Agent Started"));
    assert_eq!(
        (stopped.len(), started.len()),
        (2, 3),
        "install, restart, reboot"
    );
    assert_eq!(started[1], stopped[0], "a service restart: no gap");
    assert_eq!(
        started[2] - stopped[1],
        agent::agent::BOOT_TIME,
        "a reboot: the machine was down"
    );
    w.stop().await;
}

/// A package of about `kb` KB that does not compress away.
fn big_package(kb: usize) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut msi = SimulatedMsi::new(PRODUCT, "Contoso Widget", "1.2.0", "Contoso");
    let mut block = Sha256::digest(b"widget").to_vec();
    let mut content = String::new();
    while content.len() < kb * 1024 {
        block = Sha256::digest(&block).to_vec();
        content.push_str(&hex::encode(&block));
    }
    msi.files.push(syncml::sim_msi::MsiFile {
        path: r"C:\Program Files\Contoso\widget.exe".into(),
        content,
    });
    syncml::intunewin::pack(
        &[("widget.msi".into(), msi.to_bytes())],
        "widget.msi",
        &keys(),
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn content_comes_through_delivery_optimization_unless_its_policy_says_bypass() {
    // By default: Delivery Optimization, its progress on the status service's thread
    // about every second of the download, the last line with every byte.
    let (mut w, id) = world_with_app(big_package(300)).await;
    w.device_mut("LAB-01")
        .unwrap()
        .device_mut()
        .profile
        .download_kbps = 400;
    assign(&w, &id).await;
    w.advance(Duration::hours(2)).await;
    let records = agent::cmtrace::read(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG);
    let progress: Vec<&agent::cmtrace::Record> = records
        .iter()
        .filter(|r| r.message.contains(") via DO, bytes "))
        .collect();
    assert!(progress.len() >= 3, "{} progress lines", progress.len());
    let bytes = |r: &agent::cmtrace::Record| -> (u64, u64) {
        let tail = r.message.split("via DO, bytes ").nth(1).unwrap();
        let (done, rest) = tail.split_once('/').unwrap();
        let total = rest.split_whitespace().next().unwrap();
        (done.parse().unwrap(), total.parse().unwrap())
    };
    let (last_done, total) = bytes(progress[progress.len() - 1]);
    assert_eq!(last_done, total, "the last progress line has every byte");
    assert!(total > 100 * 1024, "{total}");
    for pair in progress.windows(2) {
        assert!(bytes(pair[0]).0 < bytes(pair[1]).0);
        assert!(pair[0].at < pair[1].at, "progress takes time");
    }
    assert!(progress
        .iter()
        .all(|r| r.thread == agent::ime::threads::STATUS_SERVICE));
    assert!(progress[0].message.starts_with(&format!(
        "[StatusService] Downloading app (id = {id}, name Contoso Widget) via DO"
    )));
    let messages: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
    let notified = messages
        .iter()
        .position(|m| *m == "[Win32App] Notified DO Service the job is complete.")
        .expect("the DO job completes");
    assert!(!messages.iter().any(|m| m.contains("CDN mode")));
    assert!(messages[notified + 1].starts_with("[Win32App] Downloaded file size "));
    w.stop().await;

    // DODownloadMode 100 (Bypass): the CDN, and no DO line.
    let (mut w, id) = world_with_app(package(vec![0])).await;
    w.device_mut("LAB-01").unwrap().device_mut().registry.set(
        win32::DO_POLICY_KEY,
        "DODownloadMode",
        agent::device::RegValue::Dword(100),
    );
    assign(&w, &id).await;
    w.advance(Duration::hours(2)).await;
    let messages =
        agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG);
    assert!(messages
        .iter()
        .any(|m| m.starts_with("[Win32App] ExternalCDN mode, content raw URL is ")));
    assert!(messages
        .iter()
        .any(|m| m == "[Win32App] CDN mode, download completes."));
    assert!(
        !messages
            .iter()
            .any(|m| m.contains("via DO") || m.contains("DO Service")),
        "no DO line"
    );
    assert_eq!(install_times(&w).len(), 1, "installed either way");
    w.stop().await;
}

/// Whether the journal's events matching `filter` meet `expectation`.
async fn holds(w: &World, filter: Filter, expectation: Expectation) -> bool {
    w.journal()
        .filter(filter)
        .verify(expectation)
        .await
        .unwrap()
        .ok
}

/// How many devices the app's `deviceStatuses` lists.
async fn statuses(w: &World, id: &str) -> usize {
    let (_, body) = w
        .admin(
            "GET",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses"),
            AdminBody::None,
        )
        .await;
    body["value"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn an_app_whose_assignment_is_removed_is_cleaned_up_once_and_leaves_its_statuses() {
    let (mut w, id) = world_with_app(package(vec![0])).await;
    assign(&w, &id).await;
    w.advance(Duration::hours(2)).await;
    assert_eq!(install_times(&w).len(), 1);
    assert_eq!(statuses(&w, &id).await, 1);

    // The assignment goes: at its next check-in the IME sets the app to Cleanup.
    let (status, body) = testbed::workload::assign(&w, &id, json!([])).await;
    assert_eq!(status, 204, "{body}");
    w.advance(Duration::hours(3)).await;
    let compliance = state_message(&w, &id, "ComplianceStateMessage");
    assert_eq!(compliance["ComplianceState"], 100, "{compliance}");
    assert_eq!(compliance["DesiredState"], 0, "{compliance}");
    let cleanup = format!(
        "[Win32App][ActionProcessor] App with id: {id} is no longer targeted. Its reporting state is set to Cleanup."
    );
    let lines = |w: &World| {
        agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG)
            .iter()
            .filter(|m| **m == cleanup)
            .count()
    };
    assert_eq!(lines(&w), 1, "once, not at every check-in");
    let dev = w.device_id("LAB-01").unwrap();
    let changed = Filter::kind("app_state_changed")
        .device(&dev)
        .field("appId", id.as_str())
        .field("newCompliance", 100);
    assert!(holds(&w, changed, Expectation::Exactly(1)).await);
    assert_eq!(
        statuses(&w, &id).await,
        0,
        "the device left the app's statuses"
    );
    assert_eq!(
        install_times(&w).len(),
        1,
        "nothing uninstalled or installed"
    );

    // Assigned again: detected at once, Installed again, no second install.
    assign(&w, &id).await;
    w.advance(Duration::hours(2)).await;
    assert_eq!(
        state_message(&w, &id, "ComplianceStateMessage")["ComplianceState"],
        1
    );
    assert_eq!(statuses(&w, &id).await, 1);
    assert_eq!(install_times(&w).len(), 1);
    w.stop().await;
}

#[tokio::test]
async fn an_app_without_a_detection_rule_is_unknown_and_never_installed() {
    let (mut w, id) = world_with_app(package(vec![0])).await;
    let (status, body) = w
        .admin(
            "PATCH",
            &format!("/beta/deviceAppManagement/mobileApps/{id}"),
            AdminBody::Json(json!({ "@odata.type": "#microsoft.graph.win32LobApp", "rules": [] })),
        )
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    assign(&w, &id).await;
    w.advance(Duration::hours(3)).await;
    let compliance = state_message(&w, &id, "ComplianceStateMessage");
    assert_eq!(compliance["ComplianceState"], 5, "{compliance}");
    assert!(install_times(&w).is_empty(), "nothing tells it is missing");
    let records = agent::cmtrace::read(&w.device("LAB-01").unwrap().device().drive, win32::APP_LOG);
    let unknown = format!("[Win32App][DetectionActionHandler] Detection for policy with id: {id} resulted in action status: Failed and detection state: Unknown.");
    assert!(records
        .iter()
        .any(|r| r.message == unknown && r.severity == 2));
    let (_, statuses) = w
        .admin(
            "GET",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses"),
            AdminBody::None,
        )
        .await;
    assert_eq!(
        statuses["value"][0]["installState"], "unknown",
        "{statuses}"
    );
    w.stop().await;
}
