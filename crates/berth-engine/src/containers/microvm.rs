//! The `microvm` runtime: the same image run as a micro-VM with berth's own init.
//!
//! At start the daemon turns the container into a `vm.json` for `berth-shim --vm`:
//! - the guest kernel (unpacked to an ELF `vmlinux`) and an initramfs holding the static
//!   `berth-init` and the virtio modules, both cached under `<data-root>/vm/`;
//! - the image's layers merged into an ext4 image once per image (keyed by its top chain
//!   ID, `<data-root>/vm/rootfs/`), and per container a copy-on-write layer over it (a
//!   qcow2 overlay for QEMU, a sparse or reflinked copy for Firecracker) kept in the
//!   container's directory, so restarts keep the container's writes and the base is
//!   never written;
//! - read-only bind mounts and volumes as ext4 snapshots on extra disks, `--tmpfs` in the
//!   guest, the container's hostname, `/etc/hosts` and `/etc/resolv.conf`;
//! - `--cpus` as vCPUs and `--memory` as the guest's RAM.
//!
//! Everything else the container does (attach, logs, wait, stop, kill, exec, restart
//! policies, events) goes through the shim as for any container.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use berth_image::ImageStore;
use berth_image::metadata::ImageRecord as Image;
use berth_shim::vm::{VmAccel, VmDisk, VmProcess, VmSpec, VmmKind};
use berth_vm::initramfs::{DEFAULT_MODULES, InitramfsCache};
use berth_vm::kernel::{self, KernelLocator};
use berth_vm::rootfs::RootfsCache;
use bollard_stubs::models::HostConfig;

use super::mounts::Planned;
use super::record::ContainerRecord;
use crate::error::{EngineError, Result};

/// The runtime name (`--runtime microvm`, `HostConfig.Runtime`).
pub const MICROVM: &str = "microvm";
/// The process runtime's name, as dockerd names its default.
pub const RUNC: &str = "runc";
/// The guest's memory unless `--memory` says otherwise.
pub const DEFAULT_MEMORY_MB: u32 = 256;
/// What the guest kernel needs at least (measured: 64 MB panics).
pub const MIN_MEMORY_MB: u32 = 96;

/// The daemon's settings for micro-VMs.
#[derive(Debug, Clone)]
pub struct VmSettings {
    /// `--vm-kernel`: a bzImage or vmlinux (default: the host's own).
    pub kernel: Option<PathBuf>,
    /// `--vm-modules`: that kernel's `lib/modules/VERSION`.
    pub modules: Option<PathBuf>,
    /// `--vm-init`: the static berth-init (default: beside berthd, or `$BERTH_INIT`).
    pub init: Option<PathBuf>,
    pub vmm: VmmKind,
    /// `qemu-system-x86_64` or `firecracker`.
    pub vmm_binary: PathBuf,
    /// QEMU's acceleration; `None`: KVM when it really works, else TCG.
    pub accel: Option<VmAccel>,
    pub boot_timeout: Duration,
    /// berth-init logs its steps (with timings) on each guest's console (`berthd -D`).
    pub guest_debug: bool,
}

impl Default for VmSettings {
    fn default() -> VmSettings {
        VmSettings {
            kernel: None,
            modules: None,
            init: None,
            vmm: VmmKind::Qemu,
            vmm_binary: PathBuf::from("qemu-system-x86_64"),
            accel: None,
            boot_timeout: Duration::from_secs(30),
            guest_debug: false,
        }
    }
}

/// Which runtime `host` asks for: `--runtime`, or `--isolation hyperv` (hardware
/// isolation, as on Windows) for a micro-VM, else the daemon's default.
pub fn runtime_of(host: &HostConfig, default: &str) -> Result<&'static str> {
    use bollard_stubs::models::HostConfigIsolationEnum as Isolation;
    let named = host.runtime.as_deref().filter(|r| !r.is_empty());
    let isolated = host.isolation == Some(Isolation::HYPERV);
    let name = match (named, isolated) {
        (Some(r), _) => r,
        (None, true) => MICROVM,
        (None, false) => default,
    };
    match name {
        MICROVM => Ok(MICROVM),
        "runc" | "berth" | "io.containerd.runc.v2" => Ok(RUNC),
        other => Err(EngineError::invalid(format!(
            "unknown or invalid runtime name: {other}"
        ))),
    }
}

/// What a micro-VM cannot do, refused at create with a message that says so.
pub fn validate(host: &HostConfig, planned: &[Planned]) -> Result<()> {
    let refuse = |what: &str| {
        Err(EngineError::invalid(format!(
            "the {MICROVM} runtime does not support {what}"
        )))
    };
    match host.network_mode.as_deref().unwrap_or("") {
        "host" => {
            return refuse("--network host: a VM cannot share the host's network stack");
        }
        mode if mode.starts_with("container:") => {
            return refuse("sharing another container's network");
        }
        _ => {}
    }
    for (flag, mode) in [
        ("--pid", &host.pid_mode),
        ("--ipc", &host.ipc_mode),
        ("--uts", &host.uts_mode),
    ] {
        if let Some(mode) = mode.as_deref()
            && (mode == "host" || mode.starts_with("container:"))
        {
            return refuse(&format!("{flag} {mode}: a VM has its own kernel"));
        }
    }
    if host.privileged == Some(true) {
        return refuse("--privileged: the VM boundary is its isolation");
    }
    if host.devices.as_ref().is_some_and(|d| !d.is_empty()) {
        return refuse("--device");
    }
    if host.readonly_rootfs == Some(true) {
        return refuse("--read-only");
    }
    if let Some(memory) = host.memory
        && memory > 0
        && memory < i64::from(MIN_MEMORY_MB) << 20
    {
        return Err(EngineError::invalid(format!(
            "the {MICROVM} runtime needs at least {MIN_MEMORY_MB} MB of memory (--memory)"
        )));
    }
    for p in planned {
        match p {
            Planned::Bind {
                destination,
                read_only: false,
                ..
            }
            | Planned::Volume {
                destination,
                read_only: false,
                ..
            } => {
                return Err(EngineError::invalid(format!(
                    "the {MICROVM} runtime cannot share a writable bind mount or volume with \
                     the host ({destination}): mount it read-only (:ro), which gives the VM a \
                     snapshot of it, or use --tmpfs"
                )));
            }
            Planned::Bind {
                source,
                destination,
                ..
            } if !Path::new(source).is_dir() => {
                return Err(EngineError::invalid(format!(
                    "the {MICROVM} runtime mounts directories only ({source} on {destination})"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The kernel and initramfs every VM boots, prepared once (cached on disk, and in
/// memory while their files are there and the init binary is unchanged).
pub struct VmAssets {
    settings: VmSettings,
    dir: PathBuf,
    ready: Mutex<Option<ReadyAssets>>,
}

struct ReadyAssets {
    kernel: PathBuf,
    initramfs: PathBuf,
    init: PathBuf,
    init_stamp: Option<(SystemTime, u64)>,
}

/// When and how big: an upgraded `berth-init` changes it, so the next VM gets it.
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl VmAssets {
    /// `dir` is `<data-root>/vm`.
    pub fn new(settings: VmSettings, dir: PathBuf) -> VmAssets {
        VmAssets {
            settings,
            dir,
            ready: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &VmSettings {
        &self.settings
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The guest's `vmlinux` and initramfs (blocking: may unpack and build).
    pub fn prepare(&self) -> Result<(PathBuf, PathBuf)> {
        let mut ready = self.ready.lock().expect("vm assets lock");
        if let Some(r) = ready.as_ref()
            && r.kernel.exists()
            && r.initramfs.exists()
            && file_stamp(&r.init) == r.init_stamp
        {
            return Ok((r.kernel.clone(), r.initramfs.clone()));
        }
        let located = KernelLocator::new()
            .with_kernel(self.settings.kernel.clone())
            .with_modules(self.settings.modules.clone())
            .locate()
            .map_err(|e| EngineError::invalid(format!("the {MICROVM} runtime: {e}")))?;
        let vmlinux = kernel::vmlinux_from_bzimage(&located.image, &self.dir.join("kernel"))
            .map_err(|e| {
                EngineError::invalid(format!("the guest kernel {}: {e}", located.image.display()))
            })?;
        let init = berth_vm::init::find_init(self.settings.init.as_deref())
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let initramfs = InitramfsCache::new(self.dir.join("initramfs"))
            .get_or_build(&init, located.modules_dir.as_deref(), DEFAULT_MODULES)
            .map_err(|e| EngineError::internal(format!("build the guest's initramfs: {e}")))?;
        // What an earlier kernel or init left (running VMMs read theirs at start).
        for keep in [&vmlinux, &initramfs] {
            remove_siblings(keep);
        }
        *ready = Some(ReadyAssets {
            kernel: vmlinux.clone(),
            initramfs: initramfs.clone(),
            init_stamp: file_stamp(&init),
            init,
        });
        Ok((vmlinux, initramfs))
    }
}

/// Removes the files beside `keep` in its directory but `keep`'s own lock, and
/// temporary files (a dot first) another process may be writing.
fn remove_siblings(keep: &Path) {
    let (Some(dir), Some(name)) = (keep.parent(), keep.file_name()) else {
        return;
    };
    let own_lock = format!("{}.lock", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file != *name.to_string_lossy() && file != own_lock && !file.starts_with('.') {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(path = %entry.path().display(), "removed a stale micro-VM asset")
                }
                Err(err) => {
                    tracing::warn!(path = %entry.path().display(), "remove a stale micro-VM asset: {err}")
                }
            }
        }
    }
}

/// The image's root file system as a cached ext4 image (blocking). The layers are
/// merged by a read-only overlay mount while `mkfs.ext4 -d` reads them.
pub fn root_image(store: &ImageStore, image: &Image, cache_dir: &Path) -> Result<PathBuf> {
    let top = image
        .chain_ids
        .last()
        .ok_or_else(|| EngineError::invalid("the image has no layers"))?;
    let key = top.to_string();
    let cache = RootfsCache::new(cache_dir);
    let internal = |e: berth_vm::Error| EngineError::internal(format!("the VM's root image: {e}"));
    if let Some(path) = cache.lookup(&key).map_err(internal)? {
        return Ok(path);
    }
    let layers: Vec<PathBuf> = image.chain_ids.iter().map(|c| store.layer_dir(c)).collect();
    if let [only] = layers.as_slice() {
        return cache.get_or_build(&key, only).map_err(internal);
    }
    let merged = MergedLayers::mount(&layers, cache_dir)?;
    let built = cache.get_or_build(&key, &merged.path).map_err(internal);
    drop(merged);
    built
}

/// The image's layers merged read-only at a temporary mount point.
struct MergedLayers {
    path: PathBuf,
}

impl MergedLayers {
    fn mount(layers: &[PathBuf], dir: &Path) -> Result<MergedLayers> {
        let path = dir.join(format!(".merge-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path)
            .map_err(|e| EngineError::internal(format!("create {}: {e}", path.display())))?;
        // Overlay lists the top layer first.
        let lower: Vec<String> = layers
            .iter()
            .rev()
            .map(|p| super::rootfs::escape(&p.to_string_lossy()))
            .collect();
        let options = std::ffi::CString::new(format!("lowerdir={}", lower.join(":")))
            .map_err(|e| EngineError::internal(e.to_string()))?;
        if let Err(e) = rustix::mount::mount(
            "overlay",
            &path,
            "overlay",
            rustix::mount::MountFlags::RDONLY,
            Some(options.as_c_str()),
        ) {
            let _ = std::fs::remove_dir(&path);
            return Err(EngineError::internal(format!(
                "merge the image's layers: {e}"
            )));
        }
        Ok(MergedLayers { path })
    }
}

impl Drop for MergedLayers {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// The container's own writable layer over the cached `base`, created once: a qcow2
/// overlay for QEMU, a sparse (or reflinked) copy for Firecracker. Returns the disk
/// and whether it is qcow2.
pub fn container_disk(vmm: VmmKind, base: &Path, dir: &Path) -> Result<(PathBuf, bool)> {
    let internal = |e: String| EngineError::internal(format!("the VM's disk: {e}"));
    match vmm {
        VmmKind::Qemu => {
            let disk = dir.join("root.qcow2");
            if !disk.exists() {
                berth_vm::rootfs::create_overlay(base, &disk)
                    .map_err(|e| internal(e.to_string()))?;
            }
            Ok((disk, true))
        }
        VmmKind::Firecracker => {
            let disk = dir.join("root.ext4");
            if !disk.exists() {
                let status = Command::new("cp")
                    .args(["--reflink=auto", "--sparse=always"])
                    .arg(base)
                    .arg(&disk)
                    .status()
                    .map_err(|e| internal(format!("run cp: {e}")))?;
                if !status.success() {
                    return Err(internal(format!("cp {} failed", base.display())));
                }
                std::fs::set_permissions(
                    &disk,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .map_err(|e| internal(e.to_string()))?;
            }
            Ok((disk, false))
        }
    }
}

/// A read-only snapshot of a directory as an ext4 image (blocking), for a `:ro` bind
/// mount or volume.
pub fn snapshot_disk(source: &Path, image: &Path) -> Result<()> {
    let _ = std::fs::remove_file(image);
    berth_vm::rootfs::make_ext4(
        Path::new("mkfs.ext4"),
        source,
        image,
        16 << 20,
        "berth-data",
    )
    .map_err(|e| EngineError::internal(format!("snapshot {}: {e}", source.display())))?;
    Ok(())
}

/// The guest memory and vCPUs for `host`.
pub fn sizing(host: &HostConfig) -> (u32, u32) {
    let memory_mb = match host.memory {
        Some(bytes) if bytes > 0 => u32::try_from(bytes >> 20).unwrap_or(u32::MAX),
        _ => DEFAULT_MEMORY_MB,
    };
    let vcpus = match host.nano_cpus {
        Some(nano) if nano > 0 => u32::try_from((nano + 999_999_999) / 1_000_000_000).unwrap_or(1),
        _ => 1,
    };
    (memory_mb, vcpus.max(1))
}

/// The container's entrypoint as the guest runs it.
fn vm_process(record: &ContainerRecord) -> VmProcess {
    let config = &record.config;
    VmProcess {
        args: record.command_line(),
        env: config.env.clone().unwrap_or_default(),
        cwd: config.working_dir.clone().unwrap_or_default(),
        user: config.user.clone().unwrap_or_default(),
        tty: config.tty.unwrap_or(false),
        console_size: record
            .host_config
            .console_size
            .as_ref()
            .filter(|s| s.len() == 2 && s[0] > 0 && s[1] > 0)
            .map(|s| (s[0] as u16, s[1] as u16)),
    }
}

/// The file in a micro-VM container's directory naming the cached root image its disk
/// is layered on (the image's top chain ID).
const ROOT_IMAGE_KEY: &str = "vm-root";

impl super::ContainerService {
    /// Deletes the cached root images no image and no container needs any more (after
    /// `rmi`, `image prune`, or the removal of a container whose image was deleted).
    pub fn sweep_vm_root_images(&self) {
        let mut keep: Vec<String> = match self.images.store().images() {
            Ok(images) => images
                .iter()
                .filter_map(|i| i.chain_ids.last().map(|c| c.to_string()))
                .collect(),
            Err(err) => {
                tracing::warn!("list images for the micro-VM root image sweep: {err}");
                return;
            }
        };
        for c in self.all() {
            if let Ok(key) = std::fs::read_to_string(c.dir.join(ROOT_IMAGE_KEY)) {
                keep.push(key.trim().to_string());
            }
        }
        match RootfsCache::new(self.runtimes.vm.dir().join("rootfs")).retain(&keep) {
            Ok(removed) => {
                for image in removed {
                    tracing::info!(path = %image.display(), "removed an unused micro-VM root image");
                }
            }
            Err(err) => tracing::warn!("sweep the micro-VM root images: {err}"),
        }
    }

    /// A micro-VM container: its disks, kernel and initramfs ready, its `vm.json` in the
    /// state directory for `berth-shim --vm`.
    pub(crate) async fn prepare_vm(
        self: &std::sync::Arc<Self>,
        c: &std::sync::Arc<super::Container>,
    ) -> std::result::Result<(), (EngineError, i64)> {
        let fail = |e: EngineError| (e, 128);
        let record = c.record();
        let store = self.images.store().clone();
        let (_, image) = record.image_in(&store).map_err(fail)?;
        let assets = &self.runtimes.vm;
        let hostname = super::spec::hostname(&record);
        super::spec::write_etc_files(&c.dir, &record, &hostname, &self.paths.resolv_conf)
            .map_err(|e| fail(EngineError::internal(format!("write /etc files: {e}"))))?;
        let read = |name: &str| std::fs::read_to_string(c.dir.join(name)).ok();
        let (hosts, resolv_conf) = (read("hosts"), read("resolv.conf"));

        let mut binds: Vec<(PathBuf, String)> = Vec::new();
        let mut tmpfs = Vec::new();
        for p in super::create::load_planned_mounts(&c.dir).map_err(fail)? {
            match p {
                Planned::Bind {
                    source,
                    destination,
                    ..
                } => binds.push((PathBuf::from(source), destination)),
                Planned::Volume {
                    name: Some(name),
                    destination,
                    ..
                } => binds.push((self.volumes.mount_point(&name).map_err(fail)?, destination)),
                Planned::Volume { name: None, .. } => {}
                Planned::Tmpfs {
                    destination,
                    options,
                } => tmpfs.push((destination, options.join(","))),
            }
        }

        let vm_dir = assets.dir().to_path_buf();
        let settings = assets.settings().clone();
        let (memory_mb, vcpus) = sizing(&record.host_config);
        let roots = [self.paths.data.parent(), self.paths.exec.parent()];
        let sandbox_hide = roots.iter().flatten().map(|p| p.to_path_buf()).collect();
        let cgroup = format!("/berth/{}", c.id);
        let dir = c.dir.clone();
        let service = self.clone();
        let spec = tokio::task::spawn_blocking(move || -> Result<VmSpec> {
            let (kernel, initramfs) = service.runtimes.vm.prepare()?;
            // Named first, so a sweep while it builds keeps it.
            if let Some(key) = image.chain_ids.last() {
                std::fs::write(dir.join(ROOT_IMAGE_KEY), key.to_string())
                    .map_err(|e| EngineError::internal(format!("write {ROOT_IMAGE_KEY}: {e}")))?;
            }
            let base = root_image(&store, &image, &vm_dir.join("rootfs"))?;
            let (root_disk, root_is_qcow2) = container_disk(settings.vmm, &base, &dir)?;
            let mut disks = Vec::new();
            for (i, (source, destination)) in binds.iter().enumerate() {
                let path = dir.join(format!("disk-{i}.ext4"));
                snapshot_disk(source, &path)?;
                disks.push(VmDisk {
                    path,
                    guest_path: destination.clone(),
                    read_only: true,
                });
            }
            Ok(VmSpec {
                vmm: settings.vmm,
                vmm_binary: settings.vmm_binary,
                accel: settings.accel,
                kernel,
                initramfs,
                root_disk,
                root_is_qcow2,
                root_backing: root_is_qcow2.then_some(base),
                disks,
                vcpus,
                memory_mb,
                boot_timeout_secs: settings.boot_timeout.as_secs().max(1),
                cgroup,
                sandbox_hide,
                open_stdin: record.config.open_stdin.unwrap_or(false),
                guest_debug: settings.guest_debug,
                process: vm_process(&record),
                hostname,
                hosts,
                resolv_conf,
                tmpfs,
            })
        })
        .await
        .map_err(|e| fail(EngineError::internal(e.to_string())))?
        .map_err(fail)?;
        let state = &c.state_dir;
        let _ = std::fs::remove_dir_all(state.path());
        std::fs::create_dir_all(state.path())
            .map_err(|e| fail(EngineError::internal(format!("create state dir: {e}"))))?;
        let json =
            serde_json::to_vec(&spec).map_err(|e| fail(EngineError::internal(e.to_string())))?;
        std::fs::write(state.path().join(VmSpec::FILE), json)
            .map_err(|e| fail(EngineError::internal(format!("write vm.json: {e}"))))?;
        Ok(())
    }
}

/// A micro-VM's exec: the container's environment and working directory with the exec's
/// own on top, as an OCI-shaped `process` for the shim (the guest resolves the user).
pub(super) fn vm_exec_process(
    record: &super::record::ContainerRecord,
    config: &bollard_stubs::models::ExecConfig,
    tty: bool,
) -> serde_json::Value {
    let mut env = record.config.env.clone().unwrap_or_default();
    for entry in config.env.iter().flatten() {
        let key = entry.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    let cwd = config
        .working_dir
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| record.config.working_dir.clone().filter(|d| !d.is_empty()))
        .unwrap_or_else(|| "/".into());
    let mut process = serde_json::json!({
        "args": config.cmd.clone().unwrap_or_default(),
        "env": env,
        "cwd": cwd,
        "terminal": tty,
    });
    if let Some(size) = &config.console_size
        && size.len() == 2
    {
        process["consoleSize"] = serde_json::json!({"height": size[0], "width": size[1]});
    }
    process
}

/// For a micro-VM, Docker's `--user` of an exec (else the container's), which the guest
/// resolves in its own /etc/passwd; `None` for a process container.
pub(super) fn vm_exec_user(
    record: &super::record::ContainerRecord,
    config: &bollard_stubs::models::ExecConfig,
) -> Option<String> {
    record.is_microvm().then(|| {
        config
            .user
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| record.config.user.clone())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::HostConfigIsolationEnum;

    #[test]
    fn a_vm_exec_layers_its_env_and_dir_over_the_container_s() {
        let mut record = ContainerRecord::default();
        record.config.env = Some(vec!["A=1".into(), "B=2".into()]);
        record.config.working_dir = Some("/srv".into());
        record.config.user = Some("app".into());
        let exec = bollard_stubs::models::ExecConfig {
            cmd: Some(vec!["env".into()]),
            env: Some(vec!["B=3".into()]),
            ..Default::default()
        };
        let p = vm_exec_process(&record, &exec, true);
        assert_eq!(p["env"], serde_json::json!(["A=1", "B=3"]));
        assert_eq!(
            (p["cwd"].as_str(), p["terminal"].as_bool()),
            (Some("/srv"), Some(true))
        );
        assert_eq!(
            vm_exec_user(&record, &exec),
            None,
            "not a VM: the runtime resolves it"
        );
        record.host_config.runtime = Some(MICROVM.into());
        assert_eq!(vm_exec_user(&record, &exec).as_deref(), Some("app"));
    }

    #[test]
    fn stale_assets_are_removed_but_not_the_kept_one_or_work_in_progress() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "vmlinux-new",
            "vmlinux-new.lock",
            "vmlinux-old",
            "vmlinux-old.lock",
            ".vmlinux-x.tmp-1-0",
        ] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        remove_siblings(&d.path().join("vmlinux-new"));
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".vmlinux-x.tmp-1-0", "vmlinux-new", "vmlinux-new.lock"]
        );
    }

    #[test]
    fn the_runtime_comes_from_the_flag_the_isolation_or_the_default() {
        let mut host = HostConfig::default();
        assert_eq!(runtime_of(&host, RUNC).unwrap(), RUNC);
        assert_eq!(runtime_of(&host, MICROVM).unwrap(), MICROVM);
        host.isolation = Some(HostConfigIsolationEnum::HYPERV);
        assert_eq!(runtime_of(&host, RUNC).unwrap(), MICROVM);
        host.runtime = Some("runc".into());
        assert_eq!(runtime_of(&host, MICROVM).unwrap(), RUNC);
        host.runtime = Some("kata".into());
        let err = runtime_of(&host, RUNC).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown or invalid runtime name: kata")
        );
    }

    #[test]
    fn what_a_vm_cannot_do_is_refused_clearly() {
        let ok = HostConfig::default();
        assert!(validate(&ok, &[]).is_ok());
        let host = HostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        };
        let err = validate(&host, &[]).unwrap_err();
        assert!(err.to_string().contains("--network host"), "{err}");
        let small = HostConfig {
            memory: Some(64 << 20),
            ..Default::default()
        };
        let err = validate(&small, &[]).unwrap_err();
        assert!(err.to_string().contains("at least 96 MB"), "{err}");
        let rw = Planned::Bind {
            source: "/tmp".into(),
            destination: "/data".into(),
            read_only: false,
            propagation: String::new(),
            create_source: false,
        };
        let err = validate(&ok, &[rw]).unwrap_err();
        assert!(err.to_string().contains("writable bind mount"), "{err}");
        let ro = Planned::Bind {
            source: "/tmp".into(),
            destination: "/data".into(),
            read_only: true,
            propagation: String::new(),
            create_source: false,
        };
        assert!(validate(&ok, &[ro]).is_ok());
    }

    #[test]
    fn cpus_and_memory_size_the_vm() {
        assert_eq!(sizing(&HostConfig::default()), (DEFAULT_MEMORY_MB, 1));
        let host = HostConfig {
            memory: Some(512 << 20),
            nano_cpus: Some(1_500_000_000),
            ..Default::default()
        };
        assert_eq!(sizing(&host), (512, 2));
    }
}
