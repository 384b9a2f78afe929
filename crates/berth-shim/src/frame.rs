//! Docker's stdcopy framing, shared by the shim's streams and the daemon's responses:
//! one byte for the stream, three zero bytes, the payload length (big-endian u32),
//! then the payload.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::protocol::ExitStatus;

/// The header's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// Docker's "systemerr"; between shim and daemon it carries the final exit status.
    Exit = 3,
}

impl StreamKind {
    fn from_byte(byte: u8) -> Option<StreamKind> {
        Some(match byte {
            0 => StreamKind::Stdin,
            1 => StreamKind::Stdout,
            2 => StreamKind::Stderr,
            3 => StreamKind::Exit,
            _ => return None,
        })
    }
}

/// One frame of a multiplexed stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub stream: StreamKind,
    pub payload: Bytes,
}

impl Frame {
    pub const HEADER_LEN: usize = 8;
    /// Payloads are split so a frame never exceeds this (Docker reads in 32 KiB units).
    pub const MAX_PAYLOAD: usize = 32 * 1024;

    pub fn new(stream: StreamKind, payload: impl Into<Bytes>) -> Frame {
        Frame {
            stream,
            payload: payload.into(),
        }
    }

    pub fn exit(status: &ExitStatus) -> Frame {
        let json = serde_json::to_vec(status).expect("exit status serializes");
        Frame::new(StreamKind::Exit, json)
    }

    /// The header for `len` payload bytes on `stream`.
    pub fn header(stream: StreamKind, len: usize) -> [u8; 8] {
        let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        [stream as u8, 0, 0, 0, len[0], len[1], len[2], len[3]]
    }

    /// Header and payload, ready to write.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(Self::HEADER_LEN + self.payload.len());
        out.put_slice(&Self::header(self.stream, self.payload.len()));
        out.put_slice(&self.payload);
        out.freeze()
    }

    /// The exit status a `StreamKind::Exit` frame carries.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        (self.stream == StreamKind::Exit)
            .then(|| serde_json::from_slice(&self.payload).ok())
            .flatten()
    }
}

/// Reads frames from a byte stream.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    /// Starts with bytes already read past the response line.
    pub fn with_buffered(inner: R, buffered: &[u8]) -> Self {
        let mut reader = FrameReader::new(inner);
        reader.buf.extend_from_slice(buffered);
        reader
    }

    /// The next frame; `None` at a clean end of stream.
    pub async fn next(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(Some(frame));
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame",
                ));
            }
        }
    }

    fn parse(&mut self) -> std::io::Result<Option<Frame>> {
        if self.buf.len() < Frame::HEADER_LEN {
            return Ok(None);
        }
        let stream = StreamKind::from_byte(self.buf[0]).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "bad stream byte in frame")
        })?;
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < Frame::HEADER_LEN + len {
            self.buf.reserve(Frame::HEADER_LEN + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(Frame::HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame { stream, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_across_arbitrary_reads() {
        let frames = vec![
            Frame::new(StreamKind::Stdout, &b"hello\n"[..]),
            Frame::new(StreamKind::Stderr, vec![7u8; 70_000]),
            Frame::exit(&ExitStatus::now(3, false)),
        ];
        let mut wire = Vec::new();
        for frame in &frames {
            wire.extend_from_slice(&frame.encode());
        }
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        // A reader that hands out 5 bytes at a time.
        let (mut tx, rx) = tokio::io::duplex(5);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(&wire).await.unwrap();
        });
        let mut reader = FrameReader::new(rx);
        let mut got = Vec::new();
        while let Some(frame) = reader.next().await.unwrap() {
            got.push(frame);
        }
        writer.await.unwrap();
        assert_eq!(got, frames);
        assert_eq!(got[2].exit_status().unwrap().exit_code, 3);
    }

    #[tokio::test]
    async fn a_truncated_frame_is_an_error() {
        let wire = Frame::new(StreamKind::Stdout, &b"abcdef"[..]).encode();
        let mut reader = FrameReader::new(&wire[..10]);
        assert!(reader.next().await.is_err());
    }
}
