//! `berth rmi` / `berth image rm`: prints the daemon's `Untagged:` / `Deleted:` lines.

use anyhow::Result;
use bollard::query_parameters::RemoveImageOptions;
use clap::Args as ClapArgs;

use crate::client::is_not_found;
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};

#[derive(ClapArgs, Debug)]
pub struct RemoveArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub async fn run(a: RemoveArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.images.len())?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    let mut fatal = false;
    for image in &a.images {
        let opts = RemoveImageOptions {
            force: a.force,
            noprune: a.no_prune,
            ..Default::default()
        };
        match client.docker.remove_image(image, Some(opts), None).await {
            Ok(items) => {
                let mut text = String::new();
                for item in items {
                    if let Some(u) = item.untagged.filter(|u| !u.is_empty()) {
                        text.push_str(&format!("Untagged: {u}\n"));
                    } else if let Some(d) = item.deleted.filter(|d| !d.is_empty()) {
                        text.push_str(&format!("Deleted: {d}\n"));
                    }
                }
                out(&text)?;
            }
            Err(e) => {
                // With --force a missing image is reported but does not fail the command.
                if !is_not_found(&e) || !a.force {
                    fatal = true;
                }
                errors.push(client.error(e).message);
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let message = errors.join("\n");
    if fatal {
        return Err(CliError::msg(message).into());
    }
    eprintln!("{message}");
    Ok(())
}
