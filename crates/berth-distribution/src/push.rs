//! Pushing: blob existence checks, cross-repository mounts, blob uploads streamed from files
//! (monolithic for small blobs, chunked for large ones) and manifest uploads.
//!
//! Every request of a push asks for the token scope `repository:NAME:pull,push`; a mount
//! asks for `repository:NAME:pull,push repository:FROM:pull`.

use std::path::Path;
use std::sync::Arc;

use berth_image::{Digest, Reference};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::io::AsyncReadExt;
use url::Url;

use crate::auth::{self, Credentials};
use crate::client::{RegistryClient, Req, error_body, v2_url};
use crate::error::{DistributionError, RegistryMessage, status_text};
use crate::transport::{Payload, header_str};

/// Blobs up to this size are uploaded in one `PUT`; larger ones in `PATCH` chunks.
pub const CHUNKED_UPLOAD_THRESHOLD: u64 = 16 << 20;
/// The size of one `PATCH` of a chunked upload (the last one may be shorter).
pub const UPLOAD_CHUNK_SIZE: u64 = 8 << 20;
/// Manifests larger than this are not sent (registries refuse them anyway).
const MAX_PUSH_MANIFEST_SIZE: usize = 4 << 20;
/// docker's text for a push the registry refuses.
const DENIED: &str = "denied: requested access to the resource is denied";

/// Told how many bytes of the blob have been sent so far.
pub type UploadProgress = Arc<dyn Fn(u64) + Send + Sync>;

/// An upload session the registry opened: where the next request of the upload goes.
#[derive(Debug, Clone)]
pub struct UploadSession {
    location: Url,
}

/// What a cross-repository mount attempt gave.
#[derive(Debug)]
pub enum MountOutcome {
    /// The registry linked the blob into the repository (201): nothing to upload.
    Mounted,
    /// The registry did not mount but opened an upload session instead (202): upload into it
    /// (or cancel it).
    Upload(UploadSession),
}

/// A blob to upload, read from a file that holds exactly its bytes.
pub struct BlobUpload<'a> {
    pub digest: Digest,
    pub size: u64,
    pub path: &'a Path,
    /// A session already opened (by a mount the registry answered with 202); else one is
    /// started.
    pub session: Option<UploadSession>,
}

/// The scope a push asks for.
pub(crate) fn push_scope(r: &Reference) -> String {
    format!("repository:{}:pull,push", r.repository())
}

fn octet_stream(headers: &mut HeaderMap, len: u64) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}

impl RegistryClient {
    /// Whether the repository already has the blob (`HEAD /v2/NAME/blobs/DIGEST`).
    pub async fn blob_exists(
        &self,
        repo: &Reference,
        digest: &Digest,
        creds: Option<&Credentials>,
    ) -> Result<bool, DistributionError> {
        let registry = repo.registry();
        let ep = self.endpoint(registry).await?;
        let url = v2_url(&ep, &format!("{}/blobs/{digest}", repo.repository()))?;
        let req = Req {
            method: Method::HEAD,
            url,
            headers: HeaderMap::new(),
            body: None,
        };
        let resp = self
            .send_request(&ep, registry, &push_scope(repo), creds, req)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(push_error(registry, &Method::HEAD, resp).await),
        }
    }

    /// Asks the registry to link a blob of repository `from` (a path on the same registry,
    /// `team/app`) into `repo` (`POST …/blobs/uploads/?mount=DIGEST&from=FROM`).
    pub async fn mount_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        from: &str,
        creds: Option<&Credentials>,
    ) -> Result<MountOutcome, DistributionError> {
        let registry = repo.registry();
        let ep = self.endpoint(registry).await?;
        let mut url = v2_url(&ep, &format!("{}/blobs/uploads/", repo.repository()))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let scope = format!("{} repository:{from}:pull", push_scope(repo));
        let resp = self
            .send_request(&ep, registry, &scope, creds, post(url))
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Upload(session_of(&resp, registry)?)),
            _ => Err(push_error(registry, &Method::POST, resp).await),
        }
    }

    /// Opens an upload session (`POST /v2/NAME/blobs/uploads/`).
    pub async fn start_upload(
        &self,
        repo: &Reference,
        creds: Option<&Credentials>,
    ) -> Result<UploadSession, DistributionError> {
        let registry = repo.registry();
        let ep = self.endpoint(registry).await?;
        let url = v2_url(&ep, &format!("{}/blobs/uploads/", repo.repository()))?;
        let resp = self
            .send_request(&ep, registry, &push_scope(repo), creds, post(url))
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(push_error(registry, &Method::POST, resp).await);
        }
        session_of(&resp, registry)
    }

    /// Abandons an upload session (`DELETE` its location). Failures are only logged: the
    /// registry purges stale sessions by itself.
    pub async fn cancel_upload(
        &self,
        repo: &Reference,
        session: UploadSession,
        creds: Option<&Credentials>,
    ) {
        let registry = repo.registry();
        let Ok(ep) = self.endpoint(registry).await else {
            return;
        };
        let req = Req {
            method: Method::DELETE,
            url: session.location,
            headers: HeaderMap::new(),
            body: None,
        };
        match self
            .send_request(&ep, registry, &push_scope(repo), creds, req)
            .await
        {
            Ok(r) if r.status().is_success() || r.status() == StatusCode::NOT_FOUND => {}
            Ok(r) => tracing::debug!(status = r.status().as_u16(), "cancelling an upload"),
            Err(e) => tracing::debug!(error = %e, "cancelling an upload"),
        }
    }

    /// Uploads a blob from a file: one `PUT ?digest=` with the body up to
    /// [`CHUNKED_UPLOAD_THRESHOLD`], else `PATCH` chunks of [`UPLOAD_CHUNK_SIZE`] with
    /// `Content-Range` (following the `Location` of every answer) and an empty `PUT ?digest=`.
    /// At most one chunk is in memory. `progress` is told how many bytes went out.
    pub async fn upload_blob(
        &self,
        repo: &Reference,
        upload: BlobUpload<'_>,
        creds: Option<&Credentials>,
        progress: Option<UploadProgress>,
    ) -> Result<(), DistributionError> {
        let registry = repo.registry();
        let ep = self.endpoint(registry).await?;
        let BlobUpload {
            digest,
            size,
            path,
            session,
        } = upload;
        let session = match session {
            Some(s) => s,
            None => self.start_upload(repo, creds).await?,
        };
        let local = |e: std::io::Error| DistributionError::Local {
            what: format!("blob {digest} from {}", path.display()),
            cause: e.to_string(),
        };
        let mut file = tokio::fs::File::open(path).await.map_err(local)?;
        let actual = file.metadata().await.map_err(local)?.len();
        if actual != size {
            return Err(DistributionError::Local {
                what: format!("blob {digest} from {}", path.display()),
                cause: format!("the file holds {actual} bytes, not {size}"),
            });
        }
        let scope = push_scope(repo);
        let mut location = session.location;
        let with_offset = |base: u64| -> Option<crate::transport::SentFn> {
            progress
                .clone()
                .map(|p| -> crate::transport::SentFn { Arc::new(move |n: u64| p(base + n)) })
        };

        let final_body = if size <= CHUNKED_UPLOAD_THRESHOLD {
            let bytes = read_chunk(&mut file, size).await.map_err(local)?;
            Some(Payload {
                bytes,
                sent: with_offset(0),
            })
        } else {
            let mut offset = 0u64;
            while offset < size {
                let n = UPLOAD_CHUNK_SIZE.min(size - offset);
                let bytes = read_chunk(&mut file, n).await.map_err(local)?;
                let mut headers = HeaderMap::new();
                octet_stream(&mut headers, n);
                let range = format!("{offset}-{}", offset + n - 1);
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&range).expect("a range is a valid header"),
                );
                let req = Req {
                    method: Method::PATCH,
                    url: location.clone(),
                    headers,
                    body: Some(Payload {
                        bytes,
                        sent: with_offset(offset),
                    }),
                };
                let resp = self.send_request(&ep, registry, &scope, creds, req).await?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(push_error(registry, &Method::PATCH, resp).await);
                }
                let end = offset + n - 1;
                if let Some(r) = header_str(resp.headers(), "range")
                    && let Some(got) = range_end(r)
                    && got != end
                {
                    return Err(DistributionError::Protocol {
                        what: format!("registry {registry}"),
                        reason: format!(
                            "after sending bytes {range} of blob {digest} the upload holds 0-{got}"
                        ),
                    });
                }
                location = session_of(&resp, registry)?.location;
                offset += n;
            }
            None
        };

        let mut url = location;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut headers = HeaderMap::new();
        let len = final_body.as_ref().map_or(0, |b| b.bytes.len() as u64);
        octet_stream(&mut headers, len);
        let req = Req {
            method: Method::PUT,
            url,
            headers,
            body: final_body,
        };
        let resp = self.send_request(&ep, registry, &scope, creds, req).await?;
        if !resp.status().is_success() {
            return Err(push_error(registry, &Method::PUT, resp).await);
        }
        check_header_digest(registry, &resp, &digest, &format!("blob {digest}"))?;
        if let Some(p) = &progress {
            p(size);
        }
        Ok(())
    }

    /// Puts a manifest under a tag or digest (`PUT /v2/NAME/manifests/REF`) with its media type
    /// as `Content-Type`. Returns its digest, checked against the registry's
    /// `Docker-Content-Digest`.
    pub async fn put_manifest(
        &self,
        repo: &Reference,
        tag_or_digest: &str,
        media_type: &str,
        bytes: Bytes,
        creds: Option<&Credentials>,
    ) -> Result<Digest, DistributionError> {
        if bytes.len() > MAX_PUSH_MANIFEST_SIZE {
            return Err(DistributionError::TooLarge {
                what: format!("manifest for {}", repo.familiar()),
                limit: MAX_PUSH_MANIFEST_SIZE as u64,
            });
        }
        let registry = repo.registry();
        let ep = self.endpoint(registry).await?;
        let url = v2_url(
            &ep,
            &format!("{}/manifests/{tag_or_digest}", repo.repository()),
        )?;
        let mut headers = HeaderMap::new();
        let content_type = HeaderValue::from_str(media_type).map_err(|_| {
            DistributionError::InvalidConfig(format!("invalid media type {media_type:?}"))
        })?;
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        let digest = Digest::of(&bytes);
        let req = Req {
            method: Method::PUT,
            url,
            headers,
            body: Some(Payload { bytes, sent: None }),
        };
        let resp = self
            .send_request(&ep, registry, &push_scope(repo), creds, req)
            .await?;
        if !resp.status().is_success() {
            return Err(push_error(registry, &Method::PUT, resp).await);
        }
        check_header_digest(
            registry,
            &resp,
            &digest,
            &format!("manifest {}:{tag_or_digest}", repo.familiar_name()),
        )?;
        Ok(digest)
    }
}

fn post(url: Url) -> Req {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
    Req {
        method: Method::POST,
        url,
        headers,
        body: None,
    }
}

/// The session an answer points at: its `Location`, resolved against the request's URL.
fn session_of(
    resp: &reqwest::Response,
    registry: &str,
) -> Result<UploadSession, DistributionError> {
    let protocol = |reason: String| DistributionError::Protocol {
        what: format!("registry {registry}"),
        reason,
    };
    let location = header_str(resp.headers(), "location")
        .ok_or_else(|| protocol("upload answer without Location".into()))?;
    let location = resp
        .url()
        .join(location)
        .map_err(|e| protocol(format!("invalid upload location {location:?}: {e}")))?;
    Ok(UploadSession { location })
}

/// The last byte of a `Range: 0-END` header (`bytes=0-END` is accepted too).
fn range_end(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix("bytes=").unwrap_or(s);
    s.split_once('-')?.1.trim().parse().ok()
}

/// A `Docker-Content-Digest` that names another digest than what was sent is an error; one
/// that is absent or not sha256 is not checked.
fn check_header_digest(
    registry: &str,
    resp: &reqwest::Response,
    expected: &Digest,
    what: &str,
) -> Result<(), DistributionError> {
    let Some(header) = header_str(resp.headers(), "docker-content-digest") else {
        return Ok(());
    };
    match header.parse::<Digest>() {
        Ok(d) if d == *expected => Ok(()),
        Ok(d) => Err(DistributionError::DigestMismatch {
            what: format!("{what} as stored by {registry}"),
            expected: *expected,
            actual: d,
        }),
        Err(_) => {
            tracing::debug!(header, "Docker-Content-Digest is not sha256, not checked");
            Ok(())
        }
    }
}

/// Reads exactly `n` bytes.
async fn read_chunk(file: &mut tokio::fs::File, n: u64) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(n as usize);
    file.read_exact(&mut buf).await?;
    Ok(buf.freeze())
}

/// The error for a refused push request, in docker's words: 401 → `unauthorized: …`, a
/// denial (403, `DENIED`, a bearer `insufficient_scope`) → `denied: …`, else the status.
pub(crate) async fn push_error(
    registry: &str,
    method: &Method,
    resp: reqwest::Response,
) -> DistributionError {
    let status = resp.status();
    let url = resp.url().to_string();
    let bearer_error = auth::challenges(resp.headers())
        .into_iter()
        .find(|c| c.scheme == "bearer")
        .and_then(|c| {
            let error = c.params.get("error")?.clone();
            Some((error, c.params.get("error_description").cloned()))
        });
    let body = error_body(resp, registry).await;
    let m = RegistryMessage::parse(status, &body);
    let denied = |message: String| DistributionError::Denied {
        registry: registry.to_string(),
        message,
    };
    match (status.as_u16(), bearer_error) {
        (401 | 403, Some((e, description))) if e == "insufficient_scope" => {
            if m.is("DENIED") {
                denied(m.text)
            } else {
                denied(description.map_or_else(|| DENIED.to_string(), |d| format!("denied: {d}")))
            }
        }
        (401 | 403, _) if m.is("DENIED") => denied(m.text),
        (401, _) => auth::unauthorized(registry, status, &body, false),
        (403, _) if m.code.is_empty() && m.text == status_text(status) => denied(DENIED.into()),
        (403, _) => denied(m.text),
        _ => DistributionError::Status {
            registry: registry.to_string(),
            method: method.to_string(),
            url,
            status: status.as_u16(),
            cause: m.text,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range_end("0-1023"), Some(1023));
        assert_eq!(range_end("bytes=0-9"), Some(9));
        assert_eq!(range_end("nonsense"), None);
    }

    #[test]
    fn scopes() {
        let r = Reference::parse_normalized("127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(push_scope(&r), "repository:team/app:pull,push");
    }
}
