//! Who has signed in on each device: Graph's `usersLoggedOn` (user and last logon),
//! learnt from the IME's calls made in a user's session.

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::{text, Result, Store};

/// A user who has signed in on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogonRow {
    /// The user principal name.
    pub user_principal_name: String,
    /// When the user last signed in (as the service learnt it).
    pub last_logon_at: String,
}

impl LogonRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(LogonRow {
            user_principal_name: text(r, "user_principal_name")?,
            last_logon_at: text(r, "last_logon_at")?,
        })
    }
}

impl Store {
    /// Records that `upn` signed in on the device at `at` (a later logon moves the time).
    #[tracing::instrument(skip_all)]
    pub async fn record_logon(&self, device_id: &str, upn: &str, at: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO device_users (device_id, user_principal_name, last_logon_at)
             VALUES ($1, $2, $3)
             ON CONFLICT (device_id, user_principal_name) DO UPDATE SET
                last_logon_at = excluded.last_logon_at",
        )
        .bind(device_id)
        .bind(upn)
        .bind(at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// The users who have signed in on a device, by name.
    pub async fn logons(&self, device_id: &str) -> Result<Vec<LogonRow>> {
        let rows = sqlx::query(
            "SELECT user_principal_name, last_logon_at FROM device_users
             WHERE device_id = $1 ORDER BY user_principal_name",
        )
        .bind(device_id)
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter().map(LogonRow::from_row).collect()
    }

    /// True when `upn` (lower case) is remembered to have signed in on the device: a
    /// pair [`Store::last_logon`] once read from the table (what was committed), so a
    /// user session's every gateway call need not read it again.
    pub fn logon_remembered(&self, device_id: &str, upn: &str) -> bool {
        self.memo()
            .logons_seen
            .contains(&(device_id.to_owned(), upn.to_owned()))
    }

    /// When `upn` (lower case) last signed in on the device, if ever.
    pub async fn last_logon(&self, device_id: &str, upn: &str) -> Result<Option<String>> {
        let last = self
            .logons(device_id)
            .await?
            .into_iter()
            .find(|l| l.user_principal_name == upn)
            .map(|l| l.last_logon_at);
        if last.is_some() {
            let pair = (device_id.to_owned(), upn.to_owned());
            self.memo().logons_seen.insert(pair);
        }
        Ok(last)
    }

    /// Every device's users, by device id.
    pub async fn all_logons(&self) -> Result<HashMap<String, Vec<LogonRow>>> {
        let rows = sqlx::query(
            "SELECT device_id, user_principal_name, last_logon_at FROM device_users
             ORDER BY device_id, user_principal_name",
        )
        .fetch_all(&mut *self.db().await?)
        .await?;
        let mut out: HashMap<String, Vec<LogonRow>> = HashMap::new();
        for r in &rows {
            out.entry(text(r, "device_id")?)
                .or_default()
                .push(LogonRow::from_row(r)?);
        }
        Ok(out)
    }
}
