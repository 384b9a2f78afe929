//! Streaming answers: JSON-lines progress whose first message decides the status code.

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use berth_api::progress::JsonMessage;
use berth_engine::Result;
use tokio::sync::mpsc;

use crate::api_error::ApiError;

/// Waits for the first message: an error there becomes an HTTP error (as dockerd answers a
/// pull of an unknown image with 404); after that, errors travel inside the stream.
pub async fn progress_response(mut rx: mpsc::Receiver<Result<JsonMessage>>) -> Response {
    let first = match rx.recv().await {
        None => {
            return (
                axum::http::StatusCode::OK,
                [(CONTENT_TYPE, "application/json")],
            )
                .into_response();
        }
        Some(Err(e)) => return ApiError(e).into_response(),
        Some(Ok(m)) => m,
    };
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        let msg = item.unwrap_or_else(|e| JsonMessage::error(e.message));
        Some((Ok::<_, std::io::Error>(msg.to_line()), rx))
    });
    let body = futures::StreamExt::chain(
        futures::stream::once(async move { Ok(first.to_line()) }),
        rest,
    );
    (
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}
