//! Remediations (HealthScripts; spec section 7): at each scheduled check-in the IME asks
//! the gateway for its remediations (`GetScript`) and keeps each with its schedule: once,
//! every N hours, or every N days at a time (device time, which is UTC in Tenantless).
//! When one falls due, HealthScripts writes `detect.ps1` and `remediate.ps1` to
//! `C:\Windows\IMECache\HealthScripts\<policy>_<version>`, runs detection (1-hour
//! timeout), and on exit code 1 runs the remediation and detection again. Outputs are
//! capped at 2048 characters. The result JSON goes to
//! `SideCarPolicies\Scripts\Reports\<user>\<policy>_<version>\Result`, the run time to
//! `...\Execution\<user>\<policy>_<version>\LastExecution`, `[HS]` lines to
//! HealthScripts.log, and the results to the server (`HealthScriptResult`).
//!
//! RemediationStatus (Tenantless's numbering, shared with the server): 1 no issue found,
//! 2 remediated, 3 remediation failed (the issue is still detected), 4 script error
//! (a script timed out, could not run, or detection exited other than 0 or 1), 5 issue
//! found and remediation not run (detection only).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::{json, Value};

use super::gateway::{self, Caller};
use super::lines;
use super::scripts::signature_refusal;
use super::win32::DEVICE_USER;
use crate::cmtrace::Severity;
use crate::device::{Device, RegValue};
use crate::error::AgentError;
use crate::state::{AgentState, RemediationRun};

/// HealthScripts' log.
pub const LOG: &str = "HealthScripts.log";
/// Where the scripts are written.
pub const CACHE_DIR: &str = r"C:\Windows\IMECache\HealthScripts";
/// Where results and run times are kept.
pub const SCRIPTS_KEY: &str =
    r"HKLM\SOFTWARE\Microsoft\IntuneManagementExtension\SideCarPolicies\Scripts";
/// How long one script may run.
pub const TIMEOUT: StdDuration = StdDuration::from_secs(60 * 60);
/// The most output kept of one script run.
pub const MAX_OUTPUT_CHARS: usize = 2048;

/// RemediationStatus: no issue found.
pub const NO_ISSUE: i64 = 1;
/// RemediationStatus: the remediation fixed the issue.
pub const REMEDIATED: i64 = 2;
/// RemediationStatus: detection still finds the issue after remediation.
pub const REMEDIATION_FAILED: i64 = 3;
/// RemediationStatus: a script timed out, could not run, or exited unexpectedly.
pub const SCRIPT_ERROR: i64 = 4;
/// RemediationStatus: issue found; the remediation is not to run.
pub const NOT_REMEDIATED: i64 = 5;

fn log(device: &Device, now: DateTime<Utc>, severity: Severity, message: &str) {
    super::log_on(
        device,
        LOG,
        "HealthScripts",
        message,
        severity,
        now,
        super::threads::HEALTH_SCRIPTS,
    );
}

/// Asks the gateway for this device's remediations and schedules new or changed ones;
/// forgets those no longer assigned.
pub async fn fetch(
    device: &mut Device,
    state: &mut AgentState,
    gw: &gateway::Session<'_>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), AgentError> {
    let payload = gw.call("GetScript", &json!([]), reason).await?;
    let policies: Vec<Value> = serde_json::from_str(&payload).unwrap_or_default();
    log(
        device,
        now,
        Severity::Info,
        &format!("[HS] Get policies = {} remediation(s)", policies.len()),
    );
    let assigned: Vec<&str> = policies
        .iter()
        .filter_map(|p| p["PolicyId"].as_str())
        .collect();
    state
        .ime
        .remediations
        .retain(|id, _| assigned.contains(&id.as_str()));
    for policy in &policies {
        let Some(id) = policy["PolicyId"].as_str() else {
            continue;
        };
        let known = state.ime.remediations.get(id);
        if known.is_some_and(|r| r.policy == *policy) {
            continue;
        }
        let next_run = first_run(&policy["Schedule"], now);
        log(
            device,
            now,
            Severity::Info,
            &format!(
                "[HS] {} policy {id} (version {}), schedule {}; next run at {}",
                if known.is_some() { "Changed" } else { "New" },
                policy["PolicyVersion"],
                policy["Schedule"],
                next_run.map_or("never".to_owned(), |t| t.to_string()),
            ),
        );
        state.ime.remediations.insert(
            id.to_owned(),
            RemediationRun {
                policy: policy.clone(),
                next_run,
                runs: 0,
            },
        );
    }
    Ok(())
}

/// The schedule's type, interval and time of day.
fn parts(schedule: &Value) -> (&str, i64, NaiveTime) {
    let time = schedule["Time"]
        .as_str()
        .and_then(|t| NaiveTime::parse_from_str(t.get(..8).unwrap_or(t), "%H:%M:%S").ok())
        .unwrap_or(NaiveTime::MIN);
    (
        schedule["Type"].as_str().unwrap_or("Daily"),
        schedule["Interval"].as_i64().unwrap_or(1).max(1),
        time,
    )
}

/// When a newly received remediation first runs: hourly ones at once, daily ones at
/// their next time of day, run-once ones at their date and time (at once if passed or
/// not given).
pub fn first_run(schedule: &Value, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (kind, _, time) = parts(schedule);
    let at_time = |date: NaiveDate| date.and_time(time).and_utc();
    match kind {
        "Hourly" => Some(now),
        "Once" => {
            let date = schedule["Date"]
                .as_str()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            Some(date.map_or(now, |d| at_time(d).max(now)))
        }
        _ => Some(next_time_of_day(now, time)),
    }
}

fn next_time_of_day(now: DateTime<Utc>, time: NaiveTime) -> DateTime<Utc> {
    let today = now.date_naive().and_time(time).and_utc();
    if today >= now {
        today
    } else {
        today + Duration::days(1)
    }
}

/// The run after the one scheduled at `slot`: a period later (skipping periods that
/// passed while the device was off); `None` for a run-once remediation.
pub fn next_run(
    schedule: &Value,
    slot: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let (kind, interval, _) = parts(schedule);
    let period = match kind {
        "Hourly" => Duration::hours(interval),
        "Once" => return None,
        _ => Duration::days(interval),
    };
    let mut next = slot + period;
    while next <= now {
        next += period;
    }
    Some(next)
}

/// A custom compliance discovery script's PolicyType in `GetScript` (the server's
/// value; remediations are 6).
pub const COMPLIANCE_POLICY_TYPE: i64 = 8;

/// `intunemanagementextension://synccompliance`: every custom compliance discovery
/// script falls due now.
pub fn check_compliance_now(device: &Device, state: &mut AgentState, now: DateTime<Utc>) {
    let mut count = 0;
    for run in state.ime.remediations.values_mut() {
        if run.policy["PolicyType"] == COMPLIANCE_POLICY_TYPE {
            run.next_run = Some(now);
            count += 1;
        }
    }
    log(
        device,
        now,
        Severity::Info,
        &format!("[HS] Compliance check requested: {count} discovery script(s) to run now"),
    );
}

/// When the next remediation is due.
pub fn next_due(state: &AgentState) -> Option<DateTime<Utc>> {
    state
        .ime
        .remediations
        .values()
        .filter_map(|r| r.next_run)
        .min()
}

/// True when a remediation is due.
pub fn due(state: &AgentState, now: DateTime<Utc>) -> bool {
    state.ime.running && next_due(state).is_some_and(|t| t <= now)
}

/// Runs the remediations that are due and reports them; returns how many ran.
pub async fn run_due(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    gateway_url: &str,
    now: DateTime<Utc>,
) -> Result<usize, AgentError> {
    let due: Vec<String> = state
        .ime
        .remediations
        .iter()
        .filter(|(_, r)| r.next_run.is_some_and(|t| t <= now))
        .map(|(id, _)| id.clone())
        .collect();
    let mut reports = Vec::new();
    for id in due {
        let Some(run) = state.ime.remediations.get_mut(&id) else {
            continue;
        };
        let slot = run.next_run.unwrap_or(now);
        run.next_run = next_run(&run.policy["Schedule"], slot, now);
        run.runs += 1;
        let policy = run.policy.clone();
        let result = execute(device, &id, &policy, now);
        record(device, &id, &policy, &result, now);
        reports.push(result);
    }
    if reports.is_empty() {
        return Ok(0);
    }
    let count = reports.len();
    let gw = gateway::Conversation::new(client, gateway_url, "hs", device, &state.ime.version, now);
    gateway::send_report(
        &mut state.ime.outbox,
        &gw,
        "HealthScriptResult",
        reports,
        "Unknown",
        (&device.profile.device_id, now),
    )
    .await?;
    log(
        device,
        now,
        Severity::Info,
        &format!("[HS] Sending results to service. count = {count}"),
    );
    Ok(count)
}

/// One script's run, as the result JSON keeps it.
struct ScriptRun {
    exit_code: Option<i64>,
    output: String,
    error: String,
}

fn cap(text: &str) -> String {
    text.trim_end().chars().take(MAX_OUTPUT_CHARS).collect()
}

/// Writes and runs one of the policy's scripts (refused unsigned under enforcement).
fn run_script(
    device: &mut Device,
    folder: &str,
    file: &str,
    body: &str,
    enforce: bool,
    now: DateTime<Utc>,
) -> ScriptRun {
    let path = format!(r"{folder}\{file}");
    // AgentExecutor runs it (its own log, its own process).
    let mut exec = super::scripts::executor_pen(now);
    exec.info(device, lines::EXECUTOR_INVOKED);
    exec.info(device, lines::EXECUTOR_REMEDIATION);
    exec.info(device, &lines::executor_remediation_argument(&path));
    exec.info(device, &lines::executor_powershell_path());
    exec.info(device, &lines::executor_script_is(&path));
    if let Some(message) = signature_refusal(device, &path, body, enforce) {
        exec.error(device, &message);
        log(device, now, Severity::Error, &format!("[HS] {message}"));
        return ScriptRun {
            exit_code: None,
            output: String::new(),
            error: cap(&message),
        };
    }
    if let Err(e) = device.drive.write(&path, body.as_bytes()) {
        return ScriptRun {
            exit_code: None,
            output: String::new(),
            error: format!("writing {path}: {e}"),
        };
    }
    exec.info(
        device,
        &lines::executor_created(super::process_id(file, exec.at)),
    );
    let outcome = device.run_script(&path, TIMEOUT);
    exec.spend(chrono::Duration::milliseconds(1_200));
    exec.info(device, &lines::executor_exit_code(outcome.exit_code));
    exec.info(
        device,
        &lines::executor_output(outcome.stdout.trim_end(), outcome.stderr.trim_end()),
    );
    if outcome.timed_out {
        log(
            device,
            now,
            Severity::Error,
            &format!("[HS] {file} did not finish within 1 hour; stopped"),
        );
        return ScriptRun {
            exit_code: None,
            output: cap(&outcome.stdout),
            error: "The script did not finish within 1 hour.".into(),
        };
    }
    log(
        device,
        now,
        Severity::Info,
        &format!("[HS] {file} exit code is {}", outcome.exit_code),
    );
    ScriptRun {
        exit_code: Some(outcome.exit_code),
        output: cap(&outcome.stdout),
        error: cap(&outcome.stderr),
    }
}

/// Detect, remediate on exit code 1, detect again; the result JSON.
fn execute(device: &mut Device, id: &str, policy: &Value, now: DateTime<Utc>) -> Value {
    let version = policy["PolicyVersion"].as_i64().unwrap_or(1);
    let folder = format!(r"{CACHE_DIR}\{id}_{version}");
    let enforce = policy["EnforceSignatureCheck"] == true;
    log(
        device,
        now,
        Severity::Info,
        &format!("[HS] Processing policy with id = {id} for user = {DEVICE_USER}"),
    );
    let detection = policy["DetectionScript"].as_str().unwrap_or_default();
    let remediation = policy["RemediationScript"].as_str().unwrap_or_default();
    let first = run_script(device, &folder, "detect.ps1", detection, enforce, now);
    let mut fix = None;
    let mut last = None;
    let status = match first.exit_code {
        Some(0) => NO_ISSUE,
        Some(1) if policy["RunRemediationScript"] == false || remediation.trim().is_empty() => {
            NOT_REMEDIATED
        }
        Some(1) => {
            log(
                device,
                now,
                Severity::Info,
                &format!("[HS] Detection found an issue for {id}; running the remediation script"),
            );
            let f = run_script(device, &folder, "remediate.ps1", remediation, enforce, now);
            let status = if f.exit_code.is_none() {
                SCRIPT_ERROR
            } else {
                let again = run_script(device, &folder, "detect.ps1", detection, enforce, now);
                let status = match again.exit_code {
                    Some(0) => REMEDIATED,
                    Some(1) => REMEDIATION_FAILED,
                    _ => SCRIPT_ERROR,
                };
                last = Some(again);
                status
            };
            fix = Some(f);
            status
        }
        _ => SCRIPT_ERROR,
    };
    let text = |r: &Option<ScriptRun>, f: fn(&ScriptRun) -> &String| {
        r.as_ref().map_or(Value::Null, |r| json!(f(r)))
    };
    let last_exit = last.as_ref().map_or(first.exit_code, |r| r.exit_code);
    let result = json!({
        "PolicyId": id,
        "UserId": DEVICE_USER,
        "PolicyVersion": version,
        "Result": if matches!(status, NO_ISSUE | REMEDIATED) { "Success" } else { "Failed" },
        "ErrorCode": if status == SCRIPT_ERROR { -1 } else { 0 },
        "ResultType": 1,
        "RemediationStatus": status,
        "PreRemediationDetectScriptOutput": first.output,
        "PreRemediationDetectScriptError": first.error,
        "RemediationScriptOutputDetails": text(&fix, |r| &r.output),
        "RemediationScriptErrorDetails": text(&fix, |r| &r.error),
        "PostRemediationDetectScriptOutput": text(&last, |r| &r.output),
        "PostRemediationDetectScriptError": text(&last, |r| &r.error),
        "Info": {
            "FirstDetectExitCode": first.exit_code,
            "RemediationExitCode": fix.as_ref().and_then(|r| r.exit_code),
            "LastDetectExitCode": last_exit,
        },
        "RunAt": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    log(
        device,
        now,
        Severity::Info,
        &format!("[HS] new result = {result}"),
    );
    result
}

/// Keeps the result and the run time in the registry.
fn record(device: &mut Device, id: &str, policy: &Value, result: &Value, now: DateTime<Utc>) {
    let version = policy["PolicyVersion"].as_i64().unwrap_or(1);
    let leaf = format!(r"{DEVICE_USER}\{id}_{version}");
    let reg = &mut device.registry;
    reg.set(
        &format!(r"{SCRIPTS_KEY}\Reports\{leaf}"),
        "Result",
        RegValue::Sz(result.to_string()),
    );
    reg.set(
        &format!(r"{SCRIPTS_KEY}\Execution\{leaf}"),
        "LastExecution",
        RegValue::Sz(now.format("%m/%d/%Y %H:%M:%S").to_string()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn hourly_runs_at_once_then_every_interval() {
        let s = json!({ "Type": "Hourly", "Interval": 2 });
        let now = at("2026-01-01T10:30:00Z");
        assert_eq!(first_run(&s, now), Some(now));
        assert_eq!(next_run(&s, now, now), Some(at("2026-01-01T12:30:00Z")));
        // A device that was off runs at the next slot after now, once.
        assert_eq!(
            next_run(&s, now, at("2026-01-01T17:00:00Z")),
            Some(at("2026-01-01T18:30:00Z"))
        );
    }

    #[test]
    fn daily_runs_at_its_time_of_day() {
        let s = json!({ "Type": "Daily", "Interval": 1, "Time": "09:15:00" });
        assert_eq!(
            first_run(&s, at("2026-01-01T08:00:00Z")),
            Some(at("2026-01-01T09:15:00Z"))
        );
        assert_eq!(
            first_run(&s, at("2026-01-01T10:00:00Z")),
            Some(at("2026-01-02T09:15:00Z"))
        );
        let slot = at("2026-01-02T09:15:00Z");
        assert_eq!(next_run(&s, slot, slot), Some(at("2026-01-03T09:15:00Z")));
    }

    #[test]
    fn once_runs_at_its_date_or_at_once_and_never_again() {
        let s = json!({ "Type": "Once", "Date": "2026-03-01", "Time": "06:00:00" });
        let now = at("2026-01-01T10:00:00Z");
        assert_eq!(first_run(&s, now), Some(at("2026-03-01T06:00:00Z")));
        assert_eq!(
            first_run(&s, at("2026-04-01T00:00:00Z")),
            Some(at("2026-04-01T00:00:00Z"))
        );
        assert_eq!(next_run(&s, now, now), None);
    }

    #[test]
    fn output_is_capped_at_2048_characters() {
        assert_eq!(cap(&"é".repeat(5000)).chars().count(), MAX_OUTPUT_CHARS);
    }
}
