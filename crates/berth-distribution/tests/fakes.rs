//! The client against fake registries (axum on 127.0.0.1) that misbehave in one way each:
//! tampered content, ignored ranges, redirects, server errors, oversized or unsupported
//! manifests, refused connections.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_distribution::testutil::{Compression, Format, TestImage, TestIndex};
use berth_distribution::{Credentials, DistributionError, ErrorKind, Platform, media_types};
use berth_image::Digest;
use common::{Fake, client, collect, error_json};

fn manifest(media_type: &str, body: Vec<u8>, digest_header: Option<String>) -> Response {
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, media_type.to_string())],
        body,
    )
        .into_response();
    if let Some(d) = digest_header {
        r.headers_mut()
            .insert("docker-content-digest", d.parse().unwrap());
    }
    r
}

fn small_image() -> TestImage {
    TestImage::builder(Format::Docker)
        .layer(Compression::Gzip, &[("f", b"content")])
        .build()
}

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

#[tokio::test]
async fn tampered_manifests_are_refused() {
    let image = small_image();
    let mut tampered = image.manifest.clone();
    tampered.push(b'\n');
    let honest_digest = image.manifest_digest.to_string();
    let (t, d) = (tampered.clone(), honest_digest.clone());
    let fake = Fake::start(Router::new().route(
        "/v2/app/manifests/{reference}",
        get(move || {
            let (t, d) = (t.clone(), d.clone());
            // Claims the honest digest, serves other bytes.
            async move { manifest(media_types::DOCKER_MANIFEST, t, Some(d)) }
        }),
    ))
    .await;
    let c = client();
    let e = c
        .resolve(&fake.reference("app:v1"), &amd64(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, DistributionError::DigestMismatch { .. }),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert_eq!(
        e.to_string(),
        format!(
            "digest mismatch for manifest {}/app:v1: expected {honest_digest}, got {}",
            fake.host(),
            Digest::of(&tampered)
        )
    );
    // By digest, the requested digest is what counts.
    let by_digest = fake.reference(&format!("app@{honest_digest}"));
    let e = c.resolve(&by_digest, &amd64(), None).await.unwrap_err();
    assert!(
        e.to_string().starts_with("digest mismatch for manifest"),
        "{e}"
    );
}

#[tokio::test]
async fn a_tampered_index_entry_is_refused() {
    let image = small_image();
    let index = TestIndex::new(Format::Docker, vec![image.clone()]);
    let index_body = index.manifest.clone();
    let child_digest = image.manifest_digest.to_string();
    let mut child = image.manifest.clone();
    child.extend_from_slice(b"  ");
    let fake = Fake::start(Router::new().route(
        "/v2/app/manifests/{reference}",
        get(
            move |axum::extract::Path(reference): axum::extract::Path<String>| {
                let (index_body, child) = (index_body.clone(), child.clone());
                async move {
                    if reference == "v1" {
                        manifest(media_types::DOCKER_MANIFEST_LIST, index_body, None)
                    } else {
                        manifest(media_types::DOCKER_MANIFEST, child, None)
                    }
                }
            },
        ),
    ))
    .await;
    let e = client()
        .resolve(&fake.reference("app:v1"), &amd64(), None)
        .await
        .unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "digest mismatch for manifest {}/app:v1 (linux/amd64): expected {child_digest}",
            fake.host()
        )),
        "{e}"
    );
}

fn blob_server(data: Vec<u8>, honour_range: bool) -> Router {
    Router::new().route(
        "/v2/app/blobs/{digest}",
        get(move |headers: HeaderMap| {
            let data = data.clone();
            async move {
                let range = headers
                    .get(header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                match range.and_then(|r| {
                    r.strip_prefix("bytes=")?
                        .strip_suffix('-')?
                        .parse::<usize>()
                        .ok()
                }) {
                    Some(start) if honour_range => {
                        let total = data.len();
                        let content_range = format!("bytes {start}-{}/{total}", total - 1);
                        (
                            StatusCode::PARTIAL_CONTENT,
                            [(header::CONTENT_RANGE, content_range)],
                            data[start..].to_vec(),
                        )
                            .into_response()
                    }
                    _ => (StatusCode::OK, data).into_response(),
                }
            }
        }),
    )
}

#[tokio::test]
async fn a_server_that_ignores_range_restarts_the_download() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::of(&data);
    let fake = Fake::start(blob_server(data.clone(), false)).await;
    let blob = client()
        .fetch_blob(&fake.reference("app"), &digest, 500, None)
        .await
        .unwrap();
    assert!(blob.restarted);
    assert_eq!(blob.offset, 0);
    assert_eq!(blob.total_size, Some(data.len() as u64));
    assert_eq!(collect(blob.stream).await.unwrap(), data);
}

#[tokio::test]
async fn tampered_blobs_are_refused() {
    let data = b"the real config".to_vec();
    let digest = Digest::of(b"what the manifest promised");
    let fake = Fake::start(blob_server(data.clone(), true)).await;
    let c = client();
    let r = fake.reference("app");
    let e = c.fetch_blob_bytes(&r, &digest, None).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "digest mismatch for blob {digest}: expected {digest}, got {}",
            Digest::of(&data)
        )
    );
    // A whole-blob stream ends with the mismatch; a resumed one cannot be checked here.
    let blob = c.fetch_blob(&r, &digest, 0, None).await.unwrap();
    assert!(matches!(
        collect(blob.stream).await,
        Err(DistributionError::DigestMismatch { .. })
    ));
    let blob = c.fetch_blob(&r, &digest, 4, None).await.unwrap();
    assert!(!blob.restarted);
    assert_eq!(collect(blob.stream).await.unwrap(), &data[4..]);
}

#[tokio::test]
async fn blob_redirects_keep_range_and_drop_authorization() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 13) as u8).collect();
    let digest = Digest::of(&data);
    let seen: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
    let seen_by_storage = seen.clone();
    let storage_data = data.clone();
    let storage = Fake::start(Router::new().route(
        "/storage/blob",
        get(move |headers: HeaderMap| {
            let mut h = HashMap::new();
            for (k, v) in &headers {
                h.insert(k.to_string(), v.to_str().unwrap_or("").to_string());
            }
            seen_by_storage.lock().unwrap().push(h);
            let data = storage_data.clone();
            async move {
                let start: usize = headers
                    .get(header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
                    .unwrap_or(0);
                let content_range = format!("bytes {start}-{}/{}", data.len() - 1, data.len());
                (
                    StatusCode::PARTIAL_CONTENT,
                    [(header::CONTENT_RANGE, content_range)],
                    data[start..].to_vec(),
                )
            }
        }),
    ))
    .await;
    let location = format!("http://{}/storage/blob", storage.addr);
    let registry = Fake::start(Router::new().route(
        "/v2/app/blobs/{digest}",
        get(move |headers: HeaderMap| {
            let location = location.clone();
            async move {
                let expected = format!("Basic {}", base64_encode("user:pw"));
                if headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    != Some(expected.as_str())
                {
                    return (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, r#"Basic realm="fake""#)],
                        "",
                    )
                        .into_response();
                }
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, location)],
                    "",
                )
                    .into_response()
            }
        }),
    ))
    .await;
    let creds = Credentials::basic("user", "pw");
    let blob = client()
        .fetch_blob(&registry.reference("app"), &digest, 1000, Some(&creds))
        .await
        .unwrap();
    assert!(!blob.restarted);
    assert_eq!(blob.total_size, Some(5000));
    assert_eq!(collect(blob.stream).await.unwrap(), &data[1000..]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].get("range").map(String::as_str),
        Some("bytes=1000-")
    );
    assert!(
        !seen[0].contains_key("authorization"),
        "credentials leaked to storage: {:?}",
        seen[0]
    );
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn server_errors_are_unavailable_with_the_registry_message() {
    let blob_calls = Arc::new(AtomicUsize::new(0));
    let calls = blob_calls.clone();
    let data = b"eventually".to_vec();
    let digest = Digest::of(&data);
    let fake = Fake::start(
        Router::new()
            .route(
                "/v2/app/manifests/{reference}",
                get(|| async {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        error_json("UNKNOWN", "storage backend is on fire"),
                    )
                }),
            )
            .route(
                "/v2/app/blobs/{digest}",
                get(move || {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    let data = data.clone();
                    async move {
                        if n < 2 {
                            (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
                        } else {
                            (StatusCode::OK, data).into_response()
                        }
                    }
                }),
            )
            .route(
                "/v2/down/blobs/{digest}",
                get(|| async { (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>") }),
            ),
    )
    .await;
    let c = client();
    let e = c
        .resolve(&fake.reference("app:v1"), &amd64(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let text = e.to_string();
    assert!(
        text.contains("500") && text.contains("unknown: storage backend is on fire"),
        "{text}"
    );
    assert!(text.contains(&fake.host()), "{text}");
    // Blob requests are retried: two 503s, then the blob.
    let got = c
        .fetch_blob_bytes(&fake.reference("app"), &digest, None)
        .await
        .unwrap();
    assert_eq!(&got[..], b"eventually");
    assert_eq!(blob_calls.load(Ordering::SeqCst), 3);
    // ... but not forever.
    let e = c
        .fetch_blob_bytes(&fake.reference("down"), &digest, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("502 bad gateway"), "{e}");
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_and_names_the_host() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = berth_image::Reference::parse_normalized(&format!("127.0.0.1:{port}/app:v1")).unwrap();
    let e = client().resolve(&r, &amd64(), None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let text = e.to_string();
    assert!(text.starts_with(&format!("cannot reach registry 127.0.0.1:{port}: GET http://127.0.0.1:{port}/v2/app/manifests/v1")), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
}

#[tokio::test]
async fn oversized_unsupported_and_malformed_manifests_are_refused() {
    let big = vec![b' '; 5 * 1024 * 1024];
    let big_streamed = big.clone();
    let fake = Fake::start(
        Router::new()
            .route("/v2/big/manifests/{r}", get(move || {
                let big = big.clone();
                async move { manifest(media_types::OCI_MANIFEST, big, None) }
            }))
            .route("/v2/chunked/manifests/{r}", get(move || {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    big_streamed.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
                async move {
                    let body = Body::from_stream(futures::stream::iter(chunks));
                    (StatusCode::OK, [(header::CONTENT_TYPE, media_types::OCI_MANIFEST)], body).into_response()
                }
            }))
            .route("/v2/old/manifests/{r}", get(|| async {
                let body = br#"{"schemaVersion":1,"name":"old","tag":"v1","architecture":"amd64","fsLayers":[],"history":[],"signatures":[]}"#;
                manifest(media_types::DOCKER_SCHEMA1_SIGNED, body.to_vec(), None)
            }))
            .route("/v2/broken/manifests/{r}", get(|| async {
                manifest(media_types::OCI_MANIFEST, b"{\"schemaVersion\": 2, \"config\": ".to_vec(), None)
            })),
    )
    .await;
    let c = client();
    for name in ["big", "chunked"] {
        let e = c
            .resolve(&fake.reference(&format!("{name}:v1")), &amd64(), None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{name}");
        assert_eq!(
            e.to_string(),
            format!(
                "manifest for {}/{name}:v1 is larger than the limit of 4194304 bytes",
                fake.host()
            )
        );
    }
    let e = c
        .resolve(&fake.reference("old:v1"), &amd64(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().starts_with(&format!(
        "unsupported media type application/vnd.docker.distribution.manifest.v1+prettyjws for {}/old:v1: docker image manifest version 2, schema 1 is no longer supported",
        fake.host()
    )), "{e}");
    let e = c
        .resolve(&fake.reference("broken:v1"), &amd64(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.to_string()
            .starts_with(&format!("invalid manifest for {}/broken:v1: ", fake.host())),
        "{e}"
    );
}

#[tokio::test]
async fn forbidden_and_name_unknown_answers() {
    let fake = Fake::start(
        Router::new()
            .route(
                "/v2/secret/manifests/{r}",
                get(|| async {
                    (
                        StatusCode::FORBIDDEN,
                        error_json("DENIED", "requested access to the resource is denied"),
                    )
                }),
            )
            .route(
                "/v2/gone/manifests/{r}",
                get(|| async {
                    (
                        StatusCode::NOT_FOUND,
                        error_json("NAME_UNKNOWN", "repository name not known to registry"),
                    )
                }),
            )
            .route(
                "/v2/bare/manifests/{r}",
                get(|| async { StatusCode::NOT_FOUND }),
            )
            .route(
                "/v2/blocked/manifests/{r}",
                get(|| async { (StatusCode::FORBIDDEN, "blocked by policy") }),
            ),
    )
    .await;
    let c = client();
    let host = fake.host();
    let e = c
        .resolve(&fake.reference("secret:v1"), &amd64(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "pull access denied for {host}/secret, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        )
    );
    let e = c
        .resolve(&fake.reference("gone:v1"), &amd64(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "repository {host}/gone not found: name unknown: repository name not known to registry"
        )
    );
    let e = c
        .resolve(&fake.reference("bare:v1"), &amd64(), None)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("manifest for {host}/bare:v1 not found: 404 not found")
    );
    let creds = Credentials::basic("u", "p");
    let e = c
        .resolve(&fake.reference("blocked:v1"), &amd64(), Some(&creds))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden);
    assert_eq!(
        e.to_string(),
        format!("access to {host}/blocked denied by registry {host}: blocked by policy")
    );
}
