//! The contract between berthd and `berth-shim`, the small process that owns one
//! container: the files the shim leaves in its state directory, the requests it serves
//! on its unix socket, the framing of attached streams, and the daemon's async client.
//!
//! A connection carries one request line (JSON) and one response line. `attach` and
//! `exec` then turn the connection into a stream: the shim sends [`Frame`]s (Docker's
//! 8-byte stdcopy header, with stream 3 carrying the final [`ExitStatus`] as JSON) and
//! the client sends raw stdin bytes, ending stdin by shutting down its write half.

pub mod client;
pub mod frame;
pub mod protocol;
pub mod state_dir;
pub mod vm;

pub use client::{ShimClient, ShimStream};
pub use frame::{Frame, FrameReader, StreamKind};
pub use protocol::{AttachRequest, ExecRequest, ExitStatus, Request, Response, ShimState};
pub use state_dir::StateDir;

/// Errors talking to a shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("connect to shim at {path}: {source}")]
    Connect {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("shim connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("shim protocol: {0}")]
    Protocol(String),
    /// The shim refused the request; the message is meant for the user.
    #[error("{0}")]
    Refused(String),
}

pub type Result<T> = std::result::Result<T, ShimError>;
