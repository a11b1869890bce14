//! Installed programs as Windows keeps them: `Uninstall` keys and Windows Installer
//! product registrations in the registry. The list is always computed from the
//! registry, whatever put the entries there.

use serde::Serialize;

use super::registry::{RegValue, Registry};

/// Where Windows lists installed programs (64-bit view).
pub const UNINSTALL_KEY: &str =
    r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall";
/// The 32-bit view on a 64-bit system.
pub const UNINSTALL_KEY_WOW64: &str =
    r"HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall";
/// Windows Installer's per-machine product registrations.
pub const INSTALLER_PRODUCTS_KEY: &str = r"HKEY_LOCAL_MACHINE\SOFTWARE\Classes\Installer\Products";

/// One installed program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstalledProgram {
    /// The Uninstall subkey name (a product code for MSI installs).
    pub key: String,
    /// `DisplayName`.
    pub display_name: String,
    /// `DisplayVersion`.
    pub display_version: String,
    /// `Publisher`.
    pub publisher: String,
    /// The MSI product code, when Windows Installer installed it.
    pub msi_product_code: Option<String>,
}

/// Windows Installer's "packed GUID" of a product code: each group reversed as
/// Windows stores it under `Installer\Products`.
pub fn packed_guid(product_code: &str) -> String {
    let hex: String = product_code
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    if hex.len() != 32 {
        return hex.to_uppercase();
    }
    let rev = |s: &str| s.chars().rev().collect::<String>();
    let swap_pairs = |s: &str| {
        s.as_bytes()
            .chunks(2)
            .map(|p| {
                format!(
                    "{}{}",
                    p.get(1).map(|b| *b as char).unwrap_or_default(),
                    p[0] as char
                )
            })
            .collect::<String>()
    };
    format!(
        "{}{}{}{}{}",
        rev(&hex[0..8]),
        rev(&hex[8..12]),
        rev(&hex[12..16]),
        swap_pairs(&hex[16..20]),
        swap_pairs(&hex[20..32])
    )
    .to_uppercase()
}

/// Registers an MSI product the way Windows Installer does.
pub fn register_msi(
    reg: &mut Registry,
    product_code: &str,
    name: &str,
    version: &str,
    publisher: &str,
    install_date: &str,
) {
    let key = format!(r"{UNINSTALL_KEY}\{product_code}");
    reg.set(&key, "DisplayName", RegValue::Sz(name.into()));
    reg.set(&key, "DisplayVersion", RegValue::Sz(version.into()));
    reg.set(&key, "Publisher", RegValue::Sz(publisher.into()));
    reg.set(&key, "InstallDate", RegValue::Sz(install_date.into()));
    reg.set(
        &key,
        "UninstallString",
        RegValue::ExpandSz(format!("MsiExec.exe /X{product_code}")),
    );
    reg.set(&key, "WindowsInstaller", RegValue::Dword(1));
    let products = format!(r"{INSTALLER_PRODUCTS_KEY}\{}", packed_guid(product_code));
    reg.set(&products, "ProductName", RegValue::Sz(name.into()));
    reg.set(
        &products,
        "Version",
        RegValue::Dword(msi_version_dword(version)),
    );
}

/// Removes an MSI product's registrations.
pub fn unregister_msi(reg: &mut Registry, product_code: &str) {
    reg.delete_key(&format!(r"{UNINSTALL_KEY}\{product_code}"));
    reg.delete_key(&format!(
        r"{INSTALLER_PRODUCTS_KEY}\{}",
        packed_guid(product_code)
    ));
}

/// True when Windows Installer has the product registered.
pub fn msi_registered(reg: &Registry, product_code: &str) -> bool {
    reg.key_exists(&format!(
        r"{INSTALLER_PRODUCTS_KEY}\{}",
        packed_guid(product_code)
    ))
}

/// Windows Installer's version DWORD: major << 24 | minor << 16 | build.
fn msi_version_dword(version: &str) -> u32 {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (a.min(255) << 24) | (b.min(255) << 16) | c.min(0xFFFF)
}

/// Every program in the Uninstall keys (both views) that has a `DisplayName`.
pub fn installed_programs(reg: &Registry) -> Vec<InstalledProgram> {
    let mut out = Vec::new();
    for root in [UNINSTALL_KEY, UNINSTALL_KEY_WOW64] {
        for sub in reg.subkeys(root) {
            let key = format!(r"{root}\{sub}");
            let Some(display_name) = reg.get_text(&key, "DisplayName") else {
                continue;
            };
            let is_msi = matches!(reg.get(&key, "WindowsInstaller"), Some(RegValue::Dword(1)));
            out.push(InstalledProgram {
                display_name,
                display_version: reg.get_text(&key, "DisplayVersion").unwrap_or_default(),
                publisher: reg.get_text(&key, "Publisher").unwrap_or_default(),
                msi_product_code: is_msi.then(|| sub.clone()),
                key: sub,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_guids_like_windows_installer() {
        // A commonly cited example: {90120000-0030-0000-0000-0000000FF1CE}.
        assert_eq!(
            packed_guid("{90120000-0030-0000-0000-0000000FF1CE}"),
            "00002109030000000000000000F01FEC"
        );
    }

    #[test]
    fn programs_are_read_from_the_registry() {
        let mut reg = Registry::new("S-1-5-18");
        register_msi(
            &mut reg,
            "{11111111-2222-3333-4444-555555555555}",
            "Contoso",
            "1.2.3",
            "Contoso Ltd",
            "20261124",
        );
        reg.set(
            &format!(r"{UNINSTALL_KEY_WOW64}\Notepad++"),
            "DisplayName",
            RegValue::Sz("Notepad++".into()),
        );
        let programs = installed_programs(&reg);
        assert_eq!(programs.len(), 2);
        assert_eq!(
            programs[0].msi_product_code.as_deref(),
            Some("{11111111-2222-3333-4444-555555555555}")
        );
        assert_eq!(programs[1].msi_product_code, None);
        assert!(msi_registered(
            &reg,
            "{11111111-2222-3333-4444-555555555555}"
        ));
        unregister_msi(&mut reg, "{11111111-2222-3333-4444-555555555555}");
        assert_eq!(installed_programs(&reg).len(), 1);
    }
}
