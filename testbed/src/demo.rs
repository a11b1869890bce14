//! The demo, the README's main job: a device enrolls through the real protocol, the IME
//! arrives by SyncML, and the timeline and the artefacts are shown.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use agent::device::DeviceProfile;
use chrono::Duration;
use syncml::dm::{Command, Item, ItemCommand};

use crate::timeline;
use crate::world::{World, WorldError, WorldOptions};
use server::journal::Filter;

/// Where and how the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The folder for the server's data and the device (emptied first).
    pub dir: PathBuf,
    /// The world's seed.
    pub seed: u64,
}

const DEVICE: &str = "DESKTOP-DEMO01";

/// Runs the demo, writing its story to `out`; returns the world, still running, for the
/// lab console or a closer look (stop it when done).
pub async fn run(options: &DemoOptions, out: &mut impl Write) -> Result<World, DemoError> {
    if options.dir.exists() {
        std::fs::remove_dir_all(&options.dir)?;
    }
    let mut world = World::start(WorldOptions {
        seed: options.seed,
        dir: Some(options.dir.clone()),
        fast_keys: false,
        ..WorldOptions::default()
    })
    .await?;
    writeln!(out, "Tenantless demo (seed {})\n", options.seed)?;
    writeln!(
        out,
        "A server on {} (CA in {})",
        world.base_url(),
        options.dir.join("server/pki/ca.pem").display()
    )?;

    let profile = DeviceProfile {
        user_principal_name: "alice@contoso.com".into(),
        ..DeviceProfile::default()
    };
    world.add_device(DEVICE, profile).await?;
    writeln!(
        out,
        "{DEVICE} enrolled with an RSA-2048 key, as Windows does, and checks in:\n"
    )?;
    world.settle().await;
    world.advance(Duration::minutes(20)).await;

    // Something the IME handles targets the device: the server sends the IME by SyncML.
    world.require_ime(DEVICE).await?;
    world
        .queue(
            DEVICE,
            &Command::Get(ItemCommand {
                items: vec![
                    Item::target("./DevDetail/SwV"),
                    Item::target("./DevDetail/Ext/Microsoft/DeviceName"),
                ],
                ..ItemCommand::default()
            }),
        )
        .await?;
    // An app whose installer answers 1618 (another installation in progress) four
    // times, then succeeds: three quick retries, the GRS, and success a day later.
    // And a platform script. The IME inventories what is installed.
    let app = crate::workload::required_app(
        &world,
        "Contoso Widget",
        "{0C0A7E1D-5E3B-4C2A-9F1E-2D3C4B5A6978}",
        vec![1618, 1618, 1618, 1618, 0],
    )
    .await?;
    crate::workload::script(
        &world,
        "Contoso baseline",
        "#!/bin/sh\n# PowerShell on Windows; sh here (the shebang is a comment there)\necho baseline applied\n",
    )
    .await?;
    // A remediation every morning at 09:00: the first finds the marker missing and
    // puts it there; the later ones find nothing to fix.
    crate::workload::remediation(
        &world,
        "Contoso marker",
        "#!/bin/sh\nif [ -f \"$TENANTLESS_C_DRIVE/ProgramData/Contoso/marker\" ]; then echo compliant; exit 0; fi\necho 'marker missing'\nexit 1\n",
        "#!/bin/sh\nmkdir -p \"$TENANTLESS_C_DRIVE/ProgramData/Contoso\"\ntouch \"$TENANTLESS_C_DRIVE/ProgramData/Contoso/marker\"\necho 'marker written'\n",
        serde_json::json!({
            "@odata.type": "#microsoft.graph.deviceHealthScriptDailySchedule",
            "interval": 1,
            "time": "09:00:00",
            "useUtc": true,
        }),
    )
    .await?;
    // On day 3 someone stops the IME; that night's client health check starts it again.
    world.advance(Duration::days(3)).await;
    let now = world.now();
    world
        .device_mut(DEVICE)?
        .stop_ime(now)
        .map_err(|source| WorldError::Device {
            device: DEVICE.into(),
            source,
        })?;
    world
        .advance(Duration::days(4) - Duration::minutes(20))
        .await;

    let id = world.device_id(DEVICE)?;
    let names: BTreeMap<String, String> = [(id.clone(), DEVICE.to_owned())].into();
    let events = world
        .journal()
        .filter(Filter::default().device(&id))
        .events()
        .await?;
    writeln!(
        out,
        "Timeline (world time, a virtual week; Win32 app {} is Contoso Widget):",
        app.get(..8).unwrap_or(&app)
    )?;
    for line in timeline::render(&events, &names) {
        writeln!(out, "  {line}")?;
    }

    // The SyncML message that carried the IME.
    let delivery = world
        .journal()
        .filter(Filter::kind("message_out").device(&id))
        .events()
        .await?
        .into_iter()
        .find(|e| {
            e.payload["raw"]
                .as_str()
                .is_some_and(|r| r.contains("MsiInstallJob"))
        });
    if let Some(message) = delivery {
        let raw = message.payload["raw"].as_str().unwrap_or_default();
        writeln!(
            out,
            "\nThe SyncML commands that install the IME (EnterpriseDesktopAppManagement CSP):"
        )?;
        let parsed = syncml::dm::SyncMl::parse(raw.as_bytes()).ok();
        let commands = parsed
            .iter()
            .flat_map(|m| m.body.commands.iter())
            .filter(|c| matches!(c, Command::Add(_) | Command::Exec(_)));
        for command in commands {
            for line in syncml::xml::pretty(&command.to_xml())
                .unwrap_or_default()
                .lines()
            {
                writeln!(out, "  {line}")?;
            }
        }
    }

    let agent = world.device(DEVICE)?;
    let dir = agent.device().dir().to_owned();
    let reg_file = options.dir.join(format!("{DEVICE}.reg"));
    std::fs::write(&reg_file, agent.device().registry.export_reg_utf16(None))?;
    let sessions = world
        .journal()
        .filter(Filter::kind("session_started").device(&id))
        .count()
        .await?;
    let messages = world
        .journal()
        .filter(Filter::kind("message_in").device(&id))
        .count()
        .await?;
    writeln!(
        out,
        "\nIn a virtual week: {sessions} sessions, {messages} messages from the device."
    )?;
    writeln!(
        out,
        "IME on the device: {} ({})",
        agent.state().ime.version,
        if agent.state().ime.running {
            "running"
        } else {
            "stopped"
        }
    )?;
    writeln!(out, "\nArtefacts:")?;
    writeln!(out, "  device folder      {}", dir.display())?;
    writeln!(out, "  C: drive           {}", dir.join("C").display())?;
    writeln!(
        out,
        "  IME log            {}",
        dir.join(
            "C/ProgramData/Microsoft/IntuneManagementExtension/Logs/IntuneManagementExtension.log"
        )
        .display()
    )?;
    writeln!(out, "  registry (.reg)    {}", reg_file.display())?;
    writeln!(
        out,
        "  journal (SQLite)   {}",
        options.dir.join("server/tenantless.db").display()
    )?;
    let world_dir = options.dir.display();
    writeln!(out, "\nRead them back:")?;
    writeln!(
        out,
        "  tenantless logs {DEVICE} --dir {world_dir} --file AppWorkload.log --grep lpExitCode"
    )?;
    writeln!(
        out,
        "  tenantless explain-app {DEVICE} \"Contoso Widget\" --dir {world_dir}"
    )?;
    Ok(world)
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The world failed.
    #[error("{0}")]
    World(#[from] WorldError),
    /// The journal could not be read.
    #[error("journal: {0}")]
    Journal(#[from] server::storage::StoreError),
    /// Output or files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
