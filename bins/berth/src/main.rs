//! `berth`: a Docker-compatible command-line client for berthd (and any Docker Engine).

mod cli;
mod client;
mod commands;
mod config_file;
mod connect;
mod errors;
mod format;
mod reference;

use std::process::ExitCode;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use cli::Parsed;
use commands::system::{GIT_COMMIT, VERSION};

fn init_logging(level: &str, debug: bool) -> Result<(), String> {
    let level = match (debug, level) {
        (true, _) => "debug",
        (_, "debug" | "info" | "warn" | "error") => level,
        (_, "fatal" | "panic") => "error",
        (_, "warning") => "warn",
        (_, "trace") => "trace",
        _ => return Err(format!("Unable to parse logging level: {level}")),
    };
    // A target filter, not an `EnvFilter`: that one's directive parser compiles
    // regular expressions, ~0.5 ms of every command's start.
    let level: tracing::Level = level.parse().map_err(|_| format!("bad level {level}"))?;
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::WARN)
        .with_target("berth", level);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let (cli, inv) = match cli::parse(&argv) {
        Parsed::Run(cli, inv) => (cli, inv),
        Parsed::Exit { code, text, stdout } => {
            if stdout {
                print!(
                    "{}",
                    if text.ends_with('\n') {
                        text
                    } else {
                        format!("{text}\n")
                    }
                );
            } else {
                eprint!(
                    "{}",
                    if text.ends_with('\n') {
                        text
                    } else {
                        format!("{text}\n")
                    }
                );
            }
            return ExitCode::from(code as u8);
        }
    };
    if cli.version {
        println!("berth version {VERSION}, build {GIT_COMMIT}");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = init_logging(&cli.log_level, cli.debug) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let Some(command) = cli.command else {
        print!("{}", cli::command().render_help());
        return ExitCode::SUCCESS;
    };
    let host = match connect::choose_host(
        &cli.host,
        std::env::var("BERTH_HOST").ok(),
        std::env::var("DOCKER_HOST").ok(),
    ) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{}", e.message);
            return ExitCode::FAILURE;
        }
    };
    let ctx = commands::Ctx::new(inv, host, cli.config.as_deref(), cli.debug);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(command, &ctx)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let (code, message) = errors::exit_status(&err);
            if !message.is_empty() {
                eprintln!("{message}");
            }
            ExitCode::from(code as u8)
        }
    }
}
