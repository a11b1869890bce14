//! Win32 apps on the server: Graph-shaped admin API, content, assignment, and the IME's
//! gateway, driven by a client written in the test.

use crate::common;

use common::*;
use serde_json::{json, Value};

const DEVICE: &str = "5A5A5A5A-1111-4222-8333-944444444444";

#[tokio::test]
async fn an_app_travels_from_the_admin_api_through_the_gateway_and_reports_back() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let admin = admin(&server);

    let (status, app) = admin
        .post(
            "/beta/deviceAppManagement/mobileApps",
            json!({
                "@odata.type": "#microsoft.graph.win32LobApp",
                "displayName": "Contoso Widget",
                "publisher": "Contoso",
                "installCommandLine": "msiexec /i widget.msi /qn",
                "uninstallCommandLine": "msiexec /x {11111111-2222-3333-4444-555555555555} /qn",
                "applicableArchitectures": "x64",
                "rules": [{ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": "{11111111-2222-3333-4444-555555555555}", "productVersionOperator": "notConfigured" }],
                "installExperience": { "runAsAccount": "system", "deviceRestartBehavior": "basedOnReturnCode", "maxRunTimeInMinutes": 60 },
            }),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let id = app["id"].as_str().unwrap().to_owned();
    let (status, _) = admin
        .post(
            "/beta/deviceAppManagement/mobileApps",
            json!({ "@odata.type": "#microsoft.graph.webApp" }),
        )
        .await;
    assert_eq!(status, 400);

    let msi = syncml::sim_msi::SimulatedMsi::new(
        "{11111111-2222-3333-4444-555555555555}",
        "Contoso Widget",
        "1.2.0",
        "Contoso",
    );
    let package = syncml::intunewin::pack(
        &[("widget.msi".into(), msi.to_bytes())],
        "widget.msi",
        &keys(),
        None,
    )
    .unwrap();
    let r = admin
        .http
        .put(format!(
            "{}/beta/deviceAppManagement/mobileApps/{id}/content",
            admin.base
        ))
        .bearer_auth(TOKEN)
        .body(package.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let bad = admin
        .http
        .put(format!(
            "{}/beta/deviceAppManagement/mobileApps/{id}/content",
            admin.base
        ))
        .bearer_auth(TOKEN)
        .body("not a package")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    let assign = admin
        .http
        .post(format!("{}/beta/deviceAppManagement/mobileApps/{id}/assign", admin.base))
        .bearer_auth(TOKEN)
        .json(&json!({ "mobileAppAssignments": [{ "intent": "required", "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(assign.status().as_u16(), 204);
    let (_, device) = admin
        .get(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_eq!(
        device["@tenantless.details"]["imeState"], "queued",
        "targeting a device with a Win32 app brings the IME"
    );

    // The IME finds its gateway with the device certificate...
    let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let anonymous = https(server.ca_pem(), None);
    let discovery = format!(
        "{}/RestUserAuthLocationService/RestUserAuthLocationService/Certificate/ServiceAddresses",
        server.base_url
    );
    assert_eq!(
        anonymous
            .get(&discovery)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let addresses: Value = client
        .get(&discovery)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let service = addresses[0]["Services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ServiceName"] == "SideCarGatewayService")
        .unwrap();
    let url = service["Url"].as_str().unwrap().to_owned();

    // ...asks for its required apps (a compressed list of policies)...
    let reply = gateway(&client, &url, "RequestApplication", json!([])).await;
    let policies: Value = serde_json::from_str(
        &server::apps::policy::decompress(reply["ResponsePayload"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let policy = &policies[0];
    assert_eq!(policy["Id"], id.as_str());
    assert_eq!(policy["Intent"], 3);
    assert_eq!(policy["SetUpFilePath"], "widget.msi");
    assert!(
        policy["DetectionRule"].is_string(),
        "nested JSON is a string, as the IME has it"
    );
    assert_eq!(
        reply["CheckinReason"], "AgentRestart",
        "the envelope comes back"
    );
    assert_eq!(reply["CheckinIntervalMinutes"], 60);
    assert_eq!(reply["SessionId"], "4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c");
    assert!(reply["ClientInfo"]
        .as_str()
        .is_some_and(|info| info.contains("LAB-01")));
    assert_eq!(reply["ResponseContentType"], "application/json");

    // ...gets the content's location and keys, downloads and decrypts it...
    let reply = gateway(
        &client,
        &url,
        "GetContentInfo",
        json!({ "ApplicationId": id, "ApplicationVersion": policy["Version"] }),
    )
    .await;
    let info: Value = serde_json::from_str(reply["ResponsePayload"].as_str().unwrap()).unwrap();
    let content: Value = serde_json::from_str(info["ContentInfo"].as_str().unwrap()).unwrap();
    let decrypt: Value = serde_json::from_str(info["DecryptInfo"].as_str().unwrap()).unwrap();
    let encrypted = client
        .get(content["UploadLocation"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let info = syncml::intunewin::EncryptionInfo {
        encryption_key: decrypt["EncryptionKey"].as_str().unwrap().into(),
        mac_key: decrypt["MacKey"].as_str().unwrap().into(),
        initialization_vector: decrypt["IV"].as_str().unwrap().into(),
        mac: decrypt["Mac"].as_str().unwrap().into(),
        profile_identifier: decrypt["ProfileIdentifier"].as_str().unwrap().into(),
        file_digest: decrypt["FileDigest"].as_str().unwrap().into(),
        file_digest_algorithm: decrypt["FileDigestAlgorithm"].as_str().unwrap().into(),
    };
    let inner = syncml::intunewin::decrypt(&encrypted, &info).unwrap();
    assert_eq!(
        syncml::intunewin::extract(&inner).unwrap()[0].1,
        msi.to_bytes()
    );

    // ...and reports: the admin API and the journal show it.
    let report = |compliance: i64, enforcement: i64, code: i64| {
        json!([{
            "ApplicationId": id, "Version": policy["Version"], "Intent": 3, "ErrorCode": code,
            "ComplianceStateMessage": { "Applicability": 0, "ComplianceState": compliance, "DesiredState": 2, "ErrorCode": code, "TargetingMethod": 0, "InstallContext": 2, "TargetType": 2, "ProductVersion": null, "AssignmentFilterIds": null },
            "EnforcementStateMessage": { "EnforcementState": enforcement, "ErrorCode": code, "TargetingMethod": 0 },
        }])
    };
    gateway(&client, &url, "Win32AppResult", report(2, 2000, 0)).await;
    gateway(&client, &url, "Win32AppResult", report(2, 2000, 0)).await;
    gateway(&client, &url, "Win32AppResult", report(1, 1000, 0)).await;
    let (_, statuses) = admin
        .get(&format!(
            "/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses"
        ))
        .await;
    assert_eq!(statuses["value"][0]["installState"], "installed");
    assert_eq!(statuses["value"][0]["deviceId"], DEVICE);
    assert_eq!(admin.events(DEVICE, "app_report").await.len(), 3);
    let changes = admin.events(DEVICE, "app_state_changed").await;
    assert_eq!(
        changes.len(),
        2,
        "a report that changes nothing is not a change"
    );
    assert_eq!(changes[1]["payload"]["oldCompliance"], 2);
    assert_eq!(changes[1]["payload"]["newCompliance"], 1);
    assert_eq!(changes[1]["payload"]["appId"], id.as_str());

    // A report sent again with its ReportId (the device missed the acknowledgement) is
    // recorded once.
    let mut again = report(1, 1000, 0);
    again[0]["ReportId"] = json!("5f0c2b7e9a1d4c3b8e6f0a2d4c6e8b10");
    gateway(&client, &url, "Win32AppResult", again.clone()).await;
    gateway(&client, &url, "Win32AppResult", again).await;
    assert_eq!(admin.events(DEVICE, "app_report").await.len(), 4);

    // Content and keys are for the devices the app is given to, known by certificate.
    let location = content["UploadLocation"].as_str().unwrap();
    let r = anonymous.get(location).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (unassigned, _) = admin
        .post(
            &format!("/beta/deviceAppManagement/mobileApps/{id}/assign"),
            json!({ "mobileAppAssignments": [] }),
        )
        .await;
    assert_eq!(unassigned, 204);
    assert_eq!(
        client.get(location).send().await.unwrap().status().as_u16(),
        404
    );
    let envelope = json!({
        "Key": "key", "SessionId": "4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c",
        "RequestContentType": "GetContentInfo",
        "RequestPayload": json!({ "ApplicationId": id }).to_string(),
    });
    let r = client
        .put(format!(
            "{url}/SideCarGatewaySessions('4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c')?api-version=1.5"
        ))
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "no keys for an app not given");
    server.stop().await;
}

#[tokio::test]
async fn a_gateway_envelope_that_is_not_an_object_is_refused_and_the_server_goes_on() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let url = format!(
        "{}/SideCar/StatelessSideCarGatewayService/SideCarGatewaySessions('4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c')?api-version=1.5",
        server.base_url
    );
    for body in [
        "[1, 2]",
        "\"RequestApplication\"",
        "{\"RequestContentType\": ",
        "null",
    ] {
        let r = client.put(&url).body(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let problem: Value = r.json().await.unwrap();
        assert!(
            problem["error"]["message"]
                .as_str()
                .is_some_and(|d| d.starts_with("envelope")),
            "{problem}"
        );
    }
    // Fields of the wrong type are read as absent; the call is still answered.
    let r = client
        .put(&url)
        .body(r#"{"RequestContentType": 7, "ResponseContentType": "text/plain"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let reply: Value = r.json().await.unwrap();
    assert_eq!(reply["ResponsePayload"], "[]");
    assert_eq!(reply["ResponseContentType"], "text/plain");
    assert_eq!(reply["RequestContentType"], 7);
    server.stop().await;
}

#[tokio::test]
async fn reports_about_what_is_not_assigned_are_ignored() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let url = format!("{}/SideCar/StatelessSideCarGatewayService", server.base_url);
    let stranger = "0E0E0E0E-0000-4000-8000-000000000000";
    gateway(
        &client,
        &url,
        "Win32AppResult",
        json!([{ "ApplicationId": stranger, "Version": 1, "Intent": 3, "ErrorCode": 0,
                 "ComplianceStateMessage": { "ComplianceState": 1 },
                 "EnforcementStateMessage": { "EnforcementState": 1000 } }]),
    )
    .await;
    gateway(
        &client,
        &url,
        "PolicyResult",
        json!([{ "PolicyId": stranger, "Result": "Success", "ErrorCode": 0 }]),
    )
    .await;
    gateway(
        &client,
        &url,
        "HealthScriptResult",
        json!([{ "PolicyId": stranger, "RemediationStatus": 2 }]),
    )
    .await;
    let admin = admin(&server);
    for kind in [
        "app_report",
        "app_state_changed",
        "script_result",
        "remediation_result",
    ] {
        assert!(admin.events(DEVICE, kind).await.is_empty(), "{kind}");
    }
    let refused = admin.events(DEVICE, "refused").await;
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(refused.iter().all(|r| r["payload"]["code"] == "403"));
    server.stop().await;
}

fn encryption_json(e: &syncml::intunewin::EncryptionInfo) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.fileEncryptionInfo",
        "encryptionKey": e.encryption_key, "macKey": e.mac_key,
        "initializationVector": e.initialization_vector, "mac": e.mac,
        "profileIdentifier": e.profile_identifier, "fileDigest": e.file_digest,
        "fileDigestAlgorithm": e.file_digest_algorithm,
    })
}

#[tokio::test]
async fn content_uploads_graphs_way_in_blocks_is_checked_at_commit_and_reaches_the_device() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let admin = admin(&server);
    let (_, app) = admin
        .post(
            "/beta/deviceAppManagement/mobileApps",
            json!({
                "@odata.type": "#microsoft.graph.win32LobApp", "displayName": "Contoso Big",
                "fileName": "big.intunewin", "setupFilePath": "setup.msi",
                "installCommandLine": "msiexec /i setup.msi /qn",
            }),
        )
        .await;
    let id = app["id"].as_str().unwrap().to_owned();
    // Over axum's 2 MB default body limit, and several chunks and blocks.
    let (_, detection, encrypted) = big_package(3 << 20);
    let app_path = format!("/beta/deviceAppManagement/mobileApps/{id}/microsoft.graph.win32LobApp");

    let (status, version) = admin
        .post(&format!("{app_path}/contentVersions"), json!({}))
        .await;
    assert_eq!(
        (status, version["id"].as_str()),
        (201, Some("1")),
        "{version}"
    );
    let files = format!("{app_path}/contentVersions/1/files");
    let (status, file) = admin
        .post(
            &files,
            json!({
                "@odata.type": "#microsoft.graph.mobileAppContentFile", "name": "IntunePackage.intunewin",
                "size": detection.unencrypted_content_size, "sizeEncrypted": encrypted.len(),
                "isDependency": false,
            }),
        )
        .await;
    assert_eq!(status, 201, "{file}");
    assert_eq!(file["uploadState"], "azureStorageUriRequestPending");
    assert!(file["azureStorageUri"].is_null());
    let file_path = format!("{files}/{}", file["id"].as_str().unwrap());
    let (_, file) = admin.get(&file_path).await;
    assert_eq!(
        file["uploadState"], "azureStorageUriRequestSuccess",
        "{file}"
    );
    let uri = file["azureStorageUri"].as_str().unwrap().to_owned();

    // The upload URI takes blocks with no bearer token, as Azure Storage's SAS URI does;
    // a URI whose signature was changed is refused in Azure's words.
    let http = reqwest::Client::new();
    let forged = uri.replace("sig=", "sig=A");
    let r = http
        .put(format!("{forged}&comp=block&blockid=QUFBQQ%3D%3D"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.headers()["x-ms-error-code"], "AuthenticationFailed");
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<Code>AuthenticationFailed</Code>"));
    let mut ids = Vec::new();
    for (i, block) in encrypted.chunks(1_500_000).enumerate() {
        let block_id = base64_of(&format!("block-{i:06}"));
        let r = http
            .put(format!("{uri}&comp=block&blockid={}", urlencode(&block_id)))
            .header("x-ms-blob-type", "BlockBlob")
            .body(block.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "block {i}");
        ids.push(block_id);
    }
    assert_eq!(ids.len(), 3);
    let list = |ids: &[String]| {
        let items: String = ids
            .iter()
            .map(|id| format!("<Latest>{id}</Latest>"))
            .collect();
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{items}</BlockList>")
    };
    let r = http
        .put(format!("{uri}&comp=blocklist"))
        .body(list(&[base64_of("never-put")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["x-ms-error-code"], "InvalidBlockList");
    let r = http
        .put(format!("{uri}&comp=blocklist"))
        .body(list(&ids))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    // renewUpload: a new expiry, read back as a renewal.
    let r = admin
        .http
        .post(format!("{}{file_path}/renewUpload", admin.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, renewed) = admin.get(&file_path).await;
    assert_eq!(renewed["uploadState"], "azureStorageUriRenewalSuccess");

    // A commit whose MAC does not match the bytes fails; the right one succeeds.
    let mut wrong = detection.encryption.clone();
    wrong.mac_key = detection.encryption.encryption_key.clone();
    let (status, _) = admin
        .post(
            &format!("{file_path}/commit"),
            json!({ "fileEncryptionInfo": encryption_json(&wrong) }),
        )
        .await;
    assert_eq!(status, 204);
    let (_, failed) = admin.get(&file_path).await;
    assert_eq!(failed["uploadState"], "commitFileFailed");
    let (status, _) = admin
        .post(
            &format!("{file_path}/commit"),
            json!({ "fileEncryptionInfo": encryption_json(&detection.encryption) }),
        )
        .await;
    assert_eq!(status, 204);
    let (_, committed) = admin.get(&file_path).await;
    assert_eq!(committed["uploadState"], "commitFileSuccess");
    assert_eq!(committed["isCommitted"], true);
    let commits = admin.events("", "content_committed").await;
    assert_eq!(commits.len(), 2, "{commits:?}");
    assert!(commits[0]["payload"]["failed"]
        .as_str()
        .unwrap()
        .contains("MAC"));
    assert!(commits[1]["payload"].get("failed").is_none());
    let r = http
        .put(format!("{uri}&comp=block&blockid=QUFBQQ%3D%3D"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        403,
        "a committed file takes no more blocks"
    );

    // committedContentVersion makes it the app's content; a version that does not exist
    // is refused.
    let patch = |version: &str| {
        admin
            .http
            .patch(format!("{}/beta/deviceAppManagement/mobileApps/{id}", admin.base))
            .bearer_auth(TOKEN)
            .json(&json!({ "@odata.type": "#microsoft.graph.win32LobApp", "committedContentVersion": version }))
            .send()
    };
    assert_eq!(patch("7").await.unwrap().status().as_u16(), 400);
    assert_eq!(patch("1").await.unwrap().status().as_u16(), 204);
    let (_, app) = admin
        .get(&format!("/beta/deviceAppManagement/mobileApps/{id}"))
        .await;
    assert_eq!(app["committedContentVersion"], "1");

    // The device downloads exactly the bytes that were put, block by block.
    admin
        .post(
            &format!("/beta/deviceAppManagement/mobileApps/{id}/assign"),
            json!({ "mobileAppAssignments": [{ "intent": "required", "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }] }),
        )
        .await;
    let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let url = format!("{}/SideCar/StatelessSideCarGatewayService", server.base_url);
    let reply = gateway(
        &client,
        &url,
        "GetContentInfo",
        json!({ "ApplicationId": id, "ApplicationVersion": 1 }),
    )
    .await;
    let info: Value = serde_json::from_str(reply["ResponsePayload"].as_str().unwrap()).unwrap();
    let content: Value = serde_json::from_str(info["ContentInfo"].as_str().unwrap()).unwrap();
    assert_eq!(content["EncryptedFileSize"], encrypted.len());
    assert_eq!(content["SetUpFilePath"], "setup.msi");
    let downloaded = client
        .get(content["UploadLocation"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(downloaded.content_length(), Some(encrypted.len() as u64));
    assert!(
        downloaded.bytes().await.unwrap() == encrypted,
        "the device gets the uploaded bytes"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_one_shot_upload_streams_a_package_past_the_default_body_limit_into_a_content_version()
{
    let (server, _dir) = start().await;
    let admin = admin(&server);
    let (_, app) = admin
        .post(
            "/beta/deviceAppManagement/mobileApps",
            json!({ "@odata.type": "#microsoft.graph.win32LobApp", "displayName": "Big", "installCommandLine": "setup.msi" }),
        )
        .await;
    let id = app["id"].as_str().unwrap().to_owned();
    let (package, _, encrypted) = big_package(3 << 20);
    let put = |body: Vec<u8>| {
        admin
            .http
            .put(format!(
                "{}/beta/deviceAppManagement/mobileApps/{id}/content",
                admin.base
            ))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
    };
    let r = put(package.clone()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let read: Value = r.json().await.unwrap();
    assert_eq!(read["size"], encrypted.len());
    assert_eq!(read["contentVersion"], "1");
    let (_, files) = admin
        .get(&format!(
            "/beta/deviceAppManagement/mobileApps/{id}/contentVersions/1/files"
        ))
        .await;
    assert_eq!(
        files["value"][0]["uploadState"], "commitFileSuccess",
        "{files}"
    );
    assert_eq!(files["value"][0]["sizeEncrypted"], encrypted.len());
    let (_, app) = admin
        .get(&format!("/beta/deviceAppManagement/mobileApps/{id}"))
        .await;
    assert_eq!(app["committedContentVersion"], "1");

    // A package whose content was changed after it was sealed is refused.
    let mut changed = encrypted.clone();
    changed[1000] ^= 0xFF;
    let detection = syncml::intunewin::open(&package).unwrap().detection;
    let r = put(repacked(&changed, &detection)).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let error: Value = r.json().await.unwrap();
    assert!(
        error["error"]["message"].as_str().unwrap().contains("MAC"),
        "{error}"
    );
    server.stop().await;
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A `.intunewin` around this encrypted file and Detection.xml, whatever they hold.
fn repacked(encrypted: &[u8], detection: &syncml::intunewin::Detection) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(syncml::intunewin::CONTENT_PATH, stored)
        .unwrap();
    zip.write_all(encrypted).unwrap();
    zip.start_file(syncml::intunewin::DETECTION_PATH, stored)
        .unwrap();
    zip.write_all(detection.to_xml().as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

/// A gateway call made in a user's session names the user; the service notes the
/// logon (Graph's `usersLoggedOn`) and refuses a name that is not a user principal name.
#[tokio::test]
async fn a_user_session_call_names_its_user_and_a_malformed_name_is_refused() {
    let (server, _dir) = start().await;
    let e = enroll(&server, DEVICE).await;
    let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let url = format!("{}{}", server.base_url, server::apps::gateway::GATEWAY_PATH);
    let call = |upn: &str| {
        let envelope = json!({
            "Key": "key",
            "SessionId": "4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c",
            "RequestContentType": "RequestApplication",
            "RequestPayload": "[]",
            "ClientInfo": json!({ "DeviceName": "LAB-01", "SideCarAgentVersion": "1.93.102.0", "UserPrincipalName": upn }).to_string(),
            "CheckinReason": "UserLogOn",
        });
        client
            .put(format!(
                "{url}/SideCarGatewaySessions('4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c')?api-version=1.5"
            ))
            .json(&envelope)
            .send()
    };
    for bad in ["not a user", "@contoso.com", "bob@", "bob@contoso.com\n"] {
        let r = call(bad).await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{bad:?}");
    }
    let r = call("Bob@Contoso.com").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, device) = admin(&server)
        .get(&format!("/beta/deviceManagement/managedDevices/{DEVICE}"))
        .await;
    assert_eq!(
        device["usersLoggedOn"][0]["userId"],
        server::directory::user_object_id("bob@contoso.com"),
        "{device}"
    );
}
