//! `/containers/…` and `/exec/…`: requests parsed into typed calls on the container
//! service. Attach and exec upgrade the connection (Docker's hijack) and hand it to the
//! engine's pump.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::containers::{
    AttachOptions, CreateRequest, ExecStart, ListOptions, LogOptions, WaitCondition,
    parse_timestamp, pump,
};
use berth_engine::filters::Filters;
use bollard_stubs::models::{ContainerCreateBody, ExecConfig};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use super::State;
use crate::api_error::{ApiError, ApiResult};
use crate::query::Query;

const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

fn json_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// JSON whose maps (HashMaps in our types) come out sorted, as Go marshals them.
fn json_with_sorted_maps<T: serde::Serialize>(value: &T, maps: &[&[&str]]) -> ApiResult<Response> {
    let body = crate::ordered_json::sorted_maps(value, maps)
        .map_err(|e| ApiError(berth_engine::EngineError::internal(e.to_string())))?;
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn int(q: &Query, key: &str) -> ApiResult<Option<i64>> {
    q.value(key)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v}")))
        })
        .transpose()
}

pub async fn create(state: State, q: Query, body: Bytes) -> ApiResult<Response> {
    let body: ContainerCreateBody = json_body(&body)?;
    let request = CreateRequest {
        name: q.value("name").map(str::to_string),
        body,
    };
    let engine = state.0.clone();
    let (id, warnings) =
        tokio::task::spawn_blocking(move || engine.containers().create(request)).await??;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"Id": id, "Warnings": warnings})),
    )
        .into_response())
}

pub async fn list(state: State, q: Query) -> ApiResult<Response> {
    let opts = ListOptions {
        all: q.bool("all"),
        limit: int(&q, "limit")?.unwrap_or(0),
        size: q.bool("size"),
        filters: Filters::parse(q.get("filters"))?,
    };
    let engine = state.0.clone();
    let list = tokio::task::spawn_blocking(move || engine.containers().list(&opts)).await??;
    json_with_sorted_maps(&list, &[&["Labels"], &["NetworkSettings", "Networks"]])
}

pub async fn inspect(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let size = q.bool("size");
    let engine = state.0.clone();
    let info =
        tokio::task::spawn_blocking(move || engine.containers().inspect(&id, size)).await??;
    json_with_sorted_maps(
        &info,
        &[
            &["GraphDriver", "Data"],
            &["Config", "Labels"],
            &["HostConfig", "Tmpfs"],
            &["HostConfig", "Sysctls"],
            &["HostConfig", "LogConfig", "Config"],
            &["HostConfig", "PortBindings"],
            &["HostConfig", "StorageOpt"],
            &["HostConfig", "Annotations"],
            &["NetworkSettings", "Networks"],
            &["NetworkSettings", "Ports"],
        ],
    )
}

pub async fn start(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    state.containers().start(&id).await?;
    Ok(no_content())
}

pub async fn stop(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let timeout = int(&q, "t")?;
    state
        .containers()
        .stop(&id, q.value("signal"), timeout)
        .await?;
    Ok(no_content())
}

pub async fn restart(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let timeout = int(&q, "t")?;
    state
        .containers()
        .restart(&id, q.value("signal"), timeout)
        .await?;
    Ok(no_content())
}

pub async fn kill(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    state.containers().kill(&id, q.value("signal")).await?;
    Ok(no_content())
}

pub async fn pause(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    state.containers().pause(&id, true).await?;
    Ok(no_content())
}

pub async fn unpause(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    state.containers().pause(&id, false).await?;
    Ok(no_content())
}

pub async fn remove(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    state
        .containers()
        .remove(&id, q.bool("force"), q.bool("v"))
        .await?;
    Ok(no_content())
}

/// Headers first, the status once the condition holds (the CLI waits on the body).
pub async fn wait(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let condition = WaitCondition::parse(q.get("condition").unwrap_or(""))?;
    let engine = state.0.clone();
    // Fail before the headers when the container does not exist.
    engine.containers().get(&id)?;
    let body = futures::stream::once(async move {
        let line = match engine.containers().wait(&id, condition).await {
            Ok(code) => serde_json::json!({"Error": null, "StatusCode": code}),
            Err(e) => serde_json::json!({"Error": {"Message": e.message}, "StatusCode": -1}),
        };
        Ok::<_, std::io::Error>(Bytes::from(format!("{line}\n")))
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

pub async fn resize(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let (h, w) = size_of(&q)?;
    state.containers().resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

fn size_of(q: &Query) -> ApiResult<(u16, u16)> {
    let parse = |key| -> ApiResult<u16> {
        let value = q.get(key).unwrap_or("0");
        value
            .parse::<u16>()
            .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {value}")))
    };
    Ok((parse("h")?, parse("w")?))
}

pub async fn logs(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let opts = LogOptions {
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        follow: q.bool("follow"),
        since: parse_timestamp(q.get("since").unwrap_or(""))?,
        until: parse_timestamp(q.get("until").unwrap_or(""))?,
        timestamps: q.bool("timestamps"),
        tail: match q.get("tail").unwrap_or("all") {
            "all" | "" => None,
            n => Some(n.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("invalid value for \"tail\": \"{n}\""))
            })?),
        },
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let (tty, mut rx) = state.containers().logs(&id, opts)?;
    let body = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|b| b.map(Ok::<_, std::io::Error>))
    });
    let kind = if tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
    Ok(([(CONTENT_TYPE, kind)], Body::from_stream(body)).into_response())
}

/// Whether the client asked to take over the connection (`Upgrade: tcp`).
fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

fn upgraded_response(content_type: &'static str) -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(CONTENT_TYPE, content_type)
        .header(CONNECTION, "Upgrade")
        .header(UPGRADE, "tcp")
        .body(Body::empty())
        .expect("static response parts")
}

pub async fn attach(
    state: State,
    Path(id): Path<String>,
    q: Query,
    mut req: Request,
) -> ApiResult<Response> {
    let opts = AttachOptions {
        stream: q.bool("stream"),
        logs: q.bool("logs"),
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        detach_keys: q.value("detachKeys").map(str::to_string),
    };
    let attach = state.containers().attach(&id, opts)?;
    let content_type = if attach.tty {
        RAW_STREAM
    } else {
        MULTIPLEXED_STREAM
    };
    if !wants_upgrade(req.headers()) {
        // An old-style client: the output as the body, no stdin.
        let replay = attach.replay.clone();
        let (tx, rx) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            if let Ok(Some((stream, tty, _, keys))) = attach.connect().await {
                pump(tx, stream, tty, false, keys, replay).await;
            } else {
                use tokio::io::AsyncWriteExt;
                let mut tx = tx;
                let _ = tx.write_all(&replay).await;
            }
        });
        let body = Body::from_stream(tokio_util::io::ReaderStream::new(rx));
        return Ok(([(CONTENT_TYPE, content_type)], body).into_response());
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = TokioIo::new(upgraded);
        let replay = attach.replay.clone();
        match attach.connect().await {
            Ok(Some((stream, tty, stdin, keys))) => {
                pump(io, stream, tty, stdin, keys, replay).await;
            }
            Ok(None) => {
                use tokio::io::AsyncWriteExt;
                let mut io = io;
                let _ = io.write_all(&replay).await;
                let _ = io.shutdown().await;
            }
            Err(err) => tracing::debug!("attach: {err}"),
        }
    });
    Ok(upgraded_response(content_type))
}

pub async fn exec_create(state: State, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let config: ExecConfig = json_body(&body)?;
    let exec_id = state.containers().create_exec(&id, config)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"Id": exec_id})),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStartBody {
    detach: bool,
    tty: Option<bool>,
}

pub async fn exec_start(
    state: State,
    Path(id): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let upgrade = wants_upgrade(req.headers());
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let start: ExecStartBody = json_body(&body)?;
    let engine = state.0.clone();
    match engine
        .containers()
        .start_exec(&id, start.detach, start.tty)
        .await?
    {
        ExecStart::Detached => Ok(StatusCode::OK.into_response()),
        ExecStart::Failed { message, tty } => {
            let line = format!("{message}\r\n").into_bytes();
            let bytes = if tty {
                line
            } else {
                berth_shim::Frame::new(berth_shim::StreamKind::Stdout, line)
                    .encode()
                    .to_vec()
            };
            let content_type = if tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
            match on_upgrade {
                Some(on_upgrade) => {
                    tokio::spawn(async move {
                        if let Ok(upgraded) = on_upgrade.await {
                            use tokio::io::AsyncWriteExt;
                            let mut io = TokioIo::new(upgraded);
                            let _ = io.write_all(&bytes).await;
                            let _ = io.shutdown().await;
                        }
                    });
                    Ok(upgraded_response(content_type))
                }
                None => Ok(([(CONTENT_TYPE, content_type)], bytes).into_response()),
            }
        }
        ExecStart::Attached {
            stream,
            tty,
            stdin,
            detach_keys,
            exec,
        } => {
            let content_type = if tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
            match on_upgrade {
                Some(on_upgrade) => {
                    tokio::spawn(async move {
                        let code = match on_upgrade.await {
                            Ok(upgraded) => {
                                pump(
                                    TokioIo::new(upgraded),
                                    stream,
                                    tty,
                                    stdin,
                                    detach_keys,
                                    Vec::new(),
                                )
                                .await
                            }
                            Err(_) => drain(stream).await,
                        };
                        engine.containers().finish_exec(&exec, code);
                    });
                    Ok(upgraded_response(content_type))
                }
                None => {
                    let (tx, rx) = tokio::io::duplex(64 * 1024);
                    tokio::spawn(async move {
                        let code = pump(tx, stream, tty, false, detach_keys, Vec::new()).await;
                        engine.containers().finish_exec(&exec, code);
                    });
                    let body = Body::from_stream(tokio_util::io::ReaderStream::new(rx));
                    Ok(([(CONTENT_TYPE, content_type)], body).into_response())
                }
            }
        }
    }
}

/// Reads a stream to its end; its exit code.
async fn drain(stream: berth_shim::ShimStream) -> Option<i32> {
    let mut frames = stream.frames;
    let mut code = None;
    while let Ok(Some(frame)) = frames.next().await {
        if let Some(status) = frame.exit_status() {
            code = Some(status.exit_code);
        }
    }
    code
}

pub async fn exec_inspect(state: State, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(state.containers().inspect_exec(&id)?).into_response())
}

pub async fn exec_resize(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let (h, w) = size_of(&q)?;
    state.containers().resize_exec(&id, h, w).await?;
    Ok(StatusCode::CREATED.into_response())
}

pub async fn rename(state: State, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let name = q.get("name").unwrap_or("").to_string();
    state.containers().rename(&id, &name)?;
    Ok(no_content())
}

pub async fn prune(state: State, q: Query) -> ApiResult<Response> {
    let filters = Filters::parse(q.get("filters"))?;
    let report = state.containers().prune(&filters).await?;
    Ok(Json(report).into_response())
}
