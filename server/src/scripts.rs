//! Platform scripts: the admin API in Graph's `deviceManagementScripts` shape, the
//! gateway's `PolicyRequest` (the scripts a device's IME runs) and `PolicyResult` (what
//! it reports), and per-device run states.
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
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use crate::admin::Problem;
use crate::journal::Event;
use crate::state::Shared;
use crate::storage::{AppRow, AssignmentRow, Device, ScriptStateRow, StoreError};

const PATH: &str = "/beta/deviceManagement/deviceManagementScripts";
/// The IME refuses scripts larger than this (200 KB).
pub const MAX_SCRIPT_BYTES: usize = 200 * 1024;

/// The admin routes.
pub fn admin_routes() -> Router<Shared> {
    Router::new()
        .route(PATH, get(list).post(create))
        .route(&format!("{PATH}/{{id}}"), get(one).patch(update))
        .route(&format!("{PATH}/{{id}}/assign"), post(assign))
        .route(&format!("{PATH}/{{id}}/deviceRunStates"), get(run_states))
}

fn script_json(row: &AppRow) -> Value {
    let mut body: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    body["@odata.type"] = json!("#microsoft.graph.deviceManagementScript");
    body["id"] = json!(row.id);
    body["createdDateTime"] = json!(row.created_at);
    body["tenantless"] = json!({ "revision": row.revision });
    body
}

fn not_found(id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("no device management script {id}"),
    )
}

/// Checks a script body as Graph would take it; the content must be base64.
fn validate(script: &Value) -> Result<(), Problem> {
    if script["displayName"].as_str().is_none_or(str::is_empty) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "displayName is required",
        ));
    }
    let content = script["scriptContent"].as_str().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(content)
        .map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                format!("scriptContent is not base64: {e}"),
            )
        })?;
    Ok(())
}

async fn list(State(state): State<Shared>) -> Result<Json<Value>, Problem> {
    let scripts: Vec<Value> = state
        .store
        .scripts()
        .await?
        .iter()
        .map(script_json)
        .collect();
    Ok(Json(json!({ "value": scripts })))
}

async fn one(State(state): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, Problem> {
    let row = state
        .store
        .script(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(script_json(&row)))
}

async fn create(State(state): State<Shared>, body: Bytes) -> Result<Response, Problem> {
    let mut script: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    validate(&script)?;
    if let Some(map) = script.as_object_mut() {
        map.remove("id");
    }
    let id = state.random_guid().to_lowercase();
    state
        .store
        .upsert_script(&id, &script.to_string(), &state.now_text())
        .await?;
    let row = state
        .store
        .script(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::CREATED, Json(script_json(&row))).into_response())
}

/// `PATCH`: changed fields replace the old ones; a new revision.
async fn update(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let row = state
        .store
        .script(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let changes: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let mut script: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    if let (Some(to), Some(from)) = (script.as_object_mut(), changes.as_object()) {
        for (k, v) in from {
            if k != "id" {
                to.insert(k.clone(), v.clone());
            }
        }
    }
    validate(&script)?;
    state
        .store
        .upsert_script(&id, &script.to_string(), &state.now_text())
        .await?;
    let row = state
        .store
        .script(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(script_json(&row)))
}

/// `POST .../assign` with `deviceManagementScriptAssignments` (targets as for apps).
/// Targeting a device that lacks the IME installs it first.
async fn assign(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    state
        .store
        .script(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let targets = v["deviceManagementScriptAssignments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| crate::apps::admin::parse_target(&a["target"]))
        .collect::<Result<Vec<String>, Problem>>()?;
    state.store.set_script_assignments(&id, &targets).await?;
    let rows = as_assignments(&targets);
    for device in crate::apps::targeted_devices(&state, &rows).await? {
        crate::ime::require(&state, &device).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Script targets in the shape `apps::targets` reads.
fn as_assignments(targets: &[String]) -> Vec<AssignmentRow> {
    targets
        .iter()
        .map(|t| AssignmentRow {
            id: 0,
            app_id: String::new(),
            intent: "required".into(),
            target: t.clone(),
            start_at: None,
            deadline_at: None,
        })
        .collect()
}

/// Graph's `deviceManagementScriptDeviceState` for each device that reported.
async fn run_states(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    state
        .store
        .script(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
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
    Ok(Json(json!({ "value": states })))
}

/// The scripts assigned to a device, as `PolicyRequest` answers them.
pub async fn policies_for(state: &Shared, device: &Device) -> Result<Vec<Value>, StoreError> {
    let assignments = state.store.script_assignments().await?;
    let mut out = Vec::new();
    for script in state.store.scripts().await? {
        let targets: Vec<String> = assignments
            .iter()
            .filter(|(s, _)| *s == script.id)
            .map(|(_, t)| t.clone())
            .collect();
        if !as_assignments(&targets)
            .iter()
            .any(|a| crate::apps::targets(a, device))
        {
            continue;
        }
        let body: Value = serde_json::from_str(&script.body).unwrap_or(json!({}));
        let text = base64::engine::general_purpose::STANDARD
            .decode(body["scriptContent"].as_str().unwrap_or_default())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        out.push(json!({
            "PolicyId": script.id,
            "PolicyType": 1,
            "PolicyBody": text,
            "ExecutionContext": if body["runAsAccount"] == "user" { 1 } else { 0 },
            "RunningMode": if body["runAs32Bit"] == true { 0 } else { 1 },
            "EnforceSignatureCheck": body["enforceSignatureCheck"] == true,
            "FileName": body["fileName"].as_str().unwrap_or("script.ps1"),
        }));
    }
    Ok(out)
}

/// Records `PolicyResult` reports: the run state, and a `script_result` event.
pub async fn results(state: &Shared, device: &Device, payload: &str) -> Result<(), Problem> {
    let reports: Value = serde_json::from_str(payload).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("PolicyResult payload: {e}"),
        )
    })?;
    for r in reports.as_array().cloned().unwrap_or_default() {
        let policy_id = r["PolicyId"].as_str().unwrap_or_default().to_owned();
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
