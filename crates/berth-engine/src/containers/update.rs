//! `POST /containers/{id}/update` (`docker update`): dockerd's checks, the new limits
//! and restart policy kept in the record, and the limits applied to a running
//! container's cgroup.

use std::sync::Arc;

use bollard_stubs::models::{ContainerUpdateBody, HostConfig, RestartPolicyNameEnum};

use super::ContainerService;
use super::cgroups::{Cgroup, ResourceUpdate, parse_cpuset};
use super::record::Status;
use crate::error::{EngineError, ErrorKind, Result};

/// Docker's smallest memory limit and reservation.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The CFS period `--cpus` uses (µs).
const CPU_PERIOD: i64 = 100_000;

/// dockerd's `verifyPlatformContainerResources` for an update (and the restart policy
/// check of `verifyContainerSettings`): an error, or warnings with the request adjusted
/// to what the host supports.
pub fn verify(
    body: &mut ContainerUpdateBody,
    cgroup: &Cgroup,
    num_cpus: Option<u32>,
) -> Result<Vec<String>> {
    let invalid = |m: &str| EngineError::invalid(m);
    if let Some(policy) = &body.restart_policy {
        let name = policy.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        let retries = policy.maximum_retry_count.unwrap_or(0);
        match name {
            RestartPolicyNameEnum::ALWAYS
            | RestartPolicyNameEnum::UNLESS_STOPPED
            | RestartPolicyNameEnum::NO
                if retries != 0 =>
            {
                let mut msg = "invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string();
                if retries < 0 {
                    msg.push_str(" and cannot be negative");
                }
                return Err(EngineError::invalid(msg));
            }
            RestartPolicyNameEnum::ON_FAILURE if retries < 0 => {
                return Err(invalid(
                    "invalid restart policy: maximum retry count cannot be negative",
                ));
            }
            _ => {}
        }
    }
    let mut warnings = Vec::new();
    let memory = body.memory.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if memory > 0 && body.memory_swap.unwrap_or(0) != -1 && !cgroup.swap_supported() {
        warnings.push(
            "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."
                .to_string(),
        );
        body.memory_swap = Some(-1);
    }
    let swap = body.memory_swap.unwrap_or(0);
    if memory > 0 && swap > 0 && swap < memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if let Some(s) = body.memory_swappiness
        && s != -1
        && !(0..=100).contains(&s)
    {
        return Err(EngineError::invalid(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        )));
    }
    let reservation = body.memory_reservation.unwrap_or(0);
    if reservation > 0 && reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB"));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    let nano = body.nano_cpus.unwrap_or(0);
    let period = body.cpu_period.unwrap_or(0);
    let quota = body.cpu_quota.unwrap_or(0);
    if nano > 0 && period > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano > 0 && quota > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if let Some(n) = num_cpus
        && (nano < 0 || nano > i64::from(n) * 1_000_000_000)
    {
        return Err(EngineError::invalid(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
        )));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if quota > 0 && quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    let (cpus_available, mems_available) = cgroup.available_cpuset();
    for (requested, available, what, noun) in [
        (&body.cpuset_cpus, cpus_available, "cpus", "CPUs"),
        (&body.cpuset_mems, mems_available, "mems", "memory nodes"),
    ] {
        let Some(requested) = requested.as_deref().filter(|r| !r.is_empty()) else {
            continue;
        };
        let wanted = parse_cpuset(requested).map_err(|e| {
            EngineError::invalid(format!("Invalid value {requested} for cpuset {what}: {e}"))
        })?;
        if let Some(available) = available {
            let have = parse_cpuset(&available).unwrap_or_default();
            if wanted.iter().any(|n| !have.contains(n)) {
                return Err(EngineError::invalid(format!(
                    "Requested {noun} are not available - requested {requested}, available: {available}"
                )));
            }
        }
    }
    let blkio = body.blkio_weight.unwrap_or(0);
    if blkio > 0 && !cgroup.blkio_weight_supported() {
        warnings.push(
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
                .to_string(),
        );
        body.blkio_weight = Some(0);
    } else if blkio > 0 && !(10..=1000).contains(&blkio) {
        return Err(invalid("Range of blkio weight is from 10 to 1000"));
    }
    Ok(warnings)
}

/// dockerd's `Container.UpdateContainer`: the request merged into the host config; a
/// conflict's message.
pub fn merge(current: &HostConfig, body: &ContainerUpdateBody) -> Result<HostConfig, String> {
    let mut host = current.clone();
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let now = |v: Option<i64>| v.unwrap_or(0);
    // dockerd keeps the default swap (twice the memory) in the host config at create.
    if now(host.memory) > 0 && now(host.memory_swap) == 0 {
        host.memory_swap = Some(now(host.memory) * 2);
    }
    if now(body.nano_cpus) > 0 && now(host.cpu_period) > 0 {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
                .into(),
        );
    }
    if now(body.nano_cpus) > 0 && now(host.cpu_quota) > 0 {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
                .into(),
        );
    }
    if now(body.cpu_period) > 0 && now(host.nano_cpus) > 0 {
        return Err(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if now(body.cpu_quota) > 0 && now(host.nano_cpus) > 0 {
        return Err(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if let Some(w) = body.blkio_weight.filter(|w| *w != 0) {
        host.blkio_weight = Some(w);
    }
    if let Some(v) = set(body.cpu_shares) {
        host.cpu_shares = Some(v);
    }
    if let Some(v) = set(body.nano_cpus) {
        host.nano_cpus = Some(v);
    }
    if let Some(v) = set(body.cpu_period) {
        host.cpu_period = Some(v);
    }
    if let Some(v) = set(body.cpu_quota) {
        host.cpu_quota = Some(v);
    }
    if let Some(v) = body.cpuset_cpus.clone().filter(|s| !s.is_empty()) {
        host.cpuset_cpus = Some(v);
    }
    if let Some(v) = body.cpuset_mems.clone().filter(|s| !s.is_empty()) {
        host.cpuset_mems = Some(v);
    }
    if let Some(memory) = set(body.memory) {
        let swap = now(host.memory_swap);
        if swap > 0 && memory > swap && now(body.memory_swap) == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        host.memory = Some(memory);
    }
    if let Some(v) = set(body.memory_swap) {
        host.memory_swap = Some(v);
    }
    if let Some(v) = set(body.memory_reservation) {
        host.memory_reservation = Some(v);
    }
    if let Some(v) = set(body.cpu_realtime_period) {
        host.cpu_realtime_period = Some(v);
    }
    if let Some(v) = set(body.cpu_realtime_runtime) {
        host.cpu_realtime_runtime = Some(v);
    }
    if let Some(v) = body.pids_limit {
        host.pids_limit = Some(v);
    }
    if let Some(policy) = &body.restart_policy
        && policy
            .name
            .is_some_and(|n| n != RestartPolicyNameEnum::EMPTY)
    {
        let none = matches!(policy.name, Some(RestartPolicyNameEnum::NO));
        if host.auto_remove.unwrap_or(false) && !none {
            return Err(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            );
        }
        host.restart_policy = Some(policy.clone());
    }
    Ok(host)
}

/// What changes in the cgroup: the request's settings (as dockerd hands them to the
/// runtime), with `--cpus` as a quota.
pub fn resource_update(body: &ContainerUpdateBody, merged: &HostConfig) -> ResourceUpdate {
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let mut r = ResourceUpdate {
        memory: set(body.memory),
        memory_reservation: set(body.memory_reservation),
        memory_swap: set(body.memory_swap),
        cpu_shares: set(body.cpu_shares).and_then(|s| u64::try_from(s).ok()),
        cpu_quota: None,
        cpu_period: None,
        cpuset_cpus: body.cpuset_cpus.clone().filter(|s| !s.is_empty()),
        cpuset_mems: body.cpuset_mems.clone().filter(|s| !s.is_empty()),
        pids_limit: body.pids_limit,
        blkio_weight: body.blkio_weight.filter(|w| *w != 0),
    };
    if let Some(nano) = body.nano_cpus.filter(|n| *n > 0) {
        r.cpu_period = Some(CPU_PERIOD as u64);
        r.cpu_quota = Some(
            i64::try_from(i128::from(nano) * i128::from(CPU_PERIOD) / 1_000_000_000)
                .unwrap_or(i64::MAX),
        );
    }
    if let Some(p) = set(body.cpu_period) {
        r.cpu_period = u64::try_from(p).ok();
    }
    if let Some(q) = set(body.cpu_quota) {
        r.cpu_quota = Some(q);
    }
    // Swap alone is relative to the memory limit in force (cgroup v2 stores swap apart).
    if r.memory_swap.is_some() && r.memory.is_none() {
        r.memory = merged.memory.filter(|m| *m != 0);
    }
    r
}

impl ContainerService {
    /// `POST /containers/{id}/update`: the warnings.
    pub async fn update(
        self: &Arc<Self>,
        name: &str,
        mut body: ContainerUpdateBody,
    ) -> Result<Vec<String>> {
        let c = self.get(name)?;
        let cgroup = self.cgroup(&c);
        let warnings = verify(&mut body, &cgroup, self.facts.num_cpus)?;
        let _op = c.op.lock().await;
        let record = c.record();
        let cannot = |kind: ErrorKind, why: &str| {
            EngineError::new(kind, format!("Cannot update container {}: {why}", c.id))
        };
        if matches!(record.state.status, Status::Removing | Status::Dead) {
            return Err(cannot(
                ErrorKind::Internal,
                "container is marked for removal and cannot be \"update\"",
            ));
        }
        let host =
            merge(&record.host_config, &body).map_err(|m| cannot(ErrorKind::Conflict, &m))?;
        if record.state.status.is_live() {
            let update = resource_update(&body, &host);
            tokio::task::spawn_blocking(move || cgroup.apply(&update))
                .await?
                .map_err(|e| cannot(ErrorKind::Internal, &e.to_string()))?;
        }
        c.update(|r| r.host_config = host)?;
        self.event("update", &c.record(), &[]);
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::RestartPolicy;

    fn fake_v1() -> (tempfile::TempDir, Cgroup) {
        let root = tempfile::tempdir().unwrap();
        for (dir, file, text) in [
            (
                "memory",
                "memory.memsw.limit_in_bytes",
                "9223372036854771712",
            ),
            ("cpuset", "cpuset.cpus", "0-1"),
            ("cpuset", "cpuset.mems", "0"),
        ] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
            std::fs::write(root.path().join(dir).join(file), text).unwrap();
        }
        let cg = Cgroup::new(root.path(), "/berth/x");
        (root, cg)
    }

    fn err(body: ContainerUpdateBody) -> String {
        let (_root, cg) = fake_v1();
        let mut body = body;
        verify(&mut body, &cg, Some(2)).unwrap_err().message
    }

    #[test]
    fn verify_uses_dockerds_messages() {
        assert_eq!(
            err(ContainerUpdateBody {
                memory: Some(1 << 20),
                ..Default::default()
            }),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(ContainerUpdateBody {
                memory: Some(64 << 20),
                memory_swap: Some(32 << 20),
                ..Default::default()
            }),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            err(ContainerUpdateBody {
                nano_cpus: Some(3_000_000_000),
                ..Default::default()
            }),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert_eq!(
            err(ContainerUpdateBody {
                cpuset_cpus: Some("5".into()),
                ..Default::default()
            }),
            "Requested CPUs are not available - requested 5, available: 0-1"
        );
        assert_eq!(
            err(ContainerUpdateBody {
                cpuset_mems: Some("x".into()),
                ..Default::default()
            }),
            "Invalid value x for cpuset mems: invalid format: x"
        );
        assert_eq!(
            err(ContainerUpdateBody {
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::ALWAYS),
                    maximum_retry_count: Some(3)
                }),
                ..Default::default()
            }),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        );
        // Swap alone is fine on update.
        let (_root, cg) = fake_v1();
        let mut body = ContainerUpdateBody {
            memory_swap: Some(1 << 30),
            ..Default::default()
        };
        assert!(verify(&mut body, &cg, Some(2)).unwrap().is_empty());
    }

    #[test]
    fn unsupported_settings_warn() {
        let root = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(root.path(), "/berth/x");
        let mut body = ContainerUpdateBody {
            memory: Some(64 << 20),
            blkio_weight: Some(500),
            ..Default::default()
        };
        let warnings = verify(&mut body, &cg, None).unwrap();
        assert_eq!(warnings.len(), 2);
        assert_eq!(body.memory_swap, Some(-1));
        assert_eq!(body.blkio_weight, Some(0));
    }

    #[test]
    fn merge_follows_dockerd() {
        let host = HostConfig {
            memory: Some(64 << 20),
            nano_cpus: Some(500_000_000),
            auto_remove: Some(true),
            ..Default::default()
        };
        let merged = merge(
            &host,
            &ContainerUpdateBody {
                memory: Some(128 << 20),
                pids_limit: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(merged.memory, Some(128 << 20));
        assert_eq!(merged.memory_swap, Some(128 << 20));
        assert_eq!(merged.pids_limit, Some(0));
        assert_eq!(merged.nano_cpus, Some(500_000_000));
        let too_big = merge(
            &host,
            &ContainerUpdateBody {
                memory: Some(256 << 20),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(too_big.starts_with("Memory limit should be smaller"));
        assert!(
            merge(
                &host,
                &ContainerUpdateBody {
                    memory: Some(256 << 20),
                    memory_swap: Some(-1),
                    ..Default::default()
                },
            )
            .is_ok()
        );
        assert_eq!(
            merge(
                &host,
                &ContainerUpdateBody {
                    cpu_quota: Some(20_000),
                    ..Default::default()
                }
            )
            .unwrap_err(),
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        );
        let policy = |name| ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(name),
                maximum_retry_count: Some(0),
            }),
            ..Default::default()
        };
        assert_eq!(
            merge(&host, &policy(RestartPolicyNameEnum::ALWAYS)).unwrap_err(),
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        );
        assert!(merge(&host, &policy(RestartPolicyNameEnum::NO)).is_ok());
        // An empty policy name (what the CLI sends) leaves the policy alone.
        let kept = merge(&host, &policy(RestartPolicyNameEnum::EMPTY)).unwrap();
        assert_eq!(kept.restart_policy, None);
    }

    #[test]
    fn cpus_become_a_quota() {
        let body = ContainerUpdateBody {
            nano_cpus: Some(1_500_000_000),
            memory_swap: Some(256 << 20),
            ..Default::default()
        };
        let merged = HostConfig {
            memory: Some(64 << 20),
            ..Default::default()
        };
        let r = resource_update(&body, &merged);
        assert_eq!(r.cpu_quota, Some(150_000));
        assert_eq!(r.cpu_period, Some(100_000));
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!(r.memory_swap, Some(256 << 20));
    }
}
