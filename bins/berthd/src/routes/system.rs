//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`, `/auth`.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use axum::response::{IntoResponse, Response};
use berth_api::types::{AuthConfig, EventMessage};
use berth_engine::filters::Filters;

use super::State;
use crate::api_error::{ApiError, ApiResult};
use crate::query::Query;

pub async fn ping() -> Response {
    (
        [
            (CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (PRAGMA, "no-cache"),
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            // As dockerd 23+: clients hide swarm-only commands and flags (cluster volumes…).
            (axum::http::HeaderName::from_static("swarm"), "inactive"),
        ],
        "OK",
    )
        .into_response()
}

pub async fn version(state: State) -> Response {
    Json(state.0.version()).into_response()
}

pub async fn info(state: State) -> ApiResult<Response> {
    Ok(Json(state.0.info()?).into_response())
}

pub async fn disk_usage(state: State) -> ApiResult<Response> {
    let engine = state.0.clone();
    Ok(Json(tokio::task::spawn_blocking(move || engine.disk_usage()).await??).into_response())
}

pub async fn auth(state: State, Json(body): Json<AuthConfig>) -> ApiResult<Response> {
    Ok(Json(state.0.images().login(body).await?).into_response())
}

/// Docker's event time arguments: unix seconds with optional fraction (`1700000000.5`),
/// which is what the CLI sends after turning durations and dates into timestamps.
fn parse_event_time(s: &str) -> ApiResult<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid time value {s:?}")))?;
    let mut nanos = format!("{frac:0<9}");
    nanos.truncate(9);
    let nanos: i64 = nanos
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid time value {s:?}")))?;
    Ok(secs * 1_000_000_000 + nanos)
}

fn event_matches(f: &Filters, e: &EventMessage) -> bool {
    let any =
        |key: &str, value: &str| f.get(key).is_empty() || f.get(key).iter().any(|v| v == value);
    let name = e
        .actor
        .attributes
        .get("name")
        .map(String::as_str)
        .unwrap_or("");
    any("type", &e.kind)
        && any("event", &e.action)
        && (f.get("image").is_empty()
            || (e.kind == "image" && (any("image", &e.actor.id) || any("image", name))))
        && (f.get("volume").is_empty() || (e.kind == "volume" && any("volume", &e.actor.id)))
        && (f.get("container").is_empty()
            || (e.kind == "container"
                && (f
                    .get("container")
                    .iter()
                    .any(|c| e.actor.id.starts_with(c.as_str()))
                    || any("container", name))))
        && f.match_labels("label", &e.actor.attributes)
}

pub async fn events(state: State, q: Query) -> ApiResult<Response> {
    let filters = Filters::parse(q.get("filters"))?;
    filters.validate(&[
        "type",
        "event",
        "image",
        "label",
        "container",
        "scope",
        "daemon",
        "network",
        "volume",
    ])?;
    let since = q.value("since").map(parse_event_time).transpose()?;
    let until = q.value("until").map(parse_event_time).transpose()?;
    let (history, mut live) = state.0.events().subscribe();
    let in_window = move |e: &EventMessage| {
        since.is_none_or(|s| e.time_nano >= s) && until.is_none_or(|u| e.time_nano <= u)
    };
    let line = |e: &EventMessage| {
        let mut v = serde_json::to_vec(e).expect("events serialise");
        v.push(b'\n');
        Ok::<_, std::io::Error>(v)
    };
    let replay: Vec<_> = if since.is_some() {
        history
            .iter()
            .filter(|e| in_window(e) && event_matches(&filters, e))
            .map(line)
            .collect()
    } else {
        Vec::new()
    };
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    if until.is_none_or(|u| u > now) {
        tokio::spawn(async move {
            let deadline = until.map(|u| {
                tokio::time::Instant::now() + Duration::from_nanos((u - now).max(0) as u64)
            });
            loop {
                let next = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, live.recv()).await {
                        Ok(r) => r,
                        Err(_) => break,
                    },
                    None => live.recv().await,
                };
                match next {
                    Ok(e) if in_window(&e) && event_matches(&filters, &e) => {
                        if tx.send(line(&e)).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        });
    } else {
        drop(tx);
    }
    let body = futures::StreamExt::chain(
        futures::stream::iter(replay),
        tokio_stream::wrappers::ReceiverStream::new(rx),
    );
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}
