//! Confining the VMM process: the VMM of one container should reach nothing but its own
//! files, whatever a guest does to it.
//!
//! [`Sandbox`] is prepared in the parent (paths turned into C strings, nothing else to
//! allocate later) and applied in the forked child just before `exec`:
//! - its own mount, network, IPC and UTS namespaces (and the parent puts it in a new pid
//!   namespace: see [`Sandbox::enter_pid_namespace`]);
//! - the directories in `hide` (the daemon's data and state roots) covered by empty
//!   tmpfs mounts, with the paths in `keep` (this VM's disks, kernel, sockets) bound back;
//! - the cgroup whose `tasks`/`cgroup.procs` files it writes itself into;
//! - no capabilities at all, and no_new_privs.
//!
//! Everything the child does is a plain syscall on prepared data: it runs between `fork`
//! and `exec` in a process that may have had other threads.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What to confine the VMM to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// Directories to cover with an empty tmpfs.
    pub hide: Vec<PathBuf>,
    /// Files or directories (below a hidden one) to bind back at the same path.
    pub keep: Vec<PathBuf>,
    /// Cgroup files (`tasks` on v1, `cgroup.procs` on v2) the VMM writes itself into.
    pub cgroup_procs: Vec<PathBuf>,
    /// A new network namespace (no network at all) unless the VM has a tap device.
    pub new_network: bool,
}

/// A path to bind back: where it is, and the directories and mount point to create for
/// it inside the tmpfs.
#[derive(Debug)]
struct Keep {
    path: CString,
    /// Directories to create (outermost first) below the hidden directory.
    dirs: Vec<CString>,
    is_dir: bool,
}

/// A [`Sandbox`] ready for the child.
#[derive(Debug)]
pub struct Prepared {
    hide: Vec<CString>,
    keep: Vec<Keep>,
    cgroup_procs: Vec<CString>,
    new_network: bool,
    tmpfs: CString,
    tmpfs_data: CString,
    empty: CString,
    zero: CString,
}

/// How many paths can be bound back.
const MAX_KEEP: usize = 32;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
}

impl Sandbox {
    /// Turns the paths into what the child needs; `keep` paths must exist and lie below
    /// one of `hide`.
    pub fn prepare(&self) -> io::Result<Prepared> {
        if self.keep.len() > MAX_KEEP {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("at most {MAX_KEEP} paths can stay visible to the VMM"),
            ));
        }
        let mut keep = Vec::new();
        for k in &self.keep {
            let meta = std::fs::metadata(k)?;
            let Some(hidden) = self.hide.iter().find(|h| k.starts_with(h)) else {
                continue;
            };
            let mut dirs = Vec::new();
            let mut at = hidden.clone();
            let rest = k.strip_prefix(hidden).unwrap_or(Path::new(""));
            let mut parts: Vec<_> = rest.components().collect();
            let last = parts.pop();
            for part in parts {
                at.push(part);
                dirs.push(cstr(&at)?);
            }
            if last.is_none() {
                continue;
            }
            keep.push(Keep {
                path: cstr(k)?,
                dirs,
                is_dir: meta.is_dir(),
            });
        }
        Ok(Prepared {
            hide: self
                .hide
                .iter()
                .map(|h| cstr(h))
                .collect::<io::Result<_>>()?,
            keep,
            cgroup_procs: self
                .cgroup_procs
                .iter()
                .map(|p| cstr(p))
                .collect::<io::Result<_>>()?,
            new_network: self.new_network,
            tmpfs: CString::from(c"tmpfs"),
            tmpfs_data: CString::from(c"mode=0755,size=64k"),
            empty: CString::from(c""),
            zero: CString::from(c"0"),
        })
    }

    /// Makes the next child of this process the first process of a new pid namespace.
    /// Call it in a single-threaded process (the shim before its event loop); it applies
    /// to every child started afterwards.
    pub fn enter_pid_namespace() -> io::Result<()> {
        // SAFETY: unshare takes a flag word and no pointers.
        if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Prepared {
    /// Applies the sandbox to the calling process.
    ///
    /// # Safety
    /// For the child between `fork` and `exec` (`CommandExt::pre_exec`): it only makes
    /// syscalls on data prepared beforehand, and changes this process's namespaces,
    /// mounts, cgroup and capabilities for good.
    pub unsafe fn apply(&self) -> io::Result<()> {
        // SAFETY: plain syscalls with pointers into `self`, which lives in the parent's
        // memory copied into this child and is not freed before exec.
        unsafe {
            for file in &self.cgroup_procs {
                let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let n = libc::write(fd, self.zero.as_ptr().cast(), 1);
                libc::close(fd);
                if n != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
            let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
            if self.new_network {
                flags |= libc::CLONE_NEWNET;
            }
            check(libc::unshare(flags))?;
            // Nothing mounted here reaches the host's namespace.
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            // Detached copies of what stays visible, taken before anything is covered.
            let mut trees: [libc::c_int; MAX_KEEP] = [-1; MAX_KEEP];
            for (i, k) in self.keep.iter().enumerate() {
                let fd = libc::syscall(
                    libc::SYS_open_tree,
                    libc::AT_FDCWD,
                    k.path.as_ptr(),
                    libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
                );
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                trees[i] = fd as libc::c_int;
            }
            for h in &self.hide {
                check(libc::mount(
                    self.tmpfs.as_ptr(),
                    h.as_ptr(),
                    self.tmpfs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    self.tmpfs_data.as_ptr().cast(),
                ))?;
            }
            for (i, k) in self.keep.iter().enumerate() {
                for d in &k.dirs {
                    let rc = libc::mkdir(d.as_ptr(), 0o755);
                    if rc < 0 && *libc::__errno_location() != libc::EEXIST {
                        return Err(io::Error::last_os_error());
                    }
                }
                if k.is_dir {
                    let rc = libc::mkdir(k.path.as_ptr(), 0o755);
                    if rc < 0 && *libc::__errno_location() != libc::EEXIST {
                        return Err(io::Error::last_os_error());
                    }
                } else {
                    let fd = libc::open(
                        k.path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o600,
                    );
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                check(libc::syscall(
                    libc::SYS_move_mount,
                    trees[i],
                    self.empty.as_ptr(),
                    libc::AT_FDCWD,
                    k.path.as_ptr(),
                    libc::MOVE_MOUNT_F_EMPTY_PATH,
                ) as libc::c_int)?;
                libc::close(trees[i]);
            }
            // No capabilities, now or after exec.
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            for cap in 0..64 {
                // EINVAL past the last capability this kernel knows.
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
            }
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
            let header = CapHeader {
                version: 0x2008_0522,
                pid: 0,
            };
            let data = [CapData::default(); 2];
            check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()) as libc::c_int)?;
        }
        Ok(())
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_paths_get_their_directories_below_the_hidden_one() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("containers/c1")).unwrap();
        std::fs::create_dir_all(data.join("vm")).unwrap();
        std::fs::write(data.join("vm/base.ext4"), "x").unwrap();
        let outside = root.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let sandbox = Sandbox {
            hide: vec![data.clone()],
            keep: vec![
                data.join("containers/c1"),
                data.join("vm/base.ext4"),
                outside.clone(),
            ],
            cgroup_procs: vec![],
            new_network: true,
        };
        let p = sandbox.prepare().unwrap();
        assert_eq!(
            p.keep.len(),
            2,
            "a path outside every hidden one needs nothing"
        );
        let dirs = |k: &Keep| {
            k.dirs
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            dirs(&p.keep[0]),
            [data.join("containers").to_string_lossy()]
        );
        assert!(p.keep[0].is_dir);
        assert_eq!(dirs(&p.keep[1]), [data.join("vm").to_string_lossy()]);
        assert!(!p.keep[1].is_dir);
        // A missing keep path is an error now, not in the child.
        let missing = Sandbox {
            hide: vec![data.clone()],
            keep: vec![data.join("nope")],
            ..Default::default()
        };
        assert!(missing.prepare().is_err());
    }
}
