//! A minimal HTTP/1.1 client for the few calls where the daemon's JSON must reach the user
//! untouched (inspect, info, version, df, events) or that bollard lacks (`POST /auth`).

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(String),
}

impl Host {
    /// `unix:///run/berth/berth.sock` / `tcp://host:2375`, as shown in messages.
    pub fn url(&self) -> String {
        match self {
            Host::Unix(p) => format!("unix://{}", p.display()),
            Host::Tcp(a) => format!("tcp://{a}"),
        }
    }
}

pub type RawError = Box<dyn std::error::Error + Send + Sync>;

/// Sends one request on a fresh connection.
pub async fn send(
    host: &Host,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Bytes>,
) -> Result<Response<Incoming>, RawError> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if body.is_some() {
        req = req.header("Content-Type", "application/json");
    }
    let req = req.body(Full::new(body.unwrap_or_default()))?;
    match host {
        Host::Unix(p) => {
            let stream = tokio::net::UnixStream::connect(p).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            Ok(sender.send_request(req).await?)
        }
        Host::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            Ok(sender.send_request(req).await?)
        }
    }
}

/// Reads the whole body.
pub async fn read_body(resp: Response<Incoming>) -> Result<(StatusCode, Bytes), RawError> {
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// The `message` of docker's error body, or the body text.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}

/// Splits a body into consecutive JSON values (docker streams them one per line, but its
/// decoder does not need the newlines), each as its raw text.
pub fn json_values(
    body: Incoming,
) -> std::pin::Pin<Box<dyn Stream<Item = Result<String, RawError>> + Send>> {
    Box::pin(futures::stream::unfold(
        (body, BytesMut::new(), false),
        |(mut body, mut buf, mut done)| async move {
            loop {
                if let Some(text) = next_value(&mut buf) {
                    return Some((text, (body, buf, done)));
                }
                if done {
                    let rest = String::from_utf8_lossy(&buf).trim().to_string();
                    if rest.is_empty() {
                        return None;
                    }
                    buf.clear();
                    return Some((
                        Err(format!("unexpected end of JSON stream: {rest}").into()),
                        (body, buf, done),
                    ));
                }
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            buf.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => return Some((Err(e.into()), (body, buf, true))),
                    None => done = true,
                }
            }
        },
    ))
}

/// Takes the first complete JSON value off the buffer.
fn next_value(buf: &mut BytesMut) -> Option<Result<String, RawError>> {
    let mut iter = serde_json::Deserializer::from_slice(buf).into_iter::<serde::de::IgnoredAny>();
    match iter.next() {
        Some(Ok(_)) => {
            let end = iter.byte_offset();
            let raw = buf.split_to(end);
            Some(Ok(String::from_utf8_lossy(&raw).trim().to_string()))
        }
        Some(Err(e)) if e.is_eof() => None,
        Some(Err(e)) => {
            buf.clear();
            Some(Err(e.into()))
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_concatenated_values() {
        let mut buf = BytesMut::from(&b"{\"a\":1}\n{\"b\":[2]}{\"c\""[..]);
        assert_eq!(next_value(&mut buf).unwrap().unwrap(), "{\"a\":1}");
        assert_eq!(next_value(&mut buf).unwrap().unwrap(), "{\"b\":[2]}");
        assert!(next_value(&mut buf).is_none());
        buf.extend_from_slice(b":3}\n");
        assert_eq!(next_value(&mut buf).unwrap().unwrap(), "{\"c\":3}");
        assert!(next_value(&mut buf).is_none());
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(br#"{"message":"No such image: x:latest"}"#),
            "No such image: x:latest"
        );
        assert_eq!(error_message(b"plain text\n"), "plain text");
    }
}
