//! Delivering the IME through the EnterpriseDesktopAppManagement CSP: the server hosts
//! the IME installer (a simulated MSI) and, when a device first needs it (or a newer
//! version is configured), queues `Add` + `Exec` on `.../MSI/{ProductID}/DownloadInstall`
//! with an MsiInstallJob, then follows the Exec's status and the completion alert.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use syncml::dm::{Command, Data, Item, ItemCommand, Meta};
use syncml::msi_job::MsiInstallJob;
use syncml::sim_msi::{MsiFile, MsiRegistryValue, SimulatedMsi};

use crate::journal::Event;
use crate::state::Shared;
use crate::storage::{CommandRow, StoreError};

/// The IME's MSI product code (constant across versions, so an upgrade is a new
/// `Product Version` on the same node).
pub const IME_PRODUCT_CODE: &str = "{6D2F2E4B-3C1A-4E8D-9B7F-1A2B3C4D5E6F}";
/// The IME's MSI product name.
pub const IME_PRODUCT_NAME: &str = "Microsoft Intune Management Extension";
/// Where the IME installs its program files.
pub const IME_PROGRAM_DIR: &str = r"C:\Program Files (x86)\Microsoft Intune Management Extension";

/// The `DownloadInstall` node of the IME's MSI.
pub fn download_install_uri() -> String {
    format!(
        "./Device/Vendor/MSFT/EnterpriseDesktopAppManagement/MSI/{}/DownloadInstall",
        IME_PRODUCT_CODE.replace('{', "%7B").replace('}', "%7D")
    )
}

/// The path the installer of a version is served at.
pub fn content_path(version: &str) -> String {
    format!("/content/ime/{version}/IntuneWindowsAgent.msi")
}

/// The IME installers the server hosts, and which version it delivers.
#[derive(Debug, Clone)]
pub struct ImeRelease {
    current: String,
    hosted: BTreeMap<String, Vec<u8>>,
}

impl ImeRelease {
    /// Hosts `version` and makes it current.
    pub fn new(version: &str) -> Self {
        let mut release = ImeRelease {
            current: String::new(),
            hosted: BTreeMap::new(),
        };
        release.set_current(version);
        release
    }

    /// Hosts `version` (keeping older ones downloadable) and makes it current.
    pub fn set_current(&mut self, version: &str) {
        self.hosted
            .entry(version.to_owned())
            .or_insert_with(|| package(version).to_bytes());
        self.current = version.to_owned();
    }

    /// The version delivered to devices.
    pub fn current(&self) -> &str {
        &self.current
    }

    /// The installer bytes of a hosted version.
    pub fn installer(&self, version: &str) -> Option<&[u8]> {
        self.hosted.get(version).map(Vec::as_slice)
    }

    /// SHA-256 (upper-case hex) of a hosted version's installer.
    pub fn sha256(&self, version: &str) -> Option<String> {
        self.installer(version)
            .map(|b| hex::encode_upper(Sha256::digest(b)))
    }
}

/// The simulated MSI of an IME version.
fn package(version: &str) -> SimulatedMsi {
    let mut msi = SimulatedMsi::new(
        IME_PRODUCT_CODE,
        IME_PRODUCT_NAME,
        version,
        "Microsoft Corporation",
    );
    msi.upgrade_code = "{F6B2A3C4-5D6E-4F70-8192-A3B4C5D6E7F8}".into();
    for exe in [
        "Microsoft.Management.Services.IntuneWindowsAgent.exe",
        "AgentExecutor.exe",
    ] {
        msi.files.push(MsiFile {
            path: format!(r"{IME_PROGRAM_DIR}\{exe}"),
            content: format!("Tenantless simulated {exe} {version}\n"),
        });
    }
    msi.registry.push(MsiRegistryValue {
        key: r"HKLM\SOFTWARE\Microsoft\IntuneManagementExtension".into(),
        name: "Version".into(),
        kind: "REG_SZ".into(),
        value: version.into(),
    });
    msi
}

/// The content route.
pub fn routes() -> Router<Shared> {
    Router::new().route(
        "/content/ime/{version}/IntuneWindowsAgent.msi",
        get(installer),
    )
}

async fn installer(State(state): State<Shared>, Path(version): Path<String>) -> Response {
    let bytes = state
        .ime
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .installer(&version)
        .map(<[u8]>::to_vec);
    match bytes {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such IME version").into_response(),
    }
}

/// Why the server delivers the IME to a device (the `why` of its `ime_install` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// An app or script assigned now targets the device.
    Assigned,
    /// The device enrolled while something that needs the IME targets it.
    Enrolled,
    /// The device's IME reports a version below the current one (a reverted snapshot).
    Outdated,
    /// A new version was rolled out.
    RolledOut,
    /// An administrator asked for it.
    Requested,
    /// The device (or its user) joined a group that something needing the IME targets.
    Membership,
}

impl Why {
    /// The name in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Assigned => "assigned",
            Why::Enrolled => "enrolled",
            Why::Outdated => "outdated",
            Why::RolledOut => "rolledOut",
            Why::Requested => "requested",
            Why::Membership => "membership",
        }
    }
}

/// True when something the IME handles reaches the device: an app, a platform script
/// or a remediation.
pub async fn needed_by(
    state: &Shared,
    device: &crate::storage::Device,
) -> Result<bool, StoreError> {
    let apps = state.assignments().await?;
    let audience = state.audience(device).await?;
    Ok(crate::apps::any_app_reaches(&apps, &audience)
        || crate::scripts::any_assigned_to(state, device).await?)
}

/// Marks a device as needing the IME and, unless it has (or is getting) the current
/// version, queues its installation. Returns true when commands were queued. With
/// [`Why::Outdated`] the device's own report wins over what the server last saw installed.
pub async fn require(state: &Shared, device_id: &str, why: Why) -> Result<bool, StoreError> {
    let Some(device) = state.store.device(device_id).await? else {
        return Ok(false);
    };
    let (version, sha256) = {
        let ime = state.ime.lock().unwrap_or_else(|e| e.into_inner());
        (
            ime.current().to_owned(),
            ime.sha256(ime.current()).unwrap_or_default(),
        )
    };
    if why == Why::Outdated && device.ime_state != "installed" {
        // Already being brought up to date (or the last try failed and waits for a
        // reason other than the report).
        return Ok(false);
    }
    let up_to_date = why != Why::Outdated
        && device.ime_version == version
        && matches!(
            device.ime_state.as_str(),
            "queued" | "installing" | "installed"
        );
    if up_to_date {
        if !device.ime_required {
            state
                .store
                .set_ime(device_id, true, &device.ime_version, &device.ime_state)
                .await?;
        }
        return Ok(false);
    }
    let uri = download_install_uri();
    let job = MsiInstallJob {
        id: IME_PRODUCT_CODE.into(),
        product_version: version.clone(),
        content_urls: vec![format!("{}{}", state.base_url, content_path(&version))],
        file_hash: sha256,
        command_line: "/quiet".into(),
        timeout_minutes: 10,
        retry_count: 3,
        retry_interval_minutes: 5,
    };
    let add = Command::Add(ItemCommand {
        items: vec![Item::target(uri.clone())],
        ..ItemCommand::default()
    });
    let mut exec_item = Item::target(uri.clone());
    exec_item.meta = Some(Meta {
        format: Some("xml".into()),
        type_: Some("text/plain".into()),
        ..Meta::default()
    });
    exec_item.data = Some(Data::Xml(job.to_xml()));
    let exec = Command::Exec(ItemCommand {
        items: vec![exec_item],
        ..ItemCommand::default()
    });
    for command in [add, exec] {
        crate::omadm::queue(state, device_id, &command, "ime", None).await?;
    }
    state
        .store
        .set_ime(device_id, true, &version, "queued")
        .await?;
    record(state, device_id, "queued", &version, None, Some(why)).await;
    Ok(true)
}

/// True when an IME reporting `reported` runs a version below the current one.
pub fn is_outdated(state: &Shared, reported: &str) -> bool {
    let ime = state.ime.lock().unwrap_or_else(|e| e.into_inner());
    !reported.is_empty()
        && syncml::version::cmp(reported, ime.current()) == std::cmp::Ordering::Less
}

/// Makes `version` the delivered one and queues it for every device that needs the IME.
pub async fn roll_out(state: &Shared, version: &str) -> Result<usize, StoreError> {
    state
        .ime
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .set_current(version);
    let mut queued = 0;
    for device in state.store.devices().await? {
        if device.ime_required && require(state, &device.id, Why::RolledOut).await? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Follows the Exec of an IME installation: accepted means installing, an error
/// status means failed.
pub(crate) async fn on_status(
    state: &Shared,
    device_id: &str,
    command: &CommandRow,
    status: i64,
) -> Result<(), StoreError> {
    if command.origin != "ime" || command.verb != "Exec" {
        return Ok(());
    }
    let Some(device) = state.store.device(device_id).await? else {
        return Ok(());
    };
    let next = if (200..300).contains(&status) {
        "installing"
    } else {
        "failed"
    };
    state
        .store
        .set_ime(device_id, true, &device.ime_version, next)
        .await?;
    record(
        state,
        device_id,
        next,
        &device.ime_version,
        Some(status),
        None,
    )
    .await;
    Ok(())
}

/// Reads the completion alert of the IME's DownloadInstall.
pub(crate) async fn on_alert(
    state: &Shared,
    device_id: &str,
    source: &str,
    data: &str,
) -> Result<(), StoreError> {
    let normalized = source
        .replace("%7B", "{")
        .replace("%7D", "}")
        .to_uppercase();
    if !normalized.contains(IME_PRODUCT_CODE) || !normalized.ends_with("/DOWNLOADINSTALL") {
        return Ok(());
    }
    let Some(device) = state.store.device(device_id).await? else {
        return Ok(());
    };
    let code = data.trim().parse::<i64>().ok();
    let next = if code == Some(0) {
        "installed"
    } else {
        "failed"
    };
    state
        .store
        .set_ime(device_id, true, &device.ime_version, next)
        .await?;
    record(state, device_id, next, &device.ime_version, code, None).await;
    Ok(())
}

async fn record(
    state: &Shared,
    device_id: &str,
    step: &str,
    version: &str,
    code: Option<i64>,
    why: Option<Why>,
) {
    let event = Event::ImeInstall {
        state: step.into(),
        version: version.into(),
        code,
        why: why.map(|w| w.as_str().to_owned()),
    };
    if let Err(e) = state.journal.record(device_id, &event).await {
        tracing::error!("journal: {e}");
    }
}
