//! Platform scripts (spec section 7): at each check-in, before Win32 apps, the IME asks
//! the gateway for its scripts (`PolicyRequest`) and hands each to AgentExecutor, which
//! writes it to `Policies\Scripts\<user>_<policy>.ps1`, runs it under a 30-minute
//! timeout and removes it. A script runs once; it runs again only when its text
//! changes; a failure is retried at each of the next 3 check-ins and then left alone.
//! Scripts over 200 KB, and under EnforceSignatureCheck scripts that are unsigned,
//! changed since signing or signed by a publisher the device does not trust, fail
//! without running. Results go to `Policies\<user>\<policy>` and back to the server
//! (`PolicyResult`).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::gateway::{self, Caller};
use super::signature::{self, Verdict};
use super::win32::DEVICE_USER;
use super::{lines, threads, Pen};
use crate::device::{Device, RegValue};
use crate::error::AgentError;
use crate::state::{AgentState, ScriptRun};

/// Where script results are kept.
pub const POLICIES_KEY: &str = r"HKLM\SOFTWARE\Microsoft\IntuneManagementExtension\Policies";
/// Where scripts are written before they run.
pub const SCRIPTS_DIR: &str =
    r"C:\Program Files (x86)\Microsoft Intune Management Extension\Policies\Scripts";
/// AgentExecutor's log.
pub const EXECUTOR_LOG: &str = "AgentExecutor.log";
/// How long a script may run.
pub const TIMEOUT: StdDuration = StdDuration::from_secs(30 * 60);
/// The largest script the IME runs.
pub const MAX_BYTES: usize = 200 * 1024;
/// Failed runs retried at the next check-ins.
pub const MAX_RETRIES: u32 = 3;

/// The PowerShell poller's pen: IntuneManagementExtension.log, on its thread.
fn poller_pen(now: DateTime<Utc>) -> Pen {
    Pen::new(
        super::LOG,
        "IntuneManagementExtension",
        threads::POWERSHELL,
        now,
    )
}

/// AgentExecutor's pen (its own process) starting at `at`.
pub(super) fn executor_pen(at: DateTime<Utc>) -> Pen {
    Pen::new(EXECUTOR_LOG, "AgentExecutor", threads::SERVICE, at)
}

/// What one run gave.
struct RunResult {
    success: bool,
    error_code: i64,
    message: String,
    output: String,
}

/// Runs the scripts due at this check-in and reports them; returns how many ran.
pub async fn checkin(
    device: &mut Device,
    state: &mut AgentState,
    gw: &gateway::Session<'_>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, AgentError> {
    let mut pen = poller_pen(now);
    pen.info(device, &lines::powershell_polling("starts"));
    pen.info(device, &lines::powershell_requesting(gw.id));
    let payload = gw.call("PolicyRequest", &json!([]), reason).await?;
    pen.info(device, &lines::powershell_response(&payload));
    let policies: Vec<Value> = serde_json::from_str(&payload).unwrap_or_default();
    pen.info(device, &lines::powershell_got(policies.len(), DEVICE_USER));
    pen.info(
        device,
        &lines::powershell_after_filter(policies.len(), DEVICE_USER),
    );
    let mut reports = Vec::new();
    for policy in &policies {
        let Some(id) = policy["PolicyId"].as_str() else {
            continue;
        };
        let user = if policy["ExecutionContext"] == 1 && !device.profile.user_object_id.is_empty() {
            device.profile.user_object_id.clone()
        } else {
            DEVICE_USER.to_owned()
        };
        pen.info(device, &lines::powershell_processing(id, &user));
        let body = policy["PolicyBody"].as_str().unwrap_or_default();
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        pen.info(device, &lines::powershell_body(body, &hash));
        let run = state.ime.scripts.entry(id.to_owned()).or_default();
        if run.hash != hash {
            if !run.hash.is_empty() {
                pen.info(device, &lines::powershell_changed(id));
            }
            *run = ScriptRun {
                hash,
                ..ScriptRun::default()
            };
        } else if run.succeeded {
            pen.info(device, &lines::powershell_skipped(id));
            continue;
        } else if run.runs > MAX_RETRIES {
            pen.info(device, &lines::powershell_retries_exhausted(id, run.runs));
            continue;
        }
        let context = if user == DEVICE_USER {
            "machine"
        } else {
            "user"
        };
        pen.info(device, &lines::powershell_launch(context));
        let result = execute(device, &mut pen, policy, id, &user, body);
        pen.info(device, &lines::powershell_done());
        pen.info(device, &lines::powershell_result(&user, id, result.success));
        let run = state.ime.scripts.entry(id.to_owned()).or_default();
        run.runs += 1;
        run.succeeded = result.success;
        let details =
            json!({ "ExecutionMsg": result.message, "Output": result.output }).to_string();
        record(device, &user, id, policy, &result, &details, now);
        reports.push(json!({
            "PolicyId": id,
            "UserId": user,
            "Result": if result.success { "Success" } else { "Failed" },
            "ErrorCode": result.error_code,
            "ResultDetails": details,
        }));
    }
    let ran = reports.len();
    if ran > 0 {
        gateway::send_report(
            &mut state.ime.outbox,
            gw,
            "PolicyResult",
            reports,
            reason,
            (&device.profile.device_id, now),
        )
        .await?;
        pen.info(device, &lines::powershell_results_sent());
    }
    pen.info(device, &lines::powershell_polling("stopped"));
    Ok(ran)
}

/// AgentExecutor: checks, writes, runs and removes one script; the poller's pen waits
/// for it (the script's run takes a few seconds).
fn execute(
    device: &mut Device,
    pen: &mut Pen,
    policy: &Value,
    id: &str,
    user: &str,
    body: &str,
) -> RunResult {
    let path = format!(r"{SCRIPTS_DIR}\{user}_{id}.ps1");
    let mut exec = executor_pen(pen.at);
    exec.info(device, lines::EXECUTOR_INVOKED);
    exec.info(device, lines::EXECUTOR_POWERSHELL);
    exec.info(device, &path);
    let fail = |message: String| RunResult {
        success: false,
        error_code: -1,
        message,
        output: String::new(),
    };
    if body.len() > MAX_BYTES {
        exec.error(
            device,
            &format!(
                "The script {path} is {} bytes, over the 200 KB limit; not run",
                body.len()
            ),
        );
        pen.at = exec.at;
        return fail(format!(
            "The script is larger than the {MAX_BYTES}-byte limit."
        ));
    }
    let enforce = policy["EnforceSignatureCheck"] == true;
    exec.info(device, &lines::executor_powershell_path());
    if let Some(message) = signature_refusal(device, &path, body, enforce) {
        exec.error(device, &message);
        pen.at = exec.at;
        return fail(message);
    }
    if let Err(e) = device.drive.write(&path, body.as_bytes()) {
        return fail(format!("writing {path}: {e}"));
    }
    exec.info(
        device,
        &lines::executor_created(super::process_id(id, exec.at)),
    );
    let policy_name = if enforce { "allsigned" } else { "bypass" };
    exec.info(device, &lines::executor_cmd_line(policy_name, &path));
    let outcome = device.run_script(&path, TIMEOUT);
    let _ = device.drive.remove(&path);
    exec.spend(if outcome.timed_out {
        chrono::Duration::minutes(30)
    } else {
        chrono::Duration::milliseconds(1_800 + i64::from(super::process_id(id, exec.at) % 900))
    });
    exec.info(device, &lines::executor_exit_code(outcome.exit_code));
    exec.info(
        device,
        &lines::executor_output(outcome.stdout.trim_end(), outcome.stderr.trim_end()),
    );
    pen.at = exec.at;
    RunResult {
        success: outcome.exit_code == 0 && !outcome.timed_out,
        error_code: outcome.exit_code,
        message: if outcome.timed_out {
            "The script did not finish within 30 minutes.".to_owned()
        } else {
            outcome.stderr.trim_end().to_owned()
        },
        output: outcome.stdout.trim_end().to_owned(),
    }
}

/// Why a script may not run under the execution policy, or `None` when it may: with
/// EnforceSignatureCheck (AllSigned) it must carry a valid signature from a publisher
/// the device trusts (see [`super::signature`]). The messages are PowerShell's.
pub(super) fn signature_refusal(
    device: &Device,
    path: &str,
    body: &str,
    enforce: bool,
) -> Option<String> {
    if !enforce {
        return None;
    }
    match signature::verify(body, |t| signature::is_trusted(device, t)) {
        Verdict::Trusted { .. } => None,
        Verdict::NotSigned => Some(format!("File {path} cannot be loaded. The file {path} is not digitally signed. You cannot run this script on the current system.")),
        Verdict::HashMismatch => Some(format!("File {path} cannot be loaded. The contents of file {path} might have been changed by an unauthorized user or process, because the hash of the file does not match the hash stored in the digital signature. The script cannot run on the specified system.")),
        Verdict::Untrusted { subject } => Some(format!("File {path} cannot be loaded. The file {path} is published by {subject}. This publisher is not trusted on your system. Only scripts from trusted publishers can be run.")),
    }
}

/// Writes the result under `Policies\<user>\<policy>`.
fn record(
    device: &mut Device,
    user: &str,
    id: &str,
    policy: &Value,
    result: &RunResult,
    details: &str,
    now: DateTime<Utc>,
) {
    let key = format!(r"{POLICIES_KEY}\{user}\{id}");
    let downloads = match device.registry.get(&key, "DownloadCount") {
        Some(RegValue::Dword(n)) => *n,
        _ => 0,
    };
    let reg = &mut device.registry;
    let outcome = if result.success { "Success" } else { "Failed" };
    reg.set(&key, "Result", RegValue::Sz(outcome.into()));
    reg.set(
        &key,
        "ErrorCode",
        RegValue::Dword(result.error_code as i32 as u32),
    );
    reg.set(&key, "DownloadCount", RegValue::Dword(downloads + 1));
    reg.set(
        &key,
        "LastUpdatedTimeUtc",
        RegValue::Sz(now.format("%m/%d/%Y %H:%M:%S").to_string()),
    );
    let account = if policy["ExecutionContext"] == 1 {
        "User"
    } else {
        "System"
    };
    reg.set(&key, "RunAsAccount", RegValue::Sz(account.into()));
    reg.set(&key, "ResultDetails", RegValue::Sz(details.into()));
}
