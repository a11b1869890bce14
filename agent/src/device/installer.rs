//! The installer runtime: runs an install or uninstall command line the way Windows
//! would. `msiexec /i X.msi` and `msiexec /x {ProductCode}` act on simulated MSIs
//! (see `syncml::sim_msi`); `.sh` scripts run with `sh`, and `.ps1` scripts with `pwsh`
//! when it is on the machine (a `.ps1` whose first line is a shebang runs with `sh`).
//! Scripts run in the content folder, with environment variables that lead them to the
//! device, under a timeout.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use syncml::sim_msi::SimulatedMsi;

use super::programs;
use super::registry::RegValue;
use super::Device;

/// `ERROR_SUCCESS_REBOOT_INITIATED`.
pub const HARD_REBOOT: i64 = 1641;
/// `ERROR_SUCCESS_REBOOT_REQUIRED`.
pub const SOFT_REBOOT: i64 = 3010;
/// `ERROR_UNKNOWN_PRODUCT`.
pub const UNKNOWN_PRODUCT: i64 = 1605;
/// `ERROR_INSTALL_PACKAGE_OPEN_FAILED`.
pub const PACKAGE_OPEN_FAILED: i64 = 1619;
/// `ERROR_INSTALL_PACKAGE_INVALID`.
pub const PACKAGE_INVALID: i64 = 1620;
/// `ERROR_INVALID_COMMAND_LINE`.
pub const INVALID_COMMAND_LINE: i64 = 1639;
/// `ERROR_TIMEOUT`.
pub const TIMEOUT: i64 = 1460;

/// What the runtime remembers between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InstallerState {
    /// Install attempts per product code (they pick the exit code from the package's plan).
    pub attempts: BTreeMap<String, u32>,
    /// Installed packages by product code, so an uninstall knows what to remove.
    pub packages: BTreeMap<String, SimulatedMsi>,
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The exit code.
    pub exit_code: i64,
    /// Standard output.
    pub stdout: String,
    /// Standard error (or the runtime's own explanation).
    pub stderr: String,
    /// True when the run was stopped at its timeout.
    pub timed_out: bool,
    /// The package an `msiexec /i` installed.
    pub installed: Option<SimulatedMsi>,
    /// The product code an `msiexec /x` removed.
    pub removed: Option<String>,
}

impl Outcome {
    pub(crate) fn code(exit_code: i64, stderr: impl Into<String>) -> Self {
        Outcome {
            exit_code,
            stderr: stderr.into(),
            ..Outcome::default()
        }
    }
}

/// True for the exit codes Windows Installer treats as success.
pub fn is_success(code: i64) -> bool {
    matches!(code, 0 | 1707 | SOFT_REBOOT | HARD_REBOOT)
}

/// Splits a Windows command line into arguments (double quotes group).
pub fn split_command_line(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    args.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        args.push(current);
    }
    args
}

/// Joins a (possibly relative) Windows path to a folder.
fn windows_join(folder: &str, path: &str) -> String {
    let absolute = path.starts_with('\\') || path.starts_with('/') || path.get(1..2) == Some(":");
    if absolute {
        path.to_owned()
    } else {
        format!("{}\\{}", folder.trim_end_matches('\\'), path)
    }
}

fn file_name(token: &str) -> String {
    token
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(token)
        .to_ascii_lowercase()
}

impl Device {
    /// Runs a command line with `working_dir` (a Windows path) as its folder, stopping
    /// it after `timeout`. The registry and files it changes are the device's.
    pub fn run(
        &mut self,
        command_line: &str,
        working_dir: &str,
        timeout: Duration,
        now: DateTime<Utc>,
    ) -> Outcome {
        let args = split_command_line(command_line);
        let Some(first) = args.first() else {
            return Outcome::code(INVALID_COMMAND_LINE, "empty command line");
        };
        let program = file_name(first);
        if program == "msiexec" || program == "msiexec.exe" {
            return self.msiexec(&args[1..], working_dir, now);
        }
        match script_of(&args) {
            Some((kind, script, rest)) => self.script(
                kind,
                &windows_join(working_dir, &script),
                &rest,
                working_dir,
                timeout,
            ),
            None => Outcome::code(
                INVALID_COMMAND_LINE,
                format!("{first}: only msiexec and .sh/.ps1 scripts run on a simulated device"),
            ),
        }
    }

    fn msiexec(&mut self, args: &[String], working_dir: &str, now: DateTime<Utc>) -> Outcome {
        let mut i = 0;
        while i < args.len() {
            let flag = args[i].to_ascii_lowercase();
            let value = args.get(i + 1).cloned();
            match flag.as_str() {
                "/i" | "-i" | "/package" => {
                    return match value {
                        Some(path) => self.msi_install(&windows_join(working_dir, &path), now),
                        None => Outcome::code(INVALID_COMMAND_LINE, "/i needs a package"),
                    }
                }
                "/x" | "-x" | "/uninstall" => {
                    return match value {
                        Some(target) => self.msi_uninstall(&target, working_dir),
                        None => Outcome::code(
                            INVALID_COMMAND_LINE,
                            "/x needs a product code or package",
                        ),
                    }
                }
                f if (f.starts_with("/i") || f.starts_with("/x")) && f.len() > 2 => {
                    // msiexec accepts "/x{GUID}" without a space.
                    let rest = args[i][2..].to_owned();
                    return if f.starts_with("/i") {
                        self.msi_install(&windows_join(working_dir, &rest), now)
                    } else {
                        self.msi_uninstall(&rest, working_dir)
                    };
                }
                _ => i += 1,
            }
        }
        Outcome::code(INVALID_COMMAND_LINE, "msiexec needs /i or /x")
    }

    /// Runs a script file (a Windows path; `.sh` under `sh`, anything else as PowerShell)
    /// in its own folder, stopping it after `timeout`.
    pub fn run_script(&mut self, script: &str, timeout: Duration) -> Outcome {
        let kind = if script.to_ascii_lowercase().ends_with(".sh") {
            ScriptKind::Shell
        } else {
            ScriptKind::PowerShell
        };
        let folder = script
            .rsplit_once('\\')
            .map(|(f, _)| f.to_owned())
            .unwrap_or_default();
        self.script(kind, script, &[], &folder, timeout)
    }

    /// Installs a simulated MSI at a Windows path.
    pub fn msi_install(&mut self, package_path: &str, now: DateTime<Utc>) -> Outcome {
        let bytes = match self.drive.read(package_path) {
            Ok(b) => b,
            Err(e) => return Outcome::code(PACKAGE_OPEN_FAILED, format!("{package_path}: {e}")),
        };
        let msi = match SimulatedMsi::parse(&bytes) {
            Ok(m) => m,
            Err(e) => return Outcome::code(PACKAGE_INVALID, format!("{package_path}: {e}")),
        };
        let attempt = self
            .installer
            .attempts
            .entry(msi.product_code.clone())
            .or_insert(0);
        let code = i64::from(msi.exit_code(*attempt as usize));
        *attempt += 1;
        if !is_success(code) {
            return Outcome::code(
                code,
                format!(
                    "{} exited with {code} (its exit-code plan)",
                    msi.product_name
                ),
            );
        }
        if let Some(old) = self.installer.packages.get(&msi.product_code).cloned() {
            self.remove_payload(&old);
        }
        for file in &msi.files {
            if let Err(e) = self.drive.write(&file.path, file.content.as_bytes()) {
                return Outcome::code(1603, format!("{}: {e}", file.path));
            }
        }
        for value in &msi.registry {
            match RegValue::parse(&value.kind, &value.value) {
                Ok(v) => {
                    self.registry.set(&value.key, &value.name, v);
                }
                Err(e) => {
                    return Outcome::code(1603, format!("{}\\{}: {e}", value.key, value.name))
                }
            }
        }
        programs::register_msi(
            &mut self.registry,
            &msi.product_code,
            &msi.product_name,
            &msi.product_version,
            &msi.manufacturer,
            &now.format("%Y%m%d").to_string(),
        );
        self.installer
            .packages
            .insert(msi.product_code.clone(), msi.clone());
        Outcome {
            exit_code: code,
            installed: Some(msi),
            ..Outcome::default()
        }
    }

    /// Uninstalls by product code (or by the package at a path).
    pub fn msi_uninstall(&mut self, target: &str, working_dir: &str) -> Outcome {
        let code = if target.trim().starts_with('{') {
            target.trim().to_uppercase()
        } else {
            match self
                .drive
                .read(&windows_join(working_dir, target))
                .ok()
                .and_then(|b| SimulatedMsi::parse(&b).ok())
            {
                Some(msi) => msi.product_code.to_uppercase(),
                None => {
                    return Outcome::code(PACKAGE_OPEN_FAILED, format!("{target}: no such package"))
                }
            }
        };
        let key = self
            .installer
            .packages
            .keys()
            .find(|k| k.to_uppercase() == code)
            .cloned();
        let Some(key) = key else {
            return Outcome::code(UNKNOWN_PRODUCT, format!("{code} is not installed"));
        };
        if let Some(msi) = self.installer.packages.remove(&key) {
            self.remove_payload(&msi);
        }
        programs::unregister_msi(&mut self.registry, &key);
        Outcome {
            removed: Some(key),
            ..Outcome::default()
        }
    }

    fn remove_payload(&mut self, msi: &SimulatedMsi) {
        for file in &msi.files {
            let _ = self.drive.remove(&file.path);
        }
        for value in &msi.registry {
            self.registry.delete_value(&value.key, &value.name);
        }
    }

    fn script(
        &mut self,
        kind: ScriptKind,
        script: &str,
        args: &[String],
        working_dir: &str,
        timeout: Duration,
    ) -> Outcome {
        // The script sees the device as it is now, logs included.
        if let Err(e) = self.drive.flush() {
            tracing::warn!("writing logs: {e}");
        }
        let Some(host_script) = self.drive.resolve(script).filter(|p| p.exists()) else {
            return Outcome::code(
                2,
                format!("{script}: the system cannot find the file specified"),
            );
        };
        // The script runs in its own folder: every path it is given must be absolute
        // (a device folder may be relative to where the agent started).
        let absolute =
            |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
        let host_script = absolute(&host_script);
        // A PowerShell script whose first line is a shebang (a comment to PowerShell)
        // runs under `sh`: labs can write scripts that run on any machine.
        let shebang = std::fs::read(&host_script)
            .map(|b| {
                b.strip_prefix(b"\xEF\xBB\xBF")
                    .unwrap_or(&b)
                    .starts_with(b"#!")
            })
            .unwrap_or(false);
        let kind = if shebang { ScriptKind::Shell } else { kind };
        let interpreter = match kind {
            ScriptKind::Shell => "sh".to_owned(),
            ScriptKind::PowerShell => match find_on_path("pwsh") {
                Some(p) => p.display().to_string(),
                None => {
                    return Outcome::code(
                        1,
                        "pwsh is not installed on this machine; .ps1 scripts cannot run",
                    )
                }
            },
        };
        let cwd = self
            .drive
            .resolve(working_dir)
            .filter(|p| p.is_dir())
            .unwrap_or_else(|| self.drive.root().to_owned());
        // The script may change the device through the agent's CLI: hand it the current
        // state, and take back what it wrote.
        if let Err(e) = self.save() {
            return Outcome::code(1, format!("saving the device before the script: {e}"));
        }
        let mut cmd = Command::new(interpreter);
        if kind == ScriptKind::PowerShell {
            cmd.args(["-NoProfile", "-NonInteractive", "-File"]);
        }
        cmd.arg(&host_script)
            .args(args)
            .current_dir(cwd)
            .env("TENANTLESS_DEVICE_DIR", absolute(self.dir()))
            .env("TENANTLESS_C_DRIVE", absolute(self.drive.root()))
            .env("TENANTLESS_USER_SID", self.user_sid())
            .env("COMPUTERNAME", &self.profile.device_name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(agent) = agent_executable() {
            cmd.env("TENANTLESS_AGENT", agent);
        }
        let outcome = run_with_timeout(cmd, timeout);
        if let Ok(reg) = super::read_json(&self.dir().join("registry.json")) {
            self.registry = reg;
        }
        outcome
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScriptKind {
    Shell,
    PowerShell,
}

/// The script a command line runs, if it runs one: `x.sh args`, `sh x.sh`,
/// `x.ps1`, `powershell.exe -ExecutionPolicy Bypass -File x.ps1 args`.
fn script_of(args: &[String]) -> Option<(ScriptKind, String, Vec<String>)> {
    let first = file_name(&args[0]);
    if first.ends_with(".sh") {
        return Some((ScriptKind::Shell, args[0].clone(), args[1..].to_vec()));
    }
    if first.ends_with(".ps1") {
        return Some((ScriptKind::PowerShell, args[0].clone(), args[1..].to_vec()));
    }
    if matches!(first.as_str(), "sh" | "bash" | "sh.exe" | "bash.exe") {
        let script = args.get(1)?;
        return Some((ScriptKind::Shell, script.clone(), args[2..].to_vec()));
    }
    if matches!(
        first.as_str(),
        "powershell" | "powershell.exe" | "pwsh" | "pwsh.exe"
    ) {
        let at = args.iter().position(|a| a.eq_ignore_ascii_case("-file"))?;
        let script = args.get(at + 1)?;
        return Some((
            ScriptKind::PowerShell,
            script.clone(),
            args[at + 2..].to_vec(),
        ));
    }
    None
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// The `tenantless-agent` executable scripts can call: `TENANTLESS_AGENT` if set, else
/// this process when it is the agent.
fn agent_executable() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TENANTLESS_AGENT") {
        return Some(PathBuf::from(p));
    }
    std::env::current_exe().ok().filter(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("tenantless-agent"))
    })
}

/// Stops a script's process group (it was started in a group of its own).
fn kill_group(pid: u32) {
    #[cfg(unix)]
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    #[cfg(windows)]
    let _ = Command::new("taskkill")
        .args(["/F", "/T", "/PID", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Outcome {
    // A group of its own, so a timeout stops the script's children too.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::code(2, format!("cannot start the script: {e}")),
    };
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let mut bytes = Vec::new();
                let _ = p.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    // Real processes run in real time: a waiter thread reports the exit, and the wait
    // for it is bounded by the script's timeout (no clock is read).
    let pid = child.id();
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait().ok().and_then(|s| s.code()));
    });
    let (exit_code, timed_out) = match exit.recv_timeout(timeout) {
        Ok(code) => (i64::from(code.unwrap_or(1)), false),
        Err(_) => {
            kill_group(pid);
            let _ = exit.recv();
            (TIMEOUT, true)
        }
    };
    let mut stderr = err.join().unwrap_or_default();
    if timed_out {
        stderr.push_str(&format!("\nstopped after {} s", timeout.as_secs()));
    }
    Outcome {
        exit_code,
        stdout: out.join().unwrap_or_default(),
        stderr,
        timed_out,
        installed: None,
        removed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceProfile;
    use syncml::sim_msi::{MsiFile, MsiRegistryValue};

    fn device() -> (tempfile::TempDir, Device) {
        let dir = tempfile::tempdir().unwrap();
        let d = Device::create(dir.path(), DeviceProfile::default(), [3; 32]).unwrap();
        (dir, d)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn package(codes: Vec<u32>) -> SimulatedMsi {
        let mut msi = SimulatedMsi::new(
            "{11111111-2222-3333-4444-555555555555}",
            "Contoso Widget",
            "1.2.0",
            "Contoso",
        );
        msi.files.push(MsiFile {
            path: r"C:\Program Files\Contoso\widget.exe".into(),
            content: "w".into(),
        });
        msi.registry.push(MsiRegistryValue {
            key: r"HKLM\SOFTWARE\Contoso".into(),
            name: "Version".into(),
            kind: "REG_SZ".into(),
            value: "1.2.0".into(),
        });
        msi.exit_codes = codes;
        msi
    }

    #[test]
    fn command_lines_split_like_windows() {
        assert_eq!(
            split_command_line(r#"msiexec /i "Contoso Widget.msi" /qn ALLUSERS=1"#),
            ["msiexec", "/i", "Contoso Widget.msi", "/qn", "ALLUSERS=1"]
        );
        assert_eq!(split_command_line(r#"a "" b"#), ["a", "", "b"]);
    }

    #[test]
    fn msiexec_follows_the_exit_code_plan_then_installs_and_uninstalls() {
        let (_dir, mut d) = device();
        d.drive
            .write(
                r"C:\Windows\IMECache\app_1\widget.msi",
                &package(vec![1618, 0]).to_bytes(),
            )
            .unwrap();
        let run = |d: &mut Device, line: &str| {
            d.run(
                line,
                r"C:\Windows\IMECache\app_1",
                Duration::from_secs(5),
                now(),
            )
        };
        let first = run(&mut d, "msiexec /i widget.msi /qn");
        assert_eq!(first.exit_code, 1618);
        assert!(
            !d.drive.exists(r"C:\Program Files\Contoso\widget.exe"),
            "a failed attempt writes nothing"
        );
        let second = run(&mut d, "msiexec.exe /i widget.msi /qn");
        assert_eq!(second.exit_code, 0);
        assert!(d.drive.exists(r"C:\Program Files\Contoso\widget.exe"));
        assert_eq!(
            d.registry
                .get_text(r"HKLM\SOFTWARE\Contoso", "Version")
                .as_deref(),
            Some("1.2.0")
        );
        let programs = d.installed_programs();
        assert_eq!(programs[0].display_name, "Contoso Widget");
        assert_eq!(
            d.registry
                .get_text(r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\{11111111-2222-3333-4444-555555555555}", "InstallDate")
                .as_deref(),
            Some("20261124")
        );

        let gone = run(
            &mut d,
            "msiexec /x {11111111-2222-3333-4444-555555555555} /qn",
        );
        assert_eq!(gone.exit_code, 0);
        assert!(d.installed_programs().is_empty());
        assert!(!d.drive.exists(r"C:\Program Files\Contoso\widget.exe"));
        assert_eq!(
            run(&mut d, "msiexec /x{11111111-2222-3333-4444-555555555555}").exit_code,
            UNKNOWN_PRODUCT
        );
        assert_eq!(
            run(&mut d, "msiexec /i missing.msi").exit_code,
            PACKAGE_OPEN_FAILED
        );
        d.drive
            .write(r"C:\Windows\IMECache\app_1\bad.msi", b"MZ not an msi")
            .unwrap();
        assert_eq!(run(&mut d, "msiexec /i bad.msi").exit_code, PACKAGE_INVALID);
        assert_eq!(run(&mut d, "setup.exe /S").exit_code, INVALID_COMMAND_LINE);
    }

    #[test]
    fn shell_scripts_run_in_the_content_folder_and_see_the_device() {
        let (_dir, mut d) = device();
        d.drive
            .write(
                r"C:\Windows\IMECache\app_2\install.sh",
                b"echo \"dir=$(basename \"$PWD\") c=$TENANTLESS_C_DRIVE\" ; echo oops >&2 ; mkdir -p \"$TENANTLESS_C_DRIVE/Tools\" ; exit 3\n",
            )
            .unwrap();
        let out = d.run(
            "install.sh --flag",
            r"C:\Windows\IMECache\app_2",
            Duration::from_secs(10),
            now(),
        );
        assert_eq!(out.exit_code, 3);
        assert!(out.stdout.starts_with("dir=app_2 c="), "{out:?}");
        assert_eq!(out.stderr.trim(), "oops");
        assert!(d.drive.exists(r"C:\Tools"));
    }

    #[test]
    fn scripts_are_stopped_at_their_timeout() {
        let (_dir, mut d) = device();
        d.drive.write(r"C:\t\slow.sh", b"sleep 5\n").unwrap();
        let out = d.run("sh slow.sh", r"C:\t", Duration::from_millis(200), now());
        assert!(out.timed_out);
        assert_eq!(out.exit_code, TIMEOUT);
    }
}
