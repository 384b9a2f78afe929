//! The guest kernel: where it is, its modules, and an uncompressed `vmlinux` to boot.
//!
//! Lookup order ([`KernelLocator::locate`]): the configured kernel (and modules), else the
//! host's own `/boot/vmlinuz-$(uname -r)` with `/lib/modules/$(uname -r)`, else an error
//! that tells the user what to install or pass.
//!
//! QEMU boots an uncompressed ELF `vmlinux` through PVH, which saves ~0.4 s under TCG, and
//! Firecracker needs one. [`vmlinux_from_bzimage`] unpacks it from a bzImage (gzip, LZ4
//! legacy, zstd, or xz through the `xz` program) and caches it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, IoContext, Result};
use crate::util;

/// What to tell a user who has no guest kernel.
pub const NO_KERNEL_HINT: &str = "install Debian's cloud kernel (apt-get install \
     linux-image-cloud-amd64) or pass --vm-kernel and --vm-modules";

/// A kernel the guest can boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestKernel {
    /// The kernel image as found (bzImage or vmlinux).
    pub image: PathBuf,
    /// `/lib/modules/<version>`, or `None` for a kernel with its drivers built in.
    pub modules_dir: Option<PathBuf>,
    /// The kernel release, when known (`6.1.0-56-cloud-amd64`).
    pub version: Option<String>,
}

/// Finds the guest kernel; all paths are parameters so tests can use fixture trees.
#[derive(Debug, Clone)]
pub struct KernelLocator {
    kernel: Option<PathBuf>,
    modules: Option<PathBuf>,
    boot_dir: PathBuf,
    modules_root: PathBuf,
    release: Option<String>,
}

impl Default for KernelLocator {
    fn default() -> Self {
        Self::new()
    }
}

impl KernelLocator {
    /// Looks in `/boot` and `/lib/modules` for the running kernel's release.
    pub fn new() -> Self {
        Self {
            kernel: None,
            modules: None,
            boot_dir: PathBuf::from("/boot"),
            modules_root: PathBuf::from("/lib/modules"),
            release: host_release(),
        }
    }

    /// `--vm-kernel`: use this image.
    pub fn with_kernel(mut self, kernel: Option<PathBuf>) -> Self {
        self.kernel = kernel;
        self
    }

    /// `--vm-modules`: the `/lib/modules/<version>` directory that goes with the kernel.
    pub fn with_modules(mut self, modules: Option<PathBuf>) -> Self {
        self.modules = modules;
        self
    }

    /// Where to look for the host's kernel instead of `/boot` and `/lib/modules`.
    pub fn with_roots(
        mut self,
        boot_dir: impl Into<PathBuf>,
        modules_root: impl Into<PathBuf>,
    ) -> Self {
        self.boot_dir = boot_dir.into();
        self.modules_root = modules_root.into();
        self
    }

    /// The release to look for instead of `uname -r`.
    pub fn with_release(mut self, release: Option<String>) -> Self {
        self.release = release;
        self
    }

    pub fn locate(&self) -> Result<GuestKernel> {
        if let Some(kernel) = &self.kernel {
            if !kernel.is_file() {
                return Err(Error::KernelNotFound(format!(
                    "{} does not exist; {NO_KERNEL_HINT}",
                    kernel.display()
                )));
            }
            let modules_dir = match &self.modules {
                Some(m) if m.is_dir() => Some(m.clone()),
                Some(m) => {
                    return Err(Error::KernelNotFound(format!(
                        "modules directory {} does not exist",
                        m.display()
                    )));
                }
                // vmlinuz-<release> next to a matching modules dir: take it.
                None => kernel
                    .file_name()
                    .and_then(|f| f.to_str())
                    .and_then(|f| f.strip_prefix("vmlinuz-").or(f.strip_prefix("vmlinux-")))
                    .map(|r| self.modules_root.join(r))
                    .filter(|d| d.is_dir()),
            };
            let version = modules_dir
                .as_ref()
                .and_then(|d| d.file_name())
                .map(|v| v.to_string_lossy().into_owned());
            return Ok(GuestKernel {
                image: kernel.clone(),
                modules_dir,
                version,
            });
        }
        if self.modules.is_some() {
            return Err(Error::KernelNotFound(
                "--vm-modules given without --vm-kernel".into(),
            ));
        }
        if let Some(release) = &self.release {
            let image = self.boot_dir.join(format!("vmlinuz-{release}"));
            let modules = self.modules_root.join(release);
            if image.is_file() && modules.is_dir() {
                return Ok(GuestKernel {
                    image,
                    modules_dir: Some(modules),
                    version: Some(release.clone()),
                });
            }
        }
        Err(Error::KernelNotFound(format!(
            "no {}/vmlinuz-{} with {}/{}; {NO_KERNEL_HINT}",
            self.boot_dir.display(),
            self.release.as_deref().unwrap_or("<release>"),
            self.modules_root.display(),
            self.release.as_deref().unwrap_or("<release>"),
        )))
    }
}

/// The running kernel's release (`uname -r`).
pub fn host_release() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

const ELF_MAGIC: &[u8] = b"\x7fELF";

/// The compressed payload of a bzImage and its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Lz4,
    Zstd,
    Xz,
}

fn sniff(data: &[u8]) -> Option<Compression> {
    if data.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if data.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
        Some(Compression::Lz4)
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Compression::Xz)
    } else {
        None
    }
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Finds the compressed kernel inside a bzImage: from the boot protocol header
/// (`payload_offset`/`payload_length`, boot protocol ≥ 2.08), else by scanning for a magic.
pub fn bzimage_payload(data: &[u8]) -> Option<(Compression, &[u8])> {
    if data.get(0x202..0x206) == Some(b"HdrS") {
        let setup_sects = match data.get(0x1f1).copied()? {
            0 => 4,
            n => n as usize,
        };
        let pm_start = (setup_sects + 1) * 512;
        let off = u32_at(data, 0x248)? as usize;
        let len = u32_at(data, 0x24c)? as usize;
        if let Some(p) = data.get(pm_start + off..pm_start + off + len)
            && let Some(c) = sniff(p)
        {
            return Some((c, p));
        }
    }
    // Fallback: the first magic of any known format.
    (0..data.len().saturating_sub(6)).find_map(|i| sniff(&data[i..]).map(|c| (c, &data[i..])))
}

/// Decodes one LZ4 block (the raw block format) onto `out`.
fn lz4_block(src: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    let ext = |i: &mut usize, mut n: usize| -> Option<usize> {
        if n == 15 {
            loop {
                let b = *src.get(*i)?;
                *i += 1;
                n += b as usize;
                if b != 255 {
                    break;
                }
            }
        }
        Some(n)
    };
    while i < src.len() {
        let token = src[i];
        i += 1;
        let lit = ext(&mut i, (token >> 4) as usize)?;
        out.extend_from_slice(src.get(i..i + lit)?);
        i += lit;
        if i == src.len() {
            break; // the last sequence holds literals only
        }
        let off = u16::from_le_bytes([*src.get(i)?, *src.get(i + 1)?]) as usize;
        i += 2;
        let len = ext(&mut i, (token & 15) as usize)? + 4;
        if off == 0 || off > out.len() {
            return None;
        }
        let start = out.len() - off;
        for k in 0..len {
            let b = out[start + k];
            out.push(b);
        }
    }
    Some(())
}

/// Decodes the LZ4 "legacy" frame format the kernel uses (magic, then `u32` length + block,
/// repeated; a trailing `u32` holds the uncompressed size).
fn lz4_legacy(data: &[u8]) -> Option<Vec<u8>> {
    const MAGIC: u32 = 0x184c_2102;
    let mut out = Vec::with_capacity(data.len() * 3);
    let mut i = 0;
    while i + 4 <= data.len() {
        let n = u32_at(data, i)?;
        i += 4;
        if n == MAGIC {
            continue;
        }
        let n = n as usize;
        if n > data.len() - i {
            break; // the size trailer, or padding
        }
        lz4_block(&data[i..i + n], &mut out)?;
        i += n;
    }
    Some(out)
}

/// Decompresses a bzImage payload.
pub fn decompress_payload(c: Compression, p: &[u8]) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::BadKernel {
        path: PathBuf::from("bzImage"),
        reason,
    };
    let mut out = Vec::new();
    match c {
        Compression::Gzip => {
            flate2::read::GzDecoder::new(p)
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("gzip: {e}")))?;
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(p)
                .map_err(|e| bad(format!("zstd: {e}")))?
                .single_frame()
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("zstd: {e}")))?;
        }
        Compression::Lz4 => out = lz4_legacy(p).ok_or_else(|| bad("corrupt lz4 data".into()))?,
        Compression::Xz => {
            let mut child = Command::new("xz")
                .args(["-dc", "--single-stream"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|source| Error::Spawn {
                    program: "xz".into(),
                    source,
                })?;
            let mut stdin = child.stdin.take().expect("piped");
            let input = p.to_vec();
            let feeder = std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(&input);
            });
            child
                .stdout
                .take()
                .expect("piped")
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("xz: {e}")))?;
            let _ = feeder.join();
            let _ = child.wait();
        }
    }
    if !out.starts_with(ELF_MAGIC) {
        return Err(bad(format!(
            "{c:?} payload did not decompress to an ELF image"
        )));
    }
    Ok(out)
}

/// An uncompressed `vmlinux` for `image`: `image` itself if it already is one, else the
/// payload of the bzImage unpacked into `cache_dir` (`vmlinux-<hash of image>`).
pub fn vmlinux_from_bzimage(image: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let data = fs::read(image).at("read", image)?;
    if data.starts_with(ELF_MAGIC) {
        return Ok(image.to_path_buf());
    }
    let name = format!("vmlinux-{}", &util::sha256_hex(&data)[..24]);
    let dest = cache_dir.join(&name);
    if dest.is_file() {
        return Ok(dest);
    }
    let (c, payload) = bzimage_payload(&data).ok_or_else(|| Error::BadKernel {
        path: image.to_path_buf(),
        reason: "not a bzImage with a known compression".into(),
    })?;
    let vmlinux = decompress_payload(c, payload).map_err(|e| match e {
        Error::BadKernel { reason, .. } => Error::BadKernel {
            path: image.to_path_buf(),
            reason,
        },
        e => e,
    })?;
    fs::create_dir_all(cache_dir).at("create dir", cache_dir)?;
    let _lock = util::lock(cache_dir, &name)?;
    util::write_atomic(&dest, &vmlinux)?;
    Ok(dest)
}

/// Fetches Debian's `linux-image-cloud-amd64` (the versioned package it depends on) with
/// apt into `cache_dir` and unpacks it there, once. For tests and for hosts without a
/// suitable kernel; needs `apt-cache`, `apt-get` and `dpkg-deb` and a usable package list.
pub fn fetch_debian_cloud_kernel(cache_dir: &Path) -> Result<GuestKernel> {
    let deps = util::run(Command::new("apt-cache").args(["depends", "linux-image-cloud-amd64"]))?;
    let deps = String::from_utf8_lossy(&deps.stdout);
    let package = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p != &"linux-image-cloud-amd64")
        .ok_or_else(|| {
            Error::KernelNotFound(format!(
                "apt-cache knows no versioned package behind linux-image-cloud-amd64 \
                 (run apt-get update?): {deps}"
            ))
        })?
        .to_string();
    let root = cache_dir.join(&package);
    if let Some(k) = unpacked_kernel(&root) {
        return Ok(k);
    }
    fs::create_dir_all(cache_dir).at("create dir", cache_dir)?;
    let _lock = util::lock(cache_dir, &package)?;
    if let Some(k) = unpacked_kernel(&root) {
        return Ok(k);
    }
    let work = util::temp_path(&root);
    fs::create_dir_all(&work).at("create dir", &work)?;
    let res = (|| {
        util::run(
            Command::new("apt-get")
                .args(["download", "-q", &package])
                .current_dir(&work),
        )?;
        let deb = fs::read_dir(&work)
            .at("read dir", &work)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .ok_or_else(|| {
                Error::KernelNotFound(format!("apt-get download {package} gave no .deb"))
            })?;
        let tree = work.join("tree");
        util::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
        fs::rename(&tree, &root).at("rename", &root)
    })();
    let _ = fs::remove_dir_all(&work);
    res?;
    unpacked_kernel(&root).ok_or_else(|| {
        Error::KernelNotFound(format!(
            "{} holds no boot/vmlinuz-* and lib/modules/*",
            root.display()
        ))
    })
}

/// The kernel in an unpacked kernel package (`boot/vmlinuz-V` and `lib/modules/V`).
fn unpacked_kernel(root: &Path) -> Option<GuestKernel> {
    let boot = fs::read_dir(root.join("boot")).ok()?;
    for e in boot.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(version) = name.strip_prefix("vmlinuz-") {
            let modules = root.join("lib/modules").join(version);
            if modules.is_dir() {
                return Some(GuestKernel {
                    image: e.path(),
                    modules_dir: Some(modules),
                    version: Some(version.to_string()),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fake_elf() -> Vec<u8> {
        let mut v = ELF_MAGIC.to_vec();
        v.extend((0..20_000u32).flat_map(|i| (i % 251).to_le_bytes()));
        v
    }

    /// A minimal bzImage: boot header with HdrS, payload offset and length.
    fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
        let setup_sects = 4u8;
        let pm_start = (setup_sects as usize + 1) * 512;
        let mut d = vec![0u8; pm_start + 100];
        d[0x1f1] = setup_sects;
        d[0x202..0x206].copy_from_slice(b"HdrS");
        d[0x248..0x24c].copy_from_slice(&100u32.to_le_bytes());
        d[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        d.extend_from_slice(payload);
        d.extend_from_slice(&[0u8; 64]);
        d
    }

    #[test]
    fn gzip_and_zstd_bzimages_unpack() {
        let elf = fake_elf();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&elf).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&elf[..], 3).unwrap();
        for (c, payload) in [(Compression::Gzip, gz), (Compression::Zstd, zst)] {
            let mut p = payload.clone();
            p.extend_from_slice(&(elf.len() as u32).to_le_bytes()); // the kernel's size trailer
            let img = fake_bzimage(&p);
            let (found, bytes) = bzimage_payload(&img).unwrap();
            assert_eq!(found, c);
            assert_eq!(decompress_payload(found, bytes).unwrap(), elf);
        }
    }

    #[test]
    fn lz4_legacy_frames() {
        // Hand-made block: 5 literals "abcde", then a match of offset 5, length 10, then 3
        // final literals "xyz".
        let mut block = vec![0x56]; // 5 literals, match length 6+4 = 10
        block.extend_from_slice(b"abcde");
        block.extend_from_slice(&5u16.to_le_bytes());
        block.push(0x30);
        block.extend_from_slice(b"xyz");
        let mut frame = vec![0x02, 0x21, 0x4c, 0x18];
        frame.extend_from_slice(&(block.len() as u32).to_le_bytes());
        frame.extend_from_slice(&block);
        frame.extend_from_slice(&18u32.to_le_bytes()); // size trailer
        assert_eq!(lz4_legacy(&frame).unwrap(), b"abcdeabcdeabcdexyz");
        // Corrupt offset.
        let mut bad = frame.clone();
        bad[8 + 6] = 9;
        assert!(lz4_legacy(&bad).is_none());
    }

    #[test]
    fn vmlinux_cache_and_passthrough() {
        let d = tempfile::tempdir().unwrap();
        let elf = fake_elf();
        let plain = d.path().join("vmlinux");
        fs::write(&plain, &elf).unwrap();
        assert_eq!(vmlinux_from_bzimage(&plain, d.path()).unwrap(), plain);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&elf).unwrap();
            e.finish().unwrap()
        };
        let bz = d.path().join("vmlinuz");
        fs::write(&bz, fake_bzimage(&gz)).unwrap();
        let out = vmlinux_from_bzimage(&bz, &d.path().join("cache")).unwrap();
        assert_eq!(fs::read(&out).unwrap(), elf);
        assert_eq!(
            vmlinux_from_bzimage(&bz, &d.path().join("cache")).unwrap(),
            out
        );
        let junk = d.path().join("junk");
        fs::write(&junk, b"nothing here at all").unwrap();
        assert!(matches!(
            vmlinux_from_bzimage(&junk, d.path()),
            Err(Error::BadKernel { .. })
        ));
    }

    #[test]
    fn locate_order_and_errors() {
        let d = tempfile::tempdir().unwrap();
        let boot = d.path().join("boot");
        let mods = d.path().join("modules");
        fs::create_dir_all(&boot).unwrap();
        fs::create_dir_all(mods.join("6.1.0-test")).unwrap();
        let base = KernelLocator::new()
            .with_roots(&boot, &mods)
            .with_release(Some("6.1.0-test".into()));
        // Nothing there yet: the error tells the user what to do.
        let err = base.locate().unwrap_err().to_string();
        assert!(
            err.contains("linux-image-cloud-amd64") && err.contains("--vm-kernel"),
            "{err}"
        );
        // The host's kernel.
        fs::write(boot.join("vmlinuz-6.1.0-test"), b"k").unwrap();
        let k = base.locate().unwrap();
        assert_eq!(k.image, boot.join("vmlinuz-6.1.0-test"));
        assert_eq!(
            k.modules_dir.as_deref(),
            Some(mods.join("6.1.0-test").as_path())
        );
        assert_eq!(k.version.as_deref(), Some("6.1.0-test"));
        // A configured kernel wins; its modules are found by name, or given.
        let other = d.path().join("vmlinux-custom");
        fs::write(&other, b"k").unwrap();
        let k = base
            .clone()
            .with_kernel(Some(other.clone()))
            .locate()
            .unwrap();
        assert_eq!((k.image.clone(), k.modules_dir), (other.clone(), None));
        let k = base
            .clone()
            .with_kernel(Some(other.clone()))
            .with_modules(Some(mods.join("6.1.0-test")))
            .locate()
            .unwrap();
        assert_eq!(k.version.as_deref(), Some("6.1.0-test"));
        assert!(
            base.clone()
                .with_kernel(Some(d.path().join("missing")))
                .locate()
                .is_err()
        );
        assert!(
            base.clone()
                .with_modules(Some(mods.join("6.1.0-test")))
                .locate()
                .is_err()
        );
    }

    #[test]
    fn unpacked_package_layout() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("boot")).unwrap();
        fs::create_dir_all(d.path().join("lib/modules/6.1.0-9-cloud-amd64")).unwrap();
        assert!(unpacked_kernel(d.path()).is_none());
        fs::write(d.path().join("boot/vmlinuz-6.1.0-9-cloud-amd64"), b"k").unwrap();
        let k = unpacked_kernel(d.path()).unwrap();
        assert_eq!(k.version.as_deref(), Some("6.1.0-9-cloud-amd64"));
    }
}
