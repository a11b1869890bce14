//! Custom compliance: `deviceComplianceScripts` (a discovery script) and
//! `deviceCompliancePolicies` (Windows 10/11) whose `deviceCompliancePolicyScript` names
//! one script and carries its rules (`rulesContent`, base64 JSON: `{"Rules": [{
//! SettingName, Operator, DataType, Operand, MoreInfoUrl, RemediationStrings }]}`).
//!
//! A device targeted by a policy gets its discovery script with its remediations in
//! `GetScript` (detection only, every 8 hours; `PolicyType` [`POLICY_TYPE`]), and reports
//! the script's one-line JSON output in `HealthScriptResult`. The server evaluates the
//! rules against it, keeps each setting's state, journals `compliance_evaluated`, and the
//! device's `complianceState` is the worst of its evaluated policies.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::{assigned_to, load, CompliancePolicy};
use crate::api_error::ApiError;
use crate::journal::Event;
use crate::odata::{Collection, Options};
use crate::state::Shared;
use crate::storage::{ComplianceStateRow, Device, ScriptKind, StoreError};

/// The discovery scripts.
pub const SCRIPTS_PATH: &str = "/beta/deviceManagement/deviceComplianceScripts";
/// The compliance policies.
pub const POLICIES_PATH: &str = "/beta/deviceManagement/deviceCompliancePolicies";
/// A discovery script's `PolicyType` in `GetScript` (Tenantless's value: the public
/// record shows only remediations' 6).
pub const POLICY_TYPE: i64 = 8;
/// How often the IME runs a discovery script: with each compliance check, every 8 hours.
pub const EVERY_HOURS: i64 = 8;
/// The most rules a policy's JSON may hold.
const MAX_RULES: usize = 100;

/// The admin routes beside the shared CRUD.
pub fn admin_routes() -> Router<Shared> {
    Router::new()
        .route(&format!("{POLICIES_PATH}/{{id}}/assign"), post(assign))
        .route(
            &format!("{POLICIES_PATH}/{{id}}/deviceStatuses"),
            get(device_statuses),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/deviceCompliancePolicyStates",
            get(policy_states),
        )
}

/// A policy's rules, checked: the operators and data types the admin center takes, an
/// operand of its type, and an `en_US` remediation string. `Ok(None)` for a policy
/// without custom compliance.
pub fn rules_of(policy: &Value) -> Result<Option<(String, Vec<Value>)>, String> {
    let script = &policy["deviceCompliancePolicyScript"];
    if script.is_null() {
        return Ok(None);
    }
    let script_id = script["deviceComplianceScriptId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("deviceCompliancePolicyScript.deviceComplianceScriptId is required")?;
    let text = super::decode(script["rulesContent"].as_str().unwrap_or_default())
        .map_err(|e| format!("rulesContent is not base64: {e}"))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("rulesContent is not JSON: {e}"))?;
    let rules = json["Rules"]
        .as_array()
        .filter(|r| !r.is_empty())
        .ok_or("rulesContent needs a non-empty Rules array")?;
    if rules.len() > MAX_RULES {
        return Err(format!("rulesContent holds more than {MAX_RULES} rules"));
    }
    for rule in rules {
        let name = rule["SettingName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or("each rule needs a SettingName")?;
        let operator = rule["Operator"].as_str().unwrap_or_default();
        if !OPERATORS.contains(&operator) {
            return Err(format!(
                "{name}: Operator {operator:?} is not one of {}",
                OPERATORS.join(", ")
            ));
        }
        let data_type = rule["DataType"].as_str().unwrap_or_default();
        let operand = operand_text(&rule["Operand"]);
        if typed(data_type, &operand).is_none() {
            return Err(format!(
                "{name}: Operand {operand:?} is not a {data_type:?} (one of Boolean, Int64, Double, String, DateTime, Version)"
            ));
        }
        if data_type == "Boolean" && !matches!(operator, "IsEquals" | "NotEquals") {
            return Err(format!("{name}: a Boolean takes IsEquals or NotEquals"));
        }
        let english = rule["RemediationStrings"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["Language"] == "en_US"));
        if !english {
            return Err(format!("{name}: RemediationStrings needs an en_US string"));
        }
    }
    Ok(Some((script_id.to_owned(), rules.clone())))
}

const OPERATORS: &[&str] = &[
    "IsEquals",
    "NotEquals",
    "GreaterThan",
    "GreaterEquals",
    "LessThan",
    "LessEquals",
];

/// A value as text (a script may output numbers and booleans as JSON).
fn operand_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A value of a rule's data type, comparable.
#[derive(Debug, PartialEq, PartialOrd)]
enum Typed {
    Boolean(bool),
    Int64(i64),
    Double(f64),
    String(String),
    DateTime(chrono::DateTime<chrono::Utc>),
    Version(Vec<u64>),
}

/// Reads `text` as `data_type`; `None` when it is not one.
fn typed(data_type: &str, text: &str) -> Option<Typed> {
    let text = text.trim();
    match data_type {
        "Boolean" => match text.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(Typed::Boolean(true)),
            "false" | "0" => Some(Typed::Boolean(false)),
            _ => None,
        },
        "Int64" => text.parse().ok().map(Typed::Int64),
        "Double" => text
            .parse::<f64>()
            .ok()
            .filter(|d| d.is_finite())
            .map(Typed::Double),
        "String" => Some(Typed::String(text.to_owned())),
        "DateTime" => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                    .map(|t| t.and_utc())
            })
            .ok()
            .map(Typed::DateTime),
        "Version" => text
            .split('.')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<Vec<u64>>>()
            .filter(|parts| !parts.is_empty() && parts.len() <= 4)
            .map(|mut parts| {
                parts.resize(4, 0);
                Typed::Version(parts)
            }),
        _ => None,
    }
}

/// One rule against the script's output: Graph's setting state.
fn evaluate_rule(rule: &Value, output: &Value, policy_id: &str) -> Value {
    let name = rule["SettingName"].as_str().unwrap_or_default();
    let data_type = rule["DataType"].as_str().unwrap_or_default();
    let found = output.get(name).filter(|v| !v.is_null());
    let current = found.map(operand_text);
    let (state, error) = match current.as_deref() {
        None => (
            "error",
            Some("The discovery script did not return this setting."),
        ),
        Some(value) => match (
            typed(data_type, value),
            typed(data_type, &operand_text(&rule["Operand"])),
        ) {
            (Some(actual), Some(wanted)) => {
                let holds = match rule["Operator"].as_str().unwrap_or_default() {
                    "IsEquals" => actual == wanted,
                    "NotEquals" => actual != wanted,
                    "GreaterThan" => actual > wanted,
                    "GreaterEquals" => actual >= wanted,
                    "LessThan" => actual < wanted,
                    _ => actual <= wanted,
                };
                (if holds { "compliant" } else { "nonCompliant" }, None)
            }
            _ => (
                "error",
                Some("The returned value is not of the rule's data type."),
            ),
        },
    };
    let english = rule["RemediationStrings"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["Language"] == "en_US"))
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "setting": format!("{policy_id}.{name}"),
        "settingName": name,
        "instanceDisplayName": null,
        "state": state,
        "errorCode": if error.is_some() { 1 } else { 0 },
        "errorDescription": error,
        "currentValue": current,
        "sources": [],
        crate::odata::DETAILS: {
            "moreInfoUrl": rule["MoreInfoUrl"],
            "remediationTitle": english["Title"],
            "remediationDescription": english["Description"],
        },
    })
}

/// The policy's state from its settings' states: an error first, then any non-compliant
/// setting.
fn policy_state(settings: &[Value]) -> &'static str {
    let any = |s: &str| settings.iter().any(|v| v["state"] == s);
    if any("error") {
        "error"
    } else if any("nonCompliant") {
        "nonCompliant"
    } else {
        "compliant"
    }
}

/// The device's `complianceState` from its evaluated policies (`compliant` with none,
/// as the tenant's default "no compliance policy assigned" setting says).
pub fn device_state<'a>(states: impl IntoIterator<Item = &'a str>) -> &'static str {
    let states: Vec<&str> = states.into_iter().collect();
    if states.contains(&"error") {
        "error"
    } else if states.contains(&"nonCompliant") {
        "noncompliant"
    } else {
        "compliant"
    }
}

/// `POST .../deviceCompliancePolicies/{id}/assign` with `assignments`: `[{target}]`;
/// answers the assignments, as Graph does for this action. Targeting a device that
/// lacks the IME installs it first (custom compliance is one of the reasons the IME is
/// there).
async fn assign(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::assign_targets_of::<CompliancePolicy>(&state, &id, &body, "assignments").await?;
    let given = super::assignments_json::<CompliancePolicy>(&state, &id).await?;
    Ok(axum::Json(json!({ "value": given })).into_response())
}

/// A device's evaluated policy in Graph's `deviceCompliancePolicyState` shape.
fn policy_state_json(row: &ComplianceStateRow, name: &str, version: i64) -> Value {
    let settings: Value = serde_json::from_str(&row.settings).unwrap_or(json!([]));
    json!({
        "@odata.type": "#microsoft.graph.deviceCompliancePolicyState",
        "id": row.policy_id,
        "displayName": name,
        "version": version,
        "platformType": "windows10AndLater",
        "state": row.state,
        "settingCount": settings.as_array().map_or(0, Vec::len),
        "settingStates": settings,
    })
}

/// `GET managedDevices/{id}/deviceCompliancePolicyStates`.
async fn policy_states(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    let device = state
        .store
        .device(&id.to_uppercase())
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no managed device {id}")))?;
    let mut out = Vec::new();
    for row in state.store.compliance_states(&device.id).await? {
        let Some(policy) = state
            .store
            .script(ScriptKind::CompliancePolicy, &row.policy_id)
            .await?
        else {
            continue;
        };
        let body: Value = serde_json::from_str(&policy.body).unwrap_or(json!({}));
        let name = body["displayName"].as_str().unwrap_or_default();
        out.push(policy_state_json(&row, name, policy.revision));
    }
    let context = format!(
        "deviceManagement/managedDevices('{}')/deviceCompliancePolicyStates",
        device.id
    );
    options.page(out, &Collection::plain(&context))
}

/// `GET deviceCompliancePolicies/{id}/deviceStatuses`: Graph's
/// `deviceComplianceDeviceStatus` for each device evaluated.
async fn device_statuses(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    load::<CompliancePolicy>(&state, &id).await?;
    let mut out = Vec::new();
    for row in state.store.compliance_policy_states(&id).await? {
        let name = state
            .store
            .device(&row.device_id)
            .await?
            .map(|d| d.device_name)
            .unwrap_or_default();
        out.push(json!({
            "@odata.type": "#microsoft.graph.deviceComplianceDeviceStatus",
            "id": format!("{id}:{}", row.device_id),
            "deviceDisplayName": name,
            "status": row.state,
            "lastReportedDateTime": row.updated_at,
            crate::odata::DETAILS: { "managedDeviceId": row.device_id },
        }));
    }
    let context = format!(
        "{}('{id}')/deviceStatuses",
        POLICIES_PATH.trim_start_matches("/beta/")
    );
    options.page(out, &Collection::plain(&context))
}

/// The compliance policies with custom compliance assigned to a device, each with its
/// discovery script and rules.
async fn custom_policies_for(
    state: &Shared,
    device: &Device,
) -> Result<Vec<(String, crate::storage::AppRow, Vec<Value>)>, StoreError> {
    let mut out = Vec::new();
    for (policy, _) in assigned_to(state, ScriptKind::CompliancePolicy, device).await? {
        let body: Value = serde_json::from_str(&policy.body).unwrap_or(json!({}));
        let Ok(Some((script_id, rules))) = rules_of(&body) else {
            continue;
        };
        if let Some(script) = state
            .store
            .script(ScriptKind::ComplianceScript, &script_id)
            .await?
        {
            out.push((policy.id, script, rules));
        }
    }
    Ok(out)
}

/// The discovery scripts of the policies assigned to a device, as `GetScript` lists them
/// beside remediations: detection only, every [`EVERY_HOURS`] hours.
pub async fn policies_for(state: &Shared, device: &Device) -> Result<Vec<Value>, StoreError> {
    Ok(custom_policies_for(state, device)
        .await?
        .into_iter()
        .map(|(_, script, _)| {
            let body: Value = serde_json::from_str(&script.body).unwrap_or(json!({}));
            json!({
                "PolicyId": script.id,
                "PolicyVersion": script.revision,
                "PolicyType": POLICY_TYPE,
                "DetectionScript": super::content(&body, "detectionScriptContent"),
                "RemediationScript": "",
                "ExecutionContext": if body["runAsAccount"] == "user" { 1 } else { 0 },
                "RunningMode": if body["runAs32Bit"] == true { 0 } else { 1 },
                "EnforceSignatureCheck": body["enforceSignatureCheck"] == true,
                "RunRemediationScript": false,
                "Schedule": { "Type": "Hourly", "Interval": EVERY_HOURS, "Time": "00:00:00", "Date": null, "UseUtc": false },
            })
        })
        .collect())
}

/// The discovery scripts a device was given: their results are evaluated here.
pub async fn given_scripts(
    state: &Shared,
    device: &Device,
) -> Result<std::collections::HashSet<String>, StoreError> {
    Ok(custom_policies_for(state, device)
        .await?
        .into_iter()
        .map(|(_, script, _)| script.id)
        .collect())
}

/// Evaluates a discovery script's reported run against its policy's rules: the setting
/// states are kept, and `compliance_evaluated` journalled.
pub async fn evaluate(state: &Shared, device: &Device, report: &Value) -> Result<(), ApiError> {
    let script_id = report["PolicyId"].as_str().unwrap_or_default();
    let text = report["PreRemediationDetectScriptOutput"]
        .as_str()
        .unwrap_or_default();
    // The output is one line of JSON; a script that failed or printed anything else
    // leaves every setting in error.
    let output: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    for (policy_id, script, rules) in custom_policies_for(state, device).await? {
        if script.id != script_id {
            continue;
        }
        let settings: Vec<Value> = rules
            .iter()
            .map(|rule| evaluate_rule(rule, &output, &policy_id))
            .collect();
        let policy = policy_state(&settings).to_owned();
        let non_compliant: Vec<String> = settings
            .iter()
            .filter(|s| s["state"] != "compliant")
            .filter_map(|s| s["settingName"].as_str().map(str::to_owned))
            .collect();
        state
            .store
            .set_compliance_state(&ComplianceStateRow {
                device_id: device.id.clone(),
                policy_id: policy_id.clone(),
                state: policy.clone(),
                settings: Value::Array(settings).to_string(),
                output: text.to_owned(),
                updated_at: state.now_text(),
            })
            .await?;
        let event = Event::ComplianceEvaluated {
            policy_id,
            state: policy,
            settings: non_compliant,
        };
        if let Err(e) = state.journal.record(&device.id, &event).await {
            tracing::error!("journal: {e}");
        }
    }
    Ok(())
}

/// Checks what a compliance policy says of custom compliance.
pub(super) fn check_policy(policy: &Value) -> Result<(), ApiError> {
    rules_of(policy)
        .map(|_| ())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))
}

/// A discovery script cannot go while a policy names it.
pub(super) async fn check_unused(state: &Shared, script_id: &str) -> Result<(), ApiError> {
    for policy in state.store.scripts(ScriptKind::CompliancePolicy).await? {
        let body: Value = serde_json::from_str(&policy.body).unwrap_or(json!({}));
        if body["deviceCompliancePolicyScript"]["deviceComplianceScriptId"] == script_id {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "the compliance policy {} uses this discovery script; remove it from the policy first",
                    policy.id
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(operator: &str, data_type: &str, operand: Value) -> Value {
        json!({
            "SettingName": "S", "Operator": operator, "DataType": data_type, "Operand": operand,
            "RemediationStrings": [{ "Language": "en_US", "Title": "t", "Description": "d" }],
        })
    }

    fn state_of(rule: &Value, output: Value) -> String {
        evaluate_rule(rule, &output, "p")["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn each_data_type_compares_as_its_type() {
        let version = rule("GreaterEquals", "Version", json!("2.10"));
        assert_eq!(state_of(&version, json!({ "S": "2.9.1" })), "nonCompliant");
        assert_eq!(state_of(&version, json!({ "S": "2.10" })), "compliant");
        let int = rule("LessThan", "Int64", json!(10));
        assert_eq!(state_of(&int, json!({ "S": 9 })), "compliant");
        assert_eq!(state_of(&int, json!({ "S": "10" })), "nonCompliant");
        let boolean = rule("IsEquals", "Boolean", json!(true));
        assert_eq!(state_of(&boolean, json!({ "S": "True" })), "compliant");
        assert_eq!(state_of(&boolean, json!({ "S": false })), "nonCompliant");
        let string = rule("NotEquals", "String", json!("Off"));
        assert_eq!(state_of(&string, json!({ "S": "On" })), "compliant");
        let date = rule("GreaterThan", "DateTime", json!("2026-01-01T00:00:00Z"));
        assert_eq!(
            state_of(&date, json!({ "S": "2026-06-01T00:00:00Z" })),
            "compliant"
        );
        let double = rule("LessEquals", "Double", json!(1.5));
        assert_eq!(state_of(&double, json!({ "S": 1.75 })), "nonCompliant");
    }

    #[test]
    fn a_missing_or_mistyped_setting_is_an_error() {
        let int = rule("IsEquals", "Int64", json!(1));
        assert_eq!(state_of(&int, json!({})), "error");
        assert_eq!(state_of(&int, json!({ "S": "one" })), "error");
        assert_eq!(state_of(&int, Value::Null), "error");
    }

    #[test]
    fn rules_are_checked_as_the_admin_center_takes_them() {
        let policy = |rules: Value| {
            let content = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                json!({ "Rules": rules }).to_string(),
            );
            json!({ "deviceCompliancePolicyScript": { "deviceComplianceScriptId": "s", "rulesContent": content } })
        };
        assert!(rules_of(&policy(json!([rule("IsEquals", "Int64", json!(1))]))).is_ok());
        assert!(rules_of(&policy(json!([rule("Contains", "String", json!("a"))]))).is_err());
        assert!(rules_of(&policy(json!([rule("IsEquals", "Int64", json!("x"))]))).is_err());
        assert!(rules_of(&policy(json!([rule(
            "GreaterThan",
            "Boolean",
            json!(true)
        )])))
        .is_err());
        assert!(rules_of(&policy(json!([]))).is_err());
        let mut untranslated = rule("IsEquals", "Int64", json!(1));
        untranslated["RemediationStrings"] = json!([{ "Language": "de_DE" }]);
        assert!(rules_of(&policy(json!([untranslated]))).is_err());
        assert_eq!(rules_of(&json!({ "displayName": "plain" })), Ok(None));
    }

    #[test]
    fn the_worst_policy_decides_the_device() {
        assert_eq!(device_state([]), "compliant");
        assert_eq!(device_state(["compliant", "nonCompliant"]), "noncompliant");
        assert_eq!(device_state(["nonCompliant", "error"]), "error");
    }
}
