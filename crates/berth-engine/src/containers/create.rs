//! `POST /containers/create`: the request merged with the image's config as Docker
//! merges it, validated, its volumes prepared, and recorded.

use std::collections::HashMap;
use std::sync::Arc;

use berth_image::config::ContainerConfig as ImageDefaults;
use bollard_stubs::models::{
    ContainerConfig, ContainerCreateBody, HealthConfig, HostConfig, RestartPolicyNameEnum,
};

use super::microvm;
use super::mounts::{self, Planned};
use super::names;
use super::record::{ContainerRecord, StateRecord, ZERO_TIME};
use super::{Container, ContainerService};
use crate::error::{EngineError, Result};
use crate::volumes::CreateOptions;

/// A parsed create request.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub body: ContainerCreateBody,
}

impl ContainerService {
    /// Creates a container; returns its ID and warnings.
    pub fn create(self: &Arc<Self>, request: CreateRequest) -> Result<(String, Vec<String>)> {
        let body = request.body;
        let image_name = body.image.clone().unwrap_or_default();
        if image_name.is_empty() {
            return Err(EngineError::invalid(
                "Config cannot be empty in order to create a container",
            ));
        }
        let store = self.images.store();
        let image = store.resolve(&image_name).map_err(|e| match e {
            berth_image::ImageError::NotFound(_) => {
                EngineError::not_found(format!("No such image: {}", with_tag(&image_name)))
            }
            other => other.into(),
        })?;
        let image_config = store.config(&image.id)?;
        let defaults = image_config.config.clone().unwrap_or_default();
        let mut host = body.host_config.clone().unwrap_or_default();
        let mut config = container_config(&body);
        merge(&mut config, &defaults);
        if config.cmd.as_ref().is_none_or(Vec::is_empty)
            && config.entrypoint.as_ref().is_none_or(Vec::is_empty)
        {
            return Err(EngineError::invalid("no command specified"));
        }
        validate_host(&host)?;
        let runtime = microvm::runtime_of(&host, self.runtimes.default)?;
        host.runtime = Some(runtime.to_string());
        let is_vm = runtime == microvm::MICROVM;
        let id = random_id();
        let short = id[..12].to_string();
        if config.hostname.as_deref().is_none_or(str::is_empty) {
            config.hostname = Some(short.clone());
        }
        if host.network_mode.as_deref().is_none_or(str::is_empty) {
            host.network_mode = Some("bridge".into());
        }
        // Let the spec generator refuse bad settings now, as dockerd does at create.
        let mut probe_host = super::spec::runtime_host(&config, &host, &short);
        probe_host.user.clear();
        probe_host.group_add.clear();
        let mut inputs = berth_runtime::SpecInputs::new(&image_config, &probe_host, "/");
        inputs.facts = self.facts.clone();
        inputs.init_path = Some("/".into());
        let devices;
        if !probe_host.devices.is_empty() {
            devices = berth_runtime::scan_devices(std::path::Path::new("/dev"));
            inputs.host_devices = &devices;
        }
        berth_runtime::generate(&inputs).map_err(|e| EngineError::invalid(e.to_string()))?;

        // A VM keeps the image's declared volumes in its own disk.
        let image_volumes = if is_vm {
            Default::default()
        } else {
            config.volumes.clone().unwrap_or_default()
        };
        let mut planned = mounts::plan(&host, &image_volumes)?;
        self.add_volumes_from(&host, &mut planned)?;
        if is_vm {
            microvm::validate(&host, &planned)?;
        }
        let mut anonymous = Vec::new();
        let mut mount_points = Vec::new();
        let mut planned_final = Vec::new();
        for p in planned {
            match p {
                Planned::Volume {
                    name,
                    destination,
                    read_only,
                    no_copy,
                } => {
                    let is_anonymous = name.is_none();
                    let volume = self.volumes.create(CreateOptions::named(name.as_deref()))?;
                    if is_anonymous {
                        anonymous.push(volume.name.clone());
                    }
                    let source = self.volumes.mount_point(&volume.name)?;
                    let planned = Planned::Volume {
                        name: Some(volume.name),
                        destination,
                        read_only,
                        no_copy,
                    };
                    mount_points.extend(mounts::mount_point(&planned, Some(&source)));
                    planned_final.push(planned);
                }
                other => {
                    mount_points.extend(mounts::mount_point(&other, None));
                    planned_final.push(other);
                }
            }
        }

        let name = self.reserve_name(request.name.as_deref(), &id)?;
        let dir = self.paths.data.join(&id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::internal(format!("create {}: {e}", dir.display())))?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let record = ContainerRecord {
            id: id.clone(),
            name,
            created: now,
            image: image.id.to_string(),
            config,
            host_config: host,
            state: StateRecord {
                started_at: ZERO_TIME.into(),
                finished_at: ZERO_TIME.into(),
                ..Default::default()
            },
            mounts: mount_points,
            anonymous_volumes: anonymous,
            log_path: dir
                .join(format!("{id}-json.log"))
                .to_string_lossy()
                .into_owned(),
            hostname_path: dir.join("hostname").to_string_lossy().into_owned(),
            hosts_path: dir.join("hosts").to_string_lossy().into_owned(),
            resolv_conf_path: dir.join("resolv.conf").to_string_lossy().into_owned(),
            ..Default::default()
        };
        let planned_json = serde_json::to_vec(&PlannedMounts(planned_final))
            .map_err(|e| EngineError::internal(e.to_string()))?;
        std::fs::write(dir.join("mounts.json"), planned_json)
            .map_err(|e| EngineError::internal(format!("write mounts: {e}")))?;
        let container = Arc::new(Container::new(record.clone(), &self.paths));
        container.update(|_| ())?;
        for m in &record.mounts {
            if let Some(name) = &m.name {
                let _ = self.volumes.acquire(name, &id);
            }
        }
        {
            let mut all = self.containers.write().expect("containers lock");
            // The name was reserved under the same lock discipline: re-check.
            if all
                .values()
                .any(|c| c.record.lock().expect("record lock").name == record.name)
            {
                drop(all);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(name_conflict(&record.name, "another container"));
            }
            all.insert(id.clone(), container);
        }
        self.event("create", &record, &[]);
        Ok((id, Vec::new()))
    }

    /// `--volumes-from CONTAINER[:ro|:rw]`: that container's volumes and binds, at the
    /// same destinations, unless this container mounts something there itself.
    fn add_volumes_from(&self, host: &HostConfig, planned: &mut Vec<Planned>) -> Result<()> {
        for spec in host.volumes_from.iter().flatten() {
            let (name, mode) = match spec.rsplit_once(':') {
                Some((name, mode @ ("ro" | "rw"))) => (name, Some(mode)),
                Some(_) => {
                    return Err(EngineError::invalid(format!(
                        "invalid mode for volumes-from: {spec}"
                    )));
                }
                None => (spec.as_str(), None),
            };
            let source = self.get(name)?;
            let source_mounts = load_planned_mounts(&source.dir)?;
            for m in source_mounts {
                if planned.iter().any(|p| p.destination() == m.destination()) {
                    continue;
                }
                let m = match (m, mode) {
                    (
                        Planned::Bind {
                            source,
                            destination,
                            read_only,
                            propagation,
                            ..
                        },
                        mode,
                    ) => Planned::Bind {
                        source,
                        destination,
                        read_only: mode.map_or(read_only, |m| m == "ro"),
                        propagation,
                        create_source: false,
                    },
                    (
                        Planned::Volume {
                            name,
                            destination,
                            read_only,
                            ..
                        },
                        mode,
                    ) => Planned::Volume {
                        name,
                        destination,
                        read_only: mode.map_or(read_only, |m| m == "ro"),
                        no_copy: true,
                    },
                    (tmpfs @ Planned::Tmpfs { .. }, _) => {
                        // tmpfs mounts are not shared.
                        let _ = tmpfs;
                        continue;
                    }
                };
                planned.push(m);
            }
        }
        Ok(())
    }

    fn reserve_name(&self, requested: Option<&str>, id: &str) -> Result<String> {
        let all = self.containers.read().expect("containers lock");
        let taken = |name: &str| {
            all.values()
                .find(|c| c.record.lock().expect("record lock").name == name)
                .map(|c| c.id.clone())
        };
        if let Some(requested) = requested.filter(|n| !n.is_empty()) {
            names::validate(requested).map_err(EngineError::invalid)?;
            let name = format!("/{}", requested.trim_start_matches('/'));
            if let Some(other) = taken(&name) {
                return Err(name_conflict(&name, &other));
            }
            return Ok(name);
        }
        for retry in 0..10 {
            let name = format!("/{}", names::generate(retry));
            if taken(&name).is_none() {
                return Ok(name);
            }
        }
        Ok(format!("/{}", &id[..12]))
    }
}

/// The planned mounts, kept beside the record for start.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct PlannedMounts(pub Vec<PlannedMount>);

pub(crate) type PlannedMount = Planned;

/// The mounts a container was created with (`mounts.json` beside its record).
pub(crate) fn load_planned_mounts(dir: &std::path::Path) -> Result<Vec<Planned>> {
    match std::fs::read(dir.join("mounts.json")) {
        Ok(bytes) => serde_json::from_slice::<PlannedMounts>(&bytes)
            .map(|p| p.0)
            .map_err(|e| EngineError::internal(format!("read mounts.json: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(EngineError::internal(format!("read mounts.json: {e}"))),
    }
}

fn name_conflict(name: &str, other: &str) -> EngineError {
    EngineError::conflict(format!(
        "Conflict. The container name \"{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    let is_id = name.starts_with("sha256:")
        || (name.len() >= 12 && name.chars().all(|c| c.is_ascii_hexdigit()));
    if last.contains(':') || name.contains('@') || is_id {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn random_id() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Config` part of a create body.
fn container_config(body: &ContainerCreateBody) -> ContainerConfig {
    ContainerConfig {
        hostname: body.hostname.clone(),
        domainname: body.domainname.clone(),
        user: body.user.clone(),
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        exposed_ports: body.exposed_ports.clone(),
        tty: body.tty,
        open_stdin: body.open_stdin,
        stdin_once: body.stdin_once,
        env: body.env.clone(),
        cmd: body.cmd.clone(),
        healthcheck: body.healthcheck.clone(),
        args_escaped: body.args_escaped,
        image: body.image.clone(),
        volumes: body.volumes.clone(),
        working_dir: body.working_dir.clone(),
        entrypoint: body.entrypoint.clone(),
        network_disabled: body.network_disabled,
        on_build: body.on_build.clone(),
        labels: body.labels.clone(),
        stop_signal: body.stop_signal.clone(),
        stop_timeout: body.stop_timeout,
        shell: body.shell.clone(),
    }
}

/// Docker's merge of the image's defaults into the user's config (moby `merge`).
pub(crate) fn merge(user: &mut ContainerConfig, image: &ImageDefaults) {
    if user.user.as_deref().is_none_or(str::is_empty) {
        user.user = image.user.clone().filter(|u| !u.is_empty());
    }
    let image_ports: Vec<String> = image
        .exposed_ports
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    union(&mut user.exposed_ports, image_ports);
    let image_env = image.env.clone().unwrap_or_default();
    match &mut user.env {
        Some(env) if !env.is_empty() => {
            for entry in image_env {
                let key = entry.split('=').next().unwrap_or_default();
                if !env.iter().any(|e| e.split('=').next() == Some(key)) {
                    env.push(entry);
                }
            }
        }
        _ => user.env = (!image_env.is_empty()).then_some(image_env),
    }
    let labels = user.labels.get_or_insert_with(HashMap::new);
    for (k, v) in image.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd = image.cmd.clone();
            user.args_escaped = image.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = image.entrypoint.clone();
        }
    }
    if let Some(value) = &image.healthcheck
        && let Ok(image_health) = serde_json::from_value::<HealthConfig>(value.clone())
    {
        match &mut user.healthcheck {
            None => user.healthcheck = Some(image_health),
            Some(h) => {
                if h.test.as_ref().is_none_or(Vec::is_empty) {
                    h.test = image_health.test;
                }
                h.interval = h.interval.filter(|v| *v != 0).or(image_health.interval);
                h.timeout = h.timeout.filter(|v| *v != 0).or(image_health.timeout);
                h.start_period = h
                    .start_period
                    .filter(|v| *v != 0)
                    .or(image_health.start_period);
                h.retries = h.retries.filter(|v| *v != 0).or(image_health.retries);
            }
        }
    }
    if user.working_dir.as_deref().is_none_or(str::is_empty) {
        user.working_dir = image.working_dir.clone().filter(|w| !w.is_empty());
    }
    let image_volumes: Vec<String> = image
        .volumes
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    union(&mut user.volumes, image_volumes);
    if user.stop_signal.as_deref().is_none_or(str::is_empty) {
        user.stop_signal = image.stop_signal.clone().filter(|s| !s.is_empty());
    }
    if user.on_build.is_none() {
        user.on_build = image.on_build.clone();
    }
}

fn union(target: &mut Option<Vec<String>>, extra: Vec<String>) {
    if extra.is_empty() {
        return;
    }
    let list = target.get_or_insert_with(Vec::new);
    for item in extra {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

fn validate_host(host: &HostConfig) -> Result<()> {
    if let Some(policy) = &host.restart_policy {
        let name = policy.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        let retries = policy.maximum_retry_count.unwrap_or(0);
        if host.auto_remove.unwrap_or(false)
            && !matches!(
                name,
                RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO
            )
        {
            return Err(EngineError::invalid(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        if retries < 0 {
            return Err(EngineError::invalid(
                "invalid restart policy: maximum retry count cannot be negative",
            ));
        }
        if retries > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
            return Err(EngineError::invalid(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_follows_docker() {
        let image = ImageDefaults {
            env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            working_dir: Some("/srv".into()),
            labels: Some([("l".to_string(), "image".to_string())].into()),
            ..Default::default()
        };
        let mut user = ContainerConfig {
            env: Some(vec!["A=user".into()]),
            ..Default::default()
        };
        merge(&mut user, &image);
        assert_eq!(user.env.unwrap(), ["A=user", "PATH=/bin"]);
        assert_eq!(user.cmd.unwrap(), ["sh"]);
        assert_eq!(user.entrypoint.unwrap(), ["/init"]);
        assert_eq!(user.working_dir.unwrap(), "/srv");
        assert_eq!(user.labels.unwrap()["l"], "image");

        let mut with_cmd = ContainerConfig {
            cmd: Some(vec!["echo".into()]),
            ..Default::default()
        };
        merge(&mut with_cmd, &image);
        assert_eq!(with_cmd.cmd.unwrap(), ["echo"]);
        assert_eq!(with_cmd.entrypoint.unwrap(), ["/init"]);

        let mut reset = ContainerConfig {
            entrypoint: Some(vec![String::new()]),
            cmd: Some(vec!["ls".into()]),
            ..Default::default()
        };
        merge(&mut reset, &image);
        assert_eq!(reset.entrypoint.unwrap(), [""]);
        assert_eq!(reset.cmd.unwrap(), ["ls"]);
    }

    #[test]
    fn restart_policies_are_checked() {
        let host = HostConfig {
            auto_remove: Some(true),
            restart_policy: Some(bollard_stubs::models::RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        assert!(validate_host(&host).is_err());
    }
}
