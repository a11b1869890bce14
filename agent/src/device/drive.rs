//! The virtual `C:` drive: a folder tree under the device directory that mirrors
//! Windows paths, looked up case-insensitively as NTFS does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Log records kept before they are written regardless.
const MAX_PENDING_LOGS: usize = 512;

/// The `C:` drive of one device.
#[derive(Debug, Clone)]
pub struct Drive {
    root: PathBuf,
    /// Log records not yet written (shared by clones; see [`crate::cmtrace::append`]).
    pending_logs: Arc<Mutex<Vec<crate::cmtrace::Pending>>>,
}

impl Drop for Drive {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!("writing logs: {e}");
        }
    }
}

impl Drive {
    /// The drive rooted at `root` (created if missing).
    pub fn open(root: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&root)?;
        Ok(Drive {
            root,
            pending_logs: Arc::default(),
        })
    }

    /// Keeps a log record to write at the next [`Drive::flush`] (or now, when many
    /// are waiting: memory stays bounded however long saves are deferred).
    pub(crate) fn defer_log(&self, record: crate::cmtrace::Pending) {
        let mut pending = self.pending_logs.lock().unwrap_or_else(|e| e.into_inner());
        pending.push(record);
        if pending.len() >= MAX_PENDING_LOGS {
            let records = std::mem::take(&mut *pending);
            drop(pending);
            if let Err(e) = crate::cmtrace::flush(self, records) {
                tracing::warn!("writing logs: {e}");
            }
        }
    }

    /// Writes the log records kept in memory.
    pub fn flush(&self) -> io::Result<()> {
        let pending =
            std::mem::take(&mut *self.pending_logs.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return Ok(());
        }
        crate::cmtrace::flush(self, pending)
    }

    /// The host folder that is `C:\`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The components of a Windows path on this drive (`C:\A\b`, `\A\b` or `A/b`).
    fn components(windows_path: &str) -> Vec<&str> {
        let p = windows_path.trim();
        let p = p
            .strip_prefix("C:")
            .or_else(|| p.strip_prefix("c:"))
            .unwrap_or(p);
        p.split(['\\', '/'])
            .filter(|c| !c.is_empty() && *c != ".")
            .collect()
    }

    /// The host path for a Windows path: existing components are matched without regard
    /// to case; missing ones are taken as written. `..` is refused.
    pub fn resolve(&self, windows_path: &str) -> Option<PathBuf> {
        let mut here = self.root.clone();
        for part in Self::components(windows_path) {
            if part == ".." {
                return None;
            }
            let exact = here.join(part);
            if exact.exists() {
                here = exact;
                continue;
            }
            let found = fs::read_dir(&here).ok().and_then(|entries| {
                entries
                    .filter_map(Result::ok)
                    .find(|e| e.file_name().to_string_lossy().eq_ignore_ascii_case(part))
                    .map(|e| e.path())
            });
            here = found.unwrap_or(exact);
        }
        Some(here)
    }

    /// True when the file or folder exists.
    pub fn exists(&self, windows_path: &str) -> bool {
        self.resolve(windows_path).is_some_and(|p| p.exists())
    }

    /// Writes a file, creating its folders.
    pub fn write(&self, windows_path: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self
            .resolve(windows_path)
            .ok_or_else(|| bad_path(windows_path))?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, bytes)?;
        Ok(path)
    }

    /// Creates (or empties) a file to write in pieces, creating its folders.
    pub fn create(&self, windows_path: &str) -> io::Result<fs::File> {
        let path = self
            .resolve(windows_path)
            .ok_or_else(|| bad_path(windows_path))?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::File::create(path)
    }

    /// Opens a file to read in pieces.
    pub fn open_file(&self, windows_path: &str) -> io::Result<fs::File> {
        let path = self
            .resolve(windows_path)
            .ok_or_else(|| bad_path(windows_path))?;
        fs::File::open(path)
    }

    /// Creates a folder and its parents.
    pub fn create_dir(&self, windows_path: &str) -> io::Result<PathBuf> {
        let path = self
            .resolve(windows_path)
            .ok_or_else(|| bad_path(windows_path))?;
        fs::create_dir_all(&path)?;
        Ok(path)
    }

    /// Reads a file.
    pub fn read(&self, windows_path: &str) -> io::Result<Vec<u8>> {
        self.flush()?;
        let path = self
            .resolve(windows_path)
            .ok_or_else(|| bad_path(windows_path))?;
        fs::read(path)
    }

    /// Removes a file or a folder with its contents; no error if it is absent.
    pub fn remove(&self, windows_path: &str) -> io::Result<()> {
        let Some(path) = self.resolve(windows_path) else {
            return Ok(());
        };
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(path),
            Ok(_) => fs::remove_file(path),
            Err(_) => Ok(()),
        }
    }
}

fn bad_path(p: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{p:?} leaves the C: drive"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_paths_resolve_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let c = Drive::open(dir.path().join("C")).unwrap();
        let written = c
            .write(
                r"C:\ProgramData\Microsoft\IntuneManagementExtension\Logs\x.log",
                b"hi",
            )
            .unwrap();
        assert!(written.ends_with("ProgramData/Microsoft/IntuneManagementExtension/Logs/x.log"));
        assert_eq!(
            c.read(r"c:\programdata\MICROSOFT\intunemanagementextension\logs\X.LOG")
                .unwrap(),
            b"hi"
        );
        assert!(c.exists("/ProgramData/Microsoft"));
        assert!(c.resolve(r"C:\..\escape").is_none());
        c.remove(r"C:\PROGRAMDATA").unwrap();
        assert!(!c.exists(r"C:\ProgramData"));
    }
}
