//! The container as a process created by an OCI runtime (berth-runtime, or any runtime
//! with runc's command line): its stdio pipes or terminal, its reaping, and the runtime
//! calls for start, kill, pause, exec and delete.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::Context;
use berth_shim::StreamKind;
use berth_shim::protocol::{ExecRequest, ExitStatus};
use tokio::sync::{mpsc, oneshot};

use crate::fdio::{self, AsyncFdIo};
use crate::json_log::Stream;
use crate::runtime::{self, Operation, ProcessIo};
use crate::server::{Config, ExecStream, Input, Shim, frames_from, pump_output};

pub struct RuntimeBackend {
    /// The container's id, as the runtime knows it.
    id: String,
    pub runtime: runtime::Runtime,
    /// The runtime still waiting to start the container, when it can.
    pub starter: RefCell<Option<runtime::Starter>>,
    pub init_pid: i32,
    terminal: RefCell<Option<Rc<AsyncFdIo>>>,
    execs: Rc<RefCell<HashMap<i32, oneshot::Sender<i32>>>>,
    exec_terminals: RefCell<HashMap<String, Rc<AsyncFdIo>>>,
    exec_counter: Cell<u32>,
}

impl RuntimeBackend {
    pub fn new(
        id: &str,
        runtime: runtime::Runtime,
        starter: Option<runtime::Starter>,
        init_pid: i32,
    ) -> RuntimeBackend {
        RuntimeBackend {
            id: id.to_string(),
            runtime,
            starter: RefCell::new(starter),
            init_pid,
            terminal: RefCell::new(None),
            execs: Rc::new(RefCell::new(HashMap::new())),
            exec_terminals: RefCell::new(HashMap::new()),
            exec_counter: Cell::new(0),
        }
    }

    fn operate(&self, op: Operation) -> anyhow::Result<()> {
        // A runtime still waiting to start the container does so itself; for anything
        // else it is let go first (it exits, leaving the container created).
        let starter = self.starter.borrow_mut().take();
        match (op, starter) {
            (Operation::Start, Some(starter)) => starter.start(),
            _ => self.runtime.operate(&self.id, op),
        }
    }

    /// The tasks of a runtime container: output pumps and the reaper.
    pub fn start_tasks(shim: &Rc<Shim>, io: ProcessIo) -> anyhow::Result<()> {
        let crate::server::Backend::Runtime(this) = &shim.backend else {
            anyhow::bail!("not a runtime container");
        };
        let stdout = Rc::new(AsyncFdIo::new(io.stdout)?);
        if io.terminal {
            *this.terminal.borrow_mut() = Some(stdout.clone());
        }
        if let Some(stdin) = io.stdin {
            *shim.stdin.borrow_mut() = Some(Rc::new(Input::Fd(Rc::new(AsyncFdIo::new(stdin)?))));
        }
        let mut pumps = vec![(stdout, Stream::Stdout)];
        if let Some(stderr) = io.stderr {
            pumps.push((Rc::new(AsyncFdIo::new(stderr)?), Stream::Stderr));
        }
        for (fd, stream) in pumps {
            shim.outputs_open.set(shim.outputs_open.get() + 1);
            tokio::task::spawn_local(pump_output(shim.clone(), fd, stream));
        }
        tokio::task::spawn_local(reaper(shim.clone(), this.init_pid, this.execs.clone()));
        Ok(())
    }

    pub fn start(&self) -> anyhow::Result<()> {
        self.operate(Operation::Start).context("start container")
    }

    pub fn kill(&self, signal: i32, all: bool) -> anyhow::Result<()> {
        if all {
            return self.operate(Operation::KillAll(signal)).context("kill");
        }
        // SAFETY: plain syscall; the init is our child and not yet reaped, so the pid
        // cannot have been reused.
        if unsafe { libc::kill(self.init_pid, signal) } != 0 {
            let err = std::io::Error::last_os_error();
            anyhow::bail!("kill: {err}");
        }
        Ok(())
    }

    pub fn resize(&self, exec_id: Option<&str>, height: u16, width: u16) -> anyhow::Result<()> {
        let terminal = match exec_id {
            None => self.terminal.borrow().clone(),
            Some(id) => self.exec_terminals.borrow().get(id).cloned(),
        };
        let terminal = terminal.ok_or_else(|| anyhow::anyhow!("the process has no terminal"))?;
        fdio::resize(terminal.raw(), height, width)?;
        Ok(())
    }

    pub fn pause(&self, pause: bool) -> anyhow::Result<()> {
        let (op, what) = if pause {
            (Operation::Pause, "pause")
        } else {
            (Operation::Resume, "resume")
        };
        self.operate(op).context(what)
    }

    pub fn start_exec(&self, config: &Config, req: &ExecRequest) -> anyhow::Result<ExecStream> {
        let n = self.exec_counter.get() + 1;
        self.exec_counter.set(n);
        let dir = config.state.path();
        let process_file = dir.join(format!("exec-{n}.json"));
        std::fs::write(&process_file, serde_json::to_vec(&req.process)?)?;
        let terminal = req.process["terminal"].as_bool().unwrap_or(false);
        let console = dir.join(format!("e{n}"));
        let size = req.process["consoleSize"].as_object().and_then(|s| {
            Some((
                s.get("height")?.as_u64()? as u16,
                s.get("width")?.as_u64()? as u16,
            ))
        });
        let created = self.runtime.create_exec(
            &config.id,
            &process_file,
            terminal,
            &console,
            req.stdin,
            size,
        );
        let _ = std::fs::remove_file(&process_file);
        let (pid, io) = created?;
        // Registered before the next await, so the reaper cannot miss the exit.
        let (done_tx, done) = oneshot::channel();
        self.execs.borrow_mut().insert(pid, done_tx);
        let stdout = Rc::new(AsyncFdIo::new(io.stdout)?);
        if io.terminal {
            self.exec_terminals
                .borrow_mut()
                .insert(req.exec_id.clone(), stdout.clone());
        }
        let stdin = io
            .stdin
            .map(|fd| AsyncFdIo::new(fd).map(|fd| Input::Fd(Rc::new(fd))))
            .transpose()?;
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::task::spawn_local(frames_from(stdout, StreamKind::Stdout, tx.clone()));
        if let Some(stderr) = io.stderr {
            let stderr = Rc::new(AsyncFdIo::new(stderr)?);
            tokio::task::spawn_local(frames_from(stderr, StreamKind::Stderr, tx));
        }
        Ok(ExecStream {
            pid,
            frames,
            done,
            stdin,
        })
    }

    pub fn forget_exec(&self, exec_id: &str) {
        self.exec_terminals.borrow_mut().remove(exec_id);
    }

    /// After the exit: reads the OOM counter, then removes the runtime's container.
    /// Returns whether the OOM killer struck.
    pub fn finish(&self, config: &Config) -> bool {
        let oom = crate::oom::oom_killed(&config.cgroupfs, &config.cgroups_path);
        self.starter.borrow_mut().take();
        if let Err(err) = self.runtime.delete_exited(&config.id, &config.cgroups_path) {
            tracing::warn!("delete the runtime's container: {err:#}");
        }
        oom
    }
}

/// Reaps every child; the init's status and exec'd processes' statuses go where they
/// are awaited.
async fn reaper(
    shim: Rc<Shim>,
    init_pid: i32,
    execs: Rc<RefCell<HashMap<i32, oneshot::Sender<i32>>>>,
) {
    let Some(mut signals) = crate::server::child_signals() else {
        return;
    };
    loop {
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid place for the kernel to write the wait status.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            let code = ExitStatus::code_of_wait_status(status);
            if pid == init_pid {
                shim.set_exit(code);
            } else if let Some(done) = execs.borrow_mut().remove(&pid) {
                let _ = done.send(code);
            }
        }
        if signals.recv().await.is_none() {
            return;
        }
    }
}
