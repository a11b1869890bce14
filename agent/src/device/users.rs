//! The users signed in to a device: each an Entra user with an interactive Windows
//! session of their own (sessions are numbered from 1 in sign-in order; 0 is the
//! userless session the IME processes device-targeted apps in) and a hive under
//! `HKEY_USERS\<SID>`.

use serde::{Deserialize, Serialize};

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user principal name.
    pub upn: String,
    /// The Entra object id (lower case).
    pub object_id: String,
}

impl User {
    /// The user `upn`, with the object id Tenantless's directory gives that name.
    pub fn named(upn: &str) -> User {
        User {
            upn: upn.trim().to_owned(),
            object_id: syncml::entra::user_object_id(upn.trim()),
        }
    }

    /// The user's SID, as Windows derives it from the object id.
    pub fn sid(&self) -> String {
        syncml::entra::user_sid(&self.object_id)
            .unwrap_or_else(|| syncml::entra::FALLBACK_SID.into())
    }
}
