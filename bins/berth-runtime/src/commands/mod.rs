//! One module per subcommand, each a thin layer over libcontainer.

mod create;
mod delete;
mod exec;
mod kill;
mod list;
mod ps;
mod run;
pub mod spec;
mod start;
mod state;

use crate::cli::{Cli, Command};

/// Runs one subcommand; the result is the process's exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let root = cli.root;
    match cli.command {
        Command::Create(args) => create::create_command(&root, &args).map(|()| 0),
        Command::Start(args) => start::start(&root, &args.id).map(|()| 0),
        Command::State(args) => state::state(&root, &args.id).map(|()| 0),
        Command::Kill(args) => kill::kill(&root, &args).map(|()| 0),
        Command::Delete(args) => delete::delete(&root, &args).map(|()| 0),
        Command::Run(args) => run::run(&root, &args),
        Command::List(args) => list::list(&root, &args).map(|()| 0),
        Command::Spec(args) => spec::spec(&args).map(|()| 0),
        Command::Exec(args) => exec::exec(&root, &args),
        Command::Ps(args) => ps::ps(&root, &args).map(|()| 0),
        Command::Pause(args) => start::pause(&root, &args.id).map(|()| 0),
        Command::Resume(args) => start::resume(&root, &args.id).map(|()| 0),
    }
}
