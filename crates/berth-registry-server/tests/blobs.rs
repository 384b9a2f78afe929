//! Blob pulls and uploads through the HTTP API, as the OCI Distribution Spec describes
//! them, on every storage backend.

mod common;

use std::time::Duration;

use berth_image::Digest;
use common::{Backend, Registry, error, header, location, snapshot, text};
use futures::TryStreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

per_backend!(
    monolithic_push_then_get_head_range,
    chunked_upload_with_out_of_order_chunk,
    streamed_patch_status_and_put_with_final_chunk,
    digest_mismatch_links_nothing,
    cancel_upload,
    delete_blob_unlinks_only_that_repository,
    malformed_input_is_refused_without_changes,
    truncated_chunk_leaves_the_upload_as_it_was,
    mount_from_another_repository,
    large_blobs_stream_in_one_or_several_chunks,
);

async fn monolithic_push_then_get_head_range(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let base = reg.get("/v2/").send().await.unwrap();
    assert_eq!(base.status(), 200);
    assert_eq!(
        header(&base, "docker-distribution-api-version").as_deref(),
        Some("registry/2.0")
    );

    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = reg.push_blob("acme/app", &data).await;
    let path = format!("/v2/acme/app/blobs/{digest}");

    let resp = reg.get(&path).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "docker-content-digest"),
        Some(digest.to_string())
    );
    assert_eq!(
        header(&resp, "content-length"),
        Some(data.len().to_string())
    );
    assert_eq!(resp.bytes().await.unwrap(), data);

    let resp = reg.head(&path).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "content-length"),
        Some(data.len().to_string())
    );
    assert_eq!(
        header(&resp, "docker-content-digest"),
        Some(digest.to_string())
    );

    let resp = reg
        .get(&path)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(
        header(&resp, "content-range").as_deref(),
        Some("bytes 10-19/100000")
    );
    assert_eq!(resp.bytes().await.unwrap(), data[10..20]);
    let resp = reg
        .get(&path)
        .header("range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().await.unwrap(), data[data.len() - 5..]);
    let resp = reg
        .get(&path)
        .header("range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);
    assert_eq!(
        header(&resp, "content-range").as_deref(),
        Some("bytes */100000")
    );

    let missing = Digest::of(b"never pushed");
    let resp = reg
        .get(&format!("/v2/acme/app/blobs/{missing}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UNKNOWN".into()));
    let resp = reg
        .head(&format!("/v2/acme/app/blobs/{missing}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // The empty blob is a blob too.
    let empty = reg.push_blob("acme/app", b"").await;
    let resp = reg
        .get(&format!("/v2/acme/app/blobs/{empty}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.unwrap().is_empty());
}

async fn chunked_upload_with_out_of_order_chunk(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    let digest = Digest::of(&data);
    let loc = reg.start_upload("acme/app").await;
    assert!(loc.starts_with("/v2/acme/app/blobs/uploads/"), "{loc}");

    let patch = |loc: String, range: &str, chunk: &[u8]| {
        reg.patch(&loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", range.to_string())
            .header("content-length", chunk.len().to_string())
            .body(chunk.to_vec())
            .send()
    };
    let resp = patch(loc.clone(), "0-999", &data[..1000]).await.unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-999"));
    let uuid = header(&resp, "docker-upload-uuid").unwrap();
    assert!(loc.ends_with(&uuid));
    let loc = location(&resp);

    // A chunk that skips ahead, or repeats, is refused with the current range.
    for (range, chunk) in [("2000-2999", &data[2000..]), ("0-999", &data[..1000])] {
        let resp = patch(loc.clone(), range, chunk).await.unwrap();
        assert_eq!(resp.status(), 416, "{range}");
        assert_eq!(header(&resp, "range").as_deref(), Some("0-999"));
        assert!(header(&resp, "location").is_some());
    }
    // A Content-Range that disagrees with the body length, too.
    let resp = reg
        .patch(&loc)
        .header("content-range", "1000-1099")
        .body(data[1000..1010].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);

    let resp = patch(loc.clone(), "1000-1999", &data[1000..2000])
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let resp = patch(location(&resp), "2000-2999", &data[2000..])
        .await
        .unwrap();
    assert_eq!(header(&resp, "range").as_deref(), Some("0-2999"));
    let loc = location(&resp);

    let resp = reg
        .put(&format!("{loc}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", text(resp).await);
    let got = reg
        .get(&format!("/v2/acme/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), data);
    // The session is over.
    let resp = reg.get(&loc).send().await.unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));
}

async fn streamed_patch_status_and_put_with_final_chunk(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let data = vec![42u8; 200_000];
    let digest = Digest::of(&data);
    let loc = reg.start_upload("acme/app").await;

    let resp = reg.get(&loc).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-0"));

    // Docker's way: PATCH without Content-Range, as a chunked stream.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = data[..150_000]
        .chunks(10_000)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let resp = reg.patch(&loc).body(body).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-149999"));

    let resp = reg.get(&loc).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-149999"));

    // The last chunk rides on the PUT.
    let resp = reg
        .put(&format!("{loc}?digest={digest}"))
        .header("content-range", "150000-199999")
        .body(data[150_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", text(resp).await);
    assert_eq!(location(&resp), format!("/v2/acme/app/blobs/{digest}"));
    let got = reg
        .get(&format!("/v2/acme/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().len(), data.len());
}

async fn digest_mismatch_links_nothing(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let before = snapshot(&reg.driver).await;
    let claimed = Digest::of(b"what the client says");

    // Monolithic.
    let resp = reg
        .post(&format!("/v2/acme/app/blobs/uploads/?digest={claimed}"))
        .body(b"something else".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (400, "DIGEST_INVALID".into()));
    // Session, PUT with the wrong digest.
    let loc = reg.start_upload("acme/app").await;
    let resp = reg
        .patch(&loc)
        .body(b"some bytes".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let resp = reg
        .put(&format!("{loc}?digest={claimed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (400, "DIGEST_INVALID".into()));
    // PUT without a digest.
    let loc = reg.start_upload("acme/app").await;
    let resp = reg.put(&loc).body(b"x".to_vec()).send().await.unwrap();
    assert_eq!(error(resp).await, (400, "DIGEST_INVALID".into()));

    assert_eq!(
        snapshot(&reg.driver).await,
        before,
        "a refused upload changed storage"
    );
    for digest in [
        claimed,
        Digest::of(b"something else"),
        Digest::of(b"some bytes"),
    ] {
        let resp = reg
            .head(&format!("/v2/acme/app/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }
}

async fn cancel_upload(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let loc = reg.start_upload("acme/app").await;
    reg.patch(&loc).body(vec![1u8; 100]).send().await.unwrap();
    let resp = reg.delete(&loc).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let resp = reg.get(&loc).send().await.unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));
    let resp = reg.patch(&loc).body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));
    let resp = reg.delete(&loc).send().await.unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));
    let left: Vec<_> = storage.driver.walk("uploads").try_collect().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

async fn delete_blob_unlinks_only_that_repository(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let d = reg.push_blob("acme/one", b"shared layer").await;
    reg.push_blob("acme/two", b"shared layer").await;
    // Stored once.
    let blobs = storage.driver.list("blobs/sha256").await.unwrap();
    assert_eq!(blobs, vec![d.hex()]);

    let resp = reg
        .delete(&format!("/v2/acme/one/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let resp = reg
        .get(&format!("/v2/acme/one/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UNKNOWN".into()));
    let resp = reg
        .get(&format!("/v2/acme/two/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = reg
        .delete(&format!("/v2/acme/one/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UNKNOWN".into()));
}

async fn malformed_input_is_refused_without_changes(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    reg.push_blob("acme/app", b"x").await;
    let before = snapshot(&reg.driver).await;
    let long = format!("acme/{}", "a".repeat(260));
    for name in ["Acme/app", "acme/-x", "acme/a..b", "acme//x", long.as_str()] {
        let resp = reg
            .post(&format!("/v2/{name}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(error(resp).await, (400, "NAME_INVALID".into()), "{name}");
        let resp = reg
            .get(&format!("/v2/{name}/tags/list"))
            .send()
            .await
            .unwrap();
        assert_eq!(error(resp).await, (400, "NAME_INVALID".into()), "{name}");
    }
    for digest in ["sha256:abc", "md5:00", "sha256:ZZ", "nonsense", "sha512:00"] {
        let resp = reg
            .get(&format!("/v2/acme/app/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error(resp).await,
            (400, "DIGEST_INVALID".into()),
            "{digest}"
        );
        let resp = reg
            .post(&format!("/v2/acme/app/blobs/uploads/?digest={digest}"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            error(resp).await,
            (400, "DIGEST_INVALID".into()),
            "{digest}"
        );
    }
    let resp = reg
        .get("/v2/acme/app/blobs/uploads/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (404, "BLOB_UPLOAD_UNKNOWN".into()));
    // `..` as sent, not normalised away by a client library.
    for path in [
        "/v2/acme/../etc/blobs/uploads/",
        "/v2/../../x/tags/list",
        "/v2/acme/%2e%2e/x/tags/list",
    ] {
        let (status, body) = common::raw(&reg.host(), "POST", path).await;
        assert!(
            status == 400 && body.contains("NAME_INVALID") || status == 404,
            "{path}: {status}"
        );
    }
    let resp = reg.put("/v2/acme/app/tags/list").send().await.unwrap();
    assert_eq!(error(resp).await, (405, "UNSUPPORTED".into()));
    assert_eq!(snapshot(&reg.driver).await, before);
}

/// A client that promises 1000 bytes and hangs up after 500: the chunk is dropped whole.
async fn truncated_chunk_leaves_the_upload_as_it_was(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let loc = reg.start_upload("acme/app").await;
    let resp = reg.patch(&loc).body(vec![7u8; 100]).send().await.unwrap();
    assert_eq!(header(&resp, "range").as_deref(), Some("0-99"));

    let mut tcp = tokio::net::TcpStream::connect(reg.host()).await.unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Range: 100-1099\r\nContent-Length: 1000\r\n\r\n",
        reg.host()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&[9u8; 500]).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    drop(tcp);

    // The server noticed (its append failed and rolled back); the next status shows 100.
    let mut range = None;
    for _ in 0..50 {
        let resp = reg.get(&loc).send().await.unwrap();
        range = header(&resp, "range");
        if range.as_deref() == Some("0-99") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(range.as_deref(), Some("0-99"));
    let mut data = vec![7u8; 100];
    data.extend_from_slice(&[8u8; 50]);
    let resp = reg
        .put(&format!("{loc}?digest={}", Digest::of(&data)))
        .header("content-range", "100-149")
        .body(vec![8u8; 50])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", text(resp).await);
}

async fn mount_from_another_repository(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let d = reg.push_blob("acme/base", b"base layer").await;

    let resp = reg
        .post(&format!(
            "/v2/acme/app/blobs/uploads/?mount={d}&from=acme/base"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(location(&resp), format!("/v2/acme/app/blobs/{d}"));
    assert_eq!(header(&resp, "docker-content-digest"), Some(d.to_string()));
    let resp = reg
        .get(&format!("/v2/acme/app/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), &b"base layer"[..]);

    // Unknown in the source (or no source): a plain upload session instead.
    let missing = Digest::of(b"missing");
    for query in [
        format!("mount={missing}&from=acme/base"),
        format!("mount={d}"),
    ] {
        let resp = reg
            .post(&format!("/v2/acme/other/blobs/uploads/?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{query}");
        assert!(location(&resp).starts_with("/v2/acme/other/blobs/uploads/"));
    }
    let resp = reg
        .head(&format!("/v2/acme/other/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = reg
        .post("/v2/acme/other/blobs/uploads/?mount=sha256:bad&from=acme/base")
        .send()
        .await
        .unwrap();
    assert_eq!(error(resp).await, (400, "DIGEST_INVALID".into()));
}

/// Bigger than the object-store driver's part buffer: multipart parts, a server-side copy
/// for a single-chunk upload, a streamed concatenation for a chunked one.
async fn large_blobs_stream_in_one_or_several_chunks(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let digest = Digest::of(&data);
    for chunk_size in [data.len(), data.len() / 2 + 1] {
        let mut loc = reg.start_upload("acme/big").await;
        for (i, chunk) in data.chunks(chunk_size).enumerate() {
            let start = i * chunk_size;
            let resp = reg
                .patch(&loc)
                .header(
                    "content-range",
                    format!("{start}-{}", start + chunk.len() - 1),
                )
                .body(chunk.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
            loc = location(&resp);
        }
        let resp = reg
            .put(&format!("{loc}?digest={digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", text(resp).await);
        let got = reg
            .get(&format!("/v2/acme/big/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&got, "content-length"), Some(data.len().to_string()));
        let got = got.bytes().await.unwrap();
        assert!(
            got == data,
            "{chunk_size}-byte chunks: the blob came back different"
        );
    }
}
