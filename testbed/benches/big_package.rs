//! A Win32 package of 2 GiB (`TENANTLESS_BENCH_CONTENT_MIB` to change) from upload to
//! install, in one process: a world's server and one device. The package's inner zip
//! (the setup file and a zero-filled payload, stored) is made on disk, sealed on the fly
//! and put to the upload URI in 8 MiB blocks (the head, MAC and IV, last), committed,
//! assigned, and installed by the device, which downloads, decrypts and unzips it a
//! piece at a time. Prints how long each step took and the process's memory before and
//! at its peak. Run: `cargo bench -p testbed --bench big_package`.

use std::io::{Read, Write};
use std::time::Instant;

use base64::Engine;
use chrono::Duration;
use serde_json::{json, Value};
use testbed::{AdminBody, World, WorldOptions};

const PRODUCT: &str = "{B16B16B1-2222-4333-8444-955555555555}";
/// Bytes per block put to the upload URI, and per piece written or read.
const BLOCK: usize = 8 << 20;

/// This process's resident memory now and at its peak (kB).
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The inner zip: `setup.msi` and `payload.bin` of `size` zeros, stored.
fn inner_zip(path: &std::path::Path, size: u64) -> u64 {
    let msi = syncml::sim_msi::SimulatedMsi::new(PRODUCT, "Big Package", "1.0.0", "Contoso");
    let file = std::fs::File::create(path).expect("the inner zip");
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("setup.msi", stored).expect("an entry");
    zip.write_all(&msi.to_bytes()).expect("written");
    zip.start_file("payload.bin", stored).expect("an entry");
    let zeros = vec![0u8; BLOCK];
    let mut left = size;
    while left > 0 {
        let take = left.min(BLOCK as u64) as usize;
        zip.write_all(&zeros[..take]).expect("written");
        left -= take as u64;
    }
    zip.finish().expect("finished");
    std::fs::metadata(path).expect("the inner zip").len()
}

async fn call(world: &World, method: &str, path: &str, body: AdminBody) -> Value {
    let (status, answer) = world.admin(method, path, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

fn block_id(i: usize) -> String {
    let id = base64::engine::general_purpose::STANDARD.encode(format!("block-{i:06}"));
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[tokio::main]
async fn main() {
    let mib: u64 = std::env::var("TENANTLESS_BENCH_CONTENT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let mut world = World::start(WorldOptions::default())
        .await
        .expect("a world");
    world
        .add_device("LAB-01", Default::default())
        .await
        .expect("a device");
    world.settle().await;
    let (idle, _) = memory();

    let scratch = tempfile::tempdir().expect("a temporary folder");
    let zip_path = scratch.path().join("inner.zip");
    let started = Instant::now();
    let plain = inner_zip(&zip_path, mib << 20);
    let made = started.elapsed();

    let app = call(
        &world,
        "POST",
        "/beta/deviceAppManagement/mobileApps",
        AdminBody::Json(json!({
            "@odata.type": "#microsoft.graph.win32LobApp", "displayName": "Big Package",
            "setupFilePath": "setup.msi", "installCommandLine": "msiexec /i setup.msi /qn",
            "rules": [{ "@odata.type": "#microsoft.graph.win32LobAppProductCodeRule", "ruleType": "detection", "productCode": PRODUCT }],
        })),
    )
    .await;
    let id = app["id"].as_str().expect("an app id").to_owned();
    let typed = format!("/beta/deviceAppManagement/mobileApps/{id}/microsoft.graph.win32LobApp");
    call(
        &world,
        "POST",
        &format!("{typed}/contentVersions"),
        AdminBody::Json(json!({})),
    )
    .await;
    let files = format!("{typed}/contentVersions/1/files");
    let encrypted = 48 + (plain / 16 + 1) * 16;
    let declared =
        json!({ "name": "IntunePackage.intunewin", "size": plain, "sizeEncrypted": encrypted });
    let file = call(&world, "POST", &files, AdminBody::Json(declared)).await;
    let file_path = format!("{files}/{}", file["id"].as_str().expect("a file id"));
    let file = call(&world, "GET", &file_path, AdminBody::None).await;
    let uri = file["azureStorageUri"].as_str().expect("an upload URI");
    // The world's admin calls add the server's address.
    let uri = &uri[uri.find("/tenantless/").expect("the blob path")..];

    let uploading = Instant::now();
    let keys = syncml::intunewin::Keys {
        encryption_key: [0x5A; 32],
        mac_key: [0xA5; 32],
        iv: [0x3C; 16],
    };
    let mut seal = syncml::intunewin::ContentSeal::new(&keys);
    let mut input = std::fs::File::open(&zip_path).expect("the inner zip");
    let mut piece = vec![0u8; BLOCK];
    let mut blocks = 0;
    let mut pending = Vec::new();
    loop {
        let n = input.read(&mut piece).expect("read");
        if n == 0 {
            break;
        }
        pending.extend(seal.update(&piece[..n]));
        if pending.len() >= BLOCK {
            blocks += 1;
            let put = format!("{uri}&comp=block&blockid={}", block_id(blocks));
            call(
                &world,
                "PUT",
                &put,
                AdminBody::Bytes(std::mem::take(&mut pending)),
            )
            .await;
        }
    }
    let (tail, head, info) = seal.finish();
    pending.extend(tail);
    blocks += 1;
    let put = format!("{uri}&comp=block&blockid={}", block_id(blocks));
    call(&world, "PUT", &put, AdminBody::Bytes(pending)).await;
    let put = format!("{uri}&comp=block&blockid={}", block_id(0));
    call(&world, "PUT", &put, AdminBody::Bytes(head)).await;
    let list: String = (0..=blocks)
        .map(|i| {
            let id = base64::engine::general_purpose::STANDARD.encode(format!("block-{i:06}"));
            format!("<Latest>{id}</Latest>")
        })
        .collect();
    let put = format!("{uri}&comp=blocklist");
    call(
        &world,
        "PUT",
        &put,
        AdminBody::Bytes(format!("<BlockList>{list}</BlockList>").into_bytes()),
    )
    .await;
    let uploaded = uploading.elapsed();

    let committing = Instant::now();
    let e = &info;
    let commit = json!({ "fileEncryptionInfo": {
        "encryptionKey": e.encryption_key, "macKey": e.mac_key,
        "initializationVector": e.initialization_vector, "mac": e.mac,
        "profileIdentifier": e.profile_identifier, "fileDigest": e.file_digest,
        "fileDigestAlgorithm": e.file_digest_algorithm } });
    call(
        &world,
        "POST",
        &format!("{file_path}/commit"),
        AdminBody::Json(commit),
    )
    .await;
    let committed = call(&world, "GET", &file_path, AdminBody::None).await;
    assert_eq!(committed["uploadState"], "commitFileSuccess", "{committed}");
    let committed_in = committing.elapsed();
    let app_path = format!("/beta/deviceAppManagement/mobileApps/{id}");
    call(
        &world,
        "PATCH",
        &app_path,
        AdminBody::Json(json!({ "committedContentVersion": "1" })),
    )
    .await;
    let assign = json!({ "mobileAppAssignments": [{ "intent": "required", "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }] });
    call(
        &world,
        "POST",
        &format!("{app_path}/assign"),
        AdminBody::Json(assign),
    )
    .await;

    let installing = Instant::now();
    world.advance(Duration::hours(2)).await;
    let installed = world
        .device("LAB-01")
        .expect("the device")
        .device()
        .installed_programs()
        .iter()
        .any(|p| p.display_name == "Big Package");
    assert!(installed, "the device installed the package");
    let installed_in = installing.elapsed();
    let (_, peak) = memory();
    let mb = plain as f64 / f64::from(1 << 20);
    let rate = |d: std::time::Duration| mb / d.as_secs_f64();
    println!(
        "big package: {mib} MiB payload, {plain} bytes zipped, {encrypted} encrypted, {} blocks",
        blocks + 1
    );
    println!("  made     {:>7.1} s", made.as_secs_f64());
    println!(
        "  upload   {:>7.1} s  {:>7.1} MiB/s",
        uploaded.as_secs_f64(),
        rate(uploaded)
    );
    println!(
        "  commit   {:>7.1} s  {:>7.1} MiB/s (MAC and digest checked)",
        committed_in.as_secs_f64(),
        rate(committed_in)
    );
    println!(
        "  install  {:>7.1} s  {:>7.1} MiB/s (download, check, decrypt, unzip, install)",
        installed_in.as_secs_f64(),
        rate(installed_in)
    );
    println!(
        "  process RSS (server and device) before {} MiB, peak {} MiB: {} MiB above",
        idle / 1024,
        peak / 1024,
        peak.saturating_sub(idle) / 1024
    );
    world.stop().await;
}
