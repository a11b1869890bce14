//! `tenantless-server`'s console (`/console`): the journal-backed views for remote and
//! compose setups, behind the admin token (HTTP Basic, as a browser asks for it).

use chrono::Duration;
use testbed::{World, WorldOptions};

async fn get(url: &str, password: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some(password) = password {
        request = request.basic_auth("admin", Some(password));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_servers_console_shows_devices_sessions_and_the_journal_to_the_admin() {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("CON-01", Default::default()).await.unwrap();
    w.require_ime("CON-01").await.unwrap();
    w.advance(Duration::minutes(30)).await;
    let base = format!("{}/console", w.admin_url().unwrap());
    let token = testbed::world::ADMIN_TOKEN;

    let (status, page) = get(&format!("{base}/"), None).await;
    assert_eq!(status, 401, "no token, no console");
    assert!(page.contains("admin token"), "{page}");
    let (status, _) = get(&format!("{base}/"), Some("not-the-token")).await;
    assert_eq!(status, 401);

    let (status, page) = get(&format!("{base}/"), Some(token)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("CON-01"));
    let id = w.device_id("CON-01").unwrap();
    assert!(page.contains(&format!("/console/devices/{id}")), "{page}");

    let (status, page) = get(&format!("{base}/devices/{id}"), Some(token)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("installs the IME (MsiInstallJob)"), "{page}");
    let sessions = page.matches("/sessions/").count() as i64;
    assert!(sessions > 0, "{page}");

    // The session that installed the IME, in the SyncML viewer.
    let mut installing = None;
    for n in 1..=sessions {
        let (status, page) = get(&format!("{base}/devices/{id}/sessions/{n}"), Some(token)).await;
        assert_eq!(status, 200, "session {n}: {page}");
        if page.contains("<span class=\"tag\">MsiInstallJob</span>") {
            installing = Some(n);
            assert!(page.contains("SyncHdr"), "the message itself, highlighted");
        }
    }
    assert!(installing.is_some(), "a session carries the MsiInstallJob");

    let (status, page) = get(&format!("{base}/journal?kind=ime_install"), Some(token)).await;
    assert_eq!(status, 200);
    assert!(page.contains("ime_install"));
    assert!(!page.contains("session_started</td>"), "filtered by kind");

    let (status, page) = get(&format!("{base}/devices/NOPE"), Some(token)).await;
    assert_eq!(status, 404);
    assert!(
        page.contains("no device NOPE"),
        "an HTML page, not Graph's JSON: {page}"
    );
    let (status, css) = get(&format!("{base}/assets/console.css"), Some(token)).await;
    assert_eq!(status, 200);
    assert!(css.contains("prefers-color-scheme"));
}
