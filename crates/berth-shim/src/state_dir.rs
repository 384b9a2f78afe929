//! The files of one shim's state directory (`<exec-root>/c/<id>/`). Paths are kept
//! short: the socket's path must fit in `sun_path` (108 bytes).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::protocol::ExitStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The OCI bundle's `config.json` (the bundle is this directory).
    pub fn spec(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The socket the shim serves its protocol on.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// Where the runtime hands over a terminal's master end.
    pub fn console_socket(&self) -> PathBuf {
        self.dir.join("tty")
    }

    /// The shim's own pid.
    pub fn shim_pid(&self) -> PathBuf {
        self.dir.join("shim.pid")
    }

    /// The shim's diagnostic log.
    pub fn shim_log(&self) -> PathBuf {
        self.dir.join("shim.log")
    }

    /// The container's exit status, written once it has exited and been cleaned up.
    pub fn exit_file(&self) -> PathBuf {
        self.dir.join("exit.json")
    }

    pub fn read_exit(&self) -> Option<ExitStatus> {
        let bytes = std::fs::read(self.exit_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes `exit.json` atomically (temp file, fsync, rename).
    pub fn write_exit(&self, status: &ExitStatus) -> std::io::Result<()> {
        let tmp = self.dir.join("exit.json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(status).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, self.exit_file())
    }

    /// The pid in `shim.pid`, if the file exists and parses.
    pub fn read_shim_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.shim_pid())
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_round_trips_through_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        assert_eq!(dir.read_exit(), None);
        let status = ExitStatus::now(137, true);
        dir.write_exit(&status).unwrap();
        assert_eq!(dir.read_exit(), Some(status));
        assert!(!tmp.path().join("exit.json.tmp").exists());
    }
}
