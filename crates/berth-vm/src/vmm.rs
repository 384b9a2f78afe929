//! Virtual machine monitors: the [`Vmm`] trait, a QEMU `microvm` driver and a Firecracker
//! driver, plus [`GuestLink`], the host end of the control channel.
//!
//! The host listens on [`VmConfig::control_socket`] *before* spawning the VM:
//! - QEMU connects to it as a client chardev behind a virtio-serial port named
//!   [`protocol::PORT_NAME`];
//! - Firecracker forwards the guest's vsock connection to port [`protocol::VSOCK_PORT`] to
//!   `<control_socket>_<port>` ([`firecracker_vsock_path`]), so listen there instead.
//!
//! Then [`GuestLink::accept`] waits for the connection and the guest's `Hello`.

use std::ffi::OsString;
use std::fs;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};
use crate::protocol;
use crate::sandbox;

pub use crate::link::{GuestLink, RunOutcome};

/// How a disk image is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

/// A block device for the guest. The root disk is `/dev/vda`; extra disks follow (`vdb`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub format: DiskFormat,
    pub read_only: bool,
}

impl Disk {
    pub fn raw(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: DiskFormat::Raw,
            read_only: false,
        }
    }
    pub fn qcow2(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: DiskFormat::Qcow2,
            read_only: false,
        }
    }
}

/// A tap device on the host side of the guest's `eth0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapDevice {
    pub name: String,
    /// The guest's MAC address (`02:…`), or `None` to let the VMM choose.
    pub mac: Option<String>,
}

/// Everything a VMM needs to start one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// Uncompressed `vmlinux` (preferred) or bzImage (QEMU only).
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub rootfs: Disk,
    pub extra_disks: Vec<Disk>,
    pub vcpus: u32,
    pub memory_mb: u32,
    /// Appended to the kernel command line.
    pub cmdline_extra: Vec<String>,
    /// The unix socket the host listens on for the control channel.
    pub control_socket: PathBuf,
    /// Where the guest's serial console (kernel messages) goes.
    pub console_log: PathBuf,
    pub tap: Option<TapDevice>,
}

impl VmConfig {
    /// A config with the defaults measured to work here: 1 vCPU, 128 MB.
    pub fn new(
        kernel: impl Into<PathBuf>,
        initramfs: impl Into<PathBuf>,
        rootfs: Disk,
        control_socket: impl Into<PathBuf>,
        console_log: impl Into<PathBuf>,
    ) -> Self {
        Self {
            kernel: kernel.into(),
            initramfs: initramfs.into(),
            rootfs,
            extra_disks: Vec::new(),
            vcpus: 1,
            memory_mb: 128,
            cmdline_extra: Vec::new(),
            control_socket: control_socket.into(),
            console_log: console_log.into(),
            tap: None,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.vcpus == 0 {
            return Err(Error::InvalidConfig("vcpus must be at least 1".into()));
        }
        if self.memory_mb < 96 {
            return Err(Error::InvalidConfig(format!(
                "{} MB of memory is too little (the guest kernel needs 96 MB)",
                self.memory_mb
            )));
        }
        Ok(())
    }
}

/// Kernel command line parameters every berth guest gets (see MICROVM.md for why).
pub const BASE_CMDLINE: &[&str] = &[
    "console=ttyS0",
    "quiet",
    "panic=-1",
    "rdinit=/init",
    "cryptomgr.notests",
    "ipv6.disable=1",
    "8250.nr_uarts=1",
    "pci=off",
    "random.trust_cpu=on",
];

/// The kernel command line for `cfg`; `tsc_khz` adds `tsc_early_khz=… tsc=reliable`, which
/// keeps a loaded host from hanging the guest's TSC calibration.
pub fn kernel_cmdline(cfg: &VmConfig, tsc_khz: Option<u64>, extra: &[&str]) -> String {
    let mut parts: Vec<String> = BASE_CMDLINE.iter().map(|s| s.to_string()).collect();
    if let Some(khz) = tsc_khz {
        parts.push(format!("tsc_early_khz={khz}"));
        parts.push("tsc=reliable".into());
    }
    parts.extend(extra.iter().map(|s| s.to_string()));
    parts.extend(cfg.cmdline_extra.iter().cloned());
    parts.join(" ")
}

/// The host CPU's frequency in kHz, from the first `cpu MHz` line of `/proc/cpuinfo`.
pub fn host_tsc_khz(cpuinfo: &str) -> Option<u64> {
    let line = cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    (mhz > 0.0).then(|| (mhz * 1000.0).round() as u64)
}

/// A running VM: the VMM process. Dropping the handle kills the VM.
#[derive(Debug)]
pub struct VmHandle {
    child: Child,
    status: Option<ExitStatus>,
}

impl VmHandle {
    pub fn from_child(child: Child) -> Self {
        Self {
            child,
            status: None,
        }
    }

    /// The VMM's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the VMM (SIGKILL) and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.wait()?;
        }
        Ok(())
    }

    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait().map_err(Error::Link)?;
        }
        Ok(self.status)
    }

    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let s = self.child.wait().map_err(Error::Link)?;
        self.status = Some(s);
        Ok(s)
    }

    /// Waits at most `timeout`; `None` if the VMM is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for VmHandle {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A virtual machine monitor that can start a VM.
pub trait Vmm {
    /// A short name for logs ("qemu-microvm", "firecracker").
    fn name(&self) -> &'static str;
    /// Starts the VM; `work_dir` holds any files the VMM needs (configs, logs). With a
    /// `sandbox`, the VMM process is confined by it before it runs.
    fn spawn(
        &self,
        cfg: &VmConfig,
        work_dir: &Path,
        sandbox: Option<Arc<sandbox::Prepared>>,
    ) -> Result<VmHandle>;
}

/// Confines the command's process with `sandbox`, if any.
fn confine(cmd: &mut Command, sandbox: Option<Arc<sandbox::Prepared>>) {
    if let Some(sandbox) = sandbox {
        // SAFETY: `apply` makes only syscalls on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || sandbox.apply());
        }
    }
}

/// Hardware acceleration for QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation: works everywhere, ~1.7 s of CPU per boot.
    Tcg,
    Kvm,
}

impl Accel {
    /// KVM when it is really usable, else TCG. "Usable" means the CPU advertises VMX or SVM
    /// and `/dev/kvm` answers `KVM_GET_API_VERSION` and `KVM_CREATE_VM`: a paravirtual
    /// KVM (PVM) without VMX/SVM opens fine but cannot run a normal guest kernel.
    pub fn detect() -> Accel {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        if cpu_has_virtualization(&cpuinfo) && kvm_api_works(Path::new("/dev/kvm")) {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }
}

fn cpu_has_virtualization(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .take(1)
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

fn kvm_api_works(dev: &Path) -> bool {
    use std::os::fd::AsRawFd;
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
    let Ok(kvm) = fs::OpenOptions::new().read(true).write(true).open(dev) else {
        return false;
    };
    // SAFETY: both ioctls take no argument pointer; the fd is valid for the call.
    let version = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    if version != 12 {
        return false;
    }
    // SAFETY: as above; KVM_CREATE_VM returns a new fd that we close at once.
    let vm = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_CREATE_VM, 0) };
    if vm < 0 {
        return false;
    }
    // SAFETY: `vm` is a file descriptor we own and nothing else refers to.
    unsafe { libc::close(vm) };
    true
}

/// QEMU's option parser splits on commas: a literal comma in a value is doubled.
fn qemu_escape(p: &Path) -> String {
    p.to_string_lossy().replace(',', ",,")
}

/// QEMU `-M microvm` with virtio-mmio devices.
#[derive(Debug, Clone)]
pub struct QemuMicrovm {
    binary: PathBuf,
    accel: Accel,
    tsc_khz: Option<u64>,
}

impl QemuMicrovm {
    /// `binary` is usually `qemu-system-x86_64`; `accel` comes from [`Accel::detect`] or
    /// a flag; the TSC frequency is read from `/proc/cpuinfo`.
    pub fn new(binary: impl Into<PathBuf>, accel: Accel) -> Self {
        let tsc_khz = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| host_tsc_khz(&c));
        Self {
            binary: binary.into(),
            accel,
            tsc_khz,
        }
    }

    /// Overrides the TSC frequency passed to the guest (`None`: do not pass one).
    pub fn with_tsc_khz(mut self, khz: Option<u64>) -> Self {
        self.tsc_khz = khz;
        self
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// The full argument list for `cfg` (without the program name).
    pub fn args(&self, cfg: &VmConfig) -> Vec<OsString> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |s: &[&str]| a.extend(s.iter().map(|s| s.to_string()));
        match self.accel {
            Accel::Tcg => push(&["-accel", "tcg"]),
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        }
        // ACPI stays on: Debian kernels find virtio-mmio devices only through ACPI.
        push(&["-M", "microvm,x-option-roms=off,acpi=on"]);
        push(&["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"]);
        a.push("-smp".into());
        a.push(cfg.vcpus.to_string());
        a.push("-m".into());
        a.push(cfg.memory_mb.to_string());
        a.push("-serial".into());
        a.push(format!("file:{}", qemu_escape(&cfg.console_log)));
        a.push("-kernel".into());
        a.push(cfg.kernel.to_string_lossy().into_owned());
        a.push("-initrd".into());
        a.push(cfg.initramfs.to_string_lossy().into_owned());
        a.push("-append".into());
        a.push(kernel_cmdline(cfg, self.tsc_khz, &[]));
        for (i, d) in std::iter::once(&cfg.rootfs)
            .chain(&cfg.extra_disks)
            .enumerate()
        {
            let fmt = match d.format {
                DiskFormat::Raw => "raw",
                DiskFormat::Qcow2 => "qcow2",
            };
            let ro = if d.read_only { ",readonly=on" } else { "" };
            a.push("-drive".into());
            a.push(format!(
                "id=disk{i},file={},format={fmt},if=none{ro}",
                qemu_escape(&d.path)
            ));
            a.push("-device".into());
            a.push(format!("virtio-blk-device,drive=disk{i}"));
        }
        if let Some(tap) = &cfg.tap {
            a.push("-netdev".into());
            a.push(format!(
                "tap,id=n0,ifname={},script=no,downscript=no",
                tap.name
            ));
            a.push("-device".into());
            match &tap.mac {
                Some(mac) => a.push(format!("virtio-net-device,netdev=n0,mac={mac}")),
                None => a.push("virtio-net-device,netdev=n0".into()),
            }
        }
        a.push("-device".into());
        a.push("virtio-serial-device".into());
        a.push("-chardev".into());
        a.push(format!(
            "socket,id=ctl,path={}",
            qemu_escape(&cfg.control_socket)
        ));
        a.push("-device".into());
        a.push(format!(
            "virtserialport,chardev=ctl,name={}",
            protocol::PORT_NAME
        ));
        a.into_iter().map(OsString::from).collect()
    }
}

impl Vmm for QemuMicrovm {
    fn name(&self) -> &'static str {
        "qemu-microvm"
    }

    fn spawn(
        &self,
        cfg: &VmConfig,
        work_dir: &Path,
        sandbox: Option<Arc<sandbox::Prepared>>,
    ) -> Result<VmHandle> {
        cfg.validate()?;
        fs::create_dir_all(work_dir).at("create dir", work_dir)?;
        // QEMU's own errors (a bad option, a missing file) go here.
        let log_path = work_dir.join("qemu.log");
        let log = fs::File::create(&log_path).at("create", &log_path)?;
        let err = log.try_clone().at("dup", &log_path)?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(self.args(cfg))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        confine(&mut cmd, sandbox);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            program: self.binary.to_string_lossy().into_owned(),
            source,
        })?;
        Ok(VmHandle::from_child(child))
    }
}

/// The unix socket Firecracker connects to when the guest opens vsock `port` on the host.
pub fn firecracker_vsock_path(uds: &Path, port: u32) -> PathBuf {
    let mut s = uds.as_os_str().to_owned();
    s.push(format!("_{port}"));
    PathBuf::from(s)
}

/// Firecracker, run without its API from a config file. The control channel is vsock.
#[derive(Debug, Clone)]
pub struct Firecracker {
    binary: PathBuf,
}

impl Firecracker {
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
        }
    }

    /// The `--config-file` document for `cfg`.
    pub fn config_json(&self, cfg: &VmConfig) -> Result<serde_json::Value> {
        cfg.validate()?;
        let mut drives = Vec::new();
        for (i, d) in std::iter::once(&cfg.rootfs)
            .chain(&cfg.extra_disks)
            .enumerate()
        {
            if d.format != DiskFormat::Raw {
                return Err(Error::InvalidConfig(format!(
                    "firecracker takes raw disks only, not {} (use a reflink copy or a \
                     device-mapper snapshot instead of a qcow2 overlay)",
                    d.path.display()
                )));
            }
            drives.push(serde_json::json!({
                "drive_id": if i == 0 { "root".to_string() } else { format!("disk{i}") },
                "path_on_host": d.path,
                // berth-init mounts /dev/vda itself; `true` would add root= to the cmdline.
                "is_root_device": false,
                "is_read_only": d.read_only,
            }));
        }
        let mut doc = serde_json::json!({
            "boot-source": {
                "kernel_image_path": cfg.kernel,
                "initrd_path": cfg.initramfs,
                "boot_args": kernel_cmdline(cfg, None, &["reboot=k", &format!("{}=vsock", protocol::LINK_PARAM)]),
            },
            "drives": drives,
            "machine-config": {
                "vcpu_count": cfg.vcpus,
                "mem_size_mib": cfg.memory_mb,
                "smt": false,
            },
            "vsock": {
                "guest_cid": 3,
                "uds_path": cfg.control_socket,
            },
        });
        if let Some(tap) = &cfg.tap {
            let mut iface = serde_json::json!({ "iface_id": "eth0", "host_dev_name": tap.name });
            if let Some(mac) = &tap.mac {
                iface["guest_mac"] = serde_json::json!(mac);
            }
            doc["network-interfaces"] = serde_json::json!([iface]);
        }
        Ok(doc)
    }
}

impl Vmm for Firecracker {
    fn name(&self) -> &'static str {
        "firecracker"
    }

    fn spawn(
        &self,
        cfg: &VmConfig,
        work_dir: &Path,
        sandbox: Option<Arc<sandbox::Prepared>>,
    ) -> Result<VmHandle> {
        if !cfg.kernel_is_elf() {
            return Err(Error::InvalidConfig(
                "firecracker needs an uncompressed vmlinux".into(),
            ));
        }
        let doc = self.config_json(cfg)?;
        fs::create_dir_all(work_dir).at("create dir", work_dir)?;
        let config = work_dir.join("firecracker.json");
        let text = serde_json::to_vec_pretty(&doc).expect("json value serialises");
        fs::write(&config, text).at("write", &config)?;
        // Firecracker binds the vsock socket itself: a stale one makes it fail.
        let _ = fs::remove_file(&cfg.control_socket);
        // Its serial console is its stdout.
        let console = fs::File::create(&cfg.console_log).at("create", &cfg.console_log)?;
        let log_path = work_dir.join("firecracker.log");
        let log = fs::File::create(&log_path).at("create", &log_path)?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--no-api")
            .arg("--config-file")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(log);
        confine(&mut cmd, sandbox);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            program: self.binary.to_string_lossy().into_owned(),
            source,
        })?;
        Ok(VmHandle::from_child(child))
    }
}

impl VmConfig {
    fn kernel_is_elf(&self) -> bool {
        use std::io::Read;
        let mut magic = [0u8; 4];
        fs::File::open(&self.kernel)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
            && &magic == b"\x7fELF"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VmConfig {
        let mut c = VmConfig::new(
            "/k/vmlinux",
            "/k/initramfs.cpio",
            Disk::qcow2("/vm/a,b/overlay.qcow2"),
            "/vm/ctl.sock",
            "/vm/console.log",
        );
        c.extra_disks.push(Disk {
            path: "/vm/data.raw".into(),
            format: DiskFormat::Raw,
            read_only: true,
        });
        c.cmdline_extra.push("loglevel=3".into());
        c.tap = Some(TapDevice {
            name: "tap0".into(),
            mac: Some("02:42:ac:11:00:02".into()),
        });
        c
    }

    fn args(q: &QemuMicrovm, c: &VmConfig) -> Vec<String> {
        q.args(c)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    fn after<'a>(a: &'a [String], flag: &str) -> Vec<&'a str> {
        a.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn qemu_command_line() {
        let q = QemuMicrovm::new("qemu-system-x86_64", Accel::Tcg).with_tsc_khz(Some(2_445_432));
        let a = args(&q, &cfg());
        for flag in ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"] {
            assert!(a.iter().any(|x| x == flag), "{flag} missing: {a:?}");
        }
        assert_eq!(after(&a, "-accel"), ["tcg"]);
        assert_eq!(after(&a, "-M"), ["microvm,x-option-roms=off,acpi=on"]);
        assert_eq!(after(&a, "-m"), ["128"]);
        assert_eq!(after(&a, "-smp"), ["1"]);
        assert_eq!(after(&a, "-kernel"), ["/k/vmlinux"]);
        assert_eq!(after(&a, "-serial"), ["file:/vm/console.log"]);
        let append = after(&a, "-append")[0];
        for p in [
            "console=ttyS0",
            "panic=-1",
            "tsc_early_khz=2445432",
            "tsc=reliable",
            "pci=off",
            "loglevel=3",
        ] {
            assert!(
                append.split(' ').any(|x| x == p),
                "{p} missing from {append}"
            );
        }
        assert!(append.ends_with("loglevel=3"));
        assert_eq!(
            after(&a, "-drive"),
            [
                "id=disk0,file=/vm/a,,b/overlay.qcow2,format=qcow2,if=none",
                "id=disk1,file=/vm/data.raw,format=raw,if=none,readonly=on"
            ]
        );
        assert_eq!(
            after(&a, "-device"),
            [
                "virtio-blk-device,drive=disk0",
                "virtio-blk-device,drive=disk1",
                "virtio-net-device,netdev=n0,mac=02:42:ac:11:00:02",
                "virtio-serial-device",
                "virtserialport,chardev=ctl,name=berth.ctl"
            ]
        );
        assert_eq!(
            after(&a, "-netdev"),
            ["tap,id=n0,ifname=tap0,script=no,downscript=no"]
        );
        assert_eq!(after(&a, "-chardev"), ["socket,id=ctl,path=/vm/ctl.sock"]);

        let kvm = QemuMicrovm::new("q", Accel::Kvm).with_tsc_khz(None);
        let a = args(&kvm, &cfg());
        assert_eq!(after(&a, "-accel"), ["kvm"]);
        assert_eq!(after(&a, "-cpu"), ["host"]);
        assert!(!after(&a, "-append")[0].contains("tsc_early_khz"));
    }

    #[test]
    fn cpuinfo_and_kvm_detection() {
        let cpuinfo = "processor\t: 0\ncpu MHz\t\t: 2445.432\nflags\t\t: fpu vme hypervisor\n";
        assert_eq!(host_tsc_khz(cpuinfo), Some(2_445_432));
        assert_eq!(host_tsc_khz("nothing"), None);
        assert!(!cpu_has_virtualization(cpuinfo));
        assert!(cpu_has_virtualization("flags\t: fpu vmx sse\n"));
        assert!(!kvm_api_works(Path::new("/nonexistent/kvm")));
        // Whatever this host has, detection must not panic.
        let _ = Accel::detect();
    }

    #[test]
    fn firecracker_config() {
        let fc = Firecracker::new("firecracker");
        // qcow2 is refused.
        assert!(matches!(
            fc.config_json(&cfg()),
            Err(Error::InvalidConfig(_))
        ));
        let mut c = cfg();
        c.rootfs = Disk::raw("/vm/root.ext4");
        c.vcpus = 2;
        c.memory_mb = 256;
        let j = fc.config_json(&c).unwrap();
        assert_eq!(j["boot-source"]["kernel_image_path"], "/k/vmlinux");
        assert_eq!(j["boot-source"]["initrd_path"], "/k/initramfs.cpio");
        let args = j["boot-source"]["boot_args"].as_str().unwrap();
        assert!(
            args.contains("reboot=k") && args.contains("berth.link=vsock"),
            "{args}"
        );
        assert!(!args.contains("tsc_early_khz"));
        assert_eq!(j["drives"][0]["drive_id"], "root");
        assert_eq!(j["drives"][0]["path_on_host"], "/vm/root.ext4");
        assert_eq!(j["drives"][0]["is_root_device"], false);
        assert_eq!(j["drives"][1]["is_read_only"], true);
        assert_eq!(j["machine-config"]["vcpu_count"], 2);
        assert_eq!(j["machine-config"]["mem_size_mib"], 256);
        assert_eq!(j["vsock"]["guest_cid"], 3);
        assert_eq!(j["vsock"]["uds_path"], "/vm/ctl.sock");
        assert_eq!(j["network-interfaces"][0]["host_dev_name"], "tap0");
        assert_eq!(j["network-interfaces"][0]["guest_mac"], "02:42:ac:11:00:02");
        assert_eq!(
            firecracker_vsock_path(Path::new("/vm/ctl.sock"), protocol::VSOCK_PORT),
            Path::new("/vm/ctl.sock_1024")
        );
        c.memory_mb = 64;
        assert!(fc.config_json(&c).is_err());
    }
}
