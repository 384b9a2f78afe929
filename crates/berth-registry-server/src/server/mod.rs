//! The OCI Distribution API (`/v2/…`, spec v1.1) over a storage [`Driver`] and an
//! [`Authorizer`].
//!
//! Every request is parsed into a [`route::Route`], its repository name validated, and then
//! authorised *before* storage is touched: pull for reads, push for uploads and manifest
//! PUTs, delete for DELETEs. Handlers live in one file per resource (`blobs`, `uploads`,
//! `manifests`, `lists`); errors become the spec's JSON body in `error`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, header};

use crate::auth::{Action, AuthError, Authorizer, Principal, Scope};
use crate::storage::{Driver, Store};

mod blobs;
pub mod error;
mod lists;
mod manifests;
pub mod route;
mod serve;
mod uploads;

pub use error::{ApiError, Code};
pub use serve::{TlsError, serve, tls_config};

use route::Route;

/// The spec's manifest size limit.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;
/// The largest `n` a catalog page may ask for, and the page size without `n`.
pub const CATALOG_PAGE_SIZE: usize = 1000;

/// Tunables of the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Manifests larger than this are refused (413, `SIZE_INVALID`).
    pub max_manifest_size: usize,
    /// Catalog page size (default and maximum `n`).
    pub catalog_page_size: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_manifest_size: MAX_MANIFEST_SIZE,
            catalog_page_size: CATALOG_PAGE_SIZE,
        }
    }
}

/// What every request handler shares.
pub struct RegistryState {
    pub storage: Arc<dyn Driver>,
    pub auth: Arc<dyn Authorizer>,
    pub config: ServerConfig,
}

impl RegistryState {
    pub fn new(storage: Arc<dyn Driver>, auth: Arc<dyn Authorizer>) -> RegistryState {
        RegistryState {
            storage,
            auth,
            config: ServerConfig::default(),
        }
    }

    pub fn store(&self) -> Store {
        Store::new(self.storage.clone())
    }
}

/// The Distribution API as an axum router (all of `/v2/`). Merge other routes (the token
/// endpoint) next to it; they must not add a fallback.
pub fn router(state: Arc<RegistryState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

async fn dispatch(State(state): State<Arc<RegistryState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let mut resp = match handle(&state, parts, body).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::debug!(%method, %path, code = e.code.as_str(), "request refused");
            e.into_response()
        }
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

/// One request's context: the state, the store and the parsed request head.
pub(crate) struct Ctx<'a> {
    pub state: &'a RegistryState,
    pub store: Store,
    pub parts: &'a Parts,
    query: Vec<(String, String)>,
}

impl Ctx<'_> {
    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of query parameter `key`.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn authorization(&self) -> Option<&str> {
        self.header(header::AUTHORIZATION)
    }

    /// Authorises `actions` on `repository` for this request.
    pub fn authorize(&self, repository: &str, actions: &[Action]) -> Result<Principal, ApiError> {
        let scope = Scope::repository(repository, actions);
        Ok(self.state.auth.authorize(self.authorization(), &scope)?)
    }

    /// Whether this request may read `repository` (for cross-repository mounts): granted
    /// in `principal`'s token, or allowed by the authoriser on its own.
    pub fn may_pull(&self, principal: &Principal, repository: &str) -> bool {
        principal.allows(repository, Action::Pull)
            || self.authorize(repository, &[Action::Pull]).is_ok()
    }
}

async fn handle(state: &RegistryState, parts: Parts, body: Body) -> Result<Response, ApiError> {
    let route = route::parse(parts.uri.path())
        .ok_or_else(|| ApiError::new(Code::Unsupported).status(StatusCode::NOT_FOUND))?;
    if let Some(name) = route.name() {
        route::validate_name(name)?;
    }
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let ctx = Ctx {
        state,
        store: state.store(),
        parts: &parts,
        query,
    };
    let method = &parts.method;
    let head = method == Method::HEAD;
    match route {
        Route::Base if method == Method::GET || head => base(&ctx),
        Route::Catalog if method == Method::GET => lists::catalog(&ctx).await,
        Route::Tags { name } if method == Method::GET => lists::tags(&ctx, &name).await,
        Route::Referrers { name, digest } if method == Method::GET => {
            lists::referrers(&ctx, &name, &digest).await
        }
        Route::Blob { name, digest } => match *method {
            Method::GET | Method::HEAD => blobs::get(&ctx, &name, &digest, head).await,
            Method::DELETE => blobs::delete(&ctx, &name, &digest).await,
            _ => Err(unsupported()),
        },
        Route::UploadStart { name } if method == Method::POST => {
            uploads::start(&ctx, &name, body).await
        }
        Route::Upload { name, id } => match *method {
            Method::GET => uploads::status(&ctx, &name, &id).await,
            Method::PATCH => uploads::patch(&ctx, &name, &id, body).await,
            Method::PUT => uploads::finish(&ctx, &name, &id, body).await,
            Method::DELETE => uploads::cancel(&ctx, &name, &id).await,
            _ => Err(unsupported()),
        },
        Route::Manifest { name, reference } => match *method {
            Method::GET | Method::HEAD => manifests::get(&ctx, &name, &reference, head).await,
            Method::PUT => manifests::put(&ctx, &name, &reference, body).await,
            Method::DELETE => manifests::delete(&ctx, &name, &reference).await,
            _ => Err(unsupported()),
        },
        _ => Err(unsupported()),
    }
}

fn unsupported() -> ApiError {
    ApiError::new(Code::Unsupported)
}

/// `GET /v2/`: 200 for anyone the authoriser knows (even without catalog access), 401 with
/// the challenge otherwise, so clients learn where to log in.
fn base(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    match ctx
        .state
        .auth
        .authorize(ctx.authorization(), &Scope::catalog())
    {
        Ok(_) | Err(AuthError::Denied { .. }) => {}
        Err(e @ AuthError::Unauthorized { .. }) => return Err(e.into()),
    }
    Ok(json_response(
        StatusCode::OK,
        b"{}".to_vec(),
        "application/json",
    ))
}

/// A response with a body and its content type.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>, content_type: &str) -> Response {
    let len = body.len();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    set(&mut resp, header::CONTENT_TYPE, content_type);
    set(&mut resp, header::CONTENT_LENGTH, &len.to_string());
    resp
}

/// An empty response (`Content-Length: 0`).
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    set(&mut resp, header::CONTENT_LENGTH, "0");
    resp
}

/// Sets a header; values come from validated names, digests and numbers.
pub(crate) fn set(resp: &mut Response, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}
