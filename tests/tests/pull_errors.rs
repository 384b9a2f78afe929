//! Pulls that fail — corrupt blobs, error statuses, bad manifests, broken downloads — say why
//! in the docker CLI, leave nothing visible behind, and succeed once the registry is healthy.
//! The fake registry's behaviour is switched while the daemon keeps running.

mod fake_registry;

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_tests::Daemon;
use berth_tests::testutil::{Compression, Format, TestImage};
use bytes::Bytes;
use fake_registry::{
    Content, Log, Route, Seen, Server, blob_response, broken_body, docker_within, entries,
    error_json, failure, manifest_response, range_offset, route, rt, unknown,
};

const REPO: &str = "err/app";

/// How the fake answers; switched by the tests at run time.
#[derive(Clone, Debug)]
enum Mode {
    Healthy,
    /// The layer blob is served with these bytes instead of its own.
    LayerBytes(Bytes),
    /// Manifest requests get this status, content type and body.
    ManifestStatus(StatusCode, &'static str, String),
    /// Manifest requests get this body as the manifest; `chunked` leaves out
    /// `Content-Length`.
    ManifestBody {
        media_type: &'static str,
        body: Bytes,
        chunked: bool,
    },
    /// The layer blob's download breaks off after this many bytes of the blob.
    DropLayerAfter(usize),
}

struct Shared {
    content: Content,
    layer: String,
    mode: Mutex<Mode>,
    log: Log,
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let seen = Seen::of(&req);
    s.log.lock().unwrap().push(seen.clone());
    let mode = s.mode.lock().unwrap().clone();
    let r = route(&seen.path);
    match (&r, mode) {
        (Route::Base, _) => axum::Json(serde_json::json!({})).into_response(),
        (Route::Manifest { .. }, Mode::ManifestStatus(status, content_type, body)) => {
            (status, [("content-type", content_type)], body).into_response()
        }
        (
            Route::Manifest { .. },
            Mode::ManifestBody {
                media_type,
                body,
                chunked,
            },
        ) => {
            if chunked {
                let chunks: Vec<Result<Bytes, std::io::Error>> = (0..body.len())
                    .step_by(64 * 1024)
                    .map(|i| Ok(body.slice(i..(i + 64 * 1024).min(body.len()))))
                    .collect();
                let stream = futures::stream::iter(chunks);
                (
                    [("content-type", media_type)],
                    axum::body::Body::from_stream(stream),
                )
                    .into_response()
            } else {
                manifest_response(media_type, body)
            }
        }
        (Route::Blob { digest, .. }, Mode::LayerBytes(bytes)) if *digest == s.layer => {
            blob_response(bytes, req.headers())
        }
        (Route::Blob { digest, .. }, Mode::DropLayerAfter(n)) if *digest == s.layer => {
            let blob = s.content.blob(digest).unwrap();
            let offset = range_offset(req.headers()).unwrap_or(0) as usize;
            let head = blob.slice(offset..n.max(offset).min(blob.len()));
            let status = if offset > 0 {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            let mut resp = (status, broken_body(head)).into_response();
            resp.headers_mut()
                .insert("content-length", (blob.len() - offset).into());
            if offset > 0 {
                let range = format!("bytes {offset}-{}/{}", blob.len() - 1, blob.len());
                resp.headers_mut()
                    .insert("content-range", range.parse().unwrap());
            }
            resp
        }
        (Route::Manifest { repo, reference }, _) => match s.content.manifest(repo, reference) {
            Some((mt, body)) => manifest_response(mt, body),
            None => unknown(&r),
        },
        (Route::Blob { digest, .. }, _) => match s.content.blob(digest) {
            Some(b) => blob_response(b, req.headers()),
            None => unknown(&r),
        },
        (Route::Other, _) => StatusCode::NOT_FOUND.into_response(),
    }
}

struct Fixture {
    // Field order is drop order: the daemon stops before the registry goes away.
    d: Daemon,
    server: Server,
    shared: Arc<Shared>,
    image: TestImage,
    _rt: tokio::runtime::Runtime,
}

impl Fixture {
    /// A daemon and a registry serving `err/app:1`: one gzip layer of ~1 MiB of noise.
    fn start() -> Fixture {
        let rt = rt();
        let image = TestImage::builder(Format::Docker)
            .layer(Compression::Gzip, &[("noise.bin", &noise(1 << 20)[..])])
            .build();
        let mut content = Content::default();
        content.add_image(REPO, "1", &image);
        let shared = Arc::new(Shared {
            content,
            layer: image.layers[0].digest.to_string(),
            mode: Mutex::new(Mode::Healthy),
            log: Log::default(),
        });
        let s = shared.clone();
        let server = Server::start(&rt, move |_| {
            axum::Router::new().fallback(handle).with_state(s)
        });
        Fixture {
            d: Daemon::start(),
            server,
            shared,
            image,
            _rt: rt,
        }
    }

    fn name(&self) -> String {
        format!("{}/{REPO}:1", self.server.host())
    }

    fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    fn layer(&self) -> &berth_tests::testutil::TestLayer {
        &self.image.layers[0]
    }

    /// `docker pull`, which must fail with exit code 1; returns its stderr.
    fn pull_fails(&self) -> String {
        let out = docker_within(&self.d, &["pull", &self.name()]);
        failure(&out, "docker pull")
    }

    /// `docker pull` failing before any progress: the daemon answered with an error status.
    fn pull_refused(&self) -> String {
        let err = self.pull_fails();
        assert!(err.starts_with("Error response from daemon: "), "{err}");
        err
    }

    /// No image, no layer directory, no blob of the layer.
    fn assert_nothing_visible(&self) {
        let d = &self.d;
        assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
        assert_eq!(d.docker_ok(&["images", "-a", "-q"]).trim(), "");
        let layers = entries(&d.data_root().join("layers"));
        assert!(layers.is_empty(), "layer directories left: {layers:?}");
        let blobs = entries(&d.data_root().join("blobs/sha256"));
        assert!(
            !blobs.contains(&self.layer().digest.hex()),
            "the layer blob was stored: {blobs:?}"
        );
        let out = d.docker(&["image", "inspect", &self.name()]);
        assert!(!out.status.success());
    }

    /// Nothing was stored at all (a failure before any blob).
    fn assert_nothing_stored(&self) {
        self.assert_nothing_visible();
        let root = self.d.data_root();
        for dir in ["blobs/sha256", "ingest", "layers"] {
            let left = entries(&root.join(dir));
            assert!(left.is_empty(), "{dir} is not empty: {left:?}");
        }
    }

    /// The pull succeeds now, and the image is whole.
    fn pull_succeeds(&self) {
        self.set(Mode::Healthy);
        let name = self.name();
        let out = self.d.docker_ok(&["pull", &name]);
        assert!(
            out.contains(&format!("Status: Downloaded newer image for {name}")),
            "{out}"
        );
        assert_eq!(
            self.d
                .docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name])
                .trim(),
            self.image.config_digest.to_string()
        );
        self.d.verify_store();
        let left = entries(&self.d.data_root().join("ingest"));
        assert!(left.is_empty(), "partial downloads left: {left:?}");
        let lower = self.d.docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.GraphDriver.Data.LowerDir}}",
            &name,
        ]);
        let data = std::fs::read(std::path::Path::new(lower.trim()).join("noise.bin")).unwrap();
        assert_eq!(data, noise(1 << 20));
    }

    fn ranges(&self) -> Vec<String> {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|s| s.range.clone())
            .collect()
    }
}

/// Deterministic incompressible bytes.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn corrupt_layer_blob_fails_verification_and_a_retry_succeeds() {
    let f = Fixture::start();
    let layer = f.layer().clone();
    // The gzip header's MTIME changed: the blob still decompresses to the very same tar, so
    // only the blob digest can tell.
    let mut same_length = layer.data.clone();
    same_length[4..8].copy_from_slice(&[1, 2, 3, 4]);
    f.set(Mode::LayerBytes(Bytes::from(same_length.clone())));
    let err = f.pull_fails();
    assert!(err.contains(&layer.digest.to_string()), "{err}");
    assert!(
        err.contains("digest mismatch") || err.contains("verification failed"),
        "{err}"
    );
    assert!(err.contains(&digest_of(&same_length)), "{err}");
    f.assert_nothing_visible();
    // Bytes known to be wrong are not kept to resume from.
    let partials = entries(&f.d.data_root().join("ingest"));
    assert!(partials.is_empty(), "corrupt data kept: {partials:?}");

    // Wrong and shorter, ending cleanly: a resumed download would start at the wrong place.
    let short = Bytes::from(same_length[..same_length.len() / 2].to_vec());
    f.set(Mode::LayerBytes(short));
    let err = f.pull_fails();
    assert!(err.contains(&layer.digest.to_string()), "{err}");
    f.assert_nothing_visible();
    let partials = entries(&f.d.data_root().join("ingest"));
    assert!(partials.is_empty(), "corrupt data kept: {partials:?}");

    f.pull_succeeds();
}

/// `sha256:…` of some bytes, as text.
fn digest_of(b: &[u8]) -> String {
    berth_image::Digest::of(b).to_string()
}

#[test]
fn manifest_500_is_reported_with_status_and_message_then_healthy_succeeds() {
    let f = Fixture::start();
    f.set(Mode::ManifestStatus(
        StatusCode::INTERNAL_SERVER_ERROR,
        "application/json",
        error_json("UNKNOWN", "storage backend is down"),
    ));
    let err = f.pull_refused();
    assert!(err.contains("500"), "{err}");
    assert!(err.contains("unknown: storage backend is down"), "{err}");
    assert!(err.contains(&f.server.host()), "{err}");
    f.assert_nothing_stored();
    // Without a spec body, the status line is the message.
    f.set(Mode::ManifestStatus(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/html",
        "<html><body>down for maintenance</body></html>".into(),
    ));
    let err = f.pull_refused();
    assert!(err.contains("503 service unavailable"), "{err}");
    f.assert_nothing_stored();
    f.pull_succeeds();
}

#[test]
fn manifest_403_with_credentials_is_denied_then_healthy_succeeds() {
    let f = Fixture::start();
    let host = f.server.host();
    // Logged in (as far as the CLI knows): the pull carries X-Registry-Auth.
    let cfg = serde_json::json!({"auths": {&host: {"auth": "YWxpY2U6czNjcmV0"}}});
    std::fs::write(
        f.d.dir.path().join("docker-config/config.json"),
        cfg.to_string(),
    )
    .unwrap();
    f.set(Mode::ManifestStatus(
        StatusCode::FORBIDDEN,
        "application/json",
        error_json("DENIED", "requested access to the resource is denied"),
    ));
    let err = f.pull_refused();
    assert!(
        err.contains(&format!(
            "pull access denied for {host}/{REPO}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        )),
        "{err}"
    );
    f.assert_nothing_stored();
    // A bare 403: the registry refuses these credentials.
    f.set(Mode::ManifestStatus(
        StatusCode::FORBIDDEN,
        "text/plain",
        "blocked by policy".into(),
    ));
    let err = f.pull_refused();
    assert!(
        err.contains(&format!(
            "access to {host}/{REPO} denied by registry {host}: blocked by policy"
        )),
        "{err}"
    );
    f.assert_nothing_stored();
    f.pull_succeeds();
}

#[test]
fn malformed_manifest_is_refused_then_healthy_succeeds() {
    let f = Fixture::start();
    let name = f.name();
    let full = String::from_utf8(f.image.manifest.clone()).unwrap();
    let cut = Bytes::from(full[..full.len() / 2].to_string());
    f.set(Mode::ManifestBody {
        media_type: f.image.media_type,
        body: cut,
        chunked: false,
    });
    let err = f.pull_refused();
    assert!(
        err.contains(&format!("invalid manifest for {name}")),
        "{err}"
    );
    assert!(err.contains("EOF while parsing"), "{err}");
    f.assert_nothing_stored();
    // Valid JSON, but no config.
    let v: serde_json::Value = serde_json::from_str(&full).unwrap();
    let mut no_config = v.clone();
    no_config.as_object_mut().unwrap().remove("config");
    f.set(Mode::ManifestBody {
        media_type: f.image.media_type,
        body: Bytes::from(no_config.to_string()),
        chunked: false,
    });
    let err = f.pull_refused();
    assert!(
        err.contains(&format!("invalid manifest for {name}: no config")),
        "{err}"
    );
    f.assert_nothing_stored();
    f.pull_succeeds();
}

#[test]
fn schema1_manifest_is_refused_naming_the_media_type() {
    let f = Fixture::start();
    let schema1 = serde_json::json!({
        "schemaVersion": 1,
        "name": REPO,
        "tag": "1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": f.layer().digest.to_string()}],
        "history": [{"v1Compatibility": "{\"id\":\"x\"}"}],
        "signatures": [],
    });
    f.set(Mode::ManifestBody {
        media_type: "application/vnd.docker.distribution.manifest.v1+prettyjws",
        body: Bytes::from(serde_json::to_vec_pretty(&schema1).unwrap()),
        chunked: false,
    });
    let err = f.pull_refused();
    assert!(
        err.contains(&format!(
            "unsupported media type application/vnd.docker.distribution.manifest.v1+prettyjws for {}",
            f.name()
        )),
        "{err}"
    );
    assert!(err.contains("schema 1 is no longer supported"), "{err}");
    f.assert_nothing_stored();
    f.pull_succeeds();
}

#[test]
fn broken_layer_download_fails_keeps_nothing_visible_and_the_retry_resumes() {
    let f = Fixture::start();
    let layer = f.layer().clone();
    let cut = 400 * 1024;
    f.set(Mode::DropLayerAfter(cut));
    let err = f.pull_fails();
    assert!(err.contains(&layer.digest.to_string()), "{err}");
    assert!(err.contains(&f.server.host()), "{err}");
    f.assert_nothing_visible();
    // What arrived is kept to resume from, and only that.
    let partial =
        f.d.data_root()
            .join(format!("ingest/{}.partial", layer.digest.hex()));
    let kept = std::fs::metadata(&partial)
        .unwrap_or_else(|e| panic!("no partial download at {}: {e}", partial.display()))
        .len();
    assert!(kept > 0 && kept <= cut as u64, "kept {kept} bytes");
    assert_eq!(
        std::fs::read(&partial).unwrap(),
        layer.data[..kept as usize]
    );
    assert!(f.ranges().is_empty(), "{:?}", f.ranges());

    f.pull_succeeds();
    assert_eq!(
        f.ranges(),
        vec![format!("bytes={kept}-")],
        "the download did not resume where it broke off"
    );
}

#[test]
fn oversized_manifest_is_refused() {
    let f = Fixture::start();
    let name = f.name();
    let mut v: serde_json::Value = serde_json::from_slice(&f.image.manifest).unwrap();
    v["annotations"] = serde_json::json!({"pad": "x".repeat(4 * 1024 * 1024)});
    let huge = Bytes::from(v.to_string());
    for chunked in [false, true] {
        f.set(Mode::ManifestBody {
            media_type: f.image.media_type,
            body: huge.clone(),
            chunked,
        });
        let err = f.pull_refused();
        assert!(
            err.contains(&format!(
                "manifest for {name} is larger than the limit of 4194304 bytes"
            )),
            "chunked: {chunked}: {err}"
        );
        f.assert_nothing_stored();
    }
    f.pull_succeeds();
}
