//! The simulated MSI: Tenantless's own small installer format, which the server hosts
//! and the agent's installer runtime "installs". It is JSON, so a person can write one
//! by hand:
//!
//! ```json
//! {
//!   "format": "tenantless-msi/1",
//!   "productCode": "{7E2D3C1A-9B8F-4E6D-A5C4-3B2A1F0E9D8C}",
//!   "upgradeCode": "{0C4F1D2B-6A7E-4B9C-8D3F-2E1A0B9C8D7E}",
//!   "productName": "Contoso Widget",
//!   "productVersion": "1.2.0",
//!   "manufacturer": "Contoso",
//!   "files": [{ "path": "C:\\Program Files\\Contoso\\widget.exe", "content": "..." }],
//!   "registry": [{ "key": "HKLM\\SOFTWARE\\Contoso", "name": "Version", "type": "REG_SZ", "value": "1.2.0" }],
//!   "exitCodes": [1618, 1618, 0]
//! }
//! ```
//!
//! `exitCodes` is the plan for successive install attempts: attempt *n* exits with the
//! *n*-th code, and once the list is used up the last code repeats (`[1603, 0]` fails
//! once; `[]` always succeeds). Files and registry values are written only by an
//! attempt that exits with a success code (0, 1707, 3010, 1641).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The value of `format` this crate writes and reads.
pub const FORMAT: &str = "tenantless-msi/1";

/// A simulated MSI package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedMsi {
    /// Always [`FORMAT`].
    pub format: String,
    /// `ProductCode`, `{GUID}`.
    pub product_code: String,
    /// `UpgradeCode`, `{GUID}`.
    #[serde(default)]
    pub upgrade_code: String,
    /// `ProductName`.
    pub product_name: String,
    /// `ProductVersion`.
    pub product_version: String,
    /// `Manufacturer`.
    #[serde(default)]
    pub manufacturer: String,
    /// Files written on install, removed on uninstall.
    #[serde(default)]
    pub files: Vec<MsiFile>,
    /// Registry values written on install, removed on uninstall.
    #[serde(default)]
    pub registry: Vec<MsiRegistryValue>,
    /// Exit codes of successive install attempts; the last repeats.
    #[serde(default)]
    pub exit_codes: Vec<u32>,
}

/// A file the package installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiFile {
    /// Windows path, e.g. `C:\Program Files\Contoso\widget.exe`.
    pub path: String,
    /// The file's text content.
    #[serde(default)]
    pub content: String,
}

/// A registry value the package writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiRegistryValue {
    /// Key path with hive, e.g. `HKLM\SOFTWARE\Contoso`.
    pub key: String,
    /// Value name (empty for the default value).
    #[serde(default)]
    pub name: String,
    /// `REG_SZ`, `REG_DWORD`, `REG_QWORD`, `REG_EXPAND_SZ`, `REG_MULTI_SZ` or `REG_BINARY`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value as text (decimal for numbers, `\n`-separated for multi-strings, hex for
    /// binary).
    pub value: String,
}

impl SimulatedMsi {
    /// A package with no files, registry values or failures.
    pub fn new(product_code: &str, name: &str, version: &str, manufacturer: &str) -> Self {
        SimulatedMsi {
            format: FORMAT.into(),
            product_code: product_code.into(),
            upgrade_code: String::new(),
            product_name: name.into(),
            product_version: version.into(),
            manufacturer: manufacturer.into(),
            files: vec![],
            registry: vec![],
            exit_codes: vec![],
        }
    }

    /// Reads a package from its bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let msi: SimulatedMsi = serde_json::from_slice(bytes).map_err(|e| {
            Error::invalid(
                "tenantless-msi",
                &String::from_utf8_lossy(bytes),
                e.to_string(),
            )
        })?;
        if msi.format != FORMAT {
            return Err(Error::invalid(
                "tenantless-msi format",
                &msi.format,
                format!("expected {FORMAT}"),
            ));
        }
        Ok(msi)
    }

    /// The package's bytes (pretty JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The exit code of install attempt `attempt` (counting from 0).
    pub fn exit_code(&self, attempt: usize) -> u32 {
        match self.exit_codes.get(attempt) {
            Some(code) => *code,
            None => self.exit_codes.last().copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_plan_repeats_its_last_code() {
        let mut msi = SimulatedMsi::new("{P}", "App", "1.0", "Contoso");
        assert_eq!(msi.exit_code(0), 0);
        msi.exit_codes = vec![1618, 1618, 0];
        let codes: Vec<_> = (0..5).map(|n| msi.exit_code(n)).collect();
        assert_eq!(codes, [1618, 1618, 0, 0, 0]);
    }

    #[test]
    fn reads_back_what_it_writes_and_refuses_other_formats() {
        let mut msi = SimulatedMsi::new("{P}", "App", "1.0", "Contoso");
        msi.registry.push(MsiRegistryValue {
            key: "HKLM\\SOFTWARE\\Contoso".into(),
            name: "V".into(),
            kind: "REG_DWORD".into(),
            value: "1".into(),
        });
        assert_eq!(SimulatedMsi::parse(&msi.to_bytes()).unwrap(), msi);
        assert!(SimulatedMsi::parse(br#"{"format":"other"}"#).is_err());
        assert!(SimulatedMsi::parse(b"\xFF").is_err());
    }
}
