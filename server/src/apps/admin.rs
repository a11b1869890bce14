//! `/beta/deviceAppManagement/mobileApps`: Win32 apps in Graph's shape.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::odata::{Collection, Options};
use crate::state::Shared;
use crate::storage::{AssignmentRow, RestartSettings, SHOW_ALL};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/beta/deviceAppManagement/mobileApps",
            get(list).post(create),
        )
        .route(
            "/beta/deviceAppManagement/mobileApps/{id}",
            get(one).patch(update).delete(remove),
        )
        .route(
            "/beta/deviceAppManagement/mobileApps/{id}/content",
            put(upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/beta/deviceAppManagement/mobileApps/{id}/assign",
            post(assign),
        )
        .route(
            "/beta/deviceAppManagement/mobileApps/{id}/updateRelationships",
            post(update_relationships),
        )
        .route(
            "/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses",
            get(device_statuses),
        )
        .route(
            "/beta/deviceAppManagement/mobileApps/{id}/userStatuses",
            get(user_statuses),
        )
        .route(
            "/beta/deviceAppManagement/mobileApps/{id}/assignments",
            get(assignments),
        )
        .route(
            "/beta/deviceAppManagement/mobileApps/{id}/assignments/{assignment}",
            get(assignment),
        )
}

fn app_json(row: &crate::storage::AppRow) -> Value {
    let mut body: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    body["id"] = json!(row.id);
    body["createdDateTime"] = json!(row.created_at);
    body[crate::odata::DETAILS] = json!({ "revision": row.revision });
    crate::odata::with_entity_defaults(body, WIN32_LOB_APP, Some(&row.created_at))
}

/// The kinds of mobile app this server knows: Win32 apps, and Microsoft Store (new)
/// apps, which the IME installs through WinGet.
const WIN32_LOB_APP: &str = "#microsoft.graph.win32LobApp";
/// A Microsoft Store (new) app.
pub const WIN_GET_APP: &str = "#microsoft.graph.winGetApp";

/// The mobile apps collection.
const MOBILE_APPS: Collection = Collection {
    context: "deviceAppManagement/mobileApps",
    expandable: &["assignments"],
    searchable: &["displayName"],
};

async fn list(State(state): State<Shared>, options: Options) -> Result<Response, ApiError> {
    let mut apps: Vec<Value> = state.store.apps().await?.iter().map(app_json).collect();
    if options.expands("assignments") {
        let assignments = state.store.assignments().await?;
        for app in &mut apps {
            app["assignments"] = Value::Array(assignments_of(&assignments, app["id"].as_str()));
        }
    }
    options.page(apps, &MOBILE_APPS)
}

/// An app's assignments, in Graph's `mobileAppAssignment` shape.
fn assignments_of(all: &[AssignmentRow], app_id: Option<&str>) -> Vec<Value> {
    all.iter()
        .filter(|a| Some(a.app_id.as_str()) == app_id)
        .map(assignment_json)
        .collect()
}

/// One assignment as Graph shows it.
fn assignment_json(a: &AssignmentRow) -> Value {
    let target = crate::directory::targets::to_json(&a.target);
    let mut install_times = Value::Null;
    if a.start_at.is_some() || a.deadline_at.is_some() {
        // A wall-clock time reads back as Graph gives it: the clock's time with a Z.
        let parsed = |t: &Option<String>| t.as_deref().and_then(super::install_time);
        let (start, deadline) = (parsed(&a.start_at), parsed(&a.deadline_at));
        let shown = |t: Option<(chrono::DateTime<chrono::Utc>, bool)>| {
            t.map(|(t, _)| crate::clock::format(t))
        };
        install_times = json!({
            "useLocalTime": start.or(deadline).is_some_and(|(_, local)| local),
            "startDateTime": shown(start),
            "deadlineDateTime": shown(deadline),
        });
    }
    let restart = a.restart.map(|r| {
        json!({
            "gracePeriodInMinutes": r.grace_period_in_minutes,
            "countdownDisplayBeforeRestartInMinutes": r.countdown_display_before_restart_in_minutes,
            "restartNotificationSnoozeDurationInMinutes": r.restart_notification_snooze_duration_in_minutes,
        })
    });
    json!({
        "@odata.type": "#microsoft.graph.mobileAppAssignment",
        "id": format!("{}_{}", a.app_id, a.id),
        "intent": a.intent,
        "target": target,
        "settings": {
            "@odata.type": "#microsoft.graph.win32LobAppAssignmentSettings",
            "notifications": a.notifications,
            "restartSettings": restart,
            "installTimeSettings": install_times,
            "deliveryOptimizationPriority": "notConfigured",
        },
    })
}

/// An assignment's `notifications` and `restartSettings`, checked.
fn experience(settings: &Value) -> Result<(String, Option<RestartSettings>), ApiError> {
    let notifications = settings["notifications"].as_str().unwrap_or(SHOW_ALL);
    if !matches!(notifications, "showAll" | "showReboot" | "hideAll") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("notifications {notifications:?}: use showAll, showReboot or hideAll"),
        ));
    }
    let restart = &settings["restartSettings"];
    if restart.is_null() {
        return Ok((notifications.to_owned(), None));
    }
    let minutes = |key: &str| -> Result<i64, ApiError> {
        match &restart[key] {
            Value::Null => Ok(0),
            v => {
                v.as_i64()
                    .filter(|m| (0..=MAX_RESTART_MINUTES).contains(m))
                    .ok_or_else(|| {
                        ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("restartSettings.{key} {v}: minutes from 0 to {MAX_RESTART_MINUTES}"),
                )
                    })
            }
        }
    };
    let settings = RestartSettings {
        grace_period_in_minutes: minutes("gracePeriodInMinutes")?,
        countdown_display_before_restart_in_minutes: minutes(
            "countdownDisplayBeforeRestartInMinutes",
        )?,
        restart_notification_snooze_duration_in_minutes: minutes(
            "restartNotificationSnoozeDurationInMinutes",
        )?,
    };
    if settings.countdown_display_before_restart_in_minutes > settings.grace_period_in_minutes {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "restartSettings: the countdown cannot be longer than the grace period",
        ));
    }
    Ok((notifications.to_owned(), Some(settings)))
}

/// The longest restart grace period, countdown or snooze: two weeks, in minutes.
const MAX_RESTART_MINUTES: i64 = 20_160;

/// `GET .../assignments`.
async fn assignments(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    load(&state, &id).await?;
    let mine = assignments_of(&state.store.assignments().await?, Some(&id));
    let context = format!("deviceAppManagement/mobileApps('{id}')/assignments");
    options.page(mine, &Collection::plain(&context))
}

/// `GET .../assignments/{assignmentId}`.
async fn assignment(
    State(state): State<Shared>,
    Path((id, assignment)): Path<(String, String)>,
    options: Options,
) -> Result<Response, ApiError> {
    load(&state, &id).await?;
    let mine = assignments_of(&state.store.assignments().await?, Some(&id));
    let context = format!("deviceAppManagement/mobileApps('{id}')/assignments");
    Ok(Json(options.entity(one_assignment(mine, &assignment)?, &context)).into_response())
}

/// The assignment with this id among an entity's, or Graph's 404.
pub(crate) fn one_assignment(mine: Vec<Value>, id: &str) -> Result<Value, ApiError> {
    mine.into_iter()
        .find(|a| a["id"].as_str() == Some(id))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no assignment {id}")))
}

async fn load(state: &Shared, id: &str) -> Result<crate::storage::AppRow, ApiError> {
    state
        .store
        .app(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no mobile app {id}")))
}

async fn one(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Json<Value>, ApiError> {
    let mut app = app_json(&load(&state, &id).await?);
    if options.expands("assignments") {
        let all = state.store.assignments().await?;
        app["assignments"] = Value::Array(assignments_of(&all, Some(&id)));
    }
    Ok(Json(options.entity(app, MOBILE_APPS.context)))
}

/// `PATCH`: the fields given replace the old ones; a new revision, which devices pick
/// up at their next check-in. The type stays a win32LobApp.
async fn update(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let row = load(&state, &id).await?;
    let changes: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let stored: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    let kind = stored["@odata.type"].as_str().unwrap_or(WIN32_LOB_APP);
    if changes["@odata.type"].as_str().is_some_and(|t| t != kind) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "an app's @odata.type cannot change",
        ));
    }
    let mut app: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    crate::odata::merge(&mut app, &changes);
    if let Some(version) = changes.get("committedContentVersion") {
        let Some(version) = version.as_str() else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "committedContentVersion is a string",
            ));
        };
        super::upload::activate(&state, &id, version, &app).await?;
    }
    state
        .store
        .upsert_app(&id, &app.to_string(), &state.now_text())
        .await?;
    state.policy_changed();
    Ok(crate::odata::changed(
        &headers,
        app_json(&load(&state, &id).await?),
    ))
}

/// `DELETE`: the app, its content, assignments and reported states are gone; devices
/// stop receiving its policy at their next check-in (what is installed stays).
async fn remove(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    load(&state, &id).await?;
    state.store.delete_app(&id).await?;
    state.policy_changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn create(State(state): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let mut app: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let required: &[&str] =
        match app["@odata.type"].as_str() {
            Some(WIN32_LOB_APP) => &["displayName", "installCommandLine"],
            Some(WIN_GET_APP) => &["displayName", "packageIdentifier"],
            _ => return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "@odata.type must be #microsoft.graph.win32LobApp or #microsoft.graph.winGetApp",
            )),
        };
    if app["@odata.type"] == WIN_GET_APP {
        let run_as = app["installExperience"]["runAsAccount"]
            .as_str()
            .unwrap_or("system");
        if !matches!(run_as, "system" | "user") {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("installExperience.runAsAccount {run_as:?}: use system or user"),
            ));
        }
    }
    for field in required {
        if app[field].as_str().is_none_or(str::is_empty) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{field} is required"),
            ));
        }
    }
    let id = state.random_guid().to_lowercase();
    if let Some(map) = app.as_object_mut() {
        map.remove("id");
    }
    state
        .store
        .upsert_app(&id, &app.to_string(), &state.now_text())
        .await?;
    state.policy_changed();
    let row = state
        .store
        .app(&id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the app vanished"))?;
    Ok((StatusCode::CREATED, Json(app_json(&row))).into_response())
}

/// Tenantless's one-shot content upload: a whole `.intunewin` as the body, streamed,
/// taken through a new content version and committed ([`super::upload::import`]).
async fn upload(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let read = super::upload::import(&state, &id, body).await?;
    let row = load(&state, &id).await?;
    let mut app: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    app["committedContentVersion"] = read["contentVersion"].clone();
    state
        .store
        .upsert_app(&id, &app.to_string(), &row.created_at)
        .await?;
    state.policy_changed();
    Ok(Json(read))
}

/// `POST .../assign` with `mobileAppAssignments` as Graph takes them (targets: see
/// [`crate::directory::targets`]).
async fn assign(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    state
        .store
        .app(&id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no mobile app {id}")))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let mut rows = Vec::new();
    for a in v["mobileAppAssignments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let intent = a["intent"].as_str().unwrap_or("required").to_owned();
        if !matches!(intent.as_str(), "required" | "available" | "uninstall") {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("intent {intent:?}: use required, available or uninstall"),
            ));
        }
        let target = crate::directory::targets::parse(&a["target"])?;
        let times = &a["settings"]["installTimeSettings"];
        // With useLocalTime the time is read on each device's clock: its wall-clock
        // part is kept, without a zone.
        let local = times["useLocalTime"].as_bool().unwrap_or(false);
        let time = |key: &str| -> Result<Option<String>, ApiError> {
            match times[key].as_str() {
                None => Ok(None),
                Some(t) => chrono::DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|t| {
                        Some(if local {
                            t.naive_local().format(super::LOCAL_TIME).to_string()
                        } else {
                            crate::clock::format(t.with_timezone(&chrono::Utc))
                        })
                    })
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            format!("{key} {t:?} is not an RFC 3339 time"),
                        )
                    }),
            }
        };
        let (notifications, restart) = experience(&a["settings"])?;
        rows.push(AssignmentRow {
            id: 0,
            app_id: id.clone(),
            intent,
            target,
            start_at: time("startDateTime")?,
            deadline_at: time("deadlineDateTime")?,
            notifications,
            restart,
        });
    }
    let targets: Vec<&str> = rows.iter().map(|r| r.target.as_str()).collect();
    crate::directory::targets::check_groups(&state, &targets).await?;
    state.store.set_assignments(&id, &rows).await?;
    state.policy_changed();
    // Targeting a device with a Win32 app installs the IME first if it lacks it.
    for device in super::targeted_devices(&state, &rows).await? {
        crate::ime::require(&state, &device, crate::ime::Why::Assigned).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST .../updateRelationships` with `relationships`: `#microsoft.graph.mobileAppDependency`
/// (`targetId`, `dependencyType` autoInstall or detect) and
/// `#microsoft.graph.mobileAppSupersedence` (`targetId`, `supersedenceType` update or replace).
async fn update_relationships(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let row = state
        .store
        .app(&id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no mobile app {id}")))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let relationships = v["relationships"].as_array().cloned().unwrap_or_default();
    for r in &relationships {
        let target = r["targetId"].as_str().unwrap_or_default();
        if target == id {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "an app cannot depend on or supersede itself",
            ));
        }
        if state.store.app(target).await?.is_none() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("targetId {target:?} is not an app"),
            ));
        }
        if !matches!(
            r["@odata.type"].as_str(),
            Some("#microsoft.graph.mobileAppDependency" | "#microsoft.graph.mobileAppSupersedence")
        ) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("relationship {} is not supported", r["@odata.type"]),
            ));
        }
    }
    let mut app: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    app["relationships"] = Value::Array(relationships);
    state
        .store
        .upsert_app(&id, &app.to_string(), &row.created_at)
        .await?;
    state.policy_changed();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Graph's `installState` from the IME's compliance and enforcement states.
pub fn install_state(compliance: i64, enforcement: i64) -> &'static str {
    match (compliance, enforcement) {
        (1, _) => "installed",
        (_, 5000..=5999) | (4, _) => "failed",
        (_, 2000..=2999) => "pendingInstall",
        (_, 3000..=3999) => "notApplicable",
        (2, _) => "notInstalled",
        _ => "unknown",
    }
}

/// `GET .../userStatuses`: Graph's `userAppInstallStatus` per user, counting their
/// devices' states. A device's report names the user whose session installed the app
/// (its `UserId`); the userless session's report counts for the device's own user.
async fn user_statuses(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    load(&state, &id).await?;
    // Per user principal name: installed, failed, not installed.
    let mut counts: std::collections::BTreeMap<String, [u32; 3]> = Default::default();
    let logons = state.store.all_logons().await?;
    for s in state.store.app_statuses(&id).await? {
        let Some(device) = state.store.device(&s.device_id).await? else {
            continue;
        };
        let report: Value = serde_json::from_str(&s.report).unwrap_or(Value::Null);
        let user_id = report["UserId"].as_str().unwrap_or_default();
        let upn = logons
            .get(&device.id)
            .into_iter()
            .flatten()
            .find(|l| crate::directory::user_object_id(&l.user_principal_name) == user_id)
            .map_or(device.user_principal_name, |l| {
                l.user_principal_name.clone()
            });
        let slot = match install_state(s.compliance, s.enforcement) {
            "installed" => 0,
            "failed" => 1,
            _ => 2,
        };
        counts.entry(upn).or_default()[slot] += 1;
    }
    let out: Vec<Value> = counts
        .into_iter()
        .map(|(upn, [installed, failed, not_installed])| {
            json!({
                "@odata.type": "#microsoft.graph.userAppInstallStatus",
                "id": format!("{id}_{}", crate::directory::user_object_id(&upn)),
                "userName": upn.split('@').next().unwrap_or_default(),
                "userPrincipalName": upn,
                "installedDeviceCount": installed,
                "failedDeviceCount": failed,
                "notInstalledDeviceCount": not_installed,
            })
        })
        .collect();
    let context = format!("deviceAppManagement/mobileApps('{id}')/userStatuses");
    options.page(
        out,
        &Collection {
            context: &context,
            expandable: &[],
            searchable: &["userPrincipalName"],
        },
    )
}

async fn device_statuses(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    state
        .store
        .app(&id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no mobile app {id}")))?;
    let mut out = Vec::new();
    for s in state.store.app_statuses(&id).await? {
        let device = state.store.device(&s.device_id).await?;
        out.push(json!({
            "id": format!("{}_{}", s.device_id, id),
            "deviceId": s.device_id,
            "deviceName": device.as_ref().map(|d| d.device_name.clone()).unwrap_or_default(),
            "userPrincipalName": device.as_ref().map(|d| d.user_principal_name.clone()).unwrap_or_default(),
            "installState": install_state(s.compliance, s.enforcement),
            "errorCode": s.error_code,
            "lastSyncDateTime": s.updated_at,
            crate::odata::DETAILS: { "complianceState": s.compliance, "enforcementState": s.enforcement },
        }));
    }
    let context = format!("deviceAppManagement/mobileApps('{id}')/deviceStatuses");
    options.page(
        out,
        &Collection {
            context: &context,
            expandable: &[],
            searchable: &["deviceName"],
        },
    )
}
