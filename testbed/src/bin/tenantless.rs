//! `tenantless`: the command line of the testbed.

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
    /// Show the whole story: enroll a device, deliver the IME, install apps, report.
    Demo,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => testbed::demo::run(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenantless: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
