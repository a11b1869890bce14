//! Secrets on disk and in comparisons: files only the server's user can read, and
//! comparisons whose time does not tell how much of a guess was right.

use std::path::Path;

use subtle::ConstantTimeEq;

/// True when `given` equals `expected`, in time that depends only on their lengths.
pub fn matches(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// Writes a file only its owner may read or write (0600 on Unix).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    restrict(path, 0o600)?; // a file that existed keeps its mode otherwise
    file.write_all(contents)
}

/// Makes a file or directory its owner's alone (`mode` on Unix; nothing elsewhere).
pub fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons() {
        assert!(matches("tenantless-admin", "tenantless-admin"));
        assert!(!matches("tenantless-admiN", "tenantless-admin"));
        assert!(!matches("tenantless", "tenantless-admin"));
        assert!(!matches("", "x"));
    }
}
