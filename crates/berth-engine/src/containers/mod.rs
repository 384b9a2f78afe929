//! The container service: records, lifecycle through per-container shims, attach and
//! exec streams, logs, and the views `ps` and `inspect` show.
//!
//! State lives in `<data-root>/containers/<id>/` (record, log, snapshot) and
//! `<exec-root>/c/<id>/` (the shim's bundle, socket and exit status). The daemon never
//! forks a container itself: `berth-shim` does, so containers outlive the daemon, and
//! [`ContainerService::restore`] re-adopts them.

mod archive;
mod attach;
pub mod cgroups;
mod cp_view;
mod create;
mod health;
mod lifecycle;
mod logs;
pub mod microvm;
pub mod mounts;
mod names;
mod ops;
pub mod record;
pub mod rootfs;
pub mod spec;
mod start;
pub mod stats;
mod update;
mod view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use berth_shim::{ShimClient, StateDir};
use tokio::sync::{oneshot, watch};

pub use archive::{
    ByteStream, Change, CommitOptions, ExtractOptions, PathStat, TarStream, compute_changes,
};
pub use attach::{AttachOptions, AttachStream, Exec, ExecConfig, ExecStart, pump};
pub use create::CreateRequest;
pub use lifecycle::{WaitCondition, parse_signal};
pub use logs::{LogEntry, LogOptions, parse_timestamp};
pub use ops::PruneReport;
pub use view::ListOptions;

use crate::error::{EngineError, Result};
use crate::events::EventBus;
use crate::images::ImageService;
use crate::volumes::VolumeService;
use record::{ContainerRecord, Status};

/// Where containers live and what runs them.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    /// `<data-root>/containers`.
    pub data: PathBuf,
    /// `<exec-root>/c`: shim state directories.
    pub exec: PathBuf,
    /// libcontainer's state root.
    pub runtime_root: PathBuf,
    /// The `berth-shim` binary.
    pub shim: PathBuf,
    /// The cgroupfs mount (OOM counters, stats).
    pub cgroupfs: PathBuf,
    /// The host's resolv.conf, copied into containers.
    pub resolv_conf: PathBuf,
    /// A static init binary for `--init` (bind-mounted as `/sbin/docker-init`).
    pub init: Option<PathBuf>,
}

/// What changes as a container runs, for `wait` and followers.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub running: bool,
    /// How many times it has exited since the daemon started.
    pub exits: u64,
    pub exit_code: i64,
    pub removed: bool,
}

/// A waiting attach: given the shim once the container's process exists, it connects
/// and then acknowledges, so that no output is produced before it listens.
pub(crate) type AttachWaiter = oneshot::Sender<(ShimClient, oneshot::Sender<()>)>;

pub struct Container {
    pub id: String,
    record: Mutex<ContainerRecord>,
    lifecycle: watch::Sender<Lifecycle>,
    /// Serializes start/stop/restart/remove of this container.
    op: tokio::sync::Mutex<()>,
    attach_waiters: Mutex<Vec<AttachWaiter>>,
    dir: PathBuf,
    state_dir: StateDir,
}

/// The container's record in its directory: dockerd's name for it.
pub(crate) const RECORD_FILE: &str = "config.v2.json";

impl Container {
    fn new(record: ContainerRecord, paths: &ContainerPaths) -> Container {
        let running = record.state.status.is_live();
        let id = record.id.clone();
        Container {
            dir: paths.data.join(&id),
            state_dir: StateDir::new(paths.exec.join(&id)),
            id,
            lifecycle: watch::channel(Lifecycle {
                running,
                exit_code: record.state.exit_code,
                ..Default::default()
            })
            .0,
            record: Mutex::new(record),
            op: tokio::sync::Mutex::new(()),
            attach_waiters: Mutex::new(Vec::new()),
        }
    }

    /// A copy of the record.
    pub fn record(&self) -> ContainerRecord {
        self.record.lock().expect("container record lock").clone()
    }

    /// Changes the record and saves it.
    fn update<T>(&self, change: impl FnOnce(&mut ContainerRecord) -> T) -> Result<T> {
        let mut record = self.record.lock().expect("container record lock");
        let out = change(&mut record);
        record
            .save(&self.dir.join(RECORD_FILE))
            .map_err(|e| EngineError::internal(format!("save container {}: {e}", self.id)))?;
        Ok(out)
    }

    /// Changes the record in memory only: for states the disk never needs, such as
    /// `removing` just before the record's directory goes (dockerd keeps its
    /// removal-in-progress mark in memory too).
    fn update_in_memory(&self, change: impl FnOnce(&mut ContainerRecord)) {
        change(&mut self.record.lock().expect("container record lock"));
    }

    pub fn shim(&self) -> ShimClient {
        ShimClient::new(self.state_dir.socket())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn subscribe(&self) -> watch::Receiver<Lifecycle> {
        self.lifecycle.subscribe()
    }
}

/// The runtimes containers can ask for.
pub struct Runtimes {
    /// The daemon's default: `runc` (berth-runtime) or `microvm`.
    pub default: &'static str,
    /// The micro-VM runtime's kernel, initramfs and settings.
    pub vm: microvm::VmAssets,
}

pub struct ContainerService {
    paths: ContainerPaths,
    runtimes: Runtimes,
    images: Arc<ImageService>,
    volumes: Arc<VolumeService>,
    events: Arc<EventBus>,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    execs: Mutex<HashMap<String, Arc<attach::Exec>>>,
    facts: berth_runtime::HostFacts,
}

impl ContainerService {
    pub fn new(
        paths: ContainerPaths,
        runtimes: Runtimes,
        images: Arc<ImageService>,
        volumes: Arc<VolumeService>,
        events: Arc<EventBus>,
    ) -> Result<Arc<ContainerService>> {
        for dir in [&paths.data, &paths.exec, &paths.runtime_root] {
            std::fs::create_dir_all(dir)
                .map_err(|e| EngineError::internal(format!("create {}: {e}", dir.display())))?;
        }
        let mut containers = HashMap::new();
        if let Ok(entries) = std::fs::read_dir(&paths.data) {
            for entry in entries.flatten() {
                let file = entry.path().join(RECORD_FILE);
                match ContainerRecord::load(&file) {
                    Ok(record) => {
                        let container = Container::new(record, &paths);
                        containers.insert(container.id.clone(), Arc::new(container));
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        // A create that died before its record was written, or a
                        // removed container whose directory was still being deleted.
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                    Err(err) => tracing::warn!(path = %file.display(), "skip container: {err}"),
                }
            }
        }
        for container in containers.values() {
            for name in container
                .record()
                .mounts
                .iter()
                .filter_map(|m| m.name.clone())
            {
                let _ = volumes.acquire(&name, &container.id);
            }
        }
        Ok(Arc::new(ContainerService {
            paths,
            runtimes,
            images,
            volumes,
            events,
            containers: RwLock::new(containers),
            execs: Mutex::new(HashMap::new()),
            facts: berth_runtime::detect_host_facts(),
        }))
    }

    pub fn paths(&self) -> &ContainerPaths {
        &self.paths
    }

    pub fn runtimes(&self) -> &Runtimes {
        &self.runtimes
    }

    /// Finds a container by full ID, name (with or without `/`), or unique ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Container>> {
        let not_found = || EngineError::not_found(format!("No such container: {name_or_id}"));
        if name_or_id.is_empty() {
            return Err(not_found());
        }
        let containers = self.containers.read().expect("containers lock");
        if let Some(c) = containers.get(name_or_id) {
            return Ok(c.clone());
        }
        let name = format!("/{}", name_or_id.trim_start_matches('/'));
        if let Some(c) = containers
            .values()
            .find(|c| c.record.lock().expect("record lock").name == name)
        {
            return Ok(c.clone());
        }
        let matches: Vec<_> = containers
            .values()
            .filter(|c| c.id.starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(not_found()),
            _ => Err(EngineError::invalid(format!(
                "multiple IDs found with provided prefix: {name_or_id}"
            ))),
        }
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.containers
            .read()
            .expect("containers lock")
            .values()
            .cloned()
            .collect()
    }

    fn event(&self, action: &str, container: &ContainerRecord, extra: &[(&str, String)]) {
        let mut attributes = std::collections::BTreeMap::new();
        if let Some(image) = &container.config.image {
            attributes.insert("image".to_string(), image.clone());
        }
        attributes.insert("name".to_string(), container.plain_name().to_string());
        for (k, v) in container.config.labels.iter().flatten() {
            attributes.insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            attributes.insert((*k).to_string(), v.clone());
        }
        self.events
            .publish("container", action, &container.id, attributes);
    }

    /// Containers created from image `id`, as (container ID, has a process).
    pub fn users_of_image(&self, id: &str) -> Vec<(String, bool)> {
        self.all()
            .into_iter()
            .map(|c| c.record())
            .filter(|r| r.image == id)
            .map(|r| {
                (
                    r.id.clone(),
                    r.state.status.is_live() || r.state.status == Status::Restarting,
                )
            })
            .collect()
    }

    /// Counts by state, for `info`: (running, paused, stopped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for c in self.all() {
            match c.record().state.status {
                Status::Running | Status::Restarting => counts.0 += 1,
                Status::Paused => counts.1 += 1,
                _ => counts.2 += 1,
            }
        }
        counts
    }
}
