//! A large Win32 package uploaded Graph's way to a `tenantless-server` process, then
//! downloaded by a device: the server's memory before and at its peak, and how fast each
//! step went. The package (2 GiB by default; `TENANTLESS_BENCH_CONTENT_MIB` to change)
//! is sealed on the fly from zeros and put in 8 MiB blocks, the head (MAC and IV) last,
//! as it is known only at the end; the device checks what it downloads as it arrives.
//! Run: `cargo bench -p server --bench content_upload`.

#[path = "../tests/suite/common/mod.rs"]
mod common;

use std::time::Instant;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

/// Bytes per block put to the upload URI.
const BLOCK: usize = 8 << 20;

/// A process's resident memory now and at its peak (kB), from /proc.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn block_id(i: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("block-{i:06}"))
}

struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("admin call");
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.json().await.unwrap_or(Value::Null)
    }
}

/// The server process, stopped however the benchmark ends.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    install_provider();
    let mib: u64 = std::env::var("TENANTLESS_BENCH_CONTENT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let size = mib << 20;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (device_port, admin_port) = (free_port(), free_port());
    let server = std::process::Command::new(env!("CARGO_BIN_EXE_tenantless-server"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{device_port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .args([
            "--admin-token",
            TOKEN,
            "--enroll-secret",
            SECRET,
            "--seed",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("tenantless-server starts");
    let server = Process(server);
    let admin = Admin {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{admin_port}"),
    };
    // Waiting for another process to listen (not for time to pass in a world).
    for _ in 0..200 {
        let up = admin
            .http
            .get(format!("{}/testbed/health", admin.base))
            .send()
            .await;
        if up.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let base_url = format!("https://localhost:{device_port}");
    let ca = std::fs::read_to_string(dir.path().join("pki/ca.pem")).expect("the server's CA");
    let device = enroll_at(&base_url, &ca, "B16B16B1-0000-4000-8000-000000000001").await;
    let (idle, _) = memory(server.0.id());

    let app = admin
        .call(
            reqwest::Method::POST,
            "/beta/deviceAppManagement/mobileApps",
            Some(json!({
                "@odata.type": "#microsoft.graph.win32LobApp", "displayName": "Big package",
                "setupFilePath": "setup.exe", "installCommandLine": "setup.exe /quiet",
            })),
        )
        .await;
    let id = app["id"].as_str().expect("an app id").to_owned();
    let typed = format!("/beta/deviceAppManagement/mobileApps/{id}/microsoft.graph.win32LobApp");
    admin
        .call(
            reqwest::Method::POST,
            &format!("{typed}/contentVersions"),
            Some(json!({})),
        )
        .await;
    let encrypted_size = 48 + (size / 16 + 1) * 16;
    let files = format!("{typed}/contentVersions/1/files");
    let file = admin
        .call(
            reqwest::Method::POST,
            &files,
            Some(json!({ "name": "IntunePackage.intunewin", "size": size, "sizeEncrypted": encrypted_size })),
        )
        .await;
    let file_path = format!("{files}/{}", file["id"].as_str().expect("a file id"));
    let file = admin.call(reqwest::Method::GET, &file_path, None).await;
    let uri = file["azureStorageUri"]
        .as_str()
        .expect("an upload URI")
        .to_owned();

    let started = Instant::now();
    let keys = syncml::intunewin::Keys {
        encryption_key: [0x5A; 32],
        mac_key: [0xA5; 32],
        iv: [0x3C; 16],
    };
    let mut seal = syncml::intunewin::ContentSeal::new(&keys);
    let zeros = vec![0u8; BLOCK];
    let mut left = size;
    let mut blocks = 0;
    let put = |i: usize, bytes: Vec<u8>| {
        let url = format!("{uri}&comp=block&blockid={}", urlencode(&block_id(i)));
        let http = admin.http.clone();
        async move {
            let answer = http.put(url).body(bytes).send().await.expect("a block put");
            assert_eq!(answer.status().as_u16(), 201);
        }
    };
    while left > 0 {
        let take = left.min(BLOCK as u64) as usize;
        let mut ciphertext = seal.update(&zeros[..take]);
        left -= take as u64;
        if left == 0 {
            let (tail, head, info) = seal.finish();
            ciphertext.extend(tail);
            blocks += 1;
            put(blocks, ciphertext).await;
            put(0, head).await;
            let list: String = (0..=blocks)
                .map(|i| format!("<Latest>{}</Latest>", block_id(i)))
                .collect();
            let answer = admin
                .http
                .put(format!("{uri}&comp=blocklist"))
                .body(format!("<BlockList>{list}</BlockList>"))
                .send()
                .await
                .expect("the block list");
            assert_eq!(answer.status().as_u16(), 201);
            let uploaded = started.elapsed();
            let (_, upload_peak) = memory(server.0.id());

            let committing = Instant::now();
            let e = &info;
            admin
                .call(
                    reqwest::Method::POST,
                    &format!("{file_path}/commit"),
                    Some(json!({ "fileEncryptionInfo": {
                        "encryptionKey": e.encryption_key, "macKey": e.mac_key,
                        "initializationVector": e.initialization_vector, "mac": e.mac,
                        "profileIdentifier": e.profile_identifier, "fileDigest": e.file_digest,
                        "fileDigestAlgorithm": e.file_digest_algorithm } })),
                )
                .await;
            let committed = admin.call(reqwest::Method::GET, &file_path, None).await;
            assert_eq!(committed["uploadState"], "commitFileSuccess", "{committed}");
            let commit_took = committing.elapsed();
            admin
                .call(
                    reqwest::Method::PATCH,
                    &format!("/beta/deviceAppManagement/mobileApps/{id}"),
                    Some(json!({ "committedContentVersion": "1" })),
                )
                .await;
            admin
                .call(
                    reqwest::Method::POST,
                    &format!("/beta/deviceAppManagement/mobileApps/{id}/assign"),
                    Some(json!({ "mobileAppAssignments": [{ "intent": "required", "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }] })),
                )
                .await;

            let downloading = Instant::now();
            let downloaded = download(&base_url, &ca, &device, &id, &info).await;
            assert_eq!(downloaded, encrypted_size);
            let download_took = downloading.elapsed();
            let (_, peak) = memory(server.0.id());
            let mb = size as f64 / (1 << 20) as f64;
            println!(
                "content: {mib} MiB package ({encrypted_size} bytes encrypted, {} blocks)",
                blocks + 1
            );
            println!(
                "  upload   {:>7.1} s  {:>7.1} MiB/s",
                uploaded.as_secs_f64(),
                mb / uploaded.as_secs_f64()
            );
            println!(
                "  commit   {:>7.1} s  {:>7.1} MiB/s (MAC and digest checked)",
                commit_took.as_secs_f64(),
                mb / commit_took.as_secs_f64()
            );
            println!(
                "  download {:>7.1} s  {:>7.1} MiB/s (checked by the device)",
                download_took.as_secs_f64(),
                mb / download_took.as_secs_f64()
            );
            println!("  server RSS idle {} MiB, peak during upload {} MiB, peak overall {} MiB: {} MiB above idle",
                idle / 1024, upload_peak / 1024, peak / 1024, peak.saturating_sub(idle) / 1024);
            break;
        }
        blocks += 1;
        put(blocks, ciphertext).await;
    }
    drop(server);
}

/// The device's download of the app's content, checked as it arrives: its length.
async fn download(
    base_url: &str,
    ca: &str,
    device: &Enrolled,
    app: &str,
    info: &syncml::intunewin::EncryptionInfo,
) -> u64 {
    let client = https(ca, Some((&device.cert_der, &device.key_pkcs8)));
    let gateway_url = format!("{base_url}/SideCar/StatelessSideCarGatewayService");
    let reply = gateway(
        &client,
        &gateway_url,
        "GetContentInfo",
        json!({ "ApplicationId": app, "ApplicationVersion": 1 }),
    )
    .await;
    let answer: Value = serde_json::from_str(reply["ResponsePayload"].as_str().unwrap_or("{}"))
        .expect("content info");
    let content: Value =
        serde_json::from_str(answer["ContentInfo"].as_str().unwrap_or("{}")).expect("content info");
    let location = content["UploadLocation"]
        .as_str()
        .expect("a content location");
    let mut answer = client.get(location).send().await.expect("the download");
    let mut check = syncml::intunewin::ContentCheck::new(info).expect("keys");
    while let Some(piece) = answer.chunk().await.expect("the download goes on") {
        check.update(&piece);
    }
    let len = check.len();
    check.finish().expect("the device's check passes");
    len
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
