//! Detection and requirement rules as the IME evaluates them (spec section 3): every
//! detection rule must hold; each requirement that fails names its applicability code.
//!
//! Script rules run on the device: the script is written to `Content\DetectionScripts`
//! and run under a 60-second timeout (Tenantless's choice); a `.ps1` that starts with a
//! shebang runs under `sh`. A detection script detects when it exits 0 and writes
//! something to stdout; a requirement script's output is compared as its output type
//! says. With EnforceSignatureCheck, a script without a signature block fails without
//! running (the simulated device cannot check Authenticode; it checks that one is there).

use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::device::{programs, Device, DeviceProfile, RegValue};

pub use syncml::version::cmp as version_cmp;

/// Where detection and requirement scripts are written before they run.
pub const DETECTION_SCRIPTS: &str =
    r"C:\Program Files (x86)\Microsoft Intune Management Extension\Content\DetectionScripts";
/// How long a detection or requirement script may run.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// The line that opens a PowerShell signature block.
const SIGNATURE_BLOCK: &str = "# SIG # Begin signature block";

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

/// Runs a rule's script (`ScriptBody`, base64) and returns its exit code and stdout;
/// `None` when the script cannot run (bad encoding, unsigned under signature check).
fn run_script_rule(device: &mut Device, r: &Value) -> Option<(i64, String)> {
    let body = base64::engine::general_purpose::STANDARD
        .decode(text(r, "ScriptBody").trim())
        .ok()?;
    let script = String::from_utf8_lossy(&body).into_owned();
    if r.get("EnforceSignatureCheck").and_then(Value::as_bool) == Some(true)
        && !script.contains(SIGNATURE_BLOCK)
    {
        return None;
    }
    let name: String = Sha256::digest(&body)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = format!(r"{DETECTION_SCRIPTS}\{name}.ps1");
    device.drive.write(&path, &body).ok()?;
    let outcome = device.run_script(&path, SCRIPT_TIMEOUT);
    let _ = device.drive.remove(&path);
    (!outcome.timed_out).then_some((outcome.exit_code, outcome.stdout))
}

/// A detection script detects when it exits 0 and writes something to stdout.
fn script_detection(device: &mut Device, r: &Value) -> bool {
    run_script_rule(device, r).is_some_and(|(code, out)| code == 0 && !out.trim().is_empty())
}

/// A requirement script holds when it exits 0 and its output (the last non-empty line)
/// compares as asked: DetectionType 1 string, 2 date and time, 3 integer, 4 float,
/// 5 version, 6 boolean; with no operator, any output holds.
fn script_requirement(device: &mut Device, r: &Value) -> bool {
    let Some((0, out)) = run_script_rule(device, r) else {
        return false;
    };
    let got = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let want = text(r, "DetectionValue").trim();
    let op = num(r, "Operator");
    if op == 0 {
        return !got.is_empty();
    }
    match num(r, "DetectionType") {
        2 => chrono::DateTime::parse_from_rfc3339(got)
            .ok()
            .zip(chrono::DateTime::parse_from_rfc3339(want).ok())
            .is_some_and(|(a, w)| compare(op, a.cmp(&w))),
        3 => got
            .parse::<i64>()
            .ok()
            .zip(want.parse::<i64>().ok())
            .is_some_and(|(a, w)| compare(op, a.cmp(&w))),
        4 => got
            .parse::<f64>()
            .ok()
            .zip(want.parse::<f64>().ok())
            .and_then(|(a, w)| a.partial_cmp(&w))
            .is_some_and(|o| compare(op, o)),
        5 => compare(op, version_cmp(got, want)),
        6 => {
            let truth = |v: &str| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "$true" => Some(true),
                "false" | "0" | "$false" => Some(false),
                _ => None,
            };
            truth(got)
                .zip(truth(want))
                .is_some_and(|(a, w)| compare(op, a.cmp(&w)))
        }
        _ => compare(op, got.cmp(want)),
    }
}

/// Parses a rule's text, a JSON string in the policy (or, leniently, an object).
fn rule_text(rule: &Value, key: &str) -> Value {
    match rule.get(key) {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

/// True when the detection rules can be evaluated: a JSON list of at least one rule,
/// each of a type the IME knows (registry, MSI, file, script).
pub fn can_detect(detection_rule: &str) -> bool {
    let rules: Vec<Value> = serde_json::from_str(detection_rule).unwrap_or_default();
    !rules.is_empty()
        && rules.iter().all(|rule| {
            rule["DetectionType"] == WINGET || (0..=3).contains(&num(rule, "DetectionType"))
        })
}

/// The DetectionType of a Store app's rule: WinGet says whether its package
/// (DetectionText) is installed. Tenantless's own, made on the device from the policy's
/// `InstallerData` ([`super::win32::detection_rule`]).
pub const WINGET: &str = "WinGet";

/// Evaluates the policy's DetectionRule (a JSON string holding the rule list): true
/// when there is at least one rule and every rule holds.
pub fn detected(device: &mut Device, detection_rule: &str) -> bool {
    let rules: Vec<Value> = serde_json::from_str(detection_rule).unwrap_or_default();
    !rules.is_empty()
        && rules.iter().all(|rule| {
            if rule["DetectionType"] == WINGET {
                let package = rule["DetectionText"].as_str().unwrap_or_default();
                return device.winget_installed(package);
            }
            let body = rule_text(rule, "DetectionText");
            match num(rule, "DetectionType") {
                0 => registry_rule(device, &body),
                1 => msi_rule(device, &body),
                2 => file_rule(device, &body),
                3 => script_detection(device, &body),
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

/// Checks the policy's ExtendedRequirementRules (a JSON string holding
/// `[{Type, RequirementText}]`): `Err` carries 1007 for a registry rule that fails,
/// 1006 for a file rule, 1008 for a script rule.
pub fn extended_requirements(device: &mut Device, rules: &str) -> Result<(), i64> {
    let rules: Vec<Value> = serde_json::from_str(rules).unwrap_or_default();
    for rule in &rules {
        let body = rule_text(rule, "RequirementText");
        let (holds, code) = match num(rule, "Type") {
            0 => (registry_rule(device, &body), 1007),
            2 => (file_rule(device, &body), 1006),
            3 => (script_requirement(device, &body), 1008),
            _ => (false, 1),
        };
        if !holds {
            return Err(code);
        }
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
            &mut d,
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
            &mut d,
            &reg(1, r"HKLM\SOFTWARE\Contoso", "Missing", 0, "", false)
        ));
        assert!(detected(
            &mut d,
            &reg(2, r"HKLM\SOFTWARE\Nothing", "", 0, "", false)
        ));
        assert!(
            detected(
                &mut d,
                &reg(5, r"HKLM\SOFTWARE\Contoso", "Version", 5, "1.9", false)
            ),
            "1.10 >= 1.9 as versions"
        );
        assert!(!detected(
            &mut d,
            &reg(3, r"HKLM\SOFTWARE\Contoso", "Version", 1, "1.9", false)
        ));
        assert!(
            detected(
                &mut d,
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
        assert!(detected(&mut d, &msi(0, "")));
        assert!(detected(&mut d, &msi(5, "2.0")));
        assert!(!detected(&mut d, &msi(8, "2.0")));
        d.drive
            .write(r"C:\Program Files\Contoso\widget.exe", b"x")
            .unwrap();
        assert!(detected(
            &mut d,
            &rule(
                2,
                json!({ "Path": r"C:\Program Files\Contoso", "FileOrFolderName": "WIDGET.EXE", "DetectionType": 1 })
            )
        ));
        assert!(!detected(&mut d, "[]"), "no rules, nothing detected");
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

    fn b64(script: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(script)
    }

    #[test]
    fn script_detection_needs_exit_0_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Device::create(dir.path(), DeviceProfile::default(), [4; 32]).unwrap();
        let script = |body: &str, signed: bool| {
            rule(
                3,
                json!({ "ScriptBody": b64(body), "EnforceSignatureCheck": signed, "RunAs32Bit": false }),
            )
        };
        let probe =
            "#!/bin/sh\nif [ -f \"$TENANTLESS_C_DRIVE/Contoso/ok\" ]; then echo Detected; fi\n";
        assert!(!detected(&mut d, &script(probe, false)), "no output");
        d.drive.write(r"C:\Contoso\ok", b"").unwrap();
        assert!(detected(&mut d, &script(probe, false)));
        assert!(
            !detected(&mut d, &script("#!/bin/sh\necho Detected\nexit 1\n", false)),
            "output but exit 1"
        );
        assert!(
            !detected(&mut d, &script(probe, true)),
            "unsigned under EnforceSignatureCheck"
        );
        let signed = format!(
            "{probe}# SIG # Begin signature block\n# MIInvgYJ\n# SIG # End signature block\n"
        );
        assert!(detected(&mut d, &script(&signed, true)));
        assert!(
            d.drive
                .resolve(DETECTION_SCRIPTS)
                .and_then(|p| std::fs::read_dir(p).ok())
                .is_some_and(|mut r| r.next().is_none()),
            "scripts are removed after they run"
        );
    }

    #[test]
    fn extended_requirements_name_the_rule_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Device::create(dir.path(), DeviceProfile::default(), [4; 32]).unwrap();
        d.registry.set(
            r"HKLM\SOFTWARE\Contoso",
            "Ring",
            RegValue::Sz("pilot".into()),
        );
        let ext = |kind: i64, text: Value| {
            json!([{ "Type": kind, "RequirementText": text.to_string() }]).to_string()
        };
        let reg = ext(
            0,
            json!({ "KeyPath": r"HKLM\SOFTWARE\Contoso", "ValueName": "Ring", "DetectionType": 3, "Operator": 1, "DetectionValue": "pilot" }),
        );
        assert_eq!(extended_requirements(&mut d, &reg), Ok(()));
        d.registry.set(
            r"HKLM\SOFTWARE\Contoso",
            "Ring",
            RegValue::Sz("broad".into()),
        );
        assert_eq!(extended_requirements(&mut d, &reg), Err(1007));
        let file = ext(
            2,
            json!({ "Path": r"C:\Contoso", "FileOrFolderName": "license.txt", "DetectionType": 1 }),
        );
        assert_eq!(extended_requirements(&mut d, &file), Err(1006));
        let script = |out: &str, kind: i64, op: i64, want: &str| {
            ext(
                3,
                json!({ "ScriptBody": b64(&format!("#!/bin/sh\necho {out}\n")), "DetectionType": kind, "Operator": op, "DetectionValue": want }),
            )
        };
        assert_eq!(
            extended_requirements(&mut d, &script("42", 3, 5, "40")),
            Ok(())
        );
        assert_eq!(
            extended_requirements(&mut d, &script("42", 3, 8, "40")),
            Err(1008)
        );
        assert_eq!(
            extended_requirements(&mut d, &script("10.0.2", 5, 4, "10.0.10")),
            Err(1008)
        );
        assert_eq!(
            extended_requirements(&mut d, &script("True", 6, 1, "true")),
            Ok(())
        );
        assert_eq!(
            extended_requirements(&mut d, &script("pilot", 1, 1, "pilot")),
            Ok(())
        );
        assert_eq!(extended_requirements(&mut d, "[]"), Ok(()));
    }
}
