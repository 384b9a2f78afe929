//! Tests of layer apply. Tars are built in memory; names are written into the raw header so
//! that malicious ones (`../x`), which `tar::Builder` refuses, can be tested too.

mod compression;
mod malicious;
mod randomized;
mod tree;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::{ApplyStats, LayerError, apply_layer};

/// Layer apply needs root (chown, mknod, trusted xattrs); CI runs as root.
fn is_root() -> bool {
    if rustix::process::geteuid().is_root() {
        true
    } else {
        eprintln!("skipping: layer apply tests need root (chown, mknod, trusted.* xattrs)");
        false
    }
}

/// One tar entry, written with a raw header.
struct Spec<'a> {
    kind: EntryType,
    name: &'a str,
    link: &'a str,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    dev: (u32, u32),
    data: &'a [u8],
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            kind: EntryType::Regular,
            name: "",
            link: "",
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_500_000_000,
            dev: (0, 0),
            data: b"",
        }
    }
}

/// Builds a layer tar in memory.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn add(&mut self, spec: Spec<'_>) -> &mut Tar {
        let mut header = Header::new_ustar();
        let old = header.as_old_mut();
        assert!(spec.name.len() <= old.name.len() && spec.link.len() <= old.linkname.len());
        old.name[..spec.name.len()].copy_from_slice(spec.name.as_bytes());
        old.linkname[..spec.link.len()].copy_from_slice(spec.link.as_bytes());
        header.set_entry_type(spec.kind);
        header.set_mode(spec.mode);
        header.set_uid(spec.uid);
        header.set_gid(spec.gid);
        header.set_mtime(spec.mtime);
        header.set_size(spec.data.len() as u64);
        header.set_device_major(spec.dev.0).unwrap();
        header.set_device_minor(spec.dev.1).unwrap();
        header.set_cksum();
        self.0.append(&header, spec.data).unwrap();
        self
    }

    /// PAX records for the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
        self.0
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.add(Spec {
            name,
            data,
            ..Spec::default()
        })
    }

    fn dir(&mut self, name: &str) -> &mut Tar {
        self.add(Spec {
            kind: EntryType::Directory,
            name,
            mode: 0o755,
            ..Spec::default()
        })
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.add(Spec {
            kind: EntryType::Symlink,
            name,
            link: target,
            mode: 0o777,
            ..Spec::default()
        })
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.add(Spec {
            kind: EntryType::Link,
            name,
            link: target,
            ..Spec::default()
        })
    }

    fn bytes(&mut self) -> Vec<u8> {
        self.0.finish().unwrap();
        self.0.get_ref().clone()
    }
}

/// A temp dir holding the layer directory and, beside it, a sentinel directory that no layer
/// may touch: `tmp/layer` and `tmp/outside/secret`.
struct Sandbox {
    _tmp: tempfile::TempDir,
    tmp: PathBuf,
    dest: PathBuf,
    outside: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp_dir = tempfile::tempdir().unwrap();
        let tmp = tmp_dir.path().to_path_buf();
        let dest = tmp.join("layer");
        let outside = tmp.join("outside");
        fs::create_dir(&dest).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"top secret").unwrap();
        fs::create_dir(outside.join("sub")).unwrap();
        rustix::fs::chmod(&outside, rustix::fs::Mode::from_raw_mode(0o700)).unwrap();
        Sandbox {
            _tmp: tmp_dir,
            tmp,
            dest,
            outside,
        }
    }

    fn apply(&self, tar: &[u8]) -> Result<ApplyStats, LayerError> {
        apply_layer(tar, &self.dest)
    }

    /// Everything in the temp dir but the layer: names, types, owners, modes, times, link
    /// counts, contents, link targets and xattrs.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        snapshot_into(&self.tmp, &self.dest, &mut out);
        out
    }
}

fn snapshot_into(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path == skip {
            continue;
        }
        out.insert(path.clone(), describe(&path));
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            snapshot_into(&path, skip, out);
        }
    }
    out.insert(dir.to_path_buf(), describe(dir));
}

fn describe(path: &Path) -> String {
    let m = fs::symlink_metadata(path).unwrap();
    let content = if m.is_file() {
        String::from_utf8_lossy(&fs::read(path).unwrap()).into_owned()
    } else if m.is_symlink() {
        fs::read_link(path).unwrap().display().to_string()
    } else {
        String::new()
    };
    format!(
        "mode={:o} uid={} gid={} nlink={} size={} mtime={}.{} ctime={}.{} xattrs={:?} content={content}",
        m.mode(),
        m.uid(),
        m.gid(),
        m.nlink(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        xattr_names(path),
    )
}

fn xattr_names(path: &Path) -> Vec<String> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut buf[..]).unwrap();
    buf[..n]
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

/// The value of an xattr of `path` itself, `None` if it has none by that name.
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(rustix::io::Errno::NODATA) => None,
        Err(e) => panic!("lgetxattr {}: {e}", path.display()),
    }
}

fn lstat(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}
