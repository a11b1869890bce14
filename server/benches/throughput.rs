//! Server throughput on loopback TLS: enrollments per second, management messages per
//! second (package 1 answered with a 10-command reply), and the admin API finding a
//! device by name among 10,000 (a filter the database applies) against reading a page
//! of all of them. Run:
//! `cargo bench -p server --bench throughput`.

#[path = "../tests/suite/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use serde_json::json;

const CONCURRENCY: usize = 8;

#[tokio::main]
async fn main() {
    let (server, _dir) = start().await;
    let enroll_url = format!("{}/EnrollmentServer/Enrollment.svc", server.base_url);

    // Enrollment: CSRs are made beforehand; only the server's work is timed.
    let n_enroll = 400;
    let requests: Vec<(String, String)> = (0..n_enroll)
        .map(|i| {
            let id = format!("00000000-0000-4000-8000-{i:012}");
            let key = rcgen::KeyPair::generate().expect("key");
            let xml = rst(&csr(&key, &id), &id, SECRET, &enroll_url);
            (id, xml)
        })
        .collect();
    let client = https(server.ca_pem(), None);
    let started = Instant::now();
    let mut chunks: Vec<Vec<(String, String)>> = (0..CONCURRENCY).map(|_| Vec::new()).collect();
    for (i, r) in requests.into_iter().enumerate() {
        chunks[i % CONCURRENCY].push(r);
    }
    let mut tasks = Vec::new();
    for chunk in chunks {
        let client = client.clone();
        let url = enroll_url.clone();
        tasks.push(tokio::spawn(async move {
            for (_, xml) in chunk {
                let (status, _, _) = post_soap(&client, &url, xml).await;
                assert_eq!(status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.expect("enrollment task");
    }
    let secs = started.elapsed().as_secs_f64();
    println!("enrollment:  {n_enroll} enrollments in {secs:.2} s = {:.0} enrollments/s ({CONCURRENCY} clients)", n_enroll as f64 / secs);

    // Management: devices with 10 pending commands each; every package 1 gets them all.
    let admin = admin(&server);
    let mut devices = Vec::new();
    for d in 0..CONCURRENCY {
        let id = format!("11111111-0000-4000-8000-{d:012}");
        let e = enroll(&server, &id).await;
        for n in 0..10 {
            admin
                .post(
                    &format!("/beta/deviceManagement/managedDevices/{id}/commands"),
                    json!({ "verb": "Get", "items": [{ "target": format!("./DevDetail/Ext/Bench/Node{n}") }] }),
                )
                .await;
        }
        devices.push(e);
    }
    let per_device = 250;
    let url = format!("{}/ManagementServer/MDM.svc", server.base_url);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for e in devices {
        let client = https(server.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for s in 0..per_device {
                let reply = exchange(
                    &client,
                    &url,
                    &package1(&e.device_id, &format!("{s:X}"), &url, None),
                )
                .await;
                assert_eq!(commands(&reply).len(), 10);
            }
        }));
    }
    for t in tasks {
        t.await.expect("session task");
    }
    let secs = started.elapsed().as_secs_f64();
    let messages = CONCURRENCY * per_device;
    println!(
        "management:  {messages} package-1 messages (10-command replies) in {secs:.2} s = {:.0} messages/s ({CONCURRENCY} devices)",
        messages as f64 / secs
    );
    admin_listing(&server).await;
    server.stop().await;
}

/// Finding one device by name among 10,000, and a page of them all, through the
/// admin API as a Graph client asks.
async fn admin_listing(server: &server::RunningServer) {
    let fleet = 10_000;
    for i in 0..fleet {
        let device = server::storage::Device {
            id: format!("22222222-0000-4000-8000-{i:012}"),
            device_name: format!("FLEET-{i:05}"),
            enrolled_at: "2026-11-24T09:00:00.000Z".into(),
            ..server::storage::Device::default()
        };
        server
            .state
            .store
            .upsert_device(&device)
            .await
            .expect("device");
    }
    let admin = admin(server);
    for (what, path) in [
        (
            "one device by name (deviceName eq)",
            "/beta/deviceManagement/managedDevices?$filter=deviceName%20eq%20'FLEET-04321'",
        ),
        (
            "ten devices (startswith)",
            "/beta/deviceManagement/managedDevices?$filter=startswith(deviceName,'FLEET-0432')",
        ),
        (
            "a page of 1000 of all (no filter)",
            "/beta/deviceManagement/managedDevices?$select=deviceName",
        ),
    ] {
        let rounds = 20;
        let started = Instant::now();
        for _ in 0..rounds {
            let (status, body) = admin.get(path).await;
            assert_eq!(status, 200, "{body}");
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
        println!("admin list:  {what} among {fleet}: {ms:.1} ms a request");
    }
}
