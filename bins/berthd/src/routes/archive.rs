//! A container's filesystem as data: `/containers/{id}/archive` (`docker cp`),
//! `/containers/{id}/changes` (`diff`), `/containers/{id}/export` and `/commit`.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use berth_engine::containers::{CommitOptions, ExtractOptions, PathStat, TarStream};
use futures::TryStreamExt;

use super::State;
use crate::api_error::{ApiError, ApiResult};
use crate::query::Query;

const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";
const TAR: &str = "application/x-tar";

fn path_of(q: &Query) -> ApiResult<String> {
    q.value("path")
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("path parameter is required"))
}

fn tar_body(rx: TarStream) -> Body {
    Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn with_stat(stat: &PathStat, content_type: Option<&str>, body: Body) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(PATH_STAT_HEADER, stat.header_value());
    if let Some(ct) = content_type {
        resp = resp.header(CONTENT_TYPE, ct);
    }
    resp.body(body).expect("static response parts")
}

/// `HEAD /containers/{id}/archive?path=`.
pub async fn head(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let path = path_of(&q)?;
    let stat = state.containers().stat_path(&id, &path).await?;
    Ok(with_stat(&stat, None, Body::empty()))
}

/// `GET /containers/{id}/archive?path=`.
pub async fn get(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let path = path_of(&q)?;
    let (stat, rx) = state.containers().archive_path(&id, &path).await?;
    Ok(with_stat(&stat, Some(TAR), tar_body(rx)))
}

/// `PUT /containers/{id}/archive?path=DIR&noOverwriteDirNonDir=&copyUIDGID=`.
pub async fn put(
    state: State,
    Path(id): Path<String>,
    q: Query,
    body: Body,
) -> ApiResult<Response> {
    let path = path_of(&q)?;
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: q.bool("noOverwriteDirNonDir"),
        copy_uid_gid: q.bool("copyUIDGID"),
    };
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    state
        .containers()
        .extract_to_dir(&id, &path, opts, Box::pin(stream))
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/changes`.
pub async fn changes(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    let changes = state.containers().changes(&id).await?;
    Ok(Json(changes).into_response())
}

/// `GET /containers/{id}/export`.
pub async fn export(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    let rx = state.containers().export(&id).await?;
    Ok(([(CONTENT_TYPE, TAR)], tar_body(rx)).into_response())
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`, the body a
/// container config or `null`.
pub async fn commit(state: State, q: Query, body: Bytes) -> ApiResult<Response> {
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice::<serde_json::Value>(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?,
        )
    };
    let opts = CommitOptions {
        container: q.get("container").unwrap_or_default().to_string(),
        repo: q.value("repo").map(str::to_string),
        tag: q.value("tag").map(str::to_string),
        comment: q.get("comment").unwrap_or_default().to_string(),
        author: q.get("author").unwrap_or_default().to_string(),
        // dockerd pauses unless told not to.
        pause: q.get("pause").is_none_or(|_| q.bool("pause")),
        changes: q.all("changes"),
        config,
    };
    let id = state.containers().commit(opts).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}
