//! The connection to the daemon: bollard for the typed API, a raw HTTP client for the calls
//! whose JSON is shown as the daemon sent it, and docker's error messages for both.

pub mod raw;

use bollard::Docker;
use futures::{Stream, StreamExt};
use http::Method;

use crate::errors::CliError;
use crate::format::template::Value;
pub use raw::Host;

pub struct Client {
    pub docker: Docker,
    pub host: Host,
    /// The negotiated API version (`1.41`).
    pub api_version: String,
}

/// docker's message when the daemon cannot be reached.
pub fn cannot_connect(host: &Host) -> CliError {
    CliError::msg(format!(
        "Cannot connect to the berth daemon at {}. Is the berth daemon running?",
        host.url()
    ))
}

/// The daemon answered 404 (rmi -f ignores those).
pub fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Client {
    /// A bollard error as docker prints it.
    pub fn error(&self, err: bollard::errors::Error) -> CliError {
        use bollard::errors::Error as E;
        match err {
            E::DockerResponseServerError { message, .. } => {
                CliError::msg(format!("Error response from daemon: {message}"))
            }
            E::DockerStreamError { error } => CliError::msg(error),
            E::HyperLegacyError { .. } | E::SocketNotFoundError(_) | E::RequestTimeoutError => {
                cannot_connect(&self.host)
            }
            E::IOError { err } => CliError::msg(err.to_string()),
            other => CliError::msg(other.to_string()),
        }
    }

    fn path(&self, path: &str) -> String {
        format!("/v{}{}", self.api_version, path)
    }

    /// Sends a request and returns the body of a 2xx answer, else docker's error.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<bytes::Bytes>,
    ) -> Result<bytes::Bytes, CliError> {
        let resp = raw::send(&self.host, method, &self.path(path), headers, body)
            .await
            .map_err(|_| cannot_connect(&self.host))?;
        let (status, body) = raw::read_body(resp)
            .await
            .map_err(|e| CliError::msg(e.to_string()))?;
        if !status.is_success() {
            return Err(CliError::msg(format!(
                "Error response from daemon: {}",
                raw::error_message(&body)
            )));
        }
        Ok(body)
    }

    /// `GET path` as text, or the daemon's message for a 404 as `Err`.
    pub async fn get_text(&self, path: &str) -> Result<Result<String, String>, CliError> {
        let resp = raw::send(&self.host, Method::GET, &self.path(path), &[], None)
            .await
            .map_err(|_| cannot_connect(&self.host))?;
        let (status, body) = raw::read_body(resp)
            .await
            .map_err(|e| CliError::msg(e.to_string()))?;
        if status == http::StatusCode::NOT_FOUND {
            return Ok(Err(raw::error_message(&body)));
        }
        if !status.is_success() {
            return Err(CliError::msg(format!(
                "Error response from daemon: {}",
                raw::error_message(&body)
            )));
        }
        Ok(Ok(String::from_utf8_lossy(&body).into_owned()))
    }

    /// `GET path` decoded into a template value (key order kept).
    pub async fn get_value(&self, path: &str) -> Result<(String, Value), CliError> {
        let body = self.raw(Method::GET, path, &[], None).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let value = Value::from_json(&text)
            .map_err(|e| CliError::msg(format!("error decoding response: {e}")))?;
        Ok((text, value))
    }

    /// A streaming endpoint (`/events`) as raw JSON texts.
    pub async fn get_stream(
        &self,
        path: &str,
    ) -> Result<impl Stream<Item = Result<String, CliError>> + use<>, CliError> {
        let resp = raw::send(&self.host, Method::GET, &self.path(path), &[], None)
            .await
            .map_err(|_| cannot_connect(&self.host))?;
        if !resp.status().is_success() {
            let (_, body) = raw::read_body(resp)
                .await
                .map_err(|e| CliError::msg(e.to_string()))?;
            return Err(CliError::msg(format!(
                "Error response from daemon: {}",
                raw::error_message(&body)
            )));
        }
        Ok(raw::json_values(resp.into_body()).map(|r| r.map_err(|e| CliError::msg(e.to_string()))))
    }
}

/// Encodes query parameters.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// Percent-encodes a name for a URL path the way docker's client leaves it: `/` and `:` stay.
pub fn path_escape(s: &str) -> String {
    encode(s).replace("%2F", "/")
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(
            query(&[("filters", "{\"a\":[\"b c\"]}")]),
            "?filters=%7B%22a%22:%5B%22b%20c%22%5D%7D"
        );
        assert_eq!(
            encode("localhost:5000/foo/bar:1.0"),
            "localhost:5000%2Ffoo%2Fbar:1.0"
        );
        assert_eq!(
            path_escape("localhost:5000/foo/bar:1.0"),
            "localhost:5000/foo/bar:1.0"
        );
        assert_eq!(path_escape("a b?"), "a%20b%3F");
    }
}
