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
    let (status, body) = assign(
        world,
        &id,
        json!([{ "intent": "required", "target": all_devices() }]),
    )
    .await;
    if status != 204 {
        return Err(failed("assigning the app", status, &body));
    }
    Ok(id)
}

/// Graph's `assign` for an app: replaces its assignments with `assignments` (a JSON
/// array of mobileAppAssignment). Returns the status and body as the API answered.
pub async fn assign(
    world: &World,
    id: &str,
    assignments: serde_json::Value,
) -> (u16, serde_json::Value) {
    world
        .admin(
            "POST",
            &format!("/beta/deviceAppManagement/mobileApps/{id}/assign"),
            AdminBody::Json(json!({ "mobileAppAssignments": assignments })),
        )
        .await
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
                "fileName": format!("{name}.intunewin"),
                "setupFilePath": "setup.msi",
                "installCommandLine": "msiexec /i setup.msi /qn",
                "uninstallCommandLine": format!("msiexec /x {product_code} /qn"),
                "rules": [{ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": product_code }],
            })),
        )
        .await;
    let Some(id) = app["id"].as_str().map(str::to_owned) else {
        return Err(failed("creating the app", status, &app));
    };
    upload_content(world, &id, &content).await?;
    Ok(id)
}

/// The most bytes one block put to an upload URI carries (what packaging tools use).
const BLOCK: usize = 6 << 20;

/// Uploads a `.intunewin` to an app Graph's way, as packaging tools do: a content
/// version, a file declared in it, the encrypted file put to its upload URI in blocks
/// and a block list, `commit` with Detection.xml's encryption info, then
/// `committedContentVersion`.
pub async fn upload_content(world: &World, id: &str, package: &[u8]) -> Result<(), WorldError> {
    let opened = syncml::intunewin::open(package)
        .map_err(|e| std::io::Error::other(format!("reading the package: {e}")))?;
    let app = format!("/beta/deviceAppManagement/mobileApps/{id}/microsoft.graph.win32LobApp");
    let call = |method: &'static str, path: String, body: AdminBody| async move {
        world.admin(method, &path, body).await
    };
    let (status, version) = call(
        "POST",
        format!("{app}/contentVersions"),
        AdminBody::Json(json!({})),
    )
    .await;
    let Some(version) = version["id"].as_str().map(str::to_owned) else {
        return Err(failed("adding a content version", status, &version));
    };
    let files = format!("{app}/contentVersions/{version}/files");
    let d = &opened.detection;
    let declared = json!({
        "@odata.type": "#microsoft.graph.mobileAppContentFile",
        "name": d.file_name, "size": d.unencrypted_content_size,
        "sizeEncrypted": opened.encrypted.len(), "isDependency": false,
    });
    let (status, file) = call("POST", files.clone(), AdminBody::Json(declared)).await;
    let Some(file_id) = file["id"].as_str().map(str::to_owned) else {
        return Err(failed("declaring the content file", status, &file));
    };
    let file_path = format!("{files}/{file_id}");
    // The service hands out the upload URI once asked again.
    let (status, file) = call("GET", file_path.clone(), AdminBody::None).await;
    let Some(uri) = file["azureStorageUri"].as_str().and_then(path_and_query) else {
        return Err(failed("getting the upload URI", status, &file));
    };
    let mut list = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for (i, block) in opened.encrypted.chunks(BLOCK).enumerate() {
        let block_id = base64::engine::general_purpose::STANDARD.encode(format!("block-{i:06}"));
        let encoded: String = form_urlencoded::byte_serialize(block_id.as_bytes()).collect();
        let put = format!("{uri}&comp=block&blockid={encoded}");
        let (status, body) = call("PUT", put, AdminBody::Bytes(block.to_vec())).await;
        if status != 201 {
            return Err(failed("putting a block", status, &body));
        }
        list.push_str(&format!("<Latest>{block_id}</Latest>"));
    }
    list.push_str("</BlockList>");
    let put = format!("{uri}&comp=blocklist");
    let (status, body) = call("PUT", put, AdminBody::Bytes(list.into_bytes())).await;
    if status != 201 {
        return Err(failed("putting the block list", status, &body));
    }
    let e = &d.encryption;
    let info = json!({ "fileEncryptionInfo": {
        "encryptionKey": e.encryption_key, "macKey": e.mac_key,
        "initializationVector": e.initialization_vector, "mac": e.mac,
        "profileIdentifier": e.profile_identifier, "fileDigest": e.file_digest,
        "fileDigestAlgorithm": e.file_digest_algorithm,
    }});
    let (status, body) = call("POST", format!("{file_path}/commit"), AdminBody::Json(info)).await;
    if status != 204 {
        return Err(failed("committing the content file", status, &body));
    }
    let (status, file) = call("GET", file_path, AdminBody::None).await;
    if file["uploadState"] != "commitFileSuccess" {
        return Err(failed("the commit", status, &file));
    }
    let patch = json!({
        "@odata.type": "#microsoft.graph.win32LobApp",
        "committedContentVersion": version,
    });
    let path = format!("/beta/deviceAppManagement/mobileApps/{id}");
    let (status, body) = call("PATCH", path, AdminBody::Json(patch)).await;
    if status != 204 && status != 200 {
        return Err(failed("committing the content version", status, &body));
    }
    Ok(())
}

/// An absolute URI's path and query (the world's admin calls add the server's address).
fn path_and_query(uri: &str) -> Option<String> {
    let after_scheme = uri.split_once("://")?.1;
    let at = after_scheme.find('/')?;
    Some(after_scheme[at..].to_owned())
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

/// Custom compliance: a discovery script, and a Windows compliance policy that names it
/// with `rules` (the rules JSON's `Rules` array), assigned to every device. Returns the
/// policy's id.
pub async fn custom_compliance(
    world: &World,
    name: &str,
    discovery: &str,
    rules: serde_json::Value,
) -> Result<String, WorldError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (status, script) = world
        .admin(
            "POST",
            "/beta/deviceManagement/deviceComplianceScripts",
            AdminBody::Json(json!({
                "displayName": format!("{name} discovery"),
                "publisher": "Contoso IT",
                "detectionScriptContent": b64.encode(discovery),
                "runAsAccount": "system",
            })),
        )
        .await;
    let Some(script_id) = script["id"].as_str().map(str::to_owned) else {
        return Err(failed("creating the discovery script", status, &script));
    };
    let rules_content = b64.encode(json!({ "Rules": rules }).to_string());
    let (status, policy) = world
        .admin(
            "POST",
            "/beta/deviceManagement/deviceCompliancePolicies",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
                "displayName": name,
                "deviceCompliancePolicyScript": {
                    "deviceComplianceScriptId": script_id,
                    "rulesContent": rules_content,
                },
            })),
        )
        .await;
    let Some(id) = policy["id"].as_str().map(str::to_owned) else {
        return Err(failed("creating the compliance policy", status, &policy));
    };
    let (status, body) = world
        .admin(
            "POST",
            &format!("/beta/deviceManagement/deviceCompliancePolicies/{id}/assign"),
            AdminBody::Json(json!({ "assignments": [{ "target": all_devices() }] })),
        )
        .await;
    if status != 200 {
        return Err(failed("assigning the compliance policy", status, &body));
    }
    Ok(id)
}

/// An Enrollment Status Page profile for every device: it waits `timeout_minutes` for
/// the `blocking` apps (ids). Returns its id.
pub async fn enrollment_status_page(
    world: &World,
    timeout_minutes: i64,
    blocking: &[String],
) -> Result<String, WorldError> {
    let (status, profile) = world
        .admin(
            "POST",
            "/beta/deviceManagement/deviceEnrollmentConfigurations",
            AdminBody::Json(json!({
                "@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
                "displayName": "Autopilot ESP",
                "showInstallationProgress": true,
                "installProgressTimeoutInMinutes": timeout_minutes,
                "allowDeviceUseOnInstallFailure": false,
                "selectedMobileAppIds": blocking,
            })),
        )
        .await;
    let Some(id) = profile["id"].as_str().map(str::to_owned) else {
        return Err(failed("creating the ESP profile", status, &profile));
    };
    let (status, body) = world
        .admin(
            "POST",
            &format!("/beta/deviceManagement/deviceEnrollmentConfigurations/{id}/assign"),
            AdminBody::Json(
                json!({ "enrollmentConfigurationAssignments": [{ "target": all_devices() }] }),
            ),
        )
        .await;
    if status != 204 {
        return Err(failed("assigning the ESP profile", status, &body));
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
