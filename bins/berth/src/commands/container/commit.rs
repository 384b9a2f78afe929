//! `berth commit`: `POST /commit`, printing the new image's ID.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error};
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};
use crate::reference::Reference;

#[derive(ClapArgs, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long, value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(
        short = 'p',
        long,
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = crate::cli::parse_go_bool
    )]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub args: Vec<String>,
}

pub async fn run(a: CommitArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.args.len())?;
    ctx.args(Args::Max(2), a.args.len())?;
    let mut q: Vec<(&str, String)> = vec![("container", a.args[0].clone())];
    if let Some(r) = a.args.get(1).filter(|r| !r.is_empty()) {
        let parsed = Reference::parse_normalized(r).map_err(CliError::msg)?;
        if parsed.digest.is_some() {
            return Err(CliError::msg("refusing to create a tag with a digest reference").into());
        }
        let tagged = parsed.with_default_tag();
        q.push(("repo", tagged.familiar_name()));
        q.push(("tag", tagged.tag.clone().unwrap_or_default()));
    }
    if let Some(m) = &a.message {
        q.push(("comment", m.clone()));
    }
    if let Some(au) = &a.author {
        q.push(("author", au.clone()));
    }
    for c in &a.change {
        q.push(("changes", c.clone()));
    }
    if !a.pause {
        q.push(("pause", "0".into()));
    }
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let (status, body) = ep
        .call(
            "POST",
            &format!("/commit{}", crate::client::query(&pairs)),
            Some(&serde_json::Value::Null),
        )
        .await?;
    if !(200..300).contains(&status) {
        return Err(daemon_error(&body).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    out(&format!("{}\n", v["Id"].as_str().unwrap_or_default()))
}
