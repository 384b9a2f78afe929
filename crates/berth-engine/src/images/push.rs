//! `POST /images/{name}/push?tag=`: upload an image's layers, config and manifest to a
//! registry, with docker's progress messages.
//!
//! The manifest is the one the image was pulled (or loaded) with when it still describes
//! the blobs we keep, so a pulled image pushes with the same digest. Otherwise berth builds a
//! Docker schema2 manifest (OCI when a layer is zstd) over the layer blobs it keeps; layers
//! kept uncompressed (import, load, built-in images) are gzip-compressed once into the
//! content store, and the layer record then names that gzip blob, so every later push (and
//! save) uses it and the digests stay the same.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufReader, Read};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use berth_api::progress::{JsonMessage, ProgressDetail};
use berth_distribution::{BlobUpload, Credentials, DistributionError, MountOutcome};
use berth_image::config::{
    MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_CONFIG,
    MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD, MEDIA_OCI_MANIFEST, Manifest,
};
use berth_image::layer::Compression;
use berth_image::metadata::{ImageRecord, LayerRecord};
use berth_image::{Digest, ImageStore, Reference};
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::ImageService;
use super::pull::distribution_error;
use crate::error::{EngineError, Result};

/// Layers uploaded at the same time.
const PARALLEL_UPLOADS: usize = 3;
/// Other repositories of the same registry a layer is tried to be mounted from.
const MOUNT_CANDIDATES: usize = 3;
/// Attempts of one layer when the registry is unreachable or answers 5xx/429.
const UPLOAD_ATTEMPTS: u32 = 3;
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The repository and the tag to push; without a tag, every tag of the repository.
    pub reference: Reference,
    pub credentials: Option<Credentials>,
}

pub type PushStream = mpsc::Receiver<Result<JsonMessage>>;

/// Serialises the one-time compression of a layer across concurrent pushes.
static COMPRESSING: LazyLock<Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// Sends progress; a client that went away does not stop the push.
#[derive(Clone)]
struct Out {
    tx: mpsc::Sender<Result<JsonMessage>>,
}

impl Out {
    async fn send(&self, m: JsonMessage) {
        let _ = self.tx.send(Ok(m)).await;
    }
}

/// A status line about one layer, as docker sends it (with an empty `progressDetail`).
fn item(id: &str, status: impl Into<String>) -> JsonMessage {
    JsonMessage {
        progress_detail: Some(ProgressDetail::default()),
        ..JsonMessage::item(id, status)
    }
}

/// A manifest descriptor, in the field order docker writes schema2 manifests with.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    size: u64,
    digest: Digest,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor,
    layers: &'a [Descriptor],
}

/// The stored manifest, when it can be pushed as is.
struct Original {
    bytes: Bytes,
    media_type: String,
    layers: Vec<Descriptor>,
}

/// One layer to push.
struct LayerJob {
    target: Reference,
    credentials: Option<Credentials>,
    layer: LayerRecord,
    /// The descriptor of the original manifest; `None` when a new manifest is built.
    original: Option<Descriptor>,
    /// Whether the new manifest is OCI (else Docker schema2).
    oci: bool,
    /// Repositories on the same registry that have the blob, to mount it from.
    sources: Vec<String>,
}

impl ImageService {
    /// Starts a push and returns its progress messages. An image that does not exist
    /// locally is an error before any message (so the API answers 404).
    pub fn push(self: &Arc<Self>, opts: PushOptions) -> PushStream {
        let (tx, rx) = mpsc::channel(256);
        let this = self.clone();
        tokio::spawn(async move {
            let out = Out { tx: tx.clone() };
            let result = match this.push_targets(&opts.reference) {
                Ok(targets) => this.push_all(&opts, targets, &out).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(reference = %opts.reference, error = %e, "push failed");
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    /// The tags to push with their images, by docker's rules: the tag named, or every tag
    /// of the repository (sorted) when none is.
    fn push_targets(&self, reference: &Reference) -> Result<Vec<(Reference, Digest)>> {
        if reference.digest().is_some() {
            return Err(EngineError::invalid("cannot push a digest reference"));
        }
        let name = reference.name();
        let mut tags: Vec<(Reference, Digest)> = self
            .store
            .references()?
            .into_iter()
            .filter(|(r, _)| r.digest().is_none() && r.tag().is_some() && r.name() == name)
            .collect();
        if tags.is_empty() {
            return Err(EngineError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                reference.familiar_name()
            )));
        }
        if let Some(tag) = reference.tag() {
            tags.retain(|(r, _)| r.tag() == Some(tag));
            if tags.is_empty() {
                return Err(EngineError::not_found(format!(
                    "tag does not exist: {}",
                    reference.familiar()
                )));
            }
        }
        tags.sort_by(|a, b| a.0.tag().cmp(&b.0.tag()));
        Ok(tags)
    }

    async fn push_all(
        self: &Arc<Self>,
        opts: &PushOptions,
        targets: Vec<(Reference, Digest)>,
        out: &Out,
    ) -> Result<()> {
        out.send(JsonMessage::status(format!(
            "The push refers to repository [{}]",
            opts.reference.name()
        )))
        .await;
        for (target, id) in targets {
            self.push_tag(&target, id, opts.credentials.as_ref(), out)
                .await?;
        }
        Ok(())
    }

    /// Pushes one tag: layers (in parallel), config, manifest; then records the repo digest.
    async fn push_tag(
        self: &Arc<Self>,
        target: &Reference,
        id: Digest,
        credentials: Option<&Credentials>,
        out: &Out,
    ) -> Result<()> {
        let tag = target.tag().expect("push targets are tagged").to_string();
        let rec = self
            .store
            .image(&id)?
            .ok_or_else(|| EngineError::not_found(format!("No such image: {id}")))?;
        let layers = rec
            .chain_ids
            .iter()
            .map(|c| {
                self.store.layer(c)?.ok_or_else(|| {
                    EngineError::internal(format!("layer {c} of image {id} is missing"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let original = self.original_manifest(&rec, &layers)?;
        let oci = original.is_none()
            && layers
                .iter()
                .map(|l| self.blob_compression(l))
                .collect::<Result<Vec<_>>>()?
                .contains(&Compression::Zstd);
        let mut sources = self.mount_sources(target)?;

        // docker lists layers top first.
        for l in layers.iter().rev() {
            out.send(item(&l.diff_id.short(), "Preparing")).await;
        }
        let semaphore = Arc::new(Semaphore::new(PARALLEL_UPLOADS));
        let mut set = JoinSet::new();
        for (i, layer) in layers.iter().enumerate().rev() {
            let job = LayerJob {
                target: target.clone(),
                credentials: credentials.cloned(),
                layer: layer.clone(),
                original: original.as_ref().map(|o| o.layers[i].clone()),
                oci,
                sources: sources.remove(&layer.chain_id).unwrap_or_default(),
            };
            let (this, out, semaphore) = (self.clone(), out.clone(), semaphore.clone());
            set.spawn(async move { (i, this.push_layer(job, semaphore, out).await) });
        }
        let mut descriptors: Vec<Option<Descriptor>> = vec![None; layers.len()];
        while let Some(joined) = set.join_next().await {
            let (i, result) = joined?;
            match result {
                Ok(d) => descriptors[i] = Some(d),
                Err(e) => {
                    set.abort_all();
                    return Err(e);
                }
            }
        }
        let descriptors: Vec<Descriptor> = descriptors.into_iter().flatten().collect();

        let config_size = self
            .store
            .content()
            .size(&rec.id)
            .ok_or_else(|| EngineError::internal(format!("config of image {id} is missing")))?;
        let registry_err = distribution_error;
        if !self
            .registry
            .blob_exists(target, &rec.id, credentials)
            .await
            .map_err(registry_err)?
        {
            let path = self.store.content().path(&rec.id);
            let upload = BlobUpload {
                digest: rec.id,
                size: config_size,
                path: &path,
                session: None,
            };
            self.registry
                .upload_blob(target, upload, credentials, None)
                .await
                .map_err(registry_err)?;
        }
        let (media_type, bytes) = match original {
            Some(o) => (o.media_type, o.bytes),
            None => new_manifest(oci, rec.id, config_size, &descriptors),
        };
        let size = bytes.len();
        let digest = self
            .registry
            .put_manifest(target, &tag, &media_type, bytes, credentials)
            .await
            .map_err(registry_err)?;
        self.store.tag(
            &rec.id,
            &target.with_digest(digest),
            chrono::Utc::now().timestamp(),
        )?;
        self.events
            .image("push", &target.familiar(), Some(&target.familiar()));
        out.send(JsonMessage::status(format!(
            "{tag}: digest: {digest} size: {size}"
        )))
        .await;
        out.send(JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(serde_json::json!({
                "Tag": tag,
                "Digest": digest.to_string(),
                "Size": size,
            })),
            ..Default::default()
        })
        .await;
        Ok(())
    }

    /// The stored manifest if it can be pushed as it is: an image manifest of this config
    /// whose layers are exactly the blobs kept for the image's layers. A manifest with
    /// uncompressed layers (what `docker save` archives hold) is used only for an image
    /// known to a registry (one with a repo digest): the others get gzip layers, as docker
    /// pushes them.
    fn original_manifest(
        &self,
        rec: &ImageRecord,
        layers: &[LayerRecord],
    ) -> Result<Option<Original>> {
        let Some(digest) = rec.manifest else {
            return Ok(None);
        };
        let Ok(raw) = self.store.content().read(&digest) else {
            return Ok(None);
        };
        let Ok(m) = serde_json::from_slice::<Manifest>(&raw) else {
            return Ok(None);
        };
        let media_type = m.media_type.clone().unwrap_or_else(|| {
            if m.config.media_type == MEDIA_DOCKER_CONFIG {
                MEDIA_DOCKER_MANIFEST.into()
            } else {
                MEDIA_OCI_MANIFEST.into()
            }
        });
        let matches = (media_type == MEDIA_DOCKER_MANIFEST || media_type == MEDIA_OCI_MANIFEST)
            && m.config.digest == rec.id
            && m.layers.len() == layers.len()
            && m.layers.iter().zip(layers).all(|(d, l)| {
                d.digest == l.blob && self.store.content().size(&l.blob) == Some(d.size)
            });
        if !matches {
            return Ok(None);
        }
        let uncompressed = m
            .layers
            .iter()
            .any(|d| Compression::from_media_type(&d.media_type) == Some(Compression::None));
        if uncompressed
            && !self
                .store
                .references_of(&rec.id)?
                .iter()
                .any(|r| r.digest().is_some())
        {
            return Ok(None);
        }
        Ok(Some(Original {
            bytes: raw.into(),
            media_type,
            layers: m
                .layers
                .iter()
                .map(|d| Descriptor {
                    media_type: d.media_type.clone(),
                    size: d.size,
                    digest: d.digest,
                })
                .collect(),
        }))
    }

    /// For every layer, up to three other repositories on the target's registry that are
    /// known to hold its blob: those of the repo digests (pulled or pushed) of the images
    /// that contain the layer.
    fn mount_sources(&self, target: &Reference) -> Result<HashMap<Digest, Vec<String>>> {
        let mut repos_of: HashMap<Digest, BTreeSet<String>> = HashMap::new();
        for (r, id) in self.store.references()? {
            if r.digest().is_some()
                && r.registry() == target.registry()
                && r.repository() != target.repository()
            {
                repos_of
                    .entry(id)
                    .or_default()
                    .insert(r.repository().to_string());
            }
        }
        let mut by_chain: HashMap<Digest, Vec<String>> = HashMap::new();
        if repos_of.is_empty() {
            return Ok(by_chain);
        }
        for img in self.store.images()? {
            let Some(repos) = repos_of.get(&img.id) else {
                continue;
            };
            for chain in &img.chain_ids {
                let list = by_chain.entry(*chain).or_default();
                for repo in repos {
                    if list.len() < MOUNT_CANDIDATES && !list.contains(repo) {
                        list.push(repo.clone());
                    }
                }
            }
        }
        Ok(by_chain)
    }

    /// How a layer's kept blob is compressed: from its media type, else from its first bytes.
    fn blob_compression(&self, layer: &LayerRecord) -> Result<Compression> {
        if let Some(c) = Compression::from_media_type(&layer.blob_media_type) {
            return Ok(c);
        }
        let mut prefix = [0u8; 4];
        let mut f = self.store.content().open_blob(&layer.blob)?;
        let n = f.read(&mut prefix).map_err(|e| {
            EngineError::internal(format!("reading layer blob {}: {e}", layer.blob))
        })?;
        Ok(Compression::sniff(&prefix[..n]))
    }

    /// Pushes one layer; returns its descriptor for the manifest.
    async fn push_layer(
        self: Arc<Self>,
        job: LayerJob,
        semaphore: Arc<Semaphore>,
        out: Out,
    ) -> Result<Descriptor> {
        let id = job.layer.diff_id.short();
        let _permit = match semaphore.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                out.send(item(&id, "Waiting")).await;
                semaphore
                    .acquire_owned()
                    .await
                    .map_err(|_| EngineError::internal("push cancelled"))?
            }
        };
        let desc = match job.original.clone() {
            Some(d) => d,
            None => self.layer_descriptor(&job.layer, job.oci).await?,
        };
        let mut attempt = 1;
        loop {
            match self.upload_layer(&job, &desc, &id, &out).await {
                Ok(status) => {
                    out.send(item(&id, status)).await;
                    return Ok(desc);
                }
                Err(e) if e.is_transient() && attempt < UPLOAD_ATTEMPTS => {
                    tracing::warn!(layer = %desc.digest, attempt, error = %e, "layer push failed, retrying");
                    let wait = 5 * attempt;
                    for left in (1..=wait).rev() {
                        let s = if left == 1 { "" } else { "s" };
                        out.send(item(&id, format!("Retrying in {left} second{s}")))
                            .await;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    attempt += 1;
                }
                Err(e) => return Err(distribution_error(e)),
            }
        }
    }

    /// Uploads a layer blob unless the repository has it or it can be mounted; returns the
    /// layer's final status line.
    async fn upload_layer(
        &self,
        job: &LayerJob,
        desc: &Descriptor,
        id: &str,
        out: &Out,
    ) -> std::result::Result<String, DistributionError> {
        let creds = job.credentials.as_ref();
        if self
            .registry
            .blob_exists(&job.target, &desc.digest, creds)
            .await?
        {
            return Ok("Layer already exists".into());
        }
        let mut session = None;
        for (k, from) in job.sources.iter().enumerate() {
            match self
                .registry
                .mount_blob(&job.target, &desc.digest, from, creds)
                .await
            {
                Ok(MountOutcome::Mounted) => return Ok(format!("Mounted from {from}")),
                Ok(MountOutcome::Upload(s)) if k + 1 == job.sources.len() => session = Some(s),
                Ok(MountOutcome::Upload(s)) => {
                    self.registry.cancel_upload(&job.target, s, creds).await;
                }
                Err(e) => {
                    tracing::debug!(blob = %desc.digest, from, error = %e, "mount failed, uploading");
                }
            }
        }
        let path = self.store.content().path(&desc.digest);
        let upload = BlobUpload {
            digest: desc.digest,
            size: desc.size,
            path: &path,
            session,
        };
        let progress = pushing_progress(out.clone(), id.to_string(), desc.size);
        self.registry
            .upload_blob(&job.target, upload, creds, Some(progress))
            .await?;
        Ok("Pushed".into())
    }

    /// The descriptor of a layer in a new manifest: its kept blob, gzip-compressed first
    /// when it is kept uncompressed.
    async fn layer_descriptor(&self, layer: &LayerRecord, oci: bool) -> Result<Descriptor> {
        let (blob, compression) = match self.blob_compression(layer)? {
            Compression::None => (self.compress_layer(layer).await?, Compression::Gzip),
            c => (layer.blob, c),
        };
        let size = self
            .store
            .content()
            .size(&blob)
            .ok_or_else(|| EngineError::internal(format!("layer blob {blob} is missing")))?;
        let media_type = match (oci, compression) {
            (false, _) => MEDIA_DOCKER_LAYER_GZIP,
            (true, Compression::Zstd) => MEDIA_OCI_LAYER_ZSTD,
            (true, _) => MEDIA_OCI_LAYER_GZIP,
        };
        Ok(Descriptor {
            media_type: media_type.into(),
            size,
            digest: blob,
        })
    }

    /// Gzip-compresses a layer kept uncompressed into the content store, once: the layer
    /// record then names the gzip blob, and the uncompressed blob is deleted unless something
    /// else names it (save decompresses whatever the layer keeps). Returns the gzip blob.
    async fn compress_layer(&self, layer: &LayerRecord) -> Result<Digest> {
        let lock = COMPRESSING
            .lock()
            .expect("compress locks")
            .entry(layer.chain_id)
            .or_default()
            .clone();
        let guard = lock.lock().await;
        let result = self.compress_layer_locked(layer).await;
        drop(guard);
        let mut locks = COMPRESSING.lock().expect("compress locks");
        if Arc::strong_count(&lock) == 2 {
            locks.remove(&layer.chain_id);
        }
        result
    }

    async fn compress_layer_locked(&self, layer: &LayerRecord) -> Result<Digest> {
        let current = self
            .store
            .layer(&layer.chain_id)?
            .ok_or_else(|| EngineError::internal(format!("layer {} is missing", layer.chain_id)))?;
        // Another push compressed it meanwhile.
        if current.blob != layer.blob && self.blob_compression(&current)? != Compression::None {
            return Ok(current.blob);
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || compress_blocking(&store, current)).await?
    }
}

fn compress_blocking(store: &ImageStore, rec: LayerRecord) -> Result<Digest> {
    let short = rec.diff_id.short();
    let io_err =
        |e: std::io::Error| EngineError::internal(format!("compressing layer {short}: {e}"));
    let src = store.content().open_blob(&rec.blob)?;
    let ingest = store.content().ingest_unknown()?;
    let mut gz = flate2::write::GzEncoder::new(ingest, flate2::Compression::default());
    std::io::copy(&mut BufReader::with_capacity(256 * 1024, src), &mut gz).map_err(io_err)?;
    let (digest, size) = gz.finish().map_err(io_err)?.commit()?;
    let old = rec.blob;
    store.metadata().put_layer(&LayerRecord {
        blob: digest,
        blob_media_type: MEDIA_DOCKER_LAYER_GZIP.into(),
        blob_size: size,
        ..rec
    })?;
    if old != digest && !blob_in_use(store, &old)? {
        store.content().delete(&old)?;
    }
    tracing::info!(layer = %short, blob = %digest, size, "layer compressed for push");
    Ok(digest)
}

/// Whether an image or layer record names the blob.
fn blob_in_use(store: &ImageStore, blob: &Digest) -> Result<bool> {
    if store.metadata().layers()?.iter().any(|l| l.blob == *blob) {
        return Ok(true);
    }
    Ok(store
        .images()?
        .iter()
        .any(|i| i.id == *blob || i.manifest == Some(*blob)))
}

/// The upload callback: `Pushing` with docker's bar, at most every 100 ms (and at the end).
fn pushing_progress(out: Out, id: String, total: u64) -> berth_distribution::UploadProgress {
    let last = Mutex::new(None::<Instant>);
    Arc::new(move |sent: u64| {
        let mut last = last.lock().expect("progress lock");
        if sent < total && last.is_some_and(|t| t.elapsed() < PROGRESS_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        let _ = out
            .tx
            .try_send(Ok(JsonMessage::progress(&id, "Pushing", sent, Some(total))));
    })
}

/// A new manifest over the given layers: Docker schema2 written as docker writes it
/// (3-space indent), or OCI.
fn new_manifest(
    oci: bool,
    config: Digest,
    config_size: u64,
    layers: &[Descriptor],
) -> (String, Bytes) {
    let (media_type, config_type) = if oci {
        (MEDIA_OCI_MANIFEST, MEDIA_OCI_CONFIG)
    } else {
        (MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_CONFIG)
    };
    let m = NewManifest {
        schema_version: 2,
        media_type,
        config: Descriptor {
            media_type: config_type.into(),
            size: config_size,
            digest: config,
        },
        layers,
    };
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    m.serialize(&mut ser).expect("manifests serialise");
    (media_type.to_string(), buf.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_manifests_look_like_dockers() {
        let config = Digest::of(b"config");
        let layer = Descriptor {
            media_type: MEDIA_DOCKER_LAYER_GZIP.into(),
            size: 3,
            digest: Digest::of(b"layer"),
        };
        let (mt, bytes) = new_manifest(false, config, 6, &[layer]);
        assert_eq!(mt, MEDIA_DOCKER_MANIFEST);
        let expected = format!(
            "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{MEDIA_DOCKER_MANIFEST}\",\n   \"config\": {{\n      \"mediaType\": \"{MEDIA_DOCKER_CONFIG}\",\n      \"size\": 6,\n      \"digest\": \"{config}\"\n   }},\n   \"layers\": [\n      {{\n         \"mediaType\": \"{MEDIA_DOCKER_LAYER_GZIP}\",\n         \"size\": 3,\n         \"digest\": \"{}\"\n      }}\n   ]\n}}",
            Digest::of(b"layer")
        );
        assert_eq!(String::from_utf8(bytes.to_vec()).unwrap(), expected);
        let (mt, _) = new_manifest(true, config, 6, &[]);
        assert_eq!(mt, MEDIA_OCI_MANIFEST);
    }
}
