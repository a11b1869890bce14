//! Client health (spec section 10): the IME's installer puts `HealthCheck.xml` in its
//! program folder, listing the checks; a scheduled task (which runs whether or not the
//! service does) evaluates them once a day, after a random delay of up to an hour past
//! midnight. The delay is drawn from the device's id and the date, and the id comes from
//! the world's seeded randomness, so a seed replays the same times. Checks:
//! `ServiceRunning` (the IntuneManagementExtension service runs; a stopped one is
//! started) and `AgentStatusReport` (the result is sent to the service as
//! `AgentStatusReport`, a shape Tenantless defines: `{AgentVersion, ServiceWasRunning,
//! Restarted, Checks: [{Name, Result}], EvaluatedAt}`). Everything is logged to
//! ClientHealth.log.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::gateway::{self, Caller};
use crate::cmtrace::Severity;
use crate::device::Device;
use crate::error::AgentError;
use crate::state::AgentState;

/// The evaluation's log.
pub const LOG: &str = "ClientHealth.log";
/// The file listing the checks, in the IME's program folder.
pub const HEALTH_CHECK_FILE: &str = "HealthCheck.xml";
/// The checks the IME's installer lists.
pub const CHECKS: [&str; 2] = ["ServiceRunning", "AgentStatusReport"];

fn log(device: &Device, now: DateTime<Utc>, severity: Severity, message: &str) {
    super::log(device, LOG, "ClientHealth", message, severity, now);
}

fn health_check_path() -> String {
    format!(r"{}\{HEALTH_CHECK_FILE}", super::PROGRAM_DIR)
}

/// Writes `HealthCheck.xml` and schedules the first evaluation (called when the IME is
/// installed or upgraded).
pub fn install(device: &mut Device, state: &mut AgentState, now: DateTime<Utc>) {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<HealthCheck Version=\"1\">\r\n",
    );
    xml.push_str("  <Check Name=\"ServiceRunning\" Service=\"IntuneManagementExtension\" Remediation=\"StartService\" Interval=\"Daily\" />\r\n");
    xml.push_str(
        "  <Check Name=\"AgentStatusReport\" Remediation=\"None\" Interval=\"Daily\" />\r\n",
    );
    xml.push_str("</HealthCheck>\r\n");
    if let Err(e) = device.drive.write(&health_check_path(), xml.as_bytes()) {
        tracing::warn!("cannot write {HEALTH_CHECK_FILE}: {e}");
    }
    state.ime.health_due = Some(next_evaluation(&device.profile.device_id, now));
}

/// The checks `HealthCheck.xml` lists (empty when it is missing or unreadable).
pub fn listed_checks(device: &Device) -> Vec<String> {
    let Ok(bytes) = device.drive.read(&health_check_path()) else {
        return Vec::new();
    };
    let Ok(root) = syncml::xml::parse(&String::from_utf8_lossy(&bytes)) else {
        return Vec::new();
    };
    root.children_named("Check")
        .filter_map(|c| c.attr("Name").map(str::to_owned))
        .collect()
}

/// The delay after midnight of `date` at which a device evaluates its health: under an
/// hour, fixed per device and day.
pub fn delay(device_id: &str, date: NaiveDate) -> Duration {
    let digest = Sha256::digest(format!("{device_id}|{date}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    Duration::seconds((u64::from_le_bytes(bytes) % 3600) as i64)
}

/// The first evaluation after `now`: today's, if its time has not come, else
/// tomorrow's (midnight plus the day's delay).
pub fn next_evaluation(device_id: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    let at = |date: NaiveDate| date.and_time(NaiveTime::MIN).and_utc() + delay(device_id, date);
    let today = now.date_naive();
    if at(today) > now {
        return at(today);
    }
    today.succ_opt().map_or(now + Duration::days(1), at)
}

/// True when an evaluation is due (the IME is installed; it need not be running).
pub fn due(state: &AgentState, now: DateTime<Utc>) -> bool {
    next_due(state).is_some_and(|t| t <= now)
}

/// When the next evaluation is due.
pub fn next_due(state: &AgentState) -> Option<DateTime<Utc>> {
    state
        .ime
        .installed
        .then_some(state.ime.health_due)
        .flatten()
}

/// Runs the daily evaluation: the listed checks, then the agent status report.
pub async fn evaluate(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<(), AgentError> {
    state.ime.health_due = Some(next_evaluation(&device.profile.device_id, now));
    log(
        device,
        now,
        Severity::Info,
        "[ClientHealth] Health evaluation started",
    );
    let mut checks = listed_checks(device);
    if checks.is_empty() {
        log(
            device,
            now,
            Severity::Warning,
            &format!("[ClientHealth] {HEALTH_CHECK_FILE} is missing or lists no checks; running the default checks"),
        );
        checks = CHECKS.iter().map(|c| (*c).to_owned()).collect();
    }
    let was_running = state.ime.running;
    let mut restarted = false;
    let mut results = Vec::new();
    for check in &checks {
        match check.as_str() {
            "ServiceRunning" if was_running => {
                log(
                    device,
                    now,
                    Severity::Info,
                    "[ClientHealth] Service IntuneManagementExtension is running",
                );
                results.push(json!({ "Name": check, "Result": "Healthy" }));
            }
            "ServiceRunning" => {
                log(
                    device,
                    now,
                    Severity::Warning,
                    "[ClientHealth] Service IntuneManagementExtension is stopped; starting it",
                );
                super::start(device, state, now);
                restarted = true;
                log(
                    device,
                    now,
                    Severity::Info,
                    "[ClientHealth] Service IntuneManagementExtension started",
                );
                results.push(json!({ "Name": check, "Result": "Remediated" }));
            }
            "AgentStatusReport" => {}
            other => {
                log(
                    device,
                    now,
                    Severity::Warning,
                    &format!("[ClientHealth] Unknown check {other}; skipped"),
                );
            }
        }
    }
    if checks.iter().any(|c| c == "AgentStatusReport") {
        let report = json!({
            "AgentVersion": state.ime.version,
            "ServiceWasRunning": was_running,
            "Restarted": restarted,
            "Checks": results,
            "EvaluatedAt": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        send(device, state, client, &report, now).await?;
        log(
            device,
            now,
            Severity::Info,
            "[ClientHealth] Agent status report sent",
        );
    }
    log(
        device,
        now,
        Severity::Info,
        &format!(
            "[ClientHealth] Health evaluation finished; next at {}",
            state
                .ime
                .health_due
                .map_or(String::new(), |t| t.to_string())
        ),
    );
    Ok(())
}

async fn send(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    report: &Value,
    now: DateTime<Utc>,
) -> Result<(), AgentError> {
    let gateway = match &state.ime.gateway_url {
        Some(g) => g.clone(),
        None => {
            let management = state
                .enrollment
                .as_ref()
                .map(|e| e.addr.clone())
                .ok_or(AgentError::NotEnrolled)?;
            let g = gateway::discover(client, &management).await?;
            state.ime.gateway_url = Some(g.clone());
            g
        }
    };
    gateway::Conversation::new(client, &gateway, "health", device, &state.ime.version, now)
        .call("AgentStatusReport", report, "Unknown")
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluations_fall_within_an_hour_after_midnight_and_differ_by_device() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let a = next_evaluation("DEVICE-A", now);
        let b = next_evaluation("DEVICE-B", now);
        let midnight = now
            .date_naive()
            .succ_opt()
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        for t in [a, b] {
            assert!(t >= midnight && t < midnight + Duration::hours(1), "{t}");
        }
        assert_ne!(a, b);
        assert_eq!(
            a,
            next_evaluation("DEVICE-A", now),
            "the same device, the same time"
        );
        // Just after today's evaluation, the next one is tomorrow's.
        assert!(next_evaluation("DEVICE-A", a) > a + Duration::hours(22));
    }
}
