//! Streaming a hijacked attach/exec connection like docker's `hijackedIOStreamer`: output
//! copied raw (TTY) or demultiplexed from the 8-byte stdcopy frames, stdin copied in (with
//! the detach keys caught in TTY mode) and the write half shut at EOF; the terminal in raw
//! mode, its size sent on start and on SIGWINCH, and signals forwarded to the container.

use std::io::{IsTerminal, Read, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::conn::{Endpoint, Hijacked};
use crate::client::encode;

/// How a stream ended.
#[derive(Debug, PartialEq)]
pub enum End {
    /// The daemon closed the output.
    Done,
    /// The user typed the detach keys (TTY mode).
    Detached,
}

pub struct StreamOpts {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub detach_keys: Option<String>,
}

/// The terminal on stdin in raw mode until dropped.
pub struct RawTerminal {
    saved: Option<rustix::termios::Termios>,
}

impl RawTerminal {
    pub fn enable() -> RawTerminal {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawTerminal { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        // cfmakeraw, as docker's (moby/term) MakeRaw: output post-processing goes too,
        // since the container's terminal already turned its newlines into CR LF.
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        RawTerminal { saved: Some(saved) }
    }

    pub fn restore(&mut self) {
        if let Some(saved) = self.saved.take() {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                &saved,
            );
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Reads stdin on its own thread (a blocked read must not keep the runtime alive); an empty
/// chunk means EOF.
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(Vec::new());
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

fn write_out(to_stderr: bool, data: &[u8]) {
    if to_stderr {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(data);
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        if let Err(e) = o.write_all(data).and_then(|_| o.flush())
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
    }
}

/// Splits stdcopy frames; returns the payloads as (stream, bytes) and keeps partial frames.
pub fn demux(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 8 {
            return out;
        }
        let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return out;
        }
        let stream = buf[0];
        let payload = buf[8..8 + len].to_vec();
        buf.drain(..8 + len);
        out.push((stream, payload));
    }
}

/// Finds the detach sequence in what the user types: bytes to forward, and whether the whole
/// sequence was typed (moby/term's escape proxy).
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> EscapeProxy {
        EscapeProxy { keys, matched: 0 }
    }

    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        if self.keys.is_empty() {
            return (data.to_vec(), false);
        }
        for &b in data {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Streams a hijacked connection until the output ends or the user detaches.
pub async fn stream(conn: Hijacked, opts: &StreamOpts) -> std::io::Result<End> {
    let Hijacked { sock, buffered } = conn;
    let (mut reader, mut writer) = tokio::io::split(sock);
    let mut raw = if opts.stdin && opts.tty {
        Some(RawTerminal::enable())
    } else {
        None
    };
    let tty = opts.tty;
    let (show_out, show_err) = (opts.stdout, opts.stderr);
    let output = async move {
        let mut pending = buffered;
        let mut chunk = vec![0u8; 32 * 1024];
        loop {
            if tty {
                if !pending.is_empty() && show_out {
                    write_out(false, &pending);
                }
                pending.clear();
            } else {
                for (stream, data) in demux(&mut pending) {
                    match stream {
                        0 | 1 if show_out => write_out(false, &data),
                        2 if show_err => write_out(true, &data),
                        3 => write_out(true, &data),
                        _ => {}
                    }
                }
            }
            let n = reader.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            pending.extend_from_slice(&chunk[..n]);
        }
    };
    let keys = if opts.tty {
        let k = opts.detach_keys.as_deref().unwrap_or("");
        if k.is_empty() {
            vec![16, 17]
        } else {
            super::parse::detach_keys(k).unwrap_or_else(|e| {
                tracing::warn!("invalid detach escape keys, using default: {e}");
                vec![16, 17]
            })
        }
    } else {
        Vec::new()
    };
    let want_stdin = opts.stdin;
    let input = async move {
        if want_stdin {
            let mut rx = stdin_chunks();
            let mut proxy = EscapeProxy::new(keys);
            while let Some(data) = rx.recv().await {
                if data.is_empty() {
                    break;
                }
                let (forward, detached) = proxy.feed(&data);
                if !forward.is_empty() && writer.write_all(&forward).await.is_err() {
                    break;
                }
                if detached {
                    return true;
                }
            }
        }
        let _ = writer.shutdown().await;
        // Keep the write half alive (dropping a split half does not close the socket).
        std::future::pending::<()>().await;
        false
    };
    tokio::pin!(output, input);
    let result = tokio::select! {
        r = &mut output => r.map(|_| End::Done),
        detached = &mut input => {
            if detached { Ok(End::Detached) } else { output.await.map(|_| End::Done) }
        }
    };
    if let Some(r) = raw.as_mut() {
        r.restore();
    }
    result
}

/// `POST …/resize?h=&w=` with the terminal's size now, then on every SIGWINCH (docker's
/// `MonitorTtySize`). `path` is `/containers/ID` or `/exec/ID`.
pub fn monitor_tty_size(ep: Endpoint, path: String) {
    tokio::spawn(async move {
        let send = |ep: Endpoint, path: String| async move {
            if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdout()) {
                if ws.ws_row == 0 && ws.ws_col == 0 {
                    return;
                }
                let _ = ep
                    .call(
                        "POST",
                        &format!("{path}/resize?h={}&w={}", ws.ws_row, ws.ws_col),
                        None,
                    )
                    .await;
            }
        };
        send(ep.clone(), path.clone()).await;
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            send(ep.clone(), path.clone()).await;
        }
    });
}

/// Forwards the signals a user sends to this process to the container (`--sig-proxy`).
pub fn forward_signals(ep: Endpoint, id: String) {
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, name) in [
        (SignalKind::interrupt(), "INT"),
        (SignalKind::terminate(), "TERM"),
        (SignalKind::hangup(), "HUP"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::user_defined1(), "USR1"),
        (SignalKind::user_defined2(), "USR2"),
    ] {
        let Ok(mut sig) = signal(kind) else {
            continue;
        };
        let ep = ep.clone();
        let id = id.clone();
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                let _ = ep
                    .call(
                        "POST",
                        &format!("/containers/{}/kill?signal={name}", encode(&id)),
                        None,
                    )
                    .await;
            }
        });
    }
}

/// The terminal's size as docker sends it in `ConsoleSize` (rows, columns); zeros without one.
pub fn tty_size() -> (usize, usize) {
    if !std::io::stdout().is_terminal() {
        return (0, 0);
    }
    rustix::termios::tcgetwinsize(std::io::stdout())
        .map(|ws| (ws.ws_row as usize, ws.ws_col as usize))
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demuxes_frames() {
        let mut buf = vec![
            1, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c', 2, 0, 0, 0, 0, 0, 0, 2, b'e',
        ];
        let frames = demux(&mut buf);
        assert_eq!(frames, vec![(1, b"abc".to_vec())]);
        assert_eq!(buf.len(), 9);
        buf.push(b'!');
        assert_eq!(demux(&mut buf), vec![(2, b"e!".to_vec())]);
        assert!(buf.is_empty());
    }

    #[test]
    fn escape_sequence() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(p.feed(b"x"), (b"\x10x".to_vec(), false));
        assert_eq!(p.feed(b"\x10\x11rest"), (Vec::new(), true));
    }
}
