//! `berth rename`.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error};
use super::container_path;
use crate::commands::Ctx;
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub names: Vec<String>,
}

pub async fn run(a: RenameArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(2), a.names.len())?;
    let old = a.names[0].trim();
    let new = a.names[1].trim();
    if old.is_empty() || new.is_empty() {
        return Err(CliError::msg("Error: Neither old nor new names may be empty").into());
    }
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let (status, body) = ep
        .call(
            "POST",
            &format!(
                "{}/rename{}",
                container_path(old),
                crate::client::query(&[("name", new)])
            ),
            None,
        )
        .await?;
    if !(200..300).contains(&status) {
        eprintln!("{}", daemon_error(&body).message);
        return Err(CliError::msg(format!("Error: failed to rename container named {old}")).into());
    }
    Ok(())
}
