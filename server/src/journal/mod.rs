//! The journal: an append-only, typed record of what happened, each event stamped with
//! the world time of the server's clock and a sequence number. It lives in the
//! database; readers page through it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::{self, Clock};
use crate::storage::{JournalQuery, JournalRow, Store, StoreError};

pub mod filter;

pub use filter::{Expectation, Filter, NearMiss, Verification};

/// What happened. The variant's snake_case name is the event's `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// A device enrolled (or re-enrolled, or renewed).
    Enrolled {
        /// `Issue`, `Renew` or `Recovery`.
        request_type: String,
        /// The user who enrolled.
        user: String,
        /// `Full` or `Device`.
        enrollment_type: String,
        /// The issued certificate's thumbprint.
        thumbprint: String,
    },
    /// A request was refused with the protocol's own error.
    Refused {
        /// Which endpoint.
        endpoint: String,
        /// The fault subcode or status code.
        code: String,
        /// Why.
        reason: String,
    },
    /// A management session began.
    SessionStarted {
        /// The session's row id.
        session: i64,
        /// The SyncML SessionID.
        session_id: String,
        /// `certificate` or `digest`.
        auth: String,
    },
    /// A management session ended.
    SessionEnded {
        /// The session's row id.
        session: i64,
        /// The SyncML SessionID.
        session_id: String,
        /// `completed` or `aborted`.
        outcome: String,
    },
    /// A SyncML message arrived.
    MessageIn {
        /// The session's row id (0 before authentication).
        session: i64,
        /// MsgID.
        msg_id: String,
        /// The raw body.
        raw: String,
    },
    /// A SyncML message was sent.
    MessageOut {
        /// The session's row id (0 before authentication).
        session: i64,
        /// MsgID.
        msg_id: String,
        /// The raw body.
        raw: String,
    },
    /// A command was queued for a device.
    CommandQueued {
        /// The command's id.
        command: i64,
        /// `Get`, `Add`, ...
        verb: String,
        /// First target URI.
        target: String,
        /// `admin`, `ime`, `retry`.
        origin: String,
    },
    /// A command went out in a message.
    CommandDelivered {
        /// The command's id.
        command: i64,
        /// The session's row id.
        session: i64,
        /// The message's MsgID.
        msg_id: String,
        /// The CmdID it was given.
        cmd_id: String,
    },
    /// A device answered a command with a status.
    CommandStatus {
        /// The command's id.
        command: i64,
        /// `Get`, `Add`, ...
        verb: String,
        /// First target URI.
        target: String,
        /// The status code.
        status: i64,
    },
    /// A device returned Results for a Get.
    CommandResult {
        /// The command's id.
        command: i64,
        /// The items returned.
        items: Vec<ResultItem>,
    },
    /// A device raised an alert.
    Alert {
        /// The session's row id.
        session: i64,
        /// The alert code.
        code: String,
        /// Meta Type, for generic alerts.
        alert_type: String,
        /// Item Source LocURI.
        source: String,
        /// Item Data.
        data: String,
    },
    /// An admin asked for a managed-device action (`syncDevice`, `rebootNow`).
    DeviceAction {
        /// The Graph action.
        action: String,
    },
    /// A device left management (`retire`, `wipe`, `userUnenroll`): its certificates
    /// are revoked and its record removed.
    DeviceRemoved {
        /// How it left.
        reason: String,
    },
    /// A device or user joined or left an Entra group (`added`, `removed`): what the
    /// group's assignments reach changes at the device's next check-in.
    MembershipChanged {
        /// The group's object id.
        group: String,
        /// The member's object id.
        member: String,
        /// `device` or `user`.
        member_kind: String,
        /// `added` or `removed`.
        change: String,
    },
    /// A content file was committed (`commit`, or the one-shot upload): its bytes
    /// checked against its `fileEncryptionInfo`; `failed` says why when they were not
    /// good (the file reads back `commitFileFailed`).
    ContentCommitted {
        /// The app.
        app: String,
        /// The content version.
        version: i64,
        /// The content file's id.
        file: String,
        /// The encrypted file's bytes.
        bytes: i64,
        /// Why the commit failed, if it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed: Option<String>,
    },
    /// A person acted on a device from the lab console (`sync`, `restartIme`, `reboot`,
    /// `ripley`).
    LabAction {
        /// What they did.
        action: String,
        /// On what, when it matters (the app of a Ripley maneuver).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        target: String,
    },
    /// The admin API's fault mode refused a request (`tenantless/throttling`).
    Throttled {
        /// The HTTP method.
        method: String,
        /// The path.
        path: String,
        /// 429 or 503.
        status: u16,
        /// The `Retry-After` it was given, seconds.
        retry_after: u64,
    },
    /// A request the fault mode refused came again.
    ThrottleRetry {
        /// The HTTP method.
        method: String,
        /// The path.
        path: String,
        /// How long the client waited, real milliseconds.
        waited_ms: u64,
        /// The `Retry-After` it had been given, seconds.
        retry_after: u64,
        /// It waited at least that long.
        honoured: bool,
    },
    /// The IME called its gateway.
    GatewayCall {
        /// RequestContentType, e.g. `RequestApplication`.
        request: String,
        /// CheckinReason.
        reason: String,
    },
    /// A user signed in on a device: the IME checked in for them (CheckinReason
    /// `UserLogOn`), or first called the gateway in their session.
    UserLoggedOn {
        /// The user principal name.
        user: String,
        /// CheckinReason.
        reason: String,
    },
    /// A device reported the state of a Win32 app.
    AppReport {
        /// The app.
        app_id: String,
        /// The app's revision the device acted on.
        version: i64,
        /// ComplianceState.
        compliance: i64,
        /// EnforcementState.
        enforcement: i64,
        /// The error code.
        error_code: i64,
    },
    /// A device's state of a Win32 app changed.
    AppStateChanged {
        /// The app.
        app_id: String,
        /// ComplianceState before (absent on the first report).
        old_compliance: Option<i64>,
        /// ComplianceState now.
        new_compliance: i64,
        /// EnforcementState before.
        old_enforcement: Option<i64>,
        /// EnforcementState now.
        new_enforcement: i64,
        /// The error code.
        error_code: i64,
    },
    /// A device reported the result of a platform script.
    ScriptResult {
        /// The script.
        policy_id: String,
        /// `Success` or `Failed`.
        result: String,
        /// The script's exit code, or the IME's error.
        error_code: i64,
    },
    /// A device reported a run of a remediation (detect, remediate, detect again).
    RemediationResult {
        /// The remediation (`deviceHealthScript`).
        policy_id: String,
        /// Graph's detection state: `success`, `fail` or `scriptError`.
        detection_state: String,
        /// Graph's remediation state: `skipped`, `success`, `remediationFailed` or
        /// `scriptError`.
        remediation_state: String,
    },
    /// The device showed its user a toast (the testbed journals what its devices show).
    Toast {
        /// `installing`, `installed`, `failed`, `restartRequired`, `restartCountdown`,
        /// `restartSnoozed` or `restarting`.
        toast: String,
        /// The app it is about.
        app_id: String,
    },
    /// An Enrollment Status Page profile targets a device that enrolled: its settings
    /// and blocking apps went into the device's first session.
    EspConfigured {
        /// The profile (`deviceEnrollmentConfiguration`).
        profile_id: String,
        /// How long the ESP waits for its apps.
        timeout_minutes: i64,
        /// The Win32 apps it waits for.
        blocking_apps: Vec<String>,
    },
    /// The server evaluated a device's custom compliance: a discovery script's output
    /// against its compliance policy's rules.
    ComplianceEvaluated {
        /// The compliance policy.
        policy_id: String,
        /// Graph's state: `compliant`, `nonCompliant` or `error`.
        state: String,
        /// The settings that are not compliant (non-compliant or in error).
        settings: Vec<String>,
    },
    /// A device's client health evaluation sent an agent status report.
    HealthReport {
        /// The IME version.
        ime_version: String,
        /// Whether the IME service was running when the evaluation began.
        service_was_running: bool,
        /// Whether the evaluation (re)started the service.
        restarted: bool,
    },
    /// A device uploaded its application inventory.
    Inventory {
        /// `Full` or `Delta`.
        inventory_type: String,
        /// Programs the service did not have for the device (names).
        added: Vec<String>,
        /// Programs gone from the device (names; only a full inventory removes).
        removed: Vec<String>,
        /// Programs the device now has, as the service knows them.
        programs: usize,
    },
    /// The IME's installation moved on.
    ImeInstall {
        /// `queued`, `installing`, `installed` or `failed`.
        state: String,
        /// The version being installed.
        version: String,
        /// The device's result or status code, when there is one.
        code: Option<i64>,
        /// Why a delivery was queued (`queued` only): see [`crate::ime::Why`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
}

/// One value a device returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultItem {
    /// Source LocURI.
    pub uri: String,
    /// Meta Format.
    pub format: Option<String>,
    /// The value.
    pub data: String,
}

/// The most of a refusal's reason the journal keeps (in characters): a reason may quote
/// what a stranger sent.
pub const MAX_REASON: usize = 256;

impl Event {
    /// A refusal, its reason cut to [`MAX_REASON`] characters.
    pub fn refused(endpoint: &str, code: impl Into<String>, reason: &str) -> Event {
        let reason = match reason.char_indices().nth(MAX_REASON) {
            Some((cut, _)) => format!("{}...", &reason[..cut]),
            None => reason.to_owned(),
        };
        Event::Refused {
            endpoint: endpoint.into(),
            code: code.into(),
            reason,
        }
    }

    /// A device's report about something not assigned to it, which was ignored.
    pub fn not_assigned(request: &str, id: &str) -> Event {
        Event::refused(
            request,
            "403",
            &format!("{id} is not assigned to this device"),
        )
    }

    /// The event's kind, as stored and filtered on.
    pub fn kind(&self) -> String {
        kind_of(&serde_json::to_string(self).unwrap_or_default())
    }
}

/// The `kind` of a serialised event (read without building the whole value).
fn kind_of(payload: &str) -> String {
    #[derive(Deserialize)]
    struct Tagged<'a> {
        #[serde(borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    serde_json::from_str::<Tagged>(payload)
        .map(|t| t.kind.into_owned())
        .unwrap_or_default()
}

/// A journal event as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number.
    pub seq: i64,
    /// World time, RFC 3339.
    pub at: String,
    /// The device, or empty.
    pub device: String,
    /// The event kind.
    pub kind: String,
    /// The event's fields.
    pub payload: Value,
}

impl From<JournalRow> for Entry {
    fn from(row: JournalRow) -> Self {
        let mut payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut payload {
            map.remove("kind");
        }
        Entry {
            seq: row.seq,
            at: row.at,
            device: row.device_id,
            kind: row.kind,
            payload,
        }
    }
}

/// Appends events with the clock's time, and reads them back; commits what requests
/// wrote (see [`Journal::commit`]).
#[derive(Clone)]
pub struct Journal {
    store: Store,
    clock: Arc<dyn Clock>,
    /// Events recorded but not yet written, in order.
    pending: Arc<std::sync::Mutex<Queue>>,
    /// How many events had been written when the last commit began: all are committed.
    committed: Arc<std::sync::atomic::AtomicU64>,
    /// Held while writing, so batches reach the table in the order they were recorded.
    writing: Arc<tokio::sync::Mutex<()>>,
    /// Held by the request that commits for all that wait (group commit).
    committing: Arc<tokio::sync::Mutex<()>>,
}

/// Events waiting to be written, and how many were ever recorded.
#[derive(Default)]
struct Queue {
    events: Vec<Pending>,
    /// Events recorded since the journal was made.
    recorded: u64,
}

/// An event waiting to be written.
struct Pending {
    /// The transaction its request started in (none outside a request).
    started: Option<u64>,
    at: String,
    device: String,
    kind: String,
    payload: String,
}

/// Written at once when this many events are waiting.
const FLUSH_AT: usize = 512;
/// How often (real time) what was written outside any request is committed.
pub const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl Journal {
    /// A journal over this store and clock.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Journal {
            store,
            clock,
            pending: Arc::default(),
            committed: Arc::default(),
            writing: Arc::default(),
            committing: Arc::default(),
        }
    }

    /// Commits what was written so far, events and what waits in the store included,
    /// and returns once it is committed; `started` is the transaction the caller's
    /// request started in ([`Store::txn`] when it began), and an error means something
    /// the request wrote was rolled back. Requests that finish together share one
    /// commit: each waits for the commit in progress, and the next to get the lock
    /// commits for everyone that wrote meanwhile, once the requests still writing
    /// into the transaction are done (see [`crate::storage::Store::in_request`]).
    pub async fn commit(&self, started: Option<u64>) -> Result<(), StoreError> {
        // Made while handling a request, the commit does not wait for that request.
        self.store.pause_request();
        crate::storage::outside_request(self.commit_for(started)).await
    }

    async fn commit_for(&self, started: Option<u64>) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        // What the caller wrote: statements up to this transaction, events up to this one.
        let txn = self.store.txn();
        let recorded = self.queue().recorded;
        {
            let _committing = self.committing.lock().await;
            let done = self.store.txn() > txn && self.committed.load(Ordering::SeqCst) >= recorded;
            if !done {
                let _closed = self.store.close_open().await;
                let written = match self.flush_counted().await {
                    Ok(written) => written,
                    Err(e) => {
                        self.store.rollback_open(&e).await;
                        return Err(e);
                    }
                };
                self.store.commit_open().await?;
                self.committed.fetch_max(written, Ordering::SeqCst);
            }
        }
        if self.store.failed_since(started.unwrap_or(txn)) {
            return Err(StoreError::Aborted);
        }
        Ok(())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an event for a device (or `""`), stamped with the clock's time now. It
    /// is written with others into the open transaction ([`Journal::flush`]) and
    /// committed with what its request changed ([`Journal::commit`]); every read
    /// flushes first, so readers never miss an event.
    pub async fn record(&self, device: &str, event: &Event) -> Result<(), StoreError> {
        self.store.enter().await?;
        let started = crate::storage::request_started();
        if self.enqueue(started, device, event) >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Records an event that stands alone, such as that a call arrived: it joins no
    /// request's transaction, so a commit does not wait for the request that noted it,
    /// and it is not dropped when that request's transaction is rolled back after. The
    /// next commit writes it, and the request's own [`Journal::commit`] waits for that.
    pub fn note(&self, device: &str, event: &Event) {
        self.enqueue(None, device, event);
    }

    /// Queues an event stamped now; returns how many wait.
    fn enqueue(&self, started: Option<u64>, device: &str, event: &Event) -> usize {
        let payload = serde_json::to_string(event).unwrap_or_default();
        let kind = kind_of(&payload);
        tracing::debug!(device, kind, "journal");
        let event = Pending {
            started,
            at: clock::format(self.clock.now()),
            device: device.to_owned(),
            kind,
            payload,
        };
        let mut queue = self.queue();
        queue.events.push(event);
        queue.recorded += 1;
        queue.events.len()
    }

    /// Writes the events kept so far into the open transaction, in one statement per
    /// few hundred, after what waits in the store (session rows and messages, see
    /// [`Store::write_waiting`]). Events of requests whose transaction was rolled back
    /// are dropped: those requests fail.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.flush_counted().await.map(|_| ())
    }

    /// [`Journal::flush`], returning how many events ever recorded are now written.
    async fn flush_counted(&self) -> Result<u64, StoreError> {
        // Join the transaction before taking the lock a commit needs.
        self.store.enter().await?;
        let _writing = self.writing.lock().await;
        self.store.write_waiting().await?;
        // Every event recorded so far is in this batch.
        let (mut batch, taken) = {
            let mut queue = self.queue();
            (std::mem::take(&mut queue.events), queue.recorded)
        };
        batch.retain(|p| !p.started.is_some_and(|t| self.store.failed_since(t)));
        for chunk in batch.chunks(200) {
            let rows: Vec<(&str, &str, &str, &str)> = chunk
                .iter()
                .map(|p| {
                    (
                        p.at.as_str(),
                        p.device.as_str(),
                        p.kind.as_str(),
                        p.payload.as_str(),
                    )
                })
                .collect();
            self.store.append_journal(&rows).await?;
        }
        Ok(taken)
    }

    /// Events matching the query, oldest first.
    pub async fn query(&self, q: &JournalQuery) -> Result<Vec<Entry>, StoreError> {
        self.flush().await?;
        Ok(self
            .store
            .journal(q)
            .await?
            .into_iter()
            .map(Entry::from)
            .collect())
    }

    /// Calls `visit` for every event the database selects for `filter` (device, kind,
    /// time) after sequence number `after`, oldest first, a page at a time so memory
    /// stays bounded, until `visit` says it has seen enough (returns false).
    async fn scan(
        &self,
        filter: &Filter,
        after: Option<i64>,
        mut visit: impl FnMut(Entry) -> bool,
    ) -> Result<(), StoreError> {
        const PAGE: i64 = 2000;
        self.flush().await?;
        let mut q = filter.query(PAGE);
        q.after_seq = after;
        loop {
            let rows = self.store.journal(&q).await?;
            let n = rows.len() as i64;
            for row in rows {
                q.after_seq = Some(row.seq);
                if !visit(Entry::from(row)) {
                    return Ok(());
                }
            }
            if n < PAGE {
                return Ok(());
            }
        }
    }

    /// Events matching `filter` after sequence number `after`, oldest first, at most
    /// `limit` (the scan stops there).
    pub async fn select(
        &self,
        filter: &Filter,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        self.scan(filter, after, |e| {
            if filter.matches(&e) {
                out.push(e);
            }
            out.len() < limit
        })
        .await?;
        Ok(out)
    }

    /// How many events after sequence number `after` match `filter`.
    pub async fn count(&self, filter: &Filter, after: Option<i64>) -> Result<usize, StoreError> {
        let mut n = 0;
        self.scan(filter, after, |e| {
            n += usize::from(filter.matches(&e));
            true
        })
        .await?;
        Ok(n)
    }

    /// Checks an expectation; a failure names the closest events (among the same
    /// device's events, or all when the filter names no device). The journal is read a
    /// page at a time and only the closest events are kept.
    pub async fn verify(
        &self,
        filter: &Filter,
        expectation: &Expectation,
    ) -> Result<Verification, StoreError> {
        let scope = Filter {
            device: filter.device.clone(),
            ..Filter::default()
        };
        let mut checker = filter::Checker::new(filter, expectation);
        self.scan(&scope, None, |e| {
            checker.feed(&e);
            true
        })
        .await?;
        Ok(checker.finish())
    }

    /// Forgets every event (the testbed's reset).
    pub async fn reset(&self) -> Result<(), StoreError> {
        self.flush().await?;
        self.store.clear_journal().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_page_after_a_sequence_number_stops_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await;
        let clock = Arc::new(crate::clock::ManualClock::new(
            clock::parse("2026-11-24T09:00:00Z").unwrap(),
        ));
        let journal = Journal::new(store, clock);
        for i in 0..5000 {
            let device = if i % 2 == 0 { "EVEN" } else { "ODD" };
            let event = Event::GatewayCall {
                request: format!("R{i}"),
                reason: "Scheduled".into(),
            };
            journal.record(device, &event).await.unwrap();
        }
        journal.commit(None).await.unwrap();
        let all = Filter::default();
        let page = journal.select(&all, Some(10), 3).await.unwrap();
        let seqs: Vec<i64> = page.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [11, 12, 13]);
        let odd = Filter {
            device: Some("ODD".into()),
            ..Filter::default()
        };
        assert_eq!(journal.count(&odd, None).await.unwrap(), 2500);
        assert_eq!(journal.count(&odd, Some(4990)).await.unwrap(), 5);
        let v = journal
            .verify(&Filter::kind("nothing"), &Expectation::AtLeast(1))
            .await
            .unwrap();
        assert!(!v.ok);
        assert_eq!(v.near_misses.len(), 3, "only the closest are kept");
        assert_eq!(v.near_misses[0].event.seq, 5000, "the newest first");
    }

    /// A commit waits for the requests writing into its transaction, so no request's
    /// first writes commit without its last ones.
    #[tokio::test]
    async fn a_commit_waits_for_the_requests_writing_into_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await;
        let clock = Arc::new(crate::clock::ManualClock::new(
            clock::parse("2026-11-24T09:00:00Z").unwrap(),
        ));
        let journal = Arc::new(Journal::new(store.clone(), clock));
        let event = |n: u32| Event::GatewayCall {
            request: format!("R{n}"),
            reason: "Scheduled".into(),
        };
        let (go_on, wait) = tokio::sync::oneshot::channel::<()>();
        let request = {
            let (journal, store) = (journal.clone(), store.clone());
            tokio::spawn(async move {
                store
                    .in_request(store.txn(), async {
                        journal.record("D", &event(1)).await.unwrap();
                        let _ = wait.await;
                        journal.record("D", &event(2)).await.unwrap();
                    })
                    .await
            })
        };
        while journal.queue().recorded == 0 {
            tokio::task::yield_now().await;
        }
        let commit = tokio::spawn({
            let journal = journal.clone();
            async move { journal.commit(None).await }
        });
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!commit.is_finished(), "the request is still writing");
        go_on.send(()).unwrap();
        request.await.unwrap();
        commit.await.unwrap().unwrap();
        // Both events went into the one commit.
        assert_eq!(journal.count(&Filter::default(), None).await.unwrap(), 2);
        assert_eq!(
            journal.committed.load(std::sync::atomic::Ordering::SeqCst),
            2
        );

        // A commit whose caller goes away while it waits leaves the gate open.
        let (go_on, wait) = tokio::sync::oneshot::channel::<()>();
        let writer = {
            let (journal, store) = (journal.clone(), store.clone());
            tokio::spawn(async move {
                store
                    .in_request(store.txn(), async {
                        journal.record("D", &event(3)).await.unwrap();
                        let _ = wait.await;
                    })
                    .await
            })
        };
        while journal.queue().recorded < 3 {
            tokio::task::yield_now().await;
        }
        let abandoned = tokio::spawn({
            let journal = journal.clone();
            async move { journal.commit(None).await }
        });
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        go_on.send(()).unwrap();
        writer.await.unwrap();
        let fourth = event(4);
        let late = store.in_request(store.txn(), journal.record("D", &fourth));
        tokio::time::timeout(std::time::Duration::from_secs(5), late)
            .await
            .expect("a new request may write")
            .unwrap();
        journal.commit(None).await.unwrap();
        assert_eq!(journal.count(&Filter::default(), None).await.unwrap(), 4);
    }
}
