//! From an app in Graph's `win32LobApp` shape to the policy object the IME receives
//! (spec section 3): field names and enum values as the IME has them, with
//! DetectionRule, RequirementRules, ExtendedRequirementRules, InstallEx and ReturnCodes
//! encoded as JSON strings inside the JSON, RebootEx and StartDeadlineEx as objects.

use std::io::{Read, Write};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// `DateTime.MinValue` as the IME writes it: "as soon as possible".
pub const DATE_MIN: &str = "/Date(-62135596800000)/";

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Graph's rule operator as the IME's number.
pub fn operator(name: &str) -> i64 {
    match name {
        "equal" => 1,
        "notEqual" => 2,
        "greaterThan" => 4,
        "greaterThanOrEqual" => 5,
        "lessThan" => 8,
        "lessThanOrEqual" => 9,
        _ => 0,
    }
}

/// Graph's rule kind (registry, file system, script: detection `*Rule` and
/// `*Detection` or requirement `*Requirement` shapes) as the IME's type number.
fn rule_kind(odata_type: &str) -> Option<i64> {
    let name = odata_type.strip_prefix("#microsoft.graph.win32LobApp")?;
    let kind = ["Rule", "Detection", "Requirement"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))?;
    match kind {
        "Registry" => Some(0),
        "ProductCode" => Some(1),
        "FileSystem" => Some(2),
        "PowerShellScript" => Some(3),
        _ => None,
    }
}

/// The operation a rule checks: `operationType` on `rules`, `detectionType` on the
/// older detection and requirement shapes.
fn operation(rule: &Value) -> &str {
    match s(rule, "operationType") {
        "" => s(rule, "detectionType"),
        op => op,
    }
}

/// The value a rule compares with (`comparisonValue` or `detectionValue`).
fn comparison(rule: &Value) -> &str {
    match s(rule, "comparisonValue") {
        "" => s(rule, "detectionValue"),
        v => v,
    }
}

/// One Graph rule's text in the IME's shape (the `DetectionText` or `RequirementText`).
fn rule_text(rule: &Value) -> Option<(i64, Value)> {
    let flag = |key: &str| rule.get(key).and_then(Value::as_bool).unwrap_or(false);
    let (detection_type, text) = match rule_kind(s(rule, "@odata.type"))? {
        1 => (
            1,
            json!({
                "ProductCode": s(rule, "productCode"),
                "ProductVersion": rule.get("productVersion").cloned().unwrap_or(Value::Null),
                "ProductVersionOperator": operator(s(rule, "productVersionOperator")),
            }),
        ),
        0 => {
            let op = match operation(rule) {
                "doesNotExist" => 2,
                "string" => 3,
                "integer" => 4,
                "version" => 5,
                _ => 1,
            };
            (
                0,
                json!({
                    "Check32BitOn64System": flag("check32BitOn64System"),
                    "KeyPath": s(rule, "keyPath"),
                    "ValueName": s(rule, "valueName"),
                    "DetectionType": op,
                    "Operator": operator(s(rule, "operator")),
                    "DetectionValue": comparison(rule),
                }),
            )
        }
        2 => {
            let op = match operation(rule) {
                "modifiedDate" => 2,
                "createdDate" => 3,
                "version" => 4,
                "sizeInMB" => 5,
                "doesNotExist" => 6,
                _ => 1,
            };
            (
                2,
                json!({
                    "Path": s(rule, "path"),
                    "FileOrFolderName": s(rule, "fileOrFolderName"),
                    "Check32BitOn64System": flag("check32BitOn64System"),
                    "DetectionType": op,
                    "Operator": operator(s(rule, "operator")),
                    "DetectionValue": comparison(rule),
                }),
            )
        }
        _ => {
            // The output type of a requirement script.
            let output = match operation(rule) {
                "string" => 1,
                "dateTime" => 2,
                "integer" => 3,
                "float" => 4,
                "version" => 5,
                "boolean" => 6,
                _ => 0,
            };
            (
                3,
                json!({
                    "ScriptBody": s(rule, "scriptContent"),
                    "EnforceSignatureCheck": flag("enforceSignatureCheck"),
                    "RunAs32Bit": flag("runAs32Bit"),
                    "RunAsAccount": if s(rule, "runAsAccount") == "user" { 2 } else { 1 },
                    "DetectionType": output,
                    "Operator": operator(s(rule, "operator")),
                    "DetectionValue": comparison(rule),
                }),
            )
        }
    };
    Some((detection_type, text))
}

/// One Graph detection rule as the IME's `{DetectionType, DetectionText}`.
fn detection_rule(rule: &Value) -> Option<Value> {
    let (kind, text) = rule_text(rule)?;
    Some(json!({ "DetectionType": kind, "DetectionText": text.to_string() }))
}

/// One Graph requirement rule (registry, file system or script) as the IME's
/// `{Type, RequirementText}` in ExtendedRequirementRules.
fn requirement_rule(rule: &Value) -> Option<Value> {
    let (kind, text) = rule_text(rule).filter(|(kind, _)| *kind != 1)?;
    Some(json!({ "Type": kind, "RequirementText": text.to_string() }))
}

/// Graph's `applicableArchitectures` ("x86,x64", "arm64", "neutral") as the IME's flags.
pub fn architecture_flags(text: &str) -> i64 {
    let mut flags = 0;
    for part in text.split(',').map(str::trim) {
        flags |= match part {
            "x86" => 1,
            "x64" => 2,
            "arm" => 4,
            "arm64" => 8,
            "neutral" | "" => 63,
            _ => 0,
        };
    }
    if flags == 0 {
        63
    } else {
        flags
    }
}

/// Graph return-code types as the IME's numbers; the IME's defaults when none are set.
fn return_codes(app: &Value) -> Value {
    let given: Vec<Value> = app
        .get("returnCodes")
        .and_then(Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .map(|c| {
                    let kind = match s(c, "type") {
                        "success" => 1,
                        "softReboot" => 2,
                        "hardReboot" => 3,
                        "retry" => 4,
                        _ => 0,
                    };
                    json!({ "ReturnCode": c.get("returnCode").and_then(Value::as_i64).unwrap_or(0), "Type": kind })
                })
                .collect()
        })
        .unwrap_or_default();
    if !given.is_empty() {
        return Value::Array(given);
    }
    json!([
        { "ReturnCode": 0, "Type": 1 },
        { "ReturnCode": 1707, "Type": 1 },
        { "ReturnCode": 3010, "Type": 2 },
        { "ReturnCode": 1641, "Type": 3 },
        { "ReturnCode": 1618, "Type": 4 },
    ])
}

/// `/Date(ms)/` for a time, `DateTime.MinValue` for none.
pub fn dotnet_date(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("/Date({})/", t.timestamp_millis()),
        None => DATE_MIN.into(),
    }
}

/// `StartDeadlineEx.TimeFormat` for wall-clock times (any non-empty value means local
/// time to the IME; the public record does not show the service's, so this is
/// Tenantless's).
pub const LOCAL_TIME_FORMAT: &str = "LocalTime";

/// What an assignment adds to a device's policy.
#[derive(Debug, Clone, Default)]
pub struct Targeting {
    /// 0 not targeted, 1 available, 3 required, 4 uninstall.
    pub intent: i64,
    /// 1 user, 2 device.
    pub target_type: i64,
    /// Available from.
    pub start: Option<DateTime<Utc>>,
    /// Deadline.
    pub deadline: Option<DateTime<Utc>>,
    /// The times are wall-clock times, each device's own (Graph's `useLocalTime`).
    pub local_time: bool,
    /// Which toasts the user sees: 0 all (`showAll`), 1 restarts only (`showReboot`),
    /// 2 none (`hideAll`).
    pub toast_state: i64,
    /// The restart grace period, when the assignment has one.
    pub restart: Option<crate::storage::RestartSettings>,
}

/// The policy's `ToastState` for Graph's `notifications`.
pub fn toast_state(notifications: &str) -> i64 {
    match notifications {
        "showReboot" => 1,
        "hideAll" => 2,
        _ => 0,
    }
}

/// The policy's `RebootEx`: GracePeriod, Countdown and Snooze in minutes, -1 where unset
/// (no grace period; no snoozing).
fn reboot_ex(restart: Option<crate::storage::RestartSettings>) -> Value {
    let set = |m: Option<i64>| m.filter(|m| *m > 0).unwrap_or(-1);
    json!({
        "GracePeriod": set(restart.map(|r| r.grace_period_in_minutes)),
        "Countdown": set(restart.map(|r| r.countdown_display_before_restart_in_minutes)),
        "Snooze": set(restart.map(|r| r.restart_notification_snooze_duration_in_minutes)),
    })
}

/// The WinGet source Microsoft Store (new) apps come from.
pub const STORE_SOURCE: &str = "msstore";

/// The IME's policy object for a Microsoft Store (new) app: a Win32 app's keys, no
/// detection rule, setup file or command lines (WinGet installs it and tells whether it
/// is installed), and `InstallerData` naming the package and its source.
pub fn winget_policy(id: &str, revision: i64, app: &Value, t: &Targeting) -> Value {
    let mut p = policy(id, revision, app, "", t);
    p["DetectionRule"] = json!("[]");
    p["InstallCommandLine"] = json!("");
    p["UninstallCommandLine"] = json!("");
    p["SetUpFilePath"] = Value::Null;
    p["InstallerData"] = json!(json!({
        "PackageIdentifier": s(app, "packageIdentifier"),
        "SourceName": STORE_SOURCE,
        "SourceType": "Microsoft.Rest",
    })
    .to_string());
    p
}

/// The IME's policy object for an app.
pub fn policy(id: &str, revision: i64, app: &Value, setup_file: &str, t: &Targeting) -> Value {
    let rules: Vec<&Value> = app
        .get("rules")
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    let detection: Vec<Value> = rules
        .iter()
        .filter(|r| s(r, "ruleType") != "requirement")
        .filter_map(|r| detection_rule(r))
        .collect();
    let detection: Vec<Value> = if detection.is_empty() {
        app.get("detectionRules")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(detection_rule).collect())
            .unwrap_or_default()
    } else {
        detection
    };
    let extended: Vec<Value> = rules
        .iter()
        .filter(|r| s(r, "ruleType") == "requirement")
        .copied()
        .chain(
            app.get("requirementRules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(requirement_rule)
        .collect();
    let experience = app.get("installExperience").cloned().unwrap_or(Value::Null);
    let run_as = if s(&experience, "runAsAccount") == "user" {
        2
    } else {
        1
    };
    let restart = match s(&experience, "deviceRestartBehavior") {
        "allow" => 1,
        "suppress" => 2,
        "force" => 3,
        _ => 0,
    };
    let install_ex = json!({
        "RunAs": run_as,
        "RequiresLogon": true,
        "InstallProgramVisibility": 3,
        "MaxRetries": 3,
        "RetryIntervalInMinutes": 5,
        "MaxRunTimeInMinutes": experience.get("maxRunTimeInMinutes").and_then(Value::as_i64).unwrap_or(60),
        "DeviceRestartBehavior": restart,
    });
    let num = |key: &str| {
        app.get(key)
            .and_then(Value::as_i64)
            .map(Value::from)
            .unwrap_or(Value::Null)
    };
    let requirements = json!({
        "RequiredOSArchitecture": architecture_flags(s(app, "applicableArchitectures")),
        "MinimumFreeDiskSpaceInMB": num("minimumFreeDiskSpaceInMB"),
        "MinimumWindows10BuildNumer": app.get("minimumSupportedWindowsRelease").cloned().unwrap_or(Value::Null),
        "MinimumMemoryInMB": num("minimumMemoryInMB"),
        "MinimumNumberOfProcessors": num("minimumNumberOfProcessors"),
        "MinimumCpuSpeed": num("minimumCpuSpeedInMHz"),
        "RunAs32Bit": false,
    });
    // Every key the service sends, in its order (a real device's `Get policies` line);
    // nulls where Tenantless has nothing to say. FlatDependencies is filled (or left
    // null) by the caller.
    json!({
        "Id": id,
        "Name": s(app, "displayName"),
        "Version": revision,
        "Intent": t.intent,
        "TargetType": t.target_type,
        "AppApplicabilityStateDueToAssginmentFilters": null,
        "AssignmentFilterIds": null,
        "DetectionRule": Value::Array(detection).to_string(),
        "InstallCommandLine": s(app, "installCommandLine"),
        "UninstallCommandLine": s(app, "uninstallCommandLine"),
        "RequirementRules": requirements.to_string(),
        "ExtendedRequirementRules": Value::Array(extended).to_string(),
        "InstallEx": install_ex.to_string(),
        "ReturnCodes": return_codes(app).to_string(),
        "AvailableAppEnforcement": 0,
        "SetUpFilePath": setup_file,
        "ToastState": t.toast_state,
        "Targeted": i64::from(t.intent != 0),
        "FlatDependencies": null,
        "MetadataVersion": revision,
        "RelationVersion": 0,
        "RebootEx": reboot_ex(t.restart),
        "InstallBehavior": 0,
        "StartDeadlineEx": { "TimeFormat": if t.local_time { LOCAL_TIME_FORMAT } else { "" }, "StartTime": dotnet_date(t.start), "Deadline": dotnet_date(t.deadline) },
        "RemoveUserData": false,
        "DOPriority": 0,
        "newFlatDependencies": true,
        "AssignmentFilterIdToEvalStateMap": null,
        "ContentCacheDuration": null,
        "ESPConfiguration": null,
        "ReevaluationInterval": 480,
        "SupportState": null,
        "InstallContext": if run_as == 2 { 1 } else { 2 },
        "InstallerData": null,
        "AvailableAppRequestType": 0,
        "ContentMode": 1,
    })
}

/// The gateway's payload encoding for app lists: base64 of a 4-byte little-endian
/// length, then a gzip stream of the JSON.
pub fn compress(json: &str) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(json.as_bytes());
    let body = gz.finish().unwrap_or_default();
    let mut out = (json.len() as u32).to_le_bytes().to_vec();
    out.extend(body);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Reverses [`compress`].
pub fn decompress(payload: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .ok()?;
    let body = bytes.get(4..)?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .take(64 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assignments_restart_settings_and_notifications_reach_the_policy() {
        let app = json!({ "displayName": "Driver Pack" });
        let t = Targeting {
            intent: 3,
            target_type: 2,
            toast_state: toast_state("hideAll"),
            restart: Some(crate::storage::RestartSettings {
                grace_period_in_minutes: 1440,
                countdown_display_before_restart_in_minutes: 15,
                restart_notification_snooze_duration_in_minutes: 0,
            }),
            ..Default::default()
        };
        let p = policy("app-1", 1, &app, "setup.msi", &t);
        assert_eq!(p["ToastState"], 2);
        assert_eq!(
            p["RebootEx"],
            json!({ "GracePeriod": 1440, "Countdown": 15, "Snooze": -1 }),
            "no snooze is -1"
        );
        assert_eq!(toast_state("showReboot"), 1);
        assert_eq!(toast_state("showAll"), 0);
    }

    /// The keys of a policy and of its JSON-in-a-string fields, in the order a real
    /// device's `Get policies = [...]` line shows them; log parsers and people diffing
    /// logs rely on it.
    #[test]
    fn a_policy_has_every_key_the_service_sends_in_its_order() {
        let app = json!({ "displayName": "Contoso Widget", "applicableArchitectures": "x64" });
        let t = Targeting {
            intent: 3,
            target_type: 2,
            ..Default::default()
        };
        let p = policy("app-1", 1, &app, "widget.msi", &t);
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Id",
                "Name",
                "Version",
                "Intent",
                "TargetType",
                "AppApplicabilityStateDueToAssginmentFilters",
                "AssignmentFilterIds",
                "DetectionRule",
                "InstallCommandLine",
                "UninstallCommandLine",
                "RequirementRules",
                "ExtendedRequirementRules",
                "InstallEx",
                "ReturnCodes",
                "AvailableAppEnforcement",
                "SetUpFilePath",
                "ToastState",
                "Targeted",
                "FlatDependencies",
                "MetadataVersion",
                "RelationVersion",
                "RebootEx",
                "InstallBehavior",
                "StartDeadlineEx",
                "RemoveUserData",
                "DOPriority",
                "newFlatDependencies",
                "AssignmentFilterIdToEvalStateMap",
                "ContentCacheDuration",
                "ESPConfiguration",
                "ReevaluationInterval",
                "SupportState",
                "InstallContext",
                "InstallerData",
                "AvailableAppRequestType",
                "ContentMode",
            ]
        );
        let text = p.to_string();
        assert!(text.contains(r#""FlatDependencies":null,"#), "{text}");
        assert!(text.contains(r#""RebootEx":{"GracePeriod":-1,"Countdown":-1,"Snooze":-1}"#));
        assert!(text.contains(r#""StartDeadlineEx":{"TimeFormat":"","StartTime":"#));
        assert!(p["InstallEx"].as_str().unwrap().starts_with(
            r#"{"RunAs":1,"RequiresLogon":true,"InstallProgramVisibility":3,"MaxRetries":3,"RetryIntervalInMinutes":5,"MaxRunTimeInMinutes":60,"DeviceRestartBehavior":"#
        ));
        assert!(p["RequirementRules"]
            .as_str()
            .unwrap()
            .starts_with(r#"{"RequiredOSArchitecture":2,"MinimumFreeDiskSpaceInMB":null,"MinimumWindows10BuildNumer":"#));
    }

    #[test]
    fn a_graph_app_becomes_the_imes_policy() {
        let app = json!({
            "@odata.type": "#microsoft.graph.win32LobApp",
            "displayName": "Contoso Widget",
            "installCommandLine": "msiexec /i widget.msi /qn",
            "applicableArchitectures": "x64",
            "rules": [{ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": "{P}", "productVersionOperator": "notConfigured" }],
            "installExperience": { "runAsAccount": "system", "deviceRestartBehavior": "basedOnReturnCode", "maxRunTimeInMinutes": 30 },
        });
        let p = policy(
            "app-1",
            2,
            &app,
            "widget.msi",
            &Targeting {
                intent: 3,
                target_type: 2,
                ..Default::default()
            },
        );
        assert_eq!(p["Intent"], 3);
        assert_eq!(p["Version"], 2);
        let detection: Value = serde_json::from_str(p["DetectionRule"].as_str().unwrap()).unwrap();
        assert_eq!(detection[0]["DetectionType"], 1);
        let text: Value =
            serde_json::from_str(detection[0]["DetectionText"].as_str().unwrap()).unwrap();
        assert_eq!(text["ProductCode"], "{P}");
        let install: Value = serde_json::from_str(p["InstallEx"].as_str().unwrap()).unwrap();
        assert_eq!(
            (
                install["MaxRetries"].as_i64(),
                install["RetryIntervalInMinutes"].as_i64(),
                install["MaxRunTimeInMinutes"].as_i64()
            ),
            (Some(3), Some(5), Some(30))
        );
        let codes: Value = serde_json::from_str(p["ReturnCodes"].as_str().unwrap()).unwrap();
        assert_eq!(
            codes.as_array().unwrap().len(),
            5,
            "the IME's default codes"
        );
        let req: Value = serde_json::from_str(p["RequirementRules"].as_str().unwrap()).unwrap();
        assert_eq!(req["RequiredOSArchitecture"], 2);
        assert_eq!(p["StartDeadlineEx"]["StartTime"], DATE_MIN);
        assert!(p["RebootEx"].is_object());
    }

    #[test]
    fn requirement_rules_become_extended_requirement_rules() {
        let app = json!({
            "displayName": "Contoso Widget",
            "rules": [
                { "@odata.type": "#microsoft.graph.win32LobAppPowerShellScriptRule", "ruleType": "detection", "scriptContent": "ZWNobyB5ZXM=", "enforceSignatureCheck": false, "runAs32Bit": false },
                { "@odata.type": "#microsoft.graph.win32LobAppRegistryRule", "ruleType": "requirement", "keyPath": "HKLM\\SOFTWARE\\Contoso", "valueName": "Ring", "operationType": "string", "operator": "equal", "comparisonValue": "pilot" },
            ],
            "requirementRules": [
                { "@odata.type": "#microsoft.graph.win32LobAppPowerShellScriptRequirement", "scriptContent": "ZWNobyA0Mg==", "detectionType": "integer", "operator": "greaterThanOrEqual", "detectionValue": "40", "runAsAccount": "system" },
                { "@odata.type": "#microsoft.graph.win32LobAppFileSystemRequirement", "path": "C:\\Contoso", "fileOrFolderName": "license.txt", "detectionType": "exists" },
            ],
        });
        let p = policy("app-1", 1, &app, "setup.exe", &Targeting::default());
        let detection: Value = serde_json::from_str(p["DetectionRule"].as_str().unwrap()).unwrap();
        assert_eq!(detection.as_array().unwrap().len(), 1, "{detection}");
        assert_eq!(detection[0]["DetectionType"], 3);
        let ext: Value =
            serde_json::from_str(p["ExtendedRequirementRules"].as_str().unwrap()).unwrap();
        let kinds: Vec<i64> = ext
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Type"].as_i64().unwrap())
            .collect();
        assert_eq!(kinds, [0, 3, 2]);
        let text = |i: usize| -> Value {
            serde_json::from_str(ext[i]["RequirementText"].as_str().unwrap()).unwrap()
        };
        assert_eq!(
            (
                text(0)["DetectionType"].clone(),
                text(0)["Operator"].clone(),
                text(0)["DetectionValue"].clone()
            ),
            (json!(3), json!(1), json!("pilot"))
        );
        assert_eq!(
            (
                text(1)["DetectionType"].clone(),
                text(1)["Operator"].clone(),
                text(1)["ScriptBody"].clone()
            ),
            (json!(3), json!(5), json!("ZWNobyA0Mg=="))
        );
        assert_eq!(text(2)["FileOrFolderName"], "license.txt");
    }

    #[test]
    fn payloads_compress_as_the_gateway_does() {
        let json = r#"[{"Id":"a"}]"#;
        let packed = compress(json);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&packed)
            .unwrap();
        assert_eq!(
            u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
            json.len()
        );
        assert_eq!(
            &bytes[4..6],
            &[0x1F, 0x8B],
            "a gzip stream follows the length"
        );
        assert_eq!(decompress(&packed).as_deref(), Some(json));
        assert_eq!(decompress("not base64!"), None);
    }
}
