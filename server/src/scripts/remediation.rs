//! Remediations: `deviceHealthScripts` assignment (with its run schedule) and per-device
//! run states, the gateway's `GetScript` (the remediations a device's IME runs) and
//! `HealthScriptResult` (what each run gave).
//!
//! `GetScript` answers a JSON array of `{PolicyId, PolicyVersion, PolicyType: 6,
//! DetectionScript, RemediationScript, ExecutionContext, RunningMode,
//! EnforceSignatureCheck, RunRemediationScript, Schedule}` where Schedule is
//! `{Type: "Once" | "Hourly" | "Daily", Interval, Time, Date, UseUtc}` from the
//! assignment's `runSchedule` (daily at midnight when it has none). `HealthScriptResult`
//! (a name and shape Tenantless defines) takes an array of the result JSON the IME keeps
//! in the registry (spec section 7), whose `RemediationStatus` is 1 no issue found,
//! 2 remediated, 3 remediation failed, 4 script error, 5 issue found and remediation not
//! run.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::{assign_targets, assigned_ids, assigned_to, load, parse_json, Remediation};
use crate::api_error::ApiError;
use crate::journal::Event;
use crate::odata::Options;
use crate::state::Shared;
use crate::storage::{Device, RemediationStateRow, ScriptAssignment, ScriptKind, StoreError};

/// The admin resource.
pub const PATH: &str = "/beta/deviceManagement/deviceHealthScripts";

/// The admin routes beside the shared CRUD.
pub fn admin_routes() -> Router<Shared> {
    Router::new()
        .route(&format!("{PATH}/{{id}}/assign"), post(assign))
        .route(&format!("{PATH}/{{id}}/deviceRunStates"), get(run_states))
}

/// A Graph `runSchedule` as the IME's Schedule.
fn schedule(run_schedule: &Value) -> Result<Value, ApiError> {
    let kind = match run_schedule["@odata.type"].as_str() {
        None if run_schedule.is_null() => return Ok(daily_at_midnight()),
        Some("#microsoft.graph.deviceHealthScriptRunOnceSchedule") => "Once",
        Some("#microsoft.graph.deviceHealthScriptHourlySchedule") => "Hourly",
        Some("#microsoft.graph.deviceHealthScriptDailySchedule") => "Daily",
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("runSchedule @odata.type {other:?} is not a deviceHealthScript schedule"),
            ))
        }
    };
    let interval = run_schedule["interval"].as_i64().unwrap_or(1);
    if interval < 1 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "runSchedule interval must be at least 1",
        ));
    }
    Ok(json!({
        "Type": kind,
        "Interval": interval,
        "Time": run_schedule["time"].as_str().unwrap_or("00:00:00"),
        "Date": run_schedule["date"],
        "UseUtc": run_schedule["useUtc"] == true,
    }))
}

/// The IME's Schedule as the Graph `runSchedule` it was given.
pub(super) fn run_schedule(schedule: &Value) -> Value {
    let kind = match schedule["Type"].as_str() {
        Some("Once") => "#microsoft.graph.deviceHealthScriptRunOnceSchedule",
        Some("Hourly") => "#microsoft.graph.deviceHealthScriptHourlySchedule",
        _ => "#microsoft.graph.deviceHealthScriptDailySchedule",
    };
    let mut out =
        json!({ "@odata.type": kind, "interval": schedule["Interval"].as_i64().unwrap_or(1) });
    if kind != "#microsoft.graph.deviceHealthScriptHourlySchedule" {
        out["time"] = json!(schedule["Time"].as_str().unwrap_or("00:00:00"));
        out["useUtc"] = json!(schedule["UseUtc"] == true);
    }
    if kind == "#microsoft.graph.deviceHealthScriptRunOnceSchedule" {
        out["date"] = schedule["Date"].clone();
    }
    out
}

fn daily_at_midnight() -> Value {
    json!({ "Type": "Daily", "Interval": 1, "Time": "00:00:00", "Date": null, "UseUtc": false })
}

/// `POST .../assign` with `deviceHealthScriptAssignments`: `{target,
/// runRemediationScript, runSchedule}`. Targeting a device that lacks the IME installs
/// it first.
async fn assign(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    load::<Remediation>(&state, &id).await?;
    let v = parse_json(&body)?;
    let assignments = v["deviceHealthScriptAssignments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            let settings = json!({
                "runRemediationScript": a["runRemediationScript"] != false,
                "schedule": schedule(&a["runSchedule"])?,
            });
            Ok(ScriptAssignment {
                script_id: id.clone(),
                target: crate::directory::targets::parse(&a["target"])?,
                settings: settings.to_string(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    assign_targets(&state, ScriptKind::Remediation, &id, assignments).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Graph's `deviceHealthScriptDeviceState` for each device that reported.
async fn run_states(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    load::<Remediation>(&state, &id).await?;
    let states: Vec<Value> = state
        .store
        .remediation_states(&id)
        .await?
        .iter()
        .map(|s| {
            let r: Value = serde_json::from_str(&s.result).unwrap_or(Value::Null);
            let text = |field: &str| r[field].as_str().unwrap_or_default().to_owned();
            json!({
                "id": format!("{id}:{}", s.device_id),
                "detectionState": s.detection_state,
                "remediationState": s.remediation_state,
                "lastStateUpdateDateTime": s.updated_at,
                "lastSyncDateTime": s.updated_at,
                "preRemediationDetectionScriptOutput": text("PreRemediationDetectScriptOutput"),
                "preRemediationDetectionScriptError": text("PreRemediationDetectScriptError"),
                "remediationScriptError": text("RemediationScriptErrorDetails"),
                "postRemediationDetectionScriptOutput": text("PostRemediationDetectScriptOutput"),
                "postRemediationDetectionScriptError": text("PostRemediationDetectScriptError"),
                crate::odata::DETAILS: { "runs": s.runs, "result": r },
                "managedDevice": { "id": s.device_id },
            })
        })
        .collect();
    super::run_states_page(&options, PATH, &id, states)
}

/// The remediations assigned to a device, as `GetScript` answers them.
pub async fn policies_for(state: &Shared, device: &Device) -> Result<Vec<Value>, StoreError> {
    Ok(assigned_to(state, ScriptKind::Remediation, device)
        .await?
        .into_iter()
        .map(|(script, settings)| {
            let body: Value = serde_json::from_str(&script.body).unwrap_or(json!({}));
            json!({
                "PolicyId": script.id,
                "PolicyVersion": script.revision,
                "PolicyType": 6,
                "DetectionScript": super::content(&body, "detectionScriptContent"),
                "RemediationScript": super::content(&body, "remediationScriptContent"),
                "ExecutionContext": if body["runAsAccount"] == "user" { 1 } else { 0 },
                "RunningMode": if body["runAs32Bit"] == true { 0 } else { 1 },
                "EnforceSignatureCheck": body["enforceSignatureCheck"] == true,
                "RunRemediationScript": settings["runRemediationScript"] != false,
                "Schedule": if settings["schedule"].is_object() {
                    settings["schedule"].clone()
                } else {
                    daily_at_midnight()
                },
            })
        })
        .collect())
}

/// Graph's states for a reported `RemediationStatus` and first detection exit code.
fn states(result: &Value) -> (&'static str, &'static str) {
    let detection = match result["Info"]["FirstDetectExitCode"].as_i64() {
        Some(0) => "success",
        Some(1) => "fail",
        _ => "scriptError",
    };
    let remediation = match result["RemediationStatus"].as_i64() {
        Some(2) => "success",
        Some(3) => "remediationFailed",
        Some(4) if detection != "scriptError" => "scriptError",
        Some(1 | 4 | 5) => "skipped",
        _ => "unknown",
    };
    (detection, remediation)
}

/// Records `HealthScriptResult` reports: the run state, and a `remediation_result` event.
pub async fn results(state: &Shared, device: &Device, payload: &str) -> Result<(), ApiError> {
    let reports: Value = serde_json::from_str(payload).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("HealthScriptResult payload: {e}"),
        )
    })?;
    let mut assigned = assigned_ids(state, ScriptKind::Remediation, device).await?;
    let discovery = super::compliance::given_scripts(state, device).await?;
    assigned.extend(discovery.iter().cloned());
    for r in reports.as_array().cloned().unwrap_or_default() {
        let policy_id = r["PolicyId"].as_str().unwrap_or_default().to_owned();
        if !state
            .accept_report(&device.id, &assigned, "HealthScriptResult", &policy_id, &r)
            .await?
        {
            continue;
        }
        if discovery.contains(&policy_id) {
            super::compliance::evaluate(state, device, &r).await?;
            continue;
        }
        let (detection, remediation) = states(&r);
        state
            .store
            .record_remediation_run(&RemediationStateRow {
                device_id: device.id.clone(),
                script_id: policy_id.clone(),
                detection_state: detection.into(),
                remediation_state: remediation.into(),
                result: r.to_string(),
                runs: 0,
                updated_at: state.now_text(),
            })
            .await?;
        let event = Event::RemediationResult {
            policy_id,
            detection_state: detection.into(),
            remediation_state: remediation.into(),
        };
        if let Err(e) = state.journal.record(&device.id, &event).await {
            tracing::error!("journal: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_states_follow_the_reported_run() {
        let run = |first: Value, status: i64| {
            states(
                &json!({ "RemediationStatus": status, "Info": { "FirstDetectExitCode": first } }),
            )
        };
        assert_eq!(run(json!(0), 1), ("success", "skipped"));
        assert_eq!(run(json!(1), 2), ("fail", "success"));
        assert_eq!(run(json!(1), 3), ("fail", "remediationFailed"));
        assert_eq!(run(json!(1), 4), ("fail", "scriptError"));
        assert_eq!(run(json!(1), 5), ("fail", "skipped"));
        assert_eq!(run(json!(7), 4), ("scriptError", "skipped"));
        assert_eq!(run(Value::Null, 4), ("scriptError", "skipped"));
    }

    #[test]
    fn schedules_follow_graph_types() {
        let hourly = schedule(&json!({
            "@odata.type": "#microsoft.graph.deviceHealthScriptHourlySchedule", "interval": 2
        }))
        .ok();
        assert_eq!(
            hourly.as_ref().map(|s| s["Type"].clone()),
            Some(json!("Hourly"))
        );
        assert_eq!(hourly.map(|s| s["Interval"].clone()), Some(json!(2)));
        assert!(schedule(&json!({ "@odata.type": "#microsoft.graph.other" })).is_err());
        assert!(schedule(&json!({
            "@odata.type": "#microsoft.graph.deviceHealthScriptDailySchedule", "interval": 0
        }))
        .is_err());
        assert_eq!(schedule(&Value::Null).ok(), Some(daily_at_midnight()));
    }
}
