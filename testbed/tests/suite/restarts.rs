//! Restarts and toasts: an install that needs a restart leaves it pending under the
//! app's DeviceRestartBehavior; the assignment's grace period (`RebootEx`) lets the
//! user snooze the notification until the countdown, and restarts the device when it
//! is over; `notifications = hideAll` shows no toast (`ToastState` 2).

use agent::ime::restart::Answer;
use chrono::Duration;
use serde_json::{json, Value};
use testbed::{AdminBody, World, WorldOptions};

/// One log's messages, rolled files included.
fn log(w: &World, device: &str, file: &str) -> String {
    let drive = &w.device(device).unwrap().device().drive;
    agent::cmtrace::read(drive, file)
        .into_iter()
        .map(|r| r.message + "\n")
        .collect()
}

/// The kinds of the toasts a device showed, in order.
fn toasts(w: &World, device: &str) -> Vec<String> {
    w.device(device)
        .unwrap()
        .state()
        .notifications
        .iter()
        .map(|n| n.kind.clone())
        .collect()
}

/// An app whose installer exits with `code`, with `behavior` as its
/// deviceRestartBehavior, assigned as required with these assignment `settings`.
async fn assigned_app(w: &World, name: &str, code: u32, behavior: &str, settings: Value) -> String {
    let product = format!("{{6A1B2C3D-4E5F-4A6B-8C7D-0000000{code:05}}}");
    let app = testbed::workload::app(w, name, &product, vec![code])
        .await
        .unwrap();
    let (status, body) = w
        .admin(
            "PATCH",
            &format!("/beta/deviceAppManagement/mobileApps/{app}"),
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.win32LobApp",
                "installExperience": { "runAsAccount": "system", "deviceRestartBehavior": behavior },
            })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = assign(w, &app, settings).await;
    assert_eq!(status, 204, "{body}");
    app
}

/// Assigns an app as required to all devices with these assignment `settings`.
async fn assign(w: &World, app: &str, settings: Value) -> (u16, Value) {
    testbed::workload::assign(
        w,
        app,
        json!([{
            "intent": "required",
            "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" },
            "settings": settings,
        }]),
    )
    .await
}

#[tokio::test]
async fn a_restart_is_snoozed_until_the_countdown_and_forced_when_the_grace_period_ends() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("RST-01", Default::default()).await.unwrap();
    let settings = json!({
        "@odata.type": "#microsoft.graph.win32LobAppAssignmentSettings",
        "notifications": "showAll",
        "restartSettings": {
            "gracePeriodInMinutes": 120,
            "countdownDisplayBeforeRestartInMinutes": 10,
            "restartNotificationSnoozeDurationInMinutes": 20,
        },
    });
    let app = assigned_app(&w, "Driver Pack", 1641, "basedOnReturnCode", settings).await;

    // Graph shows the settings as they were set.
    let (_, assignments) = w
        .admin(
            "GET",
            &format!("/beta/deviceAppManagement/mobileApps/{app}/assignments"),
            AdminBody::None,
        )
        .await;
    let restart = &assignments["value"][0]["settings"]["restartSettings"];
    assert_eq!(restart["gracePeriodInMinutes"], 120, "{assignments}");
    assert_eq!(restart["restartNotificationSnoozeDurationInMinutes"], 20);

    w.advance(Duration::minutes(30)).await;
    let policies = log(&w, "RST-01", "AppWorkload.log");
    assert!(
        policies.contains(r#""RebootEx":{"GracePeriod":120,"Countdown":10,"Snooze":20}"#),
        "the policy carries the grace period"
    );
    let pending = w.device("RST-01").unwrap().state().ime.restart.clone();
    let pending = pending.expect("the hard reboot leaves a restart pending");
    let deadline = pending.deadline.expect("a grace period has an end");
    assert_eq!(deadline - pending.required_at, Duration::minutes(120));
    assert_eq!(
        toasts(&w, "RST-01"),
        ["installing", "installed", "restartRequired"]
    );

    // A snooze, and not a second while the first lasts.
    w.answer_restart("RST-01", Answer::Snooze).await.unwrap();
    assert!(w.answer_restart("RST-01", Answer::Snooze).await.is_err());
    w.advance(Duration::minutes(21)).await;
    assert_eq!(
        toasts(&w, "RST-01").last().map(String::as_str),
        Some("restartRequired"),
        "the notification is back after the snooze"
    );

    // Ten minutes before the end the countdown shows: no more snoozing.
    let until_countdown = deadline - Duration::minutes(10) - w.now();
    w.advance(until_countdown + Duration::seconds(1)).await;
    assert!(toasts(&w, "RST-01").contains(&"restartCountdown".to_owned()));
    let refused = w.answer_restart("RST-01", Answer::Snooze).await;
    assert!(refused.is_err(), "no snooze in the countdown");
    assert!(!log(&w, "RST-01", "AppWorkload.log").contains("has expired"));

    // The end of the grace period restarts the device; the IME starts again.
    w.advance(Duration::minutes(15)).await;
    let app_log = log(&w, "RST-01", "AppWorkload.log");
    assert!(app_log.contains(&format!(
        "Restart grace period for app with id: {app} has expired. Restarting the device."
    )));
    assert_eq!(
        toasts(&w, "RST-01").last().map(String::as_str),
        Some("restarting")
    );
    assert!(w.device("RST-01").unwrap().state().ime.restart.is_none());
    let ime_log = log(&w, "RST-01", "IntuneManagementExtension.log");
    assert_eq!(ime_log.matches("EMS Agent Started").count(), 2, "{ime_log}");
    assert!(
        w.answer_restart("RST-01", Answer::RestartNow)
            .await
            .is_err(),
        "nothing is pending any more"
    );
}

#[tokio::test]
async fn hidden_toasts_a_forced_restart_at_once_a_hard_reboot_that_waits_and_a_suppressed_one() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("RST-02", Default::default()).await.unwrap();
    let quiet = json!({ "notifications": "hideAll" });
    assigned_app(&w, "Quiet Tool", 0, "force", quiet).await;
    w.advance(Duration::minutes(30)).await;
    let app_log = log(&w, "RST-02", "AppWorkload.log");
    assert!(app_log.contains(r#""ToastState":2"#));
    assert!(app_log.contains("is not shown per its ToastState."));
    assert!(toasts(&w, "RST-02").is_empty(), "hideAll shows nothing");
    // "force" restarts the device after a plain success; with no grace period, at once.
    assert!(
        app_log.contains("forces a device restart and has no grace period. Restarting the device.")
    );
    assert!(w.device("RST-02").unwrap().state().ime.restart.is_none());
    let ime_log = log(&w, "RST-02", "IntuneManagementExtension.log");
    assert_eq!(ime_log.matches("EMS Agent Started").count(), 2);

    // A hard reboot code with no grace period waits for the user, who restarts now.
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("RST-04", Default::default()).await.unwrap();
    assigned_app(&w, "Driver", 1641, "basedOnReturnCode", json!({})).await;
    w.advance(Duration::minutes(30)).await;
    let pending = w.device("RST-04").unwrap().state().ime.restart.clone();
    assert!(
        pending.is_some_and(|r| r.deadline.is_none()),
        "waits for the user"
    );
    assert!(
        w.answer_restart("RST-04", Answer::Snooze).await.is_err(),
        "no snooze duration was set"
    );
    w.answer_restart("RST-04", Answer::RestartNow)
        .await
        .unwrap();
    assert!(w.device("RST-04").unwrap().state().ime.restart.is_none());
    w.advance(Duration::minutes(5)).await;
    let ime_log = log(&w, "RST-04", "IntuneManagementExtension.log");
    assert_eq!(ime_log.matches("EMS Agent Started").count(), 2);

    // "suppress": a hard reboot code leaves no restart for the IME to enforce.
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("RST-03", Default::default()).await.unwrap();
    assigned_app(&w, "Silent Driver", 1641, "suppress", json!({})).await;
    w.advance(Duration::minutes(30)).await;
    assert!(log(&w, "RST-03", "AppWorkload.log").contains("lpExitCode 1641"));
    assert!(w.device("RST-03").unwrap().state().ime.restart.is_none());
    assert!(!toasts(&w, "RST-03").contains(&"restartRequired".to_owned()));
}

#[tokio::test]
async fn a_restart_setting_out_of_range_is_refused_with_graphs_error() {
    let w = World::start(WorldOptions::default()).await.unwrap();
    let app = testbed::workload::app(
        &w,
        "Any App",
        "{6A1B2C3D-4E5F-4A6B-8C7D-000000000099}",
        vec![0],
    )
    .await
    .unwrap();
    for settings in [
        json!({ "notifications": "sometimes" }),
        json!({ "restartSettings": { "gracePeriodInMinutes": 10, "countdownDisplayBeforeRestartInMinutes": 30 } }),
        json!({ "restartSettings": { "gracePeriodInMinutes": -5 } }),
    ] {
        let (status, body) = assign(&w, &app, settings.clone()).await;
        assert_eq!(status, 400, "{settings}: {body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn company_portal_shows_an_installed_app_waiting_for_its_restart() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("RST-05", Default::default()).await.unwrap();
    let app = testbed::workload::app(
        &w,
        "Portal Driver",
        "{6A1B2C3D-4E5F-4A6B-8C7D-000000001641}",
        vec![1641],
    )
    .await
    .unwrap();
    let (status, body) = testbed::workload::assign(
        &w,
        &app,
        json!([{
            "intent": "available",
            "target": { "@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget" },
            "settings": { "restartSettings": { "gracePeriodInMinutes": 240 } },
        }]),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    w.advance(Duration::minutes(30)).await;
    assert!(w.install_available("RST-05", &app).await.unwrap());
    let portal = w.company_portal("RST-05").await.unwrap();
    let shown = portal.iter().find(|a| a.id == app).unwrap();
    assert_eq!(shown.status, "Installed, restart required");
    w.answer_restart("RST-05", Answer::RestartNow)
        .await
        .unwrap();
    let portal = w.company_portal("RST-05").await.unwrap();
    assert_eq!(
        portal.iter().find(|a| a.id == app).unwrap().status,
        "Installed"
    );
}
