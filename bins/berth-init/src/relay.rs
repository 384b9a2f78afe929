//! The main loop, once the entrypoint runs: signals, the link, and the stdio of every
//! process (the entrypoint and what the host `Exec`s), until the entrypoint has exited
//! and its output is drained.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use berth_vm::protocol::{self, Message};

use crate::link::Link;
use crate::process::{self, Proc};
use crate::sys;

/// How long output may keep flowing after the process it belongs to has exited.
const DRAIN: Duration = Duration::from_secs(2);

/// Serves the processes until the entrypoint (`procs[0]`) is done; returns its code.
pub fn run(link: &mut Link, sigfd: &OwnedFd, hostname: &str, main: Proc) -> io::Result<i32> {
    let mut procs: Vec<Proc> = vec![main];
    let mut link_open = true;
    let mut buf = vec![0u8; protocol::MAX_CHUNK];
    loop {
        // Processes that exited and whose output is drained (or overdue) are done.
        let now = Instant::now();
        let mut k = 0;
        while k < procs.len() {
            let p = &procs[k];
            let drained = p.outputs.is_empty() || p.drain_deadline.is_some_and(|d| now > d);
            match p.exit {
                Some(code) if drained => {
                    if p.id == protocol::MAIN {
                        // Whatever is still listed was killed with the container.
                        for other in procs.iter().skip(1) {
                            let code = other.exit.unwrap_or(128 + libc::SIGKILL);
                            let _ = link.send(&Message::Exit { id: other.id, code });
                        }
                        while sys::reap_one().is_some() {}
                        return Ok(code);
                    }
                    if link_open {
                        let _ = link.send(&Message::Exit { id: p.id, code });
                    }
                    procs.remove(k);
                }
                _ => k += 1,
            }
        }

        // Always drain the decoder: frames can arrive together with the Config.
        while let Some(m) = link.decoder.next_message()? {
            handle(link, &mut procs, hostname, m);
        }
        for p in &mut procs {
            if p.close_stdin && p.pending_stdin.is_empty() {
                if p.tty_master.is_some()
                    && let Some(fd) = &p.stdin
                {
                    // EOF on a terminal is ^D at the start of a line.
                    let _ = sys::write(fd.as_raw_fd(), &[4]);
                }
                p.stdin = None;
                p.close_stdin = false;
            }
        }

        let mut fds = vec![libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let link_idx = link_open.then(|| {
            fds.push(libc::pollfd {
                fd: link.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            fds.len() - 1
        });
        // (first output index, stdin index) of each process.
        let mut slots = Vec::with_capacity(procs.len());
        for p in &procs {
            let first = fds.len();
            for (fd, _) in &p.outputs {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            // With a tty, stdin is the master itself; poll it for writing only with pipes.
            let stdin = match (&p.stdin, p.tty_master) {
                (Some(fd), None) if !p.pending_stdin.is_empty() => {
                    fds.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    });
                    Some(fds.len() - 1)
                }
                _ => None,
            };
            slots.push((first, stdin));
        }
        let busy = procs
            .iter()
            .any(|p| p.exit.is_some() || (p.tty_master.is_some() && !p.pending_stdin.is_empty()));
        sys::poll(&mut fds, if busy { 100 } else { -1 })?;

        if fds[0].revents != 0 {
            for sig in sys::read_signals(sigfd) {
                if sig == libc::SIGCHLD {
                    while let Some((pid, status)) = sys::reap_one() {
                        exited(&mut procs, pid, sys::exit_code(status));
                    }
                } else if sig != libc::SIGPIPE && procs[0].exit.is_none() {
                    let _ = sys::kill(procs[0].pid, sig);
                }
            }
        }
        if let Some(i) = link_idx
            && fds[i].revents != 0
        {
            match link.fill() {
                Ok(true) => {}
                Ok(false) | Err(_) => link_open = false,
            }
        }
        for (p, (first, stdin_idx)) in procs.iter_mut().zip(slots) {
            pump_stdin(p, stdin_idx.is_some_and(|i| fds[i].revents != 0));
            let mut closed = Vec::new();
            for (k, (fd, is_err)) in p.outputs.iter().enumerate() {
                if fds[first + k].revents == 0 {
                    continue;
                }
                match sys::read(fd.as_raw_fd(), &mut buf) {
                    Ok(0) => closed.push(k),
                    Ok(n) => {
                        let (id, data) = (p.id, buf[..n].to_vec());
                        let msg = if *is_err {
                            Message::Stderr { id, data }
                        } else {
                            Message::Stdout { id, data }
                        };
                        if link_open && link.send(&msg).is_err() {
                            link_open = false;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    // EIO: a pty master whose slave side is closed everywhere.
                    Err(_) => closed.push(k),
                }
            }
            for k in closed.into_iter().rev() {
                p.outputs.remove(k);
            }
        }
    }
}

/// One message from the host.
fn handle(link: &mut Link, procs: &mut Vec<Proc>, hostname: &str, m: Message) {
    fn find(procs: &mut [Proc], id: u32) -> Option<&mut Proc> {
        procs.iter_mut().find(|p| p.id == id)
    }
    match m {
        Message::Stdin { id, data } => {
            if let Some(p) = find(procs, id) {
                p.pending_stdin.extend(data);
            }
        }
        Message::StdinClose { id } => {
            if let Some(p) = find(procs, id) {
                p.close_stdin = true;
            }
        }
        Message::Signal { id, signal, all } => {
            if all {
                // Everything but init: the container's processes.
                let _ = sys::kill(-1, signal);
            } else if let Some(p) = find(procs, id)
                && p.exit.is_none()
            {
                let _ = sys::kill(p.pid, signal);
            }
        }
        Message::Resize { id, rows, cols } => {
            if let Some(m) = find(procs, id).and_then(|p| p.tty_master) {
                let _ = sys::set_winsize(m, rows, cols);
            }
        }
        Message::Exec { id, process } => {
            let refused = if procs[0].exit.is_some() {
                Some(("the container is stopping".to_string(), 126))
            } else if id == protocol::MAIN || procs.iter().any(|p| p.id == id) {
                Some((format!("process {id} exists"), 126))
            } else {
                match process::spawn(id, &process, hostname) {
                    Ok(p) => {
                        let _ = link.send(&Message::Started {
                            id,
                            pid: p.pid as u32,
                        });
                        procs.push(p);
                        None
                    }
                    Err(e) => Some((e.message, e.code)),
                }
            };
            if let Some((message, code)) = refused {
                let _ = link.send(&Message::Error { id, message });
                let _ = link.send(&Message::Exit { id, code });
            }
        }
        _ => {}
    }
}

/// Records the exit of `pid`; the entrypoint's takes every other process down with it.
fn exited(procs: &mut [Proc], pid: i32, code: i32) {
    let Some(p) = procs.iter_mut().find(|p| p.pid == pid && p.exit.is_none()) else {
        return;
    };
    p.exit = Some(code);
    p.drain_deadline = Some(Instant::now() + DRAIN);
    if p.id == protocol::MAIN {
        debug!("entrypoint exited: {code}");
        // The container ends with its main process: kill the rest, then drain what they
        // wrote (bounded).
        let _ = sys::kill(-1, libc::SIGKILL);
    }
}

/// Writes what the host sent to a process's stdin, without blocking.
fn pump_stdin(p: &mut Proc, writable: bool) {
    let Some(fd) = &p.stdin else { return };
    // With a tty the master is always writable enough.
    if p.pending_stdin.is_empty() || !(writable || p.tty_master.is_some()) {
        return;
    }
    match sys::write(fd.as_raw_fd(), &p.pending_stdin) {
        Ok(n) => {
            p.pending_stdin.drain(..n);
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) => {}
        Err(_) => {
            p.pending_stdin.clear();
            if p.tty_master.is_none() {
                p.stdin = None;
            }
        }
    }
}
