//! The `object_store` driver (S3, GCS, Azure, and the local-filesystem and in-memory stores
//! for tests). Several stateless replicas can share one bucket: upload sessions are objects
//! too. Each PATCH writes one part, `uploads/<id>/parts/<offset>`, named by the offset it
//! starts at; the commit hashes the parts in order and either copies the single part into
//! `blobs/` (server-side) or streams them into one multipart upload to the blob's key, which
//! is completed only when the digest matched.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use berth_image::Digest;
use berth_image::digest::Hasher;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, PutPayload};
use tokio::io::AsyncWriteExt as _;

use super::{Append, ByteStream, Commit, Driver, Meta, Result, StorageError, check_key, keys};

/// Buffered before a part or blob switches to a multipart upload (S3 parts are ≥ 5 MiB).
const PART_BUFFER: usize = 10 * 1024 * 1024;
/// Offsets in part names are zero-padded so names sort in upload order.
const OFFSET_WIDTH: usize = 20;

/// Storage in any [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct ObjectDriver {
    store: Arc<dyn ObjectStore>,
}

impl ObjectDriver {
    pub fn new(store: Arc<dyn ObjectStore>) -> ObjectDriver {
        ObjectDriver { store }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The parts of upload `id` as (offset, key, size), sorted by offset.
    async fn parts(&self, id: &str) -> Result<Vec<(u64, Path, u64)>> {
        let prefix = parts_prefix(id);
        let prefix_path = path(&prefix)?;
        let mut parts: Vec<(u64, Path, u64)> = self
            .store
            .list(Some(&prefix_path))
            .map_err(|e| os_err("list", &prefix)(e))
            .try_filter_map(|meta| async move {
                let offset = meta.location.filename().and_then(|n| n.parse::<u64>().ok());
                Ok(offset.map(|o| (o, meta.location, meta.size)))
            })
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.0);
        Ok(parts)
    }
}

fn parts_prefix(id: &str) -> String {
    format!("{}/parts", keys::upload(id))
}

fn path(key: &str) -> Result<Path> {
    check_key(key)?;
    Path::parse(key).map_err(|_| StorageError::InvalidKey(key.to_string()))
}

fn os_err(op: &'static str, key: &str) -> impl FnOnce(object_store::Error) -> StorageError {
    let key = key.to_string();
    move |source| StorageError::ObjectStore { op, key, source }
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

/// The part that would follow `parts`: the end of the last one (0 when none).
fn end_of(parts: &[(u64, Path, u64)]) -> u64 {
    parts.last().map_or(0, |(offset, _, size)| offset + size)
}

/// Hashes `key` into `hasher`, handing each chunk to `sink` too.
async fn stream_object(
    store: &Arc<dyn ObjectStore>,
    key: &Path,
    hasher: &mut Hasher,
    mut sink: Option<&mut BufWriter>,
) -> Result<()> {
    let got = store.get(key).await.map_err(os_err("get", key.as_ref()))?;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(os_err("read", key.as_ref()))?;
        hasher.update(&chunk);
        if let Some(sink) = sink.as_deref_mut() {
            sink.put(chunk)
                .await
                .map_err(os_err("write", key.as_ref()))?;
        }
    }
    Ok(())
}

impl Driver for ObjectDriver {
    fn describe(&self) -> String {
        format!("object_store({})", self.store)
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>> {
        async move {
            let p = path(key)?;
            match self.store.get(&p).await {
                Ok(r) => Ok(Some(r.bytes().await.map_err(os_err("read", key))?)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(os_err("get", key)(e)),
            }
        }
        .boxed()
    }

    fn put<'a>(&'a self, key: &'a str, data: Bytes) -> BoxFuture<'a, Result<()>> {
        async move {
            let p = path(key)?;
            self.store
                .put(&p, PutPayload::from(data))
                .await
                .map_err(os_err("put", key))?;
            Ok(())
        }
        .boxed()
    }

    fn stat<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Meta>>> {
        async move {
            let p = path(key)?;
            match self.store.head(&p).await {
                Ok(m) => Ok(Some(Meta {
                    size: m.size,
                    modified: m.last_modified.into(),
                })),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(os_err("head", key)(e)),
            }
        }
        .boxed()
    }

    fn read<'a>(&'a self, key: &'a str, range: Range<u64>) -> BoxFuture<'a, Result<ByteStream>> {
        async move {
            let p = path(key)?;
            if range.is_empty() {
                let empty: ByteStream = futures::stream::empty().boxed();
                return Ok(empty);
            }
            let opts = GetOptions::new().with_range(Some(GetRange::Bounded(range)));
            let got = self
                .store
                .get_opts(&p, opts)
                .await
                .map_err(os_err("get", key))?;
            let stream: ByteStream = got.into_stream().map_err(io::Error::other).boxed();
            Ok(stream)
        }
        .boxed()
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let p = path(key)?;
            match self.store.delete(&p).await {
                Ok(()) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(os_err("delete", key)(e)),
            }
        }
        .boxed()
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let p = path(prefix)?;
            let locations = self.store.list(Some(&p)).map_ok(|m| m.location).boxed();
            self.store
                .delete_stream(locations)
                .try_for_each(|_| async { Ok(()) })
                .await
                .or_else(|e| if is_not_found(&e) { Ok(()) } else { Err(e) })
                .map_err(os_err("delete", prefix))
        }
        .boxed()
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        async move {
            let p = path(prefix)?;
            let listed = self
                .store
                .list_with_delimiter(Some(&p))
                .await
                .map_err(os_err("list", prefix))?;
            let mut names: Vec<String> = listed
                .common_prefixes
                .iter()
                .chain(listed.objects.iter().map(|o| &o.location))
                .filter_map(|p| p.filename().map(str::to_string))
                .collect();
            names.sort();
            names.dedup();
            Ok(names)
        }
        .boxed()
    }

    fn walk<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<(String, Meta)>> {
        let p = match path(prefix) {
            Ok(p) => p,
            Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
        };
        self.store
            .list(Some(&p))
            .map(move |r| match r {
                Ok(m) => Ok((
                    m.location.to_string(),
                    Meta {
                        size: m.size,
                        modified: m.last_modified.into(),
                    },
                )),
                Err(e) => Err(os_err("list", prefix)(e)),
            })
            .boxed()
    }

    fn upload_size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<u64>> {
        async move { Ok(end_of(&self.parts(id).await?)) }.boxed()
    }

    fn upload_append<'a>(
        &'a self,
        id: &'a str,
        offset: u64,
        mut data: ByteStream,
    ) -> BoxFuture<'a, Result<Append>> {
        async move {
            let size = end_of(&self.parts(id).await?);
            if size != offset {
                return Ok(Append::OffsetMismatch { size });
            }
            let key = format!(
                "{}/{offset:0width$}",
                parts_prefix(id),
                width = OFFSET_WIDTH
            );
            let p = path(&key)?;
            let mut writer = BufWriter::with_capacity(self.store.clone(), p, PART_BUFFER);
            let mut written = 0u64;
            let failure = loop {
                match data.next().await {
                    None => break None,
                    Some(Ok(chunk)) if chunk.is_empty() => {}
                    Some(Ok(chunk)) => {
                        written += chunk.len() as u64;
                        if let Err(e) = writer.put(chunk).await {
                            break Some(os_err("write", &key)(e));
                        }
                    }
                    Some(Err(e)) => break Some(StorageError::Body(e)),
                }
            };
            if let Some(err) = failure {
                // Nothing becomes visible: the part is only created by a completed upload.
                let _ = writer.abort().await;
                return Err(err);
            }
            if written == 0 {
                writer.abort().await.map_err(os_err("abort", &key))?;
                return Ok(Append::Written { size });
            }
            writer.shutdown().await.map_err(|e| StorageError::Io {
                op: "complete",
                key: key.clone(),
                source: e,
            })?;
            Ok(Append::Written {
                size: size + written,
            })
        }
        .boxed()
    }

    fn upload_commit<'a>(&'a self, id: &'a str, expected: Digest) -> BoxFuture<'a, Result<Commit>> {
        async move {
            let parts = self.parts(id).await?;
            let mut at = 0;
            for (offset, key, size) in &parts {
                if *offset != at {
                    return Err(StorageError::Corrupt {
                        key: key.to_string(),
                        reason: format!("part starts at {offset}, expected {at}"),
                    });
                }
                at += size;
            }
            let blob_key = keys::blob(&expected);
            let blob = path(&blob_key)?;
            let mut hasher = Hasher::new();
            match parts.as_slice() {
                [] => {
                    let actual = hasher.finish();
                    if actual != expected {
                        return Ok(Commit::DigestMismatch { actual, size: 0 });
                    }
                    self.store
                        .put(&blob, PutPayload::default())
                        .await
                        .map_err(os_err("put", &blob_key))?;
                }
                [(_, part, _)] => {
                    // One part: hash it, then let the store copy it (no re-upload).
                    stream_object(&self.store, part, &mut hasher, None).await?;
                    let actual = hasher.finish();
                    if actual != expected {
                        return Ok(Commit::DigestMismatch { actual, size: at });
                    }
                    self.store
                        .copy(part, &blob)
                        .await
                        .map_err(os_err("copy", &blob_key))?;
                }
                _ => {
                    let mut writer =
                        BufWriter::with_capacity(self.store.clone(), blob, PART_BUFFER);
                    for (_, part, _) in &parts {
                        if let Err(e) =
                            stream_object(&self.store, part, &mut hasher, Some(&mut writer)).await
                        {
                            let _ = writer.abort().await;
                            return Err(e);
                        }
                    }
                    let actual = hasher.finish();
                    if actual != expected {
                        let _ = writer.abort().await;
                        return Ok(Commit::DigestMismatch { actual, size: at });
                    }
                    writer.shutdown().await.map_err(|source| StorageError::Io {
                        op: "complete",
                        key: blob_key.clone(),
                        source,
                    })?;
                }
            }
            Ok(Commit::Stored { size: at })
        }
        .boxed()
    }

    fn upload_delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        async move { self.delete_prefix(&keys::upload(id)).await }.boxed()
    }
}
