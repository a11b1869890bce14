//! The read-only CSPs built into Windows (DevInfo, DevDetail) and DMClient's schedule.

use chrono::SecondsFormat;
use syncml::dm::{Item, StatusCode};

use super::{Ctx, Value};

/// A read-only subtree: leaf paths and values.
fn lookup(leaves: &[(String, Value)], rest: &str) -> Result<Value, StatusCode> {
    if let Some((_, v)) = leaves.iter().find(|(p, _)| p == rest) {
        return Ok(v.clone());
    }
    let prefix = if rest.is_empty() {
        String::new()
    } else {
        format!("{rest}/")
    };
    let mut children: Vec<String> = leaves
        .iter()
        .filter_map(|(p, _)| p.strip_prefix(&prefix))
        .filter_map(|r| r.split('/').next())
        .map(str::to_owned)
        .collect();
    children.dedup();
    if children.is_empty() {
        Err(StatusCode::NotFound)
    } else {
        Ok(Value::node(&children))
    }
}

/// `./DevInfo`.
pub fn devinfo(ctx: &mut Ctx, rest: &str) -> Result<Value, StatusCode> {
    let p = &ctx.device.profile;
    let leaves = vec![
        ("DevId".to_owned(), Value::chr(&p.device_id)),
        ("Man".to_owned(), Value::chr(&p.manufacturer)),
        ("Mod".to_owned(), Value::chr(&p.model)),
        ("DmV".to_owned(), Value::chr("1.3")),
        ("Lang".to_owned(), Value::chr(&p.language)),
    ];
    lookup(&leaves, rest)
}

/// `./DevDetail`, with the Windows extensions under `Ext/Microsoft`.
pub fn devdetail(ctx: &mut Ctx, rest: &str) -> Result<Value, StatusCode> {
    let p = &ctx.device.profile;
    let arch = match p.architecture.to_ascii_lowercase().as_str() {
        "x86" => 0,
        "arm64" => 12,
        _ => 9,
    };
    let os = ctx
        .device
        .registry
        .get_text(
            r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion",
            "ProductName",
        )
        .unwrap_or_default();
    let s = |k: &str, v: Value| (k.to_owned(), v);
    let leaves = vec![
        s("DevTyp", Value::chr(&p.model)),
        s("OEM", Value::chr(&p.manufacturer)),
        s("FwV", Value::chr("Hyper-V UEFI Release v4.1")),
        s("SwV", Value::chr(&p.os_version)),
        s("HwV", Value::chr("Hyper-V UEFI Release v4.1")),
        s(
            "LrgObj",
            Value {
                format: "bool".into(),
                data: "true".into(),
            },
        ),
        s("URI/MaxDepth", Value::int(32)),
        s("URI/MaxTotLen", Value::int(1000)),
        s("URI/MaxSegLen", Value::int(255)),
        s("Ext/Microsoft/DeviceName", Value::chr(&p.device_name)),
        s("Ext/Microsoft/DNSComputerName", Value::chr(&p.device_name)),
        s(
            "Ext/Microsoft/LocalTime",
            Value::chr(ctx.now.to_rfc3339_opts(SecondsFormat::Micros, false)),
        ),
        s("Ext/Microsoft/OSPlatform", Value::chr(os)),
        s("Ext/Microsoft/ProcessorArchitecture", Value::int(arch)),
        s("Ext/Microsoft/TotalRAM", Value::int(p.memory_mb)),
        s("Ext/Microsoft/TotalStorage", Value::int(p.free_disk_mb)),
        s(
            "Ext/Microsoft/SMBIOSSerialNumber",
            Value::chr(
                p.device_id
                    .replace('-', "")
                    .chars()
                    .take(12)
                    .collect::<String>(),
            ),
        ),
        s(
            "Ext/WLANMACAddress",
            Value::chr(p.mac_addresses.first().cloned().unwrap_or_default()),
        ),
    ];
    lookup(&leaves, rest)
}

/// True for the DMClient nodes computed here (the rest of DMClient is generic).
pub fn dmclient_owns(rest: &str) -> bool {
    rest.is_empty() || rest == "HWDevID" || rest == "Provider" || rest.starts_with("Provider/")
}

fn provider_leaves(ctx: &Ctx) -> Vec<(String, Value)> {
    let mut leaves = vec![(
        "HWDevID".to_owned(),
        Value::chr(&ctx.device.profile.hw_dev_id),
    )];
    if let Some(e) = &ctx.state.enrollment {
        let p = &e.poll;
        let base = format!("Provider/{}", e.provider_id);
        leaves.push((
            format!("{base}/EntDMID"),
            Value::chr(&ctx.device.profile.device_id),
        ));
        for (name, v) in p.numbers() {
            leaves.push((format!("{base}/Poll/{name}"), Value::int(v)));
        }
        leaves.push((
            format!("{base}/Poll/PollOnLogin"),
            Value {
                format: "bool".into(),
                data: p.poll_on_login.to_string(),
            },
        ));
    }
    leaves
}

/// Get under `./Vendor/MSFT/DMClient`.
pub fn dmclient_get(ctx: &mut Ctx, rest: &str) -> Result<Value, StatusCode> {
    lookup(&provider_leaves(ctx), rest)
}

/// The Enrollment Status Page's settings under `Provider/<id>/FirstSyncStatus`.
const FIRST_SYNC_STATUS: &[&str] = &[
    "SkipDeviceStatusPage",
    "SkipUserStatusPage",
    "TimeOutUntilSyncFailure",
    "BlockInStatusPage",
    "AllowCollectLogsButton",
    "CustomErrorText",
    "ExpectedPolicies",
    "ExpectedMSIAppPackages",
    "ExpectedModernAppPackages",
    "ServerHasFinishedProvisioning",
    "IsSyncDone",
];

/// Replace of a poll setting changes the schedule; one of the ESP's settings
/// (`FirstSyncStatus`) is kept, where the IME reads it.
pub fn dmclient_replace(ctx: &mut Ctx, rest: &str, item: &Item) -> StatusCode {
    let Some(e) = ctx.state.enrollment.as_mut() else {
        return StatusCode::NotFound;
    };
    let first_sync = format!("Provider/{}/FirstSyncStatus/", e.provider_id);
    if let Some(leaf) = rest.strip_prefix(&first_sync) {
        if !FIRST_SYNC_STATUS.contains(&leaf) {
            return StatusCode::NotFound;
        }
        let node = super::generic::node_of(item, item.meta.as_ref());
        ctx.state
            .nodes
            .insert(format!("Vendor/MSFT/DMClient/{rest}"), node);
        return StatusCode::Ok;
    }
    let text = item.data_text().unwrap_or_default().trim();
    // The server ends management (Intune's retire): the value is the provider's id.
    if rest == format!("Provider/{}/Unenroll", e.provider_id) {
        if text != e.provider_id {
            return StatusCode::BadRequest;
        }
        ctx.state.leaving = Some(crate::state::Leaving::Retire);
        return StatusCode::Ok;
    }
    let Some(name) = rest.strip_prefix(&format!("Provider/{}/Poll/", e.provider_id)) else {
        return StatusCode::CommandNotAllowed;
    };
    let p = &mut e.poll;
    if name == "PollOnLogin" {
        p.poll_on_login = text.eq_ignore_ascii_case("true");
        return StatusCode::Ok;
    }
    let Ok(n) = text.parse::<u32>() else {
        return StatusCode::BadRequest;
    };
    match p.number_mut(name) {
        Some(slot) => {
            *slot = n;
            StatusCode::Ok
        }
        None => StatusCode::NotFound,
    }
}
