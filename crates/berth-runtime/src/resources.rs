//! cgroup limits (moby `WithResources` and its validation), the device nodes created in
//! the container and the device cgroup rules (`WithDevices`).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory,
    LinuxPids, LinuxResources,
};

use crate::{DeviceKind, HostConfig, HostDevice, HostFacts, SpecError};

/// Docker's smallest memory limit and reservation (6 MiB).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The CFS period Docker uses for `--cpus` (100 ms, in µs).
const CPU_PERIOD: u64 = 100_000;

fn invalid(message: impl Into<String>) -> SpecError {
    SpecError::Resource(message.into())
}

/// Docker's checks on the resource settings (`verifyPlatformContainerResources`,
/// `getCPUResources`), with its messages.
pub fn validate(host: &HostConfig, facts: &HostFacts) -> Result<(), SpecError> {
    let swap = effective_swap(host);
    if host.memory != 0 && host.memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if host.memory > 0 && swap > 0 && swap < host.memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if host.memory == 0 && swap > 0 {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if let Some(s) = host.memory_swappiness
        && !(0..=100).contains(&s)
    {
        return Err(invalid(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        )));
    }
    if host.memory_reservation > 0 && host.memory_reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB"));
    }
    if host.memory > 0 && host.memory_reservation > 0 && host.memory < host.memory_reservation {
        return Err(invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if host.nano_cpus != 0 && host.cpu_period != 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if host.nano_cpus != 0 && host.cpu_quota != 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if let Some(n) = facts.num_cpus
        && (host.nano_cpus < 0 || host.nano_cpus > i64::from(n) * 1_000_000_000)
    {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
        )));
    }
    if host.cpu_period != 0 && !(1000..=1_000_000).contains(&host.cpu_period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if host.cpu_quota > 0 && host.cpu_quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if host.cpu_shares < 0 {
        return Err(invalid(format!(
            "invalid CPU shares ({}): value must be a positive integer",
            host.cpu_shares
        )));
    }
    if host.blkio_weight > 0 && !(10..=1000).contains(&host.blkio_weight) {
        return Err(invalid("Range of blkio weight is from 10 to 1000"));
    }
    if !(-1000..=1000).contains(&host.oom_score_adj) {
        return Err(invalid(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            host.oom_score_adj
        )));
    }
    if host.shm_size < 0 {
        return Err(invalid("SHM size can not be less than 0"));
    }
    Ok(())
}

/// Docker's default swap: as much again as the memory limit.
fn effective_swap(host: &HostConfig) -> i64 {
    if host.memory > 0 && host.memory_swap == 0 {
        host.memory * 2
    } else {
        host.memory_swap
    }
}

fn memory(host: &HostConfig) -> Option<LinuxMemory> {
    let mut m = LinuxMemory::default();
    let positive = |v: i64| (v > 0).then_some(v);
    m.set_limit(positive(host.memory));
    m.set_reservation(positive(host.memory_reservation));
    m.set_swap(positive(effective_swap(host)));
    m.set_swappiness(host.memory_swappiness.and_then(|s| u64::try_from(s).ok()));
    m.set_disable_oom_killer(host.oom_kill_disable);
    (m != LinuxMemory::default()).then_some(m)
}

fn cpu(host: &HostConfig) -> Option<LinuxCpu> {
    let mut c = LinuxCpu::default();
    c.set_shares(u64::try_from(host.cpu_shares).ok().filter(|s| *s != 0));
    c.set_cpus((!host.cpuset_cpus.is_empty()).then(|| host.cpuset_cpus.clone()));
    c.set_mems((!host.cpuset_mems.is_empty()).then(|| host.cpuset_mems.clone()));
    if host.nano_cpus > 0 {
        let quota = i128::from(host.nano_cpus) * i128::from(CPU_PERIOD) / 1_000_000_000;
        c.set_period(Some(CPU_PERIOD));
        c.set_quota(i64::try_from(quota).ok());
    }
    if host.cpu_period != 0 {
        c.set_period(u64::try_from(host.cpu_period).ok());
    }
    if host.cpu_quota != 0 {
        c.set_quota(Some(host.cpu_quota));
    }
    (c != LinuxCpu::default()).then_some(c)
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ((typ != LinuxDeviceType::A).then_some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// Docker's device rules: deny everything, allow the standard character devices, deny
/// fuse (10:229).
fn docker_default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, C};
    let allow = |major, minor| rule(true, C, Some(major), Some(minor), "rwm");
    vec![
        rule(false, A, None, None, "rwm"),
        allow(1, 5),
        allow(1, 3),
        allow(1, 9),
        allow(1, 8),
        allow(5, 0),
        allow(5, 1),
        rule(false, C, Some(10), Some(229), "rwm"),
    ]
}

/// The rules runc appends to every container's (`specconv.AllowedDevices`), so that a
/// Docker container gets the same access under any runtime: mknod of any node, `full`,
/// `ptmx`, the pty slaves and `tun`.
fn runtime_default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    vec![
        rule(true, C, None, None, "m"),
        rule(true, B, None, None, "m"),
        rule(true, C, Some(1), Some(7), "rwm"),
        rule(true, C, Some(5), Some(2), "rwm"),
        rule(true, C, Some(136), None, "rwm"),
        rule(true, C, Some(10), Some(200), "rwm"),
    ]
}

fn device_node(
    path: &Path,
    kind: DeviceKind,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> LinuxDevice {
    let mut d = LinuxDevice::default();
    d.set_path(path.to_path_buf());
    d.set_typ(match kind {
        DeviceKind::Char => LinuxDeviceType::C,
        DeviceKind::Block => LinuxDeviceType::B,
    });
    d.set_major(major);
    d.set_minor(minor);
    d.set_file_mode(Some(mode));
    d.set_uid(Some(uid));
    d.set_gid(Some(gid));
    d
}

/// The nodes every container gets (the OCI default devices; the runtime adds
/// `/dev/console` and `/dev/ptmx`).
fn default_devices() -> Vec<LinuxDevice> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| device_node(Path::new(p), DeviceKind::Char, major, minor, 0o666, 0, 0))
    .collect()
}

fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.chars().all(|c| "rwm".contains(c))
        && mode
            .chars()
            .enumerate()
            .all(|(i, c)| !mode[..i].contains(c))
}

/// `--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS'`.
fn parse_cgroup_rule(text: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let bad = || SpecError::DeviceCgroupRule(text.to_string());
    let parts: Vec<&str> = text.split(' ').collect();
    let [typ, numbers, access] = parts[..] else {
        return Err(bad());
    };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let number = |n: &str| -> Result<Option<i64>, SpecError> {
        if n == "*" {
            return Ok(None);
        }
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        n.parse().map(Some).map_err(|_| bad())
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    if access.is_empty() || access.len() > 3 || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    let mut r = rule(true, typ, number(major)?, number(minor)?, access);
    r.set_typ(Some(typ));
    Ok(r)
}

/// The device nodes and device cgroup rules of a container.
pub fn devices(
    host: &HostConfig,
    host_devices: &[HostDevice],
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let mut nodes = default_devices();
    let add = |d: LinuxDevice, nodes: &mut Vec<LinuxDevice>| {
        if let Some(existing) = nodes.iter_mut().find(|n| n.path() == d.path()) {
            *existing = d;
        } else {
            nodes.push(d);
        }
    };
    let mut rules = if host.privileged {
        for d in host_devices {
            add(
                device_node(&d.path, d.kind, d.major, d.minor, d.file_mode, d.uid, d.gid),
                &mut nodes,
            );
        }
        vec![rule(true, LinuxDeviceType::A, None, None, "rwm")]
    } else {
        docker_default_rules()
    };

    for mapping in &host.devices {
        let permissions = if mapping.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            mapping.cgroup_permissions.as_str()
        };
        if !valid_device_mode(permissions) {
            return Err(SpecError::DeviceMode {
                path: mapping.path_on_host.clone(),
                mode: permissions.to_string(),
            });
        }
        let in_container = if mapping.path_in_container.is_empty() {
            mapping.path_on_host.as_str()
        } else {
            mapping.path_in_container.as_str()
        };
        let on_host = Path::new(&mapping.path_on_host);
        // The node itself, or every node below a directory (`--device /dev/snd`).
        let found: Vec<(PathBuf, &HostDevice)> =
            match host_devices.iter().find(|d| d.path == on_host) {
                Some(d) => vec![(PathBuf::from(in_container), d)],
                None => host_devices
                    .iter()
                    .filter_map(|d| {
                        let rest = d.path.strip_prefix(on_host).ok()?;
                        (!rest.as_os_str().is_empty())
                            .then(|| (Path::new(in_container).join(rest), d))
                    })
                    .collect(),
            };
        if found.is_empty() {
            return Err(SpecError::DeviceNotFound(mapping.path_on_host.clone()));
        }
        for (path, d) in found {
            add(
                device_node(&path, d.kind, d.major, d.minor, d.file_mode, d.uid, d.gid),
                &mut nodes,
            );
            if !host.privileged {
                let typ = match d.kind {
                    DeviceKind::Char => LinuxDeviceType::C,
                    DeviceKind::Block => LinuxDeviceType::B,
                };
                rules.push(rule(true, typ, Some(d.major), Some(d.minor), permissions));
            }
        }
    }
    if !host.privileged {
        for text in &host.device_cgroup_rules {
            rules.push(parse_cgroup_rule(text)?);
        }
        rules.extend(runtime_default_rules());
    }
    Ok((nodes, rules))
}

/// The cgroup resources: limits, pids, block I/O weight and the device rules.
pub fn resources(host: &HostConfig, device_rules: Vec<LinuxDeviceCgroup>) -> LinuxResources {
    let mut r = LinuxResources::default();
    r.set_devices(Some(device_rules));
    r.set_memory(memory(host));
    r.set_cpu(cpu(host));
    r.set_pids(host.pids_limit.map(|limit| {
        let mut p = LinuxPids::default();
        // 0 and negative mean unlimited; the runtime wants -1 for that.
        p.set_limit(if limit > 0 { limit } else { -1 });
        p
    }));
    r.set_block_io((host.blkio_weight > 0).then(|| {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(host.blkio_weight));
        b
    }));
    r
}

#[cfg(test)]
mod tests;
