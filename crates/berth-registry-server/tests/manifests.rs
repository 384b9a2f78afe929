//! Manifests of the four media types, their validation, tags, the catalog and the
//! referrers API, on every storage backend.

mod common;

use berth_distribution::testutil::{Compression, Format, TestImage, TestIndex};
use berth_image::Digest;
use berth_image::config::{
    MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_MANIFEST_LIST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use common::{Backend, Registry, error, header, image, location, snapshot, text};
use serde_json::{Value, json};

per_backend!(
    all_four_media_types_round_trip,
    manifests_with_missing_references_are_refused,
    invalid_manifests_are_refused_without_changes,
    delete_by_tag_and_by_digest,
    tag_list_pagination,
    catalog_pagination,
    referrers_with_artifact_type_filter,
);

fn built(format: Format, arch: &str, content: &str) -> TestImage {
    use berth_distribution::Platform;
    TestImage::builder(format)
        .platform(Platform::new("linux", arch, None))
        .layer(Compression::Gzip, &[("f.txt", content.as_bytes())])
        .layer(Compression::None, &[("g.txt", b"second layer")])
        .build()
}

async fn check_get(reg: &Registry, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let resp = reg
        .get(&path)
        .header("accept", media_type)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    assert_eq!(header(&resp, "content-type").as_deref(), Some(media_type));
    assert_eq!(
        header(&resp, "docker-content-digest"),
        Some(Digest::of(body).to_string())
    );
    assert_eq!(resp.bytes().await.unwrap(), body);
    let resp = reg.head(&path).send().await.unwrap();
    assert_eq!(resp.status(), 200, "HEAD {path}");
    assert_eq!(header(&resp, "content-type").as_deref(), Some(media_type));
    assert_eq!(
        header(&resp, "content-length"),
        Some(body.len().to_string())
    );
    assert_eq!(
        header(&resp, "docker-content-digest"),
        Some(Digest::of(body).to_string())
    );
}

async fn all_four_media_types_round_trip(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    for (format, list_type, image_type) in [
        (
            Format::Docker,
            MEDIA_DOCKER_MANIFEST_LIST,
            MEDIA_DOCKER_MANIFEST,
        ),
        (Format::Oci, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST),
    ] {
        let amd = built(format, "amd64", "amd");
        let arm = built(format, "arm64", "arm");
        let index = TestIndex::new(format, vec![amd.clone(), arm.clone()]);
        assert_eq!(index.media_type, list_type);
        for img in [&amd, &arm] {
            reg.push_image("acme/app", &img.manifest_digest.to_string(), img)
                .await;
        }
        let resp = reg
            .put_manifest("acme/app", "multi", list_type, &index.manifest)
            .await;
        assert_eq!(resp.status(), 201, "{}", text(resp).await);
        assert_eq!(
            location(&resp),
            format!("/v2/acme/app/manifests/{}", index.digest)
        );
        assert_eq!(
            header(&resp, "docker-content-digest"),
            Some(index.digest.to_string())
        );

        check_get(&reg, "acme/app", "multi", list_type, &index.manifest).await;
        check_get(
            &reg,
            "acme/app",
            &index.digest.to_string(),
            list_type,
            &index.manifest,
        )
        .await;
        reg.push_image("acme/app", "single", &amd).await;
        check_get(&reg, "acme/app", "single", image_type, &amd.manifest).await;
        check_get(
            &reg,
            "acme/app",
            &arm.manifest_digest.to_string(),
            image_type,
            &arm.manifest,
        )
        .await;
    }
    // PUT by digest works too, and a manifest is also readable as a blob of its repository.
    let img = built(Format::Oci, "amd64", "by digest");
    for (_, data) in img.blobs() {
        reg.push_blob("acme/app", data).await;
    }
    let d = img.manifest_digest;
    let resp = reg
        .put_manifest(
            "acme/app",
            &d.to_string(),
            MEDIA_OCI_MANIFEST,
            &img.manifest,
        )
        .await;
    assert_eq!(resp.status(), 201);
    let resp = reg
        .get(&format!("/v2/acme/app/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), img.manifest);
    let resp = reg.get("/v2/acme/app/manifests/nope").send().await.unwrap();
    assert_eq!(error(resp).await, (404, "MANIFEST_UNKNOWN".into()));
}

async fn manifests_with_missing_references_are_refused(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let img = built(Format::Oci, "amd64", "x");
    // Every blob of the image is in *another* repository, and all but one layer in this one.
    for (_, data) in img.blobs() {
        reg.push_blob("acme/other", data).await;
    }
    for (_, data) in img.blobs().into_iter().skip(1) {
        reg.push_blob("acme/app", data).await;
    }
    let before = snapshot(&reg.driver).await;
    let resp = reg
        .put_manifest("acme/app", "v1", MEDIA_OCI_MANIFEST, &img.manifest)
        .await;
    assert_eq!(error(resp).await, (400, "MANIFEST_BLOB_UNKNOWN".into()));
    assert_eq!(snapshot(&reg.driver).await, before);

    // A descriptor whose size lies about the blob.
    let mut lying: Value = serde_json::from_slice(&img.manifest).unwrap();
    lying["config"]["size"] = json!(img.config.len() + 1);
    reg.push_blob("acme/app", &img.layers[0].data).await;
    let before_lie = snapshot(&reg.driver).await;
    let body = serde_json::to_vec(&lying).unwrap();
    let resp = reg
        .put_manifest("acme/app", "v1", MEDIA_OCI_MANIFEST, &body)
        .await;
    assert_eq!(error(resp).await, (400, "MANIFEST_INVALID".into()));
    assert_eq!(snapshot(&reg.driver).await, before_lie);

    // An index whose child manifest was never pushed here.
    let index = TestIndex::new(Format::Oci, vec![img.clone()]);
    let resp = reg
        .put_manifest("acme/app", "multi", MEDIA_OCI_INDEX, &index.manifest)
        .await;
    assert_eq!(error(resp).await, (400, "MANIFEST_BLOB_UNKNOWN".into()));
    reg.push_image("acme/other", "v1", &img).await;
    let resp = reg
        .put_manifest("acme/app", "multi", MEDIA_OCI_INDEX, &index.manifest)
        .await;
    assert_eq!(error(resp).await, (400, "MANIFEST_BLOB_UNKNOWN".into()));
    let resp = reg.get("/v2/acme/app/manifests/v1").send().await.unwrap();
    assert_eq!(resp.status(), 404);

    // Once everything is there, both go in.
    reg.push_image("acme/app", "v1", &img).await;
    let resp = reg
        .put_manifest("acme/app", "multi", MEDIA_OCI_INDEX, &index.manifest)
        .await;
    assert_eq!(resp.status(), 201);
}

/// Reference, content type, body, and the expected status and error code.
type Case<'a> = (&'a str, &'a str, Vec<u8>, (u16, &'a str));

async fn invalid_manifests_are_refused_without_changes(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let img = image("valid");
    reg.push_image("acme/app", "v1", &img).await;
    let before = snapshot(&reg.driver).await;
    let docker_body = {
        let mut v: Value = serde_json::from_slice(&img.manifest).unwrap();
        v["mediaType"] = json!(MEDIA_DOCKER_MANIFEST);
        serde_json::to_vec(&v).unwrap()
    };
    let other = Digest::of(b"other").to_string();
    let cases: Vec<Case> = vec![
        (
            "v2",
            MEDIA_OCI_MANIFEST,
            b"{not json".to_vec(),
            (400, "MANIFEST_INVALID"),
        ),
        (
            "v2",
            MEDIA_OCI_MANIFEST,
            br#"{"schemaVersion":2}"#.to_vec(),
            (400, "MANIFEST_INVALID"),
        ),
        (
            "v2",
            MEDIA_OCI_INDEX,
            img.manifest.clone(),
            (400, "MANIFEST_INVALID"),
        ),
        (
            "v2",
            MEDIA_OCI_MANIFEST,
            docker_body,
            (400, "MANIFEST_INVALID"),
        ),
        (
            "v2",
            "text/plain",
            img.manifest.clone(),
            (400, "MANIFEST_INVALID"),
        ),
        (
            "v2",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"name":"acme/app","tag":"v2","fsLayers":[]}"#.to_vec(),
            (400, "MANIFEST_INVALID"),
        ),
        (
            "v2",
            MEDIA_OCI_MANIFEST,
            vec![b' '; 4 * 1024 * 1024 + 1],
            (413, "SIZE_INVALID"),
        ),
        (
            &other,
            MEDIA_OCI_MANIFEST,
            img.manifest.clone(),
            (400, "DIGEST_INVALID"),
        ),
        (
            "-bad-tag",
            MEDIA_OCI_MANIFEST,
            img.manifest.clone(),
            (400, "MANIFEST_INVALID"),
        ),
        (
            "sha256:1234",
            MEDIA_OCI_MANIFEST,
            img.manifest.clone(),
            (400, "DIGEST_INVALID"),
        ),
    ];
    for (reference, media_type, body, want) in cases {
        let resp = reg
            .put_manifest("acme/app", reference, media_type, &body)
            .await;
        let got = error(resp).await;
        assert_eq!((got.0, got.1.as_str()), want, "{reference} {media_type}");
    }
    // The size limit also holds for a streamed body without Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..5).map(|_| Ok(vec![b' '; 1024 * 1024])).collect();
    let resp = reg
        .put("/v2/acme/app/manifests/v2")
        .header("content-type", MEDIA_OCI_MANIFEST)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (413, "SIZE_INVALID".into()));
    assert_eq!(
        snapshot(&reg.driver).await,
        before,
        "a refused manifest changed storage"
    );
}

async fn delete_by_tag_and_by_digest(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let img = image("del");
    let d = reg.push_image("acme/app", "a", &img).await;
    reg.put_manifest("acme/app", "b", MEDIA_OCI_MANIFEST, &img.manifest)
        .await;
    reg.put_manifest("acme/app", "c", MEDIA_OCI_MANIFEST, &img.manifest)
        .await;

    let resp = reg.delete("/v2/acme/app/manifests/a").send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let resp = reg.get("/v2/acme/app/manifests/a").send().await.unwrap();
    assert_eq!(error(resp).await, (404, "MANIFEST_UNKNOWN".into()));
    let resp = reg
        .get(&format!("/v2/acme/app/manifests/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = reg
        .delete(&format!("/v2/acme/app/manifests/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    for reference in ["b".to_string(), "c".to_string(), d.to_string()] {
        let resp = reg
            .get(&format!("/v2/acme/app/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error(resp).await,
            (404, "MANIFEST_UNKNOWN".into()),
            "{reference}"
        );
    }
    let resp = reg
        .delete(&format!("/v2/acme/app/manifests/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (404, "MANIFEST_UNKNOWN".into()));
    let resp = reg.delete("/v2/acme/app/manifests/a").send().await.unwrap();
    assert_eq!(error(resp).await, (404, "MANIFEST_UNKNOWN".into()));
    let tags: Value = reg
        .get("/v2/acme/app/tags/list")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!([]));
}

async fn tag_list_pagination(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let img = image("tags");
    reg.push_image("acme/app", "v1", &img).await;
    for tag in ["v2", "latest", "1.0", "v10"] {
        reg.put_manifest("acme/app", tag, MEDIA_OCI_MANIFEST, &img.manifest)
            .await;
    }
    let all: Value = reg
        .get("/v2/acme/app/tags/list")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        all,
        json!({"name": "acme/app", "tags": ["1.0", "latest", "v1", "v10", "v2"]})
    );

    let mut next = "/v2/acme/app/tags/list?n=2".to_string();
    let mut pages = Vec::new();
    loop {
        let resp = reg.get(&next).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let link = header(&resp, "link");
        let page: Value = resp.json().await.unwrap();
        pages.push(page["tags"].clone());
        match link {
            Some(link) => {
                assert!(link.ends_with(">; rel=\"next\""), "{link}");
                next = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_string();
                assert!(next.starts_with("/v2/acme/app/tags/list?"), "{next}");
            }
            None => break,
        }
    }
    assert_eq!(
        pages,
        vec![
            json!(["1.0", "latest"]),
            json!(["v1", "v10"]),
            json!(["v2"])
        ]
    );
    let resp = reg
        .get("/v2/acme/app/tags/list?last=v10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["tags"], json!(["v2"]));
    let resp = reg
        .get("/v2/acme/app/tags/list?n=zero")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = reg.get("/v2/acme/nothing/tags/list").send().await.unwrap();
    assert_eq!(error(resp).await, (404, "NAME_UNKNOWN".into()));
}

async fn catalog_pagination(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let img = image("cat");
    for repo in ["zeta/app", "acme/app", "acme/app/sub", "beta/x/y/z", "solo"] {
        reg.push_image(repo, "v1", &img).await;
    }
    // An upload alone does not make a repository.
    reg.start_upload("ghost/repo").await;
    let all: Value = reg
        .get("/v2/_catalog")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["repositories"],
        json!(["acme/app", "acme/app/sub", "beta/x/y/z", "solo", "zeta/app"])
    );
    let resp = reg.get("/v2/_catalog?n=3").send().await.unwrap();
    let link = header(&resp, "link").expect("Link header");
    assert_eq!(
        link,
        "</v2/_catalog?last=beta%2Fx%2Fy%2Fz&n=3>; rel=\"next\""
    );
    let page: Value = resp.json().await.unwrap();
    assert_eq!(
        page["repositories"],
        json!(["acme/app", "acme/app/sub", "beta/x/y/z"])
    );
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let resp = reg.get(&next).send().await.unwrap();
    assert!(header(&resp, "link").is_none());
    assert_eq!(
        resp.json::<Value>().await.unwrap()["repositories"],
        json!(["solo", "zeta/app"])
    );
}

/// An OCI artifact manifest with `subject` (empty config, one layer).
async fn push_artifact(
    reg: &Registry,
    subject: &TestImage,
    artifact_type: &str,
    payload: &[u8],
) -> (reqwest::Response, Digest) {
    let empty = reg.push_blob("acme/app", b"{}").await;
    let layer = reg.push_blob("acme/app", payload).await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": payload.len()}],
        "subject": {"mediaType": subject.media_type, "digest": subject.manifest_digest,
                    "size": subject.manifest.len()},
        "annotations": {"org.example.note": artifact_type},
    }))
    .unwrap();
    let d = Digest::of(&body);
    (
        reg.put_manifest("acme/app", &d.to_string(), MEDIA_OCI_MANIFEST, &body)
            .await,
        d,
    )
}

async fn referrers_with_artifact_type_filter(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let img = image("subject");
    // The subject need not exist first.
    let (resp, sbom) = push_artifact(&reg, &img, "application/vnd.example.sbom", b"sbom").await;
    assert_eq!(resp.status(), 201, "{}", text(resp).await);
    assert_eq!(
        header(&resp, "oci-subject"),
        Some(img.manifest_digest.to_string())
    );
    reg.push_image("acme/app", "v1", &img).await;
    let (resp, sig) = push_artifact(&reg, &img, "application/vnd.example.sig", b"sig").await;
    assert_eq!(resp.status(), 201);

    let path = format!("/v2/acme/app/referrers/{}", img.manifest_digest);
    let resp = reg.get(&path).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some(MEDIA_OCI_INDEX)
    );
    assert!(header(&resp, "oci-filters-applied").is_none());
    let index: Value = resp.json().await.unwrap();
    assert_eq!(index["mediaType"], MEDIA_OCI_INDEX);
    let listed: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().into(),
                m["artifactType"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut want = vec![
        (sbom.to_string(), "application/vnd.example.sbom".to_string()),
        (sig.to_string(), "application/vnd.example.sig".to_string()),
    ];
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(index["manifests"][0]["mediaType"], MEDIA_OCI_MANIFEST);
    assert!(index["manifests"][0]["annotations"]["org.example.note"].is_string());

    let resp = reg
        .get(&format!("{path}?artifactType=application/vnd.example.sig"))
        .send()
        .await;
    let resp = resp.unwrap();
    assert_eq!(
        header(&resp, "oci-filters-applied").as_deref(),
        Some("artifactType")
    );
    let index: Value = resp.json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], sig.to_string());

    // Deleting a referrer removes it from the list; an unknown subject has an empty list.
    let resp = reg
        .delete(&format!("/v2/acme/app/manifests/{sbom}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let index: Value = reg.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let unknown = format!("/v2/acme/app/referrers/{}", Digest::of(b"nothing"));
    let index: Value = reg
        .get(&unknown)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(index["manifests"], json!([]));
    let resp = reg
        .get("/v2/acme/app/referrers/sha256:nope")
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (400, "DIGEST_INVALID".into()));
}
