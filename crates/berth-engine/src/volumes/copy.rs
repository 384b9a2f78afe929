//! Docker's copy-up: what an image holds at a volume's mount path is copied into the new, empty
//! volume the first time a container mounts it, with owners, modes, times, symlinks, hard
//! links, xattrs and device nodes kept. And `du` for `system df` and prune.
//!
//! Symlinks are never followed on either side: every call on a source entry is `lstat`-like,
//! and the destination tree is built here, one entry at a time, inside a fresh volume.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, CWD, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags, chownat, mknodat,
    utimensat,
};

/// Copies the content of `src` (a directory) into `dst` (an existing, empty directory), and
/// gives `dst` itself the owner, mode, xattrs and times of `src`.
pub fn copy_dir_contents(src: &Path, dst: &Path) -> io::Result<()> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    copy_tree(src, dst, &mut links)?;
    let meta = fs::symlink_metadata(src)?;
    apply_metadata(src, dst, &meta)
}

fn copy_tree(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(src)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if !ft.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                fs::hard_link(first, &to)?;
                continue;
            }
            links.insert(key, to.clone());
        }
        if ft.is_dir() {
            fs::create_dir(&to)?;
            copy_tree(&from, &to, links)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if ft.is_file() {
            copy_file(&from, &to)?;
        } else {
            let kind = if ft.is_block_device() {
                FileType::BlockDevice
            } else if ft.is_char_device() {
                FileType::CharacterDevice
            } else if ft.is_fifo() {
                FileType::Fifo
            } else if ft.is_socket() {
                FileType::Socket
            } else {
                continue;
            };
            mknodat(CWD, &to, kind, Mode::from_raw_mode(0o600), meta.rdev())?;
        }
        apply_metadata(&from, &to, &meta)?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = fs::File::open(from)?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    io::copy(&mut src, &mut dst)?;
    Ok(())
}

/// Owner, then mode (a chown clears setuid bits), xattrs, then times — on the entry itself,
/// never on what a symlink points to.
fn apply_metadata(from: &Path, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let symlink = meta.file_type().is_symlink();
    chownat(
        CWD,
        to,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if !symlink {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    copy_xattrs(from, to)?;
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec() as _,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec() as _,
        },
    };
    utimensat(CWD, to, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn copy_xattrs(from: &Path, to: &Path) -> io::Result<()> {
    let names = match list_xattrs(from) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in names {
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(from, name.as_slice(), &mut value[..]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::RANGE) => {
                    let need = rustix::fs::lgetxattr_query(from, name.as_slice())?;
                    value.resize(need.max(value.len() * 2), 0);
                }
                Err(rustix::io::Errno::NODATA) => break usize::MAX,
                Err(e) => return Err(e.into()),
            }
        };
        if len == usize::MAX {
            continue;
        }
        match rustix::fs::lsetxattr(to, name.as_slice(), &value[..len], XattrFlags::empty()) {
            Ok(()) => {}
            // Not every filesystem takes every namespace (trusted.* needs CAP_SYS_ADMIN, a
            // tmpfs volume may refuse user.* on old kernels): docker skips those too.
            Err(e) if unsupported(&e.into()) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno) if libc_errno == rustix::io::Errno::OPNOTSUPP.raw_os_error()
            || libc_errno == rustix::io::Errno::PERM.raw_os_error()
    )
}

fn list_xattrs(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    let len = loop {
        match rustix::fs::llistxattr(path, &mut buf[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => {
                let need = rustix::fs::llistxattr_query(path)?;
                buf.resize(need.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e.into()),
        }
    };
    Ok(buf[..len]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// True when `dir` has no entries (a missing directory counts as empty).
pub fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut d) => Ok(d.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// docker's `directory.Size`: the apparent size of everything under `dir` except directories,
/// hard links counted once. Entries that vanish meanwhile are skipped.
pub fn dir_size(dir: &Path) -> u64 {
    fn walk(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(rd) = fs::read_dir(dir) else {
            return 0;
        };
        let mut total = 0;
        for entry in rd.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                total += walk(&entry.path(), seen);
                continue;
            }
            if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            total += meta.len();
        }
        total
    }
    walk(dir, &mut HashSet::new())
}

/// The bytes of a name for messages.
pub fn display_name(p: &Path) -> String {
    String::from_utf8_lossy(p.as_os_str().as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn copies_content_and_metadata() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let dst = t.path().join("dst");
        fs::create_dir_all(src.join("sub/deeper")).unwrap();
        fs::create_dir(&dst).unwrap();
        fs::write(src.join("file"), b"hello").unwrap();
        fs::write(src.join("sub/deeper/f2"), b"x").unwrap();
        fs::hard_link(src.join("file"), src.join("hard")).unwrap();
        symlink("../outside/nowhere", src.join("link")).unwrap();
        symlink("/etc/passwd", src.join("sub/abs")).unwrap();
        fs::set_permissions(src.join("file"), fs::Permissions::from_mode(0o4751)).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o1777)).unwrap();
        rustix::fs::lsetxattr(src.join("file"), "user.berth", b"v1", XattrFlags::empty()).ok();
        let old = Timestamps {
            last_access: Timespec {
                tv_sec: 1_600_000_000,
                tv_nsec: 5,
            },
            last_modification: Timespec {
                tv_sec: 1_500_000_000,
                tv_nsec: 123_456_789,
            },
        };
        for p in ["file", "link", "sub/deeper", "sub", ""] {
            utimensat(CWD, src.join(p), &old, AtFlags::SYMLINK_NOFOLLOW).unwrap();
        }
        if is_root() {
            chownat(
                CWD,
                src.join("sub"),
                Some(Uid::from_raw(1234)),
                Some(Gid::from_raw(5678)),
                AtFlags::empty(),
            )
            .unwrap();
            chownat(
                CWD,
                src.join("link"),
                Some(Uid::from_raw(42)),
                Some(Gid::from_raw(43)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
            mknodat(
                CWD,
                src.join("null"),
                FileType::CharacterDevice,
                Mode::from_raw_mode(0o666),
                rustix::fs::makedev(1, 3),
            )
            .unwrap();
            fs::set_permissions(src.join("null"), fs::Permissions::from_mode(0o666)).unwrap();
            utimensat(CWD, &src, &old, AtFlags::empty()).unwrap();
        }

        copy_dir_contents(&src, &dst).unwrap();

        assert_eq!(fs::read(dst.join("file")).unwrap(), b"hello");
        assert_eq!(fs::read(dst.join("sub/deeper/f2")).unwrap(), b"x");
        let m = fs::symlink_metadata(dst.join("file")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4751);
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 123_456_789));
        assert_eq!(
            m.ino(),
            fs::symlink_metadata(dst.join("hard")).unwrap().ino(),
            "hard links stay links"
        );
        assert_eq!(
            fs::read_link(dst.join("link")).unwrap(),
            Path::new("../outside/nowhere")
        );
        assert_eq!(
            fs::read_link(dst.join("sub/abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        let lm = fs::symlink_metadata(dst.join("link")).unwrap();
        assert_eq!(lm.mtime(), 1_500_000_000);
        let dm = fs::symlink_metadata(dst.join("sub/deeper")).unwrap();
        assert_eq!(
            dm.mtime(),
            1_500_000_000,
            "directory times set after content"
        );
        let root = fs::symlink_metadata(&dst).unwrap();
        assert_eq!(
            root.mode() & 0o7777,
            0o1777,
            "the volume root takes the source's mode"
        );
        if let Ok(n) = rustix::fs::lgetxattr_query(src.join("file"), "user.berth") {
            let mut v = vec![0u8; n];
            rustix::fs::lgetxattr(dst.join("file"), "user.berth", &mut v[..]).unwrap();
            assert_eq!(v, b"v1");
        }
        if is_root() {
            let s = fs::symlink_metadata(dst.join("sub")).unwrap();
            assert_eq!((s.uid(), s.gid()), (1234, 5678));
            assert_eq!((lm.uid(), lm.gid()), (42, 43));
            let n = fs::symlink_metadata(dst.join("null")).unwrap();
            assert!(n.file_type().is_char_device());
            assert_eq!(n.rdev(), rustix::fs::makedev(1, 3));
            assert_eq!(n.mode() & 0o7777, 0o666);
            assert_eq!(root.mtime(), 1_500_000_000);
        }
        // Nothing was written through the symlinks.
        assert!(!t.path().join("outside").exists());
    }

    #[test]
    fn sizes_count_hard_links_once() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("d")).unwrap();
        fs::write(t.path().join("d/a"), vec![0u8; 1000]).unwrap();
        fs::hard_link(t.path().join("d/a"), t.path().join("b")).unwrap();
        fs::write(t.path().join("c"), b"12345").unwrap();
        assert_eq!(dir_size(t.path()), 1005);
        assert!(!is_empty_dir(t.path()).unwrap());
        assert!(is_empty_dir(&t.path().join("missing")).unwrap());
    }
}
