//! `berth image inspect`: the daemon's JSON for each image.

use anyhow::Result;
use clap::Args as ClapArgs;

use crate::commands::Ctx;
use crate::commands::inspect::{INSPECT_FORMAT_HELP, inspect_typed};
use crate::errors::Args;

#[derive(ClapArgs, Debug)]
pub struct InspectArgs {
    #[arg(short, long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub async fn run(a: InspectArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.images.len())?;
    inspect_typed(ctx, "image", &a.images, a.format.as_deref(), false).await
}
