//! What every request handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::{self, Clock};
use crate::config::Config;
use crate::ime::ImeRelease;
use crate::journal::Journal;
use crate::omadm::LiveSession;
use crate::pki::Ca;
use crate::storage::Store;

/// The server's shared state.
pub struct AppState {
    /// How it was started.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// The certificate authority.
    pub ca: Ca,
    /// World time.
    pub clock: Arc<dyn Clock>,
    /// The journal.
    pub journal: Journal,
    /// The base URL devices reach the server at, `https://host:port`.
    pub base_url: String,
    /// Management sessions in progress, by device id.
    pub sessions: Mutex<HashMap<String, LiveSession>>,
    /// The IME releases the server hosts, by version; the current one is delivered.
    pub ime: Mutex<ImeRelease>,
    /// What every check-in reads (assignments, apps, scripts), cached until an admin
    /// change, when this server owns its database (SQLite; see [`AppState::cached`]).
    cache: Mutex<PolicyCache>,
    /// Devices by certificate thumbprint, for the gateway (a certificate's device and its
    /// user never change: re-enrollment issues a new certificate and revokes the old).
    /// Kept only while the server owns its database; see [`AppState::forget_device`].
    gateway_devices: Mutex<HashMap<String, Arc<crate::storage::Device>>>,
    /// Processes following the world clock (remote mode).
    pub followers: crate::worldclock::Followers,
    /// Devices by certificate thumbprint, as looked up; kept like `gateway_devices`.
    cert_devices: Mutex<HashMap<String, String>>,
    rng: Mutex<ChaCha8Rng>,
    /// The admin API's fault mode, when it is on.
    throttling: Mutex<Option<crate::admin::throttle::Throttling>>,
    /// Pushes waiting for their devices.
    pub pushes: crate::push::Pushes,
}

/// The handle handlers get.
pub type Shared = Arc<AppState>;

impl AppState {
    /// Assembles the state.
    pub fn new(
        config: Config,
        store: Store,
        ca: Ca,
        clock: Arc<dyn Clock>,
        base_url: String,
        ime: ImeRelease,
    ) -> Self {
        let rng = match config.seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_os_rng(),
        };
        AppState {
            journal: Journal::new(store.clone(), clock.clone()),
            config,
            store,
            ca,
            clock,
            base_url,
            sessions: Mutex::new(HashMap::new()),
            ime: Mutex::new(ime),
            cert_devices: Mutex::new(HashMap::new()),
            followers: Default::default(),
            cache: Mutex::new(PolicyCache::default()),
            throttling: Mutex::new(None),
            pushes: Default::default(),
            gateway_devices: Mutex::new(HashMap::new()),
            rng: Mutex::new(rng),
        }
    }

    /// True when this server is its database's one writer (SQLite), so what it caches
    /// cannot be changed behind its back; PostgreSQL may be shared by several servers.
    fn owns_database(&self) -> bool {
        self.store.backend() == crate::storage::Backend::Sqlite
    }

    /// The device a certificate was issued to, unless it was revoked (cached after the
    /// first look-up while the server owns its database).
    pub async fn device_for_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<String>, crate::storage::StoreError> {
        if let Some(d) = lock(&self.cert_devices).get(thumbprint) {
            return Ok(Some(d.clone()));
        }
        let found = self.store.device_for_thumbprint(thumbprint).await?;
        if let (Some(d), true) = (&found, self.owns_database()) {
            lock(&self.cert_devices).insert(thumbprint.to_owned(), d.clone());
        }
        Ok(found)
    }

    /// The device record behind a certificate (cached like the look-up above).
    pub async fn device_for_certificate(
        &self,
        thumbprint: &str,
    ) -> Result<Option<Arc<crate::storage::Device>>, crate::storage::StoreError> {
        if let Some(d) = lock(&self.gateway_devices).get(thumbprint) {
            return Ok(Some(d.clone()));
        }
        let Some(id) = self.device_for_thumbprint(thumbprint).await? else {
            return Ok(None);
        };
        let Some(device) = self.store.device(&id).await?.map(Arc::new) else {
            return Ok(None);
        };
        if self.owns_database() {
            lock(&self.gateway_devices).insert(thumbprint.to_owned(), device.clone());
        }
        Ok(Some(device))
    }

    /// Whether a device's result entry about `item` (an app or script id) is recorded:
    /// not when `item` is not among those `given` to the device (refused with an event),
    /// nor when its `ReportId` was received before (the device sent it again, having
    /// missed the acknowledgement). `request` names the upload in the refusal.
    pub async fn accept_report(
        &self,
        device_id: &str,
        given: &std::collections::HashSet<String>,
        request: &str,
        item: &str,
        entry: &serde_json::Value,
    ) -> Result<bool, crate::storage::StoreError> {
        if !given.contains(item) {
            let event = crate::journal::Event::not_assigned(request, item);
            self.journal.record(device_id, &event).await?;
            return Ok(false);
        }
        match entry["ReportId"].as_str() {
            Some(id) => {
                self.store
                    .first_receipt(device_id, id, &self.now_text())
                    .await
            }
            None => Ok(true),
        }
    }

    /// Leaves a push for a device; a device that follows the clock is woken for it.
    pub fn push(&self, device_id: &str, push: crate::push::Push) {
        self.pushes.leave(device_id, push);
        self.followers.wake(device_id);
    }

    /// The admin API's fault mode (`None`: off).
    pub fn throttling(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<crate::admin::throttle::Throttling>> {
        lock(&self.throttling)
    }

    /// Forgets what is remembered of a device whose certificates were revoked: its
    /// cached look-ups and its live management session.
    pub fn forget_device(&self, id: &str) {
        lock(&self.cert_devices).retain(|_, d| d != id);
        lock(&self.gateway_devices).retain(|_, d| d.id != id);
        lock(&self.sessions).remove(id);
    }

    /// A cached query result, loaded when missing. Only a server that owns its database
    /// caches: with SQLite it is the only writer; PostgreSQL may be shared by several
    /// servers, each of which must see the others' changes, so it always asks.
    async fn cached<T: Clone, F, Fut>(
        &self,
        slot: impl Fn(&mut PolicyCache) -> &mut Option<T>,
        load: F,
    ) -> Result<T, crate::storage::StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, crate::storage::StoreError>>,
    {
        let owned = self.owns_database();
        let mut generation = 0;
        if owned {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(hit) = slot(&mut cache) {
                return Ok(hit.clone());
            }
            generation = cache.generation;
        }
        let fresh = load().await?;
        if owned {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            // Not if an admin change came while loading: what was loaded may predate it.
            if cache.generation == generation {
                *slot(&mut cache) = Some(fresh.clone());
            }
        }
        Ok(fresh)
    }

    /// Every app assignment.
    pub async fn assignments(
        &self,
    ) -> Result<Vec<crate::storage::AssignmentRow>, crate::storage::StoreError> {
        self.cached(|c| &mut c.assignments, || self.store.assignments())
            .await
    }

    /// Every group's direct members.
    pub async fn memberships(
        &self,
    ) -> Result<Vec<crate::storage::MemberRow>, crate::storage::StoreError> {
        self.cached(|c| &mut c.memberships, || self.store.memberships())
            .await
    }

    /// A device as targeting sees it, with its groups.
    pub async fn audience<'d>(
        &self,
        device: &'d crate::storage::Device,
    ) -> Result<crate::directory::Audience<'d>, crate::storage::StoreError> {
        Ok(crate::directory::Audience::of(
            device,
            &self.memberships().await?,
        ))
    }

    /// Every app.
    pub async fn apps(&self) -> Result<Vec<crate::storage::AppRow>, crate::storage::StoreError> {
        self.cached(|c| &mut c.apps, || self.store.apps()).await
    }

    /// An app's Detection.xml, if its content was uploaded.
    pub async fn app_detection(
        &self,
        app_id: &str,
    ) -> Result<Option<String>, crate::storage::StoreError> {
        self.cached(
            |c| c.detections.entry(app_id.to_owned()).or_default(),
            || self.store.app_detection(app_id),
        )
        .await
    }

    /// Every assigned script of a kind, with its assignments.
    pub async fn assigned_scripts(
        &self,
        kind: crate::storage::ScriptKind,
    ) -> Result<
        Vec<(crate::storage::AppRow, crate::storage::ScriptAssignment)>,
        crate::storage::StoreError,
    > {
        self.cached(
            |c| match kind {
                crate::storage::ScriptKind::Platform => &mut c.platform_scripts,
                crate::storage::ScriptKind::Remediation => &mut c.remediations,
                crate::storage::ScriptKind::ComplianceScript => &mut c.compliance_scripts,
                crate::storage::ScriptKind::CompliancePolicy => &mut c.compliance_policies,
                crate::storage::ScriptKind::EspProfile => &mut c.esp_profiles,
            },
            || self.store.assigned_scripts(kind),
        )
        .await
    }

    /// The answer to a policy request (`RequestApplication`, `PolicyRequest`, ...) for
    /// a device. It depends on admin data and the device's id and user only, and each
    /// device asks every hour, so it is cached like the data it is made from.
    pub async fn policy_answer<F, Fut>(
        &self,
        request: &str,
        device: &crate::storage::Device,
        load: F,
    ) -> Result<String, crate::storage::StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<String, crate::storage::StoreError>>,
    {
        let key = (
            request.to_owned(),
            device.id.clone(),
            device.user_principal_name.clone(),
        );
        self.cached(
            |c| {
                if c.answers.len() >= MAX_CACHED_ANSWERS && !c.answers.contains_key(&key) {
                    c.answers.clear();
                }
                c.answers.entry(key.clone()).or_default()
            },
            load,
        )
        .await
    }

    /// Apps, scripts, their assignments or group members changed: forget the cached
    /// policy.
    pub fn policy_changed(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let generation = cache.generation + 1;
        *cache = PolicyCache {
            generation,
            ..PolicyCache::default()
        };
    }

    /// Forgets what is cached from the database (after the testbed wipes it).
    pub fn forget_cached(&self) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.policy_changed();
        self.cert_devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.gateway_devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// World time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// World time now, formatted for storage.
    pub fn now_text(&self) -> String {
        clock::format(self.clock.now())
    }

    /// Random bytes from the server's (possibly seeded) generator.
    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill_bytes(&mut out);
        out
    }

    /// A random secret of URL-safe characters.
    pub fn random_secret(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.random_bytes::<18>())
    }

    /// A random upper-case GUID.
    pub fn random_guid(&self) -> String {
        uuid::Builder::from_random_bytes(self.random_bytes::<16>())
            .into_uuid()
            .to_string()
            .to_uppercase()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Policy answers kept at most (a few per device).
const MAX_CACHED_ANSWERS: usize = 100_000;

/// Query results every check-in reads (see [`AppState::cached`]).
#[derive(Debug, Default)]
struct PolicyCache {
    /// Counts admin changes: a load that straddles one is not kept.
    generation: u64,
    /// Policy answers by request, device id and user (see [`AppState::policy_answer`]).
    answers: HashMap<(String, String, String), Option<String>>,
    assignments: Option<Vec<crate::storage::AssignmentRow>>,
    apps: Option<Vec<crate::storage::AppRow>>,
    detections: HashMap<String, Option<Option<String>>>,
    platform_scripts: Option<Vec<(crate::storage::AppRow, crate::storage::ScriptAssignment)>>,
    remediations: Option<Vec<(crate::storage::AppRow, crate::storage::ScriptAssignment)>>,
    compliance_scripts: Option<Vec<(crate::storage::AppRow, crate::storage::ScriptAssignment)>>,
    compliance_policies: Option<Vec<(crate::storage::AppRow, crate::storage::ScriptAssignment)>>,
    esp_profiles: Option<Vec<(crate::storage::AppRow, crate::storage::ScriptAssignment)>>,
    memberships: Option<Vec<crate::storage::MemberRow>>,
}
