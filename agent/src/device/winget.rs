//! The device's WinGet: the packages its source offers (a scenario's catalogue, each
//! with the exit codes its successive installs end with) and installing one, which
//! registers it among the installed programs. Microsoft Store (new) apps come this way.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::programs::UNINSTALL_KEY;
use super::{Device, Outcome, RegValue};

/// `APPINSTALLER_CLI_ERROR_NO_APPLICATIONS_FOUND`: no package matches.
pub const NO_APPLICATIONS_FOUND: i64 = 0x8A15_0014_u32 as i32 as i64;

/// A package the source offers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Package {
    /// Its name (the installed program's DisplayName).
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its publisher.
    pub publisher: String,
    /// The exit codes of successive installs (the last repeats; none: success).
    pub exit_codes: Vec<i64>,
}

/// The source's packages by identifier, and how often each was installed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Catalogue {
    /// The packages, by identifier (`9WZDNCRFJ3TJ`, `Contoso.Widget`).
    pub packages: BTreeMap<String, Package>,
    /// Install attempts per identifier.
    pub attempts: BTreeMap<String, u32>,
}

/// Where an installed package is registered.
pub fn uninstall_key(id: &str) -> String {
    format!(r"{UNINSTALL_KEY}\WinGet_{id}")
}

impl Device {
    /// True when the package is installed (registered among the programs).
    pub fn winget_installed(&self, id: &str) -> bool {
        self.registry
            .get(&uninstall_key(id), "DisplayName")
            .is_some()
    }

    /// Uninstalls a package: its program registration goes.
    pub fn winget_uninstall(&mut self, id: &str) -> Outcome {
        let key = uninstall_key(id);
        if self.registry.get(&key, "DisplayName").is_none() {
            return Outcome::code(
                NO_APPLICATIONS_FOUND,
                format!("No installed package found matching input criteria: {id}"),
            );
        }
        self.registry.delete_key(&key);
        Outcome::default()
    }

    /// Installs a package from the source: the exit code of this attempt from its plan;
    /// a success registers the program.
    pub fn winget_install(&mut self, id: &str, now: DateTime<Utc>) -> Outcome {
        let Some(package) = self.winget.packages.get(id).cloned() else {
            return Outcome::code(
                NO_APPLICATIONS_FOUND,
                format!("No package found matching input criteria: {id}"),
            );
        };
        let attempt = self.winget.attempts.entry(id.to_owned()).or_insert(0);
        let code = package
            .exit_codes
            .get(*attempt as usize)
            .or(package.exit_codes.last())
            .copied()
            .unwrap_or(0);
        *attempt += 1;
        if code != 0 {
            return Outcome::code(
                code,
                format!("{} failed to install ({code:#x})", package.name),
            );
        }
        let key = uninstall_key(id);
        for (name, value) in [
            ("DisplayName", &package.name),
            ("DisplayVersion", &package.version),
            ("Publisher", &package.publisher),
        ] {
            self.registry.set(&key, name, RegValue::Sz(value.clone()));
        }
        self.registry.set(
            &key,
            "InstallDate",
            RegValue::Sz(now.format("%Y%m%d").to_string()),
        );
        Outcome::default()
    }
}
