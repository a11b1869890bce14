//! The end of management, end to end: Graph's retire and wipe reach the device by a
//! push and a command it accepts; a user disconnects the device with a 1226 alert; the
//! server forgets the device (its certificate refused from then on) and the device
//! removes what management put there. Remote lock has no CSP on a Windows desktop.

use chrono::Duration;
use testbed::{AdminBody, Expectation, Filter, World, WorldOptions};

const IME: &str = "Microsoft Intune Management Extension";
const WIDGET: &str = "Contoso Widget";

/// A device with the IME and a Win32 app installed.
async fn managed() -> (World, String) {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("LAB-01", Default::default()).await.unwrap();
    testbed::workload::required_app(
        &w,
        WIDGET,
        "{11111111-0000-4000-8000-0000000000E1}",
        vec![0],
    )
    .await
    .unwrap();
    w.advance(Duration::hours(2)).await;
    let id = w.device_id("LAB-01").unwrap();
    assert!(installed(&w, IME) && installed(&w, WIDGET));
    (w, id)
}

fn installed(w: &World, name: &str) -> bool {
    w.device("LAB-01")
        .unwrap()
        .device()
        .installed_programs()
        .iter()
        .any(|p| p.display_name == name)
}

async fn holds(w: &World, filter: Filter, expectation: Expectation) {
    let v = w
        .journal()
        .filter(filter)
        .verify(expectation)
        .await
        .unwrap();
    assert!(v.ok, "{}", v.message);
}

async fn action(w: &World, id: &str, action: &str) -> u16 {
    let path = format!("/beta/deviceManagement/managedDevices/{id}/{action}");
    w.admin("POST", &path, AdminBody::None).await.0
}

/// The server no longer knows the device: Graph answers 404 and it is removed in the
/// journal for `reason`.
async fn forgotten(w: &World, id: &str, reason: &str) {
    let path = format!("/beta/deviceManagement/managedDevices/{id}");
    let (status, body) = w.admin("GET", &path, AdminBody::None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "ResourceNotFound", "{body}");
    holds(
        w,
        Filter::kind("device_removed")
            .device(id)
            .field("reason", reason),
        Expectation::Exactly(1),
    )
    .await;
    let agent = w.device("LAB-01").unwrap();
    assert!(agent.state().enrollment.is_none(), "the device left");
    assert!(agent.next_due().is_none(), "and has nothing more to do");
}

#[tokio::test]
async fn retire_unenrolls_the_device_and_removes_the_ime_but_not_the_users_programs() {
    let (mut w, id) = managed().await;
    let enrollment = w
        .device("LAB-01")
        .unwrap()
        .state()
        .enrollment
        .clone()
        .unwrap();
    assert_eq!(action(&w, &id, "retire").await, 204);
    w.settle().await;
    holds(
        &w,
        Filter::kind("command_status")
            .device(&id)
            .field("verb", "Replace")
            .field(
                "target",
                "./Device/Vendor/MSFT/DMClient/Provider/Tenantless/Unenroll",
            ),
        Expectation::Exactly(1),
    )
    .await;
    forgotten(&w, &id, "retire").await;
    assert!(
        !installed(&w, IME),
        "the IME, an MSI of the CSP, is uninstalled"
    );
    assert!(!w.device("LAB-01").unwrap().state().ime.running);
    assert!(
        installed(&w, WIDGET),
        "a retire leaves the programs the IME installed"
    );
    let reg = &w.device("LAB-01").unwrap().device().registry;
    assert!(!reg.key_exists(&format!(
        r"HKLM\SOFTWARE\Microsoft\Enrollments\{}",
        enrollment.id
    )));
    assert!(!reg.key_exists(r"HKLM\SYSTEM\CurrentControlSet\Services\IntuneManagementExtension"));

    // It can enroll again, as a new device would.
    w.enroll("LAB-01").await.unwrap();
    w.settle().await;
    let (status, _) = w
        .admin(
            "GET",
            &format!("/beta/deviceManagement/managedDevices/{id}"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 200);
    w.stop().await;
}

#[tokio::test]
async fn wipe_resets_the_device_to_a_new_windows() {
    let (mut w, id) = managed().await;
    assert_eq!(action(&w, &id, "wipe").await, 204);
    w.settle().await;
    holds(
        &w,
        Filter::kind("command_status")
            .device(&id)
            .field("target", "./Device/Vendor/MSFT/RemoteWipe/doWipe")
            .field("status", 200),
        Expectation::Exactly(1),
    )
    .await;
    forgotten(&w, &id, "wipe").await;
    assert!(
        !installed(&w, IME) && !installed(&w, WIDGET),
        "nothing is left"
    );
    let device = w.device("LAB-01").unwrap().device();
    assert!(
        agent::cmtrace::messages(&device.drive, "IntuneManagementExtension.log").is_empty(),
        "the IME's logs went with the drive"
    );
    assert!(!device
        .registry
        .key_exists(r"HKLM\SOFTWARE\Microsoft\IntuneManagementExtension"));
    assert!(device.drive.exists(r"C:\Windows\System32"), "a new Windows");
    w.stop().await;
}

#[tokio::test]
async fn a_user_who_disconnects_the_device_tells_the_server_with_a_1226_alert() {
    let (mut w, id) = managed().await;
    let now = w.now();
    w.device_mut("LAB-01").unwrap().unenroll(now).await.unwrap();
    holds(
        &w,
        Filter::kind("alert")
            .device(&id)
            .field("code", "1226")
            .field("alertType", "com.microsoft:mdm.unenrollment.userrequest"),
        Expectation::Exactly(1),
    )
    .await;
    forgotten(&w, &id, "userUnenroll").await;
    assert!(!installed(&w, IME));
    w.stop().await;
}

#[tokio::test]
async fn remote_lock_is_not_a_windows_desktop_csp() {
    let (mut w, id) = managed().await;
    assert_eq!(action(&w, &id, "remoteLock").await, 204);
    w.settle().await;
    holds(
        &w,
        Filter::kind("command_status")
            .device(&id)
            .field("target", "./Device/Vendor/MSFT/RemoteLock/Lock")
            .field("status", 404),
        Expectation::Exactly(1),
    )
    .await;
    assert!(w.device("LAB-01").unwrap().state().enrollment.is_some());
    assert_eq!(action(&w, "NOPE", "wipe").await, 404);
    w.stop().await;
}
