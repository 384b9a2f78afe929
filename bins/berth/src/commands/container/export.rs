//! `berth export`: the container's filesystem as a tar, to `-o FILE` or stdout.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Args as ClapArgs;
use futures::StreamExt;

use crate::commands::Ctx;
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: Vec<String>,
}

pub async fn run(a: ExportArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(1), a.container.len())?;
    let output = a.output.clone().filter(|o| !o.is_empty());
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::msg(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        )
        .into());
    }
    if let Some(o) = &output {
        let dir = std::path::Path::new(o)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            return Err(CliError::msg(format!(
                "failed to export container: invalid output path: stat {}: no such file or directory",
                dir.display()
            ))
            .into());
        }
    }
    let client = ctx.client().await?;
    let mut stream = client.docker.export_container(&a.container[0]);
    let mut sink: Box<dyn Write> = match &output {
        Some(o) => Box::new(std::fs::File::create(o).map_err(|e| {
            CliError::msg(format!(
                "failed to export container: open {o}: {}",
                super::parse::io_error_text(&e)
            ))
        })?),
        None => Box::new(std::io::stdout()),
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| client.error(e))?;
        if let Err(e) = sink.write_all(&chunk).and_then(|_| sink.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(e.into());
        }
    }
    Ok(())
}
