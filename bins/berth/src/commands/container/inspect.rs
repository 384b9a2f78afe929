//! `berth container inspect`.

use anyhow::Result;
use clap::Args as ClapArgs;

use crate::commands::Ctx;
use crate::commands::inspect::{INSPECT_FORMAT_HELP, inspect_typed};
use crate::errors::Args;

#[derive(ClapArgs, Debug)]
pub struct InspectArgs {
    #[arg(short, long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    #[arg(value_name = "CONTAINER")]
    pub names: Vec<String>,
}

pub async fn run(a: InspectArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.names.len())?;
    inspect_typed(ctx, "container", &a.names, a.format.as_deref(), a.size).await
}
