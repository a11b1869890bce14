//! Every line the simulated IME writes about Win32 apps and platform scripts, in the
//! real IME's words (spec `ime.md` section 12), one named builder per line. Log
//! analysers written for real devices key on these shapes; a test holds each against
//! the spec, and a reader finds here every line the IME can write.
//!
//! Where the public record gives no wording, the line keeps the IME's voice: bracketed
//! component prefixes and its own nouns (poller, subgraph, enforcement, reporting state).

use chrono::{DateTime, Utc};

/// The poller's framing line: `starts` or `stopped`.
fn poller(what: &str) -> String {
    let bar = "-----------------------------------------------------";
    format!("[Win32App] {bar} application poller {what}. {bar} ")
}

/// `[Win32App] ... application poller starts. ...`
pub fn poller_starts() -> String {
    poller("starts")
}

/// `[Win32App] ... application poller stopped. ...`
pub fn poller_stopped() -> String {
    poller("stopped")
}

/// How many user sessions the poller processes.
pub fn active_user_sessions(n: usize) -> String {
    format!("[Win32App] Got {n} active user sessions")
}

fn user_session(what: &str, session: u32, user: &str, sid: &str) -> String {
    let dots = ".....................";
    format!(
        "[Win32App] {dots} {what} user session {session}, userId: {user}, userSID: {sid} {dots} "
    )
}

/// A user session's processing begins (session 0: the userless device session).
pub fn processing_user_session(session: u32, user: &str, sid: &str) -> String {
    user_session("Processing", session, user, sid)
}

/// A user session's processing ends.
pub fn completed_user_session(session: u32, user: &str, sid: &str) -> String {
    user_session("Completed", session, user, sid)
}

/// The Enrollment Status Page phase: `NotInEsp`, `DeviceSetup` or `AccountSetup`.
pub fn esp_phase(phase: &str) -> String {
    format!("[Win32App] The EspPhase: {phase} in session")
}

/// The ESP began (Tenantless's wording in the IME's voice).
pub fn esp_started(minutes: i64, apps: usize) -> String {
    format!("[Agent] The Enrollment Status Page is tracking {apps} Win32 app(s) in DeviceSetup; it times out in {minutes} minutes. Checking in with CheckinReason ESP.")
}

/// A phase of the ESP is done.
pub fn esp_phase_done(phase: &str, next: &str) -> String {
    format!("[Agent] The Enrollment Status Page's {phase} phase is complete; moving on to {next}.")
}

/// The ESP ended well.
pub fn esp_done(reason: &str) -> String {
    format!(
        "[Agent] The Enrollment Status Page is complete: {reason}. The EspPhase is now NotInEsp."
    )
}

/// The ESP failed.
pub fn esp_failed(reason: &str) -> String {
    format!("[Agent] The Enrollment Status Page failed: {reason}. The EspPhase is now NotInEsp.")
}

/// Only the ESP's blocking apps are processed in this phase.
pub fn esp_deferred(count: usize, phase: &str) -> String {
    format!("[Win32App] {count} app(s) not tracked by the ESP are deferred until the EspPhase {phase} ends.")
}

/// What the poller asks the service for.
pub enum Requested {
    /// A scheduled check-in: required apps.
    Required,
    /// Company Portal's view: available apps only.
    Available,
    /// An install the user asked for.
    Selected,
}

/// `[Win32App] Requesting required apps` and its siblings.
pub fn requesting(what: Requested) -> String {
    match what {
        Requested::Required => "[Win32App] Requesting required apps".into(),
        Requested::Available => "[Win32App] Requesting available apps only".into(),
        Requested::Selected => "[Win32App] Requesting selected apps".into(),
    }
}

/// The policy list as the service sent it (no component prefix).
pub fn get_policies(json: &str) -> String {
    format!("Get policies = {json}")
}

/// How many Win32 apps the policy list holds for a user's session.
pub fn got_apps(n: usize, user: &str, session: u32) -> String {
    format!("[Win32App] Got {n} Win32App(s) for user {user} in session {session}")
}

/// `[Win32App][V3Processor] Processing <n> subgraphs.`
pub fn processing_subgraphs(n: usize) -> String {
    format!("[Win32App][V3Processor] Processing {n} subgraphs.")
}

/// The app ids of the subgraph processed next.
pub fn processing_subgraph(ids: &[&str]) -> String {
    format!(
        "[Win32App][V3Processor] Processing subgraph with app ids: {}",
        ids.join(", ")
    )
}

/// A subgraph is done.
pub fn done_subgraph() -> String {
    "[Win32App][V3Processor] Done processing subgraph.".into()
}

/// All subgraphs are done.
pub fn done_subgraphs(n: usize) -> String {
    format!("[Win32App][V3Processor] Done processing {n} subgraphs.")
}

/// The IME's way of writing a time in these lines: `M/d/yyyy h:mm:ss AM`.
pub fn local_time(t: DateTime<Utc>) -> String {
    t.format("%-m/%-d/%Y %-I:%M:%S %p").to_string()
}

/// The last check-in's time, as the reevaluation schedule manager found it.
pub fn previous_checkin(t: DateTime<Utc>) -> String {
    format!(
        "[Win32App][ReevaluationScheduleManager] Found previous reevaluation check-in time value: {}.",
        local_time(t)
    )
}

/// The subgraph's last evaluation, as found under its hash.
pub fn previous_subgraph_evaluation(t: DateTime<Utc>, hash: &str) -> String {
    format!(
        "[Win32App][ReevaluationScheduleManager] Found previous subgraph reevaluation time value: {} at key {hash}.",
        local_time(t)
    )
}

/// The subgraph was evaluated within its reevaluation interval: skipped.
pub fn reevaluation_not_expired(hash: &str) -> String {
    format!("[Win32App][ReevaluationScheduleManager] Subgraph reevaluation interval is not expired, subgraph will be skipped. | Hash = {hash}")
}

/// The subgraph's reevaluation interval passed: it is processed.
pub fn reevaluation_expired(hash: &str) -> String {
    format!("[Win32App][ReevaluationScheduleManager] Subgraph reevaluation interval is expired, subgraph will be processed. | Hash = {hash}")
}

/// The GRS has no value for the app: treated as expired.
pub fn grs_none(id: &str, hash: &str) -> String {
    format!("[Win32App][GRSManager] App with id: {id} has no recorded GRS value which will be treated as expired. | Hash = {hash}")
}

/// The app's GRS value, as found in the registry.
pub fn grs_found(stamp: &str, user: &str, hash: &str, id: &str) -> String {
    format!("[Win32App][GRSManager] Found GRS value: {stamp} at key {user}\\GRS\\{hash}\\{id}.")
}

/// The app's GRS time passed: it is enforced again.
pub fn grs_expired(id: &str, hash: &str) -> String {
    format!("[Win32App][GRSManager] App with id: {id} is expired. | Hash = {hash}")
}

/// The app's GRS time has not passed: it waits.
pub fn grs_not_expired(id: &str, hash: &str) -> String {
    format!("[Win32App][GRSManager] App with id: {id} is not expired. | Hash = {hash}")
}

/// The app waits in the GRS, but the user asked for it.
pub fn grs_enforced_by_intent(id: &str, hash: &str) -> String {
    format!("[Win32App][GRSManager] App with id: {id} is not expired but will be enforced due to targeting intent on the subgraph. | Hash = {hash}")
}

/// What the action processor knew when it decided about an app.
pub struct Decision<'a> {
    /// The app's id.
    pub id: &'a str,
    /// `RequiredInstall`, `AvailableInstall` or `RequiredUninstall`.
    pub intent: &'a str,
    /// `Present` or `NotPresent`.
    pub desired: &'a str,
    /// `Detected` or `NotDetected`.
    pub detection: &'a str,
    /// `Applicable` or the reason it is not.
    pub applicability: &'a str,
    /// `Clean` or the pending reboot.
    pub reboot: &'a str,
    /// The assignment's start time (local).
    pub start: DateTime<Utc>,
    /// The assignment's deadline (local).
    pub deadline: DateTime<Utc>,
    /// The GRS expired (or held nothing).
    pub grs_expired: bool,
}

/// The decision record (one message over several lines).
pub fn decision(d: &Decision<'_>) -> String {
    format!(
        "[Win32App][ActionProcessor] App with id: {}, effective intent: {}, and enforceability: Enforceable has projected enforcement classification: EnforcementPoint with desired state: {}. Current state is:\nDetection = {}\nApplicability =  {}\nReboot = {}\nLocal start time = {}\nLocal deadline time = {}\nGRS expired = {}",
        d.id,
        d.intent,
        d.desired,
        d.detection,
        d.applicability,
        d.reboot,
        local_time(d.start),
        local_time(d.deadline),
        if d.grs_expired { "True" } else { "False" },
    )
}

/// Nothing to do for an app.
pub fn no_action(id: &str) -> String {
    format!("[Win32App][ActionProcessor] No action required for app with id: {id}.")
}

/// The detection action handler's result.
pub fn detection_result(id: &str, detected: bool) -> String {
    format!(
        "[Win32App][DetectionActionHandler] Detection for policy with id: {id} resulted in action status: Success and detection state: {}.",
        if detected { "Detected" } else { "NotDetected" }
    )
}

/// The detection rules could not be evaluated (none, unreadable, or of an unknown
/// type): the app's state is Unknown (ComplianceState 5).
pub fn detection_unknown(id: &str) -> String {
    format!("[Win32App][DetectionActionHandler] Detection for policy with id: {id} resulted in action status: Failed and detection state: Unknown.")
}

/// The applicability action handler's result.
pub fn applicability_result(id: &str, state: &str) -> String {
    format!("[Win32App][ApplicabilityActionHandler] Applicability check for policy with id: {id} resulted in action status: Success and applicability state: {state}.")
}

/// A JSON object with its keys in the order given (the IME's serialiser keeps the
/// declaration order; a map would sort them).
pub fn object(fields: &[(&str, serde_json::Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// `{"<field>":{"OldValue":<old>,"NewValue":<new>},...}`, one entry per field.
fn report_delta(fields: &[(&str, serde_json::Value, serde_json::Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(field, old, new)| {
            let change = object(&[("OldValue", old.clone()), ("NewValue", new.clone())]);
            format!("{}:{change}", serde_json::Value::from(*field))
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

fn delta(field: &str, old: Option<&str>, new: &str) -> String {
    report_delta(&[(field, old.into(), new.into())])
}

/// The reporting state's detection state changed.
pub fn detection_delta(id: &str, old: Option<&str>, new: &str) -> String {
    format!(
        "[Win32App][ReportingManager] Detection state for app with id: {id} has been updated. Report delta: {}",
        delta("DetectionState", old, new)
    )
}

/// The reporting state's applicability state changed.
pub fn applicability_delta(id: &str, old: Option<&str>, new: &str) -> String {
    format!(
        "[Win32App][ReportingManager] Applicability state for app with id: {id} has been updated. Report delta: {}",
        delta("ApplicabilityState", old, new)
    )
}

/// The reporting state's execution state changed.
pub fn execution_delta(id: &str, old: Option<(&str, i64)>, new: (&str, i64)) -> String {
    let report = report_delta(&[
        ("EnforcementState", old.map(|o| o.0).into(), new.0.into()),
        (
            "EnforcementErrorCode",
            old.map(|o| o.1).into(),
            new.1.into(),
        ),
    ]);
    format!("[Win32App][ReportingManager] Execution state for app with id: {id} has been updated. Report delta: {report}")
}

/// The reporting state's download state changed.
pub fn download_delta(id: &str, old: Option<&str>, new: &str) -> String {
    format!(
        "[Win32App][ReportingManager] Download state for app with id: {id} has been updated. Report delta: {}",
        delta("DownloadState", old, new)
    )
}

/// The app's reporting state, loaded from the store at the start of its processing.
pub fn reporting_loaded(id: &str, state: &str) -> String {
    format!("[Win32App][ReportingManager] App with id: {id} and prior AppAuthority: V3 has been loaded and reporting state initialized. ReportingState: {state}")
}

/// No reporting state stored yet for the app.
pub fn reporting_initialized(id: &str, state: &str) -> String {
    format!("[Win32App][ReportingManager] App with id: {id} could not be loaded from store. Reporting state initialized with initial values. ReportingState: {state}")
}

/// What Company Portal is told.
pub fn company_portal_status(report: &str) -> String {
    format!(
        "[Win32App][ReportingManager] Sending status to company portal based on report: {report}"
    )
}

/// The status service answers Company Portal.
pub fn status_returned(
    user: &str,
    id: &str,
    applicability: &str,
    status: &str,
    code: i64,
) -> String {
    format!("[StatusService] Returning status to user with id: {user} for V3-managed app with id: {id} and install context: System. Applicability: {applicability}, Status: {status}, ErrorCode: {code}")
}

/// The enforcement handler starts.
pub fn handler_invoked(execution: &str, id: &str, version: i64) -> String {
    format!("[Win32App] Handler invoked with execution type: {execution} for policy with id: {id} and version: {version}.")
}

/// The install behaviour and intent of the enforcement.
pub fn step_install_behavior(behavior: &str, intent: i64) -> String {
    format!("[Win32App] ===Step=== InstallBehavior {behavior}, Intent {intent}")
}

/// The download begins.
pub fn downloading(session: u32, id: &str) -> String {
    format!("[Win32App] Downloading app on session {session}. App: {id}")
}

/// No cached content: it is downloaded.
pub fn cache_miss(id: &str, name: &str) -> String {
    format!("[Win32App] Content cache miss for app (id = {id}, name {name}), download it")
}

/// Delivery Optimization's progress.
pub fn do_progress(id: &str, name: &str, done: u64, total: u64, user: &str) -> String {
    format!("[StatusService] Downloading app (id = {id}, name {name}) via DO, bytes {done}/{total} for user {user}")
}

/// Delivery Optimization finished the job.
pub fn do_complete() -> String {
    "[Win32App] Notified DO Service the job is complete.".into()
}

/// The content comes straight from the CDN.
pub fn cdn_url(url: &str) -> String {
    format!("[Win32App] ExternalCDN mode, content raw URL is {url}")
}

/// The CDN download is done.
pub fn cdn_done() -> String {
    "[Win32App] CDN mode, download completes.".into()
}

/// The content is cached already.
pub fn cache_found(id: &str) -> String {
    format!("[Win32App] Content cache found for app id {id}")
}

/// The downloaded file's size.
pub fn downloaded_size(bytes: u64) -> String {
    format!("[Win32App] Downloaded file size {bytes}")
}

/// How long the download took.
pub fn downloaded_time(ms: i64) -> String {
    format!("[Win32App] Downloaded file time {ms}")
}

/// The encrypted file's hash check begins.
pub fn verifying_hash() -> String {
    "Starts verifying encrypted hash".into()
}

/// The hash matched.
pub fn hash_pass() -> String {
    "[Win32App] file hash validation pass, starts decrypting".into()
}

/// The content is decrypted.
pub fn decryption_done() -> String {
    "[Win32App] Decryption is done successfully.".into()
}

/// The content is unzipped into the IMECache.
pub fn start_unzipping() -> String {
    "Start unzipping".into()
}

/// The staging file is removed.
pub fn cleaning_staging(path: &str) -> String {
    format!("Cleaning up staging content {path}")
}

/// The content failed (download, hash or decryption).
pub fn content_failed(id: &str, why: &str) -> String {
    format!("[Win32App] Failed to download or stage content for app with id: {id}. Error: {why}")
}

/// The attempt number of the installer run.
pub fn execute_retry(n: u32) -> String {
    format!("[Win32App] ===Step=== Execute retry {n}")
}

/// The installer process was created.
pub fn installer_created() -> String {
    "[Win32App] Create installer process successfully.".into()
}

/// The installer's command line (the IME's own words for launching it).
pub fn launch_installer(session: &str, line: &str) -> String {
    format!("[Win32App] Launch Win32AppInstaller in {session} session, command line: {line}")
}

/// The installer's process id.
pub fn process_id(pid: u32) -> String {
    format!("[Win32App] process id = {pid}")
}

/// The installer's timeout.
pub fn installer_timeout(ms: u64) -> String {
    format!("[Win32App] Installer process timeout milliseconds: {ms}")
}

/// The installer ended.
pub fn installation_done() -> String {
    "[Win32App] Installation is done, collecting result".into()
}

/// The installer's exit code (nothing after the number).
pub fn exit_code(code: i64) -> String {
    format!("[Win32App] lpExitCode {code}")
}

/// The exit code's meaning from the app's return codes.
pub fn exit_code_defined(kind: &str) -> String {
    format!("[Win32App] lpExitCode is defined as {kind}")
}

/// The exit code is not in the app's return codes.
pub fn exit_code_unmapped(code: i64, id: &str) -> String {
    format!("[Win32App] Admin did NOT set mapping for lpExitCode: {code} of app: {id}")
}

/// A hard reboot is pending: no more installs.
pub fn reboot_pending(id: &str) -> String {
    format!("[Win32App] A hard reboot is pending, app with id: {id} will be enforced after the device restarts.")
}

/// The retry of a "retry" exit code is scheduled.
pub fn retry_scheduled(id: &str, attempt: u32, of: u32, next: DateTime<Utc>) -> String {
    format!(
        "[Win32App] App with id: {id} will be retried at {} (attempt {attempt} of {of}).",
        local_time(next)
    )
}

/// The app failed and waits in the GRS.
pub fn grs_recorded(id: &str, hash: &str, at: DateTime<Utc>) -> String {
    format!(
        "[Win32App][GRSManager] Saving GRS value: {} for app with id: {id}. | Hash = {hash}",
        local_time(at)
    )
}

/// The app was installed by the installer but detection does not find it.
pub fn not_detected_after_install(id: &str) -> String {
    format!("[Win32App] Detection for app with id: {id} did not find the app after a successful installation.")
}

/// A sync reached the IME (the admin center's push, Company Portal): a full check-in
/// follows. The public record has no line for it; this one is Tenantless's, in the
/// service's `[Agent]` voice.
pub fn checkin_requested(reason: &str) -> String {
    format!("[Agent] Received a sync request, checking in with CheckinReason {reason}.")
}

/// `intunemanagementextension://synccompliance` reached the IME (Tenantless's wording).
pub fn synccompliance_requested() -> String {
    "[Agent] Received intunemanagementextension://synccompliance, running the compliance discovery scripts now."
        .to_owned()
}

/// `intunemanagementextension://syncapp` reached the IME: an app-only check-in follows
/// (Tenantless's wording, as for [`checkin_requested`]).
pub fn syncapp_requested() -> String {
    "[Agent] Received intunemanagementextension://syncapp, checking in for app policy only."
        .to_owned()
}

/// A user signed in to Windows: the IME checks in for them (Tenantless's wording, as
/// for [`checkin_requested`]).
pub fn user_logged_on(user: &str, session: usize) -> String {
    format!("[Agent] User {user} logged on in session {session}, checking in with CheckinReason UserLogOn.")
}

/// A user signed out: their session is no longer processed (Tenantless's wording).
pub fn user_logged_off(user: &str, session: usize) -> String {
    format!("[Agent] User {user} logged off from session {session}.")
}

/// `EMS Agent Started`
pub const EMS_STARTED: &str = "EMS Agent Started";
/// `EMS Agent Stopped`
pub const EMS_STOPPED: &str = "EMS Agent Stopped";

/// Before the assignment's start time: detection and a report, nothing else.
pub fn not_started(id: &str, start: DateTime<Utc>) -> String {
    format!(
        "[Win32App][ActionProcessor] App with id: {id} is not available before its start time {}. Only detection is reported.",
        local_time(start)
    )
}

/// A required app's assignment is gone: its state is set to Cleanup (ComplianceState 100).
pub fn no_longer_targeted(id: &str) -> String {
    format!("[Win32App][ActionProcessor] App with id: {id} is no longer targeted. Its reporting state is set to Cleanup.")
}

/// Between start time and deadline: the content is cached, the install waits.
pub fn install_pending(id: &str, deadline: DateTime<Utc>) -> String {
    format!(
        "[Win32App][ActionProcessor] Content for app with id: {id} is cached. Installation is pending until the deadline {}.",
        local_time(deadline)
    )
}

/// A "retry" exit code's next attempt is not due yet.
pub fn retry_waiting(id: &str, next: DateTime<Utc>) -> String {
    format!(
        "[Win32App][ActionProcessor] App with id: {id} is waiting for its next retry at {}.",
        local_time(next)
    )
}

/// A dependency named by the app is not in the policy list.
pub fn dependency_missing(parent: &str, child: &str) -> String {
    format!("[Win32App][ActionProcessor] Dependency with id: {child} of app with id: {parent} has no policy.")
}

/// A detect-only dependency is not there: the app waits for it.
pub fn dependency_detect_only(parent: &str, child: &str) -> String {
    format!("[Win32App][ActionProcessor] Dependency with id: {child} of app with id: {parent} is not detected and is not set to install automatically.")
}

/// An auto-install dependency is installed before its app.
pub fn dependency_install(parent: &str, child: &str) -> String {
    format!("[Win32App][ActionProcessor] Dependency with id: {child} of app with id: {parent} is not detected and will be enforced first.")
}

/// An app that supersedes another uninstalls it after installing.
pub fn superseding(id: &str, old: &str) -> String {
    format!("[Win32App][ActionProcessor] App with id: {id} supersedes app with id: {old}, which will be uninstalled.")
}

/// A hard-reboot exit code: no more installs until the device restarts.
pub fn reboot_required(id: &str, code: i64) -> String {
    format!("[Win32App] App with id: {id} returned {code}, which requires a device restart. No further installs until the device restarts.")
}

/// An install needs a restart: the reboot manager's plan, from RebootEx.
pub fn restart_required(
    id: &str,
    grace: Option<i64>,
    countdown: Option<i64>,
    snooze: Option<i64>,
) -> String {
    let minutes =
        |m: Option<i64>| m.map_or_else(|| "not set".to_owned(), |m| format!("{m} minutes"));
    format!(
        "[Win32App][RebootManager] App with id: {id} requires a device restart. Grace period: {}, countdown: {}, snooze: {}.",
        minutes(grace),
        minutes(countdown),
        minutes(snooze)
    )
}

/// The user snoozed the restart notification.
pub fn restart_snoozed(id: &str, times: u32, until: DateTime<Utc>) -> String {
    format!(
        "[Win32App][RebootManager] User snoozed the restart for app with id: {id} ({times} time(s)); notifying again at {}.",
        local_time(until)
    )
}

/// The countdown dialog shows.
pub fn restart_countdown(id: &str, minutes: i64) -> String {
    format!("[Win32App][RebootManager] Showing the restart countdown for app with id: {id}: the device restarts in {minutes} minutes.")
}

/// The user chose to restart now.
pub fn restart_accepted(id: &str) -> String {
    format!("[Win32App][RebootManager] User accepted the restart for app with id: {id}. Restarting the device.")
}

/// The app's restart behavior is `force` and no grace period was given.
pub fn restart_at_once(id: &str) -> String {
    format!("[Win32App][RebootManager] App with id: {id} forces a device restart and has no grace period. Restarting the device.")
}

/// The grace period is over.
pub fn restart_forced(id: &str) -> String {
    format!("[Win32App][RebootManager] Restart grace period for app with id: {id} has expired. Restarting the device.")
}

/// A toast showed.
pub fn toast_shown(kind: &str, id: &str, text: &str) -> String {
    format!(
        "[Win32App][ToastNotificationManager] Showing toast {kind} for app with id: {id}: {text}"
    )
}

/// A toast the app's ToastState hides.
pub fn toast_suppressed(kind: &str, id: &str) -> String {
    format!("[Win32App][ToastNotificationManager] Toast {kind} for app with id: {id} is not shown per its ToastState.")
}

/// A Store app's enforcement goes to WinGet (Tenantless's wording in the IME's voice).
pub fn winget_handler(id: &str, package: &str) -> String {
    format!("[Win32App][WinGetApp][WinGetAppExecutionHandler] App with id: {id} is a WinGet app, package identifier: {package}, source: msstore. No content to download.")
}

/// WinGet starts installing a package.
pub fn winget_installing(package: &str) -> String {
    format!("[Win32App][WinGetApp][AppPackageManager] Installing package {package} from source msstore.")
}

/// WinGet starts uninstalling a package.
pub fn winget_uninstalling(package: &str) -> String {
    format!("[Win32App][WinGetApp][AppPackageManager] Uninstalling package {package}.")
}

/// WinGet finished uninstalling a package.
pub fn winget_uninstalled(package: &str, code: i64) -> String {
    format!("[Win32App][WinGetApp][AppPackageManager] Uninstall of package {package} completed with status: {}, exit code: {code}.", if code == 0 { "Ok" } else { "UninstallError" })
}

/// WinGet finished installing a package.
pub fn winget_installed(package: &str, code: i64) -> String {
    let result = if code == 0 {
        "Ok".to_owned()
    } else {
        format!("InstallError ({:#010x})", code as u32)
    };
    format!("[Win32App][WinGetApp][AppPackageManager] Install of package {package} completed with status: {result}, installer exit code: {code}.")
}

/// The unzipped content is removed after a successful install.
pub fn cleaning_cache(path: &str) -> String {
    format!("[Win32App] Cleaning up content cache {path}")
}

/// The service's answer to GetContentInfo.
pub fn content_info(payload: &str) -> String {
    format!("[Win32App] Get content info from service,ret = {payload}")
}

/// The PowerShell poller's framing: `starts` or `stopped`.
pub fn powershell_polling(what: &str) -> String {
    format!("[PowerShell] Polling thread {what}.")
}

/// The PowerShell poller asks the service for its scripts.
pub fn powershell_requesting(session: &str) -> String {
    format!("[PowerShell] Requesting policies with session id {session}")
}

/// The service's answer, as it came.
pub fn powershell_response(payload: &str) -> String {
    format!("[PowerShell] response payload is {payload}")
}

/// How many scripts the service sent for a user.
pub fn powershell_got(n: usize, user: &str) -> String {
    format!("[PowerShell] Get {n} policies for user {user}")
}

/// How many are left after the applicability filter.
pub fn powershell_after_filter(n: usize, user: &str) -> String {
    format!("[PowerShell] After filter, get {n} policies for user {user}")
}

/// One script is processed.
pub fn powershell_processing(id: &str, user: &str) -> String {
    format!("[PowerShell] Processing policy with id = {id} for user = {user}")
}

/// The script's body and its hash.
pub fn powershell_body(body: &str, hash: &str) -> String {
    format!("[PowerShell] Policy body = {body}, hash = {hash}")
}

/// The script is handed to AgentExecutor.
pub fn powershell_launch(context: &str) -> String {
    format!("Launch powershell executor in {context} session")
}

/// AgentExecutor is done.
pub fn powershell_done() -> String {
    "Execution is done, collecting result".into()
}

/// The script's result.
pub fn powershell_result(user: &str, id: &str, success: bool) -> String {
    format!(
        "[PowerShell] User Id = {user}, Policy id = {id}, policy result = {}",
        if success { "Success" } else { "Failed" }
    )
}

/// A script that ran successfully and has not changed is not run again.
pub fn powershell_skipped(id: &str) -> String {
    format!("[PowerShell] Policy with id = {id} has been executed successfully and its hash has not changed. Skipping.")
}

/// A script that failed its retries waits for a change.
pub fn powershell_retries_exhausted(id: &str, runs: u32) -> String {
    format!("[PowerShell] Policy with id = {id} has failed {runs} times. No more retries until it changes.")
}

/// A changed script runs again.
pub fn powershell_changed(id: &str) -> String {
    format!("[PowerShell] Policy with id = {id} has changed. It will run again.")
}

/// The results went to the service.
pub fn powershell_results_sent() -> String {
    "[PowerShell] Policy results are successfully sent.".into()
}

/// AgentExecutor.log: the executor process starts.
pub const EXECUTOR_INVOKED: &str = "ExecutorLog AgentExecutor gets invoked";
/// AgentExecutor.log: a platform script.
pub const EXECUTOR_POWERSHELL: &str = "Powershell option gets invoked";
/// AgentExecutor.log: a remediation's script.
pub const EXECUTOR_REMEDIATION: &str = "remediation script option gets invoked";
/// Windows PowerShell's path.
pub const POWERSHELL_EXE: &str = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe";

/// AgentExecutor.log: where PowerShell is.
pub fn executor_powershell_path() -> String {
    format!("PowerShell path is {POWERSHELL_EXE}")
}

/// AgentExecutor.log: the PowerShell process.
pub fn executor_created(pid: u32) -> String {
    format!("[Executor] created powershell with process id {pid}")
}

/// AgentExecutor.log: PowerShell's command line.
pub fn executor_cmd_line(policy: &str, path: &str) -> String {
    format!(
        "cmd line for running powershell is -NoProfile -executionPolicy {policy} -file \"{path}\""
    )
}

/// AgentExecutor.log: the script's exit code.
pub fn executor_exit_code(code: i64) -> String {
    format!("Powershell exit code is {code}")
}

/// AgentExecutor.log: what the script wrote.
pub fn executor_output(output: &str, error: &str) -> String {
    format!("write output done. output = {output}, error = {error}")
}

/// AgentExecutor.log: a remediation script's path argument.
pub fn executor_remediation_argument(path: &str) -> String {
    format!("Adding argument remediationScript with value {path}")
}

/// AgentExecutor.log: a remediation's script as PowerShell runs it.
pub fn executor_script_is(path: &str) -> String {
    format!("Powershell script is {path}")
}

/// Each line against its shape in the spec (`ime.md` section 12), as log analysers
/// written for real IME logs match it.
#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8a2bd5fc-43a2-4c25-9d9b-c3f6e8f2a4b1";
    const ZERO: &str = "00000000-0000-0000-0000-000000000000";

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn poller_and_session_framing() {
        let bar = "-----------------------------------------------------";
        assert_eq!(
            poller_starts(),
            format!("[Win32App] {bar} application poller starts. {bar} ")
        );
        assert_eq!(
            poller_stopped(),
            format!("[Win32App] {bar} application poller stopped. {bar} ")
        );
        assert_eq!(
            active_user_sessions(1),
            "[Win32App] Got 1 active user sessions"
        );
        let dots = ".....................";
        assert_eq!(
            processing_user_session(0, ZERO, ""),
            format!(
                "[Win32App] {dots} Processing user session 0, userId: {ZERO}, userSID:  {dots} "
            )
        );
        assert_eq!(
            completed_user_session(0, ZERO, ""),
            format!(
                "[Win32App] {dots} Completed user session 0, userId: {ZERO}, userSID:  {dots} "
            )
        );
        assert_eq!(
            esp_phase("NotInEsp"),
            "[Win32App] The EspPhase: NotInEsp in session"
        );
        assert_eq!(
            requesting(Requested::Required),
            "[Win32App] Requesting required apps"
        );
        assert_eq!(
            requesting(Requested::Available),
            "[Win32App] Requesting available apps only"
        );
        assert_eq!(
            requesting(Requested::Selected),
            "[Win32App] Requesting selected apps"
        );
        assert_eq!(get_policies("[]"), "Get policies = []");
        assert_eq!(
            got_apps(2, ZERO, 0),
            format!("[Win32App] Got 2 Win32App(s) for user {ZERO} in session 0")
        );
    }

    #[test]
    fn subgraph_lines() {
        assert_eq!(
            processing_subgraphs(2),
            "[Win32App][V3Processor] Processing 2 subgraphs."
        );
        assert_eq!(
            processing_subgraph(&["a", "b"]),
            "[Win32App][V3Processor] Processing subgraph with app ids: a, b"
        );
        assert_eq!(
            done_subgraph(),
            "[Win32App][V3Processor] Done processing subgraph."
        );
        assert_eq!(
            done_subgraphs(2),
            "[Win32App][V3Processor] Done processing 2 subgraphs."
        );
        assert!(previous_checkin(at("2026-03-02T08:00:00Z")).starts_with(
            "[Win32App][ReevaluationScheduleManager] Found previous reevaluation check-in time value: 3/2/2026 8:00:00 AM."
        ));
        assert_eq!(
            previous_subgraph_evaluation(at("2026-03-02T20:05:09Z"), "H"),
            "[Win32App][ReevaluationScheduleManager] Found previous subgraph reevaluation time value: 3/2/2026 8:05:09 PM at key H."
        );
        assert!(
            reevaluation_not_expired("H").contains("Subgraph reevaluation interval is not expired")
        );
    }

    #[test]
    fn grs_lines_carry_the_subgraph_hash() {
        assert_eq!(
            grs_none(ID, "H"),
            format!("[Win32App][GRSManager] App with id: {ID} has no recorded GRS value which will be treated as expired. | Hash = H")
        );
        assert_eq!(
            grs_expired(ID, "H"),
            format!("[Win32App][GRSManager] App with id: {ID} is expired. | Hash = H")
        );
        assert_eq!(
            grs_not_expired(ID, "H"),
            format!("[Win32App][GRSManager] App with id: {ID} is not expired. | Hash = H")
        );
        assert_eq!(
            grs_enforced_by_intent(ID, "H"),
            format!("[Win32App][GRSManager] App with id: {ID} is not expired but will be enforced due to targeting intent on the subgraph. | Hash = H")
        );
        assert_eq!(
            grs_found("03/02/2026 08:15:00", ZERO, "H", ID),
            format!("[Win32App][GRSManager] Found GRS value: 03/02/2026 08:15:00 at key {ZERO}\\GRS\\H\\{ID}.")
        );
    }

    #[test]
    fn the_decision_record_and_the_action_handlers() {
        let record = decision(&Decision {
            id: ID,
            intent: "RequiredInstall",
            desired: "Present",
            detection: "NotDetected",
            applicability: "Applicable",
            reboot: "Clean",
            start: at("2026-03-02T08:00:00Z"),
            deadline: at("2026-03-02T08:00:00Z"),
            grs_expired: true,
        });
        let lines: Vec<&str> = record.lines().collect();
        assert_eq!(
            lines,
            [
                format!("[Win32App][ActionProcessor] App with id: {ID}, effective intent: RequiredInstall, and enforceability: Enforceable has projected enforcement classification: EnforcementPoint with desired state: Present. Current state is:").as_str(),
                "Detection = NotDetected",
                "Applicability =  Applicable",
                "Reboot = Clean",
                "Local start time = 3/2/2026 8:00:00 AM",
                "Local deadline time = 3/2/2026 8:00:00 AM",
                "GRS expired = True",
            ]
        );
        assert_eq!(
            no_action(ID),
            format!("[Win32App][ActionProcessor] No action required for app with id: {ID}.")
        );
        assert_eq!(
            detection_result(ID, false),
            format!("[Win32App][DetectionActionHandler] Detection for policy with id: {ID} resulted in action status: Success and detection state: NotDetected.")
        );
        assert_eq!(
            applicability_result(ID, "Applicable"),
            format!("[Win32App][ApplicabilityActionHandler] Applicability check for policy with id: {ID} resulted in action status: Success and applicability state: Applicable.")
        );
        assert_eq!(
            detection_delta(ID, None, "NotInstalled"),
            format!("[Win32App][ReportingManager] Detection state for app with id: {ID} has been updated. Report delta: {{\"DetectionState\":{{\"OldValue\":null,\"NewValue\":\"NotInstalled\"}}}}")
        );
    }

    #[test]
    fn enforcement_lines() {
        assert_eq!(
            handler_invoked("Install", ID, 1),
            format!("[Win32App] Handler invoked with execution type: Install for policy with id: {ID} and version: 1.")
        );
        assert_eq!(
            step_install_behavior("System", 3),
            "[Win32App] ===Step=== InstallBehavior System, Intent 3"
        );
        assert_eq!(
            downloading(0, ID),
            format!("[Win32App] Downloading app on session 0. App: {ID}")
        );
        assert!(cache_miss(ID, "Widget")
            .starts_with(&format!("[Win32App] Content cache miss for app (id = {ID}")));
        assert_eq!(
            do_progress(ID, "Widget", 5, 10, ZERO),
            format!("[StatusService] Downloading app (id = {ID}, name Widget) via DO, bytes 5/10 for user {ZERO}")
        );
        assert_eq!(
            do_complete(),
            "[Win32App] Notified DO Service the job is complete."
        );
        assert_eq!(
            cdn_url("u"),
            "[Win32App] ExternalCDN mode, content raw URL is u"
        );
        assert_eq!(cdn_done(), "[Win32App] CDN mode, download completes.");
        assert_eq!(
            cache_found(ID),
            format!("[Win32App] Content cache found for app id {ID}")
        );
        assert_eq!(downloaded_size(42), "[Win32App] Downloaded file size 42");
        assert_eq!(downloaded_time(7), "[Win32App] Downloaded file time 7");
        assert_eq!(verifying_hash(), "Starts verifying encrypted hash");
        assert_eq!(
            hash_pass(),
            "[Win32App] file hash validation pass, starts decrypting"
        );
        assert_eq!(
            decryption_done(),
            "[Win32App] Decryption is done successfully."
        );
        assert_eq!(start_unzipping(), "Start unzipping");
        assert_eq!(cleaning_staging("p"), "Cleaning up staging content p");
        assert_eq!(execute_retry(0), "[Win32App] ===Step=== Execute retry 0");
        assert_eq!(
            installer_created(),
            "[Win32App] Create installer process successfully."
        );
        assert_eq!(process_id(4242), "[Win32App] process id = 4242");
        assert_eq!(
            installer_timeout(3_600_000),
            "[Win32App] Installer process timeout milliseconds: 3600000"
        );
        assert_eq!(
            installation_done(),
            "[Win32App] Installation is done, collecting result"
        );
        assert_eq!(exit_code(1618), "[Win32App] lpExitCode 1618");
        assert_eq!(
            exit_code_defined("Retry"),
            "[Win32App] lpExitCode is defined as Retry"
        );
        assert_eq!(
            exit_code_unmapped(1, ID),
            format!("[Win32App] Admin did NOT set mapping for lpExitCode: 1 of app: {ID}")
        );
    }

    #[test]
    fn reporting_lines() {
        assert_eq!(
            reporting_loaded(ID, "{}"),
            format!("[Win32App][ReportingManager] App with id: {ID} and prior AppAuthority: V3 has been loaded and reporting state initialized. ReportingState: {{}}")
        );
        assert_eq!(
            reporting_initialized(ID, "{}"),
            format!("[Win32App][ReportingManager] App with id: {ID} could not be loaded from store. Reporting state initialized with initial values. ReportingState: {{}}")
        );
        let delta = execution_delta(ID, Some(("InProgress", 1618)), ("Success", 0));
        assert!(delta.starts_with(&format!(
            "[Win32App][ReportingManager] Execution state for app with id: {ID} has been updated. Report delta: {{\"EnforcementState\":{{"
        )));
        assert!(delta.contains("\"EnforcementErrorCode\":{"));
        assert!(company_portal_status("{}").starts_with(
            "[Win32App][ReportingManager] Sending status to company portal based on report: {"
        ));
        assert_eq!(
            status_returned(ZERO, ID, "Applicable", "Installed", 0),
            format!("[StatusService] Returning status to user with id: {ZERO} for V3-managed app with id: {ID} and install context: System. Applicability: Applicable, Status: Installed, ErrorCode: 0")
        );
    }
}
