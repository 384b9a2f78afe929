//! What shapes a container's spec: the subset of Docker's `Config`/`HostConfig` that the
//! daemon turns into an OCI spec, and the facts about the host that the pure generator
//! cannot look up itself (kernel version, devices, paths).

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_image::config::ImageConfig;
use oci_spec::runtime::LinuxNamespaceType;

/// Docker's default size of `/dev/shm` (64 MiB), used when `shm_size` is 0.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// The per-container settings that change the spec, as Docker's API carries them (after
/// the CLI has parsed its flags). Empty strings and zeros mean "not set", as in Docker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostConfig {
    /// `--privileged`: every capability, every host device, no seccomp, no masked paths.
    pub privileged: bool,
    /// `--cap-add`, with or without the `CAP_` prefix, any case; `ALL` is allowed.
    pub cap_add: Vec<String>,
    /// `--cap-drop`, same forms as `cap_add`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`: `no-new-privileges[=bool]`, `seccomp=unconfined|builtin|<profile JSON>`,
    /// `writable-cgroups[=bool]`; `apparmor=…` and `label=…` are accepted and ignored.
    pub security_opt: Vec<String>,
    /// `--read-only`.
    pub read_only_rootfs: bool,
    /// `--tmpfs DEST[:OPTIONS]`: destination → comma-separated tmpfs options.
    pub tmpfs: BTreeMap<String, String>,
    /// `--device HOST[:CONTAINER[:PERMS]]`.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule 'c 1:3 rwm'`.
    pub device_cgroup_rules: Vec<String>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--sysctl`.
    pub sysctls: BTreeMap<String, String>,
    /// `--pid`: `""` (private) or `host`; `container:<id>` needs a namespace path.
    pub pid_mode: String,
    /// `--ipc`: `""`, `private`, `shareable`, `none` or `host`; `container:<id>` needs a path.
    pub ipc_mode: String,
    /// `--uts`: `""` or `host`.
    pub uts_mode: String,
    /// `--network`: `none`, `host`, `bridge`, `default`, a network name, or `container:<id>`.
    pub network_mode: String,
    /// `--cgroupns`: `""` (the host's default), `private` or `host`.
    pub cgroupns_mode: String,
    /// The container's hostname (the daemon fills in the short ID when the user gave none).
    pub hostname: String,
    /// `--domainname`.
    pub domainname: String,
    /// `-u`: `name`, `uid`, `name:group`, `uid:gid`; empty means the image's `User`.
    pub user: String,
    /// `--group-add`: group names or numeric IDs.
    pub group_add: Vec<String>,
    /// `--init`.
    pub init: bool,
    /// `--shm-size` in bytes; 0 means 64 MiB.
    pub shm_size: i64,
    /// `-e`: `KEY=VALUE`, or `KEY` alone to unset one of the defaults.
    pub env: Vec<String>,
    /// `-w`; empty means the image's `WorkingDir`, then `/`.
    pub working_dir: String,
    /// `--entrypoint`: `None` keeps the image's; `Some([""])` resets it (and the image's
    /// `Cmd`), as `--entrypoint ""` does.
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name; empty means the image's `Cmd` (unless the
    /// entrypoint was overridden).
    pub cmd: Vec<String>,
    /// `-t`.
    pub tty: bool,
    /// The console size sent with `-t`: (height, width).
    pub console_size: Option<(u64, u64)>,
    /// `-m`, bytes.
    pub memory: i64,
    /// `--memory-swap`, bytes of memory plus swap; `-1` is unlimited; 0 means twice `memory`.
    pub memory_swap: i64,
    /// `--memory-reservation`, bytes.
    pub memory_reservation: i64,
    /// `--memory-swappiness`, 0–100.
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: Option<bool>,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `--cpus`, in billionths of a CPU.
    pub nano_cpus: i64,
    /// `--cpu-period`, microseconds.
    pub cpu_period: i64,
    /// `--cpu-quota`, microseconds.
    pub cpu_quota: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--pids-limit`; 0 or negative means unlimited.
    pub pids_limit: Option<i64>,
    /// `--blkio-weight`, 10–1000; 0 means unset.
    pub blkio_weight: u16,
    /// `--oom-score-adj`, -1000–1000.
    pub oom_score_adj: i32,
    /// The paths masked in the container; `None` means Docker's defaults (none when
    /// privileged), `Some([])` none at all (`--security-opt systempaths=unconfined`).
    pub masked_paths: Option<Vec<String>>,
    /// The paths made read-only; same rules as `masked_paths`.
    pub readonly_paths: Option<Vec<String>>,
}

/// One `--device` mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceMapping {
    pub path_on_host: String,
    /// Empty means the same path as on the host.
    pub path_in_container: String,
    /// Any of `r`, `w`, `m`; empty means `rwm`.
    pub cgroup_permissions: String,
}

/// One `--ulimit name=soft[:hard]`; `-1` is unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A device node on the host, as the caller found it by `stat`ing `/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    pub path: PathBuf,
    pub kind: DeviceKind,
    pub major: i64,
    pub minor: i64,
    /// Permission bits of the node (e.g. `0o666`).
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The kind of a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
}

/// The per-container files bind-mounted over the image's `/etc` files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
}

/// A Linux kernel version, as far as seccomp profiles compare them (`major.minor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Parses `4.8`, `6.1.0-13-amd64` and the like.
    pub fn parse(release: &str) -> Option<KernelVersion> {
        let mut parts = release.trim().splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor_part = parts.next()?;
        let digits: String = minor_part
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let minor = digits.parse().ok()?;
        Some(KernelVersion { major, minor })
    }
}

/// What the generator needs to know about the host; the caller detects it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// The native architecture in libseccomp's naming: `amd64`, `arm64`, `x86`, `arm`,
    /// `ppc64le`, `s390x`, `riscv64`, … It selects the seccomp `archMap` entry and the
    /// arch-conditional rules.
    pub arch: String,
    /// The running kernel; `None` (unknown) makes `minKernel` rules fail closed.
    pub kernel: Option<KernelVersion>,
    /// Whether the host uses the unified cgroup hierarchy (the default cgroupns mode
    /// becomes `private` there, as in Docker).
    pub cgroup_v2: bool,
    /// The highest capability number the kernel knows (40 is `CAP_CHECKPOINT_RESTORE`).
    pub last_cap: u32,
    /// The number of CPUs, to bound `--cpus` as Docker does; `None` skips the check.
    pub num_cpus: Option<u32>,
}

impl Default for HostFacts {
    fn default() -> Self {
        HostFacts {
            arch: native_arch().to_string(),
            kernel: None,
            cgroup_v2: true,
            last_cap: 40,
            num_cpus: None,
        }
    }
}

/// The architecture this crate was built for, in libseccomp's naming.
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        other => other,
    }
}

/// Everything [`crate::generate`] reads. Build it with [`SpecInputs::new`] and set the
/// fields that apply.
#[derive(Debug, Clone)]
pub struct SpecInputs<'a> {
    pub image: &'a ImageConfig,
    pub host: &'a HostConfig,
    /// The container's root filesystem (the snapshot's mount point).
    pub rootfs: PathBuf,
    pub etc_files: EtcFiles,
    /// The image's `/etc/passwd`, `None` when the file does not exist.
    pub passwd: Option<&'a str>,
    /// The image's `/etc/group`, `None` when the file does not exist.
    pub group: Option<&'a str>,
    /// The host's `docker-init` (tini) binary, bind-mounted for `--init`.
    pub init_path: Option<PathBuf>,
    /// The host's device nodes: all of them are given to privileged containers, and
    /// `--device` paths are looked up here.
    pub host_devices: &'a [HostDevice],
    /// `linux.cgroupsPath`, chosen by the caller (cgroup driver and parent).
    pub cgroups_path: Option<PathBuf>,
    /// Namespaces to join instead of creating, e.g. a network namespace prepared by the
    /// network driver, or another container's for `container:<id>` modes.
    pub join_namespaces: Vec<(LinuxNamespaceType, PathBuf)>,
    pub facts: HostFacts,
}

impl<'a> SpecInputs<'a> {
    pub fn new(image: &'a ImageConfig, host: &'a HostConfig, rootfs: impl Into<PathBuf>) -> Self {
        SpecInputs {
            image,
            host,
            rootfs: rootfs.into(),
            etc_files: EtcFiles::default(),
            passwd: None,
            group: None,
            init_path: None,
            host_devices: &[],
            cgroups_path: None,
            join_namespaces: Vec::new(),
            facts: HostFacts::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse_like_uname() {
        let v = |major, minor| Some(KernelVersion { major, minor });
        assert_eq!(KernelVersion::parse("4.8"), v(4, 8));
        assert_eq!(KernelVersion::parse("6.1.0-13-amd64"), v(6, 1));
        assert_eq!(KernelVersion::parse("5.15-rc1"), v(5, 15));
        assert_eq!(KernelVersion::parse("5"), None);
        assert_eq!(KernelVersion::parse("x.y"), None);
        assert!(v(4, 8) < v(4, 10) && v(4, 10) < v(5, 0));
    }
}
