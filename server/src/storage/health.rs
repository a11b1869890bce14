//! What devices report of their health: each remediation's last run, and the IME's
//! own health (client health's agent status report).

use serde::Serialize;
use sqlx::any::AnyRow;

use super::{int, text, Result, Store};

/// A device's last reported run of a remediation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationStateRow {
    /// The device.
    pub device_id: String,
    /// The remediation (`deviceHealthScript`).
    pub script_id: String,
    /// Graph's `runState`: success, fail, scriptError, ...
    pub detection_state: String,
    /// Graph's `remediationState`: skipped, success, remediationFailed, scriptError, ...
    pub remediation_state: String,
    /// The result JSON the IME reported.
    pub result: String,
    /// Runs reported so far.
    pub runs: i64,
    /// When it was reported.
    pub updated_at: String,
}

impl RemediationStateRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(RemediationStateRow {
            device_id: text(r, "device_id")?,
            script_id: text(r, "script_id")?,
            detection_state: text(r, "detection_state")?,
            remediation_state: text(r, "remediation_state")?,
            result: text(r, "result")?,
            runs: int(r, "runs")?,
            updated_at: text(r, "updated_at")?,
        })
    }
}

/// A device's last agent status report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentHealthRow {
    /// The device.
    pub device_id: String,
    /// The IME version the device runs.
    pub ime_version: String,
    /// `healthy`, or `remediated` when the evaluation had to mend something.
    pub health_state: String,
    /// The report JSON.
    pub report: String,
    /// When it was reported.
    pub reported_at: String,
}

impl Store {
    /// Records a device's run of a remediation (counting runs).
    pub async fn record_remediation_run(&self, s: &RemediationStateRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO health_script_states
                (device_id, script_id, detection_state, remediation_state, result, runs, updated_at)
             VALUES ($1, $2, $3, $4, $5, 1, $6)
             ON CONFLICT (device_id, script_id) DO UPDATE SET
                detection_state = excluded.detection_state,
                remediation_state = excluded.remediation_state, result = excluded.result,
                runs = health_script_states.runs + 1, updated_at = excluded.updated_at",
        )
        .bind(&s.device_id)
        .bind(&s.script_id)
        .bind(&s.detection_state)
        .bind(&s.remediation_state)
        .bind(&s.result)
        .bind(&s.updated_at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// Every device's last run of a remediation.
    pub async fn remediation_states(&self, script_id: &str) -> Result<Vec<RemediationStateRow>> {
        let rows = sqlx::query(
            "SELECT * FROM health_script_states WHERE script_id = $1 ORDER BY device_id",
        )
        .bind(script_id)
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter().map(RemediationStateRow::from_row).collect()
    }

    /// Records a device's agent status report.
    pub async fn set_agent_health(&self, h: &AgentHealthRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO agent_health (device_id, ime_version, health_state, report, reported_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (device_id) DO UPDATE SET ime_version = excluded.ime_version,
                health_state = excluded.health_state, report = excluded.report,
                reported_at = excluded.reported_at",
        )
        .bind(&h.device_id)
        .bind(&h.ime_version)
        .bind(&h.health_state)
        .bind(&h.report)
        .bind(&h.reported_at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// A device's last agent status report.
    pub async fn agent_health(&self, device_id: &str) -> Result<Option<AgentHealthRow>> {
        let row = sqlx::query("SELECT * FROM agent_health WHERE device_id = $1")
            .bind(device_id)
            .fetch_optional(&mut *self.db().await?)
            .await?;
        row.map(|r| {
            Ok(AgentHealthRow {
                device_id: text(&r, "device_id")?,
                ime_version: text(&r, "ime_version")?,
                health_state: text(&r, "health_state")?,
                report: text(&r, "report")?,
                reported_at: text(&r, "reported_at")?,
            })
        })
        .transpose()
    }
}
