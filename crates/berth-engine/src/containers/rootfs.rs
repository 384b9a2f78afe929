//! A container's root filesystem: an overlay of the image's shared layers (lowerdirs)
//! and the container's own upper dir, plus reads inside it that never leave it
//! (`openat2(RESOLVE_IN_ROOT)`), used for `/etc/passwd` and the executable check.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// The directories of one container's snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Layer trees, bottom first.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl Snapshot {
    pub fn in_dir(dir: &Path, lower: Vec<PathBuf>) -> Snapshot {
        Snapshot {
            lower,
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("rootfs"),
        }
    }

    /// Mounts the overlay unless it is mounted already (a restart, or a daemon that
    /// came back while the container ran).
    ///
    /// `volatile` (for `--rm` containers, whose upper dir is deleted when they exit)
    /// asks overlayfs not to sync the upper filesystem: its unmount then skips a
    /// journal commit of the host filesystem (~1 ms here) on the way to `removed`.
    /// Kernels before 5.10 do not know the option; they get a plain mount.
    pub fn mount(&self, empty_lower: &Path, volatile: bool) -> std::io::Result<()> {
        for dir in [&self.upper, &self.work, &self.merged] {
            std::fs::create_dir_all(dir)?;
        }
        if is_mount_point(&self.merged)? {
            return Ok(());
        }
        // Overlay lists the top layer first.
        let mut lower: Vec<String> = self
            .lower
            .iter()
            .rev()
            .map(|p| escape(&p.to_string_lossy()))
            .collect();
        if lower.is_empty() {
            std::fs::create_dir_all(empty_lower)?;
            lower.push(escape(&empty_lower.to_string_lossy()));
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            escape(&self.upper.to_string_lossy()),
            escape(&self.work.to_string_lossy()),
        );
        if options.len() >= 4096 {
            return Err(std::io::Error::other(format!(
                "the image has too many layers ({}) for one overlay mount",
                self.lower.len()
            )));
        }
        let mount = |options: String| {
            let data = std::ffi::CString::new(options).map_err(std::io::Error::other)?;
            rustix::mount::mount(
                "overlay",
                &self.merged,
                "overlay",
                rustix::mount::MountFlags::empty(),
                Some(data.as_c_str()),
            )
            .map_err(std::io::Error::from)
        };
        let mounted = match volatile {
            true => match mount(format!("{options},volatile")) {
                Err(err) if err.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                    mount(options)
                }
                other => other,
            },
            false => mount(options),
        };
        mounted.map_err(|e| {
            std::io::Error::other(format!("mount overlay on {}: {e}", self.merged.display()))
        })
    }

    pub fn unmount(&self) -> std::io::Result<()> {
        unmount(&self.merged)
    }
}

/// Unmounts `path` if something is mounted there (lazily when busy).
pub fn unmount(path: &Path) -> std::io::Result<()> {
    if !is_mount_point(path).unwrap_or(false) {
        return Ok(());
    }
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::BUSY) => {
            rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH)
                .map_err(std::io::Error::from)
        }
        Err(rustix::io::Errno::INVAL) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Overlay separates options with `,` and layers with `:`: escape both in paths.
pub(crate) fn escape(path: &str) -> String {
    path.replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Whether `path` is the root of a mount (its device differs from its parent's, or it
/// is listed in mountinfo).
pub fn is_mount_point(path: &Path) -> std::io::Result<bool> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(false);
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    let parent_meta = std::fs::metadata(parent)?;
    use std::os::unix::fs::MetadataExt;
    if meta.dev() != parent_meta.dev() {
        return Ok(true);
    }
    // Bind mounts of the same filesystem keep the device: ask mountinfo.
    let canonical = std::fs::canonicalize(path)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let wanted = canonical.to_string_lossy();
    Ok(mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| unescape_mountinfo(mount_point) == wanted))
}

fn unescape_mountinfo(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

fn open_in_root(root: &Path, path: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    Ok(rustix::fs::openat2(
        &root_fd,
        relative,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    )?)
}

/// Reads a file of the container's tree; `None` if it does not exist.
pub fn read_in_root(root: &Path, path: &str, limit: u64) -> std::io::Result<Option<String>> {
    match open_in_root(root, path, OFlags::RDONLY) {
        Ok(fd) => {
            let mut text = String::new();
            std::fs::File::from(fd)
                .take(limit)
                .read_to_string(&mut text)?;
            Ok(Some(text))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) if err.raw_os_error() == Some(libc_enotdir()) => Ok(None),
        Err(err) => Err(err),
    }
}

fn libc_enotdir() -> i32 {
    rustix::io::Errno::NOTDIR.raw_os_error()
}

/// Why the command cannot start, in runc's words (`exec: "x": …`), which the docker
/// CLI turns into exit status 127 (not found) or 126 (not executable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecProblem {
    NotFound(String),
    NotExecutable(String),
}

impl ExecProblem {
    pub fn message(&self) -> String {
        let detail = match self {
            ExecProblem::NotFound(m) | ExecProblem::NotExecutable(m) => m,
        };
        format!(
            "failed to create task for container: OCI runtime create failed: unable to start container process: {detail}: unknown"
        )
    }

    /// The exit code Docker records for a container that could not start this way.
    pub fn exit_code(&self) -> i64 {
        match self {
            ExecProblem::NotFound(_) => 127,
            ExecProblem::NotExecutable(_) => 126,
        }
    }
}

/// Checks that `argv0` names an executable in the tree at `root`, searching `path_env`
/// (the process's `PATH`) when it has no `/`, relative paths against `cwd`.
pub fn check_executable(
    root: &Path,
    argv0: &str,
    path_env: &str,
    cwd: &str,
) -> Result<(), ExecProblem> {
    if argv0.contains('/') {
        let full = if argv0.starts_with('/') {
            argv0.to_string()
        } else {
            format!("{}/{}", cwd.trim_end_matches('/'), argv0)
        };
        return match probe(root, &full) {
            Probe::Executable => Ok(()),
            Probe::Missing => Err(ExecProblem::NotFound(format!(
                "exec: \"{argv0}\": stat {argv0}: no such file or directory"
            ))),
            Probe::NotExecutable => Err(ExecProblem::NotExecutable(format!(
                "exec: \"{argv0}\": permission denied"
            ))),
        };
    }
    for dir in path_env.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = if dir.starts_with('/') {
            format!("{}/{argv0}", dir.trim_end_matches('/'))
        } else {
            format!("{}/{dir}/{argv0}", cwd.trim_end_matches('/'))
        };
        if probe(root, &candidate) == Probe::Executable {
            return Ok(());
        }
    }
    Err(ExecProblem::NotFound(format!(
        "exec: \"{argv0}\": executable file not found in $PATH"
    )))
}

#[derive(Debug, PartialEq, Eq)]
enum Probe {
    Executable,
    NotExecutable,
    Missing,
}

fn probe(root: &Path, path: &str) -> Probe {
    let Ok(fd) = open_in_root(root, path, OFlags::PATH) else {
        return Probe::Missing;
    };
    match rustix::fs::fstat(&fd) {
        Ok(stat) => {
            let mode = stat.st_mode;
            let regular =
                rustix::fs::FileType::from_raw_mode(mode) == rustix::fs::FileType::RegularFile;
            if regular && mode & 0o111 != 0 {
                Probe::Executable
            } else {
                Probe::NotExecutable
            }
        }
        Err(_) => Probe::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tree() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("bin/busybox"), b"#!").unwrap();
        std::fs::set_permissions(
            root.join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/etc/../../../../etc/passwd", root.join("bin/escape")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        tmp
    }

    #[test]
    fn executables_are_found_like_runc() {
        let tmp = tree();
        let root = tmp.path();
        assert_eq!(check_executable(root, "sh", "/usr/bin:/bin", "/"), Ok(()));
        assert_eq!(check_executable(root, "/bin/sh", "", "/"), Ok(()));
        assert_eq!(check_executable(root, "../bin/sh", "", "/etc"), Ok(()));
        let missing = check_executable(root, "nope", "/bin", "/").unwrap_err();
        assert_eq!(missing.exit_code(), 127);
        assert!(
            missing
                .message()
                .contains("exec: \"nope\": executable file not found in $PATH")
        );
        let denied = check_executable(root, "/etc/passwd", "/bin", "/").unwrap_err();
        assert_eq!(denied.exit_code(), 126);
        assert!(denied.message().contains("permission denied"));
        let dir = check_executable(root, "/etc", "/bin", "/").unwrap_err();
        assert_eq!(dir.exit_code(), 126);
        assert_eq!(
            check_executable(root, "/x/y", "/bin", "/")
                .unwrap_err()
                .exit_code(),
            127
        );
    }

    #[test]
    fn reads_stay_inside_the_root() {
        let tmp = tree();
        let root = tmp.path();
        let passwd = read_in_root(root, "/etc/passwd", 1 << 20).unwrap().unwrap();
        assert!(passwd.starts_with("root:"));
        // The symlink climbs out, but resolves inside the root.
        let via_link = read_in_root(root, "/bin/escape", 1 << 20).unwrap().unwrap();
        assert_eq!(via_link, passwd);
        assert_eq!(read_in_root(root, "/etc/group", 1 << 20).unwrap(), None);
    }

    #[test]
    fn overlay_options_escape_separators() {
        assert_eq!(escape("/a:b,c"), "/a\\:b\\,c");
    }
}
