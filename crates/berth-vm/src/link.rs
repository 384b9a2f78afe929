//! The host end of the control channel to one guest: the handshake ([`GuestLink::accept`])
//! and, for simple callers (tests, benchmarks), a whole run ([`GuestLink::run_to_exit`]).

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::protocol::{self, ContainerConfig, Message};
use crate::vmm::VmHandle;

/// The host end of the control channel to one guest.
#[derive(Debug)]
pub struct GuestLink {
    stream: UnixStream,
}

/// What a guest's entrypoint did, collected by [`GuestLink::run_to_exit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    pub pid: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub errors: Vec<String>,
    pub exit_code: i32,
    /// From sending the config to `Started`, and to `Exit`.
    pub started_after: Option<Duration>,
    pub exited_after: Duration,
}

impl GuestLink {
    /// Waits up to `timeout` for the VMM to connect to `listener` and for the guest's
    /// `Hello`, checking the protocol version. Fails early if `vm` exits first.
    pub fn accept(listener: &UnixListener, vm: &mut VmHandle, timeout: Duration) -> Result<Self> {
        let deadline = Instant::now() + timeout;
        listener.set_nonblocking(true).map_err(Error::Link)?;
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::Link(e)),
            }
            if let Some(status) = vm.try_wait()? {
                return Err(Error::Link(io::Error::other(format!(
                    "the VM exited ({status}) before connecting"
                ))));
            }
            if Instant::now() >= deadline {
                return Err(Error::Link(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the VM did not connect in time",
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        stream.set_nonblocking(false).map_err(Error::Link)?;
        let mut link = Self { stream };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        link.stream
            .set_read_timeout(Some(left))
            .map_err(Error::Link)?;
        let hello = match link.recv() {
            Err(Error::Link(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Link(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no word from the guest's init within {timeout:?} \
                         (the guest hangs, or its init is not berth-init)"
                    ),
                )));
            }
            other => other?,
        };
        match hello {
            Some(Message::Hello { version }) if version == protocol::VERSION => {}
            None => {
                return Err(Error::Link(io::Error::other(
                    "the VM stopped before its init said hello",
                )));
            }
            Some(Message::Hello { version }) => {
                return Err(Error::Link(io::Error::other(format!(
                    "guest speaks protocol {version}, the host {}",
                    protocol::VERSION
                ))));
            }
            other => {
                return Err(Error::Link(io::Error::other(format!(
                    "expected Hello from the guest, got {other:?}"
                ))));
            }
        }
        link.stream.set_read_timeout(None).map_err(Error::Link)?;
        Ok(link)
    }

    pub fn send(&mut self, msg: &Message) -> Result<()> {
        protocol::write_message(&mut self.stream, msg).map_err(Error::Link)
    }

    /// The next message; `None` when the guest closed the channel.
    pub fn recv(&mut self) -> Result<Option<Message>> {
        protocol::read_message(&mut self.stream).map_err(Error::Link)
    }

    /// The underlying stream (to split reading and writing across threads with
    /// `try_clone`, or to set timeouts).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// The stream itself, for a caller that drives the conversation on its own.
    pub fn into_stream(self) -> UnixStream {
        self.stream
    }

    /// Sends `config` (and `stdin`, then closes it) and collects everything until `Exit`,
    /// for at most `timeout`. For one-shot runs and tests; the daemon streams instead.
    pub fn run_to_exit(
        mut self,
        config: ContainerConfig,
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<RunOutcome> {
        self.send(&Message::Config(config))?;
        self.run_to_exit_after_config(stdin, timeout)
    }

    /// [`GuestLink::run_to_exit`] for a link whose `Config` is already sent (and whose
    /// conversation may have gone on since): sends `stdin` and collects the entrypoint's
    /// output until its `Exit`.
    pub fn run_to_exit_after_config(
        mut self,
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<RunOutcome> {
        let t0 = Instant::now();
        for chunk in stdin.chunks(protocol::MAX_CHUNK) {
            self.send(&Message::Stdin {
                id: protocol::MAIN,
                data: chunk.to_vec(),
            })?;
        }
        self.send(&Message::StdinClose { id: protocol::MAIN })?;
        let mut out = RunOutcome::default();
        loop {
            let left = timeout
                .checked_sub(t0.elapsed())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    Error::Link(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no Exit from the guest in time",
                    ))
                })?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(Error::Link)?;
            match self.recv()? {
                None => {
                    return Err(Error::Link(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the guest closed the link before Exit (errors: {:?})",
                            out.errors
                        ),
                    )));
                }
                Some(Message::Started { id: 0, pid }) => {
                    out.pid = Some(pid);
                    out.started_after = Some(t0.elapsed());
                }
                Some(Message::Stdout { id: 0, data }) => out.stdout.extend(data),
                Some(Message::Stderr { id: 0, data }) => out.stderr.extend(data),
                Some(Message::Error { id: 0, message }) => out.errors.push(message),
                Some(Message::Exit { id: 0, code }) => {
                    out.exit_code = code;
                    out.exited_after = t0.elapsed();
                    return Ok(out);
                }
                Some(other) => {
                    return Err(Error::Link(io::Error::other(format!(
                        "unexpected message from the guest: {other:?}"
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn link_handshake_and_run_over_a_socketpair() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("ctl.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        // A stand-in "VM" process that stays up while the fake guest talks.
        let mut vm = VmHandle::from_child(Command::new("sleep").arg("30").spawn().unwrap());
        let guest = std::thread::spawn({
            let sock = sock.clone();
            move || {
                let mut s = UnixStream::connect(&sock).unwrap();
                protocol::write_message(
                    &mut s,
                    &Message::Hello {
                        version: protocol::VERSION,
                    },
                )
                .unwrap();
                let Some(Message::Config(c)) = protocol::read_message(&mut s).unwrap() else {
                    panic!("no config")
                };
                let mut input = Vec::new();
                loop {
                    match protocol::read_message(&mut s).unwrap().unwrap() {
                        Message::Stdin { id: 0, data } => input.extend(data),
                        Message::StdinClose { id: 0 } => break,
                        m => panic!("{m:?}"),
                    }
                }
                let send = |s: &mut UnixStream, m: Message| protocol::write_message(s, &m).unwrap();
                send(&mut s, Message::Started { id: 0, pid: 9 });
                let data = c.process.args.join(" ").into_bytes();
                send(&mut s, Message::Stdout { id: 0, data });
                send(&mut s, Message::Stderr { id: 0, data: input });
                send(&mut s, Message::Exit { id: 0, code: 42 });
            }
        });
        let link = GuestLink::accept(&listener, &mut vm, Duration::from_secs(10)).unwrap();
        let config = ContainerConfig {
            process: protocol::ProcessConfig {
                args: vec!["echo".into(), "hi".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let out = link
            .run_to_exit(config, b"in", Duration::from_secs(10))
            .unwrap();
        guest.join().unwrap();
        assert_eq!(out.pid, Some(9));
        assert_eq!(out.stdout, b"echo hi");
        assert_eq!(out.stderr, b"in");
        assert_eq!(out.exit_code, 42);
        vm.kill().unwrap();
        assert!(vm.try_wait().unwrap().is_some());
    }

    #[test]
    fn accept_fails_fast_when_the_vm_dies() {
        let d = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(d.path().join("ctl.sock")).unwrap();
        let mut vm = VmHandle::from_child(Command::new("true").spawn().unwrap());
        let t0 = Instant::now();
        let err = GuestLink::accept(&listener, &mut vm, Duration::from_secs(20)).unwrap_err();
        assert!(err.to_string().contains("exited"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
}
