//! A real Graph client against the admin API: the official Python SDK
//! (`msgraph-beta-sdk`, pinned in `tests/graph/requirements.txt`) runs
//! `tests/graph/sdk_workflow.py` with only a base URL and a token, over the admin API's
//! HTTPS listener (trusting the server's CA, as a user's machine would).
//!
//! The SDK lives in a virtualenv that `scripts/graph-sdk-env.sh` makes; its python is
//! `TENANTLESS_GRAPH_PYTHON`. Without one the test says so and passes, unless
//! `TENANTLESS_REQUIRE_GRAPH_SDK=1` (which `.ci/run` sets) makes that a failure.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

/// Devices the SDK pages through: more than two of Graph's 1000-item pages.
const DEVICES: usize = 2500;
/// Of them, enrolled through the protocol (the rest are written to the store directly:
/// paging does not care how a device came, and 2,500 enrollments would be slow).
const ENROLLED: usize = 30;
/// The enrolled device the script puts in a group that gets the packaged app.
const PACKAGED_DEVICE: usize = 5;

fn graph_python() -> Option<PathBuf> {
    let python = std::env::var_os("TENANTLESS_GRAPH_PYTHON").map(PathBuf::from);
    let found = python.filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("TENANTLESS_REQUIRE_GRAPH_SDK").as_deref() != Ok("1"),
            "TENANTLESS_REQUIRE_GRAPH_SDK=1 but TENANTLESS_GRAPH_PYTHON names no python \
             (scripts/graph-sdk-env.sh makes one)"
        );
        eprintln!("skipped: no Graph SDK virtualenv (run scripts/graph-sdk-env.sh)");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_graph_sdk_drives_the_admin_api() {
    let Some(python) = graph_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = server::Config::for_tests(dir.path().to_owned());
    config.admin_tls_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = start_with(config).await;
    let ca = dir.path().join("server-ca.pem");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    let mut packaged_device = None;
    for i in 0..DEVICES {
        let id = format!("5E1F0000-0000-4000-8000-{i:012}");
        let name = format!("LAB-{i:04}");
        if i < ENROLLED {
            let enrolled = enroll_named(&server.base_url, server.ca_pem(), &id, &name).await;
            if i == PACKAGED_DEVICE {
                packaged_device = Some(enrolled);
            }
        } else {
            let device = server::storage::Device {
                id,
                device_name: name,
                user_principal_name: format!("user{i}@contoso.com"),
                enrollment_type: "Full".into(),
                os_version: "10.0.22631.2861".into(),
                enrolled_at: "2026-11-24T09:00:00.000Z".into(),
                ..server::storage::Device::default()
            };
            server.state.store.upsert_device(&device).await.unwrap();
        }
    }
    // Throttled on purpose once: the SDK's retry handler must wait as told.
    let (status, body) = admin(&server)
        .put(
            "/tenantless/throttling",
            serde_json::json!({ "rules": [{ "pattern": "/deviceManagement/roleScopeTags", "status": 429, "retryAfter": 1, "limit": 1 }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A package over several upload blocks, for the script to upload as tools do.
    let (package, _, encrypted) = big_package(3 << 20);
    let package_path = dir.path().join("packaged.intunewin");
    std::fs::write(&package_path, package).unwrap();
    let script = Script {
        python: python.clone(),
        base: format!("https://{}/beta", server.admin_tls_addr.unwrap()),
        ca: ca.clone(),
        package: package_path,
    };
    let out = script.run("all").await;
    let stdout = out;
    assert!(
        stdout.contains("ok   the page iterator follows nextLink"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok   the SDK signed in with that credential lists the devices"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok   deleting a discovery script in use is a 409"),
        "custom compliance through the SDK: {stdout}"
    );
    assert!(
        stdout.contains("ok   a winGetApp's install experience reads back"),
        "a Store app through the SDK: {stdout}"
    );
    let (_, retried) = admin(&server)
        .get("/testbed/events?kind=throttle_retry")
        .await;
    let retries = retried["value"].as_array().cloned().unwrap_or_default();
    assert_eq!(retries.len(), 1, "{retried}");
    assert_eq!(
        retries[0]["payload"]["honoured"], true,
        "the SDK waited Retry-After: {retried}"
    );
    packaged_app_reaches_its_device(&server, &packaged_device.unwrap(), &encrypted).await;
    // What the device reported reads back through the SDK.
    let out = script.run("statuses").await;
    assert!(out.contains("ok   deviceStatuses"), "{out}");
    server.stop().await;
}

/// `tests/graph/sdk_workflow.py` and what it is run with.
struct Script {
    python: PathBuf,
    base: String,
    ca: PathBuf,
    package: PathBuf,
}

impl Script {
    /// Runs one phase of the script (`GRAPH_PHASE`), which must succeed: its output.
    async fn run(&self, phase: &str) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/graph/sdk_workflow.py");
        let mut command = std::process::Command::new(&self.python);
        command
            .arg(script)
            .env("GRAPH_PHASE", phase)
            .env("GRAPH_BASE_URL", &self.base)
            .env("GRAPH_TOKEN", TOKEN)
            .env("GRAPH_DEVICES", DEVICES.to_string())
            .env("GRAPH_TENANT", "contoso.onmicrosoft.com")
            .env("GRAPH_CLIENT_ID", server::config::DEFAULT_ADMIN_CLIENT_ID)
            .env("GRAPH_PACKAGE", &self.package)
            .env("REQUESTS_CA_BUNDLE", &self.ca)
            .env("SSL_CERT_FILE", &self.ca);
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("{stdout}");
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// What the script uploaded and assigned reaches LAB-0005's IME: the app is required
/// through its group, and the content it downloads is the bytes the SDK put; then it
/// reports the app installed.
async fn packaged_app_reaches_its_device(
    server: &server::RunningServer,
    device: &Enrolled,
    encrypted: &[u8],
) {
    let client = https(server.ca_pem(), Some((&device.cert_der, &device.key_pkcs8)));
    let url = format!("{}/SideCar/StatelessSideCarGatewayService", server.base_url);
    let reply = gateway(&client, &url, "RequestApplication", serde_json::json!([])).await;
    let policies: serde_json::Value = serde_json::from_str(
        &server::apps::policy::decompress(reply["ResponsePayload"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let policy = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["Name"] == "Contoso Packaged")
        .unwrap_or_else(|| panic!("the group's app is required for LAB-0005: {policies}"));
    assert_eq!(policy["Intent"], 3);
    let (_, downloaded) = fetch_content(&client, &url, &policy["Id"], &policy["Version"]).await;
    assert!(
        downloaded == encrypted,
        "LAB-0005 downloads what the SDK uploaded"
    );
    // It installs, and says so as the IME does.
    let installed = serde_json::json!([{
        "ApplicationId": policy["Id"], "Version": policy["Version"], "Intent": 3, "ErrorCode": 0,
        "ComplianceStateMessage": { "Applicability": 0, "ComplianceState": 1, "DesiredState": 2, "ErrorCode": 0, "TargetingMethod": 0, "InstallContext": 2, "TargetType": 2, "ProductVersion": null, "AssignmentFilterIds": null },
        "EnforcementStateMessage": { "EnforcementState": 1000, "ErrorCode": 0, "TargetingMethod": 0 },
    }]);
    gateway(&client, &url, "Win32AppResult", installed).await;
}
