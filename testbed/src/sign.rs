//! `tenantless sign`: signs scripts with a publisher's key (see
//! `agent::ime::signature` for the block), creating the publisher on first use, and
//! says how to make devices trust it: an OMA-DM Add to the RootCATrustedCertificates
//! CSP's TrustedPublisher store, queued through the admin API.

use std::path::{Path, PathBuf};

use agent::ime::signature::Publisher;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The publisher's key file in its folder.
pub const KEY_FILE: &str = "publisher.key";
/// The publisher's certificate file in its folder.
pub const CERT_FILE: &str = "publisher.cer";

/// Loads the publisher kept in `dir`, or creates one there for `subject` (a common
/// name); true when it was created.
pub fn load_or_create(
    dir: &Path,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<(Publisher, bool), String> {
    let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
    if key_path.exists() || cert_path.exists() {
        let read =
            |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        let publisher = Publisher::from_pem(&read(&key_path)?, &read(&cert_path)?)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        return Ok((publisher, false));
    }
    let publisher = Publisher::create(subject, now)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let write = |p: &PathBuf, text: String| {
        std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write(&key_path, publisher.key_pem())?;
    write(&cert_path, publisher.cert_pem())?;
    Ok((publisher, true))
}

/// Signs a script file in place (replacing an old signature).
pub fn sign_file(publisher: &Publisher, path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let signed = publisher.sign(&text)?;
    std::fs::write(path, signed).map_err(|e| format!("{}: {e}", path.display()))
}

/// The admin API command (`POST .../managedDevices/{id}/commands`) that makes a device
/// trust the publisher.
pub fn trust_command(publisher: &Publisher) -> Value {
    json!({
        "verb": "Add",
        "items": [{
            "target": format!(
                "./Device/Vendor/MSFT/RootCATrustedCertificates/TrustedPublisher/{}/EncodedCertificate",
                publisher.thumbprint()
            ),
            "format": "chr",
            "data": base64::engine::general_purpose::STANDARD.encode(publisher.cert_der()),
        }],
    })
}
