//! The IME's Win32 app engine (spec sections 4-6): a check-in asks the gateway for the
//! required apps, and each goes through the pipeline - detection, requirements, the GRS
//! and retry timers, content (download to `Content\Incoming`, MAC and digest check,
//! decrypt, unzip to `C:\Windows\IMECache\<appId>_<ver>`, clean up), install under
//! MaxRunTimeInMinutes, exit code mapped through ReturnCodes, detection again - with
//! its state written under `Win32Apps` and reported when it changed.
//!
//! Retries: an exit code of type "retry" is tried 3 more times 5 minutes apart; still
//! failing, or any other failure, puts the app in the GRS with a timestamp, and it is
//! offered again at the first check-in 24 hours after that timestamp. Deleting the app's
//! key and its GRS entry makes the next check-in try at once.

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::gateway::{self, Caller};
use super::{lines, restart, rules, states, threads, Pen};
use crate::device::{installer, Device, RegValue};
use crate::error::AgentError;
use crate::state::{AgentState, AppRun};

/// Where the IME keeps app state.
pub const WIN32APPS: &str = r"HKLM\SOFTWARE\Microsoft\IntuneManagementExtension\Win32Apps";
/// The "user" of device-targeted apps.
pub const DEVICE_USER: &str = "00000000-0000-0000-0000-000000000000";
/// Phase 1: downloads land here.
pub const INCOMING: &str =
    r"C:\Program Files (x86)\Microsoft Intune Management Extension\Content\Incoming";
/// Phase 3: content is unzipped here.
pub const IMECACHE: &str = r"C:\Windows\IMECache";
/// The log of Win32 app processing (newer IME builds).
pub const APP_LOG: &str = "AppWorkload.log";
/// Error after an install that "succeeded" but is not detected.
pub const E_NOT_DETECTED: i64 = 0x87D1_041C_u32 as i32 as i64;
/// Error when content cannot be downloaded or decrypted.
pub const E_CONTENT: i64 = 0x87D3_0067_u32 as i32 as i64;
/// The GRS's period.
pub fn grs_period() -> Duration {
    Duration::hours(24)
}

/// The outcome of processing one app.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    applicability: i64,
    compliance: i64,
    desired: i64,
    enforcement: i64,
    error_code: i64,
    exit_code: Option<i64>,
}

impl Outcome {
    fn state(compliance: i64, enforcement: i64, error_code: i64) -> Self {
        Outcome {
            applicability: 0,
            compliance,
            desired: 2,
            enforcement,
            error_code,
            exit_code: None,
        }
    }
}

fn app_key(user: &str, app_id: &str, rev: i64) -> String {
    format!(r"{WIN32APPS}\{user}\{app_id}_{rev}")
}

/// The hash of an app's subgraph, as the GRS and the reevaluation schedule key it: a
/// base64 (URL alphabet) hash of the app's id.
pub fn subgraph_hash(app_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(app_id.to_lowercase().as_bytes()))
}

/// The GRS key of an app's subgraph.
pub fn grs_key(user: &str, app_id: &str) -> String {
    format!(r"{WIN32APPS}\{user}\GRS\{}", subgraph_hash(app_id))
}

/// The Ripley maneuver ("nuke it from orbit"): deletes an app's keys under `Win32Apps`
/// (every revision, for `user`) and its GRS key, so the IME's next check-in treats the
/// app as never tried. Returns how many keys went.
pub fn forget_app(device: &mut Device, user: &str, app_id: &str) -> usize {
    let root = format!(r"{WIN32APPS}\{user}");
    let mut gone = 0;
    for sub in device.registry.subkeys(&root) {
        let revision_of_app = sub
            .rsplit_once('_')
            .is_some_and(|(id, _)| id.eq_ignore_ascii_case(app_id));
        if revision_of_app && device.registry.delete_key(&format!(r"{root}\{sub}")) {
            gone += 1;
        }
    }
    if device.registry.delete_key(&grs_key(user, app_id)) {
        gone += 1;
    }
    gone
}

const GRS_FORMAT: &str = "%m/%d/%Y %H:%M:%S";

fn set_grs(device: &mut Device, user: &str, app_id: &str, now: DateTime<Utc>) {
    let stamp = now.format(GRS_FORMAT).to_string();
    device
        .registry
        .set(&grs_key(user, app_id), app_id, RegValue::Sz(stamp));
}

fn clear_grs(device: &mut Device, user: &str, app_id: &str) {
    device.registry.delete_key(&grs_key(user, app_id));
}

/// Writes the app's key: Intent, LastUpdatedTimeUtc, ExitCode, and the two state
/// messages, each a same-named value holding JSON in a same-named subkey.
fn write_state(
    device: &mut Device,
    key: &str,
    (intent, target_type, context): (i64, i64, i64),
    o: &Outcome,
    product_version: &Value,
    now: DateTime<Utc>,
) -> (Value, Value) {
    let compliance = json!({
        "Applicability": o.applicability,
        "ComplianceState": o.compliance,
        "DesiredState": o.desired,
        "ErrorCode": o.error_code,
        "TargetingMethod": 0,
        "InstallContext": context,
        "TargetType": target_type,
        "ProductVersion": product_version,
        "AssignmentFilterIds": null,
    });
    let enforcement = json!({ "EnforcementState": o.enforcement, "ErrorCode": o.error_code, "TargetingMethod": 0 });
    let r = &mut device.registry;
    r.set(key, "Intent", RegValue::Dword(intent as u32));
    r.set(
        key,
        "LastUpdatedTimeUtc",
        RegValue::Sz(now.format(GRS_FORMAT).to_string()),
    );
    if let Some(code) = o.exit_code {
        r.set(key, "ExitCode", RegValue::Dword(code as u32));
    }
    r.set(
        &format!(r"{key}\ComplianceStateMessage"),
        "ComplianceStateMessage",
        RegValue::Sz(compliance.to_string()),
    );
    r.set(
        &format!(r"{key}\EnforcementStateMessage"),
        "EnforcementStateMessage",
        RegValue::Sz(enforcement.to_string()),
    );
    (compliance, enforcement)
}

/// When the next retry, start time or deadline of any app is due.
pub fn next_retry(state: &AgentState) -> Option<DateTime<Utc>> {
    state
        .ime
        .apps
        .values()
        .flat_map(|a| [a.next_retry, a.wake_at])
        .flatten()
        .min()
}

/// Reads `/Date(ms)/`; `DateTime.MinValue` (and anything unreadable) is "as soon as
/// possible", i.e. none.
pub fn dotnet_date(v: &Value) -> Option<DateTime<Utc>> {
    let ms: i64 = v
        .as_str()?
        .strip_prefix("/Date(")?
        .strip_suffix(")/")?
        .parse()
        .ok()?;
    if ms <= -62_135_596_800_000 {
        return None;
    }
    DateTime::from_timestamp_millis(ms)
}

/// An assignment's start time and deadline as moments: UTC when `TimeFormat` is empty,
/// otherwise wall-clock times on the device's own clock (its time zone).
fn start_and_deadline(
    profile: &crate::device::DeviceProfile,
    times: &Value,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let local = times["TimeFormat"].as_str().is_some_and(|f| !f.is_empty());
    let moment = |v: &Value| {
        let t = dotnet_date(v)?;
        Some(if local { profile.from_local(t) } else { t })
    };
    (moment(&times["StartTime"]), moment(&times["Deadline"]))
}

/// What one run of the application poller shares: the gateway conversation, the policy
/// list, world time and the poller's pen (its lines' time advances step by step).
struct Poll<'a> {
    gw: &'a gateway::Session<'a>,
    all: &'a [Value],
    now: DateTime<Utc>,
    pen: Pen,
    /// The session's user: the device's all-zero id, or the user's object id.
    user: String,
    /// The session: 0 userless, 1 the signed-in user's.
    session: u32,
}

/// The application poller's pen: AppWorkload.log, on the poller's thread.
pub(super) fn poller_pen(now: DateTime<Utc>) -> Pen {
    Pen::new(APP_LOG, "AppWorkload", threads::APP_POLLER, now)
}

/// Asks the gateway for app policies (a compressed list), logs them as the IME does
/// (`Get policies = [...]`) and parses them.
async fn fetch_policies(
    device: &Device,
    pen: Option<&mut Pen>,
    gw: &gateway::Session<'_>,
    (request, payload): (&str, &Value),
    reason: &str,
) -> Result<Vec<Value>, AgentError> {
    let payload = gw.call(request, payload, reason).await?;
    let text = gateway::decompress(&payload).unwrap_or_else(|| "[]".into());
    if let Some(pen) = pen {
        pen.info(device, &lines::get_policies(&text));
    }
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

/// The app ids of an app's subgraph: the app, then what it depends on or supersedes.
fn subgraph_ids(policy: &Value) -> Vec<&str> {
    let mut ids = vec![policy["Id"].as_str().unwrap_or_default()];
    for rel in policy["FlatDependencies"].as_array().into_iter().flatten() {
        if let Some(child) = rel["ChildId"].as_str() {
            ids.push(child);
        }
    }
    ids
}

/// One policy check-in: fetch the required apps and process each.
pub async fn checkin(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<usize, AgentError> {
    let scheduled = state.ime.next_checkin.is_some_and(|t| t <= now);
    let apps_asked = std::mem::take(&mut state.ime.app_checkin_requested);
    let compliance = std::mem::take(&mut state.ime.compliance_check_requested);
    let management = state
        .enrollment
        .as_ref()
        .map(|e| e.addr.clone())
        .ok_or(AgentError::NotEnrolled)?;
    let gateway = match &state.ime.gateway_url {
        Some(g) => g.clone(),
        None => {
            let g = gateway::discover(client, &management).await?;
            state.ime.gateway_url = Some(g.clone());
            g
        }
    };
    let esp_phase = super::esp::phase(device, state, now);
    let reason = if esp_phase.is_some() {
        state.ime.checkin_reason.clear();
        "ESP".to_owned()
    } else if state.ime.checkin_reason.is_empty() {
        "MaintenanceTimer".to_owned()
    } else {
        std::mem::take(&mut state.ime.checkin_reason)
    };
    let session = gateway::session_id(&device.profile.device_id, now);
    let info = json!({
        "DeviceName": device.profile.device_name,
        "OperatingSystemVersion": device.profile.os_version,
        "SideCarAgentVersion": state.ime.version,
    });
    let gw = gateway::Session {
        client,
        url: &gateway,
        id: &session,
        info: &info,
    };
    // Results the gateway did not acknowledge last time go first.
    gateway::send_waiting(&mut state.ime.outbox, &gw, &reason).await?;
    // Scripts run (and remediations are fetched) before Win32 apps, at scheduled
    // check-ins (not at an app's retry).
    if scheduled {
        super::scripts::checkin(device, state, &gw, &reason, now).await?;
    }
    if scheduled || compliance {
        super::remediations::fetch(device, state, &gw, &reason, now).await?;
    }
    if compliance {
        super::remediations::check_compliance_now(device, state, now);
        // synccompliance alone: the discovery scripts run (as remediations do, once
        // this check-in ends), and no app policy is asked for.
        if !scheduled && !apps_asked && next_retry(state).is_none_or(|t| t > now) {
            return Ok(0);
        }
    }
    let mut pen = poller_pen(now);
    pen.info(device, &lines::poller_starts());
    if let Some(last) = state.ime.last_poll {
        pen.info(device, &lines::previous_checkin(last));
    }
    // Device-targeted apps in the userless session 0; each signed-in user's apps in
    // their session, asked for under their name (as the IME asks with the user's token)
    // and kept under their Entra object id.
    let mut sessions = vec![UserSession {
        number: 0,
        user: DEVICE_USER.to_owned(),
        sid: String::new(),
        info: info.clone(),
    }];
    for (i, user) in state.users.iter().enumerate() {
        let mut info = info.clone();
        info["UserPrincipalName"] = json!(user.upn);
        sessions.push(UserSession {
            number: u32::try_from(i + 1).unwrap_or(u32::MAX),
            user: user.object_id.clone(),
            sid: user.sid(),
            info,
        });
    }
    let callers: Vec<gateway::Session> = sessions
        .iter()
        .map(|s| gateway::Session {
            info: &s.info,
            ..gw
        })
        .collect();
    let mut lists = Vec::with_capacity(sessions.len());
    for caller in &callers {
        let request = ("RequestApplication", &json!([]));
        lists.push(fetch_policies(device, None, caller, request, &reason).await?);
    }
    pen.info(device, &lines::active_user_sessions(sessions.len()));
    let mut poll = Poll {
        gw: &gw,
        all: &[],
        now,
        pen,
        user: String::new(),
        session: 0,
    };
    let mut reports = Vec::new();
    let mut processed = 0;
    let mut esp_results = EspResults::default();
    for ((s, caller), policies) in sessions.iter().zip(&callers).zip(&lists) {
        let (session, user, sid) = (s.number, s.user.clone(), s.sid.as_str());
        poll.gw = caller;
        poll.all = policies;
        // A user's apps install in their context: HKCU is their hive meanwhile.
        let device_user = (session > 0).then(|| device.registry.set_current_user(sid));
        let mine: Vec<&Value> = policies
            .iter()
            .filter(|p| (p["TargetType"] == 1) == (session > 0))
            .collect();
        let pen = &mut poll.pen;
        pen.info(device, &lines::processing_user_session(session, &user, sid));
        pen.info(
            device,
            &lines::esp_phase(esp_phase.as_deref().unwrap_or("NotInEsp")),
        );
        pen.info(device, &lines::requesting(lines::Requested::Required));
        let listed = Value::Array(mine.iter().map(|p| (*p).clone()).collect());
        pen.info(device, &lines::get_policies(&listed.to_string()));
        pen.info(device, &lines::got_apps(mine.len(), &user, session));
        // In the ESP, only its blocking apps of this phase; the rest wait for its end.
        let (mine, deferred): (Vec<&Value>, Vec<&Value>) = match &esp_phase {
            Some(phase) => mine
                .into_iter()
                .partition(|p| super::esp::in_phase(state, phase, session, p)),
            None => (mine, Vec::new()),
        };
        if let (Some(phase), false) = (&esp_phase, deferred.is_empty()) {
            pen.info(device, &lines::esp_deferred(deferred.len(), phase));
        }
        processed += mine.len();
        // A dependency or superseded app (Intent 0) is processed with its parent.
        let subgraphs: Vec<&Value> = mine.into_iter().filter(|p| p["Intent"] != 0).collect();
        pen.info(device, &lines::processing_subgraphs(subgraphs.len()));
        poll.user = user.clone();
        poll.session = session;
        for policy in &subgraphs {
            poll.pen
                .info(device, &lines::processing_subgraph(&subgraph_ids(policy)));
            let mut extra = Vec::new();
            let report = process(device, state, &mut poll, policy, &mut extra).await;
            if esp_phase.is_some() {
                esp_results.record(device, &user, policy);
            }
            reports.extend(extra);
            reports.extend(report);
            poll.pen.info(device, &lines::done_subgraph());
        }
        poll.pen
            .info(device, &lines::done_subgraphs(subgraphs.len()));
        // In the ESP, deferred apps are still targeted: nothing is cleaned up.
        if esp_phase.is_none() {
            reports.extend(clean_up_untargeted(device, state, &mut poll, &listed));
        }
        poll.pen
            .info(device, &lines::completed_user_session(session, &user, sid));
        if let Some(previous) = device_user {
            device.registry.set_current_user(&previous);
        }
    }
    poll.pen.info(device, &lines::poller_stopped());
    state.ime.last_poll = Some(now);
    send_results(device, state, &gw, reports, ("Unknown", now)).await?;
    state.ime.next_checkin = Some(now + Duration::minutes(60));
    if esp_phase.is_some() {
        let (installed, failed) = (esp_results.installed, esp_results.failed);
        super::esp::after_checkin(device, state, now, &installed, &failed);
    }
    Ok(processed)
}

/// What the ESP learns of the apps a check-in processed, from their state messages:
/// installed, or failed (a retry still to come keeps an app in progress).
#[derive(Default)]
struct EspResults {
    installed: Vec<String>,
    failed: Vec<String>,
}

impl EspResults {
    fn record(&mut self, device: &Device, user: &str, policy: &Value) {
        let id = policy["Id"].as_str().unwrap_or_default();
        let rev = policy["Version"].as_i64().unwrap_or(1);
        let key = format!(r"{}\ComplianceStateMessage", app_key(user, id, rev));
        let compliance = device
            .registry
            .get_text(&key, "ComplianceStateMessage")
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["ComplianceState"].as_i64());
        match compliance {
            Some(1) => self.installed.push(id.to_owned()),
            Some(4) => self.failed.push(id.to_owned()),
            _ => {}
        }
    }
}

/// A session the application poller processes: the userless one (0) or a signed-in
/// user's, with the client info its gateway calls carry.
struct UserSession {
    number: u32,
    /// The all-zero id, or the user's object id.
    user: String,
    /// The user's SID (empty for session 0).
    sid: String,
    info: Value,
}

/// The required (or uninstall) apps whose key the session's user has but the service
/// no longer lists: each is set to ComplianceState 100 (Cleanup, DesiredState none) and
/// reported once, and its GRS and retry schedule are forgotten. Available apps (Intent
/// 1, which the required list never holds) and dependencies (Intent 0) are left alone.
fn clean_up_untargeted(
    device: &mut Device,
    state: &mut AgentState,
    poll: &mut Poll<'_>,
    listed: &Value,
) -> Vec<Value> {
    let user = poll.user.clone();
    let base = format!(r"{WIN32APPS}\{user}");
    let mut reports = Vec::new();
    for name in device.registry.subkeys(&base) {
        let Some((id, rev)) = name
            .rsplit_once('_')
            .and_then(|(id, rev)| Some((id.to_owned(), rev.parse::<i64>().ok()?)))
        else {
            continue;
        };
        let is_listed = listed.as_array().into_iter().flatten().any(|p| {
            p["Id"]
                .as_str()
                .is_some_and(|p| p.eq_ignore_ascii_case(&id))
        });
        let key = format!(r"{base}\{name}");
        let intent = match device.registry.get(&key, "Intent") {
            Some(RegValue::Dword(i @ (3 | 4))) => i64::from(*i),
            _ => continue,
        };
        let message = |name: &str| -> Value {
            device
                .registry
                .get_text(&format!(r"{key}\{name}"), name)
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null)
        };
        let (compliance, enforcement) = (
            message("ComplianceStateMessage"),
            message("EnforcementStateMessage"),
        );
        if is_listed || compliance["ComplianceState"] == 100 {
            continue;
        }
        poll.pen.info(device, &lines::no_longer_targeted(&id));
        let cleanup = Outcome {
            applicability: compliance["Applicability"].as_i64().unwrap_or(0),
            desired: 0,
            ..Outcome::state(
                100,
                enforcement["EnforcementState"].as_i64().unwrap_or(1000),
                enforcement["ErrorCode"].as_i64().unwrap_or(0),
            )
        };
        let target_type = compliance["TargetType"].as_i64().unwrap_or(2);
        reports.extend(report_state(
            device,
            poll,
            &key,
            (intent, target_type),
            &cleanup,
            &id,
            rev,
        ));
        clear_grs(device, &user, &id);
        state.ime.apps.remove(&id);
        state.ime.evaluated.remove(&id);
    }
    reports
}

/// The effective intent's name in the action processor's record.
fn intent_name(intent: i64) -> &'static str {
    match intent {
        1 => "AvailableInstall",
        4 => "RequiredUninstall",
        _ => "RequiredInstall",
    }
}

/// The app's reporting state as the registry holds it (None: never reported).
fn reporting_state(device: &Device, key: &str) -> Option<Value> {
    let read = |name: &str| -> Option<Value> {
        let text = device.registry.get_text(&format!(r"{key}\{name}"), name)?;
        serde_json::from_str(&text).ok()
    };
    let compliance = read("ComplianceStateMessage")?;
    let enforcement = read("EnforcementStateMessage").unwrap_or(Value::Null);
    Some(json!({
        "ApplicabilityState": compliance["Applicability"],
        "DetectionState": detection_state(compliance["ComplianceState"].as_i64()),
        "EnforcementState": enforcement["EnforcementState"],
        "EnforcementErrorCode": enforcement["ErrorCode"],
    }))
}

/// `Installed` when the compliance state says the app is there.
fn detection_state(compliance: Option<i64>) -> &'static str {
    if compliance == Some(1) {
        "Installed"
    } else {
        "NotInstalled"
    }
}

async fn process(
    device: &mut Device,
    state: &mut AgentState,
    poll: &mut Poll<'_>,
    policy: &Value,
    extra: &mut Vec<Value>,
) -> Option<Value> {
    let now = poll.now;
    let id = policy["Id"].as_str().unwrap_or_default().to_owned();
    let rev = policy["Version"].as_i64().unwrap_or(1);
    let intent = policy["Intent"].as_i64().unwrap_or(0);
    let target_type = policy["TargetType"].as_i64().unwrap_or(2);
    let requested = policy["Tenantless.Requested"] == true;
    let user = poll.user.clone();
    let user = user.as_str();
    let key = app_key(user, &id, rev);
    if intent == 1 && !requested {
        return None; // available apps install only when the user asks
    }
    if !matches!(intent, 1 | 3 | 4) {
        return None;
    }
    if !device.registry.key_exists(&key) {
        // A new app, or its key was deleted (the Ripley maneuver): start afresh.
        state.ime.apps.remove(&id);
        state.ime.evaluated.remove(&id);
    }
    let prior = reporting_state(device, &key);
    match &prior {
        Some(s) => poll
            .pen
            .info(device, &lines::reporting_loaded(&id, &s.to_string())),
        None => {
            let initial = json!({
                "ApplicabilityState": null, "DetectionState": null,
                "EnforcementState": null, "EnforcementErrorCode": null,
            });
            poll.pen.info(
                device,
                &lines::reporting_initialized(&id, &initial.to_string()),
            )
        }
    }
    if intent == 4 {
        let outcome = uninstall(device, poll, policy, &id);
        return report_state(
            device,
            poll,
            &key,
            (intent, target_type),
            &outcome,
            &id,
            rev,
        );
    }
    let hash = subgraph_hash(&id);
    // An installed app's subgraph is evaluated again only when its reevaluation
    // interval (480 minutes) has passed since the last evaluation.
    let interval = Duration::minutes(policy["ReevaluationInterval"].as_i64().unwrap_or(480));
    if let Some(last) = state.ime.evaluated.get(&id).copied() {
        poll.pen
            .info(device, &lines::previous_subgraph_evaluation(last, &hash));
        if last + interval > now && !requested {
            poll.pen
                .info(device, &lines::reevaluation_not_expired(&hash));
            return None;
        }
        poll.pen.info(device, &lines::reevaluation_expired(&hash));
    }
    let detection = detection_rule(policy);
    if !rules::can_detect(&detection) {
        // Nothing tells whether the app is there: Unknown, and nothing is enforced.
        poll.pen.warn(device, &lines::detection_unknown(&id));
        poll.pen.info(device, &lines::no_action(&id));
        state.ime.evaluated.insert(id.clone(), now);
        let unknown = Outcome::state(5, 4000, 0);
        return report_state(
            device,
            poll,
            &key,
            (intent, target_type),
            &unknown,
            &id,
            rev,
        );
    }
    let detected = rules::detected(device, &detection);
    poll.pen
        .info(device, &lines::detection_result(&id, detected));
    let old_detection = prior.as_ref().and_then(|p| p["DetectionState"].as_str());
    let new_detection = if detected {
        "Installed"
    } else {
        "NotInstalled"
    };
    if old_detection != Some(new_detection) {
        poll.pen.info(
            device,
            &lines::detection_delta(&id, old_detection, new_detection),
        );
    }
    let (start, deadline) = start_and_deadline(&device.profile, &policy["StartDeadlineEx"]);
    let decision = |detection: &'static str, applicability: &'static str, grs_expired: bool| {
        lines::decision(&lines::Decision {
            id: &id,
            intent: intent_name(intent),
            desired: "Present",
            detection,
            applicability,
            reboot: if state.ime.reboot_pending {
                "HardReboot"
            } else {
                "Clean"
            },
            start: start.unwrap_or(now),
            deadline: deadline.unwrap_or(now),
            grs_expired,
        })
    };
    let outcome = if detected {
        poll.pen
            .info(device, &decision("Detected", "Applicable", true));
        poll.pen.info(device, &lines::no_action(&id));
        clear_grs(device, user, &id);
        state.ime.apps.remove(&id);
        state.ime.evaluated.insert(id.clone(), now);
        Outcome::state(1, 1000, 0)
    } else if let Err(code) = rules::requirements(
        &device.profile,
        policy["RequirementRules"].as_str().unwrap_or("{}"),
    )
    .and_then(|()| {
        rules::extended_requirements(
            device,
            policy["ExtendedRequirementRules"].as_str().unwrap_or("[]"),
        )
    }) {
        let name = states::applicability(code);
        poll.pen
            .info(device, &lines::applicability_result(&id, name));
        let old = prior
            .as_ref()
            .and_then(|p| p["ApplicabilityState"].as_i64());
        if old != Some(code) {
            let old = old.map(states::applicability);
            poll.pen
                .info(device, &lines::applicability_delta(&id, old, name));
        }
        poll.pen.info(device, &decision("NotDetected", name, true));
        poll.pen.info(device, &lines::no_action(&id));
        Outcome {
            applicability: code,
            ..Outcome::state(2, 3000, 0)
        }
    } else {
        poll.pen
            .info(device, &lines::applicability_result(&id, "Applicable"));
        let old = prior
            .as_ref()
            .and_then(|p| p["ApplicabilityState"].as_i64());
        if old != Some(0) {
            let old = old.map(states::applicability);
            poll.pen
                .info(device, &lines::applicability_delta(&id, old, "Applicable"));
        }
        if let Some(start) = start.filter(|s| *s > now) {
            // Before the start time: detection and a report, nothing else.
            poll.pen
                .info(device, &decision("NotDetected", "Applicable", true));
            poll.pen.info(device, &lines::not_started(&id, start));
            state.ime.apps.entry(id.clone()).or_default().wake_at = Some(start);
            let waiting = Outcome::state(2, 6000, 0);
            return report_state(
                device,
                poll,
                &key,
                (intent, target_type),
                &waiting,
                &id,
                rev,
            );
        }
        if let Some(deadline) = deadline.filter(|d| *d > now) {
            // Between the start time and the deadline: download and cache the content.
            poll.pen
                .info(device, &decision("NotDetected", "Applicable", true));
            let cache = format!(r"{IMECACHE}\{id}_{rev}");
            state.ime.apps.entry(id.clone()).or_default().wake_at = Some(deadline);
            let outcome = if device.drive.exists(&cache) {
                poll.pen.info(device, &lines::cache_found(&id));
                Outcome::state(2, 2009, 0)
            } else {
                let key = state.enrollment.as_ref().map(|e| e.key_b64.clone());
                match fetch_content(device, poll, key.as_deref(), policy, &cache).await {
                    Ok(()) => {
                        poll.pen
                            .info(device, &lines::install_pending(&id, deadline));
                        Outcome::state(2, 2009, 0)
                    }
                    Err(e) => {
                        poll.pen.error(device, &lines::content_failed(&id, &e));
                        Outcome::state(4, 5003, E_CONTENT)
                    }
                }
            };
            return report_state(
                device,
                poll,
                &key,
                (intent, target_type),
                &outcome,
                &id,
                rev,
            );
        }
        if let Some(run) = state.ime.apps.get_mut(&id) {
            run.wake_at = None;
        }
        let run = state.ime.apps.entry(id.clone()).or_default().clone();
        if let Some(t) = run.next_retry.filter(|t| *t > now) {
            poll.pen.info(device, &lines::retry_waiting(&id, t));
            return None;
        }
        if run.next_retry.is_none() {
            match device.registry.get_text(&grs_key(user, &id), &id) {
                Some(text) => {
                    poll.pen
                        .info(device, &lines::grs_found(&text, user, &hash, &id));
                    let stamp = NaiveDateTime::parse_from_str(&text, GRS_FORMAT)
                        .ok()
                        .map(|t| t.and_utc());
                    if stamp.is_some_and(|s| s + grs_period() > now) {
                        if requested {
                            poll.pen
                                .info(device, &lines::grs_enforced_by_intent(&id, &hash));
                        } else {
                            poll.pen.info(device, &lines::grs_not_expired(&id, &hash));
                            return None;
                        }
                    } else {
                        poll.pen.info(device, &lines::grs_expired(&id, &hash));
                    }
                }
                None => poll.pen.info(device, &lines::grs_none(&id, &hash)),
            }
        }
        poll.pen
            .info(device, &decision("NotDetected", "Applicable", true));
        match dependencies(device, state, poll, policy, extra).await {
            Err(blocked) => blocked,
            Ok(()) => {
                let outcome = enforce(device, state, poll, policy, &detection).await;
                if outcome.compliance == 1 {
                    supersede(device, poll, policy);
                }
                outcome
            }
        }
    };
    report_state(
        device,
        poll,
        &key,
        (intent, target_type),
        &outcome,
        &id,
        rev,
    )
}

/// Installs an app's auto-install dependencies first, deepest level first; `Err` holds
/// the parent's outcome when a dependency is missing or did not install (6001: not
/// attempted because of a dependency).
async fn dependencies(
    device: &mut Device,
    state: &mut AgentState,
    poll: &mut Poll<'_>,
    policy: &Value,
    extra: &mut Vec<Value>,
) -> Result<(), Outcome> {
    let mut deps: Vec<&Value> = policy["FlatDependencies"]
        .as_array()
        .map(|d| d.iter().filter(|d| d["Type"] == 0).collect())
        .unwrap_or_default();
    deps.sort_by_key(|d| std::cmp::Reverse(d["Level"].as_i64().unwrap_or(0)));
    let parent = policy["Id"].as_str().unwrap_or_default();
    for dep in deps {
        let child_id = dep["ChildId"].as_str().unwrap_or_default();
        let all = poll.all;
        let Some(child) = all.iter().find(|p| p["Id"].as_str() == Some(child_id)) else {
            poll.pen
                .error(device, &lines::dependency_missing(parent, child_id));
            return Err(Outcome::state(2, 6001, 0));
        };
        let child_detection = detection_rule(child);
        let detected = rules::detected(device, &child_detection);
        poll.pen
            .info(device, &lines::detection_result(child_id, detected));
        if detected {
            continue;
        }
        if dep["Action"] != 10 {
            poll.pen
                .info(device, &lines::dependency_detect_only(parent, child_id));
            return Err(Outcome::state(2, 6001, 0));
        }
        poll.pen
            .info(device, &lines::dependency_install(parent, child_id));
        let outcome = enforce(device, state, poll, child, &child_detection).await;
        let child_rev = child["Version"].as_i64().unwrap_or(1);
        let key = app_key(&poll.user, child_id, child_rev);
        extra.extend(report_state(
            device,
            poll,
            &key,
            (0, 2),
            &outcome,
            child_id,
            child_rev,
        ));
        if outcome.compliance != 1 {
            return Err(Outcome::state(2, 6001, 0));
        }
    }
    Ok(())
}

/// After an app installs, uninstalls the apps it replaces (supersedence Action 110).
fn supersede(device: &mut Device, poll: &mut Poll<'_>, policy: &Value) {
    for rel in policy["FlatDependencies"].as_array().into_iter().flatten() {
        if rel["Type"] != 1 || rel["Action"] != 110 {
            continue;
        }
        let old_id = rel["ChildId"].as_str().unwrap_or_default();
        let all = poll.all;
        let Some(old) = all.iter().find(|p| p["Id"].as_str() == Some(old_id)) else {
            continue;
        };
        let id = policy["Id"].as_str().unwrap_or_default();
        poll.pen.info(device, &lines::superseding(id, old_id));
        let _ = uninstall(device, poll, old, old_id);
    }
}

/// Writes an app's state and returns its report when it changed since the last one
/// (`Reporting\...\ReportCache\<user>` LastHashValue; deleting it forces a report).
fn report_state(
    device: &mut Device,
    poll: &mut Poll<'_>,
    key: &str,
    (intent, target_type): (i64, i64),
    outcome: &Outcome,
    id: &str,
    rev: i64,
) -> Option<Value> {
    let user = poll.user.clone();
    let user = user.as_str();
    let before = reporting_state(device, key);
    let product_version = Value::Null;
    // Apps of the user's session install in the user's context (1), others in the
    // system's (2).
    let context = if user == DEVICE_USER { 2 } else { 1 };
    let (compliance, enforcement) = write_state(
        device,
        key,
        (intent, target_type, context),
        outcome,
        &product_version,
        poll.now,
    );
    let old = before.as_ref().and_then(|b| {
        Some((
            b["EnforcementState"].as_i64()?,
            b["EnforcementErrorCode"].as_i64().unwrap_or(0),
        ))
    });
    if old != Some((outcome.enforcement, outcome.error_code)) {
        let name = |e: i64| states::enforcement(e);
        poll.pen.info(
            device,
            &lines::execution_delta(
                id,
                old.map(|(e, c)| (name(e), c)),
                (name(outcome.enforcement), outcome.error_code),
            ),
        );
    }
    // Report when the state changed since the last report (Reporting\...\LastHashValue).
    let report = json!({
        "ApplicationId": id,
        "UserId": user,
        "Version": rev,
        "Intent": intent,
        "ErrorCode": outcome.error_code,
        "ComplianceStateMessage": compliance,
        "EnforcementStateMessage": enforcement,
    });
    let hash = hex::encode(Sha256::digest(
        json!([compliance, enforcement]).to_string().as_bytes(),
    ));
    let cache = format!(r"{WIN32APPS}\Reporting\{user}\{id}\ReportCache\{user}");
    if device.registry.get_text(&cache, "LastHashValue").as_deref() == Some(hash.as_str()) {
        return None;
    }
    device
        .registry
        .set(&cache, "LastHashValue", RegValue::Sz(hash));
    let status = if outcome.compliance == 1 {
        "Installed"
    } else if outcome.enforcement >= 5000 {
        "Failed"
    } else {
        "NotInstalled"
    };
    let portal = lines::object(&[
        ("ApplicationId", json!(id)),
        ("ResultantAppState", json!(outcome.compliance)),
        ("ReportingImpact", Value::Null),
        ("WriteableToStorage", json!(true)),
        ("CanGenerateComplianceState", json!(true)),
        ("CanGenerateEnforcementState", json!(true)),
        ("IsAppReportable", json!(true)),
        ("IsAppAggregatable", json!(true)),
        ("AvailableAppEnforcementFlag", json!(0)),
        ("DesiredState", json!(outcome.desired)),
        (
            "DetectionState",
            json!(detection_state(Some(outcome.compliance))),
        ),
        ("DetectionErrorOccurred", json!(false)),
        ("DetectionErrorCode", Value::Null),
        ("ApplicabilityState", json!(outcome.applicability)),
        ("ApplicabilityErrorOccurred", json!(false)),
        ("ApplicabilityErrorCode", Value::Null),
        ("EnforcementState", json!(outcome.enforcement)),
        ("EnforcementErrorCode", json!(outcome.error_code)),
    ]);
    poll.pen
        .info(device, &lines::company_portal_status(&portal));
    let mut status_pen = Pen::new(APP_LOG, "AppWorkload", threads::STATUS_SERVICE, poll.pen.at);
    status_pen.info(
        device,
        &lines::status_returned(
            user,
            id,
            states::applicability(outcome.applicability),
            status,
            outcome.error_code,
        ),
    );
    Some(report)
}

/// The uninstall intent: if the app is detected, run its uninstall command line and
/// check that it is gone (DesiredState 1, not present).
fn uninstall(device: &mut Device, poll: &mut Poll<'_>, policy: &Value, id: &str) -> Outcome {
    let detection = &detection_rule(policy);
    let gone = Outcome {
        desired: 1,
        ..Outcome::state(2, 1000, 0)
    };
    let detected = rules::detected(device, detection);
    poll.pen
        .info(device, &lines::detection_result(id, detected));
    if !detected {
        poll.pen.info(device, &lines::no_action(id));
        return gone;
    }
    let rev = policy["Version"].as_i64().unwrap_or(1);
    poll.pen
        .info(device, &lines::handler_invoked("Uninstall", id, rev));
    let timeout = std::time::Duration::from_secs(3600);
    let run = match winget_package(policy) {
        Some(package) => {
            // A Store app goes the way it came: through WinGet.
            poll.pen.info(device, &lines::winget_handler(id, &package));
            poll.pen.info(device, &lines::winget_uninstalling(&package));
            let run = device.winget_uninstall(&package);
            poll.pen.spend(Duration::seconds(15));
            poll.pen
                .info(device, &lines::winget_uninstalled(&package, run.exit_code));
            poll.pen.info(device, &lines::exit_code(run.exit_code));
            run
        }
        None => {
            let line = policy["UninstallCommandLine"].as_str().unwrap_or_default();
            poll.pen
                .info(device, &lines::launch_installer("machine", line));
            let run = device.run(line, r"C:\Windows\Temp", timeout, poll.now);
            installer_steps(device, poll, id, &run, timeout);
            run
        }
    };
    if installer::is_success(run.exit_code) && !rules::detected(device, detection) {
        return Outcome {
            exit_code: Some(run.exit_code),
            ..gone
        };
    }
    let code = if installer::is_success(run.exit_code) {
        E_NOT_DETECTED
    } else {
        run.exit_code
    };
    Outcome {
        desired: 1,
        exit_code: Some(run.exit_code),
        ..Outcome::state(1, 5000, code)
    }
}

/// The installer's process, from its creation to its exit code: the lines, and the
/// time it ran (a simulated installer takes a plausible while; a timeout its limit).
fn installer_steps(
    device: &Device,
    poll: &mut Poll<'_>,
    id: &str,
    run: &installer::Outcome,
    timeout: std::time::Duration,
) {
    let pid = super::process_id(id, poll.now);
    poll.pen.info(device, &lines::installer_created());
    poll.pen.info(device, &lines::process_id(pid));
    poll.pen.info(
        device,
        &lines::installer_timeout(timeout.as_millis() as u64),
    );
    let took = if run.timed_out {
        Duration::from_std(timeout).unwrap_or(Duration::hours(1))
    } else if run.installed.is_some() || run.removed.is_some() {
        Duration::milliseconds(18_000 + i64::from(pid % 7_000))
    } else {
        Duration::milliseconds(2_500 + i64::from(pid % 1_500))
    };
    poll.pen.spend(took);
    poll.pen.info(device, &lines::installation_done());
    poll.pen.info(device, &lines::exit_code(run.exit_code));
}

/// A Microsoft Store (new) app's WinGet package identifier, from the policy's
/// `InstallerData`; `None` for a Win32 app.
pub fn winget_package(policy: &Value) -> Option<String> {
    let data: Value = serde_json::from_str(policy["InstallerData"].as_str()?).ok()?;
    data["PackageIdentifier"]
        .as_str()
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
}

/// The app's detection rules: its DetectionRule, or for a Store app, WinGet's word on
/// its package (a rule of Tenantless's own type, never on the wire).
pub fn detection_rule(policy: &Value) -> String {
    match winget_package(policy) {
        Some(package) => {
            json!([{ "DetectionType": rules::WINGET, "DetectionText": package }]).to_string()
        }
        None => policy["DetectionRule"].as_str().unwrap_or("[]").to_owned(),
    }
}

/// The policy of an app named by its id (in any case) or its display name.
pub fn find_policy<'a>(policies: &'a [Value], app: &str) -> Option<&'a Value> {
    policies.iter().find(|p| {
        p["Id"]
            .as_str()
            .is_some_and(|i| i.eq_ignore_ascii_case(app))
            || p["Name"].as_str() == Some(app)
    })
}

/// The user asks for an available app (Company Portal's "Install"): the IME fetches the
/// available apps, picks the one named (by id or display name) and processes it.
pub async fn install_available(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    app: &str,
    now: DateTime<Utc>,
) -> Result<bool, AgentError> {
    let gateway = gateway_url(state, client).await?;
    let info = json!({ "DeviceName": device.profile.device_name, "SideCarAgentVersion": state.ime.version });
    let session = gateway::session_id(app, now);
    let gw = gateway::Session {
        client,
        url: &gateway,
        id: &session,
        info: &info,
    };
    let mut pen = poller_pen(now);
    pen.info(device, &lines::poller_starts());
    pen.info(device, &lines::requesting(lines::Requested::Available));
    let all = fetch_policies(
        device,
        Some(&mut pen),
        &gw,
        ("GetAvailableApp", &json!([])),
        "OnDemand",
    )
    .await?;
    let Some(id) = find_policy(&all, app).and_then(|p| p["Id"].as_str()) else {
        pen.info(device, &lines::poller_stopped());
        return Ok(false);
    };
    // The user picked it (Company Portal): the IME asks for that app's policy alone.
    pen.info(device, &lines::requesting(lines::Requested::Selected));
    let selected = fetch_policies(
        device,
        Some(&mut pen),
        &gw,
        ("GetSelectedApp", &json!({ "ApplicationId": id })),
        "OnDemand",
    )
    .await?;
    let Some(mut policy) = selected.into_iter().next() else {
        pen.info(device, &lines::poller_stopped());
        return Ok(false);
    };
    policy["Tenantless.Requested"] = Value::Bool(true);
    pen.info(device, &lines::processing_subgraph(&subgraph_ids(&policy)));
    // Company Portal runs in the signed-in user's session.
    let user = portal_user(device);
    let mut poll = Poll {
        gw: &gw,
        all: &all,
        now,
        pen,
        session: u32::from(user != DEVICE_USER),
        user,
    };
    let mut reports = Vec::new();
    let report = process(device, state, &mut poll, &policy, &mut reports).await;
    reports.extend(report);
    poll.pen.info(device, &lines::done_subgraph());
    poll.pen.info(device, &lines::poller_stopped());
    send_results(device, state, &gw, reports, ("OnDemand", now)).await?;
    Ok(true)
}

/// The gateway's address: known, or discovered now.
async fn gateway_url(state: &AgentState, client: &reqwest::Client) -> Result<String, AgentError> {
    if let Some(g) = &state.ime.gateway_url {
        return Ok(g.clone());
    }
    let management = state
        .enrollment
        .as_ref()
        .map(|e| e.addr.clone())
        .ok_or(AgentError::NotEnrolled)?;
    gateway::discover(client, &management).await
}

/// Whose Company Portal it is: the signed-in user (the device's "user" without one).
fn portal_user(device: &Device) -> String {
    match device.profile.user_object_id.as_str() {
        "" => DEVICE_USER.to_owned(),
        u => u.to_owned(),
    }
}

/// An app as Company Portal lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalApp {
    /// The app's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `Available` (never tried), `Installed`, `Installed, restart required` (the
    /// restart its install asked for is pending), `Not installed`, `Failed` or
    /// `Unknown`, from the app's state message on the device.
    pub status: &'static str,
}

/// Company Portal's list: the apps made available to the user (GetAvailableApp), each
/// with its status on this device.
pub async fn company_portal(
    device: &Device,
    state: &AgentState,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<Vec<PortalApp>, AgentError> {
    let gateway = gateway_url(state, client).await?;
    let info = json!({ "DeviceName": device.profile.device_name, "SideCarAgentVersion": state.ime.version });
    let session = gateway::session_id("CompanyPortal", now);
    let gw = gateway::Session {
        client,
        url: &gateway,
        id: &session,
        info: &info,
    };
    let available = fetch_policies(
        device,
        None,
        &gw,
        ("GetAvailableApp", &json!([])),
        "OnDemand",
    )
    .await?;
    let user = portal_user(device);
    Ok(available
        .iter()
        .filter_map(|p| {
            let id = p["Id"].as_str()?.to_owned();
            // Installed, with the restart it asked for still to come.
            let restarting = state.ime.restart.as_ref().is_some_and(|r| r.app_id == id);
            let status = match portal_status(device, &user, &id) {
                "Installed" if restarting => "Installed, restart required",
                status => status,
            };
            Some(PortalApp {
                name: p["Name"].as_str().unwrap_or_default().to_owned(),
                id,
                status,
            })
        })
        .collect())
}

/// An app's status in Company Portal, from its newest state message.
fn portal_status(device: &Device, user: &str, app_id: &str) -> &'static str {
    let base = format!(r"{WIN32APPS}\{user}");
    let newest = device
        .registry
        .subkeys(&base)
        .into_iter()
        .filter_map(|k| {
            let (id, rev) = k.rsplit_once('_')?;
            (id.eq_ignore_ascii_case(app_id)).then(|| (rev.parse::<i64>().unwrap_or(0), k.clone()))
        })
        .max();
    let Some((_, key)) = newest else {
        return "Available";
    };
    let Some(state) = reporting_state(device, &format!(r"{base}\{key}")) else {
        return "Available";
    };
    match state["DetectionState"].as_str() {
        Some("Installed") => "Installed",
        _ if state["EnforcementErrorCode"].as_i64().unwrap_or(0) != 0 => "Failed",
        _ => "Not installed",
    }
}

/// Sends the app state reports a poller run produced (`Win32AppResult`), if any.
async fn send_results(
    device: &Device,
    state: &mut AgentState,
    gw: &gateway::Session<'_>,
    reports: Vec<Value>,
    (reason, now): (&str, DateTime<Utc>),
) -> Result<(), AgentError> {
    if reports.is_empty() {
        return Ok(());
    }
    gateway::send_report(
        &mut state.ime.outbox,
        gw,
        "Win32AppResult",
        reports,
        reason,
        (&device.profile.device_id, now),
    )
    .await
}

/// The enforcement of an install with what the user sees of its end (the toast) and
/// the restart it leaves pending under the app's DeviceRestartBehavior.
async fn enforce(
    device: &mut Device,
    state: &mut AgentState,
    poll: &mut Poll<'_>,
    policy: &Value,
    detection: &str,
) -> Outcome {
    let outcome = enforce_steps(device, state, poll, policy, detection).await;
    let installed = outcome.compliance == 1 && outcome.exit_code.is_some();
    if installed || outcome.compliance == 4 {
        restart::install_ended(device, state, &mut poll.pen, policy, installed);
    }
    let Some(code) = outcome.exit_code else {
        return outcome;
    };
    let kind = return_type(policy, code).unwrap_or(0);
    let install_ex: Value =
        serde_json::from_str(policy["InstallEx"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
    if (1..=3).contains(&kind) && restart::needed(&install_ex, kind) {
        restart::require(
            device,
            state,
            &mut poll.pen,
            (policy, &install_ex),
            poll.now,
        );
    }
    outcome
}

/// The return code type (0 failed, 1 success, 2 soft reboot, 3 hard reboot, 4 retry)
/// the app's ReturnCodes give an exit code; `None` when it is not listed.
fn return_type(policy: &Value, code: i64) -> Option<i64> {
    let codes: Vec<Value> =
        serde_json::from_str(policy["ReturnCodes"].as_str().unwrap_or("[]")).unwrap_or_default();
    codes
        .iter()
        .find(|c| c["ReturnCode"].as_i64() == Some(code))
        .and_then(|c| c["Type"].as_i64())
}

/// The enforcement steps of an install: content (cached, or downloaded, checked,
/// decrypted and unzipped), detection once more, the installer, its exit code mapped
/// through the app's return codes, and detection again after a success.
async fn enforce_steps(
    device: &mut Device,
    state: &mut AgentState,
    poll: &mut Poll<'_>,
    policy: &Value,
    detection: &str,
) -> Outcome {
    let now = poll.now;
    let user = poll.user.clone();
    let user = user.as_str();
    let id = policy["Id"].as_str().unwrap_or_default();
    let rev = policy["Version"].as_i64().unwrap_or(1);
    let hash = subgraph_hash(id);
    let install_ex: Value =
        serde_json::from_str(policy["InstallEx"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
    poll.pen
        .info(device, &lines::handler_invoked("Install", id, rev));
    let behavior = if install_ex["RunAs"] == 2 {
        "User"
    } else {
        "System"
    };
    let intent = policy["Intent"].as_i64().unwrap_or(3);
    poll.pen
        .info(device, &lines::step_install_behavior(behavior, intent));
    let package = winget_package(policy);
    let cache = format!(r"{IMECACHE}\{id}_{rev}");
    if let Some(package) = &package {
        // A Store app: WinGet fetches it from its source as it installs.
        poll.pen.info(device, &lines::winget_handler(id, package));
    } else if device.drive.exists(&cache) {
        poll.pen.info(device, &lines::downloading(poll.session, id));
        poll.pen.info(device, &lines::cache_found(id));
    } else {
        poll.pen.info(device, &lines::downloading(poll.session, id));
        let key = state.enrollment.as_ref().map(|e| e.key_b64.clone());
        if let Err(e) = fetch_content(device, poll, key.as_deref(), policy, &cache).await {
            poll.pen.error(device, &lines::content_failed(id, &e));
            set_grs(device, user, id, now);
            poll.pen.info(device, &lines::grs_recorded(id, &hash, now));
            return Outcome::state(4, 5003, E_CONTENT);
        }
    }
    if state.ime.reboot_pending {
        poll.pen.info(device, &lines::reboot_pending(id));
        return Outcome::state(2, 2003, 0);
    }
    let max_retries = install_ex["MaxRetries"].as_u64().unwrap_or(3) as u32;
    let interval = install_ex["RetryIntervalInMinutes"].as_i64().unwrap_or(5);
    let max_run = install_ex["MaxRunTimeInMinutes"].as_u64().unwrap_or(60);
    let attempt = state.ime.apps.get(id).map(|a| a.attempts).unwrap_or(0) + 1;
    // The install begins (content in place, no restart in the way): the user is told,
    // before detection runs once more right ahead of the installer.
    restart::install_started(device, state, &mut poll.pen, policy);
    poll.pen.info(device, &lines::execute_retry(attempt - 1));
    // Detection once more right before the installer: an app that appeared meanwhile
    // is not installed twice.
    let there = rules::detected(device, detection);
    poll.pen.info(device, &lines::detection_result(id, there));
    if there {
        state.ime.apps.remove(id);
        clear_grs(device, user, id);
        return Outcome::state(1, 1000, 0);
    }
    let timeout = std::time::Duration::from_secs(max_run * 60);
    let run = match &package {
        Some(package) => {
            poll.pen.info(device, &lines::winget_installing(package));
            let run = device.winget_install(package, now);
            poll.pen.spend(Duration::seconds(40));
            poll.pen
                .info(device, &lines::winget_installed(package, run.exit_code));
            poll.pen.info(device, &lines::exit_code(run.exit_code));
            run
        }
        None => {
            let line = policy["InstallCommandLine"].as_str().unwrap_or_default();
            poll.pen
                .info(device, &lines::launch_installer("machine", line));
            let run = device.run(line, &cache, timeout, now);
            installer_steps(device, poll, id, &run, timeout);
            run
        }
    };
    let code = run.exit_code;
    let mapped = return_type(policy, code);
    match mapped {
        Some(kind) => poll.pen.info(
            device,
            &lines::exit_code_defined(states::return_code_type(kind)),
        ),
        None => poll.pen.info(device, &lines::exit_code_unmapped(code, id)),
    }
    let mut outcome = match mapped.unwrap_or(0) {
        kind @ 1..=3 => {
            // Success (or a reboot, which the reboot manager handles): detect again.
            state.ime.apps.remove(id);
            if kind == 3 {
                state.ime.reboot_pending = true;
                poll.pen.warn(device, &lines::reboot_required(id, code));
            }
            let detected = rules::detected(device, detection);
            poll.pen
                .info(device, &lines::detection_result(id, detected));
            if detected {
                poll.pen.info(
                    device,
                    &lines::detection_delta(id, Some("NotInstalled"), "Installed"),
                );
                clear_grs(device, user, id);
                state.ime.evaluated.insert(id.to_owned(), now);
                clean_cache(device, poll, policy, &cache);
                Outcome::state(1, 1000, 0)
            } else {
                poll.pen
                    .error(device, &lines::not_detected_after_install(id));
                set_grs(device, user, id, now);
                poll.pen.info(device, &lines::grs_recorded(id, &hash, now));
                Outcome::state(4, 5000, E_NOT_DETECTED)
            }
        }
        4 if attempt <= max_retries => {
            let next = now + Duration::minutes(interval);
            state.ime.apps.insert(
                id.to_owned(),
                AppRun {
                    attempts: attempt,
                    next_retry: Some(next),
                    policy: policy.clone(),
                    wake_at: None,
                },
            );
            poll.pen.warn(
                device,
                &lines::retry_scheduled(id, attempt, max_retries + 1, next),
            );
            Outcome::state(2, 5006, code)
        }
        _ => {
            state.ime.apps.remove(id);
            set_grs(device, user, id, now);
            poll.pen.error(device, &lines::grs_recorded(id, &hash, now));
            Outcome::state(4, 5000, code)
        }
    };
    outcome.exit_code = Some(code);
    outcome
}

/// After a successful install the unzipped content is kept for the app's
/// ContentCacheDuration (minutes; none by default) and removed otherwise.
fn clean_cache(device: &mut Device, poll: &mut Poll<'_>, policy: &Value, cache: &str) {
    let keep = policy["ContentCacheDuration"].as_i64().unwrap_or(0);
    if keep > 0 {
        return;
    }
    poll.pen.info(device, &lines::cleaning_cache(cache));
    let _ = device.drive.remove(cache);
}

/// Where Delivery Optimization's download mode is set by policy.
pub const DO_POLICY_KEY: &str = r"HKLM\SOFTWARE\Policies\Microsoft\Windows\DeliveryOptimization";
/// Delivery Optimization's "Bypass" download mode: content comes straight from the CDN.
const DO_BYPASS: u32 = 100;
/// The most progress lines the status service writes for one download.
const DO_PROGRESS_LINES: i64 = 20;

/// True when the IME hands the download to Delivery Optimization, as Windows does
/// unless `DODownloadMode` is 100 (Bypass); then it downloads in CDN mode.
fn delivery_optimization(device: &Device) -> bool {
    !matches!(
        device.registry.get(DO_POLICY_KEY, "DODownloadMode"),
        Some(RegValue::Dword(DO_BYPASS))
    )
}

/// Delivery Optimization's job, as the status service sees it: a progress line about
/// every second of the download (at most [`DO_PROGRESS_LINES`], the last with every
/// byte), on the status service's thread, while the poller waits for the job.
fn do_progress(
    device: &Device,
    poll: &mut Poll<'_>,
    (id, name): (&str, &str),
    size: u64,
    took: Duration,
) {
    let steps = took.num_seconds().clamp(1, DO_PROGRESS_LINES);
    let mut status = Pen::new(APP_LOG, "AppWorkload", threads::STATUS_SERVICE, poll.pen.at);
    for step in 1..=steps {
        status.spend(took / steps as i32);
        let done = size * step as u64 / steps as u64;
        status.info(
            device,
            &lines::do_progress(id, name, done, size, &poll.user),
        );
    }
    poll.pen.spend(took);
}

/// Downloads an app's content into the staging folder, checks and decrypts it and
/// unzips it into the IMECache, writing each step's lines; the download takes the
/// time its size needs at the device's bandwidth.
async fn fetch_content(
    device: &mut Device,
    poll: &mut Poll<'_>,
    device_key: Option<&str>,
    policy: &Value,
    cache: &str,
) -> Result<(), String> {
    let id = policy["Id"].as_str().unwrap_or_default();
    let rev = policy["Version"].as_i64().unwrap_or(1);
    let name = policy["Name"].as_str().unwrap_or_default();
    let payload = poll
        .gw
        .call(
            "GetContentInfo",
            &json!({ "ApplicationId": id, "ApplicationVersion": rev }),
            "Unknown",
        )
        .await
        .map_err(|e| e.to_string())?;
    let answer: Value = serde_json::from_str(&payload).map_err(|e| e.to_string())?;
    let content: Value = serde_json::from_str(answer["ContentInfo"].as_str().unwrap_or("{}"))
        .map_err(|e| e.to_string())?;
    poll.pen.info(device, &lines::content_info(&payload));
    let keys =
        gateway::open_decrypt_info(answer["DecryptInfo"].as_str().unwrap_or("{}"), device_key)?;
    let url = content["UploadLocation"]
        .as_str()
        .ok_or("no content location")?;
    poll.pen.info(device, &lines::cache_miss(id, name));
    let through_do = delivery_optimization(device);
    if !through_do {
        poll.pen.info(device, &lines::cdn_url(url));
    }
    // Downloaded to Incoming, decrypted beside it, unzipped into the cache, a piece at a
    // time: a package of gigabytes never sits whole in memory.
    let staging = format!(r"{INCOMING}\{id}_{rev}.bin");
    let size = match download(device, poll.gw.client, url, &staging).await {
        Ok(size) => size,
        Err(e) => {
            let _ = device.drive.remove(&staging);
            return Err(e);
        }
    };
    let kbps = device.profile.download_kbps.max(1);
    let took = Duration::milliseconds((size * 8 / kbps) as i64 + 120);
    if through_do {
        do_progress(device, poll, (id, name), size, took);
        poll.pen.info(device, &lines::do_complete());
    } else {
        poll.pen.spend(took);
        poll.pen.info(device, &lines::cdn_done());
    }
    poll.pen.info(device, &lines::downloaded_size(size));
    poll.pen
        .info(device, &lines::downloaded_time(took.num_milliseconds()));
    let s = |k: &str| keys[k].as_str().unwrap_or_default().to_owned();
    let info = syncml::intunewin::EncryptionInfo {
        encryption_key: s("EncryptionKey"),
        mac_key: s("MacKey"),
        initialization_vector: match s("IV") {
            iv if iv.is_empty() => s("InitializationVector"),
            iv => iv,
        },
        mac: s("Mac"),
        profile_identifier: s("ProfileIdentifier"),
        file_digest: s("FileDigest"),
        file_digest_algorithm: s("FileDigestAlgorithm"),
    };
    poll.pen.info(device, &lines::verifying_hash());
    let inner = format!(r"{INCOMING}\{id}_{rev}.zip");
    if let Err(e) = decrypt_file(device, &staging, &inner, &info) {
        let _ = device.drive.remove(&staging);
        let _ = device.drive.remove(&inner);
        return Err(e);
    }
    poll.pen.info(device, &lines::hash_pass());
    poll.pen.info(device, &lines::decryption_done());
    poll.pen.info(device, &lines::start_unzipping());
    let unzipped = unzip_file(device, &inner, cache);
    let _ = device.drive.remove(&inner);
    unzipped?;
    poll.pen.info(device, &lines::cleaning_staging(&staging));
    let _ = device.drive.remove(&staging);
    Ok(())
}

/// Streams a download into a file on the device's drive: its length.
async fn download(
    device: &Device,
    client: &reqwest::Client,
    url: &str,
    to: &str,
) -> Result<u64, String> {
    use std::io::Write;
    let mut answer = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| e.to_string())?;
    let mut file = device.drive.create(to).map_err(|e| e.to_string())?;
    let mut size = 0u64;
    while let Some(piece) = answer.chunk().await.map_err(|e| e.to_string())? {
        file.write_all(&piece).map_err(|e| e.to_string())?;
        size += piece.len() as u64;
    }
    Ok(size)
}

/// The bytes of a file read in pieces of this size.
const PIECE: usize = 1 << 20;

/// Checks and decrypts the encrypted file `from` into the inner zip `to`; on a MAC or
/// digest mismatch, the error (the caller removes what was written).
fn decrypt_file(
    device: &Device,
    from: &str,
    to: &str,
    info: &syncml::intunewin::EncryptionInfo,
) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut input = device.drive.open_file(from).map_err(|e| e.to_string())?;
    let mut output = device.drive.create(to).map_err(|e| e.to_string())?;
    let mut check = syncml::intunewin::ContentCheck::new(info).map_err(|e| e.to_string())?;
    let mut piece = vec![0u8; PIECE];
    let mut plain = Vec::with_capacity(PIECE + 16);
    loop {
        let n = input.read(&mut piece).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        check.update_into(&piece[..n], &mut plain);
        output.write_all(&plain).map_err(|e| e.to_string())?;
        plain.clear();
    }
    check.finish_into(&mut plain).map_err(|e| e.to_string())?;
    output.write_all(&plain).map_err(|e| e.to_string())
}

/// Unzips the inner zip `from` into the folder `cache`, a file at a time.
fn unzip_file(device: &Device, from: &str, cache: &str) -> Result<(), String> {
    let input = device.drive.open_file(from).map_err(|e| e.to_string())?;
    syncml::intunewin::extract_each(input, |path, reader| {
        let mut out = device
            .drive
            .create(&format!(r"{cache}\{}", path.replace('/', "\\")))?;
        std::io::copy(reader, &mut out).map(|_| ())
    })
    .map_err(|e| e.to_string())
}

/// Exit codes with their IME meaning, for tests and logs.
pub fn is_install_success(code: i64) -> bool {
    installer::is_success(code)
}
