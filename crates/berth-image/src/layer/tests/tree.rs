//! Well-formed layers: every entry type with its metadata, whiteouts, replacements.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use tar::EntryType;

use super::*;

const T_ROOT: u64 = 1_400_000_000;
const T_DIR: &str = "1600000000.123456789";
const T_FILE: u64 = 1_600_000_100;

#[test]
fn applies_every_entry_type_with_its_metadata() {
    if !is_root() {
        return;
    }
    let sandbox = Sandbox::new();
    let long_dir = "d".repeat(90);
    let long_name = format!("{long_dir}/{}", "f".repeat(120));
    let mut tar = Tar::new();
    tar.add(Spec {
        kind: EntryType::XGlobalHeader,
        data: b"19 comment=ignored\n",
        ..Spec::default()
    })
    .add(Spec {
        kind: EntryType::Directory,
        name: "./",
        mode: 0o750,
        mtime: T_ROOT,
        ..Spec::default()
    })
    .pax(&[("mtime", T_DIR.as_bytes())])
    .add(Spec {
        kind: EntryType::Directory,
        name: "etc/",
        mode: 0o755,
        ..Spec::default()
    })
    .add(Spec {
        name: "etc/passwd",
        data: b"root:x:0:0::/root:/bin/sh\n",
        mtime: T_FILE,
        ..Spec::default()
    })
    .add(Spec {
        name: "etc/shadow",
        data: b"root:*::",
        mode: 0o640,
        gid: 42,
        ..Spec::default()
    })
    .pax(&[
        ("SCHILY.xattr.user.foo", b"bar"),
        ("atime", b"1700000000.5"),
        ("mtime", b"1600000200.25"),
    ])
    .add(Spec {
        name: "etc/xattr",
        data: b"x",
        ..Spec::default()
    })
    .pax(&[("SCHILY.xattr.user.dir", b"1")])
    .add(Spec {
        kind: EntryType::Directory,
        name: "opt",
        mode: 0o700,
        ..Spec::default()
    })
    .dir("usr/")
    .dir("usr/bin/")
    .add(Spec {
        name: "usr/bin/su",
        data: b"\x7fELF",
        mode: 0o4755,
        uid: 1000,
        gid: 1000,
        ..Spec::default()
    })
    .add(Spec {
        name: "usr/bin/sg",
        data: b"",
        mode: 0o2711,
        uid: 1000,
        gid: 1000,
        ..Spec::default()
    })
    .add(Spec {
        kind: EntryType::Symlink,
        name: "usr/bin/sh",
        link: "/bin/busybox",
        uid: 1000,
        gid: 1001,
        mtime: 1_234_567_890,
        ..Spec::default()
    })
    // A hardlink header repeats its target's metadata (and containerd applies it again).
    .add(Spec {
        kind: EntryType::Link,
        name: "usr/bin/su2",
        link: "usr/bin/su",
        mode: 0o4755,
        uid: 1000,
        gid: 1000,
        ..Spec::default()
    })
    .add(Spec {
        kind: EntryType::Fifo,
        name: "run/fifo",
        mode: 0o600,
        ..Spec::default()
    })
    .add(Spec {
        kind: EntryType::Char,
        name: "dev/null",
        mode: 0o666,
        dev: (1, 3),
        ..Spec::default()
    })
    .add(Spec {
        kind: EntryType::Block,
        name: "dev/loop0",
        mode: 0o660,
        gid: 6,
        dev: (7, 0),
        ..Spec::default()
    })
    .add(Spec {
        kind: EntryType::Directory,
        name: "tmp",
        mode: 0o1777,
        ..Spec::default()
    });
    // A GNU long name; uid, gid and mtime left empty, which Go reads as 0.
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(4);
    tar.0
        .append_data(&mut header, &long_name, &b"long"[..])
        .unwrap();
    let stats = sandbox.apply(&tar.bytes()).unwrap();
    let d = &sandbox.dest;

    // Neither the pax global header nor the GNU long-name record counts as an entry.
    assert_eq!(
        stats,
        ApplyStats {
            entries: 17,
            bytes: 26 + 8 + 1 + 4 + 4,
            whiteouts: 0
        }
    );

    let root = lstat(d);
    assert_eq!(root.mode() & 0o7777, 0o750);
    assert_eq!(root.mtime(), T_ROOT as i64);

    // The directory's time survives its children being written after it, to the nanosecond.
    let etc = lstat(&d.join("etc"));
    assert!(etc.is_dir());
    assert_eq!(
        (etc.mtime(), etc.mtime_nsec()),
        (1_600_000_000, 123_456_789)
    );

    let passwd = lstat(&d.join("etc/passwd"));
    assert_eq!(
        fs::read(d.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(
        (passwd.mode() & 0o7777, passwd.uid(), passwd.gid()),
        (0o644, 0, 0)
    );
    assert_eq!((passwd.mtime(), passwd.mtime_nsec()), (T_FILE as i64, 0));
    // No atime in the tar: atime = mtime.
    assert_eq!(passwd.atime(), T_FILE as i64);

    let shadow = lstat(&d.join("etc/shadow"));
    assert_eq!((shadow.mode() & 0o7777, shadow.gid()), (0o640, 42));

    let with_xattr = d.join("etc/xattr");
    assert_eq!(xattr(&with_xattr, "user.foo").as_deref(), Some(&b"bar"[..]));
    let m = lstat(&with_xattr);
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_200, 250_000_000));
    assert_eq!((m.atime(), m.atime_nsec()), (1_700_000_000, 500_000_000));

    let opt = lstat(&d.join("opt"));
    assert_eq!(opt.mode() & 0o7777, 0o700);
    assert_eq!(
        xattr(&d.join("opt"), "user.dir").as_deref(),
        Some(&b"1"[..])
    );

    // setuid and setgid survive the chown (which clears them).
    let su = lstat(&d.join("usr/bin/su"));
    assert_eq!(
        (su.mode() & 0o7777, su.uid(), su.gid()),
        (0o4755, 1000, 1000)
    );
    let sg = lstat(&d.join("usr/bin/sg"));
    assert_eq!(sg.mode() & 0o7777, 0o2711);

    let sh = lstat(&d.join("usr/bin/sh"));
    assert!(sh.file_type().is_symlink());
    assert_eq!(
        fs::read_link(d.join("usr/bin/sh")).unwrap().to_str(),
        Some("/bin/busybox")
    );
    assert_eq!(
        (sh.uid(), sh.gid(), sh.mtime()),
        (1000, 1001, 1_234_567_890)
    );

    let su2 = lstat(&d.join("usr/bin/su2"));
    assert_eq!((su2.ino(), su2.nlink()), (su.ino(), 2));

    // `run` is not in the tar: created 0755 and root-owned.
    let run = lstat(&d.join("run"));
    assert_eq!((run.mode() & 0o7777, run.uid(), run.gid()), (0o755, 0, 0));
    let fifo = lstat(&d.join("run/fifo"));
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o600);

    let null = lstat(&d.join("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let loop0 = lstat(&d.join("dev/loop0"));
    assert!(loop0.file_type().is_block_device());
    assert_eq!((loop0.rdev(), loop0.gid()), (rustix::fs::makedev(7, 0), 6));

    assert_eq!(lstat(&d.join("tmp")).permissions().mode() & 0o7777, 0o1777);
    assert_eq!(fs::read(d.join(&long_name)).unwrap(), b"long");
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if !is_root() {
        return;
    }
    let sandbox = Sandbox::new();
    let stats = sandbox
        .apply(
            &Tar::new()
                .dir("a/")
                .add(Spec {
                    name: "a/.wh.foo",
                    uid: 1000,
                    gid: 1000,
                    ..Spec::default()
                })
                .file("a/bar", b"replaced by a whiteout")
                .file("a/.wh.bar", b"")
                .file("b/.wh..wh..opq", b"")
                .dir("c/")
                .file("c/kept", b"k")
                .file("c/.wh..wh..opq", b"")
                .file(".wh..wh.plnk/123.456", b"aufs")
                .file("d/.wh..wh.aufs", b"")
                .bytes(),
        )
        .unwrap();
    assert_eq!(stats.whiteouts, 4);
    let d = &sandbox.dest;
    for (name, uid) in [("a/foo", 1000), ("a/bar", 0)] {
        let m = lstat(&d.join(name));
        assert!(m.file_type().is_char_device(), "{name} is not a whiteout");
        assert_eq!((m.rdev(), m.uid()), (0, uid), "{name}");
    }
    assert!(!exists(&d.join("a/.wh.foo")));
    assert!(lstat(&d.join("b")).is_dir());
    assert_eq!(
        xattr(&d.join("b"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        xattr(&d.join("c"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(fs::read(d.join("c/kept")).unwrap(), b"k");
    assert!(!exists(&d.join("b/.wh..wh..opq")));
    assert!(!exists(&d.join(".wh..wh.plnk")));
    assert!(!exists(&d.join("d/.wh..wh.aufs")));
    assert_eq!(xattr(&d.join("a"), "trusted.overlay.opaque"), None);
}

#[test]
fn overlay_xattrs_in_the_tar_are_ignored() {
    if !is_root() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox
        .apply(
            &Tar::new()
                .pax(&[
                    ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                    ("SCHILY.xattr.user.ok", b"1"),
                ])
                .dir("x/")
                .bytes(),
        )
        .unwrap();
    let x = sandbox.dest.join("x");
    assert_eq!(xattr(&x, "trusted.overlay.redirect"), None);
    assert_eq!(xattr(&x, "user.ok").as_deref(), Some(&b"1"[..]));
}

#[test]
fn later_entries_replace_earlier_ones() {
    if !is_root() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox
        .apply(
            &Tar::new()
                // file -> dir
                .file("x", b"file")
                .dir("x/")
                .file("x/child", b"c")
                // dir (with children) -> file
                .dir("y/")
                .file("y/f", b"f")
                .dir("y/sub/")
                .file("y/sub/g", b"g")
                .file("y", b"now a file")
                // dir -> dir: merged, metadata updated
                .add(Spec {
                    kind: EntryType::Directory,
                    name: "z/",
                    mode: 0o700,
                    ..Spec::default()
                })
                .file("z/kept", b"kept")
                .add(Spec {
                    kind: EntryType::Directory,
                    name: "z/",
                    mode: 0o751,
                    uid: 5,
                    gid: 6,
                    ..Spec::default()
                })
                // symlink -> dir, file -> symlink, file -> file
                .symlink("s", "x")
                .dir("s/")
                .file("l", b"l")
                .symlink("l", "/target")
                .file("f", b"first")
                .file("f", b"second")
                .bytes(),
        )
        .unwrap();
    let d = &sandbox.dest;
    assert!(lstat(&d.join("x")).is_dir());
    assert_eq!(fs::read(d.join("x/child")).unwrap(), b"c");
    assert!(lstat(&d.join("y")).is_file());
    assert_eq!(fs::read(d.join("y")).unwrap(), b"now a file");
    let z = lstat(&d.join("z"));
    assert_eq!((z.mode() & 0o7777, z.uid(), z.gid()), (0o751, 5, 6));
    assert_eq!(fs::read(d.join("z/kept")).unwrap(), b"kept");
    assert!(lstat(&d.join("s")).is_dir());
    assert!(lstat(&d.join("l")).file_type().is_symlink());
    assert_eq!(fs::read(d.join("f")).unwrap(), b"second");
}

#[test]
fn parents_resolve_through_symlinks_of_the_layer() {
    if !is_root() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox
        .apply(
            &Tar::new()
                .dir("usr/")
                .dir("usr/lib/")
                .symlink("lib", "usr/lib")
                .symlink("lib64", "/usr/lib")
                .file("lib/a.so", b"a")
                .file("lib64/b.so", b"b")
                .hardlink("c.so", "lib64/a.so")
                .bytes(),
        )
        .unwrap();
    let d = &sandbox.dest;
    assert_eq!(fs::read(d.join("usr/lib/a.so")).unwrap(), b"a");
    assert_eq!(fs::read(d.join("usr/lib/b.so")).unwrap(), b"b");
    assert_eq!(
        lstat(&d.join("c.so")).ino(),
        lstat(&d.join("usr/lib/a.so")).ino()
    );
}

#[test]
fn truncated_and_unsupported_entries_fail() {
    if !is_root() {
        return;
    }
    let sandbox = Sandbox::new();
    let mut full = Tar::new().file("big", &[7u8; 10_000]).bytes();
    full.truncate(5_000);
    assert!(matches!(sandbox.apply(&full), Err(LayerError::Tar(_))));

    let label = Tar::new()
        .add(Spec {
            kind: EntryType::new(b'V'),
            name: "label",
            ..Spec::default()
        })
        .bytes();
    let err = sandbox.apply(&label).unwrap_err();
    assert!(
        matches!(err, LayerError::UnsupportedEntry { typeflag: b'V', .. }),
        "{err}"
    );
}
