//! Pulls through berthd with the docker CLI, from registries the tests run on 127.0.0.1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_distribution::Platform;
use berth_tests::Daemon;
use berth_tests::testutil::{Compression, Format, TestImage, TestIndex, TestRegistry};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn three_layer_image(format: Format) -> TestImage {
    let tag: &[u8] = if format == Format::Oci {
        b"oci"
    } else {
        b"docker"
    };
    TestImage::builder(format)
        .layer(
            Compression::Gzip,
            &[
                ("etc/", b""),
                ("etc/motd", b"gzip layer\n"),
                ("format", tag),
            ],
        )
        .layer(
            Compression::Zstd,
            &[("usr/", b""), ("usr/zstd.txt", b"zstd layer\n")],
        )
        .layer(Compression::None, &[("plain.txt", b"uncompressed layer\n")])
        .container_config(serde_json::json!({"Cmd": ["/bin/sh"], "Env": ["A=1"]}))
        .build()
}

fn lower_dirs(d: &Daemon, name: &str) -> Vec<String> {
    let lower = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.GraphDriver.Data.LowerDir}}",
        name,
    ]);
    lower.trim().split(':').map(str::to_string).collect()
}

#[test]
fn pulls_schema2_and_oci_images_with_every_compression() {
    let rt = rt();
    let registry = rt.block_on(TestRegistry::start());
    let d = Daemon::start();
    for (format, repo) in [(Format::Oci, "team/oci"), (Format::Docker, "team/docker")] {
        let image = three_layer_image(format);
        let digest = rt.block_on(registry.push_image(repo, "v1", &image));
        let name = format!("{}/{repo}:v1", registry.host());
        let out = d.docker_ok(&["pull", &name]);
        assert_eq!(out.matches("Pull complete").count(), 3, "{out}");
        assert!(out.contains(&format!("Digest: {digest}")), "{out}");
        assert!(
            out.contains(&format!("Status: Downloaded newer image for {name}")),
            "{out}"
        );
        let inspect: serde_json::Value =
            serde_json::from_str(&d.docker_ok(&["image", "inspect", &name])).unwrap();
        assert_eq!(inspect[0]["Id"], image.config_digest.to_string());
        assert_eq!(
            inspect[0]["RepoDigests"][0],
            format!("{}/{repo}@{digest}", registry.host())
        );
        assert_eq!(inspect[0]["Config"]["Env"][0], "A=1");
        let lowers = lower_dirs(&d, &name);
        assert_eq!(lowers.len(), 3);
        let files: Vec<String> = lowers
            .iter()
            .flat_map(|l| walk(std::path::Path::new(l)))
            .collect();
        for f in ["etc/motd", "usr/zstd.txt", "plain.txt"] {
            assert!(files.iter().any(|x| x == f), "{f} not unpacked: {files:?}");
        }
        let again = d.docker_ok(&["pull", &name]);
        assert!(
            again.contains(&format!("Status: Image is up to date for {name}")),
            "{again}"
        );
        // By digest, as docker: the image is already there.
        let by_digest = format!("{}/{repo}@{digest}", registry.host());
        d.docker_ok(&["pull", &by_digest]);
        assert_eq!(
            d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &by_digest])
                .trim(),
            image.config_digest.to_string()
        );
    }
    d.verify_store();
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}

#[test]
fn layers_are_shared_between_images() {
    let rt = rt();
    let registry = rt.block_on(TestRegistry::start());
    let d = Daemon::start();
    let base = TestImage::builder(Format::Oci)
        .layer(Compression::Gzip, &[("base.txt", b"base")])
        .build();
    let child = TestImage::builder(Format::Oci)
        .raw_layer(
            Compression::Gzip,
            berth_tests::testutil::tar_of(&[("base.txt", b"base")]),
        )
        .layer(Compression::Gzip, &[("child.txt", b"child")])
        .build();
    rt.block_on(registry.push_image("lib/base", "1", &base));
    rt.block_on(registry.push_image("lib/child", "1", &child));
    d.docker_ok(&["pull", &format!("{}/lib/base:1", registry.host())]);
    let out = d.docker_ok(&["pull", &format!("{}/lib/child:1", registry.host())]);
    assert!(out.contains("Already exists"), "{out}");
    assert_eq!(out.matches("Pull complete").count(), 1, "{out}");
    assert_eq!(
        std::fs::read_dir(d.data_root().join("layers"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn multi_arch_index_honours_platform_and_variant() {
    let rt = rt();
    let registry = rt.block_on(TestRegistry::start());
    let d = Daemon::start();
    let arch = |p: Platform, file: &'static str| {
        TestImage::builder(Format::Oci)
            .platform(p)
            .layer(Compression::Gzip, &[(file, b"x")])
            .build()
    };
    let index = TestIndex::new(
        Format::Oci,
        vec![
            arch(Platform::new("linux", "amd64", None), "amd64"),
            arch(Platform::new("linux", "arm64", Some("v8")), "arm64"),
            arch(Platform::new("linux", "arm", Some("v7")), "armv7"),
            arch(Platform::new("linux", "arm", Some("v6")), "armv6"),
        ],
    );
    let index_digest = rt.block_on(registry.push_index("multi/app", "1", &index));
    let name = format!("{}/multi/app:1", registry.host());
    let out = d.docker_ok(&["pull", "--platform", "linux/arm/v7", &name]);
    assert!(out.contains(&format!("Digest: {index_digest}")), "{out}");
    let fmt = "{{.Architecture}}/{{.Variant}}";
    assert_eq!(
        d.docker_ok(&["image", "inspect", "--format", fmt, &name])
            .trim(),
        "arm/v7"
    );
    d.docker_ok(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(
        d.docker_ok(&["image", "inspect", "--format", fmt, &name])
            .trim(),
        "arm64/v8"
    );
    let out = d.docker(&["pull", "--platform", "linux/s390x", &name]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
}

#[test]
fn pull_errors_are_clear_and_leave_nothing_behind() {
    let rt = rt();
    let registry = rt.block_on(TestRegistry::start());
    let d = Daemon::start();
    let out = d.docker(&["pull", &format!("{}/nope/missing:1", registry.host())]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error response from daemon") && err.contains("not found"),
        "{err}"
    );
    let image = three_layer_image(Format::Oci);
    rt.block_on(registry.push_image("some/app", "1", &image));
    let out = d.docker(&["pull", &format!("{}/some/app:2", registry.host())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("manifest unknown"), "{err}");
    // Nothing listening: the host is named in the error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = d.docker(&["pull", &format!("127.0.0.1:{port}/a/b:1")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    assert_eq!(
        std::fs::read_dir(d.data_root().join("layers"))
            .unwrap()
            .count(),
        0
    );
}

/// A registry serving one image from memory, with blob downloads throttled and Range
/// requests recorded, to interrupt a pull half-way.
struct SlowRegistry {
    addr: std::net::SocketAddr,
    range_offsets: Arc<Mutex<Vec<u64>>>,
    sent: Arc<AtomicU64>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

fn start_slow_registry(
    rt: &tokio::runtime::Runtime,
    image: &TestImage,
    bytes_per_tick: usize,
) -> SlowRegistry {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    #[derive(Clone)]
    struct S {
        blobs: Arc<HashMap<String, bytes::Bytes>>,
        manifest: bytes::Bytes,
        media_type: &'static str,
        ranges: Arc<Mutex<Vec<u64>>>,
        sent: Arc<AtomicU64>,
        tick: usize,
    }
    async fn handle(
        State(s): State<S>,
        Path(rest): Path<String>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        if rest.contains("/manifests/") {
            return ([("content-type", s.media_type)], s.manifest.clone()).into_response();
        }
        let Some(digest) = rest.rsplit('/').next() else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let Some(blob) = s.blobs.get(digest).cloned() else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let offset = headers
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| {
                v.trim_end_matches('-')
                    .split('-')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0);
        if headers.contains_key("range") {
            s.ranges.lock().unwrap().push(offset);
        }
        let body = blob.slice(offset as usize..);
        let total = blob.len();
        let tick = s.tick;
        let sent = s.sent.clone();
        let stream = futures::stream::unfold(body, move |rest| {
            let sent = sent.clone();
            async move {
                if rest.is_empty() {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                let n = tick.min(rest.len());
                sent.fetch_add(n as u64, Ordering::Relaxed);
                Some((Ok::<_, std::io::Error>(rest.slice(..n)), rest.slice(n..)))
            }
        });
        let status = if offset > 0 {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        let mut resp = (status, axum::body::Body::from_stream(stream)).into_response();
        resp.headers_mut()
            .insert("content-length", (total - offset as usize).into());
        if offset > 0 {
            resp.headers_mut().insert(
                "content-range",
                format!("bytes {offset}-{}/{total}", total - 1)
                    .parse()
                    .unwrap(),
            );
        }
        resp
    }
    let mut blobs = HashMap::new();
    for (d, data) in image.blobs() {
        blobs.insert(d.to_string(), bytes::Bytes::copy_from_slice(data));
    }
    let state = S {
        blobs: Arc::new(blobs),
        manifest: bytes::Bytes::from(image.manifest.clone()),
        media_type: image.media_type,
        ranges: Arc::default(),
        sent: Arc::default(),
        tick: bytes_per_tick,
    };
    let (ranges, sent) = (state.ranges.clone(), state.sent.clone());
    let app = axum::Router::new()
        .route("/v2/", axum::routing::get(|| async { "{}" }))
        .route("/v2/{*rest}", axum::routing::get(handle).head(handle))
        .with_state(state);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    SlowRegistry {
        addr,
        range_offsets: ranges,
        sent,
        _shutdown: tx,
    }
}

#[test]
fn sigkill_mid_pull_then_restart_resumes_and_verifies() {
    let rt = rt();
    // ~2 MB of incompressible data: at 32 KB per 10 ms the download takes ~0.6 s.
    let mut noise = vec![0u8; 2 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let image = TestImage::builder(Format::Docker)
        .layer(Compression::Gzip, &[("noise.bin", &noise[..])])
        .layer(Compression::Gzip, &[("small.txt", b"small")])
        .build();
    let reg = start_slow_registry(&rt, &image, 32 * 1024);
    let name = format!("127.0.0.1:{}/slow/app:1", reg.addr.port());
    let mut d = Daemon::start();
    let mut pull = d
        .docker_cmd()
        .args(["pull", &name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill the daemon once part of the big layer has arrived.
    let deadline = Instant::now() + Duration::from_secs(30);
    while reg.sent.load(Ordering::Relaxed) < 600 * 1024 {
        assert!(
            Instant::now() < deadline,
            "download never started: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    d.kill();
    let _ = pull.wait();
    // Nothing half-written is visible; the partial download is kept for resuming.
    let partials: Vec<u64> = std::fs::read_dir(d.data_root().join("ingest"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert!(
        partials.iter().any(|&n| n > 0),
        "no partial ingest kept: {partials:?}"
    );
    d.restart();
    assert_eq!(
        d.docker_ok(&["images", "-q"]).trim(),
        "",
        "a half-pulled image became visible"
    );
    let out = d.docker_ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    let offsets = reg.range_offsets.lock().unwrap().clone();
    assert!(
        offsets.iter().any(|&o| o > 0),
        "the download was not resumed with a Range request: {offsets:?}"
    );
    d.verify_store();
    let lowers = lower_dirs(&d, &name);
    let big =
        std::fs::read(std::path::Path::new(&lowers[lowers.len() - 1]).join("noise.bin")).unwrap();
    assert_eq!(big, noise);
}

#[test]
fn all_tags_pulls_every_tag() {
    let rt = rt();
    let registry = rt.block_on(TestRegistry::start());
    let d = Daemon::start();
    for (tag, body) in [("1.0", &b"one"[..]), ("2.0", b"two"), ("latest", b"three")] {
        let image = TestImage::builder(Format::Oci)
            .layer(Compression::Gzip, &[("v", body)])
            .build();
        rt.block_on(registry.push_image("team/multi", tag, &image));
    }
    let name = format!("{}/team/multi", registry.host());
    let out = d.docker_ok(&["pull", "--all-tags", &name]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    let tags = d.docker_ok(&["images", "--format", "{{.Tag}}", &name]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(
        tags,
        ["1.0", "2.0", "latest"],
        "{}\n{out}",
        d.docker_ok(&["images"])
    );
}
