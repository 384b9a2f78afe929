//! Real clients against the real binary (`target/debug/berth-registry serve`): skopeo
//! pushes, inspects, lists, copies back and deletes; HTTPS with a generated certificate;
//! `berth-registry gc`. Needs `skopeo` and `openssl` on PATH and the binary built
//! (`cargo build -p berth-registry`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_distribution::Platform;
use berth_distribution::testutil::{Compression, Format, TestImage, TestIndex, tar_of};
use serde_json::{Value, json};

/// The `berth-registry` binary next to this test's `deps/` directory.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let p = dir.join("berth-registry");
    assert!(
        p.exists(),
        "{} is not built: run `cargo build -p berth-registry` first",
        p.display()
    );
    p
}

/// `berth-registry serve` on 127.0.0.1 with a free port, killed (by PID) on drop.
struct Served {
    child: Child,
    addr: String,
    root: PathBuf,
    dir: tempfile::TempDir,
}

impl Served {
    /// Starts the binary with `config` (TOML) plus `args`; waits until it listens.
    fn start(config: &str, args: &[&str]) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        let config_path = dir.path().join("registry.toml");
        std::fs::write(&config_path, config).expect("writing the config");
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args(["--addr", "127.0.0.1:0", "--root"])
            .arg(&root)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("starting berth-registry");
        let mut served = Served {
            child,
            addr: String::new(),
            root,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(at) = log.find("listening on ") {
                let rest = &log[at..];
                let rest = &rest[rest.find("://").expect("scheme") + 3..];
                let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'));
                served.addr = rest[..end.unwrap_or(rest.len())].to_string();
                return served;
            }
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("berth-registry exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "berth-registry did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn image(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const OPEN: &str = "[auth]\nmode = \"none\"\n";

/// Runs skopeo with a private HOME (its blob-info cache) and returns stdout; panics with
/// stderr on failure.
async fn skopeo(home: &Path, args: &[&str]) -> String {
    let out = skopeo_output(home, args).await;
    assert!(
        out.status.success(),
        "skopeo {}: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

async fn skopeo_output(home: &Path, args: &[&str]) -> std::process::Output {
    let run = tokio::process::Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("skopeo timed out")
        .expect("running skopeo (is it installed?)")
}

/// A `docker save`-style archive of `img` (uncompressed layers), tagged `tag`.
fn docker_archive(img: &TestImage, tag: &str) -> Vec<u8> {
    let config_name = format!("{}.json", img.config_digest.hex());
    let layer_names: Vec<String> = img
        .layers
        .iter()
        .map(|l| format!("{}/layer.tar", l.digest.hex()))
        .collect();
    let manifest = serde_json::to_vec(&json!([
        {"Config": config_name, "RepoTags": [tag], "Layers": layer_names}
    ]))
    .unwrap();
    let mut entries: Vec<(&str, &[u8])> = vec![("manifest.json", &manifest)];
    entries.push((&config_name, &img.config));
    for (name, layer) in layer_names.iter().zip(&img.layers) {
        entries.push((name, &layer.data));
    }
    tar_of(&entries)
}

/// An OCI image layout holding `index` as `ref_name`.
fn oci_layout(dir: &Path, index: &TestIndex, ref_name: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let top = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": index.media_type, "digest": index.digest, "size": index.manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": ref_name},
    }]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(blobs.join(index.digest.hex()), &index.manifest).unwrap();
    for img in &index.images {
        std::fs::write(blobs.join(img.manifest_digest.hex()), &img.manifest).unwrap();
        for (d, data) in img.blobs() {
            std::fs::write(blobs.join(d.hex()), data).unwrap();
        }
    }
}

/// Docker images get uncompressed layers (as `docker save` writes them), OCI ones gzip
/// (so skopeo has nothing to convert and copies manifests byte for byte).
fn image_with(files: &[(&str, &[u8])], format: Format, arch: &str) -> TestImage {
    let c = match format {
        Format::Docker => Compression::None,
        Format::Oci => Compression::Gzip,
    };
    TestImage::builder(format)
        .platform(Platform::new("linux", arch, None))
        .layer(c, files)
        .layer(c, &[("etc/hostname", arch.as_bytes())])
        .build()
}

/// A CA and a certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl (is it installed?)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "1", "-subj", "/CN=berth test CA"],
        ]
        .concat()
        .iter()
        .copied()
        .chain(["-keyout", "ca.key", "-out", "ca.pem"])
        .collect::<Vec<_>>(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        &[
            "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        ]
        .into_iter()
        .chain([
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ])
        .collect::<Vec<_>>(),
    );
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

fn diff_ids(config: &[u8]) -> Value {
    serde_json::from_slice::<Value>(config).unwrap()["rootfs"]["diff_ids"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trip_through_the_binary_then_gc() {
    let server = Served::start(OPEN, &[]);
    let home = server.dir.path().join("home");
    let work = server.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let img = image_with(
        &[("hello.txt", b"hello from berth")],
        Format::Docker,
        "amd64",
    );
    let archive = work.join("app.tar");
    std::fs::write(&archive, docker_archive(&img, "acme/app:1")).unwrap();
    let src = format!("docker-archive:{}", archive.display());

    skopeo(
        &home,
        &[
            "copy",
            "--dest-tls-verify=false",
            &src,
            &server.image("acme/app:1"),
        ],
    )
    .await;
    // Registry to registry, within the server: a second repository and a second tag.
    let (from, to) = (server.image("acme/app:1"), server.image("acme/copy:1"));
    skopeo(
        &home,
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &from,
            &to,
        ],
    )
    .await;
    let to2 = server.image("acme/app:2");
    skopeo(
        &home,
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &from,
            &to2,
        ],
    )
    .await;

    let inspect = skopeo(&home, &["inspect", "--tls-verify=false", &from]).await;
    let inspect: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    let tags = skopeo(
        &home,
        &["list-tags", "--tls-verify=false", &server.image("acme/app")],
    )
    .await;
    let tags: Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], json!(["1", "2"]));

    // Back out to a directory: same image content.
    let out = work.join("pulled");
    let dest = format!("dir:{}", out.display());
    skopeo(
        &home,
        &[
            "copy",
            "--src-tls-verify=false",
            &server.image("acme/copy:1"),
            &dest,
        ],
    )
    .await;
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let config_hex = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let config = std::fs::read(out.join(config_hex)).unwrap();
    assert_eq!(diff_ids(&config), diff_ids(&img.config));

    // A second image, deleted again: gc finds exactly its blobs.
    let tmp = image_with(&[("tmp.txt", b"temporary")], Format::Docker, "arm64");
    let archive = work.join("tmp.tar");
    std::fs::write(&archive, docker_archive(&tmp, "acme/tmp:1")).unwrap();
    let src = format!("docker-archive:{}", archive.display());
    skopeo(
        &home,
        &[
            "copy",
            "--dest-tls-verify=false",
            &src,
            &server.image("acme/tmp:1"),
        ],
    )
    .await;
    skopeo(
        &home,
        &["delete", "--tls-verify=false", &server.image("acme/tmp:1")],
    )
    .await;
    let tmp_ref = server.image("acme/tmp:1");
    let gone = skopeo_output(&home, &["inspect", "--tls-verify=false", &tmp_ref]).await;
    assert!(
        !gone.status.success(),
        "acme/tmp:1 still there after skopeo delete"
    );

    let gc = |extra: &[&str]| {
        let mut cmd = Command::new(binary());
        cmd.args(["gc", "--grace", "0s", "--root"])
            .arg(&server.root)
            .args(extra);
        cmd.output().expect("running berth-registry gc")
    };
    let dry = gc(&["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let dry = String::from_utf8(dry.stdout).unwrap();
    // Its manifest, config and two layers; nothing of acme/app or acme/copy.
    assert_eq!(
        dry.lines()
            .filter(|l| l.starts_with("would delete sha256:"))
            .count(),
        4,
        "{dry}"
    );
    let real = gc(&[]);
    let real = String::from_utf8(real.stdout).unwrap();
    assert_eq!(
        real.lines()
            .filter(|l| l.starts_with("deleted sha256:"))
            .count(),
        4,
        "{real}"
    );
    let again = String::from_utf8(gc(&[]).stdout).unwrap();
    assert!(!again.contains("deleted sha256:"), "{again}");

    // What is still tagged still pulls.
    let dest = format!("dir:{}", work.join("after-gc").display());
    skopeo(
        &home,
        &[
            "copy",
            "--src-tls-verify=false",
            &server.image("acme/app:2"),
            &dest,
        ],
    )
    .await;
    skopeo(
        &home,
        &["delete", "--tls-verify=false", &server.image("acme/app:2")],
    )
    .await;
    let tags = skopeo(
        &home,
        &["list-tags", "--tls-verify=false", &server.image("acme/app")],
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&tags).unwrap()["Tags"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_an_oci_index_to_object_storage() {
    let config = format!("{OPEN}[storage]\ndriver = \"memory\"\n");
    let server = Served::start(&config, &[]);
    let home = server.dir.path().join("home");
    let layout = server.dir.path().join("layout");
    let index = TestIndex::new(
        Format::Oci,
        vec![
            image_with(&[("a", b"amd")], Format::Oci, "amd64"),
            image_with(&[("a", b"arm")], Format::Oci, "arm64"),
        ],
    );
    oci_layout(&layout, &index, "1");
    let src = format!("oci:{}:1", layout.display());
    let dest = server.image("acme/multi:1");
    skopeo(
        &home,
        &["copy", "--all", "--dest-tls-verify=false", &src, &dest],
    )
    .await;

    let raw = skopeo(&home, &["inspect", "--raw", "--tls-verify=false", &dest]).await;
    assert_eq!(
        raw.as_bytes(),
        index.manifest,
        "the index was changed on the way"
    );
    for (arch, img) in [("amd64", &index.images[0]), ("arm64", &index.images[1])] {
        let out = skopeo(
            &home,
            &[
                "--override-arch",
                arch,
                "inspect",
                "--tls-verify=false",
                &dest,
            ],
        )
        .await;
        let out: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["Architecture"], arch);
        let layers: Vec<String> = img.layers.iter().map(|l| l.digest.to_string()).collect();
        assert_eq!(out["Layers"], json!(layers), "{arch}");
    }
    // Nothing was written to the root: the storage is the in-memory object store.
    assert!(!server.root.join("blobs").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let server = Served::start(
        OPEN,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );

    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(&ca).unwrap();
    let https = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let resp = https
        .get(format!("https://{}/v2/", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let plain = common::client()
        .get(format!("http://{}/v2/", server.addr))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));

    let home = server.dir.path().join("home");
    let img = image_with(&[("tls.txt", b"over tls")], Format::Docker, "amd64");
    let archive = server.dir.path().join("tls.tar");
    std::fs::write(&archive, docker_archive(&img, "acme/tls:1")).unwrap();
    let src = format!("docker-archive:{}", archive.display());
    let dest = server.image("acme/tls:1");
    skopeo(&home, &["copy", "--dest-tls-verify=false", &src, &dest]).await;
    let cert_dir = dir.path().join("certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    std::fs::copy(&ca, cert_dir.join("ca.crt")).unwrap();
    let certs = format!("--cert-dir={}", cert_dir.display());
    let out = skopeo(&home, &["inspect", &certs, &dest]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["Architecture"],
        "amd64"
    );
}
