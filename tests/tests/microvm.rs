//! `--runtime microvm` end to end: the unmodified docker CLI (and berth's) against a
//! berthd whose containers boot as QEMU micro-VMs (TCG here, KVM where it works) with
//! the guest kernel, our initramfs and static berth-init.
//!
//! Boots are few and, through the `microvm` nextest group, one test at a time (a test
//! runs at most two VMs at once). Where QEMU, mkfs.ext4, qemu-img or a guest kernel
//! cannot be had the tests say why and skip, unless `BERTH_REQUIRE_VM` is set (as
//! scripts/test.sh does, after installing them), when that is a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{Daemon, tail, wait_for};
use berth_vm::kernel::{self, KernelLocator};

/// The guest kernel (`--vm-kernel`, `--vm-modules`) and berth-init (`--vm-init`) flags.
fn vm_flags() -> Option<Vec<String>> {
    let missing = |why: String| {
        if std::env::var_os("BERTH_REQUIRE_VM").is_some() {
            panic!("BERTH_REQUIRE_VM is set, but {why}");
        }
        eprintln!("skipping the micro-VM test: {why}");
        None
    };
    for (prog, arg, package) in [
        ("qemu-system-x86_64", "--version", "qemu-system-x86"),
        ("qemu-img", "--version", "qemu-utils"),
        ("mkfs.ext4", "-V", "e2fsprogs"),
    ] {
        if Command::new(prog).arg(arg).output().is_err() {
            return missing(format!("{prog} is missing (apt-get install {package})"));
        }
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // The same cache the berth-vm boot tests use: one apt fetch for both.
    let kernels = tmp.join("berth-vm-boot/kernels");
    let k = match KernelLocator::new().locate() {
        Ok(k) => k,
        Err(host) => match kernel::fetch_debian_cloud_kernel(&kernels) {
            Ok(k) => k,
            Err(e) => return missing(format!("no guest kernel: host: {host}; apt: {e}")),
        },
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guest_target = tmp.parent().expect("target dir").join("guest");
    let init = berth_vm::init::build_init(&workspace, &guest_target, false)
        .expect("build the static berth-init");
    let mut flags = vec!["--vm-kernel".to_string(), k.image.display().to_string()];
    if let Some(m) = k.modules_dir {
        flags.extend(["--vm-modules".to_string(), m.display().to_string()]);
    }
    flags.extend(["--vm-init".to_string(), init.display().to_string()]);
    Some(flags)
}

/// A daemon with busybox loaded and the VM flags, each overridden by the same flag in
/// `extra` (flag and value pairs).
fn vm_daemon(extra: &[&str]) -> Option<Daemon> {
    let mut args = Vec::new();
    for pair in vm_flags()?.chunks(2) {
        if !extra.contains(&pair[0].as_str()) {
            args.extend_from_slice(pair);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::start_with(&args);
    let archive = d.busybox_archive();
    d.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    Some(d)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\r', "")
}

fn show(d: &Daemon, out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr),
        tail(&d.log(), 30)
    )
}

/// `docker run --runtime microvm --rm ARGS…` (stdin from `input` when given).
fn run_vm(d: &Daemon, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut cmd = d.docker_cmd();
    cmd.args(["run", "--pull", "never", "--runtime", "microvm", "--rm"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("run docker");
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn inspect(d: &Daemon, id: &str, format: &str) -> String {
    d.docker_ok(&["inspect", "-f", format, id])
        .trim()
        .to_string()
}

fn wait_exited(d: &Daemon, id: &str) {
    wait_for(&format!("{id} to exit"), || {
        inspect(d, id, "{{.State.Status}}") == "exited"
    });
}

#[test]
fn microvm_runs_the_image_through_the_docker_cli() {
    let Some(d) = vm_daemon(&[]) else { return };
    let info = d.docker_ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(info.contains("microvm") && info.contains("runc"), "{info}");

    let out = run_vm(&d, &["--network", "none", "busybox", "echo", "hi"], None);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("hi\n", Some(0)),
        "{}",
        show(&d, &out)
    );

    let script = "echo \"$FOO|$(pwd)|$(id -u):$(id -g)|$(hostname)|$(cat /etc/hostname)\"; exit 42";
    let out = run_vm(
        &d,
        &[
            "-e",
            "FOO=bar baz",
            "-w",
            "/tmp/work",
            "-u",
            "1000:1000",
            "-h",
            "vmbox",
            "busybox",
            "sh",
            "-c",
            script,
        ],
        None,
    );
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("bar baz|/tmp/work|1000:1000|vmbox|vmbox\n", Some(42)),
        "{}",
        show(&d, &out)
    );

    let out = run_vm(
        &d,
        &["-i", "busybox", "sh", "-c", "cat; exit 3"],
        Some(b"x\ny\n"),
    );
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("x\ny\n", Some(3)),
        "{}",
        show(&d, &out)
    );

    let out = run_vm(&d, &["busybox", "no-such-command"], None);
    assert_eq!(out.status.code(), Some(127), "{}", show(&d, &out));
    assert!(
        text(&out.stderr).contains("executable file not found in $PATH"),
        "{}",
        show(&d, &out)
    );

    // berth's own CLI, with the isolation alias.
    let out = d
        .berth_cmd()
        .args([
            "run",
            "--rm",
            "--isolation",
            "vm",
            "busybox",
            "sh",
            "-c",
            "exit 255",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", show(&d, &out));

    // What a VM cannot do is refused before anything boots.
    let out = run_vm(&d, &["--network", "host", "busybox", "true"], None);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("--network host"),
        "{}",
        show(&d, &out)
    );
    let out = run_vm(&d, &["--privileged", "busybox", "true"], None);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("privileged"),
        "{}",
        show(&d, &out)
    );

    d.remove_all_containers();
    d.assert_no_leaks(&[]);
}

#[test]
fn microvm_stop_kill_exec_and_wait() {
    let Some(mut d) = vm_daemon(&[]) else { return };
    let run_d = |d: &Daemon, args: &[&str]| {
        let mut all = vec!["run", "-d", "--pull", "never", "--runtime", "microvm"];
        all.extend_from_slice(args);
        d.docker_ok(&all).trim().to_string()
    };
    let sleeper = run_d(&d, &["busybox", "sleep", "1000"]);
    let trapper = run_d(
        &d,
        &[
            "busybox",
            "sh",
            "-c",
            "trap 'echo bye; exit 7' TERM; echo ready; while :; do sleep 0.2; done",
        ],
    );
    wait_for("the trapping shell to be ready", || {
        d.docker_ok(&["logs", &trapper]).contains("ready")
    });

    // exec into the running guest: output, exit code, user.
    let out = d.docker(&["exec", &sleeper, "sh", "-c", "echo inside; exit 3"]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("inside\n", Some(3)),
        "{}",
        show(&d, &out)
    );
    assert_eq!(
        d.docker_ok(&["exec", "-u", "1000", &sleeper, "id", "-u"]),
        "1000\n"
    );
    let ps = d.docker_ok(&["ps", "--format", "{{.ID}} {{.Status}}"]);
    assert_eq!(ps.lines().filter(|l| l.contains(" Up ")).count(), 2, "{ps}");

    // The VMs outlive a daemon crash; the restarted daemon serves them again.
    d.kill();
    d.restart();
    assert_eq!(
        d.docker_ok(&["exec", &sleeper, "echo", "still here"]),
        "still here\n"
    );

    // SIGTERM reaches the entrypoint inside the guest: a plain `sleep` dies of it,
    // long before the timeout.
    let t = Instant::now();
    d.docker_ok(&["stop", "-t", "20", &sleeper]);
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(inspect(&d, &sleeper, "{{.State.ExitCode}}"), "143");

    // A shell that traps it exits its own way, and `wait` reports the code.
    let waiter = d
        .docker_cmd()
        .args(["wait", &trapper])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    d.docker_ok(&["stop", "-t", "20", &trapper]);
    let waited = waiter.wait_with_output().unwrap();
    assert_eq!(text(&waited.stdout), "7\n");
    assert!(d.docker_ok(&["logs", &trapper]).contains("bye"));

    // One that ignores it is killed after the timeout: 137, as docker reports.
    let stubborn = run_d(
        &d,
        &[
            "busybox",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.2; done",
        ],
    );
    wait_for("the stubborn shell to be ready", || {
        d.docker_ok(&["logs", &stubborn]).contains("ready")
    });
    let t = Instant::now();
    d.docker_ok(&["stop", "-t", "1", &stubborn]);
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(inspect(&d, &stubborn, "{{.State.ExitCode}}"), "137");

    // kill -s reaches the guest too; a restart boots the same container again.
    d.docker_ok(&["start", &trapper]);
    wait_for("the restarted shell to be ready", || {
        d.docker_ok(&["logs", &trapper]).matches("ready").count() == 2
    });
    d.docker_ok(&["kill", "-s", "KILL", &trapper]);
    wait_exited(&d, &trapper);
    assert_eq!(inspect(&d, &trapper, "{{.State.ExitCode}}"), "137");

    let ids = [sleeper.as_str(), trapper.as_str(), stubborn.as_str()];
    for id in ids {
        d.docker_ok(&["rm", id]);
    }
    d.assert_no_leaks(&ids);
}

#[test]
fn microvm_disks_are_private_and_the_root_image_is_built_once() {
    let Some(d) = vm_daemon(&[]) else { return };
    // A restart policy reboots the container with its own disk kept.
    let a = d
        .docker_ok(&[
            "run",
            "-d",
            "--pull",
            "never",
            "--runtime",
            "microvm",
            "--restart",
            "on-failure:1",
            "busybox",
            "sh",
            "-c",
            "echo a >> /shared.txt; cat /shared.txt; exit 1",
        ])
        .trim()
        .to_string();
    wait_for("two runs of the restarting VM", || {
        inspect(&d, &a, "{{.State.Status}} {{.RestartCount}}") == "exited 1"
    });
    assert_eq!(d.docker_ok(&["logs", &a]), "a\na\na\n");

    let cache = d.data_root().join("vm/rootfs");
    let images = || -> Vec<(PathBuf, std::time::SystemTime)> {
        let mut found = Vec::new();
        for e in std::fs::read_dir(&cache).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "ext4") {
                found.push((e.path(), e.metadata().unwrap().modified().unwrap()));
            }
        }
        found
    };
    let built = images();
    assert_eq!(built.len(), 1, "{built:?}");

    // Another VM of the image sees neither the first one's writes nor leaves any; a
    // read-only bind mount arrives as a snapshot.
    let host_dir = d.dir.path().join("shared-in");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("f.txt"), "from the host\n").unwrap();
    let bind = format!("{}:/data:ro", host_dir.display());
    let out = run_vm(
        &d,
        &[
            "-v",
            &bind,
            "busybox",
            "sh",
            "-c",
            "test -e /shared.txt && echo leaked; echo b > /shared.txt; cat /shared.txt /data/f.txt; \
             touch /data/x 2>/dev/null || echo read-only",
        ],
        None,
    );
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("b\nfrom the host\nread-only\n", Some(0)),
        "{}",
        show(&d, &out)
    );
    assert!(!host_dir.join("x").exists());
    assert_eq!(
        images(),
        built,
        "the cached root image was rebuilt or touched"
    );

    // The first container's disk still holds only its own writes.
    let out = d.docker(&["start", "-a", &a]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("a\na\na\n", Some(1)),
        "{}",
        show(&d, &out)
    );

    // A writable bind cannot be shared with a VM: refused, with the way out.
    let bind_rw = format!("{}:/data", host_dir.display());
    let out = run_vm(&d, &["-v", &bind_rw, "busybox", "true"], None);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(":ro"), "{}", show(&d, &out));

    d.docker_ok(&["rm", "-f", &a]);
    d.assert_no_leaks(&[a.as_str()]);
    // Removing the image removes the root image built from it.
    d.docker_ok(&["rmi", "busybox"]);
    assert_eq!(images(), [], "the root image outlived its image");
}

/// A static program that exits at once: as the guest's init, the kernel panics.
fn exiting_init(dir: &Path) -> PathBuf {
    let src = dir.join("exit3.c");
    std::fs::write(&src, "int main(void) { return 3; }\n").unwrap();
    let bin = dir.join("exit3");
    let out = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(out.status.success(), "cc: {}", text(&out.stderr));
    bin
}

#[test]
fn microvm_guest_failures_fail_the_container_cleanly() {
    if vm_flags().is_none() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let garbage = scratch.path().join("vmlinuz");
    std::fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    let panicking = exiting_init(scratch.path());
    let cases: [(&[&str], &str); 3] = [
        // The kernel is not one.
        (
            &["--vm-kernel", garbage.to_str().unwrap()],
            "the guest kernel",
        ),
        // The guest's init exits: the kernel panics, QEMU stops.
        (
            &["--vm-init", panicking.to_str().unwrap()],
            "the guest kernel panicked: Kernel panic",
        ),
        // The guest never answers (busybox's init waits for a console forever).
        (
            &["--vm-init", "/bin/busybox", "--vm-boot-timeout", "5"],
            "no word from the guest",
        ),
    ];
    for (flags, expected) in cases {
        let Some(d) = vm_daemon(flags) else { return };
        let t = Instant::now();
        let out = d
            .docker_cmd()
            .args([
                "run",
                "--pull",
                "never",
                "--runtime",
                "microvm",
                "--name",
                "doomed",
            ])
            .args(["busybox", "echo", "never printed"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());
        assert_eq!(out.status.code(), Some(125), "{}", show(&d, &out));
        assert!(
            text(&out.stderr).contains(expected),
            "{flags:?}: {}",
            show(&d, &out)
        );
        assert!(!text(&out.stdout).contains("never printed"));
        let state = inspect(&d, "doomed", "{{.State.Running}} {{.State.ExitCode}}");
        assert!(
            state.starts_with("false ") && !state.ends_with(" 0"),
            "{state}"
        );
        let id = inspect(&d, "doomed", "{{.Id}}");
        d.docker_ok(&["rm", "doomed"]);
        d.assert_no_leaks(&[id.as_str()]);
    }
}
