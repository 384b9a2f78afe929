//! The commands, one module per noun and one file per command, like docker's CLI. Each
//! command has an `Args` struct (clap) and a `run(args, ctx)`.

pub mod container;
pub mod image;
pub mod inspect;
pub mod registry;
pub mod system;
pub mod volume;

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
    /// Manage volumes
    #[command(subcommand, override_usage = "COMMAND", arg_required_else_help = true)]
    Volume(volume::VolumeCommand),
    /// Manage containers
    #[command(subcommand, override_usage = "COMMAND", arg_required_else_help = true)]
    Container(container::ContainerCommand),
    /// Create and run a new container from an image
    #[command(
        override_usage = "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        disable_help_flag = true
    )]
    Run(container::run::RunArgs),
    /// Create a new container
    #[command(
        override_usage = "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        disable_help_flag = true
    )]
    Create(container::create::CreateArgs),
    /// List containers
    #[command(override_usage = "[OPTIONS]")]
    Ps(container::list::ListArgs),
    /// Execute a command in a running container
    #[command(override_usage = "[OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(container::exec::ExecArgs),
    /// Start one or more stopped containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Start(container::start::StartArgs),
    /// Stop one or more running containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Stop(container::stop::StopArgs),
    /// Kill one or more running containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Kill(container::kill::KillArgs),
    /// Restart one or more containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Restart(container::restart::RestartArgs),
    /// Remove one or more containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Rm(container::rm::RmArgs),
    /// Fetch the logs of a container
    #[command(override_usage = "[OPTIONS] CONTAINER")]
    Logs(container::logs::LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    #[command(override_usage = "CONTAINER [CONTAINER...]")]
    Wait(container::wait::WaitArgs),
    /// Attach local standard input, output, and error streams to a running container
    #[command(override_usage = "[OPTIONS] CONTAINER")]
    Attach(container::attach::AttachArgs),
    /// Display the running processes of a container
    #[command(override_usage = "CONTAINER [ps OPTIONS]")]
    Top(container::top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    #[command(override_usage = "[OPTIONS] [CONTAINER...]")]
    Stats(container::stats::StatsArgs),
    /// Rename a container
    #[command(override_usage = "CONTAINER NEW_NAME")]
    Rename(container::rename::RenameArgs),
    /// Pause all processes within one or more containers
    #[command(override_usage = "CONTAINER [CONTAINER...]")]
    Pause(container::pause::PauseArgs),
    /// Unpause all processes within one or more containers
    #[command(override_usage = "CONTAINER [CONTAINER...]")]
    Unpause(container::unpause::UnpauseArgs),
    /// Copy files/folders between a container and the local filesystem
    #[command(
        override_usage = "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
    )]
    Cp(container::cp::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    #[command(override_usage = "CONTAINER")]
    Diff(container::diff::DiffArgs),
    /// Create a new image from a container's changes
    #[command(override_usage = "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]")]
    Commit(container::commit::CommitArgs),
    /// Export a container's filesystem as a tar archive
    #[command(override_usage = "[OPTIONS] CONTAINER")]
    Export(container::export::ExportArgs),
    /// List port mappings or a specific mapping for the container
    #[command(override_usage = "CONTAINER [PRIVATE_PORT[/PROTO]]")]
    Port(container::port::PortArgs),
    /// Update configuration of one or more containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Update(container::update::UpdateArgs),
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
        Command::Volume(c) => volume::run(c, ctx).await,
        Command::Container(c) => container::run(c, ctx).await,
        Command::Run(a) => container::run::run(a, ctx).await,
        Command::Create(a) => container::create::run(a, ctx).await,
        Command::Ps(a) => container::list::run(a, ctx).await,
        Command::Exec(a) => container::exec::run(a, ctx).await,
        Command::Start(a) => container::start::run(a, ctx).await,
        Command::Stop(a) => container::stop::run(a, ctx).await,
        Command::Kill(a) => container::kill::run(a, ctx).await,
        Command::Restart(a) => container::restart::run(a, ctx).await,
        Command::Rm(a) => container::rm::run(a, ctx).await,
        Command::Logs(a) => container::logs::run(a, ctx).await,
        Command::Wait(a) => container::wait::run(a, ctx).await,
        Command::Attach(a) => container::attach::run(a, ctx).await,
        Command::Top(a) => container::top::run(a, ctx).await,
        Command::Stats(a) => container::stats::run(a, ctx).await,
        Command::Rename(a) => container::rename::run(a, ctx).await,
        Command::Pause(a) => container::pause::run(a, ctx).await,
        Command::Unpause(a) => container::unpause::run(a, ctx).await,
        Command::Cp(a) => container::cp::run(a, ctx).await,
        Command::Diff(a) => container::diff::run(a, ctx).await,
        Command::Commit(a) => container::commit::run(a, ctx).await,
        Command::Export(a) => container::export::run(a, ctx).await,
        Command::Port(a) => container::port::run(a, ctx).await,
        Command::Update(a) => container::update::run(a, ctx).await,
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
