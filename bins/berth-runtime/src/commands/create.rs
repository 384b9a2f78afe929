use std::path::Path;

use anyhow::Context;
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;

use crate::cli::Create;

/// Creates the container from its bundle. `detach` is false only for a foreground
/// `run`, whose caller then waits for the process.
pub fn create(root: &Path, args: &Create, detach: bool) -> anyhow::Result<Container> {
    let root = crate::state::ensure_root(root)?;
    let bundle = std::fs::canonicalize(&args.bundle)
        .with_context(|| format!("bundle {}", args.bundle.display()))?;
    ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_executor(DefaultExecutor {})
        .with_pid_file(args.pid_file.as_ref())?
        .with_console_socket(args.console_socket.as_ref())
        .with_root_path(root)?
        .validate_id()?
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(detach)
        .build()
        .with_context(|| format!("create container {}", args.id))
}
