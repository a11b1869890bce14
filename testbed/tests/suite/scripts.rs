//! Platform scripts end to end on the world clock: the registry, AgentExecutor.log and
//! the journal for a script that runs once, a changed script, a failing script's three
//! retries, and signature enforcement.

use agent::ime::scripts::{EXECUTOR_LOG, POLICIES_KEY};
use agent::ime::signature::{Publisher, TRUSTED_PUBLISHER_KEY};
use agent::ime::win32::DEVICE_USER;
use base64::Engine;
use chrono::Duration;
use serde_json::{json, Value};
use testbed::{AdminBody, Expectation, Filter, World, WorldOptions};

const MARKER: &str = r"C:\ProgramData\Contoso\ran.txt";

/// A script (a shell script to this machine, PowerShell to Windows: the shebang is a
/// comment there) that appends a line to MARKER and exits with `code`.
fn script(tag: &str, code: i32) -> String {
    format!(
        "#!/bin/sh\n# {tag}\nmkdir -p \"$TENANTLESS_C_DRIVE/ProgramData/Contoso\"\necho {tag} >> \"$TENANTLESS_C_DRIVE/ProgramData/Contoso/ran.txt\"\necho \"ran {tag}\"\nexit {code}\n"
    )
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn world() -> World {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.settle().await;
    w
}

async fn add_script(w: &World, text: &str, enforce: bool) -> String {
    add_script_saying(w, text, Some(enforce)).await.0
}

/// Creates and assigns a script that says `enforceSignatureCheck` or not; returns its id
/// and its entity as created.
async fn add_script_saying(w: &World, text: &str, enforce: Option<bool>) -> (String, Value) {
    let mut script = json!({
        "@odata.type": "#microsoft.graph.deviceManagementScript",
        "displayName": "Contoso baseline",
        "scriptContent": b64(text),
        "runAsAccount": "system",
        "runAs32Bit": false,
        "fileName": "baseline.ps1",
    });
    if let Some(enforce) = enforce {
        script["enforceSignatureCheck"] = json!(enforce);
    }
    let (status, created) = w
        .admin(
            "POST",
            "/beta/deviceManagement/deviceManagementScripts",
            AdminBody::Json(script),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, body) = w
        .admin(
            "POST",
            &format!("/beta/deviceManagement/deviceManagementScripts/{id}/assign"),
            AdminBody::Json(json!({ "deviceManagementScriptAssignments": [
                { "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }
            ] })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    (id, created)
}

/// The lines the script has written: one per run.
fn runs(w: &World) -> Vec<String> {
    let drive = &w.device("LAB-01").unwrap().device().drive;
    drive
        .resolve(MARKER)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The ExecutionMsg of a script's result.
fn message(w: &World, id: &str) -> String {
    let details: Value =
        serde_json::from_str(&result_value(w, id, "ResultDetails").unwrap_or_default())
            .unwrap_or_default();
    details["ExecutionMsg"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn result_value(w: &World, id: &str, name: &str) -> Option<String> {
    w.device("LAB-01")
        .unwrap()
        .device()
        .registry
        .get(&format!(r"{POLICIES_KEY}\{DEVICE_USER}\{id}"), name)
        .map(|v| v.to_text())
}

async fn results(w: &World, id: &str) -> usize {
    w.journal()
        .filter(Filter::kind("script_result").field("policyId", id))
        .count()
        .await
        .unwrap()
}

async fn run_state(w: &World, id: &str) -> Value {
    let (_, states) = w
        .admin(
            "GET",
            &format!("/beta/deviceManagement/deviceManagementScripts/{id}/deviceRunStates"),
            AdminBody::None,
        )
        .await;
    states["value"][0].clone()
}

#[tokio::test]
async fn a_script_runs_once_and_again_only_when_it_changes() {
    let mut w = world().await;
    let id = add_script(&w, &script("v1", 0), false).await;
    w.advance(Duration::hours(1)).await;
    assert_eq!(runs(&w), ["v1"]);
    assert_eq!(result_value(&w, &id, "Result").as_deref(), Some("Success"));
    assert_eq!(result_value(&w, &id, "DownloadCount").as_deref(), Some("1"));
    let details: Value =
        serde_json::from_str(&result_value(&w, &id, "ResultDetails").unwrap()).unwrap();
    assert_eq!(details["Output"], "ran v1");
    let log = agent::cmtrace::messages(&w.device("LAB-01").unwrap().device().drive, EXECUTOR_LOG);
    assert!(
        log.iter().any(|m| m == "Powershell exit code is 0"),
        "{log:?}"
    );
    assert!(
        !w.device("LAB-01").unwrap().device().drive.exists(&format!(
            r"{}\{DEVICE_USER}_{id}.ps1",
            agent::ime::scripts::SCRIPTS_DIR
        )),
        "the script file is removed after it runs"
    );

    // Hourly check-ins for a day: it does not run again.
    w.advance(Duration::hours(24)).await;
    assert_eq!(runs(&w), ["v1"]);
    assert_eq!(results(&w, &id).await, 1);
    assert_eq!(run_state(&w, &id).await["runState"], "success");

    // A changed script runs at the next check-in, once.
    let (status, _) = w
        .admin(
            "PATCH",
            &format!("/beta/deviceManagement/deviceManagementScripts/{id}"),
            AdminBody::Json(json!({ "scriptContent": b64(&script("v2", 0)) })),
        )
        .await;
    assert_eq!(status, 204, "PATCH answers 204, as Graph's does");
    w.advance(Duration::hours(5)).await;
    assert_eq!(runs(&w), ["v1", "v2"]);
    assert_eq!(result_value(&w, &id, "DownloadCount").as_deref(), Some("2"));
    assert_eq!(results(&w, &id).await, 2);
    w.stop().await;
}

#[tokio::test]
async fn a_failing_script_is_retried_at_the_next_three_check_ins_then_never() {
    let mut w = world().await;
    let id = add_script(&w, &script("fails", 1), false).await;
    w.advance(Duration::hours(24)).await;
    assert_eq!(runs(&w).len(), 4, "the first run and three retries");
    assert_eq!(result_value(&w, &id, "Result").as_deref(), Some("Failed"));
    assert_eq!(result_value(&w, &id, "ErrorCode").as_deref(), Some("1"));
    let failed = Filter::kind("script_result")
        .field("policyId", id.as_str())
        .field("result", "Failed");
    assert!(
        w.journal()
            .filter(failed)
            .verify(Expectation::Exactly(4))
            .await
            .unwrap()
            .ok
    );
    let state = run_state(&w, &id).await;
    assert_eq!(
        (state["runState"].clone(), state["errorCode"].clone()),
        (json!("fail"), json!(1))
    );
    w.stop().await;
}

#[tokio::test]
async fn under_signature_enforcement_only_scripts_signed_by_a_trusted_publisher_run() {
    let mut w = world().await;
    let unsigned = add_script(&w, &script("unsigned", 0), true).await;
    w.advance(Duration::hours(1)).await;
    assert!(runs(&w).is_empty(), "refused without running");
    assert_eq!(
        result_value(&w, &unsigned, "Result").as_deref(),
        Some("Failed")
    );
    let details: Value =
        serde_json::from_str(&result_value(&w, &unsigned, "ResultDetails").unwrap()).unwrap();
    assert!(
        details["ExecutionMsg"]
            .as_str()
            .unwrap()
            .contains("is not digitally signed"),
        "{details}"
    );

    // Signed, but by a publisher the device does not trust yet: refused.
    let publisher = Publisher::create("Contoso Scripts", w.now()).unwrap();
    let signed = publisher.sign(&script("signed", 0)).unwrap();
    let untrusted = add_script(&w, &signed, true).await;
    w.advance(Duration::hours(1)).await;
    assert!(runs(&w).is_empty());
    assert!(
        message(&w, &untrusted)
            .contains("is published by CN=Contoso Scripts. This publisher is not trusted"),
        "{}",
        message(&w, &untrusted)
    );

    // Trusted (the RootCATrustedCertificates Add `tenantless sign` prints): the failed
    // script's retry at the next check-in runs it.
    testbed::workload::trust_publisher(&mut w, "LAB-01", &publisher)
        .await
        .unwrap();
    w.sync("LAB-01").await.unwrap();
    let store = format!(r"{TRUSTED_PUBLISHER_KEY}\{}", publisher.thumbprint());
    assert!(w
        .device("LAB-01")
        .unwrap()
        .device()
        .registry
        .key_exists(&store));
    w.advance(Duration::hours(1)).await;
    assert_eq!(runs(&w), ["signed"]);
    assert_eq!(
        result_value(&w, &untrusted, "Result").as_deref(),
        Some("Success")
    );

    // Changed after signing: refused, with PowerShell's hash mismatch.
    let tampered = add_script(&w, &signed.replace("ran signed", "ran tampered"), true).await;
    w.advance(Duration::hours(1)).await;
    assert_eq!(runs(&w), ["signed"]);
    assert!(
        message(&w, &tampered).contains("does not match the hash stored in the digital signature"),
        "{}",
        message(&w, &tampered)
    );
    w.stop().await;
}

#[tokio::test]
async fn a_new_script_that_does_not_say_is_signature_enforced_as_the_talk_says() {
    let mut w = world().await;
    let (id, created) = add_script_saying(&w, &script("unsigned", 0), None).await;
    assert_eq!(created["enforceSignatureCheck"], true, "{created}");
    w.advance(Duration::hours(1)).await;
    assert!(runs(&w).is_empty(), "refused without running");
    assert!(
        message(&w, &id).contains("is not digitally signed"),
        "{}",
        message(&w, &id)
    );
    // Saying false still turns it off.
    let explicit = add_script(&w, &script("explicit", 0), false).await;
    w.advance(Duration::hours(1)).await;
    assert_eq!(runs(&w), ["explicit"]);
    assert_eq!(
        result_value(&w, &explicit, "Result").as_deref(),
        Some("Success")
    );
    w.stop().await;
}
