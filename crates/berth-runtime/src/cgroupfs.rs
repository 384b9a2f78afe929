//! Cgroup directories on the host: located from the mount table, created for a new
//! container, removed when it is gone. The one part of this crate that touches the
//! host; used by berth-runtime's launcher and by the shim's delete.
//!
//! Putting the container's first process into its cgroup without the kernel's slow path:
//! Moving a process into a cgroup by writing its pid to `cgroup.procs` takes the kernel's
//! global thread-group lock for writing, and the first writer after a quiet spell waits
//! for an RCU grace period: 7–15 ms measured here, on every container start (runc and
//! libcontainer pay it too). The kernel skips that lock when a thread moves *itself* by
//! writing `0` to a cgroup v1 `tasks` file, and a process cloned with `CLONE_INTO_CGROUP`
//! (cgroup v2) never migrates at all. So the launcher prepares the cgroup directories
//! and the container's process enters them itself (v1), or is born in its cgroup (v2):
//! 0.2 ms instead of 7–15.
//!
//! Every root is a parameter, so the directory work is tested on fake trees.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// What went wrong with a cgroup directory.
#[derive(Debug, Error)]
pub enum CgroupError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no cgroup filesystem is mounted (neither v1 nor v2)")]
    NoCgroupFs,
    #[error("cgroup path {0} leaves its hierarchy")]
    BadPath(String),
    #[error("remove cgroups: {0}")]
    Remove(String),
}

type Result<T> = std::result::Result<T, CgroupError>;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { what, path, source }
}

/// The v1 controllers libcgroups manages (and so removes on delete), by mount option.
const V1_CONTROLLERS: [&str; 12] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// v1 controllers libcgroups leaves alone; a hierarchy of them is still shown to a
/// container.
const OTHER_V1_CONTROLLERS: [&str; 3] = ["rdma", "misc", "debug"];

/// The directories of one cgroup path in this host's cgroup hierarchies.
#[derive(Debug, Clone, PartialEq)]
pub enum CgroupDirs {
    /// cgroup v1 (or the hybrid layout): (controller, directory) per mounted controller.
    V1(Vec<(String, PathBuf)>),
    /// cgroup v2: (the unified root, the directory).
    V2 { root: PathBuf, dir: PathBuf },
}

impl CgroupDirs {
    /// `cgroups_path` (absolute within each hierarchy) as the host's cgroup mounts lay
    /// it out, read from this process's mountinfo.
    pub fn locate(cgroups_path: &Path) -> Result<CgroupDirs> {
        CgroupMounts::read()?.dirs(cgroups_path)
    }

    /// Creates the directories: cpuset ones (v1) get their parents' CPUs and memory
    /// nodes, since a cpuset without them accepts no task; v2 ones get every available
    /// controller enabled on the way down, as libcgroups creates them.
    pub fn create(&self) -> Result<Placement> {
        match self {
            CgroupDirs::V1(dirs) => {
                let mut tasks: Vec<PathBuf> = Vec::new();
                for (controller, dir) in dirs {
                    if controller == "cpuset" {
                        create_cpuset(dir)?;
                    } else {
                        fs::create_dir_all(dir).map_err(io("create", dir))?;
                    }
                    let file = dir.join("tasks");
                    if !tasks.contains(&file) {
                        tasks.push(file);
                    }
                }
                Ok(Placement::V1 { tasks })
            }
            CgroupDirs::V2 { root, dir } => {
                create_v2(root, dir)?;
                let fd = fs::File::open(dir).map_err(io("open", dir))?.into();
                Ok(Placement::V2 {
                    dir: fd,
                    procs: dir.join("cgroup.procs"),
                })
            }
        }
    }

    /// Removes the directories, killing what is left in them first (the processes of a
    /// container whose init has died may take a moment to go).
    pub fn remove(&self) -> Result<()> {
        let dirs: Vec<&PathBuf> = match self {
            CgroupDirs::V1(dirs) => dirs.iter().map(|(_, d)| d).collect(),
            CgroupDirs::V2 { dir, .. } => vec![dir],
        };
        let mut failed = Vec::new();
        for dir in dirs {
            if let Err(err) = remove_dir(dir) {
                failed.push(format!("{}: {err}", dir.display()));
            }
        }
        if !failed.is_empty() {
            return Err(CgroupError::Remove(failed.join("; ")));
        }
        Ok(())
    }
}

fn remove_dir(dir: &Path) -> std::io::Result<()> {
    for attempt in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && attempt < 49 => {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill has no memory arguments.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Where the container's process goes.
#[derive(Debug)]
pub enum Placement {
    /// cgroup v1: the process writes `0` to each of these `tasks` files itself.
    V1 { tasks: Vec<PathBuf> },
    /// cgroup v2: the process is cloned into `dir`; if the kernel refuses
    /// `CLONE_INTO_CGROUP`, it writes `0` to `procs` instead.
    V2 { dir: OwnedFd, procs: PathBuf },
}

impl Placement {
    /// The cgroup directory to clone into, for `clone3`'s `CLONE_INTO_CGROUP`.
    pub fn clone_into(&self) -> Option<i32> {
        match self {
            Placement::V1 { .. } => None,
            Placement::V2 { dir, .. } => Some(dir.as_raw_fd()),
        }
    }

    /// Run by the container's (single-threaded) process: moves itself in. `cloned_in`
    /// says whether `clone3` already put it there.
    pub fn enter_self(&self, cloned_in: bool) -> Result<()> {
        let files: &[PathBuf] = match self {
            Placement::V1 { tasks } => tasks,
            Placement::V2 { .. } if cloned_in => return Ok(()),
            Placement::V2 { procs, .. } => std::slice::from_ref(procs),
        };
        for file in files {
            fs::write(file, "0").map_err(io("join cgroup", file))?;
        }
        Ok(())
    }
}

/// Creates `dir` below the unified `root`, enabling the available controllers in each
/// level above it.
fn create_v2(root: &Path, dir: &Path) -> Result<()> {
    let relative = dir
        .strip_prefix(root)
        .map_err(|_| CgroupError::BadPath(dir.display().to_string()))?;
    let mut current = root.to_path_buf();
    for component in relative.components() {
        let controllers = fs::read_to_string(current.join("cgroup.controllers"))
            .map_err(io("read", &current.join("cgroup.controllers")))?;
        let enable: Vec<String> = controllers
            .split_whitespace()
            .map(|c| format!("+{c}"))
            .collect();
        if !enable.is_empty() {
            let control = current.join("cgroup.subtree_control");
            fs::write(&control, enable.join(" ")).map_err(io("write", &control))?;
        }
        current.push(component);
        if let Err(err) = fs::create_dir(&current)
            && err.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(io("create", &current)(err));
        }
    }
    Ok(())
}

/// `/berth/abc` → `berth/abc`; `..` is refused, as libcgroups refuses it.
fn relative(cgroups_path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in cgroups_path.components() {
        match component {
            std::path::Component::Normal(part) => out.push(part),
            std::path::Component::RootDir | std::path::Component::CurDir => {}
            _ => return Err(CgroupError::BadPath(cgroups_path.display().to_string())),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(CgroupError::BadPath(cgroups_path.display().to_string()));
    }
    Ok(out)
}

/// Creates each missing level of the cpuset cgroup `dir`, copying `cpuset.cpus` and
/// `cpuset.mems` from its parent where they are empty.
fn create_cpuset(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut level = dir;
    while !level.is_dir() {
        missing.push(level.to_path_buf());
        level = level
            .parent()
            .ok_or_else(|| CgroupError::BadPath(dir.display().to_string()))?;
    }
    for dir in missing
        .iter()
        .rev()
        .chain(std::iter::once(&dir.to_path_buf()))
    {
        if let Err(err) = fs::create_dir(dir)
            && err.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(io("create", dir)(err));
        }
        let parent = dir
            .parent()
            .ok_or_else(|| CgroupError::BadPath(dir.display().to_string()))?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = fs::read_to_string(dir.join(file)).unwrap_or_default();
            if own.trim().is_empty() {
                let inherited = fs::read_to_string(parent.join(file))
                    .map_err(io("read", &parent.join(file)))?;
                fs::write(dir.join(file), inherited.trim())
                    .map_err(io("write", &dir.join(file)))?;
            }
        }
    }
    Ok(())
}

/// The cgroup filesystems in a mountinfo.
#[derive(Debug, Default, PartialEq)]
pub struct CgroupMounts {
    /// (controller, mount point) for each v1 controller libcgroups manages.
    pub v1: Vec<(String, PathBuf)>,
    /// The cgroup2 mount point, if any.
    pub unified: Option<PathBuf>,
    /// The cgroup2 mount's root within the hierarchy (`/` unless the host is itself
    /// a container).
    pub unified_root: String,
    /// Every v1 hierarchy, as mounted. The named ones (systemd's) are joined too on a
    /// v1 host, as runc does, so the container sees only its own part of them.
    pub hierarchies: Vec<Hierarchy>,
}

/// One cgroup v1 hierarchy as the host mounts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// The mount's root within the hierarchy.
    pub root: String,
    /// Its controllers, and `name=…` for a named one, sorted.
    pub subsystems: Vec<String>,
}

/// A cgroup hierarchy as a container sees it: the directory under its cgroup mount,
/// and the host directory of the container's own cgroup there.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnCgroup {
    /// The hierarchy's directory name (`cpu,cpuacct`, `systemd`).
    pub name: String,
    /// Options for a new mount of the hierarchy (`cpu,cpuacct`, `name=systemd`).
    pub subsystems: String,
    /// The host directory of the process's cgroup in it.
    pub dir: PathBuf,
}

impl CgroupMounts {
    /// The directories of `cgroups_path`: v1 when any v1 controller is mounted (as
    /// libcgroups decides for the hybrid layout), else v2.
    pub fn dirs(&self, cgroups_path: &Path) -> Result<CgroupDirs> {
        let relative = relative(cgroups_path)?;
        if self.v1.is_empty() {
            let root = self.unified.clone().ok_or(CgroupError::NoCgroupFs)?;
            let dir = root.join(&relative);
            Ok(CgroupDirs::V2 { root, dir })
        } else {
            let named = self.hierarchies.iter().flat_map(|h| {
                h.subsystems
                    .iter()
                    .filter(|s| s.starts_with("name="))
                    .map(|s| (s.clone(), h.mount_point.clone()))
            });
            Ok(CgroupDirs::V1(
                self.v1
                    .iter()
                    .cloned()
                    .chain(named)
                    .map(|(c, mount)| (c, mount.join(&relative)))
                    .collect(),
            ))
        }
    }

    /// This host's cgroup mounts, from this process's mountinfo.
    pub fn read() -> Result<CgroupMounts> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(io("read", Path::new("/proc/self/mountinfo")))?;
        Ok(CgroupMounts::parse(&mountinfo))
    }

    /// Whether containers get cgroup v1 hierarchies (any v1 controller is mounted, the
    /// hybrid layout included), as [`CgroupMounts::dirs`] decides.
    pub fn is_v1(&self) -> bool {
        !self.v1.is_empty()
    }

    /// The v1 hierarchies a process whose `/proc/self/cgroup` reads `own` belongs to,
    /// each with the host directory of its cgroup there. Hierarchies whose mount does
    /// not reach that cgroup (another container's root) are left out.
    pub fn own_v1(&self, own: &str) -> Vec<OwnCgroup> {
        let mut out = Vec::new();
        for line in own.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                continue;
            }
            let mut wanted: Vec<&str> = controllers.split(',').collect();
            wanted.sort_unstable();
            let Some(hierarchy) = self.hierarchies.iter().find(|h| h.subsystems == wanted) else {
                continue;
            };
            let (Some(dir), Some(name)) = (
                within(&hierarchy.mount_point, &hierarchy.root, path),
                hierarchy.mount_point.file_name(),
            ) else {
                continue;
            };
            out.push(OwnCgroup {
                name: name.to_string_lossy().into_owned(),
                subsystems: hierarchy.subsystems.join(","),
                dir,
            });
        }
        out
    }

    /// The host directory of the cgroup2 cgroup of a process whose `/proc/self/cgroup`
    /// reads `own`.
    pub fn own_v2(&self, own: &str) -> Option<PathBuf> {
        let unified = self.unified.as_ref()?;
        let path = own.lines().find_map(|line| line.strip_prefix("0::"))?;
        within(unified, &self.unified_root, path)
    }

    pub fn parse(mountinfo: &str) -> CgroupMounts {
        let mut mounts = CgroupMounts::default();
        for line in mountinfo.lines() {
            let Some((before, after)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = before.split(' ').nth(4) else {
                continue;
            };
            let root = unescape(before.split(' ').nth(3).unwrap_or("/"));
            let mut tail = after.split(' ');
            let (fstype, _source, options) = (tail.next(), tail.next(), tail.next());
            let mount_point = PathBuf::from(unescape(mount_point));
            match fstype {
                Some("cgroup2") if mounts.unified.is_none() => {
                    mounts.unified = Some(mount_point);
                    mounts.unified_root = root;
                }
                Some("cgroup") => {
                    let mut subsystems = Vec::new();
                    for option in options.unwrap_or_default().split(',') {
                        if V1_CONTROLLERS.contains(&option)
                            || OTHER_V1_CONTROLLERS.contains(&option)
                            || option.starts_with("name=")
                        {
                            subsystems.push(option.to_string());
                        }
                        if V1_CONTROLLERS.contains(&option)
                            && !mounts.v1.iter().any(|(c, _)| c == option)
                        {
                            mounts.v1.push((option.to_string(), mount_point.clone()));
                        }
                    }
                    subsystems.sort_unstable();
                    if !mounts
                        .hierarchies
                        .iter()
                        .any(|h| h.subsystems == subsystems)
                    {
                        mounts.hierarchies.push(Hierarchy {
                            mount_point,
                            root,
                            subsystems,
                        });
                    }
                }
                _ => {}
            }
        }
        mounts
    }
}

/// `path` (a cgroup path as /proc/self/cgroup gives it) as a host directory under a
/// hierarchy mounted at `mount_point` with root `root`; None when the mount does not
/// reach it.
fn within(mount_point: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let rest = rest.trim_start_matches('/');
    if rest.split('/').any(|part| part == "..") {
        return None;
    }
    Some(if rest.is_empty() {
        mount_point.to_path_buf()
    } else {
        mount_point.join(rest)
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
27 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
28 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 25 0:27 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/my\\040dir rw,relatime - cgroup cgroup rw,pids
";

    #[test]
    fn mountinfo_gives_v1_controllers_and_the_unified_mount() {
        let mounts = CgroupMounts::parse(HYBRID);
        assert_eq!(
            mounts.unified,
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v1: Vec<(&str, &str)> = mounts
            .v1
            .iter()
            .map(|(c, p)| (c.as_str(), p.to_str().unwrap()))
            .collect();
        assert_eq!(
            v1,
            [
                ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
                ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
                ("memory", "/sys/fs/cgroup/memory"),
                ("pids", "/sys/fs/cgroup/my dir"),
            ]
        );
        let named: Vec<(&[String], &Path)> = mounts
            .hierarchies
            .iter()
            .filter(|h| h.subsystems.iter().any(|s| s.starts_with("name=")))
            .map(|h| (h.subsystems.as_slice(), h.mount_point.as_path()))
            .collect();
        assert_eq!(
            named,
            [(
                &["name=systemd".to_string()][..],
                Path::new("/sys/fs/cgroup/systemd")
            )]
        );
        let unified = CgroupMounts::parse(
            "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        assert!(unified.v1.is_empty());
        assert_eq!(unified.unified, Some(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn v1_directories_are_created_shared_mounts_listed_once_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let cpu = root.path().join("cpu,cpuacct");
        let cpuset = root.path().join("cpuset");
        fs::create_dir_all(&cpu).unwrap();
        fs::create_dir_all(&cpuset).unwrap();
        fs::write(cpuset.join("cpuset.cpus"), "0-1\n").unwrap();
        fs::write(cpuset.join("cpuset.mems"), "0\n").unwrap();
        let mounts = CgroupMounts {
            v1: vec![
                ("cpu".to_string(), cpu.clone()),
                ("cpuacct".to_string(), cpu.clone()),
                ("cpuset".to_string(), cpuset.clone()),
            ],
            unified: Some(root.path().join("unified")),
            ..CgroupMounts::default()
        };
        let dirs = mounts.dirs(Path::new("/berth/c1")).unwrap();
        let placement = dirs.create().unwrap();
        let Placement::V1 { tasks } = &placement else {
            panic!("v1 expected")
        };
        assert_eq!(
            tasks,
            &[cpu.join("berth/c1/tasks"), cpuset.join("berth/c1/tasks")]
        );
        assert!(cpu.join("berth/c1").is_dir());
        for level in ["berth", "berth/c1"] {
            let dir = cpuset.join(level);
            assert_eq!(fs::read_to_string(dir.join("cpuset.cpus")).unwrap(), "0-1");
            assert_eq!(fs::read_to_string(dir.join("cpuset.mems")).unwrap(), "0");
        }
        // The process writes 0 to each tasks file (plain files in this fake tree).
        placement.enter_self(false).unwrap();
        assert_eq!(fs::read_to_string(&tasks[0]).unwrap(), "0");
        // A cpuset level that already has CPUs keeps them.
        fs::write(cpuset.join("berth/c1/cpuset.cpus"), "1").unwrap();
        dirs.create().unwrap();
        assert_eq!(
            fs::read_to_string(cpuset.join("berth/c1/cpuset.cpus")).unwrap(),
            "1"
        );
        // Removal of a real cgroup is an rmdir; in a fake tree the files must go first.
        for dir in [cpu.join("berth/c1"), cpuset.join("berth/c1")] {
            for entry in fs::read_dir(&dir).unwrap() {
                fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        dirs.remove().unwrap();
        assert!(!cpu.join("berth/c1").exists() && !cpuset.join("berth/c1").exists());
        assert!(cpu.join("berth").is_dir(), "the parent stays");
        dirs.remove().unwrap();
    }

    #[test]
    fn v2_enables_controllers_on_the_way_down() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::create_dir(root.path().join("berth")).unwrap();
        fs::write(
            root.path().join("berth/cgroup.controllers"),
            "cpu memory pids\n",
        )
        .unwrap();
        let mounts = CgroupMounts {
            unified: Some(root.path().to_path_buf()),
            ..CgroupMounts::default()
        };
        let dirs = mounts.dirs(Path::new("/berth/c2")).unwrap();
        assert_eq!(
            dirs,
            CgroupDirs::V2 {
                root: root.path().to_path_buf(),
                dir: root.path().join("berth/c2")
            }
        );
        let placement = dirs.create().unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap(),
            "+cpu +memory +pids"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("berth/cgroup.subtree_control")).unwrap(),
            "+cpu +memory +pids"
        );
        assert!(root.path().join("berth/c2").is_dir());
        assert!(placement.clone_into().is_some());
        // Cloned in: nothing to write. Not cloned in: it joins through cgroup.procs.
        placement.enter_self(true).unwrap();
        assert!(!root.path().join("berth/c2/cgroup.procs").exists());
        placement.enter_self(false).unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("berth/c2/cgroup.procs")).unwrap(),
            "0"
        );
    }

    #[test]
    fn a_process_sees_its_own_cgroup_in_each_hierarchy() {
        // The host is itself a container: its memory hierarchy is mounted from
        // /outer, and the unified one from /outer too.
        let mounts = CgroupMounts::parse(
            "\
27 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
28 25 0:26 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
29 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/rdma rw - cgroup cgroup rw,rdma
31 25 0:29 /outer /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
",
        );
        assert!(mounts.is_v1());
        let own = "\
12:rdma:/
11:cpuacct,cpu:/berth/c1
10:memory:/outer/berth/c1
9:name=systemd:/berth/c1
8:pids:/berth/c1
7:memory:/elsewhere
0::/outer/berth/c1
";
        let seen: Vec<(String, String, PathBuf)> = mounts
            .own_v1(own)
            .into_iter()
            .map(|c| (c.name, c.subsystems, c.dir))
            .collect();
        assert_eq!(
            seen,
            [
                ("rdma".into(), "rdma".into(), "/sys/fs/cgroup/rdma".into()),
                (
                    "cpu,cpuacct".into(),
                    "cpu,cpuacct".into(),
                    "/sys/fs/cgroup/cpu,cpuacct/berth/c1".into()
                ),
                (
                    "memory".into(),
                    "memory".into(),
                    "/sys/fs/cgroup/memory/berth/c1".into()
                ),
                (
                    "systemd".into(),
                    "name=systemd".into(),
                    "/sys/fs/cgroup/systemd/berth/c1".into()
                ),
            ],
            "pids is not mounted; /elsewhere is outside the memory mount's root"
        );
        assert_eq!(
            mounts.own_v2(own),
            Some(PathBuf::from("/sys/fs/cgroup/unified/berth/c1"))
        );
        assert_eq!(mounts.own_v2("0::/outer2/x\n"), None);
        assert_eq!(mounts.own_v2("0::/outer/../x\n"), None);
        // Joined on a v1 host: every controller hierarchy and the named one.
        let CgroupDirs::V1(dirs) = mounts.dirs(Path::new("/berth/c1")).unwrap() else {
            panic!("v1 expected")
        };
        let names: Vec<&str> = dirs.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["cpu", "cpuacct", "memory", "name=systemd"]);
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        let err = CgroupMounts::default()
            .dirs(Path::new("/berth/c3"))
            .unwrap_err();
        assert!(err.to_string().contains("no cgroup filesystem"), "{err}");
    }

    #[test]
    fn paths_that_leave_the_hierarchy_are_refused() {
        assert!(relative(Path::new("/berth/../../etc")).is_err());
        assert!(relative(Path::new("/")).is_err());
        assert_eq!(relative(Path::new("/a/b")).unwrap(), PathBuf::from("a/b"));
    }
}
