//! Management sessions, their raw messages and the devices' last-sync times.
//!
//! A session's raw messages wait and are written in multi-row statements
//! ([`Store::write_waiting`], called by every journal flush: after each request on
//! PostgreSQL, with the journal's events on SQLite). Every OMA-DM session also opens a
//! row, closes it and sets the device's last-sync time: at once on PostgreSQL (a
//! database other servers may share); on SQLite, where this store is the one writer,
//! these wait too: the store numbers new session rows itself, and a session that ends
//! before the write is written once, complete. The readers here ([`Store::sessions`],
//! [`Store::session`], [`Store::messages`] and the devices' `last_sync_at`) see what
//! waits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::{multi_row_insert, Backend, MessageRow, Result, SessionRow, Store};

/// What waits to be written.
#[derive(Debug, Default)]
struct Waiting {
    /// New session rows, in order (ended ones carry their end; SQLite only).
    rows: Vec<SessionRow>,
    /// Ends of rows already written: (row, ended at, outcome; SQLite only).
    ends: Vec<(i64, String, String)>,
    /// Last-sync times, by device (SQLite only).
    last_sync: HashMap<String, String>,
    /// Raw messages, in order.
    messages: Vec<MessageRow>,
}

/// The store's session writes: what waits, how new rows are numbered, and the lock
/// that writes one batch at a time.
#[derive(Debug, Default)]
pub(super) struct SessionWrites {
    waiting: Mutex<Waiting>,
    /// The last row id handed out (SQLite only).
    last_id: AtomicI64,
    /// Held while waiting writes are taken and written, so a reader that writes them
    /// first also waits for a write in progress.
    writing: tokio::sync::Mutex<()>,
}

impl SessionWrites {
    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops what waits (the database was wiped).
    pub(super) fn forget(&self) {
        *self.waiting() = Waiting::default();
    }
}

/// Messages kept before they are written regardless.
const MAX_WAITING_MESSAGES: usize = 128;
/// Rows per statement when waiting writes are written.
const CHUNK: usize = 100;

impl Store {
    /// Reads the highest session row id ever used, so new rows numbered here follow it
    /// (as `AUTOINCREMENT` would).
    pub(super) async fn load_session_ids(&self) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let last = sqlx::query_scalar::<_, i64>(
            "SELECT MAX(COALESCE((SELECT MAX(id) FROM sessions), 0),
                        COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'sessions'), 0))",
        )
        .fetch_one(&mut *self.db().await?)
        .await?;
        self.sessions.last_id.store(last, Ordering::SeqCst);
        Ok(())
    }

    /// Opens a session row and returns its id.
    #[tracing::instrument(skip_all)]
    pub async fn create_session(
        &self,
        device_id: &str,
        session_id: &str,
        at: &str,
        auth: &str,
    ) -> Result<i64> {
        self.enter().await?;
        if self.backend == Backend::Sqlite {
            let id = self.sessions.last_id.fetch_add(1, Ordering::SeqCst) + 1;
            self.sessions.waiting().rows.push(SessionRow {
                id,
                device_id: device_id.to_owned(),
                session_id: session_id.to_owned(),
                started_at: at.to_owned(),
                ended_at: None,
                auth: auth.to_owned(),
                outcome: String::new(),
            });
            return Ok(id);
        }
        Ok(sqlx::query_scalar::<_, i64>(
            "INSERT INTO sessions (device_id, session_id, started_at, auth) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(device_id)
        .bind(session_id)
        .bind(at)
        .bind(auth)
        .fetch_one(&mut *self.db().await?)
        .await?)
    }

    /// Closes a session row (once: a closed row stays as it was closed).
    #[tracing::instrument(skip_all)]
    pub async fn end_session(&self, row: i64, at: &str, outcome: &str) -> Result<()> {
        self.enter().await?;
        if self.backend == Backend::Sqlite {
            let mut waiting = self.sessions.waiting();
            match waiting.rows.iter_mut().rev().find(|r| r.id == row) {
                Some(r) if r.ended_at.is_none() => {
                    r.ended_at = Some(at.to_owned());
                    r.outcome = outcome.to_owned();
                }
                Some(_) => {}
                None => waiting.ends.push((row, at.to_owned(), outcome.to_owned())),
            }
            return Ok(());
        }
        sqlx::query(
            "UPDATE sessions SET ended_at = $2, outcome = $3 WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(row)
        .bind(at)
        .bind(outcome)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// Sets the time of the device's last management session.
    #[tracing::instrument(skip_all)]
    pub async fn set_last_sync(&self, id: &str, at: &str) -> Result<()> {
        self.enter().await?;
        if self.backend == Backend::Sqlite {
            self.sessions
                .waiting()
                .last_sync
                .insert(id.to_owned(), at.to_owned());
            return Ok(());
        }
        sqlx::query("UPDATE devices SET last_sync_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&mut *self.db().await?)
            .await?;
        Ok(())
    }

    /// The last-sync time waiting to be written for a device, if any.
    pub(super) fn waiting_last_sync(&self, id: &str) -> Option<String> {
        self.sessions.waiting().last_sync.get(id).cloned()
    }

    /// Writes what waits: new session rows, ends, messages and last-sync times, in a
    /// few multi-row statements.
    #[tracing::instrument(skip_all)]
    pub async fn write_waiting(&self) -> Result<()> {
        let _writing = self.sessions.writing.lock().await;
        let waiting = std::mem::take(&mut *self.sessions.waiting());
        for chunk in waiting.rows.chunks(CHUNK) {
            let sql = multi_row_insert(
                self.backend,
                "INSERT INTO sessions (id, device_id, session_id, started_at, ended_at, auth, outcome)",
                7,
                chunk.len(),
            );
            self.execute_rows(sql, chunk, |q, r| {
                q.bind(r.id)
                    .bind(&r.device_id)
                    .bind(&r.session_id)
                    .bind(&r.started_at)
                    .bind(&r.ended_at)
                    .bind(&r.auth)
                    .bind(&r.outcome)
            })
            .await?;
        }
        for chunk in waiting.ends.chunks(CHUNK) {
            let sql = values_update(
                self.backend,
                "UPDATE sessions SET ended_at = v.column2, outcome = v.column3",
                3,
                chunk.len(),
                "sessions.id = v.column1 AND sessions.ended_at IS NULL",
            );
            self.execute_rows(sql, chunk, |q, (row, at, outcome)| {
                q.bind(*row).bind(at).bind(outcome)
            })
            .await?;
        }
        for chunk in waiting.messages.chunks(CHUNK) {
            self.append_messages(chunk).await?;
        }
        let syncs: Vec<(String, String)> = waiting.last_sync.into_iter().collect();
        for chunk in syncs.chunks(CHUNK) {
            let sql = values_update(
                self.backend,
                "UPDATE devices SET last_sync_at = v.column2",
                2,
                chunk.len(),
                "devices.id = v.column1",
            );
            self.execute_rows(sql, chunk, |q, (device, at)| q.bind(device).bind(at))
                .await?;
        }
        Ok(())
    }

    /// A device's sessions, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn sessions(&self, device_id: &str) -> Result<Vec<SessionRow>> {
        self.write_waiting().await?;
        let rows = sqlx::query("SELECT * FROM sessions WHERE device_id = $1 ORDER BY id")
            .bind(device_id)
            .fetch_all(&mut *self.db().await?)
            .await?;
        rows.iter().map(SessionRow::from_row).collect()
    }

    /// One session.
    #[tracing::instrument(skip_all)]
    pub async fn session(&self, row: i64) -> Result<Option<SessionRow>> {
        self.write_waiting().await?;
        let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
            .bind(row)
            .fetch_optional(&mut *self.db().await?)
            .await?;
        row.map(|r| SessionRow::from_row(&r)).transpose()
    }

    /// Keeps a session's raw message (`in` from the device, `out` to it); it waits
    /// with others (see the module's documentation).
    pub async fn keep_message(&self, message: MessageRow) -> Result<()> {
        self.enter().await?;
        let waiting = {
            let mut waiting = self.sessions.waiting();
            waiting.messages.push(message);
            waiting.messages.len()
        };
        if waiting >= MAX_WAITING_MESSAGES {
            self.write_waiting().await?;
        }
        Ok(())
    }

    /// Writes raw messages in one statement.
    async fn append_messages(&self, rows: &[MessageRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = multi_row_insert(
            self.backend,
            "INSERT INTO messages (session_row, device_id, direction, msg_id, at, body)",
            6,
            rows.len(),
        );
        self.execute_rows(sql, rows, |q, m| {
            q.bind(m.session_row)
                .bind(&m.device_id)
                .bind(&m.direction)
                .bind(&m.msg_id)
                .bind(&m.at)
                .bind(&m.body)
        })
        .await
    }

    /// A session's messages, in order.
    #[tracing::instrument(skip_all)]
    pub async fn messages(&self, session_row: i64) -> Result<Vec<MessageRow>> {
        self.write_waiting().await?;
        let rows = sqlx::query("SELECT * FROM messages WHERE session_row = $1 ORDER BY id")
            .bind(session_row)
            .fetch_all(&mut *self.db().await?)
            .await?;
        rows.iter().map(MessageRow::from_row).collect()
    }
}

/// `update FROM (VALUES ($1, ..), ...) AS v WHERE condition` for `rows` rows of `columns`
/// values (named `v.column1` ... by both engines): assembled only from placeholders.
fn values_update(
    backend: Backend,
    update: &str,
    columns: usize,
    rows: usize,
    condition: &str,
) -> String {
    let values = multi_row_insert(backend, "", columns, rows);
    format!(
        "{update} FROM ({}) AS v WHERE {condition}",
        values.trim_start()
    )
}

#[cfg(test)]
mod tests {
    use super::super::Device;
    use super::*;

    fn ended(rows: &[SessionRow]) -> Vec<(i64, Option<&str>, &str)> {
        rows.iter()
            .map(|r| (r.id, r.ended_at.as_deref(), r.outcome.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn waiting_sessions_read_back_and_are_written_for_the_next_server() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await;
        let device = Device {
            id: "D1".into(),
            ..Device::default()
        };
        store.upsert_device(&device).await.unwrap();

        // One session opens and ends while waiting; another opens, is written, then ends.
        let first = store
            .create_session("D1", "1", "T1", "certificate")
            .await
            .unwrap();
        store.end_session(first, "T2", "completed").await.unwrap();
        store.end_session(first, "T9", "abandoned").await.unwrap(); // closed already
        let second = store
            .create_session("D1", "2", "T3", "digest")
            .await
            .unwrap();
        store.set_last_sync("D1", "T3").await.unwrap();
        assert_eq!(
            store
                .device("D1")
                .await
                .unwrap()
                .unwrap()
                .last_sync_at
                .as_deref(),
            Some("T3")
        );
        assert_eq!(
            ended(&store.sessions("D1").await.unwrap()),
            [(first, Some("T2"), "completed"), (second, None, "")]
        );
        store.end_session(second, "T4", "aborted").await.unwrap();
        assert_eq!(
            store.session(second).await.unwrap().map(|r| r.outcome),
            Some("aborted".to_owned())
        );
        store.set_last_sync("D1", "T5").await.unwrap();
        store.write_waiting().await.unwrap();
        store.commit_open().await.unwrap();
        drop(store);

        // A server started on the same database sees it all and numbers on from there.
        let store = Store::open_in(dir.path()).await;
        assert_eq!(
            store
                .device("D1")
                .await
                .unwrap()
                .unwrap()
                .last_sync_at
                .as_deref(),
            Some("T5")
        );
        assert_eq!(
            ended(&store.sessions("D1").await.unwrap()),
            [
                (first, Some("T2"), "completed"),
                (second, Some("T4"), "aborted")
            ]
        );
        let third = store
            .create_session("D1", "3", "T6", "certificate")
            .await
            .unwrap();
        assert!(third > second, "{third} after {second}");
    }
}
