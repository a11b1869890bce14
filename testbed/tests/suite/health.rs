//! Client health end to end on the world clock: HealthCheck.xml arrives with the IME, the
//! daily evaluation runs within an hour after midnight, restarts a stopped IME (which
//! then checks in), writes ClientHealth.log, and the server records the agent's health
//! and IME version.

use agent::ime::health::{self, LOG};
use chrono::{Duration, Timelike};
use serde_json::json;
use testbed::{AdminBody, Filter, World, WorldOptions};

async fn world_with_ime() -> World {
    let mut w = World::start(WorldOptions::default()).await.unwrap();
    w.add_device("LAB-01", Default::default()).await.unwrap();
    w.settle().await;
    assert!(w.require_ime("LAB-01").await.unwrap());
    w.advance(Duration::minutes(10)).await;
    assert!(w.device("LAB-01").unwrap().state().ime.running);
    w
}

async fn health_reports(w: &World, restarted: bool) -> usize {
    w.journal()
        .filter(Filter::kind("health_report").field("restarted", restarted))
        .count()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stopped_ime_is_restarted_by_the_health_check() {
    let mut w = world_with_ime().await;
    let agent = w.device("LAB-01").unwrap();
    assert_eq!(
        health::listed_checks(agent.device()),
        ["ServiceRunning", "AgentStatusReport"],
        "HealthCheck.xml lists the checks"
    );
    let due = agent.state().ime.health_due.unwrap();
    assert!(due.hour() == 0, "within an hour after midnight: {due}");

    let now = w.now();
    w.device_mut("LAB-01").unwrap().stop_ime(now).unwrap();
    let checkins_before = w
        .journal()
        .filter(Filter::kind("gateway_call").field("reason", "AgentRestart"))
        .count()
        .await
        .unwrap();
    // Stopped: nothing runs until the evaluation.
    w.advance(due - w.now() - Duration::seconds(1)).await;
    assert!(!w.device("LAB-01").unwrap().state().ime.running);
    w.advance(Duration::seconds(1)).await;

    let agent = w.device("LAB-01").unwrap();
    assert!(
        agent.state().ime.running,
        "the health check started the IME"
    );
    let log = agent::cmtrace::messages(&agent.device().drive, LOG);
    for line in [
        "[ClientHealth] Service IntuneManagementExtension is stopped; starting it",
        "[ClientHealth] Agent status report sent",
    ] {
        assert!(log.iter().any(|m| m == line), "{line:?} not in {log:#?}");
    }
    assert_eq!(health_reports(&w, true).await, 1);
    let checkins = w
        .journal()
        .filter(Filter::kind("gateway_call").field("reason", "AgentRestart"))
        .count()
        .await
        .unwrap();
    assert!(checkins > checkins_before, "the restarted IME checked in");

    let id = w.device_id("LAB-01").unwrap();
    let (_, device) = w
        .admin(
            "GET",
            &format!("/beta/deviceManagement/managedDevices/{id}"),
            AdminBody::None,
        )
        .await;
    let health = &device["@tenantless.details"]["agentHealth"];
    assert_eq!(health["healthState"], "remediated", "{device}");
    assert_eq!(
        health["imeVersion"],
        json!(w.device("LAB-01").unwrap().state().ime.version)
    );

    // The next day the service is running: a healthy report, nothing restarted.
    w.advance(Duration::days(1)).await;
    assert_eq!(health_reports(&w, false).await, 1);
    assert_eq!(health_reports(&w, true).await, 1);
    let (_, device) = w
        .admin(
            "GET",
            &format!("/beta/deviceManagement/managedDevices/{id}"),
            AdminBody::None,
        )
        .await;
    assert_eq!(
        device["@tenantless.details"]["agentHealth"]["healthState"],
        "healthy"
    );
    w.stop().await;
}
