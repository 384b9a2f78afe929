//! `berth pull NAME[:TAG|@DIGEST]`: docker's progress output, registry credentials from
//! config.json, the full reference on the last line.

use anyhow::Result;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptions;
use clap::Args as ClapArgs;
use futures::StreamExt;

use super::{registry_auth, with_auth};
use crate::commands::{Ctx, out, stdout_is_terminal, terminal_width};
use crate::errors::{Args, CliError};
use crate::format::jsonmessage::{Display, ErrorDetail, JsonMessage, Progress};
use crate::reference::Reference;

#[derive(ClapArgs, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Skip image verification (berth has no content trust; accepted for compatibility)
    #[arg(
        long,
        hide = true,
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = crate::cli::parse_go_bool
    )]
    pub disable_content_trust: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "NAME")]
    pub name: Vec<String>,
}

/// A bollard progress item as docker's JSON message.
pub fn message(info: &CreateImageInfo) -> JsonMessage {
    JsonMessage {
        id: info.id.clone().unwrap_or_default(),
        status: info.status.clone().unwrap_or_default(),
        progress: info.progress_detail.as_ref().map(|p| Progress {
            current: p.current.unwrap_or(0),
            total: p.total.unwrap_or(0),
            ..Default::default()
        }),
        error: info.error_detail.as_ref().map(|e| ErrorDetail {
            code: e.code.unwrap_or(0) as i32,
            message: e.message.clone().unwrap_or_default(),
        }),
        ..Default::default()
    }
}

/// What `pull` asks the daemon for: `fromImage` and `tag` (a tag or a digest).
pub fn pull_target(name: &str, all_tags: bool) -> Result<(Reference, bool), CliError> {
    let r = Reference::parse_normalized(name).map_err(CliError::msg)?;
    if all_tags && !r.is_name_only() {
        return Err(CliError::msg("tag can't be used with --all-tags/-a"));
    }
    let defaulted = !all_tags && r.is_name_only();
    Ok((if all_tags { r } else { r.with_default_tag() }, defaulted))
}

pub async fn run(a: PullArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(1), a.name.len())?;
    let (reference, defaulted) = pull_target(&a.name[0], a.all_tags)?;
    if defaulted && !a.quiet {
        out("Using default tag: latest\n")?;
    }
    let client = ctx.client().await?;
    let tag = if a.all_tags {
        None
    } else {
        reference.digest.clone().or_else(|| reference.tag.clone())
    };
    let opts = CreateImageOptions {
        from_image: Some(reference.familiar_name()),
        tag,
        platform: a.platform.clone().unwrap_or_default().to_lowercase(),
        ..Default::default()
    };
    let docker = with_auth(&client.docker, registry_auth(ctx, &reference));
    let mut stream = docker.create_image(Some(opts), None, None);
    let mut display = Display::new(std::io::stdout(), stdout_is_terminal(), terminal_width());
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| client.error(e))?;
        if a.quiet {
            continue;
        }
        if let Err(e) = display.message(&message(&info))? {
            return Err(CliError::new(if e.code == 0 { 1 } else { e.code }, e.message).into());
        }
    }
    out(&format!("{}\n", reference.full()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let (r, defaulted) = pull_target("alpine", false).unwrap();
        assert!(defaulted);
        assert_eq!(r.full(), "docker.io/library/alpine:latest");
        assert_eq!(r.familiar_name(), "alpine");
        let (r, defaulted) = pull_target("localhost:5000/x:1", false).unwrap();
        assert!(!defaulted);
        assert_eq!(r.full(), "localhost:5000/x:1");
        let (r, _) = pull_target("alpine", true).unwrap();
        assert_eq!(r.full(), "docker.io/library/alpine");
        assert_eq!(
            pull_target("alpine:3", true).unwrap_err().message,
            "tag can't be used with --all-tags/-a"
        );
        assert_eq!(
            pull_target("Alpine", false).unwrap_err().message,
            "invalid reference format: repository name (library/Alpine) must be lowercase"
        );
    }
}
