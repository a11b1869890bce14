//! The store's one connection and the transaction it is always in.
//!
//! Every statement of every request runs on one connection, inside one open
//! transaction that the journal commits when a request is about to be answered (group
//! commit: requests that finish together share one commit). So a reply is sent only
//! after what its request changed, events included, is committed, and a crash loses
//! only what no one was told about. State and events that one request writes commit
//! together or not at all.
//!
//! A request runs inside [`in_request`], which remembers the transaction it started
//! in. When a commit fails, the transaction is rolled back and every request that
//! wrote into it fails too: its further statements are refused ([`StoreError::Aborted`])
//! and [`Store::check_request`] tells its caller, which answers with the protocol's
//! error so that the device (or admin) tries again.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::AnyConnection;
use sqlx::{Connection, Executor};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::{Backend, Result, Store, StoreError};

tokio::task_local! {
    /// The transaction the current request started in.
    static REQUEST_STARTED: u64;
}

/// Runs a request's handling that started in transaction `started` ([`Store::txn`]
/// when it arrived; see the module).
pub async fn in_request<F: std::future::Future>(started: u64, request: F) -> F::Output {
    REQUEST_STARTED.scope(started, request).await
}

/// The transaction the current request started in, if this runs inside one.
pub(crate) fn request_started() -> Option<u64> {
    REQUEST_STARTED.try_with(|started| *started).ok()
}

/// The connection, opened lazily and again after it broke.
#[derive(Debug)]
pub(super) struct Conn {
    url: String,
    backend: Backend,
    slot: Mutex<Slot>,
    /// The id of the transaction statements run in now; each commit or rollback ends one.
    txn: AtomicU64,
    /// The last transaction that was rolled back (0: none).
    last_failed: AtomicU64,
}

#[derive(Debug, Default)]
struct Slot {
    conn: Option<AnyConnection>,
    /// A transaction is open on `conn`.
    open: bool,
}

impl Conn {
    pub(super) async fn open(url: &str, backend: Backend) -> Result<Conn> {
        let conn = Conn {
            url: url.to_owned(),
            backend,
            slot: Mutex::new(Slot::default()),
            txn: AtomicU64::new(1),
            last_failed: AtomicU64::new(0),
        };
        // Connect now, so a wrong URL fails at start.
        let mut slot = conn.slot.lock().await;
        slot.conn = Some(conn.connect().await?);
        drop(slot);
        Ok(conn)
    }

    async fn connect(&self) -> Result<AnyConnection> {
        let mut conn = AnyConnection::connect(&self.url).await?;
        if self.backend == Backend::Sqlite {
            conn.execute("PRAGMA busy_timeout = 5000").await?;
            // In WAL mode a commit reaches the file before it returns: a killed process
            // keeps every commit; only a power cut may lose the last ones.
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.execute("PRAGMA synchronous = NORMAL").await?;
        }
        Ok(conn)
    }

    /// The id of the transaction statements run in now.
    pub(super) fn txn(&self) -> u64 {
        self.txn.load(Ordering::SeqCst)
    }

    /// The connection, in an open transaction; refused to a request whose transaction
    /// was rolled back.
    pub(super) async fn acquire(&self) -> Result<MappedMutexGuard<'_, AnyConnection>> {
        self.check_request()?;
        let mut slot = self.slot.lock().await;
        if slot.conn.is_none() {
            slot.conn = Some(self.connect().await?);
        }
        if !slot.open {
            let begin = match self.backend {
                // Take the write lock now: a transaction that read first could not
                // write after another process did.
                Backend::Sqlite => "BEGIN IMMEDIATE",
                Backend::Postgres => "BEGIN",
            };
            let conn = slot.conn.as_mut().ok_or(StoreError::Aborted)?;
            if let Err(e) = conn.execute(begin).await {
                if broken(&e) {
                    slot.conn = None;
                }
                return Err(e.into());
            }
            slot.open = true;
        }
        MutexGuard::try_map(slot, |s| s.conn.as_mut()).map_err(|_| StoreError::Aborted)
    }

    /// An error when the current request wrote into a transaction that was rolled back.
    pub(super) fn check_request(&self) -> Result<()> {
        match request_started() {
            Some(started) if self.last_failed.load(Ordering::SeqCst) >= started => {
                Err(StoreError::Aborted)
            }
            _ => Ok(()),
        }
    }

    /// True when the transaction `txn` (or a later one) was rolled back.
    pub(super) fn failed_since(&self, txn: u64) -> bool {
        self.last_failed.load(Ordering::SeqCst) >= txn
    }

    /// Commits the open transaction (if any) and starts counting the next one. On
    /// failure the transaction is rolled back, marked failed, and the error returned.
    pub(super) async fn commit(&self) -> Result<()> {
        let mut slot = self.slot.lock().await;
        if !slot.open {
            self.txn.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        slot.open = false;
        let result = match slot.conn.as_mut() {
            Some(conn) => conn.execute("COMMIT").await.map(|_| ()),
            None => Err(sqlx::Error::PoolClosed),
        };
        // The id moves on either way: a failed transaction's id is the one marked.
        match result {
            Ok(()) => {
                self.txn.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                self.fail(&mut slot, &e.to_string(), broken(&e)).await;
                Err(e.into())
            }
        }
    }

    /// Rolls the open transaction back and marks it failed (a statement of the commit
    /// failed before `COMMIT`).
    pub(super) async fn rollback(&self, why: &StoreError) {
        let mut slot = self.slot.lock().await;
        slot.open = false;
        let broken = matches!(why, StoreError::Db(e) if broken(e));
        self.fail(&mut slot, &why.to_string(), broken).await;
    }

    async fn fail(&self, slot: &mut Slot, why: &str, broken: bool) {
        tracing::error!("transaction {} rolled back: {why}", self.txn());
        let keep = match slot.conn.as_mut() {
            Some(conn) if !broken => conn.execute("ROLLBACK").await.is_ok(),
            _ => false,
        };
        if !keep {
            slot.conn = None;
        }
        self.last_failed.store(self.txn(), Ordering::SeqCst);
        self.txn.fetch_add(1, Ordering::SeqCst);
    }
}

/// True when the connection cannot be used again.
fn broken(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_)
    )
}

impl Store {
    /// The connection, in the open transaction (see the module).
    pub(super) async fn db(&self) -> Result<MappedMutexGuard<'_, AnyConnection>> {
        self.conn.acquire().await
    }

    /// An error when the current request's transaction was rolled back: its writes are
    /// gone and it must fail.
    pub fn check_request(&self) -> Result<()> {
        self.conn.check_request()
    }

    /// The id of the open transaction.
    pub fn txn(&self) -> u64 {
        self.conn.txn()
    }

    /// True when a transaction from `txn` on was rolled back.
    pub fn failed_since(&self, txn: u64) -> bool {
        self.conn.failed_since(txn)
    }

    /// Commits the open transaction; on failure rolls it back and forgets what this
    /// store remembered of it. Callers go through the journal's group commit
    /// ([`crate::journal::Journal::commit`]), which writes what waits first.
    pub(crate) async fn commit_open(&self) -> Result<()> {
        let result = self.conn.commit().await;
        if result.is_err() {
            self.forget_after_rollback();
        }
        result
    }

    /// Rolls the open transaction back after one of its statements failed.
    pub(crate) async fn rollback_open(&self, why: &StoreError) {
        self.conn.rollback(why).await;
        self.forget_after_rollback();
    }

    fn forget_after_rollback(&self) {
        *self.memo() = super::Memo::default();
        self.sessions.forget();
    }
}
