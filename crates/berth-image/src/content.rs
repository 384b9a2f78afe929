//! The content-addressed blob store: `blobs/sha256/<hex>`, written through `ingest/` so a
//! blob becomes visible only once complete and verified, and an interrupted ingest resumes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::error::{ImageError, IoContext};

#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) a store under `root` (`root/blobs/sha256`, `root/ingest`).
    pub fn open(root: &Path) -> Result<ContentStore, ImageError> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        fs::create_dir_all(&blobs).io_context("create", &blobs)?;
        fs::create_dir_all(&ingest).io_context("create", &ingest)?;
        Ok(ContentStore { blobs, ingest })
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Size of a stored blob, if present.
    pub fn size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.path(d)).ok().map(|m| m.len())
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, ImageError> {
        let p = self.path(d);
        File::open(&p).io_context("open", p)
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let p = self.path(d);
        fs::read(&p).io_context("read", p)
    }

    /// Stores `data`, verifying it against `expected` when given. Returns its digest.
    pub fn write_blob(&self, expected: Option<&Digest>, data: &[u8]) -> Result<Digest, ImageError> {
        let actual = Digest::of(data);
        if let Some(e) = expected
            && *e != actual
        {
            return Err(ImageError::DigestMismatch {
                expected: *e,
                actual,
            });
        }
        if self.contains(&actual) {
            return Ok(actual);
        }
        let mut ingest = self.ingest(actual)?;
        ingest.reset()?;
        ingest.write_all(data).io_context("write", &ingest.path)?;
        ingest.commit()?;
        Ok(actual)
    }

    /// Starts or resumes the ingest of the blob `expected`. The returned writer starts at
    /// [`Ingest::offset`], the bytes already received by an earlier, interrupted ingest.
    pub fn ingest(&self, expected: Digest) -> Result<Ingest, ImageError> {
        let path = self.ingest.join(format!("{}.partial", expected.hex()));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .io_context("open", &path)?;
        // Re-hash what an earlier ingest left behind so the final check covers every byte.
        let mut hasher = Hasher::new();
        file.seek(SeekFrom::Start(0)).io_context("seek", &path)?;
        let offset = io::copy(&mut file, &mut hasher).io_context("read", &path)?;
        Ok(Ingest {
            store: self.clone(),
            file,
            path,
            expected,
            hasher,
            offset,
        })
    }

    /// Starts writing a blob whose digest is learnt from its content (import, load).
    pub fn ingest_unknown(&self) -> Result<UnknownIngest, ImageError> {
        let path = self
            .ingest
            .join(format!("unknown-{}.partial", rand::random::<u64>()));
        let file = File::create(&path).io_context("create", &path)?;
        Ok(UnknownIngest {
            store: self.clone(),
            file: Some(file),
            path,
            hasher: Hasher::new(),
            size: 0,
        })
    }

    pub fn delete(&self, d: &Digest) -> Result<(), ImageError> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).io_context("remove", p),
            _ => Ok(()),
        }
    }

    /// Every stored blob's digest (files with names that are not digests are ignored).
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).io_context("list", &self.blobs)? {
            let entry = entry.io_context("list", &self.blobs)?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Re-hashes a stored blob and checks it matches its name.
    pub fn verify(&self, d: &Digest) -> Result<(), ImageError> {
        let mut f = self.open_blob(d)?;
        let mut h = Hasher::new();
        io::copy(&mut f, &mut h).io_context("read", self.path(d))?;
        let actual = h.finish();
        if actual != *d {
            return Err(ImageError::DigestMismatch {
                expected: *d,
                actual,
            });
        }
        Ok(())
    }
}

/// A blob being written. Dropping it without [`Ingest::commit`] keeps the partial data for a later resume.
pub struct Ingest {
    store: ContentStore,
    file: File,
    path: PathBuf,
    expected: Digest,
    hasher: Hasher,
    offset: u64,
}

impl Ingest {
    /// Bytes received so far (also where a resumed download should continue from).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Discards what was received, to restart from zero.
    pub fn reset(&mut self) -> Result<(), ImageError> {
        self.file.set_len(0).io_context("truncate", &self.path)?;
        self.hasher = Hasher::new();
        self.offset = 0;
        Ok(())
    }

    /// Makes the blob visible if its digest matches; on a mismatch the partial data is
    /// deleted (it can never become right) and an error returned.
    pub fn commit(mut self) -> Result<Digest, ImageError> {
        self.file.flush().io_context("write", &self.path)?;
        let actual = self.hasher.clone().finish();
        if actual != self.expected {
            let _ = fs::remove_file(&self.path);
            return Err(ImageError::DigestMismatch {
                expected: self.expected,
                actual,
            });
        }
        self.file.sync_all().io_context("fsync", &self.path)?;
        let dest = self.store.path(&self.expected);
        fs::rename(&self.path, &dest).io_context("rename", &dest)?;
        Ok(actual)
    }

    /// Deletes the partial data.
    pub fn abort(self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A blob being written whose digest is not known in advance. Dropped without
/// [`UnknownIngest::commit`], its data is removed.
pub struct UnknownIngest {
    store: ContentStore,
    file: Option<File>,
    path: PathBuf,
    hasher: Hasher,
    size: u64,
}

impl UnknownIngest {
    /// Makes the blob visible under its digest; returns the digest and size.
    pub fn commit(mut self) -> Result<(Digest, u64), ImageError> {
        let file = self.file.take().expect("file present until commit");
        file.sync_all().io_context("fsync", &self.path)?;
        let digest = std::mem::take(&mut self.hasher).finish();
        let dest = self.store.path(&digest);
        fs::rename(&self.path, &dest).io_context("rename", &dest)?;
        Ok((digest, self.size))
    }
}

impl Write for UnknownIngest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .file
            .as_mut()
            .expect("file present until commit")
            .write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("file present until commit")
            .flush()
    }
}

impl Drop for UnknownIngest {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Reads a blob fully into memory with a size cap (for manifests and configs).
pub fn read_capped(mut r: impl Read, cap: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut r).take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {cap} bytes"),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.write_blob(None, b"abc").unwrap();
        assert!(cs.contains(&d));
        assert_eq!(cs.read(&d).unwrap(), b"abc");
        cs.verify(&d).unwrap();
        assert_eq!(cs.list().unwrap(), vec![d]);
        let wrong = Digest::of(b"xyz");
        assert!(matches!(
            cs.write_blob(Some(&wrong), b"abc"),
            Err(ImageError::DigestMismatch { .. })
        ));
        assert!(!cs.contains(&wrong));
    }

    #[test]
    fn interrupted_ingest_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let data = vec![7u8; 100_000];
        let d = Digest::of(&data);
        {
            let mut ing = cs.ingest(d).unwrap();
            ing.write_all(&data[..40_000]).unwrap();
            // dropped: simulates a crash mid-download
        }
        assert!(!cs.contains(&d), "partial data must not be visible");
        let mut ing = cs.ingest(d).unwrap();
        assert_eq!(ing.offset(), 40_000);
        ing.write_all(&data[40_000..]).unwrap();
        ing.commit().unwrap();
        assert_eq!(cs.read(&d).unwrap(), data);
    }

    #[test]
    fn corrupt_ingest_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = Digest::of(b"good");
        let mut ing = cs.ingest(d).unwrap();
        ing.write_all(b"evil").unwrap();
        assert!(ing.commit().is_err());
        assert!(!cs.contains(&d));
        assert_eq!(
            cs.ingest(d).unwrap().offset(),
            0,
            "bad partial data must not be resumed"
        );
    }

    #[test]
    fn tampered_blob_fails_verify() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.write_blob(None, b"abc").unwrap();
        fs::write(cs.path(&d), b"abd").unwrap();
        assert!(cs.verify(&d).is_err());
    }
}
