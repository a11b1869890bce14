//! The facts a device is made of: identity, hardware, OS, signed-in user. Set by flags
//! or a JSON profile file; anything left out takes a plausible default.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A device's fixed facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceProfile {
    /// The device id Windows sends at enrollment (upper-case GUID).
    pub device_id: String,
    /// The computer name.
    pub device_name: String,
    /// `./DevInfo/Man`.
    pub manufacturer: String,
    /// `./DevInfo/Mod`.
    pub model: String,
    /// `x64`, `x86`, `ARM64`.
    pub architecture: String,
    /// The OS version, `10.0.<build>.<revision>`.
    pub os_version: String,
    /// The OS edition (SKU number; 4 is Enterprise, 48 Pro).
    pub os_edition: u32,
    /// UI language.
    pub language: String,
    /// Physical memory, MB.
    pub memory_mb: u64,
    /// Free space on C:, MB.
    pub free_disk_mb: u64,
    /// Logical processors.
    pub cpu_count: u32,
    /// CPU speed, MHz.
    pub cpu_speed_mhz: u32,
    /// The signed-in user.
    pub user_principal_name: String,
    /// The signed-in user's Entra object id.
    pub user_object_id: String,
    /// Network adapters' MAC addresses.
    pub mac_addresses: Vec<String>,
    /// `HWDevID` (hardware hash).
    pub hw_dev_id: String,
    /// Use an ECDSA P-256 key instead of Windows' RSA-2048 (much faster for fleets).
    pub fast_keys: bool,
    /// The IME's logs roll over at this size, KB (the IME's default is about 2 MB).
    pub log_max_kb: u64,
    /// The network's download speed, kbit/s: how long content downloads take in the
    /// IME's logs.
    pub download_kbps: u64,
    /// The Windows time zone (`TimeZoneKeyName`, e.g. `E. Australia Standard Time`).
    pub time_zone: String,
    /// The time zone's offset from UTC, minutes (600 for UTC+10). No daylight saving.
    pub utc_offset_minutes: i32,
}

impl Default for DeviceProfile {
    fn default() -> Self {
        DeviceProfile {
            device_id: String::new(),
            device_name: String::new(),
            manufacturer: "Microsoft Corporation".into(),
            model: "Virtual Machine".into(),
            architecture: "x64".into(),
            os_version: "10.0.22631.2861".into(),
            os_edition: 4,
            language: "en-US".into(),
            memory_mb: 8192,
            free_disk_mb: 65_536,
            cpu_count: 4,
            cpu_speed_mhz: 2400,
            user_principal_name: "user@contoso.com".into(),
            user_object_id: String::new(),
            mac_addresses: vec!["00-15-5D-01-02-03".into()],
            hw_dev_id: String::new(),
            fast_keys: false,
            log_max_kb: 2048,
            download_kbps: 50_000,
            time_zone: "UTC".into(),
            utc_offset_minutes: 0,
        }
    }
}

impl DeviceProfile {
    /// Fills the identity fields left empty, from `seed` bytes (a device id, a name
    /// derived from it, a user object id and a hardware id).
    pub fn complete(&mut self, seed: [u8; 32]) {
        if self.device_id.is_empty() {
            self.device_id = guid(&seed[0..16]);
        }
        if self.user_object_id.is_empty() {
            self.user_object_id = guid(&seed[16..32]).to_lowercase();
        }
        if self.device_name.is_empty() {
            let tail: String = self
                .device_id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(7)
                .collect();
            self.device_name = format!("DESKTOP-{tail}");
        }
        if self.hw_dev_id.is_empty() {
            use sha2::{Digest, Sha256};
            self.hw_dev_id = hex::encode_upper(Sha256::digest(self.device_id.as_bytes()));
        }
    }

    /// The OS build number (the third part of the version).
    pub fn build_number(&self) -> u32 {
        self.os_version
            .split('.')
            .nth(2)
            .and_then(|b| b.parse().ok())
            .unwrap_or(0)
    }

    /// The signed-in user's SID, as Windows derives it for an Entra user:
    /// `S-1-12-1-` and the object id's four 32-bit words.
    pub fn user_sid(&self) -> String {
        syncml::entra::user_sid(&self.user_object_id)
            .unwrap_or_else(|| syncml::entra::FALLBACK_SID.into())
    }

    /// A moment as the device's clock shows it (its wall-clock time, kept in a UTC
    /// value as Windows' local times carry no zone).
    pub fn local(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.checked_add_signed(Duration::minutes(self.utc_offset_minutes.into()))
            .unwrap_or(at)
    }

    /// The moment a wall-clock time on the device's clock stands for.
    pub fn from_local(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        wall.checked_sub_signed(Duration::minutes(self.utc_offset_minutes.into()))
            .unwrap_or(wall)
    }

    /// The primary user (who enrolled the device), signed in when it is new; `None`
    /// for a userless device.
    pub fn primary_user(&self) -> Option<super::User> {
        (!self.user_principal_name.is_empty()).then(|| super::User {
            upn: self.user_principal_name.clone(),
            object_id: self.user_object_id.clone(),
        })
    }
}

fn guid(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .to_string()
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_fills_only_what_is_missing() {
        let mut p = DeviceProfile {
            device_name: "LAB-01".into(),
            ..DeviceProfile::default()
        };
        p.complete([7; 32]);
        assert_eq!(p.device_name, "LAB-01");
        assert_eq!(p.device_id.len(), 36);
        assert_eq!(p.hw_dev_id.len(), 64);
        assert_eq!(p.build_number(), 22631);
    }
}
