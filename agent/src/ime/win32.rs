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
use super::rules;
use crate::cmtrace::Severity;
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

fn log(device: &Device, now: DateTime<Utc>, severity: Severity, message: &str) {
    super::log(device, APP_LOG, "AppWorkload", message, severity, now);
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

/// The GRS key of an app's subgraph: a base64 (URL alphabet) hash of the app ids in it.
pub fn grs_key(user: &str, app_id: &str) -> String {
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(app_id.to_lowercase().as_bytes()));
    format!(r"{WIN32APPS}\{user}\GRS\{hash}")
}

const GRS_FORMAT: &str = "%m/%d/%Y %H:%M:%S";

fn grs_time(device: &Device, user: &str, app_id: &str) -> Option<DateTime<Utc>> {
    let text = device.registry.get_text(&grs_key(user, app_id), app_id)?;
    NaiveDateTime::parse_from_str(&text, GRS_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

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
    intent: i64,
    target_type: i64,
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
        "InstallContext": 2,
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

/// Asks the gateway for app policies (a compressed list), logs them as the IME does
/// (`[Win32App] <label> = [...]`) and parses them.
async fn fetch_policies(
    device: &Device,
    now: DateTime<Utc>,
    gw: &gateway::Session<'_>,
    request: &str,
    payload: &Value,
    reason: &str,
    label: &str,
) -> Result<Vec<Value>, AgentError> {
    let payload = gw.call(request, payload, reason).await?;
    let text = gateway::decompress(&payload).unwrap_or_else(|| "[]".into());
    log(
        device,
        now,
        Severity::Info,
        &format!("[Win32App] {label} = {text}"),
    );
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

/// One policy check-in: fetch the required apps and process each.
pub async fn checkin(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<usize, AgentError> {
    let scheduled = state.ime.next_checkin.is_some_and(|t| t <= now);
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
    let reason = if state.ime.checkin_reason.is_empty() {
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
        super::remediations::fetch(device, state, &gw, &reason, now).await?;
    }
    log(device, now, Severity::Info, &format!("[Win32App] ..................... Processing user session 1, userId: {DEVICE_USER}, userSID: S-1-5-18 ....................."));
    let policies = fetch_policies(
        device,
        now,
        &gw,
        "RequestApplication",
        &json!([]),
        &reason,
        "Get policies",
    )
    .await?;
    let mut reports = Vec::new();
    for policy in &policies {
        if policy["Intent"] == 0 {
            continue; // a dependency or superseded app, processed with its parent
        }
        let mut extra = Vec::new();
        let report = process(device, state, &gw, policy, &policies, &mut extra, now).await;
        reports.extend(extra);
        reports.extend(report);
    }
    if !reports.is_empty() {
        log(
            device,
            now,
            Severity::Info,
            &format!(
                "[Win32App][ReportingManager] Sending {} app state report(s)",
                reports.len()
            ),
        );
        gateway::send_report(
            &mut state.ime.outbox,
            &gw,
            "Win32AppResult",
            reports,
            "Unknown",
            (&device.profile.device_id, now),
        )
        .await?;
    }
    state.ime.next_checkin = Some(now + Duration::minutes(60));
    Ok(policies.len())
}

async fn process(
    device: &mut Device,
    state: &mut AgentState,
    gw: &gateway::Session<'_>,
    policy: &Value,
    all: &[Value],
    extra: &mut Vec<Value>,
    now: DateTime<Utc>,
) -> Option<Value> {
    let id = policy["Id"].as_str().unwrap_or_default().to_owned();
    let rev = policy["Version"].as_i64().unwrap_or(1);
    let intent = policy["Intent"].as_i64().unwrap_or(0);
    let target_type = policy["TargetType"].as_i64().unwrap_or(2);
    let user = DEVICE_USER;
    let key = app_key(user, &id, rev);
    if intent == 1 && policy["Tenantless.Requested"] != true {
        return None; // available apps install only when the user asks
    }
    if intent == 4 {
        let outcome = uninstall(device, policy, &id, now);
        return report_state(device, &key, intent, target_type, &outcome, &id, rev, now);
    }
    if !matches!(intent, 1 | 3) {
        return None;
    }
    if !device.registry.key_exists(&key) {
        // A new app, or its key was deleted (the Ripley maneuver): start afresh.
        state.ime.apps.remove(&id);
        state.ime.evaluated.remove(&id);
    }
    let intent_name = match intent {
        1 => "AvailableInstall",
        4 => "RequiredUninstall",
        _ => "RequiredInstall",
    };
    log(device, now, Severity::Info, &format!("[Win32App][ActionProcessor] App with id: {id}, targeted intent: {intent_name}, desired state: {}", if intent == 4 { "NotPresent" } else { "Present" }));
    // An installed app's subgraph is evaluated again only when its reevaluation
    // interval (480 minutes) has passed since the last evaluation.
    let interval = Duration::minutes(policy["ReevaluationInterval"].as_i64().unwrap_or(480));
    if let Some(last) = state.ime.evaluated.get(&id).copied() {
        if last + interval > now && policy["Tenantless.Requested"] != true {
            log(device, now, Severity::Info, &format!("[Win32App][ReevaluationScheduleManager] Subgraph of app {id} was evaluated at {last}; next evaluation at {}", last + interval));
            return None;
        }
        log(device, now, Severity::Info, &format!("[Win32App][ReevaluationScheduleManager] Reevaluating the subgraph of app {id} (last evaluated at {last})"));
    }
    let detection = policy["DetectionRule"].as_str().unwrap_or("[]").to_owned();
    log(
        device,
        now,
        Severity::Info,
        &format!(
            "[Win32App] ProcessDetectionRules for app {id} ({})",
            policy["Name"].as_str().unwrap_or_default()
        ),
    );
    let outcome = if rules::detected(device, &detection) {
        log(
            device,
            now,
            Severity::Info,
            &format!("[Win32App] Checked detection for app {id}: detected"),
        );
        clear_grs(device, user, &id);
        state.ime.apps.remove(&id);
        if intent != 4 {
            state.ime.evaluated.insert(id.clone(), now);
        }
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
        log(
            device,
            now,
            Severity::Info,
            &format!("[Win32App] Requirements not met for app {id}: applicability {code}"),
        );
        Outcome {
            applicability: code,
            ..Outcome::state(2, 3000, 0)
        }
    } else {
        let start = dotnet_date(&policy["StartDeadlineEx"]["StartTime"]);
        let deadline = dotnet_date(&policy["StartDeadlineEx"]["Deadline"]);
        if let Some(start) = start.filter(|s| *s > now) {
            // Before the start time: detection and a report, nothing else.
            log(
                device,
                now,
                Severity::Info,
                &format!("[Win32App] App {id} is not available until {start}; detection only"),
            );
            state.ime.apps.entry(id.clone()).or_default().wake_at = Some(start);
            return report_state(
                device,
                &key,
                intent,
                target_type,
                &Outcome::state(2, 6000, 0),
                &id,
                rev,
                now,
            );
        }
        if let Some(deadline) = deadline.filter(|d| *d > now) {
            // Between the start time and the deadline: download and cache the content.
            let cache = format!(r"{IMECACHE}\{id}_{rev}");
            state.ime.apps.entry(id.clone()).or_default().wake_at = Some(deadline);
            let outcome = if device.drive.exists(&cache) {
                Outcome::state(2, 2009, 0)
            } else {
                let key = state.enrollment.as_ref().map(|e| e.key_b64.as_str());
                match fetch_content(device, gw, key, &id, rev, &cache, now).await {
                    Ok(()) => {
                        log(device, now, Severity::Info, &format!("[Win32App] App {id} content cached; install pending until the deadline {deadline}"));
                        Outcome::state(2, 2009, 0)
                    }
                    Err(e) => {
                        log(
                            device,
                            now,
                            Severity::Error,
                            &format!("[Win32App] Content for app {id} failed: {e}"),
                        );
                        Outcome::state(4, 5003, E_CONTENT)
                    }
                }
            };
            return report_state(device, &key, intent, target_type, &outcome, &id, rev, now);
        }
        if let Some(run) = state.ime.apps.get_mut(&id) {
            run.wake_at = None;
        }
        let run = state.ime.apps.entry(id.clone()).or_default().clone();
        if let Some(t) = run.next_retry.filter(|t| *t > now) {
            log(
                device,
                now,
                Severity::Info,
                &format!("[Win32App] App {id} waits for its retry at {t}"),
            );
            return None;
        }
        if run.next_retry.is_none() {
            if let Some(stamp) = grs_time(device, user, &id) {
                if stamp + grs_period() > now {
                    log(device, now, Severity::Info, &format!("[Win32App][GRSManager] App with id: {id} is not expired, will be skipped."));
                    return None;
                }
                log(device, now, Severity::Info, &format!("[Win32App][GRSManager] App with id: {id} has expired in GRS, will be retried."));
            }
        }
        match dependencies(device, state, gw, policy, all, extra, now).await {
            Err(blocked) => blocked,
            Ok(()) => {
                let outcome = enforce(device, state, gw, policy, &id, rev, &detection, now).await;
                if outcome.compliance == 1 {
                    supersede(device, policy, all, now);
                }
                outcome
            }
        }
    };
    report_state(device, &key, intent, target_type, &outcome, &id, rev, now)
}

/// Installs an app's auto-install dependencies first, deepest level first; `Err` holds
/// the parent's outcome when a dependency is missing or did not install (6001: not
/// attempted because of a dependency).
async fn dependencies(
    device: &mut Device,
    state: &mut AgentState,
    gw: &gateway::Session<'_>,
    policy: &Value,
    all: &[Value],
    extra: &mut Vec<Value>,
    now: DateTime<Utc>,
) -> Result<(), Outcome> {
    let mut deps: Vec<&Value> = policy["FlatDependencies"]
        .as_array()
        .map(|d| d.iter().filter(|d| d["Type"] == 0).collect())
        .unwrap_or_default();
    deps.sort_by_key(|d| std::cmp::Reverse(d["Level"].as_i64().unwrap_or(0)));
    for dep in deps {
        let child_id = dep["ChildId"].as_str().unwrap_or_default();
        let Some(child) = all.iter().find(|p| p["Id"].as_str() == Some(child_id)) else {
            log(
                device,
                now,
                Severity::Error,
                &format!("[Win32App] Dependency {child_id} has no policy"),
            );
            return Err(Outcome::state(2, 6001, 0));
        };
        let child_detection = child["DetectionRule"].as_str().unwrap_or("[]").to_owned();
        if rules::detected(device, &child_detection) {
            continue;
        }
        if dep["Action"] != 10 {
            log(
                device,
                now,
                Severity::Info,
                &format!("[Win32App] Dependency {child_id} is not detected and is detect-only"),
            );
            return Err(Outcome::state(2, 6001, 0));
        }
        log(
            device,
            now,
            Severity::Info,
            &format!("[Win32App] Installing dependency {child_id} first"),
        );
        let child_rev = child["Version"].as_i64().unwrap_or(1);
        let outcome = enforce(
            device,
            state,
            gw,
            child,
            child_id,
            child_rev,
            &child_detection,
            now,
        )
        .await;
        let key = app_key(DEVICE_USER, child_id, child_rev);
        extra.extend(report_state(
            device, &key, 0, 2, &outcome, child_id, child_rev, now,
        ));
        if outcome.compliance != 1 {
            return Err(Outcome::state(2, 6001, 0));
        }
    }
    Ok(())
}

/// After an app installs, uninstalls the apps it replaces (supersedence Action 110).
fn supersede(device: &mut Device, policy: &Value, all: &[Value], now: DateTime<Utc>) {
    for rel in policy["FlatDependencies"].as_array().into_iter().flatten() {
        if rel["Type"] != 1 || rel["Action"] != 110 {
            continue;
        }
        let old_id = rel["ChildId"].as_str().unwrap_or_default();
        let Some(old) = all.iter().find(|p| p["Id"].as_str() == Some(old_id)) else {
            continue;
        };
        log(
            device,
            now,
            Severity::Info,
            &format!(
                "[Win32App] App {} supersedes {old_id}; uninstalling it",
                policy["Id"].as_str().unwrap_or_default()
            ),
        );
        let _ = uninstall(device, old, old_id, now);
    }
}

/// Writes an app's state and returns its report when it changed since the last one
/// (`Reporting\...\ReportCache\<user>` LastHashValue; deleting it forces a report).
#[allow(clippy::too_many_arguments)]
fn report_state(
    device: &mut Device,
    key: &str,
    intent: i64,
    target_type: i64,
    outcome: &Outcome,
    id: &str,
    rev: i64,
    now: DateTime<Utc>,
) -> Option<Value> {
    let user = DEVICE_USER;
    let product_version = Value::Null;
    let (compliance, enforcement) = write_state(
        device,
        key,
        intent,
        target_type,
        outcome,
        &product_version,
        now,
    );
    // Report when the state changed since the last report (Reporting\...\LastHashValue).
    let report = json!({
        "ApplicationId": id,
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
    Some(report)
}

/// The uninstall intent: if the app is detected, run its uninstall command line and
/// check that it is gone (DesiredState 1, not present).
fn uninstall(device: &mut Device, policy: &Value, id: &str, now: DateTime<Utc>) -> Outcome {
    let detection = policy["DetectionRule"].as_str().unwrap_or("[]");
    let gone = Outcome {
        desired: 1,
        ..Outcome::state(2, 1000, 0)
    };
    if !rules::detected(device, detection) {
        return gone;
    }
    let line = policy["UninstallCommandLine"].as_str().unwrap_or_default();
    log(
        device,
        now,
        Severity::Info,
        &format!("[Win32App] Uninstalling app {id}, command line: {line}"),
    );
    let run = device.run(
        line,
        r"C:\Windows\Temp",
        std::time::Duration::from_secs(3600),
        now,
    );
    log(
        device,
        now,
        Severity::Info,
        &format!("[Win32App] Uninstall lpExitCode {}", run.exit_code),
    );
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

/// The user asks for an available app (Company Portal's "Install"): the IME fetches the
/// available apps, picks the one named (by id or display name) and processes it.
pub async fn install_available(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    app: &str,
    now: DateTime<Utc>,
) -> Result<bool, AgentError> {
    let management = state
        .enrollment
        .as_ref()
        .map(|e| e.addr.clone())
        .ok_or(AgentError::NotEnrolled)?;
    let gateway = match &state.ime.gateway_url {
        Some(g) => g.clone(),
        None => gateway::discover(client, &management).await?,
    };
    let info = json!({ "DeviceName": device.profile.device_name, "SideCarAgentVersion": state.ime.version });
    let session = gateway::session_id(app, now);
    let gw = gateway::Session {
        client,
        url: &gateway,
        id: &session,
        info: &info,
    };
    let all = fetch_policies(
        device,
        now,
        &gw,
        "GetAvailableApp",
        &json!([]),
        "OnDemand",
        "Get available apps",
    )
    .await?;
    let Some(id) = all
        .iter()
        .find(|p| {
            p["Id"]
                .as_str()
                .is_some_and(|i| i.eq_ignore_ascii_case(app))
                || p["Name"].as_str() == Some(app)
        })
        .and_then(|p| p["Id"].as_str())
    else {
        return Ok(false);
    };
    // The user picked it (Company Portal): the IME asks for that app's policy alone.
    let selected = fetch_policies(
        device,
        now,
        &gw,
        "GetSelectedApp",
        &json!({ "ApplicationId": id }),
        "OnDemand",
        "Get selected app",
    )
    .await?;
    let Some(mut policy) = selected.into_iter().next() else {
        return Ok(false);
    };
    policy["Tenantless.Requested"] = Value::Bool(true);
    let mut reports = Vec::new();
    let report = process(device, state, &gw, &policy, &all, &mut reports, now).await;
    reports.extend(report);
    if !reports.is_empty() {
        gateway::send_report(
            &mut state.ime.outbox,
            &gw,
            "Win32AppResult",
            reports,
            "OnDemand",
            (&device.profile.device_id, now),
        )
        .await?;
    }
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
async fn enforce(
    device: &mut Device,
    state: &mut AgentState,
    gw: &gateway::Session<'_>,
    policy: &Value,
    id: &str,
    rev: i64,
    detection: &str,
    now: DateTime<Utc>,
) -> Outcome {
    let user = DEVICE_USER;
    let cache = format!(r"{IMECACHE}\{id}_{rev}");
    if !device.drive.exists(&cache) {
        let key = state.enrollment.as_ref().map(|e| e.key_b64.as_str());
        if let Err(e) = fetch_content(device, gw, key, id, rev, &cache, now).await {
            log(
                device,
                now,
                Severity::Error,
                &format!("[Win32App] Content for app {id} failed: {e}"),
            );
            set_grs(device, user, id, now);
            return Outcome::state(4, 5003, E_CONTENT);
        }
    }
    if state.ime.reboot_pending {
        log(
            device,
            now,
            Severity::Info,
            &format!("[Win32App] A hard reboot is pending; app {id} waits for it"),
        );
        return Outcome::state(2, 2003, 0);
    }
    let install_ex: Value =
        serde_json::from_str(policy["InstallEx"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
    let max_retries = install_ex["MaxRetries"].as_u64().unwrap_or(3) as u32;
    let interval = install_ex["RetryIntervalInMinutes"].as_i64().unwrap_or(5);
    let max_run = install_ex["MaxRunTimeInMinutes"].as_u64().unwrap_or(60);
    let line = policy["InstallCommandLine"].as_str().unwrap_or_default();
    log(
        device,
        now,
        Severity::Info,
        &format!("[Win32App] Launch Win32AppInstaller in machine session, command line: {line}"),
    );
    let run = device.run(
        line,
        &cache,
        std::time::Duration::from_secs(max_run * 60),
        now,
    );
    let code = run.exit_code;
    let codes: Vec<Value> =
        serde_json::from_str(policy["ReturnCodes"].as_str().unwrap_or("[]")).unwrap_or_default();
    let kind = codes
        .iter()
        .find(|c| c["ReturnCode"].as_i64() == Some(code))
        .and_then(|c| c["Type"].as_i64())
        .unwrap_or(0);
    log(
        device,
        now,
        Severity::Info,
        &format!("[Win32App] lpExitCode {code}, the result type of the exit code is {kind}"),
    );
    let attempt = state.ime.apps.get(id).map(|a| a.attempts).unwrap_or(0) + 1;
    let mut outcome = match kind {
        1..=3 => {
            // Success (or a reboot, which the reboot manager handles): detect again.
            state.ime.apps.remove(id);
            if kind == 3 {
                state.ime.reboot_pending = true;
                log(device, now, Severity::Warning, &format!("[Win32App] App {id} asked for a hard reboot ({code}); no further installs until the device restarts"));
            }
            if rules::detected(device, detection) {
                clear_grs(device, user, id);
                Outcome::state(1, 1000, 0)
            } else {
                log(
                    device,
                    now,
                    Severity::Error,
                    &format!("[Win32App] App {id} is not detected after a successful install"),
                );
                set_grs(device, user, id, now);
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
            log(
                device,
                now,
                Severity::Warning,
                &format!(
                    "[Win32App] Retry code {code}: attempt {attempt} of {}, next at {next}",
                    max_retries + 1
                ),
            );
            Outcome::state(2, 5006, code)
        }
        _ => {
            state.ime.apps.remove(id);
            set_grs(device, user, id, now);
            log(device, now, Severity::Error, &format!("[Win32App][GRSManager] App with id: {id} failed with {code}; added to GRS at {now}"));
            Outcome::state(4, 5000, code)
        }
    };
    outcome.exit_code = Some(code);
    outcome
}

async fn fetch_content(
    device: &mut Device,
    gw: &gateway::Session<'_>,
    device_key: Option<&str>,
    id: &str,
    rev: i64,
    cache: &str,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let payload = gw
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
    log(
        device,
        now,
        Severity::Info,
        &format!("[Win32App] Get content info from service,ret = {payload}"),
    );
    let keys =
        gateway::open_decrypt_info(answer["DecryptInfo"].as_str().unwrap_or("{}"), device_key)?;
    let url = content["UploadLocation"]
        .as_str()
        .ok_or("no content location")?;
    log(
        device,
        now,
        Severity::Info,
        &format!("[Win32App] Downloading app {id} content from {url}"),
    );
    let bytes = gw
        .client
        .get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let staging = format!(r"{INCOMING}\{id}_{rev}.bin");
    device
        .drive
        .write(&staging, &bytes)
        .map_err(|e| e.to_string())?;
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
    let decrypted = syncml::intunewin::decrypt(&bytes, &info);
    let _ = device.drive.remove(&staging);
    let inner = decrypted.map_err(|e| e.to_string())?;
    log(
        device,
        now,
        Severity::Info,
        &format!("[Win32App] Decryption succeeded for app {id}; unzipping to {cache}"),
    );
    let files = syncml::intunewin::extract(&inner).map_err(|e| e.to_string())?;
    for (path, bytes) in files {
        device
            .drive
            .write(&format!(r"{cache}\{}", path.replace('/', "\\")), &bytes)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Exit codes with their IME meaning, for tests and logs.
pub fn is_install_success(code: i64) -> bool {
    installer::is_success(code)
}
