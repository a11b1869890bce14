//! Work to give devices through the admin API, as an administrator would: a Win32 app
//! (a simulated MSI with an exit-code plan, packed on the fly), required on all devices
//! or left for the caller to assign, and a platform script assigned to all devices.
//! Used by `demo`, `fleet` and tests.

use base64::Engine;
use serde_json::json;

use crate::world::{AdminBody, World, WorldError};

fn all_devices() -> serde_json::Value {
    json!({ "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" })
}

fn failed(what: &str, status: u16, body: &serde_json::Value) -> WorldError {
    WorldError::Io(std::io::Error::other(format!(
        "{what}: HTTP {status} {body}"
    )))
}

/// Creates, uploads and assigns (required, all devices) an app; returns its id.
pub async fn required_app(
    world: &World,
    name: &str,
    product_code: &str,
    exit_codes: Vec<u32>,
) -> Result<String, WorldError> {
    let id = app(world, name, product_code, exit_codes).await?;
    let (status, body) = world
        .admin(
            "POST",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/assign"),
            AdminBody::Json(json!({ "mobileAppAssignments": [{ "intent": "required", "target": all_devices() }] })),
        )
        .await;
    if status != 204 {
        return Err(failed("assigning the app", status, &body));
    }
    Ok(id)
}

/// Creates an app (a simulated MSI with this exit-code plan, detected by its product
/// code) and uploads its content, unassigned; returns its id.
pub async fn app(
    world: &World,
    name: &str,
    product_code: &str,
    exit_codes: Vec<u32>,
) -> Result<String, WorldError> {
    let mut msi = syncml::sim_msi::SimulatedMsi::new(product_code, name, "1.0.0", "Contoso");
    msi.exit_codes = exit_codes;
    let keys = syncml::intunewin::Keys {
        encryption_key: [1; 32],
        mac_key: [2; 32],
        iv: [3; 16],
    };
    let content = syncml::intunewin::pack(
        &[("setup.msi".into(), msi.to_bytes())],
        "setup.msi",
        &keys,
        None,
    )
    .map_err(|e| std::io::Error::other(format!("packing {name}: {e}")))?;
    let (status, app) = world
        .admin(
            "POST",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.win32LobApp",
                "displayName": name,
                "publisher": "Contoso",
                "installCommandLine": "msiexec /i setup.msi /qn",
                "uninstallCommandLine": format!("msiexec /x {product_code} /qn"),
                "rules": [{ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": product_code }],
            })),
        )
        .await;
    let Some(id) = app["id"].as_str().map(str::to_owned) else {
        return Err(failed("creating the app", status, &app));
    };
    let (status, body) = world
        .admin(
            "PUT",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/content"),
            AdminBody::Bytes(content),
        )
        .await;
    if status != 200 {
        return Err(failed("uploading the app's content", status, &body));
    }
    Ok(id)
}

/// Creates and assigns (all devices) a platform script; returns its id.
pub async fn script(world: &World, name: &str, text: &str) -> Result<String, WorldError> {
    script_with(world, name, text, false).await
}

/// Creates and assigns (all devices) a platform script, with or without signature
/// enforcement; returns its id.
pub async fn script_with(
    world: &World,
    name: &str,
    text: &str,
    enforce_signature: bool,
) -> Result<String, WorldError> {
    let content = base64::engine::general_purpose::STANDARD.encode(text);
    let (status, created) = world
        .admin(
            "POST",
            "/beta/deviceManagement/deviceManagementScripts",
            AdminBody::Json(json!({
                "displayName": name,
                "scriptContent": content,
                "runAsAccount": "system",
                "enforceSignatureCheck": enforce_signature,
                "fileName": "script.ps1",
            })),
        )
        .await;
    let Some(id) = created["id"].as_str().map(str::to_owned) else {
        return Err(failed("creating the script", status, &created));
    };
    let (status, body) = world
        .admin(
            "POST",
            &format!("/beta/deviceManagement/deviceManagementScripts/{id}/assign"),
            AdminBody::Json(
                json!({ "deviceManagementScriptAssignments": [{ "target": all_devices() }] }),
            ),
        )
        .await;
    if status != 204 {
        return Err(failed("assigning the script", status, &body));
    }
    Ok(id)
}

/// Creates and assigns (all devices, remediation on) a remediation with a Graph
/// `runSchedule`; returns its id.
pub async fn remediation(
    world: &World,
    name: &str,
    detection: &str,
    remediation: &str,
    run_schedule: serde_json::Value,
) -> Result<String, WorldError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (status, created) = world
        .admin(
            "POST",
            "/beta/deviceManagement/deviceHealthScripts",
            AdminBody::Json(json!({
                "displayName": name,
                "publisher": "Contoso IT",
                "detectionScriptContent": b64.encode(detection),
                "remediationScriptContent": b64.encode(remediation),
                "runAsAccount": "system",
            })),
        )
        .await;
    let Some(id) = created["id"].as_str().map(str::to_owned) else {
        return Err(failed("creating the remediation", status, &created));
    };
    let (status, body) = world
        .admin(
            "POST",
            &format!("/beta/deviceManagement/deviceHealthScripts/{id}/assign"),
            AdminBody::Json(json!({ "deviceHealthScriptAssignments": [{
                "target": all_devices(),
                "runRemediationScript": true,
                "runSchedule": run_schedule,
            }] })),
        )
        .await;
    if status != 204 {
        return Err(failed("assigning the remediation", status, &body));
    }
    Ok(id)
}

/// Makes a device trust a script publisher: the RootCATrustedCertificates Add that
/// `tenantless sign` prints, queued for the device's next session.
pub async fn trust_publisher(
    world: &mut World,
    device: &str,
    publisher: &agent::ime::signature::Publisher,
) -> Result<i64, WorldError> {
    let spec: server::admin::CommandSpec =
        serde_json::from_value(crate::sign::trust_command(publisher)).map_err(|e| {
            WorldError::Io(std::io::Error::other(format!("the trust command: {e}")))
        })?;
    let command = spec
        .to_command()
        .map_err(|e| WorldError::Io(std::io::Error::other(e)))?;
    world.queue(device, &command).await
}
