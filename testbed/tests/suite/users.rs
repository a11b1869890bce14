//! Users on a device: an app assigned to all users is processed in each signed-in
//! user's session and kept under each user's object id; a user's logon makes the IME
//! check in at once; the service lists who signed in (`usersLoggedOn`); a user who
//! signs out is no longer processed.

use agent::device::{DeviceProfile, User};
use agent::ime::win32::WIN32APPS;
use chrono::Duration;
use serde_json::{json, Value};
use testbed::{AdminBody, World, WorldOptions};

const PRODUCT: &str = "{6A1B2C3D-4E5F-4A6B-8C7D-000000000017}";

/// The ComplianceState the device keeps for the app under a user's object id.
fn compliance_of(w: &World, user: &str, app: &str) -> Option<i64> {
    let reg = &w.device("SHARED-01").unwrap().device().registry;
    let root = format!(r"{WIN32APPS}\{user}");
    let key = reg
        .subkeys(&root)
        .into_iter()
        .find(|k| k.starts_with(app))?;
    let message = format!(r"{root}\{key}\ComplianceStateMessage");
    let text = reg.get_text(&message, "ComplianceStateMessage")?;
    serde_json::from_str::<Value>(&text).ok()?["ComplianceState"].as_i64()
}

/// AppWorkload.log's messages, rolled files included.
fn app_log(w: &World) -> String {
    let drive = &w.device("SHARED-01").unwrap().device().drive;
    agent::cmtrace::read(drive, "AppWorkload.log")
        .into_iter()
        .map(|r| r.message + "\n")
        .collect()
}

#[tokio::test]
async fn each_signed_in_user_is_processed_in_their_own_session_with_their_own_state() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    let profile = DeviceProfile {
        user_principal_name: "ada@contoso.com".into(),
        ..DeviceProfile::default()
    };
    w.add_device("SHARED-01", profile).await.unwrap();
    let app = testbed::workload::app(&w, "Team App", PRODUCT, vec![0])
        .await
        .unwrap();
    let (status, body) = testbed::workload::assign(&w, &app, json!([
                { "intent": "required", "target": { "@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget" } },
            ])).await;
    assert_eq!(status, 204, "{body}");
    w.advance(Duration::hours(2)).await;

    let ada = User::named("ada@contoso.com");
    let bob = User::named("bob@contoso.com");
    assert_eq!(
        compliance_of(&w, &ada.object_id, &app),
        Some(1),
        "Ada's state"
    );
    assert_eq!(
        compliance_of(&w, &bob.object_id, &app),
        None,
        "Bob is not here"
    );
    assert!(app_log(&w).contains("Got 2 active user sessions"));

    // Bob signs in: the IME checks in at once, for him too.
    let at = w.now();
    assert_eq!(w.sign_in("SHARED-01", &bob.upn).await.unwrap(), 2);
    assert!(
        w.sign_in("SHARED-01", "BOB@contoso.com").await.is_err(),
        "a user signs in once"
    );
    assert_eq!(
        compliance_of(&w, &bob.object_id, &app),
        Some(1),
        "Bob's own state"
    );
    let log = app_log(&w);
    let session_two = format!(
        "Processing user session 2, userId: {}, userSID: {}",
        bob.object_id,
        bob.sid()
    );
    assert!(log.contains(&session_two), "{session_two}");
    assert!(log.contains("Got 3 active user sessions"));
    let hive = format!(r"HKEY_USERS\{}\Software", bob.sid());
    let reg = &w.device("SHARED-01").unwrap().device().registry;
    assert!(reg.key_exists(&hive), "Bob has a hive");

    // The service knows who signed in, in Graph's shape.
    let id = w.device_id("SHARED-01").unwrap();
    let (_, device) = w
        .admin(
            "GET",
            &format!("/beta/deviceManagement/managedDevices/{id}"),
            AdminBody::None,
        )
        .await;
    let users = device["usersLoggedOn"].as_array().unwrap();
    let ids: Vec<&str> = users.iter().filter_map(|u| u["userId"].as_str()).collect();
    assert_eq!(
        ids,
        [ada.object_id.as_str(), bob.object_id.as_str()],
        "{device}"
    );
    let at = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    assert!(
        users[1]["lastLogOnDateTime"]
            .as_str()
            .unwrap()
            .starts_with(&at),
        "{device}"
    );
    let (_, events) = w
        .admin(
            "GET",
            &format!("/testbed/events?device={id}&kind=user_logged_on"),
            AdminBody::None,
        )
        .await;
    let reasons: Vec<(&str, &str)> = events["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["payload"]["user"].as_str().unwrap(),
                e["payload"]["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("bob@contoso.com", "UserLogOn")),
        "{events}"
    );

    // Bob signs out: the next check-in processes two sessions again.
    assert!(w.sign_out("SHARED-01", &bob.upn).unwrap());
    assert!(!w.sign_out("SHARED-01", &bob.upn).unwrap());
    let before = app_log(&w).matches("Got 2 active user sessions").count();
    w.advance(Duration::hours(1)).await;
    let log = app_log(&w);
    assert_eq!(
        log.matches("Got 2 active user sessions").count(),
        before + 1
    );
    assert_eq!(log.matches("Got 3 active user sessions").count(), 1);
}
