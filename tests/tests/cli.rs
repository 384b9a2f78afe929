//! The `berth` CLI against berthd: the same commands as docker, and starting the daemon
//! on demand when none is running.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{Daemon, bin, busybox_rootfs_tar};

#[test]
fn first_command_starts_the_daemon_on_demand() {
    let dir = tempfile::Builder::new()
        .prefix("berth-autostart-")
        .tempdir()
        .unwrap();
    let exec_root = dir.path().join("run");
    let berth = |args: &[&str]| {
        Command::new(bin("berth"))
            .args(args)
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .env("BERTH_EXEC_ROOT", &exec_root)
            .env("BERTH_ROOT", dir.path().join("data"))
            .env("DOCKER_CONFIG", dir.path().join("cfg"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // README's main command: the daemon starts, the built-in image is "pulled", the
    // container runs and is removed.
    let out = berth(&["run", "--rm", "hello-world"]);
    let pidfile = exec_root.join("berthd.pid");
    let pid: Option<i32> = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse().ok());
    let stop = || {
        if let Some(pid) = pid {
            // SAFETY: kill(2) on the PID the daemon we started wrote to its pidfile.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline
                && std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let result = std::panic::catch_unwind(|| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.contains("Hello from berth!"), "{stdout}");
        assert!(
            stderr.contains("Unable to find image 'hello-world:latest' locally")
                && stderr.contains("Downloaded newer image for hello-world:latest"),
            "{stderr}"
        );
        let ps = berth(&["ps", "-aq"]);
        assert_eq!(
            String::from_utf8_lossy(&ps.stdout),
            "",
            "--rm left the container"
        );
        assert!(pid.is_some(), "berthd wrote no pidfile");
        assert!(exec_root.join("berth.sock").exists());
        let images = berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert_eq!(
            String::from_utf8_lossy(&images.stdout).trim(),
            "hello-world:latest"
        );
        assert!(
            dir.path().join("data/berth.redb").exists(),
            "the daemon did not use BERTH_ROOT"
        );
    });
    stop();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn cli_without_a_daemon_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("berth"))
        .args([
            "-H",
            &format!("unix://{}/none.sock", dir.path().display()),
            "images",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Cannot connect to the berth daemon"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn berth_cli_matches_docker_cli_output() {
    let d = Daemon::start();
    // A fixed creation time: both CLIs print relative times ("2 years ago"), which must not
    // tick over between the two calls.
    let archive = d.dir.path().join("busybox.tar");
    let image = berth_tests::fixed_time_archive("busybox:cli", &busybox_rootfs_tar(), &["sh"]);
    std::fs::write(&archive, image).unwrap();
    d.berth_ok(&["load", "-i", archive.to_str().unwrap()]);
    d.berth_ok(&["pull", "hello-world"]);
    d.berth_ok(&["tag", "busybox:cli", "example.com/team/bb:1"]);
    for args in [
        &["images"][..],
        &["images", "-a", "--no-trunc"],
        &["images", "--digests"],
        &["images", "-q"],
        &["images", "--format", "{{.Repository}} {{.Tag}} {{.Size}}"],
        &["images", "--format", "table {{.Repository}}\t{{.ID}}"],
        &["image", "inspect", "busybox:cli"],
        &[
            "image",
            "inspect",
            "-f",
            "{{.Config.Cmd}} {{.Os}}",
            "busybox:cli",
        ],
        &["history", "busybox:cli"],
        &["history", "--no-trunc", "-H=false", "hello-world"],
        &["system", "df"],
        &[
            "version",
            "--format",
            "{{.Server.Version}} {{.Server.APIVersion}}",
        ],
    ] {
        let docker = d.docker_ok(args);
        let berth = d.berth_ok(args);
        // docker prints the tags of one image in Go map order (random): compare rows as sets.
        assert_eq!(
            rows(&berth),
            rows(&docker),
            "`{}` differs:\n{berth}\n---\n{docker}",
            args.join(" ")
        );
    }
    let bad = d.berth(&["image", "inspect", "nope:1"]);
    let docker_bad = d.docker(&["image", "inspect", "nope:1"]);
    assert_eq!(bad.status.code(), docker_bad.status.code());
    let rmi = d.berth_ok(&["rmi", "example.com/team/bb:1"]);
    assert_eq!(rmi.trim(), "Untagged: example.com/team/bb:1");
    let saved = d.dir.path().join("s.tar");
    d.berth_ok(&["save", "-o", saved.to_str().unwrap(), "busybox:cli"]);
    d.berth_ok(&["rmi", "busybox:cli"]);
    assert!(
        d.berth_ok(&["load", "-i", saved.to_str().unwrap()])
            .contains("Loaded image: busybox:cli")
    );
}

/// The lines, sorted: docker orders the tags of one image randomly, and a header (when the
/// format has one) is one of the lines either way.
fn rows(s: &str) -> Vec<String> {
    let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
    lines.sort();
    lines
}
