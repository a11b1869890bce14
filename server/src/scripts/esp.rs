//! The Enrollment Status Page: `deviceEnrollmentConfigurations` of type
//! `windows10EnrollmentCompletionPageConfiguration` (the timeout, the blocking apps),
//! assigned like scripts. When a targeted device enrolls, its first session carries the
//! ESP's settings the way Intune sends them, through the DMClient CSP's
//! `FirstSyncStatus` (show the device and account setup pages, the timeout) and the
//! EnrollmentStatusTracking CSP (the Win32 apps the IME must install before the device
//! is handed over: `Setup/Apps/Tracking/Sidecar/Win32App_<id>_1`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use syncml::dm::{Command, Data, Item, ItemCommand, Meta};

use super::{assigned_to, EspProfile};
use crate::api_error::ApiError;
use crate::journal::Event;
use crate::state::Shared;
use crate::storage::{Device, ScriptKind, StoreError};

/// The admin resource.
pub const PATH: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";
/// The ESP's settings in the DMClient CSP, under this server's provider.
fn first_sync_status() -> String {
    format!(
        "./Device/Vendor/MSFT/DMClient/Provider/{}/FirstSyncStatus",
        crate::enroll::PROVIDER_ID
    )
}
/// Where the apps the IME (the `Sidecar` provider) must install are tracked.
pub const SIDECAR_TRACKING: &str =
    "./Vendor/MSFT/EnrollmentStatusTracking/Setup/Apps/Tracking/Sidecar";
/// The timeout when a profile does not give one, in minutes (the admin center's).
const DEFAULT_TIMEOUT: i64 = 60;

/// The admin routes beside the shared CRUD.
pub fn admin_routes() -> Router<Shared> {
    Router::new().route(&format!("{PATH}/{{id}}/assign"), post(assign))
}

/// Checks a profile: a timeout from 1 to 1440 minutes, blocking apps as ids.
pub(super) fn check(profile: &Value) -> Result<(), ApiError> {
    let bad = |message: String| Err(ApiError::new(StatusCode::BAD_REQUEST, message));
    match &profile["installProgressTimeoutInMinutes"] {
        Value::Null => {}
        v if v.as_i64().is_some_and(|m| (1..=1440).contains(&m)) => {}
        v => return bad(format!("installProgressTimeoutInMinutes {v}: 1 to 1440")),
    }
    match &profile["selectedMobileAppIds"] {
        Value::Null => {}
        Value::Array(ids) if ids.iter().all(Value::is_string) => {}
        v => return bad(format!("selectedMobileAppIds {v}: an array of app ids")),
    }
    Ok(())
}

/// `POST .../deviceEnrollmentConfigurations/{id}/assign` with
/// `enrollmentConfigurationAssignments`: `[{target}]`.
async fn assign(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::assign_targets_of::<EspProfile>(
        &state,
        &id,
        &body,
        "enrollmentConfigurationAssignments",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A Replace or Add of one value.
fn set(add: bool, uri: &str, format: &str, value: &str) -> Command {
    let mut item = Item::target(uri);
    item.meta = Some(Meta {
        format: Some(format.into()),
        ..Meta::default()
    });
    item.data = Some(Data::Text(value.into()));
    let command = ItemCommand {
        items: vec![item],
        ..ItemCommand::default()
    };
    if add {
        Command::Add(command)
    } else {
        Command::Replace(command)
    }
}

/// A device enrolled: when an ESP profile that shows the installation progress targets
/// it, its settings and blocking apps go out with the first session, and
/// `esp_configured` is journalled.
pub async fn on_enrolled(state: &Shared, device: &Device) -> Result<(), StoreError> {
    let Some((profile, _)) = assigned_to(state, ScriptKind::EspProfile, device)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let body: Value = serde_json::from_str(&profile.body).unwrap_or(json!({}));
    if body["showInstallationProgress"] == false {
        return Ok(());
    }
    let timeout = body["installProgressTimeoutInMinutes"]
        .as_i64()
        .unwrap_or(DEFAULT_TIMEOUT);
    let blocking: Vec<String> = body["selectedMobileAppIds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let first_sync = first_sync_status();
    let mut commands = vec![
        set(
            false,
            &format!("{first_sync}/SkipDeviceStatusPage"),
            "bool",
            "false",
        ),
        set(
            false,
            &format!("{first_sync}/SkipUserStatusPage"),
            "bool",
            "false",
        ),
        set(
            false,
            &format!("{first_sync}/TimeOutUntilSyncFailure"),
            "int",
            &timeout.to_string(),
        ),
        set(
            false,
            &format!("{first_sync}/BlockInStatusPage"),
            "int",
            "1",
        ),
    ];
    for app in &blocking {
        // InstallationState 1: not installed yet.
        commands.push(set(
            true,
            &format!("{SIDECAR_TRACKING}/Win32App_{app}_1/InstallationState"),
            "int",
            "1",
        ));
    }
    for command in &commands {
        crate::omadm::queue(state, &device.id, command, "esp", None).await?;
    }
    let event = Event::EspConfigured {
        profile_id: profile.id,
        timeout_minutes: timeout,
        blocking_apps: blocking,
    };
    state.journal.record(&device.id, &event).await
}
