//! The entry loop of [`super::apply_layer`]: one tar entry at a time, each created relative to
//! a descriptor of its parent directory.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::mem;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, Dev, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use tar::{Entry, EntryType};

use super::path::{self, Kind};
use super::root::{self, LayerRoot};
use super::{ApplyStats, LayerError};

/// Size of the buffer file contents are copied through, reused for every file.
const COPY_BUFFER: usize = 256 * 1024;
/// PAX records carrying extended attributes, as written by GNU tar, Go and BuildKit.
const PAX_XATTR: &[u8] = b"SCHILY.xattr.";
/// Overlayfs reads its own state from these xattrs; a layer only sets them through whiteout
/// entries, never directly.
const OVERLAY_XATTR: &[u8] = b"trusted.overlay.";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The latest time Go's `time.Time` can give `utimensat` (Unix nanoseconds in an i64); Docker
/// and containerd replace anything later, or earlier than the epoch, by the epoch.
const MAX_SECS: i64 = i64::MAX / 1_000_000_000;

pub(super) fn apply<R: Read>(tar_stream: R, dest: &Path) -> Result<ApplyStats, LayerError> {
    let root = LayerRoot::open(dest).map_err(|source| LayerError::Io {
        op: "open layer directory",
        path: dest.to_path_buf(),
        source,
    })?;
    let mut applier = Applier {
        dest,
        root,
        buf: vec![0; COPY_BUFFER],
        clean: Vec::new(),
        link: Vec::new(),
        xattrs: Vec::new(),
        dirs: Vec::new(),
        stats: ApplyStats::default(),
    };
    let mut archive = tar::Archive::new(tar_stream);
    for entry in archive.entries().map_err(LayerError::Tar)? {
        let mut entry = entry.map_err(LayerError::Tar)?;
        applier.entry(&mut entry)?;
    }
    applier.finish()?;
    Ok(applier.stats)
}

/// What an entry creates.
#[derive(Clone, Copy)]
enum Op {
    File,
    Dir,
    Symlink,
    Hardlink,
    Node(FileType, Dev),
}

/// Ownership, permissions and times of an entry (its xattrs are in `Applier::xattrs`).
struct Meta {
    uid: Uid,
    gid: Gid,
    mode: Mode,
    times: Timestamps,
}

struct Applier<'d> {
    dest: &'d Path,
    root: LayerRoot,
    buf: Vec<u8>,
    /// The cleaned path of the current entry.
    clean: Vec<u8>,
    /// The cleaned target of the current hardlink.
    link: Vec<u8>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Directory times, set once every entry is written, since writing children changes them.
    dirs: Vec<(Vec<u8>, Timestamps)>,
    stats: ApplyStats,
}

impl Applier<'_> {
    fn entry<R: Read>(&mut self, entry: &mut Entry<'_, R>) -> Result<(), LayerError> {
        let header = entry.header();
        let kind = header.entry_type();
        if kind.is_pax_global_extensions() {
            tracing::debug!("ignoring a pax global header in a layer");
            return Ok(());
        }
        self.stats.entries += 1;
        let typeflag = header.as_bytes()[156];
        let raw = entry.path_bytes();
        let trailing_slash = raw.ends_with(b"/");
        if !path::clean(&raw, &mut self.clean) {
            return Err(unsafe_path(&raw, "path escapes the layer root"));
        }
        let op = match kind {
            // A V7 header (typeflag NUL) names directories with a trailing slash.
            EntryType::Regular if typeflag == 0 && trailing_slash => Op::Dir,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Op::File,
            EntryType::Directory => Op::Dir,
            EntryType::Symlink => Op::Symlink,
            EntryType::Link => Op::Hardlink,
            EntryType::Char => Op::Node(FileType::CharacterDevice, device(entry)?),
            EntryType::Block => Op::Node(FileType::BlockDevice, device(entry)?),
            EntryType::Fifo => Op::Node(FileType::Fifo, 0),
            _ => {
                return Err(LayerError::UnsupportedEntry {
                    path: raw_path(entry),
                    typeflag,
                });
            }
        };
        let meta = self.read_meta(entry)?;

        let clean = mem::take(&mut self.clean);
        let result = match path::classify(&clean) {
            Kind::Root if matches!(op, Op::Dir) => self.root_dir(&meta),
            Kind::Root => {
                tracing::debug!(path = ?raw_path(entry), "ignoring a layer entry that resolves to the root");
                Ok(())
            }
            Kind::AufsMeta => {
                tracing::debug!(path = ?raw_path(entry), "ignoring aufs metadata in a layer");
                Ok(())
            }
            Kind::BadWhiteout => Err(unsafe_path(&entry.path_bytes(), "invalid whiteout name")),
            Kind::Opaque => self.opaque(&clean),
            Kind::Whiteout(target) => self.whiteout(&clean, target, &meta),
            Kind::Entry => self.create(entry, &clean, op, &meta),
        };
        self.clean = clean;
        result
    }

    /// Reads ownership, mode, times and xattrs, from the header and its PAX records.
    fn read_meta<R: Read>(&mut self, entry: &mut Entry<'_, R>) -> Result<Meta, LayerError> {
        let header = entry.header();
        let bad = |source| LayerError::Header {
            path: raw_path(entry),
            source,
        };
        let id = |v: u64| {
            u32::try_from(v)
                .ok()
                .filter(|&v| v != u32::MAX)
                .ok_or_else(|| {
                    bad(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "id out of range",
                    ))
                })
        };
        let old = header.as_old();
        let uid = Uid::from_raw(id(numeric(&old.uid, || header.uid()).map_err(bad)?)?);
        let gid = Gid::from_raw(id(numeric(&old.gid, || header.gid()).map_err(bad)?)?);
        let mode = numeric(&old.mode, || header.mode().map(u64::from)).map_err(bad)?;
        let mode = Mode::from_raw_mode((mode & 0o7777) as u32);
        let mut mtime = secs(numeric(&old.mtime, || header.mtime()).map_err(bad)?);
        let mut atime = match header.as_gnu() {
            Some(gnu) if gnu.atime[0] != 0 => Some(secs(gnu.atime().map_err(bad)?)),
            _ => None,
        };

        self.xattrs.clear();
        // The PAX records borrow the entry, so errors name the cleaned path.
        let clean = &self.clean;
        let bad_time = || LayerError::Header {
            path: PathBuf::from(OsStr::from_bytes(clean)),
            source: io::Error::new(io::ErrorKind::InvalidData, "invalid pax time"),
        };
        let exts = entry.pax_extensions().map_err(LayerError::Tar)?;
        for ext in exts.into_iter().flatten() {
            let ext = ext.map_err(|source| LayerError::Header {
                path: PathBuf::from(OsStr::from_bytes(clean)),
                source,
            })?;
            let (key, value) = (ext.key_bytes(), ext.value_bytes());
            match key {
                b"mtime" => mtime = pax_time(value).ok_or_else(bad_time)?,
                b"atime" => atime = Some(pax_time(value).ok_or_else(bad_time)?),
                _ => {
                    let Some(name) = key.strip_prefix(PAX_XATTR) else {
                        continue;
                    };
                    if name.starts_with(OVERLAY_XATTR) {
                        tracing::warn!(
                            path = %String::from_utf8_lossy(clean),
                            xattr = %String::from_utf8_lossy(name),
                            "ignoring an overlayfs xattr in a layer"
                        );
                        continue;
                    }
                    self.xattrs.push((name.to_vec(), value.to_vec()));
                }
            }
        }
        // Docker and containerd: atime is the later of atime and mtime (mtime if unset), and
        // times outside what Go can represent become the epoch.
        let atime = atime.filter(|&a| a > mtime).unwrap_or(mtime);
        let times = Timestamps {
            last_access: bound(atime),
            last_modification: bound(mtime),
        };
        Ok(Meta {
            uid,
            gid,
            mode,
            times,
        })
    }

    /// An ordinary entry at `clean` (not the root, not a whiteout).
    fn create<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        clean: &[u8],
        op: Op,
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let (parent_path, name) = path::split(clean);
        let parent = self.parent(parent_path, clean)?;
        let pfd = parent.as_fd();
        let mut new_dir = None;
        let removed = match op {
            Op::File => self.file(entry, pfd, name, clean, meta)?,
            Op::Dir => {
                let (dir, removed) = self.dir(pfd, name, clean, meta)?;
                new_dir = Some(dir);
                removed
            }
            Op::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default();
                let ((), removed) =
                    create_replacing(pfd, name, || rustix::fs::symlinkat(&*target, pfd, name))
                        .map_err(|e| self.io("create symlink", clean, e))?;
                self.set_meta_at(pfd, name, clean, FileType::Symlink, meta)?;
                removed
            }
            Op::Hardlink => self.hardlink(entry, pfd, name, clean, meta)?,
            Op::Node(file_type, dev) => {
                let ((), removed) = create_replacing(pfd, name, || {
                    rustix::fs::mknodat(pfd, name, file_type, Mode::from_raw_mode(0o600), dev)
                })
                .map_err(|e| self.io("create device node", clean, e))?;
                self.set_meta_at(pfd, name, clean, file_type, meta)?;
                removed
            }
        };
        self.done_with(parent_path, parent, removed);
        if let Some(dir) = new_dir {
            // Opened after any removal, so still valid; the next entries are most likely its
            // children.
            self.root.put_dir(clean, dir);
        }
        Ok(())
    }

    /// Returns whether an existing entry was removed.
    fn file<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        clean: &[u8],
        meta: &Meta,
    ) -> Result<bool, LayerError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let (fd, removed) = create_replacing(parent, name, || {
            rustix::fs::openat(parent, name, flags, Mode::from_raw_mode(0o600))
        })
        .map_err(|e| self.io("create file", clean, e))?;
        let mut file = File::from(fd);
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LayerError::Tar(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| self.io("write", clean, e))?;
            self.stats.bytes += n as u64;
        }
        self.set_meta_fd(file.as_fd(), clean, true, meta)?;
        rustix::fs::futimens(&file, &meta.times).map_err(|e| self.io("set times of", clean, e))?;
        Ok(removed)
    }

    /// Creates the directory (or keeps the one there) and applies the metadata but not the
    /// times. Returns its descriptor and whether something else was removed to make room.
    fn dir(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        clean: &[u8],
        meta: &Meta,
    ) -> Result<(OwnedFd, bool), LayerError> {
        let mkdir = || rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700));
        let removed = match mkdir() {
            Ok(()) => false,
            Err(Errno::EXIST) => {
                let stat = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.io("stat", clean, e))?;
                if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                    false // merge: only the metadata changes
                } else {
                    root::remove_all_at(parent, name)
                        .and_then(|()| mkdir())
                        .map_err(|e| self.io("replace with a directory", clean, e))?;
                    true
                }
            }
            Err(e) => return Err(self.io("create directory", clean, e)),
        };
        let dir =
            root::open_dir_at(parent, name).map_err(|e| self.io("open directory", clean, e))?;
        self.set_meta_fd(dir.as_fd(), clean, true, meta)?;
        self.dirs.push((clean.to_vec(), meta.times.clone()));
        Ok((dir, removed))
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        clean: &[u8],
        meta: &Meta,
    ) -> Result<bool, LayerError> {
        let target = entry.link_name_bytes().unwrap_or_default();
        if !path::clean(&target, &mut self.link) {
            return Err(unsafe_path(
                &target,
                "hardlink target escapes the layer root",
            ));
        }
        if self.link.is_empty() {
            return Err(unsafe_path(&target, "hardlink to the layer root"));
        }
        let link = mem::take(&mut self.link);
        let (target_dir, target_name) = path::split(&link);
        let result = self
            .root
            .take_dir(target_dir, false)
            .map_err(|e| self.io("open", &link, e));
        let result = result.and_then(|tdir| {
            // No AT_SYMLINK_FOLLOW: a hardlink to a symlink links the symlink itself.
            let ((), removed) = create_replacing(parent, name, || {
                rustix::fs::linkat(&tdir, target_name, parent, name, AtFlags::empty())
            })
            .map_err(|e| self.io("create hardlink", clean, e))?;
            self.done_with(target_dir, tdir, removed);
            let stat = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.io("stat", clean, e))?;
            let file_type = FileType::from_raw_mode(stat.st_mode);
            self.set_meta_at(parent, name, clean, file_type, meta)?;
            Ok(removed)
        });
        self.link = link;
        result
    }

    /// `parent/.wh.NAME`: `parent/NAME` becomes a 0:0 character device, owned as the entry.
    fn whiteout(&mut self, clean: &[u8], target: &[u8], meta: &Meta) -> Result<(), LayerError> {
        let (parent_path, _) = path::split(clean);
        let parent = self.parent(parent_path, clean)?;
        let pfd = parent.as_fd();
        let ((), removed) = create_replacing(pfd, target, || {
            rustix::fs::mknodat(pfd, target, FileType::CharacterDevice, Mode::empty(), 0)
        })
        .map_err(|e| self.io("create whiteout for", clean, e))?;
        rustix::fs::chownat(
            pfd,
            target,
            Some(meta.uid),
            Some(meta.gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("chown whiteout", clean, e))?;
        self.stats.whiteouts += 1;
        self.done_with(parent_path, parent, removed);
        Ok(())
    }

    /// `dir/.wh..wh..opq`: `dir` (created if absent) hides the layers below.
    fn opaque(&mut self, clean: &[u8]) -> Result<(), LayerError> {
        let (dir_path, _) = path::split(clean);
        let dir = self.parent(dir_path, clean)?;
        rustix::fs::fsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
            .map_err(|e| self.io("mark opaque", dir_path, e))?;
        self.stats.whiteouts += 1;
        self.done_with(dir_path, dir, false);
        Ok(())
    }

    /// A directory entry for the layer root itself (`./`): Docker applies its metadata.
    fn root_dir(&mut self, meta: &Meta) -> Result<(), LayerError> {
        self.set_meta_fd(self.root.fd(), b"", true, meta)?;
        self.dirs.push((Vec::new(), meta.times.clone()));
        Ok(())
    }

    /// Sets the times of every directory, now that nothing more is written into them.
    fn finish(&mut self) -> Result<(), LayerError> {
        for (path, times) in mem::take(&mut self.dirs) {
            if path.is_empty() {
                rustix::fs::futimens(self.root.fd(), &times)
                    .map_err(|e| self.io("set times of", b"", e))?;
                continue;
            }
            let dir = match self.root.resolve(&path, OFlags::NOFOLLOW) {
                Ok(dir) => dir,
                // Replaced or removed by a later entry.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(self.io("open directory", &path, e)),
            };
            rustix::fs::futimens(&dir, &times).map_err(|e| self.io("set times of", &path, e))?;
        }
        Ok(())
    }

    /// The directory an entry goes into, created (0755) if the tar did not list it.
    fn parent(&mut self, parent_path: &[u8], clean: &[u8]) -> Result<OwnedFd, LayerError> {
        self.root
            .take_dir(parent_path, true)
            .map_err(|e| self.io("open parent directory of", clean, e))
    }

    /// Gives a directory descriptor back to the cache, unless this entry removed something:
    /// then no cached descriptor can be trusted to still be where its path leads.
    fn done_with(&mut self, path: &[u8], dir: OwnedFd, removed: bool) {
        if removed {
            self.root.invalidate();
        } else {
            self.root.put_dir(path, dir);
        }
    }

    /// Owner, xattrs, then mode (chown clears setuid and file capabilities, so it goes first).
    fn set_meta_fd(
        &self,
        fd: BorrowedFd<'_>,
        clean: &[u8],
        regular_or_dir: bool,
        meta: &Meta,
    ) -> Result<(), LayerError> {
        rustix::fs::fchown(fd, Some(meta.uid), Some(meta.gid))
            .map_err(|e| self.io("chown", clean, e))?;
        for (key, value) in &self.xattrs {
            let result = rustix::fs::fsetxattr(fd, key.as_slice(), value, XattrFlags::empty());
            self.xattr_result(result, key, regular_or_dir, clean)?;
        }
        rustix::fs::fchmod(fd, meta.mode).map_err(|e| self.io("chmod", clean, e))
    }

    /// Metadata of `parent/name` without following it: symlinks keep their mode (Linux has no
    /// lchmod) but get owner, xattrs and times.
    fn set_meta_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        clean: &[u8],
        file_type: FileType,
        meta: &Meta,
    ) -> Result<(), LayerError> {
        rustix::fs::chownat(
            parent,
            name,
            Some(meta.uid),
            Some(meta.gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("chown", clean, e))?;
        let regular_or_dir = matches!(file_type, FileType::RegularFile | FileType::Directory);
        for (key, value) in &self.xattrs {
            let result = root::lsetxattr_at(parent, name, key, value);
            self.xattr_result(result, key, regular_or_dir, clean)?;
        }
        if file_type != FileType::Symlink {
            // `name` is not a symlink (checked or just created), so following is moot.
            rustix::fs::chmodat(parent, name, meta.mode, AtFlags::empty())
                .map_err(|e| self.io("chmod", clean, e))?;
        }
        rustix::fs::utimensat(parent, name, &meta.times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io("set times of", clean, e))
    }

    /// As containerd: xattrs the filesystem does not support, and `user.*` xattrs on what the
    /// kernel refuses them for (anything but regular files and directories), are skipped.
    fn xattr_result(
        &self,
        result: rustix::io::Result<()>,
        key: &[u8],
        regular_or_dir: bool,
        clean: &[u8],
    ) -> Result<(), LayerError> {
        match result {
            Ok(()) => Ok(()),
            Err(e)
                if e == Errno::OPNOTSUPP
                    || (e == Errno::PERM && key.starts_with(b"user.") && !regular_or_dir) =>
            {
                tracing::warn!(
                    path = %self.display(clean).display(),
                    xattr = %String::from_utf8_lossy(key),
                    error = %e,
                    "ignoring an xattr of a layer entry"
                );
                Ok(())
            }
            Err(e) => Err(self.io("set xattr on", clean, e)),
        }
    }

    fn display(&self, clean: &[u8]) -> PathBuf {
        self.dest.join(OsStr::from_bytes(clean))
    }

    fn io(&self, op: &'static str, clean: &[u8], e: impl Into<io::Error>) -> LayerError {
        LayerError::Io {
            op,
            path: self.display(clean),
            source: e.into(),
        }
    }
}

/// Runs `create`; if something is in the way, removes it (recursively) and runs it again.
/// Returns whether something was removed.
fn create_replacing<T>(
    parent: BorrowedFd<'_>,
    name: &[u8],
    mut create: impl FnMut() -> rustix::io::Result<T>,
) -> rustix::io::Result<(T, bool)> {
    match create() {
        Err(Errno::EXIST) => {
            root::remove_all_at(parent, name)?;
            Ok((create()?, true))
        }
        result => result.map(|t| (t, false)),
    }
}

fn device<R: Read>(entry: &Entry<'_, R>) -> Result<Dev, LayerError> {
    let header = entry.header();
    let bad = |source| LayerError::Header {
        path: raw_path(entry),
        source,
    };
    let major = header.device_major().map_err(bad)?.unwrap_or(0);
    let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
    Ok(rustix::fs::makedev(major, minor))
}

fn raw_path<R: Read>(entry: &Entry<'_, R>) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&entry.path_bytes()))
}

fn unsafe_path(raw: &[u8], reason: &'static str) -> LayerError {
    LayerError::UnsafePath {
        path: PathBuf::from(OsStr::from_bytes(raw)),
        reason,
    }
}

/// A numeric header field; empty (all NUL or space) reads as 0, as in Go's archive/tar.
fn numeric(raw: &[u8], parse: impl FnOnce() -> io::Result<u64>) -> io::Result<u64> {
    if raw.iter().all(|&b| b == 0 || b == b' ') {
        Ok(0)
    } else {
        parse()
    }
}

/// Whole seconds from a header field.
fn secs(v: u64) -> (i64, i64) {
    (i64::try_from(v).unwrap_or(i64::MAX), 0)
}

/// A PAX time (`-?secs(.fraction)?`) as normalised `(seconds, nanoseconds)`, as Go parses it.
fn pax_time(value: &[u8]) -> Option<(i64, i64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = whole.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    if whole.starts_with('-') && nanos > 0 {
        // saturating: a time of i64::MIN and a fraction is clamped later like any other.
        return Some((secs.saturating_sub(1), 1_000_000_000 - nanos));
    }
    Some((secs, nanos))
}

fn bound((secs, nanos): (i64, i64)) -> Timespec {
    if (0..=MAX_SECS).contains(&secs) {
        Timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        }
    } else {
        Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pax_time;

    #[test]
    fn pax_times_parse_like_go() {
        assert_eq!(pax_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            pax_time(b"1700000000.5"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(pax_time(b"1.123456789123"), Some((1, 123_456_789)));
        assert_eq!(pax_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(pax_time(b"1.x"), None);
        assert_eq!(pax_time(b""), None);
    }
}
