//! The records the store keeps.

use serde::Serialize;
use sqlx::any::AnyRow;

use super::{int, opt_int, opt_text, text, Result};

/// An enrolled device.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Device {
    /// The device id (Windows' DeviceID, upper-case GUID).
    pub id: String,
    /// `DeviceName` from enrollment, or DevDetail.
    pub device_name: String,
    /// The user who enrolled it.
    pub user_principal_name: String,
    /// `Full` (user) or `Device`.
    pub enrollment_type: String,
    /// `HWDevID`.
    pub hw_dev_id: String,
    /// OS version.
    pub os_version: String,
    /// OS edition (SKU number).
    pub os_edition: String,
    /// `./DevInfo/Man`.
    pub manufacturer: String,
    /// `./DevInfo/Mod`.
    pub model: String,
    /// `./DevInfo/Lang`.
    pub language: String,
    /// `./DevInfo/DmV`.
    pub dm_version: String,
    /// When it (last) enrolled.
    pub enrolled_at: String,
    /// When its last management session was.
    pub last_sync_at: Option<String>,
    /// APPAUTH CLIENT name.
    pub client_name: String,
    /// APPAUTH CLIENT secret.
    pub client_secret: String,
    /// The nonce (base64) the device's next digest must use.
    pub client_nonce: String,
    /// APPAUTH APPSRV name.
    pub server_name: String,
    /// APPAUTH APPSRV secret.
    pub server_secret: String,
    /// APPAUTH APPSRV nonce.
    pub server_nonce: String,
    /// True once something the IME handles targets the device.
    pub ime_required: bool,
    /// The installed (or installing) IME version.
    pub ime_version: String,
    /// `none`, `queued`, `installing`, `installed` or `failed`.
    pub ime_state: String,
}

impl Device {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Device {
            id: text(r, "id")?,
            device_name: text(r, "device_name")?,
            user_principal_name: text(r, "user_principal_name")?,
            enrollment_type: text(r, "enrollment_type")?,
            hw_dev_id: text(r, "hw_dev_id")?,
            os_version: text(r, "os_version")?,
            os_edition: text(r, "os_edition")?,
            manufacturer: text(r, "manufacturer")?,
            model: text(r, "model")?,
            language: text(r, "language")?,
            dm_version: text(r, "dm_version")?,
            enrolled_at: text(r, "enrolled_at")?,
            last_sync_at: opt_text(r, "last_sync_at")?,
            client_name: text(r, "client_name")?,
            client_secret: text(r, "client_secret")?,
            client_nonce: text(r, "client_nonce")?,
            server_name: text(r, "server_name")?,
            server_secret: text(r, "server_secret")?,
            server_nonce: text(r, "server_nonce")?,
            ime_required: int(r, "ime_required")? != 0,
            ime_version: text(r, "ime_version")?,
            ime_state: text(r, "ime_state")?,
        })
    }
}

/// What package 1 (and DevDetail) tell about a device; `None` leaves a field as is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevInfo {
    /// `./DevInfo/Man`.
    pub manufacturer: Option<String>,
    /// `./DevInfo/Mod`.
    pub model: Option<String>,
    /// `./DevInfo/Lang`.
    pub language: Option<String>,
    /// `./DevInfo/DmV`.
    pub dm_version: Option<String>,
    /// `./Vendor/MSFT/DMClient/HWDevID`.
    pub hw_dev_id: Option<String>,
    /// `./DevDetail/SwV`.
    pub os_version: Option<String>,
    /// `./DevDetail/Ext/Microsoft/DeviceName`.
    pub device_name: Option<String>,
}

impl DevInfo {
    /// `self` with the fields `newer` sets replaced.
    pub fn merged(&self, newer: &DevInfo) -> DevInfo {
        let pick = |new: &Option<String>, old: &Option<String>| new.clone().or(old.clone());
        DevInfo {
            manufacturer: pick(&newer.manufacturer, &self.manufacturer),
            model: pick(&newer.model, &self.model),
            language: pick(&newer.language, &self.language),
            dm_version: pick(&newer.dm_version, &self.dm_version),
            hw_dev_id: pick(&newer.hw_dev_id, &self.hw_dev_id),
            os_version: pick(&newer.os_version, &self.os_version),
            device_name: pick(&newer.device_name, &self.device_name),
        }
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct CertificateRow {
    /// Serial, hex.
    pub serial: String,
    /// The device it was issued to.
    pub device_id: String,
    /// SHA-1 thumbprint.
    pub thumbprint: String,
    /// DER.
    pub der: Vec<u8>,
    /// When.
    pub issued_at: String,
    /// Expiry.
    pub not_after: String,
}

/// A management session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    /// Row id (the admin API's session id).
    pub id: i64,
    /// The device.
    pub device_id: String,
    /// The SyncML SessionID.
    pub session_id: String,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// `certificate` or `digest`.
    pub auth: String,
    /// `completed`, `aborted`, `unauthenticated` ...
    pub outcome: String,
}

impl SessionRow {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(SessionRow {
            id: int(r, "id")?,
            device_id: text(r, "device_id")?,
            session_id: text(r, "session_id")?,
            started_at: text(r, "started_at")?,
            ended_at: opt_text(r, "ended_at")?,
            auth: text(r, "auth")?,
            outcome: text(r, "outcome")?,
        })
    }
}

/// A raw message of a session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRow {
    /// Row id (0 before insertion).
    pub id: i64,
    /// Its session.
    pub session_row: i64,
    /// The device.
    pub device_id: String,
    /// `in` (device to server) or `out`.
    pub direction: String,
    /// The SyncML MsgID.
    pub msg_id: String,
    /// When.
    pub at: String,
    /// The body, as sent.
    pub body: String,
}

impl MessageRow {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(MessageRow {
            id: int(r, "id")?,
            session_row: int(r, "session_row")?,
            device_id: text(r, "device_id")?,
            direction: text(r, "direction")?,
            msg_id: text(r, "msg_id")?,
            at: text(r, "at")?,
            body: text(r, "body")?,
        })
    }
}

/// A command to queue.
#[derive(Debug, Clone)]
pub struct NewCommand {
    /// The device.
    pub device_id: String,
    /// `Add`, `Get`, `Atomic` ...
    pub verb: String,
    /// The first target URI (for listing).
    pub target: String,
    /// The command's SyncML XML (its CmdID is assigned at delivery).
    pub xml: String,
    /// Who queued it: `admin`, `ime`, `retry`.
    pub origin: String,
    /// When.
    pub queued_at: String,
    /// The command this one retries (a Replace after a 418 Add).
    pub retry_of: Option<i64>,
}

/// A queued command and what became of it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandRow {
    /// Id.
    pub id: i64,
    /// The device.
    pub device_id: String,
    /// `Add`, `Get`, `Atomic` ...
    pub verb: String,
    /// The first target URI.
    pub target: String,
    /// The command's SyncML XML.
    pub xml: String,
    /// `admin`, `ime`, `retry`.
    pub origin: String,
    /// `pending`, `delivered` or `completed`.
    pub state: String,
    /// When it was queued.
    pub queued_at: String,
    /// When it was last sent.
    pub delivered_at: Option<String>,
    /// When its status arrived.
    pub completed_at: Option<String>,
    /// How many times it was sent.
    pub deliveries: i64,
    /// The device's status code.
    pub status: Option<i64>,
    /// JSON: Results items for a Get, inner statuses for an Atomic.
    pub results: Option<String>,
    /// The command this one retries.
    pub retry_of: Option<i64>,
}

impl CommandRow {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(CommandRow {
            id: int(r, "id")?,
            device_id: text(r, "device_id")?,
            verb: text(r, "verb")?,
            target: text(r, "target")?,
            xml: text(r, "xml")?,
            origin: text(r, "origin")?,
            state: text(r, "state")?,
            queued_at: text(r, "queued_at")?,
            delivered_at: opt_text(r, "delivered_at")?,
            completed_at: opt_text(r, "completed_at")?,
            deliveries: int(r, "deliveries")?,
            status: opt_int(r, "status")?,
            results: opt_text(r, "results")?,
            retry_of: opt_int(r, "retry_of")?,
        })
    }
}

/// One journal event as stored.
#[derive(Debug, Clone)]
pub struct JournalRow {
    /// Sequence number, increasing.
    pub seq: i64,
    /// World time.
    pub at: String,
    /// The device, or empty.
    pub device_id: String,
    /// The event kind.
    pub kind: String,
    /// JSON payload.
    pub payload: String,
}

impl JournalRow {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(JournalRow {
            seq: int(r, "seq")?,
            at: text(r, "at")?,
            device_id: text(r, "device_id")?,
            kind: text(r, "kind")?,
            payload: text(r, "payload")?,
        })
    }
}

/// Which journal events to read.
#[derive(Debug, Clone, Default)]
pub struct JournalQuery {
    /// Only this device.
    pub device: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only events after this sequence number.
    pub after_seq: Option<i64>,
    /// Only events at or after this time.
    pub since_time: Option<String>,
    /// Only events before this time.
    pub until_time: Option<String>,
    /// At most this many.
    pub limit: i64,
}

/// A Win32 app as stored: its Graph body and revision.
#[derive(Debug, Clone)]
pub struct AppRow {
    /// The app's id (a GUID).
    pub id: String,
    /// The `win32LobApp` JSON.
    pub body: String,
    /// Bumped whenever the app or its content changes.
    pub revision: i64,
    /// When it was created.
    pub created_at: String,
}

impl AppRow {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(AppRow {
            id: text(r, "id")?,
            body: text(r, "body")?,
            revision: int(r, "revision")?,
            created_at: text(r, "created_at")?,
        })
    }
}

/// Graph's default `notifications`: every toast is shown.
pub const SHOW_ALL: &str = "showAll";

/// An app's assignment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentRow {
    /// Id.
    pub id: i64,
    /// The app.
    pub app_id: String,
    /// `required`, `available` or `uninstall`.
    pub intent: String,
    /// `allDevices`, `device:<id>` or `user:<upn>`.
    pub target: String,
    /// Available from (RFC 3339), if scheduled.
    pub start_at: Option<String>,
    /// Deadline (RFC 3339), if scheduled.
    pub deadline_at: Option<String>,
    /// Graph's `notifications`: `showAll`, `showReboot` or `hideAll`.
    pub notifications: String,
    /// Graph's `restartSettings`, when the assignment has a restart grace period.
    pub restart: Option<RestartSettings>,
}

/// A Win32 app assignment's restart grace period (Graph's `win32LobAppRestartSettings`),
/// in minutes.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RestartSettings {
    /// From the install to the forced restart.
    pub grace_period_in_minutes: i64,
    /// The countdown dialog shows this long before the restart.
    pub countdown_display_before_restart_in_minutes: i64,
    /// How long the user may snooze the restart notification; 0 when they may not.
    pub restart_notification_snooze_duration_in_minutes: i64,
}

impl AssignmentRow {
    /// A required assignment to `target` with no schedule and Graph's default settings.
    pub fn required(app_id: &str, target: &str) -> AssignmentRow {
        AssignmentRow {
            id: 0,
            app_id: app_id.to_owned(),
            intent: "required".into(),
            target: target.to_owned(),
            start_at: None,
            deadline_at: None,
            notifications: SHOW_ALL.into(),
            restart: None,
        }
    }

    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(AssignmentRow {
            id: int(r, "id")?,
            app_id: text(r, "app_id")?,
            intent: text(r, "intent")?,
            target: text(r, "target")?,
            start_at: opt_text(r, "start_at")?,
            deadline_at: opt_text(r, "deadline_at")?,
            notifications: opt_text(r, "notifications")?.unwrap_or_else(|| SHOW_ALL.into()),
            restart: match opt_int(r, "grace_period")? {
                Some(grace) => Some(RestartSettings {
                    grace_period_in_minutes: grace,
                    countdown_display_before_restart_in_minutes: opt_int(r, "countdown")?
                        .unwrap_or(0),
                    restart_notification_snooze_duration_in_minutes: opt_int(r, "snooze")?
                        .unwrap_or(0),
                }),
                None => None,
            },
        })
    }
}

/// A device's last reported state of an app.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatusRow {
    /// The device.
    pub device_id: String,
    /// The app.
    pub app_id: String,
    /// ComplianceState (1 installed, 2 not installed, 4 error, 5 unknown).
    pub compliance: i64,
    /// EnforcementState (1000 success, 2000 in progress, 5000 error, ...).
    pub enforcement: i64,
    /// The error code.
    pub error_code: i64,
    /// The report as sent (JSON).
    pub report: String,
    /// When it arrived.
    pub updated_at: String,
}

impl AppStatusRow {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(AppStatusRow {
            device_id: text(r, "device_id")?,
            app_id: text(r, "app_id")?,
            compliance: int(r, "compliance")?,
            enforcement: int(r, "enforcement")?,
            error_code: int(r, "error_code")?,
            report: text(r, "report")?,
            updated_at: text(r, "updated_at")?,
        })
    }
}

/// A device's last reported result of a platform script.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptStateRow {
    /// The device.
    pub device_id: String,
    /// The script.
    pub script_id: String,
    /// `Success` or `Failed`, as the IME reports it.
    pub result: String,
    /// The script's exit code (or the IME's error).
    pub error_code: i64,
    /// The ResultDetails JSON (ExecutionMsg, output).
    pub details: String,
    /// When it was reported.
    pub updated_at: String,
}

impl ScriptStateRow {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(ScriptStateRow {
            device_id: text(r, "device_id")?,
            script_id: text(r, "script_id")?,
            result: text(r, "result")?,
            error_code: int(r, "error_code")?,
            details: text(r, "details")?,
            updated_at: text(r, "updated_at")?,
        })
    }
}

/// An Entra group: its Graph JSON and times.
#[derive(Debug, Clone)]
pub struct GroupRow {
    /// Object id.
    pub id: String,
    /// The group as Graph shows it (without id and times).
    pub body: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub modified_at: String,
}

impl GroupRow {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(GroupRow {
            id: text(r, "id")?,
            body: text(r, "body")?,
            created_at: text(r, "created_at")?,
            modified_at: text(r, "modified_at")?,
        })
    }
}

/// A direct member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The group.
    pub group_id: String,
    /// The member's Entra object id.
    pub member_id: String,
    /// `device` or `user`.
    pub kind: String,
    /// The device's id or the user's principal name.
    pub name: String,
}
