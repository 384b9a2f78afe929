//! Garbage collection over every backend: what no manifest references goes, what is
//! referenced, recent or part of a push in progress stays.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use berth_distribution::testutil::{Compression, Format, TestImage, TestIndex};
use berth_image::Digest;
use berth_registry_server::gc::{self, GcOptions};
use common::{Backend, Registry, image, snapshot};

per_backend!(sweeps_only_unreferenced_blobs, spares_pushes_in_progress);

fn with_layers(layers: &[&str]) -> TestImage {
    let mut b = TestImage::builder(Format::Oci);
    for l in layers {
        b = b.layer(Compression::None, &[("f", l.as_bytes())]);
    }
    b.build()
}

fn now_opts(dry_run: bool) -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        dry_run,
        ..GcOptions::default()
    }
}

async fn status(reg: &Registry, path: String) -> u16 {
    reg.get(&path).send().await.unwrap().status().as_u16()
}

async fn sweeps_only_unreferenced_blobs(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    let keep = with_layers(&["shared", "keep"]);
    let gone = with_layers(&["shared", "gone"]);
    reg.push_image("acme/app", "keep", &keep).await;
    let gone_digest = reg.push_image("acme/app", "gone", &gone).await;
    // An index whose children are untagged, and a stray blob no manifest mentions.
    let (c1, c2) = (with_layers(&["child one"]), with_layers(&["child two"]));
    let index = TestIndex::new(Format::Oci, vec![c1.clone(), c2.clone()]);
    for c in [&c1, &c2] {
        reg.push_image("acme/multi", &c.manifest_digest.to_string(), c)
            .await;
    }
    let resp = reg
        .put_manifest("acme/multi", "v1", index.media_type, &index.manifest)
        .await;
    assert_eq!(resp.status(), 201);
    let stray = reg.push_blob("acme/stray", b"stray bytes").await;
    let resp = reg
        .delete(&format!("/v2/acme/app/manifests/{gone_digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    tokio::time::sleep(Duration::from_millis(20)).await;

    let expected: BTreeSet<Digest> = [
        gone.layers[1].digest,
        gone.config_digest,
        gone_digest,
        stray,
    ]
    .into();
    let before = snapshot(&storage.driver).await;
    let report = gc::collect(&storage.driver, &now_opts(true)).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(
        report
            .deleted
            .iter()
            .map(|(d, _)| *d)
            .collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(
        snapshot(&storage.driver).await,
        before,
        "a dry run deleted something"
    );

    let report = gc::collect(&storage.driver, &now_opts(false))
        .await
        .unwrap();
    assert_eq!(
        report
            .deleted
            .iter()
            .map(|(d, _)| *d)
            .collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(
        report.links_removed, 3,
        "gone's layer and config links, the stray link"
    );
    assert_eq!(report.blobs, report.marked + report.deleted.len());
    for d in &expected {
        let key = format!("blobs/sha256/{}", d.hex());
        assert_eq!(
            storage.driver.stat(&key).await.unwrap(),
            None,
            "{d} survived"
        );
    }
    assert_eq!(
        status(&reg, format!("/v2/acme/stray/blobs/{stray}")).await,
        404
    );

    // Everything still referenced pulls whole.
    assert_eq!(
        status(&reg, "/v2/acme/app/manifests/keep".into()).await,
        200
    );
    for (d, _) in keep.blobs() {
        assert_eq!(status(&reg, format!("/v2/acme/app/blobs/{d}")).await, 200);
    }
    assert_eq!(
        status(&reg, "/v2/acme/multi/manifests/v1".into()).await,
        200
    );
    for c in [&c1, &c2] {
        assert_eq!(
            status(
                &reg,
                format!("/v2/acme/multi/manifests/{}", c.manifest_digest)
            )
            .await,
            200
        );
        for (d, _) in c.blobs() {
            assert_eq!(status(&reg, format!("/v2/acme/multi/blobs/{d}")).await, 200);
        }
    }
    // A second run finds nothing more; with the default grace nothing recent goes either.
    let report = gc::collect(&storage.driver, &now_opts(false))
        .await
        .unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    let fresh = reg.push_blob("acme/stray", b"fresh stray").await;
    let report = gc::collect(&storage.driver, &GcOptions::default())
        .await
        .unwrap();
    assert!(report.deleted.is_empty());
    assert_eq!(
        status(&reg, format!("/v2/acme/stray/blobs/{fresh}")).await,
        200
    );
}

async fn spares_pushes_in_progress(backend: Backend) {
    let storage = backend.open();
    let reg = Registry::open(storage.driver.clone()).await;
    // A push in progress: one blob linked, another still uploading, no manifest yet.
    let wip = reg.push_blob("acme/wip", b"first layer of a push").await;
    let session = reg.start_upload("acme/wip").await;
    let idle = reg.push_blob("acme/idle", b"abandoned").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = gc::collect(&storage.driver, &now_opts(false))
        .await
        .unwrap();
    let deleted: Vec<Digest> = report.deleted.iter().map(|(d, _)| *d).collect();
    assert_eq!(deleted, vec![idle]);
    assert_eq!(status(&reg, format!("/v2/acme/wip/blobs/{wip}")).await, 200);
    assert_eq!(reg.get(&session).send().await.unwrap().status(), 204);

    // An old blob mounted into another repository just now is part of a new push: kept,
    // although its bytes and its original link are older than the grace period.
    let old = reg.push_blob("acme/src", &image("old").config).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = reg
        .post(&format!(
            "/v2/acme/dst/blobs/uploads/?mount={old}&from=acme/src"
        ))
        .send();
    assert_eq!(resp.await.unwrap().status(), 201);
    let one_second = GcOptions {
        grace: Duration::from_secs(1),
        ..GcOptions::default()
    };
    let report = gc::collect(&storage.driver, &one_second).await.unwrap();
    assert!(report.deleted.iter().all(|(d, _)| *d != old), "{report:?}");
    assert_eq!(status(&reg, format!("/v2/acme/dst/blobs/{old}")).await, 200);

    // Abandoned sessions expire; then the push they protected is garbage too.
    let expired = GcOptions {
        upload_expiry: Duration::ZERO,
        ..now_opts(false)
    };
    let report = gc::collect(&storage.driver, &expired).await.unwrap();
    assert_eq!(
        report.uploads_purged,
        vec![session.rsplit('/').next().unwrap().to_string()]
    );
    assert!(report.deleted.iter().any(|(d, _)| *d == wip), "{report:?}");
    assert_eq!(reg.get(&session).send().await.unwrap().status(), 404);
}
