//! The daemon's side of the protocol.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::frame::FrameReader;
use crate::protocol::{AttachRequest, ExecRequest, ExitStatus, Request, Response, ShimState};
use crate::{Result, ShimError};

/// Talks to one shim; every call opens its own connection, so calls never wait on
/// each other.
#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
}

/// A connection turned into a stream: frames from the shim, stdin to it.
pub struct ShimStream {
    pub frames: FrameReader<OwnedReadHalf>,
    pub stdin: OwnedWriteHalf,
}

impl ShimClient {
    pub fn new(socket: impl Into<PathBuf>) -> ShimClient {
        ShimClient {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends `request`; returns the response and the connection, with any bytes read
    /// past the response line.
    async fn call(&self, request: &Request) -> Result<(Response, UnixStream, Vec<u8>)> {
        let mut conn = connect(&self.socket)
            .await
            .map_err(|source| ShimError::Connect {
                path: self.socket.clone(),
                source,
            })?;
        let mut line =
            serde_json::to_vec(request).map_err(|e| ShimError::Protocol(e.to_string()))?;
        line.push(b'\n');
        conn.write_all(&line).await?;
        let mut buf = Vec::with_capacity(256);
        let newline = loop {
            if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                break pos;
            }
            if buf.len() > 1 << 20 {
                return Err(ShimError::Protocol("response line too long".into()));
            }
            let mut chunk = [0u8; 4096];
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Err(ShimError::Protocol(
                    "shim closed the connection without answering".into(),
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let rest = buf.split_off(newline + 1);
        let response: Response = serde_json::from_slice(&buf[..newline])
            .map_err(|e| ShimError::Protocol(format!("bad response: {e}")))?;
        if let Response::Error { message } = response {
            return Err(ShimError::Refused(message));
        }
        Ok((response, conn, rest))
    }

    async fn expect_ok(&self, request: &Request) -> Result<()> {
        match self.call(request).await?.0 {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn start(&self) -> Result<()> {
        self.expect_ok(&Request::Start).await
    }

    pub async fn state(&self) -> Result<ShimState> {
        match self.call(&Request::State).await?.0 {
            Response::State(state) => Ok(state),
            other => Err(unexpected(other)),
        }
    }

    /// Waits for the container to exit.
    pub async fn wait(&self) -> Result<ExitStatus> {
        match self.call(&Request::Wait).await?.0 {
            Response::Exited(status) => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    pub async fn kill(&self, signal: i32, all: bool) -> Result<()> {
        self.expect_ok(&Request::Kill { signal, all }).await
    }

    pub async fn resize(&self, exec_id: Option<String>, height: u16, width: u16) -> Result<()> {
        self.expect_ok(&Request::Resize {
            exec_id,
            height,
            width,
        })
        .await
    }

    pub async fn pause(&self) -> Result<()> {
        self.expect_ok(&Request::Pause).await
    }

    pub async fn resume(&self) -> Result<()> {
        self.expect_ok(&Request::Resume).await
    }

    pub async fn attach(&self, request: AttachRequest) -> Result<ShimStream> {
        let (response, conn, rest) = self.call(&Request::Attach(request)).await?;
        match response {
            Response::Ok => Ok(stream(conn, &rest)),
            other => Err(unexpected(other)),
        }
    }

    /// Starts an exec'd process; returns its host pid and its stream, whose last frame
    /// carries its exit status.
    pub async fn exec(&self, request: ExecRequest) -> Result<(i32, ShimStream)> {
        let (response, conn, rest) = self.call(&Request::Exec(request)).await?;
        match response {
            Response::ExecStarted { pid } => Ok((pid, stream(conn, &rest))),
            other => Err(unexpected(other)),
        }
    }
}

/// Connects to a socket whose path may be too long for a socket address: through
/// `/proc/self/fd/N/NAME`, where N is an open descriptor of its directory.
async fn connect(path: &Path) -> std::io::Result<UnixStream> {
    const MAX: usize = 100;
    if path.as_os_str().len() <= MAX {
        return UnixStream::connect(path).await;
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return UnixStream::connect(path).await;
    };
    let dir = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    let conn = UnixStream::connect(&short).await;
    drop(dir);
    conn
}

fn stream(conn: UnixStream, rest: &[u8]) -> ShimStream {
    let (read, write) = conn.into_split();
    ShimStream {
        frames: FrameReader::with_buffered(read, rest),
        stdin: write,
    }
}

fn unexpected(response: Response) -> ShimError {
    ShimError::Protocol(format!("unexpected response {response:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_socket_paths_are_reached_through_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        assert!(path.as_os_str().len() > 108);
        // Bind relative to the directory, as the shim does from inside it.
        let dir_file = std::fs::File::open(&dir).unwrap();
        use std::os::fd::AsRawFd;
        let via = format!("/proc/self/fd/{}/sock", dir_file.as_raw_fd());
        let listener = std::os::unix::net::UnixListener::bind(&via).unwrap();
        let accept = std::thread::spawn(move || listener.accept().map(|_| ()));
        connect(&path).await.unwrap();
        accept.join().unwrap().unwrap();
    }
}
