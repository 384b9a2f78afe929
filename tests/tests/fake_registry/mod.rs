//! An in-memory registry for the pull tests (`pull_auth.rs`, `pull_errors.rs`): images built
//! with `TestImage`, served by an axum app on 127.0.0.1 whose handler the test writes, with
//! helpers for the parts every registry answers the same way (manifests, blobs with `Range`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_tests::testutil::TestImage;
use bytes::Bytes;

/// A multi-threaded runtime for the fake servers; the tests themselves stay synchronous.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Manifests by (repository, tag or digest) and blobs by digest.
#[derive(Default)]
pub struct Content {
    manifests: HashMap<(String, String), (&'static str, Bytes)>,
    blobs: HashMap<String, Bytes>,
}

impl Content {
    /// Adds an image's blobs and its manifest, under `tag` and under its digest.
    pub fn add_image(&mut self, repo: &str, tag: &str, image: &TestImage) {
        for (d, data) in image.blobs() {
            self.blobs
                .insert(d.to_string(), Bytes::copy_from_slice(data));
        }
        let body = Bytes::from(image.manifest.clone());
        for reference in [tag.to_string(), image.manifest_digest.to_string()] {
            self.manifests.insert(
                (repo.to_string(), reference),
                (image.media_type, body.clone()),
            );
        }
    }

    pub fn manifest(&self, repo: &str, reference: &str) -> Option<(&'static str, Bytes)> {
        self.manifests
            .get(&(repo.to_string(), reference.to_string()))
            .cloned()
    }

    pub fn blob(&self, digest: &str) -> Option<Bytes> {
        self.blobs.get(digest).cloned()
    }
}

/// What a request under `/v2/` is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /v2/`.
    Base,
    Manifest {
        repo: String,
        reference: String,
    },
    Blob {
        repo: String,
        digest: String,
    },
    Other,
}

pub fn route(path: &str) -> Route {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Route::Other;
    };
    if rest.is_empty() {
        return Route::Base;
    }
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        return Route::Manifest {
            repo: repo.to_string(),
            reference: reference.to_string(),
        };
    }
    if let Some((repo, digest)) = rest.rsplit_once("/blobs/") {
        return Route::Blob {
            repo: repo.to_string(),
            digest: digest.to_string(),
        };
    }
    Route::Other
}

/// A spec error body: `{"errors":[{"code":…,"message":…}]}`.
pub fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]}).to_string()
}

/// An error answer with a spec error body.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        error_json(code, message),
    )
        .into_response()
}

/// `404 MANIFEST_UNKNOWN` / `BLOB_UNKNOWN`, as distribution answers.
pub fn unknown(what: &Route) -> Response {
    match what {
        Route::Blob { .. } => error_response(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown"),
        _ => error_response(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        ),
    }
}

/// A manifest answer: its media type as `Content-Type` and its digest as
/// `Docker-Content-Digest`.
pub fn manifest_response(media_type: &str, body: Bytes) -> Response {
    let digest = berth_image::Digest::of(&body).to_string();
    (
        [
            ("content-type", media_type.to_string()),
            ("docker-content-digest", digest),
        ],
        body,
    )
        .into_response()
}

/// The offset of a `Range: bytes=N-` header.
pub fn range_offset(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("range")?
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// A blob answer that honours `Range: bytes=N-` as distribution does: 206 with
/// `Content-Range`, 416 when N is at or past the end.
pub fn blob_response(blob: Bytes, headers: &HeaderMap) -> Response {
    let total = blob.len() as u64;
    match range_offset(headers) {
        Some(offset) if offset >= total => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [("content-range", format!("bytes */{total}"))],
        )
            .into_response(),
        Some(offset) => (
            StatusCode::PARTIAL_CONTENT,
            [(
                "content-range",
                format!("bytes {offset}-{}/{total}", total - 1),
            )],
            blob.slice(offset as usize..),
        )
            .into_response(),
        None => blob.into_response(),
    }
}

/// A body that sends `head` in small pieces, then fails: the connection drops with
/// `Content-Length` (set by the caller) not reached.
pub fn broken_body(head: Bytes) -> axum::body::Body {
    let stream = futures::stream::unfold((head, false), |(rest, failed)| async move {
        if failed {
            return None;
        }
        if rest.is_empty() {
            // Give the client time to take in what was sent before the connection drops.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let err = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped");
            return Some((Err(err), (rest, true)));
        }
        let n = rest.len().min(16 * 1024);
        Some((Ok(rest.slice(..n)), (rest.slice(n..), false)))
    });
    axum::body::Body::from_stream(stream)
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
}

impl Seen {
    pub fn of(req: &axum::extract::Request) -> Seen {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Seen {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            authorization: header("authorization"),
            range: header("range"),
        }
    }
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

/// An axum app on a free 127.0.0.1 port; stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves the app `make` builds (given the address, for token realms).
    pub fn start(
        rt: &tokio::runtime::Runtime,
        make: impl FnOnce(SocketAddr) -> axum::Router,
    ) -> Server {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a fake registry");
        let addr = listener.local_addr().unwrap();
        let app = make(addr);
        let task = rt.spawn(async move {
            axum::serve(listener, app).await.expect("serving");
        });
        Server { addr, task }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Names of the entries of a directory (none if it does not exist).
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs `docker ARGS…` against the daemon with stdin closed; kills it (by its PID) and fails
/// the test if it takes more than a minute. A daemon that answers a pull with 401 makes the
/// docker CLI prompt for credentials ("Login prior to pull:") and, without a terminal, hang.
pub fn docker_within(d: &berth_tests::Daemon, args: &[&str]) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = d
        .docker_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&stdout.join().unwrap()).into_owned();
            panic!("docker {args:?} hung (prompting for credentials?); its output:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Stderr of a failed command; panics if it succeeded or exited with another code than 1.
pub fn failure(out: &std::process::Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("Login prior to"),
        "{what}: the CLI asked for credentials (the daemon answered 401):\n{stdout}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what} should fail with exit code 1:\nstdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!("{what} failed as expected: {}", err.trim_end());
    err
}
