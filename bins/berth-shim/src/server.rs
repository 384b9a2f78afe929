//! The shim's event loop (one thread, tokio's current-thread runtime): output pumps into
//! the json-file log and attached clients, the reaper, and one task per connection.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Context;
use berth_shim::protocol::{AttachRequest, ExecRequest, ExitStatus, Request, Response, ShimState};
use berth_shim::{Frame, StateDir, StreamKind};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::fdio::{self, AsyncFdIo};
use crate::json_log::{JsonLog, Stream};
use crate::runtime::{self, Operation, ProcessIo};

/// How long output may keep flowing after the process it belongs to has exited (a
/// grandchild can hold the pipe open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

pub struct Config {
    pub id: String,
    pub runtime: runtime::Runtime,
    /// The runtime still waiting to start the container, when it can.
    pub starter: RefCell<Option<runtime::Starter>>,
    pub state: StateDir,
    pub cgroupfs: PathBuf,
    pub cgroups_path: String,
}

struct Subscriber {
    tx: mpsc::UnboundedSender<Frame>,
    stdout: bool,
    stderr: bool,
}

pub struct Shim {
    config: Config,
    init_pid: i32,
    started: Cell<bool>,
    paused: Cell<bool>,
    stdin: Rc<RefCell<Option<Rc<AsyncFdIo>>>>,
    terminal: Option<Rc<AsyncFdIo>>,
    subscribers: RefCell<Vec<Subscriber>>,
    log: RefCell<JsonLog>,
    init_status: Cell<Option<i32>>,
    outputs_open: Cell<u32>,
    changed: Notify,
    exit: watch::Sender<Option<ExitStatus>>,
    execs: RefCell<HashMap<i32, oneshot::Sender<i32>>>,
    exec_terminals: RefCell<HashMap<String, Rc<AsyncFdIo>>>,
    exec_counter: Cell<u32>,
    connections: Cell<u32>,
}

impl Shim {
    pub fn new(config: Config, init_pid: i32, log: JsonLog) -> Rc<Shim> {
        Rc::new(Shim {
            config,
            init_pid,
            started: Cell::new(false),
            paused: Cell::new(false),
            stdin: Rc::new(RefCell::new(None)),
            terminal: None,
            subscribers: RefCell::new(Vec::new()),
            log: RefCell::new(log),
            init_status: Cell::new(None),
            outputs_open: Cell::new(0),
            changed: Notify::new(),
            exit: watch::channel(None).0,
            execs: RefCell::new(HashMap::new()),
            exec_terminals: RefCell::new(HashMap::new()),
            exec_counter: Cell::new(0),
            connections: Cell::new(0),
        })
    }

    fn operate(&self, op: Operation) -> anyhow::Result<()> {
        // A runtime still waiting to start the container does so itself; for anything
        // else it is let go first (it exits, leaving the container created).
        let starter = self.config.starter.borrow_mut().take();
        match (op, starter) {
            (Operation::Start, Some(starter)) => starter.start(),
            _ => self.config.runtime.operate(&self.config.id, op),
        }
    }

    fn exited(&self) -> Option<ExitStatus> {
        self.exit.borrow().clone()
    }
}

/// Runs until the container has exited, its status is recorded, and the clients
/// waiting for it have been told (or a short grace period has passed).
pub async fn run(
    config: Config,
    init_pid: i32,
    io: ProcessIo,
    log: JsonLog,
    listener: std::os::unix::net::UnixListener,
) -> anyhow::Result<()> {
    let mut shim = Shim::new(config, init_pid, log);
    let stdout = Rc::new(AsyncFdIo::new(io.stdout)?);
    {
        let shim_mut = Rc::get_mut(&mut shim).expect("no other references yet");
        if io.terminal {
            shim_mut.terminal = Some(stdout.clone());
        }
        if let Some(stdin) = io.stdin {
            *shim_mut.stdin.borrow_mut() = Some(Rc::new(AsyncFdIo::new(stdin)?));
        }
    }
    let mut pumps = vec![(stdout, Stream::Stdout)];
    if let Some(stderr) = io.stderr {
        pumps.push((Rc::new(AsyncFdIo::new(stderr)?), Stream::Stderr));
    }
    for (fd, stream) in pumps {
        shim.outputs_open.set(shim.outputs_open.get() + 1);
        tokio::task::spawn_local(pump_output(shim.clone(), fd, stream));
    }
    tokio::task::spawn_local(reaper(shim.clone()));
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    let accept = tokio::task::spawn_local(accept_loop(shim.clone(), listener));
    supervise(&shim).await;
    // Let the clients that were waiting read the outcome.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while shim.connections.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    accept.abort();
    Ok(())
}

async fn accept_loop(shim: Rc<Shim>, listener: tokio::net::UnixListener) {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                shim.connections.set(shim.connections.get() + 1);
                let shim = shim.clone();
                tokio::task::spawn_local(async move {
                    if let Err(err) = serve(&shim, conn).await {
                        tracing::debug!("connection: {err:#}");
                    }
                    shim.connections.set(shim.connections.get() - 1);
                });
            }
            Err(err) => {
                tracing::warn!("accept: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits for the init to exit and its output to drain, then records the exit.
async fn supervise(shim: &Rc<Shim>) {
    let code = loop {
        let notified = shim.changed.notified();
        if let Some(code) = shim.init_status.get() {
            break code;
        }
        notified.await;
    };
    let drained = async {
        loop {
            let notified = shim.changed.notified();
            if shim.outputs_open.get() == 0 {
                return;
            }
            notified.await;
        }
    };
    if tokio::time::timeout(DRAIN_AFTER_EXIT, drained)
        .await
        .is_err()
    {
        tracing::warn!("output still open {DRAIN_AFTER_EXIT:?} after the container exited");
    }
    let oom = crate::oom::oom_killed(&shim.config.cgroupfs, &shim.config.cgroups_path);
    shim.config.starter.borrow_mut().take();
    if let Err(err) = shim
        .config
        .runtime
        .delete_exited(&shim.config.id, &shim.config.cgroups_path)
    {
        tracing::warn!("delete the runtime's container: {err:#}");
    }
    let status = ExitStatus::now(code, oom);
    if let Err(err) = shim.config.state.write_exit(&status) {
        tracing::error!("write the exit status: {err}");
    }
    tracing::info!(code, oom, "container exited");
    shim.exit.send_replace(Some(status));
}

async fn pump_output(shim: Rc<Shim>, fd: Rc<AsyncFdIo>, stream: Stream) {
    let kind = match stream {
        Stream::Stdout => StreamKind::Stdout,
        Stream::Stderr => StreamKind::Stderr,
    };
    let mut buf = vec![0u8; Frame::MAX_PAYLOAD];
    loop {
        let n = match fd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(?stream, "read output: {err}");
                break;
            }
        };
        let data = &buf[..n];
        if let Err(err) = shim.log.borrow_mut().write(stream, data) {
            tracing::warn!("write log: {err}");
        }
        let frame = Frame::new(kind, Bytes::copy_from_slice(data));
        shim.subscribers.borrow_mut().retain(|sub| {
            let wanted = match stream {
                Stream::Stdout => sub.stdout,
                Stream::Stderr => sub.stderr,
            };
            !wanted || sub.tx.send(frame.clone()).is_ok()
        });
    }
    let _ = shim.log.borrow_mut().flush_partial(stream);
    shim.outputs_open.set(shim.outputs_open.get() - 1);
    shim.changed.notify_waiters();
}

/// Reaps every child; the init's status and exec'd processes' statuses go where they
/// are awaited.
async fn reaper(shim: Rc<Shim>) {
    let mut signals = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()) {
        Ok(signals) => signals,
        Err(err) => {
            tracing::error!("cannot watch SIGCHLD: {err}");
            return;
        }
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
            if pid == shim.init_pid {
                shim.init_status.set(Some(code));
                shim.changed.notify_waiters();
            } else if let Some(done) = shim.execs.borrow_mut().remove(&pid) {
                let _ = done.send(code);
            }
        }
        if signals.recv().await.is_none() {
            return;
        }
    }
}

async fn serve(shim: &Rc<Shim>, conn: UnixStream) -> anyhow::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(());
    }
    let request: Request = match serde_json::from_str(&line) {
        Ok(request) => request,
        Err(err) => {
            let message = format!("bad request: {err}");
            return respond(&mut write, &Response::Error { message }).await;
        }
    };
    match request {
        Request::Attach(req) => attach(shim, req, reader, write).await,
        Request::Exec(req) => exec(shim, req, reader, write).await,
        Request::Wait => {
            let mut rx = shim.exit.subscribe();
            let status = loop {
                if let Some(status) = rx.borrow_and_update().clone() {
                    break status;
                }
                rx.changed().await?;
            };
            respond(&mut write, &Response::Exited(status)).await
        }
        other => {
            let response = match handle(shim, other) {
                Ok(response) => response,
                Err(err) => Response::Error {
                    message: format!("{err:#}"),
                },
            };
            respond(&mut write, &response).await
        }
    }
}

async fn respond(write: &mut OwnedWriteHalf, response: &Response) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(response)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    Ok(())
}

/// The requests answered at once.
fn handle(shim: &Rc<Shim>, request: Request) -> anyhow::Result<Response> {
    let running = shim.exited().is_none() && shim.init_status.get().is_none();
    match request {
        Request::Start => {
            anyhow::ensure!(!shim.started.get(), "container already started");
            shim.operate(Operation::Start).context("start container")?;
            shim.started.set(true);
            Ok(Response::Ok)
        }
        Request::State => {
            let status = if !running {
                "stopped"
            } else if shim.paused.get() {
                "paused"
            } else if shim.started.get() {
                "running"
            } else {
                "created"
            };
            Ok(Response::State(ShimState {
                pid: shim.init_pid,
                status: status.into(),
            }))
        }
        Request::Kill { signal, all } => {
            anyhow::ensure!(running, "container is not running");
            if all {
                shim.operate(Operation::KillAll(signal)).context("kill")?;
            } else {
                // SAFETY: plain syscall; the init is our child and not yet reaped, so
                // the pid cannot have been reused.
                if unsafe { libc::kill(shim.init_pid, signal) } != 0 {
                    let err = std::io::Error::last_os_error();
                    anyhow::bail!("kill: {err}");
                }
            }
            Ok(Response::Ok)
        }
        Request::Resize {
            exec_id,
            height,
            width,
        } => {
            let terminal = match &exec_id {
                None => shim.terminal.clone(),
                Some(id) => shim.exec_terminals.borrow().get(id).cloned(),
            };
            let terminal =
                terminal.ok_or_else(|| anyhow::anyhow!("the process has no terminal"))?;
            fdio::resize(terminal.raw(), height, width)?;
            Ok(Response::Ok)
        }
        Request::Pause => {
            anyhow::ensure!(running, "container is not running");
            shim.operate(Operation::Pause).context("pause")?;
            shim.paused.set(true);
            Ok(Response::Ok)
        }
        Request::Resume => {
            anyhow::ensure!(running, "container is not running");
            shim.operate(Operation::Resume).context("resume")?;
            shim.paused.set(false);
            Ok(Response::Ok)
        }
        Request::Wait | Request::Attach(_) | Request::Exec(_) => {
            unreachable!("streaming requests are served by serve()")
        }
    }
}

/// Copies a client's stdin into a process's stdin; closes it at the client's end of
/// file when asked to.
async fn pump_stdin(
    mut reader: BufReader<OwnedReadHalf>,
    stdin: Rc<RefCell<Option<Rc<AsyncFdIo>>>>,
    close_at_eof: bool,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let target = stdin.borrow().clone();
        let Some(target) = target else { break };
        if target.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if close_at_eof {
        stdin.borrow_mut().take();
    }
}

async fn attach(
    shim: &Rc<Shim>,
    req: AttachRequest,
    reader: BufReader<OwnedReadHalf>,
    mut write: OwnedWriteHalf,
) -> anyhow::Result<()> {
    respond(&mut write, &Response::Ok).await?;
    if let Some(status) = shim.exited() {
        write.write_all(&Frame::exit(&status).encode()).await?;
        return Ok(());
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    shim.subscribers.borrow_mut().push(Subscriber {
        tx,
        stdout: req.stdout,
        stderr: req.stderr,
    });
    if req.stdin {
        // Every attached client feeds the one stdin of the container.
        tokio::task::spawn_local(pump_stdin(reader, shim.stdin.clone(), req.close_stdin));
    }
    let mut exit_rx = shim.exit.subscribe();
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(frame) => write.write_all(&frame.encode()).await?,
                None => return Ok(()),
            },
            changed = exit_rx.changed() => {
                while let Ok(frame) = rx.try_recv() {
                    write.write_all(&frame.encode()).await?;
                }
                if changed.is_ok()
                    && let Some(status) = exit_rx.borrow().clone()
                {
                    write.write_all(&Frame::exit(&status).encode()).await?;
                }
                let _ = write.shutdown().await;
                return Ok(());
            }
        }
    }
}

async fn exec(
    shim: &Rc<Shim>,
    req: ExecRequest,
    reader: BufReader<OwnedReadHalf>,
    mut write: OwnedWriteHalf,
) -> anyhow::Result<()> {
    match start_exec(shim, &req) {
        Err(err) => {
            let message = format!("{err:#}");
            respond(&mut write, &Response::Error { message }).await
        }
        Ok((pid, io, done)) => {
            respond(&mut write, &Response::ExecStarted { pid }).await?;
            let result = stream_exec(shim, &req, io, done, reader, &mut write).await;
            shim.exec_terminals.borrow_mut().remove(&req.exec_id);
            result
        }
    }
}

fn start_exec(
    shim: &Rc<Shim>,
    req: &ExecRequest,
) -> anyhow::Result<(i32, ProcessIo, oneshot::Receiver<i32>)> {
    anyhow::ensure!(
        shim.exited().is_none() && shim.init_status.get().is_none(),
        "container is not running"
    );
    anyhow::ensure!(
        !shim.paused.get(),
        "container is paused, unpause the container before exec"
    );
    let n = shim.exec_counter.get() + 1;
    shim.exec_counter.set(n);
    let dir = shim.config.state.path();
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
    let created = shim.config.runtime.create_exec(
        &shim.config.id,
        &process_file,
        terminal,
        &console,
        req.stdin,
        size,
    );
    let _ = std::fs::remove_file(&process_file);
    let (pid, io) = created?;
    // Registered before the next await, so the reaper cannot miss the exit.
    let (done_tx, done_rx) = oneshot::channel();
    shim.execs.borrow_mut().insert(pid, done_tx);
    Ok((pid, io, done_rx))
}

async fn stream_exec(
    shim: &Rc<Shim>,
    req: &ExecRequest,
    io: ProcessIo,
    done: oneshot::Receiver<i32>,
    reader: BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
) -> anyhow::Result<()> {
    let stdout = Rc::new(AsyncFdIo::new(io.stdout)?);
    if io.terminal {
        shim.exec_terminals
            .borrow_mut()
            .insert(req.exec_id.clone(), stdout.clone());
    }
    if let Some(stdin) = io.stdin {
        let slot = Rc::new(RefCell::new(Some(Rc::new(AsyncFdIo::new(stdin)?))));
        tokio::task::spawn_local(pump_stdin(reader, slot, true));
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    let mut outputs = vec![(stdout, StreamKind::Stdout)];
    if let Some(stderr) = io.stderr {
        outputs.push((Rc::new(AsyncFdIo::new(stderr)?), StreamKind::Stderr));
    }
    for (fd, kind) in outputs {
        let tx = tx.clone();
        tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; Frame::MAX_PAYLOAD];
            while let Ok(n) = fd.read(&mut buf).await {
                if n == 0
                    || tx
                        .send(Frame::new(kind, Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut done = done;
    let mut code = None;
    let mut outputs_done = false;
    let mut drain_deadline = None;
    loop {
        if outputs_done && code.is_some() {
            break;
        }
        let deadline = drain_deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86400 * 365));
        tokio::select! {
            frame = rx.recv(), if !outputs_done => match frame {
                Some(frame) => write.write_all(&frame.encode()).await?,
                None => outputs_done = true,
            },
            result = &mut done, if code.is_none() => {
                code = Some(result.unwrap_or(255));
                drain_deadline = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
            }
            _ = tokio::time::sleep_until(deadline), if drain_deadline.is_some() => break,
        }
    }
    let status = ExitStatus::now(code.unwrap_or(255), false);
    write.write_all(&Frame::exit(&status).encode()).await?;
    let _ = write.shutdown().await;
    Ok(())
}
