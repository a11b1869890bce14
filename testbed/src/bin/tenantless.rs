//! `tenantless`: the command line of the testbed.

/// mimalloc, not the system's allocator: a fleet's tasks move between tokio's worker
/// threads, and glibc's per-arena locks made frees from the other thread wait (a fifth
/// of the fleet's CPU went to malloc and free; 1,000 devices x 2 days 23-26 s -> 16-20 s).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use server::journal::Entry;

/// Tenantless: a mock Intune-style service and simulated Windows devices.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the whole story: a device enrolls, the IME arrives by SyncML, the timeline.
    Demo {
        /// Where the demo keeps the server's data and the device (emptied first).
        #[arg(long, default_value = "./tenantless-demo")]
        dir: PathBuf,
        /// The world's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Then keep the world open in the lab console, in a browser (default address
        /// 127.0.0.1:8090).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = testbed::console::DEFAULT_ADDR)]
        serve: Option<String>,
    },
    /// Run a scenario, then keep its world open in the lab console.
    Lab {
        /// The scenario file.
        scenario: PathBuf,
        /// Run with this seed instead of the scenario's own.
        #[arg(long)]
        seed: Option<u64>,
        /// The console's address.
        #[arg(long, value_name = "ADDR", default_value = testbed::console::DEFAULT_ADDR)]
        serve: String,
    },
    /// Run scenario files (or folders of them); exit code 1 if an expectation fails.
    Run {
        /// Scenario files or folders.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Run with this seed instead of each scenario's own.
        #[arg(long)]
        seed: Option<u64>,
        /// Write a JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write a JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write one self-contained HTML report here (expectations, near misses, each
        /// device's timeline), to keep as a CI artefact.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Run the world N times faster than real time (e.g. 60) instead of jumping,
        /// for a person to watch the logs and registry change.
        #[arg(long)]
        pace: Option<f64>,
        /// Run against this tenantless-server's admin URL (started with `--clock
        /// manual`; it is reset before each scenario) instead of one in-process. Replicas
        /// of one server behind one PostgreSQL: their admin URLs, comma-separated.
        #[arg(long, env = "TENANTLESS_SERVER")]
        server: Option<String>,
        /// The remote server's admin token.
        #[arg(
            long,
            default_value = "tenantless-admin",
            env = "TENANTLESS_ADMIN_TOKEN"
        )]
        token: String,
        /// The remote server's enrollment secret.
        #[arg(long, default_value = "tenantless", env = "TENANTLESS_ENROLL_SECRET")]
        enroll_secret: String,
        /// Then keep the world of the (one) scenario open in the lab console (default
        /// address 127.0.0.1:8090).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = testbed::console::DEFAULT_ADDR)]
        serve: Option<String>,
    },
    /// Read a running server's journal as a timeline.
    Journal {
        #[command(flatten)]
        server: ServerArgs,
        /// Only this device (id).
        #[arg(long)]
        device: Option<String>,
        /// Only this kind of event.
        #[arg(long)]
        kind: Option<String>,
        /// Only events after this sequence number, or at or after this time.
        #[arg(long)]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Print the events as JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Show a management session's SyncML messages in order, readably.
    Syncml {
        #[command(flatten)]
        server: ServerArgs,
        /// The session's id (from the journal or the admin API).
        session: i64,
    },
    /// Build a .intunewin from a setup folder (as IntuneWinAppUtil does).
    Pack {
        /// The folder with the setup file and everything it needs.
        #[arg(long)]
        folder: PathBuf,
        /// The setup file, relative to the folder.
        #[arg(long)]
        setup: String,
        /// Where to write `<setup>.intunewin`.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Sign PowerShell scripts (in place) for EnforceSignatureCheck, with the publisher
    /// kept in --publisher (created there on first use); prints how to make a device
    /// trust it.
    Sign {
        /// The scripts.
        #[arg(required = true)]
        scripts: Vec<PathBuf>,
        /// The folder holding publisher.key and publisher.cer.
        #[arg(long, default_value = "./tenantless-publisher")]
        publisher: PathBuf,
        /// The common name of a new publisher's certificate.
        #[arg(long, default_value = "Tenantless Script Signing")]
        subject: String,
    },
    /// Print a device's IME logs, rolled files included, merged in time order
    /// (warnings and errors coloured on a terminal).
    Logs {
        /// The device: its name in --dir's world, or its folder.
        device: String,
        /// The world's folder (the demo's by default).
        #[arg(long, default_value = "./tenantless-demo")]
        dir: PathBuf,
        /// One log file only, e.g. AppWorkload.log.
        #[arg(long)]
        file: Option<String>,
        /// Only records at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only records whose message contains this text.
        #[arg(long)]
        grep: Option<String>,
    },
    /// Tell an app's story on a device: its state messages decoded by name, its
    /// installer runs with their exit codes and meaning, its GRS entry and next retry.
    ExplainApp {
        /// The device: its name in --dir's world, or its folder.
        device: String,
        /// The app's id or display name.
        app: String,
        /// The world's folder (the demo's by default).
        #[arg(long, default_value = "./tenantless-demo")]
        dir: PathBuf,
    },
    /// Enroll N devices and run them for D virtual days, printing throughput.
    Fleet {
        /// How many devices.
        #[arg(long, default_value_t = 100)]
        devices: usize,
        /// How many virtual days.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// The world's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args, Debug)]
struct ServerArgs {
    /// The server's admin URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The admin API's bearer token.
    #[arg(
        long,
        default_value = "tenantless-admin",
        env = "TENANTLESS_ADMIN_TOKEN"
    )]
    token: String,
}

impl ServerArgs {
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<serde_json::Value, String> {
        let url = format!("{}{path}", self.server.trim_end_matches('/'));
        let response = testbed::remote_server::admin_client()?
            .get(&url)
            .bearer_auth(&self.token)
            .query(query)
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "{url}: {} {}",
                status.as_u16(),
                testbed::remote_server::error_message(&body)
            ));
        }
        Ok(body)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Diagnostics on stderr, quiet unless RUST_LOG asks (e.g. RUST_LOG=server=debug).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    // One thread for a world that runs its devices one by one: the server and the
    // devices hand work to each other constantly, and cross-thread wake-ups cost more
    // than they give. A fleet runs many devices at once, and uses every core.
    let mut builder = match cli.command {
        Command::Fleet { .. } => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenantless: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenantless: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Demo { dir, seed, serve } => {
            let world = testbed::demo::run(&testbed::demo::DemoOptions { dir, seed }, &mut out)
                .await
                .map_err(|e| e.to_string())?;
            drop(out);
            match serve {
                Some(addr) => serve_console(world, &addr).await,
                None => {
                    world.stop().await;
                    Ok(())
                }
            }
        }
        Command::Lab {
            scenario,
            seed,
            serve,
        } => {
            let options = testbed::scenario::RunOptions {
                seed,
                ..Default::default()
            };
            let (world, outcome) =
                run_scenarios(vec![scenario], &options, Reports::default(), true).await;
            drop(out);
            if let Some(world) = world {
                serve_console(world, &serve).await?;
            }
            outcome
        }
        Command::Journal {
            server,
            device,
            kind,
            since,
            limit,
            json,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            for (key, value) in [("device", device), ("kind", kind), ("since", since)] {
                if let Some(v) = value {
                    query.push((key, v));
                }
            }
            let body = server.get("/testbed/events", &query).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&body["value"]).unwrap_or_default()
                );
                return Ok(());
            }
            let events: Vec<Entry> =
                serde_json::from_value(body["value"].clone()).map_err(|e| e.to_string())?;
            let devices = server
                .get("/beta/deviceManagement/managedDevices", &[])
                .await?;
            let names: BTreeMap<String, String> = devices["value"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    (
                        d["id"].as_str().unwrap_or_default().to_owned(),
                        d["deviceName"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            for line in testbed::timeline::render(&events, &names) {
                println!("{line}");
            }
            Ok(())
        }
        Command::Syncml { server, session } => {
            let body = server
                .get(&format!("/tenantless/sessions/{session}/messages"), &[])
                .await?;
            for m in body["value"].as_array().into_iter().flatten() {
                let arrow = if m["direction"] == "in" {
                    "device -> server"
                } else {
                    "server -> device"
                };
                println!(
                    "── {} MsgID {} at {} ({arrow})",
                    if m["direction"] == "in" { "▶" } else { "◀" },
                    m["msgId"].as_str().unwrap_or_default(),
                    m["at"].as_str().unwrap_or_default()
                );
                let raw = m["body"].as_str().unwrap_or_default();
                match syncml::xml::pretty(raw) {
                    Ok(text) => print!("{text}"),
                    Err(_) => println!("{raw}"),
                }
                println!();
            }
            Ok(())
        }
        Command::Run {
            scenarios,
            seed,
            junit,
            json,
            html,
            pace,
            server,
            token,
            enroll_secret,
            serve,
        } => {
            let options = testbed::scenario::RunOptions {
                seed,
                pace,
                remote: server.map(|admin_url| testbed::remote_server::RemoteOptions {
                    admin_url,
                    admin_token: token,
                    enroll_secret,
                }),
            };
            if serve.is_some() && (scenarios.len() != 1 || scenarios[0].is_dir()) {
                return Err("--serve keeps one scenario's world open: name one file".into());
            }
            let (world, outcome) = run_scenarios(
                scenarios,
                &options,
                Reports { junit, json, html },
                serve.is_some(),
            )
            .await;
            drop(out);
            if let (Some(world), Some(addr)) = (world, serve) {
                serve_console(world, &addr).await?;
            }
            outcome
        }
        Command::Pack { folder, setup, out } => {
            let written = testbed::pack::pack(&folder, &setup, &out)?;
            println!("{}", written.display());
            Ok(())
        }
        Command::Sign {
            scripts,
            publisher,
            subject,
        } => sign(&scripts, &publisher, &subject),
        Command::Logs {
            device,
            dir,
            file,
            since,
            grep,
        } => {
            let since = match since {
                Some(t) => Some(
                    server::clock::parse(&t)
                        .ok_or_else(|| format!("--since {t:?} is not an RFC 3339 time"))?,
                ),
                None => None,
            };
            let agent = open_device(&device, &dir)?;
            let query = testbed::logs::LogQuery { file, since, grep };
            let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
            for record in testbed::logs::records(agent.device(), &query) {
                let _ = writeln!(out, "{}", testbed::logs::format(&record, colour));
            }
            Ok(())
        }
        Command::ExplainApp { device, app, dir } => {
            let agent = open_device(&device, &dir)?;
            let d = agent.device();
            let story = testbed::logs::explain_app(d, &app)?;
            let _ = write!(out, "{story}");
            Ok(())
        }
        Command::Fleet {
            devices,
            days,
            seed,
        } => testbed::fleet::run(devices, days, seed, &mut out)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

/// A device of a world (by name) or a device folder, opened read-only.
fn open_device(device: &str, world: &std::path::Path) -> Result<agent::Agent, String> {
    let dir = testbed::logs::device_dir(device, world)?;
    agent::Agent::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Serves the lab console for `world` until Ctrl-C, then stops the world.
async fn serve_console(world: testbed::World, addr: &str) -> Result<(), String> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| format!("--serve {addr:?}: {e} (use HOST:PORT, e.g. 127.0.0.1:8090)"))?;
    let console = testbed::console::Console::bind(world, addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let bound = console.local_addr().map_err(|e| e.to_string())?;
    println!("Lab console on http://{bound}/ (Ctrl-C to stop)");
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let world = console.serve(stop).await.map_err(|e| e.to_string())?;
    world.stop().await;
    Ok(())
}

/// Runs scenario files and reports them; with `keep`, also hands back the world of the
/// last one, still running (failed or not: that is when a person wants to look).
async fn run_scenarios(
    paths: Vec<PathBuf>,
    options: &testbed::scenario::RunOptions,
    reports: Reports,
    keep: bool,
) -> (Option<testbed::World>, Result<(), String>) {
    let mut kept = None;
    let outcome = run_and_report(paths, options, reports, keep.then_some(&mut kept)).await;
    (kept, outcome)
}

/// Where to write the reports of a run.
#[derive(Debug, Default)]
struct Reports {
    junit: Option<PathBuf>,
    json: Option<PathBuf>,
    html: Option<PathBuf>,
}

async fn run_and_report(
    paths: Vec<PathBuf>,
    options: &testbed::scenario::RunOptions,
    Reports { junit, json, html }: Reports,
    mut keep: Option<&mut Option<testbed::World>>,
) -> Result<(), String> {
    use testbed::scenario;
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(scenario::find(&p));
        } else {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err("no scenario files found".into());
    }
    let mut reports = Vec::new();
    let mut broken = Vec::new();
    let mut html_sections = Vec::new();
    for file in &files {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix:>40} [{bar:30}] {pos}/{len} steps")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(file.display().to_string());
        let outcome = scenario::run_with(file, options, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await;
        bar.finish_and_clear();
        match outcome {
            Ok((report, world)) => {
                if html.is_some() {
                    html_sections.push(testbed::console::report::section(&world, &report).await);
                }
                match keep.as_deref_mut() {
                    Some(kept) => {
                        if let Some(earlier) = kept.replace(world) {
                            earlier.stop().await;
                        }
                    }
                    None => world.stop().await,
                }
                let mark = if report.passed() { "ok  " } else { "FAIL" };
                println!(
                    "{mark} {} ({}) - {} expectation(s), {} ms",
                    report.name,
                    report.file,
                    report.expectations.len(),
                    report.wall_ms
                );
                for e in report.expectations.iter().filter(|e| !e.ok) {
                    println!("     line {}: {}", e.line, e.description);
                    for line in testbed::report::failure_text(e).lines() {
                        println!("       {line}");
                    }
                }
                if !report.passed() {
                    println!("     TENANTLESS_SEED={} to replay", report.seed);
                }
                reports.push(report);
            }
            Err(e) => {
                println!("ERR  {e}");
                broken.push(e.to_string());
            }
        }
    }
    if let Some(path) = junit {
        std::fs::write(&path, testbed::report::junit(&reports))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = json {
        std::fs::write(&path, testbed::report::json(&reports))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = html {
        std::fs::write(&path, testbed::console::report::document(&html_sections))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let expectations: usize = reports.iter().map(|r| r.expectations.len()).sum();
    let failed: usize = reports
        .iter()
        .map(|r| r.expectations.iter().filter(|e| !e.ok).count())
        .sum();
    println!(
        "\n{} scenario(s): {} expectation(s) passed, {failed} failed, {} scenario(s) could not run",
        reports.len(),
        expectations - failed,
        broken.len()
    );
    if failed > 0 || !broken.is_empty() {
        return Err(format!(
            "{failed} expectation(s) failed, {} scenario(s) could not run",
            broken.len()
        ));
    }
    Ok(())
}

fn sign(scripts: &[PathBuf], dir: &std::path::Path, subject: &str) -> Result<(), String> {
    use testbed::sign;
    let (publisher, created) = sign::load_or_create(dir, subject, agent::clock::system_now())?;
    println!(
        "publisher {} (thumbprint {}){}",
        dir.display(),
        publisher.thumbprint(),
        if created { ", created" } else { "" }
    );
    for script in scripts {
        sign::sign_file(&publisher, script)?;
        println!("signed {}", script.display());
    }
    println!(
        "\nTo make a device trust this publisher, queue this command for it\n(POST /beta/deviceManagement/managedDevices/{{id}}/commands):\n{}",
        sign::trust_command(&publisher)
    );
    Ok(())
}
