//! The append-only audit log: one JSON object per line in `<root>/audit.log`, each an
//! [`AuditEvent`] with the time it was recorded, written with `O_APPEND` and synced.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::AuditEvent;

pub const AUDIT_FILE: &str = "audit.log";

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub time: String,
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl AuditRecord {
    /// The record as its line in the log (without the newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("audit records serialise")
    }
}

/// The open audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating, mode 0600) `<root>/audit.log` for appending.
    pub fn open(root: &Path) -> std::io::Result<AuditLog> {
        let path = root.join(AUDIT_FILE);
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        Ok(AuditLog {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it to disk.
    pub fn append(&self, event: AuditEvent) -> std::io::Result<()> {
        let record = AuditRecord {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            event,
        };
        let mut line = record.to_json().into_bytes();
        line.push(b'\n');
        let mut file = self.file.lock().expect("audit log lock");
        // One write per record: with O_APPEND, lines from several processes don't interleave.
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// The last `n` records of `<root>/audit.log`, oldest first. Lines that don't parse (a
/// torn last line after a crash) are skipped.
pub fn tail(root: &Path, n: usize) -> std::io::Result<Vec<AuditRecord>> {
    let file = match File::open(root.join(AUDIT_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut last = VecDeque::with_capacity(n.min(4096));
    for line in BufReader::new(file).lines() {
        let Ok(record) = serde_json::from_str::<AuditRecord>(&line?) else {
            continue;
        };
        if last.len() == n {
            last.pop_front();
        }
        if n > 0 {
            last.push_back(record);
        }
    }
    Ok(last.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_tails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(tail(dir.path(), 5).unwrap().is_empty());
        let log = AuditLog::open(dir.path()).unwrap();
        for i in 0..3 {
            log.append(AuditEvent::TokenRefused {
                subject: None,
                reason: format!("r{i}"),
            })
            .unwrap();
        }
        // A second writer (as another process would be) appends after the first.
        AuditLog::open(dir.path())
            .unwrap()
            .append(AuditEvent::TokenGranted {
                subject: Some("a".into()),
                scopes: vec![],
            })
            .unwrap();
        let got = tail(dir.path(), 2).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].event,
            AuditEvent::TokenRefused {
                subject: None,
                reason: "r2".into()
            }
        );
        assert!(matches!(got[1].event, AuditEvent::TokenGranted { .. }));
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(
            text.lines()
                .all(|l| l.contains("\"time\"") && l.contains("\"event\""))
        );
    }
}
