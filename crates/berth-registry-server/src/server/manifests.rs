//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>` for Docker schema 2
//! manifests and manifest lists, OCI manifests and indexes. A manifest is accepted only if
//! every blob it references is linked in the same repository and every child manifest is
//! one of the repository's manifests.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::response::Response;
use berth_image::Digest;
use berth_image::config::{
    Descriptor, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_MANIFEST_LIST, MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use http::{StatusCode, header};
use serde::Deserialize;

use super::error::{ApiError, Code};
use super::route::{self, Reference};
use super::{Ctx, empty, json_response, set};
use crate::auth::{Action, AuditEvent};
use crate::storage::{Manifest, Referrer};

const DIGEST_HEADER: &str = "docker-content-digest";

pub(super) async fn get(
    ctx: &Ctx<'_>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response, ApiError> {
    ctx.authorize(name, &[Action::Pull])?;
    let reference = route::parse_reference(reference)?;
    let unknown = || ApiError::new(Code::ManifestUnknown);
    let digest = match &reference {
        Reference::Digest(d) => *d,
        Reference::Tag(tag) => ctx
            .store
            .resolve_tag(name, tag)
            .await?
            .ok_or_else(|| unknown().detail(tag.clone()))?,
    };
    let manifest = ctx
        .store
        .manifest(name, &digest)
        .await?
        .ok_or_else(|| unknown().detail(digest.to_string()))?;
    let len = manifest.bytes.len();
    let mut resp = if head {
        let mut r = empty(StatusCode::OK);
        set(&mut r, header::CONTENT_LENGTH, &len.to_string());
        r
    } else {
        json_response(
            StatusCode::OK,
            manifest.bytes.to_vec(),
            &manifest.media_type,
        )
    };
    set(&mut resp, header::CONTENT_TYPE, &manifest.media_type);
    set(&mut resp, DIGEST_HEADER, &digest.to_string());
    set(&mut resp, header::ETAG, &format!("\"{digest}\""));
    Ok(resp)
}

pub(super) async fn put(
    ctx: &Ctx<'_>,
    name: &str,
    reference: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = ctx.authorize(name, &[Action::Push])?;
    let reference = route::parse_reference(reference)?;
    let limit = ctx.state.config.max_manifest_size;
    let bytes = read_limited(ctx, body, limit).await?;
    let digest = Digest::of(&bytes);
    if let Reference::Digest(d) = &reference
        && *d != digest
    {
        return Err(ApiError::new(Code::DigestInvalid).detail(d.to_string()));
    }
    let content_type = ctx.header(header::CONTENT_TYPE).unwrap_or("");
    let parsed = parse(content_type, &bytes)?;
    for blob in &parsed.blobs {
        if blob.urls.as_ref().is_some_and(|u| !u.is_empty()) {
            // A foreign layer: its bytes live elsewhere, by design.
            continue;
        }
        match ctx.store.layer(name, &blob.digest).await? {
            None => {
                return Err(
                    ApiError::new(Code::ManifestBlobUnknown).detail(blob.digest.to_string())
                );
            }
            Some(meta) if meta.size != blob.size => {
                return Err(ApiError::new(Code::ManifestInvalid)
                    .detail(format!("size of {} does not match the blob", blob.digest)));
            }
            Some(_) => {}
        }
    }
    for child in &parsed.children {
        if ctx
            .store
            .manifest_record(name, &child.digest)
            .await?
            .is_none()
        {
            return Err(ApiError::new(Code::ManifestBlobUnknown).detail(child.digest.to_string()));
        }
    }
    let manifest = Manifest {
        digest,
        media_type: parsed.media_type.clone(),
        bytes,
    };
    let referrer = Referrer {
        media_type: parsed.media_type.clone(),
        digest,
        size: manifest.bytes.len() as u64,
        artifact_type: parsed.artifact_type.clone(),
        annotations: parsed.annotations.clone(),
    };
    let subject = parsed.subject.as_ref().map(|s| (&s.digest, &referrer));
    let tag = match &reference {
        Reference::Tag(t) => Some(t.as_str()),
        Reference::Digest(_) => None,
    };
    ctx.store
        .put_manifest(name, &manifest, subject, tag)
        .await?;
    ctx.state.auth.record(AuditEvent::Push {
        subject: principal.subject,
        repository: name.to_string(),
        reference: tag.map_or_else(|| digest.to_string(), str::to_string),
        digest: digest.to_string(),
    });
    let mut resp = empty(StatusCode::CREATED);
    set(
        &mut resp,
        header::LOCATION,
        &format!("/v2/{name}/manifests/{digest}"),
    );
    set(&mut resp, DIGEST_HEADER, &digest.to_string());
    if let Some(subject) = &parsed.subject {
        set(&mut resp, "oci-subject", &subject.digest.to_string());
    }
    Ok(resp)
}

pub(super) async fn delete(
    ctx: &Ctx<'_>,
    name: &str,
    reference: &str,
) -> Result<Response, ApiError> {
    let principal = ctx.authorize(name, &[Action::Delete])?;
    let reference = route::parse_reference(reference)?;
    let deleted = match &reference {
        Reference::Tag(tag) => ctx.store.delete_tag(name, tag).await?,
        Reference::Digest(d) => ctx.store.delete_manifest(name, d).await?,
    };
    let reference = match reference {
        Reference::Tag(t) => t,
        Reference::Digest(d) => d.to_string(),
    };
    if !deleted {
        return Err(ApiError::new(Code::ManifestUnknown).detail(reference));
    }
    ctx.state.auth.record(AuditEvent::Delete {
        subject: principal.subject,
        repository: name.to_string(),
        reference,
    });
    Ok(empty(StatusCode::ACCEPTED))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(Code::SizeInvalid)
        .status(StatusCode::PAYLOAD_TOO_LARGE)
        .detail(format!("manifests are limited to {limit} bytes"))
}

/// Reads the whole body, refusing more than `limit` bytes (by `Content-Length` before
/// reading, or while reading).
async fn read_limited(ctx: &Ctx<'_>, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    if let Some(len) = ctx.header(header::CONTENT_LENGTH)
        && len.trim().parse::<u64>().is_ok_and(|l| l > limit as u64)
    {
        drain(&mut stream, limit).await;
        return Err(too_large(limit));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(Code::ManifestInvalid).detail("the request body ended early")
        })?;
        if buf.len() + chunk.len() > limit {
            drain(&mut stream, limit).await;
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads and drops up to another `limit` bytes of a refused body, so a client that is
/// still sending a somewhat oversized manifest gets to read the answer (hyper closes the
/// connection on an unread body, and the client would see a broken pipe instead).
async fn drain(stream: &mut axum::body::BodyDataStream, limit: usize) {
    let mut left = limit;
    while let Some(Ok(chunk)) = stream.next().await {
        left = left.saturating_sub(chunk.len());
        if left == 0 {
            break;
        }
    }
}

/// What the server needs from a manifest.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub media_type: String,
    /// Config and layers (image manifests).
    pub blobs: Vec<Descriptor>,
    /// Child manifests (indexes).
    pub children: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// The `artifactType`, or for an image manifest without one its config's media type.
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<u32>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(Code::ManifestInvalid).detail(detail.into())
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_MANIFEST_LIST
}

/// Validates a manifest's JSON and media type (from `Content-Type`, else from the body).
pub(crate) fn parse(content_type: &str, bytes: &[u8]) -> Result<Parsed, ApiError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if raw.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let known = [
        MEDIA_DOCKER_MANIFEST,
        MEDIA_DOCKER_MANIFEST_LIST,
        MEDIA_OCI_MANIFEST,
        MEDIA_OCI_INDEX,
    ];
    let content_type = content_type.split(';').next().unwrap_or("").trim();
    let media_type = if known.contains(&content_type) {
        if raw.media_type.as_deref().is_some_and(|m| m != content_type) {
            return Err(invalid("mediaType does not match Content-Type"));
        }
        content_type.to_string()
    } else if matches!(
        content_type,
        "" | "application/json" | "application/octet-stream"
    ) {
        match (&raw.media_type, &raw.manifests, &raw.config) {
            (Some(m), _, _) => m.clone(),
            (None, Some(_), _) => MEDIA_OCI_INDEX.to_string(),
            (None, None, Some(_)) => MEDIA_OCI_MANIFEST.to_string(),
            (None, None, None) => return Err(invalid("cannot tell the manifest's media type")),
        }
    } else {
        return Err(invalid(format!(
            "unsupported manifest media type {content_type:?}"
        )));
    };
    if !known.contains(&media_type.as_str()) {
        return Err(invalid(format!(
            "unsupported manifest media type {media_type:?}"
        )));
    }
    let docker = media_type == MEDIA_DOCKER_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST_LIST;
    if docker && (raw.subject.is_some() || raw.artifact_type.is_some()) {
        return Err(invalid(
            "subject and artifactType are only allowed in OCI manifests",
        ));
    }
    if is_index(&media_type) {
        if raw.config.is_some() || raw.layers.is_some() {
            return Err(invalid("an index has no config or layers"));
        }
        let children = raw
            .manifests
            .ok_or_else(|| invalid("an index needs manifests"))?;
        Ok(Parsed {
            media_type,
            blobs: Vec::new(),
            children,
            subject: raw.subject,
            artifact_type: raw.artifact_type,
            annotations: raw.annotations,
        })
    } else {
        if raw.manifests.is_some() {
            return Err(invalid("an image manifest has no manifests list"));
        }
        let config = raw
            .config
            .ok_or_else(|| invalid("an image manifest needs a config"))?;
        let layers = raw
            .layers
            .ok_or_else(|| invalid("an image manifest needs layers"))?;
        let artifact_type = raw
            .artifact_type
            .or_else(|| Some(config.media_type.clone()));
        let mut blobs = vec![config];
        blobs.extend(layers);
        Ok(Parsed {
            media_type,
            blobs,
            children: Vec::new(),
            subject: raw.subject,
            artifact_type,
            annotations: raw.annotations,
        })
    }
}

/// Answers the referrers index (used by `lists`).
pub(crate) fn referrers_index(manifests: &[Referrer]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": manifests,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(mt: &str, data: &[u8]) -> serde_json::Value {
        serde_json::json!({"mediaType": mt, "digest": Digest::of(data).to_string(), "size": data.len()})
    }

    #[test]
    fn media_types_are_checked() {
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
            "config": desc("application/vnd.oci.image.config.v1+json", b"{}"),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar", b"l")],
        });
        let bytes = serde_json::to_vec(&m).unwrap();
        let p = parse(MEDIA_OCI_MANIFEST, &bytes).unwrap();
        assert_eq!(p.blobs.len(), 2);
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert_eq!(parse("", &bytes).unwrap().media_type, MEDIA_OCI_MANIFEST);
        assert_eq!(
            parse(MEDIA_DOCKER_MANIFEST, &bytes).unwrap_err().code,
            Code::ManifestInvalid
        );
        assert_eq!(
            parse("text/plain", &bytes).unwrap_err().code,
            Code::ManifestInvalid
        );
        assert_eq!(
            parse(MEDIA_OCI_INDEX, &bytes).unwrap_err().code,
            Code::ManifestInvalid
        );
        assert!(parse(MEDIA_OCI_MANIFEST, b"{not json").is_err());
        let v1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(parse("application/vnd.docker.distribution.manifest.v1+json", v1).is_err());
    }

    #[test]
    fn indexes_list_children() {
        let i = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [desc(MEDIA_OCI_MANIFEST, b"m")],
            "subject": desc(MEDIA_OCI_MANIFEST, b"s"),
            "artifactType": "application/x.sbom",
        });
        let p = parse(MEDIA_OCI_INDEX, &serde_json::to_vec(&i).unwrap()).unwrap();
        assert_eq!(p.children.len(), 1);
        assert_eq!(p.subject.unwrap().digest, Digest::of(b"s"));
        assert_eq!(p.artifact_type.as_deref(), Some("application/x.sbom"));
    }
}
