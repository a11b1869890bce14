//! The world clock: time moves only when the world moves it, everything due runs in
//! order, and the same seed gives the same journal.

use chrono::Duration;
use testbed::{Expectation, Filter, World, WorldOptions};

async fn world(seed: u64) -> World {
    World::start(WorldOptions {
        seed,
        ..WorldOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_virtual_day_follows_the_poll_schedule() {
    let mut w = world(1).await;
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.add_device("LAB-02", Default::default()).await.unwrap();
    let start = w.now();
    w.advance(Duration::hours(24)).await;
    assert_eq!(w.now(), start + Duration::hours(24));
    // After sessions 1-5 the next comes in 3 min, after 6-13 in 15 min, then in 8 h:
    // sessions at 0, 3, 6, 9, 12, 15, 30, ..., 135 (14 so far), then 10:15 and 18:15.
    for name in ["LAB-01", "LAB-02"] {
        let id = w.device_id(name).unwrap();
        let sessions = w
            .journal()
            .filter(Filter::kind("session_started").device(&id))
            .count()
            .await
            .unwrap();
        assert_eq!(sessions, 16, "{name}");
    }
    let last = w
        .journal()
        .filter(Filter::kind("session_started"))
        .events()
        .await
        .unwrap();
    assert_eq!(last.last().unwrap().at, "2026-11-25T03:15:00.000Z");
    assert!(w.device_errors.is_empty(), "{:?}", w.device_errors);
    w.stop().await;
}

#[tokio::test]
async fn the_ime_reaches_a_device_at_its_next_check_in() {
    let mut w = world(2).await;
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.settle().await;
    w.advance(Duration::minutes(20)).await;
    assert!(w.require_ime("LAB-01").await.unwrap());
    let asked = w.now();
    w.advance(Duration::hours(1)).await;
    let id = w.device_id("LAB-01").unwrap();
    let installed = Filter::kind("ime_install")
        .device(&id)
        .field("state", "installed");
    let v = w
        .journal()
        .filter(installed.clone())
        .verify(Expectation::Exactly(1))
        .await
        .unwrap();
    assert!(v.ok, "{}", v.message);
    let at = &w.journal().filter(installed).events().await.unwrap()[0].at;
    let at = server::clock::parse(at).unwrap();
    assert!(
        at > asked && at <= asked + Duration::minutes(15),
        "at the next 15-minute check-in, not before"
    );
    assert!(w.device("LAB-01").unwrap().state().ime.running);
    w.stop().await;
}

#[tokio::test]
async fn a_device_folder_is_current_when_an_advance_ends() {
    // Devices in a world write their folders once per advance, not after every run:
    // what is on disk afterwards must be what the device holds.
    let mut w = world(9).await;
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.advance(Duration::minutes(20)).await;
    assert!(w.require_ime("LAB-01").await.unwrap());
    w.advance(Duration::hours(2)).await;
    let live = w.device("LAB-01").unwrap();
    let dir = live.device().dir().to_owned();
    let on_disk = agent::Agent::open(&dir).unwrap();
    assert!(on_disk.state().ime.installed && on_disk.state().ime.running);
    assert_eq!(
        on_disk.state().ime.next_checkin,
        live.state().ime.next_checkin
    );
    assert_eq!(on_disk.state().next_poll, live.state().next_poll);
    let ime_key = r"HKLM\SOFTWARE\Microsoft\IntuneManagementExtension";
    assert!(on_disk.device().registry.key_exists(ime_key));
    // The check-ins' log lines: on disk before anything reads them through the drive.
    let logs = dir.join("C/ProgramData/Microsoft/IntuneManagementExtension/Logs");
    let text = std::fs::read_to_string(logs.join("AppWorkload.log")).unwrap();
    let lines = agent::cmtrace::messages(&live.device().drive, "AppWorkload.log");
    assert!(lines.len() > 3, "{lines:?}");
    assert_eq!(text.lines().count(), lines.len(), "{text}");
    w.stop().await;
}

#[tokio::test]
async fn a_wrong_expectation_fails_with_the_closest_events() {
    let mut w = world(3).await;
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.settle().await;
    let id = w.device_id("LAB-01").unwrap();
    let v = w
        .journal()
        .filter(
            Filter::kind("session_ended")
                .device(&id)
                .field("outcome", "aborted"),
        )
        .verify(Expectation::AtLeast(1))
        .await
        .unwrap();
    assert!(!v.ok);
    assert_eq!(v.found, 0);
    let closest = &v.near_misses[0];
    assert_eq!(closest.event.kind, "session_ended");
    assert_eq!(closest.missed, [r#"outcome = "aborted""#]);
    w.stop().await;
}

#[tokio::test]
async fn the_same_seed_gives_the_same_journal() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut w = world(42).await;
        w.add_device("LAB-01", Default::default()).await.unwrap();
        w.add_device("LAB-02", Default::default()).await.unwrap();
        w.settle().await;
        w.require_ime("LAB-02").await.unwrap();
        w.advance(Duration::hours(12)).await;
        runs.push(w.fingerprint().await.unwrap());
        w.stop().await;
    }
    assert!(runs[0].len() > 50);
    assert_eq!(runs[0], runs[1]);

    let mut other = world(43).await;
    other
        .add_device("LAB-01", Default::default())
        .await
        .unwrap();
    let different = other.device_id("LAB-01").unwrap();
    other.stop().await;
    assert_ne!(runs[0][0].1, different, "another seed, another device");
}

#[tokio::test]
async fn devices_retry_a_stopped_server_and_come_back_when_it_starts() {
    let mut w = world(4).await;
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.advance(Duration::minutes(10)).await;
    let before = w.journal().all().count().await.unwrap();

    w.stop_server().await.unwrap();
    assert!(
        w.journal().all().count().await.is_err(),
        "no journal while stopped"
    );
    w.advance(Duration::hours(2)).await;
    assert!(
        w.device_errors
            .iter()
            .any(|(_, device, _)| device == "LAB-01"),
        "the device could not reach the server"
    );

    w.start_server().await.unwrap();
    let stopped_at = w.now();
    w.advance(Duration::minutes(10)).await;
    let after = Filter::kind("session_started").since(stopped_at);
    assert!(w.journal().filter(after).count().await.unwrap() >= 1);
    assert!(
        w.journal().all().count().await.unwrap() > before,
        "the journal kept what happened before the stop"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_scenario_can_stop_and_start_the_server_and_enroll_a_device_late() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server-down.toml");
    let (report, world) = testbed::scenario::run(&path, None, |_, _| {})
        .await
        .unwrap();
    for e in &report.expectations {
        assert!(
            e.ok,
            "line {}: {}",
            e.line,
            testbed::report::failure_text(e)
        );
    }
    assert_eq!(report.expectations.len(), 3);
    world.stop().await;
}

/// A device's management sessions, oldest first.
async fn sessions(w: &World, id: &str) -> Vec<server::journal::Entry> {
    w.journal()
        .filter(Filter::kind("session_started").device(id))
        .events()
        .await
        .unwrap()
}

#[tokio::test]
async fn sync_device_and_reboot_now_reach_the_device_by_push() {
    use testbed::AdminBody;
    let mut w = world(5).await;
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.require_ime("LAB-01").await.unwrap();
    w.advance(Duration::hours(4)).await;
    let id = w.device_id("LAB-01").unwrap();
    let before = sessions(&w, &id).await.len();
    let pushed_at = w.now();

    // The next scheduled session is hours away; a sync comes at once.
    let (status, body) = w
        .admin(
            "POST",
            &format!("/v1.0/deviceManagement/managedDevices/{id}/syncDevice"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    w.advance(Duration::minutes(1)).await;
    let after = sessions(&w, &id).await;
    assert_eq!(after.len(), before + 1, "one session, now");
    assert_eq!(
        after.last().unwrap().at,
        server::clock::format(pushed_at),
        "at the moment of the push"
    );

    // A reboot: the IME stops, Windows is down for a while, the IME starts again.
    let (status, body) = w
        .admin(
            "POST",
            &format!("/beta/deviceManagement/managedDevices/{id}/rebootNow"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let rebooted_at = w.now();
    w.advance(Duration::minutes(10)).await;
    let records = agent::cmtrace::records(
        &w.device("LAB-01").unwrap().device().drive,
        "IntuneManagementExtension.log",
    );
    let stopped = records
        .iter()
        .rev()
        .find(|(_, m)| m == "EMS Agent Stopped")
        .map(|(t, _)| *t);
    assert_eq!(stopped, Some(rebooted_at), "stopped at the push");
    let actions = w
        .journal()
        .filter(Filter::kind("device_action").device(&id))
        .count()
        .await
        .unwrap();
    assert_eq!(actions, 2);
    w.stop().await;
}

#[tokio::test]
async fn shut_down_keeps_a_device_silent_until_it_is_powered_on() {
    use testbed::AdminBody;
    let mut w = world(5).await;
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.require_ime("LAB-01").await.unwrap();
    w.advance(Duration::hours(4)).await;
    let id = w.device_id("LAB-01").unwrap();
    let (status, body) = w
        .admin(
            "POST",
            &format!("/beta/deviceManagement/managedDevices/{id}/shutDown"),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let off_at = w.now();
    let before = sessions(&w, &id).await.len();
    // Two days: eight-hourly sessions, hourly check-ins and the daily health check
    // would all have come.
    w.advance(Duration::days(2)).await;
    assert!(w.device("LAB-01").unwrap().is_powered_off());
    assert_eq!(
        sessions(&w, &id).await.len(),
        before,
        "no session while off"
    );
    let log = |w: &World| {
        agent::cmtrace::records(
            &w.device("LAB-01").unwrap().device().drive,
            "IntuneManagementExtension.log",
        )
    };
    let last = log(&w).last().map(|(t, m)| (*t, m.clone()));
    assert_eq!(
        last,
        Some((off_at, "EMS Agent Stopped".to_owned())),
        "the IME stopped and wrote nothing since"
    );

    w.power_on("LAB-01").unwrap();
    let on_at = w.now();
    w.advance(Duration::minutes(10)).await;
    let after = sessions(&w, &id).await;
    assert_eq!(after.len(), before + 1, "it checks in as it boots");
    assert_eq!(after.last().unwrap().at, server::clock::format(on_at));
    assert!(
        log(&w)
            .iter()
            .any(|(t, m)| *t > on_at && m.contains("EMS Agent Started")),
        "the IME starts once Windows is up"
    );
    assert!(
        w.power_on("LAB-01").is_err(),
        "a device that is on cannot be powered on"
    );

    let (status, body) = w
        .admin(
            "POST",
            "/beta/deviceManagement/managedDevices/NOPE/syncDevice",
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    w.stop().await;
}
