//! Creating the container and exec'd processes through libcontainer, with their stdio on
//! pipes (or a terminal) that the shim holds. Called only while the shim has one thread.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;

use crate::fdio;

/// The shim's ends of a process's stdio. With a terminal, `stdout` is the master and
/// `stdin` a duplicate of it.
pub struct ProcessIo {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
    pub terminal: bool,
}

/// The container-side ends, handed to libcontainer.
struct ChildIo {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

fn pipes(open_stdin: bool) -> anyhow::Result<(ProcessIo, ChildIo)> {
    let (stdin_read, stdin_write) = fdio::pipe().context("stdin pipe")?;
    let (stdout_read, stdout_write) = fdio::pipe().context("stdout pipe")?;
    let (stderr_read, stderr_write) = fdio::pipe().context("stderr pipe")?;
    Ok((
        ProcessIo {
            // Without `-i` the write end closes now: the process reads end of file.
            stdin: open_stdin.then_some(stdin_write),
            stdout: stdout_read,
            stderr: Some(stderr_read),
            terminal: false,
        },
        ChildIo {
            stdin: stdin_read,
            stdout: stdout_write,
            stderr: stderr_write,
        },
    ))
}

/// A listener for the runtime to hand the terminal master over.
fn console_listener(path: &Path) -> anyhow::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    // Bound by its name: the shim runs in its state directory, and the full path may
    // be longer than a socket address allows.
    let name = path.file_name().map_or(path, Path::new);
    let listener = UnixListener::bind(name)
        .with_context(|| format!("bind console socket {}", path.display()))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The master the runtime sent, once it has connected (it does so during `build`).
fn take_terminal(
    listener: &UnixListener,
    path: &Path,
    size: Option<(u16, u16)>,
) -> anyhow::Result<ProcessIo> {
    let (stream, _) = listener
        .accept()
        .context("the runtime did not connect to the console socket")?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let master = fdio::receive_fd(&stream).context("receive the terminal")?;
    let _ = std::fs::remove_file(path);
    // The runtime leaves the size at 0x0; the spec's consoleSize is the client's.
    if let Some((height, width)) = size {
        use std::os::fd::AsRawFd;
        fdio::resize(master.as_raw_fd(), height, width).context("set the terminal size")?;
    }
    let stdin = master.try_clone().context("dup terminal")?;
    Ok(ProcessIo {
        stdin: Some(stdin),
        stdout: master,
        stderr: None,
        terminal: true,
    })
}

/// Creates the container from the bundle in `bundle` (its process waits for `start`).
pub fn create_init(
    id: &str,
    runtime_root: &Path,
    bundle: &Path,
    terminal: bool,
    console_socket: &Path,
    open_stdin: bool,
    size: Option<(u16, u16)>,
) -> anyhow::Result<(Container, ProcessIo)> {
    std::fs::create_dir_all(runtime_root)
        .with_context(|| format!("create {}", runtime_root.display()))?;
    let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(DefaultExecutor {})
        .with_root_path(runtime_root)?;
    if terminal {
        let listener = console_listener(console_socket)?;
        let container = builder
            .with_console_socket(Some(console_socket))
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(runtime_error)?;
        let io = take_terminal(&listener, console_socket, size)?;
        Ok((container, io))
    } else {
        let (io, child) = pipes(open_stdin)?;
        let container = builder
            .with_stdin(child.stdin)
            .with_stdout(child.stdout)
            .with_stderr(child.stderr)
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(runtime_error)?;
        Ok((container, io))
    }
}

/// Starts another process in the running container, described by the OCI `process`
/// JSON in `process_file`; returns its host pid.
pub fn create_exec(
    id: &str,
    runtime_root: &Path,
    process_file: &Path,
    terminal: bool,
    console_socket: &Path,
    open_stdin: bool,
    size: Option<(u16, u16)>,
) -> anyhow::Result<(i32, ProcessIo)> {
    let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(DefaultExecutor {})
        .with_root_path(runtime_root)?;
    if terminal {
        let listener = console_listener(console_socket)?;
        let pid = builder
            .with_console_socket(Some(console_socket))
            .as_tenant()
            .with_process(Some(process_file))
            .with_detach(true)
            .build()
            .map_err(runtime_error)?;
        let io = take_terminal(&listener, console_socket, size)?;
        Ok((pid.as_raw(), io))
    } else {
        let (io, child) = pipes(open_stdin)?;
        let pid = builder
            .with_stdin(child.stdin)
            .with_stdout(child.stdout)
            .with_stderr(child.stderr)
            .as_tenant()
            .with_process(Some(process_file))
            .with_detach(true)
            .build()
            .map_err(runtime_error)?;
        Ok((pid.as_raw(), io))
    }
}

fn runtime_error(err: libcontainer::error::LibcontainerError) -> anyhow::Error {
    anyhow::anyhow!("OCI runtime create failed: {err}")
}

/// Checks the state a created container must be in, so the error names the problem.
pub fn expect_created(container: &Container) -> anyhow::Result<i32> {
    match container.pid() {
        Some(pid) => Ok(pid.as_raw()),
        None => bail!("the runtime reported no pid for the container"),
    }
}
