//! The token endpoint of the Docker registry token flow: `GET /token` (Basic credentials
//! or anonymous) and `POST /token` (OAuth2 password and refresh-token grants).
//!
//! Refresh tokens are opaque random strings; only their hash is stored, they last
//! `refresh_ttl_secs`, and their grants are recomputed from the subject's current roles at
//! every use. Changing a password, revoking a robot or removing a user revokes them.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::authorizer::TokenAuthorizer;
use super::policy::Identity;
use super::store::StoreError;
use super::{AuditEvent, Authorizer, Scope};

/// `GET /token` and `POST /token`, to merge into the registry's router.
pub fn token_routes(auth: Arc<TokenAuthorizer>) -> Router {
    Router::new()
        .route("/token", get(get_token).post(post_token))
        .with_state(auth)
}

/// The endpoint's answer.
#[derive(Debug, Clone, Serialize)]
struct TokenResponse {
    token: String,
    access_token: String,
    expires_in: u64,
    issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

enum Credentials {
    Anonymous,
    Password { user: String, secret: String },
    Refresh(String),
}

struct TokenRequest {
    credentials: Credentials,
    scopes: Vec<Scope>,
    /// Return a refresh token too.
    offline: bool,
}

enum Refusal {
    BadRequest(String),
    Unauthorized(String),
    Internal(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Internal(e)
    }
}

impl Refusal {
    fn into_response(self, auth: &TokenAuthorizer) -> Response {
        let (status, code, message) = match self {
            Refusal::BadRequest(m) => (StatusCode::BAD_REQUEST, "UNSUPPORTED", m),
            Refusal::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", m),
            Refusal::Internal(e) => {
                tracing::error!(error = %e, "token endpoint");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "internal error".to_string(),
                )
            }
        };
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = format!("Basic realm=\"{}\"", auth.service());
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every `scope` parameter, each possibly holding several space-separated scopes.
fn scopes(params: &[(String, String)]) -> Result<Vec<Scope>, Refusal> {
    let mut out = Vec::new();
    for (_, value) in params.iter().filter(|(k, _)| k == "scope") {
        for s in value.split(' ').filter(|s| !s.is_empty()) {
            out.push(
                Scope::parse(s)
                    .ok_or_else(|| Refusal::BadRequest(format!("invalid scope {s:?}")))?,
            );
        }
    }
    Ok(out)
}

fn check_service(auth: &TokenAuthorizer, params: &[(String, String)]) -> Result<(), Refusal> {
    match param(params, "service") {
        Some(s) if s != auth.service() => {
            Err(Refusal::BadRequest(format!("unknown service {s:?}")))
        }
        _ => Ok(()),
    }
}

fn get_request(
    auth: &TokenAuthorizer,
    authorization: Option<&str>,
    params: &[(String, String)],
) -> Result<TokenRequest, Refusal> {
    check_service(auth, params)?;
    let credentials = match authorization.map(str::trim) {
        None | Some("") => Credentials::Anonymous,
        Some(h) => {
            let (scheme, value) = h.split_once(' ').unwrap_or((h, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(Refusal::Unauthorized(
                    "only basic credentials are accepted".into(),
                ));
            }
            let decoded = STANDARD
                .decode(value.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((user, secret)) = decoded.as_deref().and_then(|s| s.split_once(':')) else {
                return Err(Refusal::Unauthorized("malformed basic credentials".into()));
            };
            Credentials::Password {
                user: user.to_string(),
                secret: secret.to_string(),
            }
        }
    };
    Ok(TokenRequest {
        credentials,
        scopes: scopes(params)?,
        offline: param(params, "offline_token") == Some("true"),
    })
}

fn post_request(
    auth: &TokenAuthorizer,
    params: &[(String, String)],
) -> Result<TokenRequest, Refusal> {
    check_service(auth, params)?;
    let required = |name: &str| {
        param(params, name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Refusal::BadRequest(format!("missing {name}")))
    };
    let credentials = match param(params, "grant_type") {
        Some("password") => Credentials::Password {
            user: required("username")?,
            secret: required("password")?,
        },
        Some("refresh_token") => Credentials::Refresh(required("refresh_token")?),
        Some(other) => {
            return Err(Refusal::BadRequest(format!(
                "unsupported grant_type {other:?}"
            )));
        }
        None => return Err(Refusal::BadRequest("missing grant_type".into())),
    };
    Ok(TokenRequest {
        credentials,
        scopes: scopes(params)?,
        offline: param(params, "access_type") == Some("offline"),
    })
}

/// Authenticates, grants the allowed subset and signs (blocking: argon2 and the store).
fn answer(auth: &TokenAuthorizer, req: TokenRequest) -> Result<TokenResponse, Refusal> {
    let (identity, presented_refresh) = match req.credentials {
        Credentials::Anonymous => (Identity::Anonymous, None),
        Credentials::Password { user, secret } => {
            match auth.login(&user, &secret, "token request")? {
                Some(identity) => (identity, None),
                None => return Err(Refusal::Unauthorized("invalid username or password".into())),
            }
        }
        Credentials::Refresh(token) => {
            let subject = auth.store().redeem_refresh_token(&token)?;
            let identity = match &subject {
                Some(s) => auth.store().identity(s)?,
                None => None,
            };
            match identity {
                Some(identity) => (identity, Some(token)),
                None => {
                    auth.record(AuditEvent::TokenRefused {
                        subject,
                        reason: "invalid or expired refresh token".into(),
                    });
                    return Err(Refusal::Unauthorized("invalid refresh token".into()));
                }
            }
        }
    };
    let granted = auth.grant_all(&identity, &req.scopes);
    let refresh_token = match (req.offline, identity.subject()) {
        (true, Some(subject)) => match presented_refresh {
            Some(t) => Some(t),
            None => Some(
                auth.store()
                    .issue_refresh_token(&subject, auth.refresh_ttl_secs())?,
            ),
        },
        _ => None,
    };
    let issued = auth.issue(&identity, granted);
    Ok(TokenResponse {
        access_token: issued.token.clone(),
        token: issued.token,
        expires_in: issued.expires_in,
        issued_at: issued.issued_at,
        refresh_token,
    })
}

async fn respond(
    auth: Arc<TokenAuthorizer>,
    parse: impl FnOnce(&TokenAuthorizer) -> Result<TokenRequest, Refusal> + Send + 'static,
) -> Response {
    let worker = auth.clone();
    let result =
        tokio::task::spawn_blocking(move || parse(&worker).and_then(|r| answer(&worker, r))).await;
    match result {
        Ok(Ok(body)) => {
            let mut resp = axum::Json(body).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Ok(Err(refusal)) => refusal.into_response(&auth),
        Err(e) => {
            tracing::error!(error = %e, "token endpoint task");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn get_token(
    State(auth): State<Arc<TokenAuthorizer>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let params = form(query.unwrap_or_default().as_bytes());
    respond(auth, move |a| {
        get_request(a, authorization.as_deref(), &params)
    })
    .await
}

async fn post_token(State(auth): State<Arc<TokenAuthorizer>>, body: Bytes) -> Response {
    let params = form(&body);
    respond(auth, move |a| post_request(a, &params)).await
}
