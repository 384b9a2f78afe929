//! `berth volume create`: prints the new (or existing) volume's name.

use std::collections::HashMap;

use anyhow::Result;
use bollard::models::VolumeCreateRequest;
use clap::Args as ClapArgs;

use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(
        short,
        long,
        value_name = "string",
        default_value = "local",
        help = "Specify volume driver name (default \"local\")",
        hide_default_value = true
    )]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list", value_parser = parse_label)]
    pub label: Vec<String>,
    /// Specify volume name
    #[arg(long, value_name = "string", hide = true)]
    pub name: Option<String>,
    /// Set driver specific options (default map[])
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    #[arg(value_name = "VOLUME")]
    pub volume: Vec<String>,
}

/// docker's `opts.ValidateLabel`: a label needs a name.
fn parse_label(s: &str) -> Result<String, String> {
    let (k, v) = match s.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v)),
        None => (s.trim(), None),
    };
    if k.is_empty() {
        return Err(format!("invalid label '{s}': empty name"));
    }
    Ok(match v {
        Some(v) => format!("{k}={v}"),
        None => k.to_string(),
    })
}

/// `KEY=VALUE` (or `KEY`, an empty value) pairs into a map, as docker's `MapOpts`.
fn to_map(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s.to_string(), String::new()),
        })
        .collect()
}

pub async fn run(a: CreateArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Max(1), a.volume.len())?;
    let mut name = a.name.clone().unwrap_or_default();
    if let Some(arg) = a.volume.first() {
        if !name.is_empty() {
            return Err(CliError::msg(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            )
            .into());
        }
        name = arg.clone();
    }
    let opts = to_map(&a.opt);
    let labels = to_map(&a.label);
    let request = VolumeCreateRequest {
        name: (!name.is_empty()).then_some(name),
        driver: Some(a.driver.clone()),
        driver_opts: (!opts.is_empty()).then_some(opts),
        labels: (!labels.is_empty()).then_some(labels),
        ..Default::default()
    };
    let client = ctx.client().await?;
    let volume = client
        .docker
        .create_volume(request)
        .await
        .map_err(|e| client.error(e))?;
    out(&format!("{}\n", volume.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_options() {
        assert_eq!(parse_label("a=b").unwrap(), "a=b");
        assert_eq!(parse_label(" c ").unwrap(), "c");
        assert_eq!(
            parse_label("=x").unwrap_err(),
            "invalid label '=x': empty name"
        );
        let m = to_map(&["type=tmpfs".into(), "o=size=1m,uid=0".into(), "k".into()]);
        assert_eq!(m["o"], "size=1m,uid=0");
        assert_eq!(m["k"], "");
    }
}
