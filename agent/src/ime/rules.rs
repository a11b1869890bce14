//! Detection and requirement rules as the IME evaluates them (spec section 3): every
//! detection rule must hold; each requirement that fails names its applicability code.

use serde_json::Value;

use crate::device::{programs, Device, DeviceProfile, RegValue};

/// Compares with the IME's operators: 0 not configured (holds), 1 equal, 2 not equal,
/// 4 greater, 5 greater or equal, 8 less, 9 less or equal.
fn compare(op: i64, ord: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        1 => ord == Equal,
        2 => ord != Equal,
        4 => ord == Greater,
        5 => ord != Less,
        8 => ord == Less,
        9 => ord != Greater,
        _ => true,
    }
}

/// Orders versions part by part numerically (`1.10` after `1.9`).
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u64> {
        v.trim()
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let o = pa.get(i).unwrap_or(&0).cmp(pb.get(i).unwrap_or(&0));
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn num(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// The 32-bit view of a key on a 64-bit system.
fn wow64(key: &str) -> String {
    let lower = key.to_lowercase();
    match lower.find("\\software\\") {
        Some(i) if !lower.contains("\\wow6432node\\") => {
            format!("{}\\SOFTWARE\\WOW6432Node\\{}", &key[..i], &key[i + 10..])
        }
        _ => key.to_owned(),
    }
}

fn registry_rule(device: &Device, r: &Value) -> bool {
    let mut key = text(r, "KeyPath").to_owned();
    if r.get("Check32BitOn64System").and_then(Value::as_bool) == Some(true) {
        key = wow64(&key);
    }
    let name = text(r, "ValueName");
    let reg = &device.registry;
    let exists = if name.is_empty() {
        reg.key_exists(&key)
    } else {
        reg.get(&key, name).is_some()
    };
    let want = text(r, "DetectionValue");
    let op = num(r, "Operator");
    match num(r, "DetectionType") {
        1 => exists,
        2 => !exists,
        3 => reg
            .get(&key, name)
            .is_some_and(|v| compare(op, v.to_text().cmp(&want.to_owned()))),
        4 => match reg.get(&key, name) {
            Some(RegValue::Dword(n)) => want
                .trim()
                .parse::<i64>()
                .is_ok_and(|w| compare(op, i64::from(*n).cmp(&w))),
            Some(RegValue::Qword(n)) => want
                .trim()
                .parse::<i64>()
                .is_ok_and(|w| compare(op, (*n as i64).cmp(&w))),
            Some(v) => v
                .to_text()
                .trim()
                .parse::<i64>()
                .ok()
                .zip(want.trim().parse::<i64>().ok())
                .is_some_and(|(a, w)| compare(op, a.cmp(&w))),
            None => false,
        },
        5 => reg
            .get(&key, name)
            .is_some_and(|v| compare(op, version_cmp(&v.to_text(), want))),
        _ => false,
    }
}

fn msi_rule(device: &Device, r: &Value) -> bool {
    let code = text(r, "ProductCode").trim().to_uppercase();
    if !programs::msi_registered(&device.registry, &code) {
        return false;
    }
    let op = num(r, "ProductVersionOperator");
    let want = r
        .get("ProductVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if op == 0 || want.is_empty() {
        return true;
    }
    let installed = device
        .registry
        .get_text(
            &format!(r"{}\{}", programs::UNINSTALL_KEY, code),
            "DisplayVersion",
        )
        .unwrap_or_default();
    compare(op, version_cmp(&installed, want))
}

fn file_rule(device: &Device, r: &Value) -> bool {
    let path = format!(
        "{}\\{}",
        text(r, "Path").trim_end_matches('\\'),
        text(r, "FileOrFolderName")
    );
    let exists = device.drive.exists(&path);
    match num(r, "DetectionType") {
        1 => exists,
        6 => !exists,
        5 => {
            let size_mb = device
                .drive
                .resolve(&path)
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| (m.len() / (1024 * 1024)) as i64);
            size_mb
                .zip(text(r, "DetectionValue").trim().parse::<i64>().ok())
                .is_some_and(|(a, w)| compare(num(r, "Operator"), a.cmp(&w)))
        }
        // Dates and file versions are not modelled on the simulated drive.
        _ => false,
    }
}

/// Evaluates the policy's DetectionRule (a JSON string holding the rule list): true
/// when there is at least one rule and every rule holds. Script rules count as not
/// detected (PowerShell is not run by the simulated device's detection yet).
pub fn detected(device: &Device, detection_rule: &str) -> bool {
    let rules: Vec<Value> = serde_json::from_str(detection_rule).unwrap_or_default();
    !rules.is_empty()
        && rules.iter().all(|rule| {
            let body: Value = match rule.get("DetectionText") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
                Some(v) => v.clone(),
                None => Value::Null,
            };
            match num(rule, "DetectionType") {
                0 => registry_rule(device, &body),
                1 => msi_rule(device, &body),
                2 => file_rule(device, &body),
                _ => false,
            }
        })
}

/// The device's architecture as the IME's flag.
fn architecture_flag(p: &DeviceProfile) -> i64 {
    match p.architecture.to_ascii_lowercase().as_str() {
        "x86" => 1,
        "arm64" => 8 | 16 | 32, // x86 and x64 run emulated on ARM64
        _ => 2,
    }
}

/// Checks the policy's RequirementRules (a JSON string); `Err` carries the
/// applicability code of the first that fails (1000 architecture, 1001 disk, 1002 OS
/// version, 1003 memory, 1004 processors, 1005 CPU speed).
pub fn requirements(profile: &DeviceProfile, requirement_rules: &str) -> Result<(), i64> {
    let r: Value = serde_json::from_str(requirement_rules).unwrap_or(Value::Null);
    let flags = r
        .get("RequiredOSArchitecture")
        .and_then(Value::as_i64)
        .unwrap_or(63);
    if flags & architecture_flag(profile) == 0 {
        return Err(1000);
    }
    let min = |key: &str| r.get(key).and_then(Value::as_i64);
    if min("MinimumFreeDiskSpaceInMB").is_some_and(|m| (profile.free_disk_mb as i64) < m) {
        return Err(1001);
    }
    let build = match r.get("MinimumWindows10BuildNumer") {
        Some(Value::String(s)) => s.rsplit('.').next().and_then(|b| b.parse::<u32>().ok()),
        Some(Value::Number(n)) => n.as_u64().map(|n| n as u32),
        _ => None,
    };
    if build.is_some_and(|b| profile.build_number() < b) {
        return Err(1002);
    }
    if min("MinimumMemoryInMB").is_some_and(|m| (profile.memory_mb as i64) < m) {
        return Err(1003);
    }
    if min("MinimumNumberOfProcessors").is_some_and(|m| i64::from(profile.cpu_count) < m) {
        return Err(1004);
    }
    if min("MinimumCpuSpeed").is_some_and(|m| i64::from(profile.cpu_speed_mhz) < m) {
        return Err(1005);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(kind: i64, text: Value) -> String {
        json!([{ "DetectionType": kind, "DetectionText": text.to_string() }]).to_string()
    }

    #[test]
    fn registry_msi_and_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Device::create(dir.path(), DeviceProfile::default(), [4; 32]).unwrap();
        d.registry.set(
            r"HKLM\SOFTWARE\Contoso",
            "Version",
            RegValue::Sz("1.10.0".into()),
        );
        d.registry.set(
            r"HKLM\SOFTWARE\WOW6432Node\Contoso32",
            "Count",
            RegValue::Dword(5),
        );
        let reg = |t: i64, key: &str, name: &str, op: i64, value: &str, wow: bool| {
            rule(
                0,
                json!({ "KeyPath": key, "ValueName": name, "DetectionType": t, "Operator": op, "DetectionValue": value, "Check32BitOn64System": wow }),
            )
        };
        assert!(detected(
            &d,
            &reg(
                1,
                r"HKEY_LOCAL_MACHINE\SOFTWARE\Contoso",
                "Version",
                0,
                "",
                false
            )
        ));
        assert!(!detected(
            &d,
            &reg(1, r"HKLM\SOFTWARE\Contoso", "Missing", 0, "", false)
        ));
        assert!(detected(
            &d,
            &reg(2, r"HKLM\SOFTWARE\Nothing", "", 0, "", false)
        ));
        assert!(
            detected(
                &d,
                &reg(5, r"HKLM\SOFTWARE\Contoso", "Version", 5, "1.9", false)
            ),
            "1.10 >= 1.9 as versions"
        );
        assert!(!detected(
            &d,
            &reg(3, r"HKLM\SOFTWARE\Contoso", "Version", 1, "1.9", false)
        ));
        assert!(
            detected(
                &d,
                &reg(4, r"HKLM\SOFTWARE\Contoso32", "Count", 4, "3", true)
            ),
            "the 32-bit view"
        );
        programs::register_msi(
            &mut d.registry,
            "{11111111-2222-3333-4444-555555555555}",
            "W",
            "2.0.1",
            "C",
            "20261124",
        );
        let msi = |op: i64, v: &str| {
            rule(
                1,
                json!({ "ProductCode": "{11111111-2222-3333-4444-555555555555}", "ProductVersion": v, "ProductVersionOperator": op }),
            )
        };
        assert!(detected(&d, &msi(0, "")));
        assert!(detected(&d, &msi(5, "2.0")));
        assert!(!detected(&d, &msi(8, "2.0")));
        d.drive
            .write(r"C:\Program Files\Contoso\widget.exe", b"x")
            .unwrap();
        assert!(detected(
            &d,
            &rule(
                2,
                json!({ "Path": r"C:\Program Files\Contoso", "FileOrFolderName": "WIDGET.EXE", "DetectionType": 1 })
            )
        ));
        assert!(!detected(&d, "[]"), "no rules, nothing detected");
    }

    #[test]
    fn requirements_name_what_failed() {
        let p = DeviceProfile::default();
        let req = |v: Value| requirements(&p, &v.to_string());
        assert_eq!(req(json!({ "RequiredOSArchitecture": 2 })), Ok(()));
        assert_eq!(req(json!({ "RequiredOSArchitecture": 8 })), Err(1000));
        assert_eq!(
            req(json!({ "MinimumFreeDiskSpaceInMB": 10_000_000 })),
            Err(1001)
        );
        assert_eq!(
            req(json!({ "MinimumWindows10BuildNumer": "10.0.26100" })),
            Err(1002)
        );
        assert_eq!(req(json!({ "MinimumMemoryInMB": 65536 })), Err(1003));
        assert_eq!(req(json!({ "MinimumNumberOfProcessors": 64 })), Err(1004));
        assert_eq!(req(json!({ "MinimumCpuSpeed": 9999 })), Err(1005));
    }
}
