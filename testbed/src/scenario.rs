//! Scenario files: a world described in TOML - devices, steps, expectations - run by
//! `tenantless run`. Errors name the file and line that is wrong.
//!
//! ```toml
//! name = "The IME arrives by SyncML"
//! seed = 7
//!
//! [[devices]]
//! name = "LAB-01"
//! user = "alice@contoso.com"
//!
//! [[steps]]
//! advance = "20m"
//!
//! [[steps]]
//! require_ime = "LAB-01"
//!
//! [[steps]]
//! expect = { device = "LAB-01", kind = "ime_install", state = "installed", exactly = 1 }
//! ```
//!
//! Steps: `advance` (a duration such as `90s`, `20m`, `8h`, `7d`), `enroll` (a device
//! declared with `enroll = false`), `sync` (Company Portal), `admin_sync` (the admin
//! center, a push), `syncapp` (`intunemanagementextension://syncapp`), `synccompliance`,
//! `require_ime`, `ime_version` (roll out a new
//! IME), `snapshot` and `restore_snapshot` (of a device, as of a virtual machine),
//! `restart_ime`, `stop_ime`, `sign_in` and `sign_out` (`{ device, user }`),
//! `answer_restart` (`{ device, answer }`: `snooze` or `restart-now`), `graph` (any admin API call: `{ method, path, body,
//! status }`, `{device:NAME}` and `{app:NAME}` in the path, `{group:NAME}` and
//! `{entra-device:NAME}` in the path and body), `unenroll` (the user disconnects the
//! device), `reboot`, `power_on`, `join_group` and `leave_group` (`{ group, devices,
//! users }`: Entra groups by display name, made when first joined; `assign` takes
//! `group` and `exclude_group`),
//! `stop_server`, `start_server`, `queue` (an OMA-DM command as the admin API takes it),
//! `set_registry`, `delete_registry_key`, `delete_registry_value`, `install_program`,
//! `uninstall_program` (by hand, in the registry); expectations: `expect` (the journal
//! filter language plus one of `exactly`, `at_least`, `at_most`, `never`, `in_order`),
//! `expect_registry`, `expect_log`, `expect_program`.
//!
//! Before the steps, `[[winget]]` packages go into every device's WinGet source,
//! `[[apps]]` are created with their content (or `winget = "<package id>"`: a Microsoft
//! Store app; steps assign them), and
//! `[[scripts]]` (name, content, enforce_signature) and `[[remediations]]` (name,
//! detection, remediation, schedule: `hourly`, `every Nh`, `daily HH:MM`,
//! `every Nd HH:MM`, `once`) and `[[compliance]]` (name, discovery, rules: custom
//! compliance) are created and assigned to every device, and `[esp]` (timeout, blocking
//! apps by name) makes an Enrollment Status Page profile for every device that enrolls
//! afterwards.

mod groups;

use crate::remote_server::error_message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agent::device::{programs, DeviceProfile, RegValue};
use chrono::Duration;
use serde::Deserialize;
use server::admin::CommandSpec;
use server::journal::{Expectation, Filter, NearMiss};

use crate::world::{AdminBody, World, WorldError, WorldOptions};
use serde_json::json;

/// A scenario as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// The world's seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// World time at the start (RFC 3339).
    pub start: Option<String>,
    /// The devices.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    /// Win32 apps (created, with their content, before the steps; assigned by steps).
    #[serde(default)]
    pub apps: Vec<AppSpec>,
    /// Platform scripts (created and assigned to every device before the steps).
    #[serde(default)]
    pub scripts: Vec<ScriptSpec>,
    /// Remediations (created and assigned to every device before the steps).
    #[serde(default)]
    pub remediations: Vec<RemediationSpec>,
    /// The packages WinGet's source offers every device (Microsoft Store (new) apps
    /// install from it).
    #[serde(default)]
    pub winget: Vec<WingetSpec>,
    /// Custom compliance policies (created and assigned to every device before the
    /// steps).
    #[serde(default)]
    pub compliance: Vec<ComplianceSpec>,
    /// An Enrollment Status Page profile for every device (devices that enroll after it
    /// go through it: declare them with `enroll = false` and enroll them in a step).
    pub esp: Option<EspSpec>,
    /// What happens, in order.
    #[serde(default)]
    pub steps: Vec<toml::Spanned<Step>>,
}

fn default_seed() -> u64 {
    1
}

/// A device of the scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Its name (the computer name too).
    pub name: String,
    /// The signed-in user.
    pub user: Option<String>,
    /// `x64`, `x86`, `ARM64`.
    pub architecture: Option<String>,
    /// OS version, `10.0.<build>.<revision>`.
    pub os_version: Option<String>,
    /// Memory, MB.
    pub memory_mb: Option<u64>,
    /// Free disk, MB.
    pub free_disk_mb: Option<u64>,
    /// Processors.
    pub cpu_count: Option<u32>,
    /// Programs installed before enrollment.
    #[serde(default)]
    pub programs: Vec<ProgramSpec>,
    /// Enroll at the start (default); `false` waits for an `enroll` step.
    pub enroll: Option<bool>,
    /// The Windows time zone's name (default `UTC`).
    pub time_zone: Option<String>,
    /// Its offset from UTC, `+10:00` or `-05:30`.
    pub utc_offset: Option<String>,
}

/// A Win32 app of the scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Display name (steps name apps by it).
    pub name: String,
    /// Publisher.
    #[serde(default)]
    pub publisher: String,
    /// A simulated MSI made on the fly as the setup file.
    pub msi: Option<MsiSpec>,
    /// Or a folder (relative to the scenario file) packed into a .intunewin on the fly.
    pub folder: Option<String>,
    /// The setup file (default `setup.msi`).
    pub setup: Option<String>,
    /// Install command line (default `msiexec /i <setup> /qn`).
    pub install: Option<String>,
    /// Uninstall command line (default `msiexec /x <product code> /qn`).
    pub uninstall: Option<String>,
    /// Detection rules in Graph's shape (default: the MSI's product code).
    #[serde(default)]
    pub rules: Vec<toml::Value>,
    /// Graph's `applicableArchitectures` (default `x64,x86`).
    pub architectures: Option<String>,
    /// Apps (by name) installed first, automatically.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Apps (by name) this one replaces (uninstalling them).
    #[serde(default)]
    pub supersedes: Vec<String>,
    /// Graph's `deviceRestartBehavior`: `basedOnReturnCode` (default), `allow`,
    /// `suppress` or `force`.
    pub restart_behavior: Option<String>,
    /// A Microsoft Store (new) app instead (Graph's `winGetApp`): its WinGet package
    /// identifier. No msi or folder.
    pub winget: Option<String>,
}

/// A platform script of the scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptSpec {
    /// Display name.
    pub name: String,
    /// The script's text.
    pub content: String,
    /// EnforceSignatureCheck.
    #[serde(default)]
    pub enforce_signature: bool,
}

/// A remediation of the scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationSpec {
    /// Display name.
    pub name: String,
    /// The detection script's text.
    pub detection: String,
    /// The remediation script's text (none: detection only).
    #[serde(default)]
    pub remediation: String,
    /// `hourly`, `every 4h`, `daily 09:00`, `every 2d 09:00` or `once` (default
    /// `daily 00:00`).
    pub schedule: Option<String>,
}

/// A package in WinGet's source, and how its installs end.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WingetSpec {
    /// The package identifier (`9WZDNCRFJ3TJ`, `Contoso.Widget`).
    pub id: String,
    /// Its name (the installed program's DisplayName).
    pub name: String,
    /// Its version (default 1.0.0).
    #[serde(default = "one")]
    pub version: String,
    /// Its publisher.
    #[serde(default)]
    pub publisher: String,
    /// The exit codes of successive installs, e.g. `[-1978334972, 0]` (the last
    /// repeats; none: success).
    #[serde(default)]
    pub exit_codes: Vec<i64>,
}

/// The scenario's Enrollment Status Page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EspSpec {
    /// How long it waits for its apps (a duration, default `60m`).
    pub timeout: Option<String>,
    /// The apps (by name) it waits for.
    #[serde(default)]
    pub blocking: Vec<String>,
}

/// A custom compliance policy of the scenario: a discovery script and its rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceSpec {
    /// The policy's display name.
    pub name: String,
    /// The discovery script's text: it prints one line of JSON, a value per setting.
    pub discovery: String,
    /// The rules, as the rules JSON writes them (`SettingName`, `Operator`, `DataType`,
    /// `Operand`, `MoreInfoUrl`, `RemediationStrings`).
    pub rules: Vec<toml::Value>,
}

impl RemediationSpec {
    /// The schedule as Graph's `runSchedule`.
    pub fn run_schedule(&self) -> Result<serde_json::Value, String> {
        let text = self.schedule.as_deref().unwrap_or("daily 00:00").trim();
        let words: Vec<&str> = text.split_whitespace().collect();
        let graph = |kind: &str, interval: i64, time: Option<&str>| {
            let time = match time {
                None => "00:00:00".to_owned(),
                Some(t) if chrono::NaiveTime::parse_from_str(t, "%H:%M").is_ok() => {
                    format!("{t}:00")
                }
                Some(t) => return Err(format!("schedule {text:?}: {t:?} is not HH:MM")),
            };
            Ok(serde_json::json!({
                "@odata.type": format!("#microsoft.graph.deviceHealthScript{kind}Schedule"),
                "interval": interval,
                "time": time,
                "useUtc": true,
            }))
        };
        let every = |n: &str, unit: char| {
            n.strip_suffix(unit)
                .and_then(|n| n.parse::<i64>().ok())
                .filter(|n| *n > 0)
        };
        match words.as_slice() {
            ["hourly"] => graph("Hourly", 1, None),
            ["once"] => graph("RunOnce", 1, None),
            ["daily"] => graph("Daily", 1, None),
            ["daily", at] => graph("Daily", 1, Some(at)),
            ["every", n] if every(n, 'h').is_some() => {
                graph("Hourly", every(n, 'h').unwrap_or(1), None)
            }
            ["every", n] if every(n, 'd').is_some() => {
                graph("Daily", every(n, 'd').unwrap_or(1), None)
            }
            ["every", n, at] if every(n, 'd').is_some() => {
                graph("Daily", every(n, 'd').unwrap_or(1), Some(at))
            }
            _ => Err(format!(
                "schedule {text:?}: use hourly, every Nh, daily HH:MM, every Nd HH:MM or once"
            )),
        }
    }
}

/// A simulated MSI described in a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsiSpec {
    /// `{GUID}`.
    pub product_code: String,
    /// ProductVersion (default 1.0.0).
    #[serde(default = "one")]
    pub version: String,
    /// The exit codes of successive attempts, e.g. `[1618, 1618, 1618, 1618, 0]`.
    #[serde(default)]
    pub exit_codes: Vec<u32>,
}

fn one() -> String {
    "1.0.0".into()
}

/// A user on a device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The device.
    pub device: String,
    /// The user principal name.
    pub user: String,
}

/// A program installed by hand.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// DisplayName.
    pub name: String,
    /// DisplayVersion.
    #[serde(default)]
    pub version: String,
    /// Publisher.
    #[serde(default)]
    pub publisher: String,
}

/// One step.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Let world time pass.
    Advance(String),
    /// Company Portal's Sync: the device opens a management session and its IME checks
    /// in (CheckinReason OnDemand).
    Sync(String),
    /// The admin center's Sync (Graph `syncDevice`): the service pushes, the device
    /// opens a management session and its IME checks in (Notification).
    AdminSync(String),
    /// `intunemanagementextension://syncapp`: the IME checks in for app policy only.
    Syncapp(String),
    /// `intunemanagementextension://synccompliance` on a device: the custom compliance
    /// discovery scripts run now.
    Synccompliance(String),
    /// Something the IME handles targets the device.
    RequireIme(String),
    /// Roll out a new IME version (the server delivers it to every device that needs
    /// the IME).
    ImeVersion(String),
    /// Take a snapshot of a device, as of a virtual machine.
    Snapshot(String),
    /// Revert a device to its snapshot.
    RestoreSnapshot(String),
    /// Enroll a device declared with `enroll = false`.
    Enroll(String),
    /// Restart the device's IME service.
    RestartIme(String),
    /// Stop the device's IME service (client health starts it again).
    StopIme(String),
    /// Stop the server (`true`); devices fail to reach it and try again later.
    StopServer(bool),
    /// Start the stopped server again (`true`).
    StartServer(bool),
    /// Queue an OMA-DM command.
    Queue {
        /// The device.
        device: String,
        /// The command, as the admin API takes it.
        command: CommandSpec,
    },
    /// Set a registry value on a device.
    SetRegistry {
        /// The device.
        device: String,
        /// Key path.
        key: String,
        /// Value name.
        name: String,
        /// `REG_SZ`, `REG_DWORD` ...
        #[serde(rename = "type")]
        kind: String,
        /// Data.
        value: String,
    },
    /// Delete a registry key (and everything under it).
    DeleteRegistryKey {
        /// The device.
        device: String,
        /// Key path.
        key: String,
    },
    /// Delete a registry value.
    DeleteRegistryValue {
        /// The device.
        device: String,
        /// Key path.
        key: String,
        /// Value name.
        name: String,
    },
    /// Install a program by hand (an Uninstall entry, as a non-MSI installer leaves).
    InstallProgram {
        /// The device.
        device: String,
        /// The program.
        #[serde(flatten)]
        program: ProgramSpec,
    },
    /// Remove a program by hand.
    UninstallProgram {
        /// The device.
        device: String,
        /// DisplayName.
        name: String,
    },
    /// Assign an app.
    Assign(AssignSpec),
    /// A user installs an available app (Company Portal).
    InstallAvailable {
        /// The device.
        device: String,
        /// The app's name.
        app: String,
    },
    /// Restart a device.
    Reboot(String),
    /// Power on a device that was shut down (Graph's `shutDown`).
    PowerOn(String),
    /// A user signs in on a device (`{ device, user }`): a UserLogOn check-in follows.
    SignIn(UserSpec),
    /// A user signs out of a device (`{ device, user }`).
    SignOut(UserSpec),
    /// The signed-in user answers the IME's restart notification (`{ device, answer }`,
    /// `snooze` or `restart-now`).
    AnswerRestart(RestartAnswerSpec),
    /// Devices or users join an Entra group (made when first joined).
    JoinGroup(groups::MembershipSpec),
    /// Devices or users leave an Entra group.
    LeaveGroup(groups::MembershipSpec),
    /// A call to the admin API, as any Graph client makes it (`{device:NAME}` in the
    /// path is the device's id, `{app:NAME}` the app's).
    Graph(GraphSpec),
    /// The user disconnects a device from management (Settings, Access work or school).
    Unenroll(String),
    /// A journal expectation.
    Expect(ExpectSpec),
    /// A registry value on a device.
    ExpectRegistry {
        /// The device.
        device: String,
        /// Key path.
        key: String,
        /// Value name (omit to check only that the key exists).
        name: Option<String>,
        /// The value, as text.
        equals: Option<String>,
        /// Text the value must contain (e.g. `"ComplianceState":1` in a state message).
        contains: Option<String>,
        /// True to expect the key (or value) absent.
        #[serde(default)]
        absent: bool,
    },
    /// A line in one of the IME's logs.
    ExpectLog {
        /// The device.
        device: String,
        /// The log file, e.g. `IntuneManagementExtension.log`.
        file: String,
        /// Text a record must contain.
        contains: String,
        /// How many records (default: at least one).
        count: Option<usize>,
    },
    /// A program in the device's installed programs.
    ExpectProgram {
        /// The device.
        device: String,
        /// DisplayName.
        name: String,
        /// Installed (default) or not.
        #[serde(default = "yes")]
        installed: bool,
    },
}

/// A `graph` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// `GET`, `POST`, `PATCH`, `PUT`, `DELETE`.
    pub method: String,
    /// The path, from the version root (`/beta/deviceManagement/...`).
    pub path: String,
    /// A JSON body.
    pub body: Option<toml::Value>,
    /// The status expected (default: any 2xx).
    pub status: Option<u16>,
}

/// An `assign` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignSpec {
    /// The app's name.
    pub app: String,
    /// `required` (default), `available` or `uninstall`.
    #[serde(default = "required")]
    pub intent: String,
    /// A device's name, or all devices when absent.
    pub device: Option<String>,
    /// An Entra group's display name (instead of `device`).
    pub group: Option<String>,
    /// An Entra group excluded from the assignment (one more assignment).
    pub exclude_group: Option<String>,
    /// Available from: a duration from now (e.g. `12h`) or a time
    /// (`2026-11-25T08:00`, UTC unless `local_time`).
    pub start: Option<String>,
    /// Deadline: a duration from now, or a time.
    pub deadline: Option<String>,
    /// The times are each device's wall-clock time (Graph's `useLocalTime`).
    #[serde(default)]
    pub local_time: bool,
    /// Graph's `notifications`: `showAll` (default), `showReboot` or `hideAll`.
    pub notifications: Option<String>,
    /// The restart grace period (a duration, e.g. `24h`): after an install that needs
    /// a restart, the device restarts when it is over.
    pub grace_period: Option<String>,
    /// The countdown dialog shows this long before the restart (e.g. `15m`).
    pub countdown: Option<String>,
    /// The user may snooze the restart notification for this long (e.g. `4h`).
    pub snooze: Option<String>,
}

/// The signed-in user's answer to the restart notification.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartAnswerSpec {
    /// The device.
    pub device: String,
    /// `snooze` or `restart-now`.
    pub answer: String,
}

fn yes() -> bool {
    true
}

fn required() -> String {
    "required".into()
}

/// A journal expectation: a filter (devices by name) and what is expected of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// The device's name.
    pub device: Option<String>,
    /// Event kind.
    pub kind: Option<String>,
    /// Shortcut for the payload's appId.
    pub app: Option<String>,
    /// Shortcut for the payload's policyId.
    pub policy: Option<String>,
    /// Shortcut for the payload's state.
    pub state: Option<String>,
    /// Only events at or after this world time (RFC 3339).
    pub since: Option<String>,
    /// Only events before this world time (RFC 3339).
    pub until: Option<String>,
    /// Payload fields.
    #[serde(default)]
    pub payload: toml::Table,
    /// Exactly this many.
    pub exactly: Option<usize>,
    /// At least this many.
    pub at_least: Option<usize>,
    /// At most this many.
    pub at_most: Option<usize>,
    /// None.
    #[serde(default)]
    pub never: bool,
    /// These, in order (each a filter like this one, without counts).
    #[serde(default)]
    pub in_order: Vec<ExpectSpec>,
}

/// Why a scenario could not be read or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong, with its line.
        message: String,
    },
    /// A step failed to run.
    #[error("{file}:{line}: {message}")]
    Step {
        /// The file.
        file: String,
        /// The step's line.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// The world failed.
    #[error("{0}")]
    World(#[from] WorldError),
}

/// One expectation's outcome.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectationResult {
    /// The line of the expectation.
    pub line: usize,
    /// What it expects, in words.
    pub description: String,
    /// Held.
    pub ok: bool,
    /// What was found.
    pub message: String,
    /// The closest events, when a journal expectation failed.
    pub near_misses: Vec<NearMiss>,
}

/// A scenario's run.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// The seed it ran with.
    pub seed: u64,
    /// Each expectation.
    pub expectations: Vec<ExpectationResult>,
    /// Wall time, ms.
    pub wall_ms: u128,
}

impl ScenarioReport {
    /// True when every expectation held.
    pub fn passed(&self) -> bool {
        self.expectations.iter().all(|e| e.ok)
    }
}

/// Reads a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: file.clone(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ScenarioError::Invalid {
        file,
        message: e.to_string().trim().to_owned(),
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|t| t.matches('\n').count() + 1)
        .unwrap_or(1)
}

/// Parses `90s`, `20m`, `8h`, `7d` (and `1h30m`): the same durations, and the same
/// limit, as the server's clock endpoint takes.
pub fn parse_duration(text: &str) -> Option<Duration> {
    server::worldclock::parse_duration(text).filter(|d| {
        *d > Duration::zero() && *d <= Duration::days(server::worldclock::MAX_ADVANCE_DAYS)
    })
}

/// Runs a scenario file (with `seed` in place of the file's, when given); returns the
/// report and the world, still running, for callers that want to look further.
pub async fn run(
    path: &Path,
    seed: Option<u64>,
    progress: impl FnMut(usize, usize),
) -> Result<(ScenarioReport, World), ScenarioError> {
    let options = RunOptions {
        seed,
        ..RunOptions::default()
    };
    run_with(path, &options, progress).await
}

/// How to run a scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The seed instead of the scenario's own.
    pub seed: Option<u64>,
    /// Run the world this many times faster than real time (for a person to watch)
    /// instead of jumping.
    pub pace: Option<f64>,
    /// Against this running server (reset first) instead of one in-process.
    pub remote: Option<crate::remote_server::RemoteOptions>,
}

/// [`run`] with every option.
pub async fn run_with(
    path: &Path,
    options: &RunOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<(ScenarioReport, World), ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: file.clone(),
        source,
    })?;
    let scenario: Scenario = toml::from_str(&text).map_err(|e| ScenarioError::Invalid {
        file: file.clone(),
        message: e.to_string().trim().to_owned(),
    })?;
    let started = std::time::Instant::now();
    let seed = options.seed.unwrap_or(scenario.seed);
    let mut world = start_world(&scenario, options, seed, &file).await?;
    let base = path.parent().unwrap_or(Path::new("."));
    let apps = create_workload(&world, &scenario, base, &file).await?;
    world.settle().await;

    let mut results = Vec::new();
    let total = scenario.steps.len();
    for (n, spanned) in scenario.steps.iter().enumerate() {
        progress(n, total);
        let at = At {
            file: &file,
            line: line_of(&text, spanned.span().start),
        };
        if let Some(result) = run_step(&mut world, &apps, spanned.get_ref(), &at).await? {
            results.push(result);
        }
    }
    progress(total, total);
    Ok((
        ScenarioReport {
            name: scenario.name,
            file,
            seed,
            expectations: results,
            wall_ms: started.elapsed().as_millis(),
        },
        world,
    ))
}

/// The world of a scenario: its server, clock and devices (enrolled unless they wait
/// for an `enroll` step).
async fn start_world(
    scenario: &Scenario,
    options: &RunOptions,
    seed: u64,
    file: &str,
) -> Result<World, ScenarioError> {
    let mut world_options = WorldOptions {
        seed,
        remote: options.remote.clone(),
        ..WorldOptions::default()
    };
    if let Some(start) = &scenario.start {
        world_options.start =
            server::clock::parse(start).ok_or_else(|| ScenarioError::Invalid {
                file: file.to_owned(),
                message: format!("start {start:?} is not an RFC 3339 time"),
            })?;
    }
    let mut world = World::start(world_options).await?;
    world.pace = options.pace;
    for d in &scenario.devices {
        let mut profile = DeviceProfile::default();
        if let Some(u) = &d.user {
            profile.user_principal_name = u.clone();
        }
        if let Some(a) = &d.architecture {
            profile.architecture = a.clone();
        }
        if let Some(v) = &d.os_version {
            profile.os_version = v.clone();
        }
        profile.memory_mb = d.memory_mb.unwrap_or(profile.memory_mb);
        profile.free_disk_mb = d.free_disk_mb.unwrap_or(profile.free_disk_mb);
        profile.cpu_count = d.cpu_count.unwrap_or(profile.cpu_count);
        if let Some(offset) = &d.utc_offset {
            profile.utc_offset_minutes =
                parse_utc_offset(offset).ok_or_else(|| ScenarioError::Invalid {
                    file: file.to_owned(),
                    message: format!("utc_offset {offset:?} is not like +10:00 or -05:30"),
                })?;
        }
        if let Some(zone) = &d.time_zone {
            profile.time_zone = zone.clone();
        }
        world.create_device(&d.name, profile)?;
        let agent = world.device_mut(&d.name)?;
        for p in &scenario.winget {
            agent.device_mut().winget.packages.insert(
                p.id.clone(),
                agent::device::winget::Package {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    publisher: p.publisher.clone(),
                    exit_codes: p.exit_codes.clone(),
                },
            );
        }
        for program in &d.programs {
            install_by_hand(&mut world, &d.name, program)?;
        }
        if d.enroll != Some(false) {
            world.enroll(&d.name).await?;
        }
    }
    Ok(world)
}

/// Creates the scenario's apps (returned by name with their ids), scripts and
/// remediations.
async fn create_workload(
    world: &World,
    scenario: &Scenario,
    base: &Path,
    file: &str,
) -> Result<BTreeMap<String, String>, ScenarioError> {
    let invalid = |what: &str, name: &str, message: String| ScenarioError::Invalid {
        file: file.to_owned(),
        message: format!("{what} {name:?}: {message}"),
    };
    let mut apps: BTreeMap<String, String> = BTreeMap::new();
    for app in &scenario.apps {
        let id = create_app(world, app, base, &apps)
            .await
            .map_err(|message| invalid("app", &app.name, message))?;
        apps.insert(app.name.clone(), id);
    }
    for script in &scenario.scripts {
        crate::workload::script_with(
            world,
            &script.name,
            &script.content,
            script.enforce_signature,
        )
        .await
        .map_err(|e| invalid("script", &script.name, e.to_string()))?;
    }
    for r in &scenario.remediations {
        let schedule = r
            .run_schedule()
            .map_err(|message| invalid("remediation", &r.name, message))?;
        crate::workload::remediation(world, &r.name, &r.detection, &r.remediation, schedule)
            .await
            .map_err(|e| invalid("remediation", &r.name, e.to_string()))?;
    }
    for c in &scenario.compliance {
        let rules = serde_json::to_value(&c.rules)
            .map_err(|e| invalid("compliance", &c.name, e.to_string()))?;
        crate::workload::custom_compliance(world, &c.name, &c.discovery, rules)
            .await
            .map_err(|e| invalid("compliance", &c.name, e.to_string()))?;
    }
    if let Some(esp) = &scenario.esp {
        let minutes = match &esp.timeout {
            None => 60,
            Some(t) => parse_duration(t)
                .map(|d| d.num_minutes())
                .ok_or_else(|| invalid("esp", "timeout", format!("{t:?} is not a duration")))?,
        };
        let blocking = esp
            .blocking
            .iter()
            .map(|name| {
                apps.get(name)
                    .cloned()
                    .ok_or_else(|| invalid("esp", name, "no app of that name".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        crate::workload::enrollment_status_page(world, minutes, &blocking)
            .await
            .map_err(|e| invalid("esp", "profile", e.to_string()))?;
    }
    Ok(apps)
}

/// Where a step is written, for its errors.
struct At<'a> {
    file: &'a str,
    line: usize,
}

impl At<'_> {
    fn fail(&self, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Step {
            file: self.file.to_owned(),
            line: self.line,
            message: message.into(),
        }
    }

    fn result(&self, description: String, ok: bool, message: String) -> ExpectationResult {
        ExpectationResult {
            line: self.line,
            description,
            ok,
            message,
            near_misses: vec![],
        }
    }
}

/// Runs one step; an expectation returns its result.
async fn run_step(
    world: &mut World,
    apps: &BTreeMap<String, String>,
    step: &Step,
    at: &At<'_>,
) -> Result<Option<ExpectationResult>, ScenarioError> {
    let fail = |message: String| at.fail(message);
    let failed = |e: WorldError| at.fail(e.to_string());
    let now = world.now();
    match step {
        Step::Advance(d) => {
            let by = parse_duration(d).ok_or_else(|| {
                fail(format!(
                    "advance {d:?} is not a duration like 90s, 20m, 8h or 7d"
                ))
            })?;
            world.advance(by).await;
        }
        Step::Sync(device) => {
            world.sync(device).await.map_err(failed)?;
        }
        Step::AdminSync(device) => {
            let id = world.device_id(device).map_err(failed)?;
            let path = format!("/beta/deviceManagement/managedDevices/{id}/syncDevice");
            let (status, answer) = world.admin("POST", &path, AdminBody::None).await;
            if status != 204 {
                return Err(fail(format!(
                    "admin_sync: {status} {}",
                    error_message(&answer)
                )));
            }
            // The push reaches the device as the world moves on.
            world.settle().await;
        }
        Step::Syncapp(device) => {
            world
                .trigger(device, agent::ime::Trigger::SyncApp)
                .await
                .map_err(failed)?;
        }
        Step::Synccompliance(device) => {
            world
                .trigger(device, agent::ime::Trigger::SyncCompliance)
                .await
                .map_err(failed)?;
        }
        Step::RequireIme(device) => {
            world.require_ime(device).await.map_err(failed)?;
        }
        Step::ImeVersion(version) => {
            let (status, answer) = world
                .admin(
                    "PUT",
                    "/tenantless/ime",
                    AdminBody::Json(json!({ "version": version })),
                )
                .await;
            if status != 200 {
                return Err(fail(format!(
                    "ime_version: {status} {}",
                    error_message(&answer)
                )));
            }
        }
        Step::Snapshot(device) => world.snapshot(device).map_err(failed)?,
        Step::RestoreSnapshot(device) => world.restore_snapshot(device).map_err(failed)?,
        Step::RestartIme(device) => {
            let agent = world.device_mut(device).map_err(failed)?;
            agent.restart_ime(now).map_err(|e| fail(e.to_string()))?;
        }
        Step::StopIme(device) => {
            let agent = world.device_mut(device).map_err(failed)?;
            agent.stop_ime(now).map_err(|e| fail(e.to_string()))?;
        }
        Step::Enroll(device) => world.enroll(device).await.map_err(failed)?,
        Step::StopServer(true) => world.stop_server().await.map_err(failed)?,
        Step::StartServer(true) => world.start_server().await.map_err(failed)?,
        Step::StopServer(false) | Step::StartServer(false) => {}
        Step::Queue { device, command } => {
            let command = command.to_command().map_err(fail)?;
            world.queue(device, &command).await.map_err(failed)?;
        }
        Step::SetRegistry {
            device,
            key,
            name,
            kind,
            value,
        } => {
            let value = RegValue::parse(kind, value).map_err(fail)?;
            let agent = world.device_mut(device).map_err(failed)?;
            if !agent.device_mut().registry.set(key, name, value) {
                return Err(fail(format!("{key} is not under HKLM, HKU or HKCU")));
            }
            agent.save().map_err(|e| fail(e.to_string()))?;
        }
        Step::DeleteRegistryKey { device, key } => {
            let key = &expand(key, world, device, apps).map_err(fail)?;
            let agent = world.device_mut(device).map_err(failed)?;
            agent.device_mut().registry.delete_key(key);
            agent.save().map_err(|e| fail(e.to_string()))?;
        }
        Step::DeleteRegistryValue { device, key, name } => {
            let agent = world.device_mut(device).map_err(failed)?;
            agent.device_mut().registry.delete_value(key, name);
            agent.save().map_err(|e| fail(e.to_string()))?;
        }
        Step::InstallProgram { device, program } => {
            install_by_hand(world, device, program).map_err(failed)?
        }
        Step::UninstallProgram { device, name } => {
            let agent = world.device_mut(device).map_err(failed)?;
            uninstall_by_hand(agent, name);
            agent.save().map_err(|e| fail(e.to_string()))?;
        }
        Step::Assign(spec) => assign(world, apps, at, spec).await?,
        Step::InstallAvailable { device, app } => {
            if !world.install_available(device, app).await.map_err(failed)? {
                return Err(fail(format!("no available app named {app} on {device}")));
            }
        }
        Step::Reboot(device) => world.reboot(device).map_err(failed)?,
        Step::PowerOn(device) => world.power_on(device).map_err(failed)?,
        Step::SignIn(spec) => {
            world
                .sign_in(&spec.device, &spec.user)
                .await
                .map_err(failed)?;
        }
        Step::SignOut(spec) => {
            if !world.sign_out(&spec.device, &spec.user).map_err(failed)? {
                return Err(fail(format!(
                    "{} is not signed in on {}",
                    spec.user, spec.device
                )));
            }
        }
        Step::AnswerRestart(spec) => {
            let answer = agent::ime::restart::Answer::parse(&spec.answer).ok_or_else(|| {
                fail(format!(
                    "answer {:?}: use snooze or restart-now",
                    spec.answer
                ))
            })?;
            world
                .answer_restart(&spec.device, answer)
                .await
                .map_err(failed)?;
        }
        Step::JoinGroup(spec) => groups::join(world, spec).await.map_err(fail)?,
        Step::LeaveGroup(spec) => groups::leave(world, spec).await.map_err(fail)?,
        Step::Graph(spec) => graph(world, apps, at, spec).await?,
        Step::Unenroll(device) => {
            let now = world.now();
            let agent = world.device_mut(device).map_err(failed)?;
            agent.unenroll(now).await.map_err(|e| fail(e.to_string()))?;
        }
        Step::Expect(spec) => return expect_journal(world, apps, spec, at).await.map(Some),
        Step::ExpectRegistry {
            device,
            key,
            name,
            equals,
            contains,
            absent,
        } => {
            let key = &expand(key, world, device, apps).map_err(fail)?;
            let name = match name {
                Some(n) => Some(expand(n, world, device, apps).map_err(fail)?),
                None => None,
            };
            let agent = world.device(device).map_err(failed)?;
            let wanted = RegistryWanted {
                equals: equals.as_deref(),
                contains: contains.as_deref(),
                absent: *absent,
            };
            let (description, ok, message) = expect_registry(
                &agent.device().registry,
                device,
                key,
                name.as_deref(),
                wanted,
            );
            return Ok(Some(at.result(description, ok, message)));
        }
        Step::ExpectLog {
            device,
            file: log,
            contains,
            count,
        } => {
            let agent = world.device(device).map_err(failed)?;
            let found = agent::cmtrace::messages(&agent.device().drive, log)
                .iter()
                .filter(|m| m.contains(contains.as_str()))
                .count();
            let ok = match count {
                Some(n) => found == *n,
                None => found > 0,
            };
            let how_many = count.map_or_else(|| "some".into(), |n| n.to_string());
            return Ok(Some(at.result(
                format!("{device}: {log} has {how_many} record(s) containing {contains:?}"),
                ok,
                format!("{found} record(s) found"),
            )));
        }
        Step::ExpectProgram {
            device,
            name,
            installed,
        } => {
            let agent = world.device(device).map_err(failed)?;
            let present = agent
                .device()
                .installed_programs()
                .iter()
                .any(|p| p.display_name == *name);
            let word = |yes: bool| if yes { "installed" } else { "not installed" };
            return Ok(Some(at.result(
                format!("{device}: {name} {}", word(*installed)),
                present == *installed,
                format!("{name} is {}", word(present)),
            )));
        }
    }
    Ok(None)
}

/// Removes a program's Uninstall entries by hand.
fn uninstall_by_hand(agent: &mut agent::Agent, name: &str) {
    let reg = &mut agent.device_mut().registry;
    for root in [programs::UNINSTALL_KEY, programs::UNINSTALL_KEY_WOW64] {
        for sub in reg.subkeys(root) {
            let key = format!(r"{root}\{sub}");
            if reg.get_text(&key, "DisplayName").as_deref() == Some(name) {
                reg.delete_key(&key);
            }
        }
    }
}

/// The `graph` step: one admin API call, its status checked; what it set off (a push)
/// runs before the next step.
async fn graph(
    world: &mut World,
    apps: &BTreeMap<String, String>,
    at: &At<'_>,
    spec: &GraphSpec,
) -> Result<(), ScenarioError> {
    let mut path = spec.path.clone();
    for (name, id) in device_ids(world) {
        path = path.replace(&format!("{{device:{name}}}"), &id);
    }
    for (name, id) in apps {
        path = path.replace(&format!("{{app:{name}}}"), id);
    }
    let path = groups::expand(world, &path).await.map_err(|e| at.fail(e))?;
    let body = match &spec.body {
        Some(b) => {
            let text = serde_json::to_string(b).map_err(|e| at.fail(e.to_string()))?;
            let text = groups::expand(world, &text).await.map_err(|e| at.fail(e))?;
            AdminBody::Json(serde_json::from_str(&text).map_err(|e| at.fail(e.to_string()))?)
        }
        None => AdminBody::None,
    };
    let (status, answer) = world.admin(&spec.method, &path, body).await;
    let ok = match spec.status {
        Some(want) => status == want,
        None => (200..300).contains(&status),
    };
    if !ok {
        return Err(at.fail(format!(
            "{} {path}: {status} {}",
            spec.method,
            error_message(&answer)
        )));
    }
    world.settle().await;
    Ok(())
}

/// The `assign` step: one assignment of an app, through the admin API.
async fn assign(
    world: &World,
    apps: &BTreeMap<String, String>,
    at: &At<'_>,
    spec: &AssignSpec,
) -> Result<(), ScenarioError> {
    let (app, intent) = (&spec.app, &spec.intent);
    let id = apps
        .get(app)
        .ok_or_else(|| at.fail(format!("no app named {app}")))?;
    let target = match (&spec.device, &spec.group) {
        (Some(d), _) => {
            json!({ "@odata.type": "#tenantless.deviceAssignmentTarget", "deviceId": world.device_id(d).map_err(|e| at.fail(e.to_string()))? })
        }
        (None, Some(g)) => groups::target(world, g, false)
            .await
            .map_err(|e| at.fail(e))?,
        (None, None) => json!({ "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" }),
    };
    let from_now = |d: &Option<String>| -> Result<Option<String>, ScenarioError> {
        let Some(d) = d else {
            return Ok(None);
        };
        let wall = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(d.trim_end_matches('Z'), f).ok());
        let when = match (parse_duration(d), wall) {
            (Some(by), _) => world.now() + by,
            (None, Some(t)) => t.and_utc(),
            (None, None) => {
                return Err(at.fail(format!(
                    "{d:?} is neither a duration nor a time like 2026-11-25T08:00"
                )))
            }
        };
        Ok(Some(
            when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ))
    };
    let mut settings = serde_json::Map::new();
    if spec.local_time {
        settings.insert("useLocalTime".into(), json!(true));
    }
    if let Some(s) = from_now(&spec.start)? {
        settings.insert("startDateTime".into(), json!(s));
    }
    if let Some(d) = from_now(&spec.deadline)? {
        settings.insert("deadlineDateTime".into(), json!(d));
    }
    let minutes = |d: &Option<String>, what: &str| -> Result<Option<i64>, ScenarioError> {
        d.as_deref()
            .map(|d| {
                parse_duration(d).map(|d| d.num_minutes()).ok_or_else(|| {
                    at.fail(format!("{what} {d:?} is not a duration like 15m or 24h"))
                })
            })
            .transpose()
    };
    let restart = match minutes(&spec.grace_period, "grace_period")? {
        Some(grace) => json!({
            "gracePeriodInMinutes": grace,
            "countdownDisplayBeforeRestartInMinutes": minutes(&spec.countdown, "countdown")?,
            "restartNotificationSnoozeDurationInMinutes": minutes(&spec.snooze, "snooze")?,
        }),
        None => serde_json::Value::Null,
    };
    let mut assignments = vec![json!({ "intent": intent, "target": target, "settings": {
        "@odata.type": "#microsoft.graph.win32LobAppAssignmentSettings",
        "notifications": spec.notifications.as_deref().unwrap_or("showAll"),
        "restartSettings": restart,
        "installTimeSettings": settings,
    } })];
    if let Some(g) = &spec.exclude_group {
        let excluded = groups::target(world, g, true)
            .await
            .map_err(|e| at.fail(e))?;
        assignments.push(json!({ "intent": intent, "target": excluded }));
    }
    let (status, answer) =
        crate::workload::assign(world, id, serde_json::Value::Array(assignments)).await;
    if status != 204 {
        return Err(at.fail(format!("assign: {status} {}", error_message(&answer))));
    }
    Ok(())
}

/// The `expect` step: a journal expectation, devices and apps named as in the scenario.
async fn expect_journal(
    world: &World,
    apps: &BTreeMap<String, String>,
    spec: &ExpectSpec,
    at: &At<'_>,
) -> Result<ExpectationResult, ScenarioError> {
    let names = device_ids(world);
    let mut spec = spec.clone();
    // Apps by name, in the expectation and in each of its in-order steps.
    let by_name = |app: &mut Option<String>| {
        if let Some(name) = app {
            *app = Some(
                apps.get(name.as_str())
                    .cloned()
                    .unwrap_or_else(|| name.clone()),
            );
        }
    };
    by_name(&mut spec.app);
    for step in &mut spec.in_order {
        by_name(&mut step.app);
    }
    let (filter, expectation) = spec.compile(&names).map_err(|m| at.fail(m))?;
    let v = world
        .journal()
        .filter(filter)
        .verify(expectation)
        .await
        .map_err(|e| at.fail(e.to_string()))?;
    Ok(ExpectationResult {
        line: at.line,
        description: spec.describe(),
        ok: v.ok,
        message: v.message,
        near_misses: v.near_misses,
    })
}

/// What an `expect_registry` step wants of a value (or key).
struct RegistryWanted<'a> {
    equals: Option<&'a str>,
    contains: Option<&'a str>,
    absent: bool,
}

/// The `expect_registry` step: its description, whether it holds, and what was found.
fn expect_registry(
    reg: &agent::device::Registry,
    device: &str,
    key: &str,
    name: Option<&str>,
    wanted: RegistryWanted<'_>,
) -> (String, bool, String) {
    let (found, shown) = match name {
        Some(n) => {
            let v = reg.get_text(key, n);
            (v.is_some(), v.unwrap_or_else(|| "(absent)".into()))
        }
        None if reg.key_exists(key) => (true, "(key present)".into()),
        None => (false, "(absent)".into()),
    };
    let ok = if wanted.absent {
        !found
    } else {
        found
            && wanted.equals.is_none_or(|e| shown == e)
            && wanted.contains.is_none_or(|c| shown.contains(c))
    };
    let target = format!(
        "{key}{}",
        name.map(|n| format!("\\{n}")).unwrap_or_default()
    );
    let described = if wanted.absent {
        "absent".to_owned()
    } else {
        match (wanted.equals, wanted.contains) {
            (Some(e), _) => format!("= {e:?}"),
            (None, Some(c)) => format!("contains {c:?}"),
            _ => "present".into(),
        }
    };
    (
        format!("{device}: registry {target} {described}"),
        ok,
        format!("{target} is {shown}"),
    )
}

/// `+10:00` or `-05:30` as minutes east of UTC (up to 14 hours either way).
fn parse_utc_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.trim().split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

/// `{app:NAME}` (the app's id), `{app-key:NAME}` (its Win32Apps key on the device,
/// under the device's id or the user's it was installed for),
/// `{grs-key:NAME}` (its GRS key) and `{user:UPN}` (a user's Entra object id) in a
/// registry path.
fn expand(
    text: &str,
    world: &World,
    device: &str,
    apps: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = text.to_owned();
    while let Some(start) = out.find('{') {
        let Some(len) = out[start..].find('}') else {
            break;
        };
        let inner = &out[start + 1..start + len];
        let Some((kind, name)) = inner.split_once(':') else {
            break;
        };
        if kind == "user" {
            let id = server::directory::user_object_id(name);
            out.replace_range(start..start + len + 1, &id);
            continue;
        }
        let id = apps
            .get(name)
            .ok_or_else(|| format!("no app named {name}"))?
            .clone();
        let user = agent::ime::win32::DEVICE_USER;
        let value = match kind {
            "app" => id,
            "grs-key" => agent::ime::win32::grs_key(user, &id),
            "app-key" => {
                // Under the device's all-zero id, or the user it was installed for.
                let apps_root = agent::ime::win32::WIN32APPS;
                let reg = &world
                    .device(device)
                    .map_err(|e| e.to_string())?
                    .device()
                    .registry;
                let mut users = reg.subkeys(apps_root);
                users.sort_by_key(|u| u != user);
                users
                    .iter()
                    .find_map(|u| {
                        let root = format!(r"{apps_root}\{u}");
                        let sub = reg
                            .subkeys(&root)
                            .into_iter()
                            .find(|k| k.starts_with(&id))?;
                        Some(format!(r"{root}\{sub}"))
                    })
                    .unwrap_or_else(|| format!(r"{apps_root}\{user}\{id}_1"))
            }
            _ => break,
        };
        out.replace_range(start..start + len + 1, &value);
    }
    Ok(out)
}

/// Creates a Microsoft Store (new) app: no content, WinGet fetches it.
async fn create_winget_app(world: &World, app: &AppSpec, package: &str) -> Result<String, String> {
    let body = json!({
        "@odata.type": "#microsoft.graph.winGetApp",
        "displayName": app.name,
        "publisher": app.publisher,
        "packageIdentifier": package,
        "installExperience": { "runAsAccount": "system" },
    });
    let (status, created) = world
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(body),
        )
        .await;
    if status != 201 {
        return Err(format!("{status} {}", error_message(&created)));
    }
    Ok(created["id"].as_str().unwrap_or_default().to_owned())
}

/// Creates an app and uploads its content (a simulated MSI or a folder, packed).
async fn create_app(
    world: &World,
    app: &AppSpec,
    base: &Path,
    known: &BTreeMap<String, String>,
) -> Result<String, String> {
    if let Some(package) = &app.winget {
        return create_winget_app(world, app, package).await;
    }
    let setup = app.setup.clone().unwrap_or_else(|| "setup.msi".into());
    let mut files = match &app.folder {
        Some(folder) => {
            crate::pack::read_folder(&base.join(folder)).map_err(|e| format!("{folder}: {e}"))?
        }
        None => Vec::new(),
    };
    let product = app.msi.as_ref().map(|m| m.product_code.clone());
    if let Some(m) = &app.msi {
        let mut msi = syncml::sim_msi::SimulatedMsi::new(
            &m.product_code,
            &app.name,
            &m.version,
            &app.publisher,
        );
        msi.exit_codes = m.exit_codes.clone();
        files.retain(|(p, _)| !p.eq_ignore_ascii_case(&setup));
        files.push((setup.clone(), msi.to_bytes()));
    }
    if files.is_empty() {
        return Err("needs an msi or a folder".into());
    }
    let mut rules: Vec<serde_json::Value> = app
        .rules
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    if rules.is_empty() {
        let code = product
            .clone()
            .ok_or("needs detection rules (or an msi, whose product code is detected)")?;
        rules.push(json!({ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": code, "productVersionOperator": "notConfigured" }));
    }
    let body = json!({
        "@odata.type": "#microsoft.graph.win32LobApp",
        "displayName": app.name,
        "publisher": app.publisher,
        "installCommandLine": app.install.clone().unwrap_or_else(|| format!("msiexec /i {setup} /qn")),
        "uninstallCommandLine": app.uninstall.clone().unwrap_or_else(|| format!("msiexec /x {} /qn", product.clone().unwrap_or_default())),
        "applicableArchitectures": app.architectures.clone().unwrap_or_else(|| "x64,x86".into()),
        "rules": rules,
        "installExperience": {
            "runAsAccount": "system",
            "deviceRestartBehavior": app.restart_behavior.as_deref().unwrap_or("basedOnReturnCode"),
        },
    });
    let (status, created) = world
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(body),
        )
        .await;
    if status != 201 {
        return Err(format!("{status} {}", error_message(&created)));
    }
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    // Fixed keys: scenario runs replay byte for byte.
    let keys = syncml::intunewin::Keys {
        encryption_key: [0x42; 32],
        mac_key: [0x24; 32],
        iv: [0x11; 16],
    };
    let package =
        syncml::intunewin::pack(&files, &setup, &keys, None).map_err(|e| e.to_string())?;
    let (status, answer) = world
        .admin(
            "PUT",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/content"),
            AdminBody::Bytes(package),
        )
        .await;
    if status != 200 {
        return Err(format!("content: {status} {}", error_message(&answer)));
    }
    let mut relationships = Vec::new();
    for (names, kind) in [
        (&app.depends_on, "dependency"),
        (&app.supersedes, "supersedence"),
    ] {
        for name in names {
            let target = known
                .get(name)
                .ok_or_else(|| format!("{name} must be declared before {}", app.name))?;
            relationships.push(if kind == "dependency" {
                json!({ "@odata.type": "#microsoft.graph.mobileAppDependency", "targetId": target, "dependencyType": "autoInstall" })
            } else {
                json!({ "@odata.type": "#microsoft.graph.mobileAppSupersedence", "targetId": target, "supersedenceType": "replace" })
            });
        }
    }
    if !relationships.is_empty() {
        world
            .admin(
                "POST",
                &format!("/beta/deviceAppManagement/mobileApps/{id}/updateRelationships"),
                AdminBody::Json(json!({ "relationships": relationships })),
            )
            .await;
    }
    Ok(id)
}

fn install_by_hand(world: &mut World, device: &str, p: &ProgramSpec) -> Result<(), WorldError> {
    let agent = world.device_mut(device)?;
    let key = format!(r"{}\{}", programs::UNINSTALL_KEY, p.name);
    let reg = &mut agent.device_mut().registry;
    reg.set(&key, "DisplayName", RegValue::Sz(p.name.clone()));
    reg.set(&key, "DisplayVersion", RegValue::Sz(p.version.clone()));
    reg.set(&key, "Publisher", RegValue::Sz(p.publisher.clone()));
    agent.save().map_err(|source| WorldError::Device {
        device: device.into(),
        source,
    })
}

pub(crate) fn device_ids(world: &World) -> BTreeMap<String, String> {
    world
        .device_names()
        .into_iter()
        .filter_map(|n| world.device_id(&n).ok().map(|id| (n, id)))
        .collect()
}

impl ExpectSpec {
    pub(crate) fn filter(&self, names: &BTreeMap<String, String>) -> Result<Filter, String> {
        let device = match &self.device {
            Some(name) => Some(
                names
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("no device named {name}"))?,
            ),
            None => None,
        };
        let payload = serde_json::to_value(&self.payload).map_err(|e| e.to_string())?;
        for t in [&self.since, &self.until].into_iter().flatten() {
            if server::clock::parse(t).is_none() {
                return Err(format!("{t:?} is not an RFC 3339 time"));
            }
        }
        Ok(Filter {
            device,
            kind: self.kind.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            app: self.app.clone(),
            policy: self.policy.clone(),
            state: self.state.clone(),
            payload: payload.as_object().cloned().unwrap_or_default(),
        })
    }

    /// The filter with device names resolved, and the expectation.
    pub fn compile(
        &self,
        names: &BTreeMap<String, String>,
    ) -> Result<(Filter, Expectation), String> {
        let filter = self.filter(names)?;
        let chosen = [
            self.exactly.is_some(),
            self.at_least.is_some(),
            self.at_most.is_some(),
            self.never,
            !self.in_order.is_empty(),
        ];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return Err(
                "an expectation needs exactly one of exactly, at_least, at_most, never, in_order"
                    .into(),
            );
        }
        let expectation = if let Some(n) = self.exactly {
            Expectation::Exactly(n)
        } else if let Some(n) = self.at_least {
            Expectation::AtLeast(n)
        } else if let Some(n) = self.at_most {
            Expectation::AtMost(n)
        } else if self.never {
            Expectation::Never
        } else {
            Expectation::InOrder(
                self.in_order
                    .iter()
                    .map(|s| s.filter(names))
                    .collect::<Result<_, _>>()?,
            )
        };
        Ok((filter, expectation))
    }

    /// The expectation in words.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("device", &self.device),
            ("kind", &self.kind),
            ("app", &self.app),
            ("policy", &self.policy),
            ("state", &self.state),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        for (k, v) in &self.payload {
            parts.push(format!("{k}={v}"));
        }
        let count = if let Some(n) = self.exactly {
            format!("exactly {n}")
        } else if let Some(n) = self.at_least {
            format!("at least {n}")
        } else if let Some(n) = self.at_most {
            format!("at most {n}")
        } else if self.never {
            "never".into()
        } else {
            format!("{} steps in order", self.in_order.len())
        };
        format!("{count}: {}", parts.join(" "))
    }
}

/// Every scenario file under a folder (`*.toml`), sorted.
pub fn find(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(find(&p));
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::seconds(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("7d"), Some(Duration::days(7)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("10"), None);
        // As far as the server's clock endpoint goes, and no further (a world moved
        // past the calendar's end would panic).
        assert_eq!(parse_duration("3660d"), Some(Duration::days(3660)));
        assert_eq!(parse_duration("3661d"), None);
        assert_eq!(parse_duration("99999999999d"), None);
    }

    #[test]
    fn errors_point_at_the_line() {
        let text = "name = \"x\"\n\n[[steps]]\nadvanse = \"1h\"\n";
        let err = toml::from_str::<Scenario>(text).unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("advanse"), "{err}");
    }
}

#[cfg(test)]
mod remediation_schedule_tests {
    use super::RemediationSpec;

    fn schedule(text: &str) -> Result<serde_json::Value, String> {
        RemediationSpec {
            name: "r".into(),
            detection: String::new(),
            remediation: String::new(),
            schedule: Some(text.into()),
        }
        .run_schedule()
    }

    #[test]
    fn schedules_read_as_graph_run_schedules() {
        let s = schedule("every 2d 09:30").unwrap();
        assert_eq!(
            s["@odata.type"],
            "#microsoft.graph.deviceHealthScriptDailySchedule"
        );
        assert_eq!(
            (s["interval"].as_i64(), s["time"].as_str()),
            (Some(2), Some("09:30:00"))
        );
        let s = schedule("every 4h").unwrap();
        assert_eq!(
            s["@odata.type"],
            "#microsoft.graph.deviceHealthScriptHourlySchedule"
        );
        assert_eq!(s["interval"], 4);
        assert_eq!(
            schedule("once").unwrap()["@odata.type"],
            "#microsoft.graph.deviceHealthScriptRunOnceSchedule"
        );
        for bad in ["weekly", "every 0h", "daily 25:00", "every 3x"] {
            assert!(schedule(bad).is_err(), "{bad}");
        }
    }
}
