//! Storage: one [`Store`] over sqlx's `Any` driver serves SQLite (the default, in WAL
//! mode) and PostgreSQL (by URL). Queries are runtime queries written once in the SQL
//! both engines accept (`$N` parameters, `RETURNING`, `ON CONFLICT`). The schema is
//! written once (`schema.sql`, SQLite's dialect) and translated for PostgreSQL. Times
//! are stored as RFC 3339 text in UTC with milliseconds, which sorts correctly as text.

mod apps;
mod compliance;
mod content;
mod groups;
mod health;
mod inventory;
mod logons;
mod rows;
mod scripts;
mod sessions;
mod txn;
pub use compliance::ComplianceStateRow;
pub use content::{BlockRow, ContentFileRow, CHUNK};
pub use health::{AgentHealthRow, RemediationStateRow};
pub use inventory::InventoryRow;
pub use logons::LogonRow;
pub use scripts::{ScriptAssignment, ScriptKind};
pub(crate) use txn::{outside_request, request_started};

/// The schema, in SQLite's dialect.
const SCHEMA: &str = include_str!("schema.sql");

/// The schema in PostgreSQL's dialect: 64-bit integers, `BIGSERIAL` keys, `BYTEA`.
static POSTGRES_SCHEMA: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    SCHEMA
        .replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
        .replace("BLOB", "BYTEA")
        .replace("INTEGER", "BIGINT")
});

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sqlx::any::AnyRow;
use sqlx::Row;

pub use rows::*;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The URL names an engine this store does not speak.
    #[error("unsupported database URL {0:?} (use sqlite://PATH or postgres://...)")]
    UnsupportedUrl(String),
    /// The transaction this request wrote into was rolled back; its writes are gone.
    #[error("the request's transaction was rolled back")]
    Aborted,
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which engine a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, embedded.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The server's database.
#[derive(Debug, Clone)]
pub struct Store {
    /// The one connection, always in an open transaction (see `txn`).
    conn: Arc<txn::Conn>,
    backend: Backend,
    /// What this store knows of the database because it wrote it (SQLite only).
    memo: Arc<Mutex<Memo>>,
    /// Session rows, messages and last-sync times that wait, and how rows are numbered.
    sessions: Arc<sessions::SessionWrites>,
}

/// Kept on SQLite only, where the store is the database's one writer, to spare the
/// statements every management session would repeat.
#[derive(Debug, Default)]
struct Memo {
    /// The DevInfo columns as last written, by device (`None`: unknown): a device
    /// sends the same DevInfo every session, and an unchanged one is not written again.
    devinfo_written: HashMap<String, DevInfo>,
    /// Devices known to have no open command (only a new command opens one).
    no_open_commands: HashSet<String>,
    /// Commands queued so far: a look-up that straddles a new command is not kept.
    commands_queued: u64,
    /// (device, user) pairs read back from `device_users`: a user session's every
    /// gateway call need not read the table to learn the user is known.
    logons_seen: HashSet<(String, String)>,
}

/// `insert VALUES (.., ..), ...` for `rows` rows of `columns` values, assembled only
/// from placeholders, so every value is bound. SQLite gets anonymous `?` placeholders:
/// binding to numbered ones makes it look each one up by name in a list, which grows
/// with the square of the statement's size.
fn multi_row_insert(backend: Backend, insert: &str, columns: usize, rows: usize) -> String {
    let mut sql = format!("{insert} VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        let params: Vec<String> = (1..=columns)
            .map(|c| match backend {
                Backend::Sqlite => "?".to_owned(),
                Backend::Postgres => format!("${}", row * columns + c),
            })
            .collect();
        sql.push_str(&format!("({})", params.join(", ")));
    }
    sql
}

/// A query on the `Any` driver with its arguments.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// A value bound to a dynamically built query.
enum Bind {
    Text(String),
    Int(i64),
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    #[tracing::instrument(skip_all)]
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        // One connection in one open transaction, committed by the journal's group
        // commit (see `txn`): SQLite takes one writer at a time anyway, and PostgreSQL
        // servers that share a database see each other's commits.
        let store = Store {
            conn: Arc::new(txn::Conn::open(url, backend).await?),
            backend,
            memo: Arc::default(),
            sessions: Arc::default(),
        };
        store.migrate().await?;
        store.load_session_ids().await?;
        Ok(store)
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<()> {
        let schema = match self.backend {
            Backend::Sqlite => SCHEMA,
            Backend::Postgres => POSTGRES_SCHEMA.as_str(),
        };
        for statement in schema.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement)
                .execute(&mut *self.db().await?)
                .await?;
        }
        self.commit_open().await
    }

    // ---- devices ----

    /// Creates a device or replaces every field of an existing one (re-enrollment).
    #[tracing::instrument(skip_all)]
    pub async fn upsert_device(&self, d: &Device) -> Result<()> {
        self.memo().devinfo_written.remove(&d.id);
        sqlx::query(
            "INSERT INTO devices (id, device_name, user_principal_name, enrollment_type, hw_dev_id, os_version, os_edition,
                manufacturer, model, language, dm_version, enrolled_at, last_sync_at, client_name, client_secret,
                client_nonce, server_name, server_secret, server_nonce, ime_required, ime_version, ime_state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
             ON CONFLICT (id) DO UPDATE SET device_name = excluded.device_name,
                user_principal_name = excluded.user_principal_name, enrollment_type = excluded.enrollment_type,
                hw_dev_id = excluded.hw_dev_id, os_version = excluded.os_version, os_edition = excluded.os_edition,
                enrolled_at = excluded.enrolled_at, client_name = excluded.client_name,
                client_secret = excluded.client_secret, client_nonce = excluded.client_nonce,
                server_name = excluded.server_name, server_secret = excluded.server_secret,
                server_nonce = excluded.server_nonce",
        )
        .bind(&d.id)
        .bind(&d.device_name)
        .bind(&d.user_principal_name)
        .bind(&d.enrollment_type)
        .bind(&d.hw_dev_id)
        .bind(&d.os_version)
        .bind(&d.os_edition)
        .bind(&d.manufacturer)
        .bind(&d.model)
        .bind(&d.language)
        .bind(&d.dm_version)
        .bind(&d.enrolled_at)
        .bind(&d.last_sync_at)
        .bind(&d.client_name)
        .bind(&d.client_secret)
        .bind(&d.client_nonce)
        .bind(&d.server_name)
        .bind(&d.server_secret)
        .bind(&d.server_nonce)
        .bind(i64::from(d.ime_required))
        .bind(&d.ime_version)
        .bind(&d.ime_state)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// One device.
    #[tracing::instrument(skip_all)]
    pub async fn device(&self, id: &str) -> Result<Option<Device>> {
        let row = sqlx::query("SELECT * FROM devices WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.db().await?)
            .await?;
        row.map(|r| self.device_from_row(&r)).transpose()
    }

    /// Every device, by id.
    #[tracing::instrument(skip_all)]
    pub async fn devices(&self) -> Result<Vec<Device>> {
        let rows = sqlx::query("SELECT * FROM devices ORDER BY id")
            .fetch_all(&mut *self.db().await?)
            .await?;
        rows.iter().map(|r| self.device_from_row(r)).collect()
    }

    /// The devices meeting every condition (a `$filter`'s part the database can do, see
    /// [`crate::odata::pushdown`]), by id. Columns come from the caller's fixed map,
    /// never from the request; texts are bound.
    pub async fn devices_where(
        &self,
        conditions: &[crate::odata::pushdown::Condition],
    ) -> Result<Vec<Device>> {
        use crate::odata::pushdown::Condition;
        let mut sql = String::from("SELECT * FROM devices");
        let mut texts = Vec::new();
        for (i, c) in conditions.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            let n = i + 1;
            match c {
                Condition::Equals(column, text) => {
                    sql.push_str(&format!("lower({column}) = lower(${n})"));
                    texts.push(text.clone());
                }
                Condition::StartsWith(column, text) => {
                    sql.push_str(&format!("lower({column}) LIKE lower(${n}) ESCAPE '\\'"));
                    let escaped: String = text
                        .chars()
                        .flat_map(|c| match c {
                            '\\' | '%' | '_' => vec!['\\', c],
                            c => vec![c],
                        })
                        .collect();
                    texts.push(format!("{escaped}%"));
                }
            }
        }
        sql.push_str(" ORDER BY id");
        // Audited: columns are the caller's constants, every text is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for text in &texts {
            query = query.bind(text);
        }
        let rows = query.fetch_all(&mut *self.db().await?).await?;
        rows.iter().map(|r| self.device_from_row(r)).collect()
    }

    /// A device row, with a last-sync time that waits to be written.
    fn device_from_row(&self, row: &AnyRow) -> Result<Device> {
        let mut device = Device::from_row(row)?;
        if let Some(at) = self.waiting_last_sync(&device.id) {
            device.last_sync_at = Some(at);
        }
        Ok(device)
    }

    /// Records what package 1's DevInfo says.
    #[tracing::instrument(skip_all)]
    pub async fn update_devinfo(&self, id: &str, info: &DevInfo) -> Result<()> {
        let merged = if self.backend == Backend::Sqlite {
            let memo = self.memo();
            let known = memo.devinfo_written.get(id).cloned().unwrap_or_default();
            let merged = known.merged(info);
            if memo.devinfo_written.contains_key(id) && merged == known {
                return Ok(());
            }
            Some(merged)
        } else {
            None
        };
        sqlx::query(
            "UPDATE devices SET manufacturer = COALESCE($2, manufacturer), model = COALESCE($3, model),
                language = COALESCE($4, language), dm_version = COALESCE($5, dm_version),
                hw_dev_id = COALESCE($6, hw_dev_id), os_version = COALESCE($7, os_version),
                device_name = COALESCE($8, device_name)
             WHERE id = $1",
        )
        .bind(id)
        .bind(&info.manufacturer)
        .bind(&info.model)
        .bind(&info.language)
        .bind(&info.dm_version)
        .bind(&info.hw_dev_id)
        .bind(&info.os_version)
        .bind(&info.device_name)
        .execute(&mut *self.db().await?)
        .await?;
        if let Some(merged) = merged {
            self.memo().devinfo_written.insert(id.to_owned(), merged);
        }
        Ok(())
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `sql`, built for `rows.len()` rows of placeholders, with each row's values
    /// bound by `bind`.
    async fn execute_rows<'q, T>(
        &self,
        sql: String,
        rows: &'q [T],
        bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
    ) -> Result<()> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in rows {
            query = bind(query, row);
        }
        query.execute(&mut *self.db().await?).await?;
        Ok(())
    }

    /// Sets the nonce the device's next digest must use.
    #[tracing::instrument(skip_all)]
    pub async fn set_client_nonce(&self, id: &str, nonce: &str) -> Result<()> {
        sqlx::query("UPDATE devices SET client_nonce = $2 WHERE id = $1")
            .bind(id)
            .bind(nonce)
            .execute(&mut *self.db().await?)
            .await?;
        Ok(())
    }

    /// Sets the device's IME fields.
    #[tracing::instrument(skip_all)]
    pub async fn set_ime(
        &self,
        id: &str,
        required: bool,
        version: &str,
        state: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE devices SET ime_required = $2, ime_version = $3, ime_state = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(required))
        .bind(version)
        .bind(state)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    // ---- certificates ----

    /// Records a certificate the CA issued.
    #[tracing::instrument(skip_all)]
    pub async fn insert_certificate(&self, c: &CertificateRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO certificates (serial, device_id, thumbprint, der, issued_at, not_after) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.serial)
        .bind(&c.device_id)
        .bind(&c.thumbprint)
        .bind(c.der.clone())
        .bind(&c.issued_at)
        .bind(&c.not_after)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// The device a certificate (by thumbprint) was issued to, unless it was revoked.
    #[tracing::instrument(skip_all)]
    pub async fn device_for_thumbprint(&self, thumbprint: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT device_id FROM certificates WHERE thumbprint = $1
               AND thumbprint NOT IN (SELECT thumbprint FROM revoked_certificates)",
        )
        .bind(thumbprint)
        .fetch_optional(&mut *self.db().await?)
        .await?)
    }

    /// Revokes every certificate issued to a device but `keep` (a thumbprint): the
    /// device re-enrolled, or was deleted.
    #[tracing::instrument(skip_all)]
    pub async fn revoke_certificates(&self, device_id: &str, keep: &str, at: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO revoked_certificates (thumbprint, revoked_at)
             SELECT thumbprint, $3 FROM certificates WHERE device_id = $1 AND thumbprint <> $2
             ON CONFLICT (thumbprint) DO NOTHING",
        )
        .bind(device_id)
        .bind(keep)
        .bind(at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// Forgets a device (its certificates are revoked first by the caller); the journal
    /// keeps its history.
    #[tracing::instrument(skip_all)]
    pub async fn delete_device(&self, id: &str) -> Result<bool> {
        {
            let mut memo = self.memo();
            memo.devinfo_written.remove(id);
            memo.logons_seen.retain(|(device, _)| device != id);
        }
        sqlx::query("DELETE FROM device_users WHERE device_id = $1")
            .bind(id)
            .execute(&mut *self.db().await?)
            .await?;
        let deleted = sqlx::query("DELETE FROM devices WHERE id = $1")
            .bind(id)
            .execute(&mut *self.db().await?)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    /// Notes a device's report by its id; false when it was received before (the
    /// device sent it again, not having seen the acknowledgement).
    #[tracing::instrument(skip_all)]
    pub async fn first_receipt(&self, device_id: &str, report_id: &str, at: &str) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO received_reports (device_id, report_id, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (device_id, report_id) DO NOTHING",
        )
        .bind(device_id)
        .bind(report_id)
        .bind(at)
        .execute(&mut *self.db().await?)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    // ---- commands ----

    /// Queues a command; returns its id.
    #[tracing::instrument(skip_all)]
    pub async fn insert_command(&self, c: &NewCommand) -> Result<i64> {
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO commands (device_id, verb, target, xml, origin, state, queued_at, retry_of)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) RETURNING id",
        )
        .bind(&c.device_id)
        .bind(&c.verb)
        .bind(&c.target)
        .bind(&c.xml)
        .bind(&c.origin)
        .bind(&c.queued_at)
        .bind(c.retry_of)
        .fetch_one(&mut *self.db().await?)
        .await?;
        let mut memo = self.memo();
        memo.commands_queued += 1;
        memo.no_open_commands.remove(&c.device_id);
        Ok(id)
    }

    /// A device's commands that still wait for a status, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn open_commands(&self, device_id: &str) -> Result<Vec<CommandRow>> {
        let owned = self.backend == Backend::Sqlite;
        let queued_before = {
            let memo = self.memo();
            if owned && memo.no_open_commands.contains(device_id) {
                return Ok(Vec::new());
            }
            memo.commands_queued
        };
        let rows = sqlx::query(
            "SELECT * FROM commands WHERE device_id = $1 AND state <> 'completed' ORDER BY id",
        )
        .bind(device_id)
        .fetch_all(&mut *self.db().await?)
        .await?;
        let mut memo = self.memo();
        if owned && rows.is_empty() && memo.commands_queued == queued_before {
            memo.no_open_commands.insert(device_id.to_owned());
        }
        drop(memo);
        rows.iter().map(CommandRow::from_row).collect()
    }

    /// All of a device's commands, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn commands(&self, device_id: &str) -> Result<Vec<CommandRow>> {
        let rows = sqlx::query("SELECT * FROM commands WHERE device_id = $1 ORDER BY id")
            .bind(device_id)
            .fetch_all(&mut *self.db().await?)
            .await?;
        rows.iter().map(CommandRow::from_row).collect()
    }

    /// One command.
    #[tracing::instrument(skip_all)]
    pub async fn command(&self, id: i64) -> Result<Option<CommandRow>> {
        let row = sqlx::query("SELECT * FROM commands WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.db().await?)
            .await?;
        row.map(|r| CommandRow::from_row(&r)).transpose()
    }

    /// Notes that a command went out in a message.
    #[tracing::instrument(skip_all)]
    pub async fn mark_delivered(&self, id: i64, at: &str) -> Result<()> {
        sqlx::query(
            "UPDATE commands SET state = 'delivered', delivered_at = $2, deliveries = deliveries + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// Records a command's status (and, for a Get, its results as JSON).
    #[tracing::instrument(skip_all)]
    pub async fn complete_command(
        &self,
        id: i64,
        status: i64,
        results: Option<&str>,
        at: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE commands SET state = 'completed', status = $2, results = COALESCE($3, results), completed_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(results)
        .bind(at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// Adds results to a command (Results may arrive before or after its Status).
    #[tracing::instrument(skip_all)]
    pub async fn set_results(&self, id: i64, results: &str) -> Result<()> {
        sqlx::query("UPDATE commands SET results = $2 WHERE id = $1")
            .bind(id)
            .bind(results)
            .execute(&mut *self.db().await?)
            .await?;
        Ok(())
    }

    // ---- journal ----

    /// Appends journal events (at, device, kind, payload), in order.
    #[tracing::instrument(skip_all)]
    pub async fn append_journal(&self, rows: &[(&str, &str, &str, &str)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = multi_row_insert(
            self.backend,
            "INSERT INTO journal (at, device_id, kind, payload)",
            4,
            rows.len(),
        );
        self.execute_rows(sql, rows, |q, (at, device, kind, payload)| {
            q.bind(*at).bind(*device).bind(*kind).bind(*payload)
        })
        .await
    }

    /// Journal events matching `filter`, oldest first, at most `filter.limit`.
    #[tracing::instrument(skip_all)]
    pub async fn journal(&self, filter: &JournalQuery) -> Result<Vec<JournalRow>> {
        let mut sql = String::from("SELECT * FROM journal WHERE 1 = 1");
        let mut binds = Vec::new();
        let mut push = |sql: &mut String, cond: &str, bind: Bind| {
            binds.push(bind);
            sql.push_str(&cond.replace('?', &format!("${}", binds.len())));
        };
        if let Some(d) = &filter.device {
            push(&mut sql, " AND device_id = ?", Bind::Text(d.clone()));
        }
        if let Some(k) = &filter.kind {
            push(&mut sql, " AND kind = ?", Bind::Text(k.clone()));
        }
        if let Some(s) = filter.after_seq {
            push(&mut sql, " AND seq > ?", Bind::Int(s));
        }
        if let Some(t) = &filter.since_time {
            push(&mut sql, " AND at >= ?", Bind::Text(t.clone()));
        }
        if let Some(t) = &filter.until_time {
            push(&mut sql, " AND at < ?", Bind::Text(t.clone()));
        }
        sql.push_str(" ORDER BY seq");
        push(
            &mut sql,
            " LIMIT ?",
            Bind::Int(filter.limit.clamp(1, 10_000)),
        );
        // Assembled only from the constant fragments above; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&mut *self.db().await?).await?;
        rows.iter().map(JournalRow::from_row).collect()
    }

    /// Deletes every journal event.
    #[tracing::instrument(skip_all)]
    pub async fn clear_journal(&self) -> Result<()> {
        sqlx::query("DELETE FROM journal")
            .execute(&mut *self.db().await?)
            .await?;
        Ok(())
    }

    /// Deletes every row of every table but `settings` (the testbed's full reset): a
    /// fresh world on a server that keeps running, its CA and configuration intact.
    pub async fn wipe(&self) -> Result<()> {
        *self.memo() = Memo::default();
        self.sessions.forget();
        let tables = SCHEMA
            .lines()
            .filter_map(|l| l.trim().strip_prefix("CREATE TABLE IF NOT EXISTS "))
            .filter_map(|rest| rest.split_whitespace().next())
            .filter(|t| *t != "settings");
        for table in tables {
            // Table names come from our own schema, never from input.
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *self.db().await?)
                .await?;
        }
        Ok(())
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        let Ok(mut db) = self.db().await else {
            return false;
        };
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&mut *db)
            .await
            .is_ok()
    }

    // ---- settings ----

    /// A stored setting.
    #[tracing::instrument(skip_all)]
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *self.db().await?)
                .await?,
        )
    }

    /// Stores a setting.
    #[tracing::instrument(skip_all)]
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&mut *self.db().await?)
            .await?;
        Ok(())
    }
}

fn text(row: &AnyRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
}

fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

fn int(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

fn opt_int(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

#[cfg(test)]
impl Store {
    /// A SQLite store in `dir` (created, or opened again).
    pub(crate) async fn open_in(dir: &std::path::Path) -> Store {
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        Store::open(&url).await.unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(os: &str, model: Option<&str>) -> DevInfo {
        DevInfo {
            os_version: Some(os.into()),
            model: model.map(str::to_owned),
            ..DevInfo::default()
        }
    }

    #[tokio::test]
    async fn devices_where_ignores_case_and_takes_wildcards_literally() {
        use crate::odata::pushdown::Condition;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await;
        for (id, name) in [
            ("D1", "LAB_1"),
            ("D2", "LABX1"),
            ("D3", "lab%2"),
            ("D4", "Kiosk"),
        ] {
            let device = Device {
                id: id.into(),
                device_name: name.into(),
                ..Device::default()
            };
            store.upsert_device(&device).await.unwrap();
        }
        let names = |found: Vec<Device>| -> Vec<String> {
            found.into_iter().map(|d| d.device_name).collect()
        };
        let starting = |text: &str| vec![Condition::StartsWith("device_name", text.into())];
        assert_eq!(
            names(store.devices_where(&starting("lab_")).await.unwrap()),
            ["LAB_1"]
        );
        assert_eq!(
            names(store.devices_where(&starting("LAB%")).await.unwrap()),
            ["lab%2"]
        );
        assert_eq!(
            names(store.devices_where(&starting("LAB")).await.unwrap()).len(),
            3
        );
        let named = vec![
            Condition::Equals("device_name", "kiosk".into()),
            Condition::Equals("id", "D4".into()),
        ];
        assert_eq!(names(store.devices_where(&named).await.unwrap()), ["Kiosk"]);
    }

    #[tokio::test]
    async fn devinfo_that_changes_back_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await;
        let device = Device {
            id: "D1".into(),
            os_version: "10.0.1".into(),
            ..Device::default()
        };
        store.upsert_device(&device).await.unwrap();
        let os = |d: Option<Device>| d.map(|d| (d.os_version, d.model)).unwrap();
        for (sent, expected) in [
            (info("10.0.2", Some("VM")), ("10.0.2", "VM")),
            (info("10.0.2", None), ("10.0.2", "VM")), // unchanged: not written
            (info("10.0.3", None), ("10.0.3", "VM")),
            (info("10.0.2", None), ("10.0.2", "VM")), // back again
        ] {
            store.update_devinfo("D1", &sent).await.unwrap();
            let (os_version, model) = os(store.device("D1").await.unwrap());
            assert_eq!((os_version.as_str(), model.as_str()), expected);
        }
        // Re-enrollment writes the row anew; the same DevInfo afterwards is written.
        store.upsert_device(&device).await.unwrap();
        store
            .update_devinfo("D1", &info("10.0.2", None))
            .await
            .unwrap();
        assert_eq!(os(store.device("D1").await.unwrap()).0, "10.0.2");
    }

    #[tokio::test]
    async fn a_device_without_open_commands_sees_the_next_one_queued() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await;
        let device = Device {
            id: "D1".into(),
            ..Device::default()
        };
        store.upsert_device(&device).await.unwrap();
        assert!(store.open_commands("D1").await.unwrap().is_empty());
        assert!(store.open_commands("D1").await.unwrap().is_empty()); // remembered
        let id = store
            .insert_command(&NewCommand {
                device_id: "D1".into(),
                verb: "Get".into(),
                target: "./DevDetail/SwV".into(),
                xml: "<Get/>".into(),
                origin: "admin".into(),
                queued_at: "2026-11-24T09:00:00.000Z".into(),
                retry_of: None,
            })
            .await
            .unwrap();
        let open: Vec<i64> = store
            .open_commands("D1")
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(open, [id]);
    }
}
