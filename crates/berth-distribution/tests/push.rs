//! Pushing with the client: into a real registry (Debian's docker-registry), and into fakes
//! that check the protocol (chunk ranges, moving upload locations, token scopes) or refuse.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_distribution::testutil::TestRegistry;
use berth_distribution::{
    BlobUpload, CHUNKED_UPLOAD_THRESHOLD, Credentials, ErrorKind, MountOutcome, UploadProgress,
    media_types,
};
use berth_image::Digest;
use bytes::Bytes;
use common::{Fake, client, error_json};

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

fn blob_file(dir: &tempfile::TempDir, data: &[u8]) -> (std::path::PathBuf, Digest) {
    let digest = Digest::of(data);
    let path = dir.path().join(digest.hex());
    std::fs::write(&path, data).unwrap();
    (path, digest)
}

/// Records what an upload reported, checking it only grows.
fn recorder() -> (UploadProgress, Arc<Mutex<Vec<u64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let f: UploadProgress = Arc::new(move |n| s.lock().unwrap().push(n));
    (f, seen)
}

#[tokio::test]
async fn uploads_mounts_and_manifests_against_a_real_registry() {
    let reg = TestRegistry::start().await;
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let app = reg.reference("team/app:1");

    // Small: one PUT.
    let (small_path, small) = blob_file(&dir, b"a small blob");
    assert!(!c.blob_exists(&app, &small, None).await.unwrap());
    let upload = BlobUpload {
        digest: small,
        size: 12,
        path: &small_path,
        session: None,
    };
    c.upload_blob(&app, upload, None, None).await.unwrap();
    assert!(c.blob_exists(&app, &small, None).await.unwrap());

    // Large: chunks, with progress up to the size.
    let data = noise(CHUNKED_UPLOAD_THRESHOLD as usize + 3 * 1024 * 1024 + 5, 7);
    let (big_path, big) = blob_file(&dir, &data);
    let (progress, seen) = recorder();
    let upload = BlobUpload {
        digest: big,
        size: data.len() as u64,
        path: &big_path,
        session: None,
    };
    c.upload_blob(&app, upload, None, Some(progress))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&(data.len() as u64)));
    let back = c.fetch_blob_bytes(&app, &big, None).await.unwrap();
    assert!(back == data, "the registry holds other bytes");

    // A manifest over the small blob as config; its digest comes back.
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":12,"digest":"{small}"}},"layers":[]}}"#,
        media_types::DOCKER_MANIFEST,
        media_types::DOCKER_CONFIG
    );
    let d = c
        .put_manifest(
            &app,
            "1",
            media_types::DOCKER_MANIFEST,
            Bytes::from(manifest.clone()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(d, Digest::of(manifest.as_bytes()));

    // Mount into another repository: 201. From a repository without the blob: an upload
    // session to use instead.
    let other = reg.reference("team/other:1");
    match c.mount_blob(&other, &big, "team/app", None).await.unwrap() {
        MountOutcome::Mounted => {}
        MountOutcome::Upload(_) => panic!("expected a mount"),
    }
    assert!(c.blob_exists(&other, &big, None).await.unwrap());
    let (fresh_path, fresh) = blob_file(&dir, b"only here");
    let session = match c
        .mount_blob(&other, &fresh, "team/nothing", None)
        .await
        .unwrap()
    {
        MountOutcome::Upload(s) => s,
        MountOutcome::Mounted => panic!("nothing to mount"),
    };
    let upload = BlobUpload {
        digest: fresh,
        size: 9,
        path: &fresh_path,
        session: Some(session),
    };
    c.upload_blob(&other, upload, None, None).await.unwrap();
    assert!(c.blob_exists(&other, &fresh, None).await.unwrap());

    // A file that is not the size announced is refused before anything is sent.
    let upload = BlobUpload {
        digest: fresh,
        size: 10,
        path: &fresh_path,
        session: None,
    };
    let e = c.upload_blob(&other, upload, None, None).await.unwrap_err();
    assert!(e.to_string().contains("holds 9 bytes, not 10"), "{e}");
}

/// A registry that only takes chunked uploads, checking every `Content-Range` and moving
/// the upload to a new location after every chunk.
#[derive(Default)]
struct Chunked {
    data: Mutex<Vec<u8>>,
    next: AtomicU64,
    log: Mutex<Vec<String>>,
}

async fn chunked(State(s): State<Arc<Chunked>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    s.log
        .lock()
        .unwrap()
        .push(format!("{} {path}?{query}", parts.method));
    let expected_path = format!("/v2/app/blobs/uploads/{}", s.next.load(Ordering::SeqCst));
    let moved = |s: &Chunked, len: usize| {
        let n = s.next.fetch_add(1, Ordering::SeqCst) + 1;
        (
            StatusCode::ACCEPTED,
            [
                ("location", format!("/v2/app/blobs/uploads/{n}?state=x{n}")),
                ("range", format!("0-{}", len.saturating_sub(1))),
            ],
        )
            .into_response()
    };
    match (parts.method.clone(), path.as_str()) {
        (Method::POST, "/v2/app/blobs/uploads/") => moved(&s, 0),
        (Method::PATCH, p) if p == expected_path => {
            let mut data = s.data.lock().unwrap();
            let range = parts.headers["content-range"].to_str().unwrap().to_string();
            let want = format!("{}-{}", data.len(), data.len() + body.len() - 1);
            assert_eq!(range, want);
            assert_eq!(query, format!("state=x{}", s.next.load(Ordering::SeqCst)));
            data.extend_from_slice(&body);
            let len = data.len();
            drop(data);
            moved(&s, len)
        }
        (Method::PUT, p) if p == expected_path => {
            assert!(body.is_empty(), "the last PUT of a chunked upload is empty");
            let digest = query.split('&').find_map(|kv| kv.strip_prefix("digest="));
            let data = s.data.lock().unwrap();
            let actual = Digest::of(&data).to_string().replace(':', "%3A");
            if digest != Some(actual.as_str()) {
                return (StatusCode::BAD_REQUEST, error_json("DIGEST_INVALID", "x"))
                    .into_response();
            }
            StatusCode::CREATED.into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            error_json("BLOB_UPLOAD_UNKNOWN", "x"),
        )
            .into_response(),
    }
}

#[tokio::test]
async fn chunked_uploads_send_ranges_and_follow_every_location() {
    let state = Arc::new(Chunked::default());
    let fake = Fake::start(Router::new().fallback(chunked).with_state(state.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let data = noise(20 * 1024 * 1024 + 1, 3);
    let (path, digest) = blob_file(&dir, &data);
    let upload = BlobUpload {
        digest,
        size: data.len() as u64,
        path: &path,
        session: None,
    };
    client()
        .upload_blob(&fake.reference("app:1"), upload, None, None)
        .await
        .unwrap();
    assert!(*state.data.lock().unwrap() == data);
    let log = state.log.lock().unwrap().clone();
    let methods: Vec<&str> = log.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        methods,
        ["POST", "PATCH", "PATCH", "PATCH", "PUT"],
        "{log:?}"
    );
}

/// A registry with a token server that records the scopes asked for, and grants them all.
#[derive(Default)]
struct Scoped {
    scopes: Mutex<Vec<Vec<String>>>,
    realm: Mutex<String>,
}

async fn scoped(
    State(s): State<Arc<Scoped>>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    if req.uri().path() == "/token" {
        let scopes = q
            .into_iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v)
            .collect();
        s.scopes.lock().unwrap().push(scopes);
        return axum::Json(serde_json::json!({"token": "t"})).into_response();
    }
    if headers.get("authorization").is_none() {
        let realm = s.realm.lock().unwrap().clone();
        return (
            StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                format!(r#"Bearer realm="{realm}",service="fake""#),
            )],
            error_json("UNAUTHORIZED", "authentication required"),
        )
            .into_response();
    }
    (StatusCode::CREATED, [("location", "/v2/team/app/blobs/x")]).into_response()
}

#[tokio::test]
async fn pushes_ask_for_push_scopes_and_mounts_for_the_source_too() {
    let state = Arc::new(Scoped::default());
    let s2 = state.clone();
    let fake = Fake::start_with(move |addr| {
        *s2.realm.lock().unwrap() = format!("http://{addr}/token");
        Router::new().fallback(scoped).with_state(s2)
    })
    .await;
    let c = client();
    let r = fake.reference("team/app:1");
    let d = Digest::of(b"x");
    match c.mount_blob(&r, &d, "team/src", None).await.unwrap() {
        MountOutcome::Mounted => {}
        MountOutcome::Upload(_) => panic!("the fake mounts"),
    }
    assert_eq!(
        state.scopes.lock().unwrap().last().unwrap(),
        &["repository:team/app:pull,push", "repository:team/src:pull"]
    );
    c.put_manifest(&r, "1", media_types::OCI_MANIFEST, Bytes::from("{}"), None)
        .await
        .unwrap();
    assert_eq!(
        state.scopes.lock().unwrap().last().unwrap(),
        &["repository:team/app:pull,push"]
    );
}

/// A registry that refuses with one status, body and headers.
async fn refusing(
    status: StatusCode,
    headers: HashMap<&'static str, String>,
    body: String,
) -> Fake {
    Fake::start(Router::new().fallback(move || {
        let (headers, body) = (headers.clone(), body.clone());
        async move {
            let mut r = (status, body).into_response();
            for (k, v) in headers {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            r
        }
    }))
    .await
}

#[tokio::test]
async fn refusals_are_worded_like_docker() {
    let basic = HashMap::from([("www-authenticate", r#"Basic realm="r""#.to_string())]);
    let cases = [
        (
            StatusCode::UNAUTHORIZED,
            basic.clone(),
            error_json("UNAUTHORIZED", "authentication required"),
            ErrorKind::Unauthorized,
            "unauthorized: authentication required",
        ),
        (
            StatusCode::UNAUTHORIZED,
            basic,
            String::new(),
            ErrorKind::Unauthorized,
            "unauthorized: authentication required",
        ),
        (
            StatusCode::FORBIDDEN,
            HashMap::new(),
            error_json("DENIED", "requested access to the resource is denied"),
            ErrorKind::Forbidden,
            "denied: requested access to the resource is denied",
        ),
        (
            StatusCode::FORBIDDEN,
            HashMap::new(),
            String::new(),
            ErrorKind::Forbidden,
            "denied: requested access to the resource is denied",
        ),
    ];
    for (status, headers, body, kind, text) in cases {
        let fake = refusing(status, headers, body).await;
        let r = fake.reference("team/app:1");
        let e = client().start_upload(&r, None).await.unwrap_err();
        assert_eq!((e.kind(), e.to_string().as_str()), (kind, text));
        let e = client()
            .put_manifest(&r, "1", media_types::OCI_MANIFEST, Bytes::from("{}"), None)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), text);
    }
    // A token that lacks the push scope: the registry says `insufficient_scope`.
    let insufficient = HashMap::from([(
        "www-authenticate",
        r#"Bearer realm="http://127.0.0.1:1/token",error="insufficient_scope""#.to_string(),
    )]);
    let fake = refusing(
        StatusCode::UNAUTHORIZED,
        insufficient,
        error_json("UNAUTHORIZED", "authentication required"),
    )
    .await;
    let creds = Credentials {
        registry_token: Some("pull-only".into()),
        ..Default::default()
    };
    let e = client()
        .start_upload(&fake.reference("team/app:1"), Some(&creds))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "denied: requested access to the resource is denied"
    );
}
