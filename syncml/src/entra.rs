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

/// True when `text` has a user principal name's shape: a name, `@`, a domain, no
/// white space or control characters, at most 256 characters.
pub fn is_user_principal_name(text: &str) -> bool {
    text.len() <= 256
        && text
            .split_once('@')
            .is_some_and(|(name, domain)| !name.is_empty() && !domain.is_empty())
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The SID a user without a usable object id is given (a local account's shape).
pub const FALLBACK_SID: &str = "S-1-5-21-0-0-0-1001";

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
    fn user_principal_names_have_a_name_and_a_domain() {
        assert!(is_user_principal_name("bob@contoso.com"));
        for bad in [
            "bob",
            "@contoso.com",
            "bob@",
            "bob @contoso.com",
            "bob@contoso.com\n",
        ] {
            assert!(!is_user_principal_name(bad), "{bad:?}");
        }
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
