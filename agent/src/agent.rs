//! The agent as a library: one device, driven from outside. It says when it next
//! wants to run ([`Agent::next_due`]) and runs what is due at a given time
//! ([`Agent::run_due`]); nothing in it reads a clock. The real-time runner of
//! `tenantless-agent run` and the testbed's world both drive it this way.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::csp::edam;
use crate::device::programs::InstalledProgram;
use crate::device::{self, Device, DeviceProfile, User};
use crate::enroll::{self, EnrollRequest};
use crate::error::AgentError;
use crate::state::{AgentState, ImeService, MsiJob, SessionSummary};
use crate::{ime, omadm};

/// Something the agent did in [`Agent::run_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// A management session.
    Session(SessionSummary),
    /// EnterpriseDesktopAppManagement jobs moved on.
    MsiJobs,
    /// The device left management (retired, or wiped) at the server's request.
    Left(crate::state::Leaving),
    /// The IME's restart manager restarted the device: the grace period was over.
    Restarted,
}

/// How long a restart keeps the device down: from the IME's stop to its start.
pub const BOOT_TIME: chrono::Duration = chrono::Duration::seconds(95);

/// One simulated device and its agent.
#[derive(Debug)]
pub struct Agent {
    device: Device,
    state: AgentState,
    /// The management HTTPS client, kept so connections are reused across sessions.
    client: Option<reqwest::Client>,
    /// When true, [`Agent::run_due`] leaves saving to the owner (see
    /// [`Agent::defer_saves`]).
    defer_saves: bool,
}

/// What `tenantless-agent status` shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Device id.
    pub device_id: String,
    /// Computer name.
    pub device_name: String,
    /// Enrolled, and where.
    pub management_url: Option<String>,
    /// Enrolled by.
    pub user: Option<String>,
    /// Signed in now, in session order (session 1 first).
    pub signed_in: Vec<User>,
    /// The last session.
    pub last_session: Option<SessionSummary>,
    /// When the next session is due.
    pub next_poll: Option<DateTime<Utc>>,
    /// The IME service.
    pub ime: ImeService,
    /// Installed programs.
    pub installed_programs: Vec<InstalledProgram>,
    /// MSI jobs of the EnterpriseDesktopAppManagement CSP.
    pub msi_jobs: Vec<MsiJob>,
}

impl Agent {
    /// Creates a device in `dir` from a profile (`seed` fills missing identity).
    pub fn create(dir: &Path, profile: DeviceProfile, seed: [u8; 32]) -> Result<Agent, AgentError> {
        let device = Device::create(dir, profile, seed)?;
        let state = AgentState {
            users: device.profile.primary_user().into_iter().collect(),
            ..AgentState::default()
        };
        let agent = Agent {
            device,
            state,
            client: None,
            defer_saves: false,
        };
        agent.save()?;
        Ok(agent)
    }

    /// Opens the device kept in `dir`.
    pub fn open(dir: &Path) -> Result<Agent, AgentError> {
        let device = Device::open(dir)?;
        let state = device::read_json(&dir.join("state.json")).unwrap_or_default();
        Ok(Agent {
            device,
            state,
            client: None,
            defer_saves: false,
        })
    }

    /// True when `dir` holds a device.
    pub fn exists(dir: &Path) -> bool {
        dir.join("profile.json").exists()
    }

    /// The device model.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The device model, to change by hand (delete a registry key, uninstall ...).
    pub fn device_mut(&mut self) -> &mut Device {
        &mut self.device
    }

    /// The HTTPS client of management sessions (created on first use).
    pub fn client(&mut self) -> Result<reqwest::Client, AgentError> {
        match &self.client {
            Some(c) => Ok(c.clone()),
            None => {
                let c = omadm::management_client(&self.state)?;
                self.client = Some(c.clone());
                Ok(c)
            }
        }
    }

    /// The agent's state.
    pub fn state(&self) -> &AgentState {
        &self.state
    }

    /// With `true`, [`Agent::run_due`] no longer writes the device directory after every
    /// run: whoever owns the agent calls [`Agent::save`] when the files must be current
    /// (the world does at the end of every advance). Scripts still see a saved device.
    pub fn defer_saves(&mut self, defer: bool) {
        self.defer_saves = defer;
    }

    /// Writes everything to the device directory.
    pub fn save(&self) -> Result<(), AgentError> {
        self.device.save()?;
        self.device.write_if_changed("state.json", &self.state)?;
        Ok(())
    }

    /// Enrolls (discovery, policy, certificate request); the first session is due at once.
    pub async fn enroll(
        &mut self,
        request: &EnrollRequest,
        now: DateTime<Utc>,
    ) -> Result<(), AgentError> {
        enroll::enroll(&mut self.device, &mut self.state, request, now).await?;
        self.client = None;
        self.save()
    }

    /// A trigger arrives (the admin center's push, Company Portal's Sync,
    /// `intunemanagementextension://syncapp` or `synccompliance`): the IME logs it and
    /// wants its check-in, and all but the two URLs make the device open a management
    /// session.
    pub fn request(&mut self, trigger: ime::Trigger, now: DateTime<Utc>) {
        if !matches!(
            trigger,
            ime::Trigger::SyncApp | ime::Trigger::SyncCompliance
        ) {
            self.state.sync_requested = true;
        }
        ime::take_trigger(&self.device, &mut self.state, trigger, now);
    }

    /// [`Agent::request`], then runs what it set off.
    pub async fn trigger(
        &mut self,
        trigger: ime::Trigger,
        now: DateTime<Utc>,
    ) -> Result<Vec<Activity>, AgentError> {
        self.request(trigger, now);
        self.run_due(now).await
    }

    /// When the agent next wants to run: `None` if never (not enrolled). A time in the
    /// past means "as soon as possible".
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.state.enrollment.as_ref()?;
        if self.state.powered_off {
            return None;
        }
        let immediate = (self.state.sync_requested || !self.state.pending_alerts.is_empty())
            .then_some(DateTime::<Utc>::MIN_UTC);
        [
            immediate,
            self.state.next_poll,
            edam::next_due(&self.state),
            ime::next_due(&self.state),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs everything due at `now`: MSI job steps, then a session if the schedule, a
    /// sync request or a waiting alert calls for one, repeating while work falls due
    /// (a completed install's alert goes out in a new session at once).
    pub async fn run_due(&mut self, now: DateTime<Utc>) -> Result<Vec<Activity>, AgentError> {
        if self.state.enrollment.is_none() {
            return Err(AgentError::NotEnrolled);
        }
        if self.state.powered_off {
            return Ok(Vec::new());
        }
        let client = self.client()?;
        let outcome = self.run_steps(&client, now).await;
        if !self.defer_saves {
            self.save()?;
        }
        outcome
    }

    /// The steps of [`Agent::run_due`]; a step that fails sets its own retry and ends
    /// the run.
    async fn run_steps(
        &mut self,
        client: &reqwest::Client,
        now: DateTime<Utc>,
    ) -> Result<Vec<Activity>, AgentError> {
        let mut done = Vec::new();
        for _ in 0..16 {
            let mut progressed = false;
            if edam::next_due(&self.state).is_some_and(|t| t <= now)
                && edam::run_due(&mut self.device, &mut self.state, client, now).await
            {
                done.push(Activity::MsiJobs);
                progressed = true;
            }
            // A restart whose grace period is over comes before anything else.
            if self.restart_due(now) {
                if ime::restart::run_due(&self.device, &mut self.state, now)
                    == ime::restart::Due::Restart
                {
                    self.restart_windows(now);
                    done.push(Activity::Restarted);
                }
                progressed = true;
            }
            // The ESP's timeout, when nothing else noticed it.
            if self.state.esp.as_ref().is_some_and(|e| e.deadline <= now) {
                ime::esp::phase(&mut self.device, &mut self.state, now);
                progressed = true;
            }
            // Client health first: a service it restarts checks in below.
            if ime::health::due(&self.state, now) {
                ime::health::evaluate(&mut self.device, &mut self.state, client, now).await?;
                progressed = true;
            }
            let poll_due = self.state.next_poll.is_some_and(|t| t <= now);
            if self.state.sync_requested || poll_due || !self.state.pending_alerts.is_empty() {
                self.state.sync_requested = false;
                match omadm::session(&mut self.device, &mut self.state, client, now).await {
                    Ok(summary) => {
                        self.state.next_poll = Some(self.next_poll_after(now));
                        done.push(Activity::Session(summary));
                        progressed = true;
                        // A first boot's session may bring the Enrollment Status Page.
                        ime::esp::after_session(&mut self.device, &mut self.state, now);
                        // Retire or wipe, answered in the session, is done as it ends.
                        if let Some(leaving) = self.state.leaving.take() {
                            crate::unenroll::leave(&mut self.device, &mut self.state, leaving, now);
                            self.client = None;
                            done.push(Activity::Left(leaving));
                            return Ok(done);
                        }
                    }
                    Err(e) => {
                        self.state.next_poll = Some(now + Duration::minutes(1));
                        return Err(e);
                    }
                }
            }
            if ime::checkin_due(&self.state).is_some_and(|t| t <= now) {
                if let Err(e) =
                    ime::win32::checkin(&mut self.device, &mut self.state, client, now).await
                {
                    self.state.ime.next_checkin = Some(now + Duration::minutes(5));
                    return Err(e);
                }
                progressed = true;
            }
            if ime::remediations::due(&self.state, now) {
                let gateway = self.state.ime.gateway_url.clone().unwrap_or_default();
                ime::remediations::run_due(
                    &mut self.device,
                    &mut self.state,
                    client,
                    &gateway,
                    now,
                )
                .await?;
                progressed = true;
            }
            // Inventory after the check-in, so it sees what the check-in installed.
            if ime::inventory::due(&self.state, now) {
                match self.state.ime.gateway_url.clone() {
                    Some(gateway) => {
                        let ran = ime::inventory::run(
                            &mut self.device,
                            &mut self.state,
                            client,
                            &gateway,
                            now,
                        )
                        .await;
                        if let Err(e) = ran {
                            self.state.ime.inventory_due = Some(now + Duration::minutes(5));
                            return Err(e);
                        }
                        progressed = true;
                    }
                    // No gateway yet: the next check-in finds it.
                    None => self.state.ime.inventory_due = Some(now + Duration::minutes(5)),
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(done)
    }

    /// The user disconnects the device from management (Settings, Access work or
    /// school): a last session tells the server, then the enrollment and what management
    /// installed go.
    pub async fn unenroll(&mut self, now: DateTime<Utc>) -> Result<Vec<Activity>, AgentError> {
        crate::unenroll::request_by_user(&mut self.state);
        self.run_due(now).await
    }

    /// A session now, and whatever else is due.
    pub async fn sync(&mut self, now: DateTime<Utc>) -> Result<Vec<Activity>, AgentError> {
        self.trigger(ime::Trigger::CompanyPortal, now).await
    }

    /// A user signs in to Windows: they get an interactive session (numbered after
    /// those already signed in) and a hive; Windows' logon task opens a management
    /// session and the IME checks in (CheckinReason `UserLogOn`), processing the new
    /// user's apps in their session. Returns the session number.
    pub fn sign_in(&mut self, user: &User, now: DateTime<Utc>) -> Result<usize, AgentError> {
        if self.state.powered_off {
            return Err(AgentError::Config("the device is shut down".into()));
        }
        let plausible = syncml::entra::is_user_principal_name(&user.upn);
        if !plausible {
            return Err(AgentError::Config(format!(
                "{:?} is not a user principal name like bob@contoso.com",
                user.upn
            )));
        }
        if let Some(i) = self.signed_in(&user.upn) {
            return Err(AgentError::Config(format!(
                "{} is already signed in (session {})",
                user.upn,
                i + 1
            )));
        }
        self.device
            .registry
            .create_key(&format!(r"HKEY_USERS\{}\Software", user.sid()));
        self.state.users.push(user.clone());
        let session = self.state.users.len();
        ime::user_logged_on(&self.device, &mut self.state, user, session, now);
        self.state.sync_requested = true;
        self.save()?;
        Ok(session)
    }

    /// A user signs out: their session ends (the IME no longer processes it); what
    /// was installed for them stays. False if they were not signed in.
    pub fn sign_out(&mut self, upn: &str, now: DateTime<Utc>) -> Result<bool, AgentError> {
        let Some(i) = self.signed_in(upn) else {
            return Ok(false);
        };
        let user = self.state.users.remove(i);
        ime::user_logged_off(&self.device, &self.state, &user, i + 1, now);
        self.save()?;
        Ok(true)
    }

    /// The index of a signed-in user among [`AgentState::users`].
    fn signed_in(&self, upn: &str) -> Option<usize> {
        self.state
            .users
            .iter()
            .position(|u| u.upn.eq_ignore_ascii_case(upn.trim()))
    }

    /// The user installs an available app (by id or display name); false if no available
    /// app has that name.
    pub async fn install_available(
        &mut self,
        app: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AgentError> {
        if !self.state.ime.running {
            return Err(AgentError::Config(
                "the IME is not running on this device".into(),
            ));
        }
        let client = self.client()?;
        let found =
            ime::win32::install_available(&mut self.device, &mut self.state, &client, app, now)
                .await?;
        self.save()?;
        Ok(found)
    }

    /// Company Portal's list of the apps made available to the user, with their status
    /// on this device.
    pub async fn company_portal(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Vec<ime::win32::PortalApp>, AgentError> {
        if !self.state.ime.running {
            return Err(AgentError::Config(
                "the IME is not running on this device".into(),
            ));
        }
        let client = self.client()?;
        ime::win32::company_portal(&self.device, &self.state, &client, now).await
    }

    /// Restarts the device: pending reboots are done, the IME service starts again (and
    /// checks in) once Windows is back up ([`BOOT_TIME`] later, a gap in its log), and
    /// the device checks in with its management server.
    pub fn reboot(&mut self, now: DateTime<Utc>) -> Result<(), AgentError> {
        self.restart_windows(now);
        self.save()
    }

    /// Shuts the device down (Graph's `shutDown`): the IME service stops, and nothing
    /// runs (no session, no check-in, no health check) until [`Agent::power_on`].
    pub fn shut_down(&mut self, now: DateTime<Utc>) -> Result<(), AgentError> {
        self.stop_for_power_off(now);
        self.state.powered_off = true;
        self.save()
    }

    /// Powers a shut-down device on: it boots as after a restart.
    pub fn power_on(&mut self, now: DateTime<Utc>) -> Result<(), AgentError> {
        if !self.state.powered_off {
            return Err(AgentError::Config("the device is already on".into()));
        }
        self.state.powered_off = false;
        self.boot(now);
        self.save()
    }

    /// True while the device is shut down.
    pub fn is_powered_off(&self) -> bool {
        self.state.powered_off
    }

    /// True when the restart manager has something to do at `now`.
    fn restart_due(&self, now: DateTime<Utc>) -> bool {
        self.state
            .ime
            .restart
            .as_ref()
            .and_then(ime::restart::PendingRestart::next_due)
            .is_some_and(|t| t <= now)
    }

    /// The signed-in user answers the restart notification: restart now (the device
    /// restarts), or snooze it. Refused when no restart is pending, or the restart
    /// cannot be snoozed (no snooze set, the countdown has begun, already snoozed).
    pub fn answer_restart(
        &mut self,
        answer: ime::restart::Answer,
        now: DateTime<Utc>,
    ) -> Result<(), AgentError> {
        let restart = ime::restart::answer(&self.device, &mut self.state, answer, now)
            .map_err(AgentError::Config)?;
        if restart {
            self.restart_windows(now);
        }
        self.save()
    }

    /// Windows restarting: down, then booted again.
    fn restart_windows(&mut self, now: DateTime<Utc>) {
        self.stop_for_power_off(now);
        self.boot(now);
    }

    /// Windows going down: pending reboots are done and the IME service stops.
    fn stop_for_power_off(&mut self, now: DateTime<Utc>) {
        self.state.ime.reboot_pending = false;
        ime::restart::done(&mut self.device, &mut self.state);
        if self.state.ime.running {
            ime::stop(&mut self.device, &mut self.state, now);
        }
    }

    /// Windows coming up: the IME service starts [`BOOT_TIME`] later (and checks in),
    /// and the device checks in with its management server.
    fn boot(&mut self, now: DateTime<Utc>) {
        if self.state.ime.installed {
            ime::start(&mut self.device, &mut self.state, now + BOOT_TIME);
        }
        self.state.sync_requested = self.state.enrollment.is_some();
    }

    /// Stops the IME service (`Stop-Service IntuneManagementExtension`); it stays stopped
    /// until the device restarts, someone starts it, or the health check does.
    pub fn stop_ime(&mut self, now: DateTime<Utc>) -> Result<(), AgentError> {
        if !self.state.ime.installed {
            return Err(AgentError::Config(
                "the IME is not installed on this device".into(),
            ));
        }
        if self.state.ime.running {
            ime::stop(&mut self.device, &mut self.state, now);
        }
        self.save()
    }

    /// Restarts the IME service.
    pub fn restart_ime(&mut self, now: DateTime<Utc>) -> Result<(), AgentError> {
        ime::restart(&mut self.device, &mut self.state, now)?;
        self.save()
    }

    /// The poll schedule: the first set of sessions at the first interval, then the
    /// second set, then the remaining interval for ever.
    fn next_poll_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let Some(e) = &self.state.enrollment else {
            return now + Duration::hours(8);
        };
        let p = &e.poll;
        let n = self.state.sessions;
        let minutes = if n <= p.number_of_first_retries && p.interval_for_first_set_of_retries > 0 {
            p.interval_for_first_set_of_retries
        } else if n <= p.number_of_first_retries + p.number_of_second_retries
            && p.interval_for_second_set_of_retries > 0
        {
            p.interval_for_second_set_of_retries
        } else if p.interval_for_remaining_scheduled_retries > 0 {
            p.interval_for_remaining_scheduled_retries
        } else {
            480
        };
        now + Duration::minutes(i64::from(minutes))
    }

    /// What `status` shows.
    pub fn status(&self) -> StatusReport {
        let p = &self.device.profile;
        StatusReport {
            device_id: p.device_id.clone(),
            device_name: p.device_name.clone(),
            management_url: self.state.enrollment.as_ref().map(|e| e.addr.clone()),
            user: self.state.enrollment.as_ref().map(|e| e.upn.clone()),
            signed_in: self.state.users.clone(),
            last_session: self.state.last_session.clone(),
            next_poll: self.state.next_poll,
            ime: self.state.ime.clone(),
            installed_programs: self.device.installed_programs(),
            msi_jobs: self.state.msi_jobs.values().cloned().collect(),
        }
    }
}
