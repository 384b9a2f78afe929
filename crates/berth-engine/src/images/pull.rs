//! `POST /images/create?fromImage=…`: resolve, download layers in parallel (resuming
//! interrupted downloads), unpack each as soon as it is complete, verify every digest,
//! and only then make the image visible.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_api::progress::JsonMessage;
use berth_distribution::{Credentials, Platform, ResolvedImage};
use berth_image::builtin;
use berth_image::config::ImageConfig;
use berth_image::content::Ingest;
use berth_image::digest::chain_ids;
use berth_image::store::NewLayer;
use berth_image::{Digest, Reference};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};

use super::ImageService;
use super::unpack::{ChannelReader, unpack_blob, unpack_reader};
use crate::error::{EngineError, ErrorKind, Result};

const PARALLEL_DOWNLOADS: usize = 3;
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub reference: Reference,
    pub platform: Option<Platform>,
    pub credentials: Option<Credentials>,
}

/// Serialises work on one layer across concurrent pulls (one writer per ingest file).
#[derive(Default)]
pub(super) struct PullCoordinator {
    locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

impl PullCoordinator {
    fn lock_for(&self, d: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("pull locks")
            .entry(*d)
            .or_default()
            .clone()
    }
}

pub type PullStream = mpsc::Receiver<Result<JsonMessage>>;

impl ImageService {
    /// Starts a pull and returns its progress messages. The first item is an error when
    /// the pull failed before anything happened (so the API can answer with a status code).
    pub fn pull(self: &Arc<Self>, opts: PullOptions) -> PullStream {
        let (tx, rx) = mpsc::channel(256);
        let this = self.clone();
        tokio::spawn(async move {
            let out = Progress { tx: tx.clone() };
            if let Err(mut e) = this.pull_inner(&opts, &out).await {
                // Never 401 for a pull (dockerd does not either): the docker CLI answers 401 by
                // prompting for credentials, and without a terminal waits forever.
                if e.kind == ErrorKind::Unauthorized {
                    e.kind = ErrorKind::Forbidden;
                }
                tracing::warn!(reference = %opts.reference, error = %e, "pull failed");
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    async fn pull_inner(self: &Arc<Self>, opts: &PullOptions, out: &Progress) -> Result<()> {
        let reference = &opts.reference;
        let latest = reference.with_tag("latest")?;
        if latest.to_string() == builtin::HELLO_WORLD
            && reference.tag().is_none_or(|t| t == "latest")
            && reference.digest().is_none()
        {
            return self.pull_builtin(&latest, out).await;
        }
        if reference.tag().is_some() || reference.digest().is_some() {
            let up_to_date = self.pull_one(reference, opts, out).await?;
            return out.final_status(up_to_date, &reference.familiar()).await;
        }
        // A name alone means every tag (`docker pull --all-tags`).
        let tags = self
            .registry
            .list_tags(reference, opts.credentials.as_ref())
            .await
            .map_err(distribution_error)?;
        if tags.is_empty() {
            return Err(EngineError::not_found(format!(
                "no tags found for {}",
                reference.familiar_name()
            )));
        }
        let mut all_up_to_date = true;
        for tag in tags {
            let tagged = reference.with_tag(&tag)?;
            all_up_to_date &= self.pull_one(&tagged, opts, out).await?;
        }
        out.final_status(all_up_to_date, &reference.familiar_name())
            .await
    }

    /// Pulls one tag or digest; true when nothing new was needed. Ends with the `Digest:` line.
    async fn pull_one(
        self: &Arc<Self>,
        reference: &Reference,
        opts: &PullOptions,
        out: &Progress,
    ) -> Result<bool> {
        let platform = opts.platform.clone().unwrap_or_else(Platform::host);
        let resolved = self
            .registry
            .resolve(reference, &platform, opts.credentials.as_ref())
            .await
            .map_err(distribution_error)?;
        let tag_label = reference
            .tag()
            .map(str::to_string)
            .unwrap_or_else(|| resolved_digest(&resolved).to_string());
        out.send(JsonMessage::item(
            tag_label,
            format!("Pulling from {}", reference.repository()),
        ))
        .await;

        let config_digest = resolved.config.digest;
        let image_ready = self.store.image(&config_digest)?.is_some();
        let config_bytes = if self.store.content().contains(&config_digest) {
            self.store.content().read(&config_digest)?
        } else {
            let bytes = self
                .registry
                .fetch_blob_bytes(reference, &config_digest, opts.credentials.as_ref())
                .await
                .map_err(distribution_error)?;
            self.store
                .content()
                .write_blob(Some(&config_digest), &bytes)?;
            bytes.to_vec()
        };
        let config: ImageConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
            EngineError::invalid(format!("invalid image config {config_digest}: {e}"))
        })?;
        if config.rootfs.diff_ids.len() != resolved.layers.len() {
            return Err(EngineError::invalid(format!(
                "image config {config_digest} lists {} layers but the manifest has {}",
                config.rootfs.diff_ids.len(),
                resolved.layers.len()
            )));
        }
        let chains = chain_ids(&config.rootfs.diff_ids);

        // Download and unpack every missing layer; layers are independent directories,
        // so each is unpacked as soon as its own download completes.
        let semaphore = Arc::new(Semaphore::new(PARALLEL_DOWNLOADS));
        let mut tasks = Vec::new();
        for (i, desc) in resolved.layers.iter().enumerate() {
            let short = desc.digest.short();
            if self.layer_ready(&chains[i])? {
                out.send(JsonMessage::item(&short, "Already exists")).await;
                continue;
            }
            out.send(JsonMessage::item(&short, "Pulling fs layer"))
                .await;
            let job = LayerJob {
                reference: reference.clone(),
                credentials: opts.credentials.clone(),
                new: NewLayer {
                    chain_id: chains[i],
                    parent: i.checked_sub(1).map(|p| chains[p]),
                    diff_id: config.rootfs.diff_ids[i],
                    blob: desc.digest,
                    blob_media_type: desc.media_type.clone(),
                    blob_size: desc.size,
                },
            };
            let this = self.clone();
            let out = out.clone();
            let semaphore = semaphore.clone();
            tasks.push(tokio::spawn(async move {
                this.fetch_layer(job, semaphore, out).await
            }));
        }
        let mut first_error = None;
        for t in tasks {
            if let Err(e) = t.await? {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }

        self.store
            .content()
            .write_blob(Some(&resolved.manifest_digest), &resolved.manifest_bytes)?;
        let repo_digest = resolved_digest(&resolved);
        let now = chrono::Utc::now().timestamp();
        let tag_before = self.store.metadata().resolve_ref(&reference.to_string())?;
        let rec = self
            .store
            .add_image(&config_digest, Some(resolved.manifest_digest), None)?;
        if reference.tag().is_some() {
            self.store.tag(&rec.id, reference, now)?;
        }
        self.store
            .tag(&rec.id, &reference.with_digest(repo_digest), now)?;
        let up_to_date = image_ready && (reference.tag().is_none() || tag_before == Some(rec.id));
        self.events
            .image("pull", &reference.familiar(), Some(&reference.familiar()));
        out.send(JsonMessage::status(format!("Digest: {repo_digest}")))
            .await;
        Ok(up_to_date)
    }

    fn layer_ready(&self, chain: &Digest) -> Result<bool> {
        Ok(self.store.layer(chain)?.is_some() && self.store.layer_dir(chain).is_dir())
    }

    async fn fetch_layer(
        self: Arc<Self>,
        job: LayerJob,
        semaphore: Arc<Semaphore>,
        out: Progress,
    ) -> Result<()> {
        let blob = job.new.blob;
        let short = blob.short();
        let lock = self.pulls.lock_for(&blob);
        let _guard = lock.lock().await;
        if self.layer_ready(&job.new.chain_id)? {
            out.send(JsonMessage::item(&short, "Already exists")).await;
            return Ok(());
        }
        if !self.store.content().contains(&blob) {
            let _permit = semaphore
                .acquire()
                .await
                .map_err(|_| EngineError::internal("pull cancelled"))?;
            let ingest = self.store.content().ingest(blob)?;
            if ingest.offset() == 0 {
                // A fresh download is unpacked as it arrives; a resumed one once complete.
                return self.download_and_unpack(job, ingest, out).await;
            }
            self.download_blob(&job, ingest, None, &out).await?;
        }
        let store = self.store.clone();
        let out2 = out.clone();
        let new = job.new.clone();
        let handle = tokio::runtime::Handle::current();
        let id = short.clone();
        tokio::task::spawn_blocking(move || {
            unpack_blob(&store, new, |n, total| {
                handle.block_on(out2.send(JsonMessage::progress(&id, "Extracting", n, Some(total))))
            })
        })
        .await??;
        out.send(JsonMessage::item(&short, "Pull complete")).await;
        Ok(())
    }

    /// Downloads a layer blob and unpacks it at the same time.
    async fn download_and_unpack(
        &self,
        job: LayerJob,
        ingest: Ingest,
        out: Progress,
    ) -> Result<()> {
        let short = job.new.blob.short();
        let (tx, rx) = mpsc::channel(32);
        let store = self.store.clone();
        let new = job.new.clone();
        let handle = tokio::runtime::Handle::current();
        let (id, out2) = (short.clone(), out.clone());
        let unpack = tokio::task::spawn_blocking(move || {
            unpack_reader(&store, new, ChannelReader::new(rx), |n, total| {
                handle.block_on(out2.send(JsonMessage::progress(&id, "Extracting", n, Some(total))))
            })
        });
        let downloaded = self.download_blob(&job, ingest, Some(tx), &out).await;
        let unpacked = unpack.await?;
        // When the unpack failed, the download stopped because of it: report the unpack error.
        unpacked?;
        downloaded?;
        out.send(JsonMessage::item(&short, "Pull complete")).await;
        Ok(())
    }

    /// Downloads a blob into `ingest`, also sending every chunk to `tee` when given. The
    /// tee sees the end of the stream (its sender dropped) only after the blob's digest was
    /// verified; on failure it gets the error instead.
    async fn download_blob(
        &self,
        job: &LayerJob,
        ingest: Ingest,
        tee: Option<mpsc::Sender<std::result::Result<Bytes, String>>>,
        out: &Progress,
    ) -> Result<()> {
        let result = self.download_into(job, ingest, tee.as_ref(), out).await;
        if let (Err(e), Some(tee)) = (&result, &tee) {
            let _ = tee.send(Err(e.message.clone())).await;
        }
        result
    }

    async fn download_into(
        &self,
        job: &LayerJob,
        mut ingest: Ingest,
        tee: Option<&mpsc::Sender<std::result::Result<Bytes, String>>>,
        out: &Progress,
    ) -> Result<()> {
        let digest = job.new.blob;
        let short = digest.short();
        let mut blob = self
            .registry
            .fetch_blob(
                &job.reference,
                &digest,
                ingest.offset(),
                job.credentials.as_ref(),
            )
            .await
            .map_err(distribution_error)?;
        if blob.restarted {
            ingest.reset()?;
        }
        let total = Some(job.new.blob_size);
        let mut last = Instant::now() - PROGRESS_INTERVAL;
        while let Some(chunk) = blob.stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                // The bytes are known to be wrong: keeping them would make the next attempt
                // resume after them and fail again.
                Err(e @ berth_distribution::DistributionError::DigestMismatch { .. }) => {
                    ingest.abort();
                    return Err(distribution_error(e));
                }
                Err(e) => return Err(distribution_error(e)),
            };
            if ingest.offset() + chunk.len() as u64 > job.new.blob_size {
                ingest.abort();
                return Err(EngineError::invalid(format!(
                    "blob {digest} is larger than the manifest says"
                )));
            }
            // Writes of a few hundred KB to the page cache: cheap enough for the runtime thread.
            std::io::Write::write_all(&mut ingest, &chunk)
                .map_err(|e| EngineError::internal(format!("writing {digest}: {e}")))?;
            if let Some(tee) = tee
                && tee.send(Ok(chunk)).await.is_err()
            {
                return Err(EngineError::internal(format!(
                    "unpacking layer {short} stopped"
                )));
            }
            if last.elapsed() >= PROGRESS_INTERVAL {
                last = Instant::now();
                out.send(JsonMessage::progress(
                    &short,
                    "Downloading",
                    ingest.offset(),
                    total,
                ))
                .await;
            }
        }
        tokio::task::spawn_blocking(move || ingest.commit())
            .await?
            .map_err(|e| {
                EngineError::invalid(format!(
                    "filesystem layer verification failed for digest {digest}: {e}"
                ))
            })?;
        out.send(JsonMessage::item(&short, "Verifying Checksum"))
            .await;
        out.send(JsonMessage::item(&short, "Download complete"))
            .await;
        Ok(())
    }

    /// Adds the built-in `hello-world` image (no network involved).
    async fn pull_builtin(self: &Arc<Self>, reference: &Reference, out: &Progress) -> Result<()> {
        let image = builtin::hello_world().ok_or_else(|| {
            EngineError::not_found(format!(
                "no built-in hello-world for {}",
                std::env::consts::ARCH
            ))
        })?;
        out.send(JsonMessage::item(
            reference.tag().unwrap_or("latest"),
            "Using the image built into berth",
        ))
        .await;
        let config = Digest::of(&image.config);
        let existed = self
            .store
            .resolve(&reference.to_string())
            .is_ok_and(|r| r.id == config);
        if !existed {
            let this = self.clone();
            let target = reference.clone();
            tokio::task::spawn_blocking(move || {
                this.add_layers_and_config(&[image.layer_tar], &image.config, Some(&target))
            })
            .await??;
            self.events
                .image("pull", &reference.familiar(), Some(&reference.familiar()));
        }
        out.send(JsonMessage::status(format!("Digest: {config}")))
            .await;
        let status = if existed {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        out.send(JsonMessage::status(format!(
            "Status: {status} {}",
            reference.familiar()
        )))
        .await;
        Ok(())
    }
}

struct LayerJob {
    reference: Reference,
    credentials: Option<Credentials>,
    new: NewLayer,
}

/// The digest a pulled image is known by in its repository: the index's when the tag named one.
fn resolved_digest(r: &ResolvedImage) -> Digest {
    r.index_digest.unwrap_or(r.manifest_digest)
}

/// Sends progress; a client that went away does not stop the pull.
#[derive(Clone)]
pub(super) struct Progress {
    tx: mpsc::Sender<Result<JsonMessage>>,
}

impl Progress {
    pub(super) async fn send(&self, m: JsonMessage) {
        let _ = self.tx.send(Ok(m)).await;
    }

    /// docker's last line: `Status: Downloaded newer image for NAME` or `… up to date …`.
    async fn final_status(&self, up_to_date: bool, name: &str) -> Result<()> {
        let status = if up_to_date {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        self.send(JsonMessage::status(format!("Status: {status} {name}")))
            .await;
        Ok(())
    }
}

pub(crate) fn distribution_error(e: berth_distribution::DistributionError) -> EngineError {
    use berth_distribution::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::Unauthorized => ErrorKind::Unauthorized,
        K::Forbidden => ErrorKind::Forbidden,
        K::InvalidArgument => ErrorKind::InvalidArgument,
        K::Unavailable => ErrorKind::Unavailable,
        K::Internal => ErrorKind::Internal,
    };
    EngineError::new(kind, e.to_string())
}
