//! Upload sessions live in storage: a push can hop between replicas sharing a store, and
//! survives a restart of the server.

mod common;

use berth_image::Digest;
use common::{Backend, Registry, header, location, text};

per_backend!(
    one_upload_across_two_replicas,
    upload_resumes_after_a_restart
);

async fn one_upload_across_two_replicas(backend: Backend) {
    let storage = backend.open();
    let a = Registry::open(storage.driver.clone()).await;
    let b = Registry::open(storage.reopen()).await;
    let data: Vec<u8> = (0..30_000u32).map(|i| (i % 199) as u8).collect();
    let digest = Digest::of(&data);

    let loc = a.start_upload("acme/app").await;
    let resp = b
        .patch(&loc)
        .header("content-range", "0-9999")
        .body(data[..10_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{}", text(resp).await);
    let resp = a.get(&loc).send().await.unwrap();
    assert_eq!(header(&resp, "range").as_deref(), Some("0-9999"));
    // Replica A refuses an out-of-order chunk against the state B wrote.
    let resp = a
        .patch(&loc)
        .header("content-range", "0-9")
        .body(vec![0u8; 10])
        .send()
        .await;
    assert_eq!(resp.unwrap().status(), 416);
    let resp = a
        .patch(&loc)
        .header("content-range", "10000-19999")
        .body(data[10_000..20_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let resp = b
        .put(&format!("{}?digest={digest}", location(&resp)))
        .header("content-range", "20000-29999")
        .body(data[20_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", text(resp).await);
    for reg in [&a, &b] {
        let resp = reg
            .get(&format!("/v2/acme/app/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.bytes().await.unwrap(), data);
    }
}

async fn upload_resumes_after_a_restart(backend: Backend) {
    let storage = backend.open();
    let first = Registry::open(storage.driver.clone()).await;
    let loc = first.start_upload("acme/app").await;
    let resp = first
        .patch(&loc)
        .body(b"hello ".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    drop(first);

    let second = Registry::open(storage.reopen()).await;
    let resp = second.get(&loc).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-5"));
    let resp = second
        .patch(&loc)
        .header("content-range", "6-10")
        .body(b"world".to_vec())
        .send();
    assert_eq!(resp.await.unwrap().status(), 202);
    let digest = Digest::of(b"hello world");
    let resp = second
        .put(&format!("{loc}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", text(resp).await);
    let resp = second
        .get(&format!("/v2/acme/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), &b"hello world"[..]);
}
