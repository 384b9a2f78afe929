//! Image metadata in one redb file: image records, references (tags and digests) and
//! layers. Every change that spans records happens in one transaction.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::ImageError;

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const REFS: TableDefinition<&str, &str> = TableDefinition::new("refs");
const LAYERS: TableDefinition<&str, &[u8]> = TableDefinition::new("layers");

/// An image known to the store. Its ID is the digest of its config blob.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    pub id: Digest,
    /// Chain IDs of its layers, bottom first.
    pub chain_ids: Vec<Digest>,
    /// Unpacked size of all its layers, in bytes.
    pub size: u64,
    /// The single-platform manifest it was pulled or loaded with, when there was one.
    #[serde(default)]
    pub manifest: Option<Digest>,
    /// The image it was built or committed from.
    #[serde(default)]
    pub parent: Option<Digest>,
    /// When it was last tagged, seconds since the epoch.
    #[serde(default)]
    pub last_tag_time: i64,
}

/// One unpacked layer, shared by every image whose stack contains its chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of file content unpacked.
    pub size: u64,
    /// Length of the uncompressed layer tar (whose digest is the diff ID).
    pub diff_size: u64,
    /// The blob (compressed or not) kept in the content store for save and push.
    pub blob: Digest,
    pub blob_media_type: String,
    pub blob_size: u64,
}

pub struct Metadata {
    db: Database,
}

fn db_err(e: impl Into<redb::Error>) -> ImageError {
    ImageError::Database(e.into().to_string())
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Database(format!("corrupt record: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialise")
}

impl Metadata {
    pub fn open(path: &Path) -> Result<Metadata, ImageError> {
        let db = Database::create(path).map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(IMAGES).map_err(db_err)?;
        txn.open_table(REFS).map_err(db_err)?;
        txn.open_table(LAYERS).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Metadata { db })
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, ImageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(IMAGES).map_err(db_err)?;
        t.get(id.hex().as_str())
            .map_err(db_err)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(IMAGES).map_err(db_err)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Image IDs whose hex starts with `prefix`.
    pub fn images_with_prefix(&self, prefix: &str) -> Result<Vec<Digest>, ImageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(IMAGES).map_err(db_err)?;
        let mut out = Vec::new();
        for row in t.range(prefix..).map_err(db_err)? {
            let (k, _) = row.map_err(db_err)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push(Digest::from_hex(k.value())?);
        }
        Ok(out)
    }

    pub fn put_image(&self, rec: &ImageRecord) -> Result<(), ImageError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(IMAGES).map_err(db_err)?;
            t.insert(rec.id.hex().as_str(), encode(rec).as_slice())
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// The image a reference (`docker.io/library/a:tag` or `…@sha256:…`) points at.
    pub fn resolve_ref(&self, reference: &str) -> Result<Option<Digest>, ImageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(REFS).map_err(db_err)?;
        t.get(reference)
            .map_err(db_err)?
            .map(|v| Digest::from_hex(v.value()))
            .transpose()
    }

    /// Every reference with the image it points at.
    pub fn refs(&self) -> Result<Vec<(String, Digest)>, ImageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(REFS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            out.push((k.value().to_string(), Digest::from_hex(v.value())?));
        }
        Ok(out)
    }

    /// Points `reference` at `id`, returning the image it pointed at before (if another).
    pub fn set_ref(
        &self,
        reference: &str,
        id: &Digest,
        now: i64,
    ) -> Result<Option<Digest>, ImageError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let previous = {
            let mut refs = txn.open_table(REFS).map_err(db_err)?;
            let prev = refs
                .insert(reference, id.hex().as_str())
                .map_err(db_err)?
                .map(|v| Digest::from_hex(v.value()))
                .transpose()?;
            let mut images = txn.open_table(IMAGES).map_err(db_err)?;
            let rec = images
                .get(id.hex().as_str())
                .map_err(db_err)?
                .map(|v| decode::<ImageRecord>(v.value()));
            match rec {
                Some(rec) => {
                    let mut rec = rec?;
                    rec.last_tag_time = now;
                    images
                        .insert(id.hex().as_str(), encode(&rec).as_slice())
                        .map_err(db_err)?;
                }
                None => return Err(ImageError::NotFound(format!("No such image: {id}"))),
            }
            prev.filter(|p| p != id)
        };
        txn.commit().map_err(db_err)?;
        Ok(previous)
    }

    /// Removes a reference; true if it existed.
    pub fn remove_ref(&self, reference: &str) -> Result<bool, ImageError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let existed = txn
            .open_table(REFS)
            .map_err(db_err)?
            .remove(reference)
            .map_err(db_err)?
            .is_some();
        txn.commit().map_err(db_err)?;
        Ok(existed)
    }

    pub fn layer(&self, chain: &Digest) -> Result<Option<LayerRecord>, ImageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(LAYERS).map_err(db_err)?;
        t.get(chain.hex().as_str())
            .map_err(db_err)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    pub fn layers(&self) -> Result<Vec<LayerRecord>, ImageError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(LAYERS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db_err)? {
            out.push(decode(row.map_err(db_err)?.1.value())?);
        }
        Ok(out)
    }

    pub fn put_layer(&self, rec: &LayerRecord) -> Result<(), ImageError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(LAYERS)
            .map_err(db_err)?
            .insert(rec.chain_id.hex().as_str(), encode(rec).as_slice())
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// Deletes an image with all references to it, and every layer no remaining image
    /// uses, in one transaction. Returns the removed layer records (whose files the
    /// caller deletes after the commit).
    pub fn delete_image(&self, id: &Digest) -> Result<Vec<LayerRecord>, ImageError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let removed = {
            let mut images = txn.open_table(IMAGES).map_err(db_err)?;
            if images.remove(id.hex().as_str()).map_err(db_err)?.is_none() {
                return Err(ImageError::NotFound(format!("No such image: {id}")));
            }
            let mut refs = txn.open_table(REFS).map_err(db_err)?;
            let hex = id.hex();
            refs.retain(|_, v| v != hex.as_str()).map_err(db_err)?;
            let mut used = std::collections::HashSet::new();
            for row in images.iter().map_err(db_err)? {
                let rec: ImageRecord = decode(row.map_err(db_err)?.1.value())?;
                used.extend(rec.chain_ids);
            }
            let mut layers = txn.open_table(LAYERS).map_err(db_err)?;
            let mut removed = Vec::new();
            for row in layers.iter().map_err(db_err)? {
                let rec: LayerRecord = decode(row.map_err(db_err)?.1.value())?;
                if !used.contains(&rec.chain_id) {
                    removed.push(rec);
                }
            }
            for rec in &removed {
                layers.remove(rec.chain_id.hex().as_str()).map_err(db_err)?;
            }
            removed
        };
        txn.commit().map_err(db_err)?;
        Ok(removed)
    }
}
