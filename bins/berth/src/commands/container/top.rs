//! `berth top`: the daemon's process table, aligned like docker's tabwriter.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::Endpoint;
use super::{container_path, get_json};
use crate::commands::{Ctx, out};
use crate::errors::Args;
use crate::format::tabwriter::tabwrite;

#[derive(ClapArgs, Debug)]
pub struct TopArgs {
    #[arg(
        value_name = "CONTAINER",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

pub async fn run(a: TopArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.args.len())?;
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let mut path = format!("{}/top", container_path(&a.args[0]));
    if a.args.len() > 1 {
        let ps_args = a.args[1..].join(" ");
        path.push_str(&crate::client::query(&[("ps_args", &ps_args)]));
    }
    let v = get_json(&ep, &path).await?;
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or("").to_string())
            .collect()
    };
    let mut text = format!("{}\n", strs(&v["Titles"]).join("\t"));
    for p in v["Processes"].as_array().into_iter().flatten() {
        text.push_str(&strs(p).join("\t"));
        text.push('\n');
    }
    out(&tabwrite(&text, 20, 3))
}
