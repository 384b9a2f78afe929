//! `berth rm`: `DELETE /containers/ID` (`-f` only reports containers that do not exist).

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error};
use super::container_path;
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(a: RmArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.containers.len())?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let mut errors = Vec::new();
    for name in &a.containers {
        let name = name.trim_matches('/');
        if name.is_empty() {
            errors.push("Container name cannot be empty".to_string());
            continue;
        }
        let mut q = Vec::new();
        if a.volumes {
            q.push("v=1");
        }
        if a.link {
            q.push("link=1");
        }
        if a.force {
            q.push("force=1");
        }
        let q = if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        };
        let (status, body) = ep
            .call("DELETE", &format!("{}{q}", container_path(name)), None)
            .await?;
        if (200..300).contains(&status) {
            out(&format!("{name}\n"))?;
        } else if a.force && status == 404 {
            eprintln!("{}", daemon_error(&body).message);
        } else {
            errors.push(daemon_error(&body).message);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errors.join("\n")).into())
    }
}
