//! The server on PostgreSQL: a throwaway cluster started by the test itself, one server
//! restarted on it, and two servers sharing it (what several servers behind one
//! database do).
//! See `common::cluster` for where the cluster's binaries come from.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use serde_json::json;
use server::{Config, RunningServer};
use syncml::dm::Command;

const DEVICE: &str = "0A1B2C3D-4E5F-4061-8273-948596A7B8C9";

async fn start_on(dir: &Path, url: &str) -> RunningServer {
    install_provider();
    let clock = Arc::new(server::clock::ManualClock::new(
        server::clock::parse("2026-11-24T09:00:00Z").expect("time"),
    ));
    let mut config = Config::for_tests(dir.to_owned());
    config.db_url = Some(url.to_owned());
    server::start(config, clock)
        .await
        .expect("server starts on PostgreSQL")
}

#[tokio::test]
async fn postgres_keeps_state_across_a_restart_and_between_two_servers() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");

    // One server: enroll, queue a command, stop.
    let first = start_on(dir.path(), &cluster.url).await;
    let e = enroll(&first, DEVICE).await;
    let (status, _) = admin(&first)
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Get", "items": [{ "target": "./DevDetail/SwV" }] }),
        )
        .await;
    assert_eq!(status, 201);
    first.stop().await;

    // Restarted on the same database (the schema is migrated again, harmlessly), and a
    // second server beside it: both see the device.
    let a = start_on(dir.path(), &cluster.url).await;
    let b = start_on(dir.path(), &cluster.url).await;
    for server in [&a, &b] {
        let (_, devices) = admin(server)
            .get("/beta/deviceManagement/managedDevices")
            .await;
        assert_eq!(devices["value"][0]["id"], DEVICE);
    }
    // Filters PostgreSQL applies itself: case ignored, `_` and `%` taken literally.
    let prefix = DEVICE[..8].to_lowercase();
    for (filter, found) in [
        (format!("id%20eq%20'{}'", DEVICE.to_lowercase()), 1),
        (format!("startswith(id,'{prefix}')"), 1),
        ("startswith(id,'_')".to_owned(), 0),
        ("startswith(id,'%25')".to_owned(), 0),
    ] {
        let (status, devices) = admin(&a)
            .get(&format!(
                "/beta/deviceManagement/managedDevices?$filter={filter}"
            ))
            .await;
        assert_eq!(status, 200, "{devices}");
        assert_eq!(
            devices["value"].as_array().map(Vec::len),
            Some(found),
            "{filter}: {devices}"
        );
    }

    // The device checks in at B and gets the command queued before the restart.
    let client = https(b.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let url = format!("{}/ManagementServer/MDM.svc", b.base_url);
    let reply = exchange(&client, &url, &package1(DEVICE, "1", &url, None)).await;
    assert_eq!(header_status(&reply).data, "200");
    let cmds = commands(&reply);
    assert_eq!(cmds.len(), 1, "the pending Get is delivered by B");
    assert!(matches!(cmds[0], Command::Get(_)));

    // A's journal holds B's session (one journal, whichever server wrote it).
    let started = admin(&a).events(DEVICE, "session_started").await;
    assert_eq!(started.len(), 1, "{started:?}");
    let delivered = admin(&a).events(DEVICE, "command_delivered").await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");

    // A command queued at A now is delivered at B's next session.
    let (status, _) = admin(&a)
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Get", "items": [{ "target": "./DevInfo/Mod" }] }),
        )
        .await;
    assert_eq!(status, 201);
    let reply = exchange(&client, &url, &package1(DEVICE, "2", &url, None)).await;
    let targets: Vec<String> = commands(&reply)
        .iter()
        .filter_map(|c| match c {
            Command::Get(g) => g
                .items
                .first()
                .and_then(|i| i.target.as_ref())
                .map(|t| t.loc_uri.clone()),
            _ => None,
        })
        .collect();
    assert!(
        targets.iter().any(|t| t == "./DevInfo/Mod"),
        "queued at A, delivered at B: {targets:?}"
    );
    // Content uploaded at A (streamed into chunks) is what the device downloads at B.
    let (_, app) = admin(&a)
        .post(
            "/beta/deviceAppManagement/mobileApps",
            json!({ "@odata.type": "#microsoft.graph.win32LobApp", "displayName": "Shared", "setupFilePath": "setup.msi", "installCommandLine": "setup.msi" }),
        )
        .await;
    let app = app["id"].as_str().expect("an app id").to_owned();
    let (package, _, encrypted) = big_package(3 << 20);
    let uploaded = admin(&a)
        .http
        .put(format!(
            "{}/beta/deviceAppManagement/mobileApps/{app}/content",
            admin(&a).base
        ))
        .bearer_auth(TOKEN)
        .body(package)
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status().as_u16(), 200);
    let (_, files) = admin(&b)
        .get(&format!(
            "/beta/deviceAppManagement/mobileApps/{app}/contentVersions/1/files"
        ))
        .await;
    assert_eq!(
        files["value"][0]["uploadState"], "commitFileSuccess",
        "{files}"
    );
    let (status, _) = admin(&a)
        .post(
            &format!("/beta/deviceAppManagement/mobileApps/{app}/assign"),
            json!({ "mobileAppAssignments": [{ "intent": "required", "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }] }),
        )
        .await;
    assert_eq!(status, 204);
    let gateway_url = format!("{}/SideCar/StatelessSideCarGatewayService", b.base_url);
    let (_, downloaded) = fetch_content(&client, &gateway_url, &json!(app), &json!(1)).await;
    assert!(downloaded == encrypted, "B serves the bytes uploaded at A");
    a.stop().await;
    b.stop().await;
}
