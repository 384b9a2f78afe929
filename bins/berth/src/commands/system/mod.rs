//! `berth system …` and the top-level `info`, `version`, `events`.

pub mod df;
pub mod events;
pub mod info;
pub mod version;

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show docker disk usage
    #[command(override_usage = "[OPTIONS]")]
    Df(df::DfArgs),
    /// Get real time events from the server
    #[command(override_usage = "[OPTIONS]")]
    Events(events::EventsArgs),
    /// Display system-wide information
    #[command(override_usage = "[OPTIONS]")]
    Info(info::InfoArgs),
}

pub async fn run(cmd: SystemCommand, ctx: &Ctx) -> Result<()> {
    match cmd {
        SystemCommand::Df(a) => df::run(a, ctx).await,
        SystemCommand::Events(a) => events::run(a, ctx).await,
        SystemCommand::Info(a) => info::run(a, ctx).await,
    }
}

/// The client's version and build, as `-v` and `version` show them.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// Go's names for this platform (`GOOS`/`GOARCH`).
pub fn go_os_arch() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    (std::env::consts::OS, arch)
}
