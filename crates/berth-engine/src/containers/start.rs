//! Starting a container: mount its snapshot, write its `/etc` files, check its command,
//! generate its spec, spawn its shim, connect waiting attaches, then let it run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_shim::protocol::Ready;
use tokio::io::AsyncBufReadExt;

use super::mounts::{self, Planned};
use super::record::Status;
use super::rootfs::{self, Snapshot};
use super::{Container, ContainerService, spec};
use crate::error::{EngineError, Result};

/// How long a shim may take to create a container.
const SHIM_READY_TIMEOUT: Duration = Duration::from_secs(60);

impl ContainerService {
    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.op.lock().await;
        match c.record().state.status {
            Status::Running | Status::Paused | Status::Restarting => {
                return Err(EngineError::not_modified());
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::conflict(format!(
                    "cannot start a container that has been removed or is being removed: {}",
                    c.id
                )));
            }
            Status::Created | Status::Exited => {}
        }
        // Only a change is saved: a new container's first start writes (and syncs) its
        // record once, when it runs.
        if c.record().manually_stopped {
            c.update(|r| r.manually_stopped = false)?;
        }
        self.start_locked(&c).await
    }

    /// Starts `c`; the caller holds its operation lock.
    pub(crate) async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        match self.start_inner(c).await {
            Ok(()) => Ok(()),
            Err((err, exit_code)) => {
                self.release_mounts(c);
                // Attaches waiting for this start will not get a process: end them.
                c.attach_waiters.lock().expect("waiters").clear();
                let _ = c.update(|r| {
                    r.state.status = if r.has_been_started {
                        Status::Exited
                    } else {
                        Status::Created
                    };
                    r.state.exit_code = exit_code;
                    r.state.error = err.message.clone();
                    r.state.pid = 0;
                });
                // `wait --condition next-exit` (docker run) returns with the code.
                c.lifecycle.send_modify(|l| {
                    l.running = false;
                    l.exits += 1;
                    l.exit_code = exit_code;
                });
                if c.record().host_config.auto_remove.unwrap_or(false) {
                    let service = self.clone();
                    let c = c.clone();
                    tokio::spawn(async move {
                        let _ = service.remove_container(&c, true).await;
                    });
                }
                Err(err)
            }
        }
    }

    /// Undoes start's mounts: the snapshot and the volumes' use counts.
    pub(crate) fn release_mounts(&self, c: &Container) {
        let record = c.record();
        if let Err(err) = rootfs::unmount(&c.dir.join("rootfs")) {
            tracing::warn!(id = %c.id, "unmount rootfs: {err}");
        }
        // A micro-VM's volumes were snapshots, never mounted.
        if !record.is_microvm() {
            for name in record.mounts.iter().filter_map(|m| m.name.as_ref()) {
                let _ = self.volumes.unmount(name, &c.id);
            }
        }
    }

    /// A process container: its overlay mounted, its `/etc` files, its command checked,
    /// its OCI spec in the state directory.
    fn prepare_process(
        &self,
        c: &Arc<Container>,
        lap: impl Fn(&str),
    ) -> Result<(), (EngineError, i64)> {
        let fail = |e: EngineError| (e, 128);
        let record = c.record();
        let store = self.images.store().clone();
        let (image_id, image) = record.image_in(&store).map_err(fail)?;
        let image_config = store.config(&image_id).map_err(|e| fail(e.into()))?;
        let lower: Vec<PathBuf> = image.chain_ids.iter().map(|c| store.layer_dir(c)).collect();
        let snapshot = Snapshot::in_dir(&c.dir, lower);
        let empty = self.paths.data.join(".empty");
        snapshot
            .mount(&empty, record.host_config.auto_remove.unwrap_or(false))
            .map_err(|e| fail(EngineError::internal(e.to_string())))?;

        lap("snapshot mounted");
        let hostname = spec::hostname(&record);
        spec::write_etc_files(&c.dir, &record, &hostname, &self.paths.resolv_conf)
            .map_err(|e| fail(EngineError::internal(format!("write /etc files: {e}"))))?;
        let root = snapshot.merged.clone();
        let passwd = rootfs::read_in_root(&root, "/etc/passwd", 16 << 20)
            .ok()
            .flatten();
        let group = rootfs::read_in_root(&root, "/etc/group", 16 << 20)
            .ok()
            .flatten();

        let host = spec::runtime_host(&record.config, &record.host_config, &hostname);
        if !host.init {
            let args = record.command_line();
            let path_env = record
                .config
                .env
                .iter()
                .flatten()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or(berth_runtime::DEFAULT_PATH_ENV.trim_start_matches("PATH="));
            let cwd = record
                .config
                .working_dir
                .clone()
                .unwrap_or_else(|| "/".into());
            if let Some(argv0) = args.first()
                && let Err(problem) = rootfs::check_executable(&root, argv0, path_env, &cwd)
            {
                let code = problem.exit_code();
                return Err((EngineError::invalid(problem.message()), code));
            }
        }

        let planned = super::create::load_planned_mounts(&c.dir).map_err(fail)?;
        let mut extra_mounts = Vec::new();
        for p in &planned {
            match p {
                Planned::Bind {
                    source,
                    destination,
                    read_only,
                    propagation,
                    create_source,
                } => {
                    if *create_source && !Path::new(source).exists() {
                        std::fs::create_dir_all(source).map_err(|e| {
                            fail(EngineError::internal(format!("create {source}: {e}")))
                        })?;
                    }
                    extra_mounts.push(mounts::bind_mount(
                        Path::new(source),
                        destination,
                        *read_only,
                        propagation,
                    ));
                }
                Planned::Volume {
                    name: Some(name),
                    destination,
                    read_only,
                    no_copy,
                } => {
                    let source = self
                        .volumes
                        .mount(name, &c.id, destination, !read_only)
                        .map_err(fail)?;
                    if !no_copy {
                        let inside = root.join(destination.trim_start_matches('/'));
                        if let Err(err) = self.volumes.populate_from(name, &inside) {
                            tracing::warn!(volume = %name, "copy image content: {err}");
                        }
                    }
                    extra_mounts.push(mounts::bind_mount(&source, destination, *read_only, ""));
                }
                Planned::Volume { name: None, .. } => {}
                Planned::Tmpfs {
                    destination,
                    options,
                } => extra_mounts.push(mounts::tmpfs_mount(destination, options)),
            }
        }

        let mut inputs = berth_runtime::SpecInputs::new(&image_config, &host, &root);
        inputs.etc_files = berth_runtime::EtcFiles {
            hostname: Some(c.dir.join("hostname")),
            hosts: Some(c.dir.join("hosts")),
            resolv_conf: Some(c.dir.join("resolv.conf")),
        };
        inputs.passwd = passwd.as_deref();
        inputs.group = group.as_deref();
        inputs.cgroups_path = Some(PathBuf::from(format!("/berth/{}", c.id)));
        inputs.facts = self.facts.clone();
        inputs.init_path = self.paths.init.clone();
        let devices;
        if host.privileged || !host.devices.is_empty() {
            devices = berth_runtime::scan_devices(Path::new("/dev"));
            inputs.host_devices = &devices;
        }
        let mut oci = berth_runtime::generate(&inputs)
            .map_err(|e| (EngineError::invalid(e.to_string()), 128))?;
        if !extra_mounts.is_empty() {
            let mut all = oci.mounts().clone().unwrap_or_default();
            all.retain(|m| {
                !extra_mounts
                    .iter()
                    .any(|e| e.destination() == m.destination())
            });
            all.extend(extra_mounts);
            oci.set_mounts(Some(all));
        }

        let state = &c.state_dir;
        let _ = std::fs::remove_dir_all(state.path());
        std::fs::create_dir_all(state.path())
            .map_err(|e| fail(EngineError::internal(format!("create state dir: {e}"))))?;
        let mut spec_value =
            serde_json::to_value(&oci).map_err(|e| fail(EngineError::internal(e.to_string())))?;
        limit_capabilities(&mut spec_value["process"]["capabilities"]);
        let spec_json = serde_json::to_vec(&spec_value)
            .map_err(|e| fail(EngineError::internal(e.to_string())))?;
        std::fs::write(state.spec(), spec_json)
            .map_err(|e| fail(EngineError::internal(format!("write config.json: {e}"))))?;
        Ok(())
    }

    async fn start_inner(self: &Arc<Self>, c: &Arc<Container>) -> Result<(), (EngineError, i64)> {
        let fail = |e: EngineError| (e, 128);
        let began = std::time::Instant::now();
        let lap = |what: &str| tracing::debug!(id = %c.id, ms = began.elapsed().as_secs_f64() * 1000.0, "start: {what}");
        let is_vm = c.record().is_microvm();
        if is_vm {
            self.prepare_vm(c).await?;
        } else {
            self.prepare_process(c, lap)?;
        }
        lap("spec written");
        let pid = self.spawn_shim(c, is_vm).await.map_err(fail)?;
        lap("shim reported the container created");
        let client = c.shim();
        let waiters: Vec<_> = std::mem::take(&mut *c.attach_waiters.lock().expect("waiters"));
        let mut acks = Vec::new();
        for waiter in waiters {
            let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
            if waiter.send((client.clone(), ack_tx)).is_ok() {
                acks.push(ack_rx);
            }
        }
        for ack in acks {
            let _ = tokio::time::timeout(Duration::from_secs(5), ack).await;
        }
        if let Err(err) = client.start().await {
            let _ = client.kill(libc_sigkill(), true).await;
            let message = err.to_string();
            // The guest reports a missing or unrunnable command as runc does.
            let code = if message.contains("executable file not found")
                || message.contains("no such file or directory")
            {
                127
            } else if message.contains("permission denied") {
                126
            } else {
                128
            };
            return Err((
                EngineError::internal(format!("start container: {message}")),
                code,
            ));
        }
        lap("started");
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        c.update(|r| {
            r.state.status = Status::Running;
            r.state.pid = i64::from(pid);
            r.state.started_at = now;
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
            r.has_been_started = true;
            if r.config.healthcheck.is_some() {
                r.state.health = Some(super::record::HealthRecord {
                    status: "starting".into(),
                    ..Default::default()
                });
            }
        })
        .map_err(fail)?;
        c.lifecycle.send_modify(|l| l.running = true);
        self.event("start", &c.record(), &[]);
        let service = self.clone();
        let container = c.clone();
        tokio::spawn(async move { service.monitor(container).await });
        self.start_health_checks(c);
        Ok(())
    }

    /// Runs `berth-shim` for `c` and waits for its report; returns the init's pid.
    async fn spawn_shim(&self, c: &Container, vm: bool) -> Result<i32> {
        let record = c.record();
        let log = record.host_config.log_config.clone().unwrap_or_default();
        let opts = log.config.unwrap_or_default();
        let mut cmd = tokio::process::Command::new(&self.paths.shim);
        cmd.arg("--id")
            .arg(&c.id)
            .arg("--state-dir")
            .arg(c.state_dir.path())
            .arg("--runtime-root")
            .arg(&self.paths.runtime_root)
            .arg("--log-path")
            .arg(&record.log_path)
            .arg("--cgroupfs")
            .arg(&self.paths.cgroupfs);
        if let Some(size) = opts.get("max-size") {
            let bytes = parse_size(size).ok_or_else(|| {
                EngineError::invalid(format!("invalid value for log opt max-size: {size}"))
            })?;
            cmd.arg("--log-max-size").arg(bytes.to_string());
        }
        if let Some(files) = opts.get("max-file") {
            cmd.arg("--log-max-file").arg(files);
        }
        if record.config.open_stdin.unwrap_or(false) {
            cmd.arg("--open-stdin");
        }
        if vm {
            cmd.arg("--vm");
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().map_err(|e| {
            EngineError::internal(format!("run {}: {e}", self.paths.shim.display()))
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        // The shim lives on after reporting; reap it whenever it exits.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(SHIM_READY_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| EngineError::internal("the shim did not report within 60s"))?
            .map_err(|e| EngineError::internal(format!("read the shim's report: {e}")))?
            .ok_or_else(|| {
                let log = std::fs::read_to_string(c.state_dir.shim_log()).unwrap_or_default();
                EngineError::internal(format!("the shim exited without a report: {}", log.trim()))
            })?;
        match serde_json::from_str::<Ready>(&line) {
            Ok(Ready::Created { pid }) => Ok(pid),
            Ok(Ready::Failed { message }) => Err(EngineError::invalid(format!(
                "failed to create task for container: {message}"
            ))),
            Err(e) => Err(EngineError::internal(format!(
                "bad shim report {line:?}: {e}"
            ))),
        }
    }
}

/// The capabilities this daemon holds itself (its bounding set): a container cannot
/// get more, so `--privileged` and `--cap-add` are limited to them (root here may lack
/// some, such as CAP_SYS_RESOURCE in some sandboxes).
fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// Removes from every set of an OCI `capabilities` object the ones not in our bounding set.
pub(crate) fn limit_capabilities(caps: &mut serde_json::Value) {
    let bounding = bounding_set();
    let allowed = |name: &str| {
        berth_runtime::ALL_CAPABILITIES
            .iter()
            .position(|c| *c == name)
            .is_none_or(|bit| bit >= 64 || bounding & (1 << bit) != 0)
    };
    if let Some(sets) = caps.as_object_mut() {
        for set in sets.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.retain(|c| c.as_str().is_none_or(allowed));
            }
        }
    }
}

pub(crate) fn libc_sigkill() -> i32 {
    9
}

/// `10m`, `1g`, `512k`, `100` (bytes), as the json-file driver reads `max-size`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (digits, multiplier) = match text.chars().last()? {
        'k' => (&text[..text.len() - 1], 1u64 << 10),
        'm' => (&text[..text.len() - 1], 1 << 20),
        'g' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    let value: f64 = digits.parse().ok()?;
    (value > 0.0).then_some((value * multiplier as f64) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_sizes_parse() {
        assert_eq!(super::parse_size("10m"), Some(10 << 20));
        assert_eq!(super::parse_size("1k"), Some(1024));
        assert_eq!(super::parse_size("100"), Some(100));
        assert_eq!(super::parse_size("x"), None);
    }
}
