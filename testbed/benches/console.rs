//! How fast the lab console answers: every view of the demo's device after its virtual
//! week, then the world view of a 1,000-device fleet a day into its life (paged). Prints
//! the median and slowest of several renders per page; it asserts nothing. Run:
//! `cargo bench -p testbed --bench console`.

use std::time::{Duration, Instant};

use testbed::console::Console;
use testbed::{World, WorldOptions};

const RENDERS: usize = 7;

/// Serves `world` on a free port; returns the base URL, the stop switch and the task.
async fn serve(
    world: World,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<World>>,
) {
    let console = Console::bind(world, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind");
    let base = format!("http://{}", console.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(console.serve(async {
        let _ = stopped.await;
    }));
    (base, stop, task)
}

/// Renders `path` [`RENDERS`] times; prints the median and the slowest.
async fn time(http: &reqwest::Client, base: &str, label: &str, path: &str) {
    let mut took = Vec::new();
    let mut bytes = 0;
    for _ in 0..RENDERS {
        let started = Instant::now();
        let answer = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answer");
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        bytes = answer.bytes().await.expect("body").len();
        took.push(started.elapsed());
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<42} median {:>7.1} ms  slowest {:>7.1} ms  ({} kB)",
        ms(took[RENDERS / 2]),
        ms(took[RENDERS - 1]),
        bytes / 1024
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("temporary folder");

    // One device, a virtual week (the demo).
    let options = testbed::demo::DemoOptions {
        dir: dir.path().join("demo"),
        seed: 1,
    };
    let world = testbed::demo::run(&options, &mut std::io::sink())
        .await
        .expect("the demo");
    let (base, stop, task) = serve(world).await;
    println!("The demo's device after a virtual week:");
    let device = "/devices/DESKTOP-DEMO01";
    let win32apps =
        "HKEY_LOCAL_MACHINE%5CSOFTWARE%5CMicrosoft%5CIntuneManagementExtension%5CWin32Apps";
    for (label, path) in [
        ("world", "/".to_owned()),
        ("device (timeline, apps, sessions)", device.to_owned()),
        (
            "device, one hour of the timeline",
            format!("{device}?from=2026-11-24T09:00:00.000Z&to=2026-11-24T10:00:00.000Z"),
        ),
        ("session (SyncML viewer)", format!("{device}/sessions/7")),
        (
            "registry, Win32Apps",
            format!("{device}/registry?key={win32apps}"),
        ),
        ("logs, all of them", format!("{device}/logs")),
        ("logs, filtered", format!("{device}/logs?q=lpExitCode")),
        ("journal", "/journal".to_owned()),
        ("apps", "/apps".to_owned()),
    ] {
        time(&http, &base, label, &path).await;
    }
    let _ = stop.send(());
    task.await.expect("served").expect("stopped").stop().await;

    // 1,000 devices, a day into their life: the world view, a page at a time.
    let devices = 1000;
    let mut world = World::start(WorldOptions {
        fast_keys: true,
        dir: Some(dir.path().join("fleet")),
        ..WorldOptions::default()
    })
    .await
    .expect("a world");
    let names: Vec<String> = (0..devices).map(|n| format!("FLEET-{n:04}")).collect();
    for name in &names {
        world
            .create_device(name, Default::default())
            .expect("a device");
    }
    world.enroll_all(&names).await.expect("enrolled");
    world.advance(chrono::Duration::hours(24)).await;
    let (base, stop, task) = serve(world).await;
    println!("{devices} devices a day into their life:");
    let last = devices / testbed::console::DEVICES_PER_PAGE - 1;
    time(&http, &base, "world, first page", "/").await;
    time(&http, &base, "world, last page", &format!("/?page={last}")).await;
    time(
        &http,
        &base,
        "one device of the fleet",
        "/devices/FLEET-0500",
    )
    .await;
    let _ = stop.send(());
    task.await.expect("served").expect("stopped").stop().await;
}
