//! `berth volume …`: create, inspect, ls, prune, rm.

pub mod create;
pub mod inspect;
pub mod list;
pub mod prune;
pub mod remove;

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume
    #[command(override_usage = "[OPTIONS] [VOLUME]")]
    Create(create::CreateArgs),
    /// Display detailed information on one or more volumes
    #[command(override_usage = "[OPTIONS] VOLUME [VOLUME...]")]
    Inspect(inspect::InspectArgs),
    /// List volumes
    #[command(override_usage = "[OPTIONS]", alias = "list")]
    Ls(list::ListArgs),
    /// Remove unused local volumes
    #[command(override_usage = "[OPTIONS]")]
    Prune(prune::PruneArgs),
    #[command(
        override_usage = "[OPTIONS] VOLUME [VOLUME...]",
        alias = "remove",
        about = "Remove one or more volumes",
        long_about = "Remove one or more volumes. You cannot remove a volume that is in use by a container."
    )]
    Rm(remove::RemoveArgs),
}

pub async fn run(cmd: VolumeCommand, ctx: &Ctx) -> Result<()> {
    match cmd {
        VolumeCommand::Create(a) => create::run(a, ctx).await,
        VolumeCommand::Inspect(a) => inspect::run(a, ctx).await,
        VolumeCommand::Ls(a) => list::run(a, ctx).await,
        VolumeCommand::Prune(a) => prune::run(a, ctx).await,
        VolumeCommand::Rm(a) => remove::run(a, ctx).await,
    }
}
