//! Platform scripts: the script, its assignments, and what devices report of it. A
//! script is stored like an app (`AppRow`: id, Graph JSON body, revision).

use super::{AppRow, Result, ScriptStateRow, Store};

impl Store {
    /// Creates or replaces a script (bumping its revision on replace).
    pub async fn upsert_script(&self, id: &str, body: &str, at: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO scripts (id, body, revision, created_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, revision = scripts.revision + 1",
        )
        .bind(id)
        .bind(body)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One script.
    pub async fn script(&self, id: &str) -> Result<Option<AppRow>> {
        let row = sqlx::query("SELECT * FROM scripts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| AppRow::from_row(&r)).transpose()
    }

    /// Every script.
    pub async fn scripts(&self) -> Result<Vec<AppRow>> {
        let rows = sqlx::query("SELECT * FROM scripts ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(AppRow::from_row).collect()
    }

    /// Replaces a script's assignment targets.
    pub async fn set_script_assignments(&self, script_id: &str, targets: &[String]) -> Result<()> {
        sqlx::query("DELETE FROM script_assignments WHERE script_id = $1")
            .bind(script_id)
            .execute(&self.pool)
            .await?;
        for t in targets {
            sqlx::query("INSERT INTO script_assignments (script_id, target) VALUES ($1, $2)")
                .bind(script_id)
                .bind(t)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Every script assignment, as (script, target).
    pub async fn script_assignments(&self) -> Result<Vec<(String, String)>> {
        use sqlx::Row;
        let rows = sqlx::query("SELECT script_id, target FROM script_assignments")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("script_id")?, r.try_get("target")?)))
            .collect()
    }

    /// Records a device's report of a script.
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every device's report of a script.
    pub async fn script_states(&self, script_id: &str) -> Result<Vec<ScriptStateRow>> {
        let rows =
            sqlx::query("SELECT * FROM script_states WHERE script_id = $1 ORDER BY device_id")
                .bind(script_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(ScriptStateRow::from_row).collect()
    }
}
