//! `berth kill`.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::for_each;
use crate::commands::Ctx;
use crate::errors::Args;

#[derive(ClapArgs, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(a: KillArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.containers.len())?;
    let q = match a.signal.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => crate::client::query(&[("signal", s)]),
        None => String::new(),
    };
    for_each(ctx, &a.containers, "kill", &q).await
}
