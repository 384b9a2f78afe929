//! `/containers/{id}/stats`, `/top` and `/update`: a container's resource use and limits.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::ContainerUpdateBody;

use super::State;
use crate::api_error::{ApiError, ApiResult};
use crate::query::Query;

/// `GET /containers/{id}/stats?stream=&one-shot=`: JSON objects, one a line. `stream`
/// defaults to true, as in dockerd.
pub async fn stats(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let stream = q.get("stream").is_none() || q.bool("stream");
    let one_shot = q.bool("one-shot");
    let mut rx = state.containers().stats(&id, stream, one_shot)?;
    let body = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|b| b.map(Ok::<_, std::io::Error>))
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// `GET /containers/{id}/top?ps_args=`.
pub async fn top(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let list = state.containers().top(&id, q.get("ps_args")).await?;
    Ok(Json(list).into_response())
}

/// `POST /containers/{id}/update`.
pub async fn update(state: State, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let mut body: ContainerUpdateBody = if body.iter().all(u8::is_ascii_whitespace) {
        ContainerUpdateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    // Both 0 and -1 (any negative, historically) mean "unlimited" on update.
    if let Some(limit) = body.pids_limit.as_mut()
        && *limit <= 0
    {
        *limit = 0;
    }
    let warnings = state.containers().update(&id, body).await?;
    Ok(Json(serde_json::json!({
        "Warnings": (!warnings.is_empty()).then_some(warnings)
    }))
    .into_response())
}
