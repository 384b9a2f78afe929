//! Root file systems: an image's merged tree → an ext4 image, cached by a key (the image's
//! top chain ID), and a per-VM copy-on-write overlay on top of it.
//!
//! `mkfs.ext4 -d` builds the image from a directory without mounting anything and keeps
//! owners, modes and device nodes (when run as root). Images are sparse, so the free space
//! left for the container's writes costs nothing until used.
//!
//! A cached image comes with a stamp (`<key>.ext4.stamp`) holding its size and the SHA-256
//! of its first MiB (superblock and group descriptors). A hit whose stamp does not match is
//! rebuilt. Builds of the same key are serialised by a lock file, and an image only becomes
//! visible under its final name once complete (temp name, fsync, rename).

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, IoContext, Result};
use crate::util;

const STAMP_MAGIC: &str = "berth-vm-rootfs 1";
const STAMP_HASHED_BYTES: u64 = 1 << 20;
const MIB: u64 = 1 << 20;
/// Free space left in a new image for the container's own writes (sparse: free until used).
pub const DEFAULT_HEADROOM: u64 = 256 * MIB;

/// What a directory tree needs on an ext4 file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeUsage {
    /// Data blocks, in bytes (files rounded up to 4 KiB; each directory one block).
    pub bytes: u64,
    /// Inodes (hard links counted once).
    pub inodes: u64,
}

/// Measures `dir` without following symlinks.
pub fn tree_usage(dir: &Path) -> Result<TreeUsage> {
    let mut usage = TreeUsage::default();
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        usage.inodes += 1;
        usage.bytes += 4096;
        for entry in fs::read_dir(&d).at("read dir", &d)? {
            let entry = entry.at("read dir", &d)?;
            let path = entry.path();
            let md = fs::symlink_metadata(&path).at("stat", &path)?;
            if md.is_dir() {
                stack.push(path);
                continue;
            }
            if md.nlink() > 1 && !seen.insert((md.dev(), md.ino())) {
                continue;
            }
            usage.inodes += 1;
            if md.is_file() || (md.file_type().is_symlink() && md.len() > 59) {
                usage.bytes += md.len().div_ceil(4096) * 4096;
            }
        }
    }
    Ok(usage)
}

/// The size to give a new image: the tree, 20% slack for ext4's own metadata and
/// fragmentation, `headroom` free, at least 64 MiB, in whole MiB.
pub fn image_size(usage: TreeUsage, headroom: u64) -> u64 {
    let data = usage.bytes + usage.inodes * 256;
    let size = data + data / 5 + 16 * MIB + headroom;
    size.max(64 * MIB).div_ceil(MIB) * MIB
}

/// Inode count for a new image: the tree's plus room for as many new files again.
fn inode_count(usage: TreeUsage) -> u64 {
    usage.inodes * 2 + 16384
}

/// Cached ext4 root images, one per key, under one directory.
#[derive(Debug, Clone)]
pub struct RootfsCache {
    dir: PathBuf,
    headroom: u64,
    mkfs: PathBuf,
}

impl RootfsCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            headroom: DEFAULT_HEADROOM,
            mkfs: PathBuf::from("mkfs.ext4"),
        }
    }

    /// Free space to leave in each new image (default [`DEFAULT_HEADROOM`]).
    pub fn with_headroom(mut self, bytes: u64) -> Self {
        self.headroom = bytes;
        self
    }

    /// The `mkfs.ext4` to run (default: from `PATH`).
    pub fn with_mkfs(mut self, mkfs: impl Into<PathBuf>) -> Self {
        self.mkfs = mkfs.into();
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the image for `key` lives (whether or not it exists yet).
    pub fn image_path(&self, key: &str) -> Result<PathBuf> {
        Ok(self.dir.join(format!("{}.ext4", util::key_file_stem(key)?)))
    }

    fn stamp_path(image: &Path) -> PathBuf {
        let mut s = image.as_os_str().to_owned();
        s.push(".stamp");
        PathBuf::from(s)
    }

    /// The cached image for `key`, if present and intact.
    pub fn lookup(&self, key: &str) -> Result<Option<PathBuf>> {
        let image = self.image_path(key)?;
        Ok(verify(&image)?.then_some(image))
    }

    /// The image for `key`, built from `tree` if it is missing or fails verification.
    pub fn get_or_build(&self, key: &str, tree: &Path) -> Result<PathBuf> {
        let image = self.image_path(key)?;
        if verify(&image)? {
            return Ok(image);
        }
        fs::create_dir_all(&self.dir).at("create dir", &self.dir)?;
        let stem = util::key_file_stem(key)?;
        let _lock = util::lock(&self.dir, &stem)?;
        // Someone else may have built it while we waited for the lock.
        if verify(&image)? {
            return Ok(image);
        }
        self.build(tree, &image)?;
        Ok(image)
    }

    /// Removes the image for `key` and its stamp.
    pub fn remove(&self, key: &str) -> Result<()> {
        let image = self.image_path(key)?;
        for p in [Self::stamp_path(&image), image] {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).at("remove", &p);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes every cached image (with its stamp and lock file) whose key is not in
    /// `keep`; returns the images removed. Files being built (temporary names) stay.
    pub fn retain(&self, keep: &[String]) -> Result<Vec<PathBuf>> {
        let mut stems = std::collections::HashSet::new();
        for key in keep {
            stems.insert(util::key_file_stem(key)?);
        }
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).at("read dir", &self.dir),
        };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".ext4") else {
                continue;
            };
            if stems.contains(stem) {
                continue;
            }
            let image = entry.path();
            let lock = self.dir.join(format!("{stem}.lock"));
            for p in [Self::stamp_path(&image), lock, image.clone()] {
                match fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).at("remove", &p);
                    }
                    _ => {}
                }
            }
            removed.push(image);
        }
        Ok(removed)
    }

    fn build(&self, tree: &Path, image: &Path) -> Result<()> {
        let tmp = util::temp_path(image);
        let started = std::time::Instant::now();
        let mut built = None;
        let res = (|| {
            built = Some(make_ext4(
                &self.mkfs,
                tree,
                &tmp,
                self.headroom,
                "berth-root",
            )?);
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444)).at("chmod", &tmp)?;
            let stamp = stamp_for(&tmp)?;
            util::write_atomic(&Self::stamp_path(image), stamp.as_bytes())?;
            util::commit(&tmp, image)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res?;
        let (usage, size) = built.expect("built");
        tracing::debug!(
            image = %image.display(),
            size,
            bytes = usage.bytes,
            inodes = usage.inodes,
            ms = started.elapsed().as_millis() as u64,
            "built rootfs image"
        );
        Ok(())
    }
}

/// An ext4 image at `image` holding `tree` (`mkfs.ext4 -d`, nothing mounted), sized for
/// the tree plus `headroom` bytes, with inodes for every file; returns the tree's usage
/// and the image's size.
pub fn make_ext4(
    mkfs: &Path,
    tree: &Path,
    image: &Path,
    headroom: u64,
    label: &str,
) -> Result<(TreeUsage, u64)> {
    let usage = tree_usage(tree)?;
    let size = image_size(usage, headroom);
    util::run(
        Command::new(mkfs)
            .args(["-q", "-F", "-L", label, "-N"])
            .arg(inode_count(usage).to_string())
            .arg("-d")
            .arg(tree)
            .arg(image)
            .arg(format!("{}k", size / 1024)),
    )?;
    Ok((usage, size))
}

fn stamp_for(image: &Path) -> Result<String> {
    let f = fs::File::open(image).at("open", image)?;
    let len = f.metadata().at("stat", image)?.len();
    let mut head = Vec::with_capacity(STAMP_HASHED_BYTES as usize);
    f.take(STAMP_HASHED_BYTES)
        .read_to_end(&mut head)
        .at("read", image)?;
    Ok(format!(
        "{STAMP_MAGIC}\nsize={len}\nsha256={}\n",
        util::sha256_hex(&head)
    ))
}

/// True if `image` exists and matches its stamp.
fn verify(image: &Path) -> Result<bool> {
    let stamp = match fs::read_to_string(RootfsCache::stamp_path(image)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).at("read", RootfsCache::stamp_path(image)),
    };
    match stamp_for(image) {
        Ok(actual) => Ok(actual == stamp),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates a qcow2 overlay whose backing file is `base` (raw): the VM writes to the
/// overlay and the cached base stays untouched. Uses `qemu-img` from `PATH`.
pub fn create_overlay(base: &Path, overlay: &Path) -> Result<()> {
    create_overlay_with(Path::new("qemu-img"), base, overlay)
}

/// [`create_overlay`] with an explicit `qemu-img`.
pub fn create_overlay_with(qemu_img: &Path, base: &Path, overlay: &Path) -> Result<()> {
    // The backing path is stored in the overlay and resolved relative to it: make it absolute.
    let base = fs::canonicalize(base).at("resolve", base)?;
    util::run(
        Command::new(qemu_img)
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&base)
            .arg(overlay),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn have(prog: &str) -> bool {
        Command::new(prog).arg("--help").output().is_ok()
            || Command::new(prog).arg("-V").output().is_ok()
    }

    fn sample_tree(root: &Path) {
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("bin/tool"), vec![7u8; 10_000]).unwrap();
        fs::write(root.join("etc/hostname"), "x\n").unwrap();
        fs::hard_link(root.join("bin/tool"), root.join("bin/tool2")).unwrap();
        symlink("tool", root.join("bin/short")).unwrap();
        symlink("a".repeat(100), root.join("bin/long")).unwrap();
    }

    #[test]
    fn usage_counts_blocks_inodes_and_hard_links_once() {
        let d = tempfile::tempdir().unwrap();
        sample_tree(d.path());
        let u = tree_usage(d.path()).unwrap();
        // 3 dirs, tool (hard-linked, counted once), hostname, 2 symlinks.
        assert_eq!(u.inodes, 3 + 1 + 1 + 2);
        // dirs 3×4K, tool 12K, hostname 4K, long symlink 4K.
        assert_eq!(u.bytes, 3 * 4096 + 12288 + 4096 + 4096);
    }

    #[test]
    fn retain_drops_what_is_not_kept() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "sha256-a.ext4",
            "sha256-a.ext4.stamp",
            "sha256-b.ext4",
            "sha256-b.ext4.stamp",
            "sha256-b.lock",
            ".sha256-c.ext4.tmp-1-0",
        ] {
            fs::write(d.path().join(f), b"x").unwrap();
        }
        let cache = RootfsCache::new(d.path());
        let removed = cache.retain(&["sha256:a".to_string()]).unwrap();
        assert_eq!(removed, [d.path().join("sha256-b.ext4")]);
        let mut left: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".sha256-c.ext4.tmp-1-0",
                "sha256-a.ext4",
                "sha256-a.ext4.stamp"
            ]
        );
        assert!(
            RootfsCache::new(d.path().join("none"))
                .retain(&[])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(image_size(TreeUsage::default(), 0), 64 * MIB);
        let big = TreeUsage {
            bytes: 1000 * MIB,
            inodes: 10_000,
        };
        let s = image_size(big, DEFAULT_HEADROOM);
        assert!(s >= 1200 * MIB + DEFAULT_HEADROOM && s.is_multiple_of(MIB));
    }

    #[test]
    fn build_cache_hit_and_corruption() {
        if !have("mkfs.ext4") {
            eprintln!("skipping: mkfs.ext4 not installed (apt-get install e2fsprogs)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        sample_tree(&tree);
        let cache = RootfsCache::new(d.path().join("cache")).with_headroom(0);
        assert_eq!(cache.lookup("sha256:abc").unwrap(), None);
        let img = cache.get_or_build("sha256:abc", &tree).unwrap();
        assert_eq!(img, d.path().join("cache/sha256-abc.ext4"));
        assert_eq!(fs::metadata(&img).unwrap().len(), 64 * MIB);
        assert_eq!(
            cache.lookup("sha256:abc").unwrap().as_deref(),
            Some(img.as_path())
        );
        // The file system really holds the tree.
        if have("debugfs") {
            let out = Command::new("debugfs")
                .args(["-R", "cat /etc/hostname"])
                .arg(&img)
                .output();
            if let Ok(out) = out {
                assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n");
            }
        }
        // A hit does not rebuild.
        let ino = fs::metadata(&img).unwrap().ino();
        cache.get_or_build("sha256:abc", &tree).unwrap();
        assert_eq!(fs::metadata(&img).unwrap().ino(), ino);
        // Corrupt the superblock: the next lookup misses and the next get rebuilds.
        fs::set_permissions(&img, fs::Permissions::from_mode(0o644)).unwrap();
        let mut data = fs::read(&img).unwrap();
        data[1024 + 100] ^= 0xff;
        fs::write(&img, &data).unwrap();
        assert_eq!(cache.lookup("sha256:abc").unwrap(), None);
        cache.get_or_build("sha256:abc", &tree).unwrap();
        assert!(cache.lookup("sha256:abc").unwrap().is_some());
        // A missing image with a stamp left behind is rebuilt too.
        fs::remove_file(&img).unwrap();
        assert_eq!(cache.lookup("sha256:abc").unwrap(), None);
        cache.get_or_build("sha256:abc", &tree).unwrap();
        // No temp files are left.
        let names: Vec<String> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        cache.remove("sha256:abc").unwrap();
        assert_eq!(cache.lookup("sha256:abc").unwrap(), None);
        assert!(cache.get_or_build("../evil", &tree).is_err());
    }

    #[test]
    fn overlay_leaves_base_untouched() {
        if !have("qemu-img") || !have("mkfs.ext4") {
            eprintln!("skipping: qemu-img or mkfs.ext4 not installed");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("base.ext4");
        fs::write(&base, vec![0u8; 1 << 20]).unwrap();
        let overlay = d.path().join("vm/overlay.qcow2");
        fs::create_dir_all(overlay.parent().unwrap()).unwrap();
        create_overlay(&base, &overlay).unwrap();
        let info = Command::new("qemu-img")
            .arg("info")
            .arg(&overlay)
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains("qcow2"), "{info}");
        assert!(info.contains(&*base.to_string_lossy()), "{info}");
    }
}
