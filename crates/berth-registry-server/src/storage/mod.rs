//! Where the registry keeps everything: blobs, per-repository links, tags, referrers and
//! upload sessions, behind one [`Driver`] trait so the same server runs on a local disk
//! ([`FsDriver`]) or on a bucket shared by stateless replicas ([`ObjectDriver`]).
//!
//! A driver is a small key/value store with streaming reads and an append-only upload area.
//! Keys are `/`-separated and built only by [`keys`] from validated names, hex digests, tags
//! and upload ids:
//!
//! ```text
//! blobs/sha256/<hex>                                   blob bytes, stored once
//! repositories/<name>/_layers/<hex>                    the blob belongs to <name>
//! repositories/<name>/_manifests/revisions/<hex>       a manifest of <name> (media type, subject)
//! repositories/<name>/_manifests/tags/<tag>            tag → manifest digest
//! repositories/<name>/_referrers/<subject-hex>/<hex>   a manifest of <name> whose subject is <subject>
//! uploads/<uuid>/info                                  session: repository, start time
//! uploads/<uuid>/…                                     the driver's own upload data
//! ```
//!
//! The repository-level rules (what is linked where) live in [`Store`], written once over
//! any driver.

use std::io;
use std::ops::Range;
use std::time::SystemTime;

use berth_image::Digest;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

mod fs;
pub mod keys;
mod object;
mod store;

pub use fs::FsDriver;
pub use object::ObjectDriver;
pub use store::{Manifest, ManifestRecord, Referrer, Store, UploadInfo};

/// A stream of bytes read from storage or received from a client.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// Size and modification time of a stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    pub modified: SystemTime,
}

/// The result of appending a chunk to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Append {
    /// Appended; the upload now holds `size` bytes.
    Written { size: u64 },
    /// The chunk did not start where the upload ends (`size`); nothing was written.
    OffsetMismatch { size: u64 },
}

/// The result of turning an upload into a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The upload hashed to the expected digest and is now `blobs/sha256/<hex>`.
    Stored { size: u64 },
    /// The upload hashed to `actual`: nothing was stored.
    DigestMismatch { actual: Digest, size: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{op} {key}: {source}")]
    Io {
        op: &'static str,
        key: String,
        #[source]
        source: io::Error,
    },
    #[error("object store {op} {key}: {source}")]
    ObjectStore {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    /// Reading the client's request body failed (connection closed, truncated body).
    #[error("reading the request body: {0}")]
    Body(#[source] io::Error),
    #[error("stored data at {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A storage backend. Object-safe (boxed futures and streams) so the server holds an
/// `Arc<dyn Driver>` chosen at start-up.
///
/// Every write of a whole object is atomic: a reader sees the old value, the new one, or
/// nothing — never part of one. Missing keys are not errors: `get`/`stat` answer `None`,
/// `delete` succeeds, `list` is empty.
pub trait Driver: Send + Sync + 'static {
    /// A short name for logs (`filesystem`, `object_store(InMemory)`).
    fn describe(&self) -> String;

    /// Reads a small object (link, tag, manifest, session info) whole.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>>;

    /// Writes a small object atomically, replacing any previous one.
    fn put<'a>(&'a self, key: &'a str, data: Bytes) -> BoxFuture<'a, Result<()>>;

    fn stat<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Meta>>>;

    /// Streams `range` (already clamped by the caller to the object's size) of an object.
    fn read<'a>(&'a self, key: &'a str, range: Range<u64>) -> BoxFuture<'a, Result<ByteStream>>;

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Deletes every object under `prefix/`.
    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<()>>;

    /// The names of the direct children of `prefix/` (objects and "directories"), sorted.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>>>;

    /// Every object under `prefix/`, recursively, with its metadata (any order).
    fn walk<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<(String, Meta)>>;

    /// How many bytes upload `id` holds so far (0 for a new session).
    fn upload_size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<u64>>;

    /// Appends `data` to upload `id` if it currently holds exactly `offset` bytes. Streams:
    /// memory use does not grow with the chunk. If `data` fails midway, the upload is left
    /// as it was before the call and [`StorageError::Body`] is returned.
    fn upload_append<'a>(
        &'a self,
        id: &'a str,
        offset: u64,
        data: ByteStream,
    ) -> BoxFuture<'a, Result<Append>>;

    /// Hashes the whole upload; if it matches `expected`, stores it as the blob
    /// `blobs/sha256/<hex>` (atomically; replacing identical bytes is harmless).
    fn upload_commit<'a>(&'a self, id: &'a str, expected: Digest) -> BoxFuture<'a, Result<Commit>>;

    /// Removes upload `id` and its data.
    fn upload_delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;
}

/// Rejects keys that could escape the store: empty, absolute, `.`/`..` components.
pub(crate) fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.ends_with('/')
        || key
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\\'));
    if bad {
        Err(StorageError::InvalidKey(key.to_string()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "a//b",
            "a/./b",
            "..",
            "a/",
            "a\\b",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} accepted");
        }
        check_key("repositories/acme/app/_layers/abc").unwrap();
    }
}
