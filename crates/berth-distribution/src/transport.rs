//! HTTP below the protocol: the two reqwest clients, redirects that keep credentials on the
//! registry's origin, bounded body reads.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use url::Url;

use crate::error::{DistributionError, transport_cause};

const MAX_REDIRECTS: usize = 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A registry that sends nothing for this long is stalled; the pull fails and can resume.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// One reqwest client that verifies TLS and one that does not (for insecure registries). Both
/// follow no redirects themselves: [`Transport::execute`] does, so it decides where the
/// `Authorization` header goes.
pub(crate) struct Transport {
    secure: reqwest::Client,
    insecure: reqwest::Client,
}

/// Told how many bytes of a request body have gone out so far.
pub(crate) type SentFn = Arc<dyn Fn(u64) + Send + Sync>;

/// Pieces a body with progress is sent in.
const BODY_PIECE: usize = 64 * 1024;

/// A request body: bytes that can be sent again (after a redirect or an auth challenge), and
/// optionally a callback told how far sending got.
#[derive(Clone)]
pub(crate) struct Payload {
    pub bytes: Bytes,
    pub sent: Option<SentFn>,
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Payload {
        Payload {
            bytes: v.into(),
            sent: None,
        }
    }
}

impl Payload {
    fn body(&self) -> reqwest::Body {
        let Some(sent) = self.sent.clone() else {
            return reqwest::Body::from(self.bytes.clone());
        };
        let bytes = self.bytes.clone();
        let len = bytes.len();
        let pieces = (0..len).step_by(BODY_PIECE).map(move |start| {
            let end = (start + BODY_PIECE).min(len);
            sent(end as u64);
            Ok::<_, std::io::Error>(bytes.slice(start..end))
        });
        reqwest::Body::wrap_stream(futures::stream::iter(pieces))
    }
}

/// One request. `auth` is sent only to the origin of `url`, never to where it redirects.
pub(crate) struct Call<'a> {
    pub registry: &'a str,
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Payload>,
    pub auth: Option<&'a HeaderValue>,
    pub insecure_tls: bool,
}

impl Transport {
    pub fn new(user_agent: &str) -> Result<Transport, DistributionError> {
        // reqwest is built without a default crypto provider; ring is the one we ship.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |accept_invalid_certs: bool| {
            reqwest::Client::builder()
                .user_agent(user_agent)
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .tls_danger_accept_invalid_certs(accept_invalid_certs)
                .build()
                .map_err(|e| DistributionError::Client(e.to_string()))
        };
        Ok(Transport {
            secure: build(false)?,
            insecure: build(true)?,
        })
    }

    /// Sends a request, following up to 10 redirects. Transport failures become
    /// [`DistributionError::Connection`] naming the registry, the URL and the cause.
    pub async fn execute(&self, call: Call<'_>) -> Result<reqwest::Response, DistributionError> {
        let client = if call.insecure_tls {
            &self.insecure
        } else {
            &self.secure
        };
        let origin = call.url.origin();
        let (mut url, mut method, mut body, mut headers) =
            (call.url, call.method, call.body, call.headers);
        for _ in 0..=MAX_REDIRECTS {
            let mut req = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(auth) = call.auth
                && url.origin() == origin
            {
                req = req.header(header::AUTHORIZATION, auth.clone());
            }
            if let Some(b) = &body {
                req = req.body(b.body());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| DistributionError::Connection {
                    registry: call.registry.to_string(),
                    cause: transport_cause(&method, &url, e),
                })?;
            let status = resp.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let Some(location) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(resp);
            };
            let next = url
                .join(location)
                .map_err(|e| DistributionError::Protocol {
                    what: format!("registry {}", call.registry),
                    reason: format!("invalid redirect location {location:?}: {e}"),
                })?;
            if matches!(status.as_u16(), 301..=303)
                && method != Method::GET
                && method != Method::HEAD
            {
                method = Method::GET;
                body = None;
                headers.remove(header::CONTENT_TYPE);
            }
            tracing::debug!(from = %url, to = %next, status = status.as_u16(), "following redirect");
            url = next;
        }
        Err(DistributionError::Protocol {
            what: format!("registry {}", call.registry),
            reason: format!("more than {MAX_REDIRECTS} redirects, last to {url}"),
        })
    }
}

/// Reads a whole body, refusing more than `limit` bytes (by `Content-Length` up front, and while
/// reading for chunked bodies).
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    registry: &str,
    what: &str,
    limit: u64,
) -> Result<Bytes, DistributionError> {
    let too_large = || DistributionError::TooLarge {
        what: what.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if (buf.len() + chunk.len()) as u64 > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => {
                return Err(DistributionError::Read {
                    registry: registry.to_string(),
                    what: what.to_string(),
                    cause: crate::error::transport_cause(&Method::GET, resp.url(), e),
                });
            }
        }
    }
}

/// A header as text, if present and valid.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}
