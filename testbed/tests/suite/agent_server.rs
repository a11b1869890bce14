//! The agent against the real server over loopback TLS: enrollment, sessions, the DM
//! tree, the IME's delivery by EnterpriseDesktopAppManagement, failures and restarts.
//! Server and agent share one manual clock; no test waits for real time.

use std::sync::Arc;

use agent::csp::edam::DEVICE_SID;
use agent::device::DeviceProfile;
use agent::{Activity, Agent, EnrollRequest};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use server::clock::ManualClock;

const IME_KEY: &str = r"HKLM\SOFTWARE\Microsoft\EnterpriseDesktopAppManagement";
const IME_PRODUCT: &str = "{6D2F2E4B-3C1A-4E8D-9B7F-1A2B3C4D5E6F}";

struct Env {
    server: server::RunningServer,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

fn t0() -> DateTime<Utc> {
    server::clock::parse("2026-11-24T09:00:00Z").unwrap()
}

impl Env {
    async fn start() -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let server = server::start(
            server::Config::for_tests(dir.path().join("server")),
            clock.clone(),
        )
        .await
        .unwrap();
        Env {
            server,
            clock,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        server::clock::Clock::now(&*self.clock)
    }

    fn advance(&self, by: Duration) -> DateTime<Utc> {
        self.clock.advance(by);
        self.now()
    }

    async fn device(&self, name: &str, seed: u8) -> Agent {
        let dir = self._dir.path().join(name);
        let profile = DeviceProfile {
            device_name: name.into(),
            fast_keys: true,
            ..DeviceProfile::default()
        };
        let mut agent = Agent::create(&dir, profile, [seed; 32]).unwrap();
        agent
            .enroll(&self.enroll_request(false), self.now())
            .await
            .unwrap();
        agent
    }

    fn enroll_request(&self, digest: bool) -> EnrollRequest {
        EnrollRequest {
            server: self.server.base_url.clone(),
            user: "alice@contoso.com".into(),
            secret: "enroll-secret".into(),
            trusted_ca_pem: vec![self.server.ca_pem().to_owned()],
            digest_only: digest,
        }
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://{}{path}", self.server.admin_addr);
        let req = match method {
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            _ => self.http.get(url),
        }
        .bearer_auth("admin-token");
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        req.send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    async fn queue(&self, agent: &Agent, command: Value) -> i64 {
        let id = &agent.device().profile.device_id;
        let v = self
            .admin(
                "POST",
                &format!("/beta/deviceManagement/managedDevices/{id}/commands"),
                Some(command),
            )
            .await;
        v["id"].as_i64().unwrap()
    }

    async fn command(&self, agent: &Agent, n: i64) -> Value {
        let id = &agent.device().profile.device_id;
        self.admin(
            "GET",
            &format!("/beta/deviceManagement/managedDevices/{id}/commands/{n}"),
            None,
        )
        .await
    }

    async fn events(&self, agent: &Agent, kind: &str) -> Vec<Value> {
        let id = &agent.device().profile.device_id;
        let v = self
            .admin(
                "GET",
                &format!("/testbed/events?device={id}&kind={kind}"),
                None,
            )
            .await;
        v["value"].as_array().cloned().unwrap_or_default()
    }
}

fn sessions(done: &[Activity]) -> usize {
    done.iter()
        .filter(|a| matches!(a, Activity::Session(_)))
        .count()
}

#[tokio::test]
async fn enroll_then_first_session_records_the_device() {
    let env = Env::start().await;
    let mut a = env.device("LAB-01", 1).await;
    assert_eq!(
        a.next_due(),
        Some(env.now()),
        "the first session is due at once"
    );
    let done = a.run_due(env.now()).await.unwrap();
    assert_eq!(sessions(&done), 1);
    let id = a.device().profile.device_id.clone();
    let device = env
        .admin(
            "GET",
            &format!("/beta/deviceManagement/managedDevices/{id}"),
            None,
        )
        .await;
    assert_eq!(device["deviceName"], "LAB-01");
    assert_eq!(device["manufacturer"], "Microsoft Corporation");
    assert_eq!(device["@tenantless.details"]["language"], "en-US");
    // Windows keeps the enrollment in the registry.
    let reg = &a.device().registry;
    let enrollments = reg.subkeys(r"HKLM\SOFTWARE\Microsoft\Enrollments");
    assert_eq!(enrollments.len(), 1);
    let key = format!(r"HKLM\SOFTWARE\Microsoft\Enrollments\{}", enrollments[0]);
    assert_eq!(
        reg.get_text(&key, "ProviderID").as_deref(),
        Some("Tenantless")
    );
    assert_eq!(
        reg.get_text(&key, "UPN").as_deref(),
        Some("alice@contoso.com")
    );
    // Next poll follows the provisioned schedule (first set: every 3 minutes).
    assert_eq!(a.next_due(), Some(env.now() + Duration::minutes(3)));
    assert!(
        a.run_due(env.now()).await.unwrap().is_empty(),
        "nothing due yet"
    );
    env.server.stop().await;
}

#[tokio::test]
async fn the_dm_tree_answers_from_the_device_model() {
    let env = Env::start().await;
    let mut a = env.device("LAB-02", 2).await;
    a.run_due(env.now()).await.unwrap();
    let get = env
        .queue(&a, json!({ "verb": "Get", "items": [{ "target": "./DevDetail/SwV" }, { "target": "./DevDetail/Ext/Microsoft/DeviceName" }, { "target": "./DevInfo" }] }))
        .await;
    let add = env
        .queue(&a, json!({ "verb": "Add", "items": [{ "target": "./Vendor/MSFT/Tenantless/Lab/Color", "format": "chr", "data": "blue" }] }))
        .await;
    let add_again = env
        .queue(&a, json!({ "verb": "Add", "items": [{ "target": "./Device/Vendor/MSFT/Tenantless/Lab/Color", "format": "chr", "data": "red" }] }))
        .await;
    let get_node = env
        .queue(
            &a,
            json!({ "verb": "Get", "items": [{ "target": "./Vendor/MSFT/Tenantless/Lab/Color" }] }),
        )
        .await;
    let replace_interior = env.queue(&a, json!({ "verb": "Replace", "items": [{ "target": "./Vendor/MSFT/Tenantless/Lab", "data": "x" }] })).await;
    let atomic = env
        .queue(
            &a,
            json!({ "verb": "Atomic", "commands": [
                { "verb": "Add", "items": [{ "target": "./Vendor/MSFT/Tenantless/Lab/Size", "data": "10" }] },
                { "verb": "Delete", "items": [{ "target": "./Vendor/MSFT/Tenantless/Missing" }] },
                { "verb": "Add", "items": [{ "target": "./Vendor/MSFT/Tenantless/Lab/Shape", "data": "round" }] }
            ] }),
        )
        .await;
    let get_after = env
        .queue(
            &a,
            json!({ "verb": "Get", "items": [{ "target": "./Vendor/MSFT/Tenantless/Lab" }] }),
        )
        .await;
    let readonly = env.queue(&a, json!({ "verb": "Replace", "items": [{ "target": "./DevInfo/Man", "data": "Contoso" }] })).await;
    a.sync(env.now()).await.unwrap();

    let g = env.command(&a, get).await;
    assert_eq!(g["status"], 200);
    let items = g["results"]["items"].as_array().unwrap();
    assert_eq!(items[0]["data"], "10.0.22631.2861");
    assert_eq!(items[1]["data"], "LAB-02");
    assert_eq!(items[2]["format"], "node");
    assert_eq!(items[2]["data"], "DevId/Man/Mod/DmV/Lang");
    assert_eq!(env.command(&a, add).await["status"], 200);
    assert_eq!(
        env.command(&a, add_again).await["status"],
        418,
        "./Device/Vendor and ./Vendor are one tree"
    );
    let retried = env
        .admin(
            "GET",
            &format!(
                "/beta/deviceManagement/managedDevices/{}/commands",
                a.device().profile.device_id
            ),
            None,
        )
        .await;
    let retry = retried["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["retryOf"] == add_again)
        .cloned()
        .unwrap();
    assert_eq!(
        retry["status"], 200,
        "the server's Replace after 418 succeeded"
    );
    let node = env.command(&a, get_node).await;
    assert_eq!(
        node["results"]["items"][0]["data"], "blue",
        "read in the same message as the Add, before the Replace"
    );
    let get_later = env
        .queue(
            &a,
            json!({ "verb": "Get", "items": [{ "target": "./Vendor/MSFT/Tenantless/Lab/Color" }] }),
        )
        .await;
    a.sync(env.advance(Duration::minutes(1))).await.unwrap();
    assert_eq!(
        env.command(&a, get_later).await["results"]["items"][0]["data"],
        "red",
        "the Replace took"
    );
    assert_eq!(env.command(&a, replace_interior).await["status"], 405);
    let at = env.command(&a, atomic).await;
    assert_eq!(at["status"], 507);
    let inner: Vec<i64> = at["results"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_i64().unwrap())
        .collect();
    assert_eq!(inner, [216, 404, 215]);
    let after = env.command(&a, get_after).await;
    assert_eq!(
        after["results"]["items"][0]["data"], "Color",
        "the Atomic's Add was rolled back"
    );
    assert_eq!(env.command(&a, readonly).await["status"], 405);
    env.server.stop().await;
}

#[tokio::test]
async fn the_ime_arrives_by_enterprise_desktop_app_management_and_upgrades() {
    let env = Env::start().await;
    let mut a = env.device("LAB-03", 3).await;
    a.run_due(env.now()).await.unwrap();
    let id = a.device().profile.device_id.clone();
    env.admin(
        "POST",
        &format!("/beta/deviceManagement/managedDevices/{id}/requireIntuneManagementExtension"),
        Some(json!({})),
    )
    .await;

    let now = env.advance(Duration::minutes(1));
    let done = a.sync(now).await.unwrap();
    assert_eq!(
        sessions(&done),
        2,
        "the install's alert goes out in a new session at once"
    );
    assert!(done.contains(&Activity::MsiJobs));

    // On the device: the MSI is installed, the service registered and started, logging.
    let reg = &a.device().registry;
    let edam = format!(r"{IME_KEY}\{DEVICE_SID}\MSI\{IME_PRODUCT}");
    assert_eq!(reg.get_text(&edam, "Status").as_deref(), Some("70"));
    assert_eq!(reg.get_text(&edam, "LastError").as_deref(), Some("0"));
    assert!(reg
        .get_text(&edam, "CurrentDownloadUrl")
        .unwrap()
        .ends_with("/IntuneWindowsAgent.msi"));
    assert_eq!(
        reg.get_text(
            r"HKLM\SYSTEM\CurrentControlSet\Services\IntuneManagementExtension",
            "DisplayName"
        )
        .as_deref(),
        Some("Microsoft Intune Management Extension")
    );
    assert!(a
        .device()
        .drive
        .exists(r"C:\Program Files (x86)\Microsoft Intune Management Extension\Microsoft.Management.Services.IntuneWindowsAgent.exe"));
    let log = agent::cmtrace::messages(&a.device().drive, agent::ime::LOG);
    assert_eq!(log.first().map(String::as_str), Some("EMS Agent Started"));
    let raw = a
        .device()
        .drive
        .read(r"C:\ProgramData\Microsoft\IntuneManagementExtension\Logs\IntuneManagementExtension.log")
        .unwrap();
    assert!(raw.starts_with(b"\xEF\xBB\xBF<![LOG[EMS Agent Started]LOG]!><time=\"09:01:00.0000000\" date=\"11-24-2026\""));
    assert!(a.state().ime.running);
    assert_eq!(
        a.device().installed_programs()[0].display_name,
        "Microsoft Intune Management Extension"
    );

    // On the server: installing after the Exec's 202, installed after the alert.
    let steps: Vec<String> = env
        .events(&a, "ime_install")
        .await
        .iter()
        .map(|e| e["payload"]["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["queued", "installing", "installed"]);
    let alerts = env.events(&a, "alert").await;
    let install_alert = alerts
        .iter()
        .find(|e| e["payload"]["alertType"] == agent::csp::edam::INSTALL_ALERT_TYPE)
        .unwrap();
    assert_eq!(install_alert["payload"]["data"], "0");
    assert_eq!(install_alert["payload"]["code"], "1226");

    // Status 70 is readable by Get.
    let uri = format!(
        "./Device/Vendor/MSFT/EnterpriseDesktopAppManagement/MSI/{}/Status",
        IME_PRODUCT.replace('{', "%7B").replace('}', "%7D")
    );
    let get = env
        .queue(&a, json!({ "verb": "Get", "items": [{ "target": uri }] }))
        .await;
    a.sync(env.advance(Duration::minutes(1))).await.unwrap();
    assert_eq!(
        env.command(&a, get).await["results"]["items"][0]["data"],
        "70"
    );

    // An upgrade replaces it and restarts the service.
    env.admin(
        "PUT",
        "/tenantless/ime",
        Some(json!({ "version": "1.95.0.0" })),
    )
    .await;
    a.sync(env.advance(Duration::minutes(1))).await.unwrap();
    assert_eq!(a.state().ime.version, "1.95.0.0");
    assert_eq!(
        a.device().installed_programs()[0].display_version,
        "1.95.0.0"
    );
    let log = agent::cmtrace::messages(&a.device().drive, agent::ime::LOG);
    assert_eq!(log.iter().filter(|m| *m == "EMS Agent Started").count(), 2);
    assert!(log.iter().any(|m| m == "EMS Agent Stopped"));
    let device = env
        .admin(
            "GET",
            &format!("/beta/deviceManagement/managedDevices/{id}"),
            None,
        )
        .await;
    assert_eq!(device["@tenantless.details"]["imeVersion"], "1.95.0.0");
    assert_eq!(device["@tenantless.details"]["imeState"], "installed");

    // Delete of the product uninstalls it, and the service goes with it.
    let product = format!(
        "./Device/Vendor/MSFT/EnterpriseDesktopAppManagement/MSI/{}",
        IME_PRODUCT.replace('{', "%7B").replace('}', "%7D")
    );
    let delete = env
        .queue(
            &a,
            json!({ "verb": "Delete", "items": [{ "target": product }] }),
        )
        .await;
    a.sync(env.advance(Duration::minutes(1))).await.unwrap();
    assert_eq!(env.command(&a, delete).await["status"], 200);
    assert!(a.device().installed_programs().is_empty());
    assert!(!a.state().ime.installed && !a.state().ime.running);
    assert!(!a
        .device()
        .registry
        .key_exists(r"HKLM\SYSTEM\CurrentControlSet\Services\IntuneManagementExtension"));
    assert!(
        !a.device().registry.key_exists(&edam),
        "the CSP's record is gone"
    );
    env.server.stop().await;
}

#[tokio::test]
async fn a_download_with_the_wrong_hash_ends_at_status_30() {
    let env = Env::start().await;
    let mut a = env.device("LAB-04", 4).await;
    a.run_due(env.now()).await.unwrap();
    let product = "{0A0B0C0D-1111-2222-3333-444455556666}";
    let node = format!(
        "./Device/Vendor/MSFT/EnterpriseDesktopAppManagement/MSI/{}/DownloadInstall",
        product.replace('{', "%7B").replace('}', "%7D")
    );
    let content = format!(
        "{}/content/ime/{}/IntuneWindowsAgent.msi",
        env.server.base_url,
        server::config::DEFAULT_IME_VERSION
    );
    let job = format!(
        "<MsiInstallJob id=\"{product}\"><Product Version=\"1.0.0.0\"><Download><ContentURLList><ContentURL>{content}</ContentURL></ContentURLList></Download><Validation><FileHash>{}</FileHash></Validation><Enforcement><CommandLine>/quiet</CommandLine><TimeOut>5</TimeOut><RetryCount>1</RetryCount><RetryInterval>5</RetryInterval></Enforcement></Product></MsiInstallJob>",
        "00".repeat(32)
    );
    env.queue(&a, json!({ "verb": "Add", "items": [{ "target": node }] }))
        .await;
    let exec = env.queue(&a, json!({ "verb": "Exec", "items": [{ "target": node, "format": "xml", "type": "text/plain", "data": job }] })).await;
    let start = env.advance(Duration::minutes(1));
    a.sync(start).await.unwrap();
    assert_eq!(env.command(&a, exec).await["status"], 202);
    let key = format!(r"{IME_KEY}\{DEVICE_SID}\MSI\{product}");
    assert_eq!(
        a.device().registry.get_text(&key, "Status").as_deref(),
        Some("25"),
        "pending download retry"
    );
    assert_eq!(
        a.state().msi_jobs[product].next_attempt,
        Some(start + Duration::minutes(5)),
        "RetryInterval honoured"
    );

    a.run_due(env.advance(Duration::minutes(5))).await.unwrap();
    let reg = &a.device().registry;
    assert_eq!(
        reg.get_text(&key, "Status").as_deref(),
        Some("30"),
        "download failed after RetryCount retries"
    );
    assert_eq!(
        reg.get(&key, "LastError"),
        Some(&agent::device::RegValue::Dword(0x8009_1007))
    );
    assert_eq!(
        reg.get_text(&key, "LastErrorDesc").as_deref(),
        Some("The hash value is not correct.")
    );
    assert!(a.device().installed_programs().is_empty());
    let alerts = env.events(&a, "alert").await;
    let failure = alerts
        .iter()
        .find(|e| e["payload"]["source"] == node.as_str())
        .unwrap();
    assert_eq!(
        failure["payload"]["data"],
        (0x8009_1007_u32 as i32).to_string()
    );
    env.server.stop().await;
}

#[tokio::test]
async fn a_restarted_agent_keeps_its_enrollment_and_state() {
    let env = Env::start().await;
    let dir = env._dir.path().join("LAB-05");
    {
        let mut a = env.device("LAB-05", 5).await;
        a.run_due(env.now()).await.unwrap();
        env.queue(&a, json!({ "verb": "Add", "items": [{ "target": "./Vendor/MSFT/Tenantless/Kept", "data": "yes" }] })).await;
        a.sync(env.advance(Duration::minutes(1))).await.unwrap();
        a.device_mut().registry.set(
            r"HKLM\SOFTWARE\Contoso",
            "Marker",
            agent::device::RegValue::Dword(7),
        );
        a.save().unwrap();
    } // the agent process "stops" here
    let mut again = Agent::open(&dir).unwrap();
    assert_eq!(
        again
            .device()
            .registry
            .get_text(r"HKLM\SOFTWARE\Contoso", "Marker")
            .as_deref(),
        Some("7")
    );
    let get = env
        .queue(
            &again,
            json!({ "verb": "Get", "items": [{ "target": "./Vendor/MSFT/Tenantless/Kept" }] }),
        )
        .await;
    let done = again.sync(env.advance(Duration::minutes(1))).await.unwrap();
    assert_eq!(sessions(&done), 1);
    assert_eq!(
        again.state().sessions,
        3,
        "the session counter carried over"
    );
    assert_eq!(
        env.command(&again, get).await["results"]["items"][0]["data"],
        "yes"
    );
    env.server.stop().await;
}

#[tokio::test]
async fn a_device_without_its_certificate_authenticates_by_digest() {
    let env = Env::start().await;
    let dir = env._dir.path().join("LAB-06");
    let profile = DeviceProfile {
        fast_keys: true,
        ..DeviceProfile::default()
    };
    let mut a = Agent::create(&dir, profile, [6; 32]).unwrap();
    a.enroll(&env.enroll_request(true), env.now())
        .await
        .unwrap();
    let done = a.run_due(env.now()).await.unwrap();
    assert_eq!(sessions(&done), 1);
    let id = a.device().profile.device_id.clone();
    let sessions_json = env
        .admin(
            "GET",
            &format!("/beta/deviceManagement/managedDevices/{id}/sessions"),
            None,
        )
        .await;
    assert_eq!(sessions_json["value"][0]["auth"], "digest");
    let refused = env.events(&a, "refused").await;
    assert!(
        refused.is_empty(),
        "the first message already carried the digest: {refused:?}"
    );
    env.server.stop().await;
}

#[tokio::test]
async fn the_reg_export_looks_like_regedit() {
    let env = Env::start().await;
    let mut a = env.device("LAB-07", 7).await;
    a.run_due(env.now()).await.unwrap();
    let text = a
        .device()
        .registry
        .export_reg(Some(r"HKLM\SOFTWARE\Microsoft\Enrollments"));
    assert!(text.starts_with("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Enrollments]"));
    assert!(text.contains("\"ProviderID\"=\"Tenantless\""));
    assert!(text.contains("\"EnrollmentState\"=dword:00000001"));
    env.server.stop().await;
}
