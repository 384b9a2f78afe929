//! Pulling: resolving a reference to one image manifest, and fetching blobs (whole or streamed,
//! resumable, verified).

use std::fmt;
use std::time::Duration;

use berth_image::digest::Hasher;
use berth_image::reference::DEFAULT_TAG;
use berth_image::{Digest, Reference};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::auth::Credentials;
use crate::client::{RegistryClient, Subject, anonymous_denied, ensure_success, v2_url};
use crate::error::DistributionError;
use crate::manifest::{self, Descriptor, Manifest, is_image_manifest, media_types};
use crate::platform::Platform;
use crate::transport::{header_str, read_limited};

/// Manifests larger than this are refused (docker's limit).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// [`RegistryClient::fetch_blob_bytes`] refuses blobs larger than this.
pub const MAX_SMALL_BLOB_SIZE: u64 = 64 * 1024 * 1024;
/// Attempts of a blob request that fails to connect or gets a 5xx/429.
const BLOB_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// A reference resolved to one single-platform image manifest.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The digest of the image manifest (of the platform's entry when the tag is an index).
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest_bytes: Bytes,
    /// The digest the reference pointed at when that was a manifest list / index.
    pub index_digest: Option<Digest>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A blob being downloaded.
pub struct BlobStream {
    /// The server ignored the Range request: the stream starts at byte 0, not at the offset
    /// asked for, and the caller must discard what it had.
    pub restarted: bool,
    /// Where in the blob the stream starts: the offset asked for, or 0 when restarted.
    pub offset: u64,
    /// The size of the whole blob, when the server says it.
    pub total_size: Option<u64>,
    /// The bytes. When the stream starts at 0 it is verified against the digest: a mismatch is
    /// its last item, an error. A resumed stream cannot be: the caller holds the first part.
    pub stream: BoxStream<'static, Result<Bytes, DistributionError>>,
}

impl fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStream")
            .field("restarted", &self.restarted)
            .field("offset", &self.offset)
            .field("total_size", &self.total_size)
            .finish_non_exhaustive()
    }
}

struct Fetched {
    bytes: Bytes,
    content_type: Option<String>,
    header_digest: Option<String>,
}

pub(crate) fn scope_of(r: &Reference) -> String {
    format!("repository:{}:pull", r.repository())
}

impl RegistryClient {
    /// Resolves a reference to a single-platform image manifest: by digest if it has one, else
    /// by tag. Verifies what it got (against the requested digest, or the registry's
    /// `Docker-Content-Digest`); for a manifest list / index picks the entry for `platform`
    /// (see [`Platform::best_match`]) and fetches and verifies that too.
    pub async fn resolve(
        &self,
        r: &Reference,
        platform: &Platform,
        creds: Option<&Credentials>,
    ) -> Result<ResolvedImage, DistributionError> {
        let what = r.familiar();
        let top_ref = match r.digest() {
            Some(d) => d.to_string(),
            None => r.tag().unwrap_or(DEFAULT_TAG).to_string(),
        };
        let top = self.get_manifest(r, &top_ref, creds).await?;
        let top_digest = Digest::of(&top.bytes);
        match (r.digest(), top.header_digest.as_deref()) {
            (Some(expected), _) => {
                check_digest(&format!("manifest {what}"), *expected, top_digest)?
            }
            (None, Some(header)) => match header.parse::<Digest>() {
                Ok(expected) => check_digest(&format!("manifest {what}"), expected, top_digest)?,
                Err(_) => {
                    tracing::debug!(header, "Docker-Content-Digest is not sha256, not checked")
                }
            },
            (None, None) => {}
        }
        let (media_type, parsed) = manifest::parse(&top.bytes, top.content_type.as_deref(), &what)?;
        let entries = match parsed {
            Manifest::Image(m) => {
                return Ok(ResolvedImage {
                    manifest_digest: top_digest,
                    manifest_media_type: media_type,
                    manifest_bytes: top.bytes,
                    index_digest: None,
                    config: m.config,
                    layers: m.layers,
                });
            }
            Manifest::Index(entries) => entries,
        };
        let candidates: Vec<(&Platform, &Descriptor)> = entries
            .iter()
            .filter(|e| {
                e.descriptor.media_type.is_empty() || is_image_manifest(&e.descriptor.media_type)
            })
            .filter_map(|e| Some((e.platform.as_ref()?, &e.descriptor)))
            .collect();
        let Some(i) = platform.best_match(candidates.iter().map(|(p, _)| *p)) else {
            return Err(DistributionError::NoMatchingManifest {
                platform: platform.normalized().to_string(),
            });
        };
        let (chosen, child) = candidates[i];
        tracing::debug!(reference = %what, platform = %chosen, digest = %child.digest, "picked manifest from index");
        let fetched = self
            .get_manifest(r, &child.digest.to_string(), creds)
            .await?;
        let what_child = format!("manifest {what} ({chosen})");
        check_digest(&what_child, child.digest, Digest::of(&fetched.bytes))?;
        let (media_type, parsed) =
            manifest::parse(&fetched.bytes, fetched.content_type.as_deref(), &what)?;
        let Manifest::Image(m) = parsed else {
            return Err(DistributionError::InvalidManifest {
                reference: what,
                reason: format!("the entry for {chosen} is an index itself, not an image manifest"),
            });
        };
        Ok(ResolvedImage {
            manifest_digest: child.digest,
            manifest_media_type: media_type,
            manifest_bytes: fetched.bytes,
            index_digest: Some(top_digest),
            config: m.config,
            layers: m.layers,
        })
    }

    async fn get_manifest(
        &self,
        r: &Reference,
        reference: &str,
        creds: Option<&Credentials>,
    ) -> Result<Fetched, DistributionError> {
        let registry = r.registry();
        let ep = self.endpoint(registry).await?;
        let url = v2_url(&ep, &format!("{}/manifests/{reference}", r.repository()))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(media_types::ACCEPT_MANIFESTS),
        );
        let resp = self
            .send(&ep, registry, &scope_of(r), creds, url, headers)
            .await
            .map_err(|e| anonymous_denied(e, r, creds.is_none()))?;
        let resp = ensure_success(resp, registry, &Subject::Manifest(r), creds.is_none()).await?;
        let content_type = header_str(resp.headers(), "content-type").map(str::to_string);
        let header_digest = header_str(resp.headers(), "docker-content-digest").map(str::to_string);
        let what = format!("manifest for {}", r.familiar());
        let bytes = read_limited(resp, registry, &what, MAX_MANIFEST_SIZE).await?;
        Ok(Fetched {
            bytes,
            content_type,
            header_digest,
        })
    }

    /// Fetches a whole small blob (an image config), verifying its digest. Refuses blobs larger
    /// than [`MAX_SMALL_BLOB_SIZE`].
    pub async fn fetch_blob_bytes(
        &self,
        r: &Reference,
        digest: &Digest,
        creds: Option<&Credentials>,
    ) -> Result<Bytes, DistributionError> {
        let too_large = || DistributionError::TooLarge {
            what: format!("blob {digest}"),
            limit: MAX_SMALL_BLOB_SIZE,
        };
        let mut blob = self.fetch_blob(r, digest, 0, creds).await?;
        if blob.total_size.is_some_and(|n| n > MAX_SMALL_BLOB_SIZE) {
            return Err(too_large());
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = blob.stream.next().await {
            let chunk = chunk?;
            if (buf.len() + chunk.len()) as u64 > MAX_SMALL_BLOB_SIZE {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// Streams a blob from `offset` on (`Range: bytes=offset-`, to resume a broken download). A
    /// server that ignores the range answers with the whole blob: then `restarted` is set.
    /// Redirects to storage are followed without the registry's `Authorization`. Failures to
    /// connect and 5xx/429 answers are retried a few times with a short backoff; a stream that
    /// breaks off later is not: resume it with the offset reached.
    pub async fn fetch_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        offset: u64,
        creds: Option<&Credentials>,
    ) -> Result<BlobStream, DistributionError> {
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.try_fetch_blob(r, digest, offset, creds).await {
                Err(e) if e.is_transient() && attempt < BLOB_ATTEMPTS => {
                    tracing::warn!(blob = %digest, attempt, error = %e, "blob request failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn try_fetch_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        offset: u64,
        creds: Option<&Credentials>,
    ) -> Result<BlobStream, DistributionError> {
        let registry = r.registry();
        let ep = self.endpoint(registry).await?;
        let url = v2_url(&ep, &format!("{}/blobs/{digest}", r.repository()))?;
        let mut range = offset > 0;
        loop {
            let mut headers = HeaderMap::new();
            if range {
                let value = HeaderValue::from_str(&format!("bytes={offset}-"))
                    .map_err(|e| DistributionError::Client(format!("range header: {e}")))?;
                headers.insert(header::RANGE, value);
            }
            let resp = self
                .send(&ep, registry, &scope_of(r), creds, url.clone(), headers)
                .await
                .map_err(|e| anonymous_denied(e, r, creds.is_none()))?;
            let status = resp.status();
            if status == StatusCode::RANGE_NOT_SATISFIABLE && range {
                tracing::debug!(blob = %digest, offset, "range not satisfiable, fetching the whole blob");
                range = false;
                continue;
            }
            let resp =
                ensure_success(resp, registry, &Subject::Blob(r, digest), creds.is_none()).await?;
            let partial = range && status == StatusCode::PARTIAL_CONTENT;
            let total_size = if partial {
                let content_range = header_str(resp.headers(), "content-range").unwrap_or("");
                let (start, total) = parse_content_range(content_range).ok_or_else(|| {
                    DistributionError::Protocol {
                        what: format!("registry {registry}"),
                        reason: format!(
                            "invalid Content-Range {content_range:?} for blob {digest}"
                        ),
                    }
                })?;
                if start != offset {
                    return Err(DistributionError::Protocol {
                        what: format!("registry {registry}"),
                        reason: format!(
                            "asked for blob {digest} from byte {offset}, got it from byte {start}"
                        ),
                    });
                }
                total
            } else {
                resp.content_length()
            };
            let restarted = offset > 0 && !partial;
            if restarted {
                tracing::info!(blob = %digest, offset, "registry ignored the range, downloading the whole blob");
            }
            let start = if partial { offset } else { 0 };
            let stream = verified_stream(resp, registry.to_string(), *digest, start == 0);
            return Ok(BlobStream {
                restarted,
                offset: start,
                total_size,
                stream,
            });
        }
    }
}

fn check_digest(what: &str, expected: Digest, actual: Digest) -> Result<(), DistributionError> {
    if expected == actual {
        Ok(())
    } else {
        Err(DistributionError::DigestMismatch {
            what: what.to_string(),
            expected,
            actual,
        })
    }
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`) → (START, TOTAL).
fn parse_content_range(s: &str) -> Option<(u64, Option<u64>)> {
    let rest = s.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

struct StreamState {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    hasher: Option<Hasher>,
    expected: Digest,
    registry: String,
    url: url::Url,
    done: bool,
}

/// The body as a stream of chunks; when `verify`, a last error item if the digest is wrong.
fn verified_stream(
    resp: reqwest::Response,
    registry: String,
    expected: Digest,
    verify: bool,
) -> BoxStream<'static, Result<Bytes, DistributionError>> {
    let state = StreamState {
        url: resp.url().clone(),
        body: resp.bytes_stream().boxed(),
        hasher: verify.then(Hasher::new),
        expected,
        registry,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        match st.body.next().await {
            Some(Ok(chunk)) => {
                if let Some(h) = st.hasher.as_mut() {
                    h.update(&chunk);
                }
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                st.done = true;
                let err = DistributionError::Read {
                    registry: st.registry.clone(),
                    what: format!("blob {}", st.expected),
                    cause: crate::error::transport_cause(&http::Method::GET, &st.url, e),
                };
                Some((Err(err), st))
            }
            None => {
                st.done = true;
                let actual = st.hasher.take()?.finish();
                let what = format!("blob {}", st.expected);
                check_digest(&what, st.expected, actual)
                    .err()
                    .map(|e| (Err(e), st))
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 10-99/*"), Some((10, None)));
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("bytes 10-5/100"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
