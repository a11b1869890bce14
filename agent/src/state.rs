//! What the agent itself remembers (beside the device model): its enrollment, session
//! counter and schedule, the generic DM tree nodes, EnterpriseDesktopAppManagement
//! jobs, alerts waiting to be sent and the IME service. Kept in `state.json`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use syncml::msi_job::MsiInstallJob;

/// The agent's own state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentState {
    /// Set once enrolled.
    pub enrollment: Option<Enrollment>,
    /// Management sessions started since enrollment.
    pub sessions: u32,
    /// When the poll schedule wants the next session.
    pub next_poll: Option<DateTime<Utc>>,
    /// A push or a user asked for a session now.
    pub sync_requested: bool,
    /// The last session's summary.
    pub last_session: Option<SessionSummary>,
    /// Generic DM tree nodes by URI.
    pub nodes: BTreeMap<String, Node>,
    /// EnterpriseDesktopAppManagement MSI jobs by product id (upper case, braces).
    pub msi_jobs: BTreeMap<String, MsiJob>,
    /// Alerts to send at the next session.
    pub pending_alerts: Vec<PendingAlert>,
    /// The IME service.
    pub ime: ImeService,
    /// The server asked the device to leave management (retire or wipe): done when the
    /// session that asked ends.
    pub leaving: Option<Leaving>,
    /// Shut down (Graph's `shutDown`): nothing runs until the device is powered on.
    pub powered_off: bool,
    /// The users signed in, in sign-in order (user session 1, 2, ...). A new device's
    /// primary user starts signed in.
    pub users: Vec<crate::device::User>,
    /// The Enrollment Status Page under way.
    pub esp: Option<crate::ime::esp::Esp>,
    /// How the ESP ended, once it has (it runs once per device).
    pub esp_outcome: Option<crate::ime::esp::EspOutcome>,
    /// The toasts the IME showed, oldest first (the last [`crate::ime::restart::KEPT`]).
    pub notifications: Vec<crate::ime::restart::Notification>,
}

/// How a device leaves management.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Leaving {
    /// Retire: DMClient's `Provider/{ProviderID}/Unenroll`. The enrollment goes, with
    /// what management put there: the MSIs of EnterpriseDesktopAppManagement (the IME
    /// among them) and the IME's own state; the user's data and other programs stay.
    Retire,
    /// Wipe: RemoteWipe's `doWipe`. Windows resets: nothing of the device's state is
    /// kept but its hardware identity.
    Wipe,
}

/// What enrollment provisioned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Enrollment {
    /// The enrollment's id (the `Enrollments\<guid>` key).
    pub id: String,
    /// The discovery URL enrolled against.
    pub discovery_url: String,
    /// The management URL (provisioning ADDR).
    pub addr: String,
    /// The provider id.
    pub provider_id: String,
    /// CAs to trust for the server, PEM (the one given at enrollment and the
    /// provisioned root).
    pub trusted_ca_pem: Vec<String>,
    /// The client certificate, base64 DER.
    pub cert_b64: String,
    /// Its private key, base64 PKCS#8.
    pub key_b64: String,
    /// Its thumbprint.
    pub thumbprint: String,
    /// APPAUTH CLIENT name, secret and current nonce (base64).
    pub client_name: String,
    /// APPAUTH CLIENT secret.
    pub client_secret: String,
    /// The nonce the next digest uses.
    pub client_nonce: String,
    /// Poll schedule.
    pub poll: syncml::provisioning::PollSettings,
    /// The user who enrolled.
    pub upn: String,
    /// When.
    pub enrolled_at: DateTime<Utc>,
    /// Use the digest instead of the client certificate on management sessions.
    pub digest_only: bool,
}

/// A finished management session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    /// When it started.
    pub at: DateTime<Utc>,
    /// The SessionID.
    pub session_id: String,
    /// Messages the device sent.
    pub messages: u32,
    /// Commands the server sent.
    pub commands: u32,
    /// `completed`, or what went wrong.
    pub outcome: String,
}

/// A generic DM tree node.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Node {
    /// Meta Format (`chr`, `int`, `node`, ...).
    pub format: String,
    /// Meta Type.
    pub type_: String,
    /// The value (empty for interior nodes).
    pub data: String,
}

/// An MSI job of the EnterpriseDesktopAppManagement CSP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MsiJob {
    /// `{ProductID}`, upper case with braces.
    pub product_id: String,
    /// `Device` or `User`.
    pub scope: String,
    /// The DownloadInstall URI as the server addressed it (for the completion alert).
    pub uri: String,
    /// The job, once Exec delivered one.
    pub job: Option<MsiInstallJob>,
    /// Status: 10, 20, 25, 30, 40, 48, 50, 55, 60, 70.
    pub status: u32,
    /// LastError (HRESULT or exit code).
    pub last_error: i64,
    /// LastErrorDesc.
    pub last_error_desc: String,
    /// Download attempts so far.
    pub download_attempts: u32,
    /// Install attempts so far.
    pub install_attempts: u32,
    /// When the next step is due.
    pub next_attempt: Option<DateTime<Utc>>,
    /// The URL being downloaded.
    pub current_url: String,
    /// Where the downloaded MSI is (Windows path).
    pub download_path: String,
    /// Installed product's name, publisher, version, date.
    pub name: String,
    /// Publisher.
    pub publisher: String,
    /// Version.
    pub version: String,
    /// InstallDate (YYYYMMDD).
    pub install_date: String,
}

/// An alert to send in the next session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingAlert {
    /// Alert code (1226 generic).
    pub code: String,
    /// Item Source LocURI.
    pub source: String,
    /// Meta Type.
    pub type_: String,
    /// Meta Format.
    pub format: String,
    /// Meta Mark.
    pub mark: String,
    /// Data.
    pub data: String,
}

/// The IME Windows service.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ImeService {
    /// Installed by its MSI.
    pub installed: bool,
    /// The installed version.
    pub version: String,
    /// Running.
    pub running: bool,
    /// When it last started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the next policy check-in is due.
    pub next_checkin: Option<DateTime<Utc>>,
    /// When the application poller last ran (its reevaluation check-in time).
    pub last_poll: Option<DateTime<Utc>>,
    /// The CheckinReason of the next check-in.
    pub checkin_reason: String,
    /// `intunemanagementextension://syncapp` asked for an app-only check-in.
    #[serde(default)]
    pub app_checkin_requested: bool,
    /// `intunemanagementextension://synccompliance` asked for the compliance
    /// discovery scripts at once.
    #[serde(default)]
    pub compliance_check_requested: bool,
    /// The gateway's URL, once discovered.
    pub gateway_url: Option<String>,
    /// Per Win32 app: retries in progress.
    pub apps: BTreeMap<String, AppRun>,
    /// An app's hard-reboot exit code: no further Win32 installs until the device restarts.
    pub reboot_pending: bool,
    /// A restart an install asked for (its grace period, snoozes and countdown).
    pub restart: Option<crate::ime::restart::PendingRestart>,
    /// When each installed app's subgraph was last evaluated (ReevaluationScheduleManager).
    pub evaluated: BTreeMap<String, DateTime<Utc>>,
    /// Per platform script: the version last run and how it went.
    pub scripts: BTreeMap<String, ScriptRun>,
    /// Per remediation: the policy as last received and its schedule.
    pub remediations: BTreeMap<String, RemediationRun>,
    /// When the next client health evaluation is due (daily, after a random delay).
    pub health_due: Option<DateTime<Utc>>,
    /// When the next inventory is due (at service start, then every 24 hours).
    pub inventory_due: Option<DateTime<Utc>>,
    /// When the last full inventory was taken.
    pub last_full_inventory: Option<DateTime<Utc>>,
    /// Result reports on their way to the gateway.
    pub outbox: Outbox,
}

/// The IME's result reports on their way: what waits for the gateway's acknowledgement,
/// and how many entries it acknowledged (the testbed holds the journal against it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Outbox {
    /// Reports not acknowledged yet, oldest first: sent again, with the same
    /// `ReportId`s, before the next report.
    pub waiting: Vec<UnsentReport>,
    /// Reports made, ever: each report's number goes into its entries' `ReportId`s, so
    /// two reports never share one, even with the same words at the same moment.
    pub made: u64,
    /// Result entries the gateway acknowledged, ever.
    pub acknowledged: u64,
}

/// A result report waiting for the gateway's acknowledgement.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct UnsentReport {
    /// `Win32AppResult`, `PolicyResult` or `HealthScriptResult`.
    pub request: String,
    /// The entries, each with its `ReportId`.
    pub payload: serde_json::Value,
}

/// What the IME remembers of a remediation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RemediationRun {
    /// The policy as `GetScript` last gave it (a change reschedules it).
    pub policy: serde_json::Value,
    /// When it next runs (`None`: a run-once remediation that ran).
    pub next_run: Option<DateTime<Utc>>,
    /// Runs of this version.
    pub runs: u32,
}

/// What the IME remembers of a platform script.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ScriptRun {
    /// SHA-256 of the script text last run.
    pub hash: String,
    /// Runs of this text.
    pub runs: u32,
    /// Whether the last run succeeded.
    pub succeeded: bool,
}

/// What the IME remembers of a Win32 app between check-ins (beside the registry).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AppRun {
    /// Install attempts in the current retry cycle.
    pub attempts: u32,
    /// When the next quick retry (retry-type exit code) is due.
    pub next_retry: Option<DateTime<Utc>>,
    /// When the app's start time or deadline comes (the IME wakes for it).
    pub wake_at: Option<DateTime<Utc>>,
    /// The last policy received.
    pub policy: serde_json::Value,
}
