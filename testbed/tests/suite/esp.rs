//! The Enrollment Status Page: a device that enrolls under an ESP profile installs its
//! blocking apps first (CheckinReason ESP, EspPhase DeviceSetup), everything else after;
//! a blocking app that fails, or the timeout, ends the ESP in failure, and the rest of
//! the apps are processed anyway.

use chrono::Duration;
use serde_json::json;
use testbed::{AdminBody, World, WorldOptions};

fn log(w: &World, device: &str, file: &str) -> String {
    let drive = &w.device(device).unwrap().device().drive;
    agent::cmtrace::read(drive, file)
        .into_iter()
        .map(|r| r.message + "\n")
        .collect()
}

fn installation_state(w: &World, device: &str, app: &str) -> Option<String> {
    let key = format!(r"{}\Win32App_{app}_1", agent::ime::esp::TRACKING_KEY);
    w.device(device)
        .unwrap()
        .device()
        .registry
        .get_text(&key, "InstallationState")
}

#[tokio::test]
async fn a_failing_blocking_app_fails_the_esp_and_the_rest_installs_after_it() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    let blocking = testbed::workload::required_app(
        &w,
        "Agent",
        "{6A1B2C3D-4E5F-4A6B-8C7D-00000000E501}",
        vec![1603],
    )
    .await
    .unwrap();
    let other = testbed::workload::required_app(
        &w,
        "Viewer",
        "{6A1B2C3D-4E5F-4A6B-8C7D-00000000E502}",
        vec![0],
    )
    .await
    .unwrap();
    testbed::workload::enrollment_status_page(&w, 60, std::slice::from_ref(&blocking))
        .await
        .unwrap();
    w.add_device("ESP-02", Default::default()).await.unwrap();
    w.advance(Duration::minutes(30)).await;

    let ime = log(&w, "ESP-02", "IntuneManagementExtension.log");
    assert!(
        ime.contains(&format!(
            "The Enrollment Status Page failed: the blocking app {blocking} failed to install."
        )),
        "{ime}"
    );
    assert_eq!(
        installation_state(&w, "ESP-02", &blocking).as_deref(),
        Some("4")
    );
    let apps = log(&w, "ESP-02", "AppWorkload.log");
    let deferred = apps
        .find("1 app(s) not tracked by the ESP are deferred")
        .unwrap();
    let viewer = apps
        .find(&format!(
            "Handler invoked with execution type: Install for policy with id: {other}"
        ))
        .unwrap();
    assert!(deferred < viewer, "the viewer waited for the ESP");
    let programs =
        agent::device::programs::installed_programs(&w.device("ESP-02").unwrap().device().registry);
    assert!(
        programs.iter().any(|p| p.display_name == "Viewer"),
        "installed after the ESP"
    );
    assert!(w
        .device("ESP-02")
        .unwrap()
        .state()
        .esp_outcome
        .as_ref()
        .is_some_and(|o| o.failed));
}

#[tokio::test]
async fn the_esp_times_out_while_its_blocking_app_is_retried() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    // 1618 (another install in progress) is retried every 5 minutes, 3 times.
    let blocking = testbed::workload::required_app(
        &w,
        "Busy",
        "{6A1B2C3D-4E5F-4A6B-8C7D-00000000E503}",
        vec![1618],
    )
    .await
    .unwrap();
    testbed::workload::enrollment_status_page(&w, 10, std::slice::from_ref(&blocking))
        .await
        .unwrap();
    w.add_device("ESP-03", Default::default()).await.unwrap();
    w.advance(Duration::minutes(9)).await;
    assert!(
        w.device("ESP-03").unwrap().state().esp.is_some(),
        "still in the ESP"
    );
    assert_eq!(
        installation_state(&w, "ESP-03", &blocking).as_deref(),
        Some("2"),
        "in progress"
    );
    w.advance(Duration::minutes(2)).await;
    let ime = log(&w, "ESP-03", "IntuneManagementExtension.log");
    assert!(
        ime.contains("The Enrollment Status Page failed: the ESP timed out after 10 minutes."),
        "{ime}"
    );
    assert!(w.device("ESP-03").unwrap().state().esp.is_none());

    // A renewal or a later session does not bring the ESP back.
    w.advance(Duration::hours(8)).await;
    let ime = log(&w, "ESP-03", "IntuneManagementExtension.log");
    assert_eq!(
        ime.matches("The Enrollment Status Page is tracking")
            .count(),
        1
    );
}

#[tokio::test]
async fn an_esp_profile_is_checked_and_a_device_without_one_has_no_esp() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    let (status, body) = w
        .admin(
            "POST",
            "/beta/deviceManagement/deviceEnrollmentConfigurations",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
                "displayName": "Too quick",
                "installProgressTimeoutInMinutes": 0,
            })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    testbed::workload::required_app(
        &w,
        "Plain",
        "{6A1B2C3D-4E5F-4A6B-8C7D-00000000E504}",
        vec![0],
    )
    .await
    .unwrap();
    w.add_device("NOESP-01", Default::default()).await.unwrap();
    w.advance(Duration::minutes(30)).await;
    let apps = log(&w, "NOESP-01", "AppWorkload.log");
    assert!(apps.contains("The EspPhase: NotInEsp in session"));
    assert!(!apps.contains("DeviceSetup"));
}
