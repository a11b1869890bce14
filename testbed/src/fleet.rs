//! `tenantless fleet`: N devices for D virtual days, with throughput figures.

use std::io::Write;
use std::time::Instant;

use chrono::Duration;
use server::journal::Filter;

use crate::world::{World, WorldError, WorldOptions};

/// What a fleet run measured.
#[derive(Debug, Clone)]
pub struct FleetReport {
    /// Devices.
    pub devices: usize,
    /// Virtual days.
    pub days: u32,
    /// Wall time of the simulated days (enrollment excluded), seconds.
    pub wall_seconds: f64,
    /// Wall time of enrolling the fleet, seconds.
    pub enroll_seconds: f64,
    /// Management sessions run.
    pub sessions: usize,
    /// Devices that reported the workload's app installed.
    pub app_installs: usize,
    /// Script results reported.
    pub script_results: usize,
    /// Inventories uploaded.
    pub inventories: usize,
    /// Peak resident memory of the process, MiB (Linux).
    pub peak_mib: Option<f64>,
}

impl FleetReport {
    /// Virtual seconds simulated per wall second.
    pub fn speed(&self) -> f64 {
        f64::from(self.days) * 86_400.0 / self.wall_seconds.max(1e-9)
    }
}

/// How many devices run at once. Every answer waits for its commit, and requests that
/// finish together share one (group commit): with more devices in flight a commit
/// serves more of them (1,000 devices x 7 days: about 125,000 commits at 64, 12,000 at
/// 256, and 59-78 s instead of about 100 s; 512 was no faster).
const PARALLEL: usize = 256;

/// Enrolls `devices` devices (ECDSA keys), asks for the IME on all of them, assigns the
/// workload (a required app whose first install exits 1618, a platform script; the
/// IME inventories daily) and runs `days` virtual days.
pub async fn run(
    devices: usize,
    days: u32,
    seed: u64,
    out: &mut impl Write,
) -> Result<FleetReport, WorldError> {
    // A fleet's files are scratch: keep them in memory when the machine offers a tmpfs
    // (unless TMPDIR says otherwise), as file creation is most of a device's cost.
    let shm = std::path::Path::new("/dev/shm");
    let scratch = (std::env::var_os("TMPDIR").is_none() && shm.is_dir()).then(|| shm.to_owned());
    let mut world = World::start(WorldOptions {
        seed,
        fast_keys: true,
        scratch,
        parallel: PARALLEL,
        ..WorldOptions::default()
    })
    .await?;
    let started = Instant::now();
    let names: Vec<String> = (0..devices).map(|n| format!("FLEET-{n:05}")).collect();
    for name in &names {
        world.create_device(name, Default::default())?;
    }
    world.enroll_all(&names).await?;
    for name in &names {
        world.require_ime(name).await?;
    }
    crate::workload::required_app(
        &world,
        "Fleet App",
        "{F1EE7000-0000-4000-8000-000000000001}",
        vec![1618, 0],
    )
    .await?;
    crate::workload::script(&world, "Fleet script", "#!/bin/sh\necho compliant\n").await?;
    let enroll_seconds = started.elapsed().as_secs_f64();
    let _ = writeln!(out, "enrolled {devices} devices in {enroll_seconds:.1} s");
    let started = Instant::now();
    for day in 1..=days {
        world.advance(Duration::days(1)).await;
        let _ = writeln!(
            out,
            "  day {day}/{days} done at {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    let sessions = world
        .journal()
        .filter(Filter::kind("session_started"))
        .count()
        .await?;
    let installed = Filter::kind("app_state_changed").field("newCompliance", 1);
    let installs = world.journal().filter(installed).count().await?;
    let scripts = world
        .journal()
        .filter(Filter::kind("script_result"))
        .count()
        .await?;
    let inventories = world
        .journal()
        .filter(Filter::kind("inventory"))
        .count()
        .await?;
    let _ = writeln!(
        out,
        "workload: {installs} app installs (after one 1618 retry each), {scripts} script results, {inventories} inventories"
    );
    let report = FleetReport {
        devices,
        days,
        wall_seconds,
        enroll_seconds,
        sessions,
        app_installs: installs,
        script_results: scripts,
        inventories,
        peak_mib: peak_memory_mib(),
    };
    let _ = writeln!(
        out,
        "{devices} devices x {days} days: {sessions} sessions in {wall_seconds:.2} s wall = {:.0} world-seconds per wall-second; peak memory {}",
        report.speed(),
        report.peak_mib.map(|m| format!("{m:.0} MiB")).unwrap_or_else(|| "unknown".into())
    );
    if !world.device_errors.is_empty() {
        let _ = writeln!(
            out,
            "{} device errors, first: {:?}",
            world.device_errors.len(),
            world.device_errors[0]
        );
    }
    world.stop().await;
    Ok(report)
}

/// VmHWM from /proc/self/status.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
