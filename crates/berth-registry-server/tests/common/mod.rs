//! Shared fixtures: storage backends (the filesystem driver, and the object-store driver over
//! `InMemory` and `LocalFileSystem`), a registry router served on 127.0.0.1 with a random
//! port, raw Distribution-API helpers and a test authoriser with per-organisation tenants.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use berth_distribution::testutil::TestImage;
use berth_image::Digest;
use berth_registry_server::auth::{
    AuditEvent, AuthError, Authorizer, OpenAccess, Principal, Scope,
};
use berth_registry_server::server::{RegistryState, router};
use berth_registry_server::storage::{Driver, FsDriver, ObjectDriver};
use futures::TryStreamExt as _;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use serde_json::Value;

/// Runs a test function once per storage backend: `per_backend!(name, …)` expects
/// `async fn name(backend: Backend)` in the same file.
#[macro_export]
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Fs).await })*
        }
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Memory).await })*
        }
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Local).await })*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `FsDriver` on a temp dir.
    Fs,
    /// `ObjectDriver` over `object_store::memory::InMemory`.
    Memory,
    /// `ObjectDriver` over `object_store::local::LocalFileSystem` on a temp dir.
    Local,
}

/// A storage backend and the temp dir it lives in.
pub struct Storage {
    pub backend: Backend,
    pub driver: Arc<dyn Driver>,
    pub dir: tempfile::TempDir,
}

impl Storage {
    /// A fresh driver over the same data, as a restarted process or another replica opens
    /// it (the in-memory store can only be shared).
    pub fn reopen(&self) -> Arc<dyn Driver> {
        match self.backend {
            Backend::Fs => Arc::new(FsDriver::new(self.dir.path().join("root")).expect("fs")),
            Backend::Memory => self.driver.clone(),
            Backend::Local => {
                let store = LocalFileSystem::new_with_prefix(self.dir.path().join("bucket"))
                    .expect("local store");
                Arc::new(ObjectDriver::new(Arc::new(store)))
            }
        }
    }
}

impl Backend {
    pub fn open(self) -> Storage {
        let dir = tempfile::tempdir().expect("temp dir");
        let driver: Arc<dyn Driver> = match self {
            Backend::Fs => Arc::new(FsDriver::new(dir.path().join("root")).expect("fs driver")),
            Backend::Memory => Arc::new(ObjectDriver::new(Arc::new(InMemory::new()))),
            Backend::Local => {
                let root = dir.path().join("bucket");
                std::fs::create_dir_all(&root).expect("bucket dir");
                let store = LocalFileSystem::new_with_prefix(&root).expect("local store");
                Arc::new(ObjectDriver::new(Arc::new(store)))
            }
        };
        Storage {
            backend: self,
            driver,
            dir,
        }
    }
}

/// Every key in storage with its size: compared before and after refused requests.
pub async fn snapshot(driver: &Arc<dyn Driver>) -> BTreeMap<String, u64> {
    let all: Vec<_> = driver
        .walk("blobs")
        .try_collect()
        .await
        .expect("walk blobs");
    let repos: Vec<_> = driver
        .walk("repositories")
        .try_collect()
        .await
        .expect("walk repos");
    all.into_iter()
        .chain(repos)
        .map(|(k, m)| (k, m.size))
        .collect()
}

/// A router on 127.0.0.1:<random>, stopped when the last handle (see
/// [`Registry::tenant`]) drops.
#[derive(Clone)]
pub struct Registry {
    pub base: String,
    pub http: reqwest::Client,
    pub driver: Arc<dyn Driver>,
    task: Arc<Server>,
}

struct Server(tokio::task::JoinHandle<()>);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn client() -> reqwest::Client {
    client_with(reqwest::header::HeaderMap::new())
}

fn client_with(headers: reqwest::header::HeaderMap) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

impl Registry {
    pub async fn open(driver: Arc<dyn Driver>) -> Registry {
        Registry::with_auth(driver, Arc::new(OpenAccess)).await
    }

    pub async fn with_auth(driver: Arc<dyn Driver>, auth: Arc<dyn Authorizer>) -> Registry {
        let state = Arc::new(RegistryState::new(driver.clone(), auth));
        Registry::with_state(state).await
    }

    pub async fn with_state(state: Arc<RegistryState>) -> Registry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let driver = state.storage.clone();
        let app = router(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Registry {
            base: format!("http://{addr}"),
            http: client(),
            driver,
            task: Arc::new(Server(task)),
        }
    }

    /// The same server, every request sent with `Authorization: Bearer <org>` (see
    /// [`OrgAuth`]).
    pub fn tenant(&self, org: &str) -> Registry {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = format!("Bearer {org}").parse().expect("header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        Registry {
            http: client_with(headers),
            ..self.clone()
        }
    }

    pub fn host(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// `path` (starting with `/`) or an absolute URL → an absolute URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }
    pub fn head(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.head(self.url(path))
    }
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }
    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.put(self.url(path))
    }
    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.patch(self.url(path))
    }
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.url(path))
    }

    /// Starts an upload session; returns its `Location`.
    pub async fn start_upload(&self, repo: &str) -> String {
        let resp = self
            .post(&format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status(), 202, "starting an upload in {repo}");
        location(&resp)
    }

    /// Uploads a blob monolithically (POST `?digest=`).
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let digest = Digest::of(data);
        let resp = self
            .post(&format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("POST blob");
        assert_eq!(
            resp.status(),
            201,
            "pushing a blob to {repo}: {}",
            text(resp).await
        );
        digest
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> reqwest::Response {
        self.put(&format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("PUT manifest")
    }

    /// Pushes an image's blobs and manifest under `tag`.
    pub async fn push_image(&self, repo: &str, tag: &str, image: &TestImage) -> Digest {
        for (_, data) in image.blobs() {
            self.push_blob(repo, data).await;
        }
        let resp = self
            .put_manifest(repo, tag, image.media_type, &image.manifest)
            .await;
        assert_eq!(
            resp.status(),
            201,
            "pushing {repo}:{tag}: {}",
            text(resp).await
        );
        image.manifest_digest
    }
}

pub fn location(resp: &reqwest::Response) -> String {
    header(resp, "location").expect("Location header")
}

pub fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub async fn text(resp: reqwest::Response) -> String {
    resp.text().await.unwrap_or_default()
}

/// The status and the first error code of a spec error response.
pub async fn error(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let code = body["errors"][0]["code"]
        .as_str()
        .unwrap_or("<no code>")
        .to_string();
    (status, code)
}

pub fn image(tag: &str) -> TestImage {
    use berth_distribution::testutil::{Compression, Format};
    TestImage::builder(Format::Oci)
        .layer(Compression::Gzip, &[("hello.txt", tag.as_bytes())])
        .build()
}

/// Tenants by organisation: `Authorization: Bearer <org>` may do anything in `<org>/…`,
/// nothing elsewhere; no header → 401. Records audit events.
#[derive(Default)]
pub struct OrgAuth {
    pub events: Mutex<Vec<AuditEvent>>,
}

pub const CHALLENGE: &str = "Bearer realm=\"http://127.0.0.1/token\",service=\"test\"";

impl Authorizer for OrgAuth {
    fn authorize(
        &self,
        authorization: Option<&str>,
        needed: &Scope,
    ) -> Result<Principal, AuthError> {
        let Some(org) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(AuthError::Unauthorized {
                challenge: format!("{CHALLENGE},scope=\"{needed}\""),
                message: "no credentials".into(),
            });
        };
        let subject = Some(org.to_string());
        if needed.kind == "registry" {
            return Ok(Principal {
                subject,
                access: Vec::new(),
            });
        }
        if needed.name.split('/').next() == Some(org) {
            Ok(Principal {
                subject,
                access: vec![needed.clone()],
            })
        } else {
            Err(AuthError::Denied {
                challenge: format!("{CHALLENGE},scope=\"{needed}\""),
            })
        }
    }

    fn can_see(&self, principal: &Principal, repository: &str) -> bool {
        principal
            .subject
            .as_deref()
            .is_some_and(|org| repository.starts_with(&format!("{org}/")))
    }

    fn record(&self, event: AuditEvent) {
        self.events.lock().unwrap().push(event);
    }
}

/// Sends a request exactly as written (no URL normalisation: `..` stays), with
/// `Connection: close`; returns the status and the body.
pub async fn raw(host: &str, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(host).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
