//! What custom compliance found on each device: per compliance policy, the state the
//! server evaluated from the discovery script's output and each rule's setting state.

use sqlx::any::AnyRow;

use super::{text, Result, Store};

/// A device's evaluated state of one compliance policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceStateRow {
    /// The device.
    pub device_id: String,
    /// The compliance policy.
    pub policy_id: String,
    /// Graph's `complianceStatus`: `compliant`, `nonCompliant` or `error`.
    pub state: String,
    /// Each rule's `deviceCompliancePolicySettingState`, a JSON array.
    pub settings: String,
    /// The discovery script's output as the device sent it.
    pub output: String,
    /// When it was evaluated.
    pub updated_at: String,
}

impl ComplianceStateRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(ComplianceStateRow {
            device_id: text(r, "device_id")?,
            policy_id: text(r, "script_id")?,
            state: text(r, "state")?,
            settings: text(r, "settings")?,
            output: text(r, "output")?,
            updated_at: text(r, "updated_at")?,
        })
    }
}

impl Store {
    /// Records a device's evaluated state of a compliance policy.
    pub async fn set_compliance_state(&self, s: &ComplianceStateRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO compliance_policy_states (device_id, script_id, state, settings, output, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (device_id, script_id) DO UPDATE SET state = excluded.state,
                settings = excluded.settings, output = excluded.output, updated_at = excluded.updated_at",
        )
        .bind(&s.device_id)
        .bind(&s.policy_id)
        .bind(&s.state)
        .bind(&s.settings)
        .bind(&s.output)
        .bind(&s.updated_at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// A device's evaluated compliance policies.
    pub async fn compliance_states(&self, device_id: &str) -> Result<Vec<ComplianceStateRow>> {
        let rows = sqlx::query(
            "SELECT * FROM compliance_policy_states WHERE device_id = $1 ORDER BY script_id",
        )
        .bind(device_id)
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter().map(ComplianceStateRow::from_row).collect()
    }

    /// Every device's evaluated policy states, by device id.
    pub async fn all_compliance_states(
        &self,
    ) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let rows = sqlx::query("SELECT device_id, state FROM compliance_policy_states")
            .fetch_all(&mut *self.db().await?)
            .await?;
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for r in &rows {
            out.entry(text(r, "device_id")?)
                .or_default()
                .push(text(r, "state")?);
        }
        Ok(out)
    }

    /// Every device's evaluated state of one compliance policy.
    pub async fn compliance_policy_states(
        &self,
        policy_id: &str,
    ) -> Result<Vec<ComplianceStateRow>> {
        let rows = sqlx::query(
            "SELECT * FROM compliance_policy_states WHERE script_id = $1 ORDER BY device_id",
        )
        .bind(policy_id)
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter().map(ComplianceStateRow::from_row).collect()
    }
}
