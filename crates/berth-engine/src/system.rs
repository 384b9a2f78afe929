//! `/version`, `/info` and `/system/df`: what the daemon says about itself and the host.

use std::collections::BTreeMap;

use berth_api::types::{ComponentVersion, DiskUsage, PlatformName, Version};
use serde_json::{Value, json};

use crate::{Engine, Result};

pub const ENGINE_NAME: &str = "berth";
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Docker's architecture names (`GOARCH`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// `v1` (hybrid or legacy) or `v2` (unified), from the filesystem at /sys/fs/cgroup.
pub fn cgroup_version() -> &'static str {
    match rustix::fs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.f_type == 0x6367_7270 => "2",
        _ => "1",
    }
}

impl Engine {
    pub fn version(&self) -> Version {
        let mut details = BTreeMap::new();
        details.insert("ApiVersion".into(), berth_api::API_VERSION.into());
        details.insert("MinAPIVersion".into(), berth_api::MIN_API_VERSION.into());
        details.insert("Os".into(), "linux".into());
        details.insert("Arch".into(), go_arch().into());
        details.insert("KernelVersion".into(), kernel_release());
        Version {
            platform: PlatformName {
                name: format!("berth {ENGINE_VERSION}"),
            },
            components: vec![ComponentVersion {
                name: "Engine".into(),
                version: ENGINE_VERSION.into(),
                details,
            }],
            version: ENGINE_VERSION.into(),
            api_version: berth_api::API_VERSION.into(),
            min_api_version: berth_api::MIN_API_VERSION.into(),
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into(),
            go_version: "n/a (rust)".into(),
            os: "linux".into(),
            arch: go_arch().into(),
            kernel_version: kernel_release(),
            build_time: String::new(),
        }
    }

    /// `GET /info`, with the fields docker clients read.
    pub fn info(&self) -> Result<Value> {
        let images = self.images.store().images()?.len();
        let hostname = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let cgroup_version = cgroup_version();
        let insecure: Vec<String> = std::iter::once("127.0.0.0/8".to_string())
            .chain(
                self.config
                    .insecure_registries
                    .iter()
                    .filter(|r| r.contains('/'))
                    .cloned(),
            )
            .collect();
        let mut index_configs = serde_json::Map::new();
        index_configs.insert(
            "docker.io".into(),
            json!({"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}),
        );
        for r in self
            .config
            .insecure_registries
            .iter()
            .filter(|r| !r.contains('/'))
        {
            index_configs.insert(
                r.clone(),
                json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
        Ok(json!({
            "ID": machine_id(),
            "Containers": 0,
            "ContainersRunning": 0,
            "ContainersPaused": 0,
            "ContainersStopped": 0,
            "Images": images,
            "Driver": "overlay",
            "DriverStatus": [["Backing Filesystem", backing_fs(&self.config.data_root)], ["Layers", "shared per chain ID"]],
            "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": tracing::enabled!(tracing::Level::DEBUG),
            "NFd": open_fds(),
            "NGoroutines": 0,
            "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "NEventsListener": 0,
            "KernelVersion": kernel_release(),
            "OperatingSystem": os_pretty_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": [],
                "AllowNondistributableArtifactsHostnames": [],
                "InsecureRegistryCIDRs": insecure,
                "IndexConfigs": index_configs,
                "Mirrors": []
            },
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem_total(),
            "GenericResources": null,
            "DockerRootDir": self.config.data_root.display().to_string(),
            "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
            "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
            "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
            "Name": hostname,
            "Labels": self.config.labels,
            "ExperimentalBuild": false,
            "ServerVersion": ENGINE_VERSION,
            "Runtimes": {
                "runc": {"path": "berth-runtime"},
                "microvm": {"path": self.config.vm.vmm_binary.display().to_string()}
            },
            "DefaultRuntime": self.containers.runtimes().default,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "Warnings": null
        }))
    }

    /// `GET /system/df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        Ok(DiskUsage {
            layers_size: self.images.layers_size()? as i64,
            images: self.images.disk_usage()?,
            containers: Vec::new(),
            volumes: self
                .volumes
                .disk_usage()?
                .into_iter()
                .map(|v| serde_json::to_value(v).expect("volumes serialise"))
                .collect(),
            build_cache: Vec::new(),
        })
    }
}

fn machine_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn backing_fs(path: &std::path::Path) -> &'static str {
    match rustix::fs::statfs(path).map(|s| s.f_type) {
        Ok(0xEF53) => "extfs",
        Ok(0x5846_5342) => "xfs",
        Ok(0x9123_683E) => "btrfs",
        Ok(0x0102_1994) => "tmpfs",
        Ok(0x794C_7630) => "overlayfs",
        _ => "unknown",
    }
}
