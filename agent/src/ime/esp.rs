//! The Enrollment Status Page, as the IME takes part in it. The first management
//! session of an Autopilot-style first boot brings the ESP's settings (the DMClient
//! CSP's `FirstSyncStatus`: pages shown, the timeout) and the Win32 apps it waits for
//! (the EnrollmentStatusTracking CSP's `Setup/Apps/Tracking/Sidecar/Win32App_<id>_1`).
//! Then the device is in **DeviceSetup**: the IME checks in every few minutes with
//! CheckinReason `ESP`, installs only the blocking apps targeted to the device, and
//! records each one's InstallationState (1 not installed, 2 in progress, 3 completed,
//! 4 error) under `...\Autopilot\EnrollmentStatusTracking\Device\Setup\Apps\Tracking`.
//! When they are all installed the device goes on to **AccountSetup** (the blocking apps
//! targeted to users, in the signed-in user's session), then **NotInEsp**, where every
//! app is processed. A blocking app that fails, or the timeout, ends the ESP in failure
//! ("BlockInStatusPage"); what was not installed is then processed like any app.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::device::{Device, RegValue};
use crate::state::AgentState;

use super::{lines, Pen};

/// Where the server lists the apps the IME must install.
const SIDECAR_TRACKING: &str = "Vendor/MSFT/EnrollmentStatusTracking/Setup/Apps/Tracking/Sidecar";
/// Where Windows keeps each tracked app's state.
pub const TRACKING_KEY: &str = r"HKLM\SOFTWARE\Microsoft\Windows\Autopilot\EnrollmentStatusTracking\Device\Setup\Apps\Tracking\Sidecar";
/// How often the IME checks in while the ESP waits for it.
pub const CHECKIN_MINUTES: i64 = 5;

/// InstallationState: not installed yet.
pub const NOT_INSTALLED: i64 = 1;
/// InstallationState: being installed.
pub const IN_PROGRESS: i64 = 2;
/// InstallationState: installed.
pub const COMPLETED: i64 = 3;
/// InstallationState: failed.
pub const ERROR: i64 = 4;

/// The ESP under way.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Esp {
    /// `DeviceSetup` or `AccountSetup`.
    pub phase: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it gives up (TimeOutUntilSyncFailure).
    pub deadline: DateTime<Utc>,
    /// The blocking apps by id, with their InstallationState.
    pub tracked: BTreeMap<String, i64>,
}

/// How the ESP ended, once it has.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct EspOutcome {
    /// When.
    pub at: DateTime<Utc>,
    /// It failed: a blocking app failed, or the timeout.
    pub failed: bool,
    /// Why, in words.
    pub reason: String,
}

fn node<'a>(state: &'a AgentState, path: &str) -> Option<&'a str> {
    state.nodes.get(path).map(|n| n.data.as_str())
}

/// After a management session: the ESP begins if the session brought its settings and
/// it has not run on this device yet.
pub fn after_session(device: &mut Device, state: &mut AgentState, now: DateTime<Utc>) {
    if state.esp.is_some() || state.esp_outcome.is_some() {
        return;
    }
    // The DMClient nodes the ESP's settings come in, under the enrollment's provider
    // (normalized, as the DM tree keeps them).
    let Some(provider) = state.enrollment.as_ref().map(|e| e.provider_id.clone()) else {
        return;
    };
    let first_sync = format!("Vendor/MSFT/DMClient/Provider/{provider}/FirstSyncStatus");
    if node(state, &format!("{first_sync}/SkipDeviceStatusPage")) != Some("false") {
        return;
    }
    let minutes = node(state, &format!("{first_sync}/TimeOutUntilSyncFailure"))
        .and_then(|m| m.parse::<i64>().ok())
        .unwrap_or(60);
    let prefix = format!("{SIDECAR_TRACKING}/");
    let tracked: BTreeMap<String, i64> = state
        .nodes
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('/').next())
        .filter_map(|name| name.strip_prefix("Win32App_"))
        .filter_map(|name| name.strip_suffix("_1"))
        .map(|id| (id.to_owned(), NOT_INSTALLED))
        .collect();
    for id in tracked.keys() {
        write_state(device, id, NOT_INSTALLED);
    }
    let mut pen = pen(now);
    pen.info(device, &lines::esp_started(minutes, tracked.len()));
    state.esp = Some(Esp {
        phase: "DeviceSetup".into(),
        started_at: now,
        deadline: now + Duration::minutes(minutes),
        tracked,
    });
    if state.ime.running {
        super::request_checkin(state, "ESP");
    }
}

fn pen(now: DateTime<Utc>) -> Pen {
    Pen::new(
        super::LOG,
        "IntuneManagementExtension",
        super::threads::SERVICE,
        now,
    )
}

fn write_state(device: &mut Device, app: &str, installation_state: i64) {
    device.registry.set(
        &format!(r"{TRACKING_KEY}\Win32App_{app}_1"),
        "InstallationState",
        RegValue::Dword(u32::try_from(installation_state).unwrap_or(0)),
    );
}

/// The phase at `now` (`None`: not in the ESP), ending it first if its time is up.
pub fn phase(device: &mut Device, state: &mut AgentState, now: DateTime<Utc>) -> Option<String> {
    let esp = state.esp.as_ref()?;
    if now >= esp.deadline {
        let minutes = (esp.deadline - esp.started_at).num_minutes();
        finish(
            device,
            state,
            now,
            true,
            &format!("the ESP timed out after {minutes} minutes"),
        );
        return None;
    }
    Some(esp.phase.clone())
}

/// The apps a session processes in the ESP's `phase`: in DeviceSetup, session 0's
/// blocking apps; in AccountSetup, the users' blocking apps; dependencies (Intent 0) go
/// with their parents.
pub fn in_phase(state: &AgentState, phase: &str, session: u32, policy: &Value) -> bool {
    let Some(esp) = &state.esp else {
        return true;
    };
    let id = policy["Id"].as_str().unwrap_or_default();
    let by_user = policy["TargetType"] == 1;
    let wanted = match phase {
        "DeviceSetup" => session == 0 && !by_user,
        _ => session > 0 && by_user,
    };
    wanted && (esp.tracked.contains_key(id) || policy["Intent"] == 0)
}

/// After a check-in in the ESP: each blocking app's InstallationState from what the
/// poller did (`installed`, `failed`: app ids; a retry still to come is in progress),
/// then the next phase when the apps of this one are done, or the end.
pub fn after_checkin(
    device: &mut Device,
    state: &mut AgentState,
    now: DateTime<Utc>,
    installed: &[String],
    failed: &[String],
) {
    let Some(mut esp) = state.esp.clone() else {
        return;
    };
    for (id, s) in esp.tracked.iter_mut() {
        let new = if installed.contains(id) {
            COMPLETED
        } else if failed.contains(id) {
            ERROR
        } else if state.ime.apps.contains_key(id) {
            IN_PROGRESS
        } else {
            *s
        };
        if new != *s {
            *s = new;
            write_state(device, id, new);
        }
    }
    let open = esp
        .tracked
        .values()
        .any(|s| *s == NOT_INSTALLED || *s == IN_PROGRESS);
    let failures: Vec<&String> = esp
        .tracked
        .iter()
        .filter(|(_, s)| **s == ERROR)
        .map(|(id, _)| id)
        .collect();
    state.esp = Some(esp.clone());
    if let Some(app) = failures.first() {
        finish(
            device,
            state,
            now,
            true,
            &format!("the blocking app {app} failed to install"),
        );
        return;
    }
    if open {
        state.ime.next_checkin = Some(now + Duration::minutes(CHECKIN_MINUTES));
        return;
    }
    let mut pen = pen(now);
    if esp.phase == "DeviceSetup" {
        pen.info(
            device,
            &lines::esp_phase_done("DeviceSetup", "AccountSetup"),
        );
        esp.phase = "AccountSetup".into();
        state.esp = Some(esp);
        state.ime.next_checkin = Some(now);
        state.ime.checkin_reason = "ESP".into();
    } else {
        finish(device, state, now, false, "every blocking app is installed");
    }
}

/// The ESP ends: logged, remembered, and the IME checks in at once for everything else.
fn finish(
    device: &mut Device,
    state: &mut AgentState,
    now: DateTime<Utc>,
    failed: bool,
    reason: &str,
) {
    let mut pen = pen(now);
    if failed {
        pen.error(device, &lines::esp_failed(reason));
    } else {
        pen.info(device, &lines::esp_done(reason));
    }
    state.esp = None;
    state.esp_outcome = Some(EspOutcome {
        at: now,
        failed,
        reason: reason.to_owned(),
    });
    state.ime.next_checkin = Some(now);
    state.ime.checkin_reason = "ESP".into();
}
