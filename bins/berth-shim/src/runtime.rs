//! The container runtime, as runc-compatible commands: the shim runs `berth-runtime`
//! (or any runtime with runc's command line) for create, start, exec, kill, pause,
//! resume and delete, as containerd's shim runs runc. The shim itself never links the
//! runtime, so it stays small: its memory is what `bench/density.sh` counts per
//! container. Processes the runtime creates are reparented to the shim, a subreaper,
//! when the runtime command exits.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::fdio;

/// The shim's ends of a process's stdio. With a terminal, `stdout` is the master and
/// `stdin` a duplicate of it.
pub struct ProcessIo {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
    pub terminal: bool,
}

/// The process-side ends, given to the runtime command as its stdio (which the
/// container's process inherits, as with runc).
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

/// The master the runtime sends on `stream`, sized at once.
fn receive_terminal(
    stream: std::os::unix::net::UnixStream,
    path: &Path,
    size: Option<(u16, u16)>,
) -> anyhow::Result<ProcessIo> {
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

/// A runc-compatible runtime binary and its state root.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub binary: PathBuf,
    pub root: PathBuf,
    /// Where the runtime logs (JSON); its last error is the message we report.
    pub log: PathBuf,
}

impl Runtime {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// Runs the command to its end; its failure carries the runtime's logged error.
    fn run(&self, mut cmd: Command, what: &str) -> anyhow::Result<()> {
        let status = cmd
            .status()
            .with_context(|| format!("run {}", self.binary.display()))?;
        if status.success() {
            return Ok(());
        }
        match self.last_error() {
            Some(message) => bail!("{message}"),
            None => bail!("{what}: the runtime exited with {status}"),
        }
    }

    /// The message of the last error line in the runtime's JSON log.
    fn last_error(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines().rev().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["level"] == "ERROR")
                .then(|| v["fields"]["message"].as_str().map(str::to_string))
                .flatten()
        })
    }

    fn read_pid(path: &Path) -> anyhow::Result<i32> {
        std::fs::read_to_string(path)
            .with_context(|| format!("read {}", path.display()))?
            .trim()
            .parse()
            .with_context(|| format!("parse {}", path.display()))
    }

    /// Runs `cmd` with stdio for a process that has no terminal, or with a console
    /// socket; returns the process's pid (from `pid_file`) and the shim's ends.
    #[allow(clippy::too_many_arguments)]
    fn spawn_process(
        &self,
        mut cmd: Command,
        id: &str,
        pid_file: &Path,
        terminal: bool,
        console_socket: &Path,
        open_stdin: bool,
        size: Option<(u16, u16)>,
        what: &str,
    ) -> anyhow::Result<(i32, ProcessIo)> {
        let _ = std::fs::remove_file(pid_file);
        // Pipes even with a terminal: the runtime needs real stdio of its own.
        let (io, child) = pipes(open_stdin)?;
        cmd.stdin(Stdio::from(child.stdin))
            .stdout(Stdio::from(child.stdout))
            .stderr(Stdio::from(child.stderr));
        if terminal {
            let listener = console_listener(console_socket)?;
            cmd.arg("--console-socket").arg(console_socket).arg(id);
            let mut child = cmd
                .spawn()
                .with_context(|| format!("run {}", self.binary.display()))?;
            // Take the terminal while the runtime is still setting the process up, and
            // size it at once: the process may ask for its size as soon as it runs.
            let taken = loop {
                match listener.accept() {
                    Ok((stream, _)) => break Some(stream),
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err).context("accept the terminal"),
                }
                if child.try_wait()?.is_some() {
                    // It may have connected just before it exited.
                    break listener.accept().ok().map(|(stream, _)| stream);
                }
                std::thread::sleep(Duration::from_micros(200));
            };
            let io = match taken {
                Some(stream) => Some(receive_terminal(stream, console_socket, size)?),
                None => None,
            };
            let status = child.wait()?;
            if !status.success() {
                match self.last_error() {
                    Some(message) => bail!("{message}"),
                    None => bail!("{what}: the runtime exited with {status}"),
                }
            }
            let io = io.context("the runtime did not connect to the console socket")?;
            Ok((Self::read_pid(pid_file)?, io))
        } else {
            cmd.arg(id);
            self.run(cmd, what)?;
            Ok((Self::read_pid(pid_file)?, io))
        }
    }

    /// Creates the container from the bundle in `bundle` (its process waits for
    /// `start`); returns the init's pid.
    pub fn create_init(
        &self,
        id: &str,
        bundle: &Path,
        terminal: bool,
        console_socket: &Path,
        open_stdin: bool,
        size: Option<(u16, u16)>,
    ) -> anyhow::Result<(i32, ProcessIo)> {
        let pid_file = bundle.join("init.pid");
        let mut cmd = self.command();
        cmd.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        self.spawn_process(
            cmd,
            id,
            &pid_file,
            terminal,
            console_socket,
            open_stdin,
            size,
            "create",
        )
        .map_err(|e| anyhow::anyhow!("OCI runtime create failed: {e:#}"))
    }

    /// Starts another process in the running container, described by the OCI
    /// `process` JSON in `process_file`; returns its pid.
    pub fn create_exec(
        &self,
        id: &str,
        process_file: &Path,
        terminal: bool,
        console_socket: &Path,
        open_stdin: bool,
        size: Option<(u16, u16)>,
    ) -> anyhow::Result<(i32, ProcessIo)> {
        let pid_file = process_file.with_extension("pid");
        let mut cmd = self.command();
        cmd.arg("exec")
            .arg("--detach")
            .arg("--process")
            .arg(process_file)
            .arg("--pid-file")
            .arg(&pid_file);
        let result = self.spawn_process(
            cmd,
            id,
            &pid_file,
            terminal,
            console_socket,
            open_stdin,
            size,
            "exec",
        );
        let _ = std::fs::remove_file(&pid_file);
        result.map_err(|e| anyhow::anyhow!("OCI runtime exec failed: {e:#}"))
    }

    /// Runs `op` on the container `id`.
    pub fn operate(&self, id: &str, op: Operation) -> anyhow::Result<()> {
        let mut cmd = self.command();
        match op {
            Operation::Start => cmd.arg("start").arg(id),
            Operation::Pause => cmd.arg("pause").arg(id),
            Operation::Resume => cmd.arg("resume").arg(id),
            Operation::KillAll(signal) => {
                cmd.arg("kill").arg("--all").arg(id).arg(signal.to_string())
            }
            Operation::Delete => cmd.arg("delete").arg("--force").arg(id),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.run(cmd, &format!("{op:?}"))
    }
}
