//! Platform scripts and remediations: the script, its assignments, and what devices
//! report of a platform script. A script is stored like an app (`AppRow`: id, Graph
//! JSON body, revision); the two kinds live in their own tables.

use super::{AppRow, Result, ScriptStateRow, Store};

/// Which kind of script a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// `deviceManagementScripts`: platform scripts.
    Platform,
    /// `deviceHealthScripts`: remediations (detection + remediation script).
    Remediation,
    /// `deviceComplianceScripts`: custom compliance discovery scripts (never assigned
    /// themselves: a compliance policy names one).
    ComplianceScript,
    /// `deviceCompliancePolicies`: compliance policies (Windows 10/11), with a
    /// discovery script and its rules.
    CompliancePolicy,
    /// `deviceEnrollmentConfigurations`: Enrollment Status Page profiles.
    EspProfile,
}

// Table names in the queries below come from this closed enum, never from input.
impl ScriptKind {
    fn table(self) -> &'static str {
        match self {
            ScriptKind::Platform => "scripts",
            ScriptKind::Remediation => "health_scripts",
            ScriptKind::ComplianceScript => "compliance_scripts",
            ScriptKind::CompliancePolicy => "compliance_policies",
            ScriptKind::EspProfile => "esp_profiles",
        }
    }

    fn assignments(self) -> &'static str {
        match self {
            ScriptKind::Platform => "script_assignments",
            ScriptKind::Remediation => "health_script_assignments",
            ScriptKind::ComplianceScript => "compliance_script_assignments",
            ScriptKind::CompliancePolicy => "compliance_policy_assignments",
            ScriptKind::EspProfile => "esp_profile_assignments",
        }
    }

    /// The table of what devices report, keyed by `script_id`.
    fn states(self) -> &'static str {
        match self {
            ScriptKind::Platform => "script_states",
            ScriptKind::Remediation => "health_script_states",
            // A discovery script's results are its policy's.
            ScriptKind::ComplianceScript | ScriptKind::CompliancePolicy => {
                "compliance_policy_states"
            }
            // Never written: what a device's ESP did is in the journal.
            ScriptKind::EspProfile => "esp_profile_states",
        }
    }

    /// True when its assignments carry settings (a `settings` column).
    fn has_settings(self) -> bool {
        self != ScriptKind::Platform
    }
}

/// One assignment of a script: its target, and (remediations) its settings JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptAssignment {
    /// The script.
    pub script_id: String,
    /// `allDevices`, `device:<id>` or `user:<upn>`.
    pub target: String,
    /// The assignment's settings (a remediation's schedule), JSON; `{}` for platform
    /// scripts.
    pub settings: String,
}

impl Store {
    /// Forgets a script: its assignments and reported states with it.
    pub async fn delete_script(&self, kind: ScriptKind, id: &str) -> Result<()> {
        let mut db = self.db().await?;
        for (table, key) in [
            (kind.states(), "script_id"),
            (kind.assignments(), "script_id"),
            (kind.table(), "id"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE {key} = $1"
            )))
            .bind(id)
            .execute(&mut *db)
            .await?;
        }
        Ok(())
    }

    /// Creates or replaces a script (bumping its revision on replace).
    pub async fn upsert_script(
        &self,
        kind: ScriptKind,
        id: &str,
        body: &str,
        at: &str,
    ) -> Result<()> {
        let table = kind.table();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (id, body, revision, created_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, revision = {table}.revision + 1"
        )))
        .bind(id)
        .bind(body)
        .bind(at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// One script.
    pub async fn script(&self, kind: ScriptKind, id: &str) -> Result<Option<AppRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM {} WHERE id = $1",
            kind.table()
        )))
        .bind(id)
        .fetch_optional(&mut *self.db().await?)
        .await?;
        row.map(|r| AppRow::from_row(&r)).transpose()
    }

    /// Every script of a kind.
    pub async fn scripts(&self, kind: ScriptKind) -> Result<Vec<AppRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM {} ORDER BY created_at, id",
            kind.table()
        )))
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter().map(AppRow::from_row).collect()
    }

    /// Replaces a script's assignments.
    pub async fn set_script_assignments(
        &self,
        kind: ScriptKind,
        script_id: &str,
        assignments: &[ScriptAssignment],
    ) -> Result<()> {
        let table = kind.assignments();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE script_id = $1"
        )))
        .bind(script_id)
        .execute(&mut *self.db().await?)
        .await?;
        let query = if kind.has_settings() {
            format!("INSERT INTO {table} (script_id, target, settings) VALUES ($1, $2, $3)")
        } else {
            format!("INSERT INTO {table} (script_id, target) VALUES ($1, $2)")
        };
        for a in assignments {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(query.as_str()))
                .bind(script_id)
                .bind(&a.target);
            if kind.has_settings() {
                q = q.bind(&a.settings);
            }
            q.execute(&mut *self.db().await?).await?;
        }
        Ok(())
    }

    /// Every assigned script of a kind with each of its assignments, in creation
    /// order (one query: this runs at every device check-in).
    pub async fn assigned_scripts(
        &self,
        kind: ScriptKind,
    ) -> Result<Vec<(AppRow, ScriptAssignment)>> {
        use sqlx::Row;
        let settings = if kind.has_settings() {
            "a.settings"
        } else {
            "CAST('{}' AS TEXT)"
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT s.id, s.body, s.revision, s.created_at, a.target, {settings} AS settings
             FROM {} s JOIN {} a ON a.script_id = s.id
             ORDER BY s.created_at, s.id",
            kind.table(),
            kind.assignments()
        )))
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let script = AppRow::from_row(r)?;
                let assignment = ScriptAssignment {
                    script_id: script.id.clone(),
                    target: r.try_get("target")?,
                    settings: r.try_get("settings")?,
                };
                Ok((script, assignment))
            })
            .collect()
    }

    /// Records a device's report of a platform script.
    pub async fn set_script_state(&self, s: &ScriptStateRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO script_states (device_id, script_id, result, error_code, details, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (device_id, script_id) DO UPDATE SET result = excluded.result,
                error_code = excluded.error_code, details = excluded.details, updated_at = excluded.updated_at",
        )
        .bind(&s.device_id)
        .bind(&s.script_id)
        .bind(&s.result)
        .bind(s.error_code)
        .bind(&s.details)
        .bind(&s.updated_at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// Every device's report of a platform script.
    pub async fn script_states(&self, script_id: &str) -> Result<Vec<ScriptStateRow>> {
        let rows =
            sqlx::query("SELECT * FROM script_states WHERE script_id = $1 ORDER BY device_id")
                .bind(script_id)
                .fetch_all(&mut *self.db().await?)
                .await?;
        rows.iter().map(ScriptStateRow::from_row).collect()
    }
}
