//! Devices in time zones: the IME's log time columns are the device's local time (and
//! read back as the moments they stand for), Windows' TimeZoneInformation says the
//! zone, and an assignment in local time reads back from Graph as a client set it.

use agent::device::{DeviceProfile, RegValue};
use agent::ime::win32::APP_LOG;
use chrono::Duration;
use serde_json::json;
use testbed::{AdminBody, World, WorldOptions};

#[tokio::test]
async fn a_brisbane_device_logs_in_local_time_and_reads_its_logs_back_in_utc() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    let profile = DeviceProfile {
        time_zone: "E. Australia Standard Time".into(),
        utc_offset_minutes: 600,
        ..DeviceProfile::default()
    };
    w.add_device("BNE-01", profile).await.unwrap();
    let app = testbed::workload::app(
        &w,
        "Timesheet",
        "{6A1B2C3D-4E5F-4A6B-8C7D-000000000061}",
        vec![0],
    )
    .await
    .unwrap();
    let (status, body) = testbed::workload::assign(&w, &app, json!([{
                "intent": "required",
                "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" },
                "settings": { "@odata.type": "#microsoft.graph.win32LobAppAssignmentSettings",
                    "installTimeSettings": { "useLocalTime": true, "deadlineDateTime": "2026-12-01T08:00:00Z" } },
            }])).await;
    assert_eq!(status, 204, "{body}");
    let (_, assignments) = w
        .admin(
            "GET",
            &format!("/beta/deviceAppManagement/mobileApps/{app}/assignments"),
            AdminBody::None,
        )
        .await;
    let times = &assignments["value"][0]["settings"]["installTimeSettings"];
    assert_eq!(times["useLocalTime"], true, "{assignments}");
    assert_eq!(
        times["deadlineDateTime"], "2026-12-01T08:00:00.000Z",
        "{assignments}"
    );
    w.advance(Duration::hours(2)).await;

    let device = w.device("BNE-01").unwrap().device();
    let zone = r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation";
    assert_eq!(
        device.registry.get(zone, "Bias"),
        Some(&RegValue::Dword((-600i32) as u32)),
        "Windows' bias: UTC = local + bias"
    );
    let wall = agent::cmtrace::read(&device.drive, APP_LOG);
    let moments = device.log_records(APP_LOG);
    assert!(!wall.is_empty());
    for (w, m) in wall.iter().zip(&moments) {
        assert_eq!(w.at - m.at, Duration::hours(10), "{}", w.message);
    }
    // Read back, the records are the world's moments (a check-in's lines run on a few
    // minutes past its start), not ten hours ahead.
    let last = moments.last().unwrap().at;
    assert!(
        (w.now() - last).num_minutes().abs() < 60,
        "{last} at {}",
        w.now()
    );
}
