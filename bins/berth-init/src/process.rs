//! Starting one process of the container (the entrypoint or an exec): its user from the
//! image's /etc/passwd and /etc/group, its environment, its working directory, its own
//! session, and its stdio on pipes or a terminal whose host ends the relay serves.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use berth_vm::protocol::ProcessConfig;

use crate::{sys, user};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A running process and the relay's ends of its stdio.
pub struct Proc {
    pub id: u32,
    pub pid: i32,
    pub stdin: Option<OwnedFd>,
    /// (fd, is_stderr); with a terminal only the master, as stdout.
    pub outputs: Vec<(OwnedFd, bool)>,
    pub tty_master: Option<i32>,
    pub pending_stdin: Vec<u8>,
    pub close_stdin: bool,
    pub exit: Option<i32>,
    /// After the exit, output is drained until then at most (a grandchild may hold it).
    pub drain_deadline: Option<Instant>,
}

/// Why a process did not start, with the exit code Docker reports for it.
pub struct SpawnError {
    pub message: String,
    pub code: i32,
}

/// The environment for a process: the config's, plus PATH, HOME and HOSTNAME defaults.
pub fn child_env(cfg: &ProcessConfig, hostname: &str, home: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for kv in &cfg.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    let mut default = |k: &str, v: &str| {
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.to_string(), v.to_string()));
        }
    };
    default("PATH", DEFAULT_PATH);
    if !hostname.is_empty() {
        default("HOSTNAME", hostname);
    }
    default("HOME", home);
    if cfg.tty {
        default("TERM", "xterm");
    }
    env
}

/// Starts `cfg` as process `id`.
pub fn spawn(id: u32, cfg: &ProcessConfig, hostname: &str) -> Result<Proc, SpawnError> {
    let fail = |message: String| SpawnError { message, code: 126 };
    let Some(program) = cfg.args.first() else {
        return Err(SpawnError {
            message: "no command given".into(),
            code: 127,
        });
    };
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    let creds = user::resolve(&cfg.user, &passwd, &group).map_err(fail)?;
    let cwd = if cfg.cwd.is_empty() {
        "/".to_string()
    } else {
        cfg.cwd.clone()
    };
    crate::mkdir(&cwd).map_err(|e| fail(format!("mkdir {cwd}: {e}")))?;

    let mut cmd = Command::new(program);
    cmd.args(&cfg.args[1..])
        .env_clear()
        .envs(child_env(cfg, hostname, &creds.home))
        .current_dir(&cwd);
    let io_err = |e: io::Error| fail(format!("stdio: {e}"));
    let mut proc = Proc {
        id,
        pid: 0,
        stdin: None,
        outputs: Vec::new(),
        tty_master: None,
        pending_stdin: Vec::new(),
        close_stdin: false,
        exit: None,
        drain_deadline: None,
    };
    let tty = cfg.tty;
    if tty {
        let (master, slave) = sys::openpty().map_err(io_err)?;
        cmd.stdin(Stdio::from(slave.try_clone().map_err(io_err)?))
            .stdout(Stdio::from(slave.try_clone().map_err(io_err)?))
            .stderr(Stdio::from(slave));
        sys::set_nonblocking(master.as_raw_fd()).map_err(io_err)?;
        proc.tty_master = Some(master.as_raw_fd());
        proc.stdin = Some(master.try_clone().map_err(io_err)?);
        proc.outputs.push((master, false));
    } else {
        let (in_r, in_w) = sys::pipe().map_err(io_err)?;
        let (out_r, out_w) = sys::pipe().map_err(io_err)?;
        let (err_r, err_w) = sys::pipe().map_err(io_err)?;
        cmd.stdin(Stdio::from(in_r))
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(err_w));
        for fd in [&in_w, &out_r, &err_r] {
            sys::set_nonblocking(fd.as_raw_fd()).map_err(io_err)?;
        }
        proc.stdin = Some(in_w);
        proc.outputs.push((out_r, false));
        proc.outputs.push((err_r, true));
    }
    let (uid, gid, groups) = (creds.uid, creds.gid, creds.groups.clone());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe syscalls (setsid, ioctl, setgroups, setgid, setuid, sigprocmask)
    // without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setgroups(groups.len(), groups.as_ptr()) < 0
                || libc::setgid(gid) < 0
                || libc::setuid(uid) < 0
            {
                return Err(io::Error::last_os_error());
            }
            sys::unblock_all_signals()
        });
    }
    let child = cmd.spawn().map_err(|e| exec_error(program, &e))?;
    // The child's ends of the pipes / the pty slave were moved into `cmd`: drop them here
    // so EOF arrives when the process and what it started are gone.
    drop(cmd);
    proc.pid = child.id() as i32;
    // Reaped through waitpid(-1) by the relay.
    drop(child);
    Ok(proc)
}

/// A failed exec, in runc's words (the docker CLI reads them for its exit code).
fn exec_error(program: &str, e: &io::Error) -> SpawnError {
    match e.kind() {
        io::ErrorKind::NotFound if program.contains('/') => SpawnError {
            message: format!("exec: \"{program}\": stat {program}: no such file or directory"),
            code: 127,
        },
        io::ErrorKind::NotFound => SpawnError {
            message: format!("exec: \"{program}\": executable file not found in $PATH"),
            code: 127,
        },
        io::ErrorKind::PermissionDenied => SpawnError {
            message: format!("exec: \"{program}\": permission denied"),
            code: 126,
        },
        _ => SpawnError {
            message: format!("exec: \"{program}\": {e}"),
            code: 126,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_failures_read_as_runc_reports_them() {
        let missing = io::Error::from(io::ErrorKind::NotFound);
        let e = exec_error("nope", &missing);
        assert_eq!(
            (e.message.as_str(), e.code),
            ("exec: \"nope\": executable file not found in $PATH", 127)
        );
        assert_eq!(exec_error("/bin/nope", &missing).code, 127);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(exec_error("/etc/passwd", &denied).code, 126);
    }

    #[test]
    fn environment_defaults() {
        let cfg = ProcessConfig {
            env: vec!["A=1".into(), "A=2".into(), "HOME=/h".into(), "EMPTY".into()],
            tty: true,
            ..Default::default()
        };
        let env = child_env(&cfg, "box", "/root");
        let get = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("2"));
        assert_eq!(get("HOME"), Some("/h"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(get("PATH"), Some(DEFAULT_PATH));
        assert_eq!(get("HOSTNAME"), Some("box"));
        assert_eq!(get("TERM"), Some("xterm"));
    }
}
