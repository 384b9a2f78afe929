//! The filesystem driver: every key is a file under the root. Whole-object writes go to a
//! temporary file in the same directory, are fsynced and renamed into place; an upload is one
//! file that PATCH appends to (O(chunk)) and that the commit renames into `blobs/`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_image::Digest;
use berth_image::digest::Hasher;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt as _, StreamExt as _};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use super::{Append, ByteStream, Commit, Driver, Meta, Result, StorageError, check_key, keys};

const READ_BUFFER: usize = 256 * 1024;
const WRITE_BUFFER: usize = 1024 * 1024;

/// Storage in a local directory. One process per root: two processes appending to the same
/// upload at once are not detected (use the object-store driver for replicas).
#[derive(Debug, Clone)]
pub struct FsDriver {
    root: PathBuf,
    /// Uploads being appended to or committed by this process.
    busy: Arc<Mutex<HashSet<String>>>,
}

impl FsDriver {
    /// A driver over `root`, which is created if missing.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<FsDriver> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(FsDriver {
            root,
            busy: Arc::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn upload_data(&self, id: &str) -> Result<PathBuf> {
        self.path(&format!("{}/data", keys::upload(id)))
    }

    /// Marks upload `id` busy until the guard drops; `None` if it already is.
    fn claim(&self, id: &str) -> Option<BusyGuard> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.insert(id.to_string()).then(|| BusyGuard {
            set: self.busy.clone(),
            id: id.into(),
        })
    }
}

struct BusyGuard {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// The whole file as `Bytes` backed by a read-only memory map (empty files need no map).
fn map_file(path: &Path) -> io::Result<Bytes> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the file is a stored object: written to a temp name, fsynced and renamed into
    // place, and never written or truncated in place afterwards (a delete only unlinks it,
    // which keeps the mapping valid). So the mapped bytes cannot change under us, and no
    // access can fault on a shrunk file.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::from_owner(map))
}

fn io_err(op: &'static str, key: impl Into<String>) -> impl FnOnce(io::Error) -> StorageError {
    let key = key.into();
    move |source| StorageError::Io { op, key, source }
}

async fn blocking<T: Send + 'static>(
    op: &'static str,
    key: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(io_err(op, key))
}

fn meta_of(m: &fs::Metadata) -> io::Result<Meta> {
    Ok(Meta {
        size: m.len(),
        modified: m.modified()?,
    })
}

fn is_temp(name: &str) -> bool {
    name.starts_with('.')
}

/// Writes `data` to `path` atomically: temp file in the same directory, fsync, rename,
/// fsync of the directory.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("key without a parent"))?;
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn walk_dir(root: &Path, dir: &Path, out: &mut Vec<(String, Meta)>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_str().is_none_or(is_temp) {
            continue;
        }
        let path = entry.path();
        let ty = entry.file_type()?;
        if ty.is_dir() {
            walk_dir(root, &path, out)?;
        } else if ty.is_file() {
            let meta = match entry.metadata() {
                Ok(m) => meta_of(&m)?,
                // Deleted while walking.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let rel = path.strip_prefix(root).map_err(io::Error::other)?;
            if let Some(key) = rel.to_str() {
                out.push((key.to_string(), meta));
            }
        }
    }
    Ok(())
}

/// Hashes the file at `path` (missing: empty) and counts its bytes.
fn hash_file(path: &Path) -> io::Result<(Digest, u64, Option<File>)> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Digest::of(b""), 0, None)),
        Err(e) => return Err(e),
    };
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hasher.finish(), size, Some(file)))
}

impl Driver for FsDriver {
    fn describe(&self) -> String {
        format!("filesystem({})", self.root.display())
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>> {
        async move {
            let path = self.path(key)?;
            match tokio::fs::read(&path).await {
                Ok(data) => Ok(Some(Bytes::from(data))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                // A key that is a directory here is simply not an object.
                Err(e) if e.kind() == io::ErrorKind::IsADirectory => Ok(None),
                Err(e) => Err(io_err("read", key)(e)),
            }
        }
        .boxed()
    }

    fn put<'a>(&'a self, key: &'a str, data: Bytes) -> BoxFuture<'a, Result<()>> {
        async move {
            let path = self.path(key)?;
            blocking("write", key, move || write_atomic(&path, &data)).await
        }
        .boxed()
    }

    fn stat<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Meta>>> {
        async move {
            let path = self.path(key)?;
            match tokio::fs::metadata(&path).await {
                Ok(m) if m.is_file() => Ok(Some(meta_of(&m).map_err(io_err("stat", key))?)),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err("stat", key)(e)),
            }
        }
        .boxed()
    }

    fn read<'a>(&'a self, key: &'a str, range: Range<u64>) -> BoxFuture<'a, Result<ByteStream>> {
        async move {
            let path = self.path(key)?;
            let owned_key = key.to_string();
            let map = tokio::task::spawn_blocking(move || map_file(&path))
                .await
                .map_err(|e| io_err("open", owned_key.clone())(io::Error::other(e)))?
                .map_err(io_err("open", owned_key))?;
            let end = range.end.min(map.len() as u64) as usize;
            let start = (range.start as usize).min(end);
            let bytes = map.slice(start..end);
            // Chunks that share the one mapping: no copies, no blocking reads per chunk.
            let chunks = (0..bytes.len()).step_by(READ_BUFFER).map(move |i| {
                Ok::<_, io::Error>(bytes.slice(i..(i + READ_BUFFER).min(bytes.len())))
            });
            Ok(stream::iter(chunks.collect::<Vec<_>>()).boxed())
        }
        .boxed()
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let path = self.path(key)?;
            match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err("delete", key)(e)),
            }
        }
        .boxed()
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let path = self.path(prefix)?;
            match tokio::fs::remove_dir_all(&path).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err("delete", prefix)(e)),
            }
        }
        .boxed()
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        async move {
            let path = self.path(prefix)?;
            blocking("list", prefix, move || {
                let entries = match fs::read_dir(&path) {
                    Ok(e) => e,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                        ) =>
                    {
                        return Ok(Vec::new());
                    }
                    Err(e) => return Err(e),
                };
                let mut names = Vec::new();
                for entry in entries {
                    if let Some(name) = entry?.file_name().to_str()
                        && !is_temp(name)
                    {
                        names.push(name.to_string());
                    }
                }
                names.sort();
                Ok(names)
            })
            .await
        }
        .boxed()
    }

    fn walk<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<(String, Meta)>> {
        let collect = async move {
            let dir = self.path(prefix)?;
            let root = self.root.clone();
            blocking("walk", prefix, move || {
                let mut out = Vec::new();
                walk_dir(&root, &dir, &mut out)?;
                Ok(out)
            })
            .await
        };
        collect
            .into_stream()
            .flat_map(|r| match r {
                Ok(v) => stream::iter(v.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::iter(std::iter::once(Err(e))).right_stream(),
            })
            .boxed()
    }

    fn upload_size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<u64>> {
        async move {
            let path = self.upload_data(id)?;
            match tokio::fs::metadata(&path).await {
                Ok(m) => Ok(m.len()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(io_err("stat", keys::upload(id))(e)),
            }
        }
        .boxed()
    }

    fn upload_append<'a>(
        &'a self,
        id: &'a str,
        offset: u64,
        mut data: ByteStream,
    ) -> BoxFuture<'a, Result<Append>> {
        async move {
            let path = self.upload_data(id)?;
            let key = keys::upload(id);
            let Some(_guard) = self.claim(id) else {
                // Another request is writing this upload: its end is not known yet.
                let size = self.upload_size(id).await?;
                return Ok(Append::OffsetMismatch { size });
            };
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(io_err("mkdir", &key))?;
            }
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .await
                .map_err(io_err("open", &key))?;
            let size = file.metadata().await.map_err(io_err("stat", &key))?.len();
            if size != offset {
                return Ok(Append::OffsetMismatch { size });
            }
            file.seek(io::SeekFrom::Start(offset))
                .await
                .map_err(io_err("seek", &key))?;
            // Request bodies arrive in small chunks; each tokio file write is a hop to the
            // blocking pool, so gather them into large writes.
            let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
            let mut end = offset;
            let failure = loop {
                match data.next().await {
                    None => break None,
                    Some(Ok(chunk)) => match file.write_all(&chunk).await {
                        Ok(()) => end += chunk.len() as u64,
                        Err(e) => break Some(io_err("append", &key)(e)),
                    },
                    Some(Err(e)) => break Some(StorageError::Body(e)),
                }
            };
            let failure = match failure {
                None => file.flush().await.err().map(io_err("append", &key)),
                f => f,
            };
            if let Some(err) = failure {
                // Leave the upload as it was: a retried chunk starts at the same offset.
                // (What is still buffered is dropped with the writer.)
                let _ = file.get_mut().set_len(offset).await;
                return Err(err);
            }
            Ok(Append::Written { size: end })
        }
        .boxed()
    }

    fn upload_commit<'a>(&'a self, id: &'a str, expected: Digest) -> BoxFuture<'a, Result<Commit>> {
        async move {
            let data = self.upload_data(id)?;
            let blob = self.path(&keys::blob(&expected))?;
            let key = keys::upload(id);
            let Some(guard) = self.claim(id) else {
                return Err(io_err("commit", key)(io::Error::other("upload busy")));
            };
            blocking("commit", &key.clone(), move || {
                let _guard = guard;
                let (actual, size, file) = hash_file(&data)?;
                if actual != expected {
                    return Ok(Commit::DigestMismatch { actual, size });
                }
                match file {
                    Some(file) => {
                        // The blob's time is its commit (gc keeps blobs younger than its
                        // grace period), not the last append.
                        file.set_modified(std::time::SystemTime::now())?;
                        file.sync_all()?;
                        let dir = blob.parent().ok_or_else(|| io::Error::other("blob dir"))?;
                        fs::create_dir_all(dir)?;
                        fs::rename(&data, &blob)?;
                        sync_dir(dir)?;
                    }
                    None => write_atomic(&blob, b"")?,
                }
                Ok(Commit::Stored { size })
            })
            .await
        }
        .boxed()
    }

    fn upload_delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        async move { self.delete_prefix(&keys::upload(id)).await }.boxed()
    }
}
