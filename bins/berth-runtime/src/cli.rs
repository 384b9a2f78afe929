//! runc's command line: global flags and one struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

#[derive(Debug, Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "A runc-compatible OCI runtime"
)]
pub struct Cli {
    /// Directory holding the containers' state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Write the runtime's log to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of the log.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container; its process waits for `start`.
    Create(Create),
    /// Start the user process of a created container.
    Start(ContainerId),
    /// Print a container's state as JSON.
    State(ContainerId),
    /// Send a signal to the container's init process.
    Kill(Kill),
    /// Delete a container and its resources.
    Delete(Delete),
    /// Create and start a container.
    Run(Run),
    /// List the containers under the root.
    List(List),
    /// Write a default config.json into the bundle.
    Spec(Spec),
    /// Run another process in a running container.
    Exec(Exec),
    /// Freeze every process of a container.
    Pause(ContainerId),
    /// Thaw a paused container.
    Resume(ContainerId),
    /// List the processes of a container.
    Ps(Ps),
}

#[derive(Debug, Args)]
pub struct Exec {
    /// A JSON file with the OCI `process` to run (instead of the command line).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Return once the process is started instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Current working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Environment variables (`KEY=VALUE`), repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// `UID[:GID]` to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group IDs, repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Capabilities to add, repeatable.
    #[arg(short, long = "cap")]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// File to write the process's PID to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pseudoterminal's master end.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Ps {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    pub id: String,
    /// Options for `ps` (table format only).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerId {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Create {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container process's PID to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pseudoterminal's master end.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// berth's extension for its shim: a connected socket on which `create` says
    /// `created`, then waits for `start` and starts the container itself, so starting
    /// needs no second runtime process.
    #[arg(long, hide = true)]
    pub control_fd: Option<i32>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Run {
    #[command(flatten)]
    pub create: Create,
    /// Return once the container is started instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct Kill {
    /// Send the signal to every process of the container.
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Signal name or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct Delete {
    /// Kill the container first if it is still running.
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct List {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Print only the container IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct Spec {
    /// Directory to write config.json into.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}
