//! `berth exec`: `POST /containers/ID/exec`, then `POST /exec/ID/start` hijacked (or
//! detached), then the exit code from `GET /exec/ID/json`.

use std::io::IsTerminal;

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error};
use super::hijack::{self, End, StreamOpts, tty_size};
use super::{container_path, get_json, parse};
use crate::commands::Ctx;
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long, value_name = "list", value_parser = parse::env_var)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
    #[arg(
        value_name = "CONTAINER",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// The `POST /containers/ID/exec` body (docker's `parseExec`).
pub fn exec_body(a: &ExecArgs, detach_keys: &str) -> Result<serde_json::Value, String> {
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(parse::kv_file(f, true)?);
    }
    env.extend(a.env.iter().cloned());
    let (h, w) = tty_size();
    let mut body = serde_json::json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": !a.detach && a.interactive,
        "AttachStderr": !a.detach,
        "AttachStdout": !a.detach,
        "Detach": a.detach,
        "DetachKeys": detach_keys,
        "Env": if env.is_empty() { serde_json::Value::Null } else { env.into() },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.args[1..].to_vec(),
    });
    if a.tty && (h, w) != (0, 0) {
        body["ConsoleSize"] = serde_json::json!([h, w]);
    }
    Ok(body)
}

pub async fn run(a: ExecArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(2), a.args.len())?;
    let detach_keys = a
        .detach_keys
        .clone()
        .or_else(|| ctx.config().ok().and_then(|c| c.string("detachKeys")))
        .unwrap_or_default();
    let body = exec_body(&a, &detach_keys).map_err(CliError::msg)?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let name = &a.args[0];
    get_json(&ep, &format!("{}/json", container_path(name))).await?;
    let attach_stdin = !a.detach && a.interactive;
    if !a.detach && attach_stdin && a.tty && !std::io::stdin().is_terminal() {
        return Err(CliError::msg("the input device is not a TTY").into());
    }
    let (st, resp) = ep
        .call(
            "POST",
            &format!("{}/exec", container_path(name)),
            Some(&body),
        )
        .await?;
    if !(200..300).contains(&st) {
        return Err(daemon_error(&resp).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&resp).unwrap_or_default();
    let exec_id = v["Id"].as_str().unwrap_or_default().to_string();
    if exec_id.is_empty() {
        return Err(CliError::msg("exec ID empty").into());
    }
    let mut start = serde_json::json!({"Detach": a.detach, "Tty": a.tty});
    if let Some(cs) = body.get("ConsoleSize") {
        start["ConsoleSize"] = cs.clone();
    }
    let start_path = format!("/exec/{exec_id}/start");
    if a.detach {
        let (st, resp) = ep.call("POST", &start_path, Some(&start)).await?;
        if !(200..300).contains(&st) {
            return Err(daemon_error(&resp).into());
        }
        return Ok(());
    }
    let conn = ep.hijack(&start_path, Some(&start)).await?;
    if a.tty && std::io::stdin().is_terminal() {
        hijack::monitor_tty_size(ep.clone(), format!("/exec/{exec_id}"));
    }
    let opts = StreamOpts {
        stdin: attach_stdin,
        stdout: true,
        stderr: true,
        tty: a.tty,
        detach_keys: Some(detach_keys),
    };
    match hijack::stream(conn, &opts).await {
        Ok(End::Detached) => return Err(CliError::msg("read escape sequence").into()),
        Ok(End::Done) => {}
        Err(e) => return Err(CliError::msg(e.to_string()).into()),
    }
    let v = match get_json(&ep, &format!("/exec/{exec_id}/json")).await {
        Ok(v) => v,
        Err(e) if e.message.starts_with("Cannot connect") => {
            return Err(CliError::new(255, "").into());
        }
        Err(e) => return Err(e.into()),
    };
    let code = v["ExitCode"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        return Err(CliError::new(code, "").into());
    }
    Ok(())
}
