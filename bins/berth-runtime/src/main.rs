//! `berth-runtime`: a runc-compatible OCI runtime over youki's libcontainer.
//!
//! The binary only parses arguments and sets up logging; each subcommand lives in
//! `commands/`. Run it from a single-threaded process: libcontainer forks.

mod cli;
mod commands;
mod foreground;
mod launch;
mod logging;
mod state;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let log_to_file = cli.log.is_some();
    if let Err(err) = logging::init(cli.log.as_deref(), cli.log_format) {
        eprintln!("berth-runtime: cannot set up logging: {err:#}");
        return std::process::ExitCode::FAILURE;
    }
    match commands::dispatch(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            // Say it once: in the log file when there is one (a caller such as a shim
            // may have given its container's stdio as ours), else on stderr.
            if log_to_file {
                tracing::error!("{err:#}");
            } else {
                eprintln!("berth-runtime: {err:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
