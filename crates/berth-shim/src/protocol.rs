//! Requests and responses: one JSON line each way per connection.

use serde::{Deserialize, Serialize};

/// What the daemon asks of a shim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container's process (the shim creates it before it reports
    /// ready, so that attach connections can be in place before the first byte).
    Start,
    /// The container's pid and status.
    State,
    /// Answer once the container has exited (at once if it already has).
    Wait,
    /// Send `signal` to the container's init, or to every process in it.
    Kill { signal: i32, all: bool },
    /// Set the terminal size of the container (or of an exec'd process).
    Resize {
        exec_id: Option<String>,
        height: u16,
        width: u16,
    },
    /// Stream the container's output from now on, and feed it stdin.
    Attach(AttachRequest),
    /// Run another process in the container; the connection streams its I/O.
    Exec(ExecRequest),
    /// Freeze every process of the container.
    Pause,
    /// Thaw it.
    Resume,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttachRequest {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Close the container's stdin when this client ends its stdin (`StdinOnce`).
    pub close_stdin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub exec_id: String,
    /// The OCI runtime-spec `process` object to run.
    pub process: serde_json::Value,
    /// Give the process a stdin pipe fed from this connection.
    pub stdin: bool,
    /// Docker's `--user` as given (micro-VMs resolve it in the guest; an OCI runtime
    /// gets the ids already in `process.user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// What a shim answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    State(ShimState),
    Exited(ExitStatus),
    /// An exec'd process is running with this host pid; its stream follows.
    ExecStarted {
        pid: i32,
    },
    Error {
        message: String,
    },
}

/// The container as the shim sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimState {
    /// The container's init process, as a host pid.
    pub pid: i32,
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
}

/// How a process ended. Written by the shim to `exit.json` in its state directory for
/// the container's init, and sent in the final frame of an exec stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit status, or 128 plus the number of the signal that killed it.
    pub exit_code: i32,
    /// The cgroup's OOM killer killed a process of the container.
    #[serde(default)]
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds.
    pub finished_at: String,
    /// Set when the shim failed rather than the process (the process's status is then
    /// meaningless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ExitStatus {
    pub fn now(exit_code: i32, oom_killed: bool) -> ExitStatus {
        ExitStatus {
            exit_code,
            oom_killed,
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            error: None,
        }
    }

    /// Decodes a `waitpid` status as a shell does: the exit status, or 128 + signal.
    pub fn code_of_wait_status(status: i32) -> i32 {
        let signal = status & 0x7f;
        if signal == 0 {
            (status >> 8) & 0xff
        } else {
            128 + signal
        }
    }
}

/// The first line the shim writes on its stdout: ready (with the init's pid) or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    Created { pid: i32 },
    Failed { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json_lines() {
        let line = serde_json::to_string(&Request::Kill {
            signal: 15,
            all: false,
        })
        .unwrap();
        assert_eq!(line, r#"{"op":"kill","signal":15,"all":false}"#);
        let back: Request = serde_json::from_str(&line).unwrap();
        assert_eq!(
            back,
            Request::Kill {
                signal: 15,
                all: false
            }
        );
        let attach: Request = serde_json::from_str(
            r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false,"close_stdin":true}"#,
        )
        .unwrap();
        assert!(matches!(
            attach,
            Request::Attach(AttachRequest { stdin: true, .. })
        ));
    }

    #[test]
    fn wait_statuses_decode_like_a_shell() {
        assert_eq!(ExitStatus::code_of_wait_status(0), 0);
        assert_eq!(ExitStatus::code_of_wait_status(42 << 8), 42);
        assert_eq!(ExitStatus::code_of_wait_status(255 << 8), 255);
        assert_eq!(ExitStatus::code_of_wait_status(9), 137);
        assert_eq!(ExitStatus::code_of_wait_status(15 | 0x80), 143);
    }
}
