//! The link between the host and `berth-init` inside the guest.
//!
//! One byte stream carries everything: a virtio-serial port named [`PORT_NAME`] under QEMU,
//! or a vsock connection to the host (CID 2, port [`VSOCK_PORT`]) under Firecracker.
//!
//! Every message is one frame: `u32` big-endian length of what follows, a `u8` tag, then the
//! body. Inside a body, strings and byte strings are a `u32` length and the bytes, lists are a
//! `u32` count and the items, options a `u8` (0 or 1) and the value. Frames larger than
//! [`MAX_FRAME`] are refused, so a corrupt length cannot make either side allocate without bound.
//!
//! Processes are numbered: 0 is the container's entrypoint, the host numbers the ones it
//! `Exec`s from 1. The conversation:
//! 1. guest → host `Hello { version }` as soon as init opens the port (stage 2);
//! 2. host → guest `Config` (refused by the host if the version differs from [`VERSION`]):
//!    the container, whose entrypoint is process 0;
//! 3. guest → host `Started { id, pid }` once a process runs (or `Error` then `Exit`);
//! 4. both ways, for any process: `Stdin`/`StdinClose`/`Signal`/`Resize` from the host,
//!    `Stdout`/`Stderr` from the guest; host → guest `Exec` starts another process in the
//!    running container, which ends with its own `Exit { id, code }`;
//! 5. guest → host `Exit { id: 0, code }` last; the VM then reboots, which ends the VMM.
//!
//! This module has no dependencies so that the static guest binary can share it.

use std::io::{self, Read, Write};
use std::net::Ipv4Addr;

/// Protocol version; bump it on any change to the encoding.
pub const VERSION: u16 = 2;
/// The largest frame either side accepts (length field value).
pub const MAX_FRAME: usize = 1 << 20;
/// The largest data chunk a `Stdout`/`Stderr`/`Stdin` message should carry.
pub const MAX_CHUNK: usize = 64 * 1024;
/// Name of the virtio-serial port (`-device virtserialport,name=…`).
pub const PORT_NAME: &str = "berth.ctl";
/// vsock port the guest connects to on the host (CID 2) when the link is vsock.
pub const VSOCK_PORT: u32 = 1024;
/// Kernel command line parameter that selects the link: `berth.link=vsock` or absent (serial).
pub const LINK_PARAM: &str = "berth.link";
/// The container's entrypoint.
pub const MAIN: u32 = 0;

/// IPv4 configuration for the guest's `eth0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
}

/// A tmpfs the guest mounts before running the entrypoint (`--tmpfs PATH:OPTIONS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    pub path: String,
    /// Comma-separated mount options as Docker takes them (`rw,noexec,size=64m,mode=1777`).
    pub options: String,
}

/// An extra block device the guest mounts (an ext4 file system) before the entrypoint runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskMount {
    /// The device in the guest, `/dev/vdb`, `/dev/vdc`, …
    pub device: String,
    pub path: String,
    pub read_only: bool,
}

/// One process to run in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessConfig {
    /// argv; `args[0]` is looked up in `PATH` from `env` when it has no slash.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    /// Working directory ("" means `/`).
    pub cwd: String,
    /// Docker's `--user`: `name`, `uid`, `name:group`, `uid:gid` ("" means root).
    pub user: String,
    pub tty: bool,
}

/// What the guest needs to run the container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerConfig {
    /// The entrypoint (process 0).
    pub process: ProcessConfig,
    pub hostname: String,
    /// Contents for `/etc/hosts`, if the host manages it.
    pub hosts: Option<String>,
    /// Contents for `/etc/resolv.conf`, if the host manages it.
    pub resolv_conf: Option<String>,
    pub network: Option<NetConfig>,
    pub tmpfs: Vec<TmpfsMount>,
    pub disks: Vec<DiskMount>,
}

/// One frame on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// guest → host: init is up and speaks `version`.
    Hello {
        version: u16,
    },
    /// host → guest: the container to run (its entrypoint is process 0).
    Config(ContainerConfig),
    /// host → guest: run another process in the container.
    Exec {
        id: u32,
        process: ProcessConfig,
    },
    /// guest → host: process `id` is running with this (guest) pid.
    Started {
        id: u32,
        pid: u32,
    },
    /// guest → host: output of a process (with a tty, everything is `Stdout`).
    Stdout {
        id: u32,
        data: Vec<u8>,
    },
    Stderr {
        id: u32,
        data: Vec<u8>,
    },
    /// host → guest: input for a process; `StdinClose` closes its stdin.
    Stdin {
        id: u32,
        data: Vec<u8>,
    },
    StdinClose {
        id: u32,
    },
    /// host → guest: deliver `signal` to process `id`, or with `all` to every process of
    /// the container.
    Signal {
        id: u32,
        signal: i32,
        all: bool,
    },
    /// host → guest: the terminal size of process `id` changed (tty only).
    Resize {
        id: u32,
        rows: u16,
        cols: u16,
    },
    /// guest → host: something failed for process `id` (before its `Exit`).
    Error {
        id: u32,
        message: String,
    },
    /// guest → host: process `id` ended with `code` (128+n for a signal). For process 0
    /// this is the container's end, and always the last frame.
    Exit {
        id: u32,
        code: i32,
    },
}

mod tag {
    pub const HELLO: u8 = 1;
    pub const CONFIG: u8 = 2;
    pub const STARTED: u8 = 3;
    pub const STDOUT: u8 = 4;
    pub const STDERR: u8 = 5;
    pub const STDIN: u8 = 6;
    pub const STDIN_CLOSE: u8 = 7;
    pub const SIGNAL: u8 = 8;
    pub const RESIZE: u8 = 9;
    pub const ERROR: u8 = 10;
    pub const EXIT: u8 = 11;
    pub const EXEC: u8 = 12;
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        // Frames are bounded by MAX_FRAME, so a field always fits in u32.
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: &Option<String>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
    fn strs(&mut self, v: &[String]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        for s in v {
            self.str(s);
        }
    }
    fn ip(&mut self, ip: Ipv4Addr) {
        self.0.extend_from_slice(&ip.octets());
    }
}

struct Dec<'a>(&'a [u8]);

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("berth link: {what}"))
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(invalid("truncated message"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> io::Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn len(&mut self) -> io::Result<usize> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err(invalid("length beyond the end of the frame"));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| invalid("string is not UTF-8"))
    }
    fn bool(&mut self) -> io::Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid("bad boolean")),
        }
    }
    fn opt_str(&mut self) -> io::Result<Option<String>> {
        Ok(if self.bool()? {
            Some(self.str()?)
        } else {
            None
        })
    }
    fn strs(&mut self) -> io::Result<Vec<String>> {
        let n = self.u32()? as usize;
        // Each string takes at least its 4-byte length: bound the count before allocating.
        if n > self.0.len() / 4 {
            return Err(invalid("list longer than the frame"));
        }
        (0..n).map(|_| self.str()).collect()
    }
    fn ip(&mut self) -> io::Result<Ipv4Addr> {
        let b = self.take(4)?;
        Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

impl Enc {
    fn process(&mut self, p: &ProcessConfig) {
        self.strs(&p.args);
        self.strs(&p.env);
        self.str(&p.cwd);
        self.str(&p.user);
        self.u8(u8::from(p.tty));
    }
}

impl Dec<'_> {
    fn process(&mut self) -> io::Result<ProcessConfig> {
        Ok(ProcessConfig {
            args: self.strs()?,
            env: self.strs()?,
            cwd: self.str()?,
            user: self.str()?,
            tty: self.bool()?,
        })
    }

    /// A list count, bounded by what is left of the frame at `min` bytes an item.
    fn count(&mut self, min: usize) -> io::Result<usize> {
        let n = self.u32()? as usize;
        if n > self.0.len() / min {
            return Err(invalid("list longer than the frame"));
        }
        Ok(n)
    }
}

impl Message {
    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(vec![0, 0, 0, 0]);
        match self {
            Message::Hello { version } => {
                e.u8(tag::HELLO);
                e.u16(*version);
            }
            Message::Config(c) => {
                e.u8(tag::CONFIG);
                e.process(&c.process);
                e.str(&c.hostname);
                e.opt_str(&c.hosts);
                e.opt_str(&c.resolv_conf);
                match &c.network {
                    None => e.u8(0),
                    Some(n) => {
                        e.u8(1);
                        e.ip(n.address);
                        e.u8(n.prefix_len);
                        match n.gateway {
                            None => e.u8(0),
                            Some(g) => {
                                e.u8(1);
                                e.ip(g);
                            }
                        }
                        e.u32(n.mtu.unwrap_or(0));
                    }
                }
                e.u32(u32::try_from(c.tmpfs.len()).unwrap_or(u32::MAX));
                for t in &c.tmpfs {
                    e.str(&t.path);
                    e.str(&t.options);
                }
                e.u32(u32::try_from(c.disks.len()).unwrap_or(u32::MAX));
                for d in &c.disks {
                    e.str(&d.device);
                    e.str(&d.path);
                    e.u8(u8::from(d.read_only));
                }
            }
            Message::Exec { id, process } => {
                e.u8(tag::EXEC);
                e.u32(*id);
                e.process(process);
            }
            Message::Started { id, pid } => {
                e.u8(tag::STARTED);
                e.u32(*id);
                e.u32(*pid);
            }
            Message::Stdout { id, data } => {
                e.u8(tag::STDOUT);
                e.u32(*id);
                e.bytes(data);
            }
            Message::Stderr { id, data } => {
                e.u8(tag::STDERR);
                e.u32(*id);
                e.bytes(data);
            }
            Message::Stdin { id, data } => {
                e.u8(tag::STDIN);
                e.u32(*id);
                e.bytes(data);
            }
            Message::StdinClose { id } => {
                e.u8(tag::STDIN_CLOSE);
                e.u32(*id);
            }
            Message::Signal { id, signal, all } => {
                e.u8(tag::SIGNAL);
                e.u32(*id);
                e.i32(*signal);
                e.u8(u8::from(*all));
            }
            Message::Resize { id, rows, cols } => {
                e.u8(tag::RESIZE);
                e.u32(*id);
                e.u16(*rows);
                e.u16(*cols);
            }
            Message::Error { id, message } => {
                e.u8(tag::ERROR);
                e.u32(*id);
                e.str(message);
            }
            Message::Exit { id, code } => {
                e.u8(tag::EXIT);
                e.u32(*id);
                e.i32(*code);
            }
        }
        let len = u32::try_from(e.0.len() - 4).unwrap_or(u32::MAX);
        e.0[..4].copy_from_slice(&len.to_be_bytes());
        e.0
    }

    /// Decodes one frame body (what follows the length prefix).
    pub fn decode(body: &[u8]) -> io::Result<Message> {
        let mut d = Dec(body);
        let msg = match d.u8()? {
            tag::HELLO => Message::Hello { version: d.u16()? },
            tag::CONFIG => {
                let process = d.process()?;
                let hostname = d.str()?;
                let hosts = d.opt_str()?;
                let resolv_conf = d.opt_str()?;
                let network = if d.bool()? {
                    let address = d.ip()?;
                    let prefix_len = d.u8()?;
                    if prefix_len > 32 {
                        return Err(invalid("prefix length above 32"));
                    }
                    let gateway = if d.bool()? { Some(d.ip()?) } else { None };
                    let mtu = Some(d.u32()?).filter(|m| *m != 0);
                    Some(NetConfig {
                        address,
                        prefix_len,
                        gateway,
                        mtu,
                    })
                } else {
                    None
                };
                let n = d.count(8)?;
                let mut tmpfs = Vec::with_capacity(n);
                for _ in 0..n {
                    tmpfs.push(TmpfsMount {
                        path: d.str()?,
                        options: d.str()?,
                    });
                }
                let n = d.count(9)?;
                let mut disks = Vec::with_capacity(n);
                for _ in 0..n {
                    disks.push(DiskMount {
                        device: d.str()?,
                        path: d.str()?,
                        read_only: d.bool()?,
                    });
                }
                Message::Config(ContainerConfig {
                    process,
                    hostname,
                    hosts,
                    resolv_conf,
                    network,
                    tmpfs,
                    disks,
                })
            }
            tag::EXEC => Message::Exec {
                id: d.u32()?,
                process: d.process()?,
            },
            tag::STARTED => Message::Started {
                id: d.u32()?,
                pid: d.u32()?,
            },
            tag::STDOUT => Message::Stdout {
                id: d.u32()?,
                data: d.bytes()?,
            },
            tag::STDERR => Message::Stderr {
                id: d.u32()?,
                data: d.bytes()?,
            },
            tag::STDIN => Message::Stdin {
                id: d.u32()?,
                data: d.bytes()?,
            },
            tag::STDIN_CLOSE => Message::StdinClose { id: d.u32()? },
            tag::SIGNAL => Message::Signal {
                id: d.u32()?,
                signal: d.i32()?,
                all: d.bool()?,
            },
            tag::RESIZE => Message::Resize {
                id: d.u32()?,
                rows: d.u16()?,
                cols: d.u16()?,
            },
            tag::ERROR => Message::Error {
                id: d.u32()?,
                message: d.str()?,
            },
            tag::EXIT => Message::Exit {
                id: d.u32()?,
                code: d.i32()?,
            },
            t => return Err(invalid(&format!("unknown message tag {t}"))),
        };
        if !d.0.is_empty() {
            return Err(invalid("trailing bytes in frame"));
        }
        Ok(msg)
    }
}

/// Writes one message (a single `write_all`, so frames never interleave on a shared writer).
pub fn write_message(w: &mut impl Write, msg: &Message) -> io::Result<()> {
    w.write_all(&msg.encode())?;
    w.flush()
}

/// Reads one message; `Ok(None)` at a clean end of stream (between frames).
pub fn read_message(r: &mut impl Read) -> io::Result<Option<Message>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(invalid("bad frame length"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Message::decode(&body).map(Some)
}

/// Incremental decoder for a non-blocking reader: feed bytes, take whole messages out.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> io::Result<Option<Message>> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(invalid("bad frame length"));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let msg = Message::decode(&self.buf[4..4 + len]);
        self.buf.drain(..4 + len);
        msg.map(Some)
    }

    /// Bytes held that do not yet make a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_config() -> ContainerConfig {
        ContainerConfig {
            process: ProcessConfig {
                args: vec!["sh".into(), "-c".into(), "echo hi; exit 42".into()],
                env: vec!["PATH=/bin".into(), "A=b=c".into()],
                cwd: "/tmp".into(),
                user: "nobody:65534".into(),
                tty: true,
            },
            hostname: "box".into(),
            hosts: Some("127.0.0.1 localhost\n".into()),
            resolv_conf: None,
            network: Some(NetConfig {
                address: Ipv4Addr::new(10, 88, 0, 2),
                prefix_len: 16,
                gateway: Some(Ipv4Addr::new(10, 88, 0, 1)),
                mtu: Some(1500),
            }),
            tmpfs: vec![TmpfsMount {
                path: "/run".into(),
                options: "size=64m,noexec".into(),
            }],
            disks: vec![DiskMount {
                device: "/dev/vdb".into(),
                path: "/data".into(),
                read_only: true,
            }],
        }
    }

    fn all_messages() -> Vec<Message> {
        vec![
            Message::Hello { version: VERSION },
            Message::Config(full_config()),
            Message::Config(ContainerConfig::default()),
            Message::Exec {
                id: 3,
                process: full_config().process,
            },
            Message::Started { id: 0, pid: 7 },
            Message::Stdout {
                id: 0,
                data: b"hi\n".to_vec(),
            },
            Message::Stderr {
                id: 2,
                data: vec![0, 255, 10],
            },
            Message::Stdin {
                id: 1,
                data: Vec::new(),
            },
            Message::StdinClose { id: 0 },
            Message::Signal {
                id: 0,
                signal: 15,
                all: true,
            },
            Message::Resize {
                id: 4,
                rows: 24,
                cols: 80,
            },
            Message::Error {
                id: 1,
                message: "exec: no such file".into(),
            },
            Message::Exit { id: 5, code: -1 },
            Message::Exit { id: 0, code: 42 },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in all_messages() {
            let frame = m.encode();
            let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
            assert_eq!(len, frame.len() - 4);
            assert_eq!(Message::decode(&frame[4..]).unwrap(), m);
            assert_eq!(read_message(&mut &frame[..]).unwrap(), Some(m));
        }
    }

    #[test]
    fn stream_of_frames_and_clean_eof() {
        let mut stream = Vec::new();
        for m in all_messages() {
            write_message(&mut stream, &m).unwrap();
        }
        let mut r = &stream[..];
        let mut got = Vec::new();
        while let Some(m) = read_message(&mut r).unwrap() {
            got.push(m);
        }
        assert_eq!(got, all_messages());
        // A stream cut inside a frame is an error, not a clean end.
        let mut cut = &stream[..stream.len() - 1];
        let err = loop {
            match read_message(&mut cut) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("cut stream ended cleanly"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn incremental_decoder_byte_by_byte() {
        let mut stream = Vec::new();
        for m in all_messages() {
            stream.extend(m.encode());
        }
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for b in stream {
            d.feed(&[b]);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, all_messages());
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn hostile_frames_are_refused() {
        // Huge length prefix.
        assert!(read_message(&mut &[0xff, 0xff, 0xff, 0xff, 1][..]).is_err());
        // Zero-length frame.
        assert!(read_message(&mut &[0, 0, 0, 0][..]).is_err());
        // Unknown tag.
        assert!(Message::decode(&[200]).is_err());
        // String length beyond the frame.
        assert!(Message::decode(&[tag::STDOUT, 0, 0, 0, 0, 0, 0, 1, 0, b'x']).is_err());
        // A list count that cannot fit.
        assert!(Message::decode(&[tag::CONFIG, 0xff, 0xff, 0xff, 0xff]).is_err());
        // Trailing garbage.
        let mut f = Message::Exit { id: 0, code: 1 }.encode()[4..].to_vec();
        f.push(0);
        assert!(Message::decode(&f).is_err());
        // Prefix length out of range.
        let mut c = full_config();
        c.network.as_mut().unwrap().prefix_len = 33;
        assert!(Message::decode(&Message::Config(c).encode()[4..]).is_err());
        // Every truncation of a config fails cleanly (no panic).
        let f = Message::Config(full_config()).encode();
        for n in 1..f.len() - 4 {
            assert!(Message::decode(&f[4..4 + n]).is_err(), "truncated at {n}");
        }
    }

    #[test]
    fn wire_format_is_stable() {
        // Pin the bytes so a change to the encoding is a deliberate VERSION bump.
        assert_eq!(
            Message::Exit { id: 0, code: 42 }.encode(),
            vec![0, 0, 0, 9, tag::EXIT, 0, 0, 0, 0, 0, 0, 0, 42]
        );
        assert_eq!(
            Message::Hello { version: 2 }.encode(),
            vec![0, 0, 0, 3, tag::HELLO, 0, 2]
        );
        assert_eq!(
            Message::Stdout {
                id: 1,
                data: b"hi".to_vec()
            }
            .encode(),
            vec![0, 0, 0, 11, tag::STDOUT, 0, 0, 0, 1, 0, 0, 0, 2, b'h', b'i']
        );
    }
}
