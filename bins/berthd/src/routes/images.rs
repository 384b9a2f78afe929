//! `/images/*`. Image names may contain slashes (`localhost:5000/org/app`), so the named
//! routes take the rest of the path and split the action off its end, as dockerd's
//! `{name:.*}` routes do.

use axum::Json;
use axum::body::Body;
use axum::extract::Extension;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_api::types::AuthConfig;
use berth_engine::filters::Filters;
use berth_engine::images::{ImportOptions, ListOptions, PullOptions, PushOptions};
use berth_image::Reference;
use futures::TryStreamExt;

use super::State;
use super::stream::progress_response;
use crate::api_error::{ApiError, ApiResult};
use crate::query::{Query, percent_decode};
use crate::server::ApiVersion;

pub async fn list(
    state: State,
    Extension(v): Extension<ApiVersion>,
    q: Query,
) -> ApiResult<Response> {
    let mut filters = Filters::parse(q.get("filters"))?;
    // API < 1.41 had `filter=NAME`; keep it working as a reference filter.
    if let Some(name) = q.value("filter") {
        filters = Filters::parse(Some(
            &serde_json::json!({ "reference": [name] }).to_string(),
        ))?;
    }
    let opts = ListOptions {
        all: q.bool("all"),
        filters,
        digests: q.bool("digests"),
        legacy_virtual_size: v.before(1, 44),
    };
    Ok(Json(state.0.images().list(&opts)?).into_response())
}

/// Decodes `X-Registry-Auth` (base64url JSON, padded or not).
pub fn registry_auth(headers: &HeaderMap) -> ApiResult<Option<AuthConfig>> {
    let Some(raw) = headers
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let raw = raw.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw))
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header: not base64"))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) || bytes == b"{}" || bytes == b"null" {
        return Ok(None);
    }
    let auth: AuthConfig = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))?;
    Ok(Some(auth))
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`).
pub async fn create(state: State, headers: HeaderMap, q: Query, body: Body) -> ApiResult<Response> {
    if let Some(src) = q.value("fromSrc") {
        let mut reference = None;
        if let Some(repo) = q.value("repo") {
            let full = match q.value("tag") {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            };
            reference = Some(
                Reference::parse_normalized(&full)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            );
        }
        let opts = ImportOptions {
            reference,
            changes: q.all("changes"),
            message: q.value("message").map(str::to_string),
            platform: q.value("platform").map(str::to_string),
        };
        let source = if src == "-" {
            let stream = body.into_data_stream().map_err(std::io::Error::other);
            berth_engine::images::ImportSource::Body(Box::pin(stream))
        } else {
            berth_engine::images::ImportSource::Url(src.to_string())
        };
        let rx = state.0.images().import(source, opts);
        return Ok(progress_response(rx).await);
    }
    let Some(from) = q.value("fromImage") else {
        return Err(ApiError::bad_request(
            "either fromImage or fromSrc is required",
        ));
    };
    let name = match q.value("tag") {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let reference =
        // As dockerd: a name without tag or digest pulls every tag.
        Reference::parse_normalized_name(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let platform = q
        .value("platform")
        .map(berth_engine::images::Platform::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let credentials =
        registry_auth(&headers)?.and_then(|a| berth_engine::images::credentials_from(&a));
    let rx = state.0.images().pull(PullOptions {
        reference,
        platform,
        credentials,
    });
    Ok(progress_response(rx).await)
}

pub async fn prune(state: State, q: Query) -> ApiResult<Response> {
    let filters = Filters::parse(q.get("filters"))?;
    let images = state.0.images().clone();
    Ok(Json(tokio::task::spawn_blocking(move || images.prune(&filters)).await??).into_response())
}

pub async fn load(state: State, q: Query, body: Body) -> ApiResult<Response> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let rx = state.0.images().load(Box::pin(stream), q.bool("quiet"));
    Ok(progress_response(rx).await)
}

pub async fn save_many(state: State, q: Query) -> ApiResult<Response> {
    save(state, q.all("names")).await
}

async fn save(state: State, names: Vec<String>) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no images to save"));
    }
    let rx = state.0.images().save(names)?;
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok(([(CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// Splits `NAME/ACTION` where NAME may contain slashes.
fn split_action(rest: &str, actions: &[&'static str]) -> Option<(String, &'static str)> {
    let rest = rest.trim_start_matches('/');
    actions.iter().find_map(|a| {
        rest.strip_suffix(a)
            .and_then(|n| n.strip_suffix('/'))
            .filter(|n| !n.is_empty())
            .map(|n| (percent_decode(n), *a))
    })
}

pub async fn get_named(
    state: State,
    Extension(v): Extension<ApiVersion>,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> ApiResult<Response> {
    match split_action(&rest, &["json", "history", "get"]) {
        Some((name, "json")) => {
            Ok(Json(state.0.images().inspect(&name, v.before(1, 44))?).into_response())
        }
        Some((name, "history")) => Ok(Json(state.0.images().history(&name)?).into_response()),
        Some((name, "get")) => save(state, vec![name]).await,
        _ => Ok(page_not_found("GET", &rest)),
    }
}

pub async fn post_named(
    state: State,
    headers: HeaderMap,
    q: Query,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> ApiResult<Response> {
    match split_action(&rest, &["tag", "push"]) {
        Some((name, "push")) => push(state, &headers, &q, &name).await,
        Some((name, "tag")) => {
            let repo = q
                .value("repo")
                .ok_or_else(|| ApiError::bad_request("repo is required"))?;
            state.0.images().tag(&name, repo, q.value("tag"))?;
            Ok(StatusCode::CREATED.into_response())
        }
        _ => Ok(page_not_found("POST", &rest)),
    }
}

/// `POST /images/{name}/push?tag=`: the tag given, or every tag of NAME when `tag` is empty
/// (as dockerd: a tag in NAME itself counts when the query has none).
async fn push(state: State, headers: &HeaderMap, q: &Query, name: &str) -> ApiResult<Response> {
    let mut reference =
        Reference::parse_normalized_name(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(tag) = q.value("tag").filter(|t| !t.is_empty()) {
        reference = reference
            .with_tag(tag)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let credentials =
        registry_auth(headers)?.and_then(|a| berth_engine::images::credentials_from(&a));
    let rx = state.0.images().push(PushOptions {
        reference,
        credentials,
    });
    Ok(progress_response(rx).await)
}

pub async fn delete_named(
    state: State,
    q: Query,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> ApiResult<Response> {
    let name = percent_decode(rest.trim_start_matches('/'));
    let (force, no_prune) = (q.bool("force"), q.bool("noprune"));
    let images = state.0.images().clone();
    let items =
        tokio::task::spawn_blocking(move || images.remove(&name, force, no_prune)).await??;
    Ok(Json(items).into_response())
}

fn page_not_found(method: &str, rest: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(berth_api::ErrorResponse {
            message: format!("page not found: {method} /images/{rest}"),
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_names_with_slashes() {
        assert_eq!(
            split_action("localhost:5000/a/b/json", &["json"]),
            Some(("localhost:5000/a/b".into(), "json"))
        );
        assert_eq!(
            split_action("busybox/history", &["json", "history"]),
            Some(("busybox".into(), "history"))
        );
        assert_eq!(split_action("json", &["json"]), None);
    }

    #[test]
    fn decodes_registry_auth() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::URL_SAFE
            .encode(br#"{"username":"u","password":"p","serveraddress":"r"}"#);
        h.insert("X-Registry-Auth", enc.parse().unwrap());
        let a = registry_auth(&h).unwrap().unwrap();
        assert_eq!(a.username.as_deref(), Some("u"));
        h.insert("X-Registry-Auth", "e30=".parse().unwrap());
        assert!(registry_auth(&h).unwrap().is_none());
        h.insert("X-Registry-Auth", "!!".parse().unwrap());
        assert!(registry_auth(&h).is_err());
    }
}
