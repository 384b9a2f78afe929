//! `berth container …` and the top-level shortcuts (`run`, `ps`, `exec`, `logs`, …).

pub mod attach;
pub mod commit;
pub mod conn;
pub mod cp;
pub mod create;
pub mod diff;
pub mod exec;
pub mod export;
pub mod hijack;
pub mod inspect;
pub mod kill;
pub mod list;
pub mod logs;
pub mod opts;
pub mod parse;
pub mod pause;
pub mod port;
pub mod ports;
pub mod prune;
pub mod rename;
pub mod restart;
pub mod rm;
pub mod run;
pub mod start;
pub mod stats;
pub mod stop;
pub mod top;
pub mod unpause;
pub mod update;
pub mod wait;

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;
use crate::client::path_escape;
use crate::errors::CliError;
use conn::Endpoint;

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Attach local standard input, output, and error streams to a running container
    #[command(override_usage = "[OPTIONS] CONTAINER")]
    Attach(attach::AttachArgs),
    /// Create a new image from a container's changes
    #[command(override_usage = "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]")]
    Commit(commit::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    #[command(
        override_usage = "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
    )]
    Cp(cp::CpArgs),
    /// Create a new container
    #[command(
        override_usage = "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        disable_help_flag = true
    )]
    Create(create::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    #[command(override_usage = "CONTAINER")]
    Diff(diff::DiffArgs),
    /// Execute a command in a running container
    #[command(override_usage = "[OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(exec::ExecArgs),
    /// Export a container's filesystem as a tar archive
    #[command(override_usage = "[OPTIONS] CONTAINER")]
    Export(export::ExportArgs),
    /// Display detailed information on one or more containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Inspect(inspect::InspectArgs),
    /// Kill one or more running containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Kill(kill::KillArgs),
    /// Fetch the logs of a container
    #[command(override_usage = "[OPTIONS] CONTAINER")]
    Logs(logs::LogsArgs),
    /// List containers
    #[command(override_usage = "[OPTIONS]", alias = "ps", alias = "list")]
    Ls(list::ListArgs),
    /// Pause all processes within one or more containers
    #[command(override_usage = "CONTAINER [CONTAINER...]")]
    Pause(pause::PauseArgs),
    /// List port mappings or a specific mapping for the container
    #[command(override_usage = "CONTAINER [PRIVATE_PORT[/PROTO]]")]
    Port(port::PortArgs),
    /// Remove all stopped containers
    #[command(override_usage = "[OPTIONS]")]
    Prune(prune::PruneArgs),
    /// Rename a container
    #[command(override_usage = "CONTAINER NEW_NAME")]
    Rename(rename::RenameArgs),
    /// Restart one or more containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Restart(restart::RestartArgs),
    /// Remove one or more containers
    #[command(
        override_usage = "[OPTIONS] CONTAINER [CONTAINER...]",
        alias = "remove"
    )]
    Rm(rm::RmArgs),
    /// Create and run a new container from an image
    #[command(
        override_usage = "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        disable_help_flag = true
    )]
    Run(run::RunArgs),
    /// Start one or more stopped containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Start(start::StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    #[command(override_usage = "[OPTIONS] [CONTAINER...]")]
    Stats(stats::StatsArgs),
    /// Stop one or more running containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Stop(stop::StopArgs),
    /// Display the running processes of a container
    #[command(override_usage = "CONTAINER [ps OPTIONS]")]
    Top(top::TopArgs),
    /// Unpause all processes within one or more containers
    #[command(override_usage = "CONTAINER [CONTAINER...]")]
    Unpause(unpause::UnpauseArgs),
    /// Update configuration of one or more containers
    #[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
    Update(update::UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    #[command(override_usage = "CONTAINER [CONTAINER...]")]
    Wait(wait::WaitArgs),
}

pub async fn run(cmd: ContainerCommand, ctx: &Ctx) -> Result<()> {
    match cmd {
        ContainerCommand::Attach(a) => attach::run(a, ctx).await,
        ContainerCommand::Commit(a) => commit::run(a, ctx).await,
        ContainerCommand::Cp(a) => cp::run(a, ctx).await,
        ContainerCommand::Create(a) => create::run(a, ctx).await,
        ContainerCommand::Diff(a) => diff::run(a, ctx).await,
        ContainerCommand::Exec(a) => exec::run(a, ctx).await,
        ContainerCommand::Export(a) => export::run(a, ctx).await,
        ContainerCommand::Inspect(a) => inspect::run(a, ctx).await,
        ContainerCommand::Kill(a) => kill::run(a, ctx).await,
        ContainerCommand::Logs(a) => logs::run(a, ctx).await,
        ContainerCommand::Ls(a) => list::run(a, ctx).await,
        ContainerCommand::Pause(a) => pause::run(a, ctx).await,
        ContainerCommand::Port(a) => port::run(a, ctx).await,
        ContainerCommand::Prune(a) => prune::run(a, ctx).await,
        ContainerCommand::Rename(a) => rename::run(a, ctx).await,
        ContainerCommand::Restart(a) => restart::run(a, ctx).await,
        ContainerCommand::Rm(a) => rm::run(a, ctx).await,
        ContainerCommand::Run(a) => run::run(a, ctx).await,
        ContainerCommand::Start(a) => start::run(a, ctx).await,
        ContainerCommand::Stats(a) => stats::run(a, ctx).await,
        ContainerCommand::Stop(a) => stop::run(a, ctx).await,
        ContainerCommand::Top(a) => top::run(a, ctx).await,
        ContainerCommand::Unpause(a) => unpause::run(a, ctx).await,
        ContainerCommand::Update(a) => update::run(a, ctx).await,
        ContainerCommand::Wait(a) => wait::run(a, ctx).await,
    }
}

/// docker's `reportError` for `run`/`create`: `berth: MSG` and a pointer to the help (always
/// the short `berth run`/`berth create`), exit 125.
pub fn report(ctx: &Ctx, msg: &str) -> CliError {
    CliError::new(
        125,
        format!(
            "berth: {msg}\n\nRun 'berth {} --help' for more information",
            ctx.inv.path.rsplit(' ').next().unwrap_or("run")
        ),
    )
}

/// `/containers/NAME` with the name escaped for a URL path.
pub fn container_path(name: &str) -> String {
    format!("/containers/{}", path_escape(name))
}

/// Runs `POST /containers/NAME/<action>` for each name, printing the name on success and
/// failing with all the errors at the end (docker's stop/kill/pause/… loop).
pub async fn for_each(ctx: &Ctx, names: &[String], action: &str, query: &str) -> Result<()> {
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let mut errors = Vec::new();
    for name in names {
        let path = format!("{}/{action}{query}", container_path(name));
        let (status, body) = ep.call("POST", &path, None).await?;
        if (200..300).contains(&status) || status == 304 {
            super::out(&format!("{name}\n"))?;
        } else {
            errors.push(conn::daemon_error(&body).message);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errors.join("\n")).into())
    }
}

/// Requests a JSON body: the decoded value, or docker's error.
pub async fn get_json(ep: &Endpoint, path: &str) -> Result<serde_json::Value, CliError> {
    let (status, body) = ep.call("GET", path, None).await?;
    if !(200..300).contains(&status) {
        return Err(conn::daemon_error(&body));
    }
    serde_json::from_slice(&body)
        .map_err(|e| CliError::msg(format!("error decoding response: {e}")))
}

#[cfg(test)]
mod tests {
    use crate::cli::{Parsed, parse};
    use crate::commands::Command;

    fn parsed(args: &[&str]) -> Command {
        let argv: Vec<String> = std::iter::once("berth")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        match parse(&argv) {
            Parsed::Run(cli, _) => cli.command.expect("a command"),
            Parsed::Exit { text, .. } => panic!("{args:?}: {text}"),
        }
    }

    #[test]
    fn run_stops_parsing_flags_at_the_image() {
        let Command::Run(a) = parsed(&["run", "-d", "-h", "box", "busybox", "ls", "-l", "-d"])
        else {
            panic!("not run");
        };
        assert!(a.detach);
        assert_eq!(a.opts.hostname.as_deref(), Some("box"));
        assert_eq!(a.args, vec!["busybox", "ls", "-l", "-d"]);
        assert!(a.sig_proxy);
        let Command::Run(a) = parsed(&["run", "--sig-proxy=false", "--rm", "-it", "busybox"])
        else {
            panic!("not run");
        };
        assert!(!a.sig_proxy && a.opts.rm && a.opts.interactive && a.opts.tty);
    }

    #[test]
    fn container_aliases_and_exec() {
        for alias in ["ls", "ps", "list"] {
            assert!(matches!(
                parsed(&["container", alias, "-a"]),
                Command::Container(super::ContainerCommand::Ls(_))
            ));
        }
        assert!(matches!(
            parsed(&["container", "remove", "x"]),
            Command::Container(super::ContainerCommand::Rm(_))
        ));
        let Command::Exec(a) = parsed(&["exec", "-it", "c", "sh", "-c", "echo -n"]) else {
            panic!("not exec");
        };
        assert_eq!(a.args, vec!["c", "sh", "-c", "echo -n"]);
        assert!(a.interactive && a.tty);
    }
}
