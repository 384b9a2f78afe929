//! Waiting for a foreground container: signals sent to the runtime are forwarded to
//! the container's init process, and its exit status becomes ours.

use std::io;
use std::mem::MaybeUninit;

use anyhow::{Context, bail};

/// Signals that report a fault in this process itself; they stay unblocked.
const SYNCHRONOUS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
];

/// The runtime with every other signal blocked, so that `wait` receives them with
/// `sigwaitinfo` instead of dying from them.
pub struct Foreground {
    set: libc::sigset_t,
}

impl Foreground {
    pub fn block_signals() -> anyhow::Result<Self> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `sigfillset` initializes the set it is given, which is valid for writes.
        if unsafe { libc::sigfillset(set.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error()).context("sigfillset");
        }
        // SAFETY: the set was initialized by `sigfillset` just above.
        let mut set = unsafe { set.assume_init() };
        for signal in SYNCHRONOUS {
            // SAFETY: `set` is an initialized signal set and `signal` a valid signal number.
            unsafe { libc::sigdelset(&mut set, signal) };
        }
        // SAFETY: `set` is initialized; a null old-set pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc)).context("block signals");
        }
        Ok(Foreground { set })
    }

    /// Forwards signals to `pid` until it exits; returns its exit code, or 128 plus the
    /// signal that killed it.
    pub fn wait(&self, pid: libc::pid_t) -> anyhow::Result<u8> {
        loop {
            if let Some(code) = reap(pid)? {
                return Ok(code);
            }
            // SAFETY: `self.set` is an initialized signal set; the info pointer may be null.
            let signal = unsafe { libc::sigwaitinfo(&self.set, std::ptr::null_mut()) };
            if signal < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err).context("wait for a signal");
            }
            if signal == libc::SIGCHLD {
                continue;
            }
            tracing::debug!(signal, pid, "forward signal to the container");
            // SAFETY: plain syscall; `pid` is our own child, which we have not reaped yet.
            if unsafe { libc::kill(pid, signal) } != 0 {
                let err = io::Error::last_os_error();
                tracing::warn!(signal, pid, "forward signal: {err}");
            }
        }
    }
}

/// Reaps every exited child without blocking; `Some(code)` once `pid` is among them.
fn reap(pid: libc::pid_t) -> anyhow::Result<Option<u8>> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid place for the kernel to write the wait status.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if reaped == 0 {
            return Ok(None);
        }
        if reaped < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => bail!("container process {pid} is not our child"),
                _ => return Err(err).context("waitpid"),
            }
        }
        if reaped == pid {
            return Ok(Some(exit_code(status)));
        }
    }
}

fn exit_code(status: libc::c_int) -> u8 {
    if libc::WIFEXITED(status) {
        // An exit status is 0..=255 by definition.
        (libc::WEXITSTATUS(status) & 0xff) as u8
    } else if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status)).clamp(0, 255) as u8
    } else {
        1
    }
}
