//! A container's files as `docker cp` sees them: the merged root filesystem with the
//! container's volumes and bind mounts over it.
//!
//! The overlay in the daemon's mount namespace has no volumes on it (they are mounted in
//! the container's namespace only), so a path is matched against the mount destinations
//! first, lexically, and read in the mount's source when one holds it. A symlink in the
//! root filesystem that points into a volume is followed inside the root filesystem, not
//! into the volume.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use bollard_stubs::models::MountPoint;
use rustix::fs::{Mode, OFlags};

/// One volume or bind mount, open.
pub(super) struct CpMount {
    /// Clean and absolute, in the container.
    pub destination: String,
    /// The source directory, or the directory holding a bound file.
    pub dir: OwnedFd,
    /// A bound file's name in `dir`.
    pub file: Option<String>,
    pub read_only: bool,
}

/// The root and the mounts over it.
pub(super) struct CpView {
    pub root: OwnedFd,
    pub mounts: Vec<CpMount>,
}

/// Where a container path lives: the tree to resolve it in and the path inside that tree.
pub(super) struct Placed<'a> {
    pub tree: BorrowedFd<'a>,
    pub inner: String,
    pub mount: Option<&'a CpMount>,
}

impl CpView {
    /// Opens the sources of `mounts` (volumes and binds; a source that cannot be opened
    /// is left out, and its destination reads from the root filesystem).
    pub fn open(root: OwnedFd, mounts: &[MountPoint]) -> CpView {
        let mut open = Vec::new();
        for m in mounts {
            let (Some(source), Some(destination)) = (&m.source, &m.destination) else {
                continue;
            };
            let destination = super::archive::clean_abs(destination);
            let read_only = m.rw == Some(false);
            let Ok(stat) = rustix::fs::stat(source.as_str()) else {
                continue;
            };
            let is_dir = rustix::fs::FileType::from_raw_mode(stat.st_mode)
                == rustix::fs::FileType::Directory;
            let (dir, file) = if is_dir {
                (open_path(source), None)
            } else {
                let path = std::path::Path::new(source);
                let parent = path.parent().map(|p| p.to_string_lossy().into_owned());
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                match (parent, name) {
                    (Some(parent), Some(name)) => (open_path(&parent), Some(name)),
                    _ => continue,
                }
            };
            if let Ok(dir) = dir {
                open.push(CpMount {
                    destination,
                    dir,
                    file,
                    read_only,
                });
            }
        }
        // Longest destinations first, so a mount inside a mount wins.
        open.sort_by_key(|m| std::cmp::Reverse(m.destination.len()));
        CpView { root, mounts: open }
    }

    /// The tree holding the clean absolute `abs`, and the rest of the path in it (with
    /// `trailing`, a `/` or `/.` of the original, kept).
    pub fn place(&self, abs: &str, trailing: &str) -> Placed<'_> {
        for m in &self.mounts {
            let rest = if m.destination == "/" {
                Some(abs)
            } else if abs == m.destination {
                Some("")
            } else {
                abs.strip_prefix(m.destination.as_str())
                    .filter(|r| r.starts_with('/'))
            };
            let Some(rest) = rest else { continue };
            if m.file.is_some() && !rest.is_empty() {
                // Below a bound file: nothing there.
                continue;
            }
            let inner = match &m.file {
                Some(name) => format!("/{name}"),
                None => {
                    // `rest` may be empty (the mount point itself) while `trailing` is
                    // `/.`: one slash between them and in front.
                    let joined = format!("{}{trailing}", rest.trim_start_matches('/'));
                    if joined.starts_with('/') {
                        joined
                    } else {
                        format!("/{joined}")
                    }
                }
            };
            return Placed {
                tree: m.dir.as_fd(),
                inner,
                mount: Some(m),
            };
        }
        Placed {
            tree: self.root.as_fd(),
            inner: format!("{abs}{trailing}"),
            mount: None,
        }
    }
}

fn open_path(path: &str) -> io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(source: &std::path::Path, destination: &str, rw: bool) -> MountPoint {
        MountPoint {
            source: Some(source.to_string_lossy().into_owned()),
            destination: Some(destination.into()),
            rw: Some(rw),
            ..Default::default()
        }
    }

    #[test]
    fn paths_are_placed_in_the_innermost_mount() {
        let dir = tempfile::tempdir().unwrap();
        let (root, data, inner, file) = (
            dir.path().join("root"),
            dir.path().join("data"),
            dir.path().join("inner"),
            dir.path().join("conf.txt"),
        );
        for d in [&root, &data, &inner] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(&file, "x").unwrap();
        let view = CpView::open(
            open_path(root.to_str().unwrap()).unwrap(),
            &[
                mount(&data, "/data", true),
                mount(&inner, "/data/inner/", false),
                mount(&file, "/etc/conf.txt", false),
                mount(&dir.path().join("missing"), "/gone", true),
            ],
        );
        assert_eq!(view.mounts.len(), 3, "an unopenable source is left out");
        let p = view.place("/data/a/b", "");
        assert_eq!(
            (p.inner.as_str(), p.mount.map(|m| m.read_only)),
            ("/a/b", Some(false))
        );
        let p = view.place("/data", "/.");
        assert_eq!(p.inner, "/.");
        let p = view.place("/data/inner/x", "");
        assert_eq!(
            (p.inner.as_str(), p.mount.map(|m| m.read_only)),
            ("/x", Some(true))
        );
        let p = view.place("/database", "");
        assert!(p.mount.is_none(), "a prefix of a name is not a parent");
        assert_eq!(p.inner, "/database");
        let p = view.place("/etc/conf.txt", "");
        assert_eq!(p.inner, "/conf.txt");
        assert!(view.place("/etc/conf.txt/x", "").mount.is_none());
        assert!(view.place("/etc/passwd", "").mount.is_none());
    }
}
