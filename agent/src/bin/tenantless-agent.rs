//! `tenantless-agent`: one simulated Windows device.

use clap::Parser;

/// A simulated Windows device that enrolls into a Tenantless server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where the device keeps its state.
    #[arg(long, default_value = "./tenantless-device")]
    device_dir: std::path::PathBuf,
}

fn main() {
    let args = Args::parse();
    println!(
        "tenantless-agent: the device is not built yet (its state would live in {}).",
        args.device_dir.display()
    );
}
