//! Errors with docker's exit codes: the message is printed to stderr as is (when not empty)
//! and the process exits with `code`.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// Exit 1 with a message.
    pub fn msg(message: impl Into<String>) -> CliError {
        CliError::new(1, message)
    }

    /// A cancelled operation (a prompt answered "no"): nothing printed, exit 0 as docker does.
    pub fn cancelled() -> CliError {
        CliError::new(0, "")
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The exit code and message for any error that reaches `main`.
pub fn exit_status(err: &anyhow::Error) -> (i32, String) {
    match err.downcast_ref::<CliError>() {
        Some(e) => (e.code, e.message.clone()),
        None => (1, format!("{err:#}")),
    }
}

/// How many positional arguments a command takes (cobra's `cli.RequiresMinArgs` …).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Args {
    Exact(usize),
    Min(usize),
    Max(usize),
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "argument" } else { "arguments" }
}

/// docker's usage error for a wrong argument count, or None when `n` fits.
pub fn check_args(path: &str, usage: &str, rule: Args, n: usize) -> Result<(), CliError> {
    let (problem, see) = match rule {
        Args::Exact(k) if n != k => (format!("requires {k} {}", plural(k)), "Run"),
        Args::Min(k) if n < k => (format!("requires at least {k} {}", plural(k)), "See"),
        Args::Max(k) if n > k => (format!("requires at most {k} {}", plural(k)), "Run"),
        _ => return Ok(()),
    };
    Err(CliError::msg(format!(
        "berth: '{path}' {problem}\n\nUsage:  {usage}\n\n{see} '{path} --help' for more information"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_like_docker() {
        let err = check_args(
            "berth image inspect",
            "berth image inspect [OPTIONS] IMAGE [IMAGE...]",
            Args::Min(1),
            0,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "berth: 'berth image inspect' requires at least 1 argument\n\n\
             Usage:  berth image inspect [OPTIONS] IMAGE [IMAGE...]\n\n\
             See 'berth image inspect --help' for more information"
        );
        assert_eq!(err.code, 1);
        let err = check_args("berth tag", "u", Args::Exact(2), 3).unwrap_err();
        assert!(
            err.message
                .starts_with("berth: 'berth tag' requires 2 arguments\n")
        );
        assert!(check_args("berth images", "u", Args::Max(1), 1).is_ok());
    }
}
