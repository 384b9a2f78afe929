//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`. A blob is found only through the
//! repository's own link: bytes held for another repository answer exactly like absent ones.

use std::ops::Range;

use axum::body::Body;
use axum::response::Response;
use http::{StatusCode, header};

use super::error::{ApiError, Code};
use super::{Ctx, empty, route, set};
use crate::auth::{Action, AuditEvent};

const DIGEST_HEADER: &str = "docker-content-digest";

pub(super) async fn get(
    ctx: &Ctx<'_>,
    name: &str,
    digest: &str,
    head: bool,
) -> Result<Response, ApiError> {
    ctx.authorize(name, &[Action::Pull])?;
    let digest = route::parse_digest(digest)?;
    let Some(meta) = ctx.store.blob(name, &digest).await? else {
        return Err(ApiError::new(Code::BlobUnknown).detail(digest.to_string()));
    };
    let size = meta.size;
    let range = match ctx.header(header::RANGE) {
        None => None,
        Some(spec) => match parse_range(spec, size) {
            Ok(r) => r,
            Err(()) => {
                return Err(ApiError::new(Code::BlobUnknown)
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .detail("requested range not satisfiable")
                    .header(header::CONTENT_RANGE, &format!("bytes */{size}")));
            }
        },
    };
    let (status, span) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.clone()),
        None => (StatusCode::OK, 0..size),
    };
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(ctx.store.read_blob(&digest, span.clone()).await?)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    set(
        &mut resp,
        header::CONTENT_LENGTH,
        &(span.end - span.start).to_string(),
    );
    set(&mut resp, header::CONTENT_TYPE, "application/octet-stream");
    set(&mut resp, header::ACCEPT_RANGES, "bytes");
    set(&mut resp, DIGEST_HEADER, &digest.to_string());
    if range.is_some() {
        let range = format!("bytes {}-{}/{size}", span.start, span.end.saturating_sub(1));
        set(&mut resp, header::CONTENT_RANGE, &range);
    }
    Ok(resp)
}

pub(super) async fn delete(ctx: &Ctx<'_>, name: &str, digest: &str) -> Result<Response, ApiError> {
    let principal = ctx.authorize(name, &[Action::Delete])?;
    let digest = route::parse_digest(digest)?;
    if !ctx.store.unlink_layer(name, &digest).await? {
        return Err(ApiError::new(Code::BlobUnknown).detail(digest.to_string()));
    }
    ctx.state.auth.record(AuditEvent::Delete {
        subject: principal.subject,
        repository: name.to_string(),
        reference: digest.to_string(),
    });
    let mut resp = empty(StatusCode::ACCEPTED);
    set(&mut resp, DIGEST_HEADER, &digest.to_string());
    Ok(resp)
}

/// Parses a single `bytes=` range against an object of `size` bytes. `Ok(None)`: serve the
/// whole object (several ranges, or a unit we do not know); `Err`: not satisfiable.
pub(crate) fn parse_range(spec: &str, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.trim().split_once('-').ok_or(())?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| ());
    let range = match (start.trim().is_empty(), end.trim().is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => {
            let n = num(end)?;
            if n == 0 {
                return Err(());
            }
            size.saturating_sub(n)..size
        }
        (false, true) => num(start)?..size,
        (false, false) => {
            let (s, e) = (num(start)?, num(end)?);
            if e < s {
                return Err(());
            }
            s..e.saturating_add(1).min(size)
        }
        (true, true) => return Err(()),
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(parse_range("bytes=90-200", 100), Ok(Some(90..100)));
        assert_eq!(parse_range("bytes=10-", 100), Ok(Some(10..100)));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(parse_range("bytes=-500", 100), Ok(Some(0..100)));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-2", 100), Err(()));
        assert_eq!(parse_range("bytes=x-2", 100), Err(()));
        assert_eq!(parse_range("bytes=0-0", 0), Err(()));
    }
}
