//! Win32 apps: the admin API in Graph's `win32LobApp` shape, content (`.intunewin`),
//! assignments, the IME's SideCar gateway that serves them, and what devices report.

pub(crate) mod admin;
pub mod blob;
pub mod content;
pub mod gateway;
pub mod policy;
pub mod sealing;
pub mod upload;

use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::clock;
use crate::directory::Audience;
use crate::state::Shared;
use crate::storage::{AssignmentRow, Device, StoreError};

pub use policy::Targeting;

/// The admin routes (`/beta/deviceAppManagement/mobileApps...`).
pub fn admin_routes() -> Router<Shared> {
    admin::routes().merge(upload::routes())
}

/// The upload URIs content files hand out (signed, so outside the bearer token).
pub fn blob_routes() -> Router<Shared> {
    blob::routes()
}

/// The device-facing routes: the gateway and app content.
pub fn device_routes() -> Router<Shared> {
    gateway::routes()
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
/// uninstall over available, and the earliest deadline wins; an exclusion group that
/// holds the device takes the app away.
pub fn targeting(
    app_id: &str,
    assignments: &[AssignmentRow],
    audience: &Audience,
) -> Option<Targeting> {
    let of_app = || assignments.iter().filter(|a| a.app_id == app_id);
    if audience.excluded_by(of_app().map(|a| a.target.as_str())) {
        return None;
    }
    let mine: Vec<&AssignmentRow> = of_app().filter(|a| audience.includes(&a.target)).collect();
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
    let time = |t: &Option<String>| t.as_deref().and_then(install_time).map(|(t, _)| t);
    let chosen: Vec<&&AssignmentRow> = mine
        .iter()
        .filter(|a| intent_number(&a.intent) == intent)
        .collect();
    let local_time = chosen
        .iter()
        .flat_map(|a| [&a.start_at, &a.deadline_at])
        .filter_map(|t| t.as_deref().and_then(install_time))
        .any(|(_, local)| local);
    // Of several assignments with the winning intent, the shortest grace period and the
    // quietest notifications win.
    let restart = chosen
        .iter()
        .filter_map(|a| a.restart)
        .min_by_key(|r| r.grace_period_in_minutes);
    let toast_state = chosen
        .iter()
        .map(|a| policy::toast_state(&a.notifications))
        .max()
        .unwrap_or(0);
    let deadline = chosen.iter().filter_map(|a| time(&a.deadline_at)).min();
    let start = chosen.iter().filter_map(|a| time(&a.start_at)).min();
    let by_user = chosen.iter().all(|a| audience.through_user(&a.target));
    Some(Targeting {
        intent,
        target_type: if by_user { 1 } else { 2 },
        start,
        deadline,
        local_time,
        toast_state,
        restart,
    })
}

/// An assignment's stored start or deadline: an RFC 3339 moment, or (Graph's
/// `useLocalTime`) a wall-clock time without a zone, `2026-11-25T08:00:00`, which each
/// device reads on its own clock. The time comes with `true` for a wall-clock one.
pub fn install_time(text: &str) -> Option<(chrono::DateTime<chrono::Utc>, bool)> {
    if let Some(t) = clock::parse(text) {
        return Some((t, false));
    }
    chrono::NaiveDateTime::parse_from_str(text, LOCAL_TIME)
        .ok()
        .map(|t| (t.and_utc(), true))
}

/// How a wall-clock install time is stored.
pub const LOCAL_TIME: &str = "%Y-%m-%dT%H:%M:%S";

/// True when any app's assignments reach the device.
pub fn any_app_reaches(assignments: &[AssignmentRow], audience: &Audience) -> bool {
    let apps: std::collections::BTreeSet<&str> =
        assignments.iter().map(|a| a.app_id.as_str()).collect();
    apps.into_iter()
        .any(|app| targeting(app, assignments, audience).is_some())
}

/// The policy objects the IME of `device` receives for apps of `intents`, followed by
/// the apps they depend on or supersede (Intent 0: not targeted themselves), whose
/// relationships are flattened into each parent's FlatDependencies with their level.
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
    let apps: std::collections::BTreeMap<String, crate::storage::AppRow> = state
        .apps()
        .await?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let audience = state.audience(device).await?;
    let mut related = Vec::new();
    for app in apps.values() {
        let Some(t) = targeting(&app.id, &assignments, &audience) else {
            continue;
        };
        if !intents.contains(&t.intent) {
            continue;
        }
        let flat = flatten(&app.id, &apps);
        related.extend(
            flat.iter()
                .filter_map(|d| d["ChildId"].as_str().map(str::to_owned)),
        );
        if let Some(p) = app_policy(state, app, &t, flat).await? {
            out.push(p);
        }
    }
    for child in related {
        if out.iter().any(|p| p["Id"] == child.as_str()) {
            continue;
        }
        let Some(app) = apps.get(&child) else {
            continue;
        };
        let t = Targeting {
            intent: 0,
            target_type: 2,
            ..Targeting::default()
        };
        if let Some(p) = app_policy(state, app, &t, flatten(&app.id, &apps)).await? {
            out.push(p);
        }
    }
    Ok(out)
}

async fn app_policy(
    state: &Shared,
    app: &crate::storage::AppRow,
    t: &Targeting,
    flat: Vec<Value>,
) -> Result<Option<Value>, StoreError> {
    let body: Value = serde_json::from_str(&app.body).unwrap_or(Value::Null);
    let mut p = if body["@odata.type"] == admin::WIN_GET_APP {
        // Its content comes from the Store, through WinGet: nothing uploaded.
        policy::winget_policy(&app.id, app.revision, &body, t)
    } else {
        let Some(detection) = state.app_detection(&app.id).await? else {
            return Ok(None);
        };
        let setup = syncml::intunewin::Detection::parse(&detection)
            .map(|d| d.setup_file)
            .unwrap_or_default();
        policy::policy(&app.id, app.revision, &body, &setup, t)
    };
    if !flat.is_empty() {
        p["RelationVersion"] = Value::from(1);
        p["FlatDependencies"] = Value::Array(flat);
    }
    Ok(Some(p))
}

/// An app's relationships, flattened: dependencies (Type 0; Action 10 auto-install, 0
/// detect only) of every level, and the apps it supersedes (Type 1; Action 110 replace
/// = uninstall the old one, 100 update).
pub fn flatten(
    app_id: &str,
    apps: &std::collections::BTreeMap<String, crate::storage::AppRow>,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut frontier = vec![(app_id.to_owned(), 0i64)];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((parent, level)) = frontier.pop() {
        if !seen.insert(parent.clone()) || level > 10 {
            continue;
        }
        let Some(row) = apps.get(&parent) else {
            continue;
        };
        let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
        for r in body["relationships"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let child = r["targetId"].as_str().unwrap_or_default().to_owned();
            match r["@odata.type"].as_str().unwrap_or_default() {
                "#microsoft.graph.mobileAppDependency" => {
                    let action = if r["dependencyType"] == "autoInstall" {
                        10
                    } else {
                        0
                    };
                    out.push(serde_json::json!({ "Action": action, "AppId": parent, "ChildId": child, "Type": 0, "Level": level }));
                    frontier.push((child, level + 1));
                }
                "#microsoft.graph.mobileAppSupersedence" if level == 0 => {
                    let action = if r["supersedenceType"] == "replace" {
                        110
                    } else {
                        100
                    };
                    out.push(serde_json::json!({ "Action": action, "AppId": parent, "ChildId": child, "Type": 1, "Level": level }));
                }
                _ => {}
            }
        }
    }
    out
}

/// Devices an app's (or a script's) assignments reach.
pub async fn targeted_devices(
    state: &Shared,
    assignments: &[AssignmentRow],
) -> Result<Vec<String>, StoreError> {
    let members = state.memberships().await?;
    Ok(state
        .store
        .devices()
        .await?
        .into_iter()
        .filter(|d| {
            Audience::of(d, &members).reached_by(assignments.iter().map(|a| a.target.as_str()))
        })
        .map(|d| d.id)
        .collect())
}

/// Parses a Graph time.
pub fn graph_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(clock::parse)
}
