//! The repository rules over any [`Driver`]: a blob belongs to a repository only through a
//! link written when it was pushed or mounted there; manifests are blobs with a revision
//! link recording their media type; tags and referrers are small objects naming digests.
//! Every lookup by digest goes through the repository's link first, so a repository never
//! sees (or learns the existence of) bytes it does not hold.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_image::Digest;
use bytes::Bytes;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::{Append, ByteStream, Commit, Driver, Meta, Result, StorageError, keys};

/// An upload session, stored at `uploads/<id>/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    /// The repository the upload was started in; it is only usable there.
    pub repository: String,
    /// Seconds since the epoch.
    pub started: u64,
}

/// What a revision link records about a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRecord {
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
}

/// A manifest's bytes with its digest and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// A descriptor in a referrers index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Repository-level operations over a driver. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    driver: Arc<dyn Driver>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Upload ids are hyphenated lowercase UUIDs; anything else names no upload.
fn valid_upload_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.hyphenated().to_string() == id)
}

fn corrupt(key: &str, reason: impl ToString) -> StorageError {
    StorageError::Corrupt {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

impl Store {
    pub fn new(driver: Arc<dyn Driver>) -> Store {
        Store { driver }
    }

    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    // ---- blobs ----

    /// The blob's size and time if `digest` belongs to `repo` (pushed or mounted there as a
    /// layer, or one of its manifests) and its bytes exist.
    pub async fn blob(&self, repo: &str, digest: &Digest) -> Result<Option<Meta>> {
        if self
            .driver
            .stat(&keys::layer_link(repo, digest))
            .await?
            .is_none()
            && self
                .driver
                .stat(&keys::revision(repo, digest))
                .await?
                .is_none()
        {
            return Ok(None);
        }
        self.driver.stat(&keys::blob(digest)).await
    }

    /// The blob's metadata if it was pushed or mounted into `repo` as a layer or config.
    pub async fn layer(&self, repo: &str, digest: &Digest) -> Result<Option<Meta>> {
        if self
            .driver
            .stat(&keys::layer_link(repo, digest))
            .await?
            .is_none()
        {
            return Ok(None);
        }
        self.driver.stat(&keys::blob(digest)).await
    }

    /// Makes an existing blob part of `repo`.
    pub async fn link_layer(&self, repo: &str, digest: &Digest) -> Result<()> {
        let link = Bytes::from(digest.to_string());
        self.driver.put(&keys::layer_link(repo, digest), link).await
    }

    /// Removes a blob from `repo` (the bytes stay until gc); `false` if it was not there.
    pub async fn unlink_layer(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let key = keys::layer_link(repo, digest);
        if self.driver.stat(&key).await?.is_none() {
            return Ok(false);
        }
        self.driver.delete(&key).await?;
        Ok(true)
    }

    pub async fn read_blob(&self, digest: &Digest, range: Range<u64>) -> Result<ByteStream> {
        self.driver.read(&keys::blob(digest), range).await
    }

    // ---- uploads ----

    /// Starts an upload session in `repo`; returns its id.
    pub async fn start_upload(&self, repo: &str) -> Result<String> {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        let info = UploadInfo {
            repository: repo.to_string(),
            started: now_secs(),
        };
        let json = serde_json::to_vec(&info).map_err(|e| corrupt(&id, e))?;
        self.driver
            .put(&keys::upload_info(&id), json.into())
            .await?;
        Ok(id)
    }

    /// The session `id` if it exists and was started in `repo`.
    pub async fn upload(&self, repo: &str, id: &str) -> Result<Option<UploadInfo>> {
        if !valid_upload_id(id) {
            return Ok(None);
        }
        let key = keys::upload_info(id);
        let Some(raw) = self.driver.get(&key).await? else {
            return Ok(None);
        };
        let info: UploadInfo = serde_json::from_slice(&raw).map_err(|e| corrupt(&key, e))?;
        Ok((info.repository == repo).then_some(info))
    }

    /// Every upload session (for gc): id and info (`None`: unreadable, or data without info).
    pub async fn uploads(&self) -> Result<Vec<(String, Option<UploadInfo>)>> {
        let mut out = Vec::new();
        for id in self.driver.list(keys::UPLOADS).await? {
            if !valid_upload_id(&id) {
                continue;
            }
            let key = keys::upload_info(&id);
            let info = match self.driver.get(&key).await? {
                Some(raw) => serde_json::from_slice(&raw).ok(),
                // An emptied directory (some stores keep them) is no session.
                None if self.driver.walk(&keys::upload(&id)).next().await.is_none() => continue,
                None => None,
            };
            out.push((id, info));
        }
        Ok(out)
    }

    pub async fn upload_size(&self, id: &str) -> Result<u64> {
        self.driver.upload_size(id).await
    }

    pub async fn append(&self, id: &str, offset: u64, data: ByteStream) -> Result<Append> {
        self.driver.upload_append(id, offset, data).await
    }

    /// Verifies and stores the upload as blob `digest`, links it into `repo` and ends the
    /// session. On a digest mismatch nothing is stored or linked, and the session ends too.
    pub async fn finish(&self, repo: &str, id: &str, digest: &Digest) -> Result<Commit> {
        let commit = self.driver.upload_commit(id, *digest).await?;
        if let Commit::Stored { .. } = commit {
            self.link_layer(repo, digest).await?;
        }
        self.driver.upload_delete(id).await?;
        Ok(commit)
    }

    pub async fn cancel(&self, id: &str) -> Result<()> {
        self.driver.upload_delete(id).await
    }

    // ---- manifests and tags ----

    pub async fn resolve_tag(&self, repo: &str, tag: &str) -> Result<Option<Digest>> {
        let key = keys::tag(repo, tag);
        let Some(raw) = self.driver.get(&key).await? else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&raw).map_err(|e| corrupt(&key, e))?;
        text.trim().parse().map(Some).map_err(|e| corrupt(&key, e))
    }

    /// The revision record if `digest` is a manifest of `repo`.
    pub async fn manifest_record(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>> {
        let key = keys::revision(repo, digest);
        let Some(raw) = self.driver.get(&key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| corrupt(&key, e))
    }

    /// A manifest of `repo` by digest, with its bytes.
    pub async fn manifest(&self, repo: &str, digest: &Digest) -> Result<Option<Manifest>> {
        let Some(record) = self.manifest_record(repo, digest).await? else {
            return Ok(None);
        };
        let Some(bytes) = self.driver.get(&keys::blob(digest)).await? else {
            return Ok(None);
        };
        Ok(Some(Manifest {
            digest: *digest,
            media_type: record.media_type,
            bytes,
        }))
    }

    /// Stores a (validated) manifest in `repo`, records it as a referrer of `subject`, and
    /// points `tag` at it. Written bottom-up: bytes, referrer, revision, tag, so a reader
    /// following tag → revision → bytes never finds a dangling step.
    pub async fn put_manifest(
        &self,
        repo: &str,
        manifest: &Manifest,
        subject: Option<(&Digest, &Referrer)>,
        tag: Option<&str>,
    ) -> Result<()> {
        let digest = &manifest.digest;
        self.driver
            .put(&keys::blob(digest), manifest.bytes.clone())
            .await?;
        if let Some((subject, referrer)) = subject {
            let key = keys::referrer(repo, subject, digest);
            let json = serde_json::to_vec(referrer).map_err(|e| corrupt(&key, e))?;
            self.driver.put(&key, json.into()).await?;
        }
        let record = ManifestRecord {
            media_type: manifest.media_type.clone(),
            subject: subject.map(|(s, _)| *s),
        };
        let key = keys::revision(repo, digest);
        let json = serde_json::to_vec(&record).map_err(|e| corrupt(&key, e))?;
        self.driver.put(&key, json.into()).await?;
        if let Some(tag) = tag {
            self.driver
                .put(&keys::tag(repo, tag), Bytes::from(digest.to_string()))
                .await?;
        }
        Ok(())
    }

    /// Deletes a manifest from `repo` with every tag pointing at it and its referrer entry.
    /// `false` if it was not there.
    pub async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let Some(record) = self.manifest_record(repo, digest).await? else {
            return Ok(false);
        };
        for tag in self.tags(repo).await? {
            if self.resolve_tag(repo, &tag).await.ok().flatten() == Some(*digest) {
                self.driver.delete(&keys::tag(repo, &tag)).await?;
            }
        }
        if let Some(subject) = record.subject {
            self.driver
                .delete(&keys::referrer(repo, &subject, digest))
                .await?;
        }
        self.driver.delete(&keys::revision(repo, digest)).await?;
        Ok(true)
    }

    /// Removes a tag (not the manifest); `false` if it was not there.
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool> {
        let key = keys::tag(repo, tag);
        if self.driver.stat(&key).await?.is_none() {
            return Ok(false);
        }
        self.driver.delete(&key).await?;
        Ok(true)
    }

    /// The tags of `repo`, sorted.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        self.driver.list(&keys::tags(repo)).await
    }

    /// The manifests of `repo` whose subject is `subject`.
    pub async fn referrers(&self, repo: &str, subject: &Digest) -> Result<Vec<Referrer>> {
        let prefix = keys::referrers(repo, subject);
        let mut out = Vec::new();
        for name in self.driver.list(&prefix).await? {
            let key = format!("{prefix}/{name}");
            if let Some(raw) = self.driver.get(&key).await? {
                out.push(serde_json::from_slice(&raw).map_err(|e| corrupt(&key, e))?);
            }
        }
        Ok(out)
    }

    /// Whether `repo` holds anything: a blob, a manifest or a tag.
    pub async fn repository_exists(&self, repo: &str) -> Result<bool> {
        for prefix in [keys::layers(repo), keys::revisions(repo), keys::tags(repo)] {
            if !self.driver.list(&prefix).await?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every repository that holds something, sorted.
    pub async fn repositories(&self) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(name) = pending.pop() {
            let prefix = if name.is_empty() {
                keys::REPOSITORIES.to_string()
            } else {
                keys::repository(&name)
            };
            let children = self.driver.list(&prefix).await?;
            let mut is_repo = false;
            for child in children {
                if child.starts_with('_') {
                    // `_layers`, `_manifests`, `_referrers`: names never start with `_`.
                    is_repo = true;
                } else if name.is_empty() {
                    pending.push(child);
                } else {
                    pending.push(format!("{name}/{child}"));
                }
            }
            if is_repo && self.repository_exists(&name).await? {
                found.push(name);
            }
        }
        found.sort();
        Ok(found)
    }
}
