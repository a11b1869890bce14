//! CMTrace logs as the IME writes them: UTF-8 with a byte-order mark, one record per
//! `<![LOG[...]LOG]!><time=... date=... component=... context="" type=N thread=N file="">`
//! line, rolled over at a size limit to `<name>-YYYYMMDD-HHMMSS.log`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::device::Drive;

/// The IME's log folder.
pub const LOG_DIR: &str = r"C:\ProgramData\Microsoft\IntuneManagementExtension\Logs";
/// Default rollover size.
pub const DEFAULT_MAX_BYTES: u64 = 2 * 1024 * 1024;

/// A record's severity (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// 1.
    Info = 1,
    /// 2.
    Warning = 2,
    /// 3.
    Error = 3,
}

/// One formatted CMTrace record (without line ending); `at` is the device's local
/// (wall-clock) time, which is what the columns hold.
pub fn format_line(
    message: &str,
    at: DateTime<Utc>,
    component: &str,
    severity: Severity,
    thread: u32,
) -> String {
    format!(
        "<![LOG[{message}]LOG]!><time=\"{:02}:{:02}:{:02}.{:07}\" date=\"{}-{}-{}\" component=\"{component}\" context=\"\" type=\"{}\" thread=\"{thread}\" file=\"\">",
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond() / 100,
        at.month(),
        at.day(),
        at.year(),
        severity as u8,
    )
}

/// A record waiting to be written (see [`append`]).
#[derive(Debug, Clone)]
pub struct Pending {
    file: String,
    line: String,
    at: DateTime<Utc>,
    max_bytes: u64,
}

/// Appends a record to `C:\ProgramData\Microsoft\IntuneManagementExtension\Logs\<file>`,
/// rolling the file over first when it has reached `max_bytes`. Records are kept in
/// memory and written together by [`flush`], which the device does when it saves and
/// before anything reads its drive: a check-in's many lines cost one write per file.
pub fn append(
    drive: &Drive,
    file: &str,
    line: &str,
    at: DateTime<Utc>,
    max_bytes: u64,
) -> io::Result<()> {
    drive.defer_log(Pending {
        file: file.to_owned(),
        line: line.to_owned(),
        at,
        max_bytes,
    });
    Ok(())
}

/// Writes the records [`append`] kept, in order, rolling files over as they fill.
pub fn flush(drive: &Drive, pending: Vec<Pending>) -> io::Result<()> {
    let mut files: Vec<&str> = pending.iter().map(|p| p.file.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    for file in files {
        let windows_path = format!(r"{LOG_DIR}\{file}");
        let Some(path) = drive.resolve(&windows_path) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "log path"));
        };
        if let Some(dir) = path.parent().filter(|d| !d.exists()) {
            fs::create_dir_all(dir)?;
        }
        // What the file holds (None: it does not exist) and what is to be added.
        let mut on_disk = fs::metadata(&path).ok().map(|m| m.len());
        let mut buf: Vec<u8> = Vec::new();
        for p in pending.iter().filter(|p| p.file == file) {
            let size = on_disk.unwrap_or(0) + buf.len() as u64;
            if size >= p.max_bytes && (on_disk.is_some() || !buf.is_empty()) {
                write_out(&path, &buf)?;
                buf.clear();
                roll_over(&path, p.at)?;
                on_disk = None;
            }
            if on_disk.is_none() && buf.is_empty() {
                buf.extend_from_slice(b"\xEF\xBB\xBF");
            }
            buf.extend_from_slice(p.line.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
        write_out(&path, &buf)?;
    }
    Ok(())
}

fn write_out(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes)
}

fn roll_over(path: &Path, at: DateTime<Utc>) -> io::Result<()> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rolled = path.with_file_name(format!("{stem}-{}.log", at.format("%Y%m%d-%H%M%S")));
    fs::rename(path, rolled)
}

/// One record read back from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When it was written: the file's local time as read (see
    /// [`crate::device::Device::log_records`] for the moment it stands for).
    pub at: DateTime<Utc>,
    /// The message (it may span lines).
    pub message: String,
    /// The component.
    pub component: String,
    /// 1 information, 2 warning, 3 error.
    pub severity: u8,
    /// The writing thread's id.
    pub thread: u32,
    /// The file it was read from (a rolled file's own name).
    pub file: String,
}

/// The files of a log, oldest first: the rolled-over `<name>-YYYYMMDD-HHMMSS.log`
/// files, then the current one.
pub fn files(drive: &Drive, file: &str) -> Vec<String> {
    let stem = file.strip_suffix(".log").unwrap_or(file);
    let mut rolled: Vec<String> = drive
        .resolve(LOG_DIR)
        .and_then(|dir| fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix(stem)
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|r| r.strip_suffix(".log"))
                .is_some_and(|stamp| {
                    stamp.len() == 15 && stamp.chars().all(|c| c.is_ascii_digit() || c == '-')
                })
        })
        .collect();
    rolled.sort();
    rolled.push(file.to_owned());
    rolled
}

/// Reads a log back, rolled files included, oldest record first.
pub fn read(drive: &Drive, file: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for name in files(drive, file) {
        let bytes = drive
            .read(&format!(r"{LOG_DIR}\{name}"))
            .unwrap_or_default();
        let text = String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes))
            .into_owned();
        out.extend(parse(&text, &name));
    }
    out
}

/// The records of one file's text.
pub fn parse(text: &str, file: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for record in text.split("<![LOG[").skip(1) {
        let Some((message, rest)) = record.split_once("]LOG]!>") else {
            continue;
        };
        let attr = |name: &str| {
            rest.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        let (time, date) = (attr("time"), attr("date"));
        let stamp = format!("{date} {}", time.get(..15).unwrap_or(&time));
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&stamp, "%m-%d-%Y %H:%M:%S%.f") {
            out.push(Record {
                at: t.and_utc(),
                message: message.to_owned(),
                component: attr("component"),
                severity: attr("type").parse().unwrap_or(1),
                thread: attr("thread").parse().unwrap_or(0),
                file: file.to_owned(),
            });
        }
    }
    out
}

/// A log's messages, rolled files included (for tests and `status`).
pub fn messages(drive: &Drive, file: &str) -> Vec<String> {
    read(drive, file).into_iter().map(|r| r.message).collect()
}

/// A log's records with their times, rolled files included (for tests and timelines).
pub fn records(drive: &Drive, file: &str) -> Vec<(DateTime<Utc>, String)> {
    read(drive, file)
        .into_iter()
        .map(|r| (r.at, r.message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn lines_look_like_the_imes() {
        let line = format_line(
            "EMS Agent Started",
            at("2026-03-04T05:06:07.1234567Z"),
            "IntuneManagementExtension",
            Severity::Info,
            1,
        );
        assert_eq!(
            line,
            r#"<![LOG[EMS Agent Started]LOG]!><time="05:06:07.1234567" date="3-4-2026" component="IntuneManagementExtension" context="" type="1" thread="1" file="">"#
        );
    }

    #[test]
    fn files_start_with_a_bom_and_roll_over() {
        let dir = tempfile::tempdir().unwrap();
        let drive = Drive::open(dir.path().join("C")).unwrap();
        let t = at("2026-11-24T10:00:00Z");
        for n in 0..3 {
            append(
                &drive,
                "IntuneManagementExtension.log",
                &format_line(&format!("line {n}"), t, "x", Severity::Info, 1),
                t,
                200,
            )
            .unwrap();
        }
        let current = drive
            .read(&format!(r"{LOG_DIR}\IntuneManagementExtension.log"))
            .unwrap();
        assert!(
            current.starts_with(b"\xEF\xBB\xBF<![LOG[line 2]"),
            "rolled over before the third line"
        );
        assert!(drive.exists(&format!(
            r"{LOG_DIR}\IntuneManagementExtension-20261124-100000.log"
        )));
        assert_eq!(
            messages(&drive, "IntuneManagementExtension.log"),
            ["line 0", "line 1", "line 2"],
            "read back across the rolled files"
        );
    }

    #[test]
    fn many_waiting_records_are_written_without_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let drive = Drive::open(dir.path().join("C")).unwrap();
        let t = at("2026-11-24T10:00:00Z");
        let on_disk = dir
            .path()
            .join("C/ProgramData/Microsoft/IntuneManagementExtension/Logs/AppWorkload.log");
        let line = format_line("a check-in", t, "x", Severity::Info, 1);
        append(&drive, "AppWorkload.log", &line, t, 1 << 30).unwrap();
        assert!(!on_disk.exists(), "one record waits for the flush");
        for _ in 1..4096 {
            append(&drive, "AppWorkload.log", &line, t, 1 << 30).unwrap();
        }
        let written = fs::read_to_string(&on_disk).unwrap().lines().count();
        assert_eq!(written, 4096, "written in batches as they pile up");
    }
}
