//! Hostile layers. Each must fail or be confined to the layer directory, and must leave the
//! sentinel directory beside it (and the rest of the temp dir) exactly as it was: same
//! entries, owners, modes, times (ctime included, so even a no-op chown shows), link counts,
//! contents and xattrs.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use tar::EntryType;

use super::*;

/// Builds a tar (which may name the sandbox's absolute paths), applies it and checks that
/// nothing outside the layer changed.
fn attack(build: impl FnOnce(&Sandbox) -> Vec<u8>) -> (Sandbox, Result<ApplyStats, LayerError>) {
    let sandbox = Sandbox::new();
    let tar = build(&sandbox);
    let before = sandbox.snapshot();
    let result = sandbox.apply(&tar);
    let after = sandbox.snapshot();
    assert_eq!(
        before, after,
        "the layer changed something outside its directory ({result:?})"
    );
    (sandbox, result)
}

fn assert_unsafe(result: Result<ApplyStats, LayerError>) {
    match result {
        Err(LayerError::UnsafePath { .. }) => {}
        other => panic!("expected an unsafe path error, got {other:?}"),
    }
}

/// A name no other file on the host has, for escapes aimed at the host root.
fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "berth-layer-escape-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn outside_abs(sandbox: &Sandbox, rest: &str) -> String {
    format!("{}{rest}", sandbox.outside.display())
}

#[test]
fn dotdot_paths_are_refused() {
    if !is_root() {
        return;
    }
    for name in [
        "../outside/x",
        "sub/../../outside/x",
        "/../outside/x",
        "./../outside/secret",
        "..",
    ] {
        let (_, result) = attack(|_| Tar::new().file(name, b"pwned").bytes());
        assert_unsafe(result);
    }
    // The same through a PAX path record and a directory entry.
    let (_, result) = attack(|_| {
        Tar::new()
            .pax(&[("path", b"../outside/pax")])
            .file("innocent", b"pwned")
            .bytes()
    });
    assert_unsafe(result);
    let (_, result) = attack(|_| {
        Tar::new()
            .add(Spec {
                kind: EntryType::Directory,
                name: "a/../../outside/",
                mode: 0o777,
                ..Spec::default()
            })
            .bytes()
    });
    assert_unsafe(result);
}

#[test]
fn absolute_paths_land_inside() {
    if !is_root() {
        return;
    }
    let name = unique();
    let (sandbox, result) = attack(|_| Tar::new().file(&format!("/{name}/path"), b"ok").bytes());
    result.unwrap();
    assert_eq!(
        fs::read(sandbox.dest.join(&name).join("path")).unwrap(),
        b"ok"
    );
    assert!(!exists(&Path::new("/").join(&name)));
}

#[test]
fn writes_through_a_symlink_to_root_stay_inside() {
    if !is_root() {
        return;
    }
    let name = unique();
    let (sandbox, result) = attack(|_| {
        Tar::new()
            .symlink("evil", "/")
            .file(&format!("evil/{name}"), b"x")
            .bytes()
    });
    result.unwrap();
    assert_eq!(fs::read(sandbox.dest.join(&name)).unwrap(), b"x");
    assert!(!exists(&Path::new("/").join(&name)));

    // Relative and absolute symlinks to the sentinel: resolved inside the layer, where the
    // target does not exist, so the write fails.
    let (_, result) = attack(|_| {
        Tar::new()
            .symlink("evil", "../outside")
            .file("evil/x", b"pwned")
            .bytes()
    });
    assert!(result.is_err());
    let (_, result) = attack(|s| {
        Tar::new()
            .symlink("evil", &outside_abs(s, ""))
            .file("evil/secret", b"pwned")
            .bytes()
    });
    assert!(result.is_err());
    let (_, result) = attack(|s| {
        Tar::new()
            .symlink("evil", &outside_abs(s, ""))
            .dir("evil/sub/")
            .file("evil/sub/x", b"p")
            .bytes()
    });
    assert!(result.is_err());
}

#[test]
fn symlinks_to_dotdot_are_clamped_at_the_root() {
    if !is_root() {
        return;
    }
    let (sandbox, result) = attack(|_| {
        Tar::new()
            .symlink("a", "..")
            .file("a/a/a/x", b"x")
            .symlink("b", "../../../../../..")
            .file("b/y", b"y")
            .dir("d/")
            .symlink("d/up", "../../..")
            .file("d/up/z", b"z")
            .bytes()
    });
    result.unwrap();
    for name in ["x", "y", "z"] {
        assert!(lstat(&sandbox.dest.join(name)).is_file(), "{name}");
    }
}

#[test]
fn hardlinks_cannot_reach_outside() {
    if !is_root() {
        return;
    }
    for target in [
        "../outside/secret",
        "/../outside/secret",
        "a/../../outside/secret",
    ] {
        let (_, result) = attack(|_| Tar::new().hardlink("h", target).bytes());
        assert_unsafe(result);
    }
    let (_, result) = attack(|_| Tar::new().hardlink("h", "/").bytes());
    assert_unsafe(result);
    // Through a symlink of the layer that points outside: resolved inside, where it is absent.
    let (_, result) = attack(|_| {
        Tar::new()
            .symlink("l", "../outside")
            .hardlink("h", "l/secret")
            .bytes()
    });
    assert!(result.is_err());
    let (_, result) = attack(|s| {
        Tar::new()
            .symlink("l", &outside_abs(s, ""))
            .hardlink("h", "l/secret")
            .bytes()
    });
    assert!(result.is_err());
    // To a symlink that points outside: links the symlink itself; a later file replaces it.
    let (sandbox, result) = attack(|s| {
        Tar::new()
            .symlink("s", &outside_abs(s, "/secret"))
            .add(Spec {
                kind: EntryType::Link,
                name: "h",
                link: "s",
                mode: 0o777,
                uid: 1,
                ..Spec::default()
            })
            .add(Spec {
                kind: EntryType::Link,
                name: "h2",
                link: "s",
                mode: 0o777,
                uid: 1,
                ..Spec::default()
            })
            .file("h2", b"pwned")
            .bytes()
    });
    result.unwrap();
    let h = lstat(&sandbox.dest.join("h"));
    assert!(h.file_type().is_symlink());
    assert_eq!(h.ino(), lstat(&sandbox.dest.join("s")).ino());
    assert_eq!(fs::read(sandbox.dest.join("h2")).unwrap(), b"pwned");
}

#[test]
fn a_file_replaces_a_symlink_instead_of_writing_through_it() {
    if !is_root() {
        return;
    }
    let (sandbox, result) = attack(|s| {
        Tar::new()
            .symlink("s", "../outside/secret")
            .file("s", b"pwned")
            .symlink("t", &outside_abs(s, "/secret"))
            .add(Spec {
                name: "t",
                data: b"pwned",
                mode: 0o777,
                uid: 7,
                ..Spec::default()
            })
            .bytes()
    });
    result.unwrap();
    for name in ["s", "t"] {
        let m = lstat(&sandbox.dest.join(name));
        assert!(m.is_file(), "{name}");
        assert_eq!(fs::read(sandbox.dest.join(name)).unwrap(), b"pwned");
    }
}

#[test]
fn metadata_of_a_symlink_is_not_applied_to_its_target() {
    if !is_root() {
        return;
    }
    let (_, result) = attack(|s| {
        let target = outside_abs(s, "/secret");
        let mut tar = Tar::new();
        tar.pax(&[("SCHILY.xattr.user.x", b"1"), ("mtime", b"1.5")]);
        tar.add(Spec {
            kind: EntryType::Symlink,
            name: "s",
            link: &target,
            uid: 99,
            gid: 99,
            ..Spec::default()
        });
        tar.add(Spec {
            kind: EntryType::Symlink,
            name: "d",
            link: &outside_abs(s, "/sub"),
            ..Spec::default()
        });
        tar.bytes()
    });
    result.unwrap();
}

#[test]
fn whiteouts_cannot_name_dot_or_leave() {
    if !is_root() {
        return;
    }
    for name in [".wh...", ".wh..", ".wh.", "sub/.wh..", "sub/.wh..."] {
        let (_, result) = attack(|_| Tar::new().file(name, b"").bytes());
        assert_unsafe(result);
    }
    // Whiteouts and opaque markers under a symlink to the sentinel.
    let (_, result) = attack(|s| {
        Tar::new()
            .symlink("evil", &outside_abs(s, ""))
            .file("evil/.wh.secret", b"")
            .bytes()
    });
    assert!(result.is_err());
    let (_, result) = attack(|_| {
        Tar::new()
            .symlink("evil", "../outside")
            .file("evil/.wh..wh..opq", b"")
            .bytes()
    });
    assert!(result.is_err());
    let (sandbox, result) = attack(|_| {
        Tar::new()
            .symlink("evil", "/")
            .file("evil/.wh.secret", b"")
            .bytes()
    });
    result.unwrap();
    assert!(
        lstat(&sandbox.dest.join("secret"))
            .file_type()
            .is_char_device()
    );
}

#[test]
fn device_nodes_are_created_inside() {
    if !is_root() {
        return;
    }
    let name = unique();
    let (sandbox, result) = attack(|_| {
        Tar::new()
            .add(Spec {
                kind: EntryType::Char,
                name: "dev/kmsg",
                mode: 0o644,
                dev: (1, 11),
                ..Spec::default()
            })
            .symlink("root", "/")
            .add(Spec {
                kind: EntryType::Block,
                name: &format!("root/{name}"),
                dev: (8, 0),
                ..Spec::default()
            })
            .bytes()
    });
    result.unwrap();
    assert_eq!(
        lstat(&sandbox.dest.join("dev/kmsg")).rdev(),
        rustix::fs::makedev(1, 11)
    );
    assert!(
        lstat(&sandbox.dest.join(&name))
            .file_type()
            .is_block_device()
    );
    assert!(!exists(&Path::new("/").join(&name)));
}

#[test]
fn a_directory_entry_replaces_a_symlink_instead_of_chmodding_its_target() {
    if !is_root() {
        return;
    }
    let (sandbox, result) = attack(|s| {
        Tar::new()
            .symlink("evil", "../outside")
            .add(Spec {
                kind: EntryType::Directory,
                name: "evil",
                mode: 0o777,
                uid: 1234,
                ..Spec::default()
            })
            .symlink("evil2", &outside_abs(s, ""))
            .add(Spec {
                kind: EntryType::Directory,
                name: "evil2/",
                mode: 0o777,
                uid: 1234,
                ..Spec::default()
            })
            .file("evil2/secret", b"pwned")
            .bytes()
    });
    result.unwrap();
    for name in ["evil", "evil2"] {
        let m = lstat(&sandbox.dest.join(name));
        assert!(m.is_dir(), "{name}");
        assert_eq!((m.mode() & 0o7777, m.uid()), (0o777, 1234), "{name}");
    }
    assert_eq!(
        fs::read(sandbox.dest.join("evil2/secret")).unwrap(),
        b"pwned"
    );
}

#[test]
fn a_directory_replaced_by_a_symlink_is_not_written_through_a_stale_descriptor() {
    if !is_root() {
        return;
    }
    let (sandbox, result) = attack(|s| {
        Tar::new()
            .dir("a/")
            .file("a/x", b"x")
            .symlink("a", "/")
            .file("a/y", b"y")
            .dir("b/")
            .file("b/x", b"x")
            .symlink("b", &outside_abs(s, ""))
            .bytes()
    });
    result.unwrap();
    assert!(lstat(&sandbox.dest.join("a")).file_type().is_symlink());
    assert_eq!(fs::read(sandbox.dest.join("y")).unwrap(), b"y");
    // And a write after that goes through the new symlink, resolved inside the layer.
    let (_, result) = attack(|s| {
        Tar::new()
            .dir("b/")
            .file("b/x", b"x")
            .symlink("b", &outside_abs(s, ""))
            .file("b/secret", b"pwned")
            .bytes()
    });
    assert!(result.is_err());
}
