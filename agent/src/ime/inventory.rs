//! Application inventory (spec section 9): installed programs as
//! `Win32_InstalledWin32Program` records, computed from the device's Uninstall keys and
//! MSI registrations (whatever put them there). A delta inventory when the service
//! starts and every 24 hours, a full one the first time and every 7 days; the last
//! inventory is kept under `Inventories` so a delta can be computed, and deleting its
//! `FirstTimeRun` value forces a full one. A delta carries what is new or changed; a
//! removal reaches the service only with the next full inventory.
//!
//! Upload (`ApplicationInventory`, a shape Tenantless defines): `{InventoryType: "Full"
//! | "Delta", Programs: [record...]}`. Records: `{ProgramId, Name, Version, Vendor,
//! Language, MsiProductCode, MsiPackageCode}`; ProgramId is Tenantless's stable hash of
//! name, version and vendor.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::gateway::{self, Caller};
use crate::cmtrace::Severity;
use crate::device::{Device, RegValue};
use crate::error::AgentError;
use crate::state::AgentState;

/// Where the last inventory is kept.
pub const INVENTORIES_KEY: &str = r"HKLM\SOFTWARE\Microsoft\IntuneManagementExtension\Inventories";
/// The inventory's log.
pub const LOG: &str = "Win32AppInventory.log";
/// Between two inventories.
pub fn delta_period() -> Duration {
    Duration::hours(24)
}
/// Between two full inventories.
pub fn full_period() -> Duration {
    Duration::days(7)
}

fn log(device: &Device, now: DateTime<Utc>, message: &str) {
    super::log(
        device,
        LOG,
        "Win32AppInventory",
        message,
        Severity::Info,
        now,
    );
}

/// The device's installed programs as `Win32_InstalledWin32Program` records, by ProgramId.
pub fn collect(device: &Device) -> Vec<Value> {
    let mut records: Vec<Value> = device
        .installed_programs()
        .into_iter()
        .map(|p| {
            let id = Sha256::digest(
                format!("{}|{}|{}", p.display_name, p.display_version, p.publisher).as_bytes(),
            );
            json!({
                "ProgramId": hex::encode(&id[..22]),
                "Name": p.display_name,
                "Version": p.display_version,
                "Vendor": p.publisher,
                "Language": "1033",
                "MsiProductCode": p.msi_product_code.unwrap_or_default(),
                "MsiPackageCode": "",
            })
        })
        .collect();
    records.sort_by(|a, b| a["ProgramId"].as_str().cmp(&b["ProgramId"].as_str()));
    records.dedup_by(|a, b| a["ProgramId"] == b["ProgramId"]);
    records
}

/// True when an inventory is due.
pub fn due(state: &AgentState, now: DateTime<Utc>) -> bool {
    state.ime.running && state.ime.inventory_due.is_some_and(|t| t <= now)
}

/// Takes and uploads the inventory that is due (full or delta).
pub async fn run(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    gateway_url: &str,
    now: DateTime<Utc>,
) -> Result<(), AgentError> {
    let first_time = device
        .registry
        .get(INVENTORIES_KEY, "FirstTimeRun")
        .is_none();
    let full = first_time
        || state
            .ime
            .last_full_inventory
            .is_none_or(|t| t + full_period() <= now);
    let records = collect(device);
    let previous: Vec<Value> = device
        .registry
        .get_text(INVENTORIES_KEY, "LastInventory")
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let sent: Vec<Value> = if full {
        records.clone()
    } else {
        records
            .iter()
            .filter(|r| !previous.contains(r))
            .cloned()
            .collect()
    };
    let kind = if full { "Full" } else { "Delta" };
    log(
        device,
        now,
        &format!(
            "[Win32AppInventory] Start {kind} inventory{}",
            if first_time {
                " (FirstTimeRun is not set)"
            } else {
                ""
            }
        ),
    );
    log(
        device,
        now,
        &format!(
            "[Win32AppInventory] {} installed program(s); sending {} record(s)",
            records.len(),
            sent.len()
        ),
    );
    gateway::Conversation::new(
        client,
        gateway_url,
        "inventory",
        device,
        &state.ime.version,
        now,
    )
    .call(
        "ApplicationInventory",
        &json!({ "InventoryType": kind, "Programs": sent }),
        "Inventory",
    )
    .await?;
    let stamp = now.format("%m/%d/%Y %H:%M:%S").to_string();
    let reg = &mut device.registry;
    if first_time {
        reg.set(INVENTORIES_KEY, "FirstTimeRun", RegValue::Sz(stamp.clone()));
    }
    reg.set(
        INVENTORIES_KEY,
        "LastInventory",
        RegValue::Sz(Value::Array(records).to_string()),
    );
    reg.set(
        INVENTORIES_KEY,
        if full {
            "LastFullInventoryTime"
        } else {
            "LastDeltaInventoryTime"
        },
        RegValue::Sz(stamp),
    );
    if full {
        state.ime.last_full_inventory = Some(now);
    }
    state.ime.inventory_due = Some(now + delta_period());
    log(
        device,
        now,
        &format!("[Win32AppInventory] {kind} inventory sent"),
    );
    Ok(())
}
