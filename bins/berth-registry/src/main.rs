//! `berth-registry`: serve an OCI Distribution registry (`serve`) and collect the blobs no
//! manifest references (`gc`). Each command is a thin layer over `berth-registry-server`.

use clap::{Parser, Subcommand};

mod admin;
mod gc;
mod serve;

#[derive(Debug, Parser)]
#[command(
    name = "berth-registry",
    version,
    about = "An OCI Distribution registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the registry API (`/v2/…`) over HTTP or HTTPS.
    Serve(serve::ServeArgs),
    /// Delete blobs that no manifest references and that are older than a grace period.
    Gc(gc::GcArgs),
    /// Manage organisations, users, robot tokens and public repositories; read the audit log.
    Admin(admin::AdminArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve::run(args).await,
        Command::Gc(args) => gc::run(args).await,
        Command::Admin(args) => admin::run(args),
    }
}
