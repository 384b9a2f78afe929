use std::path::Path;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use anyhow::{Context, bail};
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;

use crate::cli::Create;

/// `create`: with `--control-fd`, also serves the caller's start (see `serve_start`).
pub fn create_command(root: &Path, args: &Create) -> anyhow::Result<()> {
    // Take the descriptor first, so it is closed (the caller sees end of file) however
    // create ends.
    let control = args.control_fd.map(control_socket).transpose()?;
    let container = create(root, args, true)?;
    match control {
        Some(control) => serve_start(container, control),
        None => Ok(()),
    }
}

/// The control descriptor, as a socket this process owns.
fn control_socket(fd: i32) -> anyhow::Result<UnixStream> {
    // SAFETY: fcntl(F_GETFD) only inspects the descriptor number.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        bail!("--control-fd {fd} is not an open descriptor");
    }
    // SAFETY: the caller handed this descriptor to us for our exclusive use, and it is
    // open (checked above); it is set close-on-exec so the container never inherits it.
    let socket = unsafe { UnixStream::from_raw_fd(fd) };
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(socket)
}

/// Says `created`, then waits: `start` starts the container (answered `started` or
/// `error: …`); end of file leaves it created, for the caller to delete.
fn serve_start(mut container: Container, control: UnixStream) -> anyhow::Result<()> {
    let mut writer = control.try_clone().context("control socket")?;
    writer
        .write_all(b"created\n")
        .context("report created on the control socket")?;
    let mut line = String::new();
    BufReader::new(control)
        .read_line(&mut line)
        .context("read the control socket")?;
    if line.trim_end() != "start" {
        return Ok(());
    }
    let started = container
        .start()
        .with_context(|| format!("start container {}", container.id()));
    let reply = match &started {
        Ok(()) => "started\n".to_string(),
        Err(err) => format!("error: {}\n", format!("{err:#}").replace('\n', " ")),
    };
    let _ = writer.write_all(reply.as_bytes());
    started
}

/// Creates the container from its bundle. `detach` is false only for a foreground
/// `run`, whose caller then waits for the process.
///
/// Specs the launcher handles (everything berthd generates) are created in one clone
/// (see `crate::launch`); the rest go through libcontainer's builder.
pub fn create(root: &Path, args: &Create, detach: bool) -> anyhow::Result<Container> {
    let root = crate::state::ensure_root(root)?;
    let bundle = std::fs::canonicalize(&args.bundle)
        .with_context(|| format!("bundle {}", args.bundle.display()))?;
    let builder = ContainerBuilder::new(args.id.clone(), SyscallType::default()).validate_id()?;
    let spec = Spec::load(bundle.join("config.json"))
        .with_context(|| format!("load {}/config.json", bundle.display()))?;
    crate::launch::validate(&spec)?;
    match crate::launch::unsupported(&spec, args.console_socket.is_some()) {
        None => {
            let request = crate::launch::Request {
                root: &root,
                id: &args.id,
                bundle: &bundle,
                pid_file: args.pid_file.as_deref(),
                console_socket: args.console_socket.as_deref(),
            };
            crate::launch::create(&request, spec)
                .with_context(|| format!("create container {}", args.id))
        }
        Some(reason) => {
            tracing::debug!(reason, "creating through libcontainer's builder");
            prime_cgroup_attach();
            builder
                .with_executor(DefaultExecutor {})
                .with_pid_file(args.pid_file.as_ref())?
                .with_console_socket(args.console_socket.as_ref())
                .with_root_path(root)?
                .as_init(bundle)
                .with_systemd(false)
                .with_detach(detach)
                .build()
                .with_context(|| format!("create container {}", args.id))
        }
    }
}

/// Starts paying, in a throwaway child, the RCU grace period that the first cgroup
/// attach after a quiet spell waits for (8–16 ms here): the child moves itself into its
/// own cgroup, which moves nothing. libcontainer's attach a few milliseconds later then
/// finds the lock's fast path (see berth-engine's `prime_cgroup_attach`).
fn prime_cgroup_attach() {
    let Some(procs) = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| berth_runtime::own_cgroup_procs(Path::new("/sys/fs/cgroup"), &text))
    else {
        return;
    };
    let Ok(path) = std::ffi::CString::new(procs.into_os_string().into_encoded_bytes()) else {
        return;
    };
    // SAFETY: this process is single-threaded; the child only makes async-signal-safe
    // calls (open, write, _exit) with data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; `path` is a valid C string.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                let me = libc::getpid();
                let mut buf = [0u8; 16];
                let mut n = buf.len();
                let mut v = me as u32;
                loop {
                    n -= 1;
                    buf[n] = b'0' + (v % 10) as u8;
                    v /= 10;
                    if v == 0 {
                        break;
                    }
                }
                libc::write(fd, buf[n..].as_ptr().cast(), buf.len() - n);
            }
            libc::_exit(0);
        }
    }
    // The child is reaped by whoever waits for our children (run's foreground loop
    // reaps every child; create exits soon after).
}
