//! `berth push [-a] [-q] NAME[:TAG]`: docker's progress output, registry credentials from
//! config.json; with `-q` only the reference pushed.

use anyhow::Result;
use clap::Args as ClapArgs;
use futures::StreamExt;
use http::Method;

use super::registry_auth;
use crate::client::{cannot_connect, path_escape, query, raw};
use crate::commands::{Ctx, out, stdout_is_terminal, terminal_width};
use crate::errors::{Args, CliError};
use crate::format::jsonmessage::{Display, JsonMessage};
use crate::reference::Reference;

#[derive(ClapArgs, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Skip image signing (berth has no content trust; accepted for compatibility)
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
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    pub name: Vec<String>,
}

/// What `push` pushes: the reference (a bare name gets `:latest` unless `-a`) and whether
/// the tag was defaulted.
pub fn push_target(name: &str, all_tags: bool) -> Result<(Reference, bool), CliError> {
    let r = Reference::parse_normalized(name).map_err(CliError::msg)?;
    if r.digest.is_some() {
        return Err(CliError::msg("cannot push a digest reference"));
    }
    if all_tags && !r.is_name_only() {
        return Err(CliError::msg("tag can't be used with --all-tags/-a"));
    }
    let defaulted = !all_tags && r.is_name_only();
    Ok((if all_tags { r } else { r.with_default_tag() }, defaulted))
}

pub async fn run(a: PushArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(1), a.name.len())?;
    let (reference, defaulted) = push_target(&a.name[0], a.all_tags)?;
    if defaulted && !a.quiet {
        out(&format!(
            "Using default tag: {}\n",
            reference.tag.as_deref().unwrap_or("latest")
        ))?;
    }
    let client = ctx.client().await?;
    let tag = if a.all_tags {
        String::new()
    } else {
        reference.tag.clone().unwrap_or_default()
    };
    let path = format!(
        "/v{}/images/{}/push{}",
        client.api_version,
        path_escape(&reference.familiar_name()),
        query(&[("tag", &tag)])
    );
    let auth = registry_auth(ctx, &reference);
    let resp = raw::send(
        &client.host,
        Method::POST,
        &path,
        &[("X-Registry-Auth", auth)],
        None,
    )
    .await
    .map_err(|_| cannot_connect(&client.host))?;
    if !resp.status().is_success() {
        let (_, body) = raw::read_body(resp)
            .await
            .map_err(|e| CliError::msg(e.to_string()))?;
        return Err(CliError::msg(format!(
            "Error response from daemon: {}",
            raw::error_message(&body)
        ))
        .into());
    }
    let mut stream = raw::json_values(resp.into_body());
    // `-q` shows nothing of the stream but its error (docker renders it into io.Discard).
    let sink: Box<dyn std::io::Write> = if a.quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout())
    };
    let terminal = stdout_is_terminal() && !a.quiet;
    let mut display = Display::new(sink, terminal, terminal_width());
    while let Some(text) = stream.next().await {
        let text = text.map_err(|e| CliError::msg(e.to_string()))?;
        let msg: JsonMessage = serde_json::from_str(&text)
            .map_err(|e| CliError::msg(format!("error decoding push progress: {e}")))?;
        if let Err(e) = display.message(&msg)? {
            return Err(CliError::new(if e.code == 0 { 1 } else { e.code }, e.message).into());
        }
    }
    if a.quiet {
        out(&format!("{}\n", reference.full()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let (r, defaulted) = push_target("127.0.0.1:5000/team/app", false).unwrap();
        assert!(defaulted);
        assert_eq!(r.full(), "127.0.0.1:5000/team/app:latest");
        let (r, defaulted) = push_target("127.0.0.1:5000/team/app:1", false).unwrap();
        assert!(!defaulted);
        assert_eq!(r.tag.as_deref(), Some("1"));
        let (r, _) = push_target("me/app", true).unwrap();
        assert_eq!(r.full(), "docker.io/me/app");
        assert_eq!(
            push_target("me/app:1", true).unwrap_err().message,
            "tag can't be used with --all-tags/-a"
        );
    }
}
