//! Tenant isolation: acme and globex share one registry and even identical layer bytes, yet
//! neither can read, write, list, mount or learn of the other's blobs, manifests, tags,
//! uploads or repositories — by tag or by digest.

mod common;

use std::sync::Arc;

use berth_image::Digest;
use berth_image::config::MEDIA_OCI_MANIFEST;
use berth_registry_server::auth::AuditEvent;
use common::{Backend, OrgAuth, Registry, error, header, image, location, snapshot};
use serde_json::{Value, json};

per_backend!(
    tenants_cannot_reach_each_other,
    digests_do_not_cross_repositories
);

/// The body of a refusal, with the digest the client asked about blanked out: the same
/// for bytes held by someone else and bytes that never existed.
async fn refusal(resp: reqwest::Response, asked: &str) -> (u16, String) {
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap().replace(asked, "<asked>"))
}

async fn tenants_cannot_reach_each_other(backend: Backend) {
    let storage = backend.open();
    let auth = Arc::new(OrgAuth::default());
    let reg = Registry::with_auth(storage.driver.clone(), auth.clone()).await;
    let acme = reg.tenant("acme");
    let globex = reg.tenant("globex");

    // Without credentials: 401 with a challenge, everywhere.
    let resp = reg.get("/v2/").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        header(&resp, "www-authenticate")
            .unwrap()
            .starts_with("Bearer realm=")
    );
    assert_eq!(acme.get("/v2/").send().await.unwrap().status(), 200);

    let img = image("acme secret");
    let m = acme.push_image("acme/app", "v1", &img).await;
    let layer = img.layers[0].digest;
    let config = img.config_digest;
    // globex happens to push the very same layer bytes (stored once).
    globex.push_blob("globex/app", &img.layers[0].data).await;
    let session = acme.start_upload("acme/app").await;
    let session_id = session.rsplit('/').next().unwrap().to_string();
    let before = snapshot(&reg.driver).await;

    // Straight at acme's repository: 403, exactly as for an acme repository that does not exist.
    let requests = [
        ("GET", "/v2/R/manifests/v1".to_string()),
        ("GET", format!("/v2/R/manifests/{m}")),
        ("HEAD", format!("/v2/R/manifests/{m}")),
        ("GET", format!("/v2/R/blobs/{layer}")),
        ("HEAD", format!("/v2/R/blobs/{config}")),
        ("DELETE", format!("/v2/R/blobs/{config}")),
        ("DELETE", format!("/v2/R/manifests/{m}")),
        ("GET", "/v2/R/tags/list".to_string()),
        ("GET", format!("/v2/R/referrers/{m}")),
        ("POST", "/v2/R/blobs/uploads/".to_string()),
        ("GET", format!("/v2/R/blobs/uploads/{session_id}")),
        ("PATCH", format!("/v2/R/blobs/uploads/{session_id}")),
        (
            "PUT",
            format!("/v2/R/blobs/uploads/{session_id}?digest={layer}"),
        ),
        ("DELETE", format!("/v2/R/blobs/uploads/{session_id}")),
        ("PUT", "/v2/R/manifests/v2".to_string()),
    ];
    for (method, path) in &requests {
        let method: reqwest::Method = method.parse().unwrap();
        let real = path.replace("/v2/R/", "/v2/acme/app/");
        let ghost = path.replace("/v2/R/", "/v2/acme/ghost/");
        let r = globex
            .http
            .request(method.clone(), globex.url(&real))
            .send()
            .await
            .unwrap();
        let g = globex
            .http
            .request(method.clone(), globex.url(&ghost))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {real}");
        assert!(header(&r, "www-authenticate").is_some());
        let (r, g) = (refusal(r, "acme/app").await, refusal(g, "acme/ghost").await);
        assert_eq!(r, g, "{method} {real}: differs from a missing repository");
    }

    // By digest in its own repository: acme's config is as unknown as a digest never pushed.
    let never = Digest::of(b"never pushed anywhere");
    for (kind, code) in [("blobs", "BLOB_UNKNOWN"), ("manifests", "MANIFEST_UNKNOWN")] {
        for d in [config, m] {
            let held = globex
                .get(&format!("/v2/globex/app/{kind}/{d}"))
                .send()
                .await
                .unwrap();
            let none = globex
                .get(&format!("/v2/globex/app/{kind}/{never}"))
                .send()
                .await
                .unwrap();
            let (held, none) = (
                refusal(held, &d.to_string()).await,
                refusal(none, &never.to_string()).await,
            );
            assert_eq!(held, none, "{kind} {d}");
            assert!(held.1.contains(code), "{}", held.1);
        }
    }
    let resp = globex
        .head(&format!("/v2/globex/app/blobs/{config}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = globex
        .delete(&format!("/v2/globex/app/blobs/{config}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UNKNOWN".into()));

    // Mounting acme's blob into globex: a plain upload session, nothing linked.
    let resp = globex
        .post(&format!(
            "/v2/globex/app/blobs/uploads/?mount={config}&from=acme/app"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(location(&resp).starts_with("/v2/globex/app/blobs/uploads/"));
    let resp = globex
        .head(&format!("/v2/globex/app/blobs/{config}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // Nor can globex reference acme's blobs from its own manifest.
    let resp = globex
        .put_manifest("globex/app", "stolen", MEDIA_OCI_MANIFEST, &img.manifest)
        .await;
    assert_eq!(error(resp).await, (400, "MANIFEST_BLOB_UNKNOWN".into()));
    // acme's upload session is unknown under globex's name.
    let resp = globex
        .get(&format!("/v2/globex/app/blobs/uploads/{session_id}"))
        .send()
        .await;
    assert_eq!(
        error(resp.unwrap()).await,
        (404, "BLOB_UPLOAD_UNKNOWN".into())
    );
    let resp = globex
        .put(&format!(
            "/v2/globex/app/blobs/uploads/{session_id}?digest={never}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));

    // The catalog shows each tenant its own repositories only; strangers get a challenge.
    let cat: Value = globex
        .get("/v2/_catalog")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cat["repositories"], json!(["globex/app"]));
    let cat: Value = acme
        .get("/v2/_catalog")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cat["repositories"], json!(["acme/app"]));
    assert_eq!(reg.get("/v2/_catalog").send().await.unwrap().status(), 401);

    // Nothing globex did changed acme's storage (its refused session aside).
    let after = snapshot(&reg.driver).await;
    let acme_keys = |s: &std::collections::BTreeMap<String, u64>| {
        s.iter()
            .filter(|(k, _)| !k.starts_with("repositories/globex/"))
            .map(|(k, v)| (k.clone(), *v))
            .collect::<Vec<_>>()
    };
    assert_eq!(acme_keys(&after), acme_keys(&before));
    // And globex removing its link to the shared layer leaves acme's intact.
    let resp = globex
        .delete(&format!("/v2/globex/app/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let resp = acme
        .get(&format!("/v2/acme/app/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), img.layers[0].data);

    let events = auth.events.lock().unwrap().clone();
    assert!(events.contains(&AuditEvent::Push {
        subject: Some("acme".into()),
        repository: "acme/app".into(),
        reference: "v1".into(),
        digest: m.to_string(),
    }));
    assert!(events.iter().all(|e| match e {
        AuditEvent::Push {
            repository,
            subject,
            ..
        }
        | AuditEvent::Delete {
            repository,
            subject,
            ..
        } => {
            repository.split('/').next() == subject.as_deref()
        }
        _ => true,
    }));
}

/// Even for one caller allowed everywhere, a digest belongs to the repositories it was
/// pushed to (or mounted into), not to every repository.
async fn digests_do_not_cross_repositories(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let img = image("one");
    let m = reg.push_image("acme/a", "v1", &img).await;
    for path in [
        format!("/v2/acme/b/blobs/{}", img.config_digest),
        format!("/v2/acme/b/blobs/{m}"),
        format!("/v2/acme/b/manifests/{m}"),
    ] {
        assert_eq!(reg.get(&path).send().await.unwrap().status(), 404, "{path}");
    }
    let resp = reg.get("/v2/acme/b/tags/list").send().await.unwrap();
    assert_eq!(error(resp).await, (404, "NAME_UNKNOWN".into()));
    let resp = reg
        .get(&format!("/v2/acme/b/referrers/{m}"))
        .send()
        .await
        .unwrap();
    let index: Value = resp.json().await.unwrap();
    assert_eq!(index["manifests"], json!([]));
}
