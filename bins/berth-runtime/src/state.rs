//! Containers under the state root, and runc's JSON view of their state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::oci_spec::runtime::Spec;
use serde::Serialize;

/// The runtime-spec state runc prints for `state` and `list --format json`.
#[derive(Debug, Serialize)]
pub struct RuncState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    /// 0 once the container has stopped, as in runc.
    pub pid: i32,
    pub status: &'static str,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, as Go's `time.Time` marshals.
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
    pub owner: String,
}

impl RuncState {
    pub fn of(container: &Container) -> Self {
        let status = container.status();
        let pid = match status {
            ContainerStatus::Stopped => 0,
            _ => container.pid().map_or(0, |pid| pid.as_raw()),
        };
        let bundle = container.bundle().clone();
        RuncState {
            oci_version: container.state.oci_version.clone(),
            id: container.id().to_string(),
            pid,
            status: status_name(status),
            rootfs: rootfs_of(&bundle).unwrap_or_default(),
            bundle,
            created: container
                .created()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default(),
            annotations: container
                .state
                .annotations
                .clone()
                .filter(|a| !a.is_empty()),
            owner: container
                .creator()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

fn status_name(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

/// The bundle's `root.path`, made absolute against the bundle.
fn rootfs_of(bundle: &Path) -> Option<PathBuf> {
    let spec = Spec::load(bundle.join("config.json")).ok()?;
    Some(bundle.join(spec.root().as_ref()?.path()))
}

/// The state root, created if missing (libcontainer canonicalizes it).
pub fn ensure_root(root: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(root)
        .with_context(|| format!("create state root {}", root.display()))?;
    Ok(root.to_path_buf())
}

/// Loads a container's state, with its status refreshed from `/proc`.
pub fn load(root: &Path, id: &str) -> anyhow::Result<Container> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        bail!("invalid container id {id:?}");
    }
    let dir = root.join(id);
    if !dir.join("state.json").exists() {
        bail!("container {id} does not exist");
    }
    Container::load(dir).with_context(|| format!("load container {id}"))
}

/// Every container under `root`, in ID order; unreadable entries are skipped.
pub fn list(root: &Path) -> anyhow::Result<Vec<Container>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("read {}", root.display())),
    };
    let mut containers = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("read {}", root.display()))?;
        if !entry.path().join("state.json").exists() {
            continue;
        }
        match Container::load(entry.path()) {
            Ok(container) => containers.push(container),
            Err(err) => tracing::warn!(path = %entry.path().display(), "skip container: {err}"),
        }
    }
    containers.sort_by(|a, b| a.id().cmp(b.id()));
    Ok(containers)
}
