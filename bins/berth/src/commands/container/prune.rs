//! `berth container prune`.

use std::collections::HashMap;

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error};
use crate::cli::parse_filter;
use crate::commands::{Ctx, confirm, out};
use crate::errors::CliError;
use crate::format::units::human_size;

#[derive(ClapArgs, Debug)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

const WARNING: &str =
    "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?";

pub async fn run(a: PruneArgs, ctx: &Ctx) -> Result<()> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &a.filter {
        filters.entry(k.clone()).or_default().push(v.clone());
    }
    if !a.force && !confirm(WARNING)? {
        return Err(CliError::cancelled().into());
    }
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let q = if filters.is_empty() {
        String::new()
    } else {
        crate::client::query(&[("filters", &serde_json::to_string(&filters)?)])
    };
    let (status, body) = ep
        .call("POST", &format!("/containers/prune{q}"), None)
        .await?;
    if !(200..300).contains(&status) {
        return Err(daemon_error(&body).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut text = String::new();
    let deleted = v["ContainersDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        text.push_str("Deleted Containers:\n");
        for id in deleted {
            text.push_str(id.as_str().unwrap_or(""));
            text.push('\n');
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    ));
    out(&text)
}
