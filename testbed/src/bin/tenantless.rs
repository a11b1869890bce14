//! `tenantless`: the command line of the testbed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenantless: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo { dir, seed } => {
                let mut out = std::io::stdout().lock();
                testbed::demo::run(&testbed::demo::DemoOptions { dir, seed }, &mut out)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenantless: {e}");
            ExitCode::FAILURE
        }
    }
}
