//! Randomized hostile layers. A seeded generator builds a few hundred tar streams from a grammar
//! of hostile entries (`..`, whiteouts, symlinks and hardlinks aimed at a sentinel directory or
//! the host root, devices, repeated names, odd bytes, PAX and GNU long names, corrupted headers,
//! truncated streams) and applies each one into `tmp/dest`. Whatever the outcome, applying must
//! not panic, must leave everything beside the layer (`tmp/outside`, `tmp` itself) exactly as
//! it was, and must not create the case's marker name at the host root or in the temp dir.
//!
//! The run seed is random unless `BERTH_FUZZ_SEED` (decimal or `0x` hex) sets it, and
//! `BERTH_FUZZ_CASES` sets how many cases run (otherwise about two seconds' worth, at most
//! [`DEFAULT_CASES`]). A failure prints the case's seed: `BERTH_FUZZ_SEED=<it>
//! BERTH_FUZZ_CASES=1` replays exactly that stream, since case 0 uses the run seed itself.
//! `BERTH_FUZZ_VERBOSE=1` prints why each refused layer was refused (to tune the grammar: about
//! a third of the layers should apply fully).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tar::{EntryType, Header};

use super::*;

/// Cases per run unless `BERTH_FUZZ_CASES` says otherwise.
const DEFAULT_CASES: u64 = 400;
/// Without `BERTH_FUZZ_CASES`, stop starting new cases after this long.
const TIME_BUDGET: Duration = Duration::from_secs(2);
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xorshift64*: tiny, seedable and good enough to pick grammar productions.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(splitmix(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Path components, `..` weighted up. Dynamic ones (the marker, long and odd names) are added
/// by [`Gen::component`].
const COMPONENTS: &[&[u8]] = &[
    b"..",
    b"..",
    b"..",
    b".",
    b"",
    b"a",
    b"a",
    b"b",
    b"b",
    b"c",
    b".wh.a",
    b".wh.b",
    b".wh..wh..opq",
    b".wh...",
    b".wh..",
    b".wh.",
    b".wh....",
    b".wh..wh.plnk",
    b".wh..wh.aufs",
    b"outside",
    b"secret",
    b"sub",
    b"dest",
    b"...",
    b"a.",
    b" ",
    b"\\",
];

const XATTR_KEYS: &[&str] = &[
    "SCHILY.xattr.user.a",
    "SCHILY.xattr.user.b",
    "SCHILY.xattr.trusted.overlay.opaque",
    "SCHILY.xattr.trusted.overlay.redirect",
    "SCHILY.xattr.trusted.berth",
];
/// Xattrs the kernel may refuse (bad names, namespaces, or values), drawn in wild cases.
const ODD_XATTR_KEYS: &[&str] = &[
    "SCHILY.xattr.security.capability",
    "SCHILY.xattr.system.posix_acl_access",
    "SCHILY.xattr.",
    "SCHILY.xattr.bogus.ns",
];

const PAX_TIMES: &[&str] = &[
    "1.5",
    "-1.5",
    "1700000000.123456789123",
    "9223372036854775807",
    "9223372036854775807.999999999",
    "-9223372036854775808",
    "-0.000000001",
    "+12",
    PAX_TIME_OVERFLOW,
];
/// The most negative PAX time with a fraction: `pax_time` subtracts one from the seconds and
/// overflows (a panic in debug builds). Drawn only once that is fixed, see
/// [`pax_time_at_i64_min_with_a_fraction_does_not_panic`].
const PAX_TIME_OVERFLOW: &str = "-9223372036854775808.5";
const PAX_TIME_OVERFLOW_FIXED: bool = true;
/// PAX times apply refuses, drawn rarely.
const BAD_PAX_TIMES: &[&str] = &["18446744073709551616", "1e9", "x", "", ".", "-", "1.-5"];

const MODES: &[u32] = &[
    0o644,
    0o755,
    0o777,
    0o7777,
    0o4755,
    0o2755,
    0o1777,
    0o000,
    0o7_777_777,
];

const IDS: &[u64] = &[0, 0, 0, 1, 1000, 65534, 2_097_151, 2_097_152, 4_294_967_294];
/// Ids apply refuses (`-1` and past 32 bits), drawn rarely.
const BAD_IDS: &[u64] = &[4_294_967_295, 1 << 40];

const DEVICES: &[(u32, u32)] = &[
    (0, 0),
    (0, 0),
    (1, 3),
    (1, 11),
    (8, 0),
    (2_097_151, 2_097_151),
];

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Ustar,
    Gnu,
    Old,
}

/// Builds one random tar stream for a case.
struct Gen {
    rng: Rng,
    /// Half the cases are wild: corrupt headers, truncated streams, bad ids and times, odd
    /// entry types. The others are tame, so that most of them apply fully and build deep
    /// trees of symlinks, hardlinks and replaced directories.
    wild: bool,
    marker: String,
    /// Absolute link targets: the host root, the marker there, the sentinel and the temp dir.
    abs_targets: Vec<Vec<u8>>,
    /// Paths already used, so names repeat and hardlinks find their targets.
    used: Vec<Vec<u8>>,
    out: Vec<u8>,
    /// Where each header block starts, for the corruption pass.
    headers: Vec<usize>,
}

impl Gen {
    /// `true` with the given chance in wild cases, never in tame ones.
    fn rare(&mut self, percent: u64) -> bool {
        self.wild && self.rng.chance(percent)
    }

    fn component(&mut self) -> Vec<u8> {
        match self.rng.below(48) {
            0 | 1 => self.marker.clone().into_bytes(),
            2 => format!(".wh.{}", self.marker).into_bytes(),
            3 => {
                // Around NAME_MAX, and past it (ENAMETOOLONG).
                let len = *self.rng.pick(&[99, 100, 101, 155, 254, 255, 256, 300]);
                vec![b'l'; len]
            }
            4 | 5 => {
                // Odd bytes, anything but NUL and `/`.
                let len = 1 + self.rng.below(6);
                (0..len)
                    .map(|_| match self.rng.next() as u8 {
                        0 | b'/' => 0xff,
                        b => b,
                    })
                    .collect()
            }
            _ => self.rng.pick(COMPONENTS).to_vec(),
        }
    }

    /// A component; unless `hostile`, not a `..` that climbs above the root from `depth`,
    /// nor a whiteout of `.` or `..`.
    fn component_with(&mut self, hostile: bool, depth: usize) -> Vec<u8> {
        loop {
            let c = self.component();
            let bad_whiteout = matches!(&c[..], b".wh." | b".wh.." | b".wh...");
            if hostile || !(c == b".." && depth == 0 || bad_whiteout) {
                return c;
            }
        }
    }

    /// A path of 1 to 4 components. Most are lexically valid (their `..` never climb above
    /// the root and their whiteouts name something), so that layers get far enough to
    /// build trees of symlinks and directories; with `hostile`, anything goes.
    fn path_with(&mut self, hostile: bool) -> Vec<u8> {
        if !self.used.is_empty() && self.rng.chance(30) {
            let mut p = self.rng.pick(&self.used).clone();
            if self.rng.chance(40) {
                p.push(b'/');
                let c = self.component_with(hostile, 1);
                p.extend(c);
            }
            return p;
        }
        match self.rng.below(40) {
            0 => return b"./".to_vec(),
            1 => return b"/".to_vec(),
            2 => return b".".to_vec(),
            _ => {}
        }
        let mut p = Vec::new();
        if self.rng.chance(25) {
            p.push(b'/');
        } else if self.rng.chance(20) {
            p.extend_from_slice(b"./");
        }
        let n = 1 + self.rng.below(4);
        let mut depth = 0usize;
        for i in 0..n {
            if i > 0 {
                p.push(b'/');
            }
            let c = self.component_with(hostile, depth);
            match &c[..] {
                b".." => depth = depth.saturating_sub(1),
                b"." | b"" => {}
                _ => depth += 1,
            }
            p.extend(c);
        }
        if self.rng.chance(15) {
            p.push(b'/');
        }
        p
    }

    fn path(&mut self) -> Vec<u8> {
        let hostile = if self.wild {
            self.rng.chance(12)
        } else {
            self.rng.chance(3)
        };
        self.path_with(hostile)
    }

    /// A symlink target (never checked, so anything goes) or a hardlink target.
    fn link_target(&mut self, hostile: bool) -> Vec<u8> {
        match self.rng.below(20) {
            0..=6 => self.path_with(hostile),
            7..=12 => {
                let mut t = self.rng.pick(&self.abs_targets).clone();
                if self.rng.chance(40) {
                    t.push(b'/');
                    t.extend(self.path());
                }
                t
            }
            13..=16 if !self.used.is_empty() => self.rng.pick(&self.used).clone(),
            _ => self
                .rng
                .pick::<&[u8]>(&[b"/", b"", b"..", b"../..", b"/..", b"."])
                .to_vec(),
        }
    }

    fn pax_record(&mut self) -> (Vec<u8>, Vec<u8>) {
        let (key, value): (&str, Vec<u8>) = match self.rng.below(12) {
            0..=3 => {
                let keys = if self.rare(30) {
                    ODD_XATTR_KEYS
                } else {
                    XATTR_KEYS
                };
                let key = *self.rng.pick(keys);
                let len = *self.rng.pick(&[0, 1, 4, 20, 300]);
                let mut value = if key.ends_with("opaque") {
                    b"y".to_vec()
                } else {
                    self.rng.bytes(len)
                };
                // The tar crate splits PAX records at newlines whatever their length says, so a
                // value holding one fails the whole layer ("malformed pax extension"): keep
                // that to wild cases.
                if !self.rare(20) {
                    value
                        .iter_mut()
                        .filter(|b| **b == b'\n')
                        .for_each(|b| *b = b'n');
                }
                (key, value)
            }
            4..=6 => {
                let key = if self.rng.chance(60) {
                    "mtime"
                } else {
                    "atime"
                };
                let times = if self.rare(10) {
                    BAD_PAX_TIMES
                } else {
                    PAX_TIMES
                };
                let mut time = *self.rng.pick(times);
                if time == PAX_TIME_OVERFLOW && !PAX_TIME_OVERFLOW_FIXED {
                    time = "-1.5";
                }
                (key, time.as_bytes().to_vec())
            }
            7 => ("path", self.path()),
            8 => ("linkpath", self.link_target(true)),
            9 if self.rare(20) => (
                "size",
                self.rng
                    .pick(&["0", "10", "513", "99999999999", "-1", "x"])
                    .as_bytes()
                    .to_vec(),
            ),
            10 => {
                let key = if self.rng.chance(50) { "uid" } else { "gid" };
                let ids: &[&str] = if self.rare(20) {
                    &["4294967295", "99999999999", "x", "-1"]
                } else {
                    &["0", "1", "65534", "4294967294"]
                };
                let id = *self.rng.pick(ids);
                (key, id.as_bytes().to_vec())
            }
            _ => ("comment", self.rng.bytes(8)),
        };
        (key.as_bytes().to_vec(), value)
    }

    /// A PAX extended header (`x`) or, with `global`, a global one (`g`).
    fn pax(&mut self, records: &[(Vec<u8>, Vec<u8>)], global: bool) {
        let mut data = Vec::new();
        for (key, value) in records {
            // "LEN key=value\n", where LEN counts itself.
            let body = key.len() + value.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(len.to_string().as_bytes());
            data.push(b' ');
            data.extend_from_slice(key);
            data.push(b'=');
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        if self.rare(2) {
            // A malformed record.
            data.extend(self.rng.bytes(12));
        }
        let mut header = Header::new_ustar();
        let kind = if global {
            EntryType::XGlobalHeader
        } else {
            EntryType::XHeader
        };
        set_name(&mut header, b"././@PaxHeader");
        header.set_entry_type(kind);
        self.raw(header, &data);
    }

    /// A GNU long name (`L`) or long link name (`K`) entry.
    fn gnu_long(&mut self, kind: EntryType, name: &[u8]) {
        let mut header = Header::new_gnu();
        set_name(&mut header, b"././@LongLink");
        header.set_entry_type(kind);
        let mut data = name.to_vec();
        data.push(0);
        self.raw(header, &data);
    }

    /// Appends a header (checksummed here, then maybe corrupted) and padded data.
    fn raw(&mut self, mut header: Header, data: &[u8]) {
        header.set_size(data.len() as u64);
        let flip_before = self.rare(6);
        if flip_before {
            self.flip(header.as_mut_bytes());
        }
        header.set_cksum();
        if !flip_before && self.rare(2) {
            self.flip(header.as_mut_bytes());
        }
        self.headers.push(self.out.len());
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.resize(self.out.len() + pad, 0);
    }

    fn flip(&mut self, block: &mut [u8]) {
        for _ in 0..1 + self.rng.below(3) {
            let i = self.rng.below(block.len());
            block[i] ^= 1 + self.rng.below(255) as u8;
        }
    }

    fn entry(&mut self) {
        let format = *self
            .rng
            .pick(&[Format::Ustar, Format::Ustar, Format::Gnu, Format::Old]);
        let mut header = match format {
            Format::Ustar => Header::new_ustar(),
            Format::Gnu => Header::new_gnu(),
            Format::Old => Header::new_old(),
        };
        let mut name = self.path();
        let mut link = Vec::new();
        let mut data = Vec::new();
        let kind = match self.rng.below(31) {
            0..=8 => {
                data = {
                    let n = self.rng.below(700);
                    self.rng.bytes(n)
                };
                EntryType::Regular
            }
            9 => {
                // V7: typeflag NUL, a directory if the name ends with a slash.
                if self.rng.chance(50) && !name.ends_with(b"/") {
                    name.push(b'/');
                }
                EntryType::new(0)
            }
            10..=14 => EntryType::Directory,
            15..=19 => {
                link = self.link_target(true);
                EntryType::Symlink
            }
            20..=23 => {
                let hostile = if self.wild {
                    self.rng.chance(15)
                } else {
                    self.rng.chance(3)
                };
                link = if !self.used.is_empty() && self.rng.chance(60) {
                    self.rng.pick(&self.used).clone()
                } else {
                    self.link_target(hostile)
                };
                EntryType::Link
            }
            24 => EntryType::Fifo,
            25 => EntryType::Char,
            26 => EntryType::Block,
            27 | 28 => EntryType::Continuous,
            29 if self.wild => EntryType::GNUSparse,
            _ if self.wild => EntryType::new(*self.rng.pick(b"VMNKLAgx\x01Z")),
            _ => EntryType::Regular,
        };
        if !matches!(kind, EntryType::Regular) && self.rng.chance(10) {
            data = {
                let n = self.rng.below(600);
                self.rng.bytes(n)
            };
        }
        header.set_entry_type(kind);
        header.set_mode(match self.rng.below(4) {
            0 => (self.rng.next() & 0o7_777_777) as u32,
            _ => *self.rng.pick(MODES),
        });
        for set in [Header::set_uid, Header::set_gid] {
            let ids = if self.rare(1) { BAD_IDS } else { IDS };
            set(&mut header, *self.rng.pick(ids));
        }
        header.set_mtime(match self.rng.below(6) {
            0 => 0,
            1 => 1 << 33,
            2 => u64::MAX,
            3 => self.rng.next() >> 30,
            _ => 1_500_000_000,
        });
        let (major, minor) = *self.rng.pick(DEVICES);
        let _ = header.set_device_major(major);
        let _ = header.set_device_minor(minor);
        if let Some(gnu) = header.as_gnu_mut()
            && self.rng.chance(30)
        {
            gnu.set_atime(*self.rng.pick(&[0, 1, 2_000_000_000, 1 << 40]));
        }

        // PAX records, some of which override the header's path and link name.
        let mut records = Vec::new();
        if self.rng.chance(25) {
            for _ in 0..1 + self.rng.below(4) {
                records.push(self.pax_record());
            }
        }
        let name_in_pax = name.len() > 100 && format != Format::Gnu || self.rng.chance(5);
        if name_in_pax && format != Format::Gnu {
            records.push((b"path".to_vec(), name.clone()));
        }
        if (link.len() > 100 && format != Format::Gnu) || (!link.is_empty() && self.rng.chance(5)) {
            records.push((b"linkpath".to_vec(), link.clone()));
        }
        if self.rng.chance(3) {
            let records = vec![self.pax_record()];
            self.pax(&records, true);
        }
        if !records.is_empty() {
            self.pax(&records, false);
        }
        if format == Format::Gnu {
            if name.len() > 100 || self.rng.chance(5) {
                self.gnu_long(EntryType::GNULongName, &name);
            }
            if link.len() > 100 || (!link.is_empty() && self.rng.chance(5)) {
                self.gnu_long(EntryType::GNULongLink, &link);
            }
        }
        let header_name: &[u8] = if name.len() <= 100 {
            &name
        } else if format == Format::Ustar && self.rng.chance(50) && set_prefix(&mut header, &name) {
            // Split into the ustar prefix field instead.
            &[]
        } else {
            b"decoy"
        };
        set_name(&mut header, header_name);
        let header_link = if link.len() <= 100 {
            &link[..]
        } else {
            b"decoy"
        };
        header.as_old_mut().linkname[..header_link.len()].copy_from_slice(header_link);
        self.raw(header, &data);

        let mut used = name;
        while used.ends_with(b"/") {
            used.pop();
        }
        if !matches!(&used[..], b"" | b"." | b"./" | b"/.") {
            self.used.push(used);
        }
    }

    fn stream(mut self) -> Vec<u8> {
        for _ in 0..1 + self.rng.below(12) {
            self.entry();
        }
        match self.rng.below(10) {
            0 => {}                                        // no end-of-archive marker
            1 => self.out.resize(self.out.len() + 512, 0), // one zero block
            _ => self.out.resize(self.out.len() + 1024, 0),
        }
        if self.rare(10) {
            self.out.extend(self.rng.bytes(700)); // junk after the end
        }
        if self.rare(16) {
            // Flip bytes anywhere, checksums left stale.
            for _ in 0..1 + self.rng.below(4) {
                let i = self.rng.below(self.out.len());
                self.out[i] ^= 1 + self.rng.below(255) as u8;
            }
        }
        if self.rare(20) {
            // Truncate: anywhere, or just inside a header.
            let cut = if self.rng.chance(50) {
                self.rng.below(self.out.len() + 1)
            } else {
                *self.rng.pick(&self.headers) + self.rng.below(512)
            };
            self.out.truncate(cut);
        }
        self.out
    }
}

fn set_name(header: &mut Header, name: &[u8]) {
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name);
}

/// Splits a long name into the ustar prefix and name fields, if some slash allows it.
fn set_prefix(header: &mut Header, name: &[u8]) -> bool {
    let Some(i) = (0..name.len())
        .rev()
        .find(|&i| name[i] == b'/' && i <= 155 && name.len() - i - 1 <= 100)
    else {
        return false;
    };
    let Some(ustar) = header.as_ustar_mut() else {
        return false;
    };
    ustar.prefix.fill(0);
    ustar.prefix[..i].copy_from_slice(&name[..i]);
    ustar.name.fill(0);
    ustar.name[..name.len() - i - 1].copy_from_slice(&name[i + 1..]);
    true
}

/// One case's temp dir: `tmp/dest` (the layer) and the sentinel `tmp/outside`.
struct Case {
    _tmp: tempfile::TempDir,
    tmp: PathBuf,
    dest: PathBuf,
    marker: String,
}

impl Case {
    fn new(seed: u64) -> Case {
        let tmp_dir = tempfile::tempdir().unwrap();
        let tmp = tmp_dir.path().to_path_buf();
        let dest = tmp.join("dest");
        let outside = tmp.join("outside");
        fs::create_dir(&dest).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"top secret").unwrap();
        fs::create_dir(outside.join("sub")).unwrap();
        fs::write(outside.join("sub/inner"), b"inner").unwrap();
        std::os::unix::fs::symlink("secret", outside.join("link")).unwrap();
        rustix::fs::chmod(&outside, rustix::fs::Mode::from_raw_mode(0o700)).unwrap();
        rustix::fs::chmod(
            outside.join("secret"),
            rustix::fs::Mode::from_raw_mode(0o640),
        )
        .unwrap();
        rustix::fs::setxattr(
            outside.join("secret"),
            "user.berth",
            b"sentinel",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap_or_else(|e| eprintln!("no user xattrs in the temp dir: {e}"));
        Case {
            _tmp: tmp_dir,
            tmp,
            dest,
            marker: format!("berth-fuzz-{}-{seed:016x}", std::process::id()),
        }
    }

    fn generator(&self, seed: u64) -> Gen {
        let abs = |p: &Path| p.as_os_str().as_bytes().to_vec();
        let outside = self.tmp.join("outside");
        let temp = std::env::temp_dir();
        let mut rng = Rng::new(seed);
        Gen {
            wild: rng.chance(50),
            rng,
            marker: self.marker.clone(),
            abs_targets: vec![
                b"/".to_vec(),
                format!("/{}", self.marker).into_bytes(),
                abs(&self.tmp),
                abs(&outside),
                abs(&outside.join("secret")),
                abs(&outside.join("sub")),
                abs(&outside.join("link")),
                abs(&temp),
                abs(&temp.join(&self.marker)),
            ],
            used: Vec::new(),
            out: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Everything in `tmp` but the layer, with xattr values.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        snapshot_into(&self.tmp, &self.dest, &mut out);
        for (path, line) in &mut out {
            for name in xattr_names(path) {
                let value = xattr(path, &name).unwrap_or_default();
                line.push_str(&format!(" {name}={value:?}"));
            }
        }
        out
    }

    /// Places outside `tmp` where an escape would land: the marker at the host root and in the
    /// temp dir. Returns those that exist, after removing them.
    fn escaped_markers(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for dir in [Path::new("/"), &std::env::temp_dir()] {
            let path = dir.join(&self.marker);
            if let Ok(m) = fs::symlink_metadata(&path) {
                if m.is_dir() {
                    let _ = fs::remove_dir_all(&path);
                } else {
                    let _ = fs::remove_file(&path);
                }
                found.push(path);
            }
        }
        found
    }
}

/// Owner and mode of the host root and the temp dir, which a layer symlink may name.
fn host_state() -> Vec<(PathBuf, u32, u32, u32)> {
    [PathBuf::from("/"), std::env::temp_dir()]
        .into_iter()
        .map(|p| {
            let m = fs::metadata(&p).unwrap();
            (p, m.mode(), m.uid(), m.gid())
        })
        .collect()
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}")))
}

#[derive(Default)]
struct Outcomes {
    ok: u64,
    err: u64,
    entries: u64,
}

/// Runs one case; panics (naming the seed, with the stream saved) if it failed.
fn run_case(seed: u64, outcomes: &mut Outcomes) {
    let case = Case::new(seed);
    let tar = case.generator(seed).stream();
    let before = case.snapshot();
    let host_before = host_state();
    let result = panic::catch_unwind(AssertUnwindSafe(|| apply_layer(&tar[..], &case.dest)));
    let after = case.snapshot();
    let escaped = case.escaped_markers();
    let host_after = host_state();

    let mut failures = Vec::new();
    match &result {
        Ok(Ok(stats)) => {
            outcomes.ok += 1;
            outcomes.entries += stats.entries;
        }
        Ok(Err(e)) => {
            outcomes.err += 1;
            if std::env::var_os("BERTH_FUZZ_VERBOSE").is_some() {
                eprintln!("ERR {}", error_kind(e));
            }
        }
        Err(_) => failures.push("apply_layer panicked".to_string()),
    }
    if before != after {
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| format!("{}: {:?} -> {:?}", k.display(), before.get(k), after.get(k)))
            .collect();
        failures.push(format!(
            "changed outside the layer:\n  {}",
            changed.join("\n  ")
        ));
    }
    if !escaped.is_empty() {
        failures.push(format!("created outside the layer (removed): {escaped:?}"));
    }
    if host_before != host_after {
        failures.push(format!(
            "host directories changed: {host_before:?} -> {host_after:?}"
        ));
    }
    if failures.is_empty() {
        return;
    }
    let saved = std::env::temp_dir().join(format!("berth-fuzz-failure-{seed:016x}.tar"));
    let _ = fs::write(&saved, &tar);
    let result = match &result {
        Ok(r) => format!("{r:?}"),
        Err(_) => "panic".into(),
    };
    panic!(
        "randomized layer case failed: {}\nresult: {result}\nstream saved to {}\n\
         replay: BERTH_FUZZ_SEED={seed:#018x} BERTH_FUZZ_CASES=1 \
         cargo test -p berth-image randomized",
        failures.join("\n"),
        saved.display(),
    );
}

fn error_kind(e: &LayerError) -> String {
    match e {
        LayerError::UnsafePath { reason, .. } => format!("unsafe: {reason}"),
        LayerError::Io { op, source, .. } => format!("io: {op}: {source}"),
        LayerError::Tar(e) => format!("tar: {e}"),
        LayerError::Header { source, path } => format!("header: {source} {path:?}"),
        LayerError::UnsupportedEntry { typeflag, .. } => format!("unsupported {typeflag}"),
    }
}

#[test]
fn random_hostile_layers_stay_inside() {
    if !is_root() {
        return;
    }
    let seed = env_u64("BERTH_FUZZ_SEED").unwrap_or_else(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        splitmix(now.as_nanos() as u64 ^ u64::from(std::process::id()))
    });
    let fixed = env_u64("BERTH_FUZZ_CASES");
    let cases = fixed.unwrap_or(DEFAULT_CASES);
    let start = Instant::now();
    let mut outcomes = Outcomes::default();
    let mut ran = 0;
    for i in 0..cases {
        if fixed.is_none() && start.elapsed() > TIME_BUDGET {
            break;
        }
        // Case 0 is the run seed itself, so any case replays on its own.
        let case_seed = if i == 0 {
            seed
        } else {
            splitmix(seed ^ i.wrapping_mul(GOLDEN))
        };
        run_case(case_seed, &mut outcomes);
        ran += 1;
    }
    eprintln!(
        "randomized layers: {ran} cases from seed {seed:#018x} in {:.2?}: {} applied ({} entries), {} refused",
        start.elapsed(),
        outcomes.ok,
        outcomes.entries,
        outcomes.err,
    );
    assert!(ran > 0);
}

#[test]
fn generator_is_deterministic() {
    let stream = |seed| {
        let case = Case::new(seed);
        let mut g = case.generator(seed);
        g.marker = "m".into();
        g.abs_targets = vec![b"/".to_vec()];
        g.stream()
    };
    assert_eq!(stream(42), stream(42));
    assert_ne!(stream(42), stream(43));
}

// Regressions found by this generator and by `fuzz/` (cargo-fuzz), minimized.

/// `pax_time("-9223372036854775808.5")` computes `i64::MIN - 1` (apply.rs, `pax_time`), which
/// panics with overflow checks on (debug builds, the test profile, cargo-fuzz) and wraps to
/// `i64::MAX` without them. Go wraps the same way and Docker then clamps to the epoch, so
/// `saturating_sub(1)` there (which `bound` turns into the epoch) is the fix.
#[test]
fn pax_time_at_i64_min_with_a_fraction_does_not_panic() {
    if !is_root() {
        return;
    }
    for key in ["mtime", "atime"] {
        let sandbox = Sandbox::new();
        let tar = Tar::new()
            .pax(&[(key, PAX_TIME_OVERFLOW.as_bytes())])
            .file("f", b"x")
            .bytes();
        let result = panic::catch_unwind(AssertUnwindSafe(|| sandbox.apply(&tar)));
        let result = result.unwrap_or_else(|_| panic!("{key}={PAX_TIME_OVERFLOW} panicked"));
        result.unwrap();
        // Out of Go's range: the epoch, as Docker and containerd give it. An out-of-range
        // atime alone only has to apply cleanly: atime is the later of atime and mtime.
        if key == "mtime" {
            let st = lstat(&sandbox.dest.join("f"));
            assert_eq!((st.mtime(), st.atime()), (0, 0), "{key}");
        }
    }
}

/// Found by `fuzz/` `reference_parse`: the familiar form of `docker.io/library/a/b` is `a/b`
/// (reference.rs, `familiar_name` strips `library/` unconditionally), and `a/b` is
/// `docker.io/a/b`, another repository. Docker's `familiarizeName` strips `library/` only when
/// no `/` follows, so the fix is to strip it only from single-component remainders.
#[test]
fn familiar_name_keeps_library_for_nested_paths() {
    use crate::reference::Reference;
    let r = Reference::parse_normalized("docker.io/library/a/b").unwrap();
    assert_eq!(r.familiar_name(), "library/a/b");
    assert_eq!(Reference::parse_normalized(&r.familiar()).unwrap(), r);
    // Single-component official images keep their short form.
    let alpine = Reference::parse_normalized("docker.io/library/alpine").unwrap();
    assert_eq!(alpine.familiar(), "alpine:latest");
}
