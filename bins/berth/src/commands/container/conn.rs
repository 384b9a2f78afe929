//! Raw HTTP on a fresh connection for the calls that outlive a normal request: the hijacked
//! attach/exec streams (`Upgrade: tcp`, then the bare socket) and requests such as
//! `POST /wait` that must be on the wire before the container starts.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::client::{Client, Host, cannot_connect, raw};
use crate::errors::CliError;

/// A socket to the daemon.
pub enum Socket {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Where requests go: the daemon and the negotiated API version, cheap to clone into tasks.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub host: Host,
    pub api_version: String,
}

impl Endpoint {
    pub fn of(client: &Client) -> Endpoint {
        Endpoint {
            host: client.host.clone(),
            api_version: client.api_version.clone(),
        }
    }

    pub fn path(&self, path: &str) -> String {
        format!("/v{}{}", self.api_version, path)
    }

    async fn connect(&self) -> Result<Socket, CliError> {
        match &self.host {
            Host::Unix(p) => tokio::net::UnixStream::connect(p)
                .await
                .map(Socket::Unix)
                .map_err(|_| cannot_connect(&self.host)),
            Host::Tcp(a) => tokio::net::TcpStream::connect(a)
                .await
                .map(Socket::Tcp)
                .map_err(|_| cannot_connect(&self.host)),
        }
    }

    /// Sends a request and returns the socket once the request is written.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        upgrade: bool,
    ) -> Result<Socket, CliError> {
        let mut sock = self.connect().await?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth-cli\r\nContent-Length: {}\r\n",
            self.path(path),
            body.len()
        );
        if upgrade {
            head.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
        } else {
            head.push_str("Connection: close\r\n");
        }
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        } else if upgrade {
            head.push_str("Content-Type: text/plain\r\n");
        }
        head.push_str("\r\n");
        head.push_str(&body);
        sock.write_all(head.as_bytes())
            .await
            .map_err(|_| cannot_connect(&self.host))?;
        sock.flush().await.map_err(|_| cannot_connect(&self.host))?;
        Ok(sock)
    }

    /// A hijacked stream: the request with `Upgrade: tcp`, a `101` (or `200`) answer, and
    /// the socket with whatever bytes followed the answer's head.
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Hijacked, CliError> {
        let mut sock = self.send("POST", path, body, true).await?;
        let (status, headers, rest) = read_head(&mut sock)
            .await
            .map_err(|e| CliError::msg(e.to_string()))?;
        if status == 101 || status == 200 {
            return Ok(Hijacked {
                sock,
                buffered: rest,
            });
        }
        let body = read_rest(&mut sock, &headers, rest).await;
        Err(daemon_error(&body))
    }

    /// A plain request whose whole answer is read: (status, body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Vec<u8>), CliError> {
        let sock = self.send(method, path, body, false).await?;
        Ok(finish(sock).await)
    }
}

/// Reads the answer to a request sent with [`Endpoint::send`]: (status, body).
pub async fn finish(mut sock: Socket) -> (u16, Vec<u8>) {
    match read_head(&mut sock).await {
        Ok((status, headers, rest)) => (status, read_rest(&mut sock, &headers, rest).await),
        Err(e) => (0, e.to_string().into_bytes()),
    }
}

/// docker's `Error response from daemon: …` for an error body.
pub fn daemon_error(body: &[u8]) -> CliError {
    CliError::msg(format!(
        "Error response from daemon: {}",
        raw::error_message(body)
    ))
}

pub struct Hijacked {
    pub sock: Socket,
    pub buffered: Vec<u8>,
}

async fn read_head(sock: &mut Socket) -> std::io::Result<(u16, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let rest = buf[end + 4..].to_vec();
            let mut lines = head.lines();
            let status = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other("malformed HTTP response"))?;
            let headers = lines
                .filter_map(|l| {
                    l.split_once(':')
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                })
                .collect();
            return Ok((status, headers, rest));
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("unexpected EOF"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn read_rest(sock: &mut Socket, headers: &[(String, String)], mut buf: Vec<u8>) -> Vec<u8> {
    let header = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
    if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        while buf.len() < len {
            let mut chunk = vec![0u8; (len - buf.len()).min(65536)];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.truncate(len);
        return buf;
    }
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut chunk = [0u8; 65536];
    loop {
        if chunked && buf.ends_with(b"0\r\n\r\n") {
            break;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if chunked { dechunk(&buf) } else { buf }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        if start + size > b.len() {
            out.extend_from_slice(&b[start..]);
            break;
        }
        out.extend_from_slice(&b[start..start + size]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"),
            b"hello!".to_vec()
        );
    }
}
