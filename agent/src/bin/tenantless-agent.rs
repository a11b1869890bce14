//! `tenantless-agent`: one simulated Windows device on the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use agent::clock::system_now;
use agent::device::{DeviceProfile, RegValue};
use agent::{Agent, AgentError, EnrollRequest};
use clap::{Parser, Subcommand};

/// A simulated Windows device: enrolls into a Tenantless server (MS-MDE2), checks in
/// over OMA-DM, installs the IME when the server sends it, and keeps a registry, a
/// C: drive and installed programs in its device directory.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The device directory (created by `enroll`).
    #[arg(long, global = true, default_value = "./tenantless-device")]
    device_dir: PathBuf,
    /// Whose time the device lives in: `system`, or `server` (the world clock of a
    /// server started with --clock manual or scaled:N; `run` then follows it).
    #[arg(long, global = true, default_value = "system")]
    clock: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Enroll the device (creating it if the directory is empty), then check in once.
    Enroll(EnrollArgs),
    /// Enroll unless the directory already holds an enrolled device, then run until
    /// stopped (a container's device: `docker compose` starts it with this).
    Join(EnrollArgs),
    /// Run in real time: check in on the poll schedule, until interrupted.
    Run,
    /// Check in now (the Company Portal's "Sync"): a management session and an IME
    /// check-in.
    Sync,
    /// `intunemanagementextension://syncapp`: the IME checks in for app policy only.
    Syncapp,
    /// `intunemanagementextension://synccompliance`: the IME runs its custom compliance
    /// discovery scripts now and reports them.
    Synccompliance,
    /// Restart the IME service.
    RestartIme,
    /// Disconnect from management (Settings, Access work or school): the server hears
    /// of it (a 1226 alert), then the enrollment and what management installed go.
    Unenroll,
    /// Stop the IME service (the daily client health check starts it again).
    StopIme,
    /// Restart the device (clears a pending hard reboot; the IME and MDM check in).
    Reboot,
    /// Shut the device down: nothing runs until it is powered on.
    ShutDown,
    /// Power on a device that was shut down (it boots as after a restart).
    PowerOn,
    /// Company Portal: the apps available to the user, with their status (JSON).
    CompanyPortal,
    /// Install an available app, as a user does in Company Portal.
    InstallAvailable {
        /// The app's id or display name.
        app: String,
    },
    /// A user signs in to Windows: the device and its IME check in at once
    /// (CheckinReason UserLogOn), and the IME processes the user's apps in their session
    /// from now on.
    SignIn {
        /// The user principal name, e.g. bob@contoso.com.
        user: String,
    },
    /// A user signs out: the IME no longer processes their session.
    SignOut {
        /// The user principal name.
        user: String,
    },
    /// The signed-in user answers the IME's restart notification: `restart-now`, or
    /// `snooze` (for the assignment's snooze duration, until the countdown begins).
    AnswerRestart {
        /// `restart-now` or `snooze`.
        answer: String,
    },
    /// The toasts the IME showed on this device, oldest first (JSON).
    Notifications,
    /// Read and change the device's registry.
    Registry {
        #[command(subcommand)]
        action: RegistryCmd,
    },
    /// Show enrollment, last session, IME version and installed programs (JSON).
    Status,
    /// Exit 0 if the directory holds an enrolled device (a container's HEALTHCHECK).
    Health,
}

/// How a device enrolls.
#[derive(clap::Args, Debug)]
struct EnrollArgs {
    /// The server's base URL (https://host:port) or its discovery URL.
    #[arg(long)]
    server: String,
    /// The user's e-mail address.
    #[arg(long)]
    user: String,
    /// The enrollment secret (or TENANTLESS_ENROLL_SECRET, or --secret-file: a
    /// command line is visible to every user of the machine).
    #[arg(long, env = "TENANTLESS_ENROLL_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// A file holding the enrollment secret (its first line).
    #[arg(long, conflicts_with = "secret")]
    secret_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for the server, e.g. DATA_DIR/pki/ca.pem.
    #[arg(long)]
    ca: Vec<PathBuf>,
    /// A device profile (JSON) for a new device.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// The computer name of a new device.
    #[arg(long)]
    device_name: Option<String>,
    /// Use an ECDSA key instead of Windows' RSA-2048 (faster, for fleets).
    #[arg(long)]
    fast_keys: bool,
    /// Authenticate management sessions with the MD5 digest, not the certificate.
    #[arg(long)]
    digest: bool,
}

#[derive(Subcommand, Debug)]
enum RegistryCmd {
    /// Print a value, or all of a key's values and subkeys.
    Get {
        /// Key path, e.g. HKLM\SOFTWARE\Microsoft\IntuneManagementExtension.
        key: String,
        /// Value name (omit for the whole key).
        name: Option<String>,
    },
    /// Set a value.
    Set {
        /// Key path.
        key: String,
        /// Value name ("" for the default value).
        name: String,
        /// REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ, REG_DWORD, REG_QWORD or REG_BINARY.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The data (decimal or 0x hex for numbers, hex for binary).
        value: String,
    },
    /// Delete a value, or a key with everything under it.
    Delete {
        /// Key path.
        key: String,
        /// Value name (omit to delete the key).
        name: Option<String>,
    },
    /// Export as a Windows Registry Editor 5.00 file.
    Export {
        /// The key to export (default: everything).
        key: Option<String>,
        /// Write UTF-16LE with a BOM to this file, as regedit does (default: print).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenantless-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenantless-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open(dir: &Path) -> Result<Agent, AgentError> {
    if !Agent::exists(dir) {
        return Err(AgentError::Config(format!(
            "{} holds no device (run `tenantless-agent enroll` first)",
            dir.display()
        )));
    }
    Agent::open(dir)
}

fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed
}

/// Where "now" comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClockSource {
    System,
    Server,
}

/// Opens the device, does one thing to it now and says so.
async fn act(
    dir: &Path,
    source: ClockSource,
    action: fn(&mut Agent, chrono::DateTime<chrono::Utc>) -> Result<(), AgentError>,
    done: &str,
) -> Result<(), AgentError> {
    let mut agent = open(dir)?;
    let now = now_for(source, &mut agent).await?;
    action(&mut agent, now)?;
    println!("{done}");
    Ok(())
}

async fn now_for(
    source: ClockSource,
    agent: &mut Agent,
) -> Result<chrono::DateTime<chrono::Utc>, AgentError> {
    match source {
        ClockSource::System => Ok(system_now()),
        ClockSource::Server => {
            let addr = agent
                .state()
                .enrollment
                .as_ref()
                .map(|e| e.addr.clone())
                .ok_or(AgentError::NotEnrolled)?;
            let client = agent.client()?;
            agent::remote_clock::now(&client, &addr).await
        }
    }
}

async fn run(cli: Cli) -> Result<(), AgentError> {
    let dir = cli.device_dir;
    let source = match cli.clock.as_str() {
        "system" => ClockSource::System,
        "server" => ClockSource::Server,
        other => {
            return Err(AgentError::Config(format!(
                "--clock {other:?}: use system or server"
            )))
        }
    };
    match cli.command {
        Cmd::Enroll(args) => {
            let mut agent = enroll(&dir, source, args).await?;
            let now = now_for(source, &mut agent).await?;
            report(agent.run_due(now).await?);
            Ok(())
        }
        Cmd::Join(args) => {
            let enrolled = Agent::exists(&dir)
                && Agent::open(&dir).is_ok_and(|a| a.state().enrollment.is_some());
            if !enrolled {
                enroll(&dir, source, args).await?.save()?;
            }
            match source {
                ClockSource::Server => follow_server(&dir).await,
                ClockSource::System => run_forever(&dir).await,
            }
        }
        Cmd::Run if source == ClockSource::Server => follow_server(&dir).await,
        Cmd::Run => run_forever(&dir).await,
        Cmd::Sync => {
            if runner_alive(&dir) {
                std::fs::write(dir.join("sync.request"), b"")?;
                println!("asked the running agent to check in");
                return Ok(());
            }
            let mut agent = open(&dir)?;
            let now = now_for(source, &mut agent).await?;
            report(agent.sync(now).await?);
            Ok(())
        }
        Cmd::Syncapp => {
            if runner_alive(&dir) {
                std::fs::write(dir.join("syncapp.request"), b"")?;
                println!("asked the running agent's IME to check in for app policy");
                return Ok(());
            }
            let mut agent = open(&dir)?;
            let now = now_for(source, &mut agent).await?;
            report(agent.trigger(agent::ime::Trigger::SyncApp, now).await?);
            Ok(())
        }
        Cmd::Synccompliance => {
            let mut agent = open(&dir)?;
            let now = now_for(source, &mut agent).await?;
            report(
                agent
                    .trigger(agent::ime::Trigger::SyncCompliance, now)
                    .await?,
            );
            Ok(())
        }
        Cmd::Unenroll => {
            let mut agent = open(&dir)?;
            let now = now_for(source, &mut agent).await?;
            report(agent.unenroll(now).await?);
            agent.save()?;
            println!("unenrolled");
            Ok(())
        }
        Cmd::CompanyPortal => {
            let mut agent = open(&dir)?;
            let now = now_for(source, &mut agent).await?;
            let apps = agent.company_portal(now).await?;
            let text = serde_json::to_string_pretty(&apps)
                .map_err(|e| AgentError::Config(e.to_string()))?;
            println!("{text}");
            Ok(())
        }
        Cmd::InstallAvailable { app } => {
            let mut agent = open(&dir)?;
            let now = now_for(source, &mut agent).await?;
            if !agent.install_available(&app, now).await? {
                return Err(AgentError::Config(format!(
                    "no available app named {app:?}"
                )));
            }
            println!("{app}: processed (see AppWorkload.log and the Win32Apps registry key)");
            Ok(())
        }
        Cmd::SignIn { user } => {
            let mut agent = open(&dir)?;
            let now = now_for(source, &mut agent).await?;
            let session = agent.sign_in(&agent::device::User::named(&user), now)?;
            println!("{user} signed in (session {session})");
            report(agent.run_due(now).await?);
            Ok(())
        }
        Cmd::SignOut { user } => {
            let mut agent = open(&dir)?;
            let now = now_for(source, &mut agent).await?;
            if !agent.sign_out(&user, now)? {
                return Err(AgentError::Config(format!("{user} is not signed in")));
            }
            println!("{user} signed out");
            Ok(())
        }
        Cmd::AnswerRestart { answer } => {
            let Some(parsed) = agent::ime::restart::Answer::parse(&answer) else {
                return Err(AgentError::Config(format!(
                    "answer {answer:?}: use restart-now or snooze"
                )));
            };
            let mut agent = open(&dir)?;
            let now = now_for(source, &mut agent).await?;
            agent.answer_restart(parsed, now)?;
            match parsed {
                agent::ime::restart::Answer::RestartNow => println!("device restarted"),
                agent::ime::restart::Answer::Snooze => println!("restart snoozed"),
            }
            Ok(())
        }
        Cmd::Notifications => {
            let agent = open(&dir)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&agent.state().notifications)
                    .map_err(|e| AgentError::Config(e.to_string()))?
            );
            Ok(())
        }
        Cmd::Reboot => act(&dir, source, Agent::reboot, "device restarted").await,
        Cmd::ShutDown => act(&dir, source, Agent::shut_down, "device shut down").await,
        Cmd::PowerOn => act(&dir, source, Agent::power_on, "device powered on").await,
        Cmd::RestartIme => act(&dir, source, Agent::restart_ime, "IME service restarted").await,
        Cmd::StopIme => act(&dir, source, Agent::stop_ime, "IME service stopped").await,
        Cmd::Registry { action } => registry(&dir, action),
        Cmd::Health => {
            if open(&dir)?.state().enrollment.is_none() {
                return Err(AgentError::NotEnrolled);
            }
            println!("enrolled");
            Ok(())
        }
        Cmd::Status => {
            let agent = open(&dir)?;
            let text = serde_json::to_string_pretty(&agent.status())
                .map_err(|e| AgentError::Config(e.to_string()))?;
            println!("{text}");
            Ok(())
        }
    }
}

/// Creates the device if the directory is empty, and enrolls it.
async fn enroll(dir: &Path, source: ClockSource, args: EnrollArgs) -> Result<Agent, AgentError> {
    let EnrollArgs {
        server,
        user,
        secret,
        secret_file,
        ca,
        profile,
        device_name,
        fast_keys,
        digest,
    } = args;
    let mut agent = if Agent::exists(dir) {
        Agent::open(dir)?
    } else {
        let mut p: DeviceProfile = match profile {
            Some(path) => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))?
            }
            None => DeviceProfile::default(),
        };
        if let Some(name) = device_name {
            p.device_name = name;
        }
        p.fast_keys |= fast_keys;
        p.user_principal_name = user.clone();
        Agent::create(dir, p, seed())?
    };
    let secret = match (secret, secret_file) {
        (_, Some(path)) => std::fs::read_to_string(&path)
            .map(|text| text.lines().next().unwrap_or_default().to_owned())
            .map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))?,
        (Some(secret), None) => secret,
        (None, None) => {
            return Err(AgentError::Config(
                "enroll needs the secret: --secret-file, TENANTLESS_ENROLL_SECRET or --secret"
                    .into(),
            ))
        }
    };
    let mut trusted = Vec::new();
    for path in ca {
        trusted.push(
            std::fs::read_to_string(&path)
                .map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))?,
        );
    }
    let request = EnrollRequest {
        server,
        user,
        secret,
        trusted_ca_pem: trusted,
        digest_only: digest,
    };
    let now = match source {
        ClockSource::System => system_now(),
        ClockSource::Server => {
            let client = agent::http::client(&request.trusted_ca_pem, None)?;
            agent::remote_clock::now(&client, &request.server).await?
        }
    };
    agent.enroll(&request, now).await?;
    println!(
        "enrolled {} ({})",
        agent.device().profile.device_name,
        agent.device().profile.device_id
    );
    Ok(agent)
}

fn report(activities: Vec<agent::Activity>) {
    for a in activities {
        if let agent::Activity::Session(s) = a {
            println!(
                "session {}: {} message(s), {} command(s), {}",
                s.session_id, s.messages, s.commands, s.outcome
            );
        }
    }
}

fn registry(dir: &Path, action: RegistryCmd) -> Result<(), AgentError> {
    let mut agent = open(dir)?;
    let reg = &mut agent.device_mut().registry;
    match action {
        RegistryCmd::Get {
            key,
            name: Some(name),
        } => {
            let value = reg
                .get(&key, &name)
                .ok_or_else(|| AgentError::Config(format!("{key}\\{name}: no such value")))?;
            println!("{}", value.to_text());
            return Ok(());
        }
        RegistryCmd::Get { key, name: None } => {
            if !reg.key_exists(&key) {
                return Err(AgentError::Config(format!("{key}: no such key")));
            }
            for (name, value) in reg.values(&key) {
                println!(
                    "{:<32} {:<14} {}",
                    if name.is_empty() { "(Default)" } else { &name },
                    value.type_name(),
                    value.to_text()
                );
            }
            for sub in reg.subkeys(&key) {
                println!("{sub}\\");
            }
            return Ok(());
        }
        RegistryCmd::Set {
            key,
            name,
            kind,
            value,
        } => {
            let value = RegValue::parse(&kind, &value).map_err(AgentError::Config)?;
            if !reg.set(&key, &name, value) {
                return Err(AgentError::Config(format!(
                    "{key}: not under HKLM, HKU or HKCU"
                )));
            }
        }
        RegistryCmd::Delete { key, name } => {
            let existed = match name {
                Some(name) => reg.delete_value(&key, &name),
                None => reg.delete_key(&key),
            };
            if !existed {
                return Err(AgentError::Config(format!("{key}: nothing to delete")));
            }
        }
        RegistryCmd::Export { key, out } => {
            match out {
                Some(path) => std::fs::write(&path, reg.export_reg_utf16(key.as_deref()))?,
                None => print!("{}", reg.export_reg(key.as_deref()).replace("\r\n", "\n")),
            }
            return Ok(());
        }
    }
    agent.save()
}

/// True when a `run` of this device is alive (its pid file names a live process).
fn runner_alive(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("run.pid"))
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

async fn run_forever(dir: &Path) -> Result<(), AgentError> {
    let mut agent = open(dir)?;
    std::fs::write(dir.join("run.pid"), std::process::id().to_string())?;
    println!(
        "running {} ({}); Ctrl-C or SIGTERM to stop",
        agent.device().profile.device_name,
        agent.device().profile.device_id
    );
    let mut pushes = listen_for_pushes(&mut agent)?;
    loop {
        let now = system_now();
        if dir.join("sync.request").exists() {
            let _ = std::fs::remove_file(dir.join("sync.request"));
            agent.request(agent::ime::Trigger::CompanyPortal, now);
        }
        if dir.join("syncapp.request").exists() {
            let _ = std::fs::remove_file(dir.join("syncapp.request"));
            agent.request(agent::ime::Trigger::SyncApp, now);
        }
        if agent.next_due().is_some_and(|t| t <= now) {
            match agent.run_due(now).await {
                Ok(done) => report(done),
                Err(e) => eprintln!("tenantless-agent: {e}"),
            }
        }
        // Sleep until the next due moment, waking every second for sync requests (the
        // work just done took well under that, so `now` still measures the wait).
        let wait = agent
            .next_due()
            .map(|t| (t - now).to_std().unwrap_or_default())
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Some(push) = pushes.recv() => take_push(&mut agent, &push, system_now()),
            _ = stop_requested() => break,
        }
    }
    let _ = std::fs::remove_file(dir.join("run.pid"));
    agent.save()
}

/// The server's pushes (WNS's stand-in) for a device on the system clock: a task holds
/// the server's long poll open (`/testbed/clock?follower=`, with no moment to wait for)
/// and hands on what each answer names. Nothing comes for a device not enrolled.
fn listen_for_pushes(agent: &mut Agent) -> Result<tokio::sync::mpsc::Receiver<String>, AgentError> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let Some(addr) = agent.state().enrollment.as_ref().map(|e| e.addr.clone()) else {
        return Ok(rx);
    };
    let client = agent.client()?;
    let follower = agent.device().profile.device_id.clone();
    tokio::spawn(async move {
        loop {
            match agent::remote_clock::wait(&client, &addr, &follower, None).await {
                Ok(waited) => {
                    for push in waited.pushes {
                        if tx.send(push).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    eprintln!("tenantless-agent: waiting for pushes: {e}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
    Ok(rx)
}

/// Does what a push asks (check in, restart, power off) at `now`.
fn take_push(agent: &mut Agent, push: &str, now: chrono::DateTime<chrono::Utc>) {
    println!("push: {push}");
    let done = match push {
        "syncDevice" => {
            agent.request(agent::ime::Trigger::AdminSync, now);
            Ok(())
        }
        "rebootNow" => agent.reboot(now),
        "shutDown" => agent.shut_down(now),
        _ => Ok(()),
    };
    if let Err(e) = done {
        eprintln!("tenantless-agent: {push}: {e}");
    }
}

/// `run --clock server`: wait on the server's world clock for each moment the device has
/// work, and do it at that world time; a push ends the wait early.
async fn follow_server(dir: &Path) -> Result<(), AgentError> {
    let mut agent = open(dir)?;
    let addr = agent
        .state()
        .enrollment
        .as_ref()
        .map(|e| e.addr.clone())
        .ok_or(AgentError::NotEnrolled)?;
    let follower = agent.device().profile.device_id.clone();
    println!("following the world clock of {addr}; Ctrl-C or SIGTERM to stop");
    loop {
        let client = agent.client()?;
        let due = agent.next_due();
        let waited = tokio::select! {
            w = agent::remote_clock::wait(&client, &addr, &follower, due) => w,
            _ = stop_requested() => break,
        };
        let (now, pushes) = match waited {
            Ok(w) => (w.now, w.pushes),
            Err(e) => {
                eprintln!("tenantless-agent: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for push in pushes {
            take_push(&mut agent, &push, now);
        }
        if agent.next_due().is_some_and(|t| t <= now) {
            match agent.run_due(now).await {
                Ok(done) => report(done),
                Err(e) => eprintln!("tenantless-agent: {e}"),
            }
        }
    }
    agent.save()
}

/// Ctrl-C, or SIGTERM as `docker stop` and service managers send: the device saves
/// and stops.
async fn stop_requested() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
