//! `berth wait`: print each container's exit code when it stops.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error};
use super::container_path;
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct WaitArgs {
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(a: WaitArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.containers.len())?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let mut errors = Vec::new();
    for name in &a.containers {
        let (status, body) = ep
            .call("POST", &format!("{}/wait", container_path(name)), None)
            .await?;
        if !(200..300).contains(&status) {
            errors.push(daemon_error(&body).message);
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
            errors.push(m.to_string());
            continue;
        }
        out(&format!("{}\n", v["StatusCode"].as_i64().unwrap_or(0)))?;
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errors.join("\n")).into())
    }
}
