//! `berth diff`: `C`/`A`/`D` and the path, one change a line.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::Endpoint;
use super::{container_path, get_json};
use crate::commands::{Ctx, out};
use crate::errors::Args;

#[derive(ClapArgs, Debug)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: Vec<String>,
}

pub async fn run(a: DiffArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(1), a.container.len())?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let v = get_json(&ep, &format!("{}/changes", container_path(&a.container[0]))).await?;
    let mut text = String::new();
    for c in v.as_array().into_iter().flatten() {
        let kind = match c["Kind"].as_i64().unwrap_or(-1) {
            0 => "C",
            1 => "A",
            2 => "D",
            _ => "",
        };
        text.push_str(&format!("{kind} {}\n", c["Path"].as_str().unwrap_or("")));
    }
    out(&text)
}
