//! `berth volume rm`: prints each removed name; errors are collected and reported at the end.

use anyhow::Result;
use bollard::query_parameters::RemoveVolumeOptions;
use clap::Args as ClapArgs;

use crate::client::path_escape;
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct RemoveArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

pub async fn run(a: RemoveArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.volumes.len())?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    for name in &a.volumes {
        let opts = RemoveVolumeOptions { force: a.force };
        match client
            .docker
            .remove_volume(&path_escape(name), Some(opts))
            .await
        {
            Ok(()) => out(&format!("{name}\n"))?,
            Err(e) => errors.push(client.error(e).message),
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(CliError::msg(errors.join("\n")).into())
}
