//! The commands, one module per noun and one file per command, like docker's CLI. Each
//! command has an `Args` struct (clap) and a `run(args, ctx)`.

pub mod image;
pub mod inspect;
pub mod registry;
pub mod system;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use tokio::sync::OnceCell;

use crate::cli::Invocation;
use crate::client::Client;
use crate::config_file::{ConfigFile, config_dir};
use crate::connect::{HostChoice, connect};
use crate::errors::{Args, CliError, check_args};

/// What every command gets: how it was invoked, where the daemon is, the client config.
pub struct Ctx {
    pub inv: Invocation,
    pub host: HostChoice,
    pub config_dir: PathBuf,
    pub debug: bool,
    client: OnceCell<Client>,
}

impl Ctx {
    pub fn new(inv: Invocation, host: HostChoice, config_flag: Option<&str>, debug: bool) -> Ctx {
        Ctx {
            inv,
            host,
            config_dir: config_dir(config_flag),
            debug,
            client: OnceCell::new(),
        }
    }

    /// The daemon connection, made on first use (starting berthd when needed).
    pub async fn client(&self) -> Result<&Client, CliError> {
        self.client.get_or_try_init(|| connect(&self.host)).await
    }

    /// docker's usage error when the number of positional arguments does not fit.
    pub fn args(&self, rule: Args, n: usize) -> Result<(), CliError> {
        check_args(&self.inv.path, &self.inv.usage, rule, n)
    }

    pub fn config(&self) -> Result<ConfigFile> {
        ConfigFile::load(&self.config_dir)
    }
}

/// Writes to stdout; a closed pipe ends the program quietly, as it would a Go program.
pub fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(e.into()),
    }
}

pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// The terminal's width for progress bars: what the terminal reports (0 included, as docker
/// reads it), 200 when there is none.
pub fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stdout()).map_or(200, |ws| ws.ws_col as usize)
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Download an image from a registry
    #[command(override_usage = "[OPTIONS] NAME[:TAG|@DIGEST]")]
    Pull(image::pull::PullArgs),
    /// Upload an image to a registry
    #[command(override_usage = "[OPTIONS] NAME[:TAG]")]
    Push(image::push::PushArgs),
    /// List images
    #[command(override_usage = "[OPTIONS] [REPOSITORY[:TAG]]")]
    Images(image::list::ListArgs),
    /// Manage images
    #[command(subcommand, override_usage = "COMMAND", arg_required_else_help = true)]
    Image(image::ImageCommand),
    /// Return low-level information on Docker objects
    #[command(override_usage = "[OPTIONS] NAME|ID [NAME|ID...]")]
    Inspect(inspect::InspectArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    #[command(override_usage = "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")]
    Tag(image::tag::TagArgs),
    /// Remove one or more images
    #[command(override_usage = "[OPTIONS] IMAGE [IMAGE...]")]
    Rmi(image::remove::RemoveArgs),
    /// Show the history of an image
    #[command(override_usage = "[OPTIONS] IMAGE")]
    History(image::history::HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    #[command(override_usage = "[OPTIONS] IMAGE [IMAGE...]")]
    Save(image::save::SaveArgs),
    /// Load an image from a tar archive or STDIN
    #[command(override_usage = "[OPTIONS]")]
    Load(image::load::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    #[command(override_usage = "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]")]
    Import(image::import::ImportArgs),
    /// Display system-wide information
    #[command(override_usage = "[OPTIONS]")]
    Info(system::info::InfoArgs),
    /// Show the Docker version information
    #[command(override_usage = "[OPTIONS]")]
    Version(system::version::VersionArgs),
    /// Get real time events from the server
    #[command(override_usage = "[OPTIONS]")]
    Events(system::events::EventsArgs),
    /// Manage Docker
    #[command(subcommand, override_usage = "COMMAND", arg_required_else_help = true)]
    System(system::SystemCommand),
    /// Authenticate to a registry
    #[command(override_usage = "[OPTIONS] [SERVER]")]
    Login(registry::login::LoginArgs),
    /// Log out from a registry
    #[command(override_usage = "[SERVER]")]
    Logout(registry::logout::LogoutArgs),
}

pub async fn run(cmd: Command, ctx: &Ctx) -> Result<()> {
    match cmd {
        Command::Pull(a) => image::pull::run(a, ctx).await,
        Command::Push(a) => image::push::run(a, ctx).await,
        Command::Images(a) => image::list::run(a, ctx).await,
        Command::Image(c) => image::run(c, ctx).await,
        Command::Inspect(a) => inspect::run(a, ctx).await,
        Command::Tag(a) => image::tag::run(a, ctx).await,
        Command::Rmi(a) => image::remove::run(a, ctx).await,
        Command::History(a) => image::history::run(a, ctx).await,
        Command::Save(a) => image::save::run(a, ctx).await,
        Command::Load(a) => image::load::run(a, ctx).await,
        Command::Import(a) => image::import::run(a, ctx).await,
        Command::Info(a) => system::info::run(a, ctx).await,
        Command::Version(a) => system::version::run(a, ctx).await,
        Command::Events(a) => system::events::run(a, ctx).await,
        Command::System(c) => system::run(c, ctx).await,
        Command::Login(a) => registry::login::run(a, ctx).await,
        Command::Logout(a) => registry::logout::run(a, ctx).await,
    }
}

/// docker's `prompt.Confirm`: asks on stdout, reads one line, true only for `y`/`Y`.
pub fn confirm(message: &str) -> Result<bool> {
    out(&format!("{message} [y/N] "))?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().eq_ignore_ascii_case("y"))
}
