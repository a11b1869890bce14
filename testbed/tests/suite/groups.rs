//! Entra groups drive targeting end to end: an app assigned to a group installs on the
//! devices in it (by their device object or their user) and nowhere else, an exclusion
//! group takes it away, and a device that joins later gets the IME and the app at its
//! next check-in, with the journal saying why.

use chrono::Duration;
use serde_json::{json, Value};
use testbed::{AdminBody, World, WorldOptions};

const PRODUCT: &str = "{6A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}";

async fn call(w: &World, method: &str, path: &str, body: Value) -> Value {
    let body = if body.is_null() {
        AdminBody::None
    } else {
        AdminBody::Json(body)
    };
    let (status, answer) = w.admin(method, path, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

async fn group(w: &World, name: &str) -> String {
    let g = call(
        w,
        "POST",
        "/v1.0/groups",
        json!({ "displayName": name, "mailEnabled": false, "mailNickname": name, "securityEnabled": true }),
    )
    .await;
    assert_eq!(g["@odata.type"], "#microsoft.graph.group", "{g}");
    g["id"].as_str().unwrap().to_owned()
}

/// The Entra object id of a device, found by name as an admin script finds it.
async fn device_object(w: &World, name: &str) -> String {
    let found = call(
        w,
        "GET",
        &format!("/v1.0/devices?$filter=displayName%20eq%20'{name}'"),
        Value::Null,
    )
    .await;
    let value = found["value"].as_array().unwrap();
    assert_eq!(value.len(), 1, "{found}");
    value[0]["id"].as_str().unwrap().to_owned()
}

/// The display names in a collection's answer, sorted (Graph gives no order).
fn display_names(answer: &Value) -> Vec<String> {
    let mut names: Vec<String> = answer["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["displayName"].as_str().map(str::to_owned))
        .collect();
    names.sort_unstable();
    names
}

async fn add(w: &World, group: &str, object: &str) {
    let (status, body) = w
        .admin(
            "POST",
            &format!("/v1.0/groups/{group}/members/$ref"),
            AdminBody::Json(
                json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{object}") }),
            ),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

fn installed(w: &World, name: &str) -> bool {
    w.device(name)
        .unwrap()
        .device()
        .installed_programs()
        .iter()
        .any(|p| p.display_name == "Pilot App")
}

async fn pilot_app(w: &World) -> String {
    testbed::workload::app(w, "Pilot App", PRODUCT, vec![0])
        .await
        .unwrap()
}

#[tokio::test]
async fn group_members_get_the_app_exclusions_do_not_and_late_joiners_catch_up() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    for name in ["LAB-01", "LAB-02", "LAB-03"] {
        w.add_device(name, Default::default()).await.unwrap();
    }
    w.settle().await;
    let pilot = group(&w, "Pilot").await;
    let held_back = group(&w, "Held back").await;
    for name in ["LAB-01", "LAB-02"] {
        let object = device_object(&w, name).await;
        add(&w, &pilot, &object).await;
    }
    add(&w, &held_back, &device_object(&w, "LAB-02").await).await;
    let of = call(
        &w,
        "GET",
        &format!(
            "/v1.0/devices/{}/memberOf",
            device_object(&w, "LAB-02").await
        ),
        Value::Null,
    )
    .await;
    let names = display_names(&of);
    assert_eq!(names, ["Held back", "Pilot"], "{of}");
    let app = pilot_app(&w).await;
    call(
        &w,
        "POST",
        &format!("/beta/deviceAppManagement/mobileApps/{app}/assign"),
        json!({ "mobileAppAssignments": [
            { "intent": "required", "target": { "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": pilot } },
            { "intent": "required", "target": { "@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": held_back } },
        ] }),
    )
    .await;
    let assignments = call(
        &w,
        "GET",
        &format!("/beta/deviceAppManagement/mobileApps/{app}/assignments"),
        Value::Null,
    )
    .await;
    let targets: Vec<&Value> = assignments["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["target"])
        .collect();
    assert_eq!(targets[0]["groupId"], pilot.as_str(), "{assignments}");
    assert_eq!(
        targets[1]["@odata.type"], "#microsoft.graph.exclusionGroupAssignmentTarget",
        "{assignments}"
    );

    w.advance(Duration::hours(2)).await;
    assert!(installed(&w, "LAB-01"), "a member gets the app");
    assert!(!installed(&w, "LAB-02"), "an excluded member does not");
    assert!(
        !installed(&w, "LAB-03"),
        "a device outside the group does not"
    );
    let members = call(
        &w,
        "GET",
        &format!("/v1.0/groups/{pilot}/members"),
        Value::Null,
    )
    .await;
    let names = display_names(&members);
    assert_eq!(names, ["LAB-01", "LAB-02"], "{members}");

    // LAB-03 joins through its user: the IME goes out, then the app.
    let upn = w
        .device("LAB-03")
        .unwrap()
        .device()
        .profile
        .user_principal_name
        .clone();
    let user = call(&w, "GET", &format!("/v1.0/users/{upn}"), Value::Null).await;
    let profile = &w.device("LAB-03").unwrap().device().profile;
    assert_eq!(
        user["id"], profile.user_object_id,
        "the device's user is the directory's user"
    );
    add(&w, &pilot, user["id"].as_str().unwrap()).await;
    // No push for a membership change (Intune sends none): the next scheduled session.
    w.advance(Duration::hours(9)).await;
    assert!(
        installed(&w, "LAB-03"),
        "a device whose user joins gets the app"
    );
    let lab03 = w.device_id("LAB-03").unwrap();
    let (_, events) = w
        .admin(
            "GET",
            &format!("/testbed/events?device={lab03}&kind=ime_install"),
            AdminBody::None,
        )
        .await;
    let whys: Vec<&str> = events["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["payload"]["why"].as_str())
        .collect();
    assert_eq!(whys, ["membership"], "{events}");

    // Leaving the exclusion group lets the app reach LAB-02.
    let excluded = device_object(&w, "LAB-02").await;
    let (status, body) = w
        .admin(
            "DELETE",
            &format!("/v1.0/groups/{held_back}/members/$ref?$id=https://graph.microsoft.com/v1.0/directoryObjects/{excluded}"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    w.advance(Duration::hours(9)).await;
    assert!(
        installed(&w, "LAB-02"),
        "out of the exclusion group, it installs"
    );
}

#[tokio::test]
async fn groups_answer_in_graphs_words() {
    let w = World::start(WorldOptions::default()).await.unwrap();
    let (status, body) = w
        .admin(
            "GET",
            "/v1.0/groups/3f0a7a3e-0000-4000-8000-000000000000",
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound", "{body}");
    let pilot = group(&w, "Pilot").await;
    let (status, body) = w
        .admin(
            "POST",
            &format!("/v1.0/groups/{pilot}/members/$ref"),
            AdminBody::Json(json!({ "@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/3f0a7a3e-0000-4000-8000-000000000000" })),
        )
        .await;
    assert_eq!(status, 404, "an unknown object cannot join: {body}");
    add(&w, &pilot, "ada@contoso.com").await;
    // Members bound at creation, as scripts often make a group.
    let bound = call(
        &w,
        "POST",
        "/v1.0/groups",
        json!({ "displayName": "Bound", "mailEnabled": false, "mailNickname": "bound", "securityEnabled": true,
                "members@odata.bind": ["https://graph.microsoft.com/v1.0/users/ada@contoso.com"] }),
    )
    .await;
    let of = call(
        &w,
        "GET",
        "/v1.0/users/ada@contoso.com/memberOf",
        Value::Null,
    )
    .await;
    let names = display_names(&of);
    assert_eq!(names, ["Bound", "Pilot"], "{of} {bound}");
    let (status, body) = w
        .admin(
            "POST",
            &format!("/v1.0/groups/{pilot}/members/$ref"),
            AdminBody::Json(
                json!({ "@odata.id": "https://graph.microsoft.com/v1.0/users/ada@contoso.com" }),
            ),
        )
        .await;
    assert_eq!(status, 400, "a member twice: {body}");
    let (status, body) = w
        .admin(
            "POST",
            "/beta/deviceManagement/deviceManagementScripts",
            AdminBody::Json(json!({ "displayName": "x", "scriptContent": "V3JpdGUtT3V0cHV0IDE=", "fileName": "x.ps1", "runAsAccount": "system" })),
        )
        .await;
    let script = body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{status} {body}"))
        .to_owned();
    for (target, why) in [
        (
            json!({ "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "3f0a7a3e-0000-4000-8000-000000000000" }),
            "a group that does not exist",
        ),
        (
            json!({ "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": pilot, "deviceAndAppManagementAssignmentFilterId": "0c1f0000-0000-4000-8000-000000000000", "deviceAndAppManagementAssignmentFilterType": "include" }),
            "an assignment filter",
        ),
    ] {
        let (status, body) = w
            .admin(
                "POST",
                &format!("/beta/deviceManagement/deviceManagementScripts/{script}/assign"),
                AdminBody::Json(
                    json!({ "deviceManagementScriptAssignments": [{ "target": target }] }),
                ),
            )
            .await;
        assert_eq!(status, 400, "{why} is refused: {body}");
        assert_eq!(body["error"]["code"], "BadRequest", "{body}");
    }
}
