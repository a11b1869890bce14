//! Platform scripts: `deviceManagementScripts` assignment and per-device run states,
//! the gateway's `PolicyRequest` (the scripts a device's IME runs) and `PolicyResult`
//! (what it reports).
//!
//! `PolicyRequest` answers a JSON array of `{PolicyId, PolicyType, PolicyBody,
//! ExecutionContext, RunningMode, EnforceSignatureCheck, FileName}`: PolicyBody is the
//! script's text, ExecutionContext 0 system / 1 user, RunningMode 1 for 64-bit and 0 for
//! 32-bit PowerShell (Tenantless's numbering). `PolicyResult` takes an array of
//! `{PolicyId, Result ("Success" or "Failed"), ErrorCode, ResultDetails}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::{assigned_ids, assigned_to, load, Platform};
use crate::api_error::ApiError;
use crate::journal::Event;
use crate::odata::Options;
use crate::state::Shared;
use crate::storage::{Device, ScriptKind, ScriptStateRow, StoreError};

/// The admin resource.
pub const PATH: &str = "/beta/deviceManagement/deviceManagementScripts";

/// The admin routes beside the shared CRUD.
pub fn admin_routes() -> Router<Shared> {
    Router::new()
        .route(&format!("{PATH}/{{id}}/assign"), post(assign))
        .route(&format!("{PATH}/{{id}}/deviceRunStates"), get(run_states))
}

/// `POST .../assign` with `deviceManagementScriptAssignments` (targets as for apps).
/// Targeting a device that lacks the IME installs it first.
async fn assign(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::assign_targets_of::<Platform>(&state, &id, &body, "deviceManagementScriptAssignments")
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Graph's `deviceManagementScriptDeviceState` for each device that reported.
async fn run_states(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    load::<Platform>(&state, &id).await?;
    let states: Vec<Value> = state
        .store
        .script_states(&id)
        .await?
        .iter()
        .map(|s| {
            let details: Value = serde_json::from_str(&s.details).unwrap_or(Value::Null);
            json!({
                "id": format!("{id}:{}", s.device_id),
                "runState": if s.result == "Success" { "success" } else { "fail" },
                "resultMessage": details["ExecutionMsg"].as_str().unwrap_or_default(),
                "errorCode": s.error_code,
                "errorDescription": details["ErrorDescription"].as_str().unwrap_or_default(),
                "lastStateUpdateDateTime": s.updated_at,
                "managedDevice": { "id": s.device_id },
            })
        })
        .collect();
    super::run_states_page(&options, PATH, &id, states)
}

/// The scripts assigned to a device, as `PolicyRequest` answers them.
pub async fn policies_for(state: &Shared, device: &Device) -> Result<Vec<Value>, StoreError> {
    Ok(assigned_to(state, ScriptKind::Platform, device)
        .await?
        .into_iter()
        .map(|(script, _)| {
            let body: Value = serde_json::from_str(&script.body).unwrap_or(json!({}));
            json!({
                "PolicyId": script.id,
                "PolicyType": 1,
                "PolicyBody": super::content(&body, "scriptContent"),
                "ExecutionContext": if body["runAsAccount"] == "user" { 1 } else { 0 },
                "RunningMode": if body["runAs32Bit"] == true { 0 } else { 1 },
                "EnforceSignatureCheck": body["enforceSignatureCheck"] == true,
                "FileName": body["fileName"].as_str().unwrap_or("script.ps1"),
            })
        })
        .collect())
}

/// Records `PolicyResult` reports: the run state, and a `script_result` event.
pub async fn results(state: &Shared, device: &Device, payload: &str) -> Result<(), ApiError> {
    let reports: Value = serde_json::from_str(payload).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("PolicyResult payload: {e}"),
        )
    })?;
    let assigned = assigned_ids(state, ScriptKind::Platform, device).await?;
    for r in reports.as_array().cloned().unwrap_or_default() {
        let policy_id = r["PolicyId"].as_str().unwrap_or_default().to_owned();
        if !state
            .accept_report(&device.id, &assigned, "PolicyResult", &policy_id, &r)
            .await?
        {
            continue;
        }
        let result = r["Result"].as_str().unwrap_or("Failed").to_owned();
        let error_code = r["ErrorCode"].as_i64().unwrap_or(0);
        let details = match &r["ResultDetails"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        state
            .store
            .set_script_state(&ScriptStateRow {
                device_id: device.id.clone(),
                script_id: policy_id.clone(),
                result: result.clone(),
                error_code,
                details,
                updated_at: state.now_text(),
            })
            .await?;
        let event = Event::ScriptResult {
            policy_id,
            result,
            error_code,
        };
        if let Err(e) = state.journal.record(&device.id, &event).await {
            tracing::error!("journal: {e}");
        }
    }
    Ok(())
}
