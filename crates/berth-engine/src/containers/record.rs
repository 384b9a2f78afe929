//! What berthd remembers about a container: `config.v2.json` in its directory, written
//! atomically after every change, as dockerd keeps it.

use std::io::Write;
use std::path::Path;

use bollard_stubs::models::{ContainerConfig, HostConfig, MountPoint};
use serde::{Deserialize, Serialize};

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Running or paused: a process exists.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds; Go's zero time when never.
    pub started_at: String,
    pub finished_at: String,
    #[serde(default)]
    pub health: Option<HealthRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthProbe>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthProbe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// With the leading `/`, as Docker keeps names.
    pub name: String,
    pub created: String,
    /// The image's ID (`sha256:…`).
    pub image: String,
    /// The container's config, merged with the image's as Docker does at create.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: StateRecord,
    pub restart_count: i64,
    /// Stopped by `stop`/`kill`: restart policies leave it alone until the next start.
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub has_been_started: bool,
    /// Volumes and binds as inspect shows them.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// Anonymous volumes created for this container (removed by `rm -v`).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
}

impl ContainerRecord {
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// The name without its leading `/`.
    pub fn plain_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }

    /// The container runs as a micro-VM (`--runtime microvm`).
    pub fn is_microvm(&self) -> bool {
        self.host_config.runtime.as_deref() == Some(super::microvm::MICROVM)
    }

    /// The command line: entrypoint then command, as Docker shows `Path` and `Args`.
    pub fn command_line(&self) -> Vec<String> {
        let entrypoint = self.config.entrypoint.clone().unwrap_or_default();
        let entrypoint = if entrypoint.len() == 1 && entrypoint[0].is_empty() {
            Vec::new()
        } else {
            entrypoint
        };
        entrypoint
            .into_iter()
            .chain(self.config.cmd.clone().unwrap_or_default())
            .collect()
    }

    pub fn load(path: &Path) -> std::io::Result<ContainerRecord> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// The image the container was created from: its ID and its record in `store`.
    pub fn image_in(
        &self,
        store: &berth_image::ImageStore,
    ) -> crate::error::Result<(berth_image::Digest, berth_image::metadata::ImageRecord)> {
        use crate::error::EngineError;
        let id: berth_image::Digest = self
            .image
            .parse()
            .map_err(|_| EngineError::internal("bad image id in record"))?;
        let image = store
            .image(&id)?
            .ok_or_else(|| EngineError::not_found(format!("No such image: {}", self.image)))?;
        Ok((id, image))
    }

    /// Temp file, fsync, rename: a crash leaves the old record or the new one.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_build_the_command_line() {
        let tmp = tempfile::tempdir().unwrap();
        let mut record = ContainerRecord {
            id: "a".repeat(64),
            name: "/web".into(),
            ..Default::default()
        };
        record.config.entrypoint = Some(vec!["/init".into()]);
        record.config.cmd = Some(vec!["serve".into(), "-v".into()]);
        let path = tmp.path().join("config.v2.json");
        record.save(&path).unwrap();
        assert_eq!(ContainerRecord::load(&path).unwrap(), record);
        assert_eq!(record.command_line(), ["/init", "serve", "-v"]);
        record.config.entrypoint = Some(vec![String::new()]);
        assert_eq!(record.command_line(), ["serve", "-v"]);
        assert_eq!(record.plain_name(), "web");
        assert_eq!(record.short_id(), "aaaaaaaaaaaa");
    }
}
