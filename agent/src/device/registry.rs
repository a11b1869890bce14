//! The device's registry: hives, keys and typed values, looked up case-insensitively
//! as Windows does, persisted as JSON and exportable as a `.reg` file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A registry value's data, by Windows type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum RegValue {
    /// `REG_SZ`.
    #[serde(rename = "REG_SZ")]
    Sz(String),
    /// `REG_EXPAND_SZ`.
    #[serde(rename = "REG_EXPAND_SZ")]
    ExpandSz(String),
    /// `REG_MULTI_SZ`.
    #[serde(rename = "REG_MULTI_SZ")]
    MultiSz(Vec<String>),
    /// `REG_DWORD`.
    #[serde(rename = "REG_DWORD")]
    Dword(u32),
    /// `REG_QWORD`.
    #[serde(rename = "REG_QWORD")]
    Qword(u64),
    /// `REG_BINARY`.
    #[serde(rename = "REG_BINARY")]
    Binary(Vec<u8>),
}

impl RegValue {
    /// The Windows type name, e.g. `REG_SZ`.
    pub fn type_name(&self) -> &'static str {
        match self {
            RegValue::Sz(_) => "REG_SZ",
            RegValue::ExpandSz(_) => "REG_EXPAND_SZ",
            RegValue::MultiSz(_) => "REG_MULTI_SZ",
            RegValue::Dword(_) => "REG_DWORD",
            RegValue::Qword(_) => "REG_QWORD",
            RegValue::Binary(_) => "REG_BINARY",
        }
    }

    /// Builds a value from a type name and text: decimal (or `0x` hex) for numbers,
    /// `\n`-separated strings for `REG_MULTI_SZ`, hex bytes for `REG_BINARY`.
    pub fn parse(type_name: &str, text: &str) -> Result<RegValue, String> {
        let number = |t: &str| -> Result<u64, String> {
            let t = t.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => t.parse(),
            }
            .map_err(|_| format!("{t:?} is not a number"))
        };
        Ok(match type_name.to_ascii_uppercase().as_str() {
            "REG_SZ" => RegValue::Sz(text.into()),
            "REG_EXPAND_SZ" => RegValue::ExpandSz(text.into()),
            "REG_MULTI_SZ" => RegValue::MultiSz(text.split('\n').map(str::to_owned).collect()),
            "REG_DWORD" => RegValue::Dword(
                u32::try_from(number(text)?)
                    .map_err(|_| format!("{text:?} does not fit a DWORD"))?,
            ),
            "REG_QWORD" => RegValue::Qword(number(text)?),
            "REG_BINARY" => RegValue::Binary(
                hex::decode(text.replace([',', ' '], "")).map_err(|e| format!("binary: {e}"))?,
            ),
            other => return Err(format!("unknown registry type {other}")),
        })
    }

    /// The value as text: strings as they are, numbers in decimal, multi-strings joined
    /// with newlines, binary as hex.
    pub fn to_text(&self) -> String {
        match self {
            RegValue::Sz(s) | RegValue::ExpandSz(s) => s.clone(),
            RegValue::MultiSz(v) => v.join("\n"),
            RegValue::Dword(n) => n.to_string(),
            RegValue::Qword(n) => n.to_string(),
            RegValue::Binary(b) => hex::encode(b),
        }
    }
}

/// One key: its name as created (case kept) and its values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Key {
    path: String,
    /// Values by lower-case name: (name as written, data).
    values: BTreeMap<String, (String, RegValue)>,
}

/// A registry: `HKEY_LOCAL_MACHINE` and `HKEY_USERS\<sid>` for each user, with `HKLM`,
/// `HKU` and `HKCU` (the signed-in user) accepted as abbreviations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// Keys by their lower-case canonical path.
    keys: BTreeMap<String, Key>,
    /// The SID `HKCU` stands for.
    current_user_sid: String,
    /// Bumped by every change, so a save can tell whether there is anything to write.
    #[serde(skip)]
    changes: u64,
}

impl Registry {
    /// An empty registry whose `HKCU` is the user with this SID.
    pub fn new(current_user_sid: &str) -> Self {
        let mut r = Registry {
            keys: BTreeMap::new(),
            current_user_sid: current_user_sid.into(),
            changes: 0,
        };
        r.create_key("HKEY_LOCAL_MACHINE\\SOFTWARE");
        r.create_key("HKEY_LOCAL_MACHINE\\SYSTEM");
        r.create_key(&format!("HKEY_USERS\\{current_user_sid}\\Software"));
        r
    }

    /// The SID `HKCU` stands for.
    pub fn current_user(&self) -> &str {
        &self.current_user_sid
    }

    /// Makes `HKCU` the hive of the user with this SID (created when missing), as
    /// while a process runs as that user; returns the SID it stood for before.
    pub fn set_current_user(&mut self, sid: &str) -> String {
        self.create_key(&format!("HKEY_USERS\\{sid}\\Software"));
        std::mem::replace(&mut self.current_user_sid, sid.to_owned())
    }

    /// How many changes the registry has seen since it was loaded.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The canonical spelling of a key path: full hive name, single backslashes, no
    /// trailing separator. `None` for a path outside the known hives.
    pub fn canonical(&self, path: &str) -> Option<String> {
        let trimmed = path.trim().trim_matches('\\').replace('/', "\\");
        let mut parts = trimmed.split('\\').filter(|p| !p.is_empty());
        let hive = parts.next()?;
        let rest: Vec<&str> = parts.collect();
        let mut out = match hive.to_ascii_uppercase().as_str() {
            "HKLM" | "HKEY_LOCAL_MACHINE" => "HKEY_LOCAL_MACHINE".to_owned(),
            "HKU" | "HKEY_USERS" => "HKEY_USERS".to_owned(),
            "HKCU" | "HKEY_CURRENT_USER" => format!("HKEY_USERS\\{}", self.current_user_sid),
            _ => return None,
        };
        for part in rest {
            out.push('\\');
            out.push_str(part);
        }
        Some(out)
    }

    fn key_id(&self, path: &str) -> Option<(String, String)> {
        let canonical = self.canonical(path)?;
        Some((canonical.to_lowercase(), canonical))
    }

    /// Creates a key and its parents (keeping the case of existing ones); true if the
    /// path names a known hive.
    pub fn create_key(&mut self, path: &str) -> bool {
        let Some((_, canonical)) = self.key_id(path) else {
            return false;
        };
        let mut so_far = String::new();
        for part in canonical.split('\\') {
            if !so_far.is_empty() {
                so_far.push('\\');
            }
            so_far.push_str(part);
            let id = so_far.to_lowercase();
            let existing = self.keys.get(&id).map(|k| k.path.clone());
            match existing {
                // Keep the spelling the key was created with.
                Some(path) => so_far = path,
                None => {
                    self.changes += 1;
                    self.keys.insert(
                        id,
                        Key {
                            path: so_far.clone(),
                            values: BTreeMap::new(),
                        },
                    );
                }
            }
        }
        true
    }

    /// True when the key exists.
    pub fn key_exists(&self, path: &str) -> bool {
        self.key_id(path)
            .is_some_and(|(id, _)| self.keys.contains_key(&id))
    }

    /// Sets a value, creating the key.
    pub fn set(&mut self, path: &str, name: &str, value: RegValue) -> bool {
        if !self.create_key(path) {
            return false;
        }
        let Some((id, _)) = self.key_id(path) else {
            return false;
        };
        if let Some(key) = self.keys.get_mut(&id) {
            let lower = name.to_lowercase();
            if key
                .values
                .get(&lower)
                .is_none_or(|(n, v)| n != name || *v != value)
            {
                key.values.insert(lower, (name.to_owned(), value));
                self.changes += 1;
            }
        }
        true
    }

    /// A value.
    pub fn get(&self, path: &str, name: &str) -> Option<&RegValue> {
        let (id, _) = self.key_id(path)?;
        self.keys
            .get(&id)?
            .values
            .get(&name.to_lowercase())
            .map(|(_, v)| v)
    }

    /// A value as text ([`RegValue::to_text`]).
    pub fn get_text(&self, path: &str, name: &str) -> Option<String> {
        self.get(path, name).map(RegValue::to_text)
    }

    /// A key's values, by name as written.
    pub fn values(&self, path: &str) -> Vec<(String, RegValue)> {
        self.key_id(path)
            .and_then(|(id, _)| self.keys.get(&id))
            .map(|k| k.values.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The names of a key's direct subkeys, as written.
    pub fn subkeys(&self, path: &str) -> Vec<String> {
        let Some((id, _)) = self.key_id(path) else {
            return vec![];
        };
        let prefix = format!("{id}\\");
        self.keys
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains('\\'))
            .map(|(_, key)| key.path.rsplit('\\').next().unwrap_or_default().to_owned())
            .collect()
    }

    /// Deletes a value; true if it existed.
    pub fn delete_value(&mut self, path: &str, name: &str) -> bool {
        let Some((id, _)) = self.key_id(path) else {
            return false;
        };
        let removed = self
            .keys
            .get_mut(&id)
            .is_some_and(|k| k.values.remove(&name.to_lowercase()).is_some());
        self.changes += u64::from(removed);
        removed
    }

    /// Deletes a key and everything under it; true if it existed.
    pub fn delete_key(&mut self, path: &str) -> bool {
        let Some((id, _)) = self.key_id(path) else {
            return false;
        };
        let existed = self.keys.remove(&id).is_some();
        let prefix = format!("{id}\\");
        self.keys.retain(|k, _| !k.starts_with(&prefix));
        self.changes += 1;
        existed
    }

    /// The keys under (and including) `path` in the Windows Registry Editor 5.00
    /// format, as text (regedit writes it UTF-16LE with a BOM: see [`Self::export_reg_utf16`]).
    pub fn export_reg(&self, path: Option<&str>) -> String {
        let prefix = path.and_then(|p| self.key_id(p)).map(|(id, _)| id);
        let mut out = String::from("Windows Registry Editor Version 5.00\r\n");
        for (id, key) in &self.keys {
            if let Some(p) = &prefix {
                if id != p && !id.starts_with(&format!("{p}\\")) {
                    continue;
                }
            }
            out.push_str(&format!("\r\n[{}]\r\n", key.path));
            for (name, value) in key.values.values() {
                let name = if name.is_empty() {
                    "@".to_owned()
                } else {
                    format!("\"{}\"", reg_escape(name))
                };
                out.push_str(&format!("{name}={}\r\n", reg_data(value)));
            }
        }
        out.push_str("\r\n");
        out
    }

    /// [`Self::export_reg`] encoded as regedit writes files: UTF-16LE with a BOM.
    pub fn export_reg_utf16(&self, path: Option<&str>) -> Vec<u8> {
        let mut out = vec![0xFF, 0xFE];
        out.extend(
            self.export_reg(path)
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        out
    }
}

fn reg_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn hex_list(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn utf16z(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend(p.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
    }
    out
}

fn reg_data(value: &RegValue) -> String {
    match value {
        RegValue::Sz(s) => format!("\"{}\"", reg_escape(s)),
        RegValue::Dword(n) => format!("dword:{n:08x}"),
        RegValue::Qword(n) => format!("hex(b):{}", hex_list(&n.to_le_bytes())),
        RegValue::ExpandSz(s) => format!("hex(2):{}", hex_list(&utf16z(&[s]))),
        RegValue::MultiSz(v) => {
            let mut bytes = utf16z(&v.iter().map(String::as_str).collect::<Vec<_>>());
            bytes.extend([0, 0]);
            format!("hex(7):{}", hex_list(&bytes))
        }
        RegValue::Binary(b) => format!("hex:{}", hex_list(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "S-1-12-1-1-2-3-4";

    #[test]
    fn keys_and_values_are_case_insensitive_and_keep_their_case() {
        let mut r = Registry::new(SID);
        r.set(
            r"HKLM\SOFTWARE\Microsoft\IntuneManagementExtension",
            "Version",
            RegValue::Sz("1.0".into()),
        );
        assert_eq!(
            r.get_text(
                r"hklm\software\microsoft\intunemanagementextension",
                "VERSION"
            )
            .as_deref(),
            Some("1.0")
        );
        assert_eq!(
            r.subkeys(r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft"),
            ["IntuneManagementExtension"]
        );
        r.set(r"HKLM\software\MICROSOFT\x", "v", RegValue::Dword(1));
        assert!(
            r.export_reg(None)
                .contains(r"[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\x]"),
            "existing spelling kept"
        );
    }

    #[test]
    fn hkcu_is_the_signed_in_user() {
        let mut r = Registry::new(SID);
        r.set(r"HKCU\Software\Contoso", "A", RegValue::Dword(7));
        assert_eq!(
            r.get(&format!(r"HKU\{SID}\Software\Contoso"), "a"),
            Some(&RegValue::Dword(7))
        );
        assert!(!r.set(r"HKXX\Nope", "a", RegValue::Dword(1)));
    }

    #[test]
    fn deleting_a_key_deletes_its_subtree() {
        let mut r = Registry::new(SID);
        r.set(r"HKLM\SOFTWARE\A\B\C", "x", RegValue::Dword(1));
        r.set(r"HKLM\SOFTWARE\AB", "y", RegValue::Dword(1));
        assert!(r.delete_key(r"HKLM\SOFTWARE\A"));
        assert!(!r.key_exists(r"HKLM\SOFTWARE\A\B"));
        assert!(
            r.key_exists(r"HKLM\SOFTWARE\AB"),
            "a sibling with the same prefix stays"
        );
        assert!(!r.delete_key(r"HKLM\SOFTWARE\A"));
    }

    #[test]
    fn exports_in_regedit_format() {
        let mut r = Registry::new(SID);
        let k = r"HKLM\SOFTWARE\Contoso";
        r.set(k, "Name", RegValue::Sz("C:\\Program Files\\\"x\"".into()));
        r.set(k, "Count", RegValue::Dword(26));
        r.set(k, "Big", RegValue::Qword(1));
        r.set(k, "Path", RegValue::ExpandSz("%A%".into()));
        r.set(k, "List", RegValue::MultiSz(vec!["a".into(), "b".into()]));
        r.set(k, "Blob", RegValue::Binary(vec![1, 0xAB]));
        r.set(k, "", RegValue::Sz("default".into()));
        let text = r.export_reg(Some(k));
        let expected = [
            "Windows Registry Editor Version 5.00",
            "",
            r"[HKEY_LOCAL_MACHINE\SOFTWARE\Contoso]",
            "@=\"default\"",
            "\"Big\"=hex(b):01,00,00,00,00,00,00,00",
            "\"Blob\"=hex:01,ab",
            "\"Count\"=dword:0000001a",
            "\"List\"=hex(7):61,00,00,00,62,00,00,00,00,00",
            "\"Name\"=\"C:\\\\Program Files\\\\\\\"x\\\"\"",
            "\"Path\"=hex(2):25,00,41,00,25,00,00,00",
            "",
            "",
        ]
        .join("\r\n");
        assert_eq!(text, expected);
        assert_eq!(&r.export_reg_utf16(Some(k))[..4], &[0xFF, 0xFE, b'W', 0]);
    }

    #[test]
    fn values_parse_from_text() {
        assert_eq!(
            RegValue::parse("REG_DWORD", "0x10"),
            Ok(RegValue::Dword(16))
        );
        assert_eq!(RegValue::parse("reg_qword", "5"), Ok(RegValue::Qword(5)));
        assert_eq!(
            RegValue::parse("REG_BINARY", "01,ff"),
            Ok(RegValue::Binary(vec![1, 255]))
        );
        assert!(RegValue::parse("REG_DWORD", "4294967296").is_err());
        assert!(RegValue::parse("REG_NOPE", "1").is_err());
    }
}
