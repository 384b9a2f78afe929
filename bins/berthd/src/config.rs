//! Daemon settings: command-line flags like dockerd's, merged over a daemon.json.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;

pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    version,
    about = "The berth daemon: serves the Docker Engine API"
)]
pub struct Flags {
    /// Daemon socket(s) to listen on: unix:///path or tcp://127.0.0.1:PORT (repeatable)
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Root directory of persistent state
    #[arg(long, env = "BERTH_ROOT")]
    pub data_root: Option<PathBuf>,
    /// Root directory for execution state files (the default socket and pidfile live here)
    #[arg(long, env = "BERTH_EXEC_ROOT")]
    pub exec_root: Option<PathBuf>,
    /// Daemon configuration file (dockerd's daemon.json keys that apply)
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// Registry reached over plain HTTP (host[:port] or CIDR; repeatable)
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Logging level: debug, info, warn, error, fatal
    #[arg(short = 'l', long)]
    pub log_level: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Path to use for the daemon PID file [default: EXEC_ROOT/berthd.pid]
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    /// Set key=value labels on the daemon (repeatable)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// The runtime containers get unless they ask: runc or microvm
    #[arg(long)]
    pub default_runtime: Option<String>,
    /// Micro-VM guest kernel (bzImage or vmlinux) [default: /boot/vmlinuz-$(uname -r)]
    #[arg(long)]
    pub vm_kernel: Option<PathBuf>,
    /// That kernel's modules directory, lib/modules/VERSION [default: /lib/modules/$(uname -r)]
    #[arg(long)]
    pub vm_modules: Option<PathBuf>,
    /// The static berth-init for micro-VM guests [default: beside berthd, or $BERTH_INIT]
    #[arg(long)]
    pub vm_init: Option<PathBuf>,
    /// QEMU for micro-VMs [default: qemu-system-x86_64]
    #[arg(long)]
    pub vm_qemu: Option<PathBuf>,
    /// Firecracker for micro-VMs, used instead of QEMU when KVM works
    #[arg(long)]
    pub vm_firecracker: Option<PathBuf>,
    /// QEMU's acceleration for micro-VMs: auto, kvm or tcg
    #[arg(long)]
    pub vm_accel: Option<String>,
    /// Seconds a micro-VM may take to boot [default: 30]
    #[arg(long)]
    pub vm_boot_timeout: Option<u64>,
}

/// The keys of dockerd's daemon.json that berthd honours. Unknown keys are refused, as dockerd does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    hosts: Option<Vec<String>>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    insecure_registries: Option<Vec<String>>,
    log_level: Option<String>,
    debug: Option<bool>,
    pidfile: Option<PathBuf>,
    labels: Option<Vec<String>>,
    default_runtime: Option<String>,
    vm_kernel: Option<PathBuf>,
    vm_modules: Option<PathBuf>,
    vm_init: Option<PathBuf>,
    vm_qemu: Option<PathBuf>,
    vm_firecracker: Option<PathBuf>,
    vm_accel: Option<String>,
    vm_boot_timeout: Option<u64>,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Settings {
    pub hosts: Vec<String>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub insecure_registries: Vec<String>,
    pub log_level: String,
    pub pidfile: Option<PathBuf>,
    pub labels: Vec<String>,
    pub default_runtime: String,
    pub vm: VmFlags,
}

/// The micro-VM runtime's settings as given.
#[derive(Debug, Clone, Default)]
pub struct VmFlags {
    pub kernel: Option<PathBuf>,
    pub modules: Option<PathBuf>,
    pub init: Option<PathBuf>,
    pub qemu: Option<PathBuf>,
    pub firecracker: Option<PathBuf>,
    /// `auto` (or none), `kvm` or `tcg`.
    pub accel: Option<String>,
    pub boot_timeout: Option<u64>,
}

impl Settings {
    pub fn from_flags(flags: Flags) -> anyhow::Result<Settings> {
        let file = match &flags.config_file {
            Some(p) => read_file_config(p)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file_config(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        if !flags.hosts.is_empty() && file.hosts.is_some() {
            bail!(
                "the following directives are specified both as a flag and in the configuration file: hosts"
            );
        }
        let exec_root = flags
            .exec_root
            .or(file.exec_root)
            .unwrap_or_else(|| DEFAULT_EXEC_ROOT.into());
        let mut hosts = if flags.hosts.is_empty() {
            file.hosts.unwrap_or_default()
        } else {
            flags.hosts
        };
        if hosts.is_empty() {
            hosts.push(format!("unix://{}", exec_root.join("berth.sock").display()));
        }
        let mut insecure = file.insecure_registries.unwrap_or_default();
        insecure.extend(flags.insecure_registries);
        let log_level = if flags.debug || file.debug == Some(true) {
            "debug".to_string()
        } else {
            flags
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into())
        };
        let mut labels = file.labels.unwrap_or_default();
        labels.extend(flags.labels);
        let pidfile = flags
            .pidfile
            .or(file.pidfile)
            .unwrap_or_else(|| exec_root.join("berthd.pid"));
        let default_runtime = flags
            .default_runtime
            .or(file.default_runtime)
            .unwrap_or_else(|| "runc".into());
        if !matches!(default_runtime.as_str(), "runc" | "microvm") {
            bail!("unknown default runtime {default_runtime:?}: use runc or microvm");
        }
        let accel = flags.vm_accel.or(file.vm_accel);
        if let Some(a) = accel.as_deref()
            && !matches!(a, "auto" | "kvm" | "tcg")
        {
            bail!("invalid vm-accel {a:?}: use auto, kvm or tcg");
        }
        let vm = VmFlags {
            kernel: flags.vm_kernel.or(file.vm_kernel),
            modules: flags.vm_modules.or(file.vm_modules),
            init: flags.vm_init.or(file.vm_init),
            qemu: flags.vm_qemu.or(file.vm_qemu),
            firecracker: flags.vm_firecracker.or(file.vm_firecracker),
            accel,
            boot_timeout: flags.vm_boot_timeout.or(file.vm_boot_timeout),
        };
        Ok(Settings {
            hosts,
            data_root: flags
                .data_root
                .or(file.data_root)
                .unwrap_or_else(|| DEFAULT_DATA_ROOT.into()),
            exec_root,
            insecure_registries: insecure,
            log_level,
            pidfile: Some(pidfile),
            labels,
            default_runtime,
            vm,
        })
    }
}

fn read_file_config(p: &Path) -> anyhow::Result<FileConfig> {
    let raw = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    if raw.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_json::from_str(&raw)
        .with_context(|| format!("unable to configure the daemon with file {}", p.display()))
}

/// A listen address.
#[derive(Debug, Clone, PartialEq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(String),
}

pub fn parse_host(h: &str) -> anyhow::Result<Listen> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.is_empty() {
            bail!("invalid host {h:?}: empty socket path");
        }
        Ok(Listen::Unix(p.into()))
    } else if let Some(a) = h.strip_prefix("tcp://") {
        let a = a.trim_end_matches('/');
        if a.is_empty() {
            bail!("invalid host {h:?}");
        }
        Ok(Listen::Tcp(if a.contains(':') {
            a.to_string()
        } else {
            format!("{a}:2375")
        }))
    } else if h.starts_with('/') {
        Ok(Listen::Unix(h.into()))
    } else {
        bail!("invalid host {h:?}: use unix:///path or tcp://host:port")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::parse_from(std::iter::once("berthd").chain(args.iter().copied()))
    }

    #[test]
    fn hosts_parse() {
        assert_eq!(
            parse_host("unix:///tmp/x.sock").unwrap(),
            Listen::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2375").unwrap(),
            Listen::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1").unwrap(),
            Listen::Tcp("127.0.0.1:2375".into())
        );
        assert!(parse_host("http://x").is_err());
    }

    #[test]
    fn file_and_flags_merge() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("daemon.json");
        std::fs::write(
            &cfg,
            r#"{"data-root":"/d","insecure-registries":["r:5000"],"debug":true}"#,
        )
        .unwrap();
        let s = Settings::from_flags(flags(&[
            "--config-file",
            cfg.to_str().unwrap(),
            "--insecure-registry",
            "x:1",
            "--exec-root",
            "/e",
        ]))
        .unwrap();
        assert_eq!(s.data_root, PathBuf::from("/d"));
        assert_eq!(
            s.insecure_registries,
            vec!["r:5000".to_string(), "x:1".to_string()]
        );
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.hosts, vec!["unix:///e/berth.sock".to_string()]);
        std::fs::write(&cfg, r#"{"bogus":1}"#).unwrap();
        assert!(Settings::from_flags(flags(&["--config-file", cfg.to_str().unwrap()])).is_err());
        std::fs::write(&cfg, r#"{"hosts":["unix:///a"]}"#).unwrap();
        assert!(
            Settings::from_flags(flags(&[
                "--config-file",
                cfg.to_str().unwrap(),
                "-H",
                "unix:///b"
            ]))
            .is_err()
        );
    }

    #[test]
    fn runtime_and_vm_settings_from_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("daemon.json");
        std::fs::write(
            &cfg,
            r#"{"default-runtime":"microvm","vm-kernel":"/k","vm-modules":"/m",
                "vm-accel":"tcg","vm-boot-timeout":9}"#,
        )
        .unwrap();
        let path = cfg.to_str().unwrap();
        let s =
            Settings::from_flags(flags(&["--config-file", path, "--vm-kernel", "/k2"])).unwrap();
        assert_eq!(s.default_runtime, "microvm");
        assert_eq!(s.vm.kernel, Some(PathBuf::from("/k2")));
        assert_eq!(s.vm.modules, Some(PathBuf::from("/m")));
        assert_eq!(
            (s.vm.accel.as_deref(), s.vm.boot_timeout),
            (Some("tcg"), Some(9))
        );
        let s = Settings::from_flags(flags(&["--config-file", "/dev/null"])).unwrap();
        assert_eq!(s.default_runtime, "runc");
        for bad in [&["--default-runtime", "crun"][..], &["--vm-accel", "hvf"]] {
            let mut args = vec!["--config-file", "/dev/null"];
            args.extend_from_slice(bad);
            assert!(Settings::from_flags(flags(&args)).is_err(), "{bad:?}");
        }
    }
}
