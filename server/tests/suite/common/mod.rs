//! A client written for the tests: it speaks MS-MDE2 and OMA-DM to a real server over
//! loopback TLS, building CSRs and SyncML by hand (no agent involved).
#![allow(dead_code)]

use std::sync::Arc;

pub mod cluster;
pub mod seeded;
#[allow(unused_imports)]
pub use cluster::Cluster;

use base64::Engine;
use rcgen::{CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use server::{Config, RunningServer};
use syncml::dm::*;
use syncml::mde2::*;
use syncml::provisioning::{EnrollmentProvisioning, ProvisioningDoc};

pub const SECRET: &str = "enroll-secret";
pub const TOKEN: &str = "admin-token";

/// A running server in a temporary data dir (kept alive by the returned guard).
pub async fn start() -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_in(dir.path()).await;
    (server, dir)
}

pub async fn start_in(dir: &std::path::Path) -> RunningServer {
    start_with(Config::for_tests(dir.to_owned())).await
}

/// A server with this configuration, on the tests' manual clock.
pub async fn start_with(config: Config) -> RunningServer {
    install_provider();
    let clock = Arc::new(server::clock::ManualClock::new(
        server::clock::parse("2026-11-24T09:00:00Z").expect("time"),
    ));
    server::start(config, clock).await.expect("server starts")
}

/// reqwest's plain HTTP client still asks rustls for the process's provider.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTPS client trusting the server's CA, optionally presenting a client certificate.
pub fn https(ca_pem: &str, identity: Option<(&[u8], &[u8])>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
        .expect("CA");
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(cert.to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("client")
}

pub fn admin(server: &RunningServer) -> AdminClient {
    AdminClient {
        base: format!("http://{}", server.admin_addr),
        http: reqwest::Client::new(),
    }
}

pub struct AdminClient {
    pub base: String,
    pub http: reqwest::Client,
}

impl AdminClient {
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin PUT");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin DELETE");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn events(&self, device: &str, kind: &str) -> Vec<serde_json::Value> {
        let (_, v) = self
            .get(&format!("/testbed/events?device={device}&kind={kind}"))
            .await;
        v["value"].as_array().cloned().unwrap_or_default()
    }
}

/// The device-id extension as Windows carries it: an OCTET STRING around the id.
pub fn device_id_extension(device_id: &str) -> CustomExtension {
    let mut content = vec![0x04, device_id.len() as u8];
    content.extend_from_slice(device_id.as_bytes());
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 311, 66, 1, 0], content)
}

/// A CSR with the device-id extension and clientAuth EKU, signed by `key`.
pub fn csr(key: &KeyPair, device_id: &str) -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, device_id);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
        .custom_extensions
        .push(device_id_extension(device_id));
    params.serialize_request(key).expect("CSR").der().to_vec()
}

pub fn header(action: &str, to: &str, user: Option<(&str, &str)>) -> Header {
    Header {
        action: action.into(),
        message_id: Some("urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749".into()),
        reply_to: Some(value::ANONYMOUS.into()),
        to: Some(to.into()),
        security: user.map(|(u, p)| Security {
            username_token: Some(UsernameToken {
                username: u.into(),
                password: p.into(),
            }),
            ..Security::default()
        }),
        ..Header::default()
    }
}

pub fn rst(csr_der: &[u8], device_id: &str, secret: &str, to: &str) -> String {
    rst_named(csr_der, device_id, "DESKTOP-TEST01", secret, to)
}

/// [`rst`] from a device with this computer name.
pub fn rst_named(csr_der: &[u8], device_id: &str, name: &str, secret: &str, to: &str) -> String {
    let ctx = |name: &str, value: &str| ContextItem {
        name: name.into(),
        value: value.into(),
    };
    Envelope::new(
        header(action::RST, to, Some(("user@contoso.com", secret))),
        RequestSecurityToken {
            token_type: value::DEVICE_ENROLLMENT_TOKEN.into(),
            request_type: value::REQUEST_ISSUE.into(),
            binary_security_token: BinarySecurityToken::base64(value::PKCS10, csr_der),
            additional_context: vec![
                ctx("UXInitiated", "true"),
                ctx(
                    "HWDevID",
                    "CF1D12AA5AE42E47D52465E9A71316CAF3AFCC1D3088F230F4D50B371FB2256F",
                ),
                ctx("Locale", "en-US"),
                ctx("TargetedUserLoggedIn", "true"),
                ctx("OSEdition", "72"),
                ctx("DeviceName", name),
                ctx("MAC", "00-15-5D-01-02-03"),
                ctx("DeviceID", device_id),
                ctx("EnrollmentType", "Full"),
                ctx("DeviceType", "CIMClient_Windows"),
                ctx("OSVersion", "10.0.22631.2861"),
                ctx("ApplicationVersion", "10.0.22631.2861"),
            ],
        },
    )
    .to_xml()
}

pub async fn post_soap(
    client: &reqwest::Client,
    url: &str,
    xml: String,
) -> (u16, Option<u64>, String) {
    let r = client
        .post(url)
        .header("Content-Type", "application/soap+xml; charset=utf-8")
        .body(xml)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let length = r.content_length();
    (status, length, r.text().await.expect("body"))
}

/// An enrolled test device: its id, key, certificate and provisioning.
pub struct Enrolled {
    pub device_id: String,
    pub key_pkcs8: Vec<u8>,
    pub cert_der: Vec<u8>,
    pub provisioning: EnrollmentProvisioning,
}

/// Runs the three enrollment calls for a new ECDSA key.
pub async fn enroll(server: &RunningServer, device_id: &str) -> Enrolled {
    enroll_at(&server.base_url, server.ca_pem(), device_id).await
}

/// [`enroll`] with a server known by its device URL and CA.
pub async fn enroll_at(base_url: &str, ca_pem: &str, device_id: &str) -> Enrolled {
    enroll_named(base_url, ca_pem, device_id, "DESKTOP-TEST01").await
}

/// [`enroll_at`] for a device with this computer name.
pub async fn enroll_named(base_url: &str, ca_pem: &str, device_id: &str, name: &str) -> Enrolled {
    let key = KeyPair::generate().expect("key");
    let client = https(ca_pem, None);
    let url = format!("{base_url}/EnrollmentServer/Enrollment.svc");
    let (status, _, body) = post_soap(
        &client,
        &url,
        rst_named(&csr(&key, device_id), device_id, name, SECRET, &url),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let env =
        Envelope::<RequestSecurityTokenResponseCollection>::parse(body.as_bytes()).expect("RSTRC");
    let doc = ProvisioningDoc::parse(&env.body.requested_token.decode().expect("b64"))
        .expect("provisioning doc");
    let provisioning = EnrollmentProvisioning::from_doc(&doc).expect("enrollment");
    let cert_der = base64::engine::general_purpose::STANDARD
        .decode(&provisioning.client_cert.encoded)
        .expect("cert b64");
    Enrolled {
        device_id: device_id.into(),
        key_pkcs8: key.serialize_der(),
        cert_der,
        provisioning,
    }
}

/// Package 1 as Windows sends it.
pub fn package1(device_id: &str, session_id: &str, target: &str, cred: Option<Cred>) -> SyncMl {
    let devinfo = |node: &str, value: &str| Item::source_value(format!("./DevInfo/{node}"), value);
    SyncMl {
        hdr: SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: session_id.into(),
            msg_id: "1".into(),
            target: Some(Location::uri(target)),
            source: Some(Location::uri(device_id)),
            cred,
            meta: None,
        },
        body: SyncBody {
            commands: vec![
                Command::Alert(Alert {
                    cmd_id: "2".into(),
                    data: "1201".into(),
                    ..Alert::default()
                }),
                Command::Alert(Alert {
                    cmd_id: "3".into(),
                    data: "1224".into(),
                    items: vec![Item {
                        meta: Some(Meta {
                            type_: Some("com.microsoft/MDM/LoginStatus".into()),
                            ..Meta::default()
                        }),
                        data: Some(Data::Text("user".into())),
                        ..Item::default()
                    }],
                    ..Alert::default()
                }),
                Command::Replace(ItemCommand {
                    cmd_id: "4".into(),
                    items: vec![
                        devinfo("DevId", device_id),
                        devinfo("Man", "Microsoft Corporation"),
                        devinfo("Mod", "Virtual Machine"),
                        devinfo("DmV", "1.3"),
                        devinfo("Lang", "en-US"),
                        Item::source_value("./Vendor/MSFT/DMClient/HWDevID", "CF1D12AA"),
                    ],
                    ..ItemCommand::default()
                }),
            ],
            final_: true,
        },
    }
}

/// The device's next message: a status for every server command (via `code_for`),
/// Results for Gets (via `value_for`), and any extra commands.
pub fn answer(
    previous: &SyncMl,
    server: &SyncMl,
    msg_id: &str,
    code_for: impl Fn(&Command) -> u16,
    value_for: impl Fn(&str) -> Option<String>,
    extra: Vec<Command>,
) -> SyncMl {
    let mut commands = vec![Command::Status(Status {
        cmd_id: "1".into(),
        msg_ref: server.hdr.msg_id.clone(),
        cmd_ref: "0".into(),
        cmd: "SyncHdr".into(),
        data: "200".into(),
        ..Status::default()
    })];
    let mut next = 2;
    let mut results = vec![];
    let mut flat = vec![];
    for c in &server.body.commands {
        flatten(c, &mut flat);
    }
    for c in flat {
        if matches!(c, Command::Status(_)) {
            continue;
        }
        commands.push(Command::Status(Status {
            cmd_id: next.to_string(),
            msg_ref: server.hdr.msg_id.clone(),
            cmd_ref: c.cmd_id().into(),
            cmd: c.name().into(),
            data: code_for(c).to_string(),
            ..Status::default()
        }));
        next += 1;
        if let Command::Get(get) = c {
            let items = get
                .items
                .iter()
                .filter_map(|i| {
                    let uri = i.target.as_ref()?.loc_uri.clone();
                    Some(Item::source_value(uri.clone(), value_for(&uri)?))
                })
                .collect();
            results.push((get.cmd_id.clone(), items));
        }
    }
    for (cmd_ref, items) in results {
        commands.push(Command::Results(Results {
            cmd_id: next.to_string(),
            msg_ref: Some(server.hdr.msg_id.clone()),
            cmd_ref,
            items,
            ..Results::default()
        }));
        next += 1;
    }
    for mut c in extra {
        c.set_cmd_id(next.to_string());
        next += 1;
        commands.push(c);
    }
    SyncMl {
        hdr: SyncHdr {
            msg_id: msg_id.into(),
            cred: None,
            ..previous.hdr.clone()
        },
        body: SyncBody {
            commands,
            final_: true,
        },
    }
}

fn flatten<'a>(c: &'a Command, out: &mut Vec<&'a Command>) {
    out.push(c);
    if let Command::Atomic(inner) | Command::Sequence(inner) = c {
        for i in &inner.commands {
            flatten(i, out);
        }
    }
}

/// Sends one SyncML message and reads the reply.
pub async fn exchange(client: &reqwest::Client, url: &str, msg: &SyncMl) -> SyncMl {
    let r = client
        .post(url)
        .header("Content-Type", CONTENT_TYPE)
        .body(msg.to_xml())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 200);
    let body = r.bytes().await.expect("body");
    SyncMl::parse(&body).expect("server reply parses")
}

/// The status the server gave the SyncHdr.
pub fn header_status(reply: &SyncMl) -> &Status {
    reply
        .body
        .commands
        .iter()
        .find_map(|c| match c {
            Command::Status(s) if s.cmd_ref == "0" => Some(s),
            _ => None,
        })
        .expect("a SyncHdr status")
}

/// The server's commands in a reply (not statuses).
pub fn commands(reply: &SyncMl) -> Vec<&Command> {
    reply
        .body
        .commands
        .iter()
        .filter(|c| !matches!(c, Command::Status(_)))
        .collect()
}

// ---- Win32 apps and the IME's gateway ----

/// The keys test packages are sealed with.
pub fn keys() -> syncml::intunewin::Keys {
    syncml::intunewin::Keys {
        encryption_key: [7; 32],
        mac_key: [8; 32],
        iv: [9; 16],
    }
}

/// One request to the IME's gateway, as the IME sends it: the answer's envelope.
pub async fn gateway(
    client: &reqwest::Client,
    url: &str,
    request: &str,
    payload: serde_json::Value,
) -> serde_json::Value {
    let envelope = serde_json::json!({
        "Key": "key",
        "SessionId": "4f0ae2a9-6b8b-4c0e-9d3e-2b3a7f6e5d4c",
        "RequestContentType": request,
        "RequestPayload": payload.to_string(),
        "ResponseContentType": null,
        "ClientInfo": serde_json::json!({ "DeviceName": "LAB-01", "OperatingSystemVersion": "10.0.22631", "SideCarAgentVersion": "1.93.102.0" }).to_string(),
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

/// Bytes that do not compress, so a package is as large as its setup file.
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A package of `setup.msi` and a noise file of `len` bytes: the package, its
/// Detection.xml and the encrypted file.
pub fn big_package(len: usize) -> (Vec<u8>, syncml::intunewin::Detection, Vec<u8>) {
    let msi = syncml::sim_msi::SimulatedMsi::new(
        "{22222222-2222-3333-4444-555555555555}",
        "Contoso Big",
        "3.0.0",
        "Contoso",
    );
    let files = [
        ("setup.msi".to_owned(), msi.to_bytes()),
        ("payload.bin".to_owned(), noise(len, 0x9E37_79B9_7F4A_7C15)),
    ];
    let package = syncml::intunewin::pack(&files, "setup.msi", &keys(), None).unwrap();
    let opened = syncml::intunewin::open(&package).unwrap();
    (package, opened.detection, opened.encrypted)
}

/// As the IME: `GetContentInfo` for an app's version at the gateway, then the download
/// it names: the ContentInfo JSON and the bytes.
pub async fn fetch_content(
    client: &reqwest::Client,
    gateway_url: &str,
    app: &serde_json::Value,
    version: &serde_json::Value,
) -> (serde_json::Value, bytes::Bytes) {
    let payload = serde_json::json!({ "ApplicationId": app, "ApplicationVersion": version });
    let reply = gateway(client, gateway_url, "GetContentInfo", payload).await;
    let info: serde_json::Value =
        serde_json::from_str(reply["ResponsePayload"].as_str().expect("a payload")).expect("JSON");
    let content: serde_json::Value =
        serde_json::from_str(info["ContentInfo"].as_str().expect("ContentInfo")).expect("JSON");
    let bytes = client
        .get(content["UploadLocation"].as_str().expect("a location"))
        .send()
        .await
        .expect("the download")
        .bytes()
        .await
        .expect("the content");
    (content, bytes)
}
