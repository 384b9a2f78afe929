//! Real boots: QEMU `-M microvm` (TCG here, KVM where it works) with the guest kernel, our
//! initramfs and static berth-init, and a busybox root file system.
//!
//! Three boots in this file, one QEMU at a time (a lock file), each under a hard
//! ~60 s bound. They skip, saying why, when QEMU, mkfs.ext4, qemu-img, busybox or a guest
//! kernel cannot be had (and fail instead with `BERTH_REQUIRE_VM` set). The kernel is the host's own when /boot and /lib/modules have it,
//! else Debian's linux-image-cloud-amd64 fetched with apt into target/tmp (once).

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_vm::initramfs::{DEFAULT_MODULES, InitramfsCache};
use berth_vm::kernel::{self, KernelLocator};
use berth_vm::protocol::NetConfig;
use berth_vm::protocol::{ContainerConfig, DiskMount, Message, ProcessConfig, TmpfsMount};
use berth_vm::rootfs::{self, RootfsCache};
use berth_vm::vmm::{Accel, Disk, GuestLink, QemuMicrovm, RunOutcome, TapDevice, VmConfig, Vmm};

const BOOT_BOUND: Duration = Duration::from_secs(60);

struct Env {
    cache: PathBuf,
    vmlinux: PathBuf,
    initramfs: PathBuf,
    rootfs: PathBuf,
}

fn have(prog: &str, arg: &str) -> bool {
    Command::new(prog).arg(arg).output().is_ok()
}

fn busybox_tree(root: &Path) {
    for d in [
        "bin", "etc", "tmp", "root", "home/app", "dev", "proc", "sys",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", root.join("bin").join(applet));
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\nwheel:x:10:app\napp:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
}

/// Everything a boot needs, or the reason to skip.
fn setup() -> Result<Env, String> {
    if !have("qemu-system-x86_64", "--version") {
        return Err("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)".into());
    }
    if !have("mkfs.ext4", "-V") || !have("qemu-img", "--version") {
        return Err("mkfs.ext4 or qemu-img missing (apt-get install e2fsprogs qemu-utils)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Err("/bin/busybox missing (apt-get install busybox-static)".into());
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let cache = tmp.join("berth-vm-boot");
    fs::create_dir_all(&cache).unwrap();
    let k = match KernelLocator::new().locate() {
        Ok(k) => k,
        Err(host) => kernel::fetch_debian_cloud_kernel(&cache.join("kernels"))
            .map_err(|e| format!("no guest kernel: host: {host}; apt: {e}"))?,
    };
    // From here on a failure is a bug, not a reason to skip.
    let vmlinux = kernel::vmlinux_from_bzimage(&k.image, &cache.join("vmlinux")).unwrap();
    // The static init, built into its own target dir beside this one.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let guest_target = tmp.parent().unwrap().join("guest");
    let t = Instant::now();
    let init = berth_vm::init::build_init(&workspace, &guest_target, false).unwrap();
    eprintln!("berth-init ready in {:?}", t.elapsed());
    let initramfs = InitramfsCache::new(cache.join("initramfs"))
        .get_or_build(&init, k.modules_dir.as_deref(), DEFAULT_MODULES)
        .unwrap();
    let tree = tempfile::tempdir().unwrap();
    busybox_tree(tree.path());
    let t = Instant::now();
    let rootfs = RootfsCache::new(cache.join("rootfs"))
        .with_headroom(32 << 20)
        .get_or_build("test-busybox-1", tree.path())
        .unwrap();
    eprintln!("rootfs ready in {:?}", t.elapsed());
    Ok(Env {
        cache,
        vmlinux,
        initramfs,
        rootfs,
    })
}

/// The environment, or `None` (having said why) when a boot cannot be had here; with
/// `BERTH_REQUIRE_VM` set (scripts/test.sh, after installing everything) that panics.
fn env_or_skip() -> Option<Env> {
    match setup() {
        Ok(e) => Some(e),
        Err(why) if std::env::var_os("BERTH_REQUIRE_VM").is_some() => {
            panic!("BERTH_REQUIRE_VM is set, but {why}")
        }
        Err(why) => {
            eprintln!("skipping the micro-VM boot test: {why}");
            None
        }
    }
}

struct Timings {
    hello: Duration,
    started: Option<Duration>,
    exit: Duration,
    vmm_gone: Duration,
}

/// Boots one VM with `extra_disks`, and lets `drive` talk to its init (for example
/// [`GuestLink::run_to_exit`]); returns what came back and the console.
fn boot(
    env: &Env,
    extra_disks: Vec<Disk>,
    drive: impl FnOnce(GuestLink, Duration) -> berth_vm::Result<RunOutcome>,
) -> (RunOutcome, Timings, String) {
    boot_in(env, extra_disks, None, drive)
}

/// [`boot`], with the VM's NIC on `tap` of the network namespace `netns` (where QEMU
/// starts).
fn boot_in(
    env: &Env,
    extra_disks: Vec<Disk>,
    tap: Option<(&TestNetns, &str)>,
    drive: impl FnOnce(GuestLink, Duration) -> berth_vm::Result<RunOutcome>,
) -> (RunOutcome, Timings, String) {
    // One QEMU at a time across test threads and processes.
    let lock = fs::File::create(env.cache.join("qemu.lock")).unwrap();
    lock.lock().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("root.qcow2");
    rootfs::create_overlay(&env.rootfs, &overlay).unwrap();
    let sock = dir.path().join("ctl.sock");
    let console = dir.path().join("console.log");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut cfg = VmConfig::new(
        &env.vmlinux,
        &env.initramfs,
        Disk::qcow2(&overlay),
        &sock,
        &console,
    );
    cfg.extra_disks = extra_disks;
    if let Some((_, name)) = tap {
        cfg.tap = Some(TapDevice {
            name: name.into(),
            mac: Some("02:42:0a:d5:00:02".into()),
        });
    }
    if std::env::var_os("BERTH_VM_DEBUG").is_some() {
        cfg.cmdline_extra.push("berth.debug".into());
    }
    let accel = Accel::detect();
    let qemu = QemuMicrovm::new("qemu-system-x86_64", accel);
    let t0 = Instant::now();
    let mut vm = match tap {
        Some((netns, _)) => netns.run(|| qemu.spawn(&cfg, dir.path(), None)),
        None => qemu.spawn(&cfg, dir.path(), None),
    }
    .unwrap();
    eprintln!("qemu pid {} ({accel:?})", vm.pid());
    let console_text = || fs::read_to_string(&console).unwrap_or_default();
    let qemu_log = || fs::read_to_string(dir.path().join("qemu.log")).unwrap_or_default();
    let link = match GuestLink::accept(&listener, &mut vm, BOOT_BOUND) {
        Ok(l) => l,
        Err(e) => {
            vm.kill().unwrap();
            panic!(
                "no link: {e}\nqemu: {}\nconsole:\n{}",
                qemu_log(),
                console_text()
            );
        }
    };
    let hello = t0.elapsed();
    let left = BOOT_BOUND.saturating_sub(t0.elapsed());
    let t1 = Instant::now();
    let out = match drive(link, left) {
        Ok(o) => o,
        Err(e) => {
            vm.kill().unwrap();
            panic!("run failed: {e}\nconsole:\n{}", console_text());
        }
    };
    let exit = hello + t1.elapsed();
    let status = vm.wait_timeout(Duration::from_secs(15)).unwrap();
    let vmm_gone = t0.elapsed();
    if status.is_none() {
        vm.kill().unwrap();
        panic!(
            "the VM did not power off after Exit\nconsole:\n{}",
            console_text()
        );
    }
    let timings = Timings {
        hello,
        started: out.started_after.map(|d| hello + d),
        exit,
        vmm_gone,
    };
    eprintln!(
        "boot timings: hello {:?}, started {:?}, exit {:?}, qemu gone {:?}",
        timings.hello, timings.started, timings.exit, timings.vmm_gone
    );
    if std::env::var_os("BERTH_VM_DEBUG").is_some() {
        eprintln!("console:\n{}", console_text());
    }
    // The cached base image was not written through the overlay.
    assert!(
        RootfsCache::new(env.rootfs.parent().unwrap())
            .lookup("test-busybox-1")
            .unwrap()
            .is_some()
    );
    (out, timings, console_text())
}

#[test]
fn boot_runs_entrypoint_and_execs_with_a_data_disk() {
    let Some(env) = env_or_skip() else { return };
    // A read-only ext4 data disk, as a bind mount becomes one.
    let data = tempfile::tempdir().unwrap();
    fs::write(data.path().join("hello.txt"), "from the disk\n").unwrap();
    let disk_dir = tempfile::tempdir().unwrap();
    let disk = disk_dir.path().join("data.ext4");
    let ok = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(data.path())
        .arg(&disk)
        .arg("8M")
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfs.ext4 -d failed");
    let config = ContainerConfig {
        process: ProcessConfig {
            args: vec![
                "sh".into(),
                "-c".into(),
                "read x; echo hi $x; echo oops >&2; exit 42".into(),
            ],
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        },
        disks: vec![DiskMount {
            device: "/dev/vdb".into(),
            path: "/data".into(),
            read_only: true,
        }],
        ..Default::default()
    };
    let mut execs: Vec<(Vec<u8>, Vec<u8>, i32)> = Vec::new();
    let disks = vec![Disk {
        read_only: true,
        ..Disk::raw(&disk)
    }];
    let (out, t, console) = boot(&env, disks, |mut link, left| {
        // While the entrypoint waits for its stdin, exec two processes beside it.
        link.send(&Message::Config(config))?;
        let exec = |args: &[&str], user: &str| ProcessConfig {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec!["PATH=/bin".into()],
            user: user.into(),
            ..Default::default()
        };
        link.stream().set_read_timeout(Some(left)).unwrap();
        let mut started_main = None;
        let mut pending = 2;
        let mut results = vec![(Vec::new(), Vec::new(), -1); 2];
        while pending > 0 {
            match link.recv()? {
                Some(Message::Started { id: 0, pid }) => {
                    started_main = Some(pid);
                    link.send(&Message::Exec {
                        id: 1,
                        process: exec(&["cat", "/data/hello.txt"], ""),
                    })?;
                    let touch = "touch /data/x 2>&1; id -u; exit 7";
                    link.send(&Message::Exec {
                        id: 2,
                        process: exec(&["sh", "-c", touch], "app"),
                    })?;
                }
                Some(Message::Started { .. }) => {}
                Some(Message::Stdout { id, data }) if id > 0 => {
                    results[id as usize - 1].0.extend(data)
                }
                Some(Message::Stderr { id, data }) if id > 0 => {
                    results[id as usize - 1].1.extend(data)
                }
                Some(Message::Exit { id, code }) if id > 0 => {
                    results[id as usize - 1].2 = code;
                    pending -= 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        execs = results;
        assert!(started_main.is_some());
        link.run_to_exit_after_config(b"there\n", left)
    });
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hi there\n",
        "console:\n{console}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(out.exit_code, 42);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(t.vmm_gone < BOOT_BOUND);
    assert_eq!(
        (String::from_utf8_lossy(&execs[0].0).as_ref(), execs[0].2),
        ("from the disk\n", 0)
    );
    let second = String::from_utf8_lossy(&execs[1].0).to_string();
    assert!(second.contains("Read-only file system"), "{second}");
    assert!(second.ends_with("1000\n"), "{second}");
    assert_eq!(execs[1].2, 7);
}

#[test]
fn boot_applies_env_cwd_user_hostname_and_tty() {
    let Some(env) = env_or_skip() else { return };
    let script = "echo \"$FOO|$(pwd)|$(id -u):$(id -g)|$(id -G)|$(hostname)|$HOME|$(cat /etc/hostname)\"; \
                  grep -c vmbox /etc/hosts; grep scratch /proc/mounts | cut -d' ' -f3; \
                  test -t 0 && echo tty; exit 3";
    let config = ContainerConfig {
        process: ProcessConfig {
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["FOO=bar baz".into()],
            cwd: "/home/app/work".into(),
            user: "app".into(),
            tty: true,
        },
        hostname: "vmbox".into(),
        hosts: Some("127.0.0.1 localhost\n10.0.0.2 vmbox\n".into()),
        tmpfs: vec![TmpfsMount {
            path: "/scratch".into(),
            options: "size=8m".into(),
        }],
        ..Default::default()
    };
    let (out, _, console) = boot(&env, Vec::new(), |link, left| {
        link.run_to_exit(config, b"", left)
    });
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "bar baz|/home/app/work|1000:1000|1000 10|vmbox|/home/app|vmbox",
            "1",
            "tmpfs",
            "tty"
        ],
        "console:\n{console}"
    );
    assert_eq!(out.exit_code, 3);
}

/// A network namespace made for one test (`ip netns add`), deleted on drop with
/// everything in it.
struct TestNetns {
    name: String,
}

impl TestNetns {
    fn create() -> Option<TestNetns> {
        let name = format!("berth-vmtest-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TestNetns { name })
    }

    fn ip(&self, args: &str) {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args.split_whitespace())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip -n {} {args}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `f` on this thread while it is in the namespace (what it creates, sockets
    /// and child processes, stays there), then returns the thread to where it was.
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let enter = |path: &Path| {
            let ns = fs::File::open(path).unwrap();
            // SAFETY: setns(2) on a namespace file we opened; only this thread moves.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        };
        let home = fs::File::open("/proc/thread-self/ns/net").unwrap();
        enter(&Path::new("/run/netns").join(&self.name));
        let out = f();
        // SAFETY: as above, back to the namespace this thread started in.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&home), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0);
        out
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn boot_guest_reaches_a_host_server_over_a_tap() {
    let Some(env) = env_or_skip() else { return };
    let Some(netns) = TestNetns::create() else {
        let why = "`ip netns add` failed (needs root and iproute2)";
        assert!(std::env::var_os("BERTH_REQUIRE_VM").is_none(), "{why}");
        eprintln!("skipping the tap test: {why}");
        return;
    };
    // The host side: a bridge with an address, the VM's tap on it, a server behind it.
    netns.ip("link set lo up");
    netns.ip("link add br0 type bridge");
    netns.ip("addr add 10.213.0.1/24 dev br0");
    netns.ip("link set br0 up");
    netns.ip("tuntap add dev tap0 mode tap");
    netns.ip("link set tap0 master br0 up");
    let listener = netns.run(|| std::net::TcpListener::bind("10.213.0.1:8080").unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let (stream, peer) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request = String::new();
        reader.read_line(&mut request).unwrap();
        let body = format!("pong to {}\n", peer.ip());
        write!(
            &stream,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        request
    });
    let config = ContainerConfig {
        process: ProcessConfig {
            args: vec![
                "sh".into(),
                "-c".into(),
                "ip -o -4 addr show eth0 | grep -o 'inet [0-9./]*'; \
                 ip route | grep default; wget -q -O - http://10.213.0.1:8080/ping"
                    .into(),
            ],
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        },
        network: Some(NetConfig {
            address: "10.213.0.2".parse().unwrap(),
            prefix_len: 24,
            gateway: Some("10.213.0.1".parse().unwrap()),
            mtu: None,
        }),
        ..Default::default()
    };
    let (out, _, console) = boot_in(&env, Vec::new(), Some((&netns, "tap0")), |link, left| {
        link.run_to_exit(config, b"", left)
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "inet 10.213.0.2/24",
            "default via 10.213.0.1 dev eth0 ",
            "pong to 10.213.0.2"
        ],
        "stderr: {}\nconsole:\n{console}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.exit_code, 0);
    assert_eq!(server.join().unwrap(), "GET /ping HTTP/1.1\r\n");
}
