//! Interoperability with the reference tools: archives saved by dockerd (and podman) load
//! into berth, archives saved by berth load into them, and Debian's docker 20.10 client
//! drives berthd. The reference daemons run on private temp roots and are stopped by PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{Daemon, busybox_rootfs_tar};

/// A dockerd on a private socket and data root.
struct RefDocker {
    dir: tempfile::TempDir,
    child: Child,
}

impl RefDocker {
    fn start() -> RefDocker {
        let dockerd =
            which("dockerd").expect("dockerd is not installed: run scripts/install-deps.sh");
        let dir = tempfile::Builder::new()
            .prefix("berth-refdocker-")
            .tempdir()
            .unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
        let child = Command::new(dockerd)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", dir.path().join("d.sock").display()))
            .arg("--pidfile")
            .arg(dir.path().join("pid"))
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip6tables=false",
                "--config-file",
            ])
            .arg(dir.path().join("daemon.json"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = RefDocker { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if d.cmd()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                return d;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "dockerd did not start: {}",
            std::fs::read_to_string(d.dir.path().join("log")).unwrap_or_default()
        );
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(berth_tests::docker_cli());
        c.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.path().join("d.sock").display()),
        );
        c.env("DOCKER_CONFIG", self.dir.path().join("cfg"));
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "reference docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for RefDocker {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd's overlay mounts live under its data root: unmount before removing it.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("data"))
            .stderr(Stdio::null())
            .status();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn write_busybox(dir: &Path) -> PathBuf {
    let p = dir.join("busybox.tar");
    std::fs::write(&p, busybox_rootfs_tar()).unwrap();
    p
}

#[test]
fn archives_move_between_dockerd_and_berthd_both_ways() {
    let reference = RefDocker::start();
    let d = Daemon::start();
    let rootfs = write_busybox(d.dir.path());

    // dockerd → berth (docker 20.10 writes the legacy layout: <id>/layer.tar, <config>.json).
    let ref_id = reference
        .ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            rootfs.to_str().unwrap(),
            "from/docker:1",
        ])
        .trim()
        .to_string();
    let archive = d.dir.path().join("from-docker.tar");
    reference.ok(&["save", "-o", archive.to_str().unwrap(), "from/docker:1"]);
    let out = d.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: from/docker:1"), "{out}");
    assert_eq!(
        d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "from/docker:1"])
            .trim(),
        ref_id
    );
    d.verify_store();

    // berth → dockerd.
    let berth_id = d
        .docker_ok(&[
            "import",
            "-c",
            "ENV X=1",
            rootfs.to_str().unwrap(),
            "from/berth:2",
        ])
        .trim()
        .to_string();
    let archive = d.dir.path().join("from-berth.tar");
    d.docker_ok(&["save", "-o", archive.to_str().unwrap(), "from/berth:2"]);
    let out = reference.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: from/berth:2"), "{out}");
    assert_eq!(
        reference
            .ok(&["image", "inspect", "--format", "{{.Id}}", "from/berth:2"])
            .trim(),
        berth_id
    );
    assert_eq!(
        reference
            .ok(&[
                "image",
                "inspect",
                "--format",
                "{{.Config.Env}}",
                "from/berth:2"
            ])
            .trim(),
        "[X=1]"
    );
}

#[test]
fn podman_archives_load_and_berth_archives_load_into_podman() {
    assert!(
        which("podman").is_some(),
        "podman is not installed: run scripts/install-deps.sh"
    );
    let d = Daemon::start();
    let podman = berth_tests::Podman::new();
    let pod = |args: &[&str]| podman.ok(args);
    let rootfs = write_busybox(d.dir.path());
    pod(&[
        "import",
        "--change",
        "CMD [\"sh\"]",
        rootfs.to_str().unwrap(),
        "localhost/from-podman:1",
    ]);
    for (format, file) in [
        ("docker-archive", "podman-docker.tar"),
        ("oci-archive", "podman-oci.tar"),
    ] {
        let archive = d.dir.path().join(file);
        pod(&[
            "save",
            "--format",
            format,
            "-o",
            archive.to_str().unwrap(),
            "localhost/from-podman:1",
        ]);
        let out = d.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(out.contains("Loaded image"), "{format}: {out}");
    }
    assert!(
        d.docker_ok(&["images", "--format", "{{.Repository}}"])
            .contains("from-podman")
    );
    d.verify_store();

    let berth_id = d
        .docker_ok(&["import", rootfs.to_str().unwrap(), "from/berth:3"])
        .trim()
        .to_string();
    let archive = d.dir.path().join("for-podman.tar");
    d.docker_ok(&["save", "-o", archive.to_str().unwrap(), "from/berth:3"]);
    pod(&["load", "-i", archive.to_str().unwrap()]);
    let id = pod(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "docker.io/from/berth:3",
    ]);
    assert_eq!(format!("sha256:{}", id.trim()), berth_id);
}

#[test]
fn docker_20_10_client_works_against_berthd() {
    let old = Path::new("/usr/bin/docker");
    let version = Command::new(old)
        .arg("--version")
        .output()
        .expect("Debian's docker.io client");
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("20.10"),
        "expected the 20.10 client at /usr/bin/docker"
    );
    let d = Daemon::start();
    let run = |args: &[&str]| {
        let out = Command::new(old)
            .args(args)
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker 20.10 {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run(&["version", "--format", "{{.Server.APIVersion}}"]).contains("1.47"));
    assert!(run(&["pull", "hello-world"]).contains("Downloaded newer image"));
    let rootfs = write_busybox(d.dir.path());
    run(&["import", rootfs.to_str().unwrap(), "bb:old"]);
    let table = run(&["images"]);
    assert!(
        table.contains("hello-world") && table.contains("bb"),
        "{table}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&run(&["image", "inspect", "bb:old"])).unwrap();
    assert_eq!(inspect[0]["RepoTags"][0], "bb:old");
    assert!(run(&["history", "bb:old"]).contains("Imported from"));
    run(&["tag", "bb:old", "bb:new"]);
    assert!(run(&["rmi", "bb:new"]).contains("Untagged: bb:new"));
    let archive = d.dir.path().join("old.tar");
    run(&["save", "-o", archive.to_str().unwrap(), "bb:old"]);
    run(&["rmi", "bb:old"]);
    assert!(run(&["load", "-i", archive.to_str().unwrap()]).contains("Loaded image: bb:old"));
    assert!(run(&["system", "df"]).contains("Images"));
    assert!(run(&["info", "--format", "{{.Images}}"]).trim() == "2");
}
