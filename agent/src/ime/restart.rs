//! The IME's restart manager and its toasts. An install that needs a restart (a hard
//! reboot exit code under "determine behavior based on return codes", or any install
//! under "force a mandatory restart") leaves a pending restart. With the assignment's
//! grace period (`RebootEx`) the user is told at once, may snooze the notification,
//! sees a countdown before the period ends and is restarted when it does; without one,
//! the restart waits for the user. Every toast the user would see is kept on the device
//! ([`Notification`]) and logged.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::device::{Device, RegValue};
use crate::state::AgentState;

use super::{lines, Pen};

/// The key that exists while the IME has a restart pending (pending-reboot checks such
/// as PSADT's look for it); its `AppId` value (Tenantless's) names the app.
pub const REBOOT_FLAG: &str =
    r"HKLM\SOFTWARE\Microsoft\IntuneManagementExtension\RebootSettings\RebootFlag";

/// The most notifications a device keeps (the oldest go first).
pub const KEPT: usize = 200;

/// Policy `InstallEx.DeviceRestartBehavior`: 0 based on return codes, 1 allow (the
/// installer may restart by itself), 2 suppress, 3 force.
pub const FORCE: i64 = 3;

/// A toast the IME showed the signed-in user.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Notification {
    /// When it showed.
    pub at: DateTime<Utc>,
    /// `installing`, `installed`, `failed`, `restartRequired`, `restartCountdown`,
    /// `restartSnoozed` or `restarting`.
    pub kind: String,
    /// The app it is about.
    pub app_id: String,
    /// What the user reads.
    pub text: String,
}

/// A restart an install asked for, not done yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PendingRestart {
    /// The app whose install asked for it.
    pub app_id: String,
    /// Its name, for the toasts.
    pub app_name: String,
    /// When the install finished.
    pub required_at: DateTime<Utc>,
    /// When the grace period ends and the device restarts; `None` without a grace
    /// period (the user restarts when they choose).
    pub deadline: Option<DateTime<Utc>>,
    /// Minutes before the deadline that the countdown dialog shows (0: none).
    pub countdown_minutes: i64,
    /// Minutes a snooze lasts (0: the user may not snooze).
    pub snooze_minutes: i64,
    /// When the restart notification shows next (after a snooze).
    pub next_prompt: Option<DateTime<Utc>>,
    /// How often the user snoozed it.
    pub snoozes: u32,
    /// The countdown dialog is showing: no more snoozing.
    pub countdown_shown: bool,
    /// Restart toasts are hidden (`ToastState` 2).
    pub quiet: bool,
}

impl PendingRestart {
    /// When the countdown dialog shows, if there is one.
    pub fn countdown_at(&self) -> Option<DateTime<Utc>> {
        let deadline = self.deadline?;
        (self.countdown_minutes > 0).then(|| deadline - Duration::minutes(self.countdown_minutes))
    }

    /// The next moment the restart manager acts by itself.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        let countdown = self.countdown_at().filter(|_| !self.countdown_shown);
        [self.next_prompt, countdown, self.deadline]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What the user answers to the restart notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// "Restart now".
    RestartNow,
    /// "Snooze": remind me after the snooze duration.
    Snooze,
}

impl Answer {
    /// An answer by name (`restart-now`, `snooze`).
    pub fn parse(name: &str) -> Option<Answer> {
        match name {
            "restart-now" | "restartNow" | "restart" | "accept" => Some(Answer::RestartNow),
            "snooze" => Some(Answer::Snooze),
            _ => None,
        }
    }
}

/// Which toasts an app's policy lets the user see (`ToastState`): 0 all, 1 restarts
/// only, 2 none.
fn toast_state(policy: &Value) -> i64 {
    policy["ToastState"].as_i64().unwrap_or(0)
}

/// Shows a toast (when the app's ToastState allows it): kept on the device and logged.
pub fn toast(
    device: &Device,
    state: &mut AgentState,
    pen: &mut Pen,
    kind: &str,
    (app_id, app_name): (&str, &str),
    quiet: bool,
) {
    if quiet {
        pen.info(device, &lines::toast_suppressed(kind, app_id));
        return;
    }
    let text = match kind {
        "installing" => format!("{app_name} is being installed."),
        "installed" => format!("{app_name} is installed."),
        "failed" => format!("{app_name} could not be installed."),
        "restartRequired" => {
            format!("Your device needs to restart to finish installing {app_name}.")
        }
        "restartCountdown" => "Your device will restart soon. Save your work.".to_owned(),
        "restartSnoozed" => "We'll remind you again later.".to_owned(),
        _ => "Your device is restarting.".to_owned(),
    };
    pen.info(device, &lines::toast_shown(kind, app_id, &text));
    state.notifications.push(Notification {
        at: pen.at,
        kind: kind.to_owned(),
        app_id: app_id.to_owned(),
        text,
    });
    let excess = state.notifications.len().saturating_sub(KEPT);
    state.notifications.drain(..excess);
}

/// The install of an app began: the "installing" toast (all toasts shown only).
pub fn install_started(device: &Device, state: &mut AgentState, pen: &mut Pen, policy: &Value) {
    let app = app_of(policy);
    let quiet = toast_state(policy) != 0;
    toast(device, state, pen, "installing", (&app.0, &app.1), quiet);
}

/// The install of an app ended (installed, or failed for good).
pub fn install_ended(
    device: &Device,
    state: &mut AgentState,
    pen: &mut Pen,
    policy: &Value,
    installed: bool,
) {
    let app = app_of(policy);
    let quiet = toast_state(policy) != 0;
    let kind = if installed { "installed" } else { "failed" };
    toast(device, state, pen, kind, (&app.0, &app.1), quiet);
}

fn app_of(policy: &Value) -> (String, String) {
    (
        policy["Id"].as_str().unwrap_or_default().to_owned(),
        policy["Name"].as_str().unwrap_or_default().to_owned(),
    )
}

/// True when an install with the return code type `kind` (2 soft, 3 hard reboot)
/// leaves the device to restart under the app's DeviceRestartBehavior.
pub fn needed(install_ex: &Value, kind: i64) -> bool {
    match install_ex["DeviceRestartBehavior"].as_i64().unwrap_or(0) {
        0 => kind == 3,
        FORCE => true,
        _ => false,
    }
}

/// An install asked for a restart: it becomes pending (an earlier one stands, with the
/// sooner deadline) and the user is told. Without a grace period, `force` restarts the
/// device at once (Graph: "immediately after the app installation"); a hard reboot code
/// waits for the user, no further installs meanwhile.
pub fn require(
    device: &mut Device,
    state: &mut AgentState,
    pen: &mut Pen,
    (policy, install_ex): (&Value, &Value),
    now: DateTime<Utc>,
) {
    let minutes = |key: &str| policy["RebootEx"][key].as_i64().filter(|m| *m > 0);
    let (id, name) = app_of(policy);
    let grace = minutes("GracePeriod");
    let forced = install_ex["DeviceRestartBehavior"] == FORCE;
    let deadline = match grace {
        Some(g) => Some(now + Duration::minutes(g)),
        None => forced.then_some(now),
    };
    let quiet = toast_state(policy) == 2;
    pen.info(
        device,
        &lines::restart_required(&id, grace, minutes("Countdown"), minutes("Snooze")),
    );
    let restart = PendingRestart {
        app_id: id.clone(),
        app_name: name.clone(),
        required_at: now,
        deadline,
        countdown_minutes: minutes("Countdown").unwrap_or(0),
        snooze_minutes: minutes("Snooze").unwrap_or(0),
        next_prompt: None,
        snoozes: 0,
        countdown_shown: false,
        quiet,
    };
    let keep_earlier = state
        .ime
        .restart
        .as_ref()
        .is_some_and(|r| match (r.deadline, deadline) {
            (Some(a), Some(b)) => a <= b,
            (Some(_), None) => true,
            _ => false,
        });
    if !keep_earlier {
        state.ime.restart = Some(restart);
    }
    // Where Windows tools look for the IME's pending restart.
    device
        .registry
        .set(REBOOT_FLAG, "AppId", RegValue::Sz(id.clone()));
    toast(device, state, pen, "restartRequired", (&id, &name), quiet);
}

/// The device restarted: no restart is pending any more.
pub fn done(device: &mut Device, state: &mut AgentState) {
    state.ime.restart = None;
    device.registry.delete_key(REBOOT_FLAG);
}

/// What the restart manager decided at a moment it was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing to do yet.
    Nothing,
    /// A toast showed (a snooze ran out, or the countdown began).
    Shown,
    /// The grace period is over: restart the device now.
    Restart,
}

/// Runs the restart manager at `now`: a snoozed notification comes back, the countdown
/// dialog shows, or the grace period ends (the caller restarts the device).
pub fn run_due(device: &Device, state: &mut AgentState, now: DateTime<Utc>) -> Due {
    let Some(mut r) = state.ime.restart.clone() else {
        return Due::Nothing;
    };
    let mut pen = super::win32::poller_pen(now);
    let app = (r.app_id.clone(), r.app_name.clone());
    if r.deadline.is_some_and(|d| d <= now) {
        if r.deadline == Some(r.required_at) {
            pen.info(device, &lines::restart_at_once(&r.app_id));
        } else {
            pen.info(device, &lines::restart_forced(&r.app_id));
        }
        toast(
            device,
            state,
            &mut pen,
            "restarting",
            (&app.0, &app.1),
            r.quiet,
        );
        return Due::Restart;
    }
    let mut due = Due::Nothing;
    if r.countdown_at().is_some_and(|t| t <= now) && !r.countdown_shown {
        r.countdown_shown = true;
        r.next_prompt = None;
        pen.info(
            device,
            &lines::restart_countdown(&r.app_id, r.countdown_minutes),
        );
        toast(
            device,
            state,
            &mut pen,
            "restartCountdown",
            (&app.0, &app.1),
            r.quiet,
        );
        due = Due::Shown;
    } else if r.next_prompt.is_some_and(|t| t <= now) {
        r.next_prompt = None;
        toast(
            device,
            state,
            &mut pen,
            "restartRequired",
            (&app.0, &app.1),
            r.quiet,
        );
        due = Due::Shown;
    }
    state.ime.restart = Some(r);
    due
}

/// The user answers the restart notification. `Ok(true)`: restart the device now.
pub fn answer(
    device: &Device,
    state: &mut AgentState,
    answer: Answer,
    now: DateTime<Utc>,
) -> Result<bool, String> {
    let Some(mut r) = state.ime.restart.clone() else {
        return Err("no restart is pending on this device".into());
    };
    let mut pen = super::win32::poller_pen(now);
    match answer {
        Answer::RestartNow => {
            pen.info(device, &lines::restart_accepted(&r.app_id));
            Ok(true)
        }
        Answer::Snooze => {
            if r.snooze_minutes <= 0 {
                return Err("this restart cannot be snoozed".into());
            }
            if r.countdown_shown {
                return Err("the restart countdown has begun: it cannot be snoozed".into());
            }
            if r.next_prompt.is_some() {
                return Err("the restart notification is already snoozed".into());
            }
            let mut again = now + Duration::minutes(r.snooze_minutes);
            if let Some(countdown) = r.countdown_at().or(r.deadline) {
                again = again.min(countdown);
            }
            r.snoozes += 1;
            r.next_prompt = Some(again);
            pen.info(device, &lines::restart_snoozed(&r.app_id, r.snoozes, again));
            let app = (r.app_id.clone(), r.app_name.clone());
            let quiet = r.quiet;
            state.ime.restart = Some(r);
            toast(
                device,
                state,
                &mut pen,
                "restartSnoozed",
                (&app.0, &app.1),
                quiet,
            );
            Ok(false)
        }
    }
}
