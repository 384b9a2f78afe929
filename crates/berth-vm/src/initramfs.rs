//! The initramfs: a newc cpio archive holding the static `berth-init` as `/init` and the
//! kernel modules the guest needs to find its disks, its network and the control port.
//!
//! Layout inside the archive:
//! ```text
//! /init                         berth-init (stage 1 runs here, stage 2 after switch_root)
//! /dev/console                  so the kernel can open init's stdio before devtmpfs
//! /dev /proc /sys /newroot      mount points
//! /lib/modules/berth/NN-name.ko uncompressed modules, numbered in load order
//! /lib/modules/berth/order      their file names, one a line, dependencies first
//! ```
//! Modules are resolved from `<modules dir>/modules.dep` when it exists, else from each
//! module's own `depends=` field (a kernel package unpacked with `dpkg-deb -x` has no
//! `modules.dep`: depmod never ran). `.ko.xz`, `.ko.zst` and `.ko.gz` are decompressed.
//!
//! Archives are cached by (init binary hash, modules dir, kernel version, module list).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, IoContext, Result};
use crate::util;

/// The modules a berth guest loads; their dependencies are added automatically
/// (virtio_ring, virtio, failover, net_failover on Debian's 6.1 kernels).
pub const DEFAULT_MODULES: &[&str] = &["virtio_mmio", "virtio_blk", "virtio_console", "virtio_net"];
/// Where the modules go inside the archive.
pub const MODULES_PATH: &str = "lib/modules/berth";

/// Writes a "newc" (SVR4, no CRC) cpio archive, the format the kernel unpacks.
pub struct CpioWriter<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            ino: 1,
            written: 0,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let name = name.trim_start_matches('/');
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cpio entry above 4 GiB"))?;
        let namesize = u32::try_from(name.len() + 1)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cpio name too long"))?;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.ino += 1;
        let mut hdr = String::with_capacity(110);
        hdr.push_str("070701");
        for f in fields {
            hdr.push_str(&format!("{f:08x}"));
        }
        self.write(hdr.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.write(&[0u8; 3][..n])
    }

    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.entry(name, 0o040000 | (perm & 0o7777), (0, 0), &[])
    }

    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, 0o100000 | (perm & 0o7777), (0, 0), data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.entry(name, 0o120777, (0, 0), target.as_bytes())
    }

    pub fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(name, 0o020000 | (perm & 0o7777), (major, minor), &[])
    }

    /// Writes the trailer and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A module's canonical name: file name without `.ko[.xz|.zst|.gz]`, `-` as `_`.
pub fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some(stem.replace('-', "_"))
}

/// A module resolved for loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModule {
    pub name: String,
    pub path: PathBuf,
}

/// Resolves `wanted` (and their dependencies) to files under `modules_dir`, dependencies
/// first, each once.
pub fn resolve_modules(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<ResolvedModule>> {
    let index = ModuleIndex::load(modules_dir)?;
    let mut order = Vec::new();
    let mut done = HashSet::new();
    for w in wanted {
        index.visit(&w.replace('-', "_"), &mut done, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

struct ModuleIndex {
    dir: PathBuf,
    paths: HashMap<String, PathBuf>,
    /// From modules.dep; `None` means "read each module's depends=".
    deps: Option<HashMap<String, Vec<String>>>,
}

impl ModuleIndex {
    fn load(dir: &Path) -> Result<Self> {
        let dep_file = dir.join("modules.dep");
        match fs::read_to_string(&dep_file) {
            Ok(text) => {
                let mut paths = HashMap::new();
                let mut deps = HashMap::new();
                for line in text.lines() {
                    let Some((m, ds)) = line.split_once(':') else {
                        continue;
                    };
                    let Some(name) = module_name(Path::new(m)) else {
                        continue;
                    };
                    let ds = ds
                        .split_whitespace()
                        .filter_map(|d| module_name(Path::new(d)))
                        .collect();
                    paths.insert(name.clone(), dir.join(m.trim()));
                    deps.insert(name, ds);
                }
                Ok(Self {
                    dir: dir.to_path_buf(),
                    paths,
                    deps: Some(deps),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut paths = HashMap::new();
                let mut stack = vec![dir.to_path_buf()];
                while let Some(d) = stack.pop() {
                    for entry in fs::read_dir(&d).at("read dir", &d)? {
                        let entry = entry.at("read dir", &d)?;
                        let ft = entry.file_type().at("stat", entry.path())?;
                        if ft.is_dir() {
                            stack.push(entry.path());
                        } else if let Some(name) = module_name(&entry.path()) {
                            paths.entry(name).or_insert_with(|| entry.path());
                        }
                    }
                }
                Ok(Self {
                    dir: dir.to_path_buf(),
                    paths,
                    deps: None,
                })
            }
            Err(e) => Err(e).at("read", dep_file),
        }
    }

    fn deps_of(&self, name: &str, path: &Path) -> Result<Vec<String>> {
        if let Some(deps) = &self.deps {
            return Ok(deps.get(name).cloned().unwrap_or_default());
        }
        Ok(modinfo_depends(&read_module(path)?))
    }

    fn visit(
        &self,
        name: &str,
        done: &mut HashSet<String>,
        path_stack: &mut Vec<String>,
        order: &mut Vec<ResolvedModule>,
    ) -> Result<()> {
        if done.contains(name) || path_stack.iter().any(|n| n == name) {
            return Ok(());
        }
        let path = self.paths.get(name).ok_or_else(|| Error::ModuleNotFound {
            module: name.to_string(),
            dir: self.dir.clone(),
        })?;
        path_stack.push(name.to_string());
        for dep in self.deps_of(name, path)? {
            self.visit(&dep, done, path_stack, order)?;
        }
        path_stack.pop();
        done.insert(name.to_string());
        order.push(ResolvedModule {
            name: name.to_string(),
            path: path.clone(),
        });
        Ok(())
    }
}

/// The `depends=` list from a module's `.modinfo` strings.
pub fn modinfo_depends(ko: &[u8]) -> Vec<String> {
    ko.split(|b| *b == 0)
        .find_map(|s| s.strip_prefix(b"depends="))
        .map(|d| {
            String::from_utf8_lossy(d)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default()
}

/// A module's bytes, decompressed if it is `.ko.xz`, `.ko.zst` or `.ko.gz`.
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    if name.ends_with(".ko.xz") {
        let out = util::run(Command::new("xz").arg("-dc").arg(path))?;
        return Ok(out.stdout);
    }
    let data = fs::read(path).at("read", path)?;
    if name.ends_with(".ko.zst") {
        return zstd::stream::decode_all(&data[..]).at("decompress", path);
    }
    if name.ends_with(".ko.gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .at("decompress", path)?;
        return Ok(out);
    }
    Ok(data)
}

/// Writes the whole initramfs for `init` and `modules` (already in load order).
pub fn write_initramfs(out: impl Write, init: &[u8], modules: &[ResolvedModule]) -> Result<()> {
    let io = |e: io::Error| Error::Io {
        op: "write",
        path: PathBuf::from("initramfs"),
        source: e,
    };
    let mut w = CpioWriter::new(out);
    for d in [
        "dev",
        "proc",
        "sys",
        "newroot",
        "lib",
        "lib/modules",
        MODULES_PATH,
    ] {
        w.dir(d, 0o755).map_err(io)?;
    }
    w.char_device("dev/console", 0o600, 5, 1).map_err(io)?;
    w.file("init", 0o755, init).map_err(io)?;
    let mut order = String::new();
    for (i, m) in modules.iter().enumerate() {
        let file = format!("{i:02}-{}.ko", m.name);
        let data = read_module(&m.path)?;
        w.file(&format!("{MODULES_PATH}/{file}"), 0o644, &data)
            .map_err(io)?;
        order.push_str(&file);
        order.push('\n');
    }
    w.file(&format!("{MODULES_PATH}/order"), 0o644, order.as_bytes())
        .map_err(io)?;
    w.finish().map_err(io)?;
    Ok(())
}

/// Cached initramfs archives under one directory.
#[derive(Debug, Clone)]
pub struct InitramfsCache {
    dir: PathBuf,
}

impl InitramfsCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The archive for `init` plus `modules` (and their dependencies) from `modules_dir`
    /// (`/lib/modules/<version>`; `None` for a kernel with the drivers built in).
    pub fn get_or_build(
        &self,
        init: &Path,
        modules_dir: Option<&Path>,
        modules: &[&str],
    ) -> Result<PathBuf> {
        let init_bytes = fs::read(init).at("read", init)?;
        let mut key = format!(
            "berth-initramfs 1\ninit={}\n",
            util::sha256_hex(&init_bytes)
        );
        if let Some(dir) = modules_dir {
            let version = dir
                .file_name()
                .map(|v| v.to_string_lossy())
                .unwrap_or_default();
            key.push_str(&format!("modules={}\nversion={version}\n", dir.display()));
            key.push_str(&format!("list={}\n", modules.join(",")));
        }
        let name = format!("initramfs-{}.cpio", &util::sha256_hex(key.as_bytes())[..24]);
        let path = self.dir.join(&name);
        if path.exists() {
            return Ok(path);
        }
        fs::create_dir_all(&self.dir).at("create dir", &self.dir)?;
        let _lock = util::lock(&self.dir, &name)?;
        if path.exists() {
            return Ok(path);
        }
        let resolved = match modules_dir {
            Some(dir) => resolve_modules(dir, modules)?,
            None => Vec::new(),
        };
        let tmp = util::temp_path(&path);
        let res = (|| {
            let f = fs::File::create(&tmp).at("create", &tmp)?;
            write_initramfs(io::BufWriter::new(f), &init_bytes, &resolved)?;
            util::commit(&tmp, &path)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_ko(depends: &str) -> Vec<u8> {
        let mut v = b"\x7fELF junk\0license=GPL\0".to_vec();
        v.extend_from_slice(format!("depends={depends}\0name=x\0").as_bytes());
        v
    }

    fn fake_modules(dir: &Path, with_dep_file: bool) {
        let m = |p: &str, deps: &str| {
            let p = dir.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, fake_ko(deps)).unwrap();
        };
        m("kernel/drivers/virtio/virtio_ring.ko", "");
        m("kernel/drivers/virtio/virtio.ko", "virtio_ring");
        m("kernel/drivers/virtio/virtio_mmio.ko", "virtio,virtio_ring");
        m("kernel/drivers/block/virtio_blk.ko", "virtio,virtio_ring");
        m("kernel/net/core/failover.ko", "");
        m("kernel/drivers/net/net_failover.ko", "failover");
        m(
            "kernel/drivers/net/virtio_net.ko",
            "net_failover,virtio,virtio_ring",
        );
        // virtio_console compressed with zstd, as newer kernels ship them.
        let zst = zstd::stream::encode_all(&fake_ko("virtio,virtio_ring")[..], 3).unwrap();
        fs::write(dir.join("kernel/drivers/virtio/virtio_console.ko.zst"), zst).unwrap();
        if with_dep_file {
            fs::write(
                dir.join("modules.dep"),
                "kernel/drivers/virtio/virtio_ring.ko:\n\
                 kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
                 kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
                 kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
                 kernel/net/core/failover.ko:\n\
                 kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n\
                 kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
                 kernel/drivers/virtio/virtio_console.ko.zst: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n",
            )
            .unwrap();
        }
    }

    fn names(v: &[ResolvedModule]) -> Vec<&str> {
        v.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn resolves_dependencies_first_from_both_sources() {
        for with_dep_file in [true, false] {
            let d = tempfile::tempdir().unwrap();
            fake_modules(d.path(), with_dep_file);
            let r = resolve_modules(d.path(), DEFAULT_MODULES).unwrap();
            let n = names(&r);
            assert_eq!(n.len(), 8, "{n:?}");
            let pos = |m: &str| n.iter().position(|x| *x == m).unwrap();
            assert!(pos("virtio_ring") < pos("virtio"));
            assert!(pos("virtio") < pos("virtio_mmio"));
            assert!(pos("virtio") < pos("virtio_blk"));
            assert!(pos("failover") < pos("net_failover"));
            assert!(pos("net_failover") < pos("virtio_net"));
            assert!(pos("virtio") < pos("virtio_console"));
            let err = resolve_modules(d.path(), &["nope"]).unwrap_err();
            assert!(matches!(err, Error::ModuleNotFound { .. }), "{err}");
        }
    }

    #[test]
    fn modinfo_and_names() {
        assert_eq!(modinfo_depends(&fake_ko("a,b-c")), vec!["a", "b_c"]);
        assert!(modinfo_depends(&fake_ko("")).is_empty());
        assert_eq!(
            module_name(Path::new("/x/virtio-rng.ko.xz")).unwrap(),
            "virtio_rng"
        );
        assert_eq!(module_name(Path::new("/x/virtio.ko")).unwrap(), "virtio");
        assert_eq!(module_name(Path::new("/x/modules.dep")), None);
    }

    /// Parses a newc archive back: (name, mode, rdevmajor, rdevminor, data).
    fn parse_newc(mut a: &[u8]) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0usize;
        loop {
            assert_eq!(&a[..6], b"070701");
            let f = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&a[6 + i * 8..14 + i * 8]).unwrap(), 16)
                    .unwrap()
            };
            let (mode, size, maj, min, namesize) =
                (f(1), f(6) as usize, f(9), f(10), f(11) as usize);
            let name = String::from_utf8(a[110..110 + namesize - 1].to_vec()).unwrap();
            let pad = |n: usize| n.div_ceil(4) * 4;
            let data_start = pad(off + 110 + namesize) - off;
            let data = a[data_start..data_start + size].to_vec();
            let next = pad(off + data_start + size) - off;
            off += next;
            a = &a[next..];
            if name == "TRAILER!!!" {
                assert!(a.is_empty());
                return out;
            }
            out.push((name, mode, maj, min, data));
        }
    }

    #[test]
    fn newc_archive_layout() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("dev", 0o755).unwrap();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        w.file("/init", 0o755, b"abcde").unwrap();
        w.symlink("sbin", "bin").unwrap();
        let a = w.finish().unwrap();
        assert_eq!(a.len() % 4, 0);
        let e = parse_newc(&a);
        assert_eq!(e.len(), 4);
        assert_eq!((e[0].0.as_str(), e[0].1), ("dev", 0o040755));
        assert_eq!((e[1].1, e[1].2, e[1].3), (0o020600, 5, 1));
        assert_eq!(
            (e[2].0.as_str(), e[2].1, e[2].4.as_slice()),
            ("init", 0o100755, &b"abcde"[..])
        );
        assert_eq!((e[3].1, e[3].4.as_slice()), (0o120777, &b"bin"[..]));
        // The system cpio agrees, if present.
        if let Ok(mut child) = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            child.stdin.take().unwrap().write_all(&a).unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "dev\ndev/console\ninit\nsbin\n"
            );
        }
    }

    #[test]
    fn cached_archive_holds_init_and_ordered_modules() {
        let d = tempfile::tempdir().unwrap();
        let mods = d.path().join("6.1.0-test");
        fake_modules(&mods, false);
        let init = d.path().join("berth-init");
        fs::write(&init, b"INIT").unwrap();
        let cache = InitramfsCache::new(d.path().join("cache"));
        let a = cache
            .get_or_build(&init, Some(&mods), DEFAULT_MODULES)
            .unwrap();
        assert_eq!(
            cache
                .get_or_build(&init, Some(&mods), DEFAULT_MODULES)
                .unwrap(),
            a
        );
        let entries = parse_newc(&fs::read(&a).unwrap());
        let get = |n: &str| entries.iter().find(|e| e.0 == n).map(|e| e.4.clone());
        assert_eq!(get("init").unwrap(), b"INIT");
        let order = String::from_utf8(get("lib/modules/berth/order").unwrap()).unwrap();
        let files: Vec<&str> = order.lines().collect();
        assert_eq!(files.len(), 8);
        assert!(files[0].starts_with("00-"));
        // The zstd module was stored decompressed.
        let console = files.iter().find(|f| f.contains("virtio_console")).unwrap();
        assert!(
            get(&format!("lib/modules/berth/{console}"))
                .unwrap()
                .starts_with(b"\x7fELF")
        );
        // A different init gives a different archive; no modules gives a tiny one.
        fs::write(&init, b"INIT2").unwrap();
        let b = cache
            .get_or_build(&init, Some(&mods), DEFAULT_MODULES)
            .unwrap();
        assert_ne!(a, b);
        let c = cache.get_or_build(&init, None, DEFAULT_MODULES).unwrap();
        let entries = parse_newc(&fs::read(&c).unwrap());
        assert!(entries.iter().all(|e| !e.0.ends_with(".ko")));
    }
}
