//! `berth run`: create (pulling when needed), attach before start, `POST /wait` before
//! start, start, stream, and exit with the container's status (docker's `runContainer`).

use std::io::IsTerminal;

use anyhow::Result;
use clap::Args as ClapArgs;
use tokio::task::JoinHandle;

use super::conn::{Endpoint, daemon_error, finish};
use super::create::create_container;
use super::hijack::{self, End, StreamOpts};
use super::opts::{ContainerOpts, CreateFlags, validate_pull};
use super::{container_path, report};
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(
        long = "sig-proxy",
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = crate::cli::parse_go_bool
    )]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub flags: CreateFlags,
    #[command(flatten)]
    pub opts: ContainerOpts,
    #[arg(
        value_name = "IMAGE",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// docker's `runStartContainerErr`: 127 for a missing executable, 126 for one that cannot be
/// run, 125 otherwise.
pub fn start_error_code(message: &str) -> i32 {
    let m = message.trim_start_matches("Error response from daemon: ");
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("system cannot find the file specified")
    {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

/// `POST /containers/ID/wait?condition=…` sent now; the task resolves to the exit status
/// (125 when waiting failed), as docker's `waitExitOrRemoved`.
pub async fn wait_exit_or_removed(
    ep: &Endpoint,
    id: &str,
    auto_remove: bool,
) -> Result<JoinHandle<i32>, CliError> {
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let sock = ep
        .send(
            "POST",
            &format!("{}/wait?condition={condition}", container_path(id)),
            None,
            false,
        )
        .await?;
    Ok(tokio::spawn(async move {
        let (status, body) = finish(sock).await;
        if !(200..300).contains(&status) {
            tracing::error!(
                "error waiting for container: {}",
                daemon_error(&body).message
            );
            return 125;
        }
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
            tracing::error!("Error waiting for container: {msg}");
            return 125;
        }
        v["StatusCode"].as_i64().unwrap_or(0) as i32
    }))
}

pub async fn run(a: RunArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.args.len())?;
    validate_pull(&a.flags.pull).map_err(|e| report(ctx, &e))?;
    let mut req = a
        .opts
        .build(&a.args[0], &a.args[1..])
        .map_err(|e| report(ctx, &e))?;
    req.body.args_escaped = None;
    let body = &mut req.body;
    if !a.detach {
        if body.attach_stdin == Some(true)
            && body.tty == Some(true)
            && !std::io::stdin().is_terminal()
        {
            return Err(CliError::msg("the input device is not a TTY").into());
        }
    } else {
        if !a.opts.attach.is_empty() {
            return Err(CliError::msg(
                "conflicting options: cannot specify both --attach and --detach",
            )
            .into());
        }
        body.attach_stdin = Some(false);
        body.attach_stdout = Some(false);
        body.attach_stderr = Some(false);
        body.stdin_once = Some(false);
    }
    let attach_stdin = body.attach_stdin == Some(true);
    let attach_stdout = body.attach_stdout == Some(true);
    let attach_stderr = body.attach_stderr == Some(true);
    let tty = body.tty == Some(true);
    let id = match create_container(ctx, req, &a.flags, a.opts.cidfile.as_deref()).await {
        Ok(id) => id,
        Err(e) => {
            let code = start_error_code(&e.message);
            let mut err = report(ctx, &e.message);
            err.code = code;
            return Err(err.into());
        }
    };
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    if a.sig_proxy {
        hijack::forward_signals(ep.clone(), id.clone());
    }
    let detached_mode = !attach_stdout && !attach_stderr;
    if detached_mode {
        out(&format!("{id}\n"))?;
    }
    let attach = attach_stdin || attach_stdout || attach_stderr;
    let mut conn = None;
    if attach {
        let detach_keys = a
            .detach_keys
            .clone()
            .or_else(|| ctx.config().ok().and_then(|c| c.string("detachKeys")));
        let mut q = String::from("?stream=1");
        for (on, name) in [
            (attach_stdin, "stdin"),
            (attach_stdout, "stdout"),
            (attach_stderr, "stderr"),
        ] {
            if on {
                q.push_str(&format!("&{name}=1"));
            }
        }
        if let Some(k) = detach_keys.as_deref().filter(|k| !k.is_empty()) {
            q.push_str(&format!("&detachKeys={}", crate::client::encode(k)));
        }
        let hijacked = ep
            .hijack(&format!("{}/attach{q}", container_path(&id)), None)
            .await?;
        conn = Some((hijacked, detach_keys));
    }
    let status = wait_exit_or_removed(&ep, &id, a.opts.rm).await?;
    let (st, body) = ep
        .call("POST", &format!("{}/start", container_path(&id)), None)
        .await?;
    if !(200..300).contains(&st) && st != 304 {
        drop(conn);
        let e = daemon_error(&body);
        if a.opts.rm {
            let _ = status.await;
        }
        let code = start_error_code(&e.message);
        let mut err = report(ctx, &e.message);
        err.code = code;
        return Err(err.into());
    }
    if attach && tty && std::io::stdout().is_terminal() {
        hijack::monitor_tty_size(ep.clone(), container_path(&id));
    }
    if let Some((hijacked, detach_keys)) = conn {
        let opts = StreamOpts {
            stdin: attach_stdin,
            stdout: attach_stdout,
            stderr: attach_stderr,
            tty,
            detach_keys,
        };
        match hijack::stream(hijacked, &opts).await {
            Ok(End::Detached) => return Ok(()),
            Ok(End::Done) => {}
            Err(e) => return Err(CliError::msg(e.to_string()).into()),
        }
    }
    if detached_mode {
        return Ok(());
    }
    let code = status.await.unwrap_or(125);
    if code != 0 {
        return Err(CliError::new(code, "").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_error_codes() {
        assert_eq!(
            start_error_code(
                "Error response from daemon: failed to create shim task: exec: \"nosuchcmd\": executable file not found in $PATH: unknown"
            ),
            127
        );
        assert_eq!(
            start_error_code("exec: \"/etc/passwd\": permission denied: unknown"),
            126
        );
        assert_eq!(start_error_code("Error response from daemon: boom"), 125);
    }
}
