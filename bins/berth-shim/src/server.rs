//! The shim's event loop (one thread, tokio's current-thread runtime): the container's
//! output into the json-file log and attached clients, and one task per connection.
//!
//! What the container is lives behind [`Backend`]: a process created by an OCI runtime
//! ([`crate::process`]), or a micro-VM talking through its guest link ([`crate::vm`]).
//! Attach, wait, the log, the exit status and the exec streams are the same for both.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use berth_shim::protocol::{AttachRequest, ExecRequest, ExitStatus, Request, Response, ShimState};
use berth_shim::{Frame, StateDir, StreamKind};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::fdio::AsyncFdIo;
use crate::json_log::{JsonLog, Stream};
use crate::process::RuntimeBackend;
use crate::vm::{GuestInput, VmBackend};

/// How long output may keep flowing after the process it belongs to has exited (a
/// grandchild can hold the pipe open).
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

pub struct Config {
    pub id: String,
    pub state: StateDir,
    pub cgroupfs: PathBuf,
    pub cgroups_path: String,
}

/// What runs the container (one per shim: the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Runtime(RuntimeBackend),
    Vm(VmBackend),
}

/// Where a client's input goes: a pipe or terminal, or a process in the guest.
pub enum Input {
    Fd(Rc<AsyncFdIo>),
    Guest(GuestInput),
}

impl Input {
    pub async fn write_all(&self, data: &[u8]) -> io::Result<()> {
        match self {
            Input::Fd(fd) => fd.write_all(data).await,
            Input::Guest(guest) => guest.write(data),
        }
    }

    /// Ends the input (a pipe closes when the last reference goes).
    pub fn close(&self) {
        if let Input::Guest(guest) = self {
            guest.close();
        }
    }
}

/// A started exec: its output frames, its exit code, its input.
pub struct ExecStream {
    pub pid: i32,
    pub frames: mpsc::UnboundedReceiver<Frame>,
    pub done: oneshot::Receiver<i32>,
    pub stdin: Option<Input>,
}

struct Subscriber {
    tx: mpsc::UnboundedSender<Frame>,
    stdout: bool,
    stderr: bool,
}

pub struct Shim {
    pub config: Config,
    pub backend: Backend,
    pub started: Cell<bool>,
    pub paused: Cell<bool>,
    pub stdin: Rc<RefCell<Option<Rc<Input>>>>,
    subscribers: RefCell<Vec<Subscriber>>,
    log: RefCell<JsonLog>,
    /// The container's exit code, once known.
    pub init_status: Cell<Option<i32>>,
    /// Why the container ended, when it was not its process's own doing.
    pub exit_error: RefCell<Option<String>>,
    /// Output streams still open.
    pub outputs_open: Cell<u32>,
    pub changed: Notify,
    exit: watch::Sender<Option<ExitStatus>>,
    connections: Cell<u32>,
}

impl Shim {
    pub fn new(config: Config, backend: Backend, log: JsonLog) -> Rc<Shim> {
        Rc::new(Shim {
            config,
            backend,
            started: Cell::new(false),
            paused: Cell::new(false),
            stdin: Rc::new(RefCell::new(None)),
            subscribers: RefCell::new(Vec::new()),
            log: RefCell::new(log),
            init_status: Cell::new(None),
            exit_error: RefCell::new(None),
            outputs_open: Cell::new(0),
            changed: Notify::new(),
            exit: watch::channel(None).0,
            connections: Cell::new(0),
        })
    }

    fn exited(&self) -> Option<ExitStatus> {
        self.exit.borrow().clone()
    }

    /// The container is up and has not exited.
    pub fn running(&self) -> bool {
        self.exited().is_none() && self.init_status.get().is_none()
    }

    /// Records the container's exit code (the first one wins).
    pub fn set_exit(&self, code: i32) {
        if self.init_status.get().is_none() {
            self.init_status.set(Some(code));
            self.changed.notify_waiters();
        }
    }

    /// Output of the container: into the log and to every attached client that wants it.
    pub fn publish(&self, stream: Stream, data: &[u8]) {
        if let Err(err) = self.log.borrow_mut().write(stream, data) {
            tracing::warn!("write log: {err}");
        }
        let kind = match stream {
            Stream::Stdout => StreamKind::Stdout,
            Stream::Stderr => StreamKind::Stderr,
        };
        let frame = Frame::new(kind, Bytes::copy_from_slice(data));
        self.subscribers.borrow_mut().retain(|sub| {
            let wanted = match stream {
                Stream::Stdout => sub.stdout,
                Stream::Stderr => sub.stderr,
            };
            !wanted || sub.tx.send(frame.clone()).is_ok()
        });
    }

    /// An output stream of the container ended.
    pub fn output_closed(&self, stream: Stream) {
        let _ = self.log.borrow_mut().flush_partial(stream);
        self.outputs_open
            .set(self.outputs_open.get().saturating_sub(1));
        self.changed.notify_waiters();
    }
}

/// Runs until the container has exited, its status is recorded, and the clients
/// waiting for it have been told (or a short grace period has passed). The backend's
/// tasks (output pumps, reaper, guest link) are spawned by `start_tasks`.
pub async fn run(
    shim: Rc<Shim>,
    start_tasks: impl FnOnce(&Rc<Shim>) -> anyhow::Result<()>,
    listener: std::os::unix::net::UnixListener,
) -> anyhow::Result<()> {
    start_tasks(&shim)?;
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

/// Waits for the container to exit and its output to drain, cleans up after it, then
/// records the exit.
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
    let oom = match &shim.backend {
        Backend::Runtime(runtime) => runtime.finish(&shim.config),
        Backend::Vm(vm) => vm.finish(&shim.config).await,
    };
    let mut status = ExitStatus::now(code, oom);
    status.error = shim.exit_error.borrow().clone();
    if let Err(err) = shim.config.state.write_exit(&status) {
        tracing::error!("write the exit status: {err}");
    }
    tracing::info!(code, oom, "container exited");
    shim.exit.send_replace(Some(status));
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
        Request::Start => {
            let response = match start(shim).await {
                Ok(()) => Response::Ok,
                Err(err) => Response::Error {
                    message: format!("{err:#}"),
                },
            };
            respond(&mut write, &response).await
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

async fn start(shim: &Rc<Shim>) -> anyhow::Result<()> {
    anyhow::ensure!(!shim.started.get(), "container already started");
    match &shim.backend {
        Backend::Runtime(runtime) => runtime.start()?,
        Backend::Vm(vm) => vm.start(shim).await?,
    }
    shim.started.set(true);
    Ok(())
}

/// The requests answered at once.
fn handle(shim: &Rc<Shim>, request: Request) -> anyhow::Result<Response> {
    let running = shim.running();
    match request {
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
            let pid = match &shim.backend {
                Backend::Runtime(runtime) => runtime.init_pid,
                Backend::Vm(vm) => vm.pid(),
            };
            Ok(Response::State(ShimState {
                pid,
                status: status.into(),
            }))
        }
        Request::Kill { signal, all } => {
            anyhow::ensure!(running, "container is not running");
            match &shim.backend {
                Backend::Runtime(runtime) => runtime.kill(signal, all)?,
                Backend::Vm(vm) => vm.kill(shim, signal, all),
            }
            Ok(Response::Ok)
        }
        Request::Resize {
            exec_id,
            height,
            width,
        } => {
            match &shim.backend {
                Backend::Runtime(runtime) => runtime.resize(exec_id.as_deref(), height, width)?,
                Backend::Vm(vm) => vm.resize(exec_id.as_deref(), height, width)?,
            }
            Ok(Response::Ok)
        }
        Request::Pause | Request::Resume => {
            anyhow::ensure!(running, "container is not running");
            let pause = matches!(request, Request::Pause);
            match &shim.backend {
                Backend::Runtime(runtime) => runtime.pause(pause)?,
                Backend::Vm(vm) => vm.pause(pause)?,
            }
            shim.paused.set(pause);
            Ok(Response::Ok)
        }
        Request::Start | Request::Wait | Request::Attach(_) | Request::Exec(_) => {
            unreachable!("served by serve()")
        }
    }
}

/// SIGCHLD as a stream, for a backend's reaper; `None` (logged) if it cannot be had.
pub fn child_signals() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()) {
        Ok(signals) => Some(signals),
        Err(err) => {
            tracing::error!("cannot watch SIGCHLD: {err}");
            None
        }
    }
}

/// Copies a client's stdin into a process's input; closes it at the client's end of
/// file when asked to.
async fn pump_stdin(
    mut reader: BufReader<OwnedReadHalf>,
    input: Rc<RefCell<Option<Rc<Input>>>>,
    close_at_eof: bool,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let target = input.borrow().clone();
        let Some(target) = target else { break };
        if target.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if close_at_eof && let Some(input) = input.borrow_mut().take() {
        input.close();
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
    let started = async {
        anyhow::ensure!(shim.running(), "container is not running");
        anyhow::ensure!(
            !shim.paused.get(),
            "container is paused, unpause the container before exec"
        );
        match &shim.backend {
            Backend::Runtime(runtime) => runtime.start_exec(&shim.config, &req),
            Backend::Vm(vm) => vm.start_exec(&req).await,
        }
    };
    match started.await {
        Err(err) => {
            let message = format!("{err:#}");
            respond(&mut write, &Response::Error { message }).await
        }
        Ok(stream) => {
            respond(&mut write, &Response::ExecStarted { pid: stream.pid }).await?;
            let result = stream_exec(stream, reader, &mut write).await;
            match &shim.backend {
                Backend::Runtime(runtime) => runtime.forget_exec(&req.exec_id),
                Backend::Vm(vm) => vm.forget_exec(&req.exec_id),
            }
            result
        }
    }
}

/// An exec's frames to its client until it has exited and its output is drained (or
/// the drain is overdue), then its exit status.
async fn stream_exec(
    stream: ExecStream,
    reader: BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
) -> anyhow::Result<()> {
    if let Some(input) = stream.stdin {
        let slot = Rc::new(RefCell::new(Some(Rc::new(input))));
        tokio::task::spawn_local(pump_stdin(reader, slot, true));
    }
    let (mut rx, mut done) = (stream.frames, stream.done);
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

/// Reads a pipe or terminal into frames of `kind` on `tx` until it ends.
pub async fn frames_from(fd: Rc<AsyncFdIo>, kind: StreamKind, tx: mpsc::UnboundedSender<Frame>) {
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
}

/// The container's pipe or terminal into [`Shim::publish`] until it ends.
pub async fn pump_output(shim: Rc<Shim>, fd: Rc<AsyncFdIo>, stream: Stream) {
    let mut buf = vec![0u8; Frame::MAX_PAYLOAD];
    loop {
        match fd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => shim.publish(stream, &buf[..n]),
            Err(err) => {
                tracing::warn!(?stream, "read output: {err}");
                break;
            }
        }
    }
    shim.output_closed(stream);
}
