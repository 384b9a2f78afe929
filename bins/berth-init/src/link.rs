//! The control link to the host: a virtio-serial port or a vsock stream.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_vm::protocol::{self, FrameDecoder, Message};

use crate::sys;

pub struct Link {
    pub fd: OwnedFd,
    pub decoder: FrameDecoder,
}

impl Link {
    pub fn send(&mut self, msg: &Message) -> io::Result<()> {
        let frame = msg.encode();
        let mut off = 0;
        while off < frame.len() {
            match sys::write(self.fd.as_raw_fd(), &frame[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut p = [libc::pollfd {
                        fd: self.fd.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    sys::poll(&mut p, 1000)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what is available; `Ok(false)` at end of stream.
    pub fn fill(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 16384];
        match sys::read(self.fd.as_raw_fd(), &mut buf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.decoder.feed(&buf[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Blocks until one whole message arrives.
    pub fn recv_blocking(&mut self) -> io::Result<Message> {
        loop {
            if let Some(m) = self.decoder.next_message()? {
                return Ok(m);
            }
            let mut p = [libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            sys::poll(&mut p, -1)?;
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the host closed the link",
                ));
            }
        }
    }
}

fn find_port() -> io::Result<String> {
    let dir = Path::new("/sys/class/virtio-ports");
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = fs::read_to_string(e.path().join("name")).unwrap_or_default();
        if name.trim() == protocol::PORT_NAME {
            return Ok(format!("/dev/{}", e.file_name().to_string_lossy()));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no virtio port named {}", protocol::PORT_NAME),
    ))
}

pub fn open_link(vsock: bool) -> io::Result<Link> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let fd: OwnedFd = loop {
        let attempt = if vsock {
            sys::vsock_connect(protocol::VSOCK_PORT)
        } else {
            find_port().and_then(|dev| {
                fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
                    .open(dev)
                    .map(OwnedFd::from)
            })
        };
        match attempt {
            Ok(fd) => break fd,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    if vsock {
        sys::set_nonblocking(fd.as_raw_fd())?;
    }
    let mut link = Link {
        fd,
        decoder: FrameDecoder::new(),
    };
    link.send(&Message::Hello {
        version: protocol::VERSION,
    })?;
    Ok(link)
}
