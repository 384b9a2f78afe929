//! The container's mounts, in Docker's order: the default filesystems (`oci/defaults.go`),
//! the init binary, then the per-container mounts sorted by depth (`daemon/oci_linux.go`
//! `WithMounts`), with the read-only-rootfs and privileged adjustments.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::process::INIT_PATH_IN_CONTAINER;
use crate::{EtcFiles, SpecError};

/// One mount before conversion to the OCI type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    destination: String,
    kind: &'static str,
    source: PathBuf,
    options: Vec<String>,
}

fn entry(destination: &str, kind: &'static str, source: &str, options: &[&str]) -> Entry {
    Entry {
        destination: destination.to_string(),
        kind,
        source: PathBuf::from(source),
        options: options.iter().map(|o| o.to_string()).collect(),
    }
}

/// How `/dev/shm` is provided (it follows the IPC mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shm {
    /// A private tmpfs of this size in bytes.
    Private(i64),
    /// The host's `/dev/shm` (`--ipc host`).
    Host,
    /// None at all (`--ipc none`).
    None,
}

/// What decides the mount list.
pub struct MountPlan<'a> {
    pub shm: Shm,
    pub etc_files: &'a EtcFiles,
    pub tmpfs: &'a std::collections::BTreeMap<String, String>,
    /// The host path of the init binary, when `--init` applies.
    pub init: Option<&'a Path>,
    pub read_only_rootfs: bool,
    pub privileged: bool,
    pub writable_cgroups: bool,
}

fn defaults() -> Vec<Entry> {
    vec![
        entry("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        entry(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        entry(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        entry(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        entry(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        entry(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        entry(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777"],
        ),
    ]
}

/// A bind mount the way Docker writes one for its own files: recursive, private.
fn bind(destination: &str, source: &Path, writable: bool) -> Entry {
    let mut options = vec!["rbind".to_string()];
    if !writable {
        options.push("ro".to_string());
    }
    options.push("rprivate".to_string());
    Entry {
        destination: destination.to_string(),
        kind: "bind",
        source: source.to_path_buf(),
        options,
    }
}

/// Path depth as Docker sorts mounts (`/` = 1, `/run` = 2, `/etc/hosts` = 3).
fn depth(destination: &str) -> usize {
    let trimmed = destination.trim_end_matches('/');
    1 + trimmed.matches('/').count()
}

/// The mount list for a container.
pub fn mounts(plan: &MountPlan) -> Result<Vec<Mount>, SpecError> {
    let mut base = defaults();
    if let Some(init) = plan.init {
        base.push(Entry {
            destination: INIT_PATH_IN_CONTAINER.to_string(),
            kind: "bind",
            source: init.to_path_buf(),
            options: vec!["bind".to_string(), "ro".to_string()],
        });
    }

    // The per-container mounts: Docker's own /etc files, the IPC mount, then --tmpfs.
    let mut user: Vec<Entry> = Vec::new();
    let writable = !plan.read_only_rootfs;
    let etc = [
        ("/etc/resolv.conf", &plan.etc_files.resolv_conf),
        ("/etc/hostname", &plan.etc_files.hostname),
        ("/etc/hosts", &plan.etc_files.hosts),
    ];
    for (destination, source) in etc {
        if let Some(source) = source {
            user.push(bind(destination, source, writable));
        }
    }
    if plan.shm == Shm::Host {
        user.push(bind("/dev/shm", Path::new("/dev/shm"), true));
    }
    for (destination, data) in plan.tmpfs {
        if !destination.starts_with('/') {
            return Err(SpecError::TmpfsPath(destination.clone()));
        }
        let mut options: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"]
            .iter()
            .map(|o| o.to_string())
            .collect();
        options.extend(data.split(',').filter(|o| !o.is_empty()).map(String::from));
        user.push(Entry {
            destination: destination.clone(),
            kind: "tmpfs",
            source: PathBuf::from("tmpfs"),
            options: merge_tmpfs_options(&options)?,
        });
    }
    user.sort_by_key(|m| depth(&m.destination));

    let is_user = |d: &str| user.iter().any(|m| m.destination == d);
    let user_dev = is_user("/dev");
    let mut out: Vec<Entry> = Vec::new();
    for mut m in base {
        if is_user(&m.destination) || (user_dev && m.destination.starts_with("/dev/")) {
            continue;
        }
        if m.destination == "/dev/shm" {
            match plan.shm {
                Shm::Private(size) => m.options.push(format!("size={size}")),
                Shm::Host | Shm::None => continue,
            }
        }
        if plan.read_only_rootfs
            && !matches!(
                m.destination.as_str(),
                "/proc" | "/dev/pts" | "/dev/shm" | "/dev/mqueue" | "/dev"
            )
            && !m.options.iter().any(|o| o == "ro")
        {
            m.options.push("ro".to_string());
        }
        let clear_ro = (plan.privileged && m.destination == "/sys")
            || ((plan.privileged || plan.writable_cgroups) && m.kind == "cgroup");
        if clear_ro {
            m.options.retain(|o| o != "ro");
        }
        out.push(m);
    }
    out.extend(user);

    out.into_iter()
        .map(|m| {
            let mut mount = Mount::default();
            mount.set_destination(PathBuf::from(m.destination));
            mount.set_typ(Some(m.kind.to_string()));
            mount.set_source(Some(m.source));
            mount.set_options(Some(m.options));
            Ok(mount)
        })
        .collect()
}

/// tmpfs mount flags and which ones cancel each other (moby/sys/mount `flags`): options
/// with the same key collide, the later one wins. All propagation flags share one key.
fn flag_key(option: &str) -> Option<&'static str> {
    Some(match option {
        "ro" | "rw" => "rdonly",
        "suid" | "nosuid" => "nosuid",
        "dev" | "nodev" => "nodev",
        "exec" | "noexec" => "noexec",
        "sync" | "async" => "sync",
        "dirsync" => "dirsync",
        "remount" => "remount",
        "mand" | "nomand" => "mand",
        "atime" | "noatime" => "noatime",
        "diratime" | "nodiratime" => "nodiratime",
        "bind" => "bind",
        "rbind" => "rbind",
        "relatime" | "norelatime" => "relatime",
        "strictatime" | "nostrictatime" => "strictatime",
        "unbindable" | "runbindable" | "private" | "rprivate" | "shared" | "rshared" | "slave"
        | "rslave" => "propagation",
        _ => return None,
    })
}

const TMPFS_DATA: [&str; 8] = [
    "",
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// Docker's `MergeTmpfsOptions`: later options override earlier ones of the same kind,
/// `defaults` is dropped, and anything that is neither a flag nor a known `key=value`
/// is refused.
pub fn merge_tmpfs_options(options: &[String]) -> Result<Vec<String>, SpecError> {
    let mut seen: Vec<String> = Vec::new();
    let mut merged: Vec<String> = Vec::new();
    for option in options.iter().rev() {
        if option == "defaults" {
            continue;
        }
        let key = match flag_key(option) {
            Some(key) => key.to_string(),
            None => match option.split_once('=') {
                Some((k, _)) if TMPFS_DATA.contains(&k) => format!("data:{k}"),
                _ => {
                    let parts: Vec<String> =
                        option.splitn(2, '=').map(|p| format!("{p:?}")).collect();
                    return Err(SpecError::TmpfsOption(format!("[{}]", parts.join(" "))));
                }
            },
        };
        if !seen.contains(&key) {
            seen.push(key);
            merged.push(option.clone());
        }
    }
    merged.reverse();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tmpfs_options_merge_like_docker() {
        let merged =
            merge_tmpfs_options(&s(&["noexec", "nosuid", "nodev", "rprivate", "size=1m"])).unwrap();
        assert_eq!(
            merged,
            s(&["noexec", "nosuid", "nodev", "rprivate", "size=1m"])
        );
        let merged = merge_tmpfs_options(&s(&[
            "noexec",
            "nosuid",
            "nodev",
            "rprivate",
            "exec",
            "size=1m",
            "size=2m",
            "shared",
            "defaults",
            "mode=1777",
        ]))
        .unwrap();
        assert_eq!(
            merged,
            s(&["nosuid", "nodev", "exec", "size=2m", "shared", "mode=1777"])
        );
    }

    #[test]
    fn bad_tmpfs_options_are_refused() {
        let err = merge_tmpfs_options(&s(&["nosuid", "bogus"])).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid tmpfs option ["bogus"]"#);
        let err = merge_tmpfs_options(&s(&["colour=red"])).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid tmpfs option ["colour" "red"]"#);
    }

    #[test]
    fn depth_counts_components() {
        assert_eq!(depth("/"), 1);
        assert_eq!(depth("/run"), 2);
        assert_eq!(depth("/etc/hosts"), 3);
        assert_eq!(depth("/run/"), 2);
    }

    fn plan<'a>(
        etc: &'a EtcFiles,
        tmpfs: &'a std::collections::BTreeMap<String, String>,
    ) -> MountPlan<'a> {
        MountPlan {
            shm: Shm::Private(67108864),
            etc_files: etc,
            tmpfs,
            init: None,
            read_only_rootfs: false,
            privileged: false,
            writable_cgroups: false,
        }
    }

    fn destinations(m: &[Mount]) -> Vec<String> {
        m.iter()
            .map(|m| m.destination().display().to_string())
            .collect()
    }

    #[test]
    fn user_mounts_replace_defaults_and_dev_takes_its_children() {
        let etc = EtcFiles::default();
        let tmpfs = [("/dev".to_string(), String::new())].into_iter().collect();
        let m = mounts(&plan(&etc, &tmpfs)).unwrap();
        assert_eq!(
            destinations(&m),
            s(&["/proc", "/sys", "/sys/fs/cgroup", "/dev"])
        );
        let tmpfs = [("/dev/shm".to_string(), "size=8m".to_string())]
            .into_iter()
            .collect();
        let m = mounts(&plan(&etc, &tmpfs)).unwrap();
        let shm = m.last().unwrap();
        assert_eq!(shm.destination(), Path::new("/dev/shm"));
        assert_eq!(shm.source().as_deref(), Some(Path::new("tmpfs")));
        assert_eq!(
            m.iter()
                .filter(|m| m.destination() == Path::new("/dev/shm"))
                .count(),
            1
        );
    }

    #[test]
    fn ipc_modes_change_dev_shm() {
        let etc = EtcFiles::default();
        let tmpfs = Default::default();
        let mut p = plan(&etc, &tmpfs);
        p.shm = Shm::None;
        assert!(!destinations(&mounts(&p).unwrap()).contains(&"/dev/shm".to_string()));
        p.shm = Shm::Host;
        let m = mounts(&p).unwrap();
        let shm = m.last().unwrap();
        assert_eq!(shm.typ().as_deref(), Some("bind"));
        assert_eq!(shm.options().clone().unwrap(), s(&["rbind", "rprivate"]));
    }

    #[test]
    fn relative_tmpfs_path_is_refused() {
        let etc = EtcFiles::default();
        let tmpfs = [("run".to_string(), String::new())].into_iter().collect();
        assert_eq!(
            mounts(&plan(&etc, &tmpfs)).unwrap_err().to_string(),
            "invalid mount config for type \"tmpfs\": invalid mount path: 'run' mount path must be absolute"
        );
    }
}
