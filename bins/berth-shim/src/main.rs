//! `berth-shim`: the parent of one container. berthd starts it with `std::process::Command`;
//! it detaches into its own session, creates the container through libcontainer while
//! it still has a single thread, reports `created` (or the failure) as one JSON line on
//! stdout, and then serves the protocol of the `berth-shim` crate on its socket until
//! the container has exited and its status is recorded in the state directory.

mod fdio;
mod json_log;
mod logger;
mod oom;
mod process;
mod runtime;
mod server;
mod vm;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use anyhow::Context;
use berth_shim::StateDir;
use berth_shim::protocol::Ready;
/// The command line berthd gives (`--flag value`, `--open-stdin`). Parsed by hand: the
/// shim lives as long as its container, and every dependency it does not load is
/// memory each container does not cost.
#[derive(Debug, PartialEq)]
struct Args {
    /// The container's ID.
    id: String,
    /// The bundle and state directory (holds config.json; gets the socket and exit.json).
    state_dir: PathBuf,
    /// The runtime's state root.
    runtime_root: PathBuf,
    /// A runc-compatible runtime (default: `berth-runtime` beside this binary).
    runtime: Option<PathBuf>,
    /// The json-file log.
    log_path: PathBuf,
    /// Rotate the log at this many bytes.
    log_max_size: Option<u64>,
    /// Keep this many log files, the live one included.
    log_max_file: u32,
    /// Keep the container's stdin open for attach.
    open_stdin: bool,
    /// The container is a micro-VM described by `vm.json` in the state directory.
    vm: bool,
    /// The cgroupfs mount, for reading OOM counters.
    cgroupfs: PathBuf,
}

const USAGE: &str = "usage: berth-shim --id ID --state-dir DIR --runtime-root DIR --log-path FILE \
[--runtime BIN] [--log-max-size BYTES] [--log-max-file N] [--open-stdin] [--cgroupfs DIR] [--vm]";

impl Args {
    fn parse(mut argv: impl Iterator<Item = std::ffi::OsString>) -> Result<Args, String> {
        let (mut id, mut state_dir, mut runtime_root, mut log_path) = (None, None, None, None);
        let mut args = Args {
            id: String::new(),
            state_dir: PathBuf::new(),
            runtime_root: PathBuf::new(),
            runtime: None,
            log_path: PathBuf::new(),
            log_max_size: None,
            log_max_file: 1,
            open_stdin: false,
            vm: false,
            cgroupfs: PathBuf::from("/sys/fs/cgroup"),
        };
        while let Some(flag) = argv.next() {
            let flag = flag.to_string_lossy().into_owned();
            if flag == "--open-stdin" {
                args.open_stdin = true;
                continue;
            }
            if flag == "--vm" {
                args.vm = true;
                continue;
            }
            let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let text = || value.to_string_lossy().into_owned();
            match flag.as_str() {
                "--id" => id = Some(text()),
                "--state-dir" => state_dir = Some(PathBuf::from(&value)),
                "--runtime-root" => runtime_root = Some(PathBuf::from(&value)),
                "--runtime" => args.runtime = Some(PathBuf::from(&value)),
                "--log-path" => log_path = Some(PathBuf::from(&value)),
                "--log-max-size" => {
                    args.log_max_size = Some(text().parse().map_err(|_| format!("bad {flag}"))?)
                }
                "--log-max-file" => {
                    args.log_max_file = text().parse().map_err(|_| format!("bad {flag}"))?
                }
                "--cgroupfs" => args.cgroupfs = PathBuf::from(&value),
                other => return Err(format!("unknown flag {other}")),
            }
        }
        let missing = |name: &str| format!("{name} is required");
        args.id = id.ok_or_else(|| missing("--id"))?;
        args.state_dir = state_dir.ok_or_else(|| missing("--state-dir"))?;
        args.runtime_root = runtime_root.ok_or_else(|| missing("--runtime-root"))?;
        args.log_path = log_path.ok_or_else(|| missing("--log-path"))?;
        Ok(args)
    }
}

/// The few fields of the OCI spec the shim reads (the rest, seccomp's tens of kilobytes
/// included, is skipped without being built into values).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct SpecView {
    process: ProcessView,
    linux: LinuxView,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ProcessView {
    terminal: bool,
    console_size: Option<ConsoleSize>,
}

#[derive(Debug, serde::Deserialize)]
struct ConsoleSize {
    height: u16,
    width: u16,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LinuxView {
    cgroups_path: String,
}

fn main() -> std::process::ExitCode {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("berth-shim: {message}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let state = StateDir::new(&args.state_dir);
    if let Err(err) = log_to_file(&state) {
        report(&Ready::Failed {
            message: format!("shim log: {err:#}"),
        });
        return std::process::ExitCode::FAILURE;
    }
    match run(args, state) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args, state: StateDir) -> anyhow::Result<()> {
    detach()?;
    // Sockets are bound by name from here: their full paths can exceed the 108 bytes a
    // socket address holds.
    std::env::set_current_dir(state.path())
        .with_context(|| format!("enter {}", state.path().display()))?;
    std::fs::write(state.shim_pid(), std::process::id().to_string()).context("write shim.pid")?;
    if args.vm {
        run_vm(args, state)
    } else {
        run_runtime(args, state)
    }
}

/// A container created by an OCI runtime.
fn run_runtime(args: Args, state: StateDir) -> anyhow::Result<()> {
    let began = std::time::Instant::now();
    let spec: SpecView =
        serde_json::from_slice(&std::fs::read(state.spec()).context("read config.json")?)
            .context("parse config.json")?;
    let terminal = spec.process.terminal;
    let size = spec.process.console_size.map(|s| (s.height, s.width));
    let cgroups_path = spec.linux.cgroups_path;
    let runtime = runtime::Runtime {
        binary: args
            .runtime
            .clone()
            .unwrap_or_else(|| sibling("berth-runtime")),
        root: args.runtime_root.clone(),
        log: state.path().join("runtime.log"),
        // Only berth-runtime speaks the control line; another runtime gets runc's
        // create-then-start.
        control: args.runtime.is_none(),
    };
    let created = runtime.create_init(
        &args.id,
        state.path(),
        terminal,
        &state.console_socket(),
        args.open_stdin,
        size,
    );
    tracing::debug!(
        ms = began.elapsed().as_secs_f64() * 1000.0,
        "container created"
    );
    let runtime::Created { pid, io, starter } = match created {
        Ok(created) => created,
        Err(err) => {
            cleanup_failed(&runtime, &args);
            report(&Ready::Failed {
                message: format!("{err:#}"),
            });
            return Err(err);
        }
    };
    let (log, listener) = match serve_prepared(&args, &state) {
        Ok(prepared) => prepared,
        Err(err) => {
            // The container exists but cannot be served: take it down again.
            cleanup_failed(&runtime, &args);
            report(&Ready::Failed {
                message: format!("{err:#}"),
            });
            return Err(err);
        }
    };
    report(&Ready::Created { pid });
    close_stdout()?;
    let config = server::Config {
        id: args.id.clone(),
        state,
        cgroupfs: args.cgroupfs,
        cgroups_path,
    };
    let backend = process::RuntimeBackend::new(&args.id, runtime, starter, pid);
    let shim = server::Shim::new(config, server::Backend::Runtime(backend), log);
    event_loop(server::run(
        shim,
        move |shim| process::RuntimeBackend::start_tasks(shim, io),
        listener,
    ))
}

/// A micro-VM container (`--vm`): booted from the daemon's `vm.json`.
fn run_vm(args: Args, state: StateDir) -> anyhow::Result<()> {
    let spec_file = state.path().join(berth_shim::vm::VmSpec::FILE);
    let spec: berth_shim::vm::VmSpec =
        serde_json::from_slice(&std::fs::read(&spec_file).context("read vm.json")?)
            .context("parse vm.json")?;
    let booted = vm::boot(&spec, &state).and_then(|booted| {
        let prepared = serve_prepared(&args, &state)?;
        Ok((booted, prepared))
    });
    let (booted, (log, listener)) = match booted {
        Ok(ready) => ready,
        Err(err) => {
            vm::cleanup_failed(&spec);
            report(&Ready::Failed {
                message: format!("{err:#}"),
            });
            return Err(err);
        }
    };
    report(&Ready::Created {
        pid: booted.vm.pid() as i32,
    });
    close_stdout()?;
    let config = server::Config {
        id: args.id.clone(),
        state,
        cgroupfs: args.cgroupfs,
        cgroups_path: spec.cgroup.clone(),
    };
    let backend = vm::VmBackend::new(booted, &spec);
    let shim = server::Shim::new(config, server::Backend::Vm(backend), log);
    event_loop(server::run(shim, vm::VmBackend::start_tasks, listener))
}

/// The json-file log and the shim's socket.
fn serve_prepared(
    args: &Args,
    state: &StateDir,
) -> anyhow::Result<(json_log::JsonLog, std::os::unix::net::UnixListener)> {
    let log = json_log::JsonLog::open(&args.log_path, args.log_max_size, args.log_max_file)
        .with_context(|| format!("open log {}", args.log_path.display()))?;
    let _ = std::fs::remove_file(state.socket());
    let socket_name = state
        .socket()
        .file_name()
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let listener = std::os::unix::net::UnixListener::bind(&socket_name)
        .with_context(|| format!("bind {}", state.socket().display()))?;
    Ok((log, listener))
}

/// Runs `serve` on a current-thread runtime.
fn event_loop(serve: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the event loop")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, serve)
}

/// Its own session, so the daemon's process group and terminal signals never reach
/// it; a subreaper, so processes the container leaves behind are reaped here.
fn detach() -> anyhow::Result<()> {
    // SAFETY: plain syscall with no memory arguments.
    if unsafe { libc::setsid() } < 0 {
        let err = std::io::Error::last_os_error();
        // EPERM: already a group leader, which is as good.
        if err.raw_os_error() != Some(libc::EPERM) {
            return Err(err).context("setsid");
        }
    }
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("become a subreaper");
    }
    Ok(())
}

/// Removes what a failed create left under the runtime root.
fn cleanup_failed(runtime: &runtime::Runtime, args: &Args) {
    let dir = args.runtime_root.join(&args.id);
    if dir.join("state.json").exists() {
        let _ = runtime.operate(&args.id, runtime::Operation::Delete);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A binary installed beside this one, else from `PATH`.
fn sibling(name: &str) -> PathBuf {
    match std::env::current_exe() {
        Ok(exe) => match exe.parent().map(|dir| dir.join(name)) {
            Some(path) if path.exists() => path,
            _ => PathBuf::from(name),
        },
        Err(_) => PathBuf::from(name),
    }
}

fn report(ready: &Ready) {
    let mut line = serde_json::to_vec(ready).unwrap_or_default();
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&line);
    let _ = out.flush();
}

/// The daemon reads stdout until end of file: point it at /dev/null now.
fn close_stdout() -> anyhow::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in [0, 1] {
        // SAFETY: dup2 onto a standard descriptor; `null` stays open across the call.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error()).context("redirect stdio");
        }
    }
    Ok(())
}

/// stderr (and the tracing log) go to `shim.log` in the state directory.
fn log_to_file(state: &StateDir) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.shim_log())?;
    // SAFETY: dup2 onto stderr; `file` stays open across the call.
    if unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
        return Err(std::io::Error::last_os_error()).context("redirect stderr");
    }
    // A level, not a filter expression: a filter is not worth its memory in a process
    // that lives as long as its container.
    let level = match std::env::var("BERTH_SHIM_LOG").as_deref() {
        Ok("trace") => tracing::Level::TRACE,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    tracing::subscriber::set_global_default(logger::LineLogger::new(level))
        .context("install the logger")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_view_reads_only_what_the_shim_needs() {
        let spec: SpecView = serde_json::from_str(
            r#"{"ociVersion":"1.1.0","process":{"terminal":true,"consoleSize":{"height":24,"width":80},"args":["sh"]},
               "linux":{"cgroupsPath":"/berth/c1","seccomp":{"defaultAction":"SCMP_ACT_ERRNO"}}}"#,
        )
        .unwrap();
        assert!(spec.process.terminal);
        assert_eq!(
            spec.process.console_size.map(|s| (s.height, s.width)),
            Some((24, 80))
        );
        assert_eq!(spec.linux.cgroups_path, "/berth/c1");
        let bare: SpecView = serde_json::from_str("{}").unwrap();
        assert!(!bare.process.terminal && bare.linux.cgroups_path.is_empty());
    }

    #[test]
    fn the_command_line_parses() {
        let argv = |s: &str| {
            s.split(' ')
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        let args = Args::parse(
            argv("--id c1 --state-dir /s --runtime-root /r --log-path /l --open-stdin --log-max-size 100 --log-max-file 3")
                .into_iter(),
        )
        .unwrap();
        assert_eq!(args.id, "c1");
        assert_eq!(args.log_max_size, Some(100));
        assert_eq!(args.log_max_file, 3);
        assert!(args.open_stdin);
        assert_eq!(args.cgroupfs, PathBuf::from("/sys/fs/cgroup"));
        assert!(
            Args::parse(argv("--id c1").into_iter())
                .unwrap_err()
                .contains("--state-dir")
        );
        assert!(Args::parse(argv("--bogus x").into_iter()).is_err());
    }
}
