//! Microsoft Store (new) apps: Graph's `winGetApp` is delivered in the IME's app policy
//! with `InstallerData` and installed through the device's WinGet, with no content to
//! upload or download; a package the source does not have fails as WinGet says.

use chrono::Duration;
use serde_json::{json, Value};
use testbed::{AdminBody, World, WorldOptions};

fn app_log(w: &World, device: &str) -> String {
    let drive = &w.device(device).unwrap().device().drive;
    agent::cmtrace::read(drive, "AppWorkload.log")
        .into_iter()
        .map(|r| r.message + "\n")
        .collect()
}

async fn store_app(w: &World, name: &str, package: &str) -> String {
    let (status, app) = w
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.winGetApp",
                "displayName": name,
                "publisher": "Contoso",
                "packageIdentifier": package,
                "installExperience": { "runAsAccount": "system" },
            })),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["@odata.type"], "#microsoft.graph.winGetApp");
    assert_eq!(app["packageIdentifier"], package);
    let id = app["id"].as_str().unwrap().to_owned();
    let (status, body) = testbed::workload::assign(
        w,
        &id,
        json!([{
            "intent": "required",
            "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" },
        }]),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    id
}

#[tokio::test]
async fn a_store_app_installs_through_winget_and_a_missing_package_fails_as_winget_says() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.create_device("STORE-02", Default::default()).unwrap();
    w.device_mut("STORE-02")
        .unwrap()
        .device_mut()
        .winget
        .packages
        .insert(
            "Contoso.Notes".into(),
            agent::device::winget::Package {
                name: "Contoso Notes".into(),
                version: "3.4.0".into(),
                publisher: "Contoso".into(),
                exit_codes: vec![],
            },
        );
    w.enroll("STORE-02").await.unwrap();
    let notes = store_app(&w, "Contoso Notes", "Contoso.Notes").await;
    let missing = store_app(&w, "Contoso Ghost", "Contoso.Ghost").await;
    w.advance(Duration::minutes(30)).await;

    let log = app_log(&w, "STORE-02");
    assert!(
        log.contains(r#"\"PackageIdentifier\":\"Contoso.Notes\",\"SourceName\":\"msstore\""#),
        "the policy's InstallerData names the package and its source"
    );
    assert!(log.contains("Install of package Contoso.Notes completed with status: Ok"));
    assert!(log.contains(
        "Install of package Contoso.Ghost completed with status: InstallError (0x8a150014)"
    ));
    let device = w.device("STORE-02").unwrap().device();
    assert!(device.winget_installed("Contoso.Notes"));
    assert!(!device.winget_installed("Contoso.Ghost"));
    let programs = agent::device::programs::installed_programs(&device.registry);
    assert!(
        programs.iter().any(|p| p.display_name == "Contoso Notes"),
        "{programs:?}"
    );

    let statuses = |id: String| {
        let w = &w;
        async move {
            let (_, s) = w
                .admin(
                    "GET",
                    &format!("/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses"),
                    AdminBody::None,
                )
                .await;
            s["value"][0]["installState"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let (_, users) = w
        .admin(
            "GET",
            &format!("/beta/deviceAppManagement/mobileApps/{notes}/userStatuses"),
            AdminBody::None,
        )
        .await;
    let user = &users["value"][0];
    assert_eq!(user["installedDeviceCount"], 1, "{users}");
    assert_eq!(user["failedDeviceCount"], 0);
    let upn = w
        .device("STORE-02")
        .unwrap()
        .device()
        .profile
        .user_principal_name
        .clone();
    assert_eq!(user["userPrincipalName"], upn.as_str(), "the device's user");
    assert_eq!(statuses(notes.clone()).await, "installed");
    assert_eq!(statuses(missing).await, "failed");
    let (_, calls) = w
        .admin("GET", "/testbed/events?kind=gateway_call", AdminBody::None)
        .await;
    let content_calls = calls["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"]["request"] == "GetContentInfo")
        .count();
    assert_eq!(content_calls, 0, "nothing to download: {calls}");

    // Uninstall intent: WinGet takes it away again.
    let (status, body) = testbed::workload::assign(
        &w,
        &notes,
        json!([{
            "intent": "uninstall",
            "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" },
        }]),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    w.advance(Duration::hours(2)).await;
    assert!(app_log(&w, "STORE-02")
        .contains("Uninstall of package Contoso.Notes completed with status: Ok"));
    assert!(!w
        .device("STORE-02")
        .unwrap()
        .device()
        .winget_installed("Contoso.Notes"));
}

#[tokio::test]
async fn a_store_app_needs_its_package_and_keeps_its_type() {
    let w = World::start(WorldOptions::default()).await.unwrap();
    let (status, body) = w
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(
                json!({ "@odata.type": "#microsoft.graph.winGetApp", "displayName": "No package" }),
            ),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("packageIdentifier"));
    let id = store_app(&w, "Contoso Notes", "Contoso.Notes").await;
    let (status, body): (u16, Value) = w
        .admin(
            "PATCH",
            &format!("/beta/deviceAppManagement/mobileApps/{id}"),
            AdminBody::Json(json!({ "@odata.type": "#microsoft.graph.win32LobApp" })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = w
        .admin(
            "PATCH",
            &format!("/beta/deviceAppManagement/mobileApps/{id}"),
            AdminBody::Json(
                json!({ "@odata.type": "#microsoft.graph.winGetApp", "displayName": "Notes" }),
            ),
        )
        .await;
    assert_eq!(status, 204);
}
