//! Test fixtures (feature `testutil`): a real registry — Debian's `docker-registry` (CNCF
//! distribution) on a free 127.0.0.1 port with a temporary root — and builders for small images
//! to push into it or to serve from a fake. Everything stays on 127.0.0.1.
//!
//! ```no_run
//! # async fn f() {
//! use berth_distribution::testutil::{Compression, Format, TestImage, TestRegistry};
//! let registry = TestRegistry::start().await;
//! let image = TestImage::builder(Format::Oci)
//!     .layer(Compression::Gzip, &[("hello.txt", b"hello")])
//!     .build();
//! let digest = registry.push_image("app", "v1", &image).await;
//! let reference = registry.reference("app:v1");
//! # }
//! ```

mod image;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_image::{Digest, Reference};

pub use image::{Compression, Format, TestImage, TestImageBuilder, TestIndex, TestLayer, tar_of};

/// The registry binary; `BERTH_TEST_REGISTRY_BIN` overrides it.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A `docker-registry` process serving plain HTTP on 127.0.0.1, killed (by its PID) on drop.
pub struct TestRegistry {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl TestRegistry {
    /// Starts a registry and waits until `/v2/` answers. Panics with the reason (binary
    /// missing, registry log) if it cannot.
    pub async fn start() -> TestRegistry {
        let binary = std::env::var("BERTH_TEST_REGISTRY_BIN")
            .unwrap_or_else(|_| REGISTRY_BINARY.to_string());
        assert!(
            std::path::Path::new(&binary).exists(),
            "{binary} is not installed: the registry tests need Debian's docker-registry (apt-get install docker-registry)"
        );
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("building an http client");
        let mut last_log = String::new();
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("creating a temp dir for the registry");
            let port = free_port();
            let config = dir.path().join("config.yml");
            let root = dir.path().join("data");
            std::fs::write(&config, config_yaml(&root, port)).expect("writing the registry config");
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).expect("creating the registry log");
            let child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning the log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
            let mut reg = TestRegistry {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child,
                dir,
                http: http.clone(),
            };
            if reg.wait_ready().await {
                return reg;
            }
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
            // Dropping `reg` kills the process.
        }
        panic!("docker-registry did not start; its log:\n{last_log}");
    }

    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = format!("{}/v2/", self.url());
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(resp) = self.http.get(&url).send().await
                && resp.status().is_success()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The registry's storage root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A reference into this registry: `app:v1` → `127.0.0.1:PORT/app:v1`.
    pub fn reference(&self, name: &str) -> Reference {
        Reference::parse_normalized(&format!("{}/{name}", self.host()))
            .unwrap_or_else(|e| panic!("invalid test reference {name:?}: {e}"))
    }

    /// Uploads a blob (POST, then a monolithic PUT with the digest).
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let digest = Digest::of(data);
        let start = format!("{}/v2/{repo}/blobs/uploads/", self.url());
        let resp = self
            .http
            .post(&start)
            .send()
            .await
            .expect("starting a blob upload");
        assert_eq!(
            resp.status().as_u16(),
            202,
            "POST {start}: {}",
            resp.text().await.unwrap_or_default()
        );
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("upload location")
            .to_string();
        let mut url = url::Url::parse(&self.url())
            .and_then(|base| base.join(&location))
            .expect("upload url");
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = self
            .http
            .put(url.clone())
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("finishing a blob upload");
        assert_eq!(
            resp.status().as_u16(),
            201,
            "PUT {url}: {}",
            resp.text().await.unwrap_or_default()
        );
        digest
    }

    /// Puts a manifest under a tag or digest with its media type as `Content-Type`.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Digest {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.url());
        let resp = self
            .http
            .put(&url)
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("pushing a manifest");
        assert_eq!(
            resp.status().as_u16(),
            201,
            "PUT {url}: {}",
            resp.text().await.unwrap_or_default()
        );
        Digest::of(body)
    }

    /// Pushes an image's layers, config and manifest, tagged `tag`. Returns the manifest digest.
    pub async fn push_image(&self, repo: &str, tag: &str, image: &TestImage) -> Digest {
        for (_, data) in image.blobs() {
            self.push_blob(repo, data).await;
        }
        self.push_manifest(repo, tag, image.media_type, &image.manifest)
            .await
    }

    /// Pushes every image of an index by digest, then the index, tagged `tag`. Returns the
    /// index digest.
    pub async fn push_index(&self, repo: &str, tag: &str, index: &TestIndex) -> Digest {
        for image in &index.images {
            self.push_image(repo, &image.manifest_digest.to_string(), image)
                .await;
        }
        self.push_manifest(repo, tag, index.media_type, &index.manifest)
            .await
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a probe port");
    l.local_addr().expect("probe port address").port()
}

fn config_yaml(root: &std::path::Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n",
        root.display()
    )
}
