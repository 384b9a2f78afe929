//! The command line: global options, docker's help layout, and clap's errors turned into
//! docker's messages and exit codes (125 for flag errors, 1 for unknown commands).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command as ClapCommand, CommandFactory, FromArgMatches, Parser};

use crate::commands::Command;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    override_usage = "[OPTIONS] COMMAND [ARG...]",
    disable_version_flag = true,
    disable_help_subcommand = true,
    disable_help_flag = true
)]
pub struct Cli {
    /// Location of client config files (default "~/.docker")
    #[arg(long, value_name = "string")]
    pub config: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "list")]
    pub host: Vec<String>,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long, value_name = "string", default_value = "info")]
    pub log_level: String,
    /// Print version information and quit
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What was invoked: the command path for messages (`berth image ls`) and its usage line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    pub path: String,
    pub usage: String,
}

/// The outcome of parsing the command line.
pub enum Parsed {
    Run(Box<Cli>, Invocation),
    /// Print `text` (to stdout or stderr) and exit with `code`.
    Exit {
        code: i32,
        text: String,
        stdout: bool,
    },
}

/// The clap command with docker's help layout and full usage lines.
pub fn command() -> ClapCommand {
    style(bare_command(), "berth", None, &mut String::new())
}

/// The command tree before docker's help and usage layout is applied.
fn bare_command() -> ClapCommand {
    Cli::command().arg(
        Arg::new("help")
            .short('h')
            .long("help")
            .action(ArgAction::Help)
            .global(true)
            .hide(true),
    )
}

/// The tree laid out for the command line `argv`: only the commands on the invoked path
/// get docker's usage and help layout (rendering a usage clones and walks a command,
/// and doing it for each of the ~150 commands was most of the client's start-up).
/// Also returns the invoked command's usage (after its path).
fn command_for(argv: &[String]) -> (ClapCommand, String) {
    let bare = bare_command();
    let (_, path) = invoked(&bare, argv);
    let names: Vec<String> = path.split(' ').skip(1).map(str::to_string).collect();
    let mut usage = String::new();
    let cmd = style(bare, "berth", Some(&names), &mut usage);
    (cmd, usage)
}

fn usage_text(cmd: &mut ClapCommand) -> String {
    let usage = cmd.render_usage().to_string();
    usage.trim_start_matches("Usage:").trim().to_string()
}

/// Docker's usage line and help layout for `cmd` (at `path`) and, below it, for every
/// subcommand (`only: None`) or only for the chain of subcommand names in `only`; every
/// command refuses a `help` subcommand either way, as docker's do.
fn style(
    mut cmd: ClapCommand,
    path: &str,
    only: Option<&[String]>,
    leaf_usage: &mut String,
) -> ClapCommand {
    // Rendered on the command itself, not a clone: a clone of the root is a clone of
    // the whole tree.
    let suffix = usage_text(&mut cmd);
    let usage = format!("{path} {suffix}");
    if only.is_some_and(<[String]>::is_empty) {
        leaf_usage.clone_from(&usage);
    }
    let has_options = cmd
        .get_arguments()
        .any(|a| !a.is_positional() && !a.is_hide_set());
    let template = if path == "berth" {
        "Usage:  {usage}\n\n{about}\n\nCommands:\n{subcommands}\n\nGlobal Options:\n{options}\n\nRun 'berth COMMAND --help' for more information on a command.\n".to_string()
    } else if cmd.has_subcommands() {
        format!(
            "Usage:  {{usage}}\n\n{{about}}\n\nCommands:\n{{subcommands}}\n\nRun '{path} COMMAND --help' for more information on a command.\n"
        )
    } else if has_options {
        "Usage:  {usage}\n\n{about}\n\nOptions:\n{options}\n".to_string()
    } else {
        "Usage:  {usage}\n\n{about}\n".to_string()
    };
    let cmd = cmd
        .override_usage(usage)
        .help_template(template)
        .disable_help_subcommand(true);
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd;
    for name in names {
        let sub_path = format!("{path} {name}");
        cmd = match only {
            None => cmd.mut_subcommand(&name, |sub| style(sub, &sub_path, None, leaf_usage)),
            Some([next, rest @ ..]) if *next == name => {
                cmd.mut_subcommand(&name, |sub| style(sub, &sub_path, Some(rest), leaf_usage))
            }
            Some(_) => cmd.mut_subcommand(&name, no_help_subcommand),
        };
    }
    cmd
}

/// `help` is not a subcommand anywhere below `cmd`.
fn no_help_subcommand(cmd: ClapCommand) -> ClapCommand {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd.disable_help_subcommand(true);
    for name in names {
        cmd = cmd.mut_subcommand(&name, no_help_subcommand);
    }
    cmd
}

/// Walks the arguments to the deepest subcommand they name (for usage in error messages).
fn invoked<'a>(root: &'a ClapCommand, argv: &[String]) -> (&'a ClapCommand, String) {
    let mut cmd = root;
    let mut path = "berth".to_string();
    let mut iter = argv.iter().skip(1);
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg.starts_with('-') {
            // Options of the root that take a value consume the next argument.
            let takes_value = cmd
                .get_arguments()
                .filter(|a| a.get_action().takes_values())
                .any(|a| {
                    a.get_long().is_some_and(|l| *arg == format!("--{l}"))
                        || a.get_short().is_some_and(|s| *arg == format!("-{s}"))
                });
            if takes_value {
                iter.next();
            }
            continue;
        }
        match cmd.find_subcommand(arg) {
            Some(sub) => {
                path = format!("{path} {}", sub.get_name());
                cmd = sub;
            }
            None => break,
        }
    }
    (cmd, path)
}

fn context_str(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        _ => None,
    }
}

/// The flag as docker names it in messages: `-H, --human` or `--format`.
fn flag_names(cmd: &ClapCommand, display: &str) -> (String, Option<char>, Option<String>) {
    let long = display
        .split(' ')
        .find_map(|w| w.strip_prefix("--"))
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        });
    let arg = cmd.get_arguments().find(|a| match (&long, a.get_long()) {
        (Some(l), Some(al)) => l == al,
        _ => false,
    });
    let short = arg.and_then(Arg::get_short);
    let both = match (short, &long) {
        (Some(s), Some(l)) => format!("-{s}, --{l}"),
        (None, Some(l)) => format!("--{l}"),
        _ => display.to_string(),
    };
    (both, short, long)
}

fn flag_error(path: &str, usage: &str, msg: &str) -> Parsed {
    Parsed::Exit {
        code: 125,
        text: format!("{msg}\n\nUsage:  {usage}\n\nRun '{path} --help' for more information"),
        stdout: false,
    }
}

/// Parses `argv` (including the program name) the way docker's CLI does.
pub fn parse(argv: &[String]) -> Parsed {
    let (mut root, usage) = command_for(argv);
    let (_, path) = invoked(&root, argv);
    match root.try_get_matches_from_mut(argv) {
        Ok(matches) => match Cli::from_arg_matches(&matches) {
            Ok(cli) => Parsed::Run(Box::new(cli), Invocation { path, usage }),
            Err(e) => Parsed::Exit {
                code: 125,
                text: e.to_string(),
                stdout: false,
            },
        },
        Err(err) => {
            let (leaf, _) = invoked(&root, argv);
            map_error(err, leaf, &path, &usage, argv)
        }
    }
}

fn map_error(
    err: clap::Error,
    leaf: &ClapCommand,
    path: &str,
    usage: &str,
    argv: &[String],
) -> Parsed {
    match err.kind() {
        ErrorKind::DisplayHelp => Parsed::Exit {
            code: 0,
            text: err.render().to_string(),
            stdout: true,
        },
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let help = leaf.clone().render_help().to_string();
            Parsed::Exit {
                code: 0,
                text: help,
                stdout: false,
            }
        }
        ErrorKind::InvalidSubcommand => {
            let name = context_str(&err, ContextKind::InvalidSubcommand).unwrap_or_default();
            let text = if leaf.get_name() == "berth" {
                format!(
                    "berth: unknown command: berth {name}\n\nRun 'berth --help' for more information"
                )
            } else {
                format!(
                    "berth: unknown command: {path} {name}\n\nUsage:  {path}\n\nRun '{path} --help' for more information"
                )
            };
            Parsed::Exit {
                code: 1,
                text,
                stdout: false,
            }
        }
        ErrorKind::UnknownArgument => {
            let arg = context_str(&err, ContextKind::InvalidArg).unwrap_or_default();
            if let Some(long) = arg.strip_prefix("--") {
                let name = long.split('=').next().unwrap_or(long);
                flag_error(path, usage, &format!("unknown flag: --{name}"))
            } else if let Some(short) = arg.strip_prefix('-') {
                let c = short.chars().next().unwrap_or('-');
                flag_error(
                    path,
                    usage,
                    &format!("unknown shorthand flag: '{c}' in -{c}"),
                )
            } else if leaf.has_subcommands() {
                let text = format!(
                    "berth: unknown command: {path} {arg}\n\nUsage:  {path}\n\nRun '{path} --help' for more information"
                );
                Parsed::Exit {
                    code: 1,
                    text,
                    stdout: false,
                }
            } else {
                let text = format!(
                    "berth: '{path}' accepts no arguments\n\nUsage:  {usage}\n\nRun '{path} --help' for more information"
                );
                Parsed::Exit {
                    code: 1,
                    text,
                    stdout: false,
                }
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::NoEquals => {
            let display = context_str(&err, ContextKind::InvalidArg).unwrap_or_default();
            let value = context_str(&err, ContextKind::InvalidValue).unwrap_or_default();
            let (both, short, long) = flag_names(leaf, &display);
            let missing = value.is_empty() && err.kind() != ErrorKind::ValueValidation;
            if missing {
                let typed_short =
                    short.filter(|s| argv.last().is_some_and(|a| *a == format!("-{s}")));
                let msg = match (typed_short, long) {
                    (Some(s), _) => format!("flag needs an argument: '{s}' in -{s}"),
                    (None, Some(l)) => format!("flag needs an argument: --{l}"),
                    (None, None) => format!("flag needs an argument: {display}"),
                };
                return flag_error(path, usage, &msg);
            }
            let reason = match std::error::Error::source(&err) {
                Some(src) => src.to_string(),
                None => "invalid value".to_string(),
            };
            flag_error(
                path,
                usage,
                &format!("invalid argument \"{value}\" for \"{both}\" flag: {reason}"),
            )
        }
        _ => {
            let text = err.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            flag_error(path, usage, &first)
        }
    }
}

/// Parses Go's boolean syntax (`strconv.ParseBool`) for flags such as `history -H=false`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// docker's filter flag value: `key=value`.
pub fn parse_filter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) => Ok((k.trim().to_lowercase(), v.trim().to_string())),
        None => Err("bad format of filter (expected name=value)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &str) -> Parsed {
        let argv: Vec<String> = std::iter::once("berth")
            .chain(args.split_whitespace())
            .map(String::from)
            .collect();
        parse(&argv)
    }

    fn exit(args: &str) -> (i32, String) {
        match run(args) {
            Parsed::Exit { code, text, .. } => (code, text),
            Parsed::Run(..) => panic!("{args} parsed"),
        }
    }

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn unknown_commands() {
        let (code, text) = exit("foo");
        assert_eq!(code, 1);
        assert_eq!(
            text,
            "berth: unknown command: berth foo\n\nRun 'berth --help' for more information"
        );
        let (code, text) = exit("image foo");
        assert_eq!(code, 1);
        assert!(
            text.starts_with("berth: unknown command: berth image foo\n\nUsage:  berth image\n"),
            "{text}"
        );
    }

    #[test]
    fn flag_errors() {
        let (code, text) = exit("images --bogus");
        assert_eq!(code, 125);
        assert_eq!(
            text,
            "unknown flag: --bogus\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information"
        );
        let (_, text) = exit("image ls -z");
        assert!(
            text.starts_with(
                "unknown shorthand flag: 'z' in -z\n\nUsage:  berth image ls [OPTIONS]"
            ),
            "{text}"
        );
        let (code, text) = exit("images --format");
        assert_eq!(code, 125);
        assert!(
            text.starts_with("flag needs an argument: --format\n"),
            "{text}"
        );
        let (_, text) = exit("images -f");
        assert!(
            text.starts_with("flag needs an argument: 'f' in -f\n"),
            "{text}"
        );
        let (code, text) = exit("history -H=foo x");
        assert_eq!(code, 125);
        assert!(
            text.starts_with("invalid argument \"foo\" for \"-H, --human\" flag: strconv.ParseBool: parsing \"foo\": invalid syntax\n"),
            "{text}"
        );
        let (code, text) = exit("version x");
        assert_eq!(code, 1);
        assert!(
            text.starts_with("berth: 'berth version' accepts no arguments\n"),
            "{text}"
        );
    }

    #[test]
    fn help_goes_to_stdout() {
        match run("images --help") {
            Parsed::Exit {
                code: 0,
                text,
                stdout: true,
            } => {
                assert!(
                    text.starts_with(
                        "Usage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nList images\n"
                    ),
                    "{text}"
                );
                assert!(text.contains("--digests"));
            }
            _ => panic!("no help"),
        }
        match run("image") {
            Parsed::Exit {
                code: 0,
                text,
                stdout: false,
            } => {
                assert!(
                    text.starts_with("Usage:  berth image COMMAND\n\nManage images\n"),
                    "{text}"
                );
            }
            _ => panic!("no help"),
        }
    }

    #[test]
    fn invocations() {
        match run("-H unix:///x.sock image list -a") {
            Parsed::Run(cli, inv) => {
                assert_eq!(cli.host, vec!["unix:///x.sock".to_string()]);
                assert_eq!(inv.path, "berth image ls");
                assert_eq!(inv.usage, "berth image ls [OPTIONS] [REPOSITORY[:TAG]]");
            }
            Parsed::Exit { text, .. } => panic!("{text}"),
        }
    }

    #[test]
    fn go_bools_and_filters() {
        assert_eq!(parse_go_bool("false"), Ok(false));
        assert_eq!(parse_go_bool("T"), Ok(true));
        assert!(parse_go_bool("yes").is_err());
        assert_eq!(
            parse_filter("Dangling=true"),
            Ok(("dangling".into(), "true".into()))
        );
        assert!(parse_filter("foo").is_err());
    }
}
