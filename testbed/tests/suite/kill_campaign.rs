//! The fault campaign: a small fleet runs against a `tenantless-server` process that is
//! killed with SIGKILL at seeded moments while the devices talk to it, and restarted on
//! the same data. Every result a device saw acknowledged is in the journal exactly once,
//! session numbers are unique, and the journal agrees with the state tables.
//!
//! `TENANTLESS_KILLS` (20 by default) and `TENANTLESS_SEED` change the campaign.

use crate::{cluster, common, seeded};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration as Wall;

use chrono::Duration;
use common::{free_port, server_on};
use seeded::{env_number, Lcg};
use server::journal::{Entry, Filter};
use testbed::remote_server::RemoteOptions;
use testbed::world::{AdminBody, World, WorldOptions};

/// The kinds of event a device's acknowledged result entries become, one each.
const RESULT_KINDS: [&str; 3] = ["app_report", "script_result", "remediation_result"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_loses_nothing_acknowledged_when_its_server_is_killed() {
    campaign(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_loses_nothing_acknowledged_when_its_server_on_postgres_is_killed() {
    let Some(cluster) = cluster::Cluster::start_or_skip() else {
        return;
    };
    campaign(Some(cluster.url.clone())).await;
}

async fn campaign(db: Option<String>) {
    let kills = env_number("TENANTLESS_KILLS", 20);
    let seed = env_number("TENANTLESS_SEED", 16);
    eprintln!("fleet kill campaign: {kills} kills, TENANTLESS_SEED={seed}");
    let mut rng = Lcg(seed);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let (device_addr, admin_addr) = (free_port(), free_port());
    let server = Arc::new(Mutex::new(Some(server_on(
        &data,
        db.as_deref(),
        device_addr,
        admin_addr,
    ))));

    let mut world = World::start(WorldOptions {
        seed,
        dir: Some(tmp.path().join("world")),
        remote: Some(RemoteOptions {
            admin_url: format!("http://{admin_addr}"),
            admin_token: "tenantless-admin".into(),
            enroll_secret: "tenantless".into(),
        }),
        parallel: 4,
        ..WorldOptions::default()
    })
    .await
    .unwrap();
    let names: Vec<String> = (0..4).map(|n| format!("KILL-{n:02}")).collect();
    for name in &names {
        world.create_device(name, Default::default()).unwrap();
    }
    world.enroll_all(&names).await.unwrap();
    for name in &names {
        world.require_ime(name).await.unwrap();
    }
    let app = testbed::workload::required_app(
        &world,
        "Campaign App",
        "{C0FFEE00-0000-4000-8000-000000000016}",
        vec![1618, 0],
    )
    .await
    .unwrap();
    let script = testbed::workload::script(&world, "Campaign script", "#!/bin/sh\nexit 0\n")
        .await
        .unwrap();
    let remediation = testbed::workload::remediation(
        &world,
        "Campaign remediation",
        "#!/bin/sh\necho fine\nexit 0\n",
        "#!/bin/sh\nexit 0\n",
        serde_json::json!({
            "@odata.type": "#microsoft.graph.deviceHealthScriptHourlySchedule",
            "interval": 1, "time": "00:00:00", "useUtc": true,
        }),
    )
    .await
    .unwrap();
    world.advance(Duration::minutes(30)).await;

    // Each round: a stretch of world time with the devices talking to the server, and a
    // SIGKILL at a seeded wall-clock moment inside it, then a restart on the same data.
    for _ in 0..kills {
        let after = Wall::from_millis(rng.below(250));
        let killer = {
            let server = server.clone();
            let (data, db) = (data.clone(), db.clone());
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let mut slot = server.lock().unwrap();
                drop(slot.take()); // SIGKILL
                *slot = Some(server_on(&data, db.as_deref(), device_addr, admin_addr));
            })
        };
        world
            .advance(Duration::hours(1 + rng.below(4) as i64))
            .await;
        killer.join().unwrap();
    }
    // A quiet day with the server up: every device sends what waits.
    world.advance(Duration::days(1)).await;
    assert!(
        !world.device_errors.is_empty(),
        "the kills reached the devices"
    );

    let mut acknowledged_total = 0;
    for name in &names {
        let agent = world.device(name).unwrap();
        let outbox = &agent.state().ime.outbox;
        assert!(outbox.waiting.is_empty(), "{name}: nothing left to send");
        acknowledged_total += outbox.acknowledged;
        let id = world.device_id(name).unwrap();
        let mut recorded = 0;
        for kind in RESULT_KINDS {
            let events = kind_events(&world, &id, kind).await;
            recorded += events.len() as u64;
        }
        assert_eq!(
            recorded, outbox.acknowledged,
            "{name}: every acknowledged result is in the journal once"
        );
        state_agrees(&world, &id, &app, &script, &remediation).await;
    }
    assert!(
        acknowledged_total > 100,
        "the fleet reported: {acknowledged_total}"
    );

    let started = world
        .journal()
        .filter(Filter::kind("session_started"))
        .events()
        .await
        .unwrap();
    let rows: BTreeSet<i64> = started
        .iter()
        .map(|e| e.payload["session"].as_i64().unwrap_or_default())
        .collect();
    assert_eq!(
        rows.len(),
        started.len(),
        "session numbers are never reused"
    );
    eprintln!(
        "{kills} kills: {acknowledged_total} results acknowledged, {} sessions, {} device errors",
        started.len(),
        world.device_errors.len()
    );
    drop(world);
    drop(server.lock().unwrap().take());
}

async fn kind_events(world: &World, device: &str, kind: &str) -> Vec<Entry> {
    world
        .journal()
        .filter(Filter::kind(kind).device(device))
        .events()
        .await
        .unwrap()
}

/// The state tables hold what the device's last result of each kind said.
async fn state_agrees(world: &World, device: &str, app: &str, script: &str, remediation: &str) {
    let row = |path: String| async move {
        let (status, body) = world.admin("GET", &path, AdminBody::None).await;
        assert_eq!(status, 200, "{path}: {body}");
        let rows: BTreeMap<String, serde_json::Value> = body["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let id = r["deviceId"]
                    .as_str()
                    .or(r["managedDevice"]["id"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                (id, r)
            })
            .collect();
        rows.get(device).cloned()
    };

    let last = kind_events(world, device, "app_report").await.pop();
    let status = row(format!(
        "/beta/deviceAppManagement/mobileApps/{app}/deviceStatuses"
    ))
    .await;
    let (last, status) = (last.expect("an app report"), status.expect("an app status"));
    assert_eq!(
        status["@tenantless.details"]["complianceState"], last.payload["compliance"],
        "{device}"
    );
    assert_eq!(
        status["@tenantless.details"]["enforcementState"], last.payload["enforcement"],
        "{device}"
    );

    let last = kind_events(world, device, "script_result").await.pop();
    let state = row(format!(
        "/beta/deviceManagement/deviceManagementScripts/{script}/deviceRunStates"
    ))
    .await;
    let (last, state) = (last.expect("a script result"), state.expect("a run state"));
    assert_eq!(state["errorCode"], last.payload["errorCode"], "{device}");

    let last = kind_events(world, device, "remediation_result").await.pop();
    let state = row(format!(
        "/beta/deviceManagement/deviceHealthScripts/{remediation}/deviceRunStates"
    ))
    .await;
    let (last, state) = (
        last.expect("a remediation result"),
        state.expect("a run state"),
    );
    assert_eq!(
        state["detectionState"], last.payload["detectionState"],
        "{device}"
    );
    assert_eq!(
        state["@tenantless.details"]["runs"].as_u64(),
        Some(kind_events(world, device, "remediation_result").await.len() as u64),
        "{device}: the run count is the journal's"
    );
}
