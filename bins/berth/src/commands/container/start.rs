//! `berth start`: start containers (printing their names), or attach to one (`-a`/`-i`) and
//! exit with its status like `run`.

use std::io::IsTerminal;

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error};
use super::hijack::{self, End, StreamOpts};
use super::run::wait_exit_or_removed;
use super::{container_path, get_json};
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(a: StartArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.containers.len())?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    if !(a.attach || a.interactive) {
        let mut failed = Vec::new();
        for name in &a.containers {
            let (st, body) = ep
                .call("POST", &format!("{}/start", container_path(name)), None)
                .await?;
            if (200..300).contains(&st) || st == 304 {
                out(&format!("{name}\n"))?;
            } else {
                eprintln!("{}", daemon_error(&body).message);
                failed.push(name.clone());
            }
        }
        if !failed.is_empty() {
            return Err(CliError::msg(format!(
                "Error: failed to start containers: {}",
                failed.join(", ")
            ))
            .into());
        }
        return Ok(());
    }
    if a.containers.len() > 1 {
        return Err(
            CliError::msg("you cannot start and attach multiple containers at once").into(),
        );
    }
    let c = get_json(&ep, &format!("{}/json", container_path(&a.containers[0]))).await?;
    let id = c["Id"].as_str().unwrap_or_default().to_string();
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let open_stdin = c["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let auto_remove = c["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    if !tty {
        hijack::forward_signals(ep.clone(), id.clone());
    }
    let detach_keys = a
        .detach_keys
        .clone()
        .or_else(|| ctx.config().ok().and_then(|c| c.string("detachKeys")));
    let stdin = a.interactive && open_stdin;
    let mut q = String::from("?stream=1");
    if stdin {
        q.push_str("&stdin=1");
    }
    q.push_str("&stdout=1&stderr=1");
    if let Some(k) = detach_keys.as_deref().filter(|k| !k.is_empty()) {
        q.push_str(&format!("&detachKeys={}", crate::client::encode(k)));
    }
    let conn = ep
        .hijack(&format!("{}/attach{q}", container_path(&id)), None)
        .await?;
    let status = wait_exit_or_removed(&ep, &id, auto_remove).await?;
    let (st, body) = ep
        .call("POST", &format!("{}/start", container_path(&id)), None)
        .await?;
    if !(200..300).contains(&st) && st != 304 {
        drop(conn);
        if auto_remove {
            let _ = status.await;
        }
        return Err(daemon_error(&body).into());
    }
    if tty && std::io::stdout().is_terminal() {
        hijack::monitor_tty_size(ep.clone(), container_path(&id));
    }
    let opts = StreamOpts {
        stdin,
        stdout: true,
        stderr: true,
        tty,
        detach_keys,
    };
    match hijack::stream(conn, &opts).await {
        Ok(End::Detached) => return Ok(()),
        Ok(End::Done) => {}
        Err(e) => return Err(CliError::msg(e.to_string()).into()),
    }
    let code = status.await.unwrap_or(125);
    if code != 0 {
        return Err(CliError::new(code, "").into());
    }
    Ok(())
}
