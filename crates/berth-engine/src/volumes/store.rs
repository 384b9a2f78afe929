//! Volumes on disk: `<root>/<name>/_data` and `<root>/<name>/volume.json`, the metadata
//! written to a temporary file, synced and renamed into place so a crash leaves the old
//! record or the new one, never half of one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

const DATA: &str = "_data";
const META: &str = "volume.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Record {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub(super) fn data_dir(root: &Path, name: &str) -> PathBuf {
    root.join(name).join(DATA)
}

fn internal(what: String, e: std::io::Error) -> EngineError {
    EngineError::internal(format!("{what}: {e}"))
}

/// Creates the root if needed and reads every volume in it. A directory with `_data` but no
/// record (a dockerd-style volume, or a crash between mkdir and the record) is kept as a plain
/// local volume created when its directory was; anything else is skipped.
pub(super) fn load_all(root: &Path) -> Result<Vec<Record>> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o701)
        .create(root)
        .map_err(|e| internal(format!("creating {}", root.display()), e))?;
    let mut out = Vec::new();
    let rd = fs::read_dir(root).map_err(|e| internal(format!("reading {}", root.display()), e))?;
    for entry in rd {
        let entry = entry.map_err(|e| internal(format!("reading {}", root.display()), e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let dir = entry.path();
        if name.starts_with(".removing-") {
            let _ = fs::remove_dir_all(&dir);
            continue;
        }
        if name.starts_with('.') || !dir.is_dir() {
            continue;
        }
        match fs::read(dir.join(META)) {
            Ok(bytes) => match serde_json::from_slice::<Record>(&bytes) {
                Ok(rec) if rec.name == name => out.push(rec),
                Ok(_) | Err(_) => {
                    tracing::warn!(volume = %name, "ignoring a volume with an unreadable record");
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.join(DATA).is_dir() => {
                let created = fs::metadata(&dir)
                    .ok()
                    .and_then(|m| chrono::DateTime::from_timestamp(m.ctime(), 0))
                    .unwrap_or_else(chrono::Utc::now);
                out.push(Record {
                    name,
                    driver: super::LOCAL_DRIVER.to_string(),
                    labels: BTreeMap::new(),
                    options: None,
                    created_at: created,
                });
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync of the directory).
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("record")
    ));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

/// Makes the directories and the record of a new volume; nothing is left on failure.
pub(super) fn create(root: &Path, rec: &Record) -> Result<()> {
    let vdir = root.join(&rec.name);
    let result = (|| {
        fs::DirBuilder::new().mode(0o701).create(&vdir)?;
        fs::DirBuilder::new().mode(0o755).create(vdir.join(DATA))?;
        let bytes = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        write_atomic(&vdir.join(META), &bytes)
    })();
    if let Err(e) = result {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = fs::remove_dir_all(&vdir);
        }
        return Err(internal(
            format!("error while creating volume path '{}'", vdir.display()),
            e,
        ));
    }
    Ok(())
}

/// Deletes a volume's directory tree. The path must be a direct child of the root.
pub(super) fn remove(root: &Path, name: &str) -> Result<()> {
    let vdir = root.join(name);
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(EngineError::internal(format!(
            "unable to remove a directory outside of the local volume root {}: {}",
            root.display(),
            vdir.display()
        )));
    }
    // Renamed out of the way first (atomic), so a crash midway leaves a hidden directory that
    // the next start deletes, never a volume with half its data.
    let trash = root.join(format!(".removing-{name}-{}", super::random_name()));
    match fs::rename(&vdir, &trash) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(internal(
                format!("error removing volume path '{}'", vdir.display()),
                e,
            ));
        }
    }
    fs::remove_dir_all(&trash).map_err(|e| {
        internal(
            format!("error removing volume path '{}'", vdir.display()),
            e,
        )
    })
}
