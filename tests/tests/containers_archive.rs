//! A container's filesystem through the docker CLI: `cp` both ways (running and stopped
//! containers), `diff`, `commit` then run the image, `export`, and dockerd's errors.

use std::io::Write;
use std::process::{Command, Stdio};

use berth_tests::{Daemon, tail};

fn daemon_with_busybox() -> Daemon {
    Daemon::with_busybox()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tar_names(data: &[u8]) -> Vec<String> {
    tar::Archive::new(data)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Mounts of container root filesystems (not the daemon's own).
fn rootfs_mounts(d: &Daemon) -> Vec<String> {
    d.mounts()
        .into_iter()
        .filter(|m| m.ends_with("/rootfs"))
        .collect()
}

#[test]
fn cp_diff_commit_export_with_the_docker_cli() {
    let d = daemon_with_busybox();
    let dir = d.dir.path();
    d.docker_ok(&["run", "-d", "--name", "files", "busybox", "sleep", "1000"]);
    // The runtime's mount points (/proc, /etc/hostname, …) are no changes, as with dockerd.
    assert_eq!(d.docker_ok(&["diff", "files"]), "");

    // Into the container, then out again under another name.
    std::fs::write(dir.join("in.txt"), "hello\n").unwrap();
    d.docker_ok(&["cp", dir.join("in.txt").to_str().unwrap(), "files:/tmp/"]);
    assert_eq!(
        d.docker_ok(&["exec", "files", "cat", "/tmp/in.txt"]),
        "hello\n"
    );
    std::fs::create_dir_all(dir.join("tree/sub")).unwrap();
    std::fs::write(dir.join("tree/sub/deep.txt"), "deep\n").unwrap();
    d.docker_ok(&["cp", dir.join("tree").to_str().unwrap(), "files:/srv"]);
    assert_eq!(
        d.docker_ok(&["exec", "files", "cat", "/srv/sub/deep.txt"]),
        "deep\n"
    );
    d.docker_ok(&[
        "cp",
        "files:/tmp/in.txt",
        dir.join("back.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.join("back.txt")).unwrap(),
        "hello\n"
    );
    d.docker_ok(&["cp", "files:/etc", dir.join("etc-copy").to_str().unwrap()]);
    assert!(dir.join("etc-copy/passwd").is_file());
    // `DIR/.` copies the contents.
    d.docker_ok(&["exec", "files", "mkdir", "-p", "/data/a"]);
    d.docker_ok(&["exec", "files", "touch", "/data/a/f"]);
    std::fs::create_dir_all(dir.join("contents")).unwrap();
    d.docker_ok(&[
        "cp",
        "files:/data/.",
        dir.join("contents").to_str().unwrap(),
    ]);
    assert!(dir.join("contents/a/f").is_file());
    // A symlink is copied as a link; its parent path is resolved inside the container.
    d.docker_ok(&[
        "exec",
        "files",
        "busybox",
        "ln",
        "-s",
        "/etc",
        "/tmp/etc-link",
    ]);
    let out = d.docker(&["cp", "files:/tmp/etc-link", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(tar_names(&out.stdout), ["etc-link"]);
    let out = d.docker(&["cp", "files:/tmp/etc-link/passwd", "-"]);
    assert_eq!(tar_names(&out.stdout), ["passwd"]);

    // A missing path, and extraction onto a file: dockerd's messages.
    let out = d.docker(&["cp", "files:/nope", dir.join("x").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Could not find the file /nope in container files"),
        "{}",
        text(&out.stderr)
    );
    // No body: dockerd answers before reading it, and so does berthd.
    let (status, _, body) = d.request("PUT", "/containers/files/archive?path=/etc/passwd", None);
    assert_eq!(status, 400, "{}", text(&body));
    assert!(text(&body).contains("extraction point is not a directory"));
    let (status, headers, _) = d.request("HEAD", "/containers/files/archive?path=/tmp", None);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, _)| k == "x-docker-container-path-stat")
    );

    // diff: what the container added and changed.
    let diff = d.docker_ok(&["diff", "files"]);
    for line in [
        "C /tmp",
        "A /tmp/in.txt",
        "A /srv",
        "A /srv/sub/deep.txt",
        "A /data",
    ] {
        assert!(
            diff.lines().any(|l| l == line),
            "{line} missing from:\n{diff}"
        );
    }
    assert!(
        !diff
            .lines()
            .any(|l| l[2..].starts_with("/etc") || l[2..].starts_with("/proc")),
        "{diff}"
    );
    d.docker_ok(&["exec", "files", "rm", "/bin/ls"]);
    let diff = d.docker_ok(&["diff", "files"]);
    assert!(diff.lines().any(|l| l == "D /bin/ls"), "{diff}");

    // commit, then the image has the files and not the deleted one.
    let id = d.docker_ok(&["commit", "-m", "with files", "files", "committed:v1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "committed:v1", "cat", "/tmp/in.txt"]),
        "hello\n"
    );
    let out = d.docker(&["run", "--rm", "committed:v1", "ls", "/bin/ls"]);
    assert!(!out.status.success());
    assert_eq!(
        d.docker_ok(&["image", "inspect", "-f", "{{.Comment}}", "committed:v1"]),
        "with files\n"
    );
    let history = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "committed:v1",
    ]);
    assert_eq!(history.lines().next(), Some("sleep 1000"), "{history}");
    // --change sets the config.
    d.docker_ok(&[
        "commit",
        "--change",
        "ENV FROM_COMMIT=yes",
        "--change",
        "CMD [\"cat\", \"/tmp/in.txt\"]",
        "files",
        "committed:v2",
    ]);
    assert_eq!(d.docker_ok(&["run", "--rm", "committed:v2"]), "hello\n");
    let env = d.docker_ok(&[
        "run",
        "--rm",
        "committed:v2",
        "sh",
        "-c",
        "echo $FROM_COMMIT",
    ]);
    assert_eq!(env, "yes\n");

    // export: the whole root filesystem.
    let mut export = d.docker_cmd();
    export.args(["export", "files"]).stdout(Stdio::piped());
    let out = export.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = Command::new("tar")
        .arg("-t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut tar| {
            tar.stdin.take().unwrap().write_all(&out.stdout)?;
            tar.wait_with_output()
        })
        .unwrap();
    assert!(list.status.success());
    let names = text(&list.stdout);
    assert!(names.lines().any(|l| l == "bin/busybox"), "{names}");
    assert!(names.lines().any(|l| l == "tmp/in.txt"), "{names}");
    assert!(!names.lines().any(|l| l == "bin/ls"), "{names}");

    d.docker_ok(&["rm", "-f", "files"]);
    assert!(rootfs_mounts(&d).is_empty(), "{:?}", rootfs_mounts(&d));
}

#[test]
fn stopped_and_read_only_containers() {
    let d = daemon_with_busybox();
    let dir = d.dir.path();
    std::fs::write(dir.join("in.txt"), "before start\n").unwrap();

    // A created container: its snapshot is mounted for the copy, then unmounted.
    d.docker_ok(&[
        "create",
        "--name",
        "later",
        "busybox",
        "cat",
        "/root/in.txt",
    ]);
    d.docker_ok(&["cp", dir.join("in.txt").to_str().unwrap(), "later:/root/"]);
    assert!(rootfs_mounts(&d).is_empty(), "{:?}", rootfs_mounts(&d));
    d.docker_ok(&[
        "cp",
        "later:/root/in.txt",
        dir.join("out.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        "before start\n"
    );
    assert!(d.docker_ok(&["diff", "later"]).contains("A /root/in.txt"));
    assert!(rootfs_mounts(&d).is_empty(), "{:?}", rootfs_mounts(&d));
    assert_eq!(
        d.docker_ok(&["start", "-a", "later"]),
        "before start\n",
        "{}",
        tail(&d.log(), 20)
    );
    // Exited: export and commit still work.
    let out = d.docker(&["export", "later"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(tar_names(&out.stdout).iter().any(|n| n == "root/in.txt"));
    d.docker_ok(&["commit", "later", "from-exited"]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "from-exited"]),
        "before start\n"
    );
    assert!(rootfs_mounts(&d).is_empty(), "{:?}", rootfs_mounts(&d));

    // --read-only: copies out work, copies in are refused as dockerd refuses them.
    d.docker_ok(&[
        "run",
        "-d",
        "--read-only",
        "--name",
        "ro",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["cp", "ro:/etc/passwd", dir.join("passwd").to_str().unwrap()]);
    let out = d.docker(&["cp", dir.join("in.txt").to_str().unwrap(), "ro:/tmp/"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("container rootfs is marked read-only"),
        "{}",
        text(&out.stderr)
    );
    d.docker_ok(&["rm", "-f", "ro", "later"]);
}

#[test]
fn cp_reaches_volumes_and_binds() {
    let d = daemon_with_busybox();
    let dir = d.dir.path();
    let bind = dir.join("bind");
    std::fs::create_dir_all(&bind).unwrap();
    std::fs::write(bind.join("host.txt"), "from the host\n").unwrap();
    std::fs::write(dir.join("single.conf"), "one file\n").unwrap();
    std::fs::write(dir.join("in.txt"), "copied in\n").unwrap();
    let bind_arg = format!("{}:/srv/bind", bind.display());
    let file_arg = format!("{}:/etc/single.conf:ro", dir.join("single.conf").display());
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "vols",
        "-v",
        "data:/data",
        "-v",
        "frozen:/frozen:ro",
        "-v",
        &bind_arg,
        "-v",
        &file_arg,
        "busybox",
        "sh",
        "-c",
        "echo inside > /data/made.txt; sleep 1000",
    ]);
    berth_tests::wait_for("the volume file", || {
        d.docker(&["exec", "vols", "cat", "/data/made.txt"])
            .status
            .success()
    });

    // Out of a volume, of a bind, of a bound file, and a volume by its mount point.
    d.docker_ok(&[
        "cp",
        "vols:/data/made.txt",
        dir.join("made.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.join("made.txt")).unwrap(),
        "inside\n"
    );
    d.docker_ok(&[
        "cp",
        "vols:/srv/bind/host.txt",
        dir.join("h.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.join("h.txt")).unwrap(),
        "from the host\n"
    );
    d.docker_ok(&[
        "cp",
        "vols:/etc/single.conf",
        dir.join("s.conf").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.join("s.conf")).unwrap(),
        "one file\n"
    );
    let out = d
        .docker_cmd()
        .args(["cp", "vols:/data", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names = tar_names(&out.stdout);
    assert!(names.iter().any(|n| n == "data/made.txt"), "{names:?}");

    // Into a volume and a bind: the container sees the files where it mounted them.
    d.docker_ok(&["cp", dir.join("in.txt").to_str().unwrap(), "vols:/data/"]);
    assert_eq!(
        d.docker_ok(&["exec", "vols", "cat", "/data/in.txt"]),
        "copied in\n"
    );
    d.docker_ok(&[
        "cp",
        dir.join("in.txt").to_str().unwrap(),
        "vols:/srv/bind/",
    ]);
    assert_eq!(
        std::fs::read_to_string(bind.join("in.txt")).unwrap(),
        "copied in\n"
    );
    // A read-only volume refuses, as dockerd does.
    let out = d.docker(&["cp", dir.join("in.txt").to_str().unwrap(), "vols:/frozen/"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("mounted volume is marked read-only"),
        "{}",
        text(&out.stderr)
    );
    // The volume's files stay out of the container's own layer.
    let diff = d.docker_ok(&["diff", "vols"]);
    assert!(
        !diff.contains("made.txt") && !diff.contains("in.txt"),
        "{diff}"
    );
    d.docker_ok(&["rm", "-f", "-v", "vols"]);
    d.docker_ok(&["volume", "rm", "data", "frozen"]);
}
