use std::path::Path;

use anyhow::Context;
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;

use crate::cli::Create;

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
