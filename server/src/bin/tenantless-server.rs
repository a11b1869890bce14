//! `tenantless-server`: runs the management service.

use clap::Parser;

/// The Tenantless management service (enrollment, OMA-DM, IME gateway, admin API).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where the database, PKI and content live.
    #[arg(long, default_value = "./tenantless-data")]
    data_dir: std::path::PathBuf,
}

fn main() {
    let args = Args::parse();
    println!(
        "tenantless-server: the management service is not built yet (data dir would be {}).",
        args.data_dir.display()
    );
}
