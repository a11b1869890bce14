//! A user's identifiers as they travel: the Entra object id Tenantless's directory
//! gives a user principal name, and the SID Windows derives from an Entra object id
//! (`S-1-12-1-` and the id's four 32-bit words), under which the user's hive and the
//! IME's per-user state are kept.

/// The namespace of the object ids Tenantless makes: stable across runs.
const NAMESPACE: uuid::Uuid = uuid::uuid!("5d7e6c1a-2f0b-5b8e-9c3d-7a4e1f0b2c6d");

/// A user's Entra object id, from their user principal name (case does not matter).
pub fn user_object_id(upn: &str) -> String {
    let name = format!("user:{}", upn.to_ascii_lowercase());
    uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

/// The Entra object id Tenantless gives any other named object (`device:<id>` ...).
pub fn object_id(name: &str) -> String {
    uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

/// The SID Windows gives an Entra user, from the object id; `None` when the id is not
/// a GUID.
pub fn user_sid(object_id: &str) -> Option<String> {
    let b = uuid::Uuid::parse_str(object_id).ok()?.to_bytes_le();
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Some(format!(
        "S-1-12-1-{}-{}-{}-{}",
        word(0),
        word(4),
        word(8),
        word(12)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_from_object_id_as_windows_derives_it() {
        assert_eq!(
            user_sid("b1c43cd5-0434-4aab-8981-0a6eac236955").as_deref(),
            // Checked against Python: struct.unpack("<4I", uuid.UUID(...).bytes_le).
            Some("S-1-12-1-2982427861-1252721716-1846182281-1432953772")
        );
        assert_eq!(user_sid("not a guid"), None);
    }

    #[test]
    fn object_ids_ignore_case_and_differ_by_kind() {
        assert_eq!(
            user_object_id("Ada@Contoso.com"),
            user_object_id("ada@contoso.com")
        );
        assert_ne!(
            user_object_id("ada@contoso.com"),
            object_id("device:ADA@CONTOSO.COM")
        );
    }
}
