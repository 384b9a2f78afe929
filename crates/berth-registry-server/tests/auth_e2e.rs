//! Tenant isolation through the whole registry router: acme pushes `acme/app`; globex
//! (with its own token, its Basic credentials, or an anonymous token) and requests without
//! credentials try every endpoint on it. Each is refused the same way as for a repository
//! that doesn't exist, and storage is left as it was.

mod auth_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use auth_support::*;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use berth_registry_server::auth::token_routes;
use berth_registry_server::server::{RegistryState, router};
use berth_registry_server::storage::FsDriver;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

struct Registry {
    f: Fixture,
    storage: tempfile::TempDir,
    app: Router,
}

fn registry() -> Registry {
    let f = fixture();
    let storage = tempfile::tempdir().unwrap();
    let driver = Arc::new(FsDriver::new(storage.path()).unwrap());
    let state = Arc::new(RegistryState::new(driver, f.auth.clone()));
    let app = router(state).merge(token_routes(f.auth.clone()));
    Registry { f, storage, app }
}

struct Reply {
    status: StatusCode,
    location: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["errors"][0]["code"].as_str().map(String::from))
            .unwrap_or_default()
    }
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    req = req.header(header::CONTENT_LENGTH, body.len());
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        location,
        body,
    }
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Every file under `dir` with the hash of its content.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.insert(format!("{}/", path.display()), String::new());
                stack.push(path);
            } else {
                out.insert(
                    path.display().to_string(),
                    digest(&std::fs::read(&path).unwrap()),
                );
            }
        }
    }
    out
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Pushes a one-layer image to `repo:tag`; returns (manifest digest, layer digest).
async fn push(app: &Router, auth: &str, repo: &str, tag: &str) -> (String, String) {
    let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"repo\":\"{repo}\"}}");
    let layer = format!("layer of {repo}").into_bytes();
    for blob in [config.as_bytes().to_vec(), layer.clone()] {
        let uri = format!("/v2/{repo}/blobs/uploads/?digest={}", digest(&blob));
        let r = call(app, Method::POST, &uri, Some(auth), None, blob).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config.as_bytes()), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(&layer), "size": layer.len()}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let uri = format!("/v2/{repo}/manifests/{tag}");
    let r = call(
        app,
        Method::PUT,
        &uri,
        Some(auth),
        Some(MANIFEST_TYPE),
        bytes.clone(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    (digest(&bytes), digest(&layer))
}

async fn token_for(app: &Router, login: Option<(&str, &str)>, scopes: &[&str]) -> String {
    let query: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
    let a = get_token(
        app,
        &format!("service=berth-registry&{}", query.join("&")),
        login,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    bearer(a.token())
}

#[tokio::test]
async fn other_tenants_and_strangers_learn_nothing_about_acme_app() {
    let Registry { f, storage, app } = registry();
    let all = "pull,push,delete";
    let alice = token_for(
        &app,
        Some(("alice", PASSWORD)),
        &["repository:acme/app:pull,push"],
    )
    .await;
    let (manifest, layer) = push(&app, &alice, "acme/app", "v1").await;
    // An upload session of acme's, for the PATCH/PUT attempts.
    let r = call(
        &app,
        Method::POST,
        "/v2/acme/app/blobs/uploads/",
        Some(&alice),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let session = r.location.unwrap();
    let session_path = session.split('?').next().unwrap().to_string();
    let ghost_session = session_path.replace("/acme/app/", "/acme/ghost/");

    // The control: acme's own token reads it.
    let r = call(
        &app,
        Method::GET,
        "/v2/acme/app/manifests/v1",
        Some(&alice),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let globex_scopes = [
        &*format!("repository:acme/app:{all}"),
        &*format!("repository:acme/ghost:{all}"),
        "repository:globex/app:pull,push",
        "registry:catalog:*",
    ];
    let globex = token_for(&app, Some(("gary", PASSWORD)), &globex_scopes).await;
    assert_eq!(
        access(&f, globex.trim_start_matches("Bearer ")),
        ["repository:globex/app:pull,push", "registry:catalog:*"]
    );
    let anonymous = token_for(&app, None, &globex_scopes).await;
    let callers: Vec<(&str, Option<String>)> = vec![
        ("globex token", Some(globex.clone())),
        ("globex basic", Some(basic("gary", PASSWORD))),
        ("anonymous token", Some(anonymous)),
        ("no credentials", None),
        ("garbage token", Some("Bearer x.y.z".into())),
    ];

    let before = snapshot(storage.path());
    let blob = b"intruder".to_vec();
    for (who, auth) in &callers {
        let auth = auth.as_deref();
        // Each request against acme/app, and the same against acme/ghost, which doesn't exist.
        let requests: Vec<(Method, String, Option<&str>, Vec<u8>)> = vec![
            (Method::GET, "/v2/R/manifests/v1".into(), None, vec![]),
            (Method::HEAD, "/v2/R/manifests/v1".into(), None, vec![]),
            (Method::DELETE, "/v2/R/manifests/v1".into(), None, vec![]),
            (
                Method::GET,
                format!("/v2/R/manifests/{manifest}"),
                None,
                vec![],
            ),
            (
                Method::HEAD,
                format!("/v2/R/manifests/{manifest}"),
                None,
                vec![],
            ),
            (
                Method::DELETE,
                format!("/v2/R/manifests/{manifest}"),
                None,
                vec![],
            ),
            (
                Method::PUT,
                "/v2/R/manifests/v2".into(),
                Some(MANIFEST_TYPE),
                b"{}".to_vec(),
            ),
            (Method::GET, format!("/v2/R/blobs/{layer}"), None, vec![]),
            (Method::HEAD, format!("/v2/R/blobs/{layer}"), None, vec![]),
            (Method::DELETE, format!("/v2/R/blobs/{layer}"), None, vec![]),
            (Method::POST, "/v2/R/blobs/uploads/".into(), None, vec![]),
            (
                Method::POST,
                format!("/v2/R/blobs/uploads/?digest={}", digest(&blob)),
                None,
                blob.clone(),
            ),
            (
                Method::POST,
                format!("/v2/R/blobs/uploads/?mount={layer}&from=acme/app"),
                None,
                vec![],
            ),
            (Method::PATCH, "SESSION".into(), None, blob.clone()),
            (
                Method::PUT,
                format!("SESSION?digest={}", digest(&blob)),
                None,
                blob.clone(),
            ),
            (Method::GET, "SESSION".into(), None, vec![]),
            (Method::DELETE, "SESSION".into(), None, vec![]),
            (Method::GET, "/v2/R/tags/list".into(), None, vec![]),
            (
                Method::GET,
                format!("/v2/R/referrers/{manifest}"),
                None,
                vec![],
            ),
        ];
        for (method, uri, ct, body) in requests {
            let real = uri
                .replace("/v2/R/", "/v2/acme/app/")
                .replace("SESSION", &session_path);
            let ghost = uri
                .replace("/v2/R/", "/v2/acme/ghost/")
                .replace("SESSION", &ghost_session);
            let r = call(&app, method.clone(), &real, auth, ct, body.clone()).await;
            let g = call(&app, method.clone(), &ghost, auth, ct, body).await;
            let what = format!("{who}: {method} {real}");
            assert!(
                [
                    StatusCode::UNAUTHORIZED,
                    StatusCode::FORBIDDEN,
                    StatusCode::NOT_FOUND
                ]
                .contains(&r.status),
                "{what} answered {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(
                (r.status, r.code()),
                (g.status, g.code()),
                "{what}: differs from a missing repo"
            );
            if method != Method::HEAD {
                assert_eq!(r.body, g.body, "{what}: body differs from a missing repo");
            }
        }
        // The catalog: globex sees nothing of acme's; without credentials, nothing at all.
        let r = call(&app, Method::GET, "/v2/_catalog", auth, None, vec![]).await;
        if r.status == StatusCode::OK {
            let listed = String::from_utf8_lossy(&r.body);
            assert!(
                !listed.contains("acme/app"),
                "{who}: catalog lists {listed}"
            );
        } else {
            assert!(
                [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&r.status),
                "{who}: catalog {}",
                r.status
            );
        }
    }
    assert_eq!(snapshot(storage.path()), before, "storage changed");

    // Mounting acme's layer into globex's own repository doesn't work either: globex gets a
    // plain upload session, and globex/app has no such layer.
    let uri = format!("/v2/globex/app/blobs/uploads/?mount={layer}&from=acme/app");
    let r = call(&app, Method::POST, &uri, Some(&globex), None, vec![]).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "mount answered {}",
        r.status
    );
    let uri = format!("/v2/globex/app/blobs/{layer}");
    let r = call(&app, Method::HEAD, &uri, Some(&globex), None, vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // While acme itself can mount between its repositories.
    let alice2 = token_for(
        &app,
        Some(("alice", PASSWORD)),
        &["repository:acme/app:pull", "repository:acme/copy:pull,push"],
    )
    .await;
    let uri = format!("/v2/acme/copy/blobs/uploads/?mount={layer}&from=acme/app");
    let r = call(&app, Method::POST, &uri, Some(&alice2), None, vec![]).await;
    assert_eq!(r.status, StatusCode::CREATED);

    // And acme's own data is intact and still readable by acme.
    let r = call(
        &app,
        Method::GET,
        &format!("/v2/acme/app/manifests/{manifest}"),
        Some(&alice),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(
        &app,
        Method::GET,
        "/v2/_catalog",
        Some(&alice),
        None,
        vec![],
    )
    .await;
    assert!(String::from_utf8_lossy(&r.body).contains("acme/app"));
}

#[tokio::test]
async fn public_repositories_through_the_router() {
    let Registry { app, .. } = registry();
    let carol = token_for(
        &app,
        Some(("carol", PASSWORD)),
        &["repository:acme/pub:pull,push"],
    )
    .await;
    let (manifest, _) = push(&app, &carol, "acme/pub", "latest").await;
    // Anonymous pull without any token, and with the token dance.
    let r = call(
        &app,
        Method::GET,
        "/v2/acme/pub/manifests/latest",
        None,
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let anon = token_for(&app, None, &["repository:acme/pub:pull,push"]).await;
    let r = call(
        &app,
        Method::GET,
        &format!("/v2/acme/pub/manifests/{manifest}"),
        Some(&anon),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // But no anonymous push or delete.
    let r = call(
        &app,
        Method::POST,
        "/v2/acme/pub/blobs/uploads/",
        Some(&anon),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        &app,
        Method::DELETE,
        &format!("/v2/acme/pub/manifests/{manifest}"),
        None,
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // /v2/ sends clients to the token endpoint; any login passes it.
    let r = call(&app, Method::GET, "/v2/", None, None, vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let login = token_for(&app, Some(("gary", PASSWORD)), &[]).await;
    let r = call(&app, Method::GET, "/v2/", Some(&login), None, vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    // A globex member sees the public repository in the catalog, not acme's private ones.
    let r = call(
        &app,
        Method::GET,
        "/v2/_catalog",
        Some(&login),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(listed["repositories"], serde_json::json!(["acme/pub"]));
}
