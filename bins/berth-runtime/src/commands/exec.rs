use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;

use crate::cli::Exec;
use crate::foreground::Foreground;

/// Starts a process in a running container; in the foreground, waits for it and
/// returns its exit code, as `runc exec` does.
pub fn exec(root: &Path, args: &Exec) -> anyhow::Result<u8> {
    crate::state::load(root, &args.id)?;
    if args.process.is_none() && args.command.is_empty() {
        bail!("exec needs a command or --process");
    }
    let (uid, gid) = match args.user.as_deref() {
        None => (None, None),
        Some(user) => {
            let (u, g) = user.split_once(':').unwrap_or((user, ""));
            let uid = u
                .parse::<u32>()
                .with_context(|| format!("user {u:?} is not a number"))?;
            let gid = if g.is_empty() {
                None
            } else {
                Some(
                    g.parse::<u32>()
                        .with_context(|| format!("group {g:?} is not a number"))?,
                )
            };
            (Some(uid), gid)
        }
    };
    let env: HashMap<String, String> = args
        .env
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut builder = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_executor(DefaultExecutor {})
        .with_root_path(root)?
        .with_console_socket(args.console_socket.as_ref())
        .with_pid_file(args.pid_file.as_ref())?
        .as_tenant()
        .with_detach(args.detach)
        .with_cwd(args.cwd.as_ref())
        .with_env(env)
        .with_user(uid)
        .with_group(gid)
        .with_additional_gids(args.additional_gids.clone())
        .with_capabilities(args.caps.clone())
        .with_no_new_privs(args.no_new_privs)
        .with_process(args.process.as_ref());
    if args.process.is_none() {
        builder = builder.with_container_args(args.command.clone());
    }
    let foreground = (!args.detach).then(Foreground::block_signals).transpose()?;
    let pid = builder
        .build()
        .with_context(|| format!("exec in container {}", args.id))?;
    match foreground {
        Some(foreground) => foreground.wait(pid.as_raw()),
        None => Ok(0),
    }
}
