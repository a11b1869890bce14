//! Win32 apps: the app, its content, its assignments, and what devices report of it.

use super::{AppRow, AppStatusRow, AssignmentRow, Result, Store};

impl Store {
    /// Creates or replaces an app (bumping its revision on replace).
    pub async fn upsert_app(&self, id: &str, body: &str, at: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO apps (id, body, revision, created_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, revision = apps.revision + 1",
        )
        .bind(id)
        .bind(body)
        .bind(at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// Forgets an app: its content, assignments and reported states with it.
    pub async fn delete_app(&self, id: &str) -> Result<()> {
        self.delete_app_content(id).await?;
        let mut db = self.db().await?;
        for statement in [
            "DELETE FROM app_status WHERE app_id = $1",
            "DELETE FROM app_assignment_settings WHERE assignment_id IN
                (SELECT id FROM app_assignments WHERE app_id = $1)",
            "DELETE FROM app_assignments WHERE app_id = $1",
            "DELETE FROM apps WHERE id = $1",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *db).await?;
        }
        Ok(())
    }

    /// One app.
    pub async fn app(&self, id: &str) -> Result<Option<AppRow>> {
        let row = sqlx::query("SELECT * FROM apps WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.db().await?)
            .await?;
        row.map(|r| AppRow::from_row(&r)).transpose()
    }

    /// Every app.
    pub async fn apps(&self) -> Result<Vec<AppRow>> {
        let rows = sqlx::query("SELECT * FROM apps ORDER BY created_at, id")
            .fetch_all(&mut *self.db().await?)
            .await?;
        rows.iter().map(AppRow::from_row).collect()
    }

    /// Replaces an app's assignments.
    pub async fn set_assignments(&self, app_id: &str, assignments: &[AssignmentRow]) -> Result<()> {
        let mut db = self.db().await?;
        sqlx::query(
            "DELETE FROM app_assignment_settings WHERE assignment_id IN
                (SELECT id FROM app_assignments WHERE app_id = $1)",
        )
        .bind(app_id)
        .execute(&mut *db)
        .await?;
        sqlx::query("DELETE FROM app_assignments WHERE app_id = $1")
            .bind(app_id)
            .execute(&mut *db)
            .await?;
        for a in assignments {
            let row = sqlx::query("INSERT INTO app_assignments (app_id, intent, target, start_at, deadline_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
                .bind(app_id)
                .bind(&a.intent)
                .bind(&a.target)
                .bind(&a.start_at)
                .bind(&a.deadline_at)
                .fetch_one(&mut *db)
                .await?;
            let restart = a.restart.as_ref();
            sqlx::query("INSERT INTO app_assignment_settings (assignment_id, notifications, grace_period, countdown, snooze) VALUES ($1, $2, $3, $4, $5)")
                .bind(super::int(&row, "id")?)
                .bind(&a.notifications)
                .bind(restart.map(|r| r.grace_period_in_minutes))
                .bind(restart.map(|r| r.countdown_display_before_restart_in_minutes))
                .bind(restart.map(|r| r.restart_notification_snooze_duration_in_minutes))
                .execute(&mut *db)
                .await?;
        }
        Ok(())
    }

    /// Every assignment of every app, with its settings.
    pub async fn assignments(&self) -> Result<Vec<AssignmentRow>> {
        let rows = sqlx::query(
            "SELECT a.*, s.notifications, s.grace_period, s.countdown, s.snooze FROM app_assignments a
                LEFT JOIN app_assignment_settings s ON s.assignment_id = a.id ORDER BY a.id",
        )
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter().map(AssignmentRow::from_row).collect()
    }

    /// Records a device's report of an app; returns the state it replaces, if any.
    pub async fn set_app_status(&self, s: &AppStatusRow) -> Result<Option<AppStatusRow>> {
        let previous = sqlx::query("SELECT * FROM app_status WHERE device_id = $1 AND app_id = $2")
            .bind(&s.device_id)
            .bind(&s.app_id)
            .fetch_optional(&mut *self.db().await?)
            .await?
            .map(|r| AppStatusRow::from_row(&r))
            .transpose()?;
        sqlx::query(
            "INSERT INTO app_status (device_id, app_id, compliance, enforcement, error_code, report, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (device_id, app_id) DO UPDATE SET compliance = excluded.compliance, enforcement = excluded.enforcement,
                error_code = excluded.error_code, report = excluded.report, updated_at = excluded.updated_at",
        )
        .bind(&s.device_id)
        .bind(&s.app_id)
        .bind(s.compliance)
        .bind(s.enforcement)
        .bind(s.error_code)
        .bind(&s.report)
        .bind(&s.updated_at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(previous)
    }

    /// Forgets a device's state of an app (it is no longer given the app); returns it.
    pub async fn remove_app_status(
        &self,
        device_id: &str,
        app_id: &str,
    ) -> Result<Option<AppStatusRow>> {
        let previous = sqlx::query("SELECT * FROM app_status WHERE device_id = $1 AND app_id = $2")
            .bind(device_id)
            .bind(app_id)
            .fetch_optional(&mut *self.db().await?)
            .await?
            .map(|r| AppStatusRow::from_row(&r))
            .transpose()?;
        if previous.is_some() {
            sqlx::query("DELETE FROM app_status WHERE device_id = $1 AND app_id = $2")
                .bind(device_id)
                .bind(app_id)
                .execute(&mut *self.db().await?)
                .await?;
        }
        Ok(previous)
    }

    /// Every device's state of an app.
    pub async fn app_statuses(&self, app_id: &str) -> Result<Vec<AppStatusRow>> {
        let rows = sqlx::query("SELECT * FROM app_status WHERE app_id = $1 ORDER BY device_id")
            .bind(app_id)
            .fetch_all(&mut *self.db().await?)
            .await?;
        rows.iter().map(AppStatusRow::from_row).collect()
    }
}
