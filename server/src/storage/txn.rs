//! The store's one connection and the transaction it is always in.
//!
//! Every statement of every request runs on one connection, inside one open
//! transaction that the journal commits when a request is about to be answered (group
//! commit: requests that finish together share one commit). So a reply is sent only
//! after what its request changed, events included, is committed, and a crash loses
//! only what no one was told about.
//!
//! What one request writes commits together or not at all: a request joins the open
//! transaction at its first statement or event and leaves it when it is done
//! ([`Store::in_request`]); a commit closes the transaction to newcomers and waits for
//! the requests in it to leave first. Otherwise a request's first writes could commit
//! without its last ones, and a crash in between would keep, say, a report's receipt
//! without its event, so the report sent again would be taken for a duplicate.
//!
//! When a commit fails, the transaction is rolled back and every request that wrote
//! into it fails too: its further statements are refused ([`StoreError::Aborted`])
//! and [`Store::check_request`] tells its caller, which answers with the protocol's
//! error so that the device (or admin) tries again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::AnyConnection;
use sqlx::{Connection, Executor};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, Notify};

use super::{Backend, Result, Store, StoreError};

/// The request a task is handling.
#[derive(Debug)]
struct RequestCtx {
    /// The transaction it started in.
    started: u64,
    /// It is one of the open transaction's writers.
    joined: Arc<AtomicBool>,
}

tokio::task_local! {
    /// The request the current task handles (`None` inside a commit).
    static REQUEST: Option<RequestCtx>;
}

/// The transaction the current request started in, if this runs inside one.
pub(crate) fn request_started() -> Option<u64> {
    REQUEST
        .try_with(|r| r.as_ref().map(|r| r.started))
        .ok()
        .flatten()
}

/// The current request's writer flag, if this runs inside one.
fn request_joined() -> Option<Arc<AtomicBool>> {
    REQUEST
        .try_with(|r| r.as_ref().map(|r| r.joined.clone()))
        .ok()
        .flatten()
}

/// Runs `work` as no request's (a commit made while handling one must not wait for
/// its own request to leave).
pub(crate) async fn outside_request<F: std::future::Future>(work: F) -> F::Output {
    REQUEST.scope(None, work).await
}

/// Who may write into the open transaction: the requests in it, and whether a commit
/// waits for them to leave (newcomers then wait for the next transaction).
#[derive(Debug, Default)]
struct Gate {
    writers: usize,
    closed: bool,
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
    gate: std::sync::Mutex<Gate>,
    /// Wakes the requests waiting for the gate to open again.
    reopened: Notify,
    /// Wakes the commit waiting for the last writer to leave.
    drained: Notify,
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
            gate: std::sync::Mutex::new(Gate::default()),
            reopened: Notify::new(),
            drained: Notify::new(),
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

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `ready` holds for the gate, asked again whenever `changed` wakes the
    /// waiters. Entrants and the commit wait on different signals, so a writer leaving
    /// wakes only the commit, not every request queued at the closed gate.
    async fn wait_gate(&self, changed: &Notify, mut ready: impl FnMut(&mut Gate) -> bool) {
        loop {
            let changed = changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if ready(&mut self.gate()) {
                return;
            }
            changed.await;
        }
    }

    /// Makes the current request (if any) a writer of the open transaction, waiting
    /// while a commit closes it; then refuses it if its transaction was rolled back.
    pub(super) async fn enter(&self) -> Result<()> {
        if let Some(joined) = request_joined().filter(|j| !j.load(Ordering::SeqCst)) {
            self.wait_gate(&self.reopened, |gate| {
                if gate.closed {
                    return false;
                }
                gate.writers += 1;
                joined.store(true, Ordering::SeqCst);
                true
            })
            .await;
        }
        self.check_request()
    }

    /// The request whose flag this is leaves the open transaction (if it was in it).
    fn leave(&self, joined: &AtomicBool) {
        if joined.swap(false, Ordering::SeqCst) {
            let mut gate = self.gate();
            gate.writers -= 1;
            let last = gate.closed && gate.writers == 0;
            drop(gate);
            if last {
                self.drained.notify_waiters();
            }
        }
    }

    /// Closes the open transaction to newcomers and waits for its writers to leave.
    async fn close(&self) {
        self.wait_gate(&self.drained, |gate| {
            gate.closed = true;
            gate.writers == 0
        })
        .await;
    }

    /// Opens the (next) transaction to requests again.
    fn reopen(&self) {
        self.gate().closed = false;
        self.reopened.notify_waiters();
    }

    /// The connection, in an open transaction; refused to a request whose transaction
    /// was rolled back.
    pub(super) async fn acquire(&self) -> Result<MappedMutexGuard<'_, AnyConnection>> {
        self.enter().await?;
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

/// The open transaction closed to newcomers by a commit; opened again when dropped.
pub(crate) struct Closed<'a> {
    conn: &'a Conn,
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.conn.reopen();
    }
}

/// Leaves the open transaction when a request's handling ends, finished or dropped.
struct Leaving<'a> {
    conn: &'a Conn,
    joined: Arc<AtomicBool>,
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.conn.leave(&self.joined);
    }
}

impl Store {
    /// Runs the handling of a request that arrived during transaction `started`
    /// ([`Store::txn`]): it joins the open transaction at its first write and leaves
    /// it at the end (see the module).
    pub async fn in_request<F: std::future::Future>(&self, started: u64, request: F) -> F::Output {
        let joined = Arc::new(AtomicBool::new(false));
        let _leaving = Leaving {
            conn: &self.conn,
            joined: joined.clone(),
        };
        REQUEST
            .scope(Some(RequestCtx { started, joined }), request)
            .await
    }

    /// The current request leaves the open transaction before it waits for other
    /// requests (a long poll): what it wrote so far may then commit without it.
    pub fn pause_request(&self) {
        if let Some(joined) = request_joined() {
            self.conn.leave(&joined);
        }
    }

    /// Makes the current request a writer of the open transaction (see the module)
    /// and refuses it when its transaction was rolled back.
    pub(crate) async fn enter(&self) -> Result<()> {
        self.conn.enter().await
    }

    /// Closes the open transaction to new requests and waits for those in it to leave;
    /// [`Store::commit_open`] or [`Store::rollback_open`] opens the next one, and so
    /// does dropping the guard (a commit whose caller went away must not leave every
    /// request waiting).
    pub(crate) async fn close_open(&self) -> Closed<'_> {
        // Made first, so a commit dropped while it waits opens the gate again too.
        let closed = Closed { conn: &self.conn };
        self.conn.close().await;
        closed
    }

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
        self.conn.reopen();
        result
    }

    /// Rolls the open transaction back after one of its statements failed.
    pub(crate) async fn rollback_open(&self, why: &StoreError) {
        self.conn.rollback(why).await;
        self.forget_after_rollback();
        self.conn.reopen();
    }

    fn forget_after_rollback(&self) {
        *self.memo() = super::Memo::default();
        self.sessions.forget();
    }
}
