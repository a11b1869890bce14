//! Application inventory end to end on the world clock: a Win32 app in the next delta
//! and in Discovered apps; a program removed by hand gone only after the 7-day full;
//! `FirstTimeRun` deleted forcing a full.

use agent::device::programs::UNINSTALL_KEY;
use agent::device::RegValue;
use agent::ime::inventory::{INVENTORIES_KEY, LOG};
use chrono::Duration;
use serde_json::{json, Value};
use syncml::sim_msi::SimulatedMsi;
use testbed::{AdminBody, Filter, World, WorldOptions};

async fn world_with_ime() -> World {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.settle().await;
    assert!(w.require_ime("LAB-01").await.unwrap());
    w.advance(Duration::minutes(30)).await;
    w
}

async fn inventories(w: &World) -> Vec<Value> {
    w.journal()
        .filter(Filter::kind("inventory"))
        .events()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

async fn detected(w: &World, name: &str) -> Option<Value> {
    let (_, apps) = w
        .admin(
            "GET",
            "/beta/deviceManagement/detectedApps",
            AdminBody::None,
        )
        .await;
    apps["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["displayName"] == name)
        .cloned()
}

fn install_by_hand(w: &mut World, key: &str, name: &str) {
    let reg = &mut w.device_mut("LAB-01").unwrap().device_mut().registry;
    let key = format!(r"{UNINSTALL_KEY}\{key}");
    reg.set(&key, "DisplayName", RegValue::Sz(name.into()));
    reg.set(&key, "DisplayVersion", RegValue::Sz("3.1".into()));
    reg.set(&key, "Publisher", RegValue::Sz("Fabrikam".into()));
}

#[tokio::test]
async fn a_win32_app_shows_in_the_next_delta_and_in_discovered_apps() {
    let mut w = world_with_ime().await;
    let first = inventories(&w).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        first[0]["inventoryType"], "Full",
        "the first inventory is a full one"
    );

    // A required app, installed by the Win32 engine at the next check-in.
    let product = "{5B1C0E2A-7D3F-4A6B-9C8D-0E1F2A3B4C5D}";
    let msi = SimulatedMsi::new(product, "Contoso Widget", "1.2.0", "Contoso");
    let keys = syncml::intunewin::Keys {
        encryption_key: [5; 32],
        mac_key: [6; 32],
        iv: [7; 16],
    };
    let content =
        syncml::intunewin::pack(&[("w.msi".into(), msi.to_bytes())], "w.msi", &keys, None).unwrap();
    let (_, app) = w
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.win32LobApp",
                "displayName": "Contoso Widget",
                "installCommandLine": "msiexec /i w.msi /qn",
                "rules": [{ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": product }],
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
    testbed::workload::assign(&w, &id, json!([{ "intent": "required", "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }])).await;
    w.advance(Duration::hours(2)).await;
    assert!(
        detected(&w, "Contoso Widget").await.is_none(),
        "not before the next inventory"
    );

    // The daily delta carries it.
    w.advance(Duration::hours(23)).await;
    let all = inventories(&w).await;
    let delta = all.last().unwrap();
    assert_eq!(delta["inventoryType"], "Delta", "{all:?}");
    assert_eq!(delta["added"], json!(["Contoso Widget"]));
    let app = detected(&w, "Contoso Widget")
        .await
        .expect("a discovered app");
    assert_eq!(
        (app["version"].clone(), app["deviceCount"].clone()),
        (json!("1.2.0"), json!(1))
    );
    let (_, devices) = w
        .admin(
            "GET",
            &format!(
                "/beta/deviceManagement/detectedApps/{}/managedDevices",
                app["id"].as_str().unwrap()
            ),
            AdminBody::None,
        )
        .await;
    assert_eq!(
        devices["value"][0]["id"],
        w.device_id("LAB-01").unwrap().as_str()
    );
    // And under the device, as its Discovered apps.
    let id = w.device_id("LAB-01").unwrap();
    let (status, mine) = w
        .admin(
            "GET",
            &format!("/beta/deviceManagement/managedDevices/{id}/detectedApps"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 200, "{mine}");
    let names: Vec<&str> = mine["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["displayName"].as_str())
        .collect();
    assert!(names.contains(&"Contoso Widget"), "{names:?}");
    assert!(
        names.contains(&"Microsoft Intune Management Extension"),
        "{names:?}"
    );
    let log = agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, LOG);
    assert!(
        log.iter()
            .any(|m| m == "[Win32AppInventory] Delta inventory sent"),
        "{log:?}"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_removal_shows_only_after_the_full_inventory_and_first_time_run_forces_one() {
    let mut w = world_with_ime().await;
    install_by_hand(&mut w, "FabrikamTool", "Fabrikam Tool");
    w.advance(Duration::hours(24)).await;
    assert_eq!(
        detected(&w, "Fabrikam Tool").await.unwrap()["deviceCount"],
        1,
        "an addition shows after the next delta"
    );

    // Removed by hand: the deltas of the next days do not remove it...
    w.device_mut("LAB-01")
        .unwrap()
        .device_mut()
        .registry
        .delete_key(&format!(r"{UNINSTALL_KEY}\FabrikamTool"));
    w.advance(Duration::days(5)).await;
    assert!(
        detected(&w, "Fabrikam Tool").await.is_some(),
        "still listed after deltas"
    );
    let fulls = |all: &[Value]| all.iter().filter(|e| e["inventoryType"] == "Full").count();
    assert_eq!(fulls(&inventories(&w).await), 1);

    // ...the 7-day full does.
    w.advance(Duration::days(1)).await;
    let all = inventories(&w).await;
    let last = all.last().unwrap();
    assert_eq!(last["inventoryType"], "Full", "{all:?}");
    assert_eq!(last["removed"], json!(["Fabrikam Tool"]));
    assert!(detected(&w, "Fabrikam Tool").await.is_none());

    // Deleting FirstTimeRun makes the next inventory a full one.
    w.device_mut("LAB-01")
        .unwrap()
        .device_mut()
        .registry
        .delete_value(INVENTORIES_KEY, "FirstTimeRun");
    w.advance(Duration::hours(24)).await;
    let all = inventories(&w).await;
    assert_eq!(fulls(&all), 3, "{all:?}");
    assert_eq!(all.last().unwrap()["inventoryType"], "Full");
    w.stop().await;
}
