//! The EnterpriseDesktopAppManagement CSP: MSI installs driven by the server.
//!
//! `Add` on `MSI/{ProductID}/DownloadInstall` creates the job; `Exec` on it with an
//! MsiInstallJob answers 202 and the work happens afterwards ([`run_due`]): download
//! (each ContentURL in turn), SHA-256 check, install through the installer runtime
//! under TimeOut, with RetryCount retries RetryInterval minutes apart. Status walks
//! 10 -> 20 -> 40 -> 50 -> 70 (or 25/30, 55/60 on failure), is kept under
//! `HKLM\SOFTWARE\Microsoft\EnterpriseDesktopAppManagement\<SID>\MSI\{ProductID}`, and
//! the result goes to the server in a 1226 alert at the next session. `Delete` on
//! `MSI/{ProductID}` uninstalls.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use syncml::dm::{Item, StatusCode};
use syncml::msi_job::MsiInstallJob;

use super::{Ctx, Value};
use crate::device::{programs, Device, RegValue};
use crate::state::{AgentState, MsiJob, PendingAlert};

/// The SID Windows files device-wide installs under.
pub const DEVICE_SID: &str = "S-0-0-00-0000000000-0000000000-000000000-000";
/// Meta Type of the completion alert.
pub const INSTALL_ALERT_TYPE: &str = "Reversed-Domain-Name:com.microsoft.mdm.win32csp_install";
/// Where downloaded MSIs go.
pub const DOWNLOAD_DIR: &str = r"C:\Windows\System32\config\systemprofile\AppData\Local\mdm";

/// Status values.
pub mod status {
    /// Initialized.
    pub const INITIALIZED: u32 = 10;
    /// Download in progress.
    pub const DOWNLOADING: u32 = 20;
    /// Pending download retry.
    pub const DOWNLOAD_RETRY: u32 = 25;
    /// Download failed.
    pub const DOWNLOAD_FAILED: u32 = 30;
    /// Download completed.
    pub const DOWNLOADED: u32 = 40;
    /// Enforcement in progress.
    pub const ENFORCING: u32 = 50;
    /// Pending enforcement retry.
    pub const ENFORCEMENT_RETRY: u32 = 55;
    /// Enforcement failed.
    pub const ENFORCEMENT_FAILED: u32 = 60;
    /// Enforcement completed.
    pub const COMPLETED: u32 = 70;
}

/// `0x80091007`: the hash value is not correct.
const E_BAD_DIGEST: i64 = 0x8009_1007_u32 as i32 as i64;
/// `0x80072EFD`: cannot connect.
const E_CANNOT_CONNECT: i64 = 0x8007_2EFD_u32 as i32 as i64;

fn sid(device: &Device, scope: &str) -> String {
    if scope == "User" {
        device.user_sid()
    } else {
        DEVICE_SID.into()
    }
}

fn registry_key(device: &Device, job: &MsiJob) -> String {
    format!(
        r"HKLM\SOFTWARE\Microsoft\EnterpriseDesktopAppManagement\{}\MSI\{}",
        sid(device, &job.scope),
        job.product_id
    )
}

fn record(device: &mut Device, job: &MsiJob) {
    let key = registry_key(device, job);
    let r = &mut device.registry;
    r.set(&key, "Status", RegValue::Dword(job.status));
    r.set(&key, "LastError", RegValue::Dword(job.last_error as u32));
    r.set(
        &key,
        "LastErrorDesc",
        RegValue::Sz(job.last_error_desc.clone()),
    );
    r.set(
        &key,
        "CurrentDownloadUrl",
        RegValue::Sz(job.current_url.clone()),
    );
    if let Some(j) = &job.job {
        r.set(
            &key,
            "ProductVersion",
            RegValue::Sz(j.product_version.clone()),
        );
        r.set(
            &key,
            "DownloadUrlList",
            RegValue::MultiSz(j.content_urls.clone()),
        );
        r.set(
            &key,
            "EnforcementRetryCount",
            RegValue::Dword(j.retry_count),
        );
        r.set(
            &key,
            "EnforcementRetryInterval",
            RegValue::Dword(j.retry_interval_minutes),
        );
        r.set(
            &key,
            "EnforcementTimeout",
            RegValue::Dword(j.timeout_minutes),
        );
    }
}

/// Splits `MSI/{P}/Leaf` into the product id (upper case) and the leaf.
fn product(rest: &str) -> Option<(String, String)> {
    let r = rest.strip_prefix("MSI/")?;
    let (id, leaf) = r.split_once('/').unwrap_or((r, ""));
    (id.starts_with('{') && id.ends_with('}')).then(|| (id.to_uppercase(), leaf.to_owned()))
}

fn job_key(scope: &str, product_id: &str) -> String {
    if scope == "User" {
        format!("User/{product_id}")
    } else {
        product_id.to_owned()
    }
}

fn new_job(scope: &str, product_id: &str, uri: &str) -> MsiJob {
    MsiJob {
        product_id: product_id.into(),
        scope: scope.into(),
        uri: uri.into(),
        job: None,
        status: 0,
        last_error: 0,
        last_error_desc: String::new(),
        download_attempts: 0,
        install_attempts: 0,
        next_attempt: None,
        current_url: String::new(),
        download_path: String::new(),
        name: String::new(),
        publisher: String::new(),
        version: String::new(),
        install_date: String::new(),
    }
}

/// Get of any node.
pub fn get(ctx: &mut Ctx, scope: &str, rest: &str) -> Result<Value, StatusCode> {
    if rest.is_empty() {
        return Ok(Value::node(&["MSI".into()]));
    }
    if rest == "MSI" {
        let mut ids: Vec<String> = ctx
            .state
            .msi_jobs
            .values()
            .filter(|j| j.scope == scope)
            .map(|j| j.product_id.clone())
            .collect();
        ids.push("UpgradeCode".into());
        return Ok(Value::node(&ids));
    }
    if let Some(code) = rest.strip_prefix("MSI/UpgradeCode/") {
        let ids: Vec<String> = ctx
            .device
            .installer
            .packages
            .values()
            .filter(|m| m.upgrade_code.eq_ignore_ascii_case(code))
            .map(|m| m.product_code.clone())
            .collect();
        return if ids.is_empty() {
            Err(StatusCode::NotFound)
        } else {
            Ok(Value::chr(ids.join("")))
        };
    }
    let (id, leaf) = product(rest).ok_or(StatusCode::NotFound)?;
    let job = ctx.state.msi_jobs.get(&job_key(scope, &id)).cloned();
    let installed = ctx
        .device
        .installer
        .packages
        .iter()
        .find(|(k, _)| k.to_uppercase() == id)
        .map(|(_, m)| m.clone());
    if job.is_none() && installed.is_none() {
        return Err(StatusCode::NotFound);
    }
    let status = job.as_ref().map(|j| j.status).unwrap_or(status::COMPLETED);
    let uninstall = format!(r"{}\{}", programs::UNINSTALL_KEY, id);
    let reg = |name: &str| {
        ctx.device
            .registry
            .get_text(&uninstall, name)
            .unwrap_or_default()
    };
    Ok(match leaf.as_str() {
        "" => Value::node(
            &[
                "DownloadInstall",
                "Status",
                "LastError",
                "LastErrorDesc",
                "Version",
                "Name",
                "Publisher",
                "InstallPath",
                "InstallDate",
            ]
            .map(String::from),
        ),
        "DownloadInstall" => Value::chr(""),
        "Status" => Value::int(status),
        "LastError" => Value::int(job.as_ref().map(|j| j.last_error).unwrap_or(0)),
        "LastErrorDesc" => Value::chr(
            job.as_ref()
                .map(|j| j.last_error_desc.clone())
                .unwrap_or_default(),
        ),
        "Version" => Value::chr(reg("DisplayVersion")),
        "Name" => Value::chr(reg("DisplayName")),
        "Publisher" => Value::chr(reg("Publisher")),
        "InstallDate" => Value::chr(reg("InstallDate")),
        "InstallPath" => Value::chr(job.map(|j| j.download_path).unwrap_or_default()),
        _ => return Err(StatusCode::NotFound),
    })
}

/// Add of `MSI/{P}` or its `DownloadInstall`.
pub fn add(ctx: &mut Ctx, scope: &str, rest: &str, uri: &str) -> StatusCode {
    let Some((id, leaf)) = product(rest) else {
        return StatusCode::CommandNotAllowed;
    };
    if !(leaf.is_empty() || leaf == "DownloadInstall") {
        return StatusCode::CommandNotAllowed;
    }
    let key = job_key(scope, &id);
    if ctx.state.msi_jobs.contains_key(&key) {
        return StatusCode::AlreadyExists;
    }
    let download_uri = if leaf.is_empty() {
        format!("{}/DownloadInstall", uri.trim_end_matches('/'))
    } else {
        uri.to_owned()
    };
    ctx.state
        .msi_jobs
        .insert(key, new_job(scope, &id, &download_uri));
    StatusCode::Ok
}

/// Exec of `MSI/{P}/DownloadInstall` with an MsiInstallJob: 202, work to follow.
pub fn exec(ctx: &mut Ctx, scope: &str, rest: &str, uri: &str, item: &Item) -> StatusCode {
    let Some((id, leaf)) = product(rest) else {
        return StatusCode::NotFound;
    };
    if leaf != "DownloadInstall" {
        return StatusCode::CommandNotAllowed;
    }
    let Ok(job) = MsiInstallJob::parse(item.data_text().unwrap_or_default()) else {
        return StatusCode::BadRequest;
    };
    if job.content_urls.is_empty() {
        return StatusCode::BadRequest;
    }
    let key = job_key(scope, &id);
    let mut entry = ctx
        .state
        .msi_jobs
        .remove(&key)
        .unwrap_or_else(|| new_job(scope, &id, uri));
    entry.uri = uri.into();
    entry.job = Some(job);
    entry.status = status::INITIALIZED;
    entry.last_error = 0;
    entry.last_error_desc.clear();
    entry.download_attempts = 0;
    entry.install_attempts = 0;
    entry.next_attempt = Some(ctx.now);
    record(ctx.device, &entry);
    ctx.state.msi_jobs.insert(key, entry);
    StatusCode::AcceptedForProcessing
}

/// Delete of `MSI/{P}`: uninstall.
pub fn delete(ctx: &mut Ctx, scope: &str, rest: &str) -> StatusCode {
    let Some((id, leaf)) = product(rest) else {
        return StatusCode::CommandNotAllowed;
    };
    if !leaf.is_empty() {
        return StatusCode::CommandNotAllowed;
    }
    let name = ctx
        .device
        .installer
        .packages
        .iter()
        .find(|(k, _)| k.to_uppercase() == id)
        .map(|(_, m)| m.product_name.clone());
    let outcome = ctx.device.msi_uninstall(&id, r"C:\Windows\Temp");
    if outcome.removed.is_some() {
        crate::ime::on_msi_removed(
            ctx.device,
            ctx.state,
            name.as_deref().unwrap_or_default(),
            ctx.now,
        );
    }
    let job = ctx.state.msi_jobs.remove(&job_key(scope, &id));
    if let Some(job) = &job {
        let key = registry_key(ctx.device, job);
        ctx.device.registry.delete_key(&key);
    }
    match outcome.exit_code {
        0 => StatusCode::Ok,
        crate::device::installer::UNKNOWN_PRODUCT if job.is_some() => StatusCode::Ok,
        crate::device::installer::UNKNOWN_PRODUCT => StatusCode::NotFound,
        _ => StatusCode::CommandFailed,
    }
}

/// Uninstalls every MSI the CSP installed and forgets its jobs (unenrollment takes
/// them away: the IME is one of them).
pub fn remove_all(ctx: &mut Ctx) {
    let jobs: Vec<(String, String)> = ctx
        .state
        .msi_jobs
        .values()
        .map(|j| (j.scope.clone(), j.product_id.clone()))
        .collect();
    for (scope, id) in jobs {
        delete(ctx, &scope, &format!("MSI/{id}"));
    }
}

/// When the earliest job step is due.
pub fn next_due(state: &AgentState) -> Option<DateTime<Utc>> {
    state.msi_jobs.values().filter_map(|j| j.next_attempt).min()
}

/// Runs every job step due at `now`: downloads (with `client`) and installs. Returns
/// true when something happened.
pub async fn run_due(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> bool {
    let due: Vec<String> = state
        .msi_jobs
        .iter()
        .filter(|(_, j)| j.next_attempt.is_some_and(|t| t <= now))
        .map(|(k, _)| k.clone())
        .collect();
    for key in &due {
        let Some(mut job) = state.msi_jobs.remove(key) else {
            continue;
        };
        job.next_attempt = None;
        step(device, state, &mut job, client, now).await;
        record(device, &job);
        state.msi_jobs.insert(key.clone(), job);
    }
    !due.is_empty()
}

async fn step(
    device: &mut Device,
    state: &mut AgentState,
    job: &mut MsiJob,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) {
    let Some(spec) = job.job.clone() else { return };
    let retry_later = |job: &mut MsiJob| {
        job.next_attempt =
            Some(now + Duration::minutes(i64::from(spec.retry_interval_minutes.max(1))))
    };
    if matches!(job.status, status::INITIALIZED | status::DOWNLOAD_RETRY) {
        job.status = status::DOWNLOADING;
        job.download_attempts += 1;
        match download(device, job, &spec, client).await {
            Ok(path) => {
                job.download_path = path;
                job.status = status::DOWNLOADED;
            }
            Err((code, desc)) => {
                job.last_error = code;
                job.last_error_desc = desc;
                if job.download_attempts <= spec.retry_count {
                    job.status = status::DOWNLOAD_RETRY;
                    retry_later(job);
                } else {
                    job.status = status::DOWNLOAD_FAILED;
                    alert(state, job, code);
                }
                return;
            }
        }
    }
    if matches!(job.status, status::DOWNLOADED | status::ENFORCEMENT_RETRY) {
        job.status = status::ENFORCING;
        job.install_attempts += 1;
        let timeout = match spec.timeout_minutes {
            0 => StdDuration::from_secs(24 * 3600),
            m => StdDuration::from_secs(u64::from(m) * 60),
        };
        let line = format!("msiexec /i \"{}\" {}", job.download_path, spec.command_line);
        let outcome = device.run(&line, DOWNLOAD_DIR, timeout, now);
        if crate::device::installer::is_success(outcome.exit_code) {
            job.status = status::COMPLETED;
            job.last_error = 0;
            job.last_error_desc.clear();
            if let Some(msi) = &outcome.installed {
                job.name = msi.product_name.clone();
                job.publisher = msi.manufacturer.clone();
                job.version = msi.product_version.clone();
                job.install_date = now.format("%Y%m%d").to_string();
                crate::ime::on_msi_installed(device, state, msi, now);
            }
            alert(state, job, 0);
        } else {
            job.last_error = outcome.exit_code;
            job.last_error_desc = if outcome.exit_code == 1603 {
                "Fatal error during installation.".into()
            } else {
                format!(
                    "The installer exited with code {}. {}",
                    outcome.exit_code,
                    outcome.stderr.trim()
                )
            };
            if job.install_attempts <= spec.retry_count {
                job.status = status::ENFORCEMENT_RETRY;
                retry_later(job);
            } else {
                job.status = status::ENFORCEMENT_FAILED;
                alert(state, job, outcome.exit_code);
            }
        }
    }
}

async fn download(
    device: &mut Device,
    job: &mut MsiJob,
    spec: &MsiInstallJob,
    client: &reqwest::Client,
) -> Result<String, (i64, String)> {
    let mut last = (
        E_CANNOT_CONNECT,
        "No content URL could be reached.".to_owned(),
    );
    for url in &spec.content_urls {
        job.current_url = url.clone();
        let bytes = match client.get(url).send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    last = (E_CANNOT_CONNECT, e.to_string());
                    continue;
                }
            },
            Ok(r) => {
                let code = 0x8019_0000_u32 as i32 as i64 + i64::from(r.status().as_u16());
                last = (code, format!("HTTP {} from {url}", r.status().as_u16()));
                continue;
            }
            Err(e) => {
                last = (E_CANNOT_CONNECT, e.to_string());
                continue;
            }
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        if !digest.eq_ignore_ascii_case(spec.file_hash.trim()) {
            last = (E_BAD_DIGEST, "The hash value is not correct.".to_owned());
            continue;
        }
        let path = format!(r"{DOWNLOAD_DIR}\{}.msi", job.product_id);
        device
            .drive
            .write(&path, &bytes)
            .map_err(|e| (0x8007_0005_u32 as i32 as i64, e.to_string()))?;
        return Ok(path);
    }
    Err(last)
}

fn alert(state: &mut AgentState, job: &MsiJob, code: i64) {
    state.pending_alerts.push(PendingAlert {
        code: "1226".into(),
        source: job.uri.clone(),
        type_: INSTALL_ALERT_TYPE.into(),
        format: "int".into(),
        mark: "informational".into(),
        data: code.to_string(),
    });
}
