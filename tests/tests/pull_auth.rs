//! Logins and pulls against a registry that wants bearer tokens: the docker CLI and ours,
//! through berthd, against a fake registry with its own token server on 127.0.0.1.

mod fake_registry;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_tests::Daemon;
use berth_tests::testutil::{Compression, Format, TestImage};
use fake_registry::{
    Content, Log, Route, Seen, Server, blob_response, docker_within, entries, error_json, failure,
    manifest_response, route, rt, unknown,
};

const SERVICE: &str = "test-registry";
/// `Basic base64("alice:s3cret")`, the only credentials the token server accepts.
const ALICE: &str = "Basic YWxpY2U6czNjcmV0";
const ALICE_AUTH_FIELD: &str = "YWxpY2U6czNjcmV0";

/// What a token grants: pulls of these repositories.
struct Grant {
    repos: Vec<String>,
}

struct Registry {
    content: Content,
    /// Repositories anyone may pull.
    public: HashSet<String>,
    realm: String,
    tokens: Mutex<HashMap<String, Grant>>,
    next_token: AtomicU64,
    /// When set, the token server refuses anonymous requests for private repositories (401)
    /// instead of issuing a token that grants nothing (what Docker Hub and distribution do).
    refuse_anonymous: AtomicBool,
    log: Log,
}

fn challenge(s: &Registry, repo: Option<&str>) -> Response {
    let mut value = format!(r#"Bearer realm="{}",service="{SERVICE}""#, s.realm);
    if let Some(repo) = repo {
        value.push_str(&format!(r#",scope="repository:{repo}:pull""#));
    }
    (
        StatusCode::UNAUTHORIZED,
        [
            ("www-authenticate", value),
            ("content-type", "application/json".to_string()),
        ],
        error_json("UNAUTHORIZED", "authentication required"),
    )
        .into_response()
}

fn token_endpoint(s: &Registry, req: &Request, seen: &Seen) -> Response {
    let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(req.uri()) else {
        return (StatusCode::BAD_REQUEST, "bad query").into_response();
    };
    if !pairs.iter().any(|(k, v)| k == "service" && v == SERVICE) {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"details":"unknown service"}"#.to_string(),
        )
            .into_response();
    }
    let user = match seen.authorization.as_deref() {
        None => None,
        Some(ALICE) => Some("alice"),
        Some(_) => {
            return (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                r#"{"details":"incorrect username or password"}"#,
            )
                .into_response();
        }
    };
    let mut repos = Vec::new();
    for (_, scope) in pairs.iter().filter(|(k, _)| k == "scope") {
        let mut parts = scope.split(':');
        let (Some("repository"), Some(repo), Some(actions)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return (StatusCode::BAD_REQUEST, "bad scope").into_response();
        };
        if !actions.split(',').any(|a| a == "pull") {
            continue;
        }
        if user.is_some() || s.public.contains(repo) {
            repos.push(repo.to_string());
        } else if s.refuse_anonymous.load(Ordering::SeqCst) {
            return (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                r#"{"details":"access to the requested resource is not authorized"}"#,
            )
                .into_response();
        }
    }
    let token = format!("tok-{}", s.next_token.fetch_add(1, Ordering::SeqCst));
    s.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), Grant { repos });
    axum::Json(serde_json::json!({"token": token, "expires_in": 60})).into_response()
}

async fn handle(State(s): State<Arc<Registry>>, req: Request) -> Response {
    let seen = Seen::of(&req);
    s.log.lock().unwrap().push(seen.clone());
    if seen.path == "/token" {
        return token_endpoint(&s, &req, &seen);
    }
    let granted: Option<Vec<String>> = seen
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| s.tokens.lock().unwrap().get(t).map(|g| g.repos.clone()));
    let r = route(&seen.path);
    match &r {
        Route::Base => {
            if granted.is_none() {
                return challenge(&s, None);
            }
            axum::Json(serde_json::json!({})).into_response()
        }
        Route::Manifest { repo, reference } => {
            if !granted.is_some_and(|g| g.contains(repo)) {
                return challenge(&s, Some(repo));
            }
            match s.content.manifest(repo, reference) {
                Some((mt, body)) => manifest_response(mt, body),
                None => unknown(&r),
            }
        }
        Route::Blob { repo, digest } => {
            if !granted.is_some_and(|g| g.contains(repo)) {
                return challenge(&s, Some(repo));
            }
            match s.content.blob(digest) {
                Some(b) => blob_response(b, req.headers()),
                None => unknown(&r),
            }
        }
        Route::Other => StatusCode::NOT_FOUND.into_response(),
    }
}

struct AuthRegistry {
    server: Server,
    state: Arc<Registry>,
    private: TestImage,
    public: TestImage,
}

impl AuthRegistry {
    fn host(&self) -> String {
        self.server.host()
    }

    fn private_ref(&self) -> String {
        format!("{}/private/app:1", self.host())
    }

    fn public_ref(&self) -> String {
        format!("{}/public/app:1", self.host())
    }

    fn requests(&self) -> Vec<Seen> {
        self.state.log.lock().unwrap().clone()
    }

    fn token_requests(&self) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.path == "/token")
            .collect()
    }

    fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }
}

/// `private/app:1` (needs alice) and `public/app:1` (anyone), one small layer each.
fn start_auth_registry(rt: &tokio::runtime::Runtime) -> AuthRegistry {
    let private = TestImage::builder(Format::Docker)
        .layer(Compression::Gzip, &[("secret.txt", b"for alice only\n")])
        .build();
    let public = TestImage::builder(Format::Oci)
        .layer(Compression::Gzip, &[("hello.txt", b"hello, anyone\n")])
        .build();
    let mut content = Content::default();
    content.add_image("private/app", "1", &private);
    content.add_image("public/app", "1", &public);
    let mut state = None;
    let server = Server::start(rt, |addr| {
        let s = Arc::new(Registry {
            content,
            public: HashSet::from(["public/app".to_string()]),
            realm: format!("http://{addr}/token"),
            tokens: Mutex::default(),
            next_token: AtomicU64::new(1),
            refuse_anonymous: AtomicBool::new(false),
            log: Log::default(),
        });
        state = Some(s.clone());
        axum::Router::new().fallback(handle).with_state(s)
    });
    AuthRegistry {
        server,
        state: state.unwrap(),
        private,
        public,
    }
}

fn docker_config(d: &Daemon) -> serde_json::Value {
    let path = d.dir.path().join("docker-config/config.json");
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).unwrap(),
        Err(_) => serde_json::json!({}),
    }
}

/// Runs a command with `input` on its stdin.
fn with_stdin(mut cmd: std::process::Command, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn docker_login(d: &Daemon, host: &str, user: &str, password: &str) -> std::process::Output {
    let mut cmd = d.docker_cmd();
    cmd.args(["login", host, "-u", user, "--password-stdin"]);
    with_stdin(cmd, &format!("{password}\n"))
}

fn assert_nothing_pulled(d: &Daemon) {
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    let layers = entries(&d.data_root().join("layers"));
    assert!(layers.is_empty(), "layers left behind: {layers:?}");
}

fn assert_denied(err: &str, reference: &str) {
    let name = reference.rsplit_once(':').unwrap().0;
    assert!(
        err.contains(&format!(
            "pull access denied for {name}, repository does not exist or may require 'docker login'"
        )),
        "{err}"
    );
}

#[test]
fn private_repository_without_login_is_denied_in_docker_words() {
    let rt = rt();
    let reg = start_auth_registry(&rt);
    let d = Daemon::start();
    let name = reg.private_ref();
    // The token server hands out a token that grants nothing; the registry refuses it.
    let out = docker_within(&d, &["pull", &name]);
    let err = failure(&out, "docker pull of a private repository");
    assert_denied(&err, &name);
    assert!(err.contains("authentication required"), "{err}");
    let tokens = reg.token_requests();
    assert!(!tokens.is_empty(), "no token was asked for");
    assert!(
        tokens.iter().all(|t| t.authorization.is_none()),
        "credentials sent without a login: {tokens:?}"
    );
    assert_nothing_pulled(&d);
    // The token server refuses outright.
    reg.state.refuse_anonymous.store(true, Ordering::SeqCst);
    let out = docker_within(&d, &["pull", &name]);
    let err = failure(&out, "docker pull of a private repository");
    assert_denied(&err, &name);
    assert_nothing_pulled(&d);
    // Our CLI says the same.
    let out = d.berth(&["pull", &name]);
    let err = failure(&out, "berth pull of a private repository");
    assert_denied(&err, &name);
    assert_nothing_pulled(&d);
}

#[test]
fn public_repository_pulls_anonymously_through_the_token_flow() {
    let rt = rt();
    let reg = start_auth_registry(&rt);
    let d = Daemon::start();
    let name = reg.public_ref();
    let out = d.docker_ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Digest: {}", reg.public.manifest_digest)),
        "{out}"
    );
    assert_eq!(
        d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name])
            .trim(),
        reg.public.config_digest.to_string()
    );
    let tokens = reg.token_requests();
    assert!(!tokens.is_empty(), "no token was asked for");
    for t in &tokens {
        assert!(t.authorization.is_none(), "credentials sent: {t:?}");
        assert!(
            t.query.contains("scope=repository%3Apublic%2Fapp%3Apull"),
            "{t:?}"
        );
        assert!(t.query.contains("service=test-registry"), "{t:?}");
    }
    // Every registry request after the first challenge carried a token.
    let v2: Vec<Seen> = reg
        .requests()
        .into_iter()
        .filter(|s| s.path.starts_with("/v2/public/app/blobs/"))
        .collect();
    assert!(!v2.is_empty());
    assert!(
        v2.iter().all(|s| s
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer tok-"))),
        "{v2:?}"
    );
    d.verify_store();
    // A token does not open other repositories.
    let out = docker_within(&d, &["pull", &reg.private_ref()]);
    assert_denied(&failure(&out, "docker pull"), &reg.private_ref());
}

#[test]
fn docker_login_then_pull_with_credentials_then_logout() {
    let rt = rt();
    let reg = start_auth_registry(&rt);
    let d = Daemon::start();
    let host = reg.host();
    let out = docker_login(&d, &host, "alice", "s3cret");
    assert!(
        out.status.success(),
        "docker login failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        berth_tests::tail(&d.log(), 30)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"),
        "{out:?}"
    );
    // The daemon checked the credentials with the token server.
    let tokens = reg.token_requests();
    assert!(
        tokens
            .iter()
            .any(|t| t.authorization.as_deref() == Some(ALICE)),
        "{tokens:?}"
    );
    let config = docker_config(&d);
    assert_eq!(
        config["auths"][&host]["auth"], ALICE_AUTH_FIELD,
        "config.json: {config}"
    );

    reg.clear_log();
    let name = reg.private_ref();
    let out = d.docker_ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert_eq!(
        d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name])
            .trim(),
        reg.private.config_digest.to_string()
    );
    let tokens = reg.token_requests();
    assert!(
        tokens
            .iter()
            .any(|t| t.authorization.as_deref() == Some(ALICE)
                && t.query.contains("scope=repository%3Aprivate%2Fapp%3Apull")),
        "the pull did not use alice's credentials: {tokens:?}"
    );
    d.verify_store();

    let out = d.docker_ok(&["logout", &host]);
    assert!(
        out.contains(&format!("Removing login credentials for {host}")),
        "{out}"
    );
    let config = docker_config(&d);
    assert!(
        config["auths"].get(&host).is_none(),
        "config.json: {config}"
    );
    d.docker_ok(&["rmi", &name]);
    assert_nothing_pulled(&d);
    let out = docker_within(&d, &["pull", &name]);
    assert_denied(&failure(&out, "docker pull after logout"), &name);
    assert_nothing_pulled(&d);
}

#[test]
fn docker_login_with_a_wrong_password_fails_and_stores_nothing() {
    let rt = rt();
    let reg = start_auth_registry(&rt);
    let d = Daemon::start();
    let host = reg.host();
    let out = docker_login(&d, &host, "alice", "wrong");
    let err = failure(&out, "docker login with a wrong password");
    assert!(
        err.contains("unauthorized: incorrect username or password"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"),
        "{out:?}"
    );
    let config = docker_config(&d);
    assert!(
        config["auths"].get(&host).is_none(),
        "config.json: {config}"
    );
    // A wrong password in X-Registry-Auth: the pull fails with the token server's word.
    let cfg = serde_json::json!({"auths": {&host: {"auth": "YWxpY2U6d3Jvbmc="}}});
    std::fs::write(
        d.dir.path().join("docker-config/config.json"),
        cfg.to_string(),
    )
    .unwrap();
    let out = docker_within(&d, &["pull", &reg.private_ref()]);
    let err = failure(&out, "docker pull with a wrong password");
    assert!(
        err.contains("unauthorized: incorrect username or password"),
        "{err}"
    );
    assert_nothing_pulled(&d);
}

#[test]
fn berth_cli_login_pull_logout() {
    let rt = rt();
    let reg = start_auth_registry(&rt);
    let d = Daemon::start();
    let host = reg.host();
    let name = reg.private_ref();

    let out = d.berth(&["login", &host, "-u", "alice", "-p", "wrong"]);
    let err = failure(&out, "berth login with a wrong password");
    assert!(
        err.contains("unauthorized: incorrect username or password"),
        "{err}"
    );
    assert!(docker_config(&d)["auths"].get(&host).is_none());

    let out = d.berth_ok(&["login", &host, "-u", "alice", "-p", "s3cret"]);
    assert!(out.contains("Login Succeeded"), "{out}");
    assert_eq!(docker_config(&d)["auths"][&host]["auth"], ALICE_AUTH_FIELD);
    let out = d.berth_ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert_eq!(
        d.berth_ok(&["image", "inspect", "--format", "{{.Id}}", &name])
            .trim(),
        reg.private.config_digest.to_string()
    );
    // The docker CLI uses what ours stored, and the other way round.
    d.docker_ok(&["rmi", &name]);
    d.docker_ok(&["pull", &name]);

    let out = d.berth_ok(&["logout", &host]);
    assert!(out.contains("Removing login credentials"), "{out}");
    assert!(docker_config(&d)["auths"].get(&host).is_none());
    d.berth_ok(&["rmi", &name]);
    let out = d.berth(&["pull", &name]);
    assert_denied(&failure(&out, "berth pull after logout"), &name);
    assert_nothing_pulled(&d);

    // --password-stdin, then a pull by the docker CLI with what berth stored.
    let mut cmd = d.berth_cmd();
    cmd.args(["login", &host, "-u", "alice", "--password-stdin"]);
    let out = with_stdin(cmd, "s3cret\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(docker_config(&d)["auths"][&host]["auth"], ALICE_AUTH_FIELD);
    d.docker_ok(&["pull", &name]);
    d.verify_store();
}
