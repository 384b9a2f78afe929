//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (a session, a monolithic upload with
//! `?digest=`, or a cross-repository mount with `?mount=&from=`), then `PATCH` chunks,
//! `PUT ?digest=` to finish, `GET` for the status and `DELETE` to cancel. Sessions live in
//! storage, so any replica can continue one, and only in the repository that started it.

use std::io;

use axum::body::Body;
use axum::response::Response;
use berth_image::Digest;
use futures::{StreamExt as _, TryStreamExt as _};
use http::{StatusCode, header};

use super::error::{ApiError, Code};
use super::{Ctx, empty, route, set};
use crate::auth::Action;
use crate::storage::{Append, ByteStream, Commit};

const UUID_HEADER: &str = "docker-upload-uuid";
const DIGEST_HEADER: &str = "docker-content-digest";

fn body_stream(body: Body) -> ByteStream {
    body.into_data_stream().map_err(io::Error::other).boxed()
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// The `Range` header of an upload holding `size` bytes (`0-0` when empty, as the Docker
/// registry answers).
fn range_of(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn session_response(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    let mut resp = empty(status);
    set(&mut resp, header::LOCATION, &upload_location(name, id));
    set(&mut resp, header::RANGE, &range_of(size));
    set(&mut resp, UUID_HEADER, id);
    resp
}

fn blob_created(name: &str, digest: &Digest) -> Response {
    let mut resp = empty(StatusCode::CREATED);
    set(
        &mut resp,
        header::LOCATION,
        &format!("/v2/{name}/blobs/{digest}"),
    );
    set(&mut resp, DIGEST_HEADER, &digest.to_string());
    resp
}

fn out_of_order(name: &str, id: &str, size: u64) -> ApiError {
    ApiError::new(Code::BlobUploadInvalid)
        .status(StatusCode::RANGE_NOT_SATISFIABLE)
        .detail("chunk does not start where the upload ends")
        .header(header::LOCATION, &upload_location(name, id))
        .header(header::RANGE, &range_of(size))
        .header(UUID_HEADER.parse().expect("static header name"), id)
}

fn upload_unknown(id: &str) -> ApiError {
    ApiError::new(Code::BlobUploadUnknown).detail(id.chars().take(64).collect::<String>())
}

pub(super) async fn start(ctx: &Ctx<'_>, name: &str, body: Body) -> Result<Response, ApiError> {
    let principal = ctx.authorize(name, &[Action::Push])?;
    if let Some(mount) = ctx.query("mount") {
        let digest = route::parse_digest(mount)?;
        if let Some(from) = ctx.query("from")
            && route::validate_name(from).is_ok()
            && ctx.may_pull(&principal, from)
            && ctx.store.layer(from, &digest).await?.is_some()
        {
            ctx.store.link_layer(name, &digest).await?;
            return Ok(blob_created(name, &digest));
        }
        // Not mountable (unknown, or not readable by the caller: the same answer): a plain
        // upload session, as the spec asks.
        let id = ctx.store.start_upload(name).await?;
        return Ok(session_response(StatusCode::ACCEPTED, name, &id, 0));
    }
    let id = ctx.store.start_upload(name).await?;
    let Some(digest) = ctx.query("digest") else {
        return Ok(session_response(StatusCode::ACCEPTED, name, &id, 0));
    };
    // Monolithic upload: the whole blob in this request.
    let result = monolithic(ctx, name, &id, digest, body).await;
    if result.is_err() {
        let _ = ctx.store.cancel(&id).await;
    }
    result
}

async fn monolithic(
    ctx: &Ctx<'_>,
    name: &str,
    id: &str,
    digest: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let digest = route::parse_digest(digest)?;
    check_length(ctx)?;
    match ctx.store.append(id, 0, body_stream(body)).await? {
        Append::Written { .. } => {}
        Append::OffsetMismatch { size } => return Err(out_of_order(name, id, size)),
    }
    commit(ctx, name, id, &digest).await
}

/// A `Content-Length` that is not a number is refused before anything is stored.
fn check_length(ctx: &Ctx<'_>) -> Result<Option<u64>, ApiError> {
    match ctx.header(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::new(Code::SizeInvalid).detail("invalid Content-Length")),
    }
}

async fn commit(
    ctx: &Ctx<'_>,
    name: &str,
    id: &str,
    digest: &Digest,
) -> Result<Response, ApiError> {
    match ctx.store.finish(name, id, digest).await? {
        Commit::Stored { .. } => Ok(blob_created(name, digest)),
        Commit::DigestMismatch { .. } => {
            Err(ApiError::new(Code::DigestInvalid).detail(digest.to_string()))
        }
    }
}

pub(super) async fn status(ctx: &Ctx<'_>, name: &str, id: &str) -> Result<Response, ApiError> {
    ctx.authorize(name, &[Action::Push])?;
    if ctx.store.upload(name, id).await?.is_none() {
        return Err(upload_unknown(id));
    }
    let size = ctx.store.upload_size(id).await?;
    Ok(session_response(StatusCode::NO_CONTENT, name, id, size))
}

/// Parses a chunk's `Content-Range` (`<start>-<end>`, also with a `bytes ` prefix).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v
        .strip_prefix("bytes")
        .map(|r| r.trim_start_matches([' ', '=']))
        .unwrap_or(v);
    let v = v.split('/').next()?;
    let (start, end) = v.split_once('-')?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (end >= start).then_some((start, end))
}

/// The offset a chunk claims to start at: its `Content-Range`, else the end of the upload.
/// A range that is malformed or disagrees with `Content-Length` is refused (416).
fn chunk_offset(ctx: &Ctx<'_>, name: &str, id: &str, size: u64) -> Result<u64, ApiError> {
    let length = check_length(ctx)?;
    let Some(range) = ctx.header(header::CONTENT_RANGE) else {
        return Ok(size);
    };
    match parse_content_range(range) {
        Some((start, end)) if length.is_none_or(|l| l == end - start + 1) => Ok(start),
        _ => Err(out_of_order(name, id, size)),
    }
}

pub(super) async fn patch(
    ctx: &Ctx<'_>,
    name: &str,
    id: &str,
    body: Body,
) -> Result<Response, ApiError> {
    ctx.authorize(name, &[Action::Push])?;
    if ctx.store.upload(name, id).await?.is_none() {
        return Err(upload_unknown(id));
    }
    let size = ctx.store.upload_size(id).await?;
    let offset = chunk_offset(ctx, name, id, size)?;
    if offset != size {
        return Err(out_of_order(name, id, size));
    }
    match ctx.store.append(id, offset, body_stream(body)).await? {
        Append::Written { size } => Ok(session_response(StatusCode::ACCEPTED, name, id, size)),
        Append::OffsetMismatch { size } => Err(out_of_order(name, id, size)),
    }
}

pub(super) async fn finish(
    ctx: &Ctx<'_>,
    name: &str,
    id: &str,
    body: Body,
) -> Result<Response, ApiError> {
    ctx.authorize(name, &[Action::Push])?;
    if ctx.store.upload(name, id).await?.is_none() {
        return Err(upload_unknown(id));
    }
    let digest = ctx
        .query("digest")
        .ok_or_else(|| ApiError::new(Code::DigestInvalid).detail("digest parameter missing"))?;
    let digest = route::parse_digest(digest)?;
    let size = ctx.store.upload_size(id).await?;
    let has_body = ctx
        .header(header::CONTENT_LENGTH)
        .is_none_or(|l| l.trim() != "0");
    if has_body {
        let offset = chunk_offset(ctx, name, id, size)?;
        if offset != size {
            return Err(out_of_order(name, id, size));
        }
        if let Append::OffsetMismatch { size } =
            ctx.store.append(id, offset, body_stream(body)).await?
        {
            return Err(out_of_order(name, id, size));
        }
    }
    commit(ctx, name, id, &digest).await
}

pub(super) async fn cancel(ctx: &Ctx<'_>, name: &str, id: &str) -> Result<Response, ApiError> {
    ctx.authorize(name, &[Action::Push])?;
    if ctx.store.upload(name, id).await?.is_none() {
        return Err(upload_unknown(id));
    }
    ctx.store.cancel(id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("bytes=5-5"), Some((5, 5)));
        assert_eq!(parse_content_range("9-3"), None);
        assert_eq!(parse_content_range("abc"), None);
    }
}
