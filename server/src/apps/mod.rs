//! Win32 apps: the admin API in Graph's `win32LobApp` shape, content (`.intunewin`),
//! assignments, the IME's SideCar gateway that serves them, and what devices report.

mod admin;
pub mod gateway;
pub mod policy;

use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::clock;
use crate::state::Shared;
use crate::storage::{AssignmentRow, Device, StoreError};

pub use policy::Targeting;

/// The admin routes (`/beta/deviceAppManagement/mobileApps...`).
pub fn admin_routes() -> Router<Shared> {
    admin::routes()
}

/// The device-facing routes: the gateway and app content.
pub fn device_routes() -> Router<Shared> {
    gateway::routes()
}

/// True when an assignment's target includes the device.
pub fn targets(a: &AssignmentRow, device: &Device) -> bool {
    match a.target.split_once(':') {
        None => match a.target.as_str() {
            "allDevices" => true,
            "allUsers" => !device.user_principal_name.is_empty(),
            _ => false,
        },
        Some(("device", id)) => id.eq_ignore_ascii_case(&device.id),
        Some(("user", upn)) => upn.eq_ignore_ascii_case(&device.user_principal_name),
        Some(_) => false,
    }
}

fn intent_number(intent: &str) -> i64 {
    match intent {
        "required" => 3,
        "uninstall" => 4,
        "available" | "availableWithoutEnrollment" => 1,
        _ => 0,
    }
}

/// How an app targets a device, from all its assignments: required wins over
/// uninstall over available, and the earliest deadline wins.
pub fn targeting(
    app_id: &str,
    assignments: &[AssignmentRow],
    device: &Device,
) -> Option<Targeting> {
    let mine: Vec<&AssignmentRow> = assignments
        .iter()
        .filter(|a| a.app_id == app_id && targets(a, device))
        .collect();
    let rank = |i: i64| match i {
        3 => 3,
        4 => 2,
        1 => 1,
        _ => 0,
    };
    let intent = mine
        .iter()
        .map(|a| intent_number(&a.intent))
        .max_by_key(|i| rank(*i))?;
    let time = |t: &Option<String>| t.as_deref().and_then(clock::parse);
    let chosen: Vec<&&AssignmentRow> = mine
        .iter()
        .filter(|a| intent_number(&a.intent) == intent)
        .collect();
    let deadline = chosen.iter().filter_map(|a| time(&a.deadline_at)).min();
    let start = chosen.iter().filter_map(|a| time(&a.start_at)).min();
    let by_user = chosen
        .iter()
        .all(|a| a.target.starts_with("user:") || a.target == "allUsers");
    Some(Targeting {
        intent,
        target_type: if by_user { 1 } else { 2 },
        start,
        deadline,
    })
}

/// The policy objects the IME of `device` receives for apps of `intents`.
pub async fn policies_for(
    state: &Shared,
    device: &Device,
    intents: &[i64],
) -> Result<Vec<Value>, StoreError> {
    let assignments = state.assignments().await?;
    let mut out = Vec::new();
    if assignments.is_empty() {
        return Ok(out);
    }
    for app in state.store.apps().await? {
        let Some(t) = targeting(&app.id, &assignments, device) else {
            continue;
        };
        if !intents.contains(&t.intent) {
            continue;
        }
        let Some((_, detection)) = state.store.app_content(&app.id).await? else {
            continue;
        };
        let setup = syncml::intunewin::Detection::parse(&detection)
            .map(|d| d.setup_file)
            .unwrap_or_default();
        let body: Value = serde_json::from_str(&app.body).unwrap_or(Value::Null);
        out.push(policy::policy(&app.id, app.revision, &body, &setup, &t));
    }
    Ok(out)
}

/// Devices an app's assignments reach.
pub async fn targeted_devices(
    state: &Shared,
    assignments: &[AssignmentRow],
) -> Result<Vec<String>, StoreError> {
    Ok(state
        .store
        .devices()
        .await?
        .into_iter()
        .filter(|d| assignments.iter().any(|a| targets(a, d)))
        .map(|d| d.id)
        .collect())
}

/// Parses a Graph time.
pub fn graph_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(clock::parse)
}
