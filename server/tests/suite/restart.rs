//! A server restarted on the same data dir keeps its CA, devices and pending commands.

use crate::common;

use common::*;
use serde_json::json;
use syncml::dm::Command;

const DEVICE: &str = "7F6E5D4C-3B2A-4190-8877-665544332211";

#[tokio::test]
async fn restart_keeps_the_ca_devices_and_pending_commands() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_in(dir.path()).await;
    let ca = first.ca_pem().to_owned();
    let e = enroll(&first, DEVICE).await;
    let (status, _) = admin(&first)
        .post(
            &format!("/beta/deviceManagement/managedDevices/{DEVICE}/commands"),
            json!({ "verb": "Get", "items": [{ "target": "./DevDetail/SwV" }] }),
        )
        .await;
    assert_eq!(status, 201);
    first.stop().await;

    let second = start_in(dir.path()).await;
    assert_eq!(second.ca_pem(), ca, "the same CA");
    let (_, devices) = admin(&second)
        .get("/beta/deviceManagement/managedDevices")
        .await;
    assert_eq!(devices["value"][0]["id"], DEVICE);

    // The device's certificate from before the restart still opens a session, and the
    // pending command is delivered.
    let client = https(second.ca_pem(), Some((&e.cert_der, &e.key_pkcs8)));
    let url = format!("{}/ManagementServer/MDM.svc", second.base_url);
    let reply = exchange(&client, &url, &package1(DEVICE, "1", &url, None)).await;
    assert_eq!(header_status(&reply).data, "200");
    let cmds = commands(&reply);
    assert_eq!(cmds.len(), 1);
    assert!(matches!(cmds[0], Command::Get(_)));
    second.stop().await;
}

#[tokio::test]
async fn journal_events_waiting_to_be_written_survive_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_in(dir.path()).await;
    // With SQLite the journal lets a request's events wait (for more, or a read);
    // enrolling records one that no read has flushed when the server stops.
    enroll(&first, DEVICE).await;
    first.stop().await;

    let second = start_in(dir.path()).await;
    let enrolled = admin(&second).events(DEVICE, "enrolled").await;
    assert_eq!(enrolled.len(), 1, "{enrolled:?}");
    second.stop().await;
}

#[tokio::test]
async fn the_probe_says_ready_while_the_server_runs_and_not_after_it_stops() {
    let (server, _dir) = start().await;
    let addr = server.admin_addr;
    assert_eq!(server::probe::ready(addr).await, Ok(()));
    server.stop().await;
    assert!(server::probe::ready(addr).await.is_err());
}
