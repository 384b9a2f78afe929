//! `berth volume prune`: unused anonymous volumes, or all unused ones with `-a`.

use std::collections::HashMap;

use anyhow::Result;
use bollard::query_parameters::PruneVolumesOptions;
use clap::Args as ClapArgs;

use crate::cli::parse_filter;
use crate::commands::{Ctx, confirm, out};
use crate::errors::CliError;
use crate::format::units::human_size;

#[derive(ClapArgs, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

const ANONYMOUS_WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

pub async fn run(a: PruneArgs, ctx: &Ctx) -> Result<()> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &a.filter {
        filters.entry(k.clone()).or_default().push(v.clone());
    }
    let mut warning = ANONYMOUS_WARNING;
    if a.all {
        if filters.contains_key("all") {
            return Err(CliError::msg(
                "conflicting options: cannot specify both --all and --filter all=1",
            )
            .into());
        }
        filters.insert("all".into(), vec!["true".into()]);
        warning = ALL_WARNING;
    }
    if !a.force && !confirm(warning)? {
        return Err(CliError::cancelled().into());
    }
    let client = ctx.client().await?;
    let report = client
        .docker
        .prune_volumes(Some(PruneVolumesOptions {
            filters: (!filters.is_empty()).then_some(filters),
        }))
        .await
        .map_err(|e| client.error(e))?;
    let mut text = String::new();
    let mut reclaimed = 0;
    let deleted = report.volumes_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        text.push_str("Deleted Volumes:\n");
        for name in deleted {
            text.push_str(&name);
            text.push('\n');
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
