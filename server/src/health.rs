//! Client health: the IME's daily health evaluation sends an agent status report
//! (`AgentStatusReport`, a name and shape Tenantless defines): `{AgentVersion,
//! ServiceWasRunning, Restarted, Checks: [{Name, Result}], EvaluatedAt}`. The server
//! keeps each device's last report (its agent health and IME version, shown on the
//! managed device) and journals a `health_report`.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::journal::Event;
use crate::state::Shared;
use crate::storage::{AgentHealthRow, Device};

/// Records an agent status report.
pub async fn report(state: &Shared, device: &Device, payload: &str) -> Result<(), ApiError> {
    let r: Value = serde_json::from_str(payload).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("AgentStatusReport payload: {e}"),
        )
    })?;
    let ime_version = r["AgentVersion"].as_str().unwrap_or_default().to_owned();
    let was_running = r["ServiceWasRunning"] == true;
    let restarted = r["Restarted"] == true;
    let health_state = match (was_running, restarted) {
        (true, _) => "healthy",
        (false, true) => "remediated",
        (false, false) => "unhealthy",
    };
    state
        .store
        .set_agent_health(&AgentHealthRow {
            device_id: device.id.clone(),
            ime_version: ime_version.clone(),
            health_state: health_state.into(),
            report: r.to_string(),
            reported_at: state.now_text(),
        })
        .await?;
    let event = Event::HealthReport {
        ime_version,
        service_was_running: was_running,
        restarted,
    };
    if let Err(e) = state.journal.record(&device.id, &event).await {
        tracing::error!("journal: {e}");
    }
    Ok(())
}

/// The device's agent health as the managed device shows it (`null` before a report).
pub fn agent_health_json(row: Option<&AgentHealthRow>) -> Value {
    match row {
        None => Value::Null,
        Some(h) => json!({
            "healthState": h.health_state,
            "imeVersion": h.ime_version,
            "lastReportDateTime": h.reported_at,
            "report": serde_json::from_str::<Value>(&h.report).unwrap_or(Value::Null),
        }),
    }
}
