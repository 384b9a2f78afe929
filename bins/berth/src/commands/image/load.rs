//! `berth load [-i FILE]`: streams a tar archive to the daemon and shows its messages.

use std::io::IsTerminal;

use anyhow::Result;
use bollard::models::BuildInfo;
use bollard::query_parameters::ImportImageOptions;
use clap::Args as ClapArgs;
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use crate::commands::{Ctx, stdout_is_terminal, terminal_width};
use crate::errors::CliError;
use crate::format::jsonmessage::{Display, ErrorDetail, JsonMessage, Progress};

#[derive(ClapArgs, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "string")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

fn message(info: &BuildInfo) -> JsonMessage {
    JsonMessage {
        id: info.id.clone().unwrap_or_default(),
        stream: info.stream.clone().unwrap_or_default(),
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

pub async fn run(a: LoadArgs, ctx: &Ctx) -> Result<()> {
    let body = match a.input.as_deref().filter(|i| !i.is_empty()) {
        None => {
            if std::io::stdin().is_terminal() {
                return Err(CliError::msg("requested load from stdin, but stdin is empty").into());
            }
            bollard::body_try_stream(ReaderStream::new(tokio::io::stdin()))
        }
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| CliError::msg(format!("open {path}: {}", io_text(&e))))?;
            bollard::body_try_stream(ReaderStream::new(file))
        }
    };
    let client = ctx.client().await?;
    let quiet = a.quiet || !stdout_is_terminal();
    let opts = ImportImageOptions {
        quiet,
        ..Default::default()
    };
    let mut stream = client.docker.import_image(opts, body, None);
    let mut display = Display::new(std::io::stdout(), stdout_is_terminal(), terminal_width());
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| client.error(e))?;
        if let Err(e) = display.message(&message(&info))? {
            return Err(CliError::new(if e.code == 0 { 1 } else { e.code }, e.message).into());
        }
    }
    Ok(())
}

/// Go's wording for common I/O errors (`no such file or directory`).
pub fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text,
            }
        }
    }
}
