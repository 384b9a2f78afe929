//! `berth restart`.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::stop::stop_query;
use super::{for_each, parse};
use crate::commands::Ctx;
use crate::errors::Args;

#[derive(ClapArgs, Debug)]
pub struct RestartArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", alias = "time", value_name = "int", value_parser = parse::go_int, allow_hyphen_values = true)]
    pub timeout: Option<i64>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(a: RestartArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.containers.len())?;
    let q = stop_query(a.signal.as_deref(), a.timeout);
    for_each(ctx, &a.containers, "restart", &q).await
}
