//! Micro-VM mode (`berth-shim --vm`): the container is a VM. The shim boots it from the
//! daemon's `vm.json` (a sandboxed VMM in the container's cgroup, the guest's `Hello`
//! within the boot timeout), and then serves the same protocol as for a process: the
//! guest link carries the entrypoint's stdio, signals, terminal sizes and exec'd
//! processes (see `berth_vm::protocol`), and the VMM's exit ends the container if the
//! guest never said how it ended.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_runtime::cgroupfs::{CgroupDirs, Placement};
use berth_shim::protocol::ExecRequest;
use berth_shim::vm::{VmAccel, VmSpec, VmmKind};
use berth_shim::{Frame, StateDir, StreamKind};
use berth_vm::protocol::{
    self, ContainerConfig, DiskMount, FrameDecoder, Message, ProcessConfig, TmpfsMount,
};
use berth_vm::sandbox::Sandbox;
use berth_vm::vmm::{
    Accel, Disk, Firecracker, GuestLink, QemuMicrovm, VmConfig, VmHandle, Vmm,
    firecracker_vsock_path,
};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::json_log::Stream;
use crate::server::{Backend, Config, ExecStream, Input, Shim};

/// The control socket, relative to the state directory (the shim's working directory).
const CONTROL_SOCKET: &str = "vm.sock";
/// The guest's serial console.
pub const CONSOLE_LOG: &str = "console.log";
/// How long a process may take to start in the guest.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// After a SIGKILL, how long the guest has to report the exit before the VM is killed.
const KILL_GRACE: Duration = Duration::from_secs(3);
/// After the guest's `Exit`, how long the VMM has to power off.
const POWER_OFF: Duration = Duration::from_secs(10);
/// The VMM's own memory on top of the guest's, in the cgroup's limit.
const VMM_OVERHEAD: u64 = 256 << 20;

/// A VM that booted and said hello.
pub struct Booted {
    pub vm: VmHandle,
    pub link: UnixStream,
    pub cgroup: CgroupDirs,
}

/// Boots the VM of `spec`; on failure nothing of it is left running (the cgroup is
/// removed by the caller through [`cleanup_failed`]).
pub fn boot(spec: &VmSpec, state: &StateDir) -> anyhow::Result<Booted> {
    let cgroup = CgroupDirs::locate(Path::new(&spec.cgroup)).context("locate the cgroup")?;
    let placement = cgroup.create().context("create the cgroup")?;
    set_memory_limit(&cgroup, spec.memory_mb)?;
    let procs = match &placement {
        Placement::V1 { tasks } => tasks.clone(),
        Placement::V2 { procs, .. } => vec![procs.clone()],
    };

    let root = if spec.root_is_qcow2 {
        Disk::qcow2(&spec.root_disk)
    } else {
        Disk::raw(&spec.root_disk)
    };
    let mut cfg = VmConfig::new(
        &spec.kernel,
        &spec.initramfs,
        root,
        CONTROL_SOCKET,
        CONSOLE_LOG,
    );
    cfg.vcpus = spec.vcpus.max(1);
    cfg.memory_mb = spec.memory_mb;
    if spec.guest_debug {
        cfg.cmdline_extra.push("berth.debug".into());
    }
    for d in &spec.disks {
        cfg.extra_disks.push(Disk {
            read_only: d.read_only,
            ..Disk::raw(&d.path)
        });
    }
    let mut keep: Vec<PathBuf> = vec![spec.kernel.clone(), spec.initramfs.clone()];
    keep.push(spec.root_disk.clone());
    keep.extend(spec.root_backing.clone());
    keep.extend(spec.disks.iter().map(|d| d.path.clone()));
    let sandbox = Sandbox {
        hide: spec.sandbox_hide.clone(),
        keep,
        cgroup_procs: procs,
        new_network: true,
    }
    .prepare()
    .context("prepare the VMM's sandbox")?;

    let listen_on = match spec.vmm {
        VmmKind::Qemu => PathBuf::from(CONTROL_SOCKET),
        VmmKind::Firecracker => {
            firecracker_vsock_path(Path::new(CONTROL_SOCKET), protocol::VSOCK_PORT)
        }
    };
    let _ = std::fs::remove_file(&listen_on);
    let listener =
        UnixListener::bind(&listen_on).with_context(|| format!("bind {}", listen_on.display()))?;
    let vmm: Box<dyn Vmm> = match spec.vmm {
        VmmKind::Qemu => {
            let accel = match spec.accel {
                Some(VmAccel::Kvm) => Accel::Kvm,
                Some(VmAccel::Tcg) => Accel::Tcg,
                None => Accel::detect(),
            };
            Box::new(QemuMicrovm::new(&spec.vmm_binary, accel))
        }
        VmmKind::Firecracker => Box::new(Firecracker::new(&spec.vmm_binary)),
    };
    // The VMM is the first process of its own pid namespace.
    Sandbox::enter_pid_namespace().context("new pid namespace")?;
    let mut vm = vmm
        .spawn(&cfg, state.path(), Some(Arc::new(sandbox)))
        .with_context(|| format!("start {}", vmm.name()))?;
    let timeout = Duration::from_secs(spec.boot_timeout_secs.max(1));
    match GuestLink::accept(&listener, &mut vm, timeout) {
        Ok(link) => Ok(Booted {
            vm,
            link: link.into_stream(),
            cgroup,
        }),
        Err(err) => {
            let _ = vm.kill();
            bail!(
                "the VM did not boot: {err}{}",
                boot_diagnostics(state.path())
            );
        }
    }
}

/// What the VMM and the guest's console said, for a boot that failed: a kernel panic's
/// own line when there is one, else the last lines of each log.
fn boot_diagnostics(dir: &Path) -> String {
    let console = std::fs::read_to_string(dir.join(CONSOLE_LOG)).unwrap_or_default();
    if let Some(panic) = kernel_panic(&console) {
        return format!("; the guest kernel panicked: {panic}");
    }
    let mut out = String::new();
    for (file, what) in [("qemu.log", "qemu"), ("firecracker.log", "firecracker")] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        out.push_str(&log_tail(what, &text));
    }
    out.push_str(&log_tail("console", &console));
    out
}

fn log_tail(what: &str, text: &str) -> String {
    let tail: Vec<&str> = text.lines().rev().take(8).collect();
    if tail.is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = tail.into_iter().rev().collect();
    format!("; {what}: {}", lines.join(" | "))
}

/// The "Kernel panic - not syncing: …" line of a console log, without its timestamp.
fn kernel_panic(console: &str) -> Option<&str> {
    console
        .lines()
        .find_map(|l| l.find("Kernel panic").map(|at| l[at..].trim_end()))
}

/// Removes what a failed boot left.
pub fn cleanup_failed(spec: &VmSpec) {
    if let Ok(dirs) = CgroupDirs::locate(Path::new(&spec.cgroup)) {
        let _ = dirs.remove();
    }
}

/// The guest's memory plus the VMM's overhead, as the cgroup's limit.
fn set_memory_limit(cgroup: &CgroupDirs, memory_mb: u32) -> anyhow::Result<()> {
    let bytes = u64::from(memory_mb) * (1 << 20) + VMM_OVERHEAD;
    match cgroup {
        CgroupDirs::V1(dirs) => {
            for (controller, dir) in dirs {
                if controller == "memory" {
                    let file = dir.join("memory.limit_in_bytes");
                    std::fs::write(&file, bytes.to_string())
                        .with_context(|| format!("write {}", file.display()))?;
                }
            }
        }
        CgroupDirs::V2 { dir, .. } => {
            let file = dir.join("memory.max");
            if file.exists() {
                std::fs::write(&file, bytes.to_string())
                    .with_context(|| format!("write {}", file.display()))?;
            }
        }
    }
    Ok(())
}

/// The guest's `Config` for `spec`.
pub fn guest_config(spec: &VmSpec) -> ContainerConfig {
    let p = &spec.process;
    ContainerConfig {
        process: ProcessConfig {
            args: p.args.clone(),
            env: p.env.clone(),
            cwd: p.cwd.clone(),
            user: p.user.clone(),
            tty: p.tty,
        },
        hostname: spec.hostname.clone(),
        hosts: spec.hosts.clone(),
        resolv_conf: spec.resolv_conf.clone(),
        network: None,
        tmpfs: spec
            .tmpfs
            .iter()
            .map(|(path, options)| TmpfsMount {
                path: path.clone(),
                options: options.clone(),
            })
            .collect(),
        disks: spec
            .disks
            .iter()
            .enumerate()
            .map(|(i, d)| DiskMount {
                // The root is vda; the extra disks follow in order.
                device: format!("/dev/vd{}", (b'b' + i as u8) as char),
                path: d.guest_path.clone(),
                read_only: d.read_only,
            })
            .collect(),
    }
}

/// Frames held back until the guest has its `Config`: stdin written by a client that
/// attached before the start (as `docker run -i` does) must not reach the guest first.
type HeldFrames = Rc<RefCell<Option<Vec<Vec<u8>>>>>;

/// Input for a process in the guest.
pub struct GuestInput {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    id: u32,
    held: Option<HeldFrames>,
}

impl GuestInput {
    fn send(&self, frame: Vec<u8>) -> io::Result<()> {
        if let Some(held) = &self.held
            && let Some(frames) = held.borrow_mut().as_mut()
        {
            frames.push(frame);
            return Ok(());
        }
        self.writer
            .send(frame)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the VM is gone"))
    }

    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(protocol::MAX_CHUNK) {
            let msg = Message::Stdin {
                id: self.id,
                data: chunk.to_vec(),
            };
            self.send(msg.encode())?;
        }
        Ok(())
    }

    pub fn close(&self) {
        let _ = self.send(Message::StdinClose { id: self.id }.encode());
    }
}

/// An exec'd process in the guest, as the link reader feeds it.
struct ExecSlot {
    started: Option<oneshot::Sender<Result<u32, String>>>,
    frames: Option<mpsc::UnboundedSender<Frame>>,
    done: Option<oneshot::Sender<i32>>,
}

pub struct VmBackend {
    vm: RefCell<Option<VmHandle>>,
    vmm_pid: i32,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    writer_rx: RefCell<Option<mpsc::UnboundedReceiver<Vec<u8>>>>,
    link: RefCell<Option<UnixStream>>,
    config: RefCell<Option<ContainerConfig>>,
    /// The main process's input until its `Config` is sent.
    held_stdin: HeldFrames,
    console_size: Option<(u16, u16)>,
    open_stdin: bool,
    main_started: RefCell<Option<oneshot::Sender<Result<u32, String>>>>,
    execs: RefCell<HashMap<u32, ExecSlot>>,
    exec_ids: RefCell<HashMap<String, u32>>,
    next_id: Cell<u32>,
    /// A SIGKILL was sent: the VM's end means 137.
    killing: Cell<bool>,
    cgroup: CgroupDirs,
    /// The VMM has exited.
    vmm_gone: Cell<bool>,
    /// Woken when the VMM has exited.
    vmm_exited: tokio::sync::Notify,
}

impl VmBackend {
    pub fn new(booted: Booted, spec: &VmSpec) -> VmBackend {
        let (writer, writer_rx) = mpsc::unbounded_channel();
        VmBackend {
            vmm_pid: booted.vm.pid() as i32,
            vm: RefCell::new(Some(booted.vm)),
            writer,
            writer_rx: RefCell::new(Some(writer_rx)),
            link: RefCell::new(Some(booted.link)),
            config: RefCell::new(Some(guest_config(spec))),
            held_stdin: Rc::new(RefCell::new(Some(Vec::new()))),
            console_size: spec.process.console_size,
            open_stdin: spec.open_stdin,
            main_started: RefCell::new(None),
            execs: RefCell::new(HashMap::new()),
            exec_ids: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            killing: Cell::new(false),
            cgroup: booted.cgroup,
            vmm_gone: Cell::new(false),
            vmm_exited: tokio::sync::Notify::new(),
        }
    }

    fn this(shim: &Shim) -> &VmBackend {
        match &shim.backend {
            Backend::Vm(vm) => vm,
            Backend::Runtime(_) => unreachable!("a VM shim has a VM backend"),
        }
    }

    fn send(&self, msg: &Message) {
        let _ = self.writer.send(msg.encode());
    }

    /// The VMM's pid (what `inspect` shows as the container's).
    pub fn pid(&self) -> i32 {
        self.vmm_pid
    }

    /// The link's reader and writer, and the VMM's reaper.
    pub fn start_tasks(shim: &Rc<Shim>) -> anyhow::Result<()> {
        let this = Self::this(shim);
        let link = this.link.borrow_mut().take().context("the link is taken")?;
        link.set_nonblocking(true)?;
        let link = tokio::net::UnixStream::from_std(link)?;
        let (mut read, mut write) = link.into_split();
        let mut rx = this
            .writer_rx
            .borrow_mut()
            .take()
            .context("the writer is taken")?;
        tokio::task::spawn_local(async move {
            while let Some(frame) = rx.recv().await {
                if write.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        if this.open_stdin {
            *shim.stdin.borrow_mut() = Some(Rc::new(Input::Guest(GuestInput {
                writer: this.writer.clone(),
                id: protocol::MAIN,
                held: Some(this.held_stdin.clone()),
            })));
        }
        // The guest's output ends with its `Exit`.
        shim.outputs_open.set(1);
        let reader_shim = shim.clone();
        tokio::task::spawn_local(async move {
            let mut decoder = FrameDecoder::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => decoder.feed(&buf[..n]),
                }
                loop {
                    match decoder.next_message() {
                        Ok(Some(m)) => dispatch(&reader_shim, m),
                        Ok(None) => break,
                        Err(err) => {
                            tracing::warn!("the guest link: {err}");
                            return;
                        }
                    }
                }
            }
        });
        tokio::task::spawn_local(reap_vmm(shim.clone()));
        Ok(())
    }

    /// Sends the container's `Config`; returns once its entrypoint runs (or failed).
    pub async fn start(&self, shim: &Rc<Shim>) -> anyhow::Result<()> {
        let config = self
            .config
            .borrow_mut()
            .take()
            .context("the container was started already")?;
        let program = config.process.args.first().cloned().unwrap_or_default();
        let tty = config.process.tty;
        let (tx, rx) = oneshot::channel();
        *self.main_started.borrow_mut() = Some(tx);
        self.send(&Message::Config(config));
        if tty && let Some((rows, cols)) = self.console_size {
            self.send(&Message::Resize {
                id: protocol::MAIN,
                rows,
                cols,
            });
        }
        if !self.open_stdin {
            self.send(&Message::StdinClose { id: protocol::MAIN });
        }
        for frame in self.held_stdin.borrow_mut().take().unwrap_or_default() {
            let _ = self.writer.send(frame);
        }
        match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(Ok(_pid))) => Ok(()),
            Ok(Ok(Err(message))) => Err(anyhow::anyhow!("{message}")),
            Ok(Err(_)) => Err(anyhow::anyhow!("the VM stopped before {program} started")),
            Err(_) => {
                shim.exit_error
                    .borrow_mut()
                    .get_or_insert_with(|| format!("{program} did not start in the VM"));
                Err(anyhow::anyhow!(
                    "{program} did not start in the VM within {START_TIMEOUT:?}"
                ))
            }
        }
    }

    /// Delivers `signal` in the guest; a SIGKILL also kills the VM if the guest does not
    /// report the exit soon.
    pub fn kill(&self, shim: &Rc<Shim>, signal: i32, all: bool) {
        self.send(&Message::Signal {
            id: protocol::MAIN,
            signal,
            all,
        });
        if signal == libc::SIGKILL && !self.killing.replace(true) {
            let shim = shim.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(KILL_GRACE).await;
                if shim.init_status.get().is_none() {
                    tracing::warn!("the guest did not exit after SIGKILL: killing the VM");
                    Self::this(&shim).kill_vmm();
                }
            });
        }
    }

    fn kill_vmm(&self) {
        if !self.vmm_gone.get() {
            // SAFETY: plain syscall on our own, not yet reaped, child.
            unsafe { libc::kill(self.vmm_pid, libc::SIGKILL) };
        }
    }

    fn guest_id(&self, exec_id: Option<&str>) -> anyhow::Result<u32> {
        match exec_id {
            None => Ok(protocol::MAIN),
            Some(id) => self
                .exec_ids
                .borrow()
                .get(id)
                .copied()
                .ok_or_else(|| anyhow::anyhow!("no such exec: {id}")),
        }
    }

    pub fn resize(&self, exec_id: Option<&str>, height: u16, width: u16) -> anyhow::Result<()> {
        let id = self.guest_id(exec_id)?;
        self.send(&Message::Resize {
            id,
            rows: height,
            cols: width,
        });
        Ok(())
    }

    /// Freezes (or thaws) the whole VM: its VMM process is stopped.
    pub fn pause(&self, pause: bool) -> anyhow::Result<()> {
        let signal = if pause { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: plain syscall on our own, not yet reaped, child.
        if unsafe { libc::kill(self.vmm_pid, signal) } != 0 {
            return Err(io::Error::last_os_error()).context("signal the VMM");
        }
        Ok(())
    }

    pub async fn start_exec(&self, req: &ExecRequest) -> anyhow::Result<ExecStream> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let process = exec_process(req);
        let tty = process.tty;
        let (started_tx, started_rx) = oneshot::channel();
        let (frames_tx, frames) = mpsc::unbounded_channel();
        let (done_tx, done) = oneshot::channel();
        self.execs.borrow_mut().insert(
            id,
            ExecSlot {
                started: Some(started_tx),
                frames: Some(frames_tx),
                done: Some(done_tx),
            },
        );
        self.exec_ids.borrow_mut().insert(req.exec_id.clone(), id);
        self.send(&Message::Exec { id, process });
        let pid = match tokio::time::timeout(START_TIMEOUT, started_rx).await {
            Ok(Ok(Ok(pid))) => pid,
            Ok(Ok(Err(message))) => bail!("{message}"),
            Ok(Err(_)) => bail!("the VM stopped"),
            Err(_) => bail!("the process did not start in the VM within {START_TIMEOUT:?}"),
        };
        if tty
            && let Some(size) = req.process["consoleSize"].as_object()
            && let (Some(rows), Some(cols)) = (size.get("height"), size.get("width"))
        {
            self.send(&Message::Resize {
                id,
                rows: rows.as_u64().unwrap_or(24) as u16,
                cols: cols.as_u64().unwrap_or(80) as u16,
            });
        }
        let stdin = if req.stdin {
            Some(Input::Guest(GuestInput {
                writer: self.writer.clone(),
                id,
                held: None,
            }))
        } else {
            self.send(&Message::StdinClose { id });
            None
        };
        Ok(ExecStream {
            pid: pid as i32,
            frames,
            done,
            stdin,
        })
    }

    fn exec_output(&self, id: u32, kind: StreamKind, data: Vec<u8>) {
        if let Some(tx) = self.execs.borrow().get(&id).and_then(|s| s.frames.as_ref()) {
            let _ = tx.send(Frame::new(kind, Bytes::from(data)));
        }
    }

    pub fn forget_exec(&self, exec_id: &str) {
        if let Some(id) = self.exec_ids.borrow_mut().remove(exec_id) {
            self.execs.borrow_mut().remove(&id);
        }
    }

    /// After the exit: lets the VMM power off (or kills it), reads the cgroup's OOM
    /// counter and removes the cgroup. Returns whether the OOM killer struck the VMM.
    pub async fn finish(&self, config: &Config) -> bool {
        if !self.vmm_gone.get() {
            // `notify_one` keeps a permit, so an exit reaped before this wait counts too.
            let _ = tokio::time::timeout(POWER_OFF, self.vmm_exited.notified()).await;
        }
        if let Some(mut vm) = self.vm.borrow_mut().take()
            && !self.vmm_gone.get()
        {
            tracing::warn!("the VM did not power off: killing it");
            let _ = vm.kill();
        }
        let oom = crate::oom::oom_killed(&config.cgroupfs, &config.cgroups_path);
        if let Err(err) = self.cgroup.remove() {
            tracing::warn!("remove the VM's cgroup: {err:#}");
        }
        oom
    }
}

/// The guest process for an exec request: the OCI `process` the daemon built, with
/// Docker's `--user` resolved in the guest.
fn exec_process(req: &ExecRequest) -> ProcessConfig {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let p = &req.process;
    let user = req.user.clone().unwrap_or_else(|| {
        let uid = p["user"]["uid"].as_u64().unwrap_or(0);
        let gid = p["user"]["gid"].as_u64().unwrap_or(0);
        format!("{uid}:{gid}")
    });
    ProcessConfig {
        args: strings(&p["args"]),
        env: strings(&p["env"]),
        cwd: p["cwd"].as_str().unwrap_or("/").to_string(),
        user,
        tty: p["terminal"].as_bool().unwrap_or(false),
    }
}

/// One message from the guest.
fn dispatch(shim: &Rc<Shim>, m: Message) {
    let this = VmBackend::this(shim);
    match m {
        Message::Started { id: 0, pid } => {
            if let Some(tx) = this.main_started.borrow_mut().take() {
                let _ = tx.send(Ok(pid));
            }
        }
        Message::Stdout { id: 0, data } => shim.publish(Stream::Stdout, &data),
        Message::Stderr { id: 0, data } => shim.publish(Stream::Stderr, &data),
        Message::Error { id: 0, message } => {
            tracing::warn!("the guest: {message}");
            match this.main_started.borrow_mut().take() {
                Some(tx) => {
                    let _ = tx.send(Err(message));
                }
                None => *shim.exit_error.borrow_mut() = Some(message),
            }
        }
        Message::Exit { id: 0, code } => {
            this.main_started.borrow_mut().take();
            if shim.outputs_open.get() > 0 {
                shim.output_closed(Stream::Stdout);
            }
            shim.set_exit(code);
        }
        Message::Started { id, pid } => {
            if let Some(tx) = this
                .execs
                .borrow_mut()
                .get_mut(&id)
                .and_then(|s| s.started.take())
            {
                let _ = tx.send(Ok(pid));
            }
        }
        Message::Stdout { id, data } => this.exec_output(id, StreamKind::Stdout, data),
        Message::Stderr { id, data } => this.exec_output(id, StreamKind::Stderr, data),
        Message::Error { id, message } => {
            let mut execs = this.execs.borrow_mut();
            match execs.get_mut(&id).and_then(|s| s.started.take()) {
                Some(tx) => {
                    let _ = tx.send(Err(message));
                }
                None => tracing::warn!(id, "the guest: {message}"),
            }
        }
        Message::Exit { id, code } => {
            if let Some(mut slot) = this.execs.borrow_mut().remove(&id) {
                slot.frames.take();
                if let Some(done) = slot.done.take() {
                    let _ = done.send(code);
                }
            }
        }
        other => tracing::debug!("unexpected from the guest: {other:?}"),
    }
}

/// Waits for the VMM to exit; if the guest never said how the container ended, it ended
/// with the VM.
async fn reap_vmm(shim: Rc<Shim>) {
    let this = VmBackend::this(&shim);
    let Some(mut signals) = crate::server::child_signals() else {
        return;
    };
    loop {
        let status = this
            .vm
            .borrow_mut()
            .as_mut()
            .and_then(|vm| vm.try_wait().ok().flatten());
        if let Some(status) = status {
            this.vmm_gone.set(true);
            this.vmm_exited.notify_one();
            tracing::info!("the VMM exited: {status}");
            if shim.init_status.get().is_none() {
                let (code, why) = if this.killing.get() {
                    (128 + libc::SIGKILL, "the VM was killed".to_string())
                } else {
                    (
                        255,
                        format!(
                            "the VM stopped without an exit code ({status}): guest kernel panic?{}",
                            boot_diagnostics(shim.config.state.path())
                        ),
                    )
                };
                shim.exit_error.borrow_mut().get_or_insert(why);
                if let Some(tx) = this.main_started.borrow_mut().take() {
                    let _ = tx.send(Err("the VM stopped".into()));
                }
                if shim.outputs_open.get() > 0 {
                    shim.output_closed(Stream::Stdout);
                }
                shim.set_exit(code);
            }
            // Processes still waiting for their exit will not get one.
            this.execs.borrow_mut().clear();
            return;
        }
        if signals.recv().await.is_none() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_panic_is_reported_by_its_own_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONSOLE_LOG),
            "[    0.61] Run /init as init process\n\
             [    0.62] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300\n\
             [    0.63] CPU: 0 PID: 1 Comm: init\n",
        )
        .unwrap();
        assert_eq!(
            boot_diagnostics(dir.path()),
            "; the guest kernel panicked: Kernel panic - not syncing: Attempted to kill init! \
             exitcode=0x00000300"
        );
        std::fs::write(dir.path().join(CONSOLE_LOG), "one\ntwo\n").unwrap();
        std::fs::write(dir.path().join("qemu.log"), "qemu: bad kernel\n").unwrap();
        assert_eq!(
            boot_diagnostics(dir.path()),
            "; qemu: qemu: bad kernel; console: one | two"
        );
    }
}
