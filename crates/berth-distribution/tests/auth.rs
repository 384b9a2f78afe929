//! Authentication against a fake registry that demands bearer tokens from its own token server
//! (Docker Hub's protocol), and against one that wants Basic auth.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use berth_distribution::testutil::{Compression, Format, TestImage};
use berth_distribution::{Credentials, ErrorKind, Platform, media_types};
use common::{Fake, client, error_json};

const SERVICE: &str = "fake-registry";
const STATIC_TOKEN: &str = "static-registry-token";

struct AuthState {
    realm: String,
    image: TestImage,
    /// Issued tokens and the repositories each may pull.
    tokens: Mutex<HashMap<String, HashSet<String>>>,
    token_gets: Mutex<Vec<HashMap<String, String>>>,
    token_posts: AtomicUsize,
}

type S = State<Arc<AuthState>>;

fn basic_user(headers: &HeaderMap) -> Result<Option<String>, ()> {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let decoded = v
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(())?;
    match decoded.as_str() {
        "alice:secret" => Ok(Some("alice".into())),
        _ => Err(()),
    }
}

fn issue(s: &AuthState, user: Option<&str>, scope: Option<&str>) -> String {
    let mut tokens = s.tokens.lock().unwrap();
    let mut granted = HashSet::new();
    if let Some(repo) = scope.and_then(|s| s.strip_prefix("repository:")?.strip_suffix(":pull")) {
        // Like Docker Hub: anyone gets a token, but only alice's grants the private repository.
        if repo == "public" || user == Some("alice") {
            granted.insert(repo.to_string());
        }
    }
    let token = format!("token-{}", tokens.len());
    tokens.insert(token.clone(), granted);
    token
}

async fn token_get(
    State(s): S,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    s.token_gets.lock().unwrap().push(q.clone());
    let Ok(user) = basic_user(&headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"details":"incorrect username or password"}"#,
        )
            .into_response();
    };
    if q.get("service").map(String::as_str) != Some(SERVICE) {
        return (StatusCode::BAD_REQUEST, "wrong service").into_response();
    }
    let token = issue(&s, user.as_deref(), q.get("scope").map(String::as_str));
    let mut body = serde_json::json!({ "token": token, "expires_in": 300 });
    if q.get("offline_token").map(String::as_str) == Some("true") && user.is_some() {
        body["refresh_token"] = "refresh-alice".into();
    }
    axum::Json(body).into_response()
}

async fn token_post(State(s): S, Form(f): Form<HashMap<String, String>>) -> Response {
    s.token_posts.fetch_add(1, Ordering::SeqCst);
    let ok = f.get("grant_type").map(String::as_str) == Some("refresh_token")
        && f.get("refresh_token").map(String::as_str) == Some("refresh-alice")
        && f.get("service").map(String::as_str) == Some(SERVICE);
    if !ok {
        let body = r#"{"error":"invalid_grant","error_description":"refresh token is invalid"}"#;
        return (StatusCode::UNAUTHORIZED, body).into_response();
    }
    let token = issue(&s, Some("alice"), f.get("scope").map(String::as_str));
    axum::Json(serde_json::json!({ "access_token": token, "expires_in": 300, "refresh_token": "refresh-alice" }))
        .into_response()
}

fn challenge(s: &AuthState, repo: Option<&str>) -> Response {
    let mut c = format!(r#"Bearer realm="{}",service="{SERVICE}""#, s.realm);
    if let Some(r) = repo {
        c.push_str(&format!(r#",scope="repository:{r}:pull,push""#));
    }
    let body = error_json("UNAUTHORIZED", "authentication required");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, c)],
        body,
    )
        .into_response()
}

fn bearer_grants(s: &AuthState, headers: &HeaderMap, repo: &str) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    token == STATIC_TOKEN
        || s.tokens
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|g| repo.is_empty() || g.contains(repo))
}

async fn ping(State(s): S, headers: HeaderMap) -> Response {
    if bearer_grants(&s, &headers, "") {
        axum::Json(serde_json::json!({})).into_response()
    } else {
        challenge(&s, None)
    }
}

async fn manifest(
    State(s): S,
    Path((repo, _r)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !bearer_grants(&s, &headers, &repo) {
        return challenge(&s, Some(&repo));
    }
    let ct = [(header::CONTENT_TYPE, media_types::DOCKER_MANIFEST)];
    (StatusCode::OK, ct, s.image.manifest.clone()).into_response()
}

async fn blob(
    State(s): S,
    Path((repo, digest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !bearer_grants(&s, &headers, &repo) {
        return challenge(&s, Some(&repo));
    }
    match s
        .image
        .blobs()
        .into_iter()
        .find(|(d, _)| d.to_string() == digest)
    {
        Some((_, data)) => (StatusCode::OK, data.to_vec()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            error_json("BLOB_UNKNOWN", "blob unknown to registry"),
        )
            .into_response(),
    }
}

async fn token_registry() -> (Fake, Arc<AuthState>) {
    let image = TestImage::builder(Format::Docker)
        .layer(Compression::Gzip, &[("f", b"x")])
        .build();
    let state: Arc<Mutex<Option<Arc<AuthState>>>> = Arc::default();
    let slot = state.clone();
    let fake = Fake::start_with(move |addr| {
        let s = Arc::new(AuthState {
            realm: format!("http://{addr}/token"),
            image,
            tokens: Mutex::default(),
            token_gets: Mutex::default(),
            token_posts: AtomicUsize::new(0),
        });
        *slot.lock().unwrap() = Some(s.clone());
        Router::new()
            .route("/token", get(token_get).post(token_post))
            .route("/v2/", get(ping))
            .route("/v2/{repo}/manifests/{reference}", get(manifest))
            .route("/v2/{repo}/blobs/{digest}", get(blob))
            .with_state(s)
    })
    .await;
    let s = state.lock().unwrap().clone().unwrap();
    (fake, s)
}

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

#[tokio::test]
async fn anonymous_bearer_tokens_are_fetched_once_and_cached() {
    let (fake, s) = token_registry().await;
    let c = client();
    let r = fake.reference("public:v1");
    let got = c.resolve(&r, &amd64(), None).await.unwrap();
    assert_eq!(got.manifest_digest, s.image.manifest_digest);
    let config = c
        .fetch_blob_bytes(&r, &got.config.digest, None)
        .await
        .unwrap();
    assert_eq!(&config[..], &s.image.config[..]);
    c.resolve(&r, &amd64(), None).await.unwrap();
    let gets = s.token_gets.lock().unwrap().clone();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(
        gets[0].get("scope").map(String::as_str),
        Some("repository:public:pull")
    );
    assert_eq!(gets[0].get("service").map(String::as_str), Some(SERVICE));
    // Tokens the registry forgets are fetched again, once.
    s.tokens.lock().unwrap().clear();
    c.resolve(&r, &amd64(), None).await.unwrap();
    assert_eq!(s.token_gets.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn private_repositories_need_the_right_credentials() {
    let (fake, s) = token_registry().await;
    let c = client();
    let r = fake.reference("private:v1");
    let e = c.resolve(&r, &amd64(), None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "pull access denied for {}/private, repository does not exist or may require 'docker login': unauthorized: authentication required",
            fake.host()
        )
    );
    let wrong = Credentials::basic("alice", "wrong");
    let e = c.resolve(&r, &amd64(), Some(&wrong)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        e.to_string(),
        "unauthorized: incorrect username or password"
    );
    let alice = Credentials::basic("alice", "secret");
    let got = c.resolve(&r, &amd64(), Some(&alice)).await.unwrap();
    assert_eq!(got.manifest_digest, s.image.manifest_digest);
    let blob = c
        .fetch_blob_bytes(&r, &got.layers[0].digest, Some(&alice))
        .await
        .unwrap();
    assert_eq!(&blob[..], &s.image.layers[0].data[..]);
    // The refused anonymous and wrong-password tokens are not reused for alice, and alice's
    // token served both the manifest and the blob.
    assert_eq!(s.token_gets.lock().unwrap().len(), 3);
    // A token for another user's grant is not handed to an anonymous pull either.
    assert_eq!(
        c.resolve(&r, &amd64(), None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn identity_and_registry_tokens() {
    let (fake, s) = token_registry().await;
    let c = client();
    let r = fake.reference("private:v1");
    let identity = Credentials {
        identity_token: Some("refresh-alice".into()),
        ..Credentials::default()
    };
    let got = c.resolve(&r, &amd64(), Some(&identity)).await.unwrap();
    assert_eq!(got.manifest_digest, s.image.manifest_digest);
    assert_eq!(s.token_posts.load(Ordering::SeqCst), 1);
    let stale = Credentials {
        identity_token: Some("expired".into()),
        ..Credentials::default()
    };
    let e = c.resolve(&r, &amd64(), Some(&stale)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(e.to_string(), "unauthorized: refresh token is invalid");

    let before = s.token_gets.lock().unwrap().len();
    let direct = Credentials {
        registry_token: Some(STATIC_TOKEN.into()),
        ..Credentials::default()
    };
    c.resolve(&r, &amd64(), Some(&direct)).await.unwrap();
    assert_eq!(
        s.token_gets.lock().unwrap().len(),
        before,
        "a registry token needs no token server"
    );
}

#[tokio::test]
async fn login_checks_credentials_and_returns_the_refresh_token() {
    let (fake, s) = token_registry().await;
    let c = client();
    let token = c
        .login(&fake.host(), &Credentials::basic("alice", "secret"))
        .await
        .unwrap();
    assert_eq!(token.as_deref(), Some("refresh-alice"));
    let q = s.token_gets.lock().unwrap().last().cloned().unwrap();
    assert_eq!(q.get("offline_token").map(String::as_str), Some("true"));
    assert_eq!(q.get("client_id").map(String::as_str), Some("berth"));
    let e = c
        .login(
            &format!("http://{}/", fake.host()),
            &Credentials::basic("alice", "nope"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        e.to_string(),
        "unauthorized: incorrect username or password"
    );
    let identity = Credentials {
        identity_token: Some("refresh-alice".into()),
        ..Credentials::default()
    };
    let token = c.login(&fake.host(), &identity).await.unwrap();
    assert_eq!(token.as_deref(), Some("refresh-alice"));
}

#[tokio::test]
async fn basic_auth_registries() {
    let image = TestImage::builder(Format::Oci)
        .layer(Compression::None, &[("f", b"x")])
        .build();
    let body = image.manifest.clone();
    let guarded = |headers: &HeaderMap| -> bool {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:secret")
        );
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(want.as_str())
    };
    let refuse = || {
        let body = error_json("UNAUTHORIZED", "authentication required");
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Basic realm="fake""#)],
            body,
        )
            .into_response()
    };
    let fake = Fake::start(
        Router::new()
            .route(
                "/v2/",
                get(move |h: HeaderMap| async move {
                    if guarded(&h) {
                        "{}".into_response()
                    } else {
                        refuse()
                    }
                }),
            )
            .route(
                "/v2/app/manifests/{r}",
                get(move |h: HeaderMap| {
                    let body = body.clone();
                    async move {
                        if !guarded(&h) {
                            return refuse();
                        }
                        (
                            StatusCode::OK,
                            [(header::CONTENT_TYPE, media_types::OCI_MANIFEST)],
                            body,
                        )
                            .into_response()
                    }
                }),
            ),
    )
    .await;
    let c = client();
    let alice = Credentials::basic("alice", "secret");
    assert_eq!(c.login(&fake.host(), &alice).await.unwrap(), None);
    // Docker shows the registry's own words here.
    let e = c
        .login(&fake.host(), &Credentials::basic("alice", "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(e.to_string(), "unauthorized: authentication required");
    let r = fake.reference("app:v1");
    let got = c.resolve(&r, &amd64(), Some(&alice)).await.unwrap();
    assert_eq!(got.manifest_digest, image.manifest_digest);
    let e = c
        .resolve(&r, &amd64(), Some(&Credentials::basic("alice", "x")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let e = c.resolve(&r, &amd64(), None).await.unwrap_err();
    assert!(e.to_string().starts_with("pull access denied for"), "{e}");
}
