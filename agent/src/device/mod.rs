//! The device model: a registry, a virtual `C:` drive, installed programs, hardware
//! facts and an installer runtime, persisted in the device directory so a restart of
//! the agent keeps them.
//!
//! ```text
//! DEVICE_DIR/
//!   profile.json     the DeviceProfile
//!   registry.json    the registry
//!   installer.json   installed simulated MSIs and attempt counters
//!   winget.json      WinGet's source (a scenario's catalogue) and its attempt counters
//!   state.json       the agent's own state (enrollment, schedule, DM tree) - see crate::state
//!   C/               the C: drive
//! ```

pub mod drive;
pub mod installer;
pub mod profile;
pub mod programs;
pub mod registry;
pub mod users;
pub mod winget;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use drive::Drive;
pub use installer::{InstallerState, Outcome};
pub use profile::DeviceProfile;
pub use registry::{RegValue, Registry};
pub use users::User;

/// The folders a new device's `C:` drive starts with.
const BASE_FOLDERS: [&str; 5] = [
    r"C:\Windows\System32",
    r"C:\Program Files",
    r"C:\Program Files (x86)",
    r"C:\ProgramData",
    r"C:\Users",
];

/// One device's persistent model.
#[derive(Debug)]
pub struct Device {
    /// A hash of what each file in the device directory last held, so unchanged state
    /// is not written again (file creation dominates the cost of a large fleet).
    written: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// The registry's change count when it was last written.
    registry_saved: std::sync::Mutex<Option<u64>>,
    dir: PathBuf,
    /// Fixed facts.
    pub profile: DeviceProfile,
    /// The registry.
    pub registry: Registry,
    /// The C: drive.
    pub drive: Drive,
    /// What the installer runtime remembers.
    pub installer: InstallerState,
    /// WinGet's source and what it installed.
    pub winget: winget::Catalogue,
}

impl Device {
    /// Creates a device in `dir` (which must not hold one) from a profile.
    pub fn create(dir: &Path, mut profile: DeviceProfile, seed: [u8; 32]) -> io::Result<Device> {
        if dir.join("profile.json").exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already holds a device", dir.display()),
            ));
        }
        fs::create_dir_all(dir)?;
        restrict_to_owner(dir, 0o700)?;
        profile.complete(seed);
        let mut registry = Registry::new(&profile.user_sid());
        seed_registry(&mut registry, &profile);
        let device = Device {
            written: Default::default(),
            registry_saved: Default::default(),
            dir: dir.to_owned(),
            drive: Drive::open(dir.join("C"))?,
            profile,
            registry,
            installer: InstallerState::default(),
            winget: winget::Catalogue::default(),
        };
        for folder in BASE_FOLDERS {
            device.drive.create_dir(folder)?;
        }
        write_json(&device.dir.join("profile.json"), &device.profile)?;
        device.save()?;
        Ok(device)
    }

    /// A Windows reset (a remote wipe): the registry, the `C:` drive and the
    /// installer's records become a new device's again; the hardware identity (the
    /// profile) stays.
    pub fn reset(&mut self) -> io::Result<()> {
        let mut registry = Registry::new(&self.profile.user_sid());
        seed_registry(&mut registry, &self.profile);
        self.registry = registry;
        *self
            .registry_saved
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        self.installer = InstallerState::default();
        // The source's catalogue is the Store's, not the device's: it stays.
        self.winget.attempts.clear();
        self.drive.flush()?;
        for entry in fs::read_dir(self.drive.root())? {
            let path = entry?.path();
            if path.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        for folder in BASE_FOLDERS {
            self.drive.create_dir(folder)?;
        }
        Ok(())
    }

    /// Opens the device kept in `dir`.
    pub fn open(dir: &Path) -> io::Result<Device> {
        let profile: DeviceProfile = read_json(&dir.join("profile.json"))?;
        let registry = read_json(&dir.join("registry.json"))?;
        let installer = read_json(&dir.join("installer.json")).unwrap_or_default();
        let winget = read_json(&dir.join("winget.json")).unwrap_or_default();
        Ok(Device {
            written: Default::default(),
            registry_saved: Default::default(),
            dir: dir.to_owned(),
            drive: Drive::open(dir.join("C"))?,
            profile,
            registry,
            installer,
            winget,
        })
    }

    /// The device directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the registry and installer state (each only if it changed; the
    /// registry, the largest file, is not even serialised when it has not changed).
    pub fn save(&self) -> io::Result<()> {
        self.drive.flush()?;
        let changes = self.registry.changes();
        let saved = *self
            .registry_saved
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if saved != Some(changes) {
            self.write_if_changed("registry.json", &self.registry)?;
            *self
                .registry_saved
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(changes);
        }
        self.write_if_changed("installer.json", &self.installer)?;
        self.write_if_changed("winget.json", &self.winget)
    }

    /// Writes a JSON file of the device directory unless it already holds this value.
    pub fn write_if_changed<T: Serialize>(&self, file: &str, value: &T) -> io::Result<()> {
        use std::hash::{Hash, Hasher};
        let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        let hash = hasher.finish();
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.get(file) == Some(&hash) {
            return Ok(());
        }
        write_bytes(&self.dir.join(file), &bytes)?;
        written.insert(file.to_owned(), hash);
        Ok(())
    }

    /// A log of the IME's, rolled files included, oldest record first, each record's
    /// time the moment it stands for (the file has the device's local time).
    pub fn log_records(&self, file: &str) -> Vec<crate::cmtrace::Record> {
        let mut records = crate::cmtrace::read(&self.drive, file);
        for r in &mut records {
            r.at = self.profile.from_local(r.at);
        }
        records
    }

    /// The SID of the user processes run as (`HKCU`): the primary user, or the user
    /// whose session the IME is processing.
    pub fn user_sid(&self) -> String {
        self.registry.current_user().to_owned()
    }

    /// The programs installed, from the registry.
    pub fn installed_programs(&self) -> Vec<programs::InstalledProgram> {
        programs::installed_programs(&self.registry)
    }
}

/// The registry values every Windows installation has that tools read.
fn seed_registry(reg: &mut Registry, p: &DeviceProfile) {
    let nt = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion";
    let build = p.build_number();
    let revision = p
        .os_version
        .split('.')
        .nth(3)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0u32);
    reg.set(nt, "CurrentBuild", RegValue::Sz(build.to_string()));
    reg.set(nt, "CurrentBuildNumber", RegValue::Sz(build.to_string()));
    reg.set(nt, "UBR", RegValue::Dword(revision));
    reg.set(
        nt,
        "ProductName",
        RegValue::Sz(
            if build >= 22000 {
                "Windows 11 Enterprise"
            } else {
                "Windows 10 Enterprise"
            }
            .into(),
        ),
    );
    reg.set(nt, "EditionID", RegValue::Sz("Enterprise".into()));
    reg.set(nt, "DisplayVersion", RegValue::Sz("23H2".into()));
    // Windows keeps the zone's bias as minutes to add to local time for UTC.
    let zone = r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation";
    reg.set(
        zone,
        "Bias",
        RegValue::Dword((-p.utc_offset_minutes) as u32),
    );
    reg.set(zone, "TimeZoneKeyName", RegValue::Sz(p.time_zone.clone()));
    let computer = r"HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName";
    reg.set(
        computer,
        "ComputerName",
        RegValue::Sz(p.device_name.clone()),
    );
    let env = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment";
    let arch = match p.architecture.to_ascii_lowercase().as_str() {
        "x86" => "x86",
        "arm64" => "ARM64",
        _ => "AMD64",
    };
    reg.set(env, "PROCESSOR_ARCHITECTURE", RegValue::Sz(arch.into()));
    reg.set(
        env,
        "NUMBER_OF_PROCESSORS",
        RegValue::Sz(p.cpu_count.to_string()),
    );
}

/// Writes JSON atomically (a temporary file renamed over the old one).
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    write_bytes(path, &bytes)
}

/// Writes a file so that a crash at any point leaves one whole copy: first the backup
/// (`<name>.bak`), then the file, each overwritten in place. (Renaming a fresh temporary
/// file over the old one would do too, but allocating an inode per write is what a
/// large fleet's check-ins spent their time on.)
/// Both copies are the device user's alone (0600): `state.json` holds the device's
/// private key and the OMA-DM secrets.
fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_private(&backup_of(path), bytes)?;
    write_private(path, bytes)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    restrict_to_owner(path, 0o600)
}

/// Sets `mode` (Unix): a file written before this rule keeps it otherwise.
fn restrict_to_owner(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = fs::metadata(path)?.permissions().mode() & 0o777;
        if current != mode {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn backup_of(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    path.with_file_name(name)
}

/// Reads JSON written by [`write_json`], falling back to the backup copy when the file
/// is missing or was cut off.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let parse = |p: &Path| -> io::Result<T> {
        let bytes = fs::read(p)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display()))
        })
    };
    parse(path).or_else(|first| parse(&backup_of(path)).map_err(|_| first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_device_folder_and_its_state_are_the_users_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("LAB-01");
        let d = Device::create(&folder, DeviceProfile::default(), [2; 32]).unwrap();
        d.save().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder), 0o700);
        for file in ["profile.json", "registry.json", "profile.json.bak"] {
            assert_eq!(mode(&folder.join(file)), 0o600, "{file}");
        }
    }

    #[test]
    fn a_file_cut_off_mid_write_falls_back_to_its_backup() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Device::create(dir.path(), DeviceProfile::default(), [2; 32]).unwrap();
        d.registry
            .set(r"HKLM\SOFTWARE\Contoso", "A", RegValue::Dword(1));
        d.save().unwrap();
        fs::write(dir.path().join("registry.json"), b"{\"keys\": {").unwrap(); // a crash mid-write
        let again = Device::open(dir.path()).unwrap();
        assert_eq!(
            again.registry.get(r"HKLM\SOFTWARE\Contoso", "A"),
            Some(&RegValue::Dword(1))
        );
    }

    #[test]
    fn a_device_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Device::create(dir.path(), DeviceProfile::default(), [1; 32]).unwrap();
        d.registry
            .set(r"HKLM\SOFTWARE\Contoso", "A", RegValue::Dword(1));
        d.drive.write(r"C:\Temp\a.txt", b"x").unwrap();
        d.save().unwrap();
        let again = Device::open(dir.path()).unwrap();
        assert_eq!(again.profile, d.profile);
        assert_eq!(
            again.registry.get(r"HKLM\SOFTWARE\Contoso", "A"),
            Some(&RegValue::Dword(1))
        );
        assert!(again.drive.exists(r"C:\temp\A.TXT"));
        assert_eq!(
            again
                .registry
                .get_text(
                    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion",
                    "CurrentBuild"
                )
                .as_deref(),
            Some("22631")
        );
        assert!(
            Device::create(dir.path(), DeviceProfile::default(), [1; 32]).is_err(),
            "one device per directory"
        );
    }
}
