//! `berth attach`: stream a running container's output (and stdin), exit with its status.

use std::io::IsTerminal;

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error, finish};
use super::hijack::{self, End, StreamOpts};
use super::{container_path, get_json};
use crate::commands::Ctx;
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(
        long = "sig-proxy",
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = crate::cli::parse_go_bool
    )]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: Vec<String>,
}

/// docker's `inspectContainerAndCheckState`.
async fn check_state(ep: &Endpoint, name: &str) -> Result<serde_json::Value, CliError> {
    let c = get_json(ep, &format!("{}/json", container_path(name))).await?;
    let state = &c["State"];
    if !state["Running"].as_bool().unwrap_or(false) {
        return Err(CliError::msg(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if state["Paused"].as_bool().unwrap_or(false) {
        return Err(CliError::msg(
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    if state["Restarting"].as_bool().unwrap_or(false) {
        return Err(CliError::msg(
            "You cannot attach to a restarting container, wait until it is running",
        ));
    }
    Ok(c)
}

pub async fn run(a: AttachArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(1), a.container.len())?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let name = &a.container[0];
    let wait = ep
        .send(
            "POST",
            &format!("{}/wait", container_path(name)),
            None,
            false,
        )
        .await?;
    let c = check_state(&ep, name).await?;
    let id = c["Id"].as_str().unwrap_or_default().to_string();
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin_wanted = !a.no_stdin;
    if stdin_wanted && tty && !std::io::stdin().is_terminal() {
        return Err(CliError::msg("the input device is not a TTY").into());
    }
    let detach_keys = a
        .detach_keys
        .clone()
        .or_else(|| ctx.config().ok().and_then(|c| c.string("detachKeys")));
    let stdin = stdin_wanted && c["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if a.sig_proxy && !tty {
        hijack::forward_signals(ep.clone(), id.clone());
    }
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
    check_state(&ep, name).await?;
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
        Ok(End::Detached) => return Err(CliError::msg("read escape sequence").into()),
        Ok(End::Done) => {}
        Err(e) => return Err(CliError::msg(e.to_string()).into()),
    }
    let (status, body) = finish(wait).await;
    if !(200..300).contains(&status) {
        return Err(daemon_error(&body).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(CliError::msg(msg).into());
    }
    let code = v["StatusCode"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        return Err(CliError::new(code, "").into());
    }
    Ok(())
}
