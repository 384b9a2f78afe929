//! `/volumes/*`: list, create, inspect, remove and prune, with dockerd's bodies and statuses.
//!
//! `/volumes/create` and `/volumes/prune` are static routes, so a volume named `create` or
//! `prune` is reached through the same paths: those routes also answer GET and DELETE by
//! taking the name from the path.

use axum::Json;
use axum::body::Bytes;
use axum::extract::Extension;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_engine::filters::Filters;
use berth_engine::volumes::CreateOptions;

use super::State;
use crate::api_error::{ApiError, ApiResult};
use crate::query::{Query, percent_decode};
use crate::server::ApiVersion;

/// The volume name: the last segment of `/volumes/{name}`.
fn name_of(uri: &Uri) -> String {
    let path = uri.path();
    percent_decode(path.rsplit('/').next().unwrap_or(path))
}

/// `GET /volumes?filters=`.
pub async fn list(state: State, q: Query) -> ApiResult<Response> {
    let filters = Filters::parse(q.get("filters"))?;
    let volumes = state.0.volumes().clone();
    let list = tokio::task::spawn_blocking(move || volumes.list(&filters)).await??;
    Ok(Json(list).into_response())
}

/// `POST /volumes/create` with `{Name, Driver, DriverOpts, Labels}` → 201 and the volume.
pub async fn create(state: State, body: Bytes) -> ApiResult<Response> {
    let opts: CreateOptions = if body.iter().all(u8::is_ascii_whitespace) {
        CreateOptions::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let volumes = state.0.volumes().clone();
    let v = tokio::task::spawn_blocking(move || volumes.create(opts)).await??;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `GET /volumes/{name}`.
pub async fn inspect(state: State, uri: Uri) -> ApiResult<Response> {
    Ok(Json(state.0.volumes().inspect(&name_of(&uri))?).into_response())
}

/// `DELETE /volumes/{name}?force=` → 204.
pub async fn remove(state: State, uri: Uri, q: Query) -> ApiResult<Response> {
    let name = name_of(&uri);
    let force = q.bool("force");
    let volumes = state.0.volumes().clone();
    tokio::task::spawn_blocking(move || volumes.remove(&name, force)).await??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /volumes/prune?filters=`. Before API 1.42 prune took named volumes too, so older
/// clients get `all=true` added, as dockerd does.
pub async fn prune(
    state: State,
    Extension(v): Extension<ApiVersion>,
    q: Query,
) -> ApiResult<Response> {
    let mut raw: serde_json::Map<String, serde_json::Value> = match q.get("filters") {
        Some(f) if !f.trim().is_empty() => {
            // Parsed once for docker's error on malformed filters.
            Filters::parse(Some(f))?;
            serde_json::from_str(f).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        _ => serde_json::Map::new(),
    };
    if v.before(1, 42) && !raw.contains_key("all") {
        raw.insert("all".into(), serde_json::json!({"true": true}));
    }
    let filters = Filters::parse(Some(&serde_json::Value::Object(raw).to_string()))?;
    let volumes = state.0.volumes().clone();
    let report = tokio::task::spawn_blocking(move || volumes.prune(&filters)).await??;
    Ok(Json(report).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_paths() {
        assert_eq!(name_of(&"/volumes/data".parse().unwrap()), "data");
        assert_eq!(name_of(&"/volumes/prune".parse().unwrap()), "prune");
        assert_eq!(name_of(&"/volumes/a%2Db?force=1".parse().unwrap()), "a-b");
    }
}
