//! A device's IME logs read back as a person reads them (`tenantless logs`), and an
//! app's story told from the registry and the logs (`tenantless explain-app`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use agent::cmtrace::Record;
use agent::device::Device;
use agent::ime::{states, win32};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// The IME's log files, as the real IME names them.
pub const LOG_FILES: [&str; 6] = [
    "IntuneManagementExtension.log",
    "AppWorkload.log",
    "AgentExecutor.log",
    "HealthScripts.log",
    "ClientHealth.log",
    "Win32AppInventory.log",
];

/// Which records to show.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// One log file (by name) instead of all of them.
    pub file: Option<String>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only records whose message contains this text.
    pub grep: Option<String>,
}

/// A device's folder: `device` itself when it is one, else `<world>/devices/<device>`.
pub fn device_dir(device: &str, world: &Path) -> Result<PathBuf, String> {
    let direct = PathBuf::from(device);
    if agent::Agent::exists(&direct) {
        return Ok(direct);
    }
    let named = world.join("devices").join(device);
    if agent::Agent::exists(&named) {
        return Ok(named);
    }
    Err(format!(
        "no device {device:?}: not a device folder, nor a device of {}",
        world.display()
    ))
}

/// The records the query asks for, every file's rolled-over parts included, in time
/// order (a file's own order where times are equal).
pub fn records(device: &Device, query: &LogQuery) -> Vec<Record> {
    let files: Vec<&str> = match &query.file {
        Some(f) => vec![f.as_str()],
        None => LOG_FILES.to_vec(),
    };
    let mut all: Vec<Record> = files
        .into_iter()
        .flat_map(|f| device.log_records(f))
        .filter(|r| query.since.is_none_or(|s| r.at >= s))
        .filter(|r| query.grep.as_ref().is_none_or(|g| r.message.contains(g)))
        .collect();
    all.sort_by_key(|r| r.at);
    all
}

/// One record as a line of text: time, file, thread, message (a message's further
/// lines indented); warnings yellow and errors red when `colour`.
pub fn format(record: &Record, colour: bool) -> String {
    let message = record.message.replace('\n', "\n        ");
    let text = format!(
        "{}  {:<34} {:>3}  {message}",
        record.at.format("%Y-%m-%d %H:%M:%S%.3f"),
        record.file,
        record.thread
    );
    match (colour, record.severity) {
        (true, 2) => format!("\x1b[33m{text}\x1b[0m"),
        (true, 3) => format!("\x1b[31m{text}\x1b[0m"),
        _ => text,
    }
}

/// The app's story: its state messages decoded by name, its installer runs with
/// their exit codes and what they mean, its GRS entry and the next retry.
pub fn explain_app(device: &Device, app: &str) -> Result<String, String> {
    let registry = &device.registry;
    let policies = known_policies(device);
    let id = win32::find_policy(&policies, app)
        .and_then(|p| p["Id"].as_str())
        .unwrap_or(app)
        .to_lowercase();
    let name = policies
        .iter()
        .find(|p| p["Id"].as_str().map(str::to_lowercase).as_deref() == Some(id.as_str()))
        .and_then(|p| p["Name"].as_str())
        .unwrap_or("(name unknown)");
    let mut out = String::new();
    let mut found = false;
    for user in registry.subkeys(win32::WIN32APPS) {
        if matches!(user.as_str(), "GRS" | "Reporting" | "OperationalState") {
            continue;
        }
        let user_key = format!(r"{}\{user}", win32::WIN32APPS);
        for sub in registry.subkeys(&user_key) {
            let Some((key_id, rev)) = sub.rsplit_once('_') else {
                continue;
            };
            if !key_id.eq_ignore_ascii_case(&id) {
                continue;
            }
            found = true;
            let key = format!(r"{user_key}\{sub}");
            let who = if user == win32::DEVICE_USER {
                "the device".to_owned()
            } else {
                format!("user {user}")
            };
            let _ = writeln!(out, "{name} ({id}), revision {rev}, for {who}");
            let _ = writeln!(out, "  {key}");
            if let Some(agent::device::RegValue::Dword(intent)) = registry.get(&key, "Intent") {
                let _ = writeln!(
                    out,
                    "  Intent {intent} = {}",
                    intent_name(i64::from(*intent))
                );
            }
            let message = |which: &str| -> Option<Value> {
                let text = registry.get_text(&format!(r"{key}\{which}"), which)?;
                serde_json::from_str(&text).ok()
            };
            if let Some(c) = message("ComplianceStateMessage") {
                let n = |f: &str| c[f].as_i64().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "  ComplianceStateMessage: ComplianceState {} = {}, Applicability {} = {}, DesiredState {} = {}, ErrorCode {}",
                    n("ComplianceState"),
                    states::compliance(n("ComplianceState")),
                    n("Applicability"),
                    states::applicability(n("Applicability")),
                    n("DesiredState"),
                    states::desired(n("DesiredState")),
                    error_code(n("ErrorCode")),
                );
            }
            if let Some(e) = message("EnforcementStateMessage") {
                let n = |f: &str| e[f].as_i64().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "  EnforcementStateMessage: EnforcementState {} = {}, ErrorCode {}",
                    n("EnforcementState"),
                    states::enforcement(n("EnforcementState")),
                    error_code(n("ErrorCode")),
                );
            }
            let grs_key = win32::grs_key(&user, &id);
            match registry.get_text(&grs_key, &id) {
                Some(stamp) => {
                    let _ = writeln!(out, "  GRS: failed at {stamp} (UTC), under {grs_key}");
                    if let Ok(t) = NaiveDateTime::parse_from_str(&stamp, "%m/%d/%Y %H:%M:%S") {
                        let next = t.and_utc() + win32::grs_period();
                        let _ = writeln!(
                            out,
                            "  Next retry: at the first check-in from {} (24 hours after the failure)",
                            next.format("%Y-%m-%d %H:%M:%S")
                        );
                    }
                }
                None => {
                    let _ = writeln!(out, "  GRS: no entry");
                }
            }
        }
    }
    if !found {
        return Err(format!(
            "no app {app:?} under {} (an app id, or a name from the policies in AppWorkload.log)",
            win32::WIN32APPS
        ));
    }
    let attempts = attempts(device, &id);
    let _ = writeln!(out, "  Installer runs: {}", attempts.len());
    for (at, code, meaning) in attempts {
        let known = states::exit_code_meaning(code)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {}  exit code {code} ({meaning}){known}",
            at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(out)
}

/// `-2016345060 (0x87D1041C)`, or `0`.
fn error_code(code: i64) -> String {
    if code == 0 {
        "0".into()
    } else {
        format!("{code} (0x{:08X})", code as i32 as u32)
    }
}

fn intent_name(intent: i64) -> &'static str {
    match intent {
        0 => "NotTargeted",
        1 => "Available",
        3 => "Required",
        4 => "Uninstall",
        _ => "Unknown",
    }
}

/// The policies the device was sent, from AppWorkload.log's `Get policies = [...]`.
fn known_policies(device: &Device) -> Vec<Value> {
    device
        .log_records(win32::APP_LOG)
        .into_iter()
        .rev()
        .filter_map(|r| {
            let json = r.message.strip_prefix("Get policies = ")?;
            serde_json::from_str::<Vec<Value>>(json).ok()
        })
        .flatten()
        .collect()
}

/// The app's installer runs from AppWorkload.log: when, the exit code, and the
/// meaning the app's return codes gave it.
fn attempts(device: &Device, id: &str) -> Vec<(DateTime<Utc>, i64, String)> {
    let records = device.log_records(win32::APP_LOG);
    let mut current: Option<String> = None;
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(rest) = r
            .message
            .strip_prefix("[Win32App] Handler invoked with execution type: ")
        {
            current = rest
                .split("for policy with id: ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .map(str::to_lowercase);
        }
        if current.as_deref() != Some(id) {
            continue;
        }
        let Some(code) = r
            .message
            .strip_prefix("[Win32App] lpExitCode ")
            .and_then(|c| c.parse::<i64>().ok())
        else {
            continue;
        };
        let meaning = records[i + 1..]
            .iter()
            .take(2)
            .find_map(|n| {
                n.message
                    .strip_prefix("[Win32App] lpExitCode is defined as ")
                    .map(str::to_owned)
                    .or_else(|| {
                        n.message
                            .starts_with("[Win32App] Admin did NOT set mapping")
                            .then(|| "not mapped: Failed".to_owned())
                    })
            })
            .unwrap_or_else(|| "unknown".into());
        out.push((r.at, code, meaning));
    }
    out
}
