//! The demo: the README's main job.

/// What the demo does, step by step, as it will print it.
pub const PLAN: &[&str] = &[
    "start a Tenantless server on loopback TLS with an embedded SQLite journal",
    "enroll a simulated Windows device through MS-MDE2 (discovery, policy, CSR signed by the server's CA)",
    "open OMA-DM sessions and deliver the IME through the EnterpriseDesktopAppManagement CSP",
    "install Win32 apps, one failing with 1618 and recovering through the GRS over a virtual week",
    "run a platform script, a remediation and inventory",
    "print the timeline and where the registry, logs and journal are",
];

/// Prints the demo's plan; the steps run as the server, agent and world land.
pub fn run() -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Tenantless demo")?;
    writeln!(
        out,
        "The wire formats are in place (syncml); the demo will:"
    )?;
    for (n, step) in PLAN.iter().enumerate() {
        writeln!(out, "  {}. {step}", n + 1)?;
    }
    Ok(())
}
