//! `berth-registry gc`: one mark-and-sweep over the configured storage.

use std::path::PathBuf;
use std::time::Duration;

use berth_registry_server::config::Overrides;
use berth_registry_server::gc::{self, GcOptions, parse_duration};
use clap::Args;

use crate::serve::load_config;

#[derive(Debug, Args)]
pub struct GcArgs {
    /// The registry's configuration file (for object storage); --root overrides its root.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data root of a filesystem registry.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Keep unreferenced blobs younger than this (`30m`, `1h`, `2d`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub grace: Duration,
    /// Upload sessions older than this are abandoned and purged.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub upload_expiry: Duration,
    /// List what would be deleted without deleting it.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: GcArgs) -> anyhow::Result<()> {
    let flags = Overrides {
        root: args.root,
        ..Overrides::default()
    };
    let config = load_config(args.config.as_deref(), flags)?;
    let storage = config.storage_driver()?;
    let opts = GcOptions {
        grace: args.grace,
        dry_run: args.dry_run,
        upload_expiry: args.upload_expiry,
    };
    let report = gc::collect(&storage, &opts).await?;
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for (digest, size) in &report.deleted {
        println!("{verb} {digest} ({size} bytes)");
    }
    for id in &report.uploads_purged {
        println!("{verb} upload {id}");
    }
    println!(
        "{} blobs: {} referenced, {} recent, {} {verb} ({} bytes), {} links, {} uploads",
        report.blobs,
        report.marked,
        report.recent,
        report.deleted.len(),
        report.bytes_freed(),
        report.links_removed,
        report.uploads_purged.len(),
    );
    Ok(())
}
