//! `berth unpause`.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::for_each;
use crate::commands::Ctx;
use crate::errors::Args;

#[derive(ClapArgs, Debug)]
pub struct UnpauseArgs {
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(a: UnpauseArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.containers.len())?;
    for_each(ctx, &a.containers, "unpause", "").await
}
