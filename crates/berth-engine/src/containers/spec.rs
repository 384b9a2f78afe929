//! From a container record to the OCI spec the shim runs: Docker's API settings become
//! berth-runtime's inputs, the per-container `/etc` files are written, and user mounts
//! are added.

use std::collections::BTreeMap;
use std::path::Path;

use berth_runtime::{DeviceMapping, HostConfig as RuntimeHost, Ulimit};
use bollard_stubs::models::{ContainerConfig, HostConfig, HostConfigCgroupnsModeEnum};

use super::record::ContainerRecord;

/// Docker's API settings as the spec generator takes them.
pub fn runtime_host(config: &ContainerConfig, host: &HostConfig, hostname: &str) -> RuntimeHost {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    RuntimeHost {
        privileged: host.privileged.unwrap_or(false),
        cap_add: list(&host.cap_add),
        cap_drop: list(&host.cap_drop),
        security_opt: list(&host.security_opt),
        read_only_rootfs: host.readonly_rootfs.unwrap_or(false),
        tmpfs: host
            .tmpfs
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        devices: host
            .devices
            .iter()
            .flatten()
            .map(|d| DeviceMapping {
                path_on_host: s(&d.path_on_host),
                path_in_container: s(&d.path_in_container),
                cgroup_permissions: s(&d.cgroup_permissions),
            })
            .collect(),
        device_cgroup_rules: list(&host.device_cgroup_rules),
        ulimits: host
            .ulimits
            .iter()
            .flatten()
            .map(|u| Ulimit {
                name: s(&u.name),
                soft: u.soft.unwrap_or(0),
                hard: u.hard.unwrap_or(0),
            })
            .collect(),
        sysctls: host
            .sysctls
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        pid_mode: s(&host.pid_mode),
        ipc_mode: s(&host.ipc_mode),
        uts_mode: s(&host.uts_mode),
        network_mode: network_mode(host).to_string(),
        cgroupns_mode: match host.cgroupns_mode {
            Some(HostConfigCgroupnsModeEnum::PRIVATE) => "private".into(),
            Some(HostConfigCgroupnsModeEnum::HOST) => "host".into(),
            _ => String::new(),
        },
        hostname: hostname.to_string(),
        domainname: s(&config.domainname),
        user: s(&config.user),
        group_add: list(&host.group_add),
        init: host.init.unwrap_or(false),
        shm_size: host.shm_size.unwrap_or(0),
        env: list(&config.env),
        working_dir: s(&config.working_dir),
        entrypoint: config.entrypoint.clone(),
        cmd: list(&config.cmd),
        tty: config.tty.unwrap_or(false),
        console_size: host
            .console_size
            .as_ref()
            .filter(|s| s.len() == 2 && s[0] > 0 && s[1] > 0)
            .map(|s| (s[0] as u64, s[1] as u64)),
        memory: host.memory.unwrap_or(0),
        memory_swap: host.memory_swap.unwrap_or(0),
        memory_reservation: host.memory_reservation.unwrap_or(0),
        memory_swappiness: host.memory_swappiness.filter(|v| *v >= 0),
        oom_kill_disable: host.oom_kill_disable,
        cpu_shares: host.cpu_shares.unwrap_or(0),
        nano_cpus: host.nano_cpus.unwrap_or(0),
        cpu_period: host.cpu_period.unwrap_or(0),
        cpu_quota: host.cpu_quota.unwrap_or(0),
        cpuset_cpus: s(&host.cpuset_cpus),
        cpuset_mems: s(&host.cpuset_mems),
        pids_limit: host.pids_limit,
        blkio_weight: host.blkio_weight.unwrap_or(0),
        oom_score_adj: host.oom_score_adj.unwrap_or(0) as i32,
        masked_paths: host.masked_paths.clone(),
        readonly_paths: host.readonly_paths.clone(),
    }
}

/// The network mode berth runs: `host`, `container:…`, or an isolated namespace with
/// only loopback (`none`; also what `bridge`/`default` get until bridge networking lands).
pub fn network_mode(host: &HostConfig) -> &str {
    match host.network_mode.as_deref() {
        Some("host") => "host",
        Some(mode) if mode.starts_with("container:") => mode,
        _ => "none",
    }
}

/// The hostname a container gets: `--hostname`, else its short ID (the host's name with
/// `--network host`).
pub fn hostname(record: &ContainerRecord) -> String {
    if let Some(name) = record.config.hostname.clone().filter(|h| !h.is_empty()) {
        return name;
    }
    if network_mode(&record.host_config) == "host" {
        return std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
    }
    record.short_id().to_string()
}

/// Writes `hostname`, `hosts` and `resolv.conf` for the container into `dir`.
pub fn write_etc_files(
    dir: &Path,
    record: &ContainerRecord,
    hostname: &str,
    host_resolv_conf: &Path,
) -> std::io::Result<()> {
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    let host_mode = network_mode(&record.host_config) == "host";
    let mut hosts = if host_mode {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string()
    };
    for extra in record.host_config.extra_hosts.iter().flatten() {
        if let Some((name, ip)) = extra.split_once(':').or_else(|| extra.split_once('=')) {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    std::fs::write(dir.join("hosts"), hosts)?;
    let host_resolv = std::fs::read_to_string(host_resolv_conf).unwrap_or_default();
    std::fs::write(
        dir.join("resolv.conf"),
        resolv_conf(&host_resolv, &record.host_config, host_mode),
    )
}

/// Docker's resolv.conf: the host's, with `--dns*` overriding, and loopback name
/// servers dropped (they would not answer inside the container) unless on the host
/// network; with none left, Google's public servers.
pub fn resolv_conf(host: &str, config: &HostConfig, host_network: bool) -> String {
    let mut nameservers = Vec::new();
    let mut search = Vec::new();
    let mut options = Vec::new();
    let mut other = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => nameservers.extend(words.next().map(str::to_string)),
            Some("search" | "domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            Some(w) if !w.starts_with('#') && !w.starts_with(';') => other.push(line.to_string()),
            _ => {}
        }
    }
    if let Some(dns) = config.dns.as_ref().filter(|d| !d.is_empty()) {
        nameservers = dns.clone();
    } else if !host_network {
        nameservers.retain(|ns| !ns.starts_with("127.") && ns != "::1");
        if nameservers.is_empty() {
            nameservers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
        }
    }
    if let Some(s) = config.dns_search.as_ref().filter(|d| !d.is_empty()) {
        search = s.clone();
    }
    if let Some(o) = config.dns_options.as_ref().filter(|d| !d.is_empty()) {
        options = o.clone();
    }
    let mut out = String::new();
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    for line in other {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        let host =
            "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n";
        let out = resolv_conf(host, &HostConfig::default(), false);
        assert_eq!(out, "nameserver 10.0.0.2\nsearch corp\noptions edns0\n");
        let only_local = resolv_conf("nameserver 127.0.0.1\n", &HostConfig::default(), false);
        assert_eq!(only_local, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let host_net = resolv_conf("nameserver 127.0.0.1\n", &HostConfig::default(), true);
        assert_eq!(host_net, "nameserver 127.0.0.1\n");
        let custom = HostConfig {
            dns: Some(vec!["1.1.1.1".into()]),
            dns_search: Some(vec!["a.b".into()]),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(host, &custom, false),
            "nameserver 1.1.1.1\nsearch a.b\noptions edns0\n"
        );
    }

    #[test]
    fn bridge_runs_isolated_until_networks_exist() {
        let mode = |m: &str| {
            let host = HostConfig {
                network_mode: Some(m.into()),
                ..Default::default()
            };
            network_mode(&host).to_string()
        };
        assert_eq!(mode("host"), "host");
        assert_eq!(mode("bridge"), "none");
        assert_eq!(mode("default"), "none");
        assert_eq!(mode("none"), "none");
    }
}
