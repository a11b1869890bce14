//! Win32 apps on the server: Graph-shaped admin API, content, assignment, and the IME's
//! gateway, driven by a client written in the test.

mod common;

use common::*;
use serde_json::{json, Value};

const DEVICE: &str = "5A5A5A5A-1111-4222-8333-944444444444";

fn keys() -> syncml::intunewin::Keys {
    syncml::intunewin::Keys {
        encryption_key: [7; 32],
        mac_key: [8; 32],
        iv: [9; 16],
    }
}

async fn gateway(client: &reqwest::Client, url: &str, request: &str, payload: Value) -> Value {
    let envelope = json!({
        "Key": "key",
        "SessionId": "4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c",
        "RequestContentType": request,
        "RequestPayload": payload.to_string(),
        "ResponseContentType": null,
        "ClientInfo": json!({ "DeviceName": "LAB-01", "OperatingSystemVersion": "10.0.22631", "SideCarAgentVersion": "1.93.102.0" }).to_string(),
        "ResponsePayload": null,
        "CheckinIntervalMinutes": 60,
        "CheckinReason": "AgentRestart",
        "EnabledFlights": null,
    });
    let r = client
        .put(format!(
            "{url}/SideCarGatewaySessions('4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c')?api-version=1.5"
        ))
        .header("Prefer", "return-content")
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

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
