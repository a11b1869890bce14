//! Custom compliance through Graph: a discovery script and a compliance policy with
//! rules make a device non-compliant, per setting, until what it reports changes;
//! `synccompliance` makes the device report at once; a policy's rules are checked and a
//! discovery script in use cannot be deleted.

use base64::Engine;
use chrono::Duration;
use serde_json::{json, Value};
use testbed::{AdminBody, World, WorldOptions};

const MARKER: &str = r"C:\ProgramData\Contoso\firewall-on";

fn rules() -> Value {
    json!([
        { "SettingName": "Firewall", "Operator": "IsEquals", "DataType": "Boolean", "Operand": true,
          "MoreInfoUrl": "https://contoso.example/firewall",
          "RemediationStrings": [{ "Language": "en_US", "Title": "The firewall is off.", "Description": "Turn on Windows Firewall." }] },
        { "SettingName": "OsBuild", "Operator": "GreaterEquals", "DataType": "Version", "Operand": "10.0.22631",
          "MoreInfoUrl": "https://contoso.example/os",
          "RemediationStrings": [{ "Language": "en_US", "Title": "Windows is too old.", "Description": "Install the latest update." }] },
    ])
}

const DISCOVERY: &str = "#!/bin/sh\n\
on=false\n\
if [ -f \"$TENANTLESS_C_DRIVE/ProgramData/Contoso/firewall-on\" ]; then on=true; fi\n\
echo \"{\\\"Firewall\\\":$on,\\\"OsBuild\\\":\\\"10.0.26100\\\"}\"\n";

async fn get(w: &World, path: &str) -> Value {
    let (status, body) = w.admin("GET", path, AdminBody::None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn a_device_is_non_compliant_per_setting_until_it_reports_otherwise() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("CMP-02", Default::default()).await.unwrap();
    let policy = testbed::workload::custom_compliance(&w, "Firewall baseline", DISCOVERY, rules())
        .await
        .unwrap();
    w.advance(Duration::minutes(30)).await;

    let device = w.device_id("CMP-02").unwrap();
    let managed = get(
        &w,
        &format!("/beta/deviceManagement/managedDevices/{device}"),
    )
    .await;
    assert_eq!(managed["complianceState"], "noncompliant", "{managed}");
    let states = get(
        &w,
        &format!("/beta/deviceManagement/managedDevices/{device}/deviceCompliancePolicyStates"),
    )
    .await;
    let state = &states["value"][0];
    assert_eq!(state["id"], policy.as_str());
    assert_eq!(state["state"], "nonCompliant");
    assert_eq!(state["settingCount"], 2);
    let settings = state["settingStates"].as_array().unwrap();
    assert_eq!(settings[0]["settingName"], "Firewall");
    assert_eq!(settings[0]["state"], "nonCompliant");
    assert_eq!(settings[0]["currentValue"], "false");
    assert_eq!(
        settings[0]["@tenantless.details"]["remediationTitle"],
        "The firewall is off."
    );
    assert_eq!(
        settings[1]["state"], "compliant",
        "10.0.26100 >= 10.0.22631"
    );

    // The firewall goes on; the service learns it at the next discovery run, which
    // synccompliance brings forward.
    w.device_mut("CMP-02")
        .unwrap()
        .device_mut()
        .drive
        .write(MARKER, b"")
        .unwrap();
    w.advance(Duration::hours(1)).await;
    let managed = get(
        &w,
        &format!("/beta/deviceManagement/managedDevices/{device}"),
    )
    .await;
    assert_eq!(
        managed["complianceState"], "noncompliant",
        "not run again yet"
    );
    w.trigger("CMP-02", agent::ime::Trigger::SyncCompliance)
        .await
        .unwrap();
    let managed = get(
        &w,
        &format!("/beta/deviceManagement/managedDevices/{device}"),
    )
    .await;
    assert_eq!(managed["complianceState"], "compliant", "{managed}");
    let listed = get(&w, "/beta/deviceManagement/managedDevices").await;
    assert_eq!(listed["value"][0]["complianceState"], "compliant");
    let statuses = get(
        &w,
        &format!("/beta/deviceManagement/deviceCompliancePolicies/{policy}/deviceStatuses"),
    )
    .await;
    assert_eq!(statuses["value"][0]["status"], "compliant", "{statuses}");
    assert_eq!(statuses["value"][0]["deviceDisplayName"], "CMP-02");

    // Without synccompliance, the discovery script runs every 8 hours.
    let log = |w: &World| -> usize {
        let drive = &w.device("CMP-02").unwrap().device().drive;
        agent::cmtrace::read(drive, "AgentExecutor.log")
            .iter()
            .filter(|r| r.message.contains("remediation script option gets invoked"))
            .count()
    };
    let before = log(&w);
    w.advance(Duration::hours(8)).await;
    assert_eq!(log(&w), before + 1, "one run in 8 hours");
}

#[tokio::test]
async fn rules_are_checked_and_a_discovery_script_in_use_stays() {
    let w = World::start(WorldOptions::default()).await.unwrap();
    let policy = testbed::workload::custom_compliance(&w, "Firewall baseline", DISCOVERY, rules())
        .await
        .unwrap();
    let body = get(
        &w,
        &format!("/beta/deviceManagement/deviceCompliancePolicies/{policy}"),
    )
    .await;
    let script = body["deviceCompliancePolicyScript"]["deviceComplianceScriptId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, answer) = w
        .admin(
            "DELETE",
            &format!("/beta/deviceManagement/deviceComplianceScripts/{script}"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&policy));

    let bad = base64::engine::general_purpose::STANDARD.encode(
        json!({ "Rules": [{ "SettingName": "Firewall", "Operator": "Contains", "DataType": "String", "Operand": "x",
            "RemediationStrings": [{ "Language": "en_US", "Title": "t", "Description": "d" }] }] })
        .to_string(),
    );
    let (status, answer) = w
        .admin(
            "POST",
            "/beta/deviceManagement/deviceCompliancePolicies",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
                "displayName": "Bad rules",
                "deviceCompliancePolicyScript": { "deviceComplianceScriptId": script, "rulesContent": bad },
            })),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Contains"));

    // Once the policy goes, so may the script.
    let (status, _) = w
        .admin(
            "DELETE",
            &format!("/beta/deviceManagement/deviceCompliancePolicies/{policy}"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = w
        .admin(
            "DELETE",
            &format!("/beta/deviceManagement/deviceComplianceScripts/{script}"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 204);
}
