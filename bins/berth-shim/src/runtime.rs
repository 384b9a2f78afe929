//! Creating the container and exec'd processes through libcontainer, with their stdio on
//! pipes (or a terminal) that the shim holds.
//!
//! Every libcontainer call runs in a short-lived forked child ([`in_child`]): the
//! long-lived shim never touches the runtime's code or heap, so it stays small (its
//! resident memory is what `bench/density.sh` measures per container). Processes the
//! child creates are reparented to the shim, which is a subreaper.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
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

/// Creates the container from the bundle in `bundle` (its process waits for `start`);
/// returns the init's pid.
pub fn create_init(
    id: &str,
    runtime_root: &Path,
    bundle: &Path,
    terminal: bool,
    console_socket: &Path,
    open_stdin: bool,
    size: Option<(u16, u16)>,
) -> anyhow::Result<(i32, ProcessIo)> {
    std::fs::create_dir_all(runtime_root)
        .with_context(|| format!("create {}", runtime_root.display()))?;
    let builder = || -> anyhow::Result<ContainerBuilder> {
        Ok(
            ContainerBuilder::new(id.to_string(), SyscallType::default())
                .with_executor(DefaultExecutor {})
                .with_root_path(runtime_root)?,
        )
    };
    let init_pid = |container: &Container| -> anyhow::Result<i32> {
        container
            .pid()
            .map(|pid| pid.as_raw())
            .context("the runtime reported no pid for the container")
    };
    if terminal {
        let listener = console_listener(console_socket)?;
        let pid = in_child(|| {
            let container = builder()?
                .with_console_socket(Some(console_socket))
                .as_init(bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()
                .map_err(runtime_error)?;
            init_pid(&container)
        })?;
        let io = take_terminal(&listener, console_socket, size)?;
        Ok((pid, io))
    } else {
        let (io, child) = pipes(open_stdin)?;
        let pid = in_child(move || {
            let container = builder()?
                .with_stdin(child.stdin)
                .with_stdout(child.stdout)
                .with_stderr(child.stderr)
                .as_init(bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()
                .map_err(runtime_error)?;
            init_pid(&container)
        })?;
        Ok((pid, io))
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
    let builder = || -> anyhow::Result<ContainerBuilder> {
        Ok(
            ContainerBuilder::new(id.to_string(), SyscallType::default())
                .with_executor(DefaultExecutor {})
                .with_root_path(runtime_root)?,
        )
    };
    if terminal {
        let listener = console_listener(console_socket)?;
        let pid = in_child(|| {
            let pid = builder()?
                .with_console_socket(Some(console_socket))
                .as_tenant()
                .with_process(Some(process_file))
                .with_detach(true)
                .build()
                .map_err(runtime_error)?;
            Ok(pid.as_raw())
        })?;
        let io = take_terminal(&listener, console_socket, size)?;
        Ok((pid, io))
    } else {
        let (io, child) = pipes(open_stdin)?;
        let pid = in_child(move || {
            let pid = builder()?
                .with_stdin(child.stdin)
                .with_stdout(child.stdout)
                .with_stderr(child.stderr)
                .as_tenant()
                .with_process(Some(process_file))
                .with_detach(true)
                .build()
                .map_err(runtime_error)?;
            Ok(pid.as_raw())
        })?;
        Ok((pid, io))
    }
}

fn runtime_error(err: libcontainer::error::LibcontainerError) -> anyhow::Error {
    anyhow::anyhow!("OCI runtime create failed: {err}")
}

/// What the shim asks of the runtime about its container after creating it.
#[derive(Debug, Clone, Copy)]
pub enum Operation {
    Start,
    Pause,
    Resume,
    /// Signal every process of the container.
    KillAll(i32),
    /// Remove the runtime's state and cgroups (killing what is left).
    Delete,
}

/// Runs `op` on the container `id` (in a child, like every libcontainer call).
pub fn operate(runtime_root: &Path, id: &str, op: Operation) -> anyhow::Result<()> {
    let dir = runtime_root.join(id);
    in_child(move || {
        let mut container =
            Container::load(dir).map_err(|e| anyhow::anyhow!("load the container: {e}"))?;
        match op {
            Operation::Start => container.start(),
            Operation::Pause => container.pause(),
            Operation::Resume => container.resume(),
            Operation::KillAll(signal) => {
                let signal = libcontainer::signal::Signal::try_from(signal)
                    .map_err(|e| anyhow::anyhow!("signal {signal}: {e}"))?;
                container.kill(signal, true)
            }
            Operation::Delete => container.delete(true),
        }
        .map_err(|e| anyhow::anyhow!("{op:?}: {e}"))
    })
}

/// Runs `work` in a forked child and returns what it returned. The shim has one
/// thread, so forking is safe; the child leaves with `_exit`, running no destructors
/// of the parent's state.
pub fn in_child<T>(work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    use std::io::{Read, Write};
    let (read, write) = fdio::pipe().context("result pipe")?;
    // SAFETY: the shim is single-threaded (tokio's current-thread runtime, no other
    // threads), so the child inherits a consistent heap and no held locks.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        drop(read);
        let result: Result<T, String> = work().map_err(|e| format!("{e:#}"));
        let bytes = serde_json::to_vec(&result).unwrap_or_default();
        let mut message = (bytes.len() as u64).to_be_bytes().to_vec();
        message.extend_from_slice(&bytes);
        let _ = std::fs::File::from(write).write_all(&message);
        // SAFETY: _exit ends the child at once, as a forked child should.
        unsafe { libc::_exit(0) };
    }
    drop(write);
    drop(work);
    // Exactly the message: the container's processes inherit the write end until they
    // exec, so end of file would not come in time.
    let mut file = std::fs::File::from(read);
    let mut len = [0u8; 8];
    let mut bytes = Vec::new();
    let read_result = file.read_exact(&mut len).and_then(|()| {
        bytes.resize(u64::from_be_bytes(len).min(16 << 20) as usize, 0);
        file.read_exact(&mut bytes)
    });
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    read_result.context("read the runtime's result")?;
    match serde_json::from_slice::<Result<T, String>>(&bytes) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(anyhow::anyhow!(message)),
        Err(_) => anyhow::bail!("the runtime process died (wait status {status})"),
    }
}
