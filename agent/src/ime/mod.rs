//! The Intune Management Extension on the device: installed when the
//! EnterpriseDesktopAppManagement CSP installs its MSI, registered as the
//! `IntuneManagementExtension` Windows service, started (and restarted on upgrade),
//! logging to `IntuneManagementExtension.log` in CMTrace format.

pub mod esp;
pub mod gateway;
pub mod health;
pub mod inventory;
pub mod lines;
pub mod remediations;
pub mod restart;
pub mod rules;
pub mod scripts;
pub mod signature;
pub mod states;
pub mod win32;

use chrono::{DateTime, Utc};
use syncml::sim_msi::SimulatedMsi;

use crate::cmtrace::{self, Severity};
use crate::device::{Device, RegValue};
use crate::error::AgentError;
use crate::state::AgentState;

/// The IME MSI's product name: how the device recognises it.
pub const PRODUCT_NAME: &str = "Microsoft Intune Management Extension";
/// The service's registry key.
pub const SERVICE_KEY: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\IntuneManagementExtension";
/// The IME's program folder.
pub const PROGRAM_DIR: &str = r"C:\Program Files (x86)\Microsoft Intune Management Extension";
/// The main log.
pub const LOG: &str = "IntuneManagementExtension.log";

/// The thread ids the IME's workers write their lines under.
pub mod threads {
    /// The service itself (start, stop).
    pub const SERVICE: u32 = 1;
    /// The application poller (Win32 apps).
    pub const APP_POLLER: u32 = 14;
    /// The PowerShell poller (platform scripts).
    pub const POWERSHELL: u32 = 9;
    /// The status service (Company Portal, downloads).
    pub const STATUS_SERVICE: u32 = 26;
    /// HealthScripts (remediations).
    pub const HEALTH_SCRIPTS: u32 = 18;
}

/// Writes a line to one of the IME's logs, on the service's thread.
pub fn log(
    device: &Device,
    file: &str,
    component: &str,
    message: &str,
    severity: Severity,
    now: DateTime<Utc>,
) {
    log_on(
        device,
        file,
        component,
        message,
        severity,
        now,
        threads::SERVICE,
    );
}

/// A worker's pen: the lines it writes to one log, under its thread id, at a time that
/// advances with each step (a line takes a few milliseconds; a download or an
/// installer takes what [`Pen::spend`] says), so a check-in's lines are not all stamped
/// with one instant. Deterministic: the same steps give the same times.
#[derive(Debug, Clone)]
pub struct Pen {
    file: &'static str,
    component: &'static str,
    thread: u32,
    /// The time of the next line.
    pub at: DateTime<Utc>,
}

impl Pen {
    /// A pen for `file` starting at `now`.
    pub fn new(
        file: &'static str,
        component: &'static str,
        thread: u32,
        now: DateTime<Utc>,
    ) -> Pen {
        Pen {
            file,
            component,
            thread,
            at: now,
        }
    }

    /// Writes an informational line.
    pub fn info(&mut self, device: &Device, message: &str) {
        self.write(device, message, Severity::Info);
    }

    /// Writes a warning.
    pub fn warn(&mut self, device: &Device, message: &str) {
        self.write(device, message, Severity::Warning);
    }

    /// Writes an error.
    pub fn error(&mut self, device: &Device, message: &str) {
        self.write(device, message, Severity::Error);
    }

    /// Writes a line, then moves on by the time such a step takes (0.3 to 9 ms,
    /// from the line's length).
    pub fn write(&mut self, device: &Device, message: &str, severity: Severity) {
        log_on(
            device,
            self.file,
            self.component,
            message,
            severity,
            self.at,
            self.thread,
        );
        let micros = 300 + (message.len() as i64 * 37) % 8700;
        self.at += chrono::Duration::microseconds(micros);
    }

    /// Time passes (a download, an installer).
    pub fn spend(&mut self, took: chrono::Duration) {
        self.at += took;
    }
}

/// A process id for a run of `what` at `at` (a multiple of 4, as Windows gives them)
/// that a world replays.
pub fn process_id(what: &str, at: DateTime<Utc>) -> u32 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{what}|{at}").as_bytes());
    1000 + u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % 30_000 * 4
}

/// Writes a line to one of the IME's logs under a thread id.
pub fn log_on(
    device: &Device,
    file: &str,
    component: &str,
    message: &str,
    severity: Severity,
    now: DateTime<Utc>,
    thread: u32,
) {
    // The time columns (and a rolled file's name) are the device's local time.
    let local = device.profile.local(now);
    let line = cmtrace::format_line(message, local, component, severity, thread);
    let max = match device.profile.log_max_kb {
        0 => cmtrace::DEFAULT_MAX_BYTES,
        kb => kb * 1024,
    };
    if let Err(e) = cmtrace::append(&device.drive, file, &line, local, max) {
        tracing::warn!("cannot write {file}: {e}");
    }
}

/// Called for every MSI the CSP installs: the IME's installs (and upgrades) the
/// service and (re)starts it.
pub fn on_msi_installed(
    device: &mut Device,
    state: &mut AgentState,
    msi: &SimulatedMsi,
    now: DateTime<Utc>,
) {
    if msi.product_name != PRODUCT_NAME {
        return;
    }
    if state.ime.running {
        stop(device, state, now);
    }
    state.ime.installed = true;
    state.ime.version = msi.product_version.clone();
    let r = &mut device.registry;
    r.set(
        SERVICE_KEY,
        "DisplayName",
        RegValue::Sz(PRODUCT_NAME.into()),
    );
    r.set(
        SERVICE_KEY,
        "ImagePath",
        RegValue::ExpandSz(format!(
            "\"{PROGRAM_DIR}\\Microsoft.Management.Services.IntuneWindowsAgent.exe\""
        )),
    );
    r.set(SERVICE_KEY, "Start", RegValue::Dword(2));
    r.set(SERVICE_KEY, "Type", RegValue::Dword(16));
    r.set(
        SERVICE_KEY,
        "ObjectName",
        RegValue::Sz("LocalSystem".into()),
    );
    health::install(device, state, now);
    start(device, state, now);
}

/// Called for every MSI the CSP uninstalls: removing the IME's stops and removes the
/// service.
pub fn on_msi_removed(
    device: &mut Device,
    state: &mut AgentState,
    product_name: &str,
    now: DateTime<Utc>,
) {
    if product_name != PRODUCT_NAME {
        return;
    }
    if state.ime.running {
        stop(device, state, now);
    }
    state.ime.installed = false;
    state.ime.version.clear();
    state.ime.health_due = None;
    device.registry.delete_key(SERVICE_KEY);
}

/// Starts the service; it checks in for policy at once (CheckinReason AgentRestart).
pub fn start(device: &mut Device, state: &mut AgentState, now: DateTime<Utc>) {
    state.ime.running = true;
    state.ime.started_at = Some(now);
    state.ime.next_checkin = Some(now);
    state.ime.checkin_reason = "AgentRestart".into();
    state.ime.inventory_due = Some(now);
    if state.ime.health_due.is_none() {
        state.ime.health_due = Some(health::next_evaluation(&device.profile.device_id, now));
    }
    log(
        device,
        LOG,
        "IntuneManagementExtension",
        lines::EMS_STARTED,
        Severity::Info,
        now,
    );
    let version = format!(
        "[Agent] Intune Management Extension version {}",
        state.ime.version
    );
    log(
        device,
        LOG,
        "IntuneManagementExtension",
        &version,
        Severity::Info,
        now,
    );
}

/// Stops the service.
pub fn stop(device: &mut Device, state: &mut AgentState, now: DateTime<Utc>) {
    state.ime.running = false;
    log(
        device,
        LOG,
        "IntuneManagementExtension",
        lines::EMS_STOPPED,
        Severity::Info,
        now,
    );
}

/// Restarts the service (`Restart-Service IntuneManagementExtension`).
pub fn restart(
    device: &mut Device,
    state: &mut AgentState,
    now: DateTime<Utc>,
) -> Result<(), AgentError> {
    if !state.ime.installed {
        return Err(AgentError::Config(
            "the IME is not installed on this device".into(),
        ));
    }
    if state.ime.running {
        stop(device, state, now);
    }
    start(device, state, now);
    Ok(())
}

/// When the IME next wants to run: its hourly check-in, an app's retry, an inventory or
/// a remediation (while the service runs), or the daily health evaluation (while it is
/// installed).
pub fn next_due(state: &AgentState) -> Option<DateTime<Utc>> {
    let service = |t: Option<DateTime<Utc>>| t.filter(|_| state.ime.running);
    [
        checkin_due(state),
        state
            .ime
            .restart
            .as_ref()
            .and_then(restart::PendingRestart::next_due),
        state.esp.as_ref().map(|e| e.deadline),
        service(state.ime.inventory_due),
        service(remediations::next_due(state)),
        health::next_due(state),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// When the IME next wants a policy check-in (its schedule, or an app's retry).
pub fn checkin_due(state: &AgentState) -> Option<DateTime<Utc>> {
    if !state.ime.running {
        return None;
    }
    let app_only = (state.ime.app_checkin_requested || state.ime.compliance_check_requested)
        .then_some(DateTime::<Utc>::MIN_UTC);
    [state.ime.next_checkin, win32::next_retry(state), app_only]
        .into_iter()
        .flatten()
        .min()
}

/// Asks for a full policy check-in now (scripts, remediations and apps).
pub fn request_checkin(state: &mut AgentState, reason: &str) {
    if state.ime.running {
        state.ime.next_checkin = Some(DateTime::<Utc>::MIN_UTC);
        state.ime.checkin_reason = reason.into();
    }
}

/// An `[Agent]` line of the service's in IntuneManagementExtension.log.
fn agent_says(device: &Device, line: &str, now: DateTime<Utc>) {
    let component = "IntuneManagementExtension";
    log(device, LOG, component, line, Severity::Info, now);
}

/// A user signed in (session `session`): the IME, when running, logs it and checks in
/// with CheckinReason `UserLogOn`.
pub fn user_logged_on(
    device: &Device,
    state: &mut AgentState,
    user: &crate::device::User,
    session: usize,
    now: DateTime<Utc>,
) {
    if !state.ime.running {
        return;
    }
    agent_says(
        device,
        &lines::user_logged_on(&user.object_id, session),
        now,
    );
    request_checkin(state, "UserLogOn");
}

/// A user signed out: the IME, when running, logs it.
pub fn user_logged_off(
    device: &Device,
    state: &AgentState,
    user: &crate::device::User,
    session: usize,
    now: DateTime<Utc>,
) {
    if state.ime.running {
        agent_says(
            device,
            &lines::user_logged_off(&user.object_id, session),
            now,
        );
    }
}

/// What makes a device, or its IME, check in now (seed slides 48-55).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Sync from the admin center: the service's push; the device opens a management
    /// session and the IME checks in (CheckinReason `Notification`).
    AdminSync,
    /// Sync from Company Portal (or Settings, Access work or school): a management
    /// session and an IME check-in the user asked for (`OnDemand`).
    CompanyPortal,
    /// `intunemanagementextension://syncapp` from the Start menu, or
    /// `Start-Process intunemanagementextension://syncapp` in a script: the IME checks
    /// in for app policy only (`OnDemand`; no scripts, no remediations, no management
    /// session).
    SyncApp,
    /// `intunemanagementextension://synccompliance`: the IME runs its custom compliance
    /// discovery scripts at once and reports them (`OnDemand`; nothing else).
    SyncCompliance,
}

impl Trigger {
    /// Every trigger, by the name the CLI and scenarios use.
    pub const ALL: [(&'static str, Trigger); 4] = [
        ("admin-sync", Trigger::AdminSync),
        ("company-portal", Trigger::CompanyPortal),
        ("syncapp", Trigger::SyncApp),
        ("synccompliance", Trigger::SyncCompliance),
    ];

    /// A trigger by name (`admin-sync`, `company-portal`, `syncapp`, `synccompliance`).
    pub fn parse(name: &str) -> Option<Trigger> {
        Trigger::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, t)| *t)
    }

    /// The CheckinReason of the IME check-in it causes.
    pub fn checkin_reason(self) -> &'static str {
        match self {
            Trigger::AdminSync => "Notification",
            Trigger::CompanyPortal | Trigger::SyncApp | Trigger::SyncCompliance => "OnDemand",
        }
    }
}

/// The IME takes a trigger: it logs it and asks for the check-in it calls for (a
/// stopped service hears nothing). The device's own management session is the agent's
/// part ([`crate::Agent::trigger`]).
pub fn take_trigger(device: &Device, state: &mut AgentState, trigger: Trigger, now: DateTime<Utc>) {
    if !state.ime.running {
        return;
    }
    let reason = trigger.checkin_reason();
    let line = match trigger {
        Trigger::SyncApp => lines::syncapp_requested(),
        Trigger::SyncCompliance => lines::synccompliance_requested(),
        _ => lines::checkin_requested(reason),
    };
    agent_says(device, &line, now);
    match trigger {
        Trigger::SyncApp => {
            state.ime.app_checkin_requested = true;
            state.ime.checkin_reason = reason.into();
        }
        Trigger::SyncCompliance => {
            state.ime.compliance_check_requested = true;
            state.ime.checkin_reason = reason.into();
        }
        _ => request_checkin(state, reason),
    }
}
