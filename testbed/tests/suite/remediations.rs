//! Remediations end to end on the world clock: detect, remediate, detect clean; an
//! hourly schedule's 24 runs in a virtual day; a run-once, detection-only remediation
//! whose long output is capped. Asserts the registry, HealthScripts.log, the journal and
//! the admin API's run states.

use agent::ime::remediations::{LOG, SCRIPTS_KEY};
use agent::ime::win32::DEVICE_USER;
use base64::Engine;
use chrono::Duration;
use serde_json::{json, Value};
use testbed::{AdminBody, Filter, World, WorldOptions};

/// Detection: compliant when `fixed` exists on the device's C: drive, else an issue
/// (exit 1). Both print what they found.
const DETECT: &str = "#!/bin/sh\nf=\"$TENANTLESS_C_DRIVE/ProgramData/Contoso/fixed\"\nif [ -f \"$f\" ]; then echo compliant; exit 0; fi\necho 'issue: not fixed'\nexit 1\n";
const REMEDIATE: &str = "#!/bin/sh\nmkdir -p \"$TENANTLESS_C_DRIVE/ProgramData/Contoso\"\ntouch \"$TENANTLESS_C_DRIVE/ProgramData/Contoso/fixed\"\necho 'fixed it'\n";
/// Detection that counts its runs in a file and finds nothing wrong.
const COUNTING: &str = "#!/bin/sh\nmkdir -p \"$TENANTLESS_C_DRIVE/ProgramData/Contoso\"\necho run >> \"$TENANTLESS_C_DRIVE/ProgramData/Contoso/runs.txt\"\necho ok\nexit 0\n";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn world() -> World {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.settle().await;
    w
}

async fn add(
    w: &World,
    detect: &str,
    remediate: &str,
    schedule: Value,
    remediation: bool,
) -> String {
    let (status, body) = w
        .admin(
            "POST",
            "/beta/deviceManagement/deviceHealthScripts",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.deviceHealthScript",
                "displayName": "Contoso fix-up",
                "publisher": "Contoso IT",
                "detectionScriptContent": b64(detect),
                "remediationScriptContent": b64(remediate),
                "runAsAccount": "system",
                "enforceSignatureCheck": false,
                "runAs32Bit": false,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = w
        .admin(
            "POST",
            &format!("/beta/deviceManagement/deviceHealthScripts/{id}/assign"),
            AdminBody::Json(json!({ "deviceHealthScriptAssignments": [{
                "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" },
                "runRemediationScript": remediation,
                "runSchedule": schedule,
            }] })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    id
}

fn hourly() -> Value {
    json!({ "@odata.type": "#microsoft.graph.deviceHealthScriptHourlySchedule", "interval": 1 })
}

/// The result JSON the IME keeps for the policy's first version.
fn result(w: &World, id: &str) -> Value {
    let key = format!(r"{SCRIPTS_KEY}\Reports\{DEVICE_USER}\{id}_1");
    w.device("LAB-01")
        .unwrap()
        .device()
        .registry
        .get_text(&key, "Result")
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

async fn run_state(w: &World, id: &str) -> Value {
    let (_, states) = w
        .admin(
            "GET",
            &format!("/beta/deviceManagement/deviceHealthScripts/{id}/deviceRunStates"),
            AdminBody::None,
        )
        .await;
    states["value"][0].clone()
}

async fn results(w: &World, filter: Filter) -> usize {
    w.journal().filter(filter).count().await.unwrap()
}

#[tokio::test]
async fn a_remediation_detects_remediates_and_detects_clean() {
    let mut w = world().await;
    let id = add(&w, DETECT, REMEDIATE, hourly(), true).await;
    w.advance(Duration::minutes(30)).await;

    let r = result(&w, &id);
    assert_eq!(r["RemediationStatus"], 2, "{r}");
    assert_eq!(r["Result"], "Success");
    assert_eq!(r["PreRemediationDetectScriptOutput"], "issue: not fixed");
    assert_eq!(r["RemediationScriptOutputDetails"], "fixed it");
    assert_eq!(r["PostRemediationDetectScriptOutput"], "compliant");
    assert_eq!(
        r["Info"],
        json!({ "FirstDetectExitCode": 1, "RemediationExitCode": 0, "LastDetectExitCode": 0 })
    );
    let execution = format!(r"{SCRIPTS_KEY}\Execution\{DEVICE_USER}\{id}_1");
    let device = w.device("LAB-01").unwrap().device();
    assert!(device.registry.get(&execution, "LastExecution").is_some());
    let log = agent::cmtrace::messages(&device.drive, LOG);
    for line in [
        format!("[HS] Processing policy with id = {id} for user = {DEVICE_USER}"),
        "[HS] detect.ps1 exit code is 1".to_owned(),
        "[HS] remediate.ps1 exit code is 0".to_owned(),
        "[HS] detect.ps1 exit code is 0".to_owned(),
        "[HS] Sending results to service. count = 1".to_owned(),
    ] {
        assert!(log.contains(&line), "{line:?} not in {log:#?}");
    }

    let remediated = Filter::kind("remediation_result")
        .field("policyId", id.as_str())
        .field("detectionState", "fail")
        .field("remediationState", "success");
    assert_eq!(results(&w, remediated).await, 1);
    let state = run_state(&w, &id).await;
    assert_eq!(state["detectionState"], "fail", "{state}");
    assert_eq!(state["remediationState"], "success");
    assert_eq!(
        state["preRemediationDetectionScriptOutput"],
        "issue: not fixed"
    );
    assert_eq!(state["postRemediationDetectionScriptOutput"], "compliant");

    // An hour later detection finds nothing to fix.
    w.advance(Duration::hours(1)).await;
    let r = result(&w, &id);
    assert_eq!(r["RemediationStatus"], 1, "{r}");
    assert_eq!(r["Info"]["RemediationExitCode"], Value::Null);
    let state = run_state(&w, &id).await;
    assert_eq!(
        (
            state["detectionState"].clone(),
            state["remediationState"].clone()
        ),
        (json!("success"), json!("skipped"))
    );
    w.stop().await;
}

#[tokio::test]
async fn an_hourly_remediation_runs_24_times_in_a_virtual_day() {
    let mut w = world().await;
    let id = add(&w, COUNTING, "", hourly(), true).await;
    w.advance(Duration::hours(2)).await;
    let runs = Filter::kind("remediation_result").field("policyId", id.as_str());
    let before = results(&w, runs.clone()).await;
    assert!(before >= 1, "it ran within two hours");
    w.advance(Duration::hours(24)).await;
    assert_eq!(results(&w, runs).await - before, 24);
    let counted = w
        .device("LAB-01")
        .unwrap()
        .device()
        .drive
        .resolve(r"C:\ProgramData\Contoso\runs.txt")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map_or(0, |t| t.lines().count());
    assert_eq!(
        counted,
        before + 24,
        "the detection script itself ran each time"
    );
    assert_eq!(
        run_state(&w, &id).await["@tenantless.details"]["runs"],
        json!(before + 24)
    );
    w.stop().await;
}

#[tokio::test]
async fn a_run_once_detection_only_remediation_runs_once_with_its_output_capped() {
    let mut w = world().await;
    let noisy = "#!/bin/sh\nprintf '%05000d' 0\nexit 1\n";
    let once = json!({ "@odata.type": "#microsoft.graph.deviceHealthScriptRunOnceSchedule", "interval": 1 });
    let id = add(&w, noisy, REMEDIATE, once, false).await;
    w.advance(Duration::days(2)).await;
    let r = result(&w, &id);
    assert_eq!(
        r["RemediationStatus"], 5,
        "issue found, remediation not run: {r}"
    );
    assert_eq!(
        r["PreRemediationDetectScriptOutput"].as_str().map(str::len),
        Some(2048)
    );
    let device = w.device("LAB-01").unwrap().device();
    assert!(
        !device.drive.exists(r"C:\ProgramData\Contoso\fixed"),
        "the remediation script did not run"
    );
    let runs = Filter::kind("remediation_result").field("policyId", id.as_str());
    assert_eq!(results(&w, runs).await, 1, "run once, never again");
    let state = run_state(&w, &id).await;
    assert_eq!(
        (
            state["detectionState"].clone(),
            state["remediationState"].clone()
        ),
        (json!("fail"), json!("skipped"))
    );
    w.stop().await;
}

#[tokio::test]
async fn the_admin_api_refuses_bad_remediations_with_problem_json() {
    let w = world().await;
    let path = "/beta/deviceManagement/deviceHealthScripts";
    let (status, body) = w
        .admin(
            "POST",
            path,
            AdminBody::Json(json!({ "displayName": "No detection" })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("detectionScriptContent"),
        "{body}"
    );
    let (status, _) = w
        .admin(
            "POST",
            path,
            AdminBody::Json(
                json!({ "displayName": "Bad", "detectionScriptContent": "not base64!" }),
            ),
        )
        .await;
    assert_eq!(status, 400);

    let id = add(&w, DETECT, REMEDIATE, hourly(), true).await;
    let (status, body) = w
        .admin(
            "POST",
            &format!("{path}/{id}/assign"),
            AdminBody::Json(json!({ "deviceHealthScriptAssignments": [{
                "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" },
                "runSchedule": { "@odata.type": "#microsoft.graph.deviceHealthScriptWeeklySchedule" },
            }] })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = w
        .admin(
            "GET",
            &format!("{path}/00000000-0000-0000-0000-000000000000/deviceRunStates"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, listed) = w.admin("GET", path, AdminBody::None).await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["value"][0]["@odata.type"],
        "#microsoft.graph.deviceHealthScript"
    );
    w.stop().await;
}
