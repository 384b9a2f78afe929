//! berth-init: PID 1 of a berth micro-VM. A static binary, `/init` in the initramfs.
//!
//! Stage 1 (initramfs): mount devtmpfs, proc and sysfs; load the kernel modules listed in
//! `/lib/modules/berth/order` with `finit_module`; wait for the root disk (`/dev/vda`, or
//! `berth.root=` on the kernel command line); mount it; move the mounts over and switch root
//! (this process carries on: no second binary is needed in the image).
//!
//! Stage 2 (the image): devpts, /dev/shm; open the control link (virtio-serial port
//! `berth.ctl`, or vsock with `berth.link=vsock`); say `Hello`, read the `Config`; mount the
//! tmpfs mounts; set the hostname; write /etc/hosts, /etc/resolv.conf; configure lo and
//! eth0; resolve the user from the image's /etc/passwd and /etc/group; block every signal
//! and read them from a signalfd; run the entrypoint in its own session with its stdio
//! relayed over the link; reap every zombie; forward signals; when the entrypoint exits,
//! kill the rest, drain their output, sync, send `Exit`, and reboot (which ends the VMM).

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_vm::protocol::{self, ContainerConfig, Message};

const MODULES_DIR: &str = "/lib/modules/berth";

static DEBUG: AtomicBool = AtomicBool::new(false);

fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Messages go to the serial console (the kernel gave us /dev/console as stdio).
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "berth-init: {}", format_args!($($arg)*));
    }};
}

macro_rules! debug {
    ($($arg:tt)*) => {{
        if $crate::debug_enabled() {
            let up = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
            let up = up.split(' ').next().unwrap_or("?").to_string();
            log!("[{up}] {}", format_args!($($arg)*));
        }
    }};
}

mod link;
mod net;
mod process;
mod relay;
mod sys;
mod user;

use link::{Link, open_link};

/// Options from the kernel command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct BootOptions {
    root: Option<String>,
    vsock: bool,
    debug: bool,
}

fn parse_cmdline(cmdline: &str) -> BootOptions {
    let mut o = BootOptions::default();
    for w in cmdline.split_whitespace() {
        if let Some(r) = w.strip_prefix("berth.root=") {
            o.root = Some(r.to_string());
        } else if let Some(l) = w
            .strip_prefix(protocol::LINK_PARAM)
            .and_then(|l| l.strip_prefix('='))
        {
            o.vsock = l == "vsock";
        } else if w == "berth.debug" {
            o.debug = true;
        }
    }
    o
}

fn main() {
    if std::process::id() != 1 {
        eprintln!("berth-init is the init of a berth micro-VM and must run as PID 1");
        std::process::exit(2);
    }
    // Stage 1 runs before /proc exists; read the command line once it is mounted.
    if let Err(e) = stage1() {
        log!("stage 1 failed: {e}");
        sys::reboot();
    }
    let opts = parse_cmdline(&fs::read_to_string("/proc/cmdline").unwrap_or_default());
    DEBUG.store(opts.debug, Ordering::Relaxed);
    debug!("root switched");
    let mut link = match open_link(opts.vsock) {
        Ok(l) => l,
        Err(e) => {
            log!("cannot open the control link: {e}");
            sys::reboot();
        }
    };
    let code = match stage2(&mut link) {
        Ok(code) => code,
        Err(e) => {
            log!("{e}");
            let _ = link.send(&Message::Error {
                id: protocol::MAIN,
                message: e.to_string(),
            });
            127
        }
    };
    sys::sync();
    let _ = link.send(&Message::Exit {
        id: protocol::MAIN,
        code,
    });
    debug!("exit {code}");
    sys::reboot();
}

pub(crate) fn mkdir(p: &str) -> io::Result<()> {
    match fs::create_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn ctx<T>(r: io::Result<T>, what: impl FnOnce() -> String) -> io::Result<T> {
    r.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", what())))
}

fn stage1() -> io::Result<()> {
    for d in ["/dev", "/proc", "/sys", "/newroot"] {
        mkdir(d)?;
    }
    let nosuid = libc::MS_NOSUID;
    ctx(
        sys::mount("devtmpfs", "/dev", "devtmpfs", nosuid, "mode=0755"),
        || "mount /dev".into(),
    )?;
    ctx(
        sys::mount(
            "proc",
            "/proc",
            "proc",
            nosuid | libc::MS_NODEV | libc::MS_NOEXEC,
            "",
        ),
        || "mount /proc".into(),
    )?;
    ctx(
        sys::mount(
            "sysfs",
            "/sys",
            "sysfs",
            nosuid | libc::MS_NODEV | libc::MS_NOEXEC,
            "",
        ),
        || "mount /sys".into(),
    )?;
    let opts = parse_cmdline(&fs::read_to_string("/proc/cmdline").unwrap_or_default());
    DEBUG.store(opts.debug, Ordering::Relaxed);
    debug!("stage 1");
    load_modules()?;
    debug!("modules loaded");
    let root = opts.root.unwrap_or_else(|| "/dev/vda".into());
    wait_for_device(&root, Duration::from_secs(10))?;
    ctx(sys::mount(&root, "/newroot", "ext4", 0, ""), || {
        format!("mount {root}")
    })?;
    // Free the initramfs' big files (the rootfs stays mounted underneath, unreachable).
    let _ = fs::remove_file("/init");
    let _ = fs::remove_dir_all(MODULES_DIR);
    for d in ["dev", "proc", "sys"] {
        let target = format!("/newroot/{d}");
        mkdir(&target)?;
        ctx(sys::move_mount(format!("/{d}"), &target), || {
            format!("move /{d}")
        })?;
    }
    std::env::set_current_dir("/newroot")?;
    ctx(sys::move_mount("/newroot", "/"), || "move the root".into())?;
    sys::chroot(".")?;
    std::env::set_current_dir("/")?;
    Ok(())
}

/// Waits for a block device node (devtmpfs adds it when the driver probes the disk).
fn wait_for_device(dev: &str, bound: Duration) -> io::Result<()> {
    let deadline = Instant::now() + bound;
    while !Path::new(dev).exists() {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("disk {dev} never appeared"),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn load_modules() -> io::Result<()> {
    let order = match fs::read_to_string(format!("{MODULES_DIR}/order")) {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in order.lines().filter(|l| !l.is_empty()) {
        let path = format!("{MODULES_DIR}/{name}");
        let f = ctx(fs::File::open(&path), || format!("open {path}"))?;
        match sys::finit_module(f.as_raw_fd()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("load {name}: {e}"))),
        }
    }
    Ok(())
}

fn mount_flags(options: &str) -> (libc::c_ulong, String) {
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
    let mut data = Vec::new();
    for o in options.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => flags &= !libc::MS_RDONLY,
            "noexec" => flags |= libc::MS_NOEXEC,
            "exec" => flags &= !libc::MS_NOEXEC,
            "nosuid" => flags |= libc::MS_NOSUID,
            "suid" => flags &= !libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "dev" => flags &= !libc::MS_NODEV,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

fn setup_guest(cfg: &ContainerConfig) -> io::Result<()> {
    mkdir("/dev/pts")?;
    ctx(
        sys::mount(
            "devpts",
            "/dev/pts",
            "devpts",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5",
        ),
        || "mount /dev/pts".into(),
    )?;
    mkdir("/dev/shm")?;
    ctx(
        sys::mount(
            "shm",
            "/dev/shm",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "mode=1777,size=65536k",
        ),
        || "mount /dev/shm".into(),
    )?;
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let _ = symlink(target, link);
    }
    if fs::symlink_metadata("/dev/ptmx").is_err() {
        let _ = symlink("pts/ptmx", "/dev/ptmx");
    }
    for t in &cfg.tmpfs {
        mkdir(&t.path)?;
        let (flags, data) = mount_flags(&t.options);
        ctx(sys::mount("tmpfs", &t.path, "tmpfs", flags, &data), || {
            format!("mount tmpfs {}", t.path)
        })?;
    }
    for d in &cfg.disks {
        wait_for_device(&d.device, Duration::from_secs(10))?;
        mkdir(&d.path)?;
        let flags =
            libc::MS_NOSUID | libc::MS_NODEV | if d.read_only { libc::MS_RDONLY } else { 0 };
        ctx(sys::mount(&d.device, &d.path, "ext4", flags, ""), || {
            format!("mount {} on {}", d.device, d.path)
        })?;
    }
    if !cfg.hostname.is_empty() {
        ctx(sys::sethostname(&cfg.hostname), || "sethostname".into())?;
    }
    let etc_files = [
        (
            "/etc/hostname",
            (!cfg.hostname.is_empty()).then(|| format!("{}\n", cfg.hostname)),
        ),
        ("/etc/hosts", cfg.hosts.clone()),
        ("/etc/resolv.conf", cfg.resolv_conf.clone()),
    ];
    for (path, content) in etc_files {
        if let Some(content) = content {
            mkdir("/etc")?;
            // Images often ship these as symlinks (to /run/…): replace, don't follow.
            let _ = fs::remove_file(path);
            ctx(fs::write(path, content), || format!("write {path}"))?;
        }
    }
    if let Err(e) = net::loopback_up() {
        log!("lo: {e}");
    }
    if let Some(n) = &cfg.network {
        ctx(net::configure("eth0", n), || "configure eth0".into())?;
    }
    Ok(())
}

fn stage2(link: &mut Link) -> io::Result<i32> {
    let cfg = match link.recv_blocking()? {
        Message::Config(c) => c,
        other => return Err(io::Error::other(format!("expected Config, got {other:?}"))),
    };
    debug!("config received");
    setup_guest(&cfg)?;
    let sigfd = sys::block_signals_to_fd()?;
    let main = match process::spawn(protocol::MAIN, &cfg.process, &cfg.hostname) {
        Ok(p) => p,
        Err(e) => {
            log!("{}", e.message);
            link.send(&Message::Error {
                id: protocol::MAIN,
                message: e.message,
            })?;
            return Ok(e.code);
        }
    };
    link.send(&Message::Started {
        id: protocol::MAIN,
        pid: main.pid as u32,
    })?;
    debug!("started pid {}", main.pid);
    relay::run(link, &sigfd, &cfg.hostname, main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_options() {
        let o = parse_cmdline("console=ttyS0 berth.root=/dev/vdb berth.link=vsock berth.debug");
        assert_eq!(
            o,
            BootOptions {
                root: Some("/dev/vdb".into()),
                vsock: true,
                debug: true
            }
        );
        assert_eq!(parse_cmdline("quiet"), BootOptions::default());
    }

    #[test]
    fn tmpfs_options() {
        let (f, d) = mount_flags("rw,noexec,size=64m,mode=1777");
        assert_eq!(f, libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
        assert_eq!(d, "size=64m,mode=1777");
        let (f, d) = mount_flags("ro,exec,dev");
        assert_eq!(f, libc::MS_NOSUID | libc::MS_RDONLY);
        assert_eq!(d, "");
    }
}
