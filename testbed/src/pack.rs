//! `tenantless pack`: a `.intunewin` from a setup folder, as IntuneWinAppUtil makes one,
//! with fresh random keys.

use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use syncml::intunewin::{self, Keys, MsiInfo};

/// Every file under `folder`, as (path relative to it with `/` separators, bytes),
/// sorted by path.
pub fn read_folder(folder: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&path)?));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(folder, folder, &mut out)?;
    out.sort();
    Ok(out)
}

/// Packs `folder` with `setup` (relative to it) as the setup file into
/// `out_dir/<setup name>.intunewin`; returns the file written. A simulated MSI as the
/// setup file fills MsiInfo.
pub fn pack(folder: &Path, setup: &str, out_dir: &Path) -> Result<PathBuf, String> {
    let files = read_folder(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let setup_bytes = files
        .iter()
        .find(|(p, _)| p.eq_ignore_ascii_case(&setup.replace('\\', "/")))
        .map(|(_, b)| b.clone())
        .ok_or_else(|| format!("{setup} is not in {}", folder.display()))?;
    let msi = syncml::sim_msi::SimulatedMsi::parse(&setup_bytes)
        .ok()
        .map(|m| MsiInfo {
            product_code: m.product_code,
            product_version: m.product_version,
            upgrade_code: m.upgrade_code,
            execution_context: "System".into(),
            publisher: m.manufacturer,
        });
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut keys = Keys {
        encryption_key: [0; 32],
        mac_key: [0; 32],
        iv: [0; 16],
    };
    rng.fill_bytes(&mut keys.encryption_key);
    rng.fill_bytes(&mut keys.mac_key);
    rng.fill_bytes(&mut keys.iv);
    let package = intunewin::pack(&files, setup, &keys, msi).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let stem = Path::new(setup)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package".into());
    let out = out_dir.join(format!("{stem}.intunewin"));
    std::fs::write(&out, package).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}
