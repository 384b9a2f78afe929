//! Shared fixtures of the auth tests: a registry root with two organisations.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_registry_server::auth::{
    AuthConfig, Authorizer, Claims, KEY_FILE, Role, TokenAuthorizer, token_routes,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tower::ServiceExt;

pub const REALM: &str = "http://registry.test/token";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub auth: Arc<TokenAuthorizer>,
    pub router: Router,
}

/// `acme`: bob (pull), alice (push), carol (admin); `globex`: gary (admin);
/// `acme/pub` is public. Every password is [`PASSWORD`].
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let auth =
        Arc::new(TokenAuthorizer::open(dir.path(), &AuthConfig::default(), REALM.into()).unwrap());
    let store = auth.store();
    store.create_org("acme").unwrap();
    store.create_org("globex").unwrap();
    for (org, user, role) in [
        ("acme", "bob", Role::Pull),
        ("acme", "alice", Role::Push),
        ("acme", "carol", Role::Admin),
        ("globex", "gary", Role::Admin),
    ] {
        store.add_member(org, user, role, Some(PASSWORD)).unwrap();
    }
    store.set_public("acme/pub", true).unwrap();
    let router = token_routes(auth.clone());
    Fixture { dir, auth, router }
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

pub struct Answer {
    pub status: StatusCode,
    pub www_authenticate: Option<String>,
    pub body: serde_json::Value,
}

impl Answer {
    pub fn token(&self) -> &str {
        self.body["token"].as_str().expect("a token")
    }
}

async fn send(router: &Router, req: Request<Body>) -> Answer {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let www_authenticate = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        www_authenticate,
        body,
    }
}

/// `GET /token?<query>`, with Basic credentials when `login` is given.
pub async fn get_token(router: &Router, query: &str, login: Option<(&str, &str)>) -> Answer {
    let mut req = Request::get(format!("/token?{query}"));
    if let Some((u, p)) = login {
        req = req.header(header::AUTHORIZATION, basic(u, p));
    }
    send(router, req.body(Body::empty()).unwrap()).await
}

/// `POST /token` with a form body.
pub async fn post_token(router: &Router, form: &[(&str, &str)]) -> Answer {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let req = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    send(router, req).await
}

/// The verified claims of a token this fixture issued.
pub fn claims(f: &Fixture, token: &str) -> Claims {
    f.auth
        .key()
        .verify(token, f.auth.issuer(), f.auth.service())
        .unwrap()
}

/// The granted access of a token, as scope strings.
pub fn access(f: &Fixture, token: &str) -> Vec<String> {
    claims(f, token)
        .access
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Signs `claims` with the PEM key under `root`, claiming key ID `kid`.
pub fn sign_with(root: &std::path::Path, kid: &str, claims: &Claims) -> String {
    let pem = std::fs::read(root.join(KEY_FILE)).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
}

/// Claims as the fixture's token service would issue them for `sub` with `access`.
pub fn good_claims(f: &Fixture, sub: &str, access: &[&str]) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: f.auth.issuer().to_string(),
        sub: sub.to_string(),
        aud: f.auth.service().to_string(),
        exp: now + 300,
        nbf: now,
        iat: now,
        jti: "test".into(),
        access: access
            .iter()
            .map(|s| berth_registry_server::auth::Scope::parse(s).unwrap())
            .collect(),
    }
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The audit log's events, as JSON values.
pub fn audit_events(f: &Fixture) -> Vec<serde_json::Value> {
    berth_registry_server::auth::audit::tail(f.dir.path(), usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

pub fn authorize(
    f: &Fixture,
    header: Option<&str>,
    scope: &str,
) -> Result<berth_registry_server::auth::Principal, berth_registry_server::auth::AuthError> {
    f.auth.authorize(
        header,
        &berth_registry_server::auth::Scope::parse(scope).unwrap(),
    )
}
