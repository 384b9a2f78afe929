//! `berth save [-o FILE] IMAGE...`: the daemon's tar stream to a file or stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args as ClapArgs;
use futures::StreamExt;

use crate::commands::{Ctx, stdout_is_terminal};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "string")]
    pub output: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// docker's `ValidateOutputPath`: the directory must exist and the path must not be one.
fn validate_output(path: &str) -> Result<(), CliError> {
    let p = Path::new(path);
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::metadata(dir)
    {
        return Err(CliError::msg(format!(
            "failed to save image: invalid output path: stat {}: {}",
            dir.display(),
            super::load::io_text(&e)
        )));
    }
    if p.is_dir() {
        return Err(CliError::msg(
            "failed to save image: cannot write to a directory",
        ));
    }
    Ok(())
}

pub async fn run(a: SaveArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.images.len())?;
    let output = a.output.clone().filter(|o| !o.is_empty());
    match &output {
        None if stdout_is_terminal() => {
            return Err(CliError::msg(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect",
            )
            .into());
        }
        Some(path) => validate_output(path)?,
        None => {}
    }
    let client = ctx.client().await?;
    let names: Vec<&str> = a.images.iter().map(String::as_str).collect();
    let mut stream = client.docker.export_images(&names);
    // Like docker, write to a temporary file beside the target and rename it when complete.
    let (mut sink, tmp): (Box<dyn Write>, Option<PathBuf>) = match &output {
        Some(path) => {
            let target = Path::new(path);
            let dir = target
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let tmp = dir.join(format!(".berth_temp_{}", std::process::id()));
            let file = {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
            }
            .map_err(|e| {
                CliError::msg(format!(
                    "failed to save image: {}",
                    super::load::io_text(&e)
                ))
            })?;
            (Box::new(std::io::BufWriter::new(file)), Some(tmp))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let result: Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| client.error(e))?;
            sink.write_all(&chunk)?;
        }
        sink.flush()?;
        Ok(())
    }
    .await;
    drop(sink);
    match (result, tmp, output) {
        (Ok(()), Some(tmp), Some(path)) => {
            std::fs::rename(&tmp, &path)
                .map_err(|e| CliError::msg(format!("failed to save image: {e}")))?;
            Ok(())
        }
        (Err(e), Some(tmp), _) => {
            let _ = std::fs::remove_file(tmp);
            Err(e)
        }
        (r, _, _) => r,
    }
}
