//! The layer directory and the only ways to reach inside it.
//!
//! Every directory is found with `openat2(RESOLVE_IN_ROOT)` relative to a descriptor of the
//! layer directory, so symlinks created by the layer itself (`x -> /etc`, `a -> ..`) resolve as
//! they would inside the container and can never lead outside. The final component of an entry
//! is then created or changed with an `*at` call relative to its parent's descriptor, without
//! following symlinks.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Dir, Mode, OFlags, ResolveFlags, XattrFlags};
use rustix::io::Errno;

/// Flags for every directory we open: readable (so `fchown`, `fchmod` and `fsetxattr` work on
/// it), a directory or nothing, and never inherited by a child process.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
/// Directory descriptors kept open across entries: tars list a directory's children together,
/// so a handful covers the directories being filled at any time.
const CACHE_SLOTS: usize = 8;

/// A descriptor of the layer directory plus a small cache of directories opened inside it.
pub(super) struct LayerRoot {
    fd: OwnedFd,
    /// `(cleaned path, descriptor)`, most recently used first.
    cache: Vec<(Vec<u8>, OwnedFd)>,
    /// `openat2` is missing (kernel < 5.6 or a seccomp filter): walk components instead,
    /// refusing symlinked ones.
    no_openat2: bool,
}

impl LayerRoot {
    pub(super) fn open(dest: &Path) -> io::Result<LayerRoot> {
        let fd = rustix::fs::open(dest, DIR_FLAGS, Mode::empty())?;
        Ok(LayerRoot {
            fd,
            cache: Vec::with_capacity(CACHE_SLOTS),
            no_openat2: false,
        })
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the directory at the cleaned relative path `dir` (empty for the root), taking it out
    /// of the cache if it is there. With `create`, missing directories are created (0755,
    /// owned by us) as Docker does for parents a tar does not list. Give the descriptor back with
    /// [`LayerRoot::put_dir`] when done, unless something was removed meanwhile.
    pub(super) fn take_dir(&mut self, dir: &[u8], create: bool) -> io::Result<OwnedFd> {
        if let Some(i) = self.cache.iter().position(|(path, _)| path == dir) {
            return Ok(self.cache.remove(i).1);
        }
        if dir.is_empty() {
            return self.fd.try_clone();
        }
        match self.resolve(dir, OFlags::empty()) {
            Err(Errno::NOENT) if create => self.create_dirs(dir),
            result => Ok(result?),
        }
    }

    /// Puts a directory descriptor (of the cleaned path `dir`) into the cache.
    pub(super) fn put_dir(&mut self, dir: &[u8], fd: OwnedFd) {
        if self.cache.iter().any(|(path, _)| path == dir) {
            return;
        }
        let slot = if self.cache.len() == CACHE_SLOTS {
            let (mut path, _) = self.cache.pop().expect("the cache is full");
            path.clear();
            path.extend_from_slice(dir);
            path
        } else {
            dir.to_vec()
        };
        self.cache.insert(0, (slot, fd));
    }

    /// Forgets every cached directory: after a removal, a cached descriptor may point to a
    /// directory that is no longer where its path leads.
    pub(super) fn invalidate(&mut self) {
        self.cache.clear();
    }

    /// Opens the directory at `path` (non-empty, cleaned), resolved inside the root;
    /// `extra` adds flags such as `O_NOFOLLOW` for the last component.
    pub(super) fn resolve(&mut self, path: &[u8], extra: OFlags) -> rustix::io::Result<OwnedFd> {
        if !self.no_openat2 {
            // EAGAIN: the kernel saw a concurrent rename and could not prove `..` stayed
            // inside; retrying is what openat2(2) recommends.
            for _ in 0..16 {
                match rustix::fs::openat2(&self.fd, path, DIR_FLAGS | extra, Mode::empty(), RESOLVE)
                {
                    Err(Errno::AGAIN) => continue,
                    Err(Errno::NOSYS) => {
                        tracing::debug!("openat2 is unavailable, resolving layer paths without it");
                        self.no_openat2 = true;
                        break;
                    }
                    result => return result,
                }
            }
            if !self.no_openat2 {
                return Err(Errno::AGAIN);
            }
        }
        // Fallback: one component at a time, refusing symlinks altogether. Cleaned paths hold
        // no `.`, `..` or empty components.
        let mut cur = rustix::io::dup(&self.fd)?;
        let mut components = path.split(|&b| b == b'/').peekable();
        while let Some(name) = components.next() {
            let last = components.peek().is_none();
            let flags = DIR_FLAGS | OFlags::NOFOLLOW | if last { extra } else { OFlags::empty() };
            cur = rustix::fs::openat(&cur, name, flags, Mode::empty())?;
        }
        Ok(cur)
    }

    /// Creates the missing directories of `path` one by one, each relative to a descriptor of
    /// its (resolved) parent, and returns a descriptor of the last one.
    fn create_dirs(&mut self, path: &[u8]) -> io::Result<OwnedFd> {
        let mut cur = self.fd.try_clone()?;
        let mut start = 0;
        while start < path.len() {
            let end = path[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(path.len(), |i| start + i);
            let name = &path[start..end];
            cur = match self.resolve(&path[..end], OFlags::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)) {
                        // Something is there yet does not resolve (a dangling symlink): the open
                        // below refuses it.
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    let fd = open_dir_at(cur.as_fd(), name)?;
                    // Exactly 0755 whatever the umask, as Docker and containerd do.
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
                    fd
                }
                Err(e) => return Err(e.into()),
            };
            start = end + 1;
        }
        Ok(cur)
    }
}

/// Opens the directory `parent/name`, refusing a symlink there.
pub(super) fn open_dir_at(parent: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(parent, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
}

/// Removes `parent/name`, recursively if it is a directory. A missing entry is not an error.
pub(super) fn remove_all_at(parent: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => {
            let dir = open_dir_at(parent, name)?;
            remove_children(&dir)?;
            rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
        }
        Err(e) => Err(e),
    }
}

fn remove_children(dir: &OwnedFd) -> rustix::io::Result<()> {
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !is_dot(name) {
            remove_all_at(dir.as_fd(), name.to_bytes())?;
        }
    }
    Ok(())
}

/// Sets an extended attribute on `parent/name` itself (not on what a symlink points to).
/// There is no `lsetxattrat`, so the path goes through the parent's `/proc/self/fd` link: the
/// kernel resolves that to the directory we hold, and `name` is a single component.
pub(super) fn lsetxattr_at(
    parent: BorrowedFd<'_>,
    name: &[u8],
    key: &[u8],
    value: &[u8],
) -> rustix::io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    rustix::fs::lsetxattr(path, key, value, XattrFlags::empty())
}

/// `true` for the `.` and `..` entries of a directory listing.
fn is_dot(name: &CStr) -> bool {
    name == c"." || name == c".."
}
