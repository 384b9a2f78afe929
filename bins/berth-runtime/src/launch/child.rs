//! The container's first process, from its birth in the new namespaces to `execve`.
//!
//! It runs in the launcher's forked copy, single-threaded, so it may allocate, build
//! the root filesystem (see [`super::rootfs`]) and use libcontainer's building blocks
//! (console, capabilities, the start socket). The order of the steps is runc's: cgroups and namespaces, the root
//! filesystem and `pivot_root`, the /proc and /sys protections, the user, seccomp, then
//! the capabilities; it reports ready and waits for `start` before it runs the payload.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, bail};
use libcontainer::capabilities;
use libcontainer::notify_socket::NotifyListener;
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};
use libcontainer::syscall::Syscall;
use libcontainer::workload::Executor;
use libcontainer::workload::default::DefaultExecutor;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};

use super::rootfs::{self, CgroupView};
use super::seccomp::Program;
use super::sync::ChildEnd;
use berth_runtime::cgroupfs::{CgroupMounts, Placement};

/// What the launcher hands its child (all of it prepared before the clone).
pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub placement: &'a Placement,
    /// The host's cgroup mounts, for the container's view of its cgroups.
    pub cgroup_mounts: &'a CgroupMounts,
    /// Whether `clone3` put the process into its cgroup already.
    pub cloned_into_cgroup: bool,
    /// Namespaces to join by path (`setns`), with their types.
    pub join: &'a [(CloneFlags, OwnedFd)],
    /// Whether to make a new cgroup namespace (after entering the cgroup, so the
    /// container's cgroup is its root).
    pub new_cgroup_ns: bool,
    /// Whether the UTS namespace is new, so the hostname is ours to set.
    pub new_uts_ns: bool,
    pub seccomp: Option<&'a Program>,
    pub console_socket: Option<&'a OwnedFd>,
    pub notify: &'a NotifyListener,
}

/// Runs the container's init up to the payload; returns only on failure (the error is
/// then reported to the launcher through `sync`).
pub fn run(ctx: &Setup<'_>, sync: &mut ChildEnd) -> anyhow::Error {
    match prepare(ctx, sync) {
        Ok(()) => {}
        Err(err) => return err,
    }
    if let Err(err) = sync.ready() {
        return err.context("report ready");
    }
    match start(ctx) {
        Ok(never) => match never {},
        Err(err) => err,
    }
}

/// Everything up to "ready": after this only the start signal and `execve` remain.
fn prepare(ctx: &Setup<'_>, sync: &mut ChildEnd) -> anyhow::Result<()> {
    let spec = ctx.spec;
    let linux = spec.linux().as_ref().context("spec has no linux section")?;
    let process = spec.process().as_ref().context("spec has no process")?;
    let syscall = libcontainer::syscall::syscall::create_syscall();

    ctx.placement.enter_self(ctx.cloned_into_cgroup)?;
    let cgroups = CgroupView {
        mounts: ctx.cgroup_mounts,
        own: std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?,
        namespaced: ctx.new_cgroup_ns,
    };
    for (kind, fd) in ctx.join {
        syscall
            .set_ns(fd.as_raw_fd(), *kind)
            .with_context(|| format!("join namespace {kind:?}"))?;
    }
    if ctx.new_cgroup_ns {
        syscall
            .unshare(CloneFlags::CLONE_NEWCGROUP)
            .context("new cgroup namespace")?;
    }
    nix::unistd::setsid().context("setsid")?;
    if ctx.new_uts_ns {
        if let Some(hostname) = spec.hostname() {
            syscall.set_hostname(hostname).context("set hostname")?;
        }
        if let Some(domainname) = spec.domainname() {
            syscall
                .set_domainname(domainname)
                .context("set domainname")?;
        }
    }
    for rlimit in process.rlimits().iter().flatten() {
        syscall
            .set_rlimit(rlimit)
            .with_context(|| format!("set rlimit {:?}", rlimit.typ()))?;
    }
    if process.no_new_privileges() == Some(true) {
        prctl::set_no_new_privileges(true)
            .map_err(std::io::Error::from_raw_os_error)
            .context("set no_new_privs")?;
    }

    let prepared =
        rootfs::prepare(spec, ctx.rootfs, &cgroups).context("prepare the root filesystem")?;
    sync.devices_made()?;
    syscall.pivot_rootfs(ctx.rootfs).context("pivot_root")?;
    prepared.finish()?;
    reopen_dev_null()?;
    for (key, value) in linux.sysctl().iter().flatten() {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).with_context(|| format!("set sysctl {key}={value}"))?;
    }
    if let Some(socket) = ctx.console_socket {
        libcontainer::tty::setup_console(syscall.as_ref(), socket.as_raw_fd(), true)
            .context("set up the terminal")?;
    }
    if let Some(umask) = process.user().umask() {
        let mode = nix::sys::stat::Mode::from_bits(umask)
            .with_context(|| format!("invalid umask {umask:o}"))?;
        nix::sys::stat::umask(mode);
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let current = nix::sys::statfs::statfs("/")
            .context("statfs /")?
            .flags()
            .bits();
        syscall
            .mount(
                None,
                Path::new("/"),
                None,
                MsFlags::MS_RDONLY
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_BIND
                    | MsFlags::from_bits_truncate(current),
                None,
            )
            .context("remount / read-only")?;
    }
    for path in linux.readonly_paths().iter().flatten() {
        readonly_path(syscall.as_ref(), Path::new(path))?;
    }
    for path in linux.masked_paths().iter().flatten() {
        mask_path(syscall.as_ref(), Path::new(path))?;
    }

    // chdir before the user changes: the launcher may reach a directory the user
    // cannot; retried afterwards when only the user can.
    let cwd = process.cwd();
    let chdir_later = match nix::unistd::chdir(cwd) {
        Ok(()) => false,
        Err(nix::errno::Errno::EPERM) | Err(nix::errno::Errno::EACCES) => true,
        Err(err) => return Err(err).with_context(|| format!("chdir {}", cwd.display())),
    };
    let user = process.user();
    if let Some(gids) = user.additional_gids()
        && !gids.is_empty()
    {
        let gids: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
        syscall
            .set_groups(&gids)
            .context("set supplementary groups")?;
    }
    syscall
        .set_id(Uid::from_raw(user.uid()), Gid::from_raw(user.gid()))
        .with_context(|| format!("set user {}:{}", user.uid(), user.gid()))?;
    close_other_fds_on_exec()?;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the drop.
    if process.no_new_privileges() != Some(true)
        && let Some(program) = ctx.seccomp
    {
        program.load().context("load the seccomp filter")?;
    }
    capabilities::reset_effective(syscall.as_ref()).context("reset capabilities")?;
    if let Some(caps) = process.capabilities() {
        capabilities::drop_privileges(caps, syscall.as_ref()).context("drop capabilities")?;
    }
    if chdir_later {
        nix::unistd::chdir(cwd).with_context(|| format!("chdir {}", cwd.display()))?;
    }
    set_environment(process.env().as_deref().unwrap_or_default(), user.uid())?;
    DefaultExecutor {}
        .validate(spec)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    Ok(())
}

/// Waits for `start`, then runs the payload.
fn start(ctx: &Setup<'_>) -> anyhow::Result<std::convert::Infallible> {
    ctx.notify
        .wait_for_container_start()
        .context("wait for start")?;
    let process = ctx.spec.process().as_ref().context("spec has no process")?;
    if process.no_new_privileges() == Some(true)
        && let Some(program) = ctx.seccomp
    {
        program.load().context("load the seccomp filter")?;
    }
    DefaultExecutor {}
        .exec(ctx.spec)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    bail!("exec returned")
}

/// Standard descriptors the launcher gave as the host's /dev/null are switched to the
/// container's, so nothing of the host's filesystem stays reachable through them.
fn reopen_dev_null() -> anyhow::Result<()> {
    let null = std::fs::File::open("/dev/null").context("open /dev/null in the container")?;
    let null_dev = nix::sys::stat::fstat(null.as_raw_fd())
        .context("stat /dev/null")?
        .st_rdev;
    for fd in 0..3 {
        if let Ok(stat) = nix::sys::stat::fstat(fd)
            && stat.st_mode & libc::S_IFMT == libc::S_IFCHR
            && stat.st_rdev == null_dev
        {
            // SAFETY: dup2 onto a standard descriptor; `null` stays open across the call.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                return Err(std::io::Error::last_os_error()).context("reopen /dev/null");
            }
        }
    }
    Ok(())
}

/// Bind-mounts `path` onto itself read-only (missing paths are skipped).
fn readonly_path(syscall: &dyn Syscall, path: &Path) -> anyhow::Result<()> {
    match syscall.mount(
        Some(path),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    ) {
        Ok(()) => {}
        Err(libcontainer::syscall::SyscallError::Nix(nix::errno::Errno::ENOENT)) => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("bind {}", path.display())),
    }
    syscall
        .mount(
            Some(path),
            path,
            None,
            MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY,
            None,
        )
        .with_context(|| format!("make {} read-only", path.display()))
}

/// Hides `path`: an empty read-only tmpfs over a directory, /dev/null over a file.
fn mask_path(syscall: &dyn Syscall, path: &Path) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        syscall
            .mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some(""),
            )
            .with_context(|| format!("mask {}", path.display()))
    } else {
        syscall
            .mount(
                Some(Path::new("/dev/null")),
                path,
                None,
                MsFlags::MS_BIND,
                None,
            )
            .with_context(|| format!("mask {}", path.display()))
    }
}

/// Every descriptor above stdio closes on exec (the start socket and the sync pipe
/// are still needed until then).
fn close_other_fds_on_exec() -> anyhow::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("close_range");
    }
    Ok(())
}

/// The process's environment becomes the spec's, plus `HOME` from the container's
/// /etc/passwd (read as a file, as runc does: glibc's NSS would load modules the
/// image names, inside the container, in this privileged process) when the spec has
/// none.
fn set_environment(env: &[String], uid: u32) -> anyhow::Result<()> {
    // SAFETY: this process is single-threaded (a fresh clone of a single-threaded
    // launcher), so nothing reads the environment concurrently.
    unsafe { libc::clearenv() };
    let mut has_home = false;
    for entry in env {
        let (key, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        if key.is_empty() || key.contains('\0') || value.contains('\0') {
            continue;
        }
        has_home |= key == "HOME" && !value.is_empty();
        // SAFETY: single-threaded, as above.
        unsafe { std::env::set_var(key, value) };
    }
    if !has_home {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        // SAFETY: single-threaded, as above.
        unsafe { std::env::set_var("HOME", berth_runtime::home_dir(&passwd, uid)) };
    }
    Ok(())
}

/// The namespace types the launcher creates with `clone3` flags.
pub fn clone_flag(kind: LinuxNamespaceType) -> Option<CloneFlags> {
    match kind {
        LinuxNamespaceType::Mount => Some(CloneFlags::CLONE_NEWNS),
        LinuxNamespaceType::Uts => Some(CloneFlags::CLONE_NEWUTS),
        LinuxNamespaceType::Ipc => Some(CloneFlags::CLONE_NEWIPC),
        LinuxNamespaceType::Network => Some(CloneFlags::CLONE_NEWNET),
        LinuxNamespaceType::Pid => Some(CloneFlags::CLONE_NEWPID),
        LinuxNamespaceType::Cgroup => Some(CloneFlags::CLONE_NEWCGROUP),
        LinuxNamespaceType::User | LinuxNamespaceType::Time => None,
    }
}
