//! `berth image prune`.

use std::collections::HashMap;

use anyhow::Result;
use bollard::query_parameters::PruneImagesOptions;
use clap::Args as ClapArgs;

use crate::cli::parse_filter;
use crate::commands::{Ctx, confirm, out};
use crate::errors::CliError;
use crate::format::units::human_size;

#[derive(ClapArgs, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

const ALL_WARNING: &str = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?";
const DANGLING_WARNING: &str =
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";

pub async fn run(a: PruneArgs, ctx: &Ctx) -> Result<()> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &a.filter {
        filters.entry(k.clone()).or_default().push(v.clone());
    }
    filters
        .entry("dangling".into())
        .or_default()
        .push((!a.all).to_string());
    if !a.force && !confirm(if a.all { ALL_WARNING } else { DANGLING_WARNING })? {
        return Err(CliError::cancelled().into());
    }
    let client = ctx.client().await?;
    let report = client
        .docker
        .prune_images(Some(PruneImagesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| client.error(e))?;
    let mut text = String::new();
    let mut reclaimed = 0;
    let deleted = report.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        text.push_str("Deleted Images:\n");
        for item in deleted {
            match (item.untagged.filter(|u| !u.is_empty()), item.deleted) {
                (Some(u), _) => text.push_str(&format!("untagged: {u}\n")),
                (None, d) => text.push_str(&format!("deleted: {}\n", d.unwrap_or_default())),
            }
        }
        text.push('\n');
        reclaimed = report.space_reclaimed.unwrap_or(0);
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(reclaimed as f64)
    ));
    out(&text)
}
