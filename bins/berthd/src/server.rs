//! Listeners and the layers every request goes through: the `/v1.N` prefix, and the
//! headers dockerd puts on every response.

use std::path::Path;

use anyhow::Context;
use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_api::{API_VERSION, ErrorResponse, MIN_API_VERSION, parse_api_version};

/// The API version a request asked for (from its path), or the newest when unversioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn newest() -> ApiVersion {
        let (a, b) = parse_api_version(API_VERSION).expect("valid API_VERSION");
        ApiVersion(a, b)
    }
    pub fn oldest() -> ApiVersion {
        let (a, b) = parse_api_version(MIN_API_VERSION).expect("valid MIN_API_VERSION");
        ApiVersion(a, b)
    }
    pub fn before(&self, major: u32, minor: u32) -> bool {
        (self.0, self.1) < (major, minor)
    }
}

/// Strips `/v1.N` from the path (so routes are declared once) and records the version.
pub async fn version_prefix(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut version = ApiVersion::newest();
    if let Some(rest) = path.strip_prefix("/v") {
        let (ver, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if let Some((a, b)) = parse_api_version(ver) {
            let asked = ApiVersion(a, b);
            if asked > ApiVersion::newest() {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
                    ),
                );
            }
            if asked < ApiVersion::oldest() {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                    ),
                );
            }
            version = asked;
            let new_uri = match req.uri().query() {
                Some(q) => format!("{tail}?{q}"),
                None => tail.to_string(),
            };
            *req.uri_mut() = new_uri.parse().expect("a path taken from a valid URI");
        }
    }
    req.extensions_mut().insert(version);
    tracing::debug!(method = %req.method(), uri = %req.uri(), "request");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorResponse { message })).into_response()
}

/// Answers unknown paths as dockerd does.
pub async fn not_found(req: Request<Body>) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("page not found: {} {}", req.method(), req.uri().path()),
    )
}

/// Binds a unix socket, replacing a stale socket file but never a live one.
pub fn bind_unix(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("{} is in use by another daemon", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let l = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}
