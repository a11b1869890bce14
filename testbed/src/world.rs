//! The world: one Tenantless server and any number of simulated devices in one process,
//! on one clock that moves only when the world moves it. [`World::advance`] jumps from
//! one due moment to the next (check-ins, retries, schedules), running everything due
//! in a fixed order, so a week of a fleet runs in seconds and the same seed gives the
//! same journal. The server may also run elsewhere (`WorldOptions::remote`, see
//! [`crate::remote_server`]), be stopped and started again, and devices due at one
//! moment may run in parallel (`WorldOptions::parallel`, for fleets).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent::device::DeviceProfile;
use agent::{Activity, Agent, AgentError, EnrollRequest};
use chrono::{DateTime, Duration, Utc};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use server::clock::{Clock, ManualClock};
use server::journal::{Entry, Expectation, Filter, Verification};
use server::storage::StoreError;

use crate::due::DueIndex;
use crate::remote_server::{RemoteOptions, RemoteServer};

/// Why the world could not do something.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The server would not start.
    #[error("server: {0}")]
    Server(#[from] server::StartError),
    /// A device failed.
    #[error("device {device}: {source}")]
    Device {
        /// The device's name.
        device: String,
        /// What went wrong.
        source: AgentError,
    },
    /// The journal could not be read.
    #[error("journal: {0}")]
    Journal(#[from] StoreError),
    /// No such device.
    #[error("no device named {0}")]
    NoDevice(String),
    /// The world's folder.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A remote server said no or could not be reached.
    #[error("remote server: {0}")]
    Remote(String),
    /// The server cannot do that now (stopped, or not in this process).
    #[error("server: {0}")]
    Unavailable(String),
}

/// How to build a world.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    /// Seed for every random choice (server nonces, device identities).
    pub seed: u64,
    /// World time at the start.
    pub start: DateTime<Utc>,
    /// Where the server's data and the devices live; a temporary folder if `None`.
    pub dir: Option<PathBuf>,
    /// ECDSA device keys instead of RSA-2048 (much faster for fleets).
    pub fast_keys: bool,
    /// Where to make the temporary folder when `dir` is `None` (default: the system's
    /// temporary folder).
    pub scratch: Option<PathBuf>,
    /// Use this running server (`--clock manual`) instead of starting one in-process.
    /// It is reset to an empty world at `start`.
    pub remote: Option<RemoteOptions>,
    /// How many devices due at the same moment may run at once. 1 (the default) runs
    /// them one by one in name order, which keeps the journal's order, and so the
    /// fingerprint, the same from run to run; more is faster (fleets) and orders the
    /// journal by arrival.
    pub parallel: usize,
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            seed: 1,
            start: server::clock::parse("2026-11-24T09:00:00Z").unwrap_or_default(),
            dir: None,
            fast_keys: true,
            scratch: None,
            remote: None,
            parallel: 1,
        }
    }
}

/// The world's server: in this process (running or stopped), or elsewhere.
enum Backend {
    Local(server::RunningServer),
    /// Stopped by [`World::stop_server`]: how to start it again on the same addresses.
    Stopped {
        config: server::Config,
        base_url: String,
        ca_pem: String,
    },
    Remote(RemoteServer),
}

impl Backend {
    /// The in-process server, while it runs.
    fn running(&self) -> Result<&server::RunningServer, WorldError> {
        match self {
            Backend::Local(s) => Ok(s),
            Backend::Stopped { .. } => Err(WorldError::Unavailable("the server is stopped".into())),
            Backend::Remote(_) => Err(WorldError::Unavailable(
                "the server runs elsewhere; use the admin API".into(),
            )),
        }
    }
}

/// A server and its devices on one clock.
pub struct World {
    server: Backend,
    /// The in-process server's configuration (to start it again after a stop).
    config: Option<server::Config>,
    restarts: u64,
    parallel: usize,
    clock: Arc<ManualClock>,
    devices: BTreeMap<String, Agent>,
    /// When each device is next due (touched whenever a device may have changed).
    due: DueIndex,
    rng: ChaCha8Rng,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    fast_keys: bool,
    /// When set, the world runs this many times faster than real time instead of
    /// jumping: labs a person watches.
    pub pace: Option<f64>,
    /// Errors devices met while the world ran (a device that cannot reach the server
    /// tries again later, as a real one does).
    pub device_errors: Vec<(DateTime<Utc>, String, String)>,
    /// Per device, the time of the last toast put in the journal.
    toasts_journalled: BTreeMap<String, DateTime<Utc>>,
}

/// The enrollment secret inside a world.
pub const ENROLL_SECRET: &str = "tenantless";
/// The admin token inside a world.
pub const ADMIN_TOKEN: &str = "tenantless-admin";

impl World {
    /// Starts the server of a new world.
    pub async fn start(options: WorldOptions) -> Result<World, WorldError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (dir, temp) = match options.dir {
            Some(d) => {
                std::fs::create_dir_all(&d)?;
                (d, None)
            }
            None => {
                let t = match &options.scratch {
                    Some(parent) => tempfile::tempdir_in(parent)?,
                    None => tempfile::tempdir()?,
                };
                (t.path().to_owned(), Some(t))
            }
        };
        let clock = Arc::new(ManualClock::new(options.start));
        let mut kept_config = None;
        let server = match options.remote {
            Some(remote) => Backend::Remote(
                RemoteServer::connect(remote, options.start)
                    .await
                    .map_err(WorldError::Remote)?,
            ),
            None => {
                let mut config = server::Config::for_tests(dir.join("server"));
                config.enroll_secret = ENROLL_SECRET.into();
                config.admin_token = ADMIN_TOKEN.into();
                config.seed = Some(options.seed);
                let running = server::start(config.clone(), clock.clone()).await?;
                config.listen = running.device_addr;
                config.admin_listen = running.admin_addr;
                config.public_url = Some(running.base_url.clone());
                kept_config = Some(config);
                Backend::Local(running)
            }
        };
        Ok(World {
            server,
            config: kept_config,
            restarts: 0,
            parallel: options.parallel.max(1),
            clock,
            devices: BTreeMap::new(),
            due: DueIndex::default(),
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            dir,
            _temp: temp,
            fast_keys: options.fast_keys,
            pace: None,
            device_errors: Vec::new(),
            toasts_journalled: BTreeMap::new(),
        })
    }

    /// World time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The server, when it runs in this process.
    pub fn server(&self) -> Option<&server::RunningServer> {
        self.server.running().ok()
    }

    /// The URL devices reach the server at.
    pub fn base_url(&self) -> &str {
        match &self.server {
            Backend::Local(s) => &s.base_url,
            Backend::Stopped { base_url, .. } => base_url,
            Backend::Remote(r) => &r.base_url,
        }
    }

    /// Stops the in-process server (its data stays): devices that call it fail and try
    /// again later, as real ones do, until [`World::start_server`].
    pub async fn stop_server(&mut self) -> Result<(), WorldError> {
        let config = self.config.clone().ok_or_else(|| {
            WorldError::Unavailable("only a server in this process can be stopped".into())
        })?;
        let stopped = Backend::Stopped {
            config,
            base_url: self.base_url().to_owned(),
            ca_pem: self.server.running()?.ca_pem().to_owned(),
        };
        if let Backend::Local(s) = std::mem::replace(&mut self.server, stopped) {
            s.stop().await;
        }
        Ok(())
    }

    /// Starts the stopped server again on its data and addresses.
    pub async fn start_server(&mut self) -> Result<(), WorldError> {
        let Backend::Stopped { config, .. } = &self.server else {
            return Err(WorldError::Unavailable("the server is not stopped".into()));
        };
        let mut config = config.clone();
        // A fresh stream of random choices: the first one's ids are in the database.
        self.restarts += 1;
        config.seed = config.seed.map(|s| s.wrapping_add(self.restarts));
        self.server = Backend::Local(server::start(config, self.clock.clone()).await?);
        Ok(())
    }

    /// Sets world time, on the server too.
    async fn set_clock(&mut self, at: DateTime<Utc>) {
        self.clock.set(at);
        if let Backend::Remote(r) = &self.server {
            if let Err(e) = r.set_clock(at).await {
                self.device_errors.push((at, "(server)".into(), e));
            }
        }
    }

    /// The world's folder (server data in `server/`, devices in `devices/<name>`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a device and enrolls it now; its first session is due at once.
    pub async fn add_device(
        &mut self,
        name: &str,
        profile: DeviceProfile,
    ) -> Result<&mut Agent, WorldError> {
        self.create_device(name, profile)?;
        self.enroll(name).await?;
        self.device_mut(name)
    }

    /// Creates a device that is not enrolled yet (see [`World::enroll`]).
    pub fn create_device(
        &mut self,
        name: &str,
        mut profile: DeviceProfile,
    ) -> Result<&mut Agent, WorldError> {
        let dir = self.device_dir(name);
        if profile.device_name.is_empty() {
            profile.device_name = name.to_owned();
        }
        // The user's object id is the directory's (`/users`), as Entra gives it to
        // Windows: the IME's per-user registry keys and the admin API name one user.
        if profile.user_object_id.is_empty() && !profile.user_principal_name.is_empty() {
            profile.user_object_id =
                server::directory::user_object_id(&profile.user_principal_name);
        }
        profile.fast_keys |= self.fast_keys;
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let mut agent =
            Agent::create(&dir, profile, seed).map_err(|source| WorldError::Device {
                device: name.to_owned(),
                source,
            })?;
        // Devices write their folders when an advance ends, not after every run.
        agent.defer_saves(true);
        self.due.touch(name);
        Ok(self.devices.entry(name.to_owned()).or_insert(agent))
    }

    /// Enrolls a device now (the user signs in to work or school); its first session is
    /// due at once.
    pub async fn enroll(&mut self, name: &str) -> Result<(), WorldError> {
        let request = self.enroll_request(name)?;
        let now = self.now();
        self.device_mut(name)?
            .enroll(&request, now)
            .await
            .map_err(|source| WorldError::Device {
                device: name.to_owned(),
                source,
            })
    }

    /// Enrolls several devices now, up to `parallel` at once (in name order when the
    /// world runs devices one by one).
    pub async fn enroll_all(&mut self, names: &[String]) -> Result<(), WorldError> {
        if self.parallel <= 1 {
            for name in names {
                self.enroll(name).await?;
            }
            return Ok(());
        }
        let now = self.now();
        let mut jobs = Vec::new();
        for name in names {
            let request = self.enroll_request(name)?;
            let job = move |mut agent: Agent| async move {
                let outcome = agent.enroll(&request, now).await;
                (agent, outcome)
            };
            jobs.push((name.clone(), job));
        }
        let mut failed = None;
        for (name, outcome) in self.in_parallel(jobs).await {
            if let Err(source) = outcome {
                failed.get_or_insert(WorldError::Device {
                    device: name,
                    source,
                });
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// What a device sends to enroll with the world's server.
    fn enroll_request(&self, name: &str) -> Result<EnrollRequest, WorldError> {
        let (secret, ca_pem) = match &self.server {
            Backend::Local(s) => (ENROLL_SECRET.to_owned(), s.ca_pem().to_owned()),
            Backend::Stopped { ca_pem, .. } => (ENROLL_SECRET.to_owned(), ca_pem.clone()),
            Backend::Remote(r) => (r.enroll_secret().to_owned(), r.ca_pem.clone()),
        };
        Ok(EnrollRequest {
            server: self.base_url().to_owned(),
            user: self
                .device(name)?
                .device()
                .profile
                .user_principal_name
                .clone(),
            secret,
            trusted_ca_pem: vec![ca_pem],
            digest_only: false,
        })
    }

    /// A device by name.
    pub fn device(&self, name: &str) -> Result<&Agent, WorldError> {
        self.devices
            .get(name)
            .ok_or_else(|| WorldError::NoDevice(name.into()))
    }

    /// A device by name, to change by hand.
    pub fn device_mut(&mut self, name: &str) -> Result<&mut Agent, WorldError> {
        self.due.touch(name);
        self.devices
            .get_mut(name)
            .ok_or_else(|| WorldError::NoDevice(name.into()))
    }

    /// The devices' names, in order.
    pub fn device_names(&self) -> Vec<String> {
        self.devices.keys().cloned().collect()
    }

    /// A device's id.
    pub fn device_id(&self, name: &str) -> Result<String, WorldError> {
        Ok(self.device(name)?.device().profile.device_id.clone())
    }

    /// The next moment a device has something to do (`None`: nothing is scheduled).
    pub fn next_due(&mut self) -> Option<DateTime<Utc>> {
        let devices = &self.devices;
        self.due
            .refresh(|name| devices.get(name).and_then(Agent::next_due));
        self.due.next()
    }

    /// Moves time to the next moment a device has something to do, and runs it; false
    /// when nothing is scheduled.
    pub async fn step(&mut self) -> bool {
        let Some(next) = self.next_due() else {
            return false;
        };
        let by = (next - self.now()).max(Duration::zero());
        self.advance(by).await;
        true
    }

    /// Runs everything due now.
    pub async fn settle(&mut self) -> Vec<(String, Activity)> {
        self.advance(Duration::zero()).await
    }

    /// Moves time forward by `by`, stopping at every moment something is due and
    /// running it (devices in name order). Returns what happened.
    pub async fn advance(&mut self, by: Duration) -> Vec<(String, Activity)> {
        let target = self.now() + by;
        let mut done = Vec::new();
        let mut rounds_at_same_time = 0;
        let mut last_at = None;
        let mut ran_any = BTreeSet::new();
        loop {
            self.take_pushes();
            let devices = &self.devices;
            self.due
                .refresh(|name| devices.get(name).and_then(Agent::next_due));
            let Some(next) = self.due.next() else {
                break;
            };
            if next > target {
                break;
            }
            let at = next.max(self.now());
            self.wait_for(at).await;
            if last_at == Some(at) {
                rounds_at_same_time += 1;
                if rounds_at_same_time > 8 {
                    break; // nothing can make progress at this moment
                }
            } else {
                rounds_at_same_time = 0;
                last_at = Some(at);
            }
            self.set_clock(at).await;
            let due = self.due.due_at(at);
            let ran = if self.parallel > 1 && due.len() > 1 {
                self.run_parallel(due, at).await
            } else {
                let mut ran = Vec::new();
                for name in due {
                    if let Some(agent) = self.devices.get_mut(&name) {
                        let outcome = agent.run_due(at).await;
                        ran.push((name, outcome));
                    }
                }
                ran
            };
            for (name, outcome) in ran {
                self.due.touch(&name);
                ran_any.insert(name.clone());
                match outcome {
                    Ok(activities) => {
                        done.extend(activities.into_iter().map(|a| (name.clone(), a)))
                    }
                    Err(e) => self.device_errors.push((at, name, e.to_string())),
                }
            }
        }
        for name in &ran_any {
            self.journal_toasts(name).await;
        }
        self.save_devices(ran_any);
        if target > self.now() {
            self.wait_for(target).await;
            self.set_clock(target).await;
        }
        done
    }

    /// Hands the pushes the server holds for this world's devices to them (a sync
    /// makes a device due now; a reboot restarts it), as WNS would. A server in another
    /// process keeps its pushes: its devices learn at their next check-in.
    fn take_pushes(&mut self) {
        let Backend::Local(server) = &self.server else {
            return;
        };
        let pushes = server.state.pushes.take_all();
        if pushes.is_empty() {
            return;
        }
        let now = self.now();
        for (name, agent) in &mut self.devices {
            let Some(waiting) = pushes.get(&agent.device().profile.device_id) else {
                continue;
            };
            for push in waiting {
                let done = match push {
                    server::push::Push::Sync => {
                        agent.request(agent::ime::Trigger::AdminSync, now);
                        Ok(())
                    }
                    server::push::Push::Reboot => agent.reboot(now),
                    server::push::Push::ShutDown => agent.shut_down(now),
                };
                if let Err(e) = done {
                    self.device_errors.push((now, name.clone(), e.to_string()));
                }
            }
            self.due.touch(name);
        }
    }

    /// Writes the folders of devices that ran (their saves are deferred to here); many
    /// on two threads, as file writes are most of it.
    fn save_devices(&mut self, names: BTreeSet<String>) {
        let at = self.now();
        let agents: Vec<(&String, &Agent)> = self
            .devices
            .iter()
            .filter(|(name, _)| names.contains(*name))
            .collect();
        let save = |part: &[(&String, &Agent)]| -> Vec<(String, String)> {
            part.iter()
                .filter_map(|(name, agent)| {
                    let e = agent.save().err()?;
                    Some(((*name).clone(), format!("saving the device: {e}")))
                })
                .collect()
        };
        let failed = if agents.len() < 64 {
            save(&agents)
        } else {
            let (first, second) = agents.split_at(agents.len() / 2);
            std::thread::scope(|scope| {
                let other = scope.spawn(|| save(second));
                let mut failed = save(first);
                match other.join() {
                    Ok(more) => failed.extend(more),
                    Err(_) => failed.push(("(world)".into(), "a save thread panicked".into())),
                }
                failed
            })
        };
        for (name, why) in failed {
            self.device_errors.push((at, name, why));
        }
    }

    /// Runs the devices due at `at` as tasks, at most `parallel` at once; the results in
    /// name order.
    async fn run_parallel(
        &mut self,
        due: Vec<String>,
        at: DateTime<Utc>,
    ) -> Vec<(String, Result<Vec<Activity>, AgentError>)> {
        let jobs = due
            .into_iter()
            .map(|name| {
                let job = move |mut agent: Agent| async move {
                    let outcome = agent.run_due(at).await;
                    (agent, outcome)
                };
                (name, job)
            })
            .collect();
        self.in_parallel(jobs).await
    }

    /// Runs a job on each named device as a task, at most `parallel` at once, and takes
    /// the devices back; the results in name order. A task that fails (panics) loses its
    /// device and is noted in `device_errors`.
    async fn in_parallel<R, F, Fut>(&mut self, jobs: Vec<(String, F)>) -> Vec<(String, R)>
    where
        F: FnOnce(Agent) -> Fut,
        Fut: std::future::Future<Output = (Agent, R)> + Send + 'static,
        R: Send + 'static,
    {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.parallel));
        let mut tasks = Vec::new();
        for (name, job) in jobs {
            self.due.touch(&name); // back with a new moment, or lost
            let Some(agent) = self.devices.remove(&name) else {
                continue;
            };
            let permits = permits.clone();
            let work = job(agent);
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let (agent, outcome) = work.await;
                (name, agent, outcome)
            }));
        }
        let mut done = Vec::new();
        for task in tasks {
            match task.await {
                Ok((name, agent, outcome)) => {
                    self.devices.insert(name.clone(), agent);
                    done.push((name, outcome));
                }
                Err(e) => self.device_errors.push((
                    self.now(),
                    "(world)".into(),
                    format!("a device's task failed: {e}"),
                )),
            }
        }
        done
    }

    /// With a pace set, lets real time pass until world time `at` is due.
    async fn wait_for(&self, at: DateTime<Utc>) {
        let Some(pace) = self.pace.filter(|p| *p > 0.0) else {
            return;
        };
        let world = (at - self.now()).num_milliseconds().max(0) as f64;
        tokio::time::sleep(std::time::Duration::from_millis((world / pace) as u64)).await;
    }

    /// Company Portal's Sync: the device checks in now, and its IME.
    pub async fn sync(&mut self, name: &str) -> Result<Vec<Activity>, WorldError> {
        self.trigger(name, agent::ime::Trigger::CompanyPortal).await
    }

    /// A trigger on a device (Company Portal's Sync, `syncapp`, the admin center's
    /// push as the device receives it), run with what it sets off.
    pub async fn trigger(
        &mut self,
        name: &str,
        trigger: agent::ime::Trigger,
    ) -> Result<Vec<Activity>, WorldError> {
        let now = self.now();
        let agent = self.device_mut(name)?;
        let done = agent.trigger(trigger, now).await;
        let saved = agent.save();
        let failed = |source| WorldError::Device {
            device: name.into(),
            source,
        };
        saved.map_err(failed)?;
        done.map_err(failed)
    }

    /// A user signs in on a device (UserLogOn): the device checks in, and its IME for
    /// the user's session, now. Returns the session number.
    pub async fn sign_in(&mut self, name: &str, upn: &str) -> Result<usize, WorldError> {
        let now = self.now();
        let agent = self.device_mut(name)?;
        let failed = |source| WorldError::Device {
            device: name.into(),
            source,
        };
        let session = agent
            .sign_in(&agent::device::User::named(upn), now)
            .map_err(failed)?;
        let done = agent.run_due(now).await;
        agent.save().map_err(failed)?;
        done.map_err(failed)?;
        Ok(session)
    }

    /// The signed-in user answers the IME's restart notification on a device: snooze
    /// it, or restart now (the device restarts and checks in).
    pub async fn answer_restart(
        &mut self,
        name: &str,
        answer: agent::ime::restart::Answer,
    ) -> Result<(), WorldError> {
        let now = self.now();
        let agent = self.device_mut(name)?;
        let failed = |source| WorldError::Device {
            device: name.into(),
            source,
        };
        agent.answer_restart(answer, now).map_err(failed)?;
        self.due.touch(name);
        self.journal_toasts(name).await;
        Ok(())
    }

    /// A user signs out of a device; false if they were not signed in.
    pub fn sign_out(&mut self, name: &str, upn: &str) -> Result<bool, WorldError> {
        let now = self.now();
        self.device_mut(name)?
            .sign_out(upn, now)
            .map_err(|source| WorldError::Device {
                device: name.into(),
                source,
            })
    }

    /// Company Portal on a device: the apps available to its user, with their status.
    pub async fn company_portal(
        &mut self,
        name: &str,
    ) -> Result<Vec<agent::ime::win32::PortalApp>, WorldError> {
        let now = self.now();
        self.device_mut(name)?
            .company_portal(now)
            .await
            .map_err(|source| WorldError::Device {
                device: name.into(),
                source,
            })
    }

    /// A user installs an available app on a device; false if none has that name.
    pub async fn install_available(&mut self, name: &str, app: &str) -> Result<bool, WorldError> {
        let now = self.now();
        self.device_mut(name)?
            .install_available(app, now)
            .await
            .map_err(|source| WorldError::Device {
                device: name.into(),
                source,
            })
    }

    /// Restarts a device (a pending hard reboot is done; the IME and MDM check in).
    pub fn reboot(&mut self, name: &str) -> Result<(), WorldError> {
        let now = self.now();
        self.device_mut(name)?
            .reboot(now)
            .map_err(|source| WorldError::Device {
                device: name.into(),
                source,
            })
    }

    /// Powers on a device that was shut down (it boots as after a restart).
    pub fn power_on(&mut self, name: &str) -> Result<(), WorldError> {
        let now = self.now();
        self.device_mut(name)?
            .power_on(now)
            .map_err(|source| WorldError::Device {
                device: name.into(),
                source,
            })
    }

    /// Marks a device as needing the IME (the server queues its installation).
    pub async fn require_ime(&mut self, name: &str) -> Result<bool, WorldError> {
        let id = self.device_id(name)?;
        match &self.server {
            Backend::Remote(r) => r.require_ime(&id).await.map_err(WorldError::Remote),
            local => {
                Ok(
                    server::ime::require(&local.running()?.state, &id, server::ime::Why::Requested)
                        .await?,
                )
            }
        }
    }

    /// Takes a snapshot of a device, as of a virtual machine: everything on it (registry,
    /// drive, installed programs, enrollment, the IME) is kept under the world's folder
    /// until [`World::restore_snapshot`] puts it back.
    pub fn snapshot(&mut self, name: &str) -> Result<(), WorldError> {
        let agent = self.device(name)?;
        agent.save().map_err(|source| WorldError::Device {
            device: name.into(),
            source,
        })?;
        let (from, to) = (self.device_dir(name), self.snapshot_dir(name));
        if to.exists() {
            std::fs::remove_dir_all(&to)?;
        }
        copy_tree(&from, &to)?;
        Ok(())
    }

    /// Reverts a device to its snapshot ("snapshots are a curse": the device is back to
    /// an older IME, older app states and an older session count, and the server knows
    /// nothing of it).
    pub fn restore_snapshot(&mut self, name: &str) -> Result<(), WorldError> {
        let (from, to) = (self.snapshot_dir(name), self.device_dir(name));
        if !from.exists() {
            return Err(WorldError::Unavailable(format!("{name} has no snapshot")));
        }
        self.device(name)?;
        std::fs::remove_dir_all(&to)?;
        copy_tree(&from, &to)?;
        let mut agent = Agent::open(&to).map_err(|source| WorldError::Device {
            device: name.into(),
            source,
        })?;
        agent.defer_saves(true);
        self.devices.insert(name.to_owned(), agent);
        self.due.touch(name);
        Ok(())
    }

    fn device_dir(&self, name: &str) -> PathBuf {
        self.dir.join("devices").join(name)
    }

    fn snapshot_dir(&self, name: &str) -> PathBuf {
        self.dir.join("snapshots").join(name)
    }

    /// Puts the toasts a device showed since the last time in the journal (`toast`), as
    /// the device's user saw them. A world on a remote server keeps no such record.
    async fn journal_toasts(&mut self, name: &str) {
        let Backend::Local(s) = &self.server else {
            return;
        };
        let Some(agent) = self.devices.get(name) else {
            return;
        };
        let since = self.toasts_journalled.get(name).copied();
        let new: Vec<_> = agent
            .state()
            .notifications
            .iter()
            .filter(|n| since.is_none_or(|t| n.at > t))
            .cloned()
            .collect();
        let Some(last) = new.last().map(|n| n.at) else {
            return;
        };
        let id = agent.device().profile.device_id.clone();
        for n in new {
            let event = server::journal::Event::Toast {
                toast: n.kind,
                app_id: n.app_id,
            };
            if let Err(e) = s.state.journal.record(&id, &event).await {
                self.device_errors
                    .push((self.now(), name.to_owned(), e.to_string()));
            }
        }
        self.toasts_journalled.insert(name.to_owned(), last);
    }

    /// Records in the journal that a person acted on a device (the lab console's
    /// actions). A world on a remote server keeps no such record.
    pub async fn record_lab_action(
        &self,
        name: &str,
        action: &str,
        target: &str,
    ) -> Result<(), WorldError> {
        let id = self.device_id(name)?;
        if let Backend::Local(s) = &self.server {
            let event = server::journal::Event::LabAction {
                action: action.into(),
                target: target.into(),
            };
            s.state.journal.record(&id, &event).await?;
        }
        Ok(())
    }

    /// Queues an OMA-DM command for a device.
    pub async fn queue(
        &mut self,
        name: &str,
        command: &syncml::dm::Command,
    ) -> Result<i64, WorldError> {
        let id = self.device_id(name)?;
        match &self.server {
            Backend::Remote(r) => r.queue(&id, command).await.map_err(WorldError::Remote),
            local => {
                let state = &local.running()?.state;
                Ok(server::omadm::queue(state, &id, command, "admin", None).await?)
            }
        }
    }

    /// The in-process server's admin address (`http://127.0.0.1:PORT`); `None` for a
    /// remote or stopped server.
    pub fn admin_url(&self) -> Option<String> {
        match &self.server {
            Backend::Local(s) => Some(format!("http://{}", s.admin_addr)),
            _ => None,
        }
    }

    /// Calls the admin API with any method (`GET`, `POST`, `PUT`, `PATCH`, ...) and a
    /// JSON body or raw bytes (a content upload); returns the status and the JSON answer.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: AdminBody,
    ) -> (u16, serde_json::Value) {
        let server = match &self.server {
            Backend::Local(s) => s,
            Backend::Stopped { .. } => {
                return (0, crate::remote_server::no_answer("the server is stopped"))
            }
            Backend::Remote(r) => return r.request(method, path, body).await,
        };
        let url = format!("http://{}{path}", server.admin_addr);
        let http = match crate::remote_server::admin_client() {
            Ok(http) => http,
            Err(e) => return (0, crate::remote_server::no_answer(e)),
        };
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let req = http.request(method, url).bearer_auth(ADMIN_TOKEN);
        let req = match body {
            AdminBody::None => req,
            AdminBody::Json(v) => req.json(&v),
            AdminBody::Bytes(b) => req.body(b),
        };
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(serde_json::Value::Null))
            }
            Err(e) => (0, crate::remote_server::no_answer(e.to_string())),
        }
    }

    /// The journal.
    pub fn journal(&self) -> JournalView<'_> {
        JournalView {
            server: &self.server,
        }
    }

    /// The journal as (time, device, kind, payload), with what legitimately differs
    /// between two runs of the same seed masked: the server's port (inside raw
    /// messages and URLs) and certificate thumbprints (keys are fresh each run). Two
    /// runs with the same seed and steps give equal fingerprints.
    pub async fn fingerprint(
        &self,
    ) -> Result<Vec<(String, String, String, serde_json::Value)>, WorldError> {
        let base = self.base_url().to_owned();
        let events = self.journal().all().events().await?;
        Ok(events
            .into_iter()
            .map(|mut e| {
                if let Some(t) = e.payload.get_mut("thumbprint") {
                    *t = serde_json::Value::String("(thumbprint)".into());
                }
                let payload = serde_json::to_string(&e.payload)
                    .unwrap_or_default()
                    .replace(&base, "https://tenantless");
                let payload = serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null);
                (e.at, e.device, e.kind, payload)
            })
            .collect())
    }

    /// Stops the server (a remote one keeps running).
    pub async fn stop(self) {
        if let Backend::Local(s) = self.server {
            s.stop().await;
        }
    }
}

/// A body for [`World::admin`].
#[derive(Debug, Clone)]
pub enum AdminBody {
    /// No body.
    None,
    /// JSON.
    Json(serde_json::Value),
    /// Raw bytes (a `.intunewin`).
    Bytes(Vec<u8>),
}

/// The journal as the world's Rust API reads it.
pub struct JournalView<'a> {
    server: &'a Backend,
}

impl<'a> JournalView<'a> {
    /// Events matching a filter.
    pub fn filter(&self, filter: Filter) -> Selection<'a> {
        Selection {
            server: self.server,
            filter,
        }
    }

    /// Every event.
    pub fn all(&self) -> Selection<'a> {
        self.filter(Filter::default())
    }
}

/// A filtered view of the journal.
pub struct Selection<'a> {
    server: &'a Backend,
    filter: Filter,
}

impl Selection<'_> {
    /// How many events match.
    pub async fn count(&self) -> Result<usize, WorldError> {
        match self.server {
            Backend::Remote(_) => Ok(self.events().await?.len()),
            local => Ok(local
                .running()?
                .state
                .journal
                .count(&self.filter, None)
                .await?),
        }
    }

    /// The matching events, oldest first.
    pub async fn events(&self) -> Result<Vec<Entry>, WorldError> {
        match self.server {
            Backend::Remote(r) => r.events(&self.filter).await.map_err(WorldError::Remote),
            local => Ok(local
                .running()?
                .state
                .journal
                .select(&self.filter, None, usize::MAX)
                .await?),
        }
    }

    /// Checks an expectation (with near-miss diagnostics when it fails).
    pub async fn verify(&self, expectation: Expectation) -> Result<Verification, WorldError> {
        match self.server {
            Backend::Local(s) => Ok(s.state.journal.verify(&self.filter, &expectation).await?),
            Backend::Stopped { .. } => Err(WorldError::Unavailable("the server is stopped".into())),
            Backend::Remote(r) => r
                .verify(&self.filter, &expectation)
                .await
                .map_err(WorldError::Remote),
        }
    }
}

/// Copies a folder and everything in it.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.map_err(std::io::Error::other)?;
        let relative = entry
            .path()
            .strip_prefix(from)
            .map_err(std::io::Error::other)?;
        let target = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
