//! Arbitrary bytes as an (uncompressed) layer tar, applied into a fresh directory. Whatever
//! `apply_layer` returns, it must not panic, and the sentinel directory beside the layer
//! (names, types, owners, modes, times, link counts, contents, link targets, xattrs) and the
//! list of names at the host root must be exactly as before.
//!
//! Run as root, like the daemon, so that chown, mknod and trusted.* xattrs are exercised.

#![no_main]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;

struct Fixture {
    base: PathBuf,
    outside: PathBuf,
    outside_before: BTreeMap<PathBuf, String>,
    root_before: Vec<OsString>,
    next: AtomicU64,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        remove_stale_fixtures();
        let base = std::env::temp_dir().join(format!("berth-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir(&base).unwrap();
        let outside = base.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"top secret").unwrap();
        fs::create_dir(outside.join("sub")).unwrap();
        fs::write(outside.join("sub/inner"), b"inner").unwrap();
        std::os::unix::fs::symlink("secret", outside.join("link")).unwrap();
        let _ = rustix::fs::setxattr(
            outside.join("secret"),
            "user.berth",
            b"sentinel",
            rustix::fs::XattrFlags::empty(),
        );
        Fixture {
            outside_before: snapshot(&outside),
            root_before: root_names(),
            base,
            outside,
            next: AtomicU64::new(0),
        }
    })
}

/// Statics are never dropped, so each run leaves its `berth-fuzz-PID` behind: remove those of
/// processes that are gone (not those of parallel jobs still running).
fn remove_stale_fixtures() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("berth-fuzz-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn root_names() -> Vec<OsString> {
    let mut names: Vec<_> = fs::read_dir("/")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    snapshot_into(dir, &mut out);
    out
}

fn snapshot_into(path: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let m = fs::symlink_metadata(path).unwrap();
    let content = if m.is_file() {
        fs::read(path).unwrap()
    } else if m.is_symlink() {
        fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec()
    } else {
        Vec::new()
    };
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap_or(0);
    let mut xattrs = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 4096];
        let len = rustix::fs::lgetxattr(path, name, &mut value[..]).unwrap_or(0);
        xattrs.push((
            String::from_utf8_lossy(name).into_owned(),
            value[..len].to_vec(),
        ));
    }
    out.insert(
        path.to_path_buf(),
        format!(
            "mode={:o} uid={} gid={} nlink={} size={} mtime={}.{} ctime={}.{} xattrs={xattrs:?} content={content:?}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.nlink(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ),
    );
    if m.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            snapshot_into(&entry.unwrap().path(), out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let dest = f
        .base
        .join(format!("dest-{}", f.next.fetch_add(1, Ordering::Relaxed)));
    fs::create_dir(&dest).unwrap();
    let _ = berth_image::layer::apply_layer(data, &dest);
    fs::remove_dir_all(&dest).unwrap();

    let after = snapshot(&f.outside);
    if after != f.outside_before {
        for (path, was) in &f.outside_before {
            if after.get(path) != Some(was) {
                eprintln!("{}: {was} -> {:?}", path.display(), after.get(path));
            }
        }
        for path in after.keys().filter(|p| !f.outside_before.contains_key(*p)) {
            eprintln!("{}: new", path.display());
        }
        panic!("the layer changed the sentinel directory outside it");
    }
    let root = root_names();
    assert_eq!(root, f.root_before, "the layer changed the host root");
});
