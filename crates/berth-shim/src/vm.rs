//! What the daemon tells a shim about a micro-VM container (`vm.json` in the state
//! directory, written before the shim starts with `--vm`). The shim turns it into the
//! VMM's configuration and the guest's `Config`; see the `berth-vm` crate.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which virtual machine monitor runs the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmmKind {
    /// QEMU `-M microvm` (KVM when it works, else TCG).
    Qemu,
    /// Firecracker (needs KVM).
    Firecracker,
}

/// QEMU's acceleration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmAccel {
    Kvm,
    Tcg,
}

/// A disk of the VM beyond its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmDisk {
    /// An ext4 image on the host (raw).
    pub path: PathBuf,
    /// Where the guest mounts it.
    pub guest_path: String,
    pub read_only: bool,
}

/// The container's process in the guest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// Docker's `--user`, resolved in the guest from the image's /etc/passwd and /etc/group.
    pub user: String,
    pub tty: bool,
    /// The client's terminal size, applied before the process runs.
    pub console_size: Option<(u16, u16)>,
}

/// One micro-VM container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    pub vmm: VmmKind,
    /// The VMM's binary (`qemu-system-x86_64`, `firecracker`).
    pub vmm_binary: PathBuf,
    /// QEMU only; `None`: detect (KVM when it really works).
    pub accel: Option<VmAccel>,
    /// Uncompressed `vmlinux`.
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The container's root disk: a qcow2 overlay (QEMU) or a raw copy (Firecracker) of
    /// the image's cached ext4 image.
    pub root_disk: PathBuf,
    pub root_is_qcow2: bool,
    /// The overlay's backing file (the cached image), which the VMM opens too.
    pub root_backing: Option<PathBuf>,
    pub disks: Vec<VmDisk>,
    pub vcpus: u32,
    pub memory_mb: u32,
    /// How long the guest may take to say hello.
    pub boot_timeout_secs: u64,
    /// `linux.cgroupsPath`-like: the cgroup the VMM runs in (`/berth/<id>`).
    pub cgroup: String,
    /// Directories the VMM must not see (the daemon's data and state roots); what this VM
    /// needs in them is bound back.
    pub sandbox_hide: Vec<PathBuf>,
    /// Keep the container's stdin open for attach.
    pub open_stdin: bool,
    /// berth-init logs its steps, with the guest's uptime, on the console.
    #[serde(default)]
    pub guest_debug: bool,
    pub process: VmProcess,
    pub hostname: String,
    pub hosts: Option<String>,
    pub resolv_conf: Option<String>,
    /// `(path, options)` of each tmpfs the guest mounts.
    pub tmpfs: Vec<(String, String)>,
}

impl VmSpec {
    /// The file in a state directory.
    pub const FILE: &'static str = "vm.json";
}
