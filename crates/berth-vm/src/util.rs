//! Small helpers shared by the modules: running programs, atomic writes, hashing.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

/// Runs a program to completion; a non-zero exit is an error carrying its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|source| Error::Spawn {
        program: program.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            program,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

/// A temporary name next to `dest`, unique within this host (pid + counter).
pub(crate) fn temp_path(dest: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = dest
        .file_name()
        .unwrap_or(OsStr::new("tmp"))
        .to_string_lossy();
    dest.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `data` to `dest` through a temporary file, fsync and rename.
pub(crate) fn write_atomic(dest: &Path, data: &[u8]) -> Result<()> {
    let tmp = temp_path(dest);
    let res = (|| {
        let mut f = fs::File::create(&tmp).at("create", &tmp)?;
        f.write_all(data).at("write", &tmp)?;
        f.sync_all().at("fsync", &tmp)?;
        fs::rename(&tmp, dest).at("rename", dest)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Moves a finished temporary file into place after an fsync.
pub(crate) fn commit(tmp: &Path, dest: &Path) -> Result<()> {
    fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .at("fsync", tmp)?;
    fs::rename(tmp, dest).at("rename", dest)
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Holds an exclusive lock on `<dir>/<name>.lock` until dropped (serialises cache builds).
pub(crate) struct LockGuard(#[allow(dead_code)] fs::File);

pub(crate) fn lock(dir: &Path, name: &str) -> Result<LockGuard> {
    let path = dir.join(format!("{name}.lock"));
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at("open", &path)?;
    f.lock().at("lock", &path)?;
    Ok(LockGuard(f))
}

/// A cache key must be a plain file name: letters, digits, `-`, `_`, `.`, and `:` (turned
/// into `-`, so `sha256:<hex>` chain IDs work as they are).
pub(crate) fn key_file_stem(key: &str) -> Result<String> {
    let stem = key.replace(':', "-");
    let ok = !stem.is_empty()
        && stem.len() <= 200
        && !stem.starts_with('.')
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(stem)
    } else {
        Err(Error::InvalidKey(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(key_file_stem("sha256:ab12").unwrap(), "sha256-ab12");
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(key_file_stem(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_reports_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("boom") && msg.contains("sh failed"), "{msg}");
        assert!(matches!(
            run(&mut Command::new("/nonexistent/prog")),
            Err(Error::Spawn { .. })
        ));
    }

    #[test]
    fn atomic_write() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
