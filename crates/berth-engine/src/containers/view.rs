//! What `inspect` and `ps` show: dockerd's JSON built from the record.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryHealth, ContainerSummaryHealthStatusEnum, ContainerSummaryHostConfig,
    ContainerSummaryNetworkSettings, ContainerSummaryStateEnum, DriverData, EndpointSettings,
    Health, HealthStatusEnum, HealthcheckResult, NetworkSettings,
};

use super::record::{ContainerRecord, Status, ZERO_TIME};
use super::{Container, ContainerService, spec};
use crate::error::{EngineError, Result};
use crate::filters::Filters;

/// `GET /containers/json` options.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// Only the `limit` most recently created (all states); 0 or less: no limit.
    pub limit: i64,
    pub size: bool,
    pub filters: Filters,
}

impl ContainerService {
    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name: &str, size: bool) -> Result<ContainerInspectResponse> {
        let c = self.get(name)?;
        let record = c.record();
        let (size_rw, size_root) = if size {
            let (rw, root) = self.sizes(&c, &record);
            (Some(rw), Some(root))
        } else {
            (None, None)
        };
        let args = record.command_line();
        let dir = c.dir.to_string_lossy().into_owned();
        let lower = self
            .images
            .store()
            .image(
                &record
                    .image
                    .parse()
                    .map_err(|_| EngineError::internal("bad image id"))?,
            )
            .ok()
            .flatten()
            .map(|img| {
                img.chain_ids
                    .iter()
                    .rev()
                    .map(|c| {
                        self.images
                            .store()
                            .layer_dir(c)
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default();
        let exec_ids = self.exec_ids(&c.id);
        Ok(ContainerInspectResponse {
            id: Some(record.id.clone()),
            created: Some(record.created.clone()),
            path: Some(args.first().cloned().unwrap_or_default()),
            args: Some(args.iter().skip(1).cloned().collect()),
            state: Some(state(&record)),
            image: Some(record.image.clone()),
            resolv_conf_path: Some(record.resolv_conf_path.clone()),
            hostname_path: Some(record.hostname_path.clone()),
            hosts_path: Some(record.hosts_path.clone()),
            log_path: Some(record.log_path.clone()),
            name: Some(record.name.clone()),
            restart_count: Some(record.restart_count),
            driver: Some("overlay2".into()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            exec_ids: (!exec_ids.is_empty()).then_some(exec_ids),
            host_config: Some(record.host_config.clone()),
            graph_driver: Some(DriverData {
                name: "overlay2".into(),
                data: HashMap::from([
                    ("LowerDir".to_string(), lower),
                    ("MergedDir".to_string(), format!("{dir}/rootfs")),
                    ("UpperDir".to_string(), format!("{dir}/upper")),
                    ("WorkDir".to_string(), format!("{dir}/work")),
                ]),
            }),
            size_rw,
            size_root_fs: size_root,
            mounts: Some(record.mounts.clone()),
            config: Some(record.config.clone()),
            network_settings: Some(NetworkSettings {
                sandbox_id: Some(String::new()),
                sandbox_key: Some(String::new()),
                ports: Some(HashMap::new()),
                networks: Some(networks(&record)),
            }),
            ..Default::default()
        })
    }

    /// The writable layer's size and that plus the image's.
    fn sizes(&self, c: &Container, record: &ContainerRecord) -> (i64, i64) {
        let rw = dir_size(&c.dir.join("upper")) as i64;
        let image = record
            .image
            .parse()
            .ok()
            .and_then(|id| self.images.store().image(&id).ok().flatten())
            .map_or(0, |i| i.size as i64);
        (rw, rw + image)
    }

    /// `GET /containers/json`.
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>> {
        opts.filters.validate(&[
            "id", "name", "label", "status", "exited", "ancestor", "before", "since", "volume",
            "health", "network", "is-task", "publish", "expose",
        ])?;
        for status in opts.filters.get("status") {
            if !matches!(
                status.as_str(),
                "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
            ) {
                return Err(EngineError::invalid(format!(
                    "invalid filter 'status={status}'"
                )));
            }
        }
        let mut all: Vec<(Arc<Container>, ContainerRecord)> = self
            .all()
            .into_iter()
            .map(|c| {
                let r = c.record();
                (c, r)
            })
            .collect();
        all.sort_by(|a, b| b.1.created.cmp(&a.1.created));
        let created_of = |name: &str| -> Result<String> { Ok(self.get(name)?.record().created) };
        let before = opts
            .filters
            .get("before")
            .first()
            .map(|n| created_of(n))
            .transpose()?;
        let since = opts
            .filters
            .get("since")
            .first()
            .map(|n| created_of(n))
            .transpose()?;
        let ancestors: Vec<String> = opts
            .filters
            .get("ancestor")
            .iter()
            .filter_map(|a| {
                self.images
                    .store()
                    .resolve(a)
                    .ok()
                    .map(|i| i.id.to_string())
            })
            .collect();
        let mut out = Vec::new();
        for (c, record) in all {
            let status = record.state.status;
            let show_all = opts.all
                || opts.limit > 0
                || opts.filters.contains("status")
                || opts.filters.contains("exited");
            if !show_all
                && !matches!(
                    status,
                    Status::Running | Status::Paused | Status::Restarting
                )
            {
                continue;
            }
            let f = &opts.filters;
            if !f.get("id").is_empty()
                && !f
                    .get("id")
                    .iter()
                    .any(|p| record.id.starts_with(p.as_str()))
            {
                continue;
            }
            if !f.get("name").is_empty()
                && !f
                    .get("name")
                    .iter()
                    .any(|n| record.plain_name().contains(n.trim_start_matches('/')))
            {
                continue;
            }
            let labels: std::collections::BTreeMap<String, String> = record
                .config
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            if !f.match_labels("label", &labels) {
                continue;
            }
            if !f.get("status").is_empty() && !f.get("status").iter().any(|s| s == status.as_str())
            {
                continue;
            }
            if !f.get("exited").is_empty()
                && (status != Status::Exited
                    || !f
                        .get("exited")
                        .iter()
                        .any(|e| e.parse::<i64>().ok() == Some(record.state.exit_code)))
            {
                continue;
            }
            if f.contains("ancestor") && !ancestors.contains(&record.image) {
                continue;
            }
            if before.as_ref().is_some_and(|b| record.created >= *b) {
                continue;
            }
            if since.as_ref().is_some_and(|s| record.created <= *s) {
                continue;
            }
            if !f.get("volume").is_empty()
                && !record.mounts.iter().any(|m| {
                    f.get("volume").iter().any(|v| {
                        m.name.as_deref() == Some(v.as_str())
                            || m.destination.as_deref() == Some(v.as_str())
                    })
                })
            {
                continue;
            }
            if !f.get("health").is_empty() {
                let health = record
                    .state
                    .health
                    .as_ref()
                    .map_or("none", |h| h.status.as_str());
                if !f.get("health").iter().any(|h| h == health) {
                    continue;
                }
            }
            if !f.get("network").is_empty() {
                let net = record.host_config.network_mode.clone().unwrap_or_default();
                if !f.get("network").contains(&net) {
                    continue;
                }
            }
            let mut summary = summary(&record);
            if opts.size {
                let (rw, root) = self.sizes(&c, &record);
                summary.size_rw = Some(rw);
                summary.size_root_fs = Some(root);
            }
            out.push(summary);
            if opts.limit > 0 && out.len() as i64 >= opts.limit {
                break;
            }
        }
        Ok(out)
    }
}

fn networks(record: &ContainerRecord) -> HashMap<String, EndpointSettings> {
    let mode = record
        .host_config
        .network_mode
        .clone()
        .unwrap_or_else(|| "bridge".into());
    let name = if mode == "default" {
        "bridge".to_string()
    } else {
        mode
    };
    if name.starts_with("container:") {
        return HashMap::new();
    }
    HashMap::from([(
        name,
        EndpointSettings {
            network_id: Some(String::new()),
            endpoint_id: Some(String::new()),
            gateway: Some(String::new()),
            ip_address: Some(String::new()),
            ip_prefix_len: Some(0),
            mac_address: Some(String::new()),
            ..Default::default()
        },
    )])
}

fn state(record: &ContainerRecord) -> ContainerState {
    let s = &record.state;
    let status = match s.status {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Paused => ContainerStateStatusEnum::PAUSED,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    };
    ContainerState {
        status: Some(status),
        running: Some(s.status.is_live() || s.status == Status::Restarting),
        paused: Some(s.status == Status::Paused),
        restarting: Some(s.status == Status::Restarting),
        oom_killed: Some(s.oom_killed),
        dead: Some(s.status == Status::Dead),
        pid: Some(s.pid),
        exit_code: Some(s.exit_code),
        error: Some(s.error.clone()),
        started_at: Some(s.started_at.clone()),
        finished_at: Some(s.finished_at.clone()),
        health: s.health.as_ref().map(|h| Health {
            status: Some(match h.status.as_str() {
                "healthy" => HealthStatusEnum::HEALTHY,
                "unhealthy" => HealthStatusEnum::UNHEALTHY,
                "starting" => HealthStatusEnum::STARTING,
                _ => HealthStatusEnum::NONE,
            }),
            failing_streak: Some(h.failing_streak),
            log: Some(
                h.log
                    .iter()
                    .map(|p| HealthcheckResult {
                        start: Some(p.start.clone()),
                        end: Some(p.end.clone()),
                        exit_code: Some(p.exit_code),
                        output: Some(p.output.clone()),
                    })
                    .collect(),
            ),
        }),
    }
}

/// One row of `ps`.
pub fn summary(record: &ContainerRecord) -> ContainerSummary {
    let args = record.command_line();
    let command = match args.split_first() {
        None => String::new(),
        Some((path, [])) => path.clone(),
        Some((path, rest)) => {
            let quoted: Vec<String> = rest
                .iter()
                .map(|a| {
                    if a.contains(' ') {
                        format!("'{a}'")
                    } else {
                        a.clone()
                    }
                })
                .collect();
            format!("{path} {}", quoted.join(" "))
        }
    };
    let state = match record.state.status {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Paused => ContainerSummaryStateEnum::PAUSED,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
    };
    let created = chrono::DateTime::parse_from_rfc3339(&record.created)
        .map(|t| t.timestamp())
        .unwrap_or(0);
    ContainerSummary {
        id: Some(record.id.clone()),
        names: Some(vec![record.name.clone()]),
        image: record.config.image.clone(),
        image_id: Some(record.image.clone()),
        command: Some(command),
        created: Some(created),
        ports: Some(Vec::new()),
        labels: Some(record.config.labels.clone().unwrap_or_default()),
        state: Some(state),
        status: Some(status_text(record, chrono::Utc::now())),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(spec::network_mode(&record.host_config).to_string()),
            ..Default::default()
        }),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(networks(record)),
        }),
        mounts: Some(record.mounts.clone()),
        health: record
            .state
            .health
            .as_ref()
            .map(|h| ContainerSummaryHealth {
                status: Some(match h.status.as_str() {
                    "healthy" => ContainerSummaryHealthStatusEnum::HEALTHY,
                    "unhealthy" => ContainerSummaryHealthStatusEnum::UNHEALTHY,
                    _ => ContainerSummaryHealthStatusEnum::STARTING,
                }),
                failing_streak: Some(h.failing_streak),
            }),
        ..Default::default()
    }
}

/// Docker's `Status` column text (`Up 2 minutes (healthy)`, `Exited (0) 3 seconds ago`).
pub fn status_text(record: &ContainerRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    let since = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| human_duration(now.signed_duration_since(t)))
    };
    let s = &record.state;
    match s.status {
        Status::Running | Status::Paused => {
            let up = since(&s.started_at).unwrap_or_default();
            if s.status == Status::Paused {
                return format!("Up {up} (Paused)");
            }
            match s.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => format!("Up {up} (health: starting)"),
                Some(h @ ("healthy" | "unhealthy")) => format!("Up {up} ({h})"),
                _ => format!("Up {up}"),
            }
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            since(&s.finished_at).unwrap_or_default()
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited => {
            if s.finished_at.is_empty() || s.finished_at == ZERO_TIME {
                if record.has_been_started {
                    format!("Exited ({})", s.exit_code)
                } else {
                    "Created".into()
                }
            } else {
                format!(
                    "Exited ({}) {} ago",
                    s.exit_code,
                    since(&s.finished_at).unwrap_or_default()
                )
            }
        }
    }
}

/// go-units' `HumanDuration` of a (possibly negative) time difference.
pub fn human_duration(d: chrono::TimeDelta) -> String {
    berth_api::units::human_duration(d.to_std().unwrap_or_default())
}

/// Bytes used by the files under `dir` (not following symlinks).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        let s = chrono::TimeDelta::seconds;
        assert_eq!(
            human_duration(chrono::TimeDelta::milliseconds(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(45)), "45 seconds");
        assert_eq!(human_duration(s(90)), "About a minute");
        assert_eq!(human_duration(s(600)), "10 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
    }

    #[test]
    fn status_texts() {
        let now = chrono::Utc::now();
        let ago = |secs| (now - chrono::TimeDelta::seconds(secs)).to_rfc3339();
        let mut record = ContainerRecord::default();
        record.state.status = Status::Created;
        assert_eq!(status_text(&record, now), "Created");
        record.state.status = Status::Running;
        record.state.started_at = ago(5);
        assert_eq!(status_text(&record, now), "Up 5 seconds");
        record.state.status = Status::Paused;
        assert_eq!(status_text(&record, now), "Up 5 seconds (Paused)");
        record.state.status = Status::Exited;
        record.state.exit_code = 3;
        record.state.finished_at = ago(120);
        assert_eq!(status_text(&record, now), "Exited (3) 2 minutes ago");
    }

    #[test]
    fn ps_quotes_arguments_with_spaces() {
        let mut record = ContainerRecord::default();
        record.config.cmd = Some(vec!["sh".into(), "-c".into(), "echo hi".into()]);
        assert_eq!(summary(&record).command.unwrap(), "sh -c 'echo hi'");
    }
}
