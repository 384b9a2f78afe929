//! Pushes through berthd with the docker CLI and ours, into a real registry (Debian's
//! docker-registry) behind a small recording proxy, and into fakes that refuse.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_tests::testutil::{Compression, Format, TestImage, TestRegistry};
use berth_tests::{Daemon, busybox_rootfs_tar};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An HTTP server on 127.0.0.1 run by the test's runtime; stops when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    fn start(rt: &tokio::runtime::Runtime, app: axum::Router) -> Server {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Server {
            addr,
            stop: Some(stop),
        }
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// `METHOD /path?query` of every request the proxy forwarded.
type Log = Arc<Mutex<Vec<String>>>;

struct ProxyState {
    upstream: SocketAddr,
    log: Log,
}

/// A proxy in front of a registry that records requests. Each request goes upstream on its
/// own HTTP/1.0 connection with the client's `Host`, so the registry's `Location`s point back
/// at the proxy.
struct Proxy {
    server: Server,
    log: Log,
}

impl Proxy {
    fn start(rt: &tokio::runtime::Runtime, upstream: SocketAddr) -> Proxy {
        let log = Log::default();
        let state = Arc::new(ProxyState {
            upstream,
            log: log.clone(),
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        Proxy {
            server: Server::start(rt, app),
            log,
        }
    }

    fn host(&self) -> String {
        self.server.host()
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

async fn forward(State(s): State<Arc<ProxyState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    s.log
        .lock()
        .unwrap()
        .push(format!("{} {target}", parts.method));
    let mut head = format!("{} {target} HTTP/1.0\r\n", parts.method);
    for (k, v) in &parts.headers {
        if matches!(
            k.as_str(),
            "connection" | "transfer-encoding" | "content-length" | "keep-alive"
        ) {
            continue;
        }
        head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or("")));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut up = tokio::net::TcpStream::connect(s.upstream).await.unwrap();
    up.write_all(head.as_bytes()).await.unwrap();
    up.write_all(&body).await.unwrap();
    let mut raw = Vec::new();
    up.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let mut resp = Response::builder().status(status);
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "transfer-encoding" {
            chunked = v.eq_ignore_ascii_case("chunked");
            continue;
        }
        let keep_length = parts.method == axum::http::Method::HEAD;
        if k == "connection" || (k == "content-length" && !keep_length) {
            continue;
        }
        resp = resp.header(k, HeaderValue::from_str(v).unwrap());
    }
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body);
    }
    resp.body(Body::from(body)).unwrap()
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
    out
}

/// A registry behind a recording proxy; references use the proxy's address.
struct Fixture {
    rt: tokio::runtime::Runtime,
    registry: TestRegistry,
    proxy: Proxy,
}

impl Fixture {
    fn start() -> Fixture {
        let rt = rt();
        let registry = rt.block_on(TestRegistry::start());
        let proxy = Proxy::start(&rt, registry.addr());
        Fixture {
            rt,
            registry,
            proxy,
        }
    }

    /// `127.0.0.1:PROXY/name`.
    fn name(&self, name: &str) -> String {
        format!("{}/{name}", self.proxy.host())
    }

    /// Requests whose `METHOD /path` starts with `prefix`.
    fn seen(&self, prefix: &str) -> Vec<String> {
        self.proxy
            .requests()
            .into_iter()
            .filter(|r| r.starts_with(prefix))
            .collect()
    }
}

fn import(d: &Daemon, tar: &[u8], name: &str) -> String {
    let path = d.dir.path().join(format!("rootfs-{}.tar", rand_suffix()));
    std::fs::write(&path, tar).unwrap();
    let id = d.docker_ok(&["import", "-c", "CMD [\"sh\"]", path.to_str().unwrap(), name]);
    std::fs::remove_file(&path).unwrap();
    id.trim().to_string()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The digest and size of docker's `TAG: digest: sha256:… size: N` line for `tag`.
fn pushed_digest(out: &str, tag: &str) -> (String, u64) {
    let prefix = format!("{tag}: digest: ");
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}…` line in:\n{out}"));
    let rest = &line[prefix.len()..];
    let (digest, size) = rest.split_once(" size: ").unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "bad digest line {line:?}"
    );
    (digest.to_string(), size.parse().unwrap())
}

fn image_id(d: &Daemon, name: &str) -> String {
    d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

fn repo_digests(d: &Daemon, name: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["image", "inspect", name])).unwrap();
    v[0]["RepoDigests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn skopeo_inspect(reference: &str) -> serde_json::Value {
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .expect("run skopeo (install skopeo)");
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pushes_an_imported_image_then_pulls_it_back_elsewhere() {
    let f = Fixture::start();
    let d = Daemon::start();
    let app = f.name("team/app:1");
    let id = import(&d, &busybox_rootfs_tar(), &app);

    let out = d.docker_ok(&["push", &app]);
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}]\n",
            f.name("team/app")
        )),
        "{out}"
    );
    assert!(out.contains(": Preparing\n"), "{out}");
    assert!(out.contains(": Pushed\n"), "{out}");
    let (digest, size) = pushed_digest(&out, "1");
    assert!(!f.seen("PUT /v2/team/app/blobs/uploads/").is_empty());
    assert!(
        f.seen("PATCH ").is_empty(),
        "a small layer goes in one PUT: {:?}",
        f.proxy.requests()
    );

    // What the registry holds is what docker printed.
    let inspected = skopeo_inspect(&app);
    assert_eq!(inspected["Digest"], digest, "{inspected}");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1);
    let raw = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{app}"),
        ])
        .output()
        .unwrap();
    assert_eq!(raw.stdout.len() as u64, size);
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(manifest["config"]["digest"], id);

    // The repo digest is recorded, as docker does.
    assert!(
        repo_digests(&d, &app).contains(&format!("{}@{digest}", f.name("team/app"))),
        "{:?}",
        repo_digests(&d, &app)
    );
    let images = d.docker_ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert!(images.contains(&digest), "{images}");

    // Again: nothing to upload, same manifest.
    f.proxy.clear();
    let again = d.docker_ok(&["push", &app]);
    assert!(again.contains(": Layer already exists\n"), "{again}");
    assert_eq!(pushed_digest(&again, "1"), (digest.clone(), size));
    assert!(f.seen("PATCH ").is_empty() && f.seen("PUT /v2/team/app/blobs").is_empty());

    // Another repository on the same registry: the layer is mounted, not uploaded.
    f.proxy.clear();
    let other = f.name("team/other:7");
    d.docker_ok(&["tag", &app, &other]);
    let out = d.docker_ok(&["push", &other]);
    assert!(out.contains(": Mounted from team/app\n"), "{out}");
    assert_eq!(pushed_digest(&out, "7").0, digest);
    let mounts = f.seen("POST /v2/team/other/blobs/uploads/?mount=sha256%3A");
    assert!(
        mounts.iter().any(|m| m.ends_with("&from=team%2Fapp")),
        "{:?}",
        f.proxy.requests()
    );
    assert!(f.seen("PUT /v2/team/other/blobs/uploads/").len() <= 1); // the config only

    // --all-tags pushes every tag of the repository.
    d.docker_ok(&["tag", &app, &f.name("team/app:2")]);
    let all = d.docker_ok(&["push", "--all-tags", &f.name("team/app")]);
    assert_eq!(pushed_digest(&all, "1").0, digest, "{all}");
    assert_eq!(pushed_digest(&all, "2").0, digest, "{all}");
    assert_eq!(
        all.matches("The push refers to repository").count(),
        1,
        "{all}"
    );

    // Pulled into a fresh daemon, it is the same image.
    let fresh = Daemon::start();
    let pulled = fresh.docker_ok(&["pull", &app]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert_eq!(image_id(&fresh, &app), id);
    fresh.verify_store();

    // The store stays sound: the uncompressed blob was replaced by the gzip one, and save
    // still writes the layer.
    d.verify_store();
    let saved = d.dir.path().join("saved.tar");
    d.docker_ok(&["save", "-o", saved.to_str().unwrap(), &app]);
    let loaded = Daemon::start();
    loaded.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(image_id(&loaded, &app), id);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let events = d.docker_ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        &now.to_string(),
        "--filter",
        "event=push",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert!(events.contains(&format!("push {app}")), "{events}");
}

#[test]
fn push_of_a_pulled_image_keeps_its_manifest_and_mounts_its_layers() {
    let f = Fixture::start();
    let d = Daemon::start();
    for (format, repo) in [(Format::Docker, "lib/docker"), (Format::Oci, "lib/oci")] {
        // skopeo refuses zstd layers in schema 2 manifests (docker writes them there).
        let second = if format == Format::Oci {
            Compression::Zstd
        } else {
            Compression::Gzip
        };
        // Distinct layers: a layer pulled before keeps the blob it first came with, and an
        // image pulled later with another blob for it gets a new manifest.
        let image = TestImage::builder(format)
            .layer(
                Compression::Gzip,
                &[("etc/", b""), ("etc/motd", repo.as_bytes())],
            )
            .layer(second, &[("second.txt", b"second layer\n")])
            .layer(Compression::None, &[("plain.txt", b"uncompressed\n")])
            .build();
        let original = f.rt.block_on(f.registry.push_image(repo, "v1", &image));
        let source = f.name(&format!("{repo}:v1"));
        d.docker_ok(&["pull", &source]);
        let copy = f.name(&format!("copy/{repo}:v2"));
        d.docker_ok(&["tag", &source, &copy]);
        f.proxy.clear();
        let out = d.docker_ok(&["push", &copy]);
        assert_eq!(
            pushed_digest(&out, "v2"),
            (original.to_string(), image.manifest.len() as u64),
            "{out}"
        );
        assert_eq!(
            out.matches(&format!(": Mounted from {repo}\n")).count(),
            3,
            "{out}"
        );
        assert!(f.seen("PATCH ").is_empty());
        assert_eq!(
            skopeo_inspect(&copy)["Digest"],
            original.to_string(),
            "{repo}"
        );
        // Pushing back where it came from changes nothing.
        let out = d.docker_ok(&["push", &source]);
        assert_eq!(out.matches(": Layer already exists\n").count(), 3, "{out}");
        assert_eq!(pushed_digest(&out, "v1").0, original.to_string());
    }
}

/// Deterministic bytes that do not compress.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(n);
    out
}

#[test]
fn a_large_layer_is_uploaded_in_chunks() {
    let f = Fixture::start();
    let d = Daemon::start();
    let big = noise(20 << 20, 0x9e37_79b9_7f4a_7c15);
    let tar = berth_tests::testutil::tar_of(&[("big.bin", big.as_slice())]);
    let app = f.name("team/big:1");
    let id = import(&d, &tar, &app);
    let out = d.docker_ok(&["push", &app]);
    assert!(out.contains(": Pushed\n"), "{out}");
    let (digest, _) = pushed_digest(&out, "1");
    let patches = f.seen("PATCH /v2/team/big/blobs/uploads/");
    assert!(
        patches.len() >= 3,
        "20 MiB in 8 MiB chunks: {:?}",
        f.proxy.requests()
    );
    let puts = f.seen("PUT /v2/team/big/blobs/uploads/");
    assert!(
        puts.iter().all(|p| p.contains("digest=sha256%3A")),
        "{puts:?}"
    );
    assert_eq!(skopeo_inspect(&app)["Digest"], digest);
    let fresh = Daemon::start();
    fresh.docker_ok(&["pull", &app]);
    assert_eq!(image_id(&fresh, &app), id);
    fresh.verify_store();
}

/// A registry that refuses every push: 401 with a Basic challenge, or 403 `DENIED`.
fn refusing_registry(rt: &tokio::runtime::Runtime, status: StatusCode) -> Server {
    let app = axum::Router::new().fallback(move |req: Request| async move {
        if req.uri().path() == "/v2/" {
            return axum::Json(serde_json::json!({})).into_response();
        }
        if req.method() == axum::http::Method::HEAD {
            return StatusCode::NOT_FOUND.into_response();
        }
        if status == StatusCode::UNAUTHORIZED {
            (
                status,
                [
                    ("www-authenticate", r#"Basic realm="fake""#),
                    ("content-type", "application/json"),
                ],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
                .into_response()
        } else {
            (
                status,
                [("content-type", "application/json")],
                r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
            )
                .into_response()
        }
    });
    Server::start(rt, app)
}

#[test]
fn refused_pushes_fail_with_dockers_messages() {
    let rt = rt();
    let d = Daemon::start();
    for (status, message) in [
        (
            StatusCode::UNAUTHORIZED,
            "unauthorized: authentication required",
        ),
        (
            StatusCode::FORBIDDEN,
            "denied: requested access to the resource is denied",
        ),
    ] {
        let server = refusing_registry(&rt, status);
        let name = format!("{}/team/app:1", server.host());
        import(&d, &busybox_rootfs_tar(), &name);
        for cli in ["docker", "berth"] {
            let out = if cli == "docker" {
                d.docker(&["push", &name])
            } else {
                d.berth(&["push", &name])
            };
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{cli}: {stderr}");
            assert_eq!(stderr.trim(), message, "{cli} {status}");
        }
        assert!(
            repo_digests(&d, &name).is_empty(),
            "a failed push records no digest"
        );
    }
    // Unknown images are refused before anything is streamed, with docker's text.
    let (status, _, body) = d.request("POST", "/images/127.0.0.1:1/team/nope/push?tag=", None);
    assert_eq!(status, 404);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["message"],
        "An image does not exist locally with the tag: 127.0.0.1:1/team/nope"
    );
    for cli in ["docker", "berth"] {
        let out = if cli == "docker" {
            d.docker(&["push", "127.0.0.1:1/team/nope:1"])
        } else {
            d.berth(&["push", "127.0.0.1:1/team/nope:1"])
        };
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            "Error response from daemon: An image does not exist locally with the tag: 127.0.0.1:1/team/nope",
            "{cli}"
        );
    }
}

fn normalise(out: &str, host: &str) -> String {
    out.replace(host, "REGISTRY")
}

#[test]
fn berth_push_prints_what_docker_push_prints() {
    let rt = rt();
    let d = Daemon::start();
    let a = rt.block_on(TestRegistry::start());
    let b = rt.block_on(TestRegistry::start());
    let tar = busybox_rootfs_tar();
    let id = import(&d, &tar, "local/app:latest");
    for r in [&a, &b] {
        d.docker_ok(&["tag", &id, &format!("{}/team/app", r.host())]);
    }
    // First pushes (nothing in either registry), then second ones (everything there).
    for _ in 0..2 {
        let docker = d.docker_ok(&["push", &format!("{}/team/app", a.host())]);
        let berth = d.berth_ok(&["push", &format!("{}/team/app", b.host())]);
        assert!(
            docker.starts_with("Using default tag: latest\n"),
            "{docker}"
        );
        assert_eq!(
            normalise(&berth, &b.host()),
            normalise(&docker, &a.host()),
            "berth:\n{berth}\ndocker:\n{docker}"
        );
    }
    let quiet = d.berth_ok(&["push", "-q", &format!("{}/team/app", b.host())]);
    assert_eq!(quiet, format!("{}/team/app:latest\n", b.host()));
    let docker_quiet = d.docker_ok(&["push", "-q", &format!("{}/team/app", a.host())]);
    assert_eq!(
        normalise(&quiet, &b.host()),
        normalise(&docker_quiet, &a.host())
    );
    let out = d.berth(&["push", "-a", &format!("{}/team/app:latest", b.host())]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "tag can't be used with --all-tags/-a"
    );
}
