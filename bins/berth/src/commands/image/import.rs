//! `berth import FILE|URL|- [REPOSITORY[:TAG]]`: a filesystem tarball becomes an image; the
//! daemon's answer (the new image ID) is printed.

use anyhow::Result;
use bollard::query_parameters::CreateImageOptions;
use clap::Args as ClapArgs;
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::load::io_text;
use super::pull::message;
use crate::commands::{Ctx, stdout_is_terminal, terminal_width};
use crate::errors::{Args, CliError};
use crate::format::jsonmessage::Display;
use crate::reference::Reference;

#[derive(ClapArgs, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long, value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long, value_name = "string")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    pub args: Vec<String>,
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

pub async fn run(a: ImportArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.args.len())?;
    let source = &a.args[0];
    let repo = a.args.get(1).cloned().filter(|r| !r.is_empty());
    if let Some(r) = &repo {
        Reference::parse_normalized(r).map_err(CliError::msg)?;
    }
    let (from_src, body) = if source == "-" {
        (
            "-".to_string(),
            Some(bollard::body_try_stream(ReaderStream::new(
                tokio::io::stdin(),
            ))),
        )
    } else if is_url(source) {
        (source.clone(), None)
    } else {
        let file = tokio::fs::File::open(source)
            .await
            .map_err(|e| CliError::msg(format!("open {source}: {}", io_text(&e))))?;
        (
            "-".to_string(),
            Some(bollard::body_try_stream(ReaderStream::new(file))),
        )
    };
    let client = ctx.client().await?;
    let opts = CreateImageOptions {
        from_src: Some(from_src),
        repo,
        message: a.message.clone().filter(|m| !m.is_empty()),
        changes: a.change.clone(),
        platform: a.platform.clone().unwrap_or_default().to_lowercase(),
        ..Default::default()
    };
    let mut stream = client.docker.create_image(Some(opts), body, None);
    let mut display = Display::new(std::io::stdout(), stdout_is_terminal(), terminal_width());
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| client.error(e))?;
        if let Err(e) = display.message(&message(&info))? {
            return Err(CliError::new(if e.code == 0 { 1 } else { e.code }, e.message).into());
        }
    }
    Ok(())
}
