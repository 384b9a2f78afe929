//! The same raw Distribution-API conversation with Debian's `docker-registry` (CNCF
//! distribution) and with berth: statuses, error codes and the headers clients rely on
//! must agree.

mod common;

use berth_distribution::testutil::TestRegistry;
use berth_image::Digest;
use berth_image::config::MEDIA_OCI_MANIFEST;
use common::{Backend, Registry, image};
use serde_json::Value;

/// One observation: what was asked, the status, the error code and selected headers.
type Seen = (String, u16, String, Vec<(&'static str, Option<String>)>);

struct Probe {
    base: String,
    http: reqwest::Client,
    seen: Vec<Seen>,
}

impl Probe {
    async fn send(
        &mut self,
        label: &str,
        req: reqwest::RequestBuilder,
        headers: &[&'static str],
    ) -> reqwest::Response {
        let resp = req.send().await.unwrap_or_else(|e| panic!("{label}: {e}"));
        // Locations compare without scheme and host (docker-registry answers absolute URLs).
        let values = headers
            .iter()
            .map(|h| {
                let v = resp.headers().get(*h).and_then(|v| v.to_str().ok());
                (
                    *h,
                    v.map(|v| v.strip_prefix(&self.base).unwrap_or(v).to_string()),
                )
            })
            .collect();
        let status = resp.status().as_u16();
        let (code, resp) = if status >= 400 {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (
                body["errors"][0]["code"].as_str().unwrap_or("").to_string(),
                None,
            )
        } else {
            (String::new(), Some(resp))
        };
        self.seen.push((label.to_string(), status, code, values));
        resp.unwrap_or_else(|| {
            // Failed requests carry no further information for the caller.
            http::Response::new(Vec::<u8>::new()).into()
        })
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn location(&self, resp: &reqwest::Response) -> String {
        let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok()) else {
            panic!("{}: no Location; so far: {:#?}", self.base, self.seen);
        };
        self.url(loc)
    }
}

/// `loc` (which may carry a query already) with `digest=`.
fn with_digest(loc: &str, digest: &Digest) -> String {
    let mut url = url::Url::parse(loc).expect("absolute upload URL");
    url.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    url.to_string()
}

/// The conversation; returns what was seen.
async fn converse(base: String) -> Vec<Seen> {
    let mut p = Probe {
        base,
        http: common::client(),
        seen: Vec::new(),
    };
    let http = p.http.clone();
    let img = image("compat");
    let (layer, config) = (&img.layers[0], &img.config);
    let unknown = Digest::of(b"unknown");

    p.send(
        "base",
        http.get(p.url("/v2/")),
        &["docker-distribution-api-version"],
    )
    .await;
    let path = format!("/v2/acme/app/blobs/{unknown}");
    p.send("blob unknown", http.get(p.url(&path)), &[]).await;
    p.send("blob unknown head", http.head(p.url(&path)), &[])
        .await;
    let path = "/v2/acme/app/manifests/nope";
    p.send("manifest unknown", http.get(p.url(path)), &[]).await;
    p.send(
        "tags of unknown repo",
        http.get(p.url("/v2/acme/none/tags/list")),
        &[],
    )
    .await;

    // A chunked upload.
    let start = http.post(p.url("/v2/acme/app/blobs/uploads/"));
    let resp = p
        .send("upload start", start, &["range", "content-length"])
        .await;
    let loc = p.location(&resp);
    let data = &layer.data;
    let half = data.len() / 2;
    // Each step continues at the Location of the last answer (docker-registry signs a
    // `_state` into it).
    let chunk = |loc: &str, from: usize, to: usize| {
        http.patch(loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{from}-{}", to - 1))
            .header("content-length", (to - from).to_string())
            .body(data[from..to].to_vec())
    };
    let resp = p.send("chunk 1", chunk(&loc, 0, half), &["range"]).await;
    let loc = p.location(&resp);
    // Not compared: an out-of-order chunk. The spec answers 416 (as berth does, see
    // tests/blobs.rs); Debian's docker-registry 2.8 appends it anyway and breaks the upload.
    p.send("upload status", http.get(&loc), &["range"]).await;
    let resp = p
        .send("chunk 2", chunk(&loc, half, data.len()), &["range"])
        .await;
    let loc = p.location(&resp);
    let finish = http.put(with_digest(&loc, &layer.digest));
    p.send("upload finish", finish, &["docker-content-digest"])
        .await;

    // Monolithic, with a wrong digest then the right one.
    let wrong = http.post(p.url("/v2/acme/app/blobs/uploads/"));
    let resp = p.send("upload start 2", wrong, &[]).await;
    let loc = p.location(&resp);
    let put = http.put(with_digest(&loc, &unknown)).body(config.clone());
    p.send("digest mismatch", put, &[]).await;
    let resp = p
        .send(
            "upload start 3",
            http.post(p.url("/v2/acme/app/blobs/uploads/")),
            &[],
        )
        .await;
    let loc = p.location(&resp);
    let put = http
        .put(with_digest(&loc, &img.config_digest))
        .body(config.clone());
    p.send("monolithic put", put, &["docker-content-digest"])
        .await;

    let path = format!("/v2/acme/app/blobs/{}", layer.digest);
    p.send(
        "blob head",
        http.head(p.url(&path)),
        &["content-length", "docker-content-digest"],
    )
    .await;
    let ranged = http.get(p.url(&path)).header("range", "bytes=1-2");
    p.send("blob range", ranged, &["content-range", "content-length"])
        .await;

    // Manifests.
    let base = p.base.clone();
    let put = |reference: &str, body: Vec<u8>| {
        http.put(format!("{base}/v2/acme/app/manifests/{reference}"))
            .header("content-type", MEDIA_OCI_MANIFEST)
            .body(body)
    };
    let invalid = put("bad", b"{not json".to_vec());
    p.send("manifest invalid", invalid, &[]).await;
    let mut missing: Value = serde_json::from_slice(&img.manifest).unwrap();
    missing["layers"][0]["digest"] = Value::String(unknown.to_string());
    let missing = put("missing", serde_json::to_vec(&missing).unwrap());
    p.send("manifest blob unknown", missing, &[]).await;
    for tag in ["v1", "v2", "v3"] {
        let ok = put(tag, img.manifest.clone());
        p.send("manifest put", ok, &["docker-content-digest", "location"])
            .await;
    }
    let get = http
        .get(p.url("/v2/acme/app/manifests/v1"))
        .header("accept", MEDIA_OCI_MANIFEST);
    p.send(
        "manifest get",
        get,
        &["content-type", "docker-content-digest"],
    )
    .await;
    // Only the status: docker-registry 2.8 ignores `n` for tags (no `Link`); berth pages
    // as the spec says (tests/manifests.rs).
    p.send(
        "tags page",
        http.get(p.url("/v2/acme/app/tags/list?n=2")),
        &[],
    )
    .await;

    // Mount, deletes, cancel.
    let mount = format!(
        "/v2/acme/other/blobs/uploads/?mount={}&from=acme/app",
        layer.digest
    );
    p.send(
        "mount",
        http.post(p.url(&mount)),
        &["location", "docker-content-digest"],
    )
    .await;
    let path = format!("/v2/acme/other/blobs/{}", layer.digest);
    p.send("blob delete", http.delete(p.url(&path)), &[]).await;
    p.send("blob deleted", http.get(p.url(&path)), &[]).await;
    let resp = p
        .send(
            "upload start 4",
            http.post(p.url("/v2/acme/app/blobs/uploads/")),
            &[],
        )
        .await;
    let loc = p.location(&resp);
    p.send("upload cancel", http.delete(&loc), &[]).await;
    p.send("upload cancelled", http.get(&loc), &[]).await;
    let path = format!("/v2/acme/app/manifests/{}", img.manifest_digest);
    p.send("manifest delete", http.delete(p.url(&path)), &[])
        .await;
    p.send("manifest deleted", http.get(p.url(&path)), &[])
        .await;
    p.seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_conversation_as_docker_registry() {
    let reference = TestRegistry::start().await;
    let theirs = converse(reference.url()).await;
    let storage = Backend::Fs.open();
    let ours_reg = Registry::open(storage.driver.clone()).await;
    let ours = converse(ours_reg.base.clone()).await;
    assert_eq!(theirs.len(), ours.len());
    let mut differences = Vec::new();
    for (t, o) in theirs.iter().zip(&ours) {
        if t != o {
            differences.push(format!("docker-registry: {t:?}\nberth:           {o:?}"));
        }
    }
    assert!(differences.is_empty(), "\n{}", differences.join("\n\n"));
}
