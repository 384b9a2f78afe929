//! The image store: blobs, unpacked layers and metadata under one root.
//!
//! ```text
//! ROOT/berth.redb              metadata
//! ROOT/blobs/sha256/<hex>      content store
//! ROOT/layers/<chain hex>/fs   unpacked layers (overlay lowerdirs), shared by every image
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::ImageConfig;
use crate::content::ContentStore;
use crate::digest::{Digest, chain_ids};
use crate::error::{ImageError, IoContext};
use crate::metadata::{ImageRecord, LayerRecord, Metadata};
use crate::reference::{Reference, is_id_prefix};

const MAX_CONFIG_SIZE: u64 = 8 << 20;

pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    layers: PathBuf,
    db: Metadata,
}

/// What filling a layer directory produced.
#[derive(Debug, Clone, Copy)]
pub struct LayerFill {
    /// Bytes of file content written.
    pub size: u64,
    /// Length of the uncompressed tar stream.
    pub diff_size: u64,
}

/// What a new layer is made from: its identity and the blob kept for it.
#[derive(Debug, Clone)]
pub struct NewLayer {
    pub chain_id: Digest,
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    pub blob: Digest,
    pub blob_media_type: String,
    pub blob_size: u64,
}

impl ImageStore {
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        fs::create_dir_all(root).io_context("create", root)?;
        let content = ContentStore::open(root)?;
        let layers = root.join("layers");
        fs::create_dir_all(&layers).io_context("create", &layers)?;
        // Unpacks interrupted by a crash never became visible: remove them.
        for entry in fs::read_dir(&layers).io_context("list", &layers)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let db = Metadata::open(&root.join("berth.redb"))?;
        Ok(ImageStore {
            root: root.to_path_buf(),
            content,
            layers,
            db,
        })
    }

    /// The directory everything lives under; `tmp/` in it is for staging.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn metadata(&self) -> &Metadata {
        &self.db
    }

    /// The unpacked tree of a layer (an overlay lowerdir).
    pub fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.layers.join(chain.hex()).join("fs")
    }

    pub fn layer(&self, chain: &Digest) -> Result<Option<LayerRecord>, ImageError> {
        self.db.layer(chain)
    }

    /// Creates a layer: `fill` unpacks into an empty directory and says what it wrote; the directory is synced and renamed into place, then recorded. A
    /// layer that already exists is returned as is without calling `fill`.
    pub fn create_layer<E>(
        &self,
        new: NewLayer,
        fill: impl FnOnce(&Path) -> Result<LayerFill, E>,
    ) -> Result<LayerRecord, E>
    where
        E: From<ImageError>,
    {
        if let Some(existing) = self.db.layer(&new.chain_id)?
            && self.layer_dir(&new.chain_id).is_dir()
        {
            return Ok(existing);
        }
        let tmp = self.layers.join(format!(
            ".tmp-{}-{}",
            new.chain_id.short(),
            rand::random::<u64>()
        ));
        let tmp_fs = tmp.join("fs");
        fs::create_dir_all(&tmp_fs).io_context("create", &tmp_fs)?;
        let filled = match fill(&tmp_fs) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        sync_filesystem(&tmp_fs)?;
        let dest = self.layers.join(new.chain_id.hex());
        if dest.exists() {
            // A crash after rename but before the record: the old tree is not trusted.
            fs::remove_dir_all(&dest).io_context("remove", &dest)?;
        }
        fs::rename(&tmp, &dest).io_context("rename", &dest)?;
        let rec = LayerRecord {
            chain_id: new.chain_id,
            diff_id: new.diff_id,
            parent: new.parent,
            size: filled.size,
            diff_size: filled.diff_size,
            blob: new.blob,
            blob_media_type: new.blob_media_type,
            blob_size: new.blob_size,
        };
        self.db.put_layer(&rec)?;
        Ok(rec)
    }

    /// Registers an image whose config blob is in the content store and whose layers all exist.
    pub fn add_image(
        &self,
        config: &Digest,
        manifest: Option<Digest>,
        parent: Option<Digest>,
    ) -> Result<ImageRecord, ImageError> {
        let cfg = self.config(config)?;
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        let mut size = 0;
        for chain in &chains {
            let layer = self.db.layer(chain)?.ok_or_else(|| {
                ImageError::NotFound(format!("layer {chain} of image {config} is missing"))
            })?;
            size += layer.size;
        }
        let previous = self.db.image(config)?;
        let rec = ImageRecord {
            id: *config,
            chain_ids: chains,
            size,
            manifest: manifest.or(previous.as_ref().and_then(|p| p.manifest)),
            parent: parent.or(previous.as_ref().and_then(|p| p.parent)),
            last_tag_time: previous.map(|p| p.last_tag_time).unwrap_or(0),
        };
        self.db.put_image(&rec)?;
        Ok(rec)
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, ImageError> {
        self.db.image(id)
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>, ImageError> {
        self.db.images()
    }

    /// The parsed config of an image.
    pub fn config(&self, id: &Digest) -> Result<ImageConfig, ImageError> {
        let f = self.content.open_blob(id)?;
        let raw = crate::content::read_capped(f, MAX_CONFIG_SIZE)
            .io_context("read", self.content.path(id))?;
        serde_json::from_slice(&raw)
            .map_err(|e| ImageError::InvalidArgument(format!("invalid image config {id}: {e}")))
    }

    /// Finds an image the way docker does: by reference (tag or digest), by full ID, or by
    /// an unambiguous ID prefix. The error is docker's `No such image: NAME`.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let not_found = || ImageError::NotFound(format!("No such image: {name}"));
        if let Ok(d) = name.parse::<Digest>()
            && let Some(rec) = self.db.image(&d)?
        {
            return Ok(rec);
        }
        if let Ok(r) = Reference::parse_normalized(name) {
            if let Some(id) = self.db.resolve_ref(&r.to_string())? {
                return self.db.image(&id)?.ok_or_else(not_found);
            }
            // `name@digest` matches an image pulled by that digest under any tag.
            if let Some(d) = r.digest()
                && let Some(id) = self.db.resolve_ref(&r.with_digest(*d).to_string())?
            {
                return self.db.image(&id)?.ok_or_else(not_found);
            }
        }
        if is_id_prefix(name) {
            let prefix = name.strip_prefix("sha256:").unwrap_or(name);
            let matches = self.db.images_with_prefix(prefix)?;
            match matches.len() {
                0 => {}
                1 => return self.db.image(&matches[0])?.ok_or_else(not_found),
                _ => {
                    return Err(ImageError::InvalidArgument(format!(
                        "multiple IDs found with provided prefix: {prefix}"
                    )));
                }
            }
        }
        Err(not_found())
    }

    /// Tags `id` as `reference`. Returns the image that lost the tag, if any.
    pub fn tag(
        &self,
        id: &Digest,
        reference: &Reference,
        now: i64,
    ) -> Result<Option<Digest>, ImageError> {
        self.db.set_ref(&reference.to_string(), id, now)
    }

    pub fn untag(&self, reference: &Reference) -> Result<bool, ImageError> {
        self.db.remove_ref(&reference.to_string())
    }

    /// Every reference (tags and repo digests) with its image.
    pub fn references(&self) -> Result<Vec<(Reference, Digest)>, ImageError> {
        Ok(self
            .db
            .refs()?
            .into_iter()
            .filter_map(|(r, id)| Reference::parse_normalized_name(&r).ok().map(|r| (r, id)))
            .collect())
    }

    /// References pointing at one image.
    pub fn references_of(&self, id: &Digest) -> Result<Vec<Reference>, ImageError> {
        Ok(self
            .references()?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(r, _)| r)
            .collect())
    }

    /// Deletes an image, its references, its config blob and manifest, and the layers
    /// (directories and blobs) that no other image uses. Returns the deleted layers.
    pub fn delete_image(&self, id: &Digest) -> Result<Vec<LayerRecord>, ImageError> {
        let rec = self.db.image(id)?;
        let removed = self.db.delete_image(id)?;
        for layer in &removed {
            let dir = self.layers.join(layer.chain_id.hex());
            if let Err(e) = fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %dir.display(), error = %e, "removing layer");
            }
        }
        // Blobs: the config, the manifest and layer blobs that no remaining record names.
        let keep = self.referenced_blobs()?;
        let mut candidates = vec![*id];
        candidates.extend(rec.and_then(|r| r.manifest));
        candidates.extend(removed.iter().map(|l| l.blob));
        for blob in candidates {
            if !keep.contains(&blob) {
                self.content.delete(&blob)?;
            }
        }
        Ok(removed)
    }

    fn referenced_blobs(&self) -> Result<std::collections::HashSet<Digest>, ImageError> {
        let mut keep = std::collections::HashSet::new();
        for img in self.db.images()? {
            keep.insert(img.id);
            keep.extend(img.manifest);
        }
        for layer in self.db.layers()? {
            keep.insert(layer.blob);
        }
        Ok(keep)
    }
}

/// Flushes one filesystem (the layer's) instead of fsyncing every file written into it.
fn sync_filesystem(dir: &Path) -> Result<(), ImageError> {
    let f = fs::File::open(dir).io_context("open", dir)?;
    rustix::fs::syncfs(&f)
        .map_err(std::io::Error::from)
        .io_context("syncfs", dir)
}
