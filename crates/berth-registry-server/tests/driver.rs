//! The storage driver contract, checked the same way on every driver (containerd-style:
//! one suite, run per implementation).

mod common;

use std::collections::BTreeMap;
use std::io;

use berth_image::Digest;
use berth_registry_server::storage::{Append, ByteStream, Commit, StorageError};
use bytes::Bytes;
use common::Backend;
use futures::{StreamExt as _, TryStreamExt as _};

per_backend!(objects, uploads, invalid_keys);

fn chunks(parts: &[&'static [u8]]) -> ByteStream {
    let items: Vec<io::Result<Bytes>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
    futures::stream::iter(items).boxed()
}

async fn objects(backend: Backend) {
    let storage = backend.open();
    let d = storage.driver.clone();
    assert_eq!(d.get("a/b").await.unwrap(), None);
    assert_eq!(d.stat("a/b").await.unwrap(), None);
    d.delete("a/b").await.unwrap();
    assert!(d.list("a").await.unwrap().is_empty());

    d.put("a/b", Bytes::from_static(b"x")).await.unwrap();
    d.put("a/c/d", Bytes::from_static(b"yy")).await.unwrap();
    d.put("a/c/e", Bytes::from_static(b"old")).await.unwrap();
    d.put("a/c/e", Bytes::from_static(b"new!")).await.unwrap();
    assert_eq!(d.get("a/b").await.unwrap().unwrap(), &b"x"[..]);
    assert_eq!(d.get("a/c/e").await.unwrap().unwrap(), &b"new!"[..]);
    assert_eq!(d.stat("a/c/d").await.unwrap().unwrap().size, 2);
    assert_eq!(d.list("a").await.unwrap(), ["b", "c"]);
    assert_eq!(d.list("a/c").await.unwrap(), ["d", "e"]);
    let walked: BTreeMap<String, u64> = d
        .walk("a")
        .map_ok(|(k, m)| (k, m.size))
        .try_collect()
        .await
        .unwrap();
    let want: BTreeMap<String, u64> = [("a/b", 1), ("a/c/d", 2), ("a/c/e", 4)]
        .map(|(k, v)| (k.to_string(), v))
        .into();
    assert_eq!(walked, want);

    let read: Vec<Bytes> = d
        .read("a/c/e", 1..3)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(read.concat(), b"ew");
    let read: Vec<Bytes> = d
        .read("a/c/e", 4..4)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(read.concat().is_empty());

    d.delete("a/b").await.unwrap();
    assert_eq!(d.get("a/b").await.unwrap(), None);
    d.delete_prefix("a/c").await.unwrap();
    d.delete_prefix("never/was").await.unwrap();
    let left: Vec<_> = d.walk("a").try_collect().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

async fn uploads(backend: Backend) {
    let storage = backend.open();
    let d = storage.driver.clone();
    let id = uuid::Uuid::new_v4().to_string();
    assert_eq!(d.upload_size(&id).await.unwrap(), 0);
    let r = d.upload_append(&id, 5, chunks(&[b"x"])).await.unwrap();
    assert_eq!(r, Append::OffsetMismatch { size: 0 });
    let r = d
        .upload_append(&id, 0, chunks(&[b"hel", b"lo "]))
        .await
        .unwrap();
    assert_eq!(r, Append::Written { size: 6 });

    // A body that fails midway leaves the upload as it was.
    let failing: ByteStream = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"wor")),
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "client went away",
        )),
    ])
    .boxed();
    let err = d.upload_append(&id, 6, failing).await.unwrap_err();
    assert!(matches!(err, StorageError::Body(_)), "{err}");
    assert_eq!(d.upload_size(&id).await.unwrap(), 6);

    let r = d.upload_append(&id, 6, chunks(&[b"world"])).await.unwrap();
    assert_eq!(r, Append::Written { size: 11 });
    let r = d.upload_append(&id, 11, chunks(&[])).await.unwrap();
    assert_eq!(r, Append::Written { size: 11 });

    let right = Digest::of(b"hello world");
    let wrong = Digest::of(b"hello there");
    let r = d.upload_commit(&id, wrong).await.unwrap();
    assert_eq!(
        r,
        Commit::DigestMismatch {
            actual: right,
            size: 11
        }
    );
    for digest in [right, wrong] {
        let key = format!("blobs/sha256/{}", digest.hex());
        assert_eq!(
            d.stat(&key).await.unwrap(),
            None,
            "a mismatched commit stored {key}"
        );
    }
    let r = d.upload_commit(&id, right).await.unwrap();
    assert_eq!(r, Commit::Stored { size: 11 });
    let key = format!("blobs/sha256/{}", right.hex());
    assert_eq!(d.get(&key).await.unwrap().unwrap(), &b"hello world"[..]);
    d.upload_delete(&id).await.unwrap();
    assert_eq!(d.upload_size(&id).await.unwrap(), 0);

    // An upload that never received a byte is the empty blob.
    let empty = uuid::Uuid::new_v4().to_string();
    let r = d.upload_commit(&empty, Digest::of(b"")).await.unwrap();
    assert_eq!(r, Commit::Stored { size: 0 });
    let key = format!("blobs/sha256/{}", Digest::of(b"").hex());
    assert_eq!(d.stat(&key).await.unwrap().unwrap().size, 0);
}

async fn invalid_keys(backend: Backend) {
    let storage = backend.open();
    let d = storage.driver.clone();
    for key in ["../escape", "a/../../b", "/abs", "a//b", ""] {
        let err = d.put(key, Bytes::from_static(b"x")).await.unwrap_err();
        assert!(matches!(err, StorageError::InvalidKey(_)), "{key}: {err}");
        assert!(d.get(key).await.is_err(), "{key}");
    }
    assert!(d.upload_append("../x", 0, chunks(&[b"x"])).await.is_err());
    let outside = storage.dir.path().join("escape");
    assert!(!outside.exists());
}
