//! `create` in one clone: berth-runtime's own process choreography over libcontainer's
//! building blocks.
//!
//! libcontainer creates a container through three processes (main → intermediate →
//! init), moves the intermediate into its cgroup by pid and compiles the seccomp
//! profile inside the init; measured here, that is ~21 ms per container, of which the
//! cgroup move (an RCU grace period in the kernel, 7–15 ms) and the seccomp compile
//! (~8 ms) are most. The launcher instead:
//! - prepares the cgroup before the clone, and the child enters it itself (or is cloned
//!   into it on cgroup v2): see `berth_runtime::cgroupfs`; the limits (libcgroups) are
//!   applied while the child sets itself up;
//! - clones the container's init straight into its new namespaces with `clone3`;
//! - loads a seccomp program compiled once per profile: see [`seccomp`];
//! - builds the root filesystem itself (see [`rootfs`]) and runs the init's other steps
//!   with libcontainer's console, capability and start-socket code, in runc's order:
//!   see [`child`];
//! - writes libcontainer's state and config, so `start`, `kill`, `exec`, `ps`, `pause`
//!   and `delete` work on the container exactly as on one libcontainer created.
//!
//! Specs with features it does not handle (user or time namespaces, hooks, seccomp
//! notify, Intel RDT, network devices, scheduling or I/O priorities, AppArmor, memory
//! policies, personalities, a rootless caller, a joined mount namespace, a mount label,
//! shared rootfs propagation, id-mapped mounts or recursive mount attributes) go
//! through libcontainer's builder.

mod child;
mod mount_options;
mod rootfs;
mod seccomp;
mod sync;

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt};
use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::notify_socket::{NOTIFY_FILE, NotifyListener};
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};
use nix::sched::CloneFlags;

use self::seccomp::Program;
use berth_runtime::cgroupfs::{CgroupDirs, CgroupMounts};

/// The state root's directory of compiled seccomp programs.
const SECCOMP_CACHE: &str = ".seccomp";

/// What `create` was asked for.
pub struct Request<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    /// The bundle, absolute.
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
}

/// Why `spec` needs libcontainer's own builder, if it does.
pub fn unsupported(spec: &Spec, console_socket: bool) -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("rootless");
    }
    if spec.hooks().is_some() {
        return Some("hooks");
    }
    let Some(process) = spec.process() else {
        return Some("no process");
    };
    if process.terminal() == Some(true) && !console_socket {
        return Some("a terminal without a console socket");
    }
    if process.terminal() != Some(true) && console_socket {
        return Some("a console socket without a terminal");
    }
    if process.apparmor_profile().is_some()
        || process.io_priority().is_some()
        || process.scheduler().is_some()
        || process.exec_cpu_affinity().is_some()
    {
        return Some("process attributes");
    }
    let Some(linux) = spec.linux() else {
        return Some("no linux section");
    };
    if linux.intel_rdt().is_some()
        || linux.net_devices().is_some()
        || linux.personality().is_some()
        || linux.memory_policy().is_some()
        || linux.time_offsets().is_some()
        || linux.uid_mappings().is_some()
        || linux.gid_mappings().is_some()
    {
        return Some("linux attributes");
    }
    if linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::Mount && ns.path().is_some())
    {
        return Some("a joined mount namespace");
    }
    if linux.namespaces().iter().flatten().any(|ns| {
        matches!(
            ns.typ(),
            LinuxNamespaceType::User | LinuxNamespaceType::Time
        )
    }) {
        return Some("user or time namespace");
    }
    if linux.mount_label().is_some() {
        return Some("a mount label");
    }
    if matches!(
        linux.rootfs_propagation().as_deref(),
        Some("shared") | Some("rshared")
    ) {
        return Some("shared rootfs propagation");
    }
    for mount in spec.mounts().iter().flatten() {
        if mount.uid_mappings().is_some() || mount.gid_mappings().is_some() {
            return Some("an id-mapped mount");
        }
        if mount_options::MountOptions::parse(mount.options().as_deref().unwrap_or_default())
            .is_err()
        {
            return Some("mount options");
        }
    }
    if let Some(profile) = linux.seccomp() {
        return seccomp::unsupported(profile);
    }
    None
}

/// Refuses a spec whose root filesystem would be built in the host's own mount
/// namespace (both the launcher and libcontainer's builder would turn the host's mounts
/// into slaves and mount the container's filesystems on the host); runc refuses such
/// specs too.
pub fn validate(spec: &Spec) -> anyhow::Result<()> {
    let has_mount_ns = spec.linux().as_ref().is_some_and(|linux| {
        linux
            .namespaces()
            .iter()
            .flatten()
            .any(|ns| ns.typ() == LinuxNamespaceType::Mount)
    });
    if !has_mount_ns {
        bail!("the container needs a mount namespace: its root filesystem is built there");
    }
    Ok(())
}

/// Creates the container; its process waits for `start`.
pub fn create(request: &Request<'_>, mut spec: Spec) -> anyhow::Result<Container> {
    let id = request.id;
    let dir = request.root.join(id);
    if dir.exists() {
        bail!("container {id} already exists");
    }
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    spec.canonicalize_rootfs(request.bundle)
        .context("canonicalize the root filesystem")?;
    let mut launch = Launch {
        dir,
        cgroup: None,
        child: None,
    };
    match launch.run(request, &spec) {
        Ok(container) => Ok(container),
        Err(err) => {
            launch.clean_up();
            Err(err)
        }
    }
}

/// A create in progress, and what to undo if it fails.
struct Launch {
    dir: PathBuf,
    cgroup: Option<CgroupDirs>,
    child: Option<libc::pid_t>,
}

impl Launch {
    /// Everything the child needs is prepared before the clone; the state files and
    /// the cgroup limits (libcgroups, ~1.5 ms) are written while the child sets itself
    /// up, on the other core. The limits are in place before the child reports ready,
    /// so before anything of the image runs; until then the cgroup holds only the
    /// runtime's own code.
    fn run(&mut self, request: &Request<'_>, spec: &Spec) -> anyhow::Result<Container> {
        let id = request.id;
        let linux = spec.linux().as_ref().context("spec has no linux section")?;
        let process = spec.process().as_ref().context("spec has no process")?;
        let rootfs = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .context("spec has no root")?;

        let notify = NotifyListener::new(&self.dir.join(NOTIFY_FILE))?;
        let console = request
            .console_socket
            .map(|path| libcontainer::tty::setup_console_socket(&self.dir, path, "console-socket"))
            .transpose()
            .context("connect to the console socket")?;
        if let Some(score) = process.oom_score_adj() {
            fs::write("/proc/self/oom_score_adj", score.to_string())
                .context("set oom_score_adj")?;
        }
        if linux.namespaces().is_some() {
            prctl::set_dumpable(false)
                .map_err(std::io::Error::from_raw_os_error)
                .context("set non-dumpable")?;
        }
        let cgroups_path = libcontainer::utils::get_cgroup_path(linux.cgroups_path(), id);
        let cgroup_mounts = CgroupMounts::read()?;
        let dirs = self.cgroup.insert(cgroup_mounts.dirs(&cgroups_path)?);
        let placement = dirs.create()?;
        let program = linux
            .seccomp()
            .as_ref()
            .map(|profile| Program::for_profile(profile, &request.root.join(SECCOMP_CACHE)))
            .transpose()?;
        let namespaces = Namespaces::of(linux)?;

        let (mut parent_end, mut child_end) = sync::pair()?;
        let (pid, cloned_into_cgroup) = clone(namespaces.clone_flags, placement.clone_into())?;
        if pid == 0 {
            drop(parent_end);
            let setup = child::Setup {
                spec,
                rootfs: &rootfs,
                placement: &placement,
                cgroup_mounts: &cgroup_mounts,
                cloned_into_cgroup,
                join: &namespaces.join,
                new_cgroup_ns: namespaces.new_cgroup,
                new_uts_ns: namespaces.creates(LinuxNamespaceType::Uts),
                seccomp: program.as_ref(),
                console_socket: console.as_ref(),
                notify: &notify,
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child::run(&setup, &mut child_end)
            }));
            let err = outcome.unwrap_or_else(|_| anyhow::anyhow!("the container's init panicked"));
            tracing::error!("container init: {err:#}");
            child_end.fail(&err);
            // SAFETY: _exit ends this forked copy without running the launcher's
            // destructors or exit handlers.
            unsafe { libc::_exit(1) };
        }
        self.child = Some(pid);
        drop(child_end);
        drop(console);
        let mut container = Container::new(
            id,
            ContainerStatus::Creating,
            None,
            request.bundle,
            &self.dir,
        )?;
        container
            .set_systemd(false)
            .set_annotations(spec.annotations().clone())
            .save()?;
        YoukiConfig::from_spec(spec, id)?.save(&self.dir)?;
        // The manager is made (it reads the mount table a dozen times) while the child
        // builds its root filesystem; the limits are written once the child's device
        // nodes exist, while it waits (a device rule set is briefly deny-all while it is
        // rewritten).
        let manager = linux
            .resources()
            .as_ref()
            .map(|_| {
                libcgroups::common::create_cgroup_manager(CgroupConfig {
                    cgroup_path: cgroups_path,
                    systemd_cgroup: false,
                    container_name: id.to_string(),
                })
                .context("cgroup manager")
            })
            .transpose()?;
        parent_end.wait_devices_made().map_err(anyhow::Error::msg)?;
        if let (Some(manager), Some(resources)) = (manager, linux.resources()) {
            manager
                .apply(&ControllerOpt {
                    resources,
                    freezer_state: None,
                    oom_score_adj: None,
                    disable_oom_killer: false,
                })
                .context("apply the cgroup limits")?;
        }
        parent_end.limits_applied().map_err(anyhow::Error::msg)?;
        parent_end.wait_ready().map_err(anyhow::Error::msg)?;
        if let Some(path) = request.pid_file {
            fs::write(path, pid.to_string())
                .with_context(|| format!("write pid file {}", path.display()))?;
        }
        container
            .set_status(ContainerStatus::Created)
            // SAFETY: geteuid has no preconditions.
            .set_creator(unsafe { libc::geteuid() })
            .set_pid(pid)
            .save()?;
        self.child = None;
        Ok(container)
    }

    /// Undoes a failed create: the child, the cgroup, the state directory.
    fn clean_up(&mut self) {
        if let Some(pid) = self.child.take() {
            // SAFETY: plain syscalls on a child of ours that has not been reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(dirs) = self.cgroup.take()
            && let Err(err) = dirs.remove()
        {
            tracing::warn!("remove the cgroup of a failed create: {err:#}");
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The spec's namespaces: new ones become `clone3` flags, ones with a path are joined.
struct Namespaces {
    clone_flags: CloneFlags,
    /// Joined by the child with `setns` (a pid namespace is joined here, before the
    /// clone, since it applies to children).
    join: Vec<(CloneFlags, OwnedFd)>,
    /// A new cgroup namespace is made by the child once it is in its cgroup, so that
    /// cgroup is the namespace's root.
    new_cgroup: bool,
    created: Vec<LinuxNamespaceType>,
}

impl Namespaces {
    fn of(linux: &libcontainer::oci_spec::runtime::Linux) -> anyhow::Result<Namespaces> {
        let mut namespaces = Namespaces {
            clone_flags: CloneFlags::empty(),
            join: Vec::new(),
            new_cgroup: false,
            created: Vec::new(),
        };
        for ns in linux.namespaces().iter().flatten() {
            let Some(flag) = child::clone_flag(ns.typ()) else {
                bail!("namespace {:?} is not supported here", ns.typ());
            };
            match ns.path() {
                Some(path) => {
                    let fd: OwnedFd = fs::File::open(path)
                        .with_context(|| format!("open namespace {}", path.display()))?
                        .into();
                    if flag == CloneFlags::CLONE_NEWPID {
                        nix::sched::setns(&fd, flag)
                            .with_context(|| format!("join {}", path.display()))?;
                    } else {
                        namespaces.join.push((flag, fd));
                    }
                }
                None => {
                    namespaces.created.push(ns.typ());
                    if flag == CloneFlags::CLONE_NEWCGROUP {
                        namespaces.new_cgroup = true;
                    } else {
                        namespaces.clone_flags |= flag;
                    }
                }
            }
        }
        Ok(namespaces)
    }

    fn creates(&self, kind: LinuxNamespaceType) -> bool {
        self.created.contains(&kind)
    }
}

/// `clone_args` of clone3(2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks into new namespaces (and into `cgroup`, when given and the kernel allows it).
/// Returns the child's pid, 0 in the child, and whether the cgroup was entered.
fn clone(flags: CloneFlags, cgroup: Option<i32>) -> anyhow::Result<(libc::pid_t, bool)> {
    let mut args = CloneArgs {
        flags: flags.bits() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    loop {
        // SAFETY: clone3 without a new stack behaves like fork: the child continues
        // here on a copy of this (single-threaded) process's memory. `args` is valid
        // for the call and its size is passed.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if rc >= 0 {
            return Ok((rc as libc::pid_t, args.flags & CLONE_INTO_CGROUP != 0));
        }
        let err = std::io::Error::last_os_error();
        // Kernels before 5.7, or a cgroup the kernel will not clone into: the child
        // joins it by writing to cgroup.procs instead.
        if args.flags & CLONE_INTO_CGROUP != 0
            && matches!(
                err.raw_os_error(),
                Some(libc::EINVAL) | Some(libc::E2BIG) | Some(libc::EBADF)
            )
        {
            args.flags &= !CLONE_INTO_CGROUP;
            args.cgroup = 0;
            continue;
        }
        return Err(err).context("clone the container's init");
    }
}
