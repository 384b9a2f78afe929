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

mod net;
mod sys;
mod user;

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_vm::protocol::{self, ContainerConfig, FrameDecoder, Message};

const MODULES_DIR: &str = "/lib/modules/berth";
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static DEBUG: AtomicBool = AtomicBool::new(false);

fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Messages go to the serial console (the kernel gave us /dev/console as stdio).
macro_rules! log {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), "berth-init: {}", format_args!($($arg)*));
    }};
}

macro_rules! debug {
    ($($arg:tt)*) => {{
        if debug_enabled() {
            let up = fs::read_to_string("/proc/uptime").unwrap_or_default();
            let up = up.split(' ').next().unwrap_or("?").to_string();
            log!("[{up}] {}", format_args!($($arg)*));
        }
    }};
}

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
            let _ = link.send(&Message::Error(e.to_string()));
            127
        }
    };
    sys::sync();
    let _ = link.send(&Message::Exit(code));
    debug!("exit {code}");
    sys::reboot();
}

fn mkdir(p: &str) -> io::Result<()> {
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new(&root).exists() {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("root disk {root} never appeared"),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
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

/// The control link: a virtio-serial port or a vsock stream.
struct Link {
    fd: OwnedFd,
    decoder: FrameDecoder,
}

impl Link {
    fn send(&mut self, msg: &Message) -> io::Result<()> {
        let frame = msg.encode();
        let mut off = 0;
        while off < frame.len() {
            match sys::write(self.fd.as_raw_fd(), &frame[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut p = [libc::pollfd {
                        fd: self.fd.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    sys::poll(&mut p, 1000)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what is available; `Ok(false)` at end of stream.
    fn fill(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 16384];
        match sys::read(self.fd.as_raw_fd(), &mut buf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.decoder.feed(&buf[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Blocks until one whole message arrives.
    fn recv_blocking(&mut self) -> io::Result<Message> {
        loop {
            if let Some(m) = self.decoder.next_message()? {
                return Ok(m);
            }
            let mut p = [libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            sys::poll(&mut p, -1)?;
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the host closed the link",
                ));
            }
        }
    }
}

fn find_port() -> io::Result<String> {
    let dir = Path::new("/sys/class/virtio-ports");
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = fs::read_to_string(e.path().join("name")).unwrap_or_default();
        if name.trim() == protocol::PORT_NAME {
            return Ok(format!("/dev/{}", e.file_name().to_string_lossy()));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no virtio port named {}", protocol::PORT_NAME),
    ))
}

fn open_link(vsock: bool) -> io::Result<Link> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let fd: OwnedFd = loop {
        let attempt = if vsock {
            sys::vsock_connect(protocol::VSOCK_PORT)
        } else {
            find_port().and_then(|dev| {
                fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
                    .open(dev)
                    .map(OwnedFd::from)
            })
        };
        match attempt {
            Ok(fd) => break fd,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    if vsock {
        sys::set_nonblocking(fd.as_raw_fd())?;
    }
    let mut link = Link {
        fd,
        decoder: FrameDecoder::new(),
    };
    link.send(&Message::Hello {
        version: protocol::VERSION,
    })?;
    Ok(link)
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

/// The environment for the entrypoint: the config's, plus PATH, HOME and HOSTNAME defaults.
fn child_env(cfg: &ContainerConfig, home: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for kv in &cfg.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    let mut default = |k: &str, v: &str| {
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.to_string(), v.to_string()));
        }
    };
    default("PATH", DEFAULT_PATH);
    if !cfg.hostname.is_empty() {
        default("HOSTNAME", &cfg.hostname);
    }
    default("HOME", home);
    if cfg.tty {
        default("TERM", "xterm");
    }
    env
}

/// Where the entrypoint's output comes from and its input goes to.
struct Stdio3 {
    stdin: Option<OwnedFd>,
    outputs: Vec<(OwnedFd, bool)>, // (fd, is_stderr)
    tty_master: Option<i32>,
}

fn stage2(link: &mut Link) -> io::Result<i32> {
    let cfg = match link.recv_blocking()? {
        Message::Config(c) => c,
        other => return Err(io::Error::other(format!("expected Config, got {other:?}"))),
    };
    debug!("config received");
    if cfg.args.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no command given",
        ));
    }
    setup_guest(&cfg)?;
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    let creds = user::resolve(&cfg.user, &passwd, &group).map_err(io::Error::other)?;
    let sigfd = sys::block_signals_to_fd()?;
    let cwd = if cfg.cwd.is_empty() {
        "/".to_string()
    } else {
        cfg.cwd.clone()
    };
    mkdir(&cwd)?;

    let mut cmd = Command::new(&cfg.args[0]);
    cmd.args(&cfg.args[1..])
        .env_clear()
        .envs(child_env(&cfg, &creds.home))
        .current_dir(&cwd);
    let mut stdio = Stdio3 {
        stdin: None,
        outputs: Vec::new(),
        tty_master: None,
    };
    let tty = cfg.tty;
    if tty {
        let (master, slave) = sys::openpty()?;
        cmd.stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        sys::set_nonblocking(master.as_raw_fd())?;
        stdio.tty_master = Some(master.as_raw_fd());
        stdio.stdin = Some(master.try_clone()?);
        stdio.outputs.push((master, false));
    } else {
        let (in_r, in_w) = sys::pipe()?;
        let (out_r, out_w) = sys::pipe()?;
        let (err_r, err_w) = sys::pipe()?;
        cmd.stdin(Stdio::from(in_r))
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(err_w));
        for fd in [&in_w, &out_r, &err_r] {
            sys::set_nonblocking(fd.as_raw_fd())?;
        }
        stdio.stdin = Some(in_w);
        stdio.outputs.push((out_r, false));
        stdio.outputs.push((err_r, true));
    }
    let (uid, gid, groups) = (creds.uid, creds.gid, creds.groups.clone());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe syscalls (setsid, ioctl, setgroups, setgid, setuid, sigprocmask)
    // without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setgroups(groups.len(), groups.as_ptr()) < 0
                || libc::setgid(gid) < 0
                || libc::setuid(uid) < 0
            {
                return Err(io::Error::last_os_error());
            }
            sys::unblock_all_signals()
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            let msg = format!("exec {}: {e}", cfg.args[0]);
            log!("{msg}");
            link.send(&Message::Error(msg))?;
            return Ok(code);
        }
    };
    // The child's ends of the pipes / the pty slave were moved into `cmd`: drop them here so
    // EOF arrives when the container's processes are gone.
    drop(cmd);
    let pid = child.id() as i32;
    link.send(&Message::Started { pid: child.id() })?;
    debug!("started pid {pid}");
    let code = relay(link, &sigfd, pid, stdio)?;
    drop(child); // already reaped through waitpid(-1)
    Ok(code)
}

/// The main loop: signals, the link, the entrypoint's stdio, until it exits.
fn relay(link: &mut Link, sigfd: &OwnedFd, main_pid: i32, mut stdio: Stdio3) -> io::Result<i32> {
    let mut exit: Option<i32> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut pending_stdin: Vec<u8> = Vec::new();
    let mut close_stdin = false;
    let mut link_open = true;
    let mut buf = vec![0u8; protocol::MAX_CHUNK];
    loop {
        if exit.is_some() && stdio.outputs.is_empty() {
            break;
        }
        if drain_deadline.is_some_and(|d| Instant::now() > d) {
            break;
        }
        // Always drain the decoder: frames can arrive together with the Config.
        while let Some(m) = link.decoder.next_message()? {
            match m {
                Message::Stdin(b) => pending_stdin.extend(b),
                Message::StdinClose => close_stdin = true,
                Message::Signal(s) if exit.is_none() => {
                    let _ = sys::kill(main_pid, s);
                }
                Message::Resize { rows, cols } => {
                    if let Some(m) = stdio.tty_master {
                        let _ = sys::set_winsize(m, rows, cols);
                    }
                }
                _ => {}
            }
        }

        if close_stdin && pending_stdin.is_empty() {
            if stdio.tty_master.is_some() {
                // EOF on a terminal is ^D at the start of a line.
                if let Some(fd) = &stdio.stdin {
                    let _ = sys::write(fd.as_raw_fd(), &[4]);
                }
            }
            stdio.stdin = None;
            close_stdin = false;
        }

        let mut fds = vec![libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let link_idx = link_open.then(|| {
            fds.push(libc::pollfd {
                fd: link.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            fds.len() - 1
        });
        let out_base = fds.len();
        for (fd, _) in &stdio.outputs {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // With a tty, stdin is the master itself; only poll it for writing in the pipe case.
        let stdin_idx = match (&stdio.stdin, stdio.tty_master) {
            (Some(fd), None) if !pending_stdin.is_empty() => {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                });
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let busy = exit.is_some() || (stdio.tty_master.is_some() && !pending_stdin.is_empty());
        sys::poll(&mut fds, if busy { 100 } else { -1 })?;

        if fds[0].revents != 0 {
            for sig in sys::read_signals(sigfd) {
                if sig == libc::SIGCHLD {
                    while let Some((pid, status)) = sys::reap_one() {
                        if pid == main_pid && exit.is_none() {
                            exit = Some(sys::exit_code(status));
                            debug!("entrypoint exited: {:?}", exit);
                            // The container ends with its main process: kill the rest,
                            // then drain what they wrote (bounded).
                            let _ = sys::kill(-1, libc::SIGKILL);
                            drain_deadline = Some(Instant::now() + Duration::from_secs(2));
                        }
                    }
                } else if sig != libc::SIGPIPE && exit.is_none() {
                    let _ = sys::kill(main_pid, sig);
                }
            }
        }

        if let Some(i) = link_idx
            && fds[i].revents != 0
        {
            match link.fill() {
                Ok(true) => {}
                Ok(false) | Err(_) => link_open = false,
            }
        }
        // Stdin: written without blocking; with a tty the master is always writable enough.
        if let Some(fd) = &stdio.stdin
            && !pending_stdin.is_empty()
            && (stdio.tty_master.is_some() || stdin_idx.is_some_and(|i| fds[i].revents != 0))
        {
            match sys::write(fd.as_raw_fd(), &pending_stdin) {
                Ok(n) => {
                    pending_stdin.drain(..n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => {
                    pending_stdin.clear();
                    if stdio.tty_master.is_none() {
                        stdio.stdin = None;
                    }
                }
            }
        }
        let mut closed = Vec::new();
        for (k, (fd, is_err)) in stdio.outputs.iter().enumerate() {
            if fds[out_base + k].revents == 0 {
                continue;
            }
            match sys::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => closed.push(k),
                Ok(n) => {
                    let data = buf[..n].to_vec();
                    let msg = if *is_err {
                        Message::Stderr(data)
                    } else {
                        Message::Stdout(data)
                    };
                    if link_open && link.send(&msg).is_err() {
                        link_open = false;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                // EIO: a pty master whose slave side is closed everywhere.
                Err(_) => closed.push(k),
            }
        }
        for k in closed.into_iter().rev() {
            stdio.outputs.remove(k);
        }
    }
    while sys::reap_one().is_some() {}
    Ok(exit.unwrap_or(255))
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

    #[test]
    fn environment_defaults() {
        let cfg = ContainerConfig {
            env: vec!["A=1".into(), "A=2".into(), "HOME=/h".into(), "EMPTY".into()],
            hostname: "box".into(),
            tty: true,
            ..Default::default()
        };
        let env = child_env(&cfg, "/root");
        let get = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("2"));
        assert_eq!(get("HOME"), Some("/h"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(get("PATH"), Some(DEFAULT_PATH));
        assert_eq!(get("HOSTNAME"), Some("box"));
        assert_eq!(get("TERM"), Some("xterm"));
    }
}
