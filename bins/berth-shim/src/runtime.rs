//! The container runtime, as runc-compatible commands: the shim runs `berth-runtime`
//! (or any runtime with runc's command line) for create, start, exec, kill, pause,
//! resume and delete, as containerd's shim runs runc. The shim itself never links the
//! runtime, so it stays small: its memory is what `bench/density.sh` counts per
//! container. Processes the runtime creates are reparented to the shim, a subreaper,
//! when the runtime command exits.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::fdio;

/// How long a runtime may take to create a container.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The runtime is berth-runtime, which can keep `create` waiting on a control
    /// socket and start the container itself: no second process for `start`.
    pub control: bool,
}

/// A `create` that waits on its control socket for `start` (berth-runtime only).
pub struct Starter {
    control: UnixStream,
    child: Child,
}

impl Starter {
    /// Asks the waiting runtime to start the container; returns once it has.
    pub fn start(self) -> anyhow::Result<()> {
        let mut control = self.control;
        control.set_read_timeout(Some(CREATE_TIMEOUT))?;
        control
            .write_all(b"start\n")
            .context("write to the runtime")?;
        let mut line = String::new();
        BufReader::new(&control)
            .read_line(&mut line)
            .context("read the runtime's answer")?;
        // The runtime exits now; the reaper collects it.
        drop(self.child);
        match line.trim_end() {
            "started" => Ok(()),
            "" => bail!("the runtime exited without starting the container"),
            other => bail!("{}", other.strip_prefix("error: ").unwrap_or(other)),
        }
    }
}

/// What `create_init` gives: the init's pid, the shim's stdio ends, and the waiting
/// runtime when there is one.
pub struct Created {
    pub pid: i32,
    pub io: ProcessIo,
    pub starter: Option<Starter>,
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
        Err(self.failure(what, status))
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
    /// socket; returns the process's pid (from `pid_file`), the shim's ends and, with
    /// a `control` socket, the runtime left waiting for `start`.
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
        control: bool,
        what: &str,
    ) -> anyhow::Result<(i32, ProcessIo, Option<Starter>)> {
        let _ = std::fs::remove_file(pid_file);
        // Pipes even with a terminal: the runtime needs real stdio of its own.
        let (io, child) = pipes(open_stdin)?;
        cmd.stdin(Stdio::from(child.stdin))
            .stdout(Stdio::from(child.stdout))
            .stderr(Stdio::from(child.stderr));
        let control = if control {
            let (ours, theirs) = fdio::control_pair().context("control socket")?;
            cmd.arg("--control-fd").arg(theirs.as_raw_fd().to_string());
            Some((ours, theirs))
        } else {
            None
        };
        let listener = if terminal {
            cmd.arg("--console-socket").arg(console_socket);
            Some(console_listener(console_socket)?)
        } else {
            None
        };
        cmd.arg(id);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("run {}", self.binary.display()))?;
        // The runtime's end now lives in the runtime only.
        let control = control.map(|(ours, _theirs)| ours);
        let io = match listener {
            // Take the terminal while the runtime is still setting the process up, and
            // size it at once: the process may ask for its size as soon as it runs.
            Some(listener) => {
                let taken = loop {
                    match listener.accept() {
                        Ok((stream, _)) => break Some(stream),
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(err) => return Err(err).context("accept the terminal"),
                    }
                    let done = match &control {
                        Some(control) => fdio::readable_now(control)?,
                        None => child.try_wait()?.is_some(),
                    };
                    if done {
                        // It may have connected just before it finished.
                        break listener.accept().ok().map(|(stream, _)| stream);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                };
                taken
                    .map(|stream| receive_terminal(stream, console_socket, size))
                    .transpose()?
            }
            None => Some(io),
        };
        let starter = match control {
            Some(control) => {
                control.set_read_timeout(Some(CREATE_TIMEOUT))?;
                let mut line = String::new();
                let _ = BufReader::new(&control).read_line(&mut line);
                if line.trim_end() != "created" {
                    let status = child.wait()?;
                    return Err(self.failure(what, status));
                }
                control.set_read_timeout(None)?;
                Some(Starter { control, child })
            }
            None => {
                let status = child.wait()?;
                if !status.success() {
                    return Err(self.failure(what, status));
                }
                None
            }
        };
        let io = io.context("the runtime did not connect to the console socket")?;
        Ok((Self::read_pid(pid_file)?, io, starter))
    }

    /// The runtime's logged error, else its exit status.
    fn failure(&self, what: &str, status: std::process::ExitStatus) -> anyhow::Error {
        match self.last_error() {
            Some(message) => anyhow::anyhow!("{message}"),
            None => anyhow::anyhow!("{what}: the runtime exited with {status}"),
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
    ) -> anyhow::Result<Created> {
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
            self.control,
            "create",
        )
        .map(|(pid, io, starter)| Created { pid, io, starter })
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
        let result = self
            .spawn_process(
                cmd,
                id,
                &pid_file,
                terminal,
                console_socket,
                open_stdin,
                size,
                false,
                "exec",
            )
            .map(|(pid, io, _)| (pid, io));
        let _ = std::fs::remove_file(&pid_file);
        result.map_err(|e| anyhow::anyhow!("OCI runtime exec failed: {e:#}"))
    }

    /// Removes the runtime's container `id` once its init has exited. For berth-runtime
    /// this is done here, as `berth-runtime delete` does it for a stopped container
    /// without hooks (berthd never sets any): the cgroup directories and the state
    /// directory go, and no runtime process is started on the way to reporting the exit.
    pub fn delete_exited(&self, id: &str, cgroups_path: &str) -> anyhow::Result<()> {
        if !self.control || cgroups_path.is_empty() {
            return self.operate(id, Operation::Delete);
        }
        berth_runtime::cgroupfs::CgroupDirs::locate(Path::new(cgroups_path))?.remove()?;
        match std::fs::remove_dir_all(self.root.join(id)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err).with_context(|| format!("remove the runtime state of {id}")),
        }
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
