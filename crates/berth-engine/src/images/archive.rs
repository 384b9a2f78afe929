//! Images that arrive as local data rather than from a registry: the built-in images,
//! `docker load` archives, `docker import` rootfs tarballs — and `docker save`.
//!
//! `save` writes the layout docker 25+ writes: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…` with uncompressed layers) plus docker's `manifest.json`,
//! so docker (old and new), podman and skopeo all load it. `load` reads both that and the
//! older docker layout (`<id>/layer.tar`, `<id>.json`), and plain OCI layouts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;

use berth_api::progress::JsonMessage;
use berth_image::config::{
    ContainerConfig, Descriptor, History, ImageConfig, Index, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER, MEDIA_OCI_MANIFEST, Manifest, RootFs,
};
use berth_image::digest::chain_ids;
use berth_image::layer;
use berth_image::metadata::ImageRecord;
use berth_image::store::NewLayer;
use berth_image::{Digest, Reference};
use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use super::ImageService;
use super::changes::apply_change;
use super::unpack::unpack_blob;
use crate::error::{EngineError, Result};

/// A request body as a byte stream.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Options of `POST /images/create?fromSrc=…` (import).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub reference: Option<Reference>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub platform: Option<String>,
}

/// Where an imported rootfs comes from.
pub enum ImportSource {
    Body(ByteStream),
    Url(String),
}

type Messages = mpsc::Receiver<Result<JsonMessage>>;

impl ImageService {
    /// Stores uncompressed layer tars and a config, then registers (and tags) the image.
    /// Blocking: call from a blocking thread.
    pub(super) fn add_layers_and_config(
        &self,
        layers: &[Vec<u8>],
        config: &[u8],
        reference: Option<&Reference>,
    ) -> Result<ImageRecord> {
        let cfg = parse_config(config)?;
        if cfg.rootfs.diff_ids.len() != layers.len() {
            return Err(EngineError::invalid("image config and layers disagree"));
        }
        for (i, tar) in layers.iter().enumerate() {
            self.store
                .content()
                .write_blob(Some(&cfg.rootfs.diff_ids[i]), tar)?;
        }
        let config_digest = self.store.content().write_blob(None, config)?;
        let descriptors: Vec<(Digest, String)> = cfg
            .rootfs
            .diff_ids
            .iter()
            .map(|d| (*d, MEDIA_OCI_LAYER.to_string()))
            .collect();
        self.unpack_layers(&cfg, &descriptors)?;
        self.commit_image(&config_digest, None, reference)
    }

    /// Unpacks the layers (blobs already in the content store) an image config names.
    fn unpack_layers(&self, cfg: &ImageConfig, blobs: &[(Digest, String)]) -> Result<()> {
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        for (i, (blob, media_type)) in blobs.iter().enumerate() {
            if self.store.layer(&chains[i])?.is_some() && self.store.layer_dir(&chains[i]).is_dir()
            {
                continue;
            }
            let new = NewLayer {
                chain_id: chains[i],
                parent: i.checked_sub(1).map(|p| chains[p]),
                diff_id: cfg.rootfs.diff_ids[i],
                blob: *blob,
                blob_media_type: media_type.clone(),
                blob_size: self.store.content().size(blob).unwrap_or(0),
            };
            unpack_blob(&self.store, new, |_, _| {})?;
        }
        Ok(())
    }

    /// `GET /images/{name}/get` and `/images/get`: a tar stream of the named images.
    /// Names are resolved before anything is streamed, so an unknown one is a 404.
    pub fn save(&self, names: Vec<String>) -> Result<mpsc::Receiver<io::Result<Bytes>>> {
        let mut images: Vec<(ImageRecord, Vec<Reference>)> = Vec::new();
        for name in &names {
            let rec = self.store.resolve(name)?;
            let tag = Reference::parse_normalized(name).ok().filter(|r| {
                r.digest().is_none()
                    && self
                        .store
                        .metadata()
                        .resolve_ref(&r.to_string())
                        .ok()
                        .flatten()
                        == Some(rec.id)
            });
            // `docker save busybox` (a name alone) saves every tag of the repository that
            // points at the image; a named tag saves just that tag.
            let name_only = Reference::parse_normalized_name(name)
                .is_ok_and(|r| r.tag().is_none() && r.digest().is_none());
            let mut refs = Vec::new();
            if let Some(t) = tag {
                if name_only {
                    refs.extend(
                        self.store
                            .references_of(&rec.id)?
                            .into_iter()
                            .filter(|r| r.tag().is_some() && r.name() == t.name()),
                    );
                } else {
                    refs.push(t);
                }
            }
            match images.iter_mut().find(|(r, _)| r.id == rec.id) {
                Some((_, existing)) => {
                    for r in refs {
                        if !existing.contains(&r) {
                            existing.push(r);
                        }
                    }
                }
                None => images.push((rec, refs)),
            }
        }
        let (tx, rx) = mpsc::channel(16);
        let store = self.store.clone();
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            let writer = io::BufWriter::with_capacity(512 * 1024, ChannelWriter(tx.clone()));
            if let Err(e) = write_archive(&store, &images, writer) {
                tracing::warn!(error = %e, "save failed");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
            for (rec, _) in &images {
                events.image("save", &rec.id.to_string(), None);
            }
        });
        Ok(rx)
    }

    /// `POST /images/load`.
    pub fn load(self: &std::sync::Arc<Self>, body: ByteStream, quiet: bool) -> Messages {
        let (tx, rx) = mpsc::channel(64);
        let this = self.clone();
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
        tokio::task::spawn_blocking(move || {
            let result = this.load_blocking(reader, &tx, quiet);
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        rx
    }

    fn load_blocking(
        &self,
        reader: impl Read,
        tx: &mpsc::Sender<Result<JsonMessage>>,
        quiet: bool,
    ) -> Result<()> {
        let tmp = TempDir::new(&self.store.root().join("tmp"), "load")?;
        let staged = stage_archive(reader, tmp.path())?;
        let loaded = if staged.has("manifest.json") {
            self.load_docker_archive(&staged)?
        } else if staged.has("index.json") {
            self.load_oci_layout(&staged)?
        } else {
            return Err(EngineError::invalid(
                "invalid tar header: archive has neither manifest.json nor index.json (not a docker or OCI image archive)",
            ));
        };
        let _ = quiet;
        for (rec, refs) in loaded {
            if refs.is_empty() {
                let _ = tx.blocking_send(Ok(JsonMessage::stream(format!(
                    "Loaded image ID: {}\n",
                    rec.id
                ))));
            }
            for r in refs {
                let _ = tx.blocking_send(Ok(JsonMessage::stream(format!(
                    "Loaded image: {}\n",
                    r.familiar()
                ))));
            }
            self.events.image("load", &rec.id.to_string(), None);
        }
        Ok(())
    }

    fn load_docker_archive(&self, staged: &Staged) -> Result<Vec<(ImageRecord, Vec<Reference>)>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let entries: Vec<Entry> = serde_json::from_slice(&staged.read_small("manifest.json")?)
            .map_err(|e| EngineError::invalid(format!("invalid manifest.json: {e}")))?;
        let mut out = Vec::new();
        for e in entries {
            let config_bytes = staged.read_small(&e.config)?;
            let cfg = parse_config(&config_bytes)?;
            if cfg.rootfs.diff_ids.len() != e.layers.len() {
                return Err(EngineError::invalid(format!(
                    "{}: config names {} layers, manifest.json {}",
                    e.config,
                    cfg.rootfs.diff_ids.len(),
                    e.layers.len()
                )));
            }
            let mut blobs = Vec::new();
            for (i, path) in e.layers.iter().enumerate() {
                let diff_id = cfg.rootfs.diff_ids[i];
                if !self.store.content().contains(&diff_id) {
                    self.ingest_uncompressed(staged.open(path)?, Some(diff_id))?;
                }
                blobs.push((diff_id, MEDIA_OCI_LAYER.to_string()));
            }
            let config_digest = self.store.content().write_blob(None, &config_bytes)?;
            self.unpack_layers(&cfg, &blobs)?;
            let mut refs = Vec::new();
            for t in e.repo_tags.unwrap_or_default() {
                refs.push(
                    Reference::parse_normalized(&t)
                        .map_err(|err| EngineError::invalid(err.to_string()))?,
                );
            }
            let rec = self.commit_image(&config_digest, None, None)?;
            for r in &refs {
                self.store.tag(&rec.id, r, chrono::Utc::now().timestamp())?;
            }
            out.push((rec, refs));
        }
        Ok(out)
    }

    fn load_oci_layout(&self, staged: &Staged) -> Result<Vec<(ImageRecord, Vec<Reference>)>> {
        let index: Index = serde_json::from_slice(&staged.read_small("index.json")?)
            .map_err(|e| EngineError::invalid(format!("invalid index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let name = desc.annotations.as_ref().and_then(|a| {
                a.get("io.containerd.image.name")
                    .cloned()
                    .or_else(|| a.get("org.opencontainers.image.ref.name").cloned())
            });
            let Some(manifest_desc) = self.pick_manifest(staged, desc)? else {
                continue;
            };
            let manifest_bytes = staged.read_blob(&manifest_desc.digest)?;
            let manifest: Manifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
                EngineError::invalid(format!("invalid manifest {}: {e}", manifest_desc.digest))
            })?;
            let config_bytes = staged.read_blob(&manifest.config.digest)?;
            let cfg = parse_config(&config_bytes)?;
            let mut blobs = Vec::new();
            for l in &manifest.layers {
                if !self.store.content().contains(&l.digest) {
                    let mut ingest = self.store.content().ingest(l.digest)?;
                    ingest.reset()?;
                    io::copy(&mut staged.open_blob(&l.digest)?, &mut ingest).map_err(|e| {
                        EngineError::internal(format!("copying layer {}: {e}", l.digest))
                    })?;
                    ingest.commit()?;
                }
                blobs.push((l.digest, l.media_type.clone()));
            }
            let config_digest = self
                .store
                .content()
                .write_blob(Some(&manifest.config.digest), &config_bytes)?;
            self.store
                .content()
                .write_blob(Some(&manifest_desc.digest), &manifest_bytes)?;
            self.unpack_layers(&cfg, &blobs)?;
            let rec = self.commit_image(&config_digest, Some(manifest_desc.digest), None)?;
            let mut refs = Vec::new();
            if let Some(r) = name
                .as_deref()
                .and_then(|n| Reference::parse_normalized(n).ok())
                .filter(|_| {
                    name.as_deref()
                        .is_some_and(|n| n.contains('/') || n.contains(':'))
                })
            {
                self.store
                    .tag(&rec.id, &r, chrono::Utc::now().timestamp())?;
                refs.push(r);
            }
            out.push((rec, refs));
        }
        Ok(out)
    }

    /// A manifest descriptor, descending into nested indexes and choosing this host's platform.
    fn pick_manifest(&self, staged: &Staged, desc: &Descriptor) -> Result<Option<Descriptor>> {
        if desc.media_type != MEDIA_OCI_INDEX && !desc.media_type.contains("manifest.list") {
            return Ok(Some(desc.clone()));
        }
        let idx: Index = serde_json::from_slice(&staged.read_blob(&desc.digest)?)
            .map_err(|e| EngineError::invalid(format!("invalid index {}: {e}", desc.digest)))?;
        let host = berth_distribution::Platform::host();
        let arch = |d: &Descriptor| {
            d.platform
                .as_ref()
                .and_then(|p| p.get("architecture"))
                .and_then(|a| a.as_str())
                .map(str::to_string)
        };
        let chosen = idx
            .manifests
            .iter()
            .find(|d| arch(d).as_deref() == Some(host.architecture.as_str()))
            .or_else(|| idx.manifests.first());
        match chosen {
            Some(d) => self.pick_manifest(staged, d),
            None => Ok(None),
        }
    }

    /// Decompresses (if needed) a layer into the content store as an uncompressed blob.
    fn ingest_uncompressed(&self, r: impl Read, expect: Option<Digest>) -> Result<(Digest, u64)> {
        let mut reader = layer::decompress_auto(BufReader::with_capacity(256 * 1024, r))
            .map_err(|e| EngineError::invalid(format!("reading layer: {e}")))?;
        let mut ingest = self.store.content().ingest_unknown()?;
        io::copy(&mut reader, &mut ingest)
            .map_err(|e| EngineError::invalid(format!("reading layer: {e}")))?;
        let (digest, size) = ingest.commit()?;
        if let Some(e) = expect
            && e != digest
        {
            self.store.content().delete(&digest)?;
            return Err(EngineError::invalid(format!(
                "layer digest mismatch: expected {e}, got {digest}"
            )));
        }
        Ok((digest, size))
    }

    /// `POST /images/create?fromSrc=…`: a rootfs tarball (plain or compressed) becomes a one-layer image.
    pub fn import(
        self: &std::sync::Arc<Self>,
        source: ImportSource,
        opts: ImportOptions,
    ) -> Messages {
        let (tx, rx) = mpsc::channel(8);
        let this = self.clone();
        tokio::spawn(async move {
            let (body, label) = match source {
                ImportSource::Body(b) => (b, "-".to_string()),
                ImportSource::Url(url) => match fetch_url(&url).await {
                    Ok(b) => (b, url),
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                },
            };
            let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
            let result =
                tokio::task::spawn_blocking(move || this.import_blocking(reader, &label, &opts))
                    .await;
            let msg = match result {
                Ok(Ok(id)) => Ok(JsonMessage::status(id.to_string())),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(msg).await;
        });
        rx
    }

    fn import_blocking(
        &self,
        reader: impl Read,
        source: &str,
        opts: &ImportOptions,
    ) -> Result<Digest> {
        let mut container = ContainerConfig::default();
        for c in &opts.changes {
            apply_change(&mut container, c)?;
        }
        let (diff_id, _) = self.ingest_uncompressed(reader, None)?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let (os, arch, variant) = match opts
            .platform
            .as_deref()
            .map(berth_distribution::Platform::parse)
        {
            Some(Ok(p)) => (p.os, p.architecture, p.variant),
            Some(Err(e)) => return Err(EngineError::invalid(e.to_string())),
            None => (
                "linux".to_string(),
                crate::system::go_arch().to_string(),
                None,
            ),
        };
        let comment = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {source}"));
        let cfg = ImageConfig {
            architecture: arch,
            os,
            variant,
            created: Some(now.clone()),
            config: Some(container),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            },
            history: vec![History {
                created: Some(now),
                comment: Some(comment),
                ..Default::default()
            }],
            ..Default::default()
        };
        let config_bytes = serde_json::to_vec(&cfg).expect("config serialises");
        let config_digest = self.store.content().write_blob(None, &config_bytes)?;
        self.unpack_layers(&cfg, &[(diff_id, MEDIA_OCI_LAYER.to_string())])?;
        let rec = self.commit_image(&config_digest, None, opts.reference.as_ref())?;
        self.events.image(
            "import",
            &rec.id.to_string(),
            opts.reference.as_ref().map(|r| r.familiar()).as_deref(),
        );
        Ok(rec.id)
    }
}

async fn fetch_url(url: &str) -> Result<ByteStream> {
    use futures::TryStreamExt;
    let parsed = url::Url::parse(url)
        .map_err(|e| EngineError::invalid(format!("invalid import URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(EngineError::invalid(format!(
            "invalid import URL {url:?}: only http and https are supported"
        )));
    }
    let resp = reqwest::get(parsed).await.map_err(|e| {
        EngineError::new(
            crate::ErrorKind::Unavailable,
            format!("fetching {url}: {e}"),
        )
    })?;
    if !resp.status().is_success() {
        return Err(EngineError::new(
            crate::ErrorKind::Unavailable,
            format!("fetching {url}: HTTP {}", resp.status()),
        ));
    }
    Ok(Box::pin(resp.bytes_stream().map_err(io::Error::other)))
}

fn parse_config(bytes: &[u8]) -> Result<ImageConfig> {
    serde_json::from_slice(bytes)
        .map_err(|e| EngineError::invalid(format!("invalid image config: {e}")))
}

/// Writes the save archive (OCI layout + docker manifest.json) for `images`.
fn write_archive(
    store: &berth_image::ImageStore,
    images: &[(ImageRecord, Vec<Reference>)],
    w: impl Write,
) -> Result<()> {
    let mut tar = tar::Builder::new(w);
    let io_err = |e: io::Error| EngineError::internal(format!("writing archive: {e}"));
    let mut written: HashSet<Digest> = HashSet::new();
    let mut docker_manifest = Vec::new();
    let mut index = Vec::new();
    append_bytes(&mut tar, "blobs/", None).map_err(io_err)?;
    append_bytes(&mut tar, "blobs/sha256/", None).map_err(io_err)?;
    for (rec, refs) in images {
        let config_bytes = store.content().read(&rec.id)?;
        let cfg = parse_config(&config_bytes)?;
        let mut layer_descs = Vec::new();
        let mut layer_paths = Vec::new();
        for chain in &rec.chain_ids {
            let l = store
                .layer(chain)?
                .ok_or_else(|| EngineError::internal(format!("layer {chain} missing")))?;
            let path = format!("blobs/sha256/{}", l.diff_id.hex());
            if written.insert(l.diff_id) {
                let blob = store.content().open_blob(&l.blob)?;
                let reader = layer::decompress_auto(BufReader::with_capacity(256 * 1024, blob))
                    .map_err(io_err)?;
                let mut h = file_header(l.diff_size);
                tar.append_data(&mut h, &path, reader.take(l.diff_size))
                    .map_err(io_err)?;
            }
            layer_descs.push(Descriptor {
                media_type: MEDIA_OCI_LAYER.into(),
                digest: l.diff_id,
                size: l.diff_size,
                platform: None,
                annotations: None,
                urls: None,
            });
            layer_paths.push(path);
        }
        if written.insert(rec.id) {
            append_bytes(
                &mut tar,
                &format!("blobs/sha256/{}", rec.id.hex()),
                Some(&config_bytes),
            )
            .map_err(io_err)?;
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.into(),
                digest: rec.id,
                size: config_bytes.len() as u64,
                platform: None,
                annotations: None,
                urls: None,
            },
            layers: layer_descs,
            annotations: None,
        };
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        let manifest_digest = Digest::of(&manifest_bytes);
        if written.insert(manifest_digest) {
            append_bytes(
                &mut tar,
                &format!("blobs/sha256/{}", manifest_digest.hex()),
                Some(&manifest_bytes),
            )
            .map_err(io_err)?;
        }
        let platform = serde_json::json!({"architecture": cfg.architecture, "os": cfg.os});
        let descriptor = |annotations: Option<BTreeMap<String, String>>| Descriptor {
            media_type: MEDIA_OCI_MANIFEST.into(),
            digest: manifest_digest,
            size: manifest_bytes.len() as u64,
            platform: Some(platform.clone()),
            annotations,
            urls: None,
        };
        if refs.is_empty() {
            index.push(descriptor(None));
        }
        for r in refs {
            let mut a = BTreeMap::new();
            a.insert("io.containerd.image.name".to_string(), r.to_string());
            a.insert(
                "org.opencontainers.image.ref.name".to_string(),
                r.tag().unwrap_or("latest").to_string(),
            );
            index.push(descriptor(Some(a)));
        }
        docker_manifest.push(serde_json::json!({
            "Config": format!("blobs/sha256/{}", rec.id.hex()),
            "RepoTags": if refs.is_empty() { serde_json::Value::Null } else { refs.iter().map(|r| r.familiar()).collect::<Vec<_>>().into() },
            "Layers": layer_paths,
        }));
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_OCI_INDEX.into()),
        manifests: index,
        annotations: None,
    };
    append_bytes(
        &mut tar,
        "index.json",
        Some(&serde_json::to_vec(&index).expect("index serialises")),
    )
    .map_err(io_err)?;
    append_bytes(
        &mut tar,
        "manifest.json",
        Some(&serde_json::to_vec(&docker_manifest).expect("manifest serialises")),
    )
    .map_err(io_err)?;
    append_bytes(
        &mut tar,
        "oci-layout",
        Some(br#"{"imageLayoutVersion":"1.0.0"}"#),
    )
    .map_err(io_err)?;
    tar.into_inner().map_err(io_err)?.flush().map_err(io_err)?;
    Ok(())
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// A file (`Some(data)`) or a directory (`None`) entry.
fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: Option<&[u8]>,
) -> io::Result<()> {
    match data {
        Some(d) => tar.append_data(&mut file_header(d.len() as u64), path, d),
        None => {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            tar.append_data(&mut h, path, io::empty())
        }
    }
}

/// Sends written bytes down a channel (the HTTP body of `save`).
struct ChannelWriter(mpsc::Sender<io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An archive unpacked to a private temporary directory: regular files only, paths
/// confined to the directory; symlinks (old docker archives link shared layers) recorded
/// and resolved inside it.
struct Staged {
    root: PathBuf,
    links: HashMap<String, String>,
}

const MAX_METADATA_FILE: u64 = 16 << 20;

impl Staged {
    fn resolve(&self, path: &str) -> Result<PathBuf> {
        let mut p = clean(path)
            .ok_or_else(|| EngineError::invalid(format!("invalid path in archive: {path}")))?;
        for _ in 0..16 {
            match self.links.get(&p) {
                Some(target) => p = target.clone(),
                None => return Ok(self.root.join(&p)),
            }
        }
        Err(EngineError::invalid(format!(
            "too many links in archive at {path}"
        )))
    }
    fn has(&self, path: &str) -> bool {
        self.resolve(path).is_ok_and(|p| p.is_file())
    }
    fn open(&self, path: &str) -> Result<fs::File> {
        let p = self.resolve(path)?;
        fs::File::open(&p).map_err(|e| EngineError::invalid(format!("archive entry {path}: {e}")))
    }
    fn read_small(&self, path: &str) -> Result<Vec<u8>> {
        berth_image::content::read_capped(self.open(path)?, MAX_METADATA_FILE)
            .map_err(|e| EngineError::invalid(format!("archive entry {path}: {e}")))
    }
    fn open_blob(&self, d: &Digest) -> Result<fs::File> {
        self.open(&format!("blobs/sha256/{}", d.hex()))
    }
    /// A small blob, verified against its digest.
    fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let b = self.read_small(&format!("blobs/sha256/{}", d.hex()))?;
        if Digest::of(&b) != *d {
            return Err(EngineError::invalid(format!(
                "blob {d} in archive does not match its digest"
            )));
        }
        Ok(b)
    }
}

/// A relative path without `.`/`..`/absolute parts, or None if it would escape.
fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn stage_archive(reader: impl Read, dir: &Path) -> Result<Staged> {
    let mut archive = tar::Archive::new(reader);
    let mut links = HashMap::new();
    let bad = |e: io::Error| EngineError::invalid(format!("reading image archive: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw_path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let Some(path) = clean(&raw_path) else {
            continue;
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let dest = dir.join(&path);
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| EngineError::internal(format!("staging archive: {e}")))?;
                }
                let mut f = fs::File::create(&dest)
                    .map_err(|e| EngineError::internal(format!("staging archive: {e}")))?;
                io::copy(&mut entry, &mut f).map_err(bad)?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                    Path::new(&path)
                        .parent()
                        .map(|p| p.join(&target))
                        .unwrap_or_else(|| PathBuf::from(&target))
                } else {
                    PathBuf::from(&target)
                };
                if let Some(t) = clean(&base.to_string_lossy()) {
                    links.insert(path, t);
                }
            }
            _ => {}
        }
    }
    Ok(Staged {
        root: dir.to_path_buf(),
        links,
    })
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path, prefix: &str) -> Result<TempDir> {
        let p = parent.join(format!("{prefix}-{}", rand::random::<u64>()));
        fs::create_dir_all(&p)
            .map_err(|e| EngineError::internal(format!("creating {}: {e}", p.display())))?;
        Ok(TempDir(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn cleans_archive_paths() {
        assert_eq!(clean("a/b/../c").as_deref(), Some("a/c"));
        assert_eq!(clean("/abs/x").as_deref(), Some("abs/x"));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("a/../../x"), None);
        assert_eq!(clean("."), None);
    }
}
