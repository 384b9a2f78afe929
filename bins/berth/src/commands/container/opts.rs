//! The flags `run` and `create` share, and the `POST /containers/create` body they make
//! (docker's `parse` in cli/command/container/opts.go).

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointSettings, HealthConfig, HostConfig,
    HostConfigLogConfig, NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use clap::{ArgAction, Args as ClapArgs};

use super::parse::{self, MountSpec, VolumeSpec};

/// `--isolation vm`: berth's name for running the container as a micro-VM.
const ISOLATION_VM: &str = "vm";

#[derive(ClapArgs, Debug, Default, Clone)]
pub struct ContainerOpts {
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list", value_parser = parse::extra_host)]
    pub add_host: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long, value_name = "list", value_parser = parse::attach_stream)]
    pub attach: Vec<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16", value_parser = parse::go_uint16)]
    pub blkio_weight: Option<u16>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long, value_name = "string")]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long, value_name = "string")]
    pub cidfile: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", value_parser = parse::go_int)]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", value_parser = parse::go_int)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int", value_parser = parse::go_int)]
    pub cpu_rt_period: Option<i64>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int", value_parser = parse::go_int)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", value_parser = parse::go_int)]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", value_parser = parse::nano_cpus)]
    pub cpus: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list", value_parser = parse::ip_address)]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(long, value_name = "string")]
    pub domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long, value_name = "list", value_parser = parse::env_var)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration", value_parser = parse::go_duration)]
    pub health_interval: Option<i64>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int", value_parser = parse::go_int)]
    pub health_retries: Option<i64>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration", value_parser = parse::go_duration)]
    pub health_start_interval: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration", value_parser = parse::go_duration)]
    pub health_start_period: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration", value_parser = parse::go_duration)]
    pub health_timeout: Option<i64>,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "ip")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "ip")]
    pub ip6: Option<String>,
    /// IPC mode to use
    #[arg(long, value_name = "string")]
    pub ipc: Option<String>,
    /// Container isolation technology ("vm": run it as a micro-VM, as --runtime microvm)
    #[arg(long, value_name = "string")]
    pub isolation: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long, value_name = "list", value_parser = parse::label)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub link: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub mac_address: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = parse::ram_in_bytes)]
    pub memory: Option<i64>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes", value_parser = parse::ram_in_bytes)]
    pub memory_reservation: Option<i64>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", value_parser = parse::mem_swap, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Tune container memory swappiness (0 to 100) (default -1)
    #[arg(long = "memory-swappiness", value_name = "int", value_parser = parse::go_int, allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "mount", value_parser = parse::mount)]
    pub mount: Vec<MountSpec>,
    /// Connect a container to a network
    #[arg(long, alias = "net", value_name = "network")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", value_parser = parse::go_int, allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// PID namespace to use
    #[arg(long, value_name = "string")]
    pub pid: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", value_parser = parse::go_int, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long, value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string", default_value = "no")]
    pub restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Runtime to use for this container
    #[arg(long, value_name = "string")]
    pub runtime: Option<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes", value_parser = parse::ram_in_bytes)]
    pub shm_size: Option<i64>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", value_parser = parse::go_int, allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt", value_name = "list")]
    pub storage_opt: Vec<String>,
    /// Sysctl options
    #[arg(long, value_name = "map", value_parser = parse::sysctl)]
    pub sysctl: Vec<(String, String)>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Ulimit options
    #[arg(long, value_name = "ulimit", value_parser = parse::ulimit)]
    pub ulimit: Vec<ResourcesUlimits>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// User namespace to use
    #[arg(long, value_name = "string")]
    pub userns: Option<String>,
    /// UTS namespace to use
    #[arg(long, value_name = "string")]
    pub uts: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long, value_name = "list")]
    pub volume: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver", value_name = "string")]
    pub volume_driver: Option<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
}

/// Options about the create call itself (both `run` and `create`).
#[derive(ClapArgs, Debug, Default, Clone)]
pub struct CreateFlags {
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string", default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image verification (accepted for compatibility)
    #[arg(
        long,
        hide = true,
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = crate::cli::parse_go_bool
    )]
    pub disable_content_trust: bool,
}

/// docker's `validatePullOpt`.
pub fn validate_pull(v: &str) -> Result<(), String> {
    match v {
        "always" | "missing" | "never" | "" => Ok(()),
        _ => Err(format!(
            "invalid pull option: '{v}': must be one of \"always\", \"missing\" or \"never\""
        )),
    }
}

/// The body of `POST /containers/create`, as JSON (unknown enum names are kept as text so
/// that the daemon, not the client, refuses them, as with docker).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub body: ContainerCreateBody,
    restart_name: String,
    mount_types: Vec<String>,
}

impl CreateRequest {
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.body).unwrap_or_default();
        if let Some(hc) = v.get_mut("HostConfig") {
            if let Some(rp) = hc.get_mut("RestartPolicy") {
                rp["Name"] = self.restart_name.clone().into();
            }
            if let Some(serde_json::Value::Array(mounts)) = hc.get_mut("Mounts") {
                for (m, t) in mounts.iter_mut().zip(&self.mount_types) {
                    m["Type"] = t.clone().into();
                }
            }
        }
        v
    }
}

fn some_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn valid_ns_mode(mode: &str, container_ok: bool) -> bool {
    let (kind, rest) = mode.split_once(':').unwrap_or((mode, ""));
    match kind {
        "" | "host" => rest.is_empty() || kind.is_empty(),
        "container" if container_ok => !rest.is_empty(),
        _ => false,
    }
}

impl ContainerOpts {
    /// docker's `parse`: the create body for `image` and its command, or docker's message.
    pub fn build(&self, image: &str, args: &[String]) -> Result<CreateRequest, String> {
        let mut attach_stdin = self.attach.iter().any(|a| a == "stdin");
        let mut attach_stdout = self.attach.iter().any(|a| a == "stdout");
        let mut attach_stderr = self.attach.iter().any(|a| a == "stderr");
        if let Some(mac) = &self.mac_address {
            let ok = mac.trim().split(':').count() == 6
                && mac
                    .trim()
                    .split(':')
                    .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok());
            if !ok {
                return Err(format!("{mac} is not a valid mac address"));
            }
        }
        if self.interactive {
            attach_stdin = true;
        }
        if self.attach.is_empty() {
            attach_stdout = true;
            attach_stderr = true;
        }
        let swappiness = self.memory_swappiness.unwrap_or(-1);
        if swappiness != -1 && !(0..=100).contains(&swappiness) {
            return Err(format!(
                "invalid value: {swappiness}. Valid memory swappiness range is 0-100"
            ));
        }
        let mut binds = Vec::new();
        let mut volumes: Vec<String> = Vec::new();
        for v in &self.volume {
            match parse::volume(v)? {
                VolumeSpec::Bind(b) => binds.push(b),
                VolumeSpec::Anonymous(a) => {
                    if !volumes.contains(&a) {
                        volumes.push(a)
                    }
                }
            }
        }
        let mut tmpfs = HashMap::new();
        for t in &self.tmpfs {
            let (k, v) = t.split_once(':').unwrap_or((t, ""));
            tmpfs.insert(k.to_string(), v.to_string());
        }
        let entrypoint = match self.entrypoint.as_deref() {
            Some("") => Some(vec![String::new()]),
            Some(e) => Some(vec![e.to_string()]),
            None => None,
        };
        let mut exposed = Vec::new();
        let mut bindings: Vec<(String, PortBinding)> = Vec::new();
        parse::publish(&self.publish, &mut exposed, &mut bindings)?;
        for e in &self.expose {
            parse::expose(e, &mut exposed)?;
        }
        let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for (k, b) in bindings {
            port_bindings
                .entry(k)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(b);
        }
        let mut devices: Vec<DeviceMapping> = Vec::new();
        for d in &self.device {
            devices.push(parse::device(d)?);
        }
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(parse::kv_file(f, true)?);
        }
        env.extend(self.env.iter().cloned());
        let mut labels_list = Vec::new();
        for f in &self.label_file {
            labels_list.extend(parse::kv_file(f, false)?);
        }
        labels_list.extend(self.label.iter().cloned());
        let labels: HashMap<String, String> = labels_list
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        if let Some(p) = &self.pid
            && !valid_ns_mode(p, true)
        {
            return Err("--pid: invalid PID mode".into());
        }
        if let Some(u) = &self.uts
            && !valid_ns_mode(u, false)
        {
            return Err("--uts: invalid UTS mode".into());
        }
        if let Some(u) = &self.userns
            && !valid_ns_mode(u, false)
        {
            return Err("--userns: invalid USER mode".into());
        }
        if let Some(c) = &self.cgroupns
            && !["", "host", "private"].contains(&c.as_str())
        {
            return Err("--cgroupns: invalid CGROUP mode".into());
        }
        let (restart_name, retries) = parse::restart_policy(&self.restart)?;
        let log_opts: HashMap<String, String> = self
            .log_opt
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        if self.log_driver.as_deref() == Some("none") && !self.log_opt.is_empty() {
            return Err("invalid logging opts for driver none".into());
        }
        let mut security_opts = Vec::new();
        let mut masked: Option<Vec<String>> = None;
        let mut readonly_paths: Option<Vec<String>> = None;
        for opt in &self.security_opt {
            let cut = opt
                .split_once('=')
                .or_else(|| (opt != "no-new-privileges").then(|| opt.split_once(':'))?);
            let ok = match cut {
                Some((_, v)) => !v.is_empty(),
                None => false,
            };
            if !ok && opt != "no-new-privileges" {
                return Err(format!("invalid --security-opt: {opt:?}"));
            }
            if opt == "systempaths=unconfined" {
                masked = Some(Vec::new());
                readonly_paths = Some(Vec::new());
                continue;
            }
            match cut {
                Some(("seccomp", v)) if v != "unconfined" && v != "builtin" => {
                    let data = std::fs::read(v).map_err(|e| {
                        format!(
                            "opening seccomp profile ({v}) failed: open {v}: {}",
                            parse::io_error_text(&e)
                        )
                    })?;
                    let json: serde_json::Value = serde_json::from_slice(&data).map_err(|e| {
                        format!("compacting json for seccomp profile ({v}) failed: {e}")
                    })?;
                    security_opts.push(format!("seccomp={json}"));
                }
                _ => security_opts.push(opt.clone()),
            }
        }
        let mut storage = HashMap::new();
        for o in &self.storage_opt {
            let Some((k, v)) = o.split_once('=') else {
                return Err("invalid storage option".into());
            };
            storage.insert(k.to_string(), v.to_string());
        }
        let have_health = self.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
            || self.health_interval.unwrap_or(0) != 0
            || self.health_timeout.unwrap_or(0) != 0
            || self.health_start_period.unwrap_or(0) != 0
            || self.health_retries.unwrap_or(0) != 0
            || self.health_start_interval.unwrap_or(0) != 0;
        let healthcheck = if self.no_healthcheck {
            if have_health {
                return Err("--no-healthcheck conflicts with --health-* options".into());
            }
            Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            })
        } else if have_health {
            for (v, name) in [
                (self.health_interval, "interval"),
                (self.health_timeout, "timeout"),
                (self.health_retries, "retries"),
                (self.health_start_period, "start-period"),
                (self.health_start_interval, "start-interval"),
            ] {
                if v.unwrap_or(0) < 0 {
                    return Err(format!("--health-{name} cannot be negative"));
                }
            }
            let nz = |v: Option<i64>| v.filter(|n| *n != 0);
            Some(HealthConfig {
                test: self
                    .health_cmd
                    .as_ref()
                    .filter(|c| !c.is_empty())
                    .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
                interval: nz(self.health_interval),
                timeout: nz(self.health_timeout),
                retries: nz(self.health_retries),
                start_period: nz(self.health_start_period),
                start_interval: nz(self.health_start_interval),
            })
        } else {
            None
        };
        if self.rm && !(restart_name.is_empty() || restart_name == "no") {
            return Err("conflicting options: cannot specify both --restart and --rm".into());
        }
        let (network_mode, endpoints) = self.networks()?;
        let mounts: Vec<_> = self.mount.iter().map(|m| m.mount.clone()).collect();
        let mount_types = self.mount.iter().map(|m| m.raw_type.clone()).collect();
        let host_config = HostConfig {
            binds: some_vec(binds),
            container_id_file: Some(self.cidfile.clone().unwrap_or_default()),
            oom_score_adj: Some(self.oom_score_adj.unwrap_or(0)),
            auto_remove: Some(self.rm),
            privileged: Some(self.privileged),
            port_bindings: Some(port_bindings),
            links: some_vec(self.link.clone()),
            publish_all_ports: Some(self.publish_all),
            dns: Some(self.dns.clone()),
            dns_search: Some(self.dns_search.clone()),
            dns_options: Some(self.dns_option.clone()),
            extra_hosts: some_vec(self.add_host.clone()),
            volumes_from: some_vec(self.volumes_from.clone()),
            ipc_mode: Some(self.ipc.clone().unwrap_or_default()),
            network_mode: Some(network_mode),
            pid_mode: Some(self.pid.clone().unwrap_or_default()),
            uts_mode: Some(self.uts.clone().unwrap_or_default()),
            userns_mode: Some(self.userns.clone().unwrap_or_default()),
            cgroupns_mode: match self.cgroupns.as_deref() {
                Some("host") => Some(bollard::models::HostConfigCgroupnsModeEnum::HOST),
                Some("private") => Some(bollard::models::HostConfigCgroupnsModeEnum::PRIVATE),
                _ => None,
            },
            cap_add: some_vec(self.cap_add.iter().map(|c| parse::capability(c)).collect()),
            cap_drop: some_vec(self.cap_drop.iter().map(|c| parse::capability(c)).collect()),
            group_add: some_vec(self.group_add.clone()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::EMPTY),
                maximum_retry_count: Some(retries),
            }),
            security_opt: some_vec(security_opts),
            storage_opt: (!storage.is_empty()).then_some(storage),
            readonly_rootfs: Some(self.read_only),
            log_config: Some(HostConfigLogConfig {
                typ: Some(self.log_driver.clone().unwrap_or_default()),
                config: Some(log_opts),
            }),
            volume_driver: Some(self.volume_driver.clone().unwrap_or_default()),
            isolation: self
                .isolation
                .as_deref()
                .filter(|i| *i != ISOLATION_VM)
                .and_then(|i| i.parse().ok())
                .filter(|i| *i != bollard::models::HostConfigIsolationEnum::EMPTY),
            shm_size: Some(self.shm_size.unwrap_or(0)),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            sysctls: (!self.sysctl.is_empty()).then(|| self.sysctl.iter().cloned().collect()),
            runtime: self.runtime.clone().or_else(|| {
                (self.isolation.as_deref() == Some(ISOLATION_VM)).then(|| "microvm".to_string())
            }),
            mounts: some_vec(mounts),
            masked_paths: masked,
            readonly_paths,
            init: self.init.then_some(true),
            cgroup_parent: Some(self.cgroup_parent.clone().unwrap_or_default()),
            memory: Some(self.memory.unwrap_or(0)),
            memory_reservation: Some(self.memory_reservation.unwrap_or(0)),
            memory_swap: Some(self.memory_swap.unwrap_or(0)),
            memory_swappiness: Some(swappiness),
            oom_kill_disable: Some(self.oom_kill_disable),
            nano_cpus: Some(self.cpus.unwrap_or(0)),
            cpu_shares: Some(self.cpu_shares.unwrap_or(0)),
            cpu_period: Some(self.cpu_period.unwrap_or(0)),
            cpu_quota: Some(self.cpu_quota.unwrap_or(0)),
            cpu_realtime_period: Some(self.cpu_rt_period.unwrap_or(0)),
            cpu_realtime_runtime: Some(self.cpu_rt_runtime.unwrap_or(0)),
            cpuset_cpus: Some(self.cpuset_cpus.clone().unwrap_or_default()),
            cpuset_mems: Some(self.cpuset_mems.clone().unwrap_or_default()),
            pids_limit: Some(self.pids_limit.unwrap_or(0)),
            blkio_weight: Some(self.blkio_weight.unwrap_or(0)),
            ulimits: Some(self.ulimit.clone()),
            devices: Some(devices),
            console_size: Some(vec![0, 0]),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            hostname: Some(self.hostname.clone().unwrap_or_default()),
            domainname: Some(self.domainname.clone().unwrap_or_default()),
            user: Some(self.user.clone().unwrap_or_default()),
            attach_stdin: Some(attach_stdin),
            attach_stdout: Some(attach_stdout),
            attach_stderr: Some(attach_stderr),
            exposed_ports: some_vec(exposed),
            tty: Some(self.tty),
            open_stdin: Some(self.interactive),
            stdin_once: Some(self.interactive && attach_stdin),
            env: some_vec(env),
            cmd: some_vec(args.to_vec()),
            healthcheck,
            image: Some(image.to_string()),
            volumes: Some(volumes),
            working_dir: Some(self.workdir.clone().unwrap_or_default()),
            entrypoint,
            labels: Some(labels),
            stop_signal: self.stop_signal.clone().filter(|s| !s.is_empty()),
            stop_timeout: self.stop_timeout,
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(endpoints),
            }),
            ..Default::default()
        };
        Ok(CreateRequest {
            body,
            restart_name,
            mount_types,
        })
    }

    /// `NetworkMode` and the endpoint settings (`default` when no `--network`).
    fn networks(&self) -> Result<(String, HashMap<String, EndpointSettings>), String> {
        let user_defined = |n: &str| {
            !matches!(n, "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
        };
        let mut endpoints = HashMap::new();
        let first = self.network.first().cloned();
        let target = first.clone().unwrap_or_else(|| "default".into());
        let mut ep = EndpointSettings::default();
        if !self.network_alias.is_empty() {
            if !user_defined(&target) {
                return Err(
                    "network-scoped aliases are only supported for user-defined networks".into(),
                );
            }
            ep.aliases = Some(self.network_alias.clone());
        }
        if user_defined(&target) && !self.link.is_empty() {
            ep.links = Some(self.link.clone());
        }
        if self.ip.is_some() || self.ip6.is_some() {
            ep.ipam_config = Some(bollard::models::EndpointIpamConfig {
                ipv4_address: self.ip.clone(),
                ipv6_address: self.ip6.clone(),
                ..Default::default()
            });
        }
        if let Some(mac) = &self.mac_address {
            ep.mac_address = Some(mac.clone());
        }
        let empty = ep == EndpointSettings::default();
        if first.is_none() || !empty || self.network.len() > 1 {
            endpoints.insert(target.clone(), ep);
        }
        for n in self.network.iter().skip(1) {
            if endpoints.contains_key(n) {
                return Err(format!("network {n:?} is specified multiple times"));
            }
            endpoints.insert(n.clone(), EndpointSettings::default());
        }
        Ok((target, endpoints))
    }
}

#[cfg(test)]
#[path = "opts_tests.rs"]
mod tests;
